//! Targets and achievement: where a KPI stands against what the resolution asks.

use crate::figure::{Direction, IndicatorKind};
use crate::period::Period;

/// Tolerance for comparing a computed percentage with a target (100 × 184/184 must meet 100).
const EPSILON: f64 = 1e-9;

/// A target value, in the indicator's own terms (a count, or percentage points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub value: f64,
    pub direction: Direction,
}

/// Where a KPI stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Met,
    NotMet,
    /// Nothing reported: neither met nor unmet.
    NoData,
    /// Data but no target to hold it against.
    NoTarget,
}

/// The outcome of holding an actual value against a target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub status: Status,
    /// actual / target; `None` without data, without a target, or when the target is 0.
    pub achievement: Option<f64>,
}

/// Holds `actual` against `target`.
///
/// Higher is better: met when actual ≥ target, achievement = actual / target (the review's
/// "145% of target"). Lower is better: met when actual ≤ target; achievement is still
/// actual / target (the share of the allowed ceiling used) and absent when the target is 0.
pub fn evaluate(actual: Option<f64>, target: Option<Target>) -> Evaluation {
    let Some(actual) = actual else {
        return Evaluation { status: Status::NoData, achievement: None };
    };
    let Some(target) = target else {
        return Evaluation { status: Status::NoTarget, achievement: None };
    };
    let met = match target.direction {
        Direction::Higher => actual + EPSILON >= target.value,
        Direction::Lower => actual <= target.value + EPSILON,
    };
    let achievement = (target.value != 0.0).then(|| actual / target.value);
    Evaluation { status: if met { Status::Met } else { Status::NotMet }, achievement }
}

/// The target a KPI is held against. `holders` is the unit, then its ancestors up to the
/// root; `find(holder, period)` is a target set for that holder and that period (`None`: for
/// the whole term). A target for the period itself wins over one for the whole term; rates
/// (ratios, percents) are scale-free and inherit the nearest ancestor's target; counts are
/// not, so a commune never inherits the district's headcount.
pub fn choose_target<U>(
    kind: IndicatorKind,
    holders: impl IntoIterator<Item = U>,
    period: Period,
    find: impl Fn(&U, Option<Period>) -> Option<f64>,
) -> Option<f64> {
    let inherits = kind != IndicatorKind::Count;
    holders
        .into_iter()
        .take(if inherits { usize::MAX } else { 1 })
        .find_map(|holder| find(&holder, Some(period)).or_else(|| find(&holder, None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::Figure;

    #[test]
    fn review_figures() {
        // B05: 15 of 145 district staff hold a postgraduate degree, against a target of 15%.
        let b05 = Figure::Ratio { numerator: 15, denominator: 145 }.value();
        assert!((b05 - 10.3448).abs() < 1e-4);
        let evaluation = evaluate(Some(b05), Some(Target { value: 15.0, direction: Direction::Higher }));
        assert_eq!(evaluation.status, Status::NotMet);
        assert!((evaluation.achievement.unwrap_or_default() - 0.6897).abs() < 1e-4);

        // C02: 29% of services online at level 4 against 20%: 145% of target.
        let c02 = evaluate(Some(29.0), Some(Target { value: 20.0, direction: Direction::Higher }));
        assert_eq!(c02.status, Status::Met);
        assert!((c02.achievement.unwrap_or_default() - 1.45).abs() < 1e-9);

        // C05: no complaints against a ceiling of 0: met, and no ratio.
        let c05 = evaluate(Some(0.0), Some(Target { value: 0.0, direction: Direction::Lower }));
        assert_eq!(c05, Evaluation { status: Status::Met, achievement: None });
        let c05_missed = evaluate(Some(2.0), Some(Target { value: 0.0, direction: Direction::Lower }));
        assert_eq!(c05_missed.status, Status::NotMet);

        // 184 of 184 meets a target of 100%.
        let full = Figure::Ratio { numerator: 184, denominator: 184 }.value();
        assert_eq!(
            evaluate(Some(full), Some(Target { value: 100.0, direction: Direction::Higher })).status,
            Status::Met
        );
    }

    #[test]
    fn no_data_and_no_target() {
        let target = Target { value: 85.0, direction: Direction::Higher };
        assert_eq!(evaluate(None, Some(target)).status, Status::NoData);
        assert_eq!(evaluate(Some(73.0), None).status, Status::NoTarget);
    }
}
