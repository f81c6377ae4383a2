//! Validation rules: comparisons between figures of one unit and period, such as "no more
//! postgraduates than university graduates" (DHIS2's validation rules).
//!
//! A rule compares two sides. A side is a sum or difference of terms: an indicator's value
//! (`B05`), a ratio's counts (`B05.numerator`, `B05.denominator`), the sum of such a term over
//! the unit's direct children (`children(A01)`), or a number (`2.5`). Sides are written by
//! hand in the catalog, so [`parse_side`] is strict, bounded, and names the wrong character.
//! Evaluation reads figures through a lookup, so one rule runs unchanged over a workbook
//! being imported and over stored reports.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::UnitDef;
use crate::codes::{CodeError, IndicatorCode, RuleCode};
use crate::figure::text_codes;

/// The longest side the catalog may write, in characters: a hand-written side is short, and
/// a bound keeps a typing accident from becoming a slow rule.
pub const MAX_SIDE_CHARS: usize = 256;

/// The most terms one side may hold.
pub const MAX_SIDE_TERMS: usize = 32;

/// Two sides are equal when they differ by at most this fraction of the larger magnitude, so
/// percentages computed along different paths do not differ by their last bits. Every
/// comparison uses it: `<=` is `<` or equal, and `<` is less and not equal.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// The word that sums a term over a unit's direct children.
const CHILDREN: &str = "children";

/// Which number of a figure a term reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FigurePart {
    /// [`crate::Figure::value`]: a count's count, a percent's percentage, a ratio's percentage.
    Value,
    /// A ratio's numerator.
    Numerator,
    /// A ratio's denominator.
    Denominator,
}

/// Whose reports a term reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The unit the rule is checked for.
    Own,
    /// The sum over the unit's direct children's reports for the same period.
    Children,
}

/// A figure a rule reads: which indicator, which number of it, whose.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FigureRef {
    pub indicator: IndicatorCode,
    pub part: FigurePart,
    pub scope: Scope,
}

impl fmt::Display for FigureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = match self.part {
            FigurePart::Value => "",
            FigurePart::Numerator => ".numerator",
            FigurePart::Denominator => ".denominator",
        };
        match self.scope {
            Scope::Own => write!(f, "{}{part}", self.indicator),
            Scope::Children => write!(f, "{CHILDREN}({}{part})", self.indicator),
        }
    }
}

/// One term of a side.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Figure(FigureRef),
    Constant(f64),
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Figure(figure) => figure.fmt(f),
            Term::Constant(number) => number.fmt(f),
        }
    }
}

/// Whether a term is added or subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sign {
    Plus,
    Minus,
}

/// One side of a rule: signed terms, summed. Displayed in its canonical text, which
/// [`parse_side`] reads back; stored as that text.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    terms: Vec<(Sign, Term)>,
}

impl Side {
    /// The figures the side reads, in order.
    pub fn figures(&self) -> impl Iterator<Item = &FigureRef> {
        self.terms.iter().filter_map(|(_, term)| match term {
            Term::Figure(figure) => Some(figure),
            Term::Constant(_) => None,
        })
    }

    /// The side's sum, a missing figure counting as 0, and how many figures were missing.
    fn tally(&self, lookup: &impl Fn(&FigureRef) -> Option<f64>) -> Tally {
        let mut tally = Tally::default();
        for (sign, term) in &self.terms {
            let number = match term {
                Term::Constant(number) => *number,
                Term::Figure(figure) => {
                    tally.figures += 1;
                    lookup(figure).unwrap_or_else(|| {
                        tally.missing += 1;
                        0.0
                    })
                }
            };
            tally.total += match sign {
                Sign::Plus => number,
                Sign::Minus => -number,
            };
        }
        tally
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (sign, term)) in self.terms.iter().enumerate() {
            match (index, sign) {
                (0, Sign::Plus) => {}
                (0, Sign::Minus) => f.write_str("-")?,
                (_, Sign::Plus) => f.write_str(" + ")?,
                (_, Sign::Minus) => f.write_str(" - ")?,
            }
            term.fmt(f)?;
        }
        Ok(())
    }
}

