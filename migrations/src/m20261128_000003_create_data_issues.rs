//! Data quality: the rule violations and outliers found in stored reports, and their
//! follow-up. An import records its report's issues; `RunValidation` re-checks stored data
//! and replaces the open ones; a person marks an issue for follow-up or resolves it, with who,
//! when and why.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DataIssues {
    Table,
    Id,
    UnitId,
    Period,
    /// `rule` or `outlier`.
    Kind,
    /// The rule's code, or `outlier`.
    Code,
    /// `error` or `warning`.
    Severity,
    Indicator,
    Sheet,
    Cell,
    Message,
    /// `open`, `follow_up` or `resolved`.
    Status,
    FoundAt,
    FollowUpBy,
    FollowUpAt,
    ResolvedBy,
    ResolvedAt,
    Resolution,
}

#[derive(DeriveIden)]
enum Units {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DataIssues::Table)
                    .col(pk_auto(DataIssues::Id))
                    .col(integer(DataIssues::UnitId))
                    .col(string_len(DataIssues::Period, 8))
                    .col(string_len(DataIssues::Kind, 16))
                    .col(string_len(DataIssues::Code, 32))
                    .col(string_len(DataIssues::Severity, 16))
                    .col(string_len(DataIssues::Indicator, 16))
                    .col(string(DataIssues::Sheet))
                    .col(string_len(DataIssues::Cell, 16))
                    .col(text(DataIssues::Message))
                    .col(string_len(DataIssues::Status, 16))
                    .col(timestamp_with_time_zone(DataIssues::FoundAt))
                    .col(string_null(DataIssues::FollowUpBy))
                    .col(timestamp_with_time_zone_null(DataIssues::FollowUpAt))
                    .col(string_null(DataIssues::ResolvedBy))
                    .col(timestamp_with_time_zone_null(DataIssues::ResolvedAt))
                    .col(text_null(DataIssues::Resolution))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DataIssues::Table, DataIssues::UnitId)
                            .to(Units::Table, Units::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_data_issues_period_unit")
                    .table(DataIssues::Table)
                    .col(DataIssues::Period)
                    .col(DataIssues::UnitId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DataIssues::Table).to_owned()).await
    }
}
