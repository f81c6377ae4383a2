//! The parent side: a small pool of long-lived worker processes, each reading one workbook at
//! a time under a wall-clock deadline, with the next workbook already waiting in its pipe.
//!
//! Each worker is a lane: a file is written to the worker's stdin, then waits its turn to read
//! the answer from its stdout, in the order the files were sent. Holding the stdin lock until
//! the stdout turn is taken keeps at most two files per worker: one being read and one
//! queued, so the worker starts the next file the moment it answers, instead of waiting for
//! this process to decode the answer and send another. A file's deadline runs from its turn,
//! when the worker has answered the file before it and started this one.
//!
//! A worker that dies (out of memory, a crash, SIGXCPU) or misses the deadline is killed, and
//! its file is rejected as `reader_failed` or `too_slow`; the file queued behind it never
//! started, and is sent again to a fresh worker. A call dropped while its file is in a
//! worker's pipe (a cancelled or timed-out upload) kills that worker (`kill_on_drop` besides),
//! because its answer would otherwise be read as the next file's: no core stays busy.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{Mutex, Semaphore};

use super::protocol::{self, Answer, Hello};
use super::{IsolationConfig, WorkerCommand, WorkerError};
use crate::issues::Problem;

/// How long a new worker gets to start and answer the hello.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
/// How much of a dead worker's stderr goes into the file's message.
const STDERR_TAIL_BYTES: u64 = 2048;
/// Files admitted per worker at once: the lane keeps at most two in the pipe (one being read,
/// one queued), and two more wait with their bytes read and hashed, so the pipe never runs dry
/// while this process is busy with an answer. Against two, this cut the read pass of a dry
/// run with `--jobs 2` by about a fifth.
pub const FILES_PER_WORKER: usize = 4;
/// Times a file is sent to a worker before it is rejected: it goes again only when the
/// worker died on the file before it, so more means workers that cannot read at all.
const MAX_SENDS: usize = 3;

/// Worker processes reading workbooks, at most `workers` at once.
#[derive(Debug)]
pub struct WorkerPool {
    command: WorkerCommand,
    config: IsolationConfig,
    /// One slot per worker; empty until first needed, and refilled after a worker is retired.
    lanes: Vec<Mutex<Option<Arc<Lane>>>>,
    permits: Semaphore,
}

/// One running worker and its pipes.
#[derive(Debug)]
struct Lane {
    stdin: Mutex<ChildStdin>,
    stdout: Mutex<BufReader<ChildStdout>>,
    child: Mutex<Child>,
    stderr: Mutex<Option<ChildStderr>>,
    /// The worker died, was killed, or holds an answer nobody will read: no file is sent to
    /// it any more, and a file waiting in its pipe goes to another.
    retired: AtomicBool,
    /// Files sent or about to be sent to it.
    queued: AtomicUsize,
}

/// How one send of a file to a worker ended.
enum Exchange {
    /// The worker's answer, still encoded.
    Answered(Vec<u8>),
    /// The worker was retired before it started the file: send it elsewhere.
    NotStarted,
    /// The file killed or stalled its worker.
    Failed(Problem),
}

impl WorkerPool {
    /// Starts the first worker, so a worker that cannot start is an error now, not a rejected
    /// file later; the others start when first needed.
    pub async fn start(command: WorkerCommand, config: IsolationConfig) -> Result<WorkerPool, WorkerError> {
        let workers = config.workers.max(1);
        let pool = WorkerPool {
            command,
            config,
            lanes: (0..workers).map(|_| Mutex::new(None)).collect(),
            permits: Semaphore::new(workers * FILES_PER_WORKER),
        };
        if let Some(first) = pool.lanes.first() {
            *first.lock().await = Some(Arc::new(pool.spawn().await?));
        }
        Ok(pool)
    }

