//! Measuring a phase: C tasks over the connections, each making its share of the calls one
//! after the other; latency percentiles; and the server's CPU time and peak memory from /proc.
//!
//! A call the server refuses for load (RESOURCE_EXHAUSTED) is counted apart from failures,
//! and its task waits the server's retry hint before its next call, as a polite client does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::scenario::{Call, Client};

/// What one phase measured.
#[derive(Debug)]
pub struct Sample {
    pub calls: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// Latencies of the calls that succeeded, sorted.
    pub latencies: Vec<Duration>,
    /// Latencies of the calls refused for load, sorted.
    pub refused: Vec<Duration>,
    pub elapsed: Duration,
}

/// What one task saw.
#[derive(Debug, Default)]
struct TaskOutcome {
    latencies: Vec<Duration>,
    refused: Vec<Duration>,
    errors: Vec<String>,
}

/// The longest retry hint a task waits, whatever the server says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(1);

/// One task's calls, one after the other.
async fn calls_in_sequence(mut client: Client, call: Arc<Call>, calls: usize) -> TaskOutcome {
    let mut outcome = TaskOutcome { latencies: Vec::with_capacity(calls), ..TaskOutcome::default() };
    for _ in 0..calls {
        let started = Instant::now();
        match client.call(&call).await {
            Ok(()) => outcome.latencies.push(started.elapsed()),
            Err(error) => match refusal_retry_delay(&error) {
                Some(delay) => {
                    outcome.refused.push(started.elapsed());
                    tokio::time::sleep(delay.min(MAX_RETRY_WAIT)).await;
                }
                None => outcome.errors.push(format!("{error:#}")),
            },
        }
    }
    outcome
}

/// The wait a refusal for load asks for (RESOURCE_EXHAUSTED with a `RetryInfo`), or `None`
/// for any other error.
fn refusal_retry_delay(error: &anyhow::Error) -> Option<Duration> {
    use tonic_types::StatusExt;
    let status = error.downcast_ref::<tonic::Status>()?;
    if status.code() != tonic::Code::ResourceExhausted {
        return None;
    }
    status.get_error_details().retry_info()?.retry_delay
}

/// Makes `calls` calls from `concurrency` tasks spread over the `clients` (one per
/// connection); task i makes calls / concurrency of them, plus one for the first
/// calls % concurrency tasks.
pub async fn drive(clients: &[Client], call: &Arc<Call>, calls: usize, concurrency: usize) -> Result<Sample> {
    let concurrency = concurrency.max(1);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        let share = calls / concurrency + usize::from(task < calls % concurrency);
        let client = clients.get(task % clients.len().max(1)).context("no connection")?.clone();
        tasks.spawn(calls_in_sequence(client, Arc::clone(call), share));
    }
    let mut sample = Sample {
        calls,
        errors: 0,
        first_error: None,
        latencies: Vec::with_capacity(calls),
        refused: Vec::new(),
        elapsed: Duration::ZERO,
    };
    while let Some(done) = tasks.join_next().await {
        let outcome = done.context("a calling task failed")?;
        sample.latencies.extend(outcome.latencies);
        sample.refused.extend(outcome.refused);
        sample.errors += outcome.errors.len();
        sample.first_error = sample.first_error.or(outcome.errors.into_iter().next());
    }
    sample.elapsed = started.elapsed();
    sample.latencies.sort_unstable();
    sample.refused.sort_unstable();
    Ok(sample)
}

/// The nearest-rank percentile (`p` in 0–100) of sorted latencies; `None` when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// A phase's figures, as printed and as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub phase: String,
    pub calls: usize,
    pub errors: usize,
    /// Calls refused for load (RESOURCE_EXHAUSTED with a retry hint), and how fast.
    pub refused: usize,
    pub refused_p99_ms: Option<f64>,
    pub calls_per_second: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Server CPU (user + system, parse workers included) over the phase, in seconds, and per
    /// call in µs, when the server's pid was given.
    pub server_cpu_seconds: Option<f64>,
    pub cpu_us_per_call: Option<f64>,
    /// The server's peak resident memory since it started (VmHWM), when its pid was given.
    pub server_peak_rss_mib: Option<f64>,
}

impl Stats {
    pub fn new(phase: &str, sample: &Sample, cpu_seconds: Option<f64>, peak_rss_mib: Option<f64>) -> Stats {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        let calls = sample.calls.max(1) as f64;
        Stats {
            phase: phase.to_owned(),
            calls: sample.calls,
            errors: sample.errors,
            refused: sample.refused.len(),
            refused_p99_ms: ms(percentile(&sample.refused, 99.0)),
            calls_per_second: sample.calls as f64 / sample.elapsed.as_secs_f64().max(f64::EPSILON),
            p50_ms: ms(percentile(&sample.latencies, 50.0)),
            p99_ms: ms(percentile(&sample.latencies, 99.0)),
            max_ms: ms(sample.latencies.last().copied()),
            server_cpu_seconds: cpu_seconds,
            cpu_us_per_call: cpu_seconds.map(|s| s * 1e6 / calls),
            server_peak_rss_mib: peak_rss_mib,
        }
    }
}

