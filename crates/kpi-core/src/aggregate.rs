//! Aggregation of reported figures over time and up the unit tree (domain.md).
//!
//! Over time, per unit: a period reported directly is taken as it is; otherwise a stock takes
//! its latest sub-period with a value and a flow sums its sub-periods, recursively (a year from
//! its halves, a half from its quarters, a quarter from its months), so no month is counted
//! twice. Up the tree: counts sum, ratios sum numerators and denominators, and a percent is the
//! value of the one unit the catalog names as its reporter.

use std::collections::{BTreeMap, HashMap};

use crate::codes::UnitCode;
use crate::figure::{Figure, IndicatorKind, TimeAggregation};
use crate::period::Period;

/// One unit's figure for `period`, from what it reported for that period and the ones inside.
pub fn resolve_over_time(period: Period, time: TimeAggregation, reported: &BTreeMap<Period, Figure>) -> Option<Figure> {
    if let Some(figure) = reported.get(&period) {
        return Some(*figure);
    }
    let children = period.children().into_iter().map(|child| resolve_over_time(child, time, reported));
    combine_children(time, children)
}

/// How many periods a year holds, itself included: the year, 2 halves, 4 quarters, 12 months.
pub const PERIODS_IN_A_YEAR: usize = 19;

/// Every period of `year` with its figure from [`resolve_over_time`], in
/// `Period::with_descendants` order (the year, its halves, quarters, then months), worked out
/// once each, months first: the same rule, for when a whole year's figures are wanted (the
/// totals' changes), where resolving each period from scratch would redo its sub-periods. The
/// tests hold it equal to [`resolve_over_time`] over random years.
pub fn resolve_year(
    year: i32,
    time: TimeAggregation,
    reported: &BTreeMap<Period, Figure>,
) -> [(Period, Option<Figure>); PERIODS_IN_A_YEAR] {
    let mut resolved = year_periods(year).map(|period| (period, None));
    // The year's figures, read in one pass over its range of the map instead of one lookup
    // per period: periods order by where they end, so January's month comes first and
    // December's last.
    let mut direct = [None; PERIODS_IN_A_YEAR];
    let mut any = false;
    for (period, figure) in reported.range(Period::Month(year, 1)..=Period::Month(year, 12)) {
        if let Some(slot) = year_slot(*period) {
            direct[slot] = Some(*figure);
            any = true;
        }
    }
    if !any {
        // Most writes add a unit's first report of a year: nothing to resolve before them.
        return resolved;
    }
    // In that order every period's children sit together after it (`children_slots`), so
    // resolving backwards meets the children first.
    for index in (0..PERIODS_IN_A_YEAR).rev() {
        let figure = match direct[index] {
            Some(figure) => Some(figure),
            None => {
                let (first, count) = children_slots(index);
                let children = resolved[first..first + count].iter().map(|&(_, figure)| figure);
                combine_children(time, children)
            }
        };
        resolved[index].1 = figure;
    }
    resolved
}

/// The periods of `year` in `Period::with_descendants` order, without allocating: the
/// totals resolve a year twice for every indicator of every file they write.
fn year_periods(year: i32) -> [Period; PERIODS_IN_A_YEAR] {
    let mut periods = [Period::Year(year); PERIODS_IN_A_YEAR];
    for half in 1..=2u8 {
        periods[usize::from(half)] = Period::Half(year, half);
    }
    for quarter in 1..=4u8 {
        periods[2 + usize::from(quarter)] = Period::Quarter(year, quarter);
    }
    for month in 1..=12u8 {
        periods[6 + usize::from(month)] = Period::Month(year, month);
    }
    periods
}

/// Where `period` sits in [`year_periods`]' order, or `None` for a half, quarter or month
/// that does not exist.
fn year_slot(period: Period) -> Option<usize> {
    match period {
        Period::Year(_) => Some(0),
        Period::Half(_, half @ 1..=2) => Some(usize::from(half)),
        Period::Quarter(_, quarter @ 1..=4) => Some(2 + usize::from(quarter)),
        Period::Month(_, month @ 1..=12) => Some(6 + usize::from(month)),
        _ => None,
    }
}

/// Where the children of the period at `index` of [`resolve_year`]'s order start, and how
/// many there are.
fn children_slots(index: usize) -> (usize, usize) {
    match index {
        0 => (1, 2),
        1 | 2 => (3 + 2 * (index - 1), 2),
        3..=6 => (7 + 3 * (index - 3), 3),
        _ => (0, 0),
    }
}