    /// Reads one workbook in a worker. The outer error is the pool's own failure (no worker
    /// could be started); everything the file causes is in the answer.
    pub async fn read(&self, workbook: &[u8]) -> Result<Answer, WorkerError> {
        let permit = self.permits.acquire().await.map_err(|_| WorkerError::Closed)?;
        let request = protocol::encode_request(workbook);
        for _ in 0..MAX_SENDS {
            let lane = self.lane().await?;
            let queued = Queued(&lane);
            let exchanged = self.exchange(&lane, &request).await;
            drop(queued);
            match exchanged {
                Exchange::Answered(answer) => {
                    // The next file is already in the worker's pipe: let another task send
                    // while this one decodes.
                    drop(permit);
                    return Ok(protocol::decode_answer(&answer).unwrap_or_else(|error| {
                        tracing::warn!(%error, "a parse worker answered with a malformed frame");
                        Err(Problem::ReaderFailed { detail: "its reader answered with a malformed frame".into() })
                    }));
                }
                Exchange::NotStarted => continue,
                Exchange::Failed(problem) => return Ok(Err(problem)),
            }
        }
        let detail = "its reader failed on the files before it, again and again".into();
        Ok(Err(Problem::ReaderFailed { detail }))
    }

    /// The live worker with the fewest files queued, started anew in a slot that is empty or
    /// whose worker was retired. The file about to be sent is counted in its queue.
    async fn lane(&self) -> Result<Arc<Lane>, WorkerError> {
        let mut chosen = (usize::MAX, 0);
        for (index, slot) in self.lanes.iter().enumerate() {
            let queued = match &*slot.lock().await {
                Some(lane) if lane.usable() => lane.queued.load(Ordering::Relaxed),
                _ => 0,
            };
            if queued < chosen.0 {
                chosen = (queued, index);
            }
            if queued == 0 {
                break;
            }
        }
        let slot = self.lanes.get(chosen.1).ok_or(WorkerError::Closed)?;
        let mut slot = slot.lock().await;
        let lane = match slot.as_ref().filter(|lane| lane.usable()) {
            Some(lane) => Arc::clone(lane),
            None => {
                let lane = Arc::new(self.spawn().await?);
                *slot = Some(Arc::clone(&lane));
                lane
            }
        };
        lane.queued.fetch_add(1, Ordering::Relaxed);
        Ok(lane)
    }

    /// Sends the request to `lane`'s worker and reads its answer in turn, under the deadline.
    async fn exchange(&self, lane: &Lane, request: &[u8]) -> Exchange {
        let mut stdin = lane.stdin.lock().await;
        if lane.retired.load(Ordering::Acquire) {
            return Exchange::NotStarted;
        }
        // From the first byte written until the answer is read, a dropped call must retire the
        // worker: its answer would be read as the next file's.
        let sent = RetireOnDrop(Some(lane));
        if write_frame(&mut *stdin, request).await.is_err() {
            // The worker is gone, and never had this file whole; the file it was reading (if
            // any) says why.
            lane.retire();
            sent.done();
            return Exchange::NotStarted;
        }
        let mut stdout = lane.stdout.lock().await;
        drop(stdin);
        if lane.retired.load(Ordering::Acquire) {
            // The file before this one killed or stalled the worker, so this one never started.
            sent.done();
            return Exchange::NotStarted;
        }
        let answer = tokio::time::timeout(self.config.deadline, read_frame(&mut *stdout)).await;
        sent.done();
        match answer {
            Ok(Ok(answer)) => Exchange::Answered(answer),
            Ok(Err(broken)) => {
                lane.retire();
                drop(stdout);
                let detail = lane.death(&broken).await;
                tracing::warn!(%detail, "a parse worker failed on a file; it is replaced");
                Exchange::Failed(Problem::ReaderFailed { detail })
            }
            Err(_) => {
                lane.retire();
                lane.kill().await;
                let seconds = self.config.deadline.as_secs().max(1);
                tracing::warn!(seconds, "a parse worker missed its deadline; it is killed and replaced");
                Exchange::Failed(Problem::TooSlow { seconds })
            }
        }
    }

