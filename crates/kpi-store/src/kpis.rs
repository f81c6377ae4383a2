//! KPIs: reported figures aggregated over time and up the tree, held against targets.
//!
//! One SQL query per subtree fetches the current figures of the requested indicators for the
//! requested periods and every period inside them; `kpi-core` does the rest in memory. The
//! query is driven by the index on report periods, so its cost follows the number of reports
//! in those periods, not the size of the whole history.

use std::collections::{BTreeMap, HashMap, HashSet};

use kpi_core::aggregate::{aggregate_units, resolve_over_time};
use kpi_core::{Evaluation, Figure, IndicatorCode, Period, Target, UnitCode, evaluate};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};

use crate::connection::Store;
use crate::entity::{report, report_value, unit};
use crate::error::StoreError;
use crate::revisions::figure_from_columns;
use crate::snapshot::Snapshot;

/// Where one unit stands on one indicator in one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    pub unit: UnitCode,
    pub indicator: IndicatorCode,
    pub period: Period,
    /// The aggregate figure; `None` when nothing was reported.
    pub figure: Option<Figure>,
    pub target: Option<f64>,
    pub evaluation: Evaluation,
    /// Units whose figures the KPI rests on.
    pub reporting_units: u32,
    /// Units in the subtree expected to report the indicator.
    pub expected_units: u32,
}

/// Which units were expected to report for a period below a parent, and which did.
#[derive(Debug, Clone, PartialEq)]
pub struct Completeness {
    pub expected: Vec<UnitCode>,
    pub reported: Vec<UnitCode>,
    pub missing: Vec<UnitCode>,
}

impl Store {
    /// The KPIs of `unit` (its whole subtree) for every pair of `indicators` and `periods`,
    /// indicator-major, in the order given.
    pub async fn kpis(
        &self,
        unit: &UnitCode,
        indicators: &[IndicatorCode],
        periods: &[Period],
    ) -> Result<Vec<Kpi>, StoreError> {
        let snapshot = self.snapshot().await?;
        let unit_info =
            snapshot.unit(unit).ok_or_else(|| StoreError::Unknown { kind: "unit", code: unit.to_string() })?;
        let mut indicator_infos = Vec::with_capacity(indicators.len());
        for code in indicators {
            indicator_infos.push(
                snapshot
                    .indicator(code)
                    .ok_or_else(|| StoreError::Unknown { kind: "indicator", code: code.to_string() })?,
            );
        }
        let all_periods: HashSet<Period> = periods.iter().flat_map(|p| p.with_descendants()).collect();
        let observations = self
            .observations(
                &snapshot,
                &unit_info.path,
                snapshot.root().is_some_and(|r| r.id == unit_info.id),
                &all_periods,
                indicators,
            )
            .await?;

        let subtree = snapshot.subtree_units(unit);
        let mut kpis = Vec::with_capacity(indicators.len() * periods.len());
        for indicator in indicator_infos {
            let by_unit = observations.get(&indicator.id);
            let reporter = indicator.reported_by.as_ref().and_then(|code| snapshot.unit(code)).map(|u| u.id);
            let expected = subtree.iter().filter(|u| u.reports.contains(&indicator.code)).count();
            let expected_units = u32::try_from(expected).unwrap_or(u32::MAX);
            for &period in periods {
                let resolved = by_unit.into_iter().flatten().filter_map(|(&unit_id, reported)| {
                    resolve_over_time(period, indicator.time_aggregation, reported).map(|figure| (unit_id, figure))
                });
                let aggregate = aggregate_units(indicator.kind, reporter.as_ref(), resolved);
                let target = snapshot.target_for(indicator, unit, period);
                let evaluation = evaluate(
                    aggregate.figure.map(Figure::value),
                    target.map(|value| Target { value, direction: indicator.direction }),
                );
                kpis.push(Kpi {
                    unit: unit.clone(),
                    indicator: indicator.code.clone(),
                    period,
                    figure: aggregate.figure,
                    target,
                    evaluation,
                    reporting_units: aggregate.reporting_units,
                    expected_units,
                });
            }
        }
        Ok(kpis)
    }

