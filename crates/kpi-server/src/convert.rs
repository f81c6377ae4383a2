//! Parsing request fields into domain types (each failure naming its field) and turning
//! domain values into `kpi.v1` messages.

use chrono::{DateTime, NaiveDate, Utc};
use kpi_core::calendar::ReportingRates;
use kpi_core::{
    Direction, Figure, IndicatorCode, IndicatorKind, Period, ResolutionCode, Status, TimeAggregation, UnitCode,
};
use kpi_proto::v1;
use kpi_store::{
    ApprovalEvent, ApprovalStatus, Completeness, DataIssue, IndicatorInfo, IssueKind, Kpi, RevisionInfo, Snapshot,
    StoredIssue, UnitInfo, UnitTimeliness,
};

use crate::errors::ApiError;

/// Page size when the caller does not say.
const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page served; larger requests are clamped to it.
const MAX_PAGE_SIZE: usize = 1000;
/// Who a call is from when it does not say.
const DEFAULT_ACTOR: &str = "grpc";
/// Longest caller name kept.
const MAX_ACTOR_CHARS: usize = 64;
/// Longest comment or reason kept with an approval change.
const MAX_COMMENT_CHARS: usize = 1000;
/// Prefix of page tokens, so a token from another API or version is refused, not misread.
const PAGE_TOKEN_PREFIX: &str = "kpi1.";

pub fn unit_code(field: &'static str, text: &str) -> Result<UnitCode, ApiError> {
    UnitCode::parse(text).map_err(|e| ApiError::invalid(field, e))
}

pub fn indicator_code(field: &'static str, text: &str) -> Result<IndicatorCode, ApiError> {
    IndicatorCode::parse(text).map_err(|e| ApiError::invalid(field, e))
}

pub fn resolution_code(field: &'static str, text: &str) -> Result<ResolutionCode, ApiError> {
    ResolutionCode::parse(text).map_err(|e| ApiError::invalid(field, e))
}

pub fn period(field: &'static str, text: &str) -> Result<Period, ApiError> {
    Period::parse(text).map_err(|e| ApiError::invalid(field, e))
}

/// A day, `YYYY-MM-DD`; empty means today in Vietnam.
pub fn as_of(field: &'static str, text: &str) -> Result<NaiveDate, ApiError> {
    if text.is_empty() {
        return Ok(kpi_core::calendar::local_date(chrono::Utc::now()));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, format!("{} is not a date YYYY-MM-DD", kpi_core::text::excerpt(text))))
}

/// Who is calling, as the `x-kpi-user` header says (kept with revisions and approval
/// changes): control characters dropped, at most [`MAX_ACTOR_CHARS`] characters; `grpc` when
/// the header is absent or empty.
pub fn actor(metadata: &tonic::metadata::MetadataMap) -> String {
    let named = metadata.get("x-kpi-user").and_then(|value| value.to_str().ok()).unwrap_or_default();
    let actor: String = named.chars().filter(|ch| !ch.is_control()).take(MAX_ACTOR_CHARS).collect();
    if actor.trim().is_empty() { DEFAULT_ACTOR.to_owned() } else { actor.trim().to_owned() }
}

/// A comment or reason kept in the audit trail: at most [`MAX_COMMENT_CHARS`] characters,
/// and present when `required`.
pub fn comment(field: &'static str, text: &str, required: bool) -> Result<String, ApiError> {
    let text = text.trim();
    if required && text.is_empty() {
        return Err(ApiError::invalid(field, "say why"));
    }
    at_most(field, text.chars().count(), MAX_COMMENT_CHARS)?;
    Ok(text.to_owned())
}

/// Refuses a list longer than `max` items.
pub fn at_most(field: &'static str, len: usize, max: usize) -> Result<(), ApiError> {
    if len > max { Err(ApiError::invalid(field, format!("{len} items, at most {max}"))) } else { Ok(()) }
}

