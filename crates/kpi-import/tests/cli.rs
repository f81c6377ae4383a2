//! The `kpi-import` command line: exit codes, the JSON report, and a batch the database stops
//! midway. Runs on SQLite, or on PostgreSQL when TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

#[tokio::test]
async fn command_line_exit_codes() {
    let db = TestDatabase::new().await;
    let dir = kpi_store::test_support::temp_dir("cli").unwrap();
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
    let dir = kpi_store::test_support::temp_dir("outage").unwrap();
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
    // The failing statement takes its whole group (here, every file) back: nothing of it is
    // reported stored, and nothing of it is.
    assert_eq!(
        statuses,
        vec![
            ("a-bocbo.xlsx", "not_stored"),
            ("b-pnv.xlsx", "not_stored"),
            ("c-colinh.xlsx", "not_stored"),
            ("d-broken.xlsx", "rejected")
        ]
    );
    assert!(json["stopped"].as_str().unwrap().contains("went away"), "{}", json["stopped"]);
    assert!(store.current_revision(&UnitCode::parse("BOCBO").unwrap(), Period::Year(2023)).await.unwrap().is_none());
    assert!(store.current_revision(&UnitCode::parse("COLINH").unwrap(), Period::Year(2023)).await.unwrap().is_none());
    std::fs::remove_dir_all(&dir).ok();
}

/// Every invariant the store promises, read back: exactly one current revision per report,
/// the one it points at; every revision holds its whole file; and the maintained totals equal
/// kpi-core's aggregation of the current figures.
async fn assert_invariants(store: &Store, url: &str, years: &[i32]) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let one = |sql: &str| {
        let sql = sql.to_owned();
        let db = &db;
        async move {
            let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
            row.unwrap().try_get_by_index::<i64>(0).unwrap()
        }
    };
    let broken_pointers = one("SELECT COUNT(*) FROM reports r LEFT JOIN revisions v ON v.id = r.current_revision_id \
         WHERE r.current_revision_id IS NOT NULL AND (v.id IS NULL OR v.status <> 'current' OR v.report_id <> r.id)")
    .await;
    assert_eq!(broken_pointers, 0, "every report points at its current revision");
    let many_current = one("SELECT COUNT(*) FROM (SELECT report_id FROM revisions WHERE status = 'current' \
         GROUP BY report_id HAVING COUNT(*) <> 1) t")
    .await;
    assert_eq!(many_current, 0, "exactly one current revision per report");
    let partial = one(
        "SELECT COUNT(*) FROM revisions v WHERE (SELECT COUNT(*) FROM report_values x WHERE x.revision_id = v.id) = 0",
    )
    .await;
    assert_eq!(partial, 0, "no revision without its figures");

    let catalog = catalog();
    let tree = kpi_core::UnitTree::new(catalog.units.iter().map(|u| (u.code.clone(), u.parent.clone())));
    let root = catalog.units.iter().find(|u| u.parent.is_none()).unwrap().code.clone();
    for &year in years {
        let period = Period::Year(year);
        let mut figures: std::collections::HashMap<kpi_core::IndicatorCode, Vec<(UnitCode, kpi_core::Figure)>> =
            Default::default();
        for unit in tree.subtree(&root) {
            for (indicator, figure) in store.current_figures(&unit, period).await.unwrap() {
                figures.entry(indicator).or_default().push((unit.clone(), figure));
            }
        }
        let codes: Vec<kpi_core::IndicatorCode> = catalog.indicators.iter().map(|i| i.code.clone()).collect();
        for kpi in store.kpis(&root, &codes, &[period]).await.unwrap() {
            let definition = catalog.indicators.iter().find(|i| i.code == kpi.indicator).unwrap();
            let expected = kpi_core::aggregate::aggregate_units(
                definition.kind,
                definition.reported_by.as_ref(),
                figures.remove(&kpi.indicator).unwrap_or_default(),
            );
            assert_eq!(
                (kpi.figure, kpi.reporting_units),
                (expected.figure, expected.reporting_units),
                "{}",
                kpi.indicator
            );
        }
    }
}

/// How many reports of `years` are stored.
async fn reports_stored(store: &Store, years: &[i32]) -> usize {
    let expected = catalog().units.iter().filter(|u| !u.reports.is_empty()).count();
    let mut stored = 0;
    for &year in years {
        stored += expected - store.missing_units(Period::Year(year)).await.unwrap().len();
    }
    stored
}

