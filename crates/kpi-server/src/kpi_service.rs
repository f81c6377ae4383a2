//! `kpi.v1.KpiService`: reading KPIs, scorecards, trends, rankings, completeness, timeliness,
//! approval status and revision history. Each handler parses its request into domain types,
//! asks the store, and converts the answer; the rules themselves live in `kpi-core` and
//! `kpi-store`.

use kpi_core::{IndicatorCode, Period, Status as KpiState, UnitCode};
use kpi_proto::v1;
use kpi_proto::v1::kpi_service_server::KpiService;
use kpi_store::Store;
use tonic::{Request, Response, Status};

use crate::admission::{Admission, Cost};
use crate::auth::Caller;
use crate::convert;
use crate::errors::ApiError;
use crate::telemetry::{observe, record_request};

/// Longest trend served, in periods (a hundred years of quarters would be a mistake).
const MAX_TREND_POINTS: usize = 240;
/// Most units one QueryKpis may name (children included come on top, a page at a time).
const MAX_QUERY_UNITS: usize = 1_000;
/// Bytes per chunk of an exported workbook.
const EXPORT_CHUNK_BYTES: usize = 64 * 1024;
/// Most indicators one QueryKpis may name.
const MAX_QUERY_INDICATORS: usize = 200;

/// The KPI service over a store.
#[derive(Debug, Clone)]
pub struct KpiApi {
    store: Store,
    admission: Admission,
}

impl KpiApi {
    pub fn new(store: Store, admission: Admission) -> Self {
        KpiApi { store, admission }
    }

