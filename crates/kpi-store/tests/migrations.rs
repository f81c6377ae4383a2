//! Migrations that change a table with rows in it keep every row: the database is migrated up
//! to the migration, given rows through plain SQL, then migrated to the end. Runs on SQLite,
//! and on PostgreSQL when TEST_DATABASE_URL is set.

use kpi_migrations::{Migrator, MigratorTrait};
use kpi_store::test_support::TestDatabase;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Applies every migration before the one named `name`.
async fn migrate_before(db: &DatabaseConnection, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let position = Migrator::migrations()
        .iter()
        .position(|migration| migration.name() == name)
        .ok_or_else(|| format!("no migration {name}"))?;
    Migrator::up(db, Some(u32::try_from(position)?)).await?;
    Ok(())
}

async fn execute(db: &DatabaseConnection, sql: &str) -> Result<(), sea_orm::DbErr> {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.map(|_| ())
}

/// The totals' rows as text, in key order.
async fn totals(db: &DatabaseConnection) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let sql = "SELECT unit_id, indicator_id, period, count, numerator, denominator, percent, reporting_units \
               FROM kpi_totals ORDER BY unit_id, indicator_id, period";
    let mut rows = Vec::new();
    for row in db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await? {
        let (unit, indicator, period): (i32, i32, String) =
            (row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?);
        let sums: (i64, i64, i64) = (row.try_get_by_index(3)?, row.try_get_by_index(4)?, row.try_get_by_index(5)?);
        let (percent, units): (Option<f64>, i64) = (row.try_get_by_index(6)?, row.try_get_by_index(7)?);
        rows.push(format!("{unit} {indicator} {period} {sums:?} {percent:?} {units}"));
    }
    Ok(rows)
}

#[tokio::test]
async fn the_totals_lose_their_foreign_keys_and_keep_their_rows() -> TestResult {
    let database = TestDatabase::new().await;
    let db = Database::connect(&database.url).await?;
    migrate_before(&db, "m20261128_000004_unbind_kpi_totals").await?;
    for sql in [
        "INSERT INTO resolutions (id, code, title, adopted_on, term_end_year) VALUES (1, 'R', 'T', '2021-01-01', 2025)",
        "INSERT INTO units (id, code, name, kind, parent_id, path, position) VALUES (7, 'PACNAM', 'P', 'district', NULL, '/7/', 0)",
        "INSERT INTO indicators (id, resolution_id, code, name, name_en, kind, time_aggregation, direction, \
         unit_of_measure, reporter_unit_id, position) VALUES (3, 1, 'B05', 'n', 'n', 'count', 'flow', 'higher', 'u', NULL, 0)",
        "INSERT INTO kpi_totals (unit_id, indicator_id, period, count, numerator, denominator, percent, reporting_units) \
         VALUES (7, 3, '2022', 41, 0, 0, NULL, 3), (7, 3, '2022Q1', 9, 2, 5, 27.5, 1)",
    ] {
        execute(&db, sql).await?;
    }
    // Before: the keys refuse a total for a unit that does not exist.
    let orphan = "INSERT INTO kpi_totals (unit_id, indicator_id, period) VALUES (99, 3, '2022')";
    let refused = execute(&db, orphan).await.is_err();
    let before = totals(&db).await?;

    Migrator::up(&db, None).await?;
    assert!(refused, "the old table's keys refused an orphan total");
    assert_eq!(totals(&db).await?, before, "every row is kept as it was");
    assert_eq!(before.len(), 2);
    execute(&db, orphan).await?;
    assert_eq!(totals(&db).await?.len(), 3, "the new table has no keys to refuse it");
    Ok(())
}
