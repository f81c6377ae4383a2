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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_ignoring_case_diacritics_spaces_and_colon() {
        assert_eq!(normalize_label("  MÃ ĐƠN VỊ:  "), "ma don vi");
        assert_eq!(normalize_label("Kỳ báo cáo :"), "ky bao cao");
        assert_eq!(normalize_label("Mã  chỉ\u{a0}tiêu"), "ma chi tieu");
        // Decomposed text (base letter plus combining marks) folds the same way.
        assert_eq!(normalize_label("Ma\u{0303} đơn vi\u{0323}"), "ma don vi");
    }
}
