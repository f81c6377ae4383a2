//! The first schema: the catalog (units, resolutions, indicators, assignments, targets) and
//! what imports write (reports, revisions, values).
//!
//! Sized for national scale (about 10,600 communes × 19 indicators × 10 periods ≈ 2 million
//! values): the KPI query finds reports through the period index and their current values
//! through the unique (revision, indicator) index; a subtree is a prefix of the units'
//! materialised `path`, checked on those rows only.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Units {
    Table,
    Id,
    Code,
    Name,
    Kind,
    ParentId,
    Path,
    Position,
}

#[derive(DeriveIden)]
enum Resolutions {
    Table,
    Id,
    Code,
    Title,
    AdoptedOn,
    TermEndYear,
}

#[derive(DeriveIden)]
enum Indicators {
    Table,
    Id,
    ResolutionId,
    Code,
    Name,
    NameEn,
    Kind,
    TimeAggregation,
    Direction,
    UnitOfMeasure,
    ReporterUnitId,
    Position,
}

#[derive(DeriveIden)]
enum UnitIndicators {
    Table,
    UnitId,
    IndicatorId,
}

#[derive(DeriveIden)]
enum Targets {
    Table,
    Id,
    IndicatorId,
    UnitId,
    Period,
    Value,
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    UnitId,
    Period,
    CurrentRevisionId,
}

#[derive(DeriveIden)]
enum Revisions {
    Table,
    Id,
    ReportId,
    Number,
    FileName,
    Sha256,
    ImportedAt,
    ImportedBy,
    PreparedBy,
    PreparedOn,
    Warnings,
    Status,
}

#[derive(DeriveIden)]
enum ReportValues {
    Table,
    Id,
    RevisionId,
    IndicatorId,
    Value,
    Numerator,
    Denominator,
    Note,
}