/// A period's figure from its children's, in order: a stock takes the latest child with a
/// figure, a flow sums them (no figure if the sum overflows or mixes kinds). Children are
/// resolved lazily, so a stock resolves only from its latest child back.
fn combine_children(
    time: TimeAggregation,
    children: impl DoubleEndedIterator<Item = Option<Figure>>,
) -> Option<Figure> {
    match time {
        TimeAggregation::Stock => children.rev().flatten().next(),
        TimeAggregation::Flow => children
            .flatten()
            .try_fold(None::<Figure>, |total, figure| match total {
                None => Some(Some(figure)),
                Some(total) => total.checked_add(figure).map(Some),
            })
            .flatten(),
    }
}

/// An indicator's figure over a set of units (a subtree), and how many of them it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub figure: Option<Figure>,
    /// Units whose own figure went into the aggregate.
    pub reporting_units: u32,
}

/// Aggregates the units' resolved figures of one indicator.
///
/// `reporter` is the unit a percent indicator is taken from; it is ignored for the other kinds.
/// Sums that overflow `i64` leave the aggregate without a figure rather than wrapping.
pub fn aggregate_units<U: PartialEq>(
    kind: IndicatorKind,
    reporter: Option<&U>,
    figures: impl IntoIterator<Item = (U, Figure)>,
) -> Aggregate {
    let mut aggregate = Aggregate { figure: None, reporting_units: 0 };
    let mut overflowed = false;
    for (unit, figure) in figures {
        match kind {
            IndicatorKind::Percent => {
                if reporter == Some(&unit) {
                    aggregate.figure = Some(figure);
                    aggregate.reporting_units = 1;
                }
            }
            IndicatorKind::Count | IndicatorKind::Ratio => {
                aggregate.reporting_units += 1;
                aggregate.figure = match aggregate.figure {
                    None => Some(figure),
                    Some(total) => {
                        let sum = total.checked_add(figure);
                        overflowed |= sum.is_none();
                        sum
                    }
                };
            }
        }
    }
    if overflowed {
        aggregate.figure = None;
    }
    aggregate
}

/// The unit tree, held in memory: small even at national scale (about 11,000 units).
#[derive(Debug, Clone, Default)]
pub struct UnitTree {
    parents: HashMap<UnitCode, Option<UnitCode>>,
    children: HashMap<UnitCode, Vec<UnitCode>>,
}

impl UnitTree {
    /// Builds the tree from (unit, parent) pairs; children keep the order given.
    pub fn new(units: impl IntoIterator<Item = (UnitCode, Option<UnitCode>)>) -> Self {
        let mut tree = UnitTree::default();
        for (unit, parent) in units {
            if let Some(parent) = &parent {
                tree.children.entry(parent.clone()).or_default().push(unit.clone());
            }
            tree.parents.insert(unit, parent);
        }
        tree
    }

    pub fn contains(&self, unit: &UnitCode) -> bool {
        self.parents.contains_key(unit)
    }

    pub fn children(&self, unit: &UnitCode) -> &[UnitCode] {
        self.children.get(unit).map_or(&[], Vec::as_slice)
    }

    /// The unit and everything below it, the unit first.
    pub fn subtree(&self, unit: &UnitCode) -> Vec<UnitCode> {
        let mut all = vec![unit.clone()];
        let mut index = 0;
        while index < all.len() {
            all.extend(self.children(&all[index]).iter().cloned());
            index += 1;
        }
        all
    }

