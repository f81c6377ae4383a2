//! Outliers: a reported value far from what the unit usually reports for the indicator, or
//! outside the bounds the catalog sets for it.
//!
//! Values are judged as shown, on [`crate::Figure::value`] (a ratio's percentage), against the
//! unit's own history of the indicator in past periods of the same length, oldest first.
//! With enough history the test is the modified z-score of Iglewicz and Hoaglin, which
//! median and median absolute deviation (MAD) keep robust against the outliers of earlier
//! periods; with a short history it is the change against the previous period.

use serde::{Deserialize, Serialize};

use crate::codes::{IndicatorCode, UnitCode};
use crate::period::Period;

/// The fewest past values the modified z-score is computed over; below it a median says
/// little, and only the change against the previous period is judged.
pub const MIN_SCORED_HISTORY: usize = 4;

/// MAD / 0.6745 estimates the standard deviation of normal data (0.6745 is the standard
/// normal's third quartile).
const MAD_SCALE: f64 = 0.6745;

/// 1.253314 × mean absolute deviation estimates the standard deviation of normal data
/// (√(π/2)); Iglewicz and Hoaglin's fallback when the MAD is 0.
const MEAN_AD_SCALE: f64 = 1.253314;

/// How outliers are judged; the catalog's `[quality]` table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutlierSettings {
    /// A modified z-score beyond ± this is an outlier (Iglewicz and Hoaglin suggest 3.5).
    pub threshold: f64,
    /// How many of the latest past values the score is computed over.
    pub history_periods: usize,
    /// With a short history, a value more than this many times the previous one, or less than
    /// the previous one divided by it, is an outlier.
    pub change_factor: f64,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        OutlierSettings { threshold: 3.5, history_periods: 8, change_factor: 3.0 }
    }
}

/// The range an indicator's values must stay in, for every unit or for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub indicator: IndicatorCode,
    /// `None`: every unit without bounds of its own.
    pub unit: Option<UnitCode>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Why a value looks wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Outlier {
    /// Far from the unit's usual values. `score` is the modified z-score, infinite (with the
    /// sign of the difference) when the history never varied and the value differs from it;
    /// `expected` is the range of values within the threshold; `history` the values judged
    /// against.
    ZScore { score: f64, expected: (f64, f64), history: Vec<(Period, f64)> },
    /// Many times more or less than the previous period's value: `factor` is value / previous.
    Change { previous: (Period, f64), factor: f64 },
    /// Outside the catalog's bounds.
    OutOfBounds { min: Option<f64>, max: Option<f64> },
}

/// Judges a value against the unit's past values of the indicator (oldest first): by the
/// modified z-score over the latest `history_periods` of them when there are at least
/// [`MIN_SCORED_HISTORY`], else by the change against the latest. Without history, or after
/// a previous value of 0 or less (a change from nothing has no factor), nothing is judged.
pub fn judge_history(value: f64, history: &[(Period, f64)], settings: &OutlierSettings) -> Option<Outlier> {
    if history.len() >= MIN_SCORED_HISTORY {
        let window = settings.history_periods.max(MIN_SCORED_HISTORY);
        judge_score(value, &history[history.len().saturating_sub(window)..], settings.threshold)
    } else {
        judge_change(value, *history.last()?, settings.change_factor)
    }
}

/// Judges a value against the bounds that apply to it (see [`bounds_for`]); both ends are
/// allowed.
pub fn judge_bounds(value: f64, bounds: &Bounds) -> Option<Outlier> {
    let below = bounds.min.is_some_and(|min| value < min);
    let above = bounds.max.is_some_and(|max| value > max);
    (below || above).then_some(Outlier::OutOfBounds { min: bounds.min, max: bounds.max })
}

/// The bounds of an indicator for a unit: the unit's own if the catalog sets them, else the
/// indicator's for every unit.
pub fn bounds_for<'a>(all: &'a [Bounds], indicator: &IndicatorCode, unit: &UnitCode) -> Option<&'a Bounds> {
    let of_indicator = || all.iter().filter(move |bounds| &bounds.indicator == indicator);
    of_indicator()
        .find(|bounds| bounds.unit.as_ref() == Some(unit))
        .or_else(|| of_indicator().find(|bounds| bounds.unit.is_none()))
}

