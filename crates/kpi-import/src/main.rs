//! `kpi-import`: the command line of the importer. Thin on purpose: serve as a parse worker
//! when started as one, otherwise parse the arguments, set up logging, run the library, map
//! the outcome to the exit code (0 all accepted, 1 a file rejected, 2 usage or infrastructure
//! error).

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

mod cli;
mod cycle;
mod progress;
mod summary;

fn main() -> ExitCode {
    if let Some(exit) = kpi_importer::isolation::serve_if_worker() {
        return exit;
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(cli.run()).map_err(anyhow::Error::from));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("kpi-import: {error:#}");
            ExitCode::from(2)
        }
    }
}
