//! `kpi-loadgen run`: connect, measure the health floor, then the scenario, the same way.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tonic::transport::Endpoint;

use crate::cli::RunArgs;
use crate::measure::{self, ServerCpu, Stats};
use crate::report::Report;
use crate::scenario::{Call, Client};

pub async fn run(args: &RunArgs) -> Result<()> {
    let scenario = Arc::new(Call::prepare(args.scenario, args)?);
    let cpu = args.server_pid.map(ServerCpu::new).transpose()?;
    let endpoint =
        Endpoint::from_shared(args.addr.clone()).with_context(|| format!("--addr {}", args.addr))?.tcp_nodelay(true);
    let mut clients = Vec::with_capacity(usize::from(args.connections));
    for _ in 0..args.connections {
        let channel = endpoint.connect().await.with_context(|| format!("cannot connect to {}", args.addr))?;
        clients.push(Client::new(channel, args.token.as_deref())?);
    }
    let floor = phase(&clients, "health", &Arc::new(Call::health()), args, cpu).await?;
    let name = serde_json::to_value(args.scenario)?.as_str().unwrap_or("scenario").to_owned();
    let measured = phase(&clients, &name, &scenario, args, cpu).await?;
    let report = Report::new(args, floor, measured);
    report.print(args.json)?;
    report.check()
}

/// Warms up, then measures `call`, with the server's CPU time read just before and after.
async fn phase(
    clients: &[Client],
    name: &str,
    call: &Arc<Call>,
    args: &RunArgs,
    cpu: Option<ServerCpu>,
) -> Result<Stats> {
    let warmup = measure::drive(clients, call, args.warmup, args.concurrency).await?;
    if let Some(error) = warmup.first_error {
        bail!("{name}: {} of {} warm-up calls failed, the first with: {error}", warmup.errors, warmup.calls);
    }
    let before = cpu.map(|c| c.seconds()).transpose()?;
    let sample = measure::drive(clients, call, args.calls, args.concurrency).await?;
    let after = cpu.map(|c| c.seconds()).transpose()?;
    let cpu_seconds = before.zip(after).map(|(before, after)| after - before);
    if let Some(error) = &sample.first_error {
        eprintln!("kpi-loadgen: {name}: {} of {} calls failed, the first with: {error}", sample.errors, sample.calls);
    }
    let peak_rss = args.server_pid.map(measure::peak_rss_mib).transpose()?;
    Ok(Stats::new(name, &sample, cpu_seconds, peak_rss))
}
