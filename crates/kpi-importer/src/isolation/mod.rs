//! Reading untrusted workbooks in worker processes with hard OS limits.
//!
//! calamine is trusted with neither memory nor time: a few kilobytes can make it reserve
//! terabytes, and a Rust allocation failure aborts the whole process, which no `catch_unwind`
//! prevents. So every workbook, from the command line and from uploads alike, is read by a
//! worker process ([`worker`]) that limits its own address space and CPU time, under a
//! wall-clock deadline that the parent ([`pool`]) enforces by killing it. The worker speaks a
//! small versioned protocol ([`protocol`]): bytes in, cells or a problem out. The catalog and
//! the report rules stay in the parent, so a catalog change never has to reach a worker.
//!
//! On platforms without the limits ([`limits::SUPPORTED`]), [`SheetReader::start`] falls back
//! to reading in-process, with a loud warning.

pub mod limits;
pub mod pool;
pub mod protocol;
pub mod worker;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::issues::Problem;
use crate::workbook::{SheetCells, read_sheets};
pub use pool::WorkerPool;
pub use worker::{WORKER_ARG, serve_if_worker};

/// The limits of workbook reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationConfig {
    /// Worker processes reading at once (`--jobs` for the CLI, `--parse-workers` for the server).
    pub workers: usize,
    /// Address space of one worker.
    pub memory_limit_bytes: u64,
    /// CPU time one file may use.
    pub cpu_seconds_per_file: u64,
    /// Wall-clock time one file may take before its worker is killed.
    pub deadline: Duration,
}

impl IsolationConfig {
    /// The limits as the command line and the server take them: workers, MiB of address space
    /// per worker (at least 16), and seconds per file (at least 1), in CPU and wall-clock time
    /// alike.
    pub fn from_flags(workers: usize, memory_mib: u64, seconds_per_file: u64) -> IsolationConfig {
        let seconds = seconds_per_file.max(1);
        IsolationConfig {
            workers: workers.max(1),
            memory_limit_bytes: memory_mib.max(16).saturating_mul(1024 * 1024),
            cpu_seconds_per_file: seconds,
            deadline: Duration::from_secs(seconds),
        }
    }
}

impl Default for IsolationConfig {
    fn default() -> Self {
        IsolationConfig {
            workers: 2,
            memory_limit_bytes: 512 * 1024 * 1024,
            cpu_seconds_per_file: 10,
            deadline: Duration::from_secs(10),
        }
    }
}

/// The program started as a worker and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// A `kpi-import` or `kpi-server` binary in worker mode.
    pub fn binary(program: impl Into<PathBuf>) -> WorkerCommand {
        WorkerCommand { program: program.into(), args: vec![OsString::from(WORKER_ARG)] }
    }

    /// This very program in worker mode: what the binaries use.
    pub fn current_exe() -> Result<WorkerCommand, WorkerError> {
        std::env::current_exe().map(WorkerCommand::binary).map_err(WorkerError::NoProgram)
    }
}

/// The reader itself failed, not a file: no worker could be started or spoken to.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot find this program to start parse workers: {0}")]
    NoProgram(std::io::Error),
    #[error("cannot start the parse worker {program}: {source}")]
    Spawn { program: PathBuf, source: std::io::Error },
    #[error("the parse worker did not start properly: {0}")]
    Handshake(String),
    #[error("the parse workers are shut down")]
    Closed,
    #[error("a parsing task failed: {0}")]
    Task(String),
}

/// Where workbooks are read: in worker processes, or in this process where the platform
/// cannot limit a worker.
#[derive(Debug, Clone)]
pub enum SheetReader {
    Isolated(Arc<WorkerPool>),
    InProcess,
}

impl SheetReader {
    /// Worker processes where the platform can limit them; otherwise in-process, loudly.
    pub async fn start(command: WorkerCommand, config: IsolationConfig) -> Result<SheetReader, WorkerError> {
        if !limits::SUPPORTED {
            tracing::warn!(
                "this platform cannot limit a parse worker's memory and CPU: workbooks are read in-process, \
                 and a hostile file can exhaust this process"
            );
            return Ok(SheetReader::InProcess);
        }
        Ok(SheetReader::Isolated(Arc::new(WorkerPool::start(command, config).await?)))
    }

    /// Reads a workbook's sheets; the outer error is the reader's own failure.
    pub async fn read(&self, workbook: Arc<Vec<u8>>) -> Result<Result<Vec<SheetCells>, Problem>, WorkerError> {
        match self {
            SheetReader::Isolated(pool) => pool.read(&workbook).await,
            SheetReader::InProcess => Ok(tokio::task::spawn_blocking(move || read_sheets(&workbook))
                .await
                .unwrap_or_else(|_| Err(Problem::ReaderFailed { detail: "it panicked".into() }))),
        }
    }
}