impl Serialize for Side {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read through [`parse_side`], so a stored side is as checked as one from the catalog.
impl<'de> Deserialize<'de> for Side {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_side(&text).map_err(serde::de::Error::custom)
    }
}

/// A side's sum and how many of its figures were found.
#[derive(Debug, Default)]
struct Tally {
    total: f64,
    figures: usize,
    missing: usize,
}

/// How the two sides are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

text_codes!(Comparison { Eq => "==", Ne => "!=", Lt => "<", Le => "<=", Gt => ">", Ge => ">=" });

impl Comparison {
    /// Whether `left` compares to `right` this way, equality within [`RELATIVE_TOLERANCE`].
    pub fn holds(self, left: f64, right: f64) -> bool {
        let equal = (left - right).abs() <= RELATIVE_TOLERANCE * left.abs().max(right.abs());
        match self {
            Comparison::Eq => equal,
            Comparison::Ne => !equal,
            Comparison::Lt => left < right && !equal,
            Comparison::Le => left < right || equal,
            Comparison::Gt => left > right && !equal,
            Comparison::Ge => left > right || equal,
        }
    }
}

/// When a rule with missing figures is checked (DHIS2's missing value strategies). A missing
/// figure that does not skip the rule counts as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissingValues {
    /// Skipped when any figure of either side is missing.
    #[default]
    SkipIfAnyMissing,
    /// Skipped when every figure of both sides is missing; constants do not count.
    SkipIfAllMissing,
    /// Always checked.
    NeverSkip,
}

text_codes!(MissingValues {
    SkipIfAnyMissing => "skip-if-any-missing",
    SkipIfAllMissing => "skip-if-all-missing",
    NeverSkip => "never-skip",
});

/// What a violation does to the file that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    /// The file is rejected.
    Error,
    /// The file is kept, with a warning.
    Warning,
}

text_codes!(Importance { Error => "error", Warning => "warning" });

/// A checked rule of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationRule {
    pub code: RuleCode,
    pub name: String,
    pub name_en: String,
    pub left: Side,
    pub comparison: Comparison,
    pub right: Side,
    pub missing: MissingValues,
    pub importance: Importance,
}

/// What checking a rule for one unit and period found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleOutcome {
    /// Too many figures were missing for the rule's missing value strategy.
    Skipped,
    Passed,
    /// The sides' values, missing figures counted as 0.
    Violated {
        left: f64,
        right: f64,
    },
}

impl ValidationRule {
    /// Every figure the rule reads, left side first.
    pub fn figures(&self) -> impl Iterator<Item = &FigureRef> {
        self.left.figures().chain(self.right.figures())
    }

    /// Checks the rule over the figures `lookup` finds (`None`: not reported; for a children
    /// term, no child reported it).
    pub fn evaluate(&self, lookup: impl Fn(&FigureRef) -> Option<f64>) -> RuleOutcome {
        let (left, right) = (self.left.tally(&lookup), self.right.tally(&lookup));
        let (figures, missing) = (left.figures + right.figures, left.missing + right.missing);
        let skipped = match self.missing {
            MissingValues::SkipIfAnyMissing => missing > 0,
            MissingValues::SkipIfAllMissing => figures > 0 && missing == figures,
            MissingValues::NeverSkip => false,
        };
        if skipped {
            RuleOutcome::Skipped
        } else if self.comparison.holds(left.total, right.total) {
            RuleOutcome::Passed
        } else {
            RuleOutcome::Violated { left: left.total, right: right.total }
        }
    }

    /// The rule as written: `B05.numerator <= B04.numerator`.
    pub fn expression(&self) -> String {
        format!("{} {} {}", self.left, self.comparison.as_str(), self.right)
    }

    /// Whether the rule is checked for a unit: its data set holds at least one indicator the
    /// rule reads of the unit itself, so communes are not held to the district's rules.
    pub fn applies_to(&self, unit: &UnitDef) -> bool {
        self.figures().any(|figure| figure.scope == Scope::Own && unit.reports.contains(&figure.indicator))
    }
}

