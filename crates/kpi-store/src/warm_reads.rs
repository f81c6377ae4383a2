//! Warm read connections for the one-statement reads that answer KPIs.
//!
//! sqlx returns a connection to its pool in a spawned task that pings it first, so a call
//! that is one statement (a KPI, a scorecard, a trend, a ranking) costs two round trips to
//! the driver (SQLite's worker thread or PostgreSQL's socket) and a task. Warm reads keep a
//! few connections checked out of the pool and take one back after a read that finished, so
//! the next read goes straight to the database. A read that failed or was cancelled drops
//! its connection into the pool's own return path, which checks it; a warm connection left
//! unused for a while goes the same way, so a broken one is found by the pool's checks.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::sea_query::Values;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, PgPool, Postgres, Sqlite, SqlitePool};
use sea_orm::{
    ConnAcquireErr, DatabaseConnection, DbBackend, DbErr, QueryResult, RuntimeErr, Statement, StatementBuilder,
};
use sea_query_sqlx::SqlxValues;

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
}

impl WarmReads {
    /// Warm reads over `db`'s pool; `None` for a backend other than SQLite and PostgreSQL.
    pub(crate) fn new(db: &DatabaseConnection) -> Option<WarmReads> {
        let pool = match db.get_database_backend() {
            DbBackend::Sqlite => Pool::Sqlite(db.get_sqlite_connection_pool().clone()),
            DbBackend::Postgres => Pool::Postgres(db.get_postgres_connection_pool().clone()),
            _ => return None,
        };
        Some(WarmReads { pool, idle: Mutex::new(Vec::new()) })
    }

    /// Every row of `statement`, on a warm connection when one is free.
    pub(crate) async fn query_all(&self, statement: &impl StatementBuilder) -> Result<Vec<QueryResult>, DbErr> {
        let backend = match self.pool {
            Pool::Sqlite(_) => DbBackend::Sqlite,
            Pool::Postgres(_) => DbBackend::Postgres,
        };
        let Statement { sql, values, .. } = statement.build(&backend);
        let values = SqlxValues(values.unwrap_or_else(|| Values(Vec::new())));
        let sql = sqlx::AssertSqlSafe(sql.as_str());
        let (rows, connection) = match self.take().await? {
            Warm::Sqlite(mut connection) => {
                let rows = sqlx::query_with(sql, values).fetch_all(&mut *connection).await.map_err(query_error)?;
                (rows.into_iter().map(QueryResult::from).collect(), Warm::Sqlite(connection))
            }
            Warm::Postgres(mut connection) => {
                let rows = sqlx::query_with(sql, values).fetch_all(&mut *connection).await.map_err(query_error)?;
                (rows.into_iter().map(QueryResult::from).collect(), Warm::Postgres(connection))
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
    use sea_orm::{ConnectOptions, Database};

    use super::*;

    async fn warm_reads() -> Result<WarmReads, Box<dyn std::error::Error>> {
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(4).min_connections(0).sqlx_logging(false);
        let db = Database::connect(options).await?;
        WarmReads::new(&db).ok_or_else(|| "no warm reads over SQLite".into())
    }

    fn kept(reads: &WarmReads) -> usize {
        reads.idle.lock().map(|idle| idle.len()).unwrap_or(usize::MAX)
    }

    #[tokio::test]
    async fn a_finished_read_keeps_its_connection_and_a_failed_one_gives_it_back()
    -> Result<(), Box<dyn std::error::Error>> {
        let reads = warm_reads().await?;
        let one = Query::select().expr(Expr::val(41).add(1)).to_owned();
        let rows = reads.query_all(&one).await?;
        assert_eq!(rows.iter().map(|row| row.try_get_by_index::<i32>(0)).collect::<Result<Vec<_>, _>>()?, vec![42]);
        assert_eq!(kept(&reads), 1);
        reads.query_all(&one).await?;
        assert_eq!(kept(&reads), 1, "the second read reused the warm connection");

        let failing = Query::select().from(Alias::new("no_such_table")).expr(Expr::val(1)).to_owned();
        assert!(reads.query_all(&failing).await.is_err());
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
        reads.query_all(&Query::select().expr(Expr::val(1)).to_owned()).await?;
        assert_eq!(kept(&reads), 1, "the stale ones went back to the pool and the read took a fresh one");
        Ok(())
    }
}
