//! Normalisation of the labels people type into report forms.
//!
//! Labels are matched ignoring case, Vietnamese diacritics, surrounding spaces and a trailing
//! colon, so `MÃ ĐƠN VỊ:`, `Mã đơn vị` and `ma don vi` are the same label.

/// Removes Vietnamese diacritics (precomposed or combining) and maps `đ` to `d`.
pub fn fold_diacritics(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for ch in text.chars() {
        if ('\u{0300}'..='\u{036F}').contains(&ch) {
            continue;
        }
        folded.push(base_letter(ch));
    }
    folded
}

/// Lowercases, folds diacritics, collapses inner white space and drops surrounding white
/// space and one trailing colon.
pub fn normalize_label(text: &str) -> String {
    let folded = fold_diacritics(&text.to_lowercase());
    let collapsed = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.strip_suffix(':').unwrap_or(&collapsed).trim_end().to_owned()
}

fn base_letter(ch: char) -> char {
    const GROUPS: [(&str, char); 14] = [
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ", 'A'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ÈÉẺẼẸÊỀẾỂỄỆ", 'E'),
        ("ìíỉĩị", 'i'),
        ("ÌÍỈĨỊ", 'I'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ", 'O'),
        ("ùúủũụưừứửữự", 'u'),
        ("ÙÚỦŨỤƯỪỨỬỮỰ", 'U'),
        ("ỳýỷỹỵ", 'y'),
        ("ỲÝỶỸỴ", 'Y'),
        ("đ", 'd'),
        ("Đ", 'D'),
    ];
    if ch.is_ascii() {
        return ch;
    }
    GROUPS.iter().find(|(letters, _)| letters.contains(ch)).map_or(ch, |&(_, base)| base)
}

/// Longest excerpt of user input quoted in a message or a log line.
pub const EXCERPT_CHARS: usize = 64;

/// User input as it may be quoted back: at most [`EXCERPT_CHARS`] characters (then `…`), with
/// control characters escaped, so a megabyte of input or a forged newline never reaches an
/// error message or a log line whole.
pub fn excerpt(text: &str) -> String {
    let mut quoted = String::new();
    for (index, ch) in text.chars().enumerate() {
        if index == EXCERPT_CHARS {
            quoted.push('…');
            break;
        }
        if ch.is_control() {
            quoted.extend(ch.escape_default());
        } else {
            quoted.push(ch);
        }
    }
    quoted
}

/// The language of messages and documents: Vietnamese, the language of the people who fill
/// in the reports and read the reviews, unless English is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    /// The text in this language: the English one when English is asked for and there is
    /// one, else the Vietnamese (catalogs may leave English names out).
    pub fn pick<'a>(self, vietnamese: &'a str, english: &'a str) -> &'a str {
        if self == Lang::En && !english.is_empty() { english } else { vietnamese }
    }
}

/// An instant as messages and listings show who did something when: to the minute, in UTC.
pub fn minute_utc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl std::str::FromStr for Lang {
    type Err = String;

    /// `vi` or `en`, as the command line and `accept-language` give them.
    fn from_str(text: &str) -> Result<Lang, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "vi" => Ok(Lang::Vi),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language {:?}: expected vi or en", excerpt(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("BOCBO"), "BOCBO");
        assert_eq!(excerpt("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let long = excerpt(&"X".repeat(1_000_000));
        assert_eq!((long.chars().count(), long.ends_with('…')), (EXCERPT_CHARS + 1, true));
    }

    #[test]
    fn labels_match_ignoring_case_diacritics_spaces_and_colon() {
        assert_eq!(normalize_label("  MÃ ĐƠN VỊ:  "), "ma don vi");
        assert_eq!(normalize_label("Kỳ báo cáo :"), "ky bao cao");
        assert_eq!(normalize_label("Mã  chỉ\u{a0}tiêu"), "ma chi tieu");
        // Decomposed text (base letter plus combining marks) folds the same way.
        assert_eq!(normalize_label("Ma\u{0303} đơn vi\u{0323}"), "ma don vi");
    }
}