    async fn spawn(&self) -> Result<Lane, WorkerError> {
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| WorkerError::Spawn { program: self.command.program.clone(), source })?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(WorkerError::Handshake("the worker's pipes are missing".into()));
        };
        let mut stdout = BufReader::new(stdout);
        let hello = Hello {
            memory_limit_bytes: self.config.memory_limit_bytes,
            cpu_seconds_per_file: self.config.cpu_seconds_per_file,
        };
        let ready = tokio::time::timeout(STARTUP_DEADLINE, handshake(&mut stdin, &mut stdout, hello))
            .await
            .map_err(|_| WorkerError::Handshake("the worker did not answer within 10 s".into()))?;
        let lane = Lane {
            stdin: Mutex::new(stdin),
            stdout: Mutex::new(stdout),
            stderr: Mutex::new(child.stderr.take()),
            child: Mutex::new(child),
            retired: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
        };
        match ready {
            Ok(true) => Ok(lane),
            Ok(false) => {
                tracing::warn!("a parse worker could not limit its memory and CPU; it runs unlimited");
                Ok(lane)
            }
            Err(error) => Err(WorkerError::Handshake(lane.death(&error).await)),
        }
    }
}

/// One file counted in its lane's queue, until it is answered, sent elsewhere, or dropped.
struct Queued<'a>(&'a Lane);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Retires its lane and kills the worker when dropped before [`RetireOnDrop::done`]: a call
/// dropped mid-exchange.
struct RetireOnDrop<'a>(Option<&'a Lane>);

impl RetireOnDrop<'_> {
    /// The exchange ended without being dropped: what happens to the lane is decided there.
    fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for RetireOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(lane) = self.0.take() {
            lane.retire();
            // Killed now if nobody else holds the child; `kill_on_drop` kills it at the latest
            // when its slot is refilled.
            if let Ok(mut child) = lane.child.try_lock() {
                child.start_kill().ok();
            }
        }
    }
}

async fn handshake(stdin: &mut ChildStdin, stdout: &mut BufReader<ChildStdout>, hello: Hello) -> std::io::Result<bool> {
    write_frame(stdin, &protocol::encode_hello(hello)).await?;
    let ready = read_frame(stdout).await?;
    protocol::decode_ready(&ready).map_err(std::io::Error::other)
}

impl Lane {
    /// Whether files may still be sent to it: not retired, and its process still running
    /// (one may have been killed from outside while idle).
    fn usable(&self) -> bool {
        !self.retired.load(Ordering::Acquire)
            && self.child.try_lock().map_or(true, |mut child| matches!(child.try_wait(), Ok(None)))
    }

    /// No file is sent to it any more (its slot gets a new worker on the next file).
    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    async fn kill(&self) {
        self.child.lock().await.kill().await.ok();
    }

    /// What happened to a worker whose pipe broke: its exit, and the end of what it printed.
    async fn death(&self, broken: &std::io::Error) -> String {
        // A worker that closed its pipe but lingers is killed; one that died is reaped.
        let status = {
            let mut child = self.child.lock().await;
            match tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                Ok(Ok(status)) => Some(status),
                _ => {
                    child.kill().await.ok();
                    None
                }
            }
        };
        let mut said = Vec::new();
        if let Some(stderr) = self.stderr.lock().await.take() {
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

/// One frame, reserving no more than [`protocol::FRAME_RESERVE_BYTES`] before its bytes arrive and
/// growing the buffer as they do, so a lying length allocates little.
async fn read_frame(input: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    input.read_exact(&mut prefix).await?;
    let length = protocol::announced_length(prefix).map_err(std::io::Error::other)?;
    let mut payload = Vec::with_capacity(length.min(protocol::FRAME_RESERVE_BYTES) as usize);
    input.take(u64::from(length)).read_to_end(&mut payload).await?;
    if payload.len() != length as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(payload)
}
