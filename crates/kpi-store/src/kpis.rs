//! KPIs: reported figures aggregated over time and up the tree, held against targets.
//!
//! Most reports are for the period asked about, so the database sums those itself: one
//! grouped query per subtree returns a handful of rows however many units report. Only two
//! cases need each unit's rows in memory: units that reported sub-periods (a year built from
//! its halves or months, per `kpi-core`'s stock and flow rules), and percent indicators, which
//! are never summed but taken from their one reporter. Both queries are driven by the index on
//! report periods, so the cost follows the reports of the periods asked about, not the history.

use std::collections::{BTreeMap, HashMap, HashSet};

use kpi_core::aggregate::{Aggregate, aggregate_units, resolve_over_time};
use kpi_core::{Evaluation, Figure, IndicatorCode, IndicatorKind, Period, Target, UnitCode, evaluate};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query, SelectStatement};

use crate::connection::Store;
use crate::entity::{report, report_value, unit};
use crate::error::StoreError;
use crate::revisions::figure_from_columns;
use crate::snapshot::{IndicatorInfo, Snapshot};
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

/// Per indicator id, per unit id, the unit's figures by period.
type UnitFigures = HashMap<i32, HashMap<i32, BTreeMap<Period, Figure>>>;

/// The database's sums of direct reports, per (indicator id, period).
#[derive(Debug, Clone, Copy, Default)]
struct DirectSums {
    value: f64,
    numerator: i64,
    denominator: i64,
    units: u32,
}

/// Which reports a query reads: those of a subtree (all units when `path` is `None`).
struct Scope<'a> {
    path: Option<&'a str>,
}

impl Scope<'_> {
    fn restrict(&self, query: &mut SelectStatement) {
        if let Some(path) = self.path {
            query
                .inner_join(
                    unit::Entity,
                    Expr::col((unit::Entity, unit::Column::Id)).equals((report::Entity, report::Column::UnitId)),
                )
                .and_where(Expr::col((unit::Entity, unit::Column::Path)).like(format!("{path}%")));
        }
    }
}

