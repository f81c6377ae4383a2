//! Codes that identify units, indicators and resolutions.
//!
//! Each is a newtype that can only hold a well-formed code, so code past the parsing boundary
//! (gRPC request, workbook cell, catalog file) never re-checks them.

use std::fmt;

/// Why a code was refused. The code is quoted as an excerpt (`text::excerpt`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{kind} code is empty")]
    Empty { kind: &'static str },
    #[error("{kind} code {code:?} is longer than {max} characters")]
    TooLong { kind: &'static str, code: String, max: usize },
    #[error("{kind} code {code:?} may only hold {allowed}")]
    BadCharacter { kind: &'static str, code: String, allowed: &'static str },
}

/// The well-formed code in `raw` (trimmed), borrowed: the caller makes the one allocation a
/// code needs.
fn check<'a>(
    kind: &'static str,
    raw: &'a str,
    max: usize,
    allowed: &'static str,
    is_allowed: fn(char) -> bool,
) -> Result<&'a str, CodeError> {
    let code = raw.trim();
    if code.is_empty() {
        return Err(CodeError::Empty { kind });
    }
    if code.chars().count() > max {
        return Err(CodeError::TooLong { kind, code: crate::text::excerpt(code), max });
    }
    if !code.chars().all(is_allowed) {
        return Err(CodeError::BadCharacter { kind, code: crate::text::excerpt(code), allowed });
    }
    Ok(code)
}

fn is_code_char(ch: char) -> bool {
    ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_' || ch == '-'
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal, $allowed:literal, $is_allowed:expr) => {
        $(#[$doc])*
        ///
        /// Shared, not copied: a national catalog repeats each indicator code in 11,000
        /// units' data sets, and every snapshot and report holds codes, so a clone is a
        /// reference count, not an allocation.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Parses a code exactly as written, apart from surrounding white space.
            pub fn parse(raw: &str) -> Result<Self, CodeError> {
                check($kind, raw, $max, $allowed, $is_allowed).map(|code| Self(std::sync::Arc::from(code)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Written as the bare code, so stored JSON reads like the catalog.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        /// Read through [`Self::parse`], so a stored code is as well-formed as a typed one.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

code_type!(
    /// A unit's registry code, such as `BANGTHANH`: ASCII upper-case letters, digits, `_`, `-`.
    UnitCode, "unit", 32, "A-Z, 0-9, '_' and '-'", is_code_char
);
code_type!(
    /// An indicator's catalog code, such as `B05`.
    IndicatorCode, "indicator", 16, "A-Z, 0-9, '_' and '-'", is_code_char
);
code_type!(
    /// A resolution's code, such as `09-NQ/HU`.
    ResolutionCode, "resolution", 64, "A-Z, 0-9, '_', '-', '.' and '/'",
    |ch| is_code_char(ch) || ch == '/' || ch == '.'
);
code_type!(
    /// A validation rule's catalog code, such as `R01`.
    RuleCode, "rule", 16, "A-Z, 0-9, '_' and '-'", is_code_char
);

impl UnitCode {
    /// Parses a code as people type it in a form: case does not matter.
    pub fn parse_lenient(raw: &str) -> Result<Self, CodeError> {
        Self::parse(&upper_case(raw))
    }
}

impl IndicatorCode {
    /// Parses a code as people type it in a form: case does not matter.
    pub fn parse_lenient(raw: &str) -> Result<Self, CodeError> {
        Self::parse(&upper_case(raw))
    }
}

/// `raw` in ASCII upper case, copied only when it has a lower-case letter: most codes in
/// forms are typed as the catalog writes them, and every data row's code comes through here.
fn upper_case(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.bytes().any(|byte| byte.is_ascii_lowercase()) {
        std::borrow::Cow::Owned(raw.to_ascii_uppercase())
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_refuse() {
        assert_eq!(UnitCode::parse("BANGTHANH").map(|c| c.to_string()), Ok("BANGTHANH".into()));
        assert!(matches!(UnitCode::parse(""), Err(CodeError::Empty { .. })));
        assert!(matches!(UnitCode::parse("bang thanh"), Err(CodeError::BadCharacter { .. })));
        assert_eq!(IndicatorCode::parse_lenient(" a07 ").map(|c| c.to_string()), Ok("A07".into()));
        assert_eq!(IndicatorCode::parse_lenient("B05").map(|c| c.to_string()), Ok("B05".into()));
        assert_eq!(UnitCode::parse_lenient(" Pac-Nam ").map(|c| c.to_string()), Ok("PAC-NAM".into()));
        assert!(matches!(IndicatorCode::parse_lenient("b 05"), Err(CodeError::BadCharacter { .. })));
        assert!(ResolutionCode::parse("09-NQ/HU").is_ok());
        assert!(matches!(UnitCode::parse(&"X".repeat(33)), Err(CodeError::TooLong { .. })));
        assert!(RuleCode::parse("R01").is_ok());
    }

    #[test]
    fn codes_round_trip_through_json() {
        let code = IndicatorCode::parse("B05").unwrap();
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, "\"B05\"");
        assert_eq!(serde_json::from_str::<IndicatorCode>(&json).unwrap(), code);
        let refused = serde_json::from_str::<UnitCode>("\"bang thanh\"").unwrap_err().to_string();
        assert!(refused.contains("bang thanh"), "{refused}");
    }
}
