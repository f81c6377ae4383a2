//! The catalog: the unit tree, the resolution, its indicators and targets, and which
//! indicators each unit reports.
//!
//! It is data a district edits (a TOML file), not code. [`Catalog::from_toml`] checks it
//! whole and returns typed, cross-referenced definitions, so loaders never meet a dangling
//! code.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use crate::codes::{CodeError, IndicatorCode, ResolutionCode, UnitCode};
use crate::figure::{Direction, IndicatorKind, TimeAggregation};
use crate::period::{Period, PeriodError};

/// Why a catalog file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog is not valid TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("bad code in the catalog: {0}")]
    Code(#[from] CodeError),
    #[error("bad period in the catalog: {0}")]
    Period(#[from] PeriodError),
    #[error("the catalog is inconsistent: {0}")]
    Inconsistent(String),
}

/// A resolution whose targets the catalog tracks.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolutionDef {
    pub code: ResolutionCode,
    pub title: String,
    /// ISO date, `YYYY-MM-DD`.
    pub adopted_on: String,
    /// The last year of the term: a target without a period is due by then.
    pub term_end_year: i32,
}

/// A unit of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitDef {
    pub code: UnitCode,
    pub name: String,
    /// `district`, `commune`, `agency`, `province`, ...: free text, shown as is.
    pub kind: String,
    pub parent: Option<UnitCode>,
    /// The indicators this unit is expected to report (its data set).
    pub reports: Vec<IndicatorCode>,
}

/// An indicator of the resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorDef {
    pub code: IndicatorCode,
    pub name: String,
    pub name_en: String,
    pub kind: IndicatorKind,
    pub time_aggregation: TimeAggregation,
    pub direction: Direction,
    pub unit_of_measure: String,
    /// For percent indicators: the unit that reports the value on behalf of its ancestors.
    pub reported_by: Option<UnitCode>,
}

/// A target: for one unit (the root unless said), for one period or by the end of the term.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetDef {
    pub indicator: IndicatorCode,
    pub unit: UnitCode,
    /// `None`: by the end of the term, and in force for every period until then.
    pub period: Option<Period>,
    pub value: f64,
}

/// A checked catalog. Units are ordered parents before children.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub resolution: ResolutionDef,
    pub units: Vec<UnitDef>,
    pub indicators: Vec<IndicatorDef>,
    pub targets: Vec<TargetDef>,
    /// Units by code: every file names its unit, and a national catalog has 11,000 of them.
    unit_index: UnitIndex,
}

/// Positions of the units by code; shown in `Debug` by its size only, so a catalog's `Debug`
/// form stays deterministic.
#[derive(Clone, Default, PartialEq)]
struct UnitIndex(HashMap<UnitCode, usize>);

impl UnitIndex {
    fn of(units: &[UnitDef]) -> UnitIndex {
        UnitIndex(units.iter().enumerate().map(|(index, unit)| (unit.code.clone(), index)).collect())
    }
}

impl std::fmt::Debug for UnitIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnitIndex({} units)", self.0.len())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    resolution: RawResolution,
    #[serde(default)]
    reports_by_kind: BTreeMap<String, Vec<String>>,
    units: Vec<RawUnit>,
    indicators: Vec<RawIndicator>,
    #[serde(default)]
    targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolution {
    code: String,
    title: String,
    adopted_on: String,
    term_end_year: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    code: String,
    name: String,
    kind: String,
    parent: Option<String>,
    reports: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    code: String,
    name: String,
    #[serde(default)]
    name_en: String,
    kind: IndicatorKind,
    time: TimeAggregation,
    direction: Direction,
    unit_of_measure: String,
    reported_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    indicator: String,
    value: f64,
    unit: Option<String>,
    period: Option<String>,
}

fn inconsistent(message: String) -> CatalogError {
    CatalogError::Inconsistent(message)
}

impl Catalog {
    /// A catalog of parts already checked (as the store holds them), indexed for lookups.
    pub fn new(
        resolution: ResolutionDef,
        units: Vec<UnitDef>,
        indicators: Vec<IndicatorDef>,
        targets: Vec<TargetDef>,
    ) -> Catalog {
        let unit_index = UnitIndex::of(&units);
        Catalog { resolution, units, indicators, targets, unit_index }
    }

