//! One bad file is one rejected file: every hostile class of issue #12 is rejected with its
//! own code, alone and inside a batch of good files; a worker that runs out of memory, misses
//! its deadline or loses its caller is killed and replaced. Workbooks are read by parse
//! workers (`kpi-parse-worker`) with the limits the programs use. (A batch the database stops
//! is tested with the command line, in crates/kpi-import/tests/cli.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use kpi_core::{Catalog, Period, UnitCode};
use kpi_importer::batch::{BatchOptions, Silent, collect_inputs, run_batch};
use kpi_importer::hostile::{self, hostile_files, processes_running, silent_worker};
use kpi_importer::template::demo_report;
use kpi_importer::workbook::read_sheets;
use kpi_importer::{
    ImportOptions, IsolationConfig, Lang, SheetReader, Status, WorkerCommand, parse_file, parse_workbook,
};
use kpi_store::Store;
use kpi_store::test_support::TestDatabase;

fn catalog() -> Catalog {
    kpi_store::load_catalog_file(None).unwrap()
}

fn options() -> ImportOptions {
    ImportOptions { imported_by: "test".into(), lang: Lang::En, ..ImportOptions::default() }
}

fn demo(unit: &str, year: i32) -> Vec<u8> {
    demo_report(&catalog(), &UnitCode::parse(unit).unwrap(), Period::Year(year)).unwrap()
}

fn kpi_parse_worker() -> WorkerCommand {
    WorkerCommand::binary(env!("CARGO_BIN_EXE_kpi-parse-worker"))
}

async fn reader_with(config: IsolationConfig) -> SheetReader {
    SheetReader::start(kpi_parse_worker(), config).await.unwrap()
}

/// The codes of a file's errors, read through `reader`.
async fn codes(reader: &SheetReader, name: &str, bytes: Vec<u8>) -> Vec<&'static str> {
    let parsed = parse_file(reader, name, bytes, &catalog(), &options()).await.unwrap();
    match parsed.result {
        Ok(_) => Vec::new(),
        Err(rejected) => rejected.errors.iter().map(|e| e.code).collect(),
    }
}

