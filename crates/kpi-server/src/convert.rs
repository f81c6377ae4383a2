//! Parsing request fields into domain types (each failure naming its field) and turning
//! domain values into `kpi.v1` messages.

use kpi_core::{
    Direction, Figure, IndicatorCode, IndicatorKind, Period, ResolutionCode, Status, TimeAggregation, UnitCode,
};
use kpi_proto::v1;
use kpi_store::{IndicatorInfo, Kpi, RevisionInfo, Snapshot, StoredIssue, UnitInfo};

use crate::errors::ApiError;

/// Page size when the caller does not say.
const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page served; larger requests are clamped to it.
const MAX_PAGE_SIZE: usize = 1000;
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
        imported_at: Some(prost_types::Timestamp {
            seconds: info.imported_at.timestamp(),
            nanos: i32::try_from(info.imported_at.timestamp_subsec_nanos()).unwrap_or_default(),
        }),
        imported_by: info.imported_by.clone(),
        prepared_by: info.prepared_by.clone().unwrap_or_default(),
        prepared_on: info.prepared_on.clone().unwrap_or_default(),
        status: info.status.clone(),
        warnings: info.warnings.iter().map(issue).collect(),
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
