//! The parent side: a small pool of long-lived worker processes, each reading one workbook at
//! a time under a wall-clock deadline.
//!
//! A worker that answers goes back to the pool. One that dies (out of memory, a crash, SIGXCPU)
//! or misses the deadline is killed and replaced by a fresh one on the next file, and the file
//! is rejected as `reader_failed` or `too_slow`. A call dropped mid-read (a cancelled or timed
//! out upload) drops its worker, and `kill_on_drop` kills it: no core stays busy.

use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use super::protocol::{self, Answer, Hello};
use super::{IsolationConfig, WorkerCommand, WorkerError};
use crate::issues::Problem;

/// How long a new worker gets to start and answer the hello.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
/// How much of a dead worker's stderr goes into the file's message.
const STDERR_TAIL_BYTES: u64 = 2048;

/// Worker processes reading workbooks, at most `workers` at once.
#[derive(Debug)]
pub struct WorkerPool {
    command: WorkerCommand,
    config: IsolationConfig,
    idle: Mutex<Vec<Worker>>,
    permits: Semaphore,
}

/// One running worker and its pipes.
#[derive(Debug)]
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Option<ChildStderr>,
}

impl WorkerPool {
    /// Starts the first worker, so a worker that cannot start is an error now, not a rejected
    /// file later; the others start when first needed.
    pub async fn start(command: WorkerCommand, config: IsolationConfig) -> Result<WorkerPool, WorkerError> {
        let workers = config.workers.max(1);
        let pool = WorkerPool { command, config, idle: Mutex::new(Vec::new()), permits: Semaphore::new(workers) };
        let first = pool.spawn().await?;
        pool.release(first);
        Ok(pool)
    }

    /// Reads one workbook in a worker. The outer error is the pool's own failure (no worker
    /// could be started); everything the file causes is in the answer.
    pub async fn read(&self, workbook: &[u8]) -> Result<Answer, WorkerError> {
        let permit = self.permits.acquire().await.map_err(|_| WorkerError::Closed)?;
        let mut worker = match self.take_idle() {
            Some(worker) => worker,
            None => self.spawn().await?,
        };
        match tokio::time::timeout(self.config.deadline, worker.exchange(workbook)).await {
            Ok(Ok(answer)) => {
                // Free the worker and let the next file's task send it its workbook before
                // this answer is decoded: the worker reads while this process decodes and
                // checks, instead of waiting for both.
                self.release(worker);
                drop(permit);
                tokio::task::yield_now().await;
                Ok(protocol::decode_answer(&answer).unwrap_or_else(|error| {
                    tracing::warn!(%error, "a parse worker answered with a malformed frame");
                    Err(Problem::ReaderFailed { detail: "its reader answered with a malformed frame".into() })
                }))
            }
            Ok(Err(broken)) => {
                let detail = worker.death(&broken).await;
                tracing::warn!(%detail, "a parse worker failed on a file; it is replaced");
                Ok(Err(Problem::ReaderFailed { detail }))
            }
            Err(_) => {
                worker.kill().await;
                let seconds = self.config.deadline.as_secs().max(1);
                tracing::warn!(seconds, "a parse worker missed its deadline; it is killed and replaced");
                Ok(Err(Problem::TooSlow { seconds }))
            }
        }
    }

