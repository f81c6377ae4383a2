//! A report checked beyond its own cells: against the catalog's validation rules (its own
//! figures, and its children's sums for the same period) and against its unit's history
//! (outliers). The importer checks each file before storing it and the store's re-validation
//! checks stored reports, both through [`check_report`], so the two cannot disagree.

use std::collections::BTreeMap;

use crate::catalog::{Catalog, UnitDef};
use crate::codes::IndicatorCode;
use crate::figure::Figure;
use crate::period::Period;
use crate::quality::{Outlier, bounds_for, judge_bounds, judge_history};
use crate::rules::{FigurePart, FigureRef, RuleOutcome, Scope, ValidationRule};

/// What a report is checked with.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    /// The report's own figures.
    pub own: &'a BTreeMap<IndicatorCode, Figure>,
    /// The current figures of each direct child of the unit for the same period.
    pub children: &'a [BTreeMap<IndicatorCode, Figure>],
    /// Per indicator, the unit's values in past periods of the same length, oldest first.
    pub history: &'a BTreeMap<IndicatorCode, Vec<(Period, f64)>>,
}

/// One thing found wrong with a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding<'a> {
    /// A rule does not hold: its sides' values, missing figures counted as 0.
    Rule { rule: &'a ValidationRule, left: f64, right: f64 },
    /// A figure far from what was expected.
    Outlier { indicator: IndicatorCode, value: f64, outlier: Outlier },
}

/// Every rule that applies to `unit` and does not hold, then every outlier among its figures
/// (bounds first, then history), in catalog order.
pub fn check_report<'a>(catalog: &'a Catalog, unit: &UnitDef, context: &ReportContext<'_>) -> Vec<Finding<'a>> {
    let mut findings = Vec::new();
    for rule in catalog.rules.iter().filter(|rule| rule.applies_to(unit)) {
        if let RuleOutcome::Violated { left, right } = rule.evaluate(|figure| lookup(context, figure)) {
            findings.push(Finding::Rule { rule, left, right });
        }
    }
    for (indicator, figure) in context.own {
        let value = figure.value();
        let bounded = bounds_for(&catalog.bounds, indicator, &unit.code).and_then(|bounds| judge_bounds(value, bounds));
        let history = context.history.get(indicator).map(Vec::as_slice).unwrap_or_default();
        if let Some(outlier) = bounded.or_else(|| judge_history(value, history, &catalog.outliers)) {
            findings.push(Finding::Outlier { indicator: indicator.clone(), value, outlier });
        }
    }
    findings
}

/// The number a rule's term reads: the unit's own figure, or the sum over the children that
/// reported it (`None` when none did).
fn lookup(context: &ReportContext<'_>, figure: &FigureRef) -> Option<f64> {
    match figure.scope {
        Scope::Own => context.own.get(&figure.indicator).and_then(|own| part(own, figure.part)),
        Scope::Children => context
            .children
            .iter()
            .filter_map(|child| child.get(&figure.indicator).and_then(|value| part(value, figure.part)))
            .fold(None, |sum, value| Some(sum.unwrap_or(0.0) + value)),
    }
}

/// One number of a figure; a count or a percent has no numerator or denominator.
fn part(figure: &Figure, part: FigurePart) -> Option<f64> {
    match (part, figure) {
        (FigurePart::Value, _) => Some(figure.value()),
        (FigurePart::Numerator, Figure::Ratio { numerator, .. }) => Some(*numerator as f64),
        (FigurePart::Denominator, Figure::Ratio { denominator, .. }) => Some(*denominator as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::UnitCode;

    const SHIPPED: &str = include_str!("../../../catalog/pac-nam-09-nq-hu.toml");

    fn code(text: &str) -> IndicatorCode {
        IndicatorCode::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_resolutions_rules_and_outliers_are_found() {
        let catalog = Catalog::from_toml(SHIPPED).unwrap_or_else(|e| panic!("{e}"));
        let pnv = catalog.unit(&UnitCode::parse("PNV").unwrap_or_else(|e| panic!("{e}"))).cloned();
        let pnv = pnv.unwrap_or_else(|| panic!("PNV"));
        // 20 postgraduates among 15 university graduates, and a staff of 150 against 120 + 20.
        let own: BTreeMap<IndicatorCode, Figure> = [
            (code("B04"), Figure::Ratio { numerator: 15, denominator: 150 }),
            (code("B05"), Figure::Ratio { numerator: 20, denominator: 150 }),
            (code("A02"), Figure::Count(120)),
            (code("A04"), Figure::Count(20)),
            (code("A01"), Figure::Count(90)),
        ]
        .into();
        let history: BTreeMap<IndicatorCode, Vec<(Period, f64)>> =
            [(code("A01"), vec![(Period::Year(2023), 30.0)])].into();
        let context = ReportContext { own: &own, children: &[], history: &history };
        let findings = check_report(&catalog, &pnv, &context);
        let rules: Vec<(&str, f64, f64)> = findings
            .iter()
            .filter_map(|f| match f {
                Finding::Rule { rule, left, right } => Some((rule.code.as_str(), *left, *right)),
                Finding::Outlier { .. } => None,
            })
            .collect();
        assert_eq!(rules, [("R01", 20.0, 15.0), ("R02", 150.0, 140.0)]);
        // A01 trebled against 2023 (×3 exactly is not yet an outlier: 90 > 3 × 30 is false).
        assert!(!findings.iter().any(|f| matches!(f, Finding::Outlier { .. })));
        let history: BTreeMap<IndicatorCode, Vec<(Period, f64)>> =
            [(code("A01"), vec![(Period::Year(2023), 29.0)])].into();
        let context = ReportContext { own: &own, children: &[], history: &history };
        let outliers: Vec<IndicatorCode> = check_report(&catalog, &pnv, &context)
            .into_iter()
            .filter_map(|f| match f {
                Finding::Outlier { indicator, .. } => Some(indicator),
                Finding::Rule { .. } => None,
            })
            .collect();
        assert_eq!(outliers, [code("A01")]);
    }

    #[test]
    fn children_terms_sum_what_the_children_reported() {
        let children: Vec<BTreeMap<IndicatorCode, Figure>> = vec![
            [(code("A01"), Figure::Count(5))].into(),
            BTreeMap::new(),
            [(code("A01"), Figure::Count(7)), (code("B01"), Figure::Ratio { numerator: 1, denominator: 4 })].into(),
        ];
        let (own, history) = (BTreeMap::new(), BTreeMap::new());
        let context = ReportContext { own: &own, children: &children, history: &history };
        let term =
            |indicator: &str, part: FigurePart| FigureRef { indicator: code(indicator), part, scope: Scope::Children };
        assert_eq!(lookup(&context, &term("A01", FigurePart::Value)), Some(12.0));
        assert_eq!(lookup(&context, &term("B01", FigurePart::Denominator)), Some(4.0));
        assert_eq!(lookup(&context, &term("A03", FigurePart::Value)), None);
    }
}