/// Waits up to five seconds for the marked stand-in workers to be gone.
async fn gone(marker: u32) -> bool {
    for _ in 0..50 {
        if processes_running(marker) == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[test]
fn the_same_report_reads_alike_as_xlsx_xls_and_ods() {
    let xlsx = demo("BOCBO", 2023);
    let expected = parse_workbook("bocbo.xlsx", &xlsx, &catalog(), &Default::default(), Lang::En).unwrap();
    let sheets = read_sheets(&xlsx).unwrap();
    for (name, bytes) in
        [("bocbo.xls", hostile::xls_from_cells(&sheets)), ("bocbo.ods", hostile::ods_from_cells(&sheets))]
    {
        let report = parse_workbook(name, &bytes, &catalog(), &Default::default(), Lang::En).unwrap();
        assert_eq!(
            (&report.unit, report.period, &report.values),
            (&expected.unit, expected.period, &expected.values),
            "{name}"
        );
    }
}

#[tokio::test]
async fn each_hostile_class_is_rejected_with_its_own_code() {
    let reader = reader_with(IsolationConfig::default()).await;
    let report = demo("BOCBO", 2023);
    for file in hostile_files(&report) {
        assert_eq!(codes(&reader, file.name, file.bytes).await, vec![file.code], "{}", file.name);
    }
    // The corrupted report names the cell as calamine reads it (the row wraps to 32 bits).
    let far = hostile_files(&report).pop().unwrap();
    let parsed = parse_file(&reader, far.name, far.bytes, &catalog(), &options()).await.unwrap();
    let error = &parsed.result.unwrap_err().errors[0];
    assert_eq!((error.sheet.is_empty(), error.cell.as_str()), (false, "A1215752191"), "{error:?}");
    // The workers are still there for a good file.
    assert_eq!(codes(&reader, "bocbo.xlsx", report).await, Vec::<&str>::new());
}

#[tokio::test]
async fn hostile_files_in_a_batch_leave_the_good_ones_accepted() {
    let db = TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let catalog = catalog();
    store.load_catalog(&catalog).await.unwrap();
    let reader = reader_with(IsolationConfig::default()).await;
    let dir = kpi_store::test_support::temp_dir("batch").unwrap();
    let good = [("good-bocbo.xlsx", demo("BOCBO", 2023)), ("good-pnv.xlsx", demo("PNV", 2023))];
    let hostile = hostile_files(&good[0].1);
    for (name, bytes) in good.iter().map(|(n, b)| (*n, b)).chain(hostile.iter().map(|f| (f.name, &f.bytes))) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let inputs = collect_inputs(std::slice::from_ref(&dir)).unwrap();
    let batch = BatchOptions { import: options(), jobs: 2, progress: Arc::new(Silent) };
    let report = run_batch(&store, &reader, Arc::new(catalog.clone()), inputs, &batch).await;
    assert_eq!(report.stopped, None);
    for file in report.files.iter() {
        let file = file.unwrap();
        let name = file.path.rsplit('/').next().unwrap();
        match hostile.iter().find(|h| h.name == name) {
            Some(h) => assert_eq!((file.status, file.errors[0].code), (Status::Rejected, h.code), "{name}"),
            None => assert_eq!(file.status, Status::Accepted, "{file:?}"),
        }
    }
    assert_eq!(report.files.len(), good.len() + hostile.len());
    assert!(store.current_revision(&UnitCode::parse("PNV").unwrap(), Period::Year(2023)).await.unwrap().is_some());
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_worker_out_of_memory_rejects_one_file_and_is_replaced() {
    // 64 MiB cannot hold the 1.9 million cells this file makes calamine reserve; 512 MiB can.
    let config = IsolationConfig { workers: 1, memory_limit_bytes: 64 << 20, ..IsolationConfig::default() };
    let reader = reader_with(config).await;
    let hungry = hostile::xls_reserving(1_900_000);
    let parsed = parse_file(&reader, "hungry.xls", hungry.clone(), &catalog(), &options()).await.unwrap();
    let error = &parsed.result.unwrap_err().errors[0];
    assert_eq!(error.code, "reader_failed");
    assert!(error.message.contains("memory"), "{}", error.message);
    assert_eq!(codes(&reader, "bocbo.xlsx", demo("BOCBO", 2023)).await, Vec::<&str>::new());
    // With the default limit the same file is read (and rejected for what it is, not a report).
    let roomy = reader_with(IsolationConfig::default()).await;
    assert_eq!(codes(&roomy, "hungry.xls", hungry).await, vec!["no_report_sheet"]);
}

/// Each worker holds a second file in its pipe while it reads one: the answers come back to
/// the files they belong to.
#[tokio::test]
async fn files_queued_in_one_worker_get_their_own_answers() {
    let reader = reader_with(IsolationConfig { workers: 1, ..IsolationConfig::default() }).await;
    let units = ["BOCBO", "PNV", "COLINH", "BANGTHANH", "BOCBO", "PNV"];
    let catalog = Arc::new(catalog());
    let reads: Vec<_> = (2020..)
        .zip(units)
        .map(|(year, unit)| {
            let (reader, catalog) = (reader.clone(), Arc::clone(&catalog));
            tokio::spawn(async move {
                let parsed = parse_file(&reader, "f.xlsx", demo(unit, year), &catalog, &options()).await.unwrap();
                parsed.result.map(|report| (report.unit.to_string(), report.period)).map_err(|r| r.errors)
            })
        })
        .collect();
    for ((year, unit), read) in (2020..).zip(units).zip(reads) {
        assert_eq!(read.await.unwrap(), Ok((unit.to_owned(), Period::Year(year))));
    }
}

/// A file waiting in the pipe of a worker that the file before it kills never started: it is
/// read by the next worker, not rejected.
#[tokio::test]
async fn a_file_queued_behind_a_fatal_one_is_read_by_a_fresh_worker() {
    let config = IsolationConfig { workers: 1, memory_limit_bytes: 64 << 20, ..IsolationConfig::default() };
    let reader = reader_with(config).await;
    let (fatal, queued) = tokio::join!(
        codes(&reader, "hungry.xls", hostile::xls_reserving(1_900_000)),
        codes(&reader, "bocbo.xlsx", demo("BOCBO", 2023)),
    );
    assert_eq!(fatal, vec!["reader_failed"]);
    assert_eq!(queued, Vec::<&str>::new());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_worker_past_its_deadline_is_killed() {
    let marker = std::process::id() * 10 + 1;
    let config = IsolationConfig { workers: 1, deadline: Duration::from_secs(1), ..IsolationConfig::default() };
    let reader = SheetReader::start(silent_worker(marker), config).await.unwrap();
    // A worker shows its own command line once it has executed, which a busy machine delays.
    let mut started = 0;
    for _ in 0..50 {
        started = processes_running(marker);
        if started == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(started, 1, "the first worker starts with the pool");
    let parsed = parse_file(&reader, "bocbo.xlsx", demo("BOCBO", 2023), &catalog(), &options()).await.unwrap();
    let error = &parsed.result.unwrap_err().errors[0];
    assert_eq!(error.code, "too_slow");
    assert!(error.message.contains("more than 1 s"), "{}", error.message);
    assert!(gone(marker).await, "the worker is killed");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_cancelled_read_kills_its_worker() {
    let marker = std::process::id() * 10 + 2;
    let config = IsolationConfig { workers: 1, deadline: Duration::from_secs(600), ..IsolationConfig::default() };
    let reader = SheetReader::start(silent_worker(marker), config).await.unwrap();
    let read = reader.read(Arc::new(demo("BOCBO", 2023)));
    assert!(tokio::time::timeout(Duration::from_millis(500), read).await.is_err(), "the stand-in never answers");
    assert!(gone(marker).await, "dropping the read kills its worker");
}
