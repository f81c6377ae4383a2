//! When each report's first accepted revision came, kept on the report itself: timeliness
//! reads it for every unit of a period (eleven thousand at national scale) from the reports'
//! period index, without a join to the revisions. Existing reports take their revision 1's
//! import time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    FirstAcceptedAt,
}

#[derive(DeriveIden)]
enum Revisions {
    Table,
    ReportId,
    Number,
    ImportedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Reports::Table)
                    .add_column(timestamp_with_time_zone_null(Reports::FirstAcceptedAt))
                    .to_owned(),
            )
            .await?;
        let first_revision = Query::select()
            .column(Revisions::ImportedAt)
            .from(Revisions::Table)
            .and_where(Expr::col((Revisions::Table, Revisions::ReportId)).equals((Reports::Table, Reports::Id)))
            .and_where(Expr::col((Revisions::Table, Revisions::Number)).eq(1))
            .to_owned();
        manager
            .exec_stmt(
                Query::update()
                    .table(Reports::Table)
                    .value(
                        Reports::FirstAcceptedAt,
                        SimpleExpr::SubQuery(None, Box::new(first_revision.into_sub_query_statement())),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Reports::Table).drop_column(Reports::FirstAcceptedAt).to_owned()).await
    }
}