/// `kpi-import import DIR` against `url`, its output discarded.
fn spawn_import(dir: &std::path::Path, url: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_kpi-import"))
        .args(["import", dir.to_str().unwrap(), "--jobs", "2"])
        .env("DATABASE_URL", url)
        .env_remove("KPI_CATALOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A `kill -9` at any moment of an import keeps every invariant: no partial file, exactly one
/// current revision, totals in step; and importing again completes the batch. Each kill hits
/// a fresh database at a later moment, sweeping start-up, parsing and storing.
#[tokio::test]
async fn a_killed_import_keeps_every_invariant() {
    let dir = kpi_store::test_support::temp_dir("kill").unwrap();
    let years = [2021, 2022, 2023, 2024];
    kpi_importer::template::write_demo_data(&catalog(), &dir, &years).unwrap();
    let mut outcomes = Vec::new();
    for delay_ms in (0..24).map(|step| step * 15) {
        let db = TestDatabase::new().await;
        let store = Store::connect(&db.url).await.unwrap();
        store.load_catalog(&catalog()).await.unwrap();
        let mut child = spawn_import(&dir, &db.url);
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        assert_invariants(&store, &db.url, &years).await;
        outcomes.push((delay_ms, reports_stored(&store, &years).await));
        if delay_ms % 120 == 60 {
            // Importing again after a kill completes the batch.
            assert_eq!(spawn_import(&dir, &db.url).wait().unwrap().code(), Some(0));
            assert_invariants(&store, &db.url, &years).await;
            assert_eq!(reports_stored(&store, &years).await, 52);
        }
    }
    eprintln!("(kill after ms, reports stored): {outcomes:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn approval_from_the_command_line_refuses_then_allows_an_import() {
    let db = TestDatabase::new().await;
    let dir = kpi_store::test_support::temp_dir("cli-approval").unwrap();
    let binary = env!("CARGO_BIN_EXE_kpi-import");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(binary)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env_remove("KPI_CATALOG")
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let first = dir.join("bocbo-2024.xlsx");
    std::fs::write(&first, demo("BOCBO", 2024)).unwrap();
    let corrected = dir.join("bocbo-2024-v2.xlsx");
    std::fs::write(&corrected, demo("BOCBO", 2024).into_iter().chain(std::iter::once(0)).collect::<Vec<u8>>()).unwrap();
    let (code, stdout) = run(&["--lang", "en", "import", first.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}");
    // The summary judges the period's timeliness today: long past 2024's deadline.
    assert!(stdout.contains("Timeliness 2024") && stdout.contains("1/13 units reported"), "{stdout}");
    assert!(stdout.contains("overdue (due 2024-12-17, ") && stdout.contains("late): BANGTHANH, NHANMON"), "{stdout}");

    let approve = ["--lang", "en", "approval", "approve", "--unit", "BOCBO", "--period", "2024", "--by", "chu.tich"];
    let (code, stdout) = run(&approve);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("BOCBO 2024: approved (chu.tich"), "{stdout}");

    let json_path = dir.join("refused.json");
    let (code, stdout) =
        run(&["--lang", "en", "import", corrected.to_str().unwrap(), "--report-json", json_path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["files"][0]["errors"][0]["code"], "period_approved");
    assert!(json["files"][0]["errors"][0]["message"].as_str().unwrap().contains("chu.tich"));

    let unapprove = ["approval", "unapprove", "--unit", "BOCBO", "--period", "2024", "--by", "pho.chu.tich"];
    let (code, _) = run(&[&unapprove[..], &["--reason", " "]].concat());
    assert_eq!(code, Some(2), "a reason is required");
    let (code, stdout) = run(&[&unapprove[..], &["--reason", "Sai số đảng viên"]].concat());
    assert_eq!(code, Some(0), "{stdout}");
    let (code, stdout) = run(&["--lang", "en", "import", corrected.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("[revised]"), "{stdout}");

    let (_, stdout) = run(&["--lang", "en", "approval", "status", "--unit", "BOCBO", "--period", "2024"]);
    assert!(stdout.contains("not approved"), "{stdout}");
    assert!(stdout.contains("approved BOCBO 2024 chu.tich"), "{stdout}");
    assert!(stdout.contains("unapproved BOCBO 2024 pho.chu.tich: Sai số đảng viên"), "{stdout}");

    let (code, stdout) =
        run(&["--lang", "en", "overdue", "--parent", "PACNAM", "--period", "2024", "--as-of", "2024-12-20"]);
    assert_eq!(code, Some(0), "{stdout}");
    // Due Tuesday 17 December 2024; Friday 20 December is three working days later.
    assert!(stdout.contains("Units below PACNAM overdue for 2024 (as of 2024-12-20): 12"), "{stdout}");
    assert!(stdout.contains("BANGTHANH Xã Bằng Thành: due 2024-12-17, 3 working days late"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A batch whose spill folder cannot be written stops before storing anything, says where,
/// and still reports every file as `not_stored`.
#[tokio::test]
async fn a_batch_without_a_writable_spill_folder_stops_cleanly() {
    let db = TestDatabase::new().await;
    let dir = kpi_store::test_support::temp_dir("no-spill").unwrap();
    std::fs::write(dir.join("a-bocbo.xlsx"), demo("BOCBO", 2023)).unwrap();
    let json_path = dir.join("report.json");
    let missing = dir.join("no-such-folder");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kpi-import"))
        .args(["--lang", "en", "import", dir.to_str().unwrap(), "--report-json", json_path.to_str().unwrap()])
        .env("DATABASE_URL", &db.url)
        .env("TMPDIR", &missing)
        .env_remove("KPI_CATALOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["files"][0]["status"], "not_stored", "{json}");
    let stopped = json["stopped"].as_str().unwrap_or_default();
    assert!(stopped.contains("spill") && stopped.contains("no-such-folder"), "{stopped}");
    let store = Store::connect(&db.url).await.unwrap();
    assert!(store.current_revision(&UnitCode::parse("BOCBO").unwrap(), Period::Year(2023)).await.unwrap().is_none());
    std::fs::remove_dir_all(&dir).ok();
}
