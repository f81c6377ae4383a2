//! The `kpi-import` command line (clap). Every option can also come from an environment
//! variable, so a scheduled job needs no arguments but paths.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use kpi_core::{Period, UnitCode};
use kpi_store::{Store, StoreError};

use kpi_importer::batch::{BatchError, BatchOptions, collect_inputs, run_batch, write_json};
use kpi_importer::template::{TemplateError, template, write_demo_data};
use kpi_importer::{ImportOptions, IsolationConfig, Lang, SheetReader, WorkerCommand, WorkerError};

use crate::cycle::{self, ApprovalCommand, OverdueArgs};
use crate::progress::Terminal;
use crate::summary::{render_summary, say};

/// Imports commune report workbooks into the KPI database.
#[derive(Debug, Parser)]
#[command(name = "kpi-import", version, about)]
pub struct Cli {
    /// The catalog (units, indicators, targets); default: the shipped Pác Nặm catalog.
    #[arg(long, env = "KPI_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,
    /// Language of messages.
    #[arg(long, env = "KPI_LANG", default_value = "vi", global = true)]
    pub lang: Lang,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import files, folders (recursively) and .zip archives of them.
    Import(ImportArgs),
    /// Write a blank report workbook for one unit and period.
    Template(TemplateArgs),
    /// Write realistic demo reports for every unit, for two years.
    DemoData(DemoArgs),
    /// List the units below a parent whose report for a period is past its deadline.
    Overdue(OverdueArgs),
    /// Approve, unapprove, lock, unlock, or show a report's approval status.
    #[command(subcommand)]
    Approval(ApprovalCommand),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files, folders and .zip archives.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Database URL (sqlite://file?mode=rwc or postgres://…); default: the server's embedded file.
    #[arg(long, env = "DATABASE_URL", default_value = kpi_store::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Validate everything and report as usual, but store nothing.
    #[arg(long, env = "KPI_DRY_RUN")]
    pub dry_run: bool,
    /// Unit code for files that lack one; a file naming another unit is rejected.
    #[arg(long, env = "KPI_UNIT", value_parser = parse_unit)]
    pub unit: Option<UnitCode>,
    /// Period for files that lack one (2022, 2023S1, 2023Q2, 2023-03, "Năm 2022", …).
    #[arg(long, env = "KPI_PERIOD", value_parser = parse_period)]
    pub period: Option<Period>,
    /// Files parsed in parallel, each by its own worker process; default: the number of cores.
    #[arg(long, env = "KPI_JOBS")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub isolation: IsolationArgs,
    /// Also write the machine-readable report to this file.
    #[arg(long, env = "KPI_REPORT_JSON")]
    pub report_json: Option<PathBuf>,
    /// Who imports, kept with each revision; default: the OS user.
    #[arg(long, env = "KPI_IMPORTED_BY")]
    pub imported_by: Option<String>,
}

/// The limits of the worker processes that read workbooks (shared with `kpi-server`).
#[derive(Debug, Clone, Args)]
pub struct IsolationArgs {
    /// Address space of one parse worker, in MiB: a file needing more is rejected (`reader_failed`).
    #[arg(long, env = "KPI_WORKER_MEMORY_MIB", default_value_t = 512)]
    pub worker_memory_mib: u64,
    /// Seconds one file may take to read, in CPU and wall-clock time alike (`too_slow`).
    #[arg(long, env = "KPI_PARSE_DEADLINE_SECONDS", default_value_t = 10)]
    pub parse_deadline_seconds: u64,
}

impl IsolationArgs {
    /// The limits, for `workers` worker processes.
    pub fn config(&self, workers: usize) -> IsolationConfig {
        IsolationConfig::from_flags(workers, self.worker_memory_mib, self.parse_deadline_seconds)
    }
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[arg(long, value_parser = parse_unit)]
    pub unit: UnitCode,
    #[arg(long, value_parser = parse_period)]
    pub period: Period,
    /// Output file; default: `<unit>-<period>.xlsx` in the current folder.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder to write the reports into (created if needed).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The years to write.
    #[arg(long, num_args = 1.., default_values_t = [2023, 2024])]
    pub years: Vec<i32>,
}

/// Why a command failed as a whole (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Reader(#[from] WorkerError),
    #[error("the batch stopped: {0}")]
    Stopped(String),
    #[error("unit {0} is not in the catalog")]
    UnknownUnit(UnitCode),
}

