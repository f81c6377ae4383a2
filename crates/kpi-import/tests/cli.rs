//! The `kpi-import` command line: exit codes, the JSON report, and a batch the database stops
//! midway. Runs on SQLite, or on PostgreSQL when TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use kpi_core::{Period, UnitCode};
use kpi_importer::template::demo_report;
use kpi_store::Store;
use kpi_store::test_support::TestDatabase;

fn catalog() -> kpi_core::Catalog {
    kpi_store::load_catalog_file(None).unwrap()
}

fn demo(unit: &str, year: i32) -> Vec<u8> {
    demo_report(&catalog(), &UnitCode::parse(unit).unwrap(), Period::Year(year)).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("kpi-import-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn command_line_exit_codes() {
    let db = TestDatabase::new().await;
    let dir = temp_dir("cli");
    let binary = env!("CARGO_BIN_EXE_kpi-import");
    let run = |args: &[&str]| {
        std::process::Command::new(binary)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env_remove("KPI_CATALOG")
            .output()
            .unwrap()
    };
    let demo = dir.join("demo");
    let output = run(&["demo-data", "-o", demo.to_str().unwrap(), "--years", "2023"]);
    assert!(output.status.success(), "{output:?}");
    let output = run(&["--lang", "en", "import", demo.to_str().unwrap(), "--dry-run"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a dry run on a fresh database: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json_path = dir.join("report.json");
    let output = run(&["--lang", "en", "import", demo.to_str().unwrap(), "--report-json", json_path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("[accepted]") && stdout.contains("Units still missing:"), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["files"][0]["status"], "accepted");

    let template_path = dir.join("t.xlsx");
    let output = run(&["template", "--unit", "bocbo", "--period", "2023S1", "-o", template_path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let bad = dir.join("bad.xlsx");
    std::fs::write(&bad, "").unwrap();
    let output = run(&["import", bad.to_str().unwrap(), "--dry-run"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("not_a_workbook"));

    assert_eq!(run(&["import", dir.join("nowhere").to_str().unwrap()]).status.code(), Some(2));
    assert_eq!(run(&["import"]).status.code(), Some(2), "usage error");
    let unreachable = std::process::Command::new(binary)
        .args(["import", demo.to_str().unwrap(), "--database-url", "postgres://kpi@127.0.0.1:1/none"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// Makes the database fail on the revision of one file, as if it went away mid-batch.
async fn fail_on_file(url: &str, file_name: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let sql = if url.starts_with("sqlite") {
        vec![format!(
            "CREATE TRIGGER outage BEFORE INSERT ON revisions WHEN NEW.file_name = '{file_name}' \
             BEGIN SELECT RAISE(ABORT, 'the database went away'); END"
        )]
    } else {
        vec![
            format!(
                "CREATE FUNCTION outage() RETURNS trigger AS $$ BEGIN IF NEW.file_name = '{file_name}' THEN \
                 RAISE EXCEPTION 'the database went away'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER outage BEFORE INSERT ON revisions FOR EACH ROW EXECUTE FUNCTION outage()".to_owned(),
        ]
    };
    for statement in sql {
        db.execute_unprepared(&statement).await.unwrap();
    }
}

#[tokio::test]
async fn a_batch_stopped_by_the_database_still_writes_its_report() {
    let db = TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.load_catalog(&catalog()).await.unwrap();
    fail_on_file(&db.url, "b-pnv.xlsx").await;
    let dir = temp_dir("outage");
    std::fs::write(dir.join("a-bocbo.xlsx"), demo("BOCBO", 2023)).unwrap();
    std::fs::write(dir.join("b-pnv.xlsx"), demo("PNV", 2023)).unwrap();
    std::fs::write(dir.join("c-colinh.xlsx"), demo("COLINH", 2023)).unwrap();
    std::fs::write(dir.join("d-broken.xlsx"), b"not a workbook").unwrap();
    let json_path = dir.join("report.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kpi-import"))
        .args(["--lang", "en", "import", dir.to_str().unwrap(), "--report-json", json_path.to_str().unwrap()])
        .env("DATABASE_URL", &db.url)
        .env_remove("KPI_CATALOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let statuses: Vec<(&str, &str)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().rsplit('/').next().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("a-bocbo.xlsx", "accepted"),
            ("b-pnv.xlsx", "not_stored"),
            ("c-colinh.xlsx", "not_stored"),
            ("d-broken.xlsx", "rejected")
        ]
    );
    assert!(json["stopped"].as_str().unwrap().contains("went away"), "{}", json["stopped"]);
    assert!(store.current_revision(&UnitCode::parse("BOCBO").unwrap(), Period::Year(2023)).await.unwrap().is_some());
    assert!(store.current_revision(&UnitCode::parse("COLINH").unwrap(), Period::Year(2023)).await.unwrap().is_none());
    std::fs::remove_dir_all(&dir).ok();
}
