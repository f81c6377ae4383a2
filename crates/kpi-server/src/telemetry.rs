//! Logging: the subscriber (text or JSON), and the per-call span fields and timing.
//!
//! The transport opens a `grpc` span per call with the method (see `startup`); handlers fill
//! in the unit and period, and [`observe`] logs the outcome and duration inside that span.

use std::future::Future;
use std::time::Instant;

use tonic::{Response, Status};
use tracing_subscriber::EnvFilter;

use crate::admission::{Admission, Cost};
use crate::auth::Caller;
use crate::config::LogFormat;
use crate::errors::ApiError;

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: a log file gets no escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    // A second initialisation (several servers in one test process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

/// Records the unit and period a call is about on the current call span, as excerpts: a
/// request's text is the client's, and never reaches the log whole or with its control
/// characters.
pub fn record_request(unit: &str, period: &str) {
    let span = tracing::Span::current();
    span.record("unit", kpi_core::text::excerpt(unit));
    span.record("period", kpi_core::text::excerpt(period));
}

/// Admits a call of `caller` costing `cost` (see [`Admission`]), runs its handler, maps its error to a status, and logs
/// the outcome with its duration.
pub async fn observe<T>(
    admission: &Admission,
    caller: Option<Caller>,
    cost: Cost,
    handler: impl Future<Output = Result<T, ApiError>>,
) -> Result<Response<T>, Status> {
    let started = Instant::now();
    let result = match admission.admit(caller, cost) {
        Ok(_permit) => handler.await.map(Response::new).map_err(Status::from),
        Err(refused) => Err(Status::from(refused)),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(_) => tracing::info!(elapsed_ms, code = "OK", "call finished"),
        Err(status) => {
            tracing::info!(elapsed_ms, code = ?status.code(), status_message = status.message(), "call failed")
        }
    }
    result
}
