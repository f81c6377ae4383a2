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
    reexec_with_one_malloc_arena();
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

/// glibc's tunable for the number of malloc arenas, read once as the process starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// Starts this program again with one malloc arena, unless it already has a setting.
///
/// glibc gives every thread that allocates an arena of its own, and each of sqlx's SQLite
/// connection threads grew one to about 28 MB in a 100,000-file batch: 175 MiB peak RSS,
/// against 98.6 MiB with one arena at about the same speed (the importer does its own work on
/// one thread). The tunable is only read at start-up, and setting it from inside would take
/// `unsafe`, so the importer runs itself again with it. The parse workers inherit it. If the
/// program cannot be started again, it goes on as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn reexec_with_one_malloc_arena() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(ARENA_MAX).is_some() {
        return;
    }
    let Ok(program) = std::env::current_exe() else { return };
    // `exec` returns only when it failed; then this process goes on, arenas and all.
    let mut arguments = std::env::args_os();
    let name = arguments.next().unwrap_or_else(|| program.clone().into_os_string());
    let _failed = std::process::Command::new(&program).arg0(name).args(arguments).env(ARENA_MAX, "1").exec();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn reexec_with_one_malloc_arena() {}