/// The first few items of a request's list, for the call's log span.
pub fn list_head(items: &[String]) -> String {
    let head: Vec<&str> = items.iter().take(4).map(String::as_str).collect();
    if items.len() > head.len() { format!("{},… ({} in all)", head.join(","), items.len()) } else { head.join(",") }
}

/// A unit that must exist in the catalog.
pub fn known_unit<'a>(snapshot: &'a Snapshot, field: &'static str, text: &str) -> Result<&'a UnitInfo, ApiError> {
    let code = unit_code(field, text)?;
    snapshot.unit(&code).ok_or_else(|| ApiError::not_found("unit", code))
}

/// An indicator that must exist in the catalog.
pub fn known_indicator<'a>(
    snapshot: &'a Snapshot,
    field: &'static str,
    text: &str,
) -> Result<&'a IndicatorInfo, ApiError> {
    let code = indicator_code(field, text)?;
    snapshot.indicator(&code).ok_or_else(|| ApiError::not_found("indicator", code))
}

/// The slice of `total` items a page covers: (offset, size).
pub fn page(page_size: i32, page_token: &str) -> Result<(usize, usize), ApiError> {
    let size = match usize::try_from(page_size) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(size) => size.min(MAX_PAGE_SIZE),
        Err(_) => return Err(ApiError::invalid("page_size", "must not be negative")),
    };
    if page_token.is_empty() {
        return Ok((0, size));
    }
    // Exactly what `next_page_token` writes: the prefix and decimal digits, nothing else.
    let offset = page_token
        .strip_prefix(PAGE_TOKEN_PREFIX)
        .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|rest| rest.parse::<usize>().ok())
        .ok_or_else(|| ApiError::invalid("page_token", "not a token this service issued"))?;
    Ok((offset, size))
}

/// The token of the page after `offset + size`, or empty when `total` is reached.
pub fn next_page_token(offset: usize, size: usize, total: usize) -> String {
    let next = offset.saturating_add(size);
    if next < total { format!("{PAGE_TOKEN_PREFIX}{next}") } else { String::new() }
}

