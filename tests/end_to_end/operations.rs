//! Operations: authentication, health, reflection, start-up refusals and graceful shutdown.

use kpi_server::Application;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::fixtures::{Cell, report};
use crate::helpers::{kpi_request, spawn_app, spawn_app_with, stalled_upload, test_config, upload_request, with_token};

#[tokio::test]
async fn tokens_and_roles_guard_the_services() {
    let app = spawn_app_with(|config| config.tokens = Some("read:reader-token,import:importer-token".into())).await;
    let mut client = app.kpi().await;

    let status = client.get_kpi(kpi_request("PACNAM", "A01", "2022")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client.get_kpi(with_token(kpi_request("PACNAM", "A01", "2022"), "wrong")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(client.get_kpi(with_token(kpi_request("PACNAM", "A01", "2022"), "reader-token")).await.is_ok());
    assert!(client.get_kpi(with_token(kpi_request("PACNAM", "A01", "2022"), "importer-token")).await.is_ok());

    let bytes = report("BOCBO", "2022", &[("A01", Cell::Value(19.0))]);
    let mut upload = upload_request("bocbo.xlsx", &bytes, false, "", "");
    upload.metadata_mut().insert("authorization", "Bearer reader-token".parse().unwrap());
    let status = app.importer().await.import_workbook(upload).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut upload = upload_request("bocbo.xlsx", &bytes, false, "", "");
    upload.metadata_mut().insert("authorization", "Bearer importer-token".parse().unwrap());
    assert_eq!(app.importer().await.import_workbook(upload).await.unwrap().into_inner().status, "accepted");

    // Health needs no token.
    let health = HealthClient::new(app.channel().await)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
}

#[tokio::test]
async fn non_loopback_without_tokens_is_refused_unless_insecure() {
    let database = kpi_store::test_support::TestDatabase::new().await;
    let mut config = test_config(&database.url);
    config.listen = "0.0.0.0:0".parse().unwrap();
    let refused = Application::build(config.clone()).await;
    assert!(matches!(refused, Err(kpi_server::StartupError::InsecureListen(_))), "{refused:?}");
    config.insecure = true;
    assert!(Application::build(config).await.is_ok());
}

#[tokio::test]
async fn health_and_reflection_answer_without_proto_files() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel().await);
    for service in ["", "kpi.v1.KpiService", "kpi.v1.ImportService"] {
        let response = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service}");
    }

    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(app.channel().await)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = responses.next().await else { panic!("no reflection answer") };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else { panic!("{response:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["kpi.v1.KpiService", "kpi.v1.ImportService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::FileContainingSymbol("kpi.v1.KpiService".into())),
    };
    let mut responses = AlphaClient::new(app.channel().await)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = responses.next().await else { panic!("no v1alpha answer") };
    assert!(
        matches!(response.message_response, Some(AlphaResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty())
    );
}

#[tokio::test]
async fn shutdown_stops_the_server_within_its_grace_period() {
    let app = spawn_app_with(|config| config.shutdown_grace_seconds = 2).await;
    let endpoint = app.endpoint.clone();
    let started = std::time::Instant::now();
    app.stop().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let refused = tonic::transport::Channel::from_shared(endpoint).unwrap().connect().await;
    assert!(refused.is_err(), "the port is closed after shutdown");
}

/// The database going away turns calls into UNAVAILABLE and health into NOT_SERVING. Only
/// PostgreSQL can be taken away from under a running server, so this runs with
/// `TEST_DATABASE_URL` only.
#[tokio::test]
async fn database_outage_is_unavailable_and_not_serving() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("database_outage_is_unavailable_and_not_serving runs with TEST_DATABASE_URL only");
        return;
    };
    let app = spawn_app_with(|config| config.health_interval_seconds = 1).await;
    let database_name = app.database.url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let mut client = app.kpi().await;
    assert!(client.get_kpi(kpi_request("PACNAM", "A01", "2022")).await.is_ok());

    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    use sea_orm::ConnectionTrait;
    admin.execute_unprepared(&format!("ALTER DATABASE \"{database_name}\" ALLOW_CONNECTIONS false")).await.unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database_name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    // The snapshot cache may answer catalog questions; a KPI needs the database. Each call
    // fails as UNAVAILABLE within the 2 s acquire timeout, before the client's 5 s deadline.
    let mut saw_unavailable = false;
    for _ in 0..20 {
        let mut request = tonic::Request::new(kpi_request("PACNAM", "A01", "2022"));
        request.set_timeout(std::time::Duration::from_secs(5));
        match client.get_kpi(request).await {
            Err(status) if status.code() == Code::Unavailable => {
                saw_unavailable = true;
                break;
            }
            Err(status) => panic!("an outage must be UNAVAILABLE, not {status:?}"),
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
    assert!(saw_unavailable, "calls fail as UNAVAILABLE while the database is down");
    let mut health = HealthClient::new(app.channel().await);
    let started = std::time::Instant::now();
    let mut not_serving = false;
    // One check interval (1 s) plus the ping's own timeout (1 s), with room to spare.
    while started.elapsed() < std::time::Duration::from_secs(6) {
        let response = health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
        if response.status() == ServingStatus::NotServing {
            not_serving = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(not_serving, "health reports NOT_SERVING within a few seconds of the outage");
    admin.execute_unprepared(&format!("ALTER DATABASE \"{database_name}\" ALLOW_CONNECTIONS true")).await.unwrap();
}

/// Beyond `--max-concurrent-calls` a call is refused at once with RESOURCE_EXHAUSTED and a
/// retry hint, health still answers, and the place frees when the call in flight ends.
#[tokio::test]
async fn calls_beyond_the_limit_are_refused_at_once() {
    use tonic_types::StatusExt;

    let app = spawn_app_with(|config| config.max_concurrent_calls = 1).await;
    let (sender, upload) = stalled_upload();
    let mut importer = app.importer().await;
    let stalled = tokio::spawn(async move { importer.import_workbook(upload).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let mut client = app.kpi().await;
    let started = std::time::Instant::now();
    let refused = client.get_kpi(kpi_request("PACNAM", "B05", "2022")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.get_error_details().retry_info().is_some(), "a retry hint: {refused:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "refused at once");
    let health = HealthClient::new(app.channel().await).check(HealthCheckRequest { service: String::new() }).await;
    assert_eq!(health.unwrap().into_inner().status(), ServingStatus::Serving);

    drop(sender);
    let _ = stalled.await.unwrap();
    assert!(client.get_kpi(kpi_request("PACNAM", "B05", "2022")).await.is_ok(), "the place is free again");
}