/// Why a side or a comparison was refused. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the side is empty")]
    Empty,
    #[error("the side is {length} characters long, more than {MAX_SIDE_CHARS}")]
    TooLong { length: usize },
    #[error("the side has more than {MAX_SIDE_TERMS} terms")]
    TooManyTerms,
    #[error("at character {position}: expected {expected}, found {found}")]
    Unexpected { position: usize, expected: &'static str, found: String },
    #[error("at character {position}: {source}")]
    Code { position: usize, source: CodeError },
    #[error("at character {position}: {part:?} is not a part of a figure (numerator or denominator)")]
    UnknownPart { position: usize, part: String },
    #[error("{operator:?} is not a comparison (==, !=, <, <=, > or >=)")]
    UnknownComparison { operator: String },
}

/// Reads one side: terms joined by `+` or `-`, with an optional leading `-`; spaces are free
/// between terms and inside `children( ... )`. A code is read up to the first character that
/// is not a letter, digit or `_`, so `A03-2` is A03 minus 2 and an indicator whose code holds
/// `-` or starts with a digit cannot be named in a rule.
pub fn parse_side(text: &str) -> Result<Side, RuleError> {
    let length = text.chars().count();
    if length > MAX_SIDE_CHARS {
        return Err(RuleError::TooLong { length });
    }
    SideParser { chars: text.chars().collect(), next: 0 }.side()
}

/// Reads a comparison as the catalog writes it: `==`, `!=`, `<`, `<=`, `>` or `>=`.
pub fn parse_comparison(text: &str) -> Result<Comparison, RuleError> {
    Comparison::from_str_opt(text.trim())
        .ok_or_else(|| RuleError::UnknownComparison { operator: crate::text::excerpt(text) })
}

/// A recursive-descent reader over a side's characters.
struct SideParser {
    chars: Vec<char>,
    /// The index of the next character to read.
    next: usize,
}

/// Whether a character continues an indicator code or a keyword.
fn is_word_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

impl SideParser {
    fn side(&mut self) -> Result<Side, RuleError> {
        self.skip_spaces();
        if self.peek().is_none() {
            return Err(RuleError::Empty);
        }
        let mut sign = if self.eat('-') { Sign::Minus } else { Sign::Plus };
        let mut terms = Vec::new();
        loop {
            self.skip_spaces();
            if terms.len() == MAX_SIDE_TERMS {
                return Err(RuleError::TooManyTerms);
            }
            terms.push((sign, self.term()?));
            self.skip_spaces();
            sign = match self.peek() {
                None => return Ok(Side { terms }),
                Some('+') => Sign::Plus,
                Some('-') => Sign::Minus,
                Some(_) => return Err(self.unexpected("'+', '-' or the end")),
            };
            self.next += 1;
        }
    }

    fn term(&mut self) -> Result<Term, RuleError> {
        match self.peek() {
            Some(ch) if ch.is_ascii_digit() => self.constant().map(Term::Constant),
            Some(ch) if is_word_char(ch) => self.figure().map(Term::Figure),
            _ => Err(self.unexpected("a term (an indicator code, children(...) or a number)")),
        }
    }

    /// Digits, optionally a point and more digits.
    fn constant(&mut self) -> Result<f64, RuleError> {
        let start = self.next;
        self.skip_digits();
        if self.eat('.') {
            if !self.peek().is_some_and(|ch| ch.is_ascii_digit()) {
                return Err(self.unexpected("a digit after the decimal point"));
            }
            self.skip_digits();
        }
        let digits: String = self.chars[start..self.next].iter().collect();
        digits.parse().map_err(|_| RuleError::Unexpected {
            position: start + 1,
            expected: "a number",
            found: format!("{digits:?}"),
        })
    }

