//! The command line: `run` (measure a scenario against the health floor), `dataset` (write a
//! national-scale catalog and its demo reports) and `floor` (calamine alone on a corpus).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::scenario::Scenario;

/// Load tool of the gRPC KPI service.
#[derive(Debug, Parser)]
#[command(name = "kpi-loadgen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure one scenario, and the health check before it as the floor.
    Run(RunArgs),
    /// Write a national catalog and a demo report for every reporting unit and year.
    Dataset(DatasetArgs),
    /// The reading floor: open every workbook under the folders with calamine alone and visit
    /// every cell of every sheet, one file after the other; print the time and the files.
    Floor(FloorArgs),
}

#[derive(Debug, Args)]
pub struct FloorArgs {
    /// Folders (searched recursively) of .xlsx/.xls/.ods/.xlsb files.
    #[arg(required = true)]
    pub folders: Vec<PathBuf>,
    /// Also time, in this process and on the same files, the importer's own stages: the
    /// pre-checks (`sniff`) and the whole reading into cells (`read_sheets`, pre-checks
    /// included), each as a ratio to the floor.
    #[arg(long)]
    pub stages: bool,
    /// With `--stages`, also time the importer's checking of the cells read (`parse_sheets`,
    /// the report contract against this catalog), which runs in the importer's own process.
    #[arg(long, requires = "stages")]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The server, as an http:// URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Measured calls of each phase (the floor and the scenario).
    #[arg(long, default_value_t = 1000)]
    pub calls: usize,
    /// Tasks calling at once, each one call after the other, spread over --connections.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Connections the tasks share (a server allows a bounded number of streams on each, so
    /// offering thousands of calls at once takes several).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub connections: u16,
    /// Unmeasured calls before each phase, so caches and connections are warm.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// The server's process id: report its CPU time per call (Linux /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Bearer token, for a server with authentication on (upload needs the import role).
    #[arg(long, env = "KPI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The unit asked about (the parent for ranking and completeness).
    #[arg(long, default_value = "PACNAM")]
    pub unit: String,
    #[arg(long, default_value = "B05")]
    pub indicator: String,
    /// Period code: 2022, 2023S1, 2023Q2, 2023-03.
    #[arg(long, default_value = "2022")]
    pub period: String,
    /// First period of the trend; default: four years before --period (which must be a year).
    #[arg(long)]
    pub from_period: Option<String>,
    /// Resolution of the scorecard.
    #[arg(long, default_value = "09-NQ/HU")]
    pub resolution: String,
    /// Catalog the upload's demo report is built from (the server's); default: the shipped one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Print the results as one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Folder to write catalog.toml and reports/YEAR/ into (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Years of reports, ending with the resolution's last year (2025).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub years: u16,
    #[arg(long, default_value_t = 63, value_parser = clap::value_parser!(u16).range(1..=999))]
    pub provinces: u16,
    /// Districts per province.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=999))]
    pub districts: u16,
    /// Communes per district.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=999))]
    pub communes: u16,
    /// Store the reports straight into this database (through the store's revision writes,
    /// eight at a time) instead of writing workbooks: the 10-year national set in minutes.
    #[arg(long)]
    pub database_url: Option<String>,
}