/// The peak resident memory of process `pid` since it started, in MiB (`VmHWM` of
/// /proc/PID/status).
pub fn peak_rss_mib(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_peak_rss_kib(&text).map(|kib| kib as f64 / 1024.0).with_context(|| format!("no VmHWM in {path}"))
}

/// The `VmHWM:  1234 kB` line's figure.
fn parse_peak_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// CPU time of the server process, from /proc/PID/stat.
#[derive(Debug, Clone, Copy)]
pub struct ServerCpu {
    pid: u32,
    ticks_per_second: f64,
}

impl ServerCpu {
    /// Checks the process exists and reads the clock-tick rate once.
    pub fn new(pid: u32) -> Result<ServerCpu> {
        let cpu = ServerCpu { pid, ticks_per_second: clock_ticks_per_second() };
        cpu.seconds().with_context(|| format!("cannot read the CPU time of process {pid}"))?;
        Ok(cpu)
    }

    /// CPU seconds used so far by the server and its parse workers: the server's own time and
    /// that of its reaped children, plus the time of its live children (the workers of a pool
    /// live long, so their time would otherwise never show).
    pub fn seconds(&self) -> Result<f64> {
        let own = read_stat(self.pid)?;
        let mut ticks = own.own_ticks + own.children_ticks;
        for child in live_children(self.pid) {
            ticks += child.own_ticks + child.children_ticks;
        }
        Ok(ticks as f64 / self.ticks_per_second)
    }
}

/// `getconf CLK_TCK`, or 100 (the value of every mainstream Linux build) if it cannot be run.
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// The fields of /proc/PID/stat that matter here, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub ppid: u32,
    /// utime + stime (fields 14 and 15).
    pub own_ticks: u64,
    /// cutime + cstime (fields 16 and 17): children waited for.
    pub children_ticks: u64,
}

/// Parses one /proc/PID/stat line. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Result<ProcStat> {
    let after_name = text.rfind(')').map(|end| &text[end + 1..]).ok_or_else(|| anyhow!("no command name"))?;
    // Field 3 (state) is the first after the name, so field n is at index n - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        let text = fields.get(n - 3).ok_or_else(|| anyhow!("field {n} is missing"))?;
        text.parse().with_context(|| format!("field {n} is not a number: {text:?}"))
    };
    Ok(ProcStat {
        ppid: u32::try_from(field(4)?)?,
        own_ticks: field(14)? + field(15)?,
        children_ticks: field(16)? + field(17)?,
    })
}

fn read_stat(pid: u32) -> Result<ProcStat> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_stat(&text).with_context(|| format!("unexpected {path}"))
}

/// The live children of `pid`; a process that ends while being read is skipped.
fn live_children(pid: u32) -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|candidate| read_stat(candidate).ok())
        .filter(|stat| stat.ppid == pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(Duration::from_millis(1)));
        let three = [Duration::from_millis(1), Duration::from_millis(2), Duration::from_millis(3)];
        assert_eq!(percentile(&three, 50.0), Some(Duration::from_millis(2)));
        assert_eq!(percentile(&three, 99.0), Some(Duration::from_millis(3)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() -> Result<()> {
        // A command name with a space and a parenthesis, as a process may set.
        let line = "4242 (kpi (server) x) S 17 4242 17 0 -1 4194560 1200 0 0 0 \
                    250 75 3 4 20 0 9 0 123456 987654321 4000 18446744073709551615";
        let stat = parse_stat(line)?;
        assert_eq!(stat, ProcStat { ppid: 17, own_ticks: 325, children_ticks: 7 });
        assert!(parse_stat("4242 kpi-server S 1").is_err());
        assert!(parse_stat("4242 (kpi-server) S 1 2").is_err());
        Ok(())
    }

    #[test]
    fn this_process_can_be_read() -> Result<()> {
        let stat = read_stat(std::process::id())?;
        assert!(stat.ppid > 0);
        assert!(peak_rss_mib(std::process::id())? > 0.0);
        Ok(())
    }

    #[test]
    fn peak_memory_is_read_from_vm_hwm() {
        let status = "Name:\tkpi-server\nVmPeak:\t  900000 kB\nVmHWM:\t   65432 kB\nVmRSS:\t 12345 kB\n";
        assert_eq!(parse_peak_rss_kib(status), Some(65432));
        assert_eq!(parse_peak_rss_kib("VmRSS:\t 12 kB\n"), None);
    }
}