    /// Parses and checks a catalog file's text.
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let raw: RawCatalog = toml::from_str(text)?;
        let resolution = ResolutionDef {
            code: ResolutionCode::parse(&raw.resolution.code)?,
            title: raw.resolution.title,
            adopted_on: raw.resolution.adopted_on,
            term_end_year: raw.resolution.term_end_year,
        };

        let mut indicators = Vec::with_capacity(raw.indicators.len());
        let mut indicator_codes = HashSet::new();
        for indicator in raw.indicators {
            let code = IndicatorCode::parse(&indicator.code)?;
            if !indicator_codes.insert(code.clone()) {
                return Err(inconsistent(format!("indicator {code} is defined twice")));
            }
            indicators.push(IndicatorDef {
                code,
                name: indicator.name,
                name_en: indicator.name_en,
                kind: indicator.kind,
                time_aggregation: indicator.time,
                direction: indicator.direction,
                unit_of_measure: indicator.unit_of_measure,
                reported_by: indicator.reported_by.as_deref().map(UnitCode::parse).transpose()?,
            });
        }
        let known_indicator = |text: &str| -> Result<IndicatorCode, CatalogError> {
            let code = IndicatorCode::parse(text)?;
            if indicator_codes.contains(&code) {
                Ok(code)
            } else {
                Err(inconsistent(format!("indicator {code} is used but not defined")))
            }
        };

        let mut reports_by_kind = HashMap::new();
        for (kind, codes) in &raw.reports_by_kind {
            let codes = codes.iter().map(|c| known_indicator(c)).collect::<Result<Vec<_>, _>>()?;
            reports_by_kind.insert(kind.clone(), codes);
        }

        let mut units = Vec::with_capacity(raw.units.len());
        for unit in raw.units {
            let reports = match unit.reports {
                Some(codes) => codes.iter().map(|c| known_indicator(c)).collect::<Result<Vec<_>, _>>()?,
                None => reports_by_kind.get(&unit.kind).cloned().unwrap_or_default(),
            };
            units.push(UnitDef {
                code: UnitCode::parse(&unit.code)?,
                name: unit.name,
                kind: unit.kind,
                parent: unit.parent.as_deref().map(UnitCode::parse).transpose()?,
                reports,
            });
        }
        let units = order_parents_first(units)?;
        let root =
            units.first().map(|u| u.code.clone()).ok_or_else(|| inconsistent("the catalog has no units".into()))?;
        let unit_codes: HashSet<&UnitCode> = units.iter().map(|u| &u.code).collect();

        for indicator in &indicators {
            match (&indicator.kind, &indicator.reported_by) {
                (IndicatorKind::Percent, None) => {
                    return Err(inconsistent(format!("percent indicator {} needs reported_by", indicator.code)));
                }
                (_, Some(unit)) if !unit_codes.contains(unit) => {
                    return Err(inconsistent(format!(
                        "indicator {} is reported_by unknown unit {unit}",
                        indicator.code
                    )));
                }
                _ => {}
            }
        }

        let mut targets = Vec::with_capacity(raw.targets.len());
        let mut target_keys = HashSet::new();
        for target in raw.targets {
            let unit = match target.unit.as_deref() {
                Some(code) => UnitCode::parse(code)?,
                None => root.clone(),
            };
            if !unit_codes.contains(&unit) {
                return Err(inconsistent(format!("a target names unknown unit {unit}")));
            }
            let definition = TargetDef {
                indicator: known_indicator(&target.indicator)?,
                unit,
                period: target.period.as_deref().map(Period::parse).transpose()?,
                value: target.value,
            };
            if !target_keys.insert((definition.indicator.clone(), definition.unit.clone(), definition.period)) {
                return Err(inconsistent(format!(
                    "indicator {} has two targets for unit {} and the same period",
                    definition.indicator, definition.unit
                )));
            }
            targets.push(definition);
        }

