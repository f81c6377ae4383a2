//! Numbers typed as text, read in Vietnamese convention.
//!
//! `.` groups thousands and `,` is the decimal mark (`2.800` = 2800, `10,34` = 10.34,
//! `1.234,5` = 1234.5); spaces may group thousands (`2 800`); a dot that does not group
//! exactly three digits is a decimal point (`10.34`); a trailing `%` is allowed.

/// A number read from text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextNumber {
    pub value: f64,
    /// The text ended in `%`: the value is in percentage points.
    pub percent: bool,
}

/// Reads a number written by hand, or returns `None` when the text is not one.
pub fn parse_text_number(text: &str) -> Option<TextNumber> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\u{202f}').collect();
    let (body, percent) = match compact.strip_suffix('%') {
        Some(body) => (body, true),
        None => (compact.as_str(), false),
    };
    let (negative, digits) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body.strip_prefix('+').unwrap_or(body)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') {
        return None;
    }
    let (integer_part, fraction_part) = match digits.split_once(',') {
        Some((integer, fraction)) => {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (ungroup_thousands(integer)?, Some(fraction))
        }
        None => match ungroup_thousands(digits) {
            Some(integer) => (integer, None),
            None => {
                // A single dot that does not group three digits is a decimal point.
                let (integer, fraction) = digits.split_once('.')?;
                if integer.is_empty() || fraction.is_empty() || fraction.contains('.') {
                    return None;
                }
                (integer.to_owned(), Some(fraction))
            }
        },
    };
    if integer_part.is_empty() {
        return None;
    }
    let literal = match fraction_part {
        Some(fraction) => format!("{integer_part}.{fraction}"),
        None => integer_part,
    };
    let magnitude: f64 = literal.parse().ok()?;
    Some(TextNumber { value: if negative { -magnitude } else { magnitude }, percent })
}

/// Removes `.` thousands separators; `None` when the dots do not group exactly three digits.
fn ungroup_thousands(text: &str) -> Option<String> {
    let mut groups = text.split('.');
    let first = groups.next()?;
    if first.is_empty() || (text.contains('.') && first.len() > 3) {
        return None;
    }
    let mut digits = first.to_owned();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        digits.push_str(group);
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<f64> {
        parse_text_number(text).map(|n| n.value)
    }

    #[test]
    fn vietnamese_convention() {
        assert_eq!(value("2.800"), Some(2800.0));
        assert_eq!(value("10,34"), Some(10.34));
        assert_eq!(value("1.234,5"), Some(1234.5));
        assert_eq!(value("2 800"), Some(2800.0));
        assert_eq!(value("2\u{a0}800"), Some(2800.0));
        assert_eq!(value("10.34"), Some(10.34));
        assert_eq!(value("1.234.567"), Some(1_234_567.0));
        assert_eq!(value(" 18 "), Some(18.0));
        assert_eq!(value("-3"), Some(-3.0));
        assert_eq!(parse_text_number("10,34%"), Some(TextNumber { value: 10.34, percent: true }));
        assert_eq!(parse_text_number("100,00%"), Some(TextNumber { value: 100.0, percent: true }));
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for text in ["mười", "n/a", "#DIV/0!", "", "%", "1,2,3", "1.2.3", ",5", "5,", "1..2", "12.34.5"] {
            assert_eq!(parse_text_number(text), None, "{text}");
        }
    }
}