    /// Current figures in the subtree at `path`, by indicator id, unit id and period.
    ///
    /// Keyed by ids, not codes, and with each period code parsed once: a national scorecard
    /// reads some 200,000 rows, and per-row allocations would dominate its cost.
    async fn observations(
        &self,
        snapshot: &Snapshot,
        path: &str,
        whole_tree: bool,
        periods: &HashSet<Period>,
        indicators: &[IndicatorCode],
    ) -> Result<HashMap<i32, HashMap<i32, BTreeMap<Period, Figure>>>, StoreError> {
        let indicator_ids: Vec<i32> = indicators.iter().filter_map(|c| snapshot.indicator(c)).map(|i| i.id).collect();
        let periods_by_code: HashMap<String, Period> = periods.iter().map(|&p| (p.code(), p)).collect();
        let period_codes: Vec<String> = periods_by_code.keys().cloned().collect();
        let mut query = Query::select();
        query
            .column((report::Entity, report::Column::UnitId))
            .column((report::Entity, report::Column::Period))
            .column((report_value::Entity, report_value::Column::IndicatorId))
            .column((report_value::Entity, report_value::Column::Value))
            .column((report_value::Entity, report_value::Column::Numerator))
            .column((report_value::Entity, report_value::Column::Denominator))
            .from(report::Entity)
            .inner_join(
                report_value::Entity,
                Expr::col((report_value::Entity, report_value::Column::RevisionId))
                    .equals((report::Entity, report::Column::CurrentRevisionId)),
            )
            .and_where(Expr::col((report::Entity, report::Column::Period)).is_in(period_codes))
            .and_where(Expr::col((report_value::Entity, report_value::Column::IndicatorId)).is_in(indicator_ids));
        if !whole_tree {
            query
                .inner_join(
                    unit::Entity,
                    Expr::col((unit::Entity, unit::Column::Id)).equals((report::Entity, report::Column::UnitId)),
                )
                .and_where(Expr::col((unit::Entity, unit::Column::Path)).like(format!("{path}%")));
        }
        let rows = self.db.query_all(&query).await?;

        let mut observations: HashMap<i32, HashMap<i32, BTreeMap<Period, Figure>>> = HashMap::new();
        for row in rows {
            let unit_id: i32 = row.try_get_by_index(0)?;
            let period_code: String = row.try_get_by_index(1)?;
            let indicator_id: i32 = row.try_get_by_index(2)?;
            let value: Option<f64> = row.try_get_by_index(3)?;
            let numerator: Option<i64> = row.try_get_by_index(4)?;
            let denominator: Option<i64> = row.try_get_by_index(5)?;
            let indicator = snapshot.indicator_by_id(indicator_id).ok_or_else(|| {
                StoreError::Corrupt(format!("value for indicator {indicator_id} outside the catalog"))
            })?;
            let period = *periods_by_code
                .get(&period_code)
                .ok_or_else(|| StoreError::Corrupt(format!("unexpected period {period_code:?}")))?;
            let figure = figure_from_columns(indicator.kind, value, numerator, denominator)?;
            observations.entry(indicator_id).or_default().entry(unit_id).or_default().insert(period, figure);
        }
        Ok(observations)
    }

    /// Which units below `parent` (the parent itself excluded) were expected to report for
    /// `period` — those assigned at least one indicator — and which have.
    pub async fn completeness(&self, parent: &UnitCode, period: Period) -> Result<Completeness, StoreError> {
        let snapshot = self.snapshot().await?;
        if snapshot.unit(parent).is_none() {
            return Err(StoreError::Unknown { kind: "unit", code: parent.to_string() });
        }
        let reported_ids = self.reporting_unit_ids(period).await?;
        let mut completeness = Completeness { expected: Vec::new(), reported: Vec::new(), missing: Vec::new() };
        for unit in snapshot.subtree_units(parent).into_iter().skip(1).filter(|u| !u.reports.is_empty()) {
            completeness.expected.push(unit.code.clone());
            if reported_ids.contains(&unit.id) {
                completeness.reported.push(unit.code.clone());
            } else {
                completeness.missing.push(unit.code.clone());
            }
        }
        Ok(completeness)
    }
}