/// Current values joined to their reports, for `periods` and `indicator_ids`.
fn current_values(periods: &[String], indicator_ids: &[i32]) -> SelectStatement {
    let mut query = Query::select();
    query
        .from(report::Entity)
        .inner_join(
            report_value::Entity,
            Expr::col((report_value::Entity, report_value::Column::RevisionId))
                .equals((report::Entity, report::Column::CurrentRevisionId)),
        )
        .and_where(Expr::col((report::Entity, report::Column::Period)).is_in(periods.iter().cloned()))
        .and_where(
            Expr::col((report_value::Entity, report_value::Column::IndicatorId)).is_in(indicator_ids.iter().copied()),
        );
    query
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
        let whole_tree = snapshot.root().is_some_and(|r| r.id == unit_info.id);
        let scope = Scope { path: (!whole_tree).then_some(unit_info.path.as_str()) };
        let subtree = snapshot.subtree_units(unit);

        let (summed, percents): (Vec<&IndicatorInfo>, Vec<&IndicatorInfo>) =
            indicator_infos.iter().partition(|i| i.definition.kind != IndicatorKind::Percent);
        let summed_ids: Vec<i32> = summed.iter().map(|i| i.id).collect();
        let direct = self.direct_sums(&scope, periods, &summed_ids).await?;
        let with_sub_periods = self.sub_period_figures(&snapshot, &scope, periods, &summed_ids).await?;
        let reporters: Vec<i32> = percents
            .iter()
            .filter_map(|i| i.definition.reported_by.as_ref())
            .filter_map(|code| subtree.iter().find(|u| &u.definition.code == code))
            .map(|u| u.id)
            .collect();
        let percent_ids: Vec<i32> = percents.iter().map(|i| i.id).collect();
        let reported_percents = self.unit_figures(&snapshot, &reporters, periods, &percent_ids).await?;

        let mut kpis = Vec::with_capacity(indicators.len() * periods.len());
        for indicator in indicator_infos {
            let expected = subtree.iter().filter(|u| u.definition.reports.contains(&indicator.definition.code)).count();
            let expected_units = u32::try_from(expected).unwrap_or(u32::MAX);
            for &period in periods {
                let aggregate = if indicator.definition.kind == IndicatorKind::Percent {
                    let reporter =
                        indicator.definition.reported_by.as_ref().and_then(|code| snapshot.unit(code)).map(|u| u.id);
                    let figures = reported_percents.get(&indicator.id).into_iter().flatten().filter_map(
                        |(&unit_id, reported)| {
                            resolve_over_time(period, indicator.definition.time_aggregation, reported)
                                .map(|f| (unit_id, f))
                        },
                    );
                    aggregate_units(indicator.definition.kind, reporter.as_ref(), figures)
                } else {
                    let sums = direct.get(&(indicator.id, period)).copied().unwrap_or_default();
                    let from_sub_periods = with_sub_periods
                        .get(&indicator.id)
                        .into_iter()
                        .flatten()
                        .filter(|(_, reported)| !reported.contains_key(&period))
                        .filter_map(|(&unit_id, reported)| {
                            resolve_over_time(period, indicator.definition.time_aggregation, reported)
                                .map(|f| (unit_id, f))
                        });
                    combine(
                        indicator.definition.kind,
                        sums,
                        aggregate_units(indicator.definition.kind, None::<&i32>, from_sub_periods),
                    )
                };
                let target = snapshot.target_for(indicator, unit, period);
                let evaluation = evaluate(
                    aggregate.figure.map(Figure::value),
                    target.map(|value| Target { value, direction: indicator.definition.direction }),
                );
                kpis.push(Kpi {
                    unit: unit.clone(),
                    indicator: indicator.definition.code.clone(),
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

    /// The database's sums of the reports made directly for each of `periods`.
    async fn direct_sums(
        &self,
        scope: &Scope<'_>,
        periods: &[Period],
        indicator_ids: &[i32],
    ) -> Result<HashMap<(i32, Period), DirectSums>, StoreError> {
        if indicator_ids.is_empty() || periods.is_empty() {
            return Ok(HashMap::new());
        }
        let by_code: HashMap<String, Period> = periods.iter().map(|&p| (p.code(), p)).collect();
        let codes: Vec<String> = by_code.keys().cloned().collect();
        let column = |c: report_value::Column| Expr::col((report_value::Entity, c));
        let mut query = current_values(&codes, indicator_ids);
        query
            .column((report_value::Entity, report_value::Column::IndicatorId))
            .column((report::Entity, report::Column::Period))
            .expr(Func::sum(column(report_value::Column::Value)))
            .expr(Func::cast_as(Func::sum(column(report_value::Column::Numerator)), Alias::new("BIGINT")))
            .expr(Func::cast_as(Func::sum(column(report_value::Column::Denominator)), Alias::new("BIGINT")))
            .expr(Func::cast_as(Func::count(Expr::col((report::Entity, report::Column::UnitId))), Alias::new("BIGINT")))
            .group_by_col((report_value::Entity, report_value::Column::IndicatorId))
            .group_by_col((report::Entity, report::Column::Period));
        scope.restrict(&mut query);
        let mut sums = HashMap::new();
        for row in self.db.query_all(&query).await? {
            let indicator_id: i32 = row.try_get_by_index(0)?;
            let code: String = row.try_get_by_index(1)?;
            let period =
                *by_code.get(&code).ok_or_else(|| StoreError::Corrupt(format!("unexpected period {code:?}")))?;
            let units: i64 = row.try_get_by_index(5)?;
            sums.insert(
                (indicator_id, period),
                DirectSums {
                    value: row.try_get_by_index::<Option<f64>>(2)?.unwrap_or_default(),
                    numerator: row.try_get_by_index::<Option<i64>>(3)?.unwrap_or_default(),
                    denominator: row.try_get_by_index::<Option<i64>>(4)?.unwrap_or_default(),
                    units: u32::try_from(units).unwrap_or(u32::MAX),
                },
            );
        }
        Ok(sums)
    }

    /// Every figure, for `periods` and the periods inside them, of the units in scope that
    /// reported at least one period strictly inside one of `periods`.
    async fn sub_period_figures(
        &self,
        snapshot: &Snapshot,
        scope: &Scope<'_>,
        periods: &[Period],
        indicator_ids: &[i32],
    ) -> Result<UnitFigures, StoreError> {
        let inner: HashSet<String> =
            periods.iter().flat_map(|p| p.with_descendants().into_iter().skip(1)).map(Period::code).collect();
        if inner.is_empty() || indicator_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut units = current_values(&inner.into_iter().collect::<Vec<_>>(), indicator_ids);
        units.distinct().column((report::Entity, report::Column::UnitId));
        scope.restrict(&mut units);
        let unit_ids: Vec<i32> = self
            .db
            .query_all(&units)
            .await?
            .into_iter()
            .map(|row| row.try_get_by_index(0))
            .collect::<Result<_, _>>()?;
        self.unit_figures(snapshot, &unit_ids, periods, indicator_ids).await
    }

    /// The figures of `unit_ids` for `periods` and every period inside them.
    async fn unit_figures(
        &self,
        snapshot: &Snapshot,
        unit_ids: &[i32],
        periods: &[Period],
        indicator_ids: &[i32],
    ) -> Result<UnitFigures, StoreError> {
        let mut figures: UnitFigures = HashMap::new();
        if unit_ids.is_empty() || indicator_ids.is_empty() {
            return Ok(figures);
        }
        let by_code: HashMap<String, Period> =
            periods.iter().flat_map(|p| p.with_descendants()).map(|p| (p.code(), p)).collect();
        let codes: Vec<String> = by_code.keys().cloned().collect();
        // Bounded batches keep the statement under every backend's parameter limit.
        for batch in unit_ids.chunks(1000) {
            let mut query = current_values(&codes, indicator_ids);
            query
                .column((report::Entity, report::Column::UnitId))
                .column((report::Entity, report::Column::Period))
                .column((report_value::Entity, report_value::Column::IndicatorId))
                .column((report_value::Entity, report_value::Column::Value))
                .column((report_value::Entity, report_value::Column::Numerator))
                .column((report_value::Entity, report_value::Column::Denominator))
                .and_where(Expr::col((report::Entity, report::Column::UnitId)).is_in(batch.iter().copied()));
            for row in self.db.query_all(&query).await? {
                let unit_id: i32 = row.try_get_by_index(0)?;
                let code: String = row.try_get_by_index(1)?;
                let indicator_id: i32 = row.try_get_by_index(2)?;
                let indicator = snapshot.indicator_by_id(indicator_id).ok_or_else(|| {
                    StoreError::Corrupt(format!("value for indicator {indicator_id} outside the catalog"))
                })?;
                let period =
                    *by_code.get(&code).ok_or_else(|| StoreError::Corrupt(format!("unexpected period {code:?}")))?;
                let figure = figure_from_columns(
                    indicator.definition.kind,
                    row.try_get_by_index(3)?,
                    row.try_get_by_index(4)?,
                    row.try_get_by_index(5)?,
                )?;
                figures.entry(indicator_id).or_default().entry(unit_id).or_default().insert(period, figure);
            }
        }
        Ok(figures)
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
        for unit in snapshot.subtree_units(parent).into_iter().skip(1).filter(|u| !u.definition.reports.is_empty()) {
            completeness.expected.push(unit.definition.code.clone());
            if reported_ids.contains(&unit.id) {
                completeness.reported.push(unit.definition.code.clone());
            } else {
                completeness.missing.push(unit.definition.code.clone());
            }
        }
        Ok(completeness)
    }
}

/// Adds the database's sums of direct reports to the aggregate of units that reported only
/// sub-periods. Sums that overflow leave the KPI without a figure rather than wrapping.
fn combine(kind: IndicatorKind, direct: DirectSums, from_sub_periods: Aggregate) -> Aggregate {
    let direct_figure = (direct.units > 0).then(|| match kind {
        IndicatorKind::Ratio => Figure::Ratio { numerator: direct.numerator, denominator: direct.denominator },
        _ => Figure::Count(direct.value.round() as i64),
    });
    let figure = match (direct_figure, from_sub_periods.figure) {
        (Some(a), Some(b)) => a.checked_add(b),
        (a, b) => a.or(b),
    };
    Aggregate { figure, reporting_units: direct.units + from_sub_periods.reporting_units }
}
