//! The errors of the store, classified so callers can tell "try later" from "your input"
//! from "our bug".

use sea_orm::DbErr;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out).
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] DbErr),
    #[error("database error: {0}")]
    Database(#[source] DbErr),
    #[error("cannot read catalog file {path}: {source}")]
    CatalogFile { path: String, source: std::io::Error },
    #[error(transparent)]
    Catalog(#[from] kpi_core::CatalogError),
    /// A catalog change that would orphan stored data.
    #[error("catalog change refused: {0}")]
    CatalogConflict(String),
    /// A code that the loaded catalog does not know.
    #[error("unknown {kind} {code}")]
    Unknown { kind: &'static str, code: String },
    /// A value in the database that cannot be what the schema promises.
    #[error("inconsistent data in the database: {0}")]
    Corrupt(String),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreError::Unavailable(error),
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// Whether retrying the same write may succeed: a concurrent writer won a race.
    pub(crate) fn is_write_conflict(&self) -> bool {
        let StoreError::Database(error) = self else { return false };
        if matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
            return true;
        }
        let message = error.to_string();
        ["database is locked", "deadlock detected", "could not serialize"].iter().any(|m| message.contains(m))
    }
}
