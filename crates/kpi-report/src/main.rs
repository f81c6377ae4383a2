//! `kpi-report`: the review workbook from the command line. Thin on purpose: parse the
//! arguments, load the catalog as the other programs do, write the library's bytes to a file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kpi_core::{Period, UnitCode};
use kpi_report::{Lang, ScorecardRequest, scorecard_workbook};

/// Writes the review of the resolution as a workbook.
#[derive(Debug, Parser)]
#[command(name = "kpi-report", version, about)]
struct Cli {
    /// The catalog (units, indicators, targets); default: the shipped Pác Nặm catalog.
    #[arg(long, env = "KPI_CATALOG", global = true)]
    catalog: Option<PathBuf>,
    /// Database URL (sqlite://file?mode=rwc or postgres://…); default: the server's embedded file.
    #[arg(long, env = "DATABASE_URL", default_value = kpi_store::DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The scorecard workbook of one unit and period.
    Scorecard(ScorecardArgs),
}

#[derive(Debug, Args)]
struct ScorecardArgs {
    #[arg(long, value_parser = |text: &str| UnitCode::parse_lenient(text).map_err(|e| e.to_string()))]
    unit: UnitCode,
    #[arg(long, value_parser = |text: &str| Period::parse_vietnamese(text).map_err(|e| e.to_string()))]
    period: Period,
    /// The period the change column compares with.
    #[arg(long, value_parser = |text: &str| Period::parse_vietnamese(text).map_err(|e| e.to_string()))]
    compare: Option<Period>,
    #[arg(long, default_value = "vi")]
    lang: Lang,
    /// The day the reporting progress is judged on (YYYY-MM-DD); default: today in Vietnam.
    #[arg(long)]
    as_of: Option<chrono::NaiveDate>,
    #[arg(short, long)]
    output: PathBuf,
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let catalog_text = kpi_store::read_catalog_text(cli.catalog.as_deref())?;
    let store = kpi_store::Store::connect(&cli.database_url).await?;
    store.load_catalog_text(&catalog_text).await?;
    let Command::Scorecard(args) = cli.command;
    let request = ScorecardRequest {
        unit: args.unit,
        period: args.period,
        compare: args.compare,
        lang: args.lang,
        as_of: args.as_of.unwrap_or_else(|| kpi_core::calendar::local_date(chrono::Utc::now())),
    };
    let bytes = scorecard_workbook(&store, &request).await?;
    std::fs::write(&args.output, bytes).with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("{}", args.output.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kpi-report: {error:#}");
            ExitCode::from(2)
        }
    }
}
