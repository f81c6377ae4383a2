//! The results: the floor and the scenario as a table or as one JSON line, their ratios, and
//! the verdict (any failed call fails the run).

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::RunArgs;
use crate::measure::Stats;

/// Server CPU per phase, in seconds, under which the tick granularity of /proc dominates.
const COARSE_CPU: f64 = 0.2;

/// The scenario divided by the floor: how much a query costs beyond the bare RPC.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub cpu_per_call: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub addr: String,
    pub calls: usize,
    pub concurrency: usize,
    pub connections: u16,
    pub warmup: usize,
    pub floor: Stats,
    pub scenario: Stats,
    pub ratios: Ratios,
}

fn ratio(scenario: Option<f64>, floor: Option<f64>) -> Option<f64> {
    scenario.zip(floor).filter(|(_, floor)| *floor > 0.0).map(|(s, f)| s / f)
}

impl Report {
    pub fn new(args: &RunArgs, floor: Stats, scenario: Stats) -> Report {
        let ratios = Ratios {
            p50: ratio(scenario.p50_ms, floor.p50_ms),
            p99: ratio(scenario.p99_ms, floor.p99_ms),
            cpu_per_call: ratio(scenario.cpu_us_per_call, floor.cpu_us_per_call),
        };
        Report {
            addr: args.addr.clone(),
            calls: args.calls,
            concurrency: args.concurrency.max(1),
            connections: args.connections,
            warmup: args.warmup,
            floor,
            scenario,
            ratios,
        }
    }

    pub fn print(&self, json: bool) -> Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
            return Ok(());
        }
        println!(
            "{} at {}: {} calls per phase, concurrency {} over {} connection(s), {} warm-up calls",
            self.scenario.phase, self.addr, self.calls, self.concurrency, self.connections, self.warmup
        );
        println!(
            "{:<13} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9} {:>15} {:>8} {:>12} {:>13}",
            "phase",
            "calls",
            "errors",
            "calls/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "CPU µs/call",
            "refused",
            "refused p99",
            "server peak"
        );
        for stats in [&self.floor, &self.scenario] {
            print_row(stats);
        }
        let x = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}×"));
        println!(
            "{}/health: p50 {}, p99 {}, server CPU per call {}",
            self.scenario.phase,
            x(self.ratios.p50),
            x(self.ratios.p99),
            x(self.ratios.cpu_per_call)
        );
        if [&self.floor, &self.scenario].iter().any(|s| s.server_cpu_seconds.is_some_and(|cpu| cpu < COARSE_CPU)) {
            println!(
                "note: the kernel counts CPU time in clock ticks (10 ms at 100 Hz); under {COARSE_CPU} s a phase is coarse: raise --calls"
            );
        }
        Ok(())
    }

    /// Fails the run when any measured call failed (a refusal for load is not a failure).
    pub fn check(&self) -> Result<()> {
        let failed = self.floor.errors + self.scenario.errors;
        if failed > 0 {
            bail!("{failed} calls failed");
        }
        Ok(())
    }
}

fn print_row(stats: &Stats) {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let cpu = stats.cpu_us_per_call.map_or("-".to_owned(), |v| format!("{v:.0}"));
    let rss = stats.server_peak_rss_mib.map_or("-".to_owned(), |v| format!("{v:.0} MiB"));
    println!(
        "{:<13} {:>7} {:>7} {:>10.1} {:>9} {:>9} {:>9} {:>15} {:>8} {:>12} {:>13}",
        stats.phase,
        stats.calls,
        stats.errors,
        stats.calls_per_second,
        ms(stats.p50_ms),
        ms(stats.p99_ms),
        ms(stats.max_ms),
        cpu,
        stats.refused,
        ms(stats.refused_p99_ms),
        rss
    );
}
