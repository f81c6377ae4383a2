//! Maintained KPI totals: for every unit, indicator and period, the sums of the resolved
//! figures of the unit's subtree (kpi-core's `totals` module), updated with each revision in
//! the same transaction, so a KPI is one primary-key lookup however large the tree.
//!
//! `store_state` records that the totals were built from the reports: a database migrated
//! with reports already in it has none until the first catalog load rebuilds them.

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

#[derive(DeriveIden)]
enum StoreState {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum Units {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Indicators {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KpiTotals::Table)
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
                    .foreign_key(
                        ForeignKey::create()
                            .from(KpiTotals::Table, KpiTotals::UnitId)
                            .to(Units::Table, Units::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(KpiTotals::Table, KpiTotals::IndicatorId)
                            .to(Indicators::Table, Indicators::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StoreState::Table)
                    .col(string_len(StoreState::Name, 64).primary_key())
                    .col(text(StoreState::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StoreState::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(KpiTotals::Table).to_owned()).await
    }
}
