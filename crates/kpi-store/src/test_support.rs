//! A fresh database per test: a SQLite file by default, or a new PostgreSQL database when
//! `TEST_DATABASE_URL` is set, so the same suite covers both backends and tests run in
//! parallel without seeing each other's data. Also the seeded generator the property and
//! fuzz tests share, and their environment knobs.

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

/// Sets when every revision of `unit`'s report for `period` was imported (and so when the
/// report first came), as if the files had come at `at`: timeliness tests judge known import
/// times.
pub async fn set_imported_at(url: &str, unit: &str, period: &str, at: chrono::DateTime<chrono::Utc>) {
    use sea_orm::{DbBackend, Statement};
    let db = Database::connect(url).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    let backend = db.get_database_backend();
    let placeholders = if backend == DbBackend::Postgres { ["$1", "$2", "$3"] } else { ["?", "?", "?"] };
    let sql = format!(
        "UPDATE revisions SET imported_at = {} WHERE report_id IN (SELECT reports.id FROM reports \
         JOIN units ON units.id = reports.unit_id WHERE units.code = {} AND reports.period = {})",
        placeholders[0], placeholders[1], placeholders[2]
    );
    let statement = Statement::from_sql_and_values(backend, sql, [at.into(), unit.into(), period.into()]);
    let updated = db.execute_raw(statement).await.unwrap_or_else(|e| panic!("cannot set imported_at: {e}"));
    assert!(updated.rows_affected() > 0, "no revision of {unit} {period} to date");
    let sql = format!(
        "UPDATE reports SET first_accepted_at = {} WHERE unit_id IN (SELECT id FROM units WHERE code = {}) \
         AND period = {}",
        placeholders[0], placeholders[1], placeholders[2]
    );
    let statement = Statement::from_sql_and_values(backend, sql, [at.into(), unit.into(), period.into()]);
    db.execute_raw(statement).await.unwrap_or_else(|e| panic!("cannot set first_accepted_at: {e}"));
    db.close().await.ok();
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

/// splitmix64: a tiny, well-mixed, seedable generator, so a property or fuzz run is the same
/// run on every machine for a given seed.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A new empty folder for one test, unique across test processes and within one.
pub fn temp_dir(name: &str) -> std::io::Result<std::path::PathBuf> {
    static NEXT_FOLDER: AtomicU32 = AtomicU32::new(0);
    let serial = NEXT_FOLDER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("kpi-{name}-{}-{serial}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A number from the environment (`KPI_FUZZ_CASES`, `KPI_PROPERTY_SEED`, …), or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
