//! Building and running the server: connect and migrate, load the catalog, bind, and serve
//! the KPI, import, health and reflection services until told to stop.
//!
//! [`Application::build`] binds before it returns, so tests ask for port 0 and read the
//! port back.

use std::future::Future;
use std::net::SocketAddr;

use kpi_proto::v1::approval_service_server::ApprovalServiceServer;
use kpi_proto::v1::data_quality_service_server::DataQualityServiceServer;
use kpi_proto::v1::import_service_server::ImportServiceServer;
use kpi_proto::v1::kpi_service_server::KpiServiceServer;
use kpi_store::Store;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::admission::{Admission, UploadBytes};
use crate::approval_service::ApprovalApi;
use crate::auth::{Role, TokenError, Tokens};
use crate::config::Config;
use crate::data_quality_service::DataQualityApi;
use crate::import_service::ImportApi;
use crate::kpi_service::KpiApi;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Tokens(#[from] TokenError),
    #[error("refusing to listen on {0} without tokens: configure KPI_TOKENS or KPI_TOKENS_FILE, or pass --insecure")]
    InsecureListen(SocketAddr),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Store(#[from] kpi_store::StoreError),
    #[error(transparent)]
    Reader(#[from] kpi_importer::WorkerError),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A built server, bound and ready to serve.
pub struct Application {
    config: Config,
    /// The transport, with TLS when configured.
    transport: Server,
    listener: TcpListener,
    local_addr: SocketAddr,
    store: Store,
    tokens: Tokens,
    reader: kpi_importer::SheetReader,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Application").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl Application {
    /// Checks the configuration, connects (creating and migrating the database), loads the
    /// catalog and binds the listener.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let tokens = Tokens::load(config.tokens_file.as_deref(), config.tokens.as_deref())?;
        if !config.listen.ip().is_loopback() && !tokens.is_enabled() && !config.insecure {
            return Err(StartupError::InsecureListen(config.listen));
        }
        let transport = crate::tls::transport(&config)?;
        let tls = config.tls_cert.is_some();
        if crate::tls::tokens_in_clear(config.listen, tokens.is_enabled(), tls) {
            tracing::warn!(
                address = %config.listen,
                "bearer tokens will cross the network IN CLEAR TEXT: serve with --tls-cert and --tls-key, \
                 or listen on loopback behind a TLS proxy"
            );
        }
        let catalog_text = kpi_store::read_catalog_text(config.catalog.as_deref())?;
        let store = Store::connect_with(&config.database_url, config.database_acquire_timeout()).await?;
        store.load_catalog_text(&catalog_text).await?;
        drop(catalog_text);
        let catalog = store.snapshot().await?.catalog()?;
        let reader = kpi_importer::SheetReader::start(config.parse_worker()?, config.isolation()).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartupError::Bind { address: config.listen, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| StartupError::Bind { address: config.listen, source })?;
        tracing::info!(
            address = %local_addr,
            database = store.backend_name(),
            auth = tokens.is_enabled(),
            tls,
            resolution = %catalog.resolution.code,
            "kpi-server ready"
        );
        Ok(Application { config, transport, listener, local_addr, store, tokens, reader })
    }

    /// The address actually bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then gives in-flight calls the configured grace
    /// period before returning.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kpi_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kpi_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        let admission = Admission::new(
            self.config.max_concurrent_calls,
            self.config.max_concurrent_heavy_calls,
            self.config.max_concurrent_calls_per_token,
            self.tokens.count(),
        );
        let kpi = KpiServiceServer::with_interceptor(
            KpiApi::new(self.store.clone(), admission.clone()),
            self.tokens.require(Role::Read),
        );
        let approval = ApprovalServiceServer::with_interceptor(
            ApprovalApi::new(self.store.clone(), admission.clone()),
            self.tokens.require(Role::Approve),
        );
        let data_quality = DataQualityServiceServer::with_interceptor(
            DataQualityApi::new(self.store.clone(), admission.clone()),
            self.tokens.require(Role::Import),
        );
        let import_api = ImportApi::new(
            self.store.clone(),
            self.reader.clone(),
            self.config.max_upload_bytes,
            admission,
            UploadBytes::new(self.config.max_upload_bytes_in_flight),
        );
        // One message may carry a whole workbook up to the upload limit, as a chunked upload
        // may; beyond, the refusal is the same RESOURCE_EXHAUSTED.
        let decoding_limit = self.config.max_upload_bytes.saturating_add(UPLOAD_MESSAGE_OVERHEAD);
        let import = tonic::service::interceptor::InterceptedService::new(
            ImportServiceServer::new(import_api).max_decoding_message_size(decoding_limit),
            self.tokens.require(Role::Import),
        );

        // Statuses are set before the first call can arrive; the watcher keeps them current.
        let probe = kpi_store::HealthProbe::connect(&self.config.database_url).await?;
        let initial = database_status(&probe).await;
        for service in HEALTH_SERVICES {
            health_reporter.set_service_status(service, initial).await;
        }
        let watcher = tokio::spawn(watch_database(probe, health_reporter, self.config.health_interval(), initial));
        let (stop_sender, stop_receiver) = tokio::sync::oneshot::channel::<()>();
        let serving = self
            .transport
            .layer(tower::util::MapResponseLayer::new(crate::errors::refuse_undecodable))
            .timeout(self.config.request_timeout())
            .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(self.config.max_concurrent_streams.max(1))
            .max_connection_age(self.config.max_connection_age())
            .max_connection_age_grace(MAX_CONNECTION_AGE_GRACE)
            .trace_fn(|request| {
                tracing::info_span!(
                    "grpc",
                    method = %request.uri().path(),
                    unit = tracing::field::Empty,
                    period = tracing::field::Empty,
                )
            })
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(kpi)
            .add_service(import)
            .add_service(approval)
            .add_service(data_quality)
            .serve_with_incoming_shutdown(incoming(self.listener), async {
                stop_receiver.await.ok();
            });
        tokio::pin!(serving);
        let outcome = tokio::select! {
            result = &mut serving => result.map_err(StartupError::from),
            () = shutdown => {
                tracing::info!(grace_seconds = self.config.shutdown_grace_seconds, "shutting down");
                stop_sender.send(()).ok();
                match tokio::time::timeout(self.config.shutdown_grace(), &mut serving).await {
                    Ok(result) => result.map_err(StartupError::from),
                    Err(_) => {
                        tracing::warn!("grace period over; dropping calls still in flight");
                        Ok(())
                    }
                }
            }
        };
        watcher.abort();
        outcome
    }
}