impl Cli {
    /// Runs the command. `Ok(true)` when every file was accepted (or nothing was imported),
    /// `Ok(false)` when a file was rejected.
    pub async fn run(self) -> Result<bool, RunError> {
        let catalog_text = kpi_store::read_catalog_text(self.catalog.as_deref())?;
        let parse_catalog = || kpi_core::Catalog::from_toml(&catalog_text).map_err(StoreError::from);
        match self.command {
            Command::Import(args) => {
                let inputs = collect_inputs(&args.paths)?;
                let store = Store::connect(&args.database_url).await?;
                // The catalog is configuration, not report data: every command applies it
                // (idempotently), dry runs included, so their predictions see the same units.
                store.load_catalog_text(&catalog_text).await?;
                drop(catalog_text);
                // Validate against the catalog as the store holds it: the one source that
                // queries and the server's uploads use too.
                let catalog = store.snapshot().await?.catalog()?;
                if let Some(unit) = &args.unit
                    && catalog.unit(unit).is_none()
                {
                    return Err(RunError::UnknownUnit(unit.clone()));
                }
                let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
                let reader = SheetReader::start(WorkerCommand::current_exe()?, args.isolation.config(jobs)).await?;
                let options = BatchOptions {
                    import: ImportOptions {
                        dry_run: args.dry_run,
                        unit: args.unit,
                        period: args.period,
                        imported_by: args.imported_by.unwrap_or_else(os_user),
                        lang: self.lang,
                    },
                    jobs,
                    progress: std::sync::Arc::new(Terminal::new(
                        inputs.len(),
                        std::io::stderr().is_terminal(),
                        self.lang,
                    )),
                };
                let report = run_batch(&store, &reader, catalog, inputs, &options).await;
                say(&format!("\n{}", render_summary(&report, self.lang)));
                if let Some(path) = &args.report_json {
                    write_json(&report, path)?;
                }
                match report.stopped {
                    Some(reason) => Err(RunError::Stopped(reason)),
                    None => Ok(!report.any_rejected()),
                }
            }
            Command::Template(args) => {
                let bytes = template(&parse_catalog()?, &args.unit, args.period)?;
                let path = args.output.unwrap_or_else(|| {
                    PathBuf::from(format!("{}-{}.xlsx", args.unit.as_str().to_lowercase(), args.period.code()))
                });
                std::fs::write(&path, bytes).map_err(|source| TemplateError::Io { path: path.clone(), source })?;
                say(&format!("{}\n", path.display()));
                Ok(true)
            }
            Command::Overdue(args) => {
                let store = Store::connect(&args.database.database_url).await?;
                store.load_catalog_text(&catalog_text).await?;
                say(&cycle::overdue(&store, &args, self.lang).await?);
                Ok(true)
            }
            Command::Approval(command) => {
                let store = Store::connect(command.database_url()).await?;
                store.load_catalog_text(&catalog_text).await?;
                say(&cycle::approval(&store, &command, self.lang).await?);
                Ok(true)
            }
            Command::DemoData(args) => {
                for path in write_demo_data(&parse_catalog()?, &args.output, &args.years)? {
                    say(&format!("{}\n", path.display()));
                }
                Ok(true)
            }
        }
    }
}

pub fn parse_unit(text: &str) -> Result<UnitCode, String> {
    UnitCode::parse_lenient(text).map_err(|e| e.to_string())
}

pub fn parse_period(text: &str) -> Result<Period, String> {
    Period::parse_vietnamese(text).map_err(|e| e.to_string())
}

/// The OS user, for `--imported-by`'s default.
pub fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["kpi-import", "import", "a.xlsx", "--period", "Năm 2022", "--unit", "pnv"]);
        let Ok(Cli { command: Command::Import(args), .. }) = cli else { panic!("parse failed") };
        assert_eq!(args.period, Some(Period::Year(2022)));
        assert_eq!(args.unit.map(|u| u.to_string()), Some("PNV".to_owned()));
    }
}