    async fn list_units(&self, request: v1::ListUnitsRequest) -> Result<v1::ListUnitsResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let (offset, size) = convert::page(request.page_size, &request.page_token)?;
        let units: Vec<&kpi_store::UnitInfo> = if request.parent_code.is_empty() {
            snapshot.units.iter().collect()
        } else {
            let parent = convert::known_unit(&snapshot, "parent_code", &request.parent_code)?;
            snapshot.units.iter().filter(|u| u.definition.parent.as_ref() == Some(&parent.definition.code)).collect()
        };
        Ok(v1::ListUnitsResponse {
            units: units.iter().skip(offset).take(size).map(|u| convert::unit(u)).collect(),
            next_page_token: convert::next_page_token(offset, size, units.len()),
        })
    }

    async fn list_indicators(
        &self,
        request: v1::ListIndicatorsRequest,
    ) -> Result<v1::ListIndicatorsResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let resolution = if request.resolution_code.is_empty() {
            None
        } else {
            let code = convert::resolution_code("resolution_code", &request.resolution_code)?;
            Some(snapshot.resolution(&code).ok_or_else(|| ApiError::not_found("resolution", &code))?.code.clone())
        };
        Ok(v1::ListIndicatorsResponse {
            indicators: snapshot
                .indicators
                .iter()
                .filter(|i| resolution.as_ref().is_none_or(|r| &i.resolution == r))
                .map(|i| convert::indicator(i, &snapshot))
                .collect(),
        })
    }

    async fn get_kpi(&self, request: v1::GetKpiRequest) -> Result<v1::Kpi, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let unit = convert::known_unit(&snapshot, "unit_code", &request.unit_code)?;
        let indicator = convert::known_indicator(&snapshot, "indicator_code", &request.indicator_code)?;
        let kpis =
            self.store.kpis(&unit.definition.code, std::slice::from_ref(&indicator.definition.code), &[period]).await?;
        kpis.first().map(convert::kpi).ok_or_else(|| ApiError::not_found("kpi", &request.indicator_code))
    }

    async fn query_kpis(&self, request: v1::QueryKpisRequest) -> Result<v1::QueryKpisResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let (offset, size) = convert::page(request.page_size, &request.page_token)?;
        if request.unit_codes.is_empty() {
            return Err(ApiError::invalid("unit_codes", "name at least one unit"));
        }
        if request.periods.is_empty() {
            return Err(ApiError::invalid("periods", "name at least one period"));
        }
        convert::at_most("unit_codes", request.unit_codes.len(), MAX_QUERY_UNITS)?;
        convert::at_most("indicator_codes", request.indicator_codes.len(), MAX_QUERY_INDICATORS)?;
        convert::at_most("periods", request.periods.len(), MAX_TREND_POINTS)?;
        let periods = request.periods.iter().map(|p| convert::period("periods", p)).collect::<Result<Vec<_>, _>>()?;
        let mut units: Vec<UnitCode> = Vec::new();
        for text in &request.unit_codes {
            let unit = convert::known_unit(&snapshot, "unit_codes", text)?;
            units.push(unit.definition.code.clone());
            if request.include_children {
                units.extend(snapshot.tree.children(&unit.definition.code).iter().cloned());
            }
        }
        let indicators: Vec<IndicatorCode> = if request.indicator_codes.is_empty() {
            snapshot.indicators.iter().map(|i| i.definition.code.clone()).collect()
        } else {
            request
                .indicator_codes
                .iter()
                .map(|text| {
                    convert::known_indicator(&snapshot, "indicator_codes", text).map(|i| i.definition.code.clone())
                })
                .collect::<Result<_, _>>()?
        };

        // Unit-major order; compute only the units the page touches.
        let per_unit = indicators.len() * periods.len();
        let total = units.len() * per_unit;
        let end = offset.saturating_add(size).min(total);
        let mut kpis = Vec::with_capacity(end.saturating_sub(offset));
        if per_unit > 0 && offset < end {
            let first_unit = offset / per_unit;
            let touched = (end - 1) / per_unit - first_unit + 1;
            for (unit_index, unit) in units.iter().enumerate().skip(first_unit).take(touched) {
                let unit_kpis = self.store.kpis(unit, &indicators, &periods).await?;
                // Store order is indicator-major within a unit, as is the page's.
                for (within, kpi) in unit_kpis.iter().enumerate() {
                    let position = unit_index * per_unit + within;
                    if (offset..end).contains(&position) {
                        kpis.push(convert::kpi(kpi));
                    }
                }
            }
        }
        Ok(v1::QueryKpisResponse { kpis, next_page_token: convert::next_page_token(offset, size, total) })
    }

    async fn get_scorecard(&self, request: v1::GetScorecardRequest) -> Result<v1::GetScorecardResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let resolution = convert::resolution_code("resolution_code", &request.resolution_code)?;
        let period = convert::period("period", &request.period)?;
        let unit = convert::known_unit(&snapshot, "unit_code", &request.unit_code)?;
        if snapshot.resolution(&resolution).is_none() {
            return Err(ApiError::not_found("resolution", resolution));
        }
        let with_target: Vec<IndicatorCode> = snapshot
            .indicators
            .iter()
            .filter(|i| i.resolution == resolution && snapshot.target_for(i, &unit.definition.code, period).is_some())
            .map(|i| i.definition.code.clone())
            .collect();
        let kpis = self.store.kpis(&unit.definition.code, &with_target, &[period]).await?;
        let count = |state: KpiState| {
            i32::try_from(kpis.iter().filter(|k| k.evaluation.status == state).count()).unwrap_or(i32::MAX)
        };
        Ok(v1::GetScorecardResponse {
            met_count: count(KpiState::Met),
            not_met_count: count(KpiState::NotMet),
            no_data_count: count(KpiState::NoData),
            entries: kpis.iter().map(convert::kpi).collect(),
        })
    }

    async fn get_trend(&self, request: v1::GetTrendRequest) -> Result<v1::GetTrendResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let from = convert::period("from_period", &request.from_period)?;
        let to = convert::period("to_period", &request.to_period)?;
        if !from.same_granularity(to) {
            return Err(ApiError::invalid("to_period", "from_period and to_period must be periods of the same length"));
        }
        if to < from {
            return Err(ApiError::invalid("to_period", "must not come before from_period"));
        }
        let unit = convert::known_unit(&snapshot, "unit_code", &request.unit_code)?;
        let indicator = convert::known_indicator(&snapshot, "indicator_code", &request.indicator_code)?;
        let mut periods: Vec<Period> = vec![from];
        while let Some(&last) = periods.last() {
            if last == to {
                break;
            }
            if periods.len() >= MAX_TREND_POINTS {
                return Err(ApiError::invalid("to_period", format!("a trend has at most {MAX_TREND_POINTS} periods")));
            }
            periods.push(last.next());
        }
        let kpis =
            self.store.kpis(&unit.definition.code, std::slice::from_ref(&indicator.definition.code), &periods).await?;
        Ok(v1::GetTrendResponse { points: kpis.iter().map(convert::kpi).collect() })
    }

    async fn rank_units(&self, request: v1::RankUnitsRequest) -> Result<v1::RankUnitsResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let parent = convert::known_unit(&snapshot, "parent_code", &request.parent_code)?;
        let indicator = convert::known_indicator(&snapshot, "indicator_code", &request.indicator_code)?;
        let children = snapshot.tree.children(&parent.definition.code);
        let kpis =
            self.store.kpis_of_units(children, std::slice::from_ref(&indicator.definition.code), &[period]).await?;
        let values =
            kpis.iter().enumerate().map(|(index, kpi)| ((&kpi.unit, index), kpi.figure.map(kpi_core::Figure::value)));
        let ranked = kpi_core::rank::competition_ranks(values.collect(), indicator.definition.direction);
        let entries = ranked
            .into_iter()
            .map(|(rank, (unit, index), _)| v1::RankEntry {
                rank: i32::try_from(rank).unwrap_or(i32::MAX),
                unit_name: snapshot.unit(unit).map(|u| u.definition.name.clone()).unwrap_or_default(),
                kpi: Some(convert::kpi(&kpis[index])),
            })
            .collect();
        Ok(v1::RankUnitsResponse { entries })
    }

    async fn get_completeness(
        &self,
        request: v1::GetCompletenessRequest,
    ) -> Result<v1::GetCompletenessResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let as_of = convert::as_of("as_of", &request.as_of)?;
        let parent = convert::known_unit(&snapshot, "parent_code", &request.parent_code)?;
        let completeness = self.store.completeness(&parent.definition.code, period, as_of).await?;
        Ok(convert::completeness(&parent.definition.code, &completeness, request.include_units))
    }

    async fn list_overdue(&self, request: v1::ListOverdueRequest) -> Result<v1::ListOverdueResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let as_of = convert::as_of("as_of", &request.as_of)?;
        let parent = convert::known_unit(&snapshot, "parent_code", &request.parent_code)?;
        let overdue = self.store.overdue(&parent.definition.code, period, as_of).await?;
        Ok(v1::ListOverdueResponse {
            units: overdue.iter().map(convert::unit_timeliness).collect(),
            as_of: as_of.to_string(),
        })
    }

    async fn list_data_issues(
        &self,
        request: v1::ListDataIssuesRequest,
    ) -> Result<v1::ListDataIssuesResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let kind = convert::issue_kind("kind", &request.kind)?;
        let parent = convert::known_unit(&snapshot, "parent_code", &request.parent_code)?;
        let issues = self.store.list_data_issues(&parent.definition.code, period, kind).await?;
        Ok(v1::ListDataIssuesResponse { issues: issues.iter().map(convert::data_issue).collect() })
    }

    async fn export_scorecard(&self, request: v1::ExportScorecardRequest) -> Result<Vec<u8>, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let compare = if request.compare_period.is_empty() {
            None
        } else {
            Some(convert::period("compare_period", &request.compare_period)?)
        };
        let lang = if request.lang.is_empty() {
            kpi_core::text::Lang::default()
        } else {
            request.lang.parse().map_err(|e: String| ApiError::invalid("lang", e))?
        };
        let as_of = convert::as_of("as_of", &request.as_of)?;
        let unit = convert::known_unit(&snapshot, "unit_code", &request.unit_code)?;
        let review = kpi_report::ScorecardRequest { unit: unit.definition.code.clone(), period, compare, lang, as_of };
        Ok(kpi_report::scorecard_workbook(&self.store, &review).await?)
    }

    async fn get_approval_status(&self, request: v1::GetApprovalStatusRequest) -> Result<v1::ApprovalStatus, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let unit = convert::known_unit(&snapshot, "unit_code", &request.unit_code)?;
        let status = self.store.approval_status(&unit.definition.code, period).await?;
        Ok(convert::approval_status(&status))
    }

    async fn list_revisions(&self, request: v1::ListRevisionsRequest) -> Result<v1::ListRevisionsResponse, ApiError> {
        let snapshot = self.store.snapshot().await?;
        let period = convert::period("period", &request.period)?;
        let unit = convert::known_unit(&snapshot, "unit_code", &request.unit_code)?;
        let revisions = self.store.list_revisions(&unit.definition.code, period).await?;
        let approval = self.store.approval_status(&unit.definition.code, period).await?;
        Ok(v1::ListRevisionsResponse {
            revisions: revisions.iter().map(convert::revision).collect(),
            approval_events: approval.history.iter().map(convert::approval_event).collect(),
        })
    }
}

