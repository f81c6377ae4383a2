//! Maintained totals: the aggregates of [`crate::aggregate`], kept per (unit, indicator,
//! period) for every unit and every period, so that answering a KPI reads one row.
//!
//! A unit's total is the sum, over the units of its subtree, of each unit's figure resolved
//! over time ([`resolve_over_time`]). So when a report changes, only the reporting unit's
//! resolved figures can change, and each change is added to the totals of the unit and of
//! every ancestor. This module says what those changes are; the store applies them.

use std::collections::BTreeMap;

use crate::aggregate::{Aggregate, resolve_year};
use crate::figure::{Figure, IndicatorKind, TimeAggregation};
use crate::period::Period;

/// One stored total: the sums of the resolved figures below a unit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Σ counts (count indicators).
    pub count: i64,
    /// Σ numerators and Σ denominators (ratio indicators).
    pub numerator: i64,
    pub denominator: i64,
    /// The reporter's figure (percent indicators), which is never summed.
    pub percent: Option<f64>,
    /// Units whose resolved figure is in the totals.
    pub reporting_units: i64,
}

/// What a change of one unit's resolved figure does to the totals of it and its ancestors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TotalsChange {
    /// Counts and ratios: add these (possibly negative) amounts.
    Add { count: i64, numerator: i64, denominator: i64, units: i64 },
    /// Percents: the reporter's figure replaces the total (absent when it was withdrawn).
    SetPercent(Option<f64>),
}

/// The change to the totals above a unit whose resolved figure goes from `old` to `new`.
/// `is_reporter` says whether the unit is the one a percent indicator is taken from; other
/// units' percents count nowhere. `None` when nothing changes.
pub fn totals_change(
    kind: IndicatorKind,
    is_reporter: bool,
    old: Option<Figure>,
    new: Option<Figure>,
) -> Option<TotalsChange> {
    if old == new {
        return None;
    }
    if kind == IndicatorKind::Percent {
        let percent = |figure: Option<Figure>| match figure {
            Some(Figure::Percent(p)) => Some(p),
            _ => None,
        };
        return is_reporter.then(|| TotalsChange::SetPercent(percent(new)));
    }
    let parts = |figure: Option<Figure>| match figure {
        Some(Figure::Count(c)) => (c, 0, 0, 1),
        Some(Figure::Ratio { numerator, denominator }) => (0, numerator, denominator, 1),
        _ => (0, 0, 0, 0),
    };
    let ((c1, n1, d1, u1), (c2, n2, d2, u2)) = (parts(old), parts(new));
    Some(TotalsChange::Add { count: c2 - c1, numerator: n2 - n1, denominator: d2 - d1, units: u2 - u1 })
}

/// The aggregate that stored totals stand for; no totals row means nothing was reported.
pub fn aggregate_from_totals(kind: IndicatorKind, totals: Option<&Totals>) -> Aggregate {
    let Some(totals) = totals.filter(|t| t.reporting_units > 0) else {
        return Aggregate { figure: None, reporting_units: 0 };
    };
    let figure = match kind {
        IndicatorKind::Count => Some(Figure::Count(totals.count)),
        IndicatorKind::Ratio => Some(Figure::Ratio { numerator: totals.numerator, denominator: totals.denominator }),
        IndicatorKind::Percent => totals.percent.map(Figure::Percent),
    };
    let reporting_units = u32::try_from(totals.reporting_units).unwrap_or(u32::MAX);
    Aggregate { figure, reporting_units: if figure.is_some() { reporting_units } else { 0 } }
}

/// One unit's figures of one indicator by period, as reported.
pub type Reported = BTreeMap<Period, Figure>;

/// The periods whose resolved figure changes when a unit's reports of one indicator within
/// one year go from `old` to `new`, with the resolved figures before and after.
pub fn resolution_changes(
    year: i32,
    time: TimeAggregation,
    old: &Reported,
    new: &Reported,
) -> Vec<(Period, Option<Figure>, Option<Figure>)> {
    let (before, after) = (resolve_year(year, time, old), resolve_year(year, time, new));
    before
        .into_iter()
        .zip(after)
        .filter_map(|((period, before), (_, after))| (before != after).then_some((period, before, after)))
        .collect()
}

