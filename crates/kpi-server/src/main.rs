//! `kpi-server`: serves as a parse worker when started as one; otherwise parses the
//! configuration, starts the service and stops it on SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use kpi_server::{Application, Config, telemetry};

fn main() -> anyhow::Result<ExitCode> {
    // Before any runtime or thread: a worker is a small single-threaded process.
    if let Some(exit) = kpi_importer::isolation::serve_if_worker() {
        return Ok(exit);
    }
    serve()?;
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn serve() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init_tracing(config.log_format);
    let application = Application::build(config).await?;
    application.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