        Ok(Catalog::new(resolution, units, indicators, targets))
    }

    pub fn indicator(&self, code: &IndicatorCode) -> Option<&IndicatorDef> {
        self.indicators.iter().find(|i| &i.code == code)
    }

    pub fn unit(&self, code: &UnitCode) -> Option<&UnitDef> {
        // The index is built with the catalog; a caller that edited `units` since gets the
        // slow, still correct, search.
        let indexed = self.unit_index.0.get(code).and_then(|&index| self.units.get(index));
        indexed.filter(|unit| &unit.code == code).or_else(|| self.units.iter().find(|u| &u.code == code))
    }
}

/// Orders units so every parent comes before its children, and checks there is exactly one
/// root, that parents exist, that codes are unique and that there is no cycle.
fn order_parents_first(units: Vec<UnitDef>) -> Result<Vec<UnitDef>, CatalogError> {
    let mut seen = HashSet::new();
    for unit in &units {
        if !seen.insert(unit.code.clone()) {
            return Err(inconsistent(format!("unit {} is defined twice", unit.code)));
        }
    }
    let roots: Vec<&UnitCode> = units.iter().filter(|u| u.parent.is_none()).map(|u| &u.code).collect();
    if roots.len() != 1 {
        return Err(inconsistent(format!(
            "the unit tree needs exactly one root (a unit without parent), found {}",
            roots.len()
        )));
    }
    for unit in &units {
        if let Some(parent) = unit.parent.as_ref().filter(|p| !seen.contains(*p)) {
            return Err(inconsistent(format!("unit {} has unknown parent {parent}", unit.code)));
        }
    }
    let mut placed: HashSet<UnitCode> = HashSet::new();
    let mut ordered = Vec::with_capacity(units.len());
    let mut pending = units;
    while !pending.is_empty() {
        let before = pending.len();
        let (ready, rest): (Vec<UnitDef>, Vec<UnitDef>) =
            pending.into_iter().partition(|u| u.parent.as_ref().is_none_or(|p| placed.contains(p)));
        placed.extend(ready.iter().map(|u| u.code.clone()));
        ordered.extend(ready);
        pending = rest;
        if pending.len() == before {
            return Err(inconsistent(format!("the unit tree has a cycle through {}", pending[0].code)));
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../catalog/pac-nam-09-nq-hu.toml");

    #[test]
    fn shipped_catalog_is_complete() {
        let catalog = Catalog::from_toml(SHIPPED).unwrap();
        assert_eq!(catalog.resolution.code.as_str(), "09-NQ/HU");
        assert_eq!(catalog.units.len(), 14);
        assert_eq!(catalog.units[0].code.as_str(), "PACNAM");
        assert_eq!(catalog.indicators.len(), 19);
        let vphdnd = UnitCode::parse("VPHDND").unwrap();
        let c02 = catalog.indicator(&IndicatorCode::parse("C02").unwrap()).unwrap();
        assert_eq!(c02.reported_by.as_ref(), Some(&vphdnd));
        let bocbo = catalog.unit(&UnitCode::parse("BOCBO").unwrap()).unwrap();
        let codes: Vec<&str> = bocbo.reports.iter().map(IndicatorCode::as_str).collect();
        assert_eq!(codes, ["A01", "A03", "A06", "A07", "B01", "B02", "B07", "C03", "C05"]);
        let b05 = catalog.targets.iter().find(|t| t.indicator.as_str() == "B05").unwrap();
        assert_eq!((b05.value, b05.unit.as_str(), b05.period), (15.0, "PACNAM", None));
    }

    #[test]
    fn inconsistencies_are_refused() {
        let two_roots =
            SHIPPED.replace("parent = \"PACNAM\"\nreports = [\"A01\", \"A02\"", "reports = [\"A01\", \"A02\"");
        assert!(matches!(Catalog::from_toml(&two_roots), Err(CatalogError::Inconsistent(_))));
        let unknown = SHIPPED.replace("indicator = \"B05\"", "indicator = \"Z99\"");
        assert!(matches!(Catalog::from_toml(&unknown), Err(CatalogError::Inconsistent(_))));
        assert!(matches!(Catalog::from_toml("units = 3"), Err(CatalogError::Syntax(_))));
    }
}
