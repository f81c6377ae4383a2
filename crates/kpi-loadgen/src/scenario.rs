//! The scenarios: which RPC one call makes. Each request is built once, before measuring, and
//! cloned per call, so a measured call costs the client as little as possible.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use kpi_core::{Catalog, Period, UnitCode};
use kpi_proto::v1;
use kpi_proto::v1::import_service_client::ImportServiceClient;
use kpi_proto::v1::kpi_service_client::KpiServiceClient;
use serde::Serialize;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{IntoRequest, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::RunArgs;

/// Upload chunk size: what a real client might send, well under gRPC's 4 MiB message limit.
const UPLOAD_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// grpc.health.v1 Check of the whole server: the floor every other scenario is held to.
    Health,
    /// GetKpi of --unit, --indicator, --period.
    Kpi,
    /// GetScorecard of --unit for --period.
    Scorecard,
    /// RankUnits of the children of --unit on --indicator for --period.
    Ranking,
    /// GetTrend of --unit and --indicator from --from-period to --period.
    Trend,
    /// GetCompleteness below --unit for --period.
    Completeness,
    /// ImportWorkbook of a demo report (dry run: validated, never stored).
    Upload,
}

/// One prepared call.
#[derive(Debug, Clone)]
pub enum Call {
    Health(HealthCheckRequest),
    Kpi(v1::GetKpiRequest),
    Scorecard(v1::GetScorecardRequest),
    Ranking(v1::RankUnitsRequest),
    Trend(v1::GetTrendRequest),
    Completeness(v1::GetCompletenessRequest),
    Upload { file_name: String, bytes: Arc<Vec<u8>> },
}

impl Call {
    /// The floor: a health check of the whole server (service "").
    pub fn health() -> Call {
        Call::Health(HealthCheckRequest { service: String::new() })
    }

    /// The call of `scenario`, from the run's arguments.
    pub fn prepare(scenario: Scenario, args: &RunArgs) -> Result<Call> {
        let period = Period::parse(&args.period).context("--period")?.code();
        let (unit, indicator) = (args.unit.clone(), args.indicator.clone());
        Ok(match scenario {
            Scenario::Health => Call::health(),
            Scenario::Kpi => Call::Kpi(v1::GetKpiRequest { unit_code: unit, indicator_code: indicator, period }),
            Scenario::Scorecard => Call::Scorecard(v1::GetScorecardRequest {
                resolution_code: args.resolution.clone(),
                unit_code: unit,
                period,
            }),
            Scenario::Ranking => {
                Call::Ranking(v1::RankUnitsRequest { parent_code: unit, indicator_code: indicator, period })
            }
            Scenario::Trend => Call::Trend(v1::GetTrendRequest {
                unit_code: unit,
                indicator_code: indicator,
                from_period: trend_start(args)?,
                to_period: period,
            }),
            Scenario::Completeness => {
                Call::Completeness(v1::GetCompletenessRequest { parent_code: unit, period, ..Default::default() })
            }
            Scenario::Upload => upload(args.catalog.as_deref(), &args.unit, &args.period)?,
        })
    }
}

/// --from-period, or four years before --period: a five-point trend.
fn trend_start(args: &RunArgs) -> Result<String> {
    if let Some(from) = &args.from_period {
        return Ok(Period::parse(from).context("--from-period")?.code());
    }
    match Period::parse(&args.period)? {
        Period::Year(year) => Ok(Period::Year(year - 4).code()),
        other => bail!("--period {other} is not a year: give --from-period for the trend"),
    }
}

/// A demo report of `unit` (or, when it reports nothing, of the first unit below it that does).
fn upload(catalog: Option<&Path>, unit: &str, period: &str) -> Result<Call> {
    let catalog = kpi_store::load_catalog_file(catalog)?;
    let unit = reporting_unit(&catalog, &UnitCode::parse(unit)?)?;
    let period = Period::parse(period)?;
    let bytes = kpi_importer::template::demo_report(&catalog, &unit, period)?;
    let file_name = format!("{}-{}.xlsx", unit.as_str().to_lowercase(), period.code());
    Ok(Call::Upload { file_name, bytes: Arc::new(bytes) })
}

