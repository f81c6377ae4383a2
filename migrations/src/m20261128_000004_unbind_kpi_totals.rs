//! The maintained totals without foreign keys to units and indicators.
//!
//! `kpi_totals` is derived data: only the store's totals code writes it, with ids from the
//! catalog it holds, and every catalog load that removes a unit or an indicator rebuilds the
//! whole table in the same transaction. The two foreign keys guarded nothing the rebuild does
//! not, and on PostgreSQL their triggers were most of the cost of writing a row: 9.3 of 16 ms
//! for 1,000 new rows (`EXPLAIN ANALYZE`). SQLite cannot drop a constraint, so on both
//! backends the table is made anew without them and its rows copied over (on PostgreSQL its
//! primary key keeps the new table's name, `kpi_totals_unbound_pkey`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum KpiTotals {
    Table,
    UnitId,
    IndicatorId,
    Period,
    Count,
    Numerator,
    Denominator,
    Percent,
    ReportingUnits,
}

/// The new table's name until the old one is gone.
#[derive(DeriveIden)]
enum KpiTotalsUnbound {
    Table,
}

/// Every column, in the order both tables have them.
const COLUMNS: [KpiTotals; 8] = [
    KpiTotals::UnitId,
    KpiTotals::IndicatorId,
    KpiTotals::Period,
    KpiTotals::Count,
    KpiTotals::Numerator,
    KpiTotals::Denominator,
    KpiTotals::Percent,
    KpiTotals::ReportingUnits,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on SQLite too (sea-orm runs SQLite migrations statement by statement on
    /// any pooled connection): the table is swapped whole or not at all, and the rename sees
    /// the drop before it.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KpiTotalsUnbound::Table)
                    .col(integer(KpiTotals::UnitId))
                    .col(integer(KpiTotals::IndicatorId))
                    .col(string_len(KpiTotals::Period, 8))
                    .col(big_integer(KpiTotals::Count).default(0))
                    .col(big_integer(KpiTotals::Numerator).default(0))
                    .col(big_integer(KpiTotals::Denominator).default(0))
                    .col(double_null(KpiTotals::Percent))
                    .col(big_integer(KpiTotals::ReportingUnits).default(0))
                    .primary_key(
                        Index::create().col(KpiTotals::UnitId).col(KpiTotals::IndicatorId).col(KpiTotals::Period),
                    )
                    .to_owned(),
            )
            .await?;
        let rows = Query::select().columns(COLUMNS).from(KpiTotals::Table).to_owned();
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(KpiTotalsUnbound::Table)
                    .columns(COLUMNS)
                    .select_from(rows)
                    .map_err(|e| DbErr::Migration(e.to_string()))?
                    .to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(KpiTotals::Table).to_owned()).await?;
        manager.rename_table(Table::rename().table(KpiTotalsUnbound::Table, KpiTotals::Table).to_owned()).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The keys would only guard what the rebuild already guarantees; there is nothing to undo.
        Ok(())
    }
}
