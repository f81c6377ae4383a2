//! `kpi-loadgen`: a load tool for `kpi-server`. `run` measures one scenario (a KPI query or an
//! upload) against the health-check floor measured the same way; `dataset` writes a national
//! catalog and its demo reports to run it on. Thin on purpose: parse the arguments, run, map
//! failure to a non-zero exit code.

mod cli;
mod dataset;
mod floor;
mod measure;
mod report;
mod run;
mod scenario;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|runtime| {
        runtime.block_on(async {
            match cli.command {
                Command::Run(args) => run::run(&args).await,
                Command::Dataset(args) => dataset::write(&args).await,
                Command::Floor(args) => floor::run(&args),
            }
        })
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kpi-loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