/// The modified z-score test over a non-empty window. The score is (value − median) divided
/// by the spread a standard deviation would have: MAD / 0.6745, or 1.253314 × the mean
/// absolute deviation when the MAD is 0 (more than half the values equal the median). When
/// both are 0 every past value is the same, and any other value is an outlier.
fn judge_score(value: f64, window: &[(Period, f64)], threshold: f64) -> Option<Outlier> {
    let values: Vec<f64> = window.iter().map(|&(_, past)| past).collect();
    let center = median(&values);
    let deviations: Vec<f64> = values.iter().map(|past| (past - center).abs()).collect();
    let mad = median(&deviations);
    let spread = if mad > 0.0 {
        mad / MAD_SCALE
    } else {
        MEAN_AD_SCALE * deviations.iter().sum::<f64>() / deviations.len() as f64
    };
    let score = if spread > 0.0 {
        (value - center) / spread
    } else if value == center {
        0.0
    } else {
        f64::INFINITY.copysign(value - center)
    };
    let reach = threshold * spread;
    (score.abs() > threshold).then(|| Outlier::ZScore {
        score,
        expected: (center - reach, center + reach),
        history: window.to_vec(),
    })
}

/// The change test against the previous period's value.
fn judge_change(value: f64, previous: (Period, f64), change_factor: f64) -> Option<Outlier> {
    if previous.1 <= 0.0 {
        return None;
    }
    let factor = value / previous.1;
    (factor > change_factor || factor < 1.0 / change_factor).then_some(Outlier::Change { previous, factor })
}