    /// An idle worker still alive, if any (one may have been killed from outside meanwhile).
    fn take_idle(&self) -> Option<Worker> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(mut worker) = idle.pop() {
            if matches!(worker.child.try_wait(), Ok(None)) {
                return Some(worker);
            }
        }
        None
    }

    fn release(&self, worker: Worker) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(worker);
        }
    }

    async fn spawn(&self) -> Result<Worker, WorkerError> {
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| WorkerError::Spawn { program: self.command.program.clone(), source })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(WorkerError::Handshake("the worker's pipes are missing".into()));
        };
        let mut worker = Worker { stderr: child.stderr.take(), child, stdin, stdout: BufReader::new(stdout) };
        let hello = Hello {
            memory_limit_bytes: self.config.memory_limit_bytes,
            cpu_seconds_per_file: self.config.cpu_seconds_per_file,
        };
        let ready = tokio::time::timeout(STARTUP_DEADLINE, worker.handshake(hello))
            .await
            .map_err(|_| WorkerError::Handshake("the worker did not answer within 10 s".into()))?;
        match ready {
            Ok(true) => Ok(worker),
            Ok(false) => {
                tracing::warn!("a parse worker could not limit its memory and CPU; it runs unlimited");
                Ok(worker)
            }
            Err(error) => {
                let detail = worker.death(&error).await;
                Err(WorkerError::Handshake(detail))
            }
        }
    }
}

impl Worker {
    async fn handshake(&mut self, hello: Hello) -> std::io::Result<bool> {
        write_frame(&mut self.stdin, &protocol::encode_hello(hello)).await?;
        let ready = read_frame(&mut self.stdout).await?;
        protocol::decode_ready(&ready).map_err(std::io::Error::other)
    }

    /// Sends one workbook and returns the worker's answer, still encoded.
    async fn exchange(&mut self, workbook: &[u8]) -> std::io::Result<Vec<u8>> {
        write_frame(&mut self.stdin, &protocol::encode_request(workbook)).await?;
        read_frame(&mut self.stdout).await
    }

    async fn kill(mut self) {
        self.child.kill().await.ok();
    }

    /// What happened to a worker whose pipe broke: its exit, and the end of what it printed.
    async fn death(mut self, broken: &std::io::Error) -> String {
        // A worker that closed its pipe but lingers is killed; one that died is reaped.
        let status = match tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                self.child.kill().await.ok();
                None
            }
        };
        let mut said = Vec::new();
        if let Some(stderr) = self.stderr.take() {
            let mut tail = stderr.take(STDERR_TAIL_BYTES);
            tokio::time::timeout(Duration::from_secs(1), tail.read_to_end(&mut said)).await.ok();
        }
        let said = String::from_utf8_lossy(&said);
        let said = said.lines().find(|line| !line.trim().is_empty()).unwrap_or_default().trim();
        let how = match status {
            Some(status) => describe_exit(status),
            None => format!("its pipe broke ({broken})"),
        };
        if said.is_empty() { how } else { format!("{how}: {said}") }
    }
}

/// A worker's exit in words: the signals a limit sends are named for what they mean.
fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(6) => return "it ran out of memory or aborted (SIGABRT)".to_owned(),
            Some(9) => return "it was killed (SIGKILL)".to_owned(),
            Some(11) => return "it crashed (SIGSEGV)".to_owned(),
            Some(24) => return "it used up its CPU time (SIGXCPU)".to_owned(),
            Some(signal) => return format!("it was stopped by signal {signal}"),
            None => {}
        }
    }
    match status.code() {
        Some(code) => format!("it exited with code {code}"),
        None => "it stopped".to_owned(),
    }
}

async fn write_frame(output: &mut (impl AsyncWrite + Unpin), payload: &[u8]) -> std::io::Result<()> {
    let prefix = protocol::length_prefix(payload).ok_or_else(|| std::io::Error::other("frame too large"))?;
    // One write: a frame is small, and a second system call per file costs more than the copy.
    let mut frame = Vec::with_capacity(prefix.len() + payload.len());
    frame.extend_from_slice(&prefix);
    frame.extend_from_slice(payload);
    output.write_all(&frame).await?;
    output.flush().await
}

/// One frame, growing the buffer as bytes arrive so a lying length allocates nothing.
async fn read_frame(input: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    input.read_exact(&mut prefix).await?;
    let length = protocol::announced_length(prefix).map_err(std::io::Error::other)?;
    let mut payload = Vec::new();
    input.take(u64::from(length)).read_to_end(&mut payload).await?;
    if payload.len() != length as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(payload)
}