/// Districts and countries report nothing themselves; their first reporting descendant
/// stands in, so `--unit PACNAM` (the default) uploads a commune's report.
fn reporting_unit(catalog: &Catalog, unit: &UnitCode) -> Result<UnitCode> {
    catalog
        .units
        .iter()
        .find(|u| !u.reports.is_empty() && is_within(catalog, &u.code, unit))
        .map(|u| u.code.clone())
        .ok_or_else(|| anyhow!("no unit at or below {unit} reports anything in this catalog"))
}

/// Whether `code` is `ancestor` or below it.
fn is_within<'a>(catalog: &'a Catalog, mut code: &'a UnitCode, ancestor: &UnitCode) -> bool {
    loop {
        if code == ancestor {
            return true;
        }
        match catalog.unit(code).and_then(|u| u.parent.as_ref()) {
            Some(parent) => code = parent,
            None => return false,
        }
    }
}

/// The clients of one task, all over the one shared channel.
#[derive(Debug, Clone)]
pub struct Client {
    health: HealthClient<Channel>,
    kpi: KpiServiceClient<Channel>,
    import: ImportServiceClient<Channel>,
    token: Option<MetadataValue<Ascii>>,
}

impl Client {
    pub fn new(channel: Channel, token: Option<&str>) -> Result<Client> {
        let token = token.map(|t| format!("Bearer {t}").parse()).transpose().context("--token")?;
        Ok(Client {
            health: HealthClient::new(channel.clone()),
            kpi: KpiServiceClient::new(channel.clone()),
            import: ImportServiceClient::new(channel),
            token,
        })
    }

    fn request<T>(&self, message: impl IntoRequest<T>) -> Request<T> {
        let mut request = message.into_request();
        if let Some(token) = &self.token {
            request.metadata_mut().insert("authorization", token.clone());
        }
        request
    }

    /// Makes one call; an error status, or an upload the server rejects, is an error.
    pub async fn call(&mut self, call: &Call) -> Result<()> {
        match call {
            Call::Health(r) => drop(self.health.check(self.request(r.clone())).await?),
            Call::Kpi(r) => drop(self.kpi.get_kpi(self.request(r.clone())).await?),
            Call::Scorecard(r) => drop(self.kpi.get_scorecard(self.request(r.clone())).await?),
            Call::Ranking(r) => drop(self.kpi.rank_units(self.request(r.clone())).await?),
            Call::Trend(r) => drop(self.kpi.get_trend(self.request(r.clone())).await?),
            Call::Completeness(r) => drop(self.kpi.get_completeness(self.request(r.clone())).await?),
            Call::Upload { file_name, bytes } => {
                let request = self.request(tokio_stream::iter(chunks(file_name, bytes)));
                let result = self.import.import_workbook(request).await?.into_inner();
                if result.status == "rejected" {
                    let codes: Vec<&str> = result.errors.iter().map(|e| e.code.as_str()).collect();
                    bail!("the server rejected {file_name}: {}", codes.join(", "));
                }
            }
        }
        Ok(())
    }
}

/// A dry-run upload of `bytes`: the file name and options ride on the first chunk.
fn chunks(file_name: &str, bytes: &[u8]) -> Vec<v1::ImportChunk> {
    let mut chunks: Vec<v1::ImportChunk> =
        bytes.chunks(UPLOAD_CHUNK).map(|data| v1::ImportChunk { data: data.to_vec(), ..Default::default() }).collect();
    if let Some(first) = chunks.first_mut() {
        first.file_name = file_name.to_owned();
        first.dry_run = true;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_district_uploads_the_report_of_its_first_reporting_unit() -> Result<()> {
        let catalog = kpi_store::load_catalog_file(None)?;
        assert_eq!(reporting_unit(&catalog, &UnitCode::parse("PACNAM")?)?.as_str(), "BOCBO");
        assert_eq!(reporting_unit(&catalog, &UnitCode::parse("PNV")?)?.as_str(), "PNV");
        Ok(())
    }
}
