//! ImportWorkbook: the importer's pipeline behind gRPC.

use kpi_proto::v1;
use tonic::Code;

use crate::fixtures::{Cell, report};
use crate::helpers::{kpi_request, spawn_app, spawn_app_with, stalled_upload, upload_request};

#[tokio::test]
async fn upload_accepts_then_reports_unchanged() {
    let app = spawn_app().await;
    let bytes = report("BOCBO", "Năm 2022", &[("A01", Cell::Value(19.0)), ("B01", Cell::Ratio(19.0, 19.0))]);
    let first = app.upload("bocbo-2022.xlsx", &bytes, false).await.unwrap();
    assert_eq!(
        (first.status.as_str(), first.unit.as_str(), first.period.as_str(), first.revision),
        ("accepted", "BOCBO", "2022", 1)
    );
    assert_eq!(first.sha256.len(), 64);
    assert!(first.errors.is_empty());
    let again = app.upload("bocbo-2022-copy.xlsx", &bytes, false).await.unwrap();
    assert_eq!((again.status.as_str(), again.revision), ("unchanged", 1));
}

#[tokio::test]
async fn dry_run_reports_but_stores_nothing() {
    let app = spawn_app().await;
    let bytes = report("PNV", "2022", &[("A01", Cell::Value(145.0))]);
    let result = app.upload("pnv-2022.xlsx", &bytes, true).await.unwrap();
    assert_eq!((result.status.as_str(), result.revision), ("accepted", 1));
    let kpi = app.kpi().await.get_kpi(kpi_request("PNV", "A01", "2022")).await.unwrap().into_inner();
    assert!(!kpi.has_value);
    let revisions = app
        .kpi()
        .await
        .list_revisions(v1::ListRevisionsRequest { unit_code: "PNV".into(), period: "2022".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(revisions.revisions.is_empty());
}

#[tokio::test]
async fn rejected_upload_names_the_cell_and_stores_nothing() {
    let app = spawn_app().await;
    let bytes = report("BANGTHANH", "Năm 2022", &[("A01", Cell::Value(19.0)), ("B01", Cell::Ratio(20.0, 19.0))]);
    let result = app.upload("bang-thanh-2022.xlsx", &bytes, false).await.unwrap();
    assert_eq!(result.status, "rejected");
    assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
    let error = &result.errors[0];
    assert_eq!(error.code, "numerator_exceeds_denominator");
    assert!(!error.cell.is_empty());
    assert!(error.message.contains("bang-thanh-2022.xlsx"), "{}", error.message);
    let kpi = app.kpi().await.get_kpi(kpi_request("BANGTHANH", "A01", "2022")).await.unwrap().into_inner();
    assert!(!kpi.has_value, "a file with an error stores nothing, not even its good rows");

    let garbage = app.upload("report.xlsx", b"STT;Ma chi tieu\n1;A01\n", false).await.unwrap();
    assert_eq!((garbage.status.as_str(), garbage.errors[0].code.as_str()), ("rejected", "not_a_workbook"));
}

#[tokio::test]
async fn upload_metadata_fills_what_the_file_lacks_and_must_agree() {
    let app = spawn_app().await;
    let bytes = report("COLINH", "Năm 2022", &[("A01", Cell::Value(18.0))]);
    let request = upload_request("colinh.xlsx", &bytes, false, "BOCBO", "");
    let result = app.importer().await.import_workbook(request).await.unwrap().into_inner();
    assert_eq!(result.status, "rejected");
    assert_eq!(result.errors[0].code, "metadata_conflict");

    let bad = upload_request("colinh.xlsx", &bytes, false, "", "2022Q9");
    let status = app.importer().await.import_workbook(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let app = spawn_app_with(|config| config.max_upload_bytes = 10_000).await;
    let status = app.upload("big.xlsx", &vec![0u8; 20_000], false).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // One message past the decoding limit gets the same refusal, naming the limit.
    let one_message = |bytes: Vec<u8>| {
        let chunk = v1::ImportChunk { file_name: "big.xlsx".into(), data: bytes, ..Default::default() };
        tonic::Request::new(tokio_stream::iter(vec![chunk]))
    };
    let status = app.importer().await.import_workbook(one_message(vec![0u8; 200_000])).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("10000"), "{}", status.message());

    // With the default limit (20 MiB), a 6 MiB workbook fits in one message.
    let app = spawn_app().await;
    let result = app.importer().await.import_workbook(one_message(vec![b'x'; 6 << 20])).await.unwrap().into_inner();
    assert_eq!((result.status.as_str(), result.errors[0].code.as_str()), ("rejected", "not_a_workbook"));
}

#[tokio::test]
async fn upload_bytes_in_flight_are_bounded() {
    use tonic_types::StatusExt;

    let app = spawn_app_with(|config| config.max_upload_bytes_in_flight = 1_000).await;
    let status = app.upload("big.xlsx", &vec![0u8; 5_000], false).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.get_error_details().retry_info().is_some(), "{status:?}");
    let small = report("BOCBO", "Năm 2022", &[("A01", Cell::Value(19.0))]);
    let app = spawn_app_with(|config| config.max_upload_bytes_in_flight = 100_000).await;
    assert_eq!(app.upload("bocbo.xlsx", &small, false).await.unwrap().status, "accepted");
    assert_eq!(app.upload("bocbo-again.xlsx", &small, false).await.unwrap().status, "unchanged", "bytes are released");
}

#[tokio::test]
async fn a_stalled_upload_is_cancelled_after_the_request_timeout() {
    let app = spawn_app_with(|config| config.request_timeout_seconds = 1).await;
    let (sender, upload) = stalled_upload();
    let started = std::time::Instant::now();
    let status = app.importer().await.import_workbook(upload).await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(sender);
}

/// The peak resident memory of this process (the server under test runs in it), in bytes.
fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).unwrap_or(0) * 1024
}