    /// `CODE`, `CODE.part`, or either inside `children( ... )`.
    fn figure(&mut self) -> Result<FigureRef, RuleError> {
        let start = self.next;
        let word = self.word();
        if word != CHILDREN {
            return self.figure_after_code(start, &word, Scope::Own);
        }
        self.skip_spaces();
        self.expect('(', "'('")?;
        self.skip_spaces();
        let inner_start = self.next;
        let inner = self.word();
        if inner.is_empty() {
            return Err(self.unexpected("an indicator code"));
        }
        let figure = self.figure_after_code(inner_start, &inner, Scope::Children)?;
        self.skip_spaces();
        self.expect(')', "')'")?;
        Ok(figure)
    }

    /// The figure of a code already read from `start`, with its optional `.numerator` or
    /// `.denominator`.
    fn figure_after_code(&mut self, start: usize, code: &str, scope: Scope) -> Result<FigureRef, RuleError> {
        let indicator = IndicatorCode::parse(code).map_err(|source| RuleError::Code { position: start + 1, source })?;
        if !self.eat('.') {
            return Ok(FigureRef { indicator, part: FigurePart::Value, scope });
        }
        let part_start = self.next;
        let part = match self.word().as_str() {
            "numerator" => FigurePart::Numerator,
            "denominator" => FigurePart::Denominator,
            "" => return Err(self.unexpected("numerator or denominator")),
            other => {
                return Err(RuleError::UnknownPart { position: part_start + 1, part: crate::text::excerpt(other) });
            }
        };
        Ok(FigureRef { indicator, part, scope })
    }

