//! What the review shows, read from the store through the same calls the KPI service answers
//! with, so every figure of the workbook is one the service gives.

use kpi_core::catalog::{IndicatorDef, ResolutionDef, UnitDef};
use kpi_core::{Figure, IndicatorCode, Period};
use kpi_store::{Completeness, Kpi, Store, StoreError};

use crate::ScorecardRequest;

/// One indicator of the scorecard, with its value in the comparison period.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub indicator: IndicatorDef,
    pub kpi: Kpi,
    pub compared: Option<Kpi>,
}

/// One indicator's children, ranked as RankUnits ranks them.
#[derive(Debug, Clone)]
pub struct RankedBlock {
    pub indicator: IndicatorDef,
    /// (rank, unit name, KPI), best first, units without data last.
    pub entries: Vec<(u32, String, Kpi)>,
}

/// One indicator over the term's years.
#[derive(Debug, Clone)]
pub struct TrendRow {
    pub indicator: IndicatorDef,
    pub points: Vec<Kpi>,
}

/// Everything the workbook shows.
#[derive(Debug, Clone)]
pub struct ScorecardData {
    pub resolution: ResolutionDef,
    pub unit: UnitDef,
    pub summary: Vec<SummaryRow>,
    /// Per indicator group (the code's letter: A, B, C), in catalog order.
    pub groups: Vec<(char, Vec<RankedBlock>)>,
    pub years: Vec<Period>,
    pub trends: Vec<TrendRow>,
    pub completeness: Completeness,
}

/// Reads what the review of `request` shows.
pub async fn gather(store: &Store, request: &ScorecardRequest) -> Result<ScorecardData, StoreError> {
    let snapshot = store.snapshot().await?;
    let catalog = snapshot.catalog()?;
    let unit = catalog
        .unit(&request.unit)
        .cloned()
        .ok_or_else(|| StoreError::Unknown { kind: "unit", code: request.unit.to_string() })?;
    let codes: Vec<IndicatorCode> = catalog.indicators.iter().map(|i| i.code.clone()).collect();

    let kpis = store.kpis(&unit.code, &codes, &[request.period]).await?;
    let compared = match request.compare {
        Some(period) => store.kpis(&unit.code, &codes, &[period]).await?.into_iter().map(Some).collect(),
        None => vec![None; kpis.len()],
    };
    let summary = catalog
        .indicators
        .iter()
        .zip(kpis)
        .zip(compared)
        .map(|((indicator, kpi), compared)| SummaryRow { indicator: indicator.clone(), kpi, compared })
        .collect();

    let children = snapshot.tree.children(&unit.code).to_vec();
    let mut groups: Vec<(char, Vec<RankedBlock>)> = Vec::new();
    for indicator in &catalog.indicators {
        let block = ranked_block(store, &catalog, &children, indicator, request.period).await?;
        let group = indicator.code.as_str().chars().next().unwrap_or('?');
        match groups.last_mut() {
            Some((letter, blocks)) if *letter == group => blocks.push(block),
            _ => groups.push((group, vec![block])),
        }
    }

    let years = term_years(&catalog.resolution);
    let mut trends = Vec::with_capacity(catalog.indicators.len());
    for indicator in &catalog.indicators {
        let points = store.kpis(&unit.code, std::slice::from_ref(&indicator.code), &years).await?;
        trends.push(TrendRow { indicator: indicator.clone(), points });
    }
    let completeness = store.completeness(&unit.code, request.period, request.as_of).await?;
    Ok(ScorecardData { resolution: catalog.resolution.clone(), unit, summary, groups, years, trends, completeness })
}

/// The children's KPIs for one indicator, in RankUnits' order (kpi-core's ranking rule).
async fn ranked_block(
    store: &Store,
    catalog: &kpi_core::Catalog,
    children: &[kpi_core::UnitCode],
    indicator: &IndicatorDef,
    period: Period,
) -> Result<RankedBlock, StoreError> {
    let kpis = store.kpis_of_units(children, std::slice::from_ref(&indicator.code), &[period]).await?;
    let values = kpis.iter().enumerate().map(|(index, kpi)| ((&kpi.unit, index), kpi.figure.map(Figure::value)));
    let ranked = kpi_core::rank::competition_ranks(values.collect(), indicator.direction);
    let entries = ranked
        .into_iter()
        .map(|(rank, (unit, index), _)| {
            let name = catalog.unit(unit).map(|u| u.name.clone()).unwrap_or_else(|| unit.to_string());
            (u32::try_from(rank).unwrap_or(u32::MAX), name, kpis[index].clone())
        })
        .collect();
    Ok(RankedBlock { indicator: indicator.clone(), entries })
}

/// The years of the resolution's term: from the year it was adopted to its last year.
fn term_years(resolution: &ResolutionDef) -> Vec<Period> {
    let first = resolution.adopted_on.get(..4).and_then(|year| year.parse::<i32>().ok());
    let first = first.unwrap_or(resolution.term_end_year).min(resolution.term_end_year);
    (first..=resolution.term_end_year).map(Period::Year).collect()
}
