//! Normalisation of the labels people type into report forms.
//!
//! Labels are matched ignoring case, Vietnamese diacritics, surrounding spaces and a trailing
//! colon, so `MÃ ĐƠN VỊ:`, `Mã đơn vị` and `ma don vi` are the same label.

use std::borrow::Cow;

/// Removes Vietnamese diacritics (precomposed or combining) and maps `đ` to `d`.
pub fn fold_diacritics(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for ch in text.chars().filter(|&ch| !is_combining_mark(ch)) {
        folded.push(base_letter(ch));
    }
    folded
}

/// Lowercases, folds diacritics, collapses inner white space and drops surrounding white
/// space and one trailing colon.
///
/// One pass, lowercasing as it goes: every text cell of every report goes through here, and
/// lowercasing the whole text first cost an allocation each. Only a capital sigma needs the
/// whole text (it lowercases by its place in a word), so only such a text is lowercased first.
pub fn normalize_label(text: &str) -> String {
    let lowered = if text.contains('Σ') { Cow::Owned(text.to_lowercase()) } else { Cow::Borrowed(text) };
    let mut normalized = String::with_capacity(lowered.len());
    let mut space_pending = false;
    let mut push = |ch: char| {
        if ch.is_whitespace() {
            space_pending = !normalized.is_empty();
            return;
        }
        if space_pending {
            normalized.push(' ');
            space_pending = false;
        }
        normalized.push(ch);
    };
    for ch in lowered.chars() {
        if ch.is_ascii() {
            // Most of a label: no case table, no mark, no letter to fold.
            push(ch.to_ascii_lowercase());
        } else {
            ch.to_lowercase().filter(|&ch| !is_combining_mark(ch)).for_each(|ch| push(base_letter(ch)));
        }
    }
    if normalized.ends_with(':') {
        normalized.pop();
        normalized.truncate(normalized.trim_end().len());
    }
    normalized
}

/// A combining diacritic (U+0300–U+036F), as decomposed text writes tones and marks.
fn is_combining_mark(ch: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&ch)
}

/// The letter under a precomposed Vietnamese letter (`ặ` → `a`, `Đ` → `D`); any other
/// character as it is. One `match`, which the compiler turns into a search, not a scan.
fn base_letter(ch: char) -> char {
    match ch {
        'à' | 'á' | 'ả' | 'ã' | 'ạ' | 'ă' | 'ằ' | 'ắ' | 'ẳ' | 'ẵ' | 'ặ' | 'â' | 'ầ' | 'ấ' | 'ẩ' | 'ẫ' | 'ậ' => {
            'a'
        }
        'À' | 'Á' | 'Ả' | 'Ã' | 'Ạ' | 'Ă' | 'Ằ' | 'Ắ' | 'Ẳ' | 'Ẵ' | 'Ặ' | 'Â' | 'Ầ' | 'Ấ' | 'Ẩ' | 'Ẫ' | 'Ậ' => {
            'A'
        }
        'è' | 'é' | 'ẻ' | 'ẽ' | 'ẹ' | 'ê' | 'ề' | 'ế' | 'ể' | 'ễ' | 'ệ' => 'e',
        'È' | 'É' | 'Ẻ' | 'Ẽ' | 'Ẹ' | 'Ê' | 'Ề' | 'Ế' | 'Ể' | 'Ễ' | 'Ệ' => 'E',
        'ì' | 'í' | 'ỉ' | 'ĩ' | 'ị' => 'i',
        'Ì' | 'Í' | 'Ỉ' | 'Ĩ' | 'Ị' => 'I',
        'ò' | 'ó' | 'ỏ' | 'õ' | 'ọ' | 'ô' | 'ồ' | 'ố' | 'ổ' | 'ỗ' | 'ộ' | 'ơ' | 'ờ' | 'ớ' | 'ở' | 'ỡ' | 'ợ' => {
            'o'
        }
        'Ò' | 'Ó' | 'Ỏ' | 'Õ' | 'Ọ' | 'Ô' | 'Ồ' | 'Ố' | 'Ổ' | 'Ỗ' | 'Ộ' | 'Ơ' | 'Ờ' | 'Ớ' | 'Ở' | 'Ỡ' | 'Ợ' => {
            'O'
        }
        'ù' | 'ú' | 'ủ' | 'ũ' | 'ụ' | 'ư' | 'ừ' | 'ứ' | 'ử' | 'ữ' | 'ự' => 'u',
        'Ù' | 'Ú' | 'Ủ' | 'Ũ' | 'Ụ' | 'Ư' | 'Ừ' | 'Ứ' | 'Ử' | 'Ữ' | 'Ự' => 'U',
        'ỳ' | 'ý' | 'ỷ' | 'ỹ' | 'ỵ' => 'y',
        'Ỳ' | 'Ý' | 'Ỷ' | 'Ỹ' | 'Ỵ' => 'Y',
        'đ' => 'd',
        'Đ' => 'D',
        other => other,
    }
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

    /// The rule as first written, in separate steps: the one-pass version must agree with it.
    fn normalize_label_in_steps(text: &str) -> String {
        let folded = fold_diacritics(&text.to_lowercase());
        let collapsed = folded.split_whitespace().collect::<Vec<_>>().join(" ");
        collapsed.strip_suffix(':').unwrap_or(&collapsed).trim_end().to_owned()
    }

    #[test]
    fn one_pass_normalisation_agrees_with_the_steps() {
        // A seeded generator (xorshift) picking labels from letters, Vietnamese letters in both
        // cases, combining marks, kinds of white space, colons and brackets.
        let alphabet: Vec<char> = " a:Z(\u{a0}\t\nàảẶĐđêƠờỰỳÝΣσİ\u{0300}\u{0301}\u{0323}".chars().collect();
        let mut next = crate::seeded::xorshift(0x2545_F491_4F6C_DD1D);
        for _ in 0..50_000 {
            let length = next() % 12;
            let text: String = (0..length).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            assert_eq!(normalize_label(&text), normalize_label_in_steps(&text), "{text:?}");
        }
    }
}
