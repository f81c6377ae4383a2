//! Schema migrations of the KPI tracker.
//!
//! Migrations describe tables with sea-query's portable builders and never import entity
//! types, so an old migration keeps meaning what it meant when entities change, and every
//! migration runs unchanged on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_schema;
mod m20261127_000001_create_kpi_totals;
mod m20261128_000001_create_approvals;
mod m20261128_000002_add_report_first_accepted;
mod m20261128_000003_create_data_issues;
mod m20261128_000004_unbind_kpi_totals;

/// The ordered list of migrations; `Migrator::up` applies the ones a database lacks.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_schema::Migration),
            Box::new(m20261127_000001_create_kpi_totals::Migration),
            Box::new(m20261128_000001_create_approvals::Migration),
            Box::new(m20261128_000002_add_report_first_accepted::Migration),
            Box::new(m20261128_000003_create_data_issues::Migration),
            Box::new(m20261128_000004_unbind_kpi_totals::Migration),
        ]
    }
}
