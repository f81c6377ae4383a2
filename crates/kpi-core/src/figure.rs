//! What an indicator measures and how one unit's figure for one period is held.

use serde::Deserialize;

/// How an indicator is reported and aggregated up the unit tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    /// A whole number ≥ 0, summed up the tree.
    Count,
    /// Numerator over denominator, aggregated as Σnumerators / Σdenominators.
    Ratio,
    /// A percentage with no counts behind it, taken from the one unit the catalog names.
    Percent,
}

/// How an indicator aggregates over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeAggregation {
    /// A level at the end of the period: a year is its latest reported sub-period.
    Stock,
    /// An amount during the period: a year is the sum of its sub-periods.
    Flow,
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Higher,
    Lower,
}

macro_rules! text_codes {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// The word used in the catalog, the database and the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Reads the word written by [`Self::as_str`].
            pub fn from_str_opt(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

/// Shared with the other modules whose enums have a catalog word.
pub(crate) use text_codes;

text_codes!(IndicatorKind { Count => "count", Ratio => "ratio", Percent => "percent" });
text_codes!(TimeAggregation { Stock => "stock", Flow => "flow" });
text_codes!(Direction { Higher => "higher", Lower => "lower" });

/// The largest whole number a report may give (a count, a numerator or a denominator): far
/// above any count of people or documents, and small enough that no total can overflow `i64`
/// (see [`crate::catalog::MAX_UNITS`]).
pub const MAX_WHOLE: i64 = 1_000_000_000_000;

/// Whether every whole number of `figure` is within 0 ..= [`MAX_WHOLE`] (percents have no
/// whole numbers). The importer refuses a cell beyond it and the store a figure beyond it, so
/// the maintained sums and kpi-core's `checked_add` never meet an overflow.
pub fn within_bounds(figure: Figure) -> bool {
    let whole = |n: i64| (0..=MAX_WHOLE).contains(&n);
    match figure {
        Figure::Count(count) => whole(count),
        Figure::Ratio { numerator, denominator } => whole(numerator) && whole(denominator),
        Figure::Percent(_) => true,
    }
}

/// One unit's figure for one indicator and period, already checked against its kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    Count(i64),
    Ratio {
        numerator: i64,
        denominator: i64,
    },
    /// Percentage points, 0–100.
    Percent(f64),
}

impl Figure {
    /// The number shown for the figure: the count, or the percentage.
    pub fn value(self) -> f64 {
        match self {
            Figure::Count(count) => count as f64,
            Figure::Ratio { numerator, denominator } => percentage(numerator, denominator),
            Figure::Percent(percent) => percent,
        }
    }

    /// Adds two figures of the same kind over time (flows); `None` for percents, which never add.
    pub fn checked_add(self, other: Figure) -> Option<Figure> {
        match (self, other) {
            (Figure::Count(a), Figure::Count(b)) => Some(Figure::Count(a.checked_add(b)?)),
            (Figure::Ratio { numerator: n1, denominator: d1 }, Figure::Ratio { numerator: n2, denominator: d2 }) => {
                Some(Figure::Ratio { numerator: n1.checked_add(n2)?, denominator: d1.checked_add(d2)? })
            }
            _ => None,
        }
    }
}

/// 100 × numerator / denominator, or 0 when the denominator is 0.
pub fn percentage(numerator: i64, denominator: i64) -> f64 {
    if denominator == 0 { 0.0 } else { 100.0 * numerator as f64 / denominator as f64 }
}
