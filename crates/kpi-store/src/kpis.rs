//! KPIs: reported figures aggregated over time and up the tree, held against targets.
//!
//! Every aggregate is maintained in `kpi_totals` as revisions are written (see `totals.rs`
//! and kpi-core's `totals` module), so a KPI is one primary-key lookup, and a scorecard, a
//! trend or a ranking one query, whatever the size of the subtree.

use std::collections::HashMap;

use kpi_core::totals::aggregate_from_totals;
use kpi_core::{Evaluation, Figure, IndicatorCode, Period, Target, UnitCode, evaluate};

use crate::connection::Store;
use crate::error::StoreError;
use crate::snapshot::{IndicatorInfo, Snapshot, UnitInfo};
use crate::totals;

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
    /// Whether the figures are final: there are some, and every report of the subtree for
    /// the period and the periods inside it is approved.
    pub figures_final: bool,
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
        self.kpis_of_units(std::slice::from_ref(unit), indicators, periods).await
    }

    /// The KPIs of each of `units`, unit-major, then as [`Store::kpis`]: one query for all.
    pub async fn kpis_of_units(
        &self,
        units: &[UnitCode],
        indicators: &[IndicatorCode],
        periods: &[Period],
    ) -> Result<Vec<Kpi>, StoreError> {
        let snapshot = self.snapshot().await?;
        let unit_infos = units
            .iter()
            .map(|code| snapshot.unit(code).ok_or_else(|| StoreError::Unknown { kind: "unit", code: code.to_string() }))
            .collect::<Result<Vec<_>, _>>()?;
        let indicator_infos = indicators
            .iter()
            .map(|code| {
                snapshot
                    .indicator(code)
                    .ok_or_else(|| StoreError::Unknown { kind: "indicator", code: code.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let unit_ids: Vec<i32> = unit_infos.iter().map(|u| u.id).collect();
        let indicator_ids: Vec<i32> = indicator_infos.iter().map(|i| i.id).collect();
        let read = totals::read(&self.reads, &unit_ids, &indicator_ids, periods).await?;
        // Whether each asked (unit, period) has no unapproved report inside it, once per pair.
        let mut settled: HashMap<(i32, Period), bool> = HashMap::new();
        for &unit_id in &unit_ids {
            for &period in periods {
                settled.entry((unit_id, period)).or_insert_with(|| {
                    period.with_descendants().into_iter().all(|inner| !read.unsettled.contains(&(unit_id, inner)))
                });
            }
        }
        let mut kpis = Vec::with_capacity(units.len() * indicators.len() * periods.len());
        for unit in unit_infos {
            for &indicator in &indicator_infos {
                let expected_units = snapshot.expected_units(unit.id, indicator.id);
                for &period in periods {
                    let found = read.totals.get(&(unit.id, indicator.id, period));
                    let mut kpi = kpi(&snapshot, unit, indicator, period, found, expected_units);
                    kpi.figures_final = kpi.reporting_units > 0 && settled.get(&(unit.id, period)) == Some(&true);
                    kpis.push(kpi);
                }
            }
        }
        Ok(kpis)
    }
}

/// One KPI from its maintained totals: the aggregate, its target and where it stands.
fn kpi(
    snapshot: &Snapshot,
    unit: &UnitInfo,
    indicator: &IndicatorInfo,
    period: Period,
    totals: Option<&kpi_core::totals::Totals>,
    expected_units: u32,
) -> Kpi {
    let aggregate = aggregate_from_totals(indicator.definition.kind, totals);
    let target = snapshot.target_for(indicator, &unit.definition.code, period);
    let evaluation = evaluate(
        aggregate.figure.map(Figure::value),
        target.map(|value| Target { value, direction: indicator.definition.direction }),
    );
    Kpi {
        unit: unit.definition.code.clone(),
        indicator: indicator.definition.code.clone(),
        period,
        figure: aggregate.figure,
        target,
        evaluation,
        reporting_units: aggregate.reporting_units,
        expected_units,
        figures_final: false,
    }
}
