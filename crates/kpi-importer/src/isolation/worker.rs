//! The worker side: a process started by [`super::pool::WorkerPool`] that reads workbooks
//! from its stdin and writes their cells to its stdout, one frame each, under the limits the
//! parent asked for. It holds no catalog and no database: untrusted bytes in, cells out.

use std::ffi::OsStr;
use std::io::{BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

use super::limits;
use super::protocol::{self, Answer, ProtocolError};
use crate::workbook::read_sheets;

/// The first argument that turns `kpi-import` or `kpi-server` into a parse worker.
pub const WORKER_ARG: &str = "__kpi-parse-worker";

/// Runs the parse worker when the process was started as one; the binaries call this first
/// thing in `main`, before any runtime or thread exists.
pub fn serve_if_worker() -> Option<ExitCode> {
    if std::env::args_os().nth(1).as_deref() != Some(OsStr::new(WORKER_ARG)) {
        return None;
    }
    let stdin = BufReader::new(std::io::stdin().lock());
    let stdout = BufWriter::with_capacity(FRAME_BUFFER_BYTES, frame_output());
    Some(match serve(stdin, stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parse worker: {error}");
            ExitCode::from(70)
        }
    })
}

/// Frames up to this size leave the worker in one write, so the parent wakes once per file.
const FRAME_BUFFER_BYTES: usize = 64 * 1024;

/// Where frames go: stdout itself, not the standard library's handle to it. That handle is
/// line-buffered, and a frame is binary: it was cut at its last newline byte, so most answers
/// left in two writes, each waking the parent.
fn frame_output() -> Box<dyn Write> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    Box::new(std::io::stdout().lock())
}

/// Why a worker stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum WorkerStop {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// Answers requests until the parent closes stdin.
pub fn serve(mut input: impl Read, mut output: impl Write) -> Result<(), WorkerStop> {
    // A reader panic is caught and answered as a problem; printing each one would only fill
    // the stderr pipe, which the parent reads after a death.
    std::panic::set_hook(Box::new(|_| {}));
    let Some(hello) = read_frame(&mut input)? else { return Ok(()) };
    let hello = protocol::decode_hello(&hello)?;
    let applied = limits::SUPPORTED && limits::apply_memory_limit(hello.memory_limit_bytes).is_ok();
    write_frame(&mut output, &protocol::encode_ready(applied))?;
    while let Some(request) = read_frame(&mut input)? {
        let workbook = protocol::decode_request(&request)?;
        if applied {
            limits::allow_cpu_seconds(hello.cpu_seconds_per_file)?;
        }
        let answer: Answer = read_sheets(workbook);
        drop(request);
        write_frame(&mut output, &protocol::encode_answer(&answer))?;
    }
    Ok(())
}

/// One frame, or `None` at a clean end of input.
fn read_frame(input: &mut impl Read) -> Result<Option<Vec<u8>>, WorkerStop> {
    let mut prefix = [0u8; 4];
    match input.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    let length = protocol::announced_length(prefix)?;
    let mut payload = Vec::with_capacity(length.min(protocol::FRAME_RESERVE_BYTES) as usize);
    input.take(u64::from(length)).read_to_end(&mut payload)?;
    if payload.len() != length as usize {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(payload))
}

fn write_frame(output: &mut impl Write, payload: &[u8]) -> Result<(), WorkerStop> {
    let Some(prefix) = protocol::length_prefix(payload) else {
        // Cells within the limits never come close; answer with a problem rather than die.
        let answer: Answer = Err(crate::issues::Problem::TooLarge { detail: "the cells read are too large".into() });
        return write_frame(output, &protocol::encode_answer(&answer));
    };
    output.write_all(&prefix)?;
    output.write_all(payload)?;
    output.flush()?;
    Ok(())
}
