//! Reporting periods: years, half-years, quarters and months.
//!
//! Canonical codes are `2022`, `2023S1`, `2023Q2` and `2023-03`. Report forms also say
//! `Năm 2022`, `6 tháng đầu năm 2023`, `Quý II/2023` or `Tháng 3/2023`; [`Period::parse_vietnamese`]
//! reads those, and both parsers refuse anything else with a reason.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::text::normalize_label;

/// The years a period may name; anything outside is a typing mistake.
const YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

/// A reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Year(i32),
    /// Half-year 1 or 2.
    Half(i32, u8),
    /// Quarter 1 to 4.
    Quarter(i32, u8),
    /// Month 1 to 12.
    Month(i32, u8),
}

/// Why a period was refused; the text is quoted as an excerpt (`text::excerpt`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a period (expected e.g. 2022, 2023S1, 2023Q2, 2023-03)")]
pub struct PeriodError {
    pub text: String,
}

impl Period {
    /// Parses a canonical code: `2022`, `2023S1`, `2023Q2`, `2023-03`.
    pub fn parse(text: &str) -> Result<Self, PeriodError> {
        let error = || PeriodError { text: crate::text::excerpt(text) };
        let code = text.trim();
        let year_of = |digits: &str| -> Result<i32, PeriodError> {
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error());
            }
            digits.parse::<i32>().ok().filter(|y| YEARS.contains(y)).ok_or_else(error)
        };
        let number_in = |digits: &str, range: std::ops::RangeInclusive<u8>| -> Result<u8, PeriodError> {
            if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error());
            }
            digits.parse::<u8>().ok().filter(|n| range.contains(n)).ok_or_else(error)
        };
        if code.len() == 4 {
            return Ok(Period::Year(year_of(code)?));
        }
        let (year, rest) = code.split_at_checked(4).ok_or_else(error)?;
        let year = year_of(year)?;
        let (letter, number) = rest.split_at_checked(1).ok_or_else(error)?;
        match (letter, number.len()) {
            ("S" | "s", 1) => Ok(Period::Half(year, number_in(number, 1..=2)?)),
            ("Q" | "q", 1) => Ok(Period::Quarter(year, number_in(number, 1..=4)?)),
            ("-", 2) => Ok(Period::Month(year, number_in(number, 1..=12)?)),
            _ => Err(error()),
        }
    }

    /// Parses what people write in a report form's "Kỳ báo cáo" cell, or a canonical code.
    ///
    /// Accepted: `Năm 2022`; `6 tháng đầu năm 2023`, `6 tháng 2023` (first half);
    /// `6 tháng cuối năm 2023`; `Quý 2/2023`, `Quý II/2023`, `Q2/2023`; `Tháng 3/2023`,
    /// `03/2023`. Case and diacritics do not matter.
    pub fn parse_vietnamese(text: &str) -> Result<Self, PeriodError> {
        if let Ok(period) = Self::parse(text) {
            return Ok(period);
        }
        let error = || PeriodError { text: crate::text::excerpt(text) };
        let normalized = normalize_label(text).replace(" / ", "/").replace("- ", "-");
        let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
        let year_word = |word: &str| {
            Self::parse(word).ok().and_then(|p| match p {
                Period::Year(y) => Some(y),
                _ => None,
            })
        };
        match words.as_slice() {
            ["nam", year] => year_word(year).map(Period::Year).ok_or_else(error),
            ["6", "thang", "dau", "nam", year] | ["6", "thang", year] | ["6", "thang", "nam", year] => {
                year_word(year).map(|y| Period::Half(y, 1)).ok_or_else(error)
            }
            ["6", "thang", "cuoi", "nam", year] => year_word(year).map(|y| Period::Half(y, 2)).ok_or_else(error),
            ["quy", rest] => Self::parse_number_slash_year(rest, true)
                .filter(|(q, _)| (1..=4).contains(q))
                .map(|(q, y)| Period::Quarter(y, q))
                .ok_or_else(error),
            ["thang", rest] => Self::parse_number_slash_year(rest, false)
                .filter(|(m, _)| (1..=12).contains(m))
                .map(|(m, y)| Period::Month(y, m))
                .ok_or_else(error),
            [single] => {
                if let Some(rest) = single.strip_prefix('q') {
                    return Self::parse_number_slash_year(rest, false)
                        .filter(|(q, _)| (1..=4).contains(q))
                        .map(|(q, y)| Period::Quarter(y, q))
                        .ok_or_else(error);
                }
                Self::parse_number_slash_year(single, false)
                    .filter(|(m, _)| (1..=12).contains(m))
                    .map(|(m, y)| Period::Month(y, m))
                    .ok_or_else(error)
            }
            _ => Err(error()),
        }
    }

    /// Reads `N/YYYY`, where N may be a Roman numeral when `roman` is allowed.
    fn parse_number_slash_year(text: &str, roman: bool) -> Option<(u8, i32)> {
        let (number, year) = text.split_once('/')?;
        let year: i32 = year.trim().parse().ok().filter(|y| YEARS.contains(y))?;
        let number = number.trim();
        let value = match number {
            "i" if roman => 1,
            "ii" if roman => 2,
            "iii" if roman => 3,
            "iv" if roman => 4,
            digits if !digits.is_empty() && digits.len() <= 2 => digits.parse().ok()?,
            _ => return None,
        };
        Some((value, year))
    }

    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Half(y, _) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }

    /// The first and last month (1–12) the period covers.
    pub fn months(self) -> (u8, u8) {
        match self {
            Period::Year(_) => (1, 12),
            Period::Half(_, h) => (6 * (h - 1) + 1, 6 * h),
            Period::Quarter(_, q) => (3 * (q - 1) + 1, 3 * q),
            Period::Month(_, m) => (m, m),
        }
    }

    /// How many months the period spans.
    pub fn length_in_months(self) -> u8 {
        let (first, last) = self.months();
        last - first + 1
    }

    /// Whether `other` lies inside this period (a period contains itself).
    pub fn contains(self, other: Period) -> bool {
        let (first, last) = self.months();
        let (other_first, other_last) = other.months();
        self.year() == other.year() && first <= other_first && other_last <= last
    }

    /// The periods one level down: a year's halves, a half's quarters, a quarter's months.
    pub fn children(self) -> Vec<Period> {
        match self {
            Period::Year(y) => vec![Period::Half(y, 1), Period::Half(y, 2)],
            Period::Half(y, h) => vec![Period::Quarter(y, 2 * h - 1), Period::Quarter(y, 2 * h)],
            Period::Quarter(y, q) => (3 * q - 2..=3 * q).map(|m| Period::Month(y, m)).collect(),
            Period::Month(..) => Vec::new(),
        }
    }

    /// This period and every period inside it, coarsest first.
    pub fn with_descendants(self) -> Vec<Period> {
        let mut all = vec![self];
        let mut index = 0;
        while index < all.len() {
            let children = all[index].children();
            all.extend(children);
            index += 1;
        }
        all
    }

    /// The next period of the same length.
    pub fn next(self) -> Period {
        match self {
            Period::Year(y) => Period::Year(y + 1),
            Period::Half(y, 2) => Period::Half(y + 1, 1),
            Period::Half(y, h) => Period::Half(y, h + 1),
            Period::Quarter(y, 4) => Period::Quarter(y + 1, 1),
            Period::Quarter(y, q) => Period::Quarter(y, q + 1),
            Period::Month(y, 12) => Period::Month(y + 1, 1),
            Period::Month(y, m) => Period::Month(y, m + 1),
        }
    }

    /// The previous period of the same length.
    pub fn previous(self) -> Period {
        match self {
            Period::Year(y) => Period::Year(y - 1),
            Period::Half(y, 1) => Period::Half(y - 1, 2),
            Period::Half(y, h) => Period::Half(y, h - 1),
            Period::Quarter(y, 1) => Period::Quarter(y - 1, 4),
            Period::Quarter(y, q) => Period::Quarter(y, q - 1),
            Period::Month(y, 1) => Period::Month(y - 1, 12),
            Period::Month(y, m) => Period::Month(y, m - 1),
        }
    }

    /// Whether two periods have the same length (both years, both quarters, ...).
    pub fn same_granularity(self, other: Period) -> bool {
        self.length_in_months() == other.length_in_months()
    }

    /// The canonical code, as stored and sent over the wire: the year, then `S1`, `Q2` or
    /// `-03` for a half, quarter or month. Written digit by digit, because the store writes
    /// one per total it changes and the formatting machinery cost it a tenth of its time.
    pub fn code(self) -> String {
        let mut code = String::with_capacity(MAX_CODE_LENGTH);
        push_number(&mut code, i64::from(self.year()));
        match self {
            Period::Year(_) => {}
            Period::Half(_, half) => {
                code.push('S');
                push_number(&mut code, i64::from(half));
            }
            Period::Quarter(_, quarter) => {
                code.push('Q');
                push_number(&mut code, i64::from(quarter));
            }
            Period::Month(_, month) => {
                code.push('-');
                if month < 10 {
                    code.push('0');
                }
                push_number(&mut code, i64::from(month));
            }
        }
        code
    }
}

