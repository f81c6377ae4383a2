//! `spawn_app`: one server per test, on its own database, stopped when the test ends.

use clap::Parser;
use kpi_proto::v1;
use kpi_proto::v1::import_service_client::ImportServiceClient;
use kpi_proto::v1::kpi_service_client::KpiServiceClient;
use kpi_server::{Application, Config};
use kpi_store::test_support::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Chunk size of uploads: small enough that every test file spans several chunks.
const UPLOAD_CHUNK: usize = 4096;

pub struct TestApp {
    pub endpoint: String,
    pub database: TestDatabase,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), kpi_server::StartupError>>>,
}

/// The configuration a test server starts from: port 0 and the test's own database.
/// A server on a free port; its parse workers are the `kpi-server` binary itself (this test
/// binary cannot serve as one).
pub fn test_config(database_url: &str) -> Config {
    let mut config = Config::parse_from(["kpi-server", "--listen", "127.0.0.1:0", "--database-url", database_url]);
    config.parse_worker_command = Some(kpi_importer::WorkerCommand::binary(env!("CARGO_BIN_EXE_kpi-server")));
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::new().await;
    let mut config = test_config(&database.url);
    customize(&mut config);
    let application = Application::build(config).await.expect("the server starts");
    let endpoint = format!("http://{}", application.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        stopped.await.ok();
    }));
    TestApp { endpoint, database, stop: Some(stop), server: Some(server) }
}

impl TestApp {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint.clone()).unwrap().connect().await.unwrap()
    }

    pub async fn kpi(&self) -> KpiServiceClient<Channel> {
        KpiServiceClient::new(self.channel().await)
    }

    pub async fn importer(&self) -> ImportServiceClient<Channel> {
        ImportServiceClient::new(self.channel().await)
    }

    /// Uploads one workbook in several chunks.
    pub async fn upload(
        &self,
        file_name: &str,
        bytes: &[u8],
        dry_run: bool,
    ) -> Result<v1::ImportResult, tonic::Status> {
        let request = upload_request(file_name, bytes, dry_run, "", "");
        self.importer().await.import_workbook(request).await.map(tonic::Response::into_inner)
    }

    /// Stops the server and waits for it, as SIGTERM would.
    pub async fn stop(mut self) -> Result<(), kpi_server::StartupError> {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        match self.server.take() {
            Some(server) => server.await.unwrap(),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// A streamed upload of `bytes`, metadata on the first chunk.
pub fn upload_request(
    file_name: &str,
    bytes: &[u8],
    dry_run: bool,
    unit_code: &str,
    period: &str,
) -> tonic::Request<tokio_stream::Iter<std::vec::IntoIter<v1::ImportChunk>>> {
    let mut chunks: Vec<v1::ImportChunk> =
        bytes.chunks(UPLOAD_CHUNK).map(|data| v1::ImportChunk { data: data.to_vec(), ..Default::default() }).collect();
    if chunks.is_empty() {
        chunks.push(v1::ImportChunk::default());
    }
    chunks[0].file_name = file_name.to_owned();
    chunks[0].dry_run = dry_run;
    chunks[0].unit_code = unit_code.to_owned();
    chunks[0].period = period.to_owned();
    tonic::Request::new(tokio_stream::iter(chunks))
}

/// An upload that sends its first chunk, then waits until the sender is dropped: it holds
/// its place in the server for as long as a test needs.
pub fn stalled_upload()
-> (tokio::sync::mpsc::Sender<v1::ImportChunk>, tokio_stream::wrappers::ReceiverStream<v1::ImportChunk>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let first = v1::ImportChunk { file_name: "slow.xlsx".into(), data: vec![0x50, 0x4b], ..Default::default() };
    sender.try_send(first).expect("an empty channel takes one chunk");
    (sender, tokio_stream::wrappers::ReceiverStream::new(receiver))
}

/// `message` with `authorization: Bearer TOKEN`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

pub fn kpi_request(unit: &str, indicator: &str, period: &str) -> v1::GetKpiRequest {
    v1::GetKpiRequest { unit_code: unit.into(), indicator_code: indicator.into(), period: period.into() }
}

pub fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!((actual - expected).abs() <= tolerance, "{actual} is not within {tolerance} of {expected}");
}

/// The indicator codes of the KPIs with `status`, in order.
pub fn indicators_with_status(kpis: &[v1::Kpi], status: v1::KpiStatus) -> Vec<&str> {
    kpis.iter().filter(|k| k.status() == status).map(|k| k.indicator_code.as_str()).collect()
}

/// The scorecard the 2023 review reads: Resolution 09-NQ/HU, the whole district, 2022.
pub fn district_scorecard_2022() -> v1::GetScorecardRequest {
    v1::GetScorecardRequest { resolution_code: "09-NQ/HU".into(), unit_code: "PACNAM".into(), period: "2022".into() }
}
