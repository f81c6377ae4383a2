//! Warm read connections for the one-statement reads that answer KPIs.
//!
//! sqlx returns a connection to its pool in a spawned task that pings it first, so a call
//! that is one statement (a KPI, a scorecard, a trend, a ranking) costs two round trips to
//! the driver (SQLite's worker thread or PostgreSQL's socket) and a task. Warm reads keep a
//! few connections checked out of the pool and take one back after a read that finished, so
//! the next read goes straight to the database. A read that failed or was cancelled drops
//! its connection into the pool's own return path, which checks it; a warm connection left
//! unused for a while goes the same way, so a broken one is found by the pool's checks.
//!
//! On an SQLite database file, a read of at most [`INLINE_ROWS`] rows skips sqlx altogether
//! and runs on the calling thread ([`crate::inline_reads`]).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::sea_query::Values;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, PgPool, Postgres, Sqlite, SqlitePool};
use sea_orm::{
    ConnAcquireErr, DatabaseConnection, DbBackend, DbErr, QueryResult, RuntimeErr, Statement, StatementBuilder,
};
use sea_query_sqlx::SqlxValues;

use crate::inline_reads::InlineReads;

/// The most rows a read may return to run inline on SQLite: a KPI, a unit's scorecard, a
/// trend or a province's ranking, which SQLite answers in microseconds. Larger reads go to
/// sqlx's worker thread, so they never hold a task's thread for long.
pub(crate) const INLINE_ROWS: usize = 512;

/// Connections kept warm: one serves reads one at a time; more serve a few at once, and
/// every connection kept is one the pool (10) cannot lend to writes or heavy calls.
const MAX_WARM: usize = 2;

/// A warm connection unused for longer goes back to the pool, which pings a connection idle
/// for long before lending it again.
const WARM_FOR: Duration = Duration::from_secs(5);