fn foreign_key(
    from_table: impl IntoIden,
    from_column: impl IntoIden,
    to_table: impl IntoIden,
    to_column: impl IntoIden,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from_table, from_column).to(to_table, to_column).on_delete(on_delete).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Units::Table)
                    .col(pk_auto(Units::Id))
                    .col(string_len_uniq(Units::Code, 32))
                    .col(string(Units::Name))
                    .col(string_len(Units::Kind, 32))
                    .col(integer_null(Units::ParentId))
                    // "/<root id>/<child id>/.../<own id>/": a subtree is a prefix match.
                    .col(string(Units::Path))
                    .col(integer(Units::Position))
                    .foreign_key(&mut foreign_key(
                        Units::Table,
                        Units::ParentId,
                        Units::Table,
                        Units::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("idx_units_parent").table(Units::Table).col(Units::ParentId).to_owned())
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Resolutions::Table)
                    .col(pk_auto(Resolutions::Id))
                    .col(string_len_uniq(Resolutions::Code, 64))
                    .col(text(Resolutions::Title))
                    .col(string_len(Resolutions::AdoptedOn, 10))
                    .col(integer(Resolutions::TermEndYear))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Indicators::Table)
                    .col(pk_auto(Indicators::Id))
                    .col(integer(Indicators::ResolutionId))
                    .col(string_len_uniq(Indicators::Code, 16))
                    .col(text(Indicators::Name))
                    .col(text(Indicators::NameEn))
                    .col(string_len(Indicators::Kind, 16))
                    .col(string_len(Indicators::TimeAggregation, 16))
                    .col(string_len(Indicators::Direction, 16))
                    .col(string_len(Indicators::UnitOfMeasure, 32))
                    .col(integer_null(Indicators::ReporterUnitId))
                    .col(integer(Indicators::Position))
                    .foreign_key(&mut foreign_key(
                        Indicators::Table,
                        Indicators::ResolutionId,
                        Resolutions::Table,
                        Resolutions::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut foreign_key(
                        Indicators::Table,
                        Indicators::ReporterUnitId,
                        Units::Table,
                        Units::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UnitIndicators::Table)
                    .col(integer(UnitIndicators::UnitId))
                    .col(integer(UnitIndicators::IndicatorId))
                    .primary_key(Index::create().col(UnitIndicators::UnitId).col(UnitIndicators::IndicatorId))
                    .foreign_key(&mut foreign_key(
                        UnitIndicators::Table,
                        UnitIndicators::UnitId,
                        Units::Table,
                        Units::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        UnitIndicators::Table,
                        UnitIndicators::IndicatorId,
                        Indicators::Table,
                        Indicators::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Targets::Table)
                    .col(pk_auto(Targets::Id))
                    .col(integer(Targets::IndicatorId))
                    .col(integer(Targets::UnitId))
                    // A period code, or '' for "by the end of the term" (a NULL would defeat
                    // the unique index on PostgreSQL and SQLite alike).
                    .col(string_len(Targets::Period, 8))
                    .col(double(Targets::Value))
                    .foreign_key(&mut foreign_key(
                        Targets::Table,
                        Targets::IndicatorId,
                        Indicators::Table,
                        Indicators::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Targets::Table,
                        Targets::UnitId,
                        Units::Table,
                        Units::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_targets_indicator_unit_period")
                    .table(Targets::Table)
                    .col(Targets::IndicatorId)
                    .col(Targets::UnitId)
                    .col(Targets::Period)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reports::Table)
                    .col(pk_auto(Reports::Id))
                    .col(integer(Reports::UnitId))
                    .col(string_len(Reports::Period, 8))
                    // The one current revision; older ones stay, marked superseded.
                    .col(integer_null(Reports::CurrentRevisionId))
                    .foreign_key(&mut foreign_key(
                        Reports::Table,
                        Reports::UnitId,
                        Units::Table,
                        Units::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_reports_unit_period")
                    .table(Reports::Table)
                    .col(Reports::UnitId)
                    .col(Reports::Period)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_reports_period").table(Reports::Table).col(Reports::Period).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Revisions::Table)
                    .col(pk_auto(Revisions::Id))
                    .col(integer(Revisions::ReportId))
                    .col(integer(Revisions::Number))
                    .col(text(Revisions::FileName))
                    .col(string_len(Revisions::Sha256, 64))
                    .col(timestamp_with_time_zone(Revisions::ImportedAt))
                    .col(text(Revisions::ImportedBy))
                    .col(text_null(Revisions::PreparedBy))
                    .col(string_len_null(Revisions::PreparedOn, 10))
                    // A JSON array of {sheet, cell, code, message}.
                    .col(text(Revisions::Warnings))
                    .col(string_len(Revisions::Status, 16))
                    .foreign_key(&mut foreign_key(
                        Revisions::Table,
                        Revisions::ReportId,
                        Reports::Table,
                        Reports::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_revisions_report_number")
                    .table(Revisions::Table)
                    .col(Revisions::ReportId)
                    .col(Revisions::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReportValues::Table)
                    .col(big_pk_auto(ReportValues::Id))
                    .col(integer(ReportValues::RevisionId))
                    .col(integer(ReportValues::IndicatorId))
                    .col(double_null(ReportValues::Value))
                    .col(big_integer_null(ReportValues::Numerator))
                    .col(big_integer_null(ReportValues::Denominator))
                    .col(text_null(ReportValues::Note))
                    .foreign_key(&mut foreign_key(
                        ReportValues::Table,
                        ReportValues::RevisionId,
                        Revisions::Table,
                        Revisions::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ReportValues::Table,
                        ReportValues::IndicatorId,
                        Indicators::Table,
                        Indicators::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_report_values_revision_indicator")
                    .table(ReportValues::Table)
                    .col(ReportValues::RevisionId)
                    .col(ReportValues::IndicatorId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReportValues::Table.into_iden(),
            Revisions::Table.into_iden(),
            Reports::Table.into_iden(),
            Targets::Table.into_iden(),
            UnitIndicators::Table.into_iden(),
            Indicators::Table.into_iden(),
            Resolutions::Table.into_iden(),
            Units::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