pub fn unit(info: &UnitInfo) -> v1::Unit {
    v1::Unit {
        code: info.definition.code.to_string(),
        name: info.definition.name.clone(),
        kind: info.definition.kind.clone(),
        parent_code: info.definition.parent.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

pub fn indicator(info: &IndicatorInfo, snapshot: &Snapshot) -> v1::Indicator {
    v1::Indicator {
        code: info.definition.code.to_string(),
        name: info.definition.name.clone(),
        name_en: info.definition.name_en.clone(),
        resolution_code: info.resolution.to_string(),
        kind: match info.definition.kind {
            IndicatorKind::Count => v1::IndicatorKind::Count,
            IndicatorKind::Ratio => v1::IndicatorKind::Ratio,
            IndicatorKind::Percent => v1::IndicatorKind::Percent,
        } as i32,
        time_aggregation: match info.definition.time_aggregation {
            TimeAggregation::Stock => v1::TimeAggregation::Stock,
            TimeAggregation::Flow => v1::TimeAggregation::Flow,
        } as i32,
        direction: match info.definition.direction {
            Direction::Higher => v1::Direction::HigherIsBetter,
            Direction::Lower => v1::Direction::LowerIsBetter,
        } as i32,
        unit_of_measure: info.definition.unit_of_measure.clone(),
        reported_by: info.definition.reported_by.as_ref().map(ToString::to_string).unwrap_or_default(),
        targets: snapshot
            .targets
            .iter()
            .filter(|t| t.indicator == info.definition.code)
            .map(|t| v1::Target {
                unit_code: t.unit.to_string(),
                period: t.period.map(|p| p.code()).unwrap_or_default(),
                value: t.value,
            })
            .collect(),
    }
}

pub fn kpi(kpi: &Kpi) -> v1::Kpi {
    let (numerator, denominator) = match kpi.figure {
        Some(Figure::Ratio { numerator, denominator }) => (numerator, denominator),
        _ => (0, 0),
    };
    v1::Kpi {
        unit_code: kpi.unit.to_string(),
        indicator_code: kpi.indicator.to_string(),
        period: kpi.period.code(),
        has_value: kpi.figure.is_some(),
        value: kpi.figure.map(Figure::value).unwrap_or_default(),
        numerator,
        denominator,
        target: kpi.target,
        achievement: kpi.evaluation.achievement,
        status: status(kpi.evaluation.status) as i32,
        reporting_units: i32::try_from(kpi.reporting_units).unwrap_or(i32::MAX),
        expected_units: i32::try_from(kpi.expected_units).unwrap_or(i32::MAX),
        is_final: kpi.figures_final,
    }
}

pub fn status(status: Status) -> v1::KpiStatus {
    match status {
        Status::Met => v1::KpiStatus::Met,
        Status::NotMet => v1::KpiStatus::NotMet,
        Status::NoData => v1::KpiStatus::NoData,
        Status::NoTarget => v1::KpiStatus::NoTarget,
    }
}

pub fn issue(issue: &StoredIssue) -> v1::Issue {
    v1::Issue {
        sheet: issue.sheet.clone(),
        cell: issue.cell.clone(),
        code: issue.code.clone(),
        message: issue.message.clone(),
    }
}

pub fn revision(info: &RevisionInfo) -> v1::Revision {
    v1::Revision {
        number: info.number,
        file_name: info.file_name.clone(),
        sha256: info.sha256.clone(),
        imported_at: Some(timestamp(info.imported_at)),
        imported_by: info.imported_by.clone(),
        prepared_by: info.prepared_by.clone().unwrap_or_default(),
        prepared_on: info.prepared_on.clone().unwrap_or_default(),
        status: info.status.clone(),
        warnings: info.warnings.iter().map(issue).collect(),
    }
}

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

fn count(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub fn unit_timeliness(unit: &UnitTimeliness) -> v1::UnitTimeliness {
    v1::UnitTimeliness {
        unit_code: unit.unit.to_string(),
        unit_name: unit.name.clone(),
        due_date: unit.due_on.to_string(),
        first_accepted_at: unit.first_accepted_at.map(timestamp),
        status: unit.status.as_str().to_owned(),
        working_days_late: count(unit.working_days_late),
    }
}

pub fn reporting_rate(unit: &UnitCode, rates: &ReportingRates) -> v1::ReportingRate {
    v1::ReportingRate {
        unit_code: unit.to_string(),
        expected: count(rates.expected),
        reported: count(rates.reported),
        reported_on_time: count(rates.on_time),
        reporting_rate: rates.reporting_rate(),
        on_time_rate: rates.on_time_rate(),
    }
}

pub fn completeness(
    parent: &UnitCode,
    completeness: &Completeness,
    include_units: bool,
) -> v1::GetCompletenessResponse {
    let codes = |units: &[UnitCode]| units.iter().map(ToString::to_string).collect::<Vec<_>>();
    v1::GetCompletenessResponse {
        expected: codes(&completeness.expected),
        reported: codes(&completeness.reported),
        missing: codes(&completeness.missing),
        rate: completeness.total.reporting_rate(),
        on_time_rate: completeness.total.on_time_rate(),
        units: if include_units { completeness.units.iter().map(unit_timeliness).collect() } else { Vec::new() },
        total: Some(reporting_rate(parent, &completeness.total)),
        children: completeness.children.iter().map(|child| reporting_rate(&child.unit, &child.rates)).collect(),
        as_of: completeness.as_of.to_string(),
    }
}

pub fn approval_event(event: &ApprovalEvent) -> v1::ApprovalEvent {
    v1::ApprovalEvent {
        unit_code: event.unit.to_string(),
        period: event.period.code(),
        action: event.action.as_str().to_owned(),
        actor: event.actor.clone(),
        at: Some(timestamp(event.at)),
        comment: event.comment.clone(),
    }
}

/// A report's approval status as judged today.
pub fn approval_status(status: &ApprovalStatus) -> v1::ApprovalStatus {
    let today = kpi_core::calendar::local_date(chrono::Utc::now());
    let freeze = status.freeze(today);
    let approval = status.approval.as_ref();
    let lock = status.lock.as_ref();
    v1::ApprovalStatus {
        unit_code: status.unit.to_string(),
        period: status.period.code(),
        has_report: status.has_report,
        approved: approval.is_some(),
        approved_by: approval.map(|a| a.by.clone()).unwrap_or_default(),
        approved_at: approval.map(|a| timestamp(a.at)),
        approval_comment: approval.map(|a| a.comment.clone()).unwrap_or_default(),
        frozen: freeze.is_some(),
        locked_by_unit: lock.map(|l| l.unit.to_string()).unwrap_or_default(),
        locked_period: lock.map(|l| l.period.code()).unwrap_or_default(),
        locked_by: lock.map(|l| l.stamp.by.clone()).unwrap_or_default(),
        locked_at: lock.map(|l| timestamp(l.stamp.at)),
        closes_on: status.closes_on.map(|day| day.to_string()).unwrap_or_default(),
        closed: status.closes_on.is_some_and(|day| day <= today),
        due_date: status.due_on.to_string(),
        history: status.history.iter().map(approval_event).collect(),
    }
}

pub fn data_issue(issue: &DataIssue) -> v1::DataIssue {
    let comment = issue.resolution.as_ref().or(issue.follow_up.as_ref()).map(|s| s.comment.clone());
    v1::DataIssue {
        id: issue.id,
        unit_code: issue.unit.to_string(),
        period: issue.period.code(),
        kind: issue.issue.kind.as_str().to_owned(),
        code: issue.issue.code.clone(),
        severity: issue.issue.severity.as_str().to_owned(),
        indicator_code: issue.issue.indicator.clone(),
        sheet: issue.issue.sheet.clone(),
        cell: issue.issue.cell.clone(),
        message: issue.issue.message.clone(),
        status: issue.status.as_str().to_owned(),
        found_at: Some(timestamp(issue.found_at)),
        follow_up_by: issue.follow_up.as_ref().map(|s| s.by.clone()).unwrap_or_default(),
        follow_up_at: issue.follow_up.as_ref().map(|s| timestamp(s.at)),
        resolved_by: issue.resolution.as_ref().map(|s| s.by.clone()).unwrap_or_default(),
        resolved_at: issue.resolution.as_ref().map(|s| timestamp(s.at)),
        comment: comment.unwrap_or_default(),
    }
}

/// An issue kind filter: empty for all.
pub fn issue_kind(field: &'static str, text: &str) -> Result<Option<IssueKind>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    IssueKind::parse(text).map(Some).ok_or_else(|| ApiError::invalid(field, "expected rule or outlier"))
}

/// The language of messages a caller asks for (`accept-language`), Vietnamese by default.
pub fn lang(metadata: &tonic::metadata::MetadataMap) -> kpi_importer::Lang {
    match metadata.get("accept-language").and_then(|value| value.to_str().ok()) {
        Some(language) if language.starts_with("en") => kpi_importer::Lang::En,
        _ => kpi_importer::Lang::Vi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_tokens() {
        assert!(matches!(page(0, ""), Ok((0, 100))));
        assert!(matches!(page(5000, ""), Ok((0, 1000))));
        assert!(page(-1, "").is_err());
        assert!(page(10, "garbage").is_err());
        let token = next_page_token(0, 10, 25);
        assert!(matches!(page(10, &token), Ok((10, 10))));
        assert_eq!(next_page_token(20, 10, 25), "");
    }
}