/// How often an idle HTTP/2 connection is pinged, so a vanished client (or a NAT that dropped
/// the flow) frees its connection within a minute.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// TCP keep-alive on accepted sockets, for peers that vanish without a FIN.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The accepted connections of `listener`, each with `TCP_NODELAY`: a response written in
/// several segments otherwise waits for the client's delayed ACK, about 40 ms per call
/// (Nagle's algorithm). Tonic sets it only on listeners it binds itself.
fn incoming(listener: TcpListener) -> PausingIncoming<TcpIncoming> {
    PausingIncoming::new(TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE)))
}

/// How long calls on a connection past its age may take to finish before it closes.
const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(30);

/// How long accepting pauses after an error.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accepted connections that pause after an accept error. Out of file descriptors (EMFILE),
/// `accept` fails at once every time, and tonic's loop, which goes straight back to it, would
/// spin a core until a descriptor frees.
struct PausingIncoming<S> {
    inner: S,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> PausingIncoming<S> {
    fn new(inner: S) -> Self {
        PausingIncoming { inner, pause: None }
    }
}

impl<S, T, E> tokio_stream::Stream for PausingIncoming<S>
where
    S: tokio_stream::Stream<Item = Result<T, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<T, E>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Err(error))) = &polled {
            tracing::warn!(%error, pause_ms = ACCEPT_PAUSE.as_millis() as u64, "accepting a connection failed; pausing");
            self.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_PAUSE)));
        }
        polled
    }
}

/// Room for an upload message's fields around its bytes.
const UPLOAD_MESSAGE_OVERHEAD: usize = 64 * 1024;

/// How long a health ping may take before the database counts as down, so NOT_SERVING shows
/// within one check interval.
const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The services whose health follows the database; `""` is the server as a whole.
const HEALTH_SERVICES: [&str; 5] =
    ["", "kpi.v1.KpiService", "kpi.v1.ImportService", "kpi.v1.ApprovalService", "kpi.v1.DataQualityService"];

/// SERVING when the database answers a ping on the probe's own connection.
async fn database_status(probe: &kpi_store::HealthProbe) -> ServingStatus {
    match tokio::time::timeout(HEALTH_PING_TIMEOUT, probe.ping()).await {
        Ok(Ok(())) => ServingStatus::Serving,
        Ok(Err(error)) => {
            tracing::warn!(%error, "database health check failed");
            ServingStatus::NotServing
        }
        Err(_) => {
            tracing::warn!(seconds = HEALTH_PING_TIMEOUT.as_secs(), "database health check timed out");
            ServingStatus::NotServing
        }
    }
}

/// Keeps the health status in step with the database: NOT_SERVING while it is unreachable.
async fn watch_database(
    probe: kpi_store::HealthProbe,
    reporter: tonic_health::server::HealthReporter,
    interval: std::time::Duration,
    initial: ServingStatus,
) {
    let mut last = initial;
    loop {
        tokio::time::sleep(interval).await;
        let status = database_status(&probe).await;
        if status != last {
            for service in HEALTH_SERVICES {
                reporter.set_service_status(service, status).await;
            }
            last = status;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::{Stream, StreamExt};

    use super::*;

    #[tokio::test]
    async fn accepting_pauses_after_an_error() {
        let errors = tokio_stream::iter(vec![Err::<u8, _>("EMFILE"), Ok(1)]);
        let mut incoming = std::pin::pin!(PausingIncoming::new(errors));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let first = incoming.as_mut().poll_next(&mut context);
        assert!(matches!(first, std::task::Poll::Ready(Some(Err("EMFILE")))));
        assert!(incoming.as_mut().poll_next(&mut context).is_pending(), "no retry before the pause ends");
        assert_eq!(incoming.next().await, Some(Ok(1)), "then accepting resumes");
    }

    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_delayed_acks() -> Result<(), Box<dyn std::error::Error>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let mut accepted = incoming(listener);
        let _client = tokio::net::TcpStream::connect(address).await?;
        let connection = accepted.next().await.ok_or("no connection accepted")??;
        assert!(connection.nodelay()?, "TCP_NODELAY must be set on every accepted connection");
        Ok(())
    }
}
