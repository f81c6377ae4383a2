//! Small SQLite reads run on the calling task's own thread, through rusqlite.
//!
//! sqlx runs every SQLite statement on a worker thread of its connection, and hands the
//! statement there and each result back through channels: two thread wake-ups per statement
//! at least. On a one-KPI call those wake-ups cost more server CPU than SQLite's own work and
//! the rest of the call together (GetKpi took 2.9–3.7× the health check's CPU). A read of a
//! few indexed rows takes SQLite microseconds, less than a thread wake-up, so it runs here
//! directly instead, on read-only connections of our own to the same database file.
//!
//! Such a read sees every committed write at once, like sqlx's connections: in WAL mode each
//! statement outside a transaction reads the latest commit. Only reads the caller bounds as
//! small come here ([`crate::warm_reads::INLINE_ROWS`]), and a read waits at most
//! [`BUSY_TIMEOUT`] for a lock, so a task's thread is never held for long; a read that fails
//! here is run by sqlx's pool instead.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::types::Value as SqliteValue;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use sea_orm::sea_query::{Value, Values};
use sea_orm::{DbErr, RuntimeErr};

/// Idle connections kept for the next reads; a read that finds none opens one.
const MAX_IDLE: usize = 4;

/// How long an inline read waits for a lock before the pool takes it over. In WAL mode a
/// reader waits only in rare moments (a checkpoint restarting the log, recovery after a
/// crash); the pool's connections wait longer, without holding a thread.
const BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// Prepared statements kept per connection: the totals' reads differ only in how many
/// units, indicators and periods they name.
const STATEMENT_CACHE: usize = 64;

/// Read-only connections to one SQLite database file.
#[derive(Debug)]
pub(crate) struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Whether a read that fell back to the pool was logged as a warning already.
    warned: AtomicBool,
}

impl InlineReads {
    /// Inline reads of the database file `path`. Nothing is opened until the first read.
    pub(crate) fn new(path: &Path) -> InlineReads {
        InlineReads { path: path.to_owned(), idle: Mutex::new(Vec::new()), warned: AtomicBool::new(false) }
    }

    /// Every row of `sql` with `values` bound, each row's columns in order.
    pub(crate) fn query_all(&self, sql: &str, values: &Values) -> Result<Vec<Vec<SqliteValue>>, DbErr> {
        let parameters = values.0.iter().map(bindable).collect::<Result<Vec<_>, _>>()?;
        let connection = self.take()?;
        let rows = read(&connection, sql, parameters).map_err(query_error)?;
        // A connection whose read failed is dropped, not kept: it may be what failed.
        self.give_back(connection);
        Ok(rows)
    }

    /// Logs that a read failed here and goes to the pool: the first time as a warning (every
    /// small read may be paying the slower way), then at debug level.
    pub(crate) fn report_fallback(&self, error: &DbErr) {
        if self.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(%error, "an inline SQLite read failed; the pool runs it");
        } else {
            tracing::warn!(%error, path = %self.path.display(), "an inline SQLite read failed; the pool runs it");
        }
    }

    fn take(&self) -> Result<Connection, DbErr> {
        if let Some(connection) = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop() {
            return Ok(connection);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags).map_err(connection_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(connection_error)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(usize::MAX)
    }
}

fn read(connection: &Connection, sql: &str, parameters: Vec<SqliteValue>) -> rusqlite::Result<Vec<Vec<SqliteValue>>> {
    let mut statement = connection.prepare_cached(sql)?;
    let width = statement.column_count();
    let mut rows = statement.query(params_from_iter(parameters))?;
    let mut read = Vec::new();
    while let Some(row) = rows.next()? {
        read.push((0..width).map(|column| row.get::<_, SqliteValue>(column)).collect::<Result<Vec<_>, _>>()?);
    }
    Ok(read)
}

/// `value` as SQLite stores it; the reads that come here bind integers, reals and text.
fn bindable(value: &Value) -> Result<SqliteValue, DbErr> {
    Ok(match value {
        Value::Bool(v) => v.map_or(SqliteValue::Null, |v| SqliteValue::Integer(i64::from(v))),
        Value::Int(v) => v.map_or(SqliteValue::Null, |v| SqliteValue::Integer(i64::from(v))),
        Value::BigInt(v) => v.map_or(SqliteValue::Null, SqliteValue::Integer),
        Value::Double(v) => v.map_or(SqliteValue::Null, SqliteValue::Real),
        Value::String(v) => v.clone().map_or(SqliteValue::Null, SqliteValue::Text),
        other => return Err(DbErr::Type(format!("an inline read cannot bind {other:?}"))),
    })
}

/// A failed read as sea-orm reports one, so `StoreError` classifies it as it does sqlx's.
fn query_error(error: rusqlite::Error) -> DbErr {
    DbErr::Query(RuntimeErr::Internal(format!("inline SQLite read: {error}")))
}

fn connection_error(error: rusqlite::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(format!("inline SQLite connection: {error}")))
}