#[tokio::test]
async fn hostile_uploads_are_rejected_and_the_server_keeps_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let app = spawn_app().await;
    let good = report("BOCBO", "Năm 2022", &[("A01", Cell::Value(19.0))]);
    for file in kpi_importer::hostile::hostile_files(&good) {
        let result = app.upload(file.name, &file.bytes, false).await.unwrap();
        assert_eq!((result.status.as_str(), result.errors[0].code.as_str()), ("rejected", file.code), "{}", file.name);
    }
    let health = HealthClient::new(app.channel().await).check(HealthCheckRequest { service: String::new() }).await;
    assert_eq!(health.unwrap().into_inner().status(), ServingStatus::Serving);
    assert_eq!(app.upload("bocbo-2022.xlsx", &good, false).await.unwrap().status, "accepted");
    let peak = peak_resident_bytes();
    assert!(peak < 512 << 20, "the server's process peaked at {} MiB", peak >> 20);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_cancelled_upload_kills_its_parse_worker() {
    use kpi_importer::hostile::{processes_running, silent_worker};

    let marker = std::process::id() * 10 + 3;
    let app = spawn_app_with(|config| {
        config.parse_worker_command = Some(silent_worker(marker));
        config.parse_deadline_seconds = 600;
    })
    .await;
    // A worker shows its own command line once it has executed, which a busy machine delays.
    let mut started = 0;
    for _ in 0..50 {
        started = processes_running(marker);
        if started == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(started, 1, "the first worker starts with the server");
    let bytes = report("BOCBO", "Năm 2022", &[("A01", Cell::Value(19.0))]);
    let mut request = upload_request("bocbo.xlsx", &bytes, false, "", "");
    request.set_timeout(std::time::Duration::from_millis(500));
    let status = app.importer().await.import_workbook(request).await.unwrap_err();
    assert!(matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded), "{status:?}");
    let mut gone = false;
    for _ in 0..50 {
        if processes_running(marker) == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the cancelled upload's worker is killed, so no core stays busy");
}

/// Uploads are validated against the catalog the store holds, so a unit another replica
/// added is accepted here without a restart (after the snapshot's check interval, 10 s).
#[tokio::test]
async fn uploads_use_the_catalog_another_replica_loaded() {
    let app = spawn_app().await;
    let bytes = report("XANHMOI", "Năm 2022", &[("A01", Cell::Value(12.0))]);
    let before = app.upload("xanhmoi-2022.xlsx", &bytes, true).await.unwrap();
    assert_eq!(before.errors[0].code, "unknown_unit");

    let edited = format!(
        "{}\n[[units]]\ncode = \"XANHMOI\"\nname = \"Xã Xanh Mới\"\nkind = \"commune\"\nparent = \"PACNAM\"\n",
        kpi_store::SHIPPED_CATALOG
    );
    let other_replica = kpi_store::Store::connect(&app.database.url).await.unwrap();
    other_replica.load_catalog(&kpi_core::Catalog::from_toml(&edited).unwrap()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let after = app.upload("xanhmoi-2022.xlsx", &bytes, false).await.unwrap();
    assert_eq!((after.status.as_str(), after.unit.as_str()), ("accepted", "XANHMOI"), "{:?}", after.errors);
}

/// An upload's file name is the client's: stored and reported without its path or control
/// characters, and at most 255 characters long.
#[tokio::test]
async fn upload_file_names_are_stripped_and_capped() {
    let app = spawn_app().await;
    let bytes = report("BOCBO", "Năm 2022", &[("A01", Cell::Value(19.0))]);
    let name = format!("../../etc/forged\n\u{1b}[31m{}.xlsx", "x".repeat(10_000));
    let result = app.upload(&name, &bytes, false).await.unwrap();
    assert_eq!(result.status, "accepted", "{:?}", result.errors);
    let request = v1::ListRevisionsRequest { unit_code: "BOCBO".into(), period: "2022".into() };
    let revisions = app.kpi().await.list_revisions(request).await.unwrap().into_inner().revisions;
    let stored = &revisions[0].file_name;
    assert_eq!(stored.chars().count(), 255, "{stored}");
    assert!(stored.starts_with("forged[31mxxx") && !stored.chars().any(char::is_control), "{stored}");
    assert!(!result.path.contains('\n') && result.path.starts_with("forged"), "{}", result.path);
}
