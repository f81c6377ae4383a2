//! The errors of the store, classified so callers can tell "try later" from "your input"
//! from "our bug".

use sea_orm::{DbErr, RuntimeErr, sqlx};

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
    /// A change the stored state does not allow now, such as approving a report that was
    /// never imported or unlocking a period that is not locked.
    #[error("{0}")]
    Precondition(String),
    /// A value in the database that cannot be what the schema promises.
    #[error("inconsistent data in the database: {0}")]
    Corrupt(String),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if is_unavailable(&error) { StoreError::Unavailable(error) } else { StoreError::Database(error) }
    }
}

/// Whether the database could not be reached or dropped the connection, as opposed to
/// refusing a statement: no connection from the pool, a broken socket, or PostgreSQL's
/// connection-exception (08) and operator-intervention (57P) classes.
fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(source)) | DbErr::Query(RuntimeErr::SqlxError(source)) => {
            match source.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(database) => {
                    database.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P"))
                }
                _ => false,
            }
        }
        _ => false,
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