/// The longest code: an `i32` year with its sign, then `-` and a `u8`.
const MAX_CODE_LENGTH: usize = 11 + 1 + 3;

/// Appends `number` in decimal, with a `-` when negative.
fn push_number(out: &mut String, number: i64) {
    if number < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = number.unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

impl FromStr for Period {
    type Err = PeriodError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Periods order by where they end, then longer first, so a year sorts after its months
/// but before the next year's January.
impl Ord for Period {
    fn cmp(&self, other: &Self) -> Ordering {
        let end = |p: &Period| (p.year(), p.months().1);
        end(self).cmp(&end(other)).then_with(|| other.length_in_months().cmp(&self.length_in_months()))
    }
}

impl PartialOrd for Period {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_codes_round_trip() {
        for code in ["2022", "2023S1", "2023S2", "2023Q2", "2023-03", "2023-12"] {
            assert_eq!(Period::parse(code).map(|p| p.to_string()), Ok(code.to_owned()));
        }
        for bad in ["", "22", "2023S3", "2023Q5", "2023-13", "2023-3", "abcd", "2023Q", "1800"] {
            assert!(Period::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    /// The code written digit by digit is the code `format!` writes, for every period a caller
    /// can build, valid or not: the extremes, then 100,000 seeded draws.
    #[test]
    fn codes_are_the_formatted_periods() {
        let formatted = |period: Period| match period {
            Period::Year(y) => format!("{y}"),
            Period::Half(y, h) => format!("{y}S{h}"),
            Period::Quarter(y, q) => format!("{y}Q{q}"),
            Period::Month(y, m) => format!("{y}-{m:02}"),
        };
        let mut next = crate::seeded::xorshift(0x5eed_c0de);
        let extremes = [(i32::MIN, 0), (i32::MAX, u8::MAX), (0, 9), (-1, 10), (2025, 1)];
        // A third of the years drawn are plausible ones, the rest any `i32`.
        let drawn = (0..100_000).map(|draw| {
            let bits = next();
            let year = bits as i32;
            (if draw % 3 == 0 { 1900 + year.rem_euclid(300) } else { year }, (bits >> 32) as u8)
        });
        for (year, part) in extremes.into_iter().chain(drawn) {
            for period in
                [Period::Year(year), Period::Half(year, part), Period::Quarter(year, part), Period::Month(year, part)]
            {
                assert_eq!(period.code(), formatted(period));
            }
        }
    }

    #[test]
    fn vietnamese_forms_parse() {
        let cases = [
            ("Năm 2022", Period::Year(2022)),
            ("NĂM 2021", Period::Year(2021)),
            ("2022", Period::Year(2022)),
            ("6 tháng đầu năm 2023", Period::Half(2023, 1)),
            ("6 tháng 2023", Period::Half(2023, 1)),
            ("6 THÁNG CUỐI NĂM 2023", Period::Half(2023, 2)),
            ("Quý 2/2023", Period::Quarter(2023, 2)),
            ("Quý II/2023", Period::Quarter(2023, 2)),
            ("quy iv/2023", Period::Quarter(2023, 4)),
            ("Q2/2023", Period::Quarter(2023, 2)),
            ("2023Q2", Period::Quarter(2023, 2)),
            ("Tháng 3/2023", Period::Month(2023, 3)),
            ("03/2023", Period::Month(2023, 3)),
            ("2023-03", Period::Month(2023, 3)),
        ];
        for (text, expected) in cases {
            assert_eq!(Period::parse_vietnamese(text), Ok(expected), "{text}");
        }
        for bad in ["Quý 5/2023", "Tháng 13/2023", "năm ngoái", "6 tháng giữa năm 2023", "13/2023"] {
            assert!(Period::parse_vietnamese(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn containment_children_and_order() {
        let year = Period::Year(2023);
        assert!(year.contains(Period::Quarter(2023, 4)));
        assert!(!year.contains(Period::Month(2024, 1)));
        assert!(Period::Half(2023, 1).contains(Period::Month(2023, 6)));
        assert!(!Period::Half(2023, 1).contains(Period::Month(2023, 7)));
        assert_eq!(year.with_descendants().len(), 1 + 2 + 4 + 12);
        assert_eq!(
            Period::Quarter(2023, 2).children(),
            vec![Period::Month(2023, 4), Period::Month(2023, 5), Period::Month(2023, 6)]
        );
        let mut periods = vec![Period::Year(2023), Period::Month(2023, 12), Period::Half(2023, 1), Period::Year(2022)];
        periods.sort();
        assert_eq!(
            periods,
            vec![Period::Year(2022), Period::Half(2023, 1), Period::Year(2023), Period::Month(2023, 12)]
        );
        assert_eq!(Period::Quarter(2023, 4).next(), Period::Quarter(2024, 1));
        for period in [Period::Year(2023), Period::Half(2023, 1), Period::Quarter(2023, 1), Period::Month(2023, 1)] {
            assert_eq!(period.previous().next(), period);
            assert_eq!(period.next().previous(), period);
        }
    }
}
