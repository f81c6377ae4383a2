//! Configuration of the server, from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The gRPC KPI service of the district resolution tracker.
#[derive(Debug, Clone, Parser)]
#[command(name = "kpi-server", version, about)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, env = "KPI_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Database URL: sqlite://FILE?mode=rwc (embedded, created on first start) or postgres://…
    #[arg(long, env = "DATABASE_URL", default_value = kpi_store::DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Catalog file (units, indicators, targets); the shipped Pác Nặm catalog when absent.
    #[arg(long, env = "KPI_CATALOG")]
    pub catalog: Option<PathBuf>,

    /// File of bearer tokens, one `ROLE TOKEN` per line (roles: read, import, approve).
    #[arg(long, env = "KPI_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Bearer tokens as `ROLE:TOKEN` pairs separated by commas, added to the file's.
    #[arg(long, env = "KPI_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,

    /// PEM certificate chain the server presents; with `--tls-key`, the server speaks TLS only.
    #[arg(long, env = "KPI_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "KPI_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: clients must then present a certificate one of them signed
    /// (mutual TLS).
    #[arg(long, env = "KPI_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Allow listening on a non-loopback address without tokens.
    #[arg(long, env = "KPI_INSECURE")]
    pub insecure: bool,

    /// Log format.
    #[arg(long, env = "KPI_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Largest workbook ImportWorkbook accepts, in bytes.
    #[arg(long, env = "KPI_MAX_UPLOAD_BYTES", default_value_t = 20 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Seconds in-flight calls get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "KPI_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    /// KPI and import calls running at once; a call beyond is refused at once with
    /// RESOURCE_EXHAUSTED and a retry hint.
    #[arg(long, env = "KPI_MAX_CONCURRENT_CALLS", default_value_t = 256)]
    pub max_concurrent_calls: usize,

    /// Heavy calls (completeness, overdue, data issues, exports, QueryKpis, validation: work
    /// that grows with the tree) running at once, within --max-concurrent-calls; beyond,
    /// RESOURCE_EXHAUSTED at once with a retry hint.
    #[arg(long, env = "KPI_MAX_CONCURRENT_HEAVY_CALLS", default_value_t = 4)]
    pub max_concurrent_heavy_calls: usize,

    /// KPI and import calls one token may have running at once (0: no bound per token, only
    /// the server's); beyond, RESOURCE_EXHAUSTED at once with a retry hint.
    #[arg(long, env = "KPI_MAX_CONCURRENT_CALLS_PER_TOKEN", default_value_t = 0)]
    pub max_concurrent_calls_per_token: usize,

    /// Upload bytes all uploads together may hold in memory; beyond, RESOURCE_EXHAUSTED.
    #[arg(long, env = "KPI_MAX_UPLOAD_BYTES_IN_FLIGHT", default_value_t = 128 * 1024 * 1024)]
    pub max_upload_bytes_in_flight: usize,

    /// Seconds a client connection lives before the server asks it to reconnect (GOAWAY,
    /// then 30 s for its calls to finish): idle connections cannot pile up forever.
    #[arg(long, env = "KPI_MAX_CONNECTION_AGE_SECONDS", default_value_t = 600)]
    pub max_connection_age_seconds: u64,

    /// HTTP/2 streams (calls) one connection may have open at once.
    #[arg(long, env = "KPI_MAX_CONCURRENT_STREAMS", default_value_t = 100)]
    pub max_concurrent_streams: u32,

    /// Seconds a call may take before it is cancelled (uploads included).
    #[arg(long, env = "KPI_REQUEST_TIMEOUT_SECONDS", default_value_t = 60)]
    pub request_timeout_seconds: u64,

    /// Worker processes reading uploaded workbooks at once (each with the limits below).
    #[arg(long, env = "KPI_PARSE_WORKERS", default_value_t = 2)]
    pub parse_workers: usize,

    /// Address space of one parse worker, in MiB: a file needing more is rejected (`reader_failed`).
    #[arg(long, env = "KPI_WORKER_MEMORY_MIB", default_value_t = 512)]
    pub worker_memory_mib: u64,

    /// Seconds one file may take to read, in CPU and wall-clock time alike (`too_slow`).
    #[arg(long, env = "KPI_PARSE_DEADLINE_SECONDS", default_value_t = 10)]
    pub parse_deadline_seconds: u64,

    /// The command started as a parse worker; this very binary when absent (tests name the
    /// `kpi-server` binary, since a test binary cannot serve as one).
    #[arg(skip)]
    pub parse_worker_command: Option<kpi_importer::WorkerCommand>,

    /// Seconds a call waits for a database connection before it fails as UNAVAILABLE.
    #[arg(long, env = "KPI_DATABASE_ACQUIRE_TIMEOUT_SECONDS", default_value_t = 2)]
    pub database_acquire_timeout_seconds: u64,

    /// Seconds between database health checks.
    #[arg(long, env = "KPI_HEALTH_INTERVAL_SECONDS", default_value_t = 5)]
    pub health_interval_seconds: u64,
}

impl Config {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.max(1))
    }

    /// The limits of the parse workers.
    pub fn isolation(&self) -> kpi_importer::IsolationConfig {
        kpi_importer::IsolationConfig::from_flags(
            self.parse_workers,
            self.worker_memory_mib,
            self.parse_deadline_seconds,
        )
    }

    /// The command that starts a parse worker.
    pub fn parse_worker(&self) -> Result<kpi_importer::WorkerCommand, kpi_importer::WorkerError> {
        match &self.parse_worker_command {
            Some(command) => Ok(command.clone()),
            None => kpi_importer::WorkerCommand::current_exe(),
        }
    }

    pub fn max_connection_age(&self) -> Duration {
        Duration::from_secs(self.max_connection_age_seconds.max(1))
    }

    pub fn database_acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.database_acquire_timeout_seconds.max(1))
    }

    pub fn health_interval(&self) -> Duration {
        Duration::from_secs(self.health_interval_seconds.max(1))
    }
}