    fn word(&mut self) -> String {
        let start = self.next;
        while self.peek().is_some_and(is_word_char) {
            self.next += 1;
        }
        self.chars[start..self.next].iter().collect()
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|ch| ch.is_ascii_digit()) {
            self.next += 1;
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.next += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.next).copied()
    }

    /// Consumes `expected` if it comes next.
    fn eat(&mut self, expected: char) -> bool {
        let found = self.peek() == Some(expected);
        if found {
            self.next += 1;
        }
        found
    }

    /// Consumes `expected`, described as `quoted` when it is not next.
    fn expect(&mut self, expected: char, quoted: &'static str) -> Result<(), RuleError> {
        if self.eat(expected) { Ok(()) } else { Err(self.unexpected(quoted)) }
    }

    /// The error for the next character (or the end) when `expected` should come.
    fn unexpected(&self, expected: &'static str) -> RuleError {
        let found = self.peek().map_or_else(|| "the end".to_owned(), |ch| format!("{ch:?}"));
        RuleError::Unexpected { position: self.next + 1, expected, found }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn rule(left: &str, comparison: Comparison, right: &str, missing: MissingValues) -> ValidationRule {
        ValidationRule {
            code: RuleCode::parse("R01").unwrap(),
            name: "Quy tắc".into(),
            name_en: "Rule".into(),
            left: parse_side(left).unwrap(),
            comparison,
            right: parse_side(right).unwrap(),
            missing,
            importance: Importance::Error,
        }
    }

    /// A lookup over figures written as their canonical text.
    fn figures<'a>(known: &'a [(&str, f64)]) -> impl Fn(&FigureRef) -> Option<f64> + 'a {
        let known: HashMap<&str, f64> = known.iter().copied().collect();
        move |figure| known.get(figure.to_string().as_str()).copied()
    }

    #[test]
    fn sides_round_trip_through_display() {
        for text in [
            "B05.numerator",
            "A02 + A04",
            "A03 - 2",
            "B04.denominator",
            "children(A01)",
            "children(B01.numerator) - children(B01.denominator) + 2.5",
            "-A01 + 0",
            "0.125",
        ] {
            assert_eq!(parse_side(text).unwrap().to_string(), text);
        }
        for (written, canonical) in [
            ("A02+A04", "A02 + A04"),
            ("  A03-2 ", "A03 - 2"),
            ("children ( A01.numerator )", "children(A01.numerator)"),
            ("- 2.50", "-2.5"),
            ("007", "7"),
        ] {
            assert_eq!(parse_side(written).unwrap().to_string(), canonical, "{written}");
        }
        let side = parse_side("children(B04.denominator) - A03").unwrap();
        let read: Vec<&FigureRef> = side.figures().collect();
        assert_eq!(read.len(), 2);
        assert_eq!(
            (read[0].indicator.as_str(), read[0].part, read[0].scope),
            ("B04", FigurePart::Denominator, Scope::Children)
        );
        assert_eq!((read[1].indicator.as_str(), read[1].part, read[1].scope), ("A03", FigurePart::Value, Scope::Own));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cases: [(&str, &[&str]); 14] = [
            ("", &["empty"]),
            ("   ", &["empty"]),
            ("A01 * 2", &["character 5", "'*'", "'+', '-' or the end"]),
            ("B05..numerator", &["character 5", "numerator or denominator", "'.'"]),
            ("B05.numerater", &["character 5", "\"numerater\""]),
            ("A01 + + A02", &["character 7", "a term", "'+'"]),
            ("A01 +", &["character 6", "a term", "the end"]),
            ("-", &["character 2", "a term", "the end"]),
            ("a01", &["character 1", "\"a01\"", "A-Z"]),
            ("2.", &["character 3", "digit after the decimal point"]),
            ("2x", &["character 2", "'x'"]),
            ("children A01", &["character 10", "'('", "'A'"]),
            ("children(A01", &["character 13", "')'", "the end"]),
            ("children()", &["character 10", "an indicator code", "')'"]),
        ];
        for (text, expected) in cases {
            let message = parse_side(text).unwrap_err().to_string();
            for part in expected {
                assert!(message.contains(part), "{text:?}: {message:?} should mention {part:?}");
            }
        }
        let long = format!("A01{}", " ".repeat(MAX_SIDE_CHARS));
        assert_eq!(parse_side(&long), Err(RuleError::TooLong { length: MAX_SIDE_CHARS + 3 }));
        assert!(parse_side(&long).unwrap_err().to_string().contains("259 characters long, more than 256"));
        let terms = |count: usize| vec!["1"; count].join("+");
        assert!(parse_side(&terms(MAX_SIDE_TERMS)).is_ok());
        assert_eq!(parse_side(&terms(MAX_SIDE_TERMS + 1)), Err(RuleError::TooManyTerms));
        let message = parse_comparison("=<").unwrap_err().to_string();
        assert!(message.contains("\"=<\"") && message.contains("<="), "{message}");
        assert_eq!(parse_comparison(" >= "), Ok(Comparison::Ge));
    }

    #[test]
    fn comparisons_hold_with_a_relative_tolerance() {
        let cases = [
            (Comparison::Eq, [false, true, false]),
            (Comparison::Ne, [true, false, true]),
            (Comparison::Lt, [true, false, false]),
            (Comparison::Le, [true, true, false]),
            (Comparison::Gt, [false, false, true]),
            (Comparison::Ge, [false, true, true]),
        ];
        for (comparison, expected) in cases {
            let found = [comparison.holds(1.0, 2.0), comparison.holds(2.0, 2.0), comparison.holds(3.0, 2.0)];
            assert_eq!(found, expected, "{comparison:?}");
        }
        // 0.1 + 0.2 is 0.30000000000000004: equal within 1e-9, and so neither less nor greater.
        assert!(Comparison::Eq.holds(0.1 + 0.2, 0.3));
        assert!(!Comparison::Gt.holds(0.1 + 0.2, 0.3));
        assert!(Comparison::Eq.holds(1e6, 1e6 + 1e-4));
        assert!(!Comparison::Eq.holds(1e6, 1e6 + 1e-2));
        assert!(Comparison::Eq.holds(0.0, 0.0));
        assert!(Comparison::Ne.holds(0.0, 1e-300));
    }

    #[test]
    fn rules_evaluate_their_sides() {
        let postgraduates = rule("B05.numerator", Comparison::Le, "B04.numerator", MissingValues::SkipIfAnyMissing);
        assert_eq!(postgraduates.expression(), "B05.numerator <= B04.numerator");
        let found = figures(&[("B05.numerator", 12.0), ("B04.numerator", 10.0)]);
        assert_eq!(postgraduates.evaluate(found), RuleOutcome::Violated { left: 12.0, right: 10.0 });
        let found = figures(&[("B05.numerator", 8.0), ("B04.numerator", 10.0)]);
        assert_eq!(postgraduates.evaluate(found), RuleOutcome::Passed);

        let staff = rule("B04.denominator", Comparison::Eq, "A02 + A04 - 1.5", MissingValues::NeverSkip);
        let found = figures(&[("B04.denominator", 98.5), ("A02", 40.0), ("A04", 60.0)]);
        assert_eq!(staff.evaluate(found), RuleOutcome::Passed);

        let tree = rule("A01", Comparison::Ge, "children(A01) - children(B01.numerator)", MissingValues::NeverSkip);
        let found = figures(&[("A01", 30.0), ("children(A01)", 40.0), ("children(B01.numerator)", 5.0)]);
        assert_eq!(tree.evaluate(found), RuleOutcome::Violated { left: 30.0, right: 35.0 });
        let names: Vec<String> = tree.figures().map(ToString::to_string).collect();
        assert_eq!(names, ["A01", "children(A01)", "children(B01.numerator)"]);
    }

    #[test]
    fn missing_figures_follow_the_strategy() {
        let outcome = |missing: MissingValues, known: &[(&str, f64)]| {
            rule("A01 + 5", Comparison::Eq, "A02 + A03", missing).evaluate(figures(known))
        };
        let some = [("A02", 5.0)];
        let none: [(&str, f64); 0] = [];
        let all = [("A01", 1.0), ("A02", 2.0), ("A03", 3.0)];
        assert_eq!(outcome(MissingValues::SkipIfAnyMissing, &some), RuleOutcome::Skipped);
        assert_eq!(outcome(MissingValues::SkipIfAnyMissing, &all), RuleOutcome::Violated { left: 6.0, right: 5.0 });
        // Missing figures count as 0: 0 + 5 == 5 + 0.
        assert_eq!(outcome(MissingValues::SkipIfAllMissing, &some), RuleOutcome::Passed);
        assert_eq!(outcome(MissingValues::SkipIfAllMissing, &none), RuleOutcome::Skipped);
        assert_eq!(outcome(MissingValues::NeverSkip, &none), RuleOutcome::Violated { left: 5.0, right: 0.0 });
        // Constants alone are never "all missing".
        let constants = rule("1", Comparison::Lt, "2", MissingValues::SkipIfAllMissing);
        assert_eq!(constants.evaluate(figures(&none)), RuleOutcome::Passed);
    }

    #[test]
    fn rules_apply_to_units_reporting_one_of_their_own_figures() {
        let unit = |reports: &[&str]| UnitDef {
            code: crate::UnitCode::parse("PNV").unwrap(),
            name: "Phòng Nội vụ".into(),
            kind: "agency".into(),
            parent: None,
            reports: reports.iter().map(|code| IndicatorCode::parse(code).unwrap()).collect(),
        };
        let staff = rule("B04.denominator", Comparison::Eq, "A02 + children(A04)", MissingValues::SkipIfAnyMissing);
        assert!(staff.applies_to(&unit(&["A02"])));
        assert!(staff.applies_to(&unit(&["B04", "C01"])));
        assert!(!staff.applies_to(&unit(&["A04", "C01"])));
    }

    #[test]
    fn rules_round_trip_through_json() {
        let mut staff = rule("B04.denominator", Comparison::Eq, "A02 + A04", MissingValues::SkipIfAllMissing);
        staff.importance = Importance::Warning;
        let json = serde_json::to_string(&staff).unwrap();
        assert!(json.contains(r#""left":"B04.denominator","comparison":"==","right":"A02 + A04""#), "{json}");
        assert!(json.contains(r#""missing":"skip-if-all-missing","importance":"warning""#), "{json}");
        assert_eq!(serde_json::from_str::<ValidationRule>(&json).unwrap(), staff);
        let broken = json.replace("A02 + A04", "A02 +");
        assert!(serde_json::from_str::<ValidationRule>(&broken).unwrap_err().to_string().contains("a term"));
    }
}
