//! `kpi-report scorecard` writes the library's bytes: what the server's ExportScorecard
//! streams. Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kpi_core::{Catalog, Figure, IndicatorCode, Period, UnitCode};
use kpi_report::{Lang, ScorecardRequest, scorecard_workbook};
use kpi_store::test_support::{TestDatabase, temp_dir};
use kpi_store::{NewRevision, NewValue, SHIPPED_CATALOG, Store};

#[tokio::test]
async fn the_command_line_writes_the_librarys_bytes() {
    let db = TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.load_catalog(&Catalog::from_toml(SHIPPED_CATALOG).unwrap()).await.unwrap();
    for (year, members) in [(2021, 18), (2022, 20)] {
        let revision = NewRevision {
            unit: UnitCode::parse("BOCBO").unwrap(),
            period: Period::Year(year),
            file_name: format!("bocbo-{year}.xlsx"),
            sha256: format!("bocbo-{year}"),
            imported_by: "tester".into(),
            prepared_by: None,
            prepared_on: None,
            warnings: Vec::new(),
            values: vec![NewValue {
                indicator: IndicatorCode::parse("A01").unwrap(),
                figure: Figure::Count(members),
                note: None,
            }],
            data_issues: Vec::new(),
        };
        store.write_revision(&revision).await.unwrap();
    }
    let dir = temp_dir("kpi-report").unwrap();
    let output = dir.join("review.xlsx");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_kpi-report"))
        .args(["scorecard", "--unit", "pacnam", "--period", "Năm 2022", "--compare", "2021", "--lang", "en"])
        .args(["--as-of", "2023-01-20", "-o", output.to_str().unwrap()])
        .env("DATABASE_URL", &db.url)
        .env_remove("KPI_CATALOG")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let request = ScorecardRequest {
        unit: UnitCode::parse("PACNAM").unwrap(),
        period: Period::Year(2022),
        compare: Some(Period::Year(2021)),
        lang: Lang::En,
        as_of: chrono::NaiveDate::from_ymd_opt(2023, 1, 20).unwrap(),
    };
    let expected = scorecard_workbook(&store, &request).await.unwrap();
    assert!(std::fs::read(&output).unwrap() == expected, "the command line and the library differ");

    // The change column holds 2022 against 2021: 20 − 18 members.
    use calamine::{Data, Reader, Xlsx};
    let mut workbook = Xlsx::new(std::io::Cursor::new(expected)).unwrap();
    let summary = workbook.worksheet_range("Summary").unwrap();
    assert_eq!(summary.get_value((3, 9)), Some(&Data::String("Change against 2021".into())));
    assert_eq!(summary.get_value((4, 9)), Some(&Data::Float(2.0)));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_kpi-report"))
        .args(["scorecard", "--unit", "NOWHERE", "--period", "2022", "-o", output.to_str().unwrap()])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NOWHERE"));
    std::fs::remove_dir_all(&dir).ok();
}
