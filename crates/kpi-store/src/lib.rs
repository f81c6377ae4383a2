//! Persistence of the KPI tracker: connecting to SQLite or PostgreSQL, migrating, loading the
//! catalog, writing imported revisions atomically, and answering the KPI queries.
//!
//! Every public method takes and returns domain types from `kpi-core`; sea-orm entities stay
//! inside this crate.

mod approvals;
mod batches;
mod catalog_sync;
mod connection;
mod entity;
mod error;
mod inline_reads;
mod kpis;
mod overlapped;
mod quality;
mod revisions;
mod rows_insert;
mod snapshot;
mod sql;
mod state;
#[cfg(feature = "test-support")]
pub mod test_support;
mod timeliness;
mod totals;
mod warm_reads;
mod write_group;

pub use approvals::{ApprovalAction, ApprovalEvent, ApprovalStatus, Freeze, PeriodLock, Stamp};
pub use catalog_sync::CatalogChanges;
pub use connection::{DEFAULT_DATABASE_URL, HealthProbe, Store};
pub use error::StoreError;
pub use kpis::Kpi;
pub use quality::{DataIssue, IssueKind, IssueStatus, NewDataIssue, QualityContext, Severity};
pub use revisions::{CurrentRevision, NewRevision, NewValue, RevisionInfo, StoredIssue, WriteOutcome};
pub use snapshot::{IndicatorInfo, Snapshot, UnitInfo};
pub use timeliness::{Completeness, UnitRates, UnitTimeliness};

/// The catalog shipped with the programs: Resolution 09-NQ/HU of the Pác Nặm district.
pub const SHIPPED_CATALOG: &str = include_str!("../../../catalog/pac-nam-09-nq-hu.toml");

/// Reads the catalog file at `path`, or the shipped one when `path` is `None`.
pub fn load_catalog_file(path: Option<&std::path::Path>) -> Result<kpi_core::Catalog, StoreError> {
    Ok(kpi_core::Catalog::from_toml(&read_catalog_text(path)?)?)
}

/// The TOML text of the catalog file at `path`, or of the shipped one when `path` is `None`,
/// for [`Store::load_catalog_text`].
pub fn read_catalog_text(path: Option<&std::path::Path>) -> Result<String, StoreError> {
    match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| StoreError::CatalogFile { path: path.display().to_string(), source }),
        None => Ok(SHIPPED_CATALOG.to_owned()),
    }
}
