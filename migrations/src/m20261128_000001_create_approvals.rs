//! The reporting cycle's approval and locking: approved reports, periods locked for a
//! subtree, the audit trail of both, and per (unit, period) how many of the subtree's reports
//! exist and how many are approved, so "are these figures final" is one indexed read.
//!
//! A unit and a period identify a report as `reports` does (the period's canonical code), so
//! a report may be approved and a period locked before or after any revision arrives.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Approvals {
    Table,
    UnitId,
    Period,
    ApprovedBy,
    ApprovedAt,
    Comment,
}

#[derive(DeriveIden)]
enum PeriodLocks {
    Table,
    UnitId,
    Period,
    LockedBy,
    LockedAt,
    Comment,
}

#[derive(DeriveIden)]
enum ApprovalEvents {
    Table,
    Id,
    UnitId,
    Period,
    Action,
    Actor,
    At,
    Comment,
}

#[derive(DeriveIden)]
enum ApprovalCounts {
    Table,
    UnitId,
    Period,
    Reports,
    Approved,
}

#[derive(DeriveIden)]
enum Units {
    Table,
    Id,
}

fn unit_foreign_key(table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(table, column).to(Units::Table, Units::Id).on_delete(ForeignKeyAction::Cascade).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Approvals::Table)
                    .col(integer(Approvals::UnitId))
                    .col(string_len(Approvals::Period, 8))
                    .col(string(Approvals::ApprovedBy))
                    .col(timestamp_with_time_zone(Approvals::ApprovedAt))
                    .col(text(Approvals::Comment))
                    .primary_key(Index::create().col(Approvals::UnitId).col(Approvals::Period))
                    .foreign_key(&mut unit_foreign_key(Approvals::Table, Approvals::UnitId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PeriodLocks::Table)
                    .col(integer(PeriodLocks::UnitId))
                    .col(string_len(PeriodLocks::Period, 8))
                    .col(string(PeriodLocks::LockedBy))
                    .col(timestamp_with_time_zone(PeriodLocks::LockedAt))
                    .col(text(PeriodLocks::Comment))
                    .primary_key(Index::create().col(PeriodLocks::UnitId).col(PeriodLocks::Period))
                    .foreign_key(&mut unit_foreign_key(PeriodLocks::Table, PeriodLocks::UnitId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalEvents::Table)
                    .col(pk_auto(ApprovalEvents::Id))
                    .col(integer(ApprovalEvents::UnitId))
                    .col(string_len(ApprovalEvents::Period, 8))
                    // approved, unapproved, locked or unlocked.
                    .col(string_len(ApprovalEvents::Action, 16))
                    .col(string(ApprovalEvents::Actor))
                    .col(timestamp_with_time_zone(ApprovalEvents::At))
                    .col(text(ApprovalEvents::Comment))
                    .foreign_key(&mut unit_foreign_key(ApprovalEvents::Table, ApprovalEvents::UnitId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_approval_events_report")
                    .table(ApprovalEvents::Table)
                    .col(ApprovalEvents::UnitId)
                    .col(ApprovalEvents::Period)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalCounts::Table)
                    .col(integer(ApprovalCounts::UnitId))
                    .col(string_len(ApprovalCounts::Period, 8))
                    .col(big_integer(ApprovalCounts::Reports).default(0))
                    .col(big_integer(ApprovalCounts::Approved).default(0))
                    .primary_key(Index::create().col(ApprovalCounts::UnitId).col(ApprovalCounts::Period))
                    .foreign_key(&mut unit_foreign_key(ApprovalCounts::Table, ApprovalCounts::UnitId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ApprovalCounts::Table.into_iden(),
            ApprovalEvents::Table.into_iden(),
            PeriodLocks::Table.into_iden(),
            Approvals::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
