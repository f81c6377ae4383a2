//! The catalog: the unit tree, the resolution, its indicators and targets, which indicators
//! each unit reports, the reporting calendar (cut-off rule, deadlines, holidays), and the
//! data quality checks (validation rules, outlier settings and bounds).
//!
//! It is data a district edits (a TOML file), not code. [`Catalog::from_toml`] checks it
//! whole and returns typed, cross-referenced definitions, so loaders never meet a dangling
//! code.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::calendar::{Cutoff, KindSchedule, PeriodType, ReportingCycle};
use crate::codes::{CodeError, IndicatorCode, ResolutionCode, RuleCode, UnitCode};
use crate::figure::{Direction, IndicatorKind, MAX_WHOLE, TimeAggregation};
use crate::period::{Period, PeriodError};
use crate::quality::{Bounds, MIN_SCORED_HISTORY, OutlierSettings};
use crate::rules::{
    FigurePart, FigureRef, Importance, MissingValues, Scope, ValidationRule, parse_comparison, parse_side,
};
use crate::text::excerpt;

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
    /// When each kind of unit owes which periods; the default when the file has no
    /// `[reporting]` table.
    pub reporting: ReportingCycle,
    /// Validation rules, checked on every report; none when the file has no `[[rules]]`.
    pub rules: Vec<ValidationRule>,
    /// Bounds on indicators' values; none when the file has no `[[bounds]]`.
    pub bounds: Vec<Bounds>,
    /// How outliers are judged; the default when the file has no `[quality]` table.
    pub outliers: OutlierSettings,
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
    #[serde(default)]
    reporting: RawReporting,
    #[serde(default)]
    quality: RawQuality,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    bounds: Vec<RawBounds>,
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReporting {
    #[serde(default)]
    cutoff: Cutoff,
    close_after_days: Option<u32>,
    #[serde(default)]
    kinds: BTreeMap<String, RawKindSchedule>,
    /// Holidays listed under their year, as ISO dates.
    #[serde(default)]
    holidays: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKindSchedule {
    periods: Vec<PeriodType>,
    deadline_working_days: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQuality {
    outlier_threshold: Option<f64>,
    history_periods: Option<usize>,
    change_factor: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    code: String,
    name: String,
    #[serde(default)]
    name_en: String,
    left: String,
    operator: String,
    right: String,
    missing: Option<String>,
    importance: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBounds {
    indicator: String,
    unit: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
}

/// The most past periods an outlier score may look back over: five years of months.
const MAX_HISTORY_PERIODS: usize = 60;

/// The longest deadline a schedule may set: about three months of working days, past which
/// the number is a typing mistake.
const MAX_DEADLINE_WORKING_DAYS: u32 = 60;

/// The longest a period may stay open after its deadline: a year.
const MAX_CLOSE_AFTER_DAYS: u32 = 366;

/// The most units a catalog may hold: about twenty times a national tree (11,404 units).
/// With [`MAX_WHOLE`] it bounds every total: a year's flow resolves to at most twelve months
/// of figures per unit, so a whole tree sums to at most 2.4 × 10^18, below `i64::MAX`.
pub const MAX_UNITS: usize = 200_000;

/// The bound above, checked when the crate is compiled.
const _: () = assert!((MAX_UNITS as i128) * 12 * (MAX_WHOLE as i128) < i64::MAX as i128);

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
        Catalog {
            resolution,
            units,
            indicators,
            targets,
            reporting: ReportingCycle::default(),
            rules: Vec::new(),
            bounds: Vec::new(),
            outliers: OutlierSettings::default(),
            unit_index,
        }
    }

    /// The same catalog with its reporting calendar, so a loader that stores the calendar
    /// apart can attach it without changing how it builds the rest.
    pub fn with_reporting(self, reporting: ReportingCycle) -> Catalog {
        Catalog { reporting, ..self }
    }

    /// The same catalog with its data quality checks, so a loader that stores them apart can
    /// attach them without changing how it builds the rest.
    pub fn with_quality(self, rules: Vec<ValidationRule>, bounds: Vec<Bounds>, outliers: OutlierSettings) -> Catalog {
        Catalog { rules, bounds, outliers, ..self }
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

        if raw.units.len() > MAX_UNITS {
            return Err(inconsistent(format!("the catalog has {} units, more than {MAX_UNITS}", raw.units.len())));
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

        let kinds: HashMap<&IndicatorCode, IndicatorKind> =
            indicators.iter().map(|indicator| (&indicator.code, indicator.kind)).collect();
        let mut rules = Vec::with_capacity(raw.rules.len());
        let mut rule_codes = HashSet::new();
        for rule in raw.rules {
            let rule = validation_rule(rule, &kinds)?;
            if !rule_codes.insert(rule.code.clone()) {
                return Err(inconsistent(format!("rule {} is defined twice", rule.code)));
            }
            rules.push(rule);
        }
        let bounds = value_bounds(raw.bounds, &kinds, &unit_codes)?;
        let outliers = outlier_settings(raw.quality)?;

        let reporting = reporting_cycle(raw.reporting, &units)?;
        Ok(Catalog::new(resolution, units, indicators, targets)
            .with_reporting(reporting)
            .with_quality(rules, bounds, outliers))
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

/// Checks one `[[rules]]` entry: its sides and words parse, every figure it reads exists and
/// has the part it names, children terms add counts (never percentages), and it reads at
/// least one figure of the unit itself, without which it would apply to no unit.
fn validation_rule(
    raw: RawRule,
    kinds: &HashMap<&IndicatorCode, IndicatorKind>,
) -> Result<ValidationRule, CatalogError> {
    let code = RuleCode::parse(&raw.code)?;
    let side = |name: &str, text: &str| {
        parse_side(text).map_err(|error| inconsistent(format!("rule {code}: {name} side {:?}: {error}", excerpt(text))))
    };
    let (left, right) = (side("left", &raw.left)?, side("right", &raw.right)?);
    let comparison = parse_comparison(&raw.operator).map_err(|error| inconsistent(format!("rule {code}: {error}")))?;
    let missing = match raw.missing.as_deref() {
        None => MissingValues::default(),
        Some(text) => MissingValues::from_str_opt(text).ok_or_else(|| {
            inconsistent(format!(
                "rule {code}: missing = {:?} is not skip-if-any-missing, skip-if-all-missing or never-skip",
                excerpt(text)
            ))
        })?,
    };
    let importance = Importance::from_str_opt(&raw.importance).ok_or_else(|| {
        inconsistent(format!("rule {code}: importance = {:?} is not error or warning", excerpt(&raw.importance)))
    })?;
    let rule =
        ValidationRule { code, name: raw.name, name_en: raw.name_en, left, comparison, right, missing, importance };
    for figure in rule.figures() {
        check_rule_figure(&rule.code, figure, kinds)?;
    }
    if !rule.figures().any(|figure| figure.scope == Scope::Own) {
        return Err(inconsistent(format!(
            "rule {} reads no figure of the unit itself, so it would apply to no unit",
            rule.code
        )));
    }
    Ok(rule)
}

/// Checks that a figure a rule reads exists: its indicator is defined, only ratios have a
/// numerator and a denominator, and a children term adds counts, not percentages.
fn check_rule_figure(
    rule: &RuleCode,
    figure: &FigureRef,
    kinds: &HashMap<&IndicatorCode, IndicatorKind>,
) -> Result<(), CatalogError> {
    let indicator = &figure.indicator;
    let kind = *kinds
        .get(indicator)
        .ok_or_else(|| inconsistent(format!("rule {rule} reads indicator {indicator}, which is not defined")))?;
    match (figure.part, kind, figure.scope) {
        (FigurePart::Numerator | FigurePart::Denominator, IndicatorKind::Count | IndicatorKind::Percent, _) => {
            let part = if figure.part == FigurePart::Numerator { "numerator" } else { "denominator" };
            Err(inconsistent(format!("rule {rule}: {indicator} is a {}: it has no {part}", kind.as_str())))
        }
        (FigurePart::Value, IndicatorKind::Ratio, Scope::Children) => Err(inconsistent(format!(
            "rule {rule}: {figure} would add percentages; read children({indicator}.numerator) or \
             children({indicator}.denominator)"
        ))),
        (FigurePart::Value, IndicatorKind::Percent, Scope::Children) => {
            Err(inconsistent(format!("rule {rule}: {figure} would add percentages, which never add")))
        }
        _ => Ok(()),
    }
}

/// Checks the `[[bounds]]` entries: known indicator and unit, finite numbers, at least one of
/// them, min not above max, and one entry per indicator and unit (or per indicator for every
/// unit).
fn value_bounds(
    raw: Vec<RawBounds>,
    kinds: &HashMap<&IndicatorCode, IndicatorKind>,
    unit_codes: &HashSet<&UnitCode>,
) -> Result<Vec<Bounds>, CatalogError> {
    let mut all = Vec::with_capacity(raw.len());
    let mut keys = HashSet::new();
    for entry in raw {
        let indicator = IndicatorCode::parse(&entry.indicator)?;
        if !kinds.contains_key(&indicator) {
            return Err(inconsistent(format!("bounds name indicator {indicator}, which is not defined")));
        }
        let unit = entry.unit.as_deref().map(UnitCode::parse).transpose()?;
        let whose = unit.as_ref().map_or_else(|| "every unit".to_owned(), UnitCode::to_string);
        if let Some(unit) = unit.as_ref().filter(|unit| !unit_codes.contains(unit)) {
            return Err(inconsistent(format!("bounds of {indicator} name unit {unit}, which is not defined")));
        }
        let (min, max) = (entry.min, entry.max);
        if min.is_none() && max.is_none() {
            return Err(inconsistent(format!("bounds of {indicator} for {whose} set neither min nor max")));
        }
        if let Some(number) = [min, max].into_iter().flatten().find(|number| !number.is_finite()) {
            return Err(inconsistent(format!("bounds of {indicator} for {whose}: {number} is not a finite number")));
        }
        if let Some((min, max)) = min.zip(max).filter(|(min, max)| min > max) {
            return Err(inconsistent(format!("bounds of {indicator} for {whose}: min {min} is above max {max}")));
        }
        if !keys.insert((indicator.clone(), unit.clone())) {
            return Err(inconsistent(format!("{indicator} has two bounds for {whose}")));
        }
        all.push(Bounds { indicator, unit, min, max });
    }
    Ok(all)
}

/// Reads the `[quality]` table over the defaults, refusing numbers that would make every
/// value an outlier or none.
fn outlier_settings(raw: RawQuality) -> Result<OutlierSettings, CatalogError> {
    let defaults = OutlierSettings::default();
    let settings = OutlierSettings {
        threshold: raw.outlier_threshold.unwrap_or(defaults.threshold),
        history_periods: raw.history_periods.unwrap_or(defaults.history_periods),
        change_factor: raw.change_factor.unwrap_or(defaults.change_factor),
    };
    if !(settings.threshold.is_finite() && settings.threshold > 0.0) {
        return Err(inconsistent(format!(
            "quality.outlier_threshold is {}; it must be more than 0",
            settings.threshold
        )));
    }
    if !(MIN_SCORED_HISTORY..=MAX_HISTORY_PERIODS).contains(&settings.history_periods) {
        return Err(inconsistent(format!(
            "quality.history_periods is {}; it must be from {MIN_SCORED_HISTORY} to {MAX_HISTORY_PERIODS}",
            settings.history_periods
        )));
    }
    if !(settings.change_factor.is_finite() && settings.change_factor > 1.0) {
        return Err(inconsistent(format!(
            "quality.change_factor is {}; it must be more than 1",
            settings.change_factor
        )));
    }
    Ok(settings)
}

/// Checks the `[reporting]` table against the unit tree: every scheduled kind exists, lists
/// each period type once, and numbers are in bounds; holidays are ISO dates of the year they
/// are listed under, each once; and a parent kind's deadline comes at least one working day
/// after its children's, so a district can consolidate what its communes sent.
fn reporting_cycle(raw: RawReporting, units: &[UnitDef]) -> Result<ReportingCycle, CatalogError> {
    let kinds: HashSet<&str> = units.iter().map(|unit| unit.kind.as_str()).collect();
    let mut schedules = BTreeMap::new();
    for (kind, schedule) in raw.kinds {
        let quoted = excerpt(&kind);
        if !kinds.contains(kind.as_str()) {
            return Err(inconsistent(format!("reporting.kinds names kind {quoted:?}, which no unit has")));
        }
        if schedule.periods.is_empty() {
            return Err(inconsistent(format!("reporting.kinds.{quoted}.periods is empty")));
        }
        let mut listed = HashSet::new();
        if let Some(twice) = schedule.periods.iter().find(|period_type| !listed.insert(**period_type)) {
            return Err(inconsistent(format!("reporting.kinds.{quoted}.periods lists {} twice", twice.as_str())));
        }
        if schedule.deadline_working_days > MAX_DEADLINE_WORKING_DAYS {
            return Err(inconsistent(format!(
                "reporting.kinds.{quoted}.deadline_working_days is {}, more than {MAX_DEADLINE_WORKING_DAYS}",
                schedule.deadline_working_days
            )));
        }
        schedules.insert(
            kind,
            KindSchedule { period_types: schedule.periods, deadline_working_days: schedule.deadline_working_days },
        );
    }
    if let Some(days) = raw.close_after_days.filter(|days| *days > MAX_CLOSE_AFTER_DAYS) {
        return Err(inconsistent(format!("reporting.close_after_days is {days}, more than {MAX_CLOSE_AFTER_DAYS}")));
    }

    let mut holidays = BTreeSet::new();
    for (year, dates) in raw.holidays {
        let quoted_year = excerpt(&year);
        let year_number: i32 =
            year.parse().map_err(|_| inconsistent(format!("reporting.holidays: {quoted_year:?} is not a year")))?;
        for text in dates {
            let date = parse_iso_date(&text).ok_or_else(|| {
                inconsistent(format!(
                    "reporting.holidays.{quoted_year}: {:?} is not a date (YYYY-MM-DD)",
                    excerpt(&text)
                ))
            })?;
            if date.year() != year_number {
                return Err(inconsistent(format!("reporting.holidays.{quoted_year}: {date} is not in {year_number}")));
            }
            if !holidays.insert(date) {
                return Err(inconsistent(format!("reporting.holidays lists {date} twice")));
            }
        }
    }

    let deadline_of = |kind: &str| schedules.get(kind).map_or(0, |schedule| schedule.deadline_working_days);
    let kind_of: HashMap<&UnitCode, &str> = units.iter().map(|unit| (&unit.code, unit.kind.as_str())).collect();
    for unit in units {
        let Some(parent) = unit.parent.as_ref() else { continue };
        let Some(&parent_kind) = kind_of.get(parent) else { continue };
        if parent_kind == unit.kind || !schedules.contains_key(parent_kind) {
            continue;
        }
        let (parent_days, child_days) = (deadline_of(parent_kind), deadline_of(&unit.kind));
        if parent_days <= child_days {
            return Err(inconsistent(format!(
                "reporting.kinds.{}.deadline_working_days is {parent_days}, but {parent} must report at least one \
                 working day after its {} {} (deadline_working_days {child_days})",
                excerpt(parent_kind),
                excerpt(&unit.kind),
                unit.code
            )));
        }
    }

    Ok(ReportingCycle { cutoff: raw.cutoff, schedules, holidays, close_after_days: raw.close_after_days })
}

/// Reads exactly `YYYY-MM-DD`, as the catalog writes dates.
fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    let well_formed =
        text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') && text.as_bytes().get(7) == Some(&b'-');
    well_formed.then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()).flatten()
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

        let reporting = &catalog.reporting;
        assert_eq!((reporting.cutoff, reporting.close_after_days), (Cutoff::Decree09, None));
        let half_and_year = vec![PeriodType::HalfYearly, PeriodType::Yearly];
        for (kind, days) in [("commune", 2), ("agency", 2), ("district", 5)] {
            let schedule = &reporting.schedules[kind];
            assert_eq!((&schedule.period_types, schedule.deadline_working_days), (&half_and_year, days), "{kind}");
        }
        assert_eq!(reporting.schedules.len(), 3);
        for year in 2021..=2026 {
            let new_year = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            let national_day = NaiveDate::from_ymd_opt(year, 9, 2).unwrap();
            let in_year = reporting.holidays.iter().filter(|date| date.year() == year).count();
            // Ten to twelve weekday holidays a year, New Year's Day and National Day among
            // them unless they fall on a weekend.
            assert!((10..=12).contains(&in_year), "{year} has {in_year} holidays");
            assert!(reporting.holidays.contains(&new_year) || new_year.weekday().number_from_monday() > 5);
            assert!(reporting.holidays.contains(&national_day) || national_day.weekday().number_from_monday() > 5);
        }
        // First half 2025: cut-off Saturday 14 June, then five working days.
        assert_eq!(
            reporting.deadline("district", Period::Half(2025, 1)),
            NaiveDate::from_ymd_opt(2025, 6, 20).unwrap()
        );
        let rebuilt = Catalog::new(
            catalog.resolution.clone(),
            catalog.units.clone(),
            catalog.indicators.clone(),
            catalog.targets.clone(),
        );
        assert_eq!(rebuilt.reporting, ReportingCycle::default());
        assert_eq!((rebuilt.rules.len(), rebuilt.bounds.len(), rebuilt.outliers), (0, 0, OutlierSettings::default()));
        let rebuilt = rebuilt.with_reporting(catalog.reporting.clone()).with_quality(
            catalog.rules.clone(),
            catalog.bounds.clone(),
            catalog.outliers,
        );
        assert_eq!(rebuilt, catalog);
    }

    #[test]
    fn shipped_rules_load() {
        let catalog = Catalog::from_toml(SHIPPED).unwrap();
        let rules: Vec<(&str, String, Importance, MissingValues)> = catalog
            .rules
            .iter()
            .map(|rule| (rule.code.as_str(), rule.expression(), rule.importance, rule.missing))
            .collect();
        let any = MissingValues::SkipIfAnyMissing;
        assert_eq!(
            rules,
            [
                ("R01", "B05.numerator <= B04.numerator".to_owned(), Importance::Error, any),
                ("R02", "B04.denominator == A02 + A04".to_owned(), Importance::Warning, any),
                ("R03", "B01.denominator == A03".to_owned(), Importance::Warning, any),
                ("R04", "B07.denominator == A03".to_owned(), Importance::Warning, any),
            ]
        );
        assert!(catalog.rules.iter().all(|rule| !rule.name.is_empty() && !rule.name_en.is_empty()));
        assert_eq!((catalog.bounds.len(), catalog.outliers), (0, OutlierSettings::default()));
        let applying = |code: &str| -> Vec<&str> {
            let rule = catalog.rules.iter().find(|rule| rule.code.as_str() == code).unwrap();
            catalog.units.iter().filter(|unit| rule.applies_to(unit)).map(|unit| unit.code.as_str()).collect()
        };
        assert_eq!(applying("R01"), ["PNV"]);
        assert_eq!(applying("R02"), ["PNV"]);
        assert_eq!(applying("R03").len(), 10, "the communes");

        let json = serde_json::to_string(&(&catalog.rules, &catalog.bounds, &catalog.outliers)).unwrap();
        let stored: (Vec<ValidationRule>, Vec<Bounds>, OutlierSettings) = serde_json::from_str(&json).unwrap();
        assert_eq!(stored, (catalog.rules, catalog.bounds, catalog.outliers));
    }

    #[test]
    fn quality_sections_are_optional() {
        let without = &SHIPPED[..SHIPPED.find("# Data quality").unwrap()];
        let catalog = Catalog::from_toml(without).unwrap();
        assert_eq!((catalog.rules.len(), catalog.bounds.len(), catalog.outliers), (0, 0, OutlierSettings::default()));
    }

    #[test]
    fn bounds_load_for_every_unit_or_one() {
        let text = format!(
            "{SHIPPED}\n[[bounds]]\nindicator = \"B05\"\nunit = \"PNV\"\nmin = 0\nmax = 60\n\n\
             [[bounds]]\nindicator = \"C05\"\nmax = 500\n"
        );
        let bounds = Catalog::from_toml(&text).unwrap().bounds;
        let pnv = UnitCode::parse("PNV").unwrap();
        assert_eq!(
            bounds,
            [
                Bounds {
                    indicator: IndicatorCode::parse("B05").unwrap(),
                    unit: Some(pnv),
                    min: Some(0.0),
                    max: Some(60.0)
                },
                Bounds { indicator: IndicatorCode::parse("C05").unwrap(), unit: None, min: None, max: Some(500.0) },
            ]
        );
    }

    #[test]
    fn quality_refusals_name_the_offender() {
        let left = |side: &str| SHIPPED.replacen("left = \"B05.numerator\"", &format!("left = {side:?}"), 1);
        let r01 = |old: &str, new: &str| SHIPPED.replacen(old, new, 1);
        let bounds = |body: &str| format!("{SHIPPED}\n[[bounds]]\n{body}\n");
        let cases: Vec<(String, &[&str])> = vec![
            (left("Z99.numerator"), &["R01", "Z99", "not defined"]),
            (left("A03.numerator"), &["R01", "A03 is a count: it has no numerator"]),
            (left("C01.denominator"), &["R01", "C01 is a percent: it has no denominator"]),
            (left("children(B05)"), &["R01", "children(B05)", "children(B05.numerator)"]),
            (left("children(C01) - 1"), &["R01", "children(C01)", "never add"]),
            (left("B05..numerator"), &["R01", "left side", "B05..numerator", "character 5"]),
            (left(""), &["R01", "left side", "empty"]),
            (r01("operator = \"<=\"", "operator = \"=<\""), &["R01", "\"=<\"", "not a comparison"]),
            (r01("importance = \"error\"", "importance = \"fatal\""), &["R01", "\"fatal\"", "error or warning"]),
            (
                r01("importance = \"error\"", "importance = \"error\"\nmissing = \"skip\""),
                &["R01", "\"skip\"", "skip-if-any-missing"],
            ),
            (r01("importance = \"error\"", "importance = \"error\"\nseverity = 1"), &["severity"]),
            (SHIPPED.replace("code = \"R02\"", "code = \"R01\""), &["rule R01 is defined twice"]),
            (SHIPPED.replace("code = \"R02\"", "code = \"r02\""), &["rule code", "r02"]),
            (
                SHIPPED
                    .replace("left = \"B05.numerator\"", "left = \"children(B05.numerator)\"")
                    .replace("right = \"B04.numerator\"", "right = \"100\""),
                &["R01", "no figure of the unit itself"],
            ),
            (bounds("indicator = \"Z99\"\nmax = 1"), &["Z99", "not defined"]),
            (bounds("indicator = \"B05\"\nunit = \"NOWHERE\"\nmax = 1"), &["B05", "NOWHERE", "not defined"]),
            (bounds("indicator = \"B05\"\nmin = 60\nmax = 0"), &["B05", "every unit", "min 60 is above max 0"]),
            (bounds("indicator = \"B05\"\nunit = \"PNV\""), &["B05", "PNV", "neither min nor max"]),
            (bounds("indicator = \"B05\"\nmax = nan"), &["B05", "NaN is not a finite number"]),
            (
                bounds("indicator = \"B05\"\nmax = 1\n\n[[bounds]]\nindicator = \"B05\"\nmin = 0"),
                &["B05 has two bounds for every unit"],
            ),
            (SHIPPED.replace("outlier_threshold = 3.5", "outlier_threshold = 0"), &["outlier_threshold is 0"]),
            (SHIPPED.replace("history_periods = 8", "history_periods = 3"), &["history_periods is 3", "4 to 60"]),
            (SHIPPED.replace("history_periods = 8", "history_periods = 61"), &["history_periods is 61"]),
            (SHIPPED.replace("change_factor = 3.0", "change_factor = 1.0"), &["change_factor is 1", "more than 1"]),
            (SHIPPED.replace("change_factor = 3.0", "change_factor = 3.0\nwindow = 5"), &["window"]),
        ];
        for (text, expected) in cases {
            assert_ne!(text, SHIPPED, "the edit for {expected:?} did not apply");
            let message = Catalog::from_toml(&text).unwrap_err().to_string();
            for part in expected {
                assert!(message.contains(part), "{message:?} should mention {part:?}");
            }
        }
    }

    #[test]
    fn reporting_table_is_optional() {
        let start = SHIPPED.find("# The reporting calendar").unwrap();
        let end = SHIPPED.find("[[units]]").unwrap();
        let without = format!("{}{}", &SHIPPED[..start], &SHIPPED[end..]);
        assert_eq!(Catalog::from_toml(&without).unwrap().reporting, ReportingCycle::default());
    }

    #[test]
    fn reporting_refusals_name_the_offender() {
        let commune = "[reporting.kinds.commune]\nperiods = [\"half-yearly\", \"yearly\"]\ndeadline_working_days = 2";
        let commune_with = |periods: &str, days: u32| {
            SHIPPED.replace(
                commune,
                &format!("[reporting.kinds.commune]\nperiods = {periods}\ndeadline_working_days = {days}"),
            )
        };
        let cases: Vec<(String, &[&str])> = vec![
            (SHIPPED.replace("cutoff = \"decree-09\"", "cutoff = \"decree-9\""), &["decree-9"]),
            (commune_with("[\"weekly\"]", 2), &["weekly"]),
            (SHIPPED.replace("cutoff = \"decree-09\"", "cutoff = \"decree-09\"\ngrace_days = 3"), &["grace_days"]),
            (SHIPPED.replace("[reporting.kinds.agency]", "[reporting.kinds.ward]"), &["ward", "no unit"]),
            (commune_with("[]", 2), &["commune", "empty"]),
            (commune_with("[\"yearly\", \"half-yearly\", \"yearly\"]", 2), &["commune", "yearly twice"]),
            (commune_with("[\"yearly\"]", 61), &["commune", "61", "60"]),
            (
                SHIPPED.replace("cutoff = \"decree-09\"", "cutoff = \"decree-09\"\nclose_after_days = 367"),
                &["close_after_days", "367"],
            ),
            (SHIPPED.replace("\"2025-01-01\"", "\"2025-1-1\""), &["2025-1-1", "YYYY-MM-DD"]),
            (SHIPPED.replace("\"2025-01-01\"", "\"1 Jan 2025\""), &["1 Jan 2025"]),
            (SHIPPED.replace("\"2024-01-01\"", "\"2023-12-29\""), &["2023-12-29", "not in 2024"]),
            (SHIPPED.replace("\"2025-01-28\"", "\"2025-01-27\""), &["2025-01-27 twice"]),
            (SHIPPED.replace("2022 = [", "twenty-two = ["), &["twenty-two", "not a year"]),
            // The district would be due on the same day as its communes.
            (
                SHIPPED.replace("deadline_working_days = 5", "deadline_working_days = 2"),
                &["district", "PACNAM", "commune"],
            ),
            // An agency slower than its district.
            (
                SHIPPED.replace(
                    "[reporting.kinds.agency]\nperiods = [\"half-yearly\", \"yearly\"]\ndeadline_working_days = 2",
                    "[reporting.kinds.agency]\nperiods = [\"half-yearly\", \"yearly\"]\ndeadline_working_days = 7",
                ),
                &["district", "agency", "PNV"],
            ),
        ];
        for (text, expected) in cases {
            assert_ne!(text, SHIPPED, "the edit for {expected:?} did not apply");
            let message = Catalog::from_toml(&text).unwrap_err().to_string();
            for part in expected {
                assert!(message.contains(part), "{message:?} should mention {part:?}");
            }
        }
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

    #[test]
    fn a_catalog_beyond_the_unit_bound_is_refused() {
        let mut text = SHIPPED.to_owned();
        for n in 0..=MAX_UNITS - 14 {
            text.push_str(&format!(
                "[[units]]\ncode = \"X{n}\"\nname = \"x\"\nkind = \"commune\"\nparent = \"PACNAM\"\n"
            ));
        }
        let message = Catalog::from_toml(&text).unwrap_err().to_string();
        assert!(message.contains("200001 units, more than 200000"), "{message}");
    }
}