/// The pool that warm connections come from and go back to.
#[derive(Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One checked-out connection.
#[derive(Debug)]
enum Warm {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// The warm connections of one store, shared by its clones.
#[derive(Debug)]
pub(crate) struct WarmReads {
    pool: Pool,
    idle: Mutex<Vec<(Warm, Instant)>>,
    /// Reads of an SQLite database file; none for PostgreSQL or an in-memory database.
    inline: Option<InlineReads>,
}

/// One row of a read, from whichever driver ran it.
#[derive(Debug)]
pub(crate) enum ReadRow {
    Pooled(QueryResult),
    Inline(Vec<rusqlite::types::Value>),
}

impl ReadRow {
    /// The value of column `index`.
    pub(crate) fn get<T: ReadValue>(&self, index: usize) -> Result<T, DbErr> {
        match self {
            ReadRow::Pooled(row) => row.try_get_by_index(index),
            ReadRow::Inline(values) => values
                .get(index)
                .and_then(T::from_inline)
                .ok_or_else(|| DbErr::Type(format!("column {index} of an inline read: {:?}", values.get(index)))),
        }
    }
}

/// A column type that both drivers' rows give.
pub(crate) trait ReadValue: sea_orm::TryGetable + Sized {
    fn from_inline(value: &rusqlite::types::Value) -> Option<Self>;
}

impl ReadValue for i64 {
    fn from_inline(value: &rusqlite::types::Value) -> Option<Self> {
        match value {
            rusqlite::types::Value::Integer(v) => Some(*v),
            _ => None,
        }
    }
}

impl ReadValue for i32 {
    fn from_inline(value: &rusqlite::types::Value) -> Option<Self> {
        i64::from_inline(value).and_then(|v| i32::try_from(v).ok())
    }
}

impl ReadValue for String {
    fn from_inline(value: &rusqlite::types::Value) -> Option<Self> {
        match value {
            rusqlite::types::Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl ReadValue for Option<f64> {
    fn from_inline(value: &rusqlite::types::Value) -> Option<Self> {
        match value {
            rusqlite::types::Value::Null => Some(None),
            rusqlite::types::Value::Real(v) => Some(Some(*v)),
            // SQLite keeps a real with no fraction as it was written, an integer.
            rusqlite::types::Value::Integer(v) => Some(Some(*v as f64)),
            _ => None,
        }
    }
}

impl WarmReads {
    /// Warm reads over `db`'s pool, connected with `url`; `None` for a backend other than
    /// SQLite and PostgreSQL.
    pub(crate) fn new(db: &DatabaseConnection, url: &str) -> Option<WarmReads> {
        let (pool, inline) = match db.get_database_backend() {
            DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool().clone();
                let inline = sqlite_file(&pool, url).map(|path| InlineReads::new(&path));
                (Pool::Sqlite(pool), inline)
            }
            DbBackend::Postgres => (Pool::Postgres(db.get_postgres_connection_pool().clone()), None),
            _ => return None,
        };
        Some(WarmReads { pool, idle: Mutex::new(Vec::new()), inline })
    }

    /// Every row of `statement`, which returns at most `rows_at_most` rows: inline when it is
    /// small and the database is an SQLite file, otherwise on a warm connection when one is
    /// free.
    pub(crate) async fn query_all(
        &self,
        statement: &impl StatementBuilder,
        rows_at_most: usize,
    ) -> Result<Vec<ReadRow>, DbErr> {
        let backend = match self.pool {
            Pool::Sqlite(_) => DbBackend::Sqlite,
            Pool::Postgres(_) => DbBackend::Postgres,
        };
        let Statement { sql, values, .. } = statement.build(&backend);
        let values = values.unwrap_or_else(|| Values(Vec::new()));
        if let Some(inline) = self.inline.as_ref().filter(|_| rows_at_most <= INLINE_ROWS) {
            match inline.query_all(&sql, &values) {
                Ok(rows) => return Ok(rows.into_iter().map(ReadRow::Inline).collect()),
                // Inline reads only save time: whatever failed (a file this process may not
                // open read-only, a lock held longer than a moment), sqlx's pool runs the read,
                // and waits without holding the task's thread; its error is the one reported.
                Err(error) => inline.report_fallback(&error),
            }
        }
        let values = SqlxValues(values);
        let sql = sqlx::AssertSqlSafe(sql.as_str());
        let (rows, connection) = match self.take().await? {
            Warm::Sqlite(mut connection) => {
                let rows = sqlx::query_with(sql, values).fetch_all(&mut *connection).await.map_err(query_error)?;
                (rows.into_iter().map(|row| ReadRow::Pooled(row.into())).collect(), Warm::Sqlite(connection))
            }
            Warm::Postgres(mut connection) => {
                let rows = sqlx::query_with(sql, values).fetch_all(&mut *connection).await.map_err(query_error)?;
                (rows.into_iter().map(|row| ReadRow::Pooled(row.into())).collect(), Warm::Postgres(connection))
            }
        };
        self.give_back(connection);
        Ok(rows)
    }

    /// A warm connection used recently, or one from the pool.
    async fn take(&self) -> Result<Warm, DbErr> {
        let stale = {
            let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match idle.pop() {
                Some((warm, since)) if since.elapsed() < WARM_FOR => return Ok(warm),
                // The newest is stale, so all are: they go back to the pool, outside the lock.
                Some(stale) => std::iter::once(stale).chain(idle.drain(..)).collect::<Vec<_>>(),
                None => Vec::new(),
            }
        };
        drop(stale);
        match &self.pool {
            Pool::Sqlite(pool) => pool.acquire().await.map(Warm::Sqlite),
            Pool::Postgres(pool) => pool.acquire().await.map(Warm::Postgres),
        }
        .map_err(acquire_error)
    }

    /// Keeps `connection` warm after a finished read, unless enough are kept already.
    fn give_back(&self, connection: Warm) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_WARM {
            idle.push((connection, Instant::now()));
            return;
        }
        drop(idle);
        drop(connection);
    }
}

/// The absolute path of the file an SQLite pool opens; none for an in-memory database, which
/// another driver's connection could not see.
fn sqlite_file(pool: &SqlitePool, url: &str) -> Option<PathBuf> {
    let options = pool.connect_options();
    let path = options.get_filename();
    let in_memory = url.contains("mode=memory")
        || path.as_os_str() == ":memory:"
        || path.to_str().is_some_and(|name| name.starts_with("file:"));
    if in_memory { None } else { std::path::absolute(path).ok() }
}

/// A failed read as sea-orm reports one, so `StoreError` classifies it the same way.
fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(error.into()))
}