    /// Whether `unit` is `ancestor` or lies below it.
    pub fn is_within(&self, unit: &UnitCode, ancestor: &UnitCode) -> bool {
        let mut current = Some(unit);
        while let Some(code) = current {
            if code == ancestor {
                return true;
            }
            current = self.parents.get(code).and_then(Option::as_ref);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(numerator: i64, denominator: i64) -> Figure {
        Figure::Ratio { numerator, denominator }
    }

    #[test]
    fn a_years_periods_come_in_with_descendants_order() {
        for year in [1, 2024, 9999] {
            assert_eq!(year_periods(year).to_vec(), Period::Year(year).with_descendants());
        }
    }

    #[test]
    fn district_ratio_is_sum_over_sum_not_mean_of_percentages() {
        // A commune of 15 people at 100% and one of 150 at 50%.
        let aggregate = aggregate_units(IndicatorKind::Ratio, None::<&u8>, [(1u8, ratio(15, 15)), (2, ratio(75, 150))]);
        assert_eq!(aggregate.figure, Some(ratio(90, 165)));
        assert!((aggregate.figure.map(Figure::value).unwrap_or_default() - 54.545).abs() < 1e-3);
        assert_eq!(aggregate.reporting_units, 2);
    }

    #[test]
    fn counts_sum_and_percents_come_from_their_reporter() {
        let counts =
            aggregate_units(IndicatorKind::Count, None::<&u8>, [(1u8, Figure::Count(17)), (2, Figure::Count(19))]);
        assert_eq!(counts.figure, Some(Figure::Count(36)));
        let reporter = 7u8;
        let percent = aggregate_units(
            IndicatorKind::Percent,
            Some(&reporter),
            [(3u8, Figure::Percent(10.0)), (7, Figure::Percent(27.4))],
        );
        assert_eq!(percent.figure, Some(Figure::Percent(27.4)));
        let absent = aggregate_units(IndicatorKind::Percent, Some(&reporter), [(3u8, Figure::Percent(10.0))]);
        assert_eq!(absent.figure, None);
    }

    #[test]
    fn stocks_take_the_latest_and_flows_sum_without_double_counting() {
        let year = Period::Year(2023);
        let reported: BTreeMap<Period, Figure> = [
            (Period::Half(2023, 1), Figure::Count(10)),
            (Period::Quarter(2023, 3), Figure::Count(4)),
            (Period::Month(2023, 10), Figure::Count(1)),
            (Period::Month(2023, 12), Figure::Count(2)),
        ]
        .into();
        assert_eq!(resolve_over_time(year, TimeAggregation::Stock, &reported), Some(Figure::Count(2)));
        assert_eq!(resolve_over_time(year, TimeAggregation::Flow, &reported), Some(Figure::Count(10 + 4 + 1 + 2)));
        // A year reported directly wins over its sub-periods.
        let mut direct = reported.clone();
        direct.insert(year, Figure::Count(99));
        assert_eq!(resolve_over_time(year, TimeAggregation::Flow, &direct), Some(Figure::Count(99)));
        assert_eq!(resolve_over_time(Period::Year(2024), TimeAggregation::Stock, &reported), None);
    }

    #[test]
    fn a_year_resolved_at_once_equals_each_period_resolved_alone() {
        // A seeded generator (xorshift): random sets of reported periods, with figures of both
        // kinds and sizes that overflow, so mismatched kinds and overflowing sums are met, and
        // figures of the years either side, which must not count.
        let mut next = crate::seeded::xorshift(0x9E37_79B9_7F4A_7C15);
        let periods: Vec<Period> = (2023..=2025).flat_map(|year| Period::Year(year).with_descendants()).collect();
        let of_2024 = Period::Year(2024).with_descendants();
        for case in 0..20_000 {
            let mut reported = BTreeMap::new();
            for &period in &periods {
                if next().is_multiple_of(3) {
                    let value = match next() % 4 {
                        0 => i64::MAX - (next() % 3) as i64,
                        _ => (next() % 1000) as i64,
                    };
                    let figure = if next().is_multiple_of(8) {
                        Figure::Ratio { numerator: value, denominator: value }
                    } else {
                        Figure::Count(value)
                    };
                    reported.insert(period, figure);
                }
            }
            for time in [TimeAggregation::Stock, TimeAggregation::Flow] {
                let at_once = resolve_year(2024, time, &reported);
                let alone: Vec<(Period, Option<Figure>)> =
                    of_2024.iter().map(|&period| (period, resolve_over_time(period, time, &reported))).collect();
                assert_eq!(at_once.to_vec(), alone, "case {case}, {time:?}, {reported:?}");
            }
        }
    }

    #[test]
    fn tree_walks() {
        let code = |c: &str| UnitCode::parse(c).unwrap_or_else(|e| panic!("{e}"));
        let tree = UnitTree::new([
            (code("ROOT"), None),
            (code("A"), Some(code("ROOT"))),
            (code("A1"), Some(code("A"))),
            (code("B"), Some(code("ROOT"))),
        ]);
        assert_eq!(tree.subtree(&code("ROOT")).len(), 4);
        assert_eq!(tree.children(&code("ROOT")), &[code("A"), code("B")]);
        assert!(tree.is_within(&code("A1"), &code("ROOT")));
        assert!(!tree.is_within(&code("A1"), &code("B")));
    }
}