/// The years either of a unit's figure sets (before and after a change) has a period in,
/// ascending, each once. Periods are ordered by year first, so the two sorted key lists are
/// merged as they are read, without collecting: this runs for every value of every file.
pub fn years_of_either<'a>(before: &'a Reported, after: &'a Reported) -> impl Iterator<Item = i32> + 'a {
    let mut before = before.keys().map(|period| period.year()).peekable();
    let mut after = after.keys().map(|period| period.year()).peekable();
    let mut last = None;
    std::iter::from_fn(move || {
        loop {
            let year = match (before.peek(), after.peek()) {
                (Some(b), Some(a)) if b <= a => before.next(),
                (_, Some(_)) => after.next(),
                (Some(_), None) => before.next(),
                (None, None) => None,
            }?;
            if last != Some(year) {
                last = Some(year);
                return Some(year);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The merge gives the union of both sets' years, as a `BTreeSet` of them would, on
    /// seeded figure sets of every period kind over a few years, empty ones included.
    #[test]
    fn years_of_either_is_the_union_of_both_sets_years() {
        let mut next = crate::seeded::xorshift(0x7ea2_5eed);
        let figures = |next: &mut dyn FnMut() -> u64| {
            let mut reported = Reported::new();
            for _ in 0..next() % 6 {
                let year = 2020 + (next() % 4) as i32;
                let period = match next() % 4 {
                    0 => Period::Year(year),
                    1 => Period::Half(year, 1 + (next() % 2) as u8),
                    2 => Period::Quarter(year, 1 + (next() % 4) as u8),
                    _ => Period::Month(year, 1 + (next() % 12) as u8),
                };
                reported.insert(period, Figure::Count(1));
            }
            reported
        };
        for _ in 0..5_000 {
            let (before, after) = (figures(&mut next), figures(&mut next));
            let expected: BTreeSet<i32> = before.keys().chain(after.keys()).map(|p| p.year()).collect();
            let merged: Vec<i32> = years_of_either(&before, &after).collect();
            assert_eq!(merged, expected.into_iter().collect::<Vec<_>>(), "{before:?} {after:?}");
        }
    }

    #[test]
    fn a_correction_adds_the_difference_and_a_new_reporter_counts_once() {
        let first = totals_change(IndicatorKind::Count, false, None, Some(Figure::Count(17)));
        assert_eq!(first, Some(TotalsChange::Add { count: 17, numerator: 0, denominator: 0, units: 1 }));
        let corrected = totals_change(IndicatorKind::Count, false, Some(Figure::Count(17)), Some(Figure::Count(19)));
        assert_eq!(corrected, Some(TotalsChange::Add { count: 2, numerator: 0, denominator: 0, units: 0 }));
        let ratio = |n, d| Some(Figure::Ratio { numerator: n, denominator: d });
        let withdrawn = totals_change(IndicatorKind::Ratio, false, ratio(3, 4), None);
        assert_eq!(withdrawn, Some(TotalsChange::Add { count: 0, numerator: -3, denominator: -4, units: -1 }));
        assert_eq!(totals_change(IndicatorKind::Count, false, Some(Figure::Count(5)), Some(Figure::Count(5))), None);
    }

    #[test]
    fn percents_are_set_by_their_reporter_only() {
        let set = totals_change(IndicatorKind::Percent, true, None, Some(Figure::Percent(27.4)));
        assert_eq!(set, Some(TotalsChange::SetPercent(Some(27.4))));
        assert_eq!(totals_change(IndicatorKind::Percent, false, None, Some(Figure::Percent(27.4))), None);
        let totals = Totals { percent: Some(27.4), reporting_units: 1, ..Totals::default() };
        assert_eq!(aggregate_from_totals(IndicatorKind::Percent, Some(&totals)).figure, Some(Figure::Percent(27.4)));
    }

    #[test]
    fn a_month_changes_its_quarter_half_and_year_unless_the_year_was_reported() {
        let old: Reported = [(Period::Month(2023, 2), Figure::Count(1))].into();
        let mut new = old.clone();
        new.insert(Period::Month(2023, 5), Figure::Count(2));
        let changed: Vec<Period> =
            resolution_changes(2023, TimeAggregation::Flow, &old, &new).into_iter().map(|(p, ..)| p).collect();
        assert_eq!(
            changed,
            vec![Period::Year(2023), Period::Half(2023, 1), Period::Quarter(2023, 2), Period::Month(2023, 5)]
        );
        let mut direct_old = old.clone();
        direct_old.insert(Period::Year(2023), Figure::Count(9));
        let mut direct_new = new.clone();
        direct_new.insert(Period::Year(2023), Figure::Count(9));
        let changed = resolution_changes(2023, TimeAggregation::Flow, &direct_old, &direct_new);
        assert!(changed.iter().all(|(p, ..)| *p != Period::Year(2023)), "a direct report wins: {changed:?}");
    }
}