/// A failed checkout as sea-orm reports one.
fn acquire_error(error: sqlx::Error) -> DbErr {
    match error {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(other.into())),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    use sea_orm::{ConnectOptions, ConnectionTrait, Database};

    use super::*;

    async fn warm_reads() -> Result<WarmReads, Box<dyn std::error::Error>> {
        let url = "sqlite::memory:";
        let mut options = ConnectOptions::new(url);
        options.max_connections(4).min_connections(0).sqlx_logging(false);
        let db = Database::connect(options).await?;
        WarmReads::new(&db, url).ok_or_else(|| "no warm reads over SQLite".into())
    }

    fn kept(reads: &WarmReads) -> usize {
        reads.idle.lock().map(|idle| idle.len()).unwrap_or(usize::MAX)
    }

    fn answer() -> sea_orm::sea_query::SelectStatement {
        Query::select().expr(Expr::val(41).add(1)).to_owned()
    }

    fn column_0(rows: &[ReadRow]) -> Result<Vec<i32>, DbErr> {
        rows.iter().map(|row| row.get::<i32>(0)).collect()
    }

    #[tokio::test]
    async fn a_finished_read_keeps_its_connection_and_a_failed_one_gives_it_back()
    -> Result<(), Box<dyn std::error::Error>> {
        let reads = warm_reads().await?;
        assert!(reads.inline.is_none(), "an in-memory database is not a file another driver can open");
        let rows = reads.query_all(&answer(), 1).await?;
        assert_eq!(column_0(&rows)?, vec![42]);
        assert_eq!(kept(&reads), 1);
        reads.query_all(&answer(), 1).await?;
        assert_eq!(kept(&reads), 1, "the second read reused the warm connection");

        let failing = Query::select().from(Alias::new("no_such_table")).expr(Expr::val(1)).to_owned();
        assert!(reads.query_all(&failing, 1).await.is_err());
        assert_eq!(kept(&reads), 0, "a failed read's connection goes back through the pool");
        Ok(())
    }

    #[tokio::test]
    async fn at_most_the_bound_is_kept_and_stale_ones_go_back() -> Result<(), Box<dyn std::error::Error>> {
        let reads = warm_reads().await?;
        let taken = [reads.take().await?, reads.take().await?, reads.take().await?];
        taken.into_iter().for_each(|connection| reads.give_back(connection));
        assert_eq!(kept(&reads), MAX_WARM);

        if let Ok(mut idle) = reads.idle.lock() {
            idle.iter_mut().for_each(|(_, since)| *since = since.checked_sub(WARM_FOR).unwrap_or(*since));
        }
        reads.query_all(&Query::select().expr(Expr::val(1)).to_owned(), 1).await?;
        assert_eq!(kept(&reads), 1, "the stale ones went back to the pool and the read took a fresh one");
        Ok(())
    }

    /// On a database file, small reads run inline and large ones on the pool, with the same
    /// rows and types either way, and an inline read sees a write committed just before it.
    #[tokio::test]
    async fn small_reads_of_a_file_run_inline_and_see_every_commit() -> Result<(), Box<dyn std::error::Error>> {
        let folder = crate::test_support::temp_dir("inline-reads")?;
        let url = format!("sqlite://{}?mode=rwc", folder.join("reads.db").display());
        let db = Database::connect(ConnectOptions::new(url.as_str()).max_connections(4).sqlx_logging(false).to_owned())
            .await?;
        let reads = WarmReads::new(&db, &url).ok_or("no warm reads over SQLite")?;
        let inline = reads.inline.as_ref().ok_or("a database file gets inline reads")?;
        db.execute_unprepared("PRAGMA journal_mode = WAL").await?;
        db.execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL, label TEXT NOT NULL, share REAL)").await?;
        db.execute_unprepared("INSERT INTO t VALUES (7, 'bảy', NULL), (8, 'tám', 0.5), (9, 'chín', 2)").await?;

        let query = Query::select()
            .from(Alias::new("t"))
            .columns([Alias::new("n"), Alias::new("label"), Alias::new("share")])
            .and_where(Expr::col(Alias::new("n")).gte(8).or(Expr::col(Alias::new("label")).eq("bảy")))
            .order_by(Alias::new("n"), sea_orm::Order::Asc)
            .to_owned();
        let decode = |rows: Vec<ReadRow>| {
            rows.iter()
                .map(|row| Ok((row.get::<i64>(0)?, row.get::<String>(1)?, row.get::<Option<f64>>(2)?)))
                .collect::<Result<Vec<_>, DbErr>>()
        };
        let small = decode(reads.query_all(&query, INLINE_ROWS).await?)?;
        assert_eq!(inline.idle(), 1, "the small read ran inline");
        assert_eq!(kept(&reads), 0, "and took nothing from the pool");
        let large = decode(reads.query_all(&query, INLINE_ROWS + 1).await?)?;
        assert_eq!(kept(&reads), 1, "the large read ran on the pool");
        let expected =
            vec![(7, "bảy".to_owned(), None), (8, "tám".to_owned(), Some(0.5)), (9, "chín".to_owned(), Some(2.0))];
        assert_eq!(small, expected);
        assert_eq!(large, expected);

        db.execute_unprepared("UPDATE t SET label = 'mười' WHERE n = 9").await?;
        let after = decode(reads.query_all(&query, 3).await?)?;
        assert_eq!(after.last().map(|(_, label, _)| label.as_str()), Some("mười"));

        let failing = Query::select().from(Alias::new("no_such_table")).expr(Expr::val(1)).to_owned();
        assert!(reads.query_all(&failing, 1).await.is_err(), "the pool ran it again, and failed too");
        assert_eq!(inline.idle(), 0, "a failed inline read drops its connection");
        assert_eq!(column_0(&reads.query_all(&answer(), 1).await?)?, vec![42]);
        drop((reads, db));
        std::fs::remove_dir_all(&folder)?;
        Ok(())
    }

    /// A database file this process cannot open for inline reads still answers every read,
    /// through the pool.
    #[tokio::test]
    async fn reads_go_to_the_pool_when_the_file_cannot_be_opened_inline() -> Result<(), Box<dyn std::error::Error>> {
        let mut reads = warm_reads().await?;
        let folder = crate::test_support::temp_dir("inline-unopenable")?;
        reads.inline = Some(InlineReads::new(&folder.join("missing").join("reads.db")));
        assert_eq!(column_0(&reads.query_all(&answer(), 1).await?)?, vec![42]);
        assert_eq!(kept(&reads), 1, "the pool ran the small read");
        assert_eq!(reads.inline.as_ref().map(InlineReads::idle), Some(0));
        std::fs::remove_dir_all(&folder)?;
        Ok(())
    }
}