/// The median of a non-empty slice.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Years up to 2024, oldest first, holding `values`.
    fn history(values: &[f64]) -> Vec<(Period, f64)> {
        let first = 2025 - values.len() as i32;
        values.iter().zip(first..).map(|(&value, year)| (Period::Year(year), value)).collect()
    }

    fn close(found: f64, expected: f64) -> bool {
        (found - expected).abs() < 1e-4
    }

    #[test]
    fn modified_z_score_judges_a_long_history() {
        // Sorted: 10 10 11 11 12 12 12 13, so the median is 11.5. The absolute deviations are
        // 0.5 (five times) and 1.5 (three times), so the MAD is 0.5. For 20:
        // M = 0.6745 × (20 − 11.5) / 0.5 = 11.4665; expected 11.5 ± 3.5 × 0.5 / 0.6745 =
        // 11.5 ± 2.5945 = (8.9055, 14.0945). For 13: M = 0.6745 × 1.5 / 0.5 = 2.0235.
        let past = history(&[10.0, 12.0, 11.0, 13.0, 12.0, 11.0, 10.0, 12.0]);
        let settings = OutlierSettings::default();
        let Some(Outlier::ZScore { score, expected, history: judged }) = judge_history(20.0, &past, &settings) else {
            panic!("20 should be an outlier");
        };
        assert!(close(score, 11.4665), "{score}");
        assert!(close(expected.0, 8.9055) && close(expected.1, 14.0945), "{expected:?}");
        assert_eq!(judged, past);
        assert_eq!(judge_history(13.0, &past, &settings), None);
        assert!(matches!(judge_history(5.0, &past, &settings), Some(Outlier::ZScore { score, .. }) if score < -3.5));

        // Only the latest eight count: two old values of 1000 are out of the window.
        let longer: Vec<(Period, f64)> = history(&[1000.0, 1000.0]).into_iter().chain(past.clone()).collect();
        assert_eq!(judge_history(13.0, &longer, &settings), None);
        let wider = OutlierSettings { history_periods: 10, ..settings };
        assert_eq!(judge_history(13.0, &longer, &wider), None, "the median is still 12");
        assert!(judge_history(20.0, &longer, &OutlierSettings { threshold: 12.0, ..settings }).is_none());
    }

    #[test]
    fn mean_absolute_deviation_replaces_a_zero_mad() {
        // Median 10, deviations 0 0 0 0 2: the MAD is 0, the mean absolute deviation 0.4.
        // For 13: M = (13 − 10) / (1.253314 × 0.4) = 3 / 0.5013256 = 5.9841; for 11: 1.9947.
        let past = history(&[10.0, 10.0, 12.0, 10.0, 10.0]);
        let settings = OutlierSettings::default();
        let Some(Outlier::ZScore { score, expected, .. }) = judge_history(13.0, &past, &settings) else {
            panic!("13 should be an outlier");
        };
        assert!(close(score, 5.9841), "{score}");
        // 10 ± 3.5 × 0.5013256.
        assert!(close(expected.0, 8.2454) && close(expected.1, 11.7546), "{expected:?}");
        assert_eq!(judge_history(11.0, &past, &settings), None);
    }

    #[test]
    fn a_flat_history_makes_any_other_value_an_outlier() {
        let past = history(&[7.0, 7.0, 7.0, 7.0]);
        let settings = OutlierSettings::default();
        assert_eq!(judge_history(7.0, &past, &settings), None);
        let Some(Outlier::ZScore { score, expected, .. }) = judge_history(7.5, &past, &settings) else {
            panic!("7.5 should be an outlier");
        };
        assert_eq!((score, expected), (f64::INFINITY, (7.0, 7.0)));
        assert!(
            matches!(judge_history(6.0, &past, &settings), Some(Outlier::ZScore { score, .. }) if score == f64::NEG_INFINITY)
        );
    }

    #[test]
    fn a_short_history_judges_the_change() {
        let settings = OutlierSettings::default();
        let one = history(&[100.0]);
        assert_eq!(judge_history(301.0, &one, &settings), Some(Outlier::Change { previous: one[0], factor: 3.01 }));
        assert_eq!(judge_history(300.0, &one, &settings), None, "exactly three times is not more");
        let three = history(&[90.0, 100.0, 120.0]);
        assert!(matches!(
            judge_history(39.0, &three, &settings),
            Some(Outlier::Change { previous, factor }) if previous == three[2] && close(factor, 0.325)
        ));
        assert_eq!(judge_history(40.0, &three, &settings), None, "exactly a third is not less");
        assert!(matches!(judge_history(0.0, &three, &settings), Some(Outlier::Change { factor, .. }) if factor == 0.0));
        let looser = OutlierSettings { change_factor: 5.0, ..settings };
        assert_eq!(judge_history(39.0, &three, &looser), None);
        // From nothing, any value is a change without a factor.
        assert_eq!(judge_history(50.0, &history(&[10.0, 0.0]), &settings), None);
    }

    #[test]
    fn without_history_nothing_is_judged() {
        assert_eq!(judge_history(1e9, &[], &OutlierSettings::default()), None);
    }

    #[test]
    fn bounds_judge_values_and_the_unit_overrides_the_indicator() {
        let b05 = IndicatorCode::parse("B05").unwrap();
        let (pnv, bocbo) = (UnitCode::parse("PNV").unwrap(), UnitCode::parse("BOCBO").unwrap());
        let every_unit = Bounds { indicator: b05.clone(), unit: None, min: Some(0.0), max: Some(60.0) };
        let at_pnv = Bounds { indicator: b05.clone(), unit: Some(pnv.clone()), min: None, max: Some(40.0) };
        let all = [at_pnv.clone(), every_unit.clone()];
        assert_eq!(bounds_for(&all, &b05, &pnv), Some(&at_pnv));
        assert_eq!(bounds_for(&all, &b05, &bocbo), Some(&every_unit));
        assert_eq!(bounds_for(&all, &IndicatorCode::parse("B04").unwrap(), &pnv), None);

        assert_eq!(judge_bounds(60.0, &every_unit), None);
        assert_eq!(judge_bounds(0.0, &every_unit), None);
        assert_eq!(judge_bounds(60.5, &every_unit), Some(Outlier::OutOfBounds { min: Some(0.0), max: Some(60.0) }));
        assert_eq!(judge_bounds(-1.0, &every_unit), Some(Outlier::OutOfBounds { min: Some(0.0), max: Some(60.0) }));
        assert_eq!(judge_bounds(-1e9, &at_pnv), None);
        assert_eq!(judge_bounds(41.0, &at_pnv), Some(Outlier::OutOfBounds { min: None, max: Some(40.0) }));
    }

    #[test]
    fn settings_and_bounds_round_trip_through_json() {
        let settings = OutlierSettings::default();
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(serde_json::from_str::<OutlierSettings>(&json).unwrap(), settings);
        let bounds = Bounds { indicator: IndicatorCode::parse("B05").unwrap(), unit: None, min: None, max: Some(60.0) };
        let json = serde_json::to_string(&bounds).unwrap();
        assert_eq!(json, r#"{"indicator":"B05","unit":null,"min":null,"max":60.0}"#);
        assert_eq!(serde_json::from_str::<Bounds>(&json).unwrap(), bounds);
    }
}
