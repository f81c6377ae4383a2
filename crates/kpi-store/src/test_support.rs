//! A fresh database per test: a SQLite file by default, or a new PostgreSQL database when
//! `TEST_DATABASE_URL` is set, so the same suite covers both backends and tests run in
//! parallel without seeing each other's data.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::{ConnectionTrait, Database};

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// A database that exists for one test, removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL to connect to.
    pub url: String,
    sqlite_file: Option<std::path::PathBuf>,
    /// For PostgreSQL: the server URL it was created through, and its name.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates the database. Panics when it cannot: a test without its database cannot run.
    pub async fn new() -> TestDatabase {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
        let name = format!("kpi_test_{}_{}_{nanos}", std::process::id(), NEXT_DATABASE.fetch_add(1, Ordering::Relaxed));
        match std::env::var("TEST_DATABASE_URL") {
            Ok(base_url) if !base_url.is_empty() => {
                let admin = Database::connect(&base_url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL {base_url}: {e}"));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                admin.close().await.ok();
                TestDatabase {
                    url: replace_database_name(&base_url, &name),
                    sqlite_file: None,
                    postgres: Some((base_url, name)),
                }
            }
            _ => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDatabase {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    sqlite_file: Some(path),
                    postgres: None,
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(path) = &self.sqlite_file {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                std::fs::remove_file(file).ok();
            }
        }
        if let Some((base_url, name)) = self.postgres.take() {
            // Drop cannot await, and may run inside a runtime: drop the database from a thread
            // with its own. FORCE ends the connections a test left open.
            let dropping = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async {
                    let admin = Database::connect(&base_url).await.ok()?;
                    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok()?;
                    admin.close().await.ok()
                })
            });
            dropping.join().ok();
        }
    }
}

/// `postgres://user@host:5432/test?x=y` with the database `name` instead of `test`.
fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}
