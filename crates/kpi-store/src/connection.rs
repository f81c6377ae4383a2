//! Connecting to the database, tuned for a server, and migrating it on start.

use std::sync::Arc;
use std::time::Duration;

use kpi_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tokio::sync::RwLock;

use crate::error::StoreError;
use crate::snapshot::CachedSnapshot;
use crate::warm_reads::WarmReads;

/// The embedded default shared by the server and the importer: a SQLite file in the working
/// directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kpi.db?mode=rwc";

/// Key of the PostgreSQL advisory lock that serialises migrations and catalog loads across
/// replicas starting at once.
pub(crate) const SCHEMA_LOCK_KEY: i64 = 0x6b70_6930_3921;

/// How long a call waits for a pooled connection by default.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a pooled connection may sit idle before it is pinged on checkout.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(30);

/// A handle on the database; cheap to clone and shared by all requests.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) snapshot: Arc<RwLock<Option<CachedSnapshot>>>,
    /// The connections kept out of the pool for the reads that answer KPIs.
    pub(crate) reads: Arc<WarmReads>,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
    ///
    /// SQLite runs in WAL mode with a busy timeout and foreign keys on, behind a pool of several
    /// connections (sea-orm would otherwise use one), so readers never wait for a writer.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// [`Store::connect`], waiting at most `acquire_timeout` for a pooled connection: while
    /// the database is down, a call fails as UNAVAILABLE after that long, before a client's
    /// own deadline.
    pub async fn connect_with(url: &str, acquire_timeout: Duration) -> Result<Store, StoreError> {
        let mut options = ConnectOptions::new(without_loopback_tls(url));
        options
            .max_connections(10)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(acquire_timeout)
            // Pinging every checkout doubled the round trips of a one-query call (a KPI); a
            // connection idle long enough to have been dropped is still pinged first.
            .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            options.map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(15))
                    .foreign_keys(true)
            });
        }
        let db = Database::connect(options).await?;
        let reads = WarmReads::new(&db, url).ok_or_else(|| {
            StoreError::Precondition("the database URL names a backend other than SQLite or PostgreSQL".into())
        })?;
        let store = Store { db, snapshot: Arc::new(RwLock::new(None)), reads: Arc::new(reads) };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let transaction = self.db.begin().await?;
            transaction
                .execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"),
                ))
                .await?;
            Migrator::up(&transaction, None).await?;
            transaction.commit().await?;
        } else {
            Migrator::up(&self.db, None).await?;
        }
        Ok(())
    }

    /// How many write transactions are worth running at once. PostgreSQL runs each on a
    /// backend process of its own, so a second transaction's statements use another core
    /// while the first's run (writers of one unit still take turns on its row's lock); SQLite
    /// has one writer, and a second transaction would only wait for it.
    pub fn write_lanes(&self) -> usize {
        match self.db.get_database_backend() {
            DbBackend::Postgres => 2,
            _ => 1,
        }
    }

    /// Which backend this store talks to, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Postgres => "postgresql",
            DbBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }
}

/// `url` with `sslmode=disable` added when it names a PostgreSQL server on this machine
/// without an `sslmode` of its own. TLS to loopback protects nothing, and it is not free: the
/// driver's TLS writes a large statement as several records, and the last, small segment
/// waits for the server's delayed ACK (Nagle's algorithm), 40 ms a statement; a national
/// import took 33 s instead of 11.5 s. A remote server keeps the driver's default (`prefer`),
/// and any `sslmode` in the URL is kept as written.
fn without_loopback_tls(url: &str) -> String {
    let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) else {
        return url.to_owned();
    };
    if url.contains("sslmode=") {
        return url.to_owned();
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// A connection of its own for health checks, so a pool busy with slow calls (or exhausted by
/// them) never delays or fakes the answer.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    db: DatabaseConnection,
}

impl HealthProbe {
    /// Opens the probe's one connection to `url`, lazily: it connects on the first ping.
    pub async fn connect(url: &str) -> Result<HealthProbe, StoreError> {
        let mut options = ConnectOptions::new(without_loopback_tls(url));
        options
            .max_connections(1)
            .min_connections(0)
            .connect_lazy(true)
            .connect_timeout(Duration::from_secs(1))
            .acquire_timeout(Duration::from_secs(1))
            .sqlx_logging(false);
        Ok(HealthProbe { db: Database::connect(options).await? })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }
}

#[cfg(test)]
mod url_tests {
    use super::without_loopback_tls;

    #[test]
    fn only_loopback_postgres_urls_without_an_sslmode_lose_tls() {
        assert_eq!(
            without_loopback_tls("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
        );
        assert_eq!(
            without_loopback_tls("postgresql://u:p@localhost/db?application_name=kpi"),
            "postgresql://u:p@localhost/db?application_name=kpi&sslmode=disable"
        );
        assert_eq!(without_loopback_tls("postgres://u@[::1]:5432/db"), "postgres://u@[::1]:5432/db?sslmode=disable");
        for kept in [
            "postgres://u@db.example.vn/kpi",
            "postgres://u@10.0.0.5:5432/kpi",
            "postgres://u@127.0.0.1/kpi?sslmode=require",
            "sqlite://kpi.db?mode=rwc",
        ] {
            assert_eq!(without_loopback_tls(kept), kept);
        }
    }
}

#[cfg(all(test, feature = "test-support"))]
mod tests {
    use super::*;
    use crate::test_support::TestDatabase;

    async fn query_text(db: &DatabaseConnection, sql: &str) -> Option<String> {
        let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.ok()??;
        row.try_get_by_index::<String>(0).ok()
    }

    /// `sslmode` in a PostgreSQL URL is honoured (sqlx with rustls): with `require`, the
    /// store's connections are encrypted. Runs when `TEST_DATABASE_URL` names a server that
    /// has TLS on.
    #[tokio::test]
    async fn a_postgres_url_may_require_tls() -> Result<(), StoreError> {
        let database = TestDatabase::new().await;
        if !database.url.starts_with("postgres") {
            return Ok(());
        }
        let plain = Store::connect(&database.url).await?;
        if query_text(&plain.db, "SHOW ssl").await.as_deref() != Some("on") {
            eprintln!("skipped: this PostgreSQL server has TLS off");
            return Ok(());
        }
        let separator = if database.url.contains('?') { '&' } else { '?' };
        let store = Store::connect(&format!("{}{separator}sslmode=require", database.url)).await?;
        let protocol =
            query_text(&store.db, "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl").await;
        assert!(protocol.as_deref().is_some_and(|version| version.starts_with("TLS")), "{protocol:?}");
        plain.db.close().await.ok();
        store.db.close().await.ok();
        Ok(())
    }
}