#[tonic::async_trait]
impl KpiService for KpiApi {
    async fn list_units(
        &self,
        request: Request<v1::ListUnitsRequest>,
    ) -> Result<Response<v1::ListUnitsResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.parent_code, "");
        observe(&self.admission, caller, Cost::Light, self.list_units(request)).await
    }

    async fn list_indicators(
        &self,
        request: Request<v1::ListIndicatorsRequest>,
    ) -> Result<Response<v1::ListIndicatorsResponse>, Status> {
        let caller = Caller::of(&request);
        observe(&self.admission, caller, Cost::Light, self.list_indicators(request.into_inner())).await
    }

    async fn get_kpi(&self, request: Request<v1::GetKpiRequest>) -> Result<Response<v1::Kpi>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.unit_code, &request.period);
        observe(&self.admission, caller, Cost::Light, self.get_kpi(request)).await
    }

    async fn query_kpis(
        &self,
        request: Request<v1::QueryKpisRequest>,
    ) -> Result<Response<v1::QueryKpisResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&convert::list_head(&request.unit_codes), &convert::list_head(&request.periods));
        observe(&self.admission, caller, Cost::Heavy, self.query_kpis(request)).await
    }

    async fn get_scorecard(
        &self,
        request: Request<v1::GetScorecardRequest>,
    ) -> Result<Response<v1::GetScorecardResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.unit_code, &request.period);
        observe(&self.admission, caller, Cost::Light, self.get_scorecard(request)).await
    }

    async fn get_trend(&self, request: Request<v1::GetTrendRequest>) -> Result<Response<v1::GetTrendResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.unit_code, &format!("{}..{}", request.from_period, request.to_period));
        observe(&self.admission, caller, Cost::Light, self.get_trend(request)).await
    }

    async fn rank_units(
        &self,
        request: Request<v1::RankUnitsRequest>,
    ) -> Result<Response<v1::RankUnitsResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.parent_code, &request.period);
        observe(&self.admission, caller, Cost::Light, self.rank_units(request)).await
    }

    async fn get_completeness(
        &self,
        request: Request<v1::GetCompletenessRequest>,
    ) -> Result<Response<v1::GetCompletenessResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.parent_code, &request.period);
        observe(&self.admission, caller, Cost::Heavy, self.get_completeness(request)).await
    }

    async fn list_overdue(
        &self,
        request: Request<v1::ListOverdueRequest>,
    ) -> Result<Response<v1::ListOverdueResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.parent_code, &request.period);
        observe(&self.admission, caller, Cost::Heavy, self.list_overdue(request)).await
    }

    type ExportScorecardStream = tokio_stream::Iter<std::vec::IntoIter<Result<v1::FileChunk, Status>>>;

    async fn export_scorecard(
        &self,
        request: Request<v1::ExportScorecardRequest>,
    ) -> Result<Response<Self::ExportScorecardStream>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.unit_code, &request.period);
        let bytes = observe(&self.admission, caller, Cost::Heavy, self.export_scorecard(request)).await?.into_inner();
        let chunks: Vec<Result<v1::FileChunk, Status>> =
            bytes.chunks(EXPORT_CHUNK_BYTES).map(|data| Ok(v1::FileChunk { data: data.to_vec() })).collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn list_data_issues(
        &self,
        request: Request<v1::ListDataIssuesRequest>,
    ) -> Result<Response<v1::ListDataIssuesResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.parent_code, &request.period);
        observe(&self.admission, caller, Cost::Heavy, self.list_data_issues(request)).await
    }

    async fn get_approval_status(
        &self,
        request: Request<v1::GetApprovalStatusRequest>,
    ) -> Result<Response<v1::ApprovalStatus>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.unit_code, &request.period);
        observe(&self.admission, caller, Cost::Light, self.get_approval_status(request)).await
    }

    async fn list_revisions(
        &self,
        request: Request<v1::ListRevisionsRequest>,
    ) -> Result<Response<v1::ListRevisionsResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        record_request(&request.unit_code, &request.period);
        observe(&self.admission, caller, Cost::Light, self.list_revisions(request)).await
    }
}
