//! Errors and warnings found in a report file: their stable machine-readable codes and their
//! messages in Vietnamese or English.
//!
//! Every message names the file, the sheet and the A1 cell, says what was found and what was
//! expected, so a district clerk can fix the workbook without asking anyone.

use kpi_core::figure::MAX_WHOLE;
use serde::Serialize;

pub use kpi_core::text::Lang;

/// One error or warning, exactly as it appears in the JSON report and is stored with a revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    /// The sheet's name; empty when the problem is about the whole file.
    pub sheet: String,
    /// A1 notation; empty when the problem is about the whole file or sheet.
    pub cell: String,
    /// Stable kind, e.g. `not_a_number`.
    pub code: &'static str,
    pub message: String,
}

/// What went wrong, with the data the message needs. The variant decides the code.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    NotAWorkbook {
        detail: String,
    },
    PasswordProtected,
    TooLarge {
        detail: String,
    },
    Unreadable {
        detail: String,
    },
    /// The spreadsheet reader died on the file (out of memory, a crash) or panicked.
    ReaderFailed {
        detail: String,
    },
    /// The spreadsheet reader was still working on the file at the deadline.
    TooSlow {
        seconds: u64,
    },
    /// A cell beyond row 1,048,576 or column XFD, where no report has one.
    CellOutOfBounds {
        sheet: String,
        cell: String,
    },
    NoReportSheet {
        sheets: Vec<String>,
    },
    NoHeader {
        missing: &'static str,
    },
    MissingUnit,
    UnknownUnit {
        found: String,
    },
    MissingPeriod,
    BadPeriod {
        found: String,
    },
    MetadataConflict {
        label: &'static str,
        in_file: String,
        given: String,
    },
    UnknownIndicator {
        found: String,
    },
    DuplicateIndicator {
        code: String,
        first_cell: String,
    },
    NotANumber {
        found: String,
        indicator: String,
        column: &'static str,
    },
    NotWhole {
        found: f64,
        indicator: String,
        column: &'static str,
    },
    Negative {
        found: f64,
        indicator: String,
        column: &'static str,
    },
    /// A whole number above kpi-core's `MAX_WHOLE`.
    TooLargeNumber {
        found: f64,
        indicator: String,
        column: &'static str,
    },
    OutOfRange {
        found: f64,
        indicator: String,
    },
    NumeratorExceedsDenominator {
        numerator: i64,
        denominator: i64,
        indicator: String,
    },
    ZeroDenominator {
        indicator: String,
    },
    MissingFigure {
        indicator: String,
        column: &'static str,
    },
    InconsistentValue {
        found: f64,
        expected: f64,
        indicator: String,
    },
    ErrorValue {
        found: String,
        indicator: String,
        column: &'static str,
    },
    FormulaWithoutResult {
        indicator: String,
        column: &'static str,
    },
    AmbiguousInBatch {
        other: String,
        unit: String,
        period: String,
    },
    /// The report was approved: it takes no revision until unapproved.
    PeriodApproved {
        unit: String,
        period: String,
        by: String,
        at: String,
    },
    /// A unit locked the period for its subtree.
    PeriodLocked {
        unit: String,
        period: String,
        by: String,
        at: String,
    },
    /// The period closed by itself, the catalog's number of days after its deadline.
    PeriodClosed {
        period: String,
        deadline: String,
        closed_on: String,
        after_days: u32,
    },
    /// A catalog rule does not hold (an error or a warning, as the rule says).
    RuleViolated(Box<RuleViolation>),
    /// A figure far from the unit's history or outside the catalog's bounds.
    Outlier {
        indicator: String,
        value: String,
        expected: String,
        /// What it was judged on: the past values, or the catalog's bounds.
        judged_on: String,
    },
    // Warnings.
    UnitNameMismatch {
        found: String,
        registry: String,
    },
    UnassignedIndicator {
        indicator: String,
        unit: String,
    },
    SuspectFraction {
        found: f64,
        indicator: String,
    },
    BadDate {
        found: String,
    },
    UnexpectedFigure {
        indicator: String,
        column: &'static str,
    },
}

/// What a broken rule's message says.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleViolation {
    pub code: String,
    pub name: String,
    pub expression: String,
    pub left: String,
    pub right: String,
    /// The code cells of the figures the rule read, e.g. `C14 (B05), C13 (B04)`.
    pub cells: String,
}

impl Problem {
    /// The stable code of the JSON report.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::NotAWorkbook { .. } => "not_a_workbook",
            Problem::PasswordProtected => "password_protected",
            Problem::TooLarge { .. } => "too_large",
            Problem::Unreadable { .. } => "unreadable_file",
            Problem::ReaderFailed { .. } => "reader_failed",
            Problem::TooSlow { .. } => "too_slow",
            Problem::CellOutOfBounds { .. } => "cell_out_of_bounds",
            Problem::NoReportSheet { .. } => "no_report_sheet",
            Problem::NoHeader { .. } => "no_header",
            Problem::MissingUnit => "missing_unit",
            Problem::UnknownUnit { .. } => "unknown_unit",
            Problem::MissingPeriod => "missing_period",
            Problem::BadPeriod { .. } => "bad_period",
            Problem::MetadataConflict { .. } => "metadata_conflict",
            Problem::UnknownIndicator { .. } => "unknown_indicator",
            Problem::DuplicateIndicator { .. } => "duplicate_indicator",
            Problem::NotANumber { .. } => "not_a_number",
            Problem::NotWhole { .. } => "not_whole",
            Problem::Negative { .. } => "negative",
            Problem::TooLargeNumber { .. } => "number_too_large",
            Problem::OutOfRange { .. } => "out_of_range",
            Problem::NumeratorExceedsDenominator { .. } => "numerator_exceeds_denominator",
            Problem::ZeroDenominator { .. } => "zero_denominator",
            Problem::MissingFigure { .. } => "missing_figure",
            Problem::InconsistentValue { .. } => "inconsistent_value",
            Problem::ErrorValue { .. } => "error_value",
            Problem::FormulaWithoutResult { .. } => "formula_without_result",
            Problem::AmbiguousInBatch { .. } => "ambiguous_in_batch",
            Problem::PeriodApproved { .. } => "period_approved",
            Problem::PeriodLocked { .. } | Problem::PeriodClosed { .. } => "period_closed",
            Problem::RuleViolated(_) => "rule_violated",
            Problem::Outlier { .. } => "outlier",
            Problem::UnitNameMismatch { .. } => "unit_name_mismatch",
            Problem::UnassignedIndicator { .. } => "unassigned_indicator",
            Problem::SuspectFraction { .. } => "suspect_fraction",
            Problem::BadDate { .. } => "bad_date",
            Problem::UnexpectedFigure { .. } => "unexpected_figure",
        }
    }

    /// The sheet and cell a problem found while reading the workbook is about, if any.
    pub fn location(&self) -> (&str, &str) {
        match self {
            Problem::CellOutOfBounds { sheet, cell } => (sheet, cell),
            _ => ("", ""),
        }
    }

    /// What was found and what was expected, without the location.
    pub fn describe(&self, lang: Lang) -> String {
        let vi = lang == Lang::Vi;
        match self {
            Problem::NotAWorkbook { detail } => {
                if vi {
                    format!(
                        "không phải bảng tính Excel/ODS đọc được ({detail}); cần tệp .xlsx, .xlsm, .xlsb, .xls hoặc .ods"
                    )
                } else {
                    format!(
                        "not a readable Excel/ODS workbook ({detail}); expected an .xlsx, .xlsm, .xlsb, .xls or .ods file"
                    )
                }
            }
            Problem::PasswordProtected => {
                if vi {
                    "tệp được đặt mật khẩu; hãy gỡ mật khẩu rồi lưu lại".to_owned()
                } else {
                    "the workbook is password-protected; remove the password and save it again".to_owned()
                }
            }
            Problem::TooLarge { detail } => {
                if vi {
                    format!("tệp quá lớn hoặc bất thường ({detail}); một báo cáo chỉ có vài chục dòng")
                } else {
                    format!("the file is too large or malformed ({detail}); a report has a few dozen rows")
                }
            }
            Problem::Unreadable { detail } => {
                if vi {
                    format!("không đọc được tệp: {detail}")
                } else {
                    format!("cannot read the file: {detail}")
                }
            }
            Problem::ReaderFailed { detail } => {
                if vi {
                    format!(
                        "trình đọc bảng tính không đọc được tệp này ({detail}); tệp có thể bị hỏng, hãy mở và lưu lại bằng Excel"
                    )
                } else {
                    format!(
                        "the spreadsheet reader failed on this file ({detail}); it may be corrupt: open it and save it again in Excel"
                    )
                }
            }
            Problem::TooSlow { seconds } => {
                if vi {
                    format!(
                        "đọc tệp mất quá {seconds} giây nên đã dừng; tệp có thể bị hỏng, hãy mở và lưu lại bằng Excel"
                    )
                } else {
                    format!(
                        "reading the file took more than {seconds} s and was stopped; it may be corrupt: open it and save it again in Excel"
                    )
                }
            }
            Problem::CellOutOfBounds { .. } => {
                if vi {
                    "ô nằm ngoài giới hạn của một trang tính (dòng 1 048 576, cột XFD); tệp bị hỏng".to_owned()
                } else {
                    "the cell lies beyond a sheet's limits (row 1,048,576, column XFD); the file is corrupt".to_owned()
                }
            }
            Problem::NoReportSheet { sheets } => {
                let names = sheets.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
                if vi {
                    format!("không trang nào ({names}) có dòng tiêu đề chứa ô \"Mã chỉ tiêu\"")
                } else {
                    format!("no sheet ({names}) has a header row with a \"Mã chỉ tiêu\" cell")
                }
            }
            Problem::NoHeader { missing } => {
                if vi {
                    format!("dòng tiêu đề thiếu cột {missing} (trên dòng này hoặc dòng ngay dưới)")
                } else {
                    format!("the header row has no {missing} column (on this row or the row below)")
                }
            }
            Problem::MissingUnit => {
                if vi {
                    "thiếu \"Mã đơn vị\" phía trên dòng tiêu đề".to_owned()
                } else {
                    "no \"Mã đơn vị\" (unit code) above the header row".to_owned()
                }
            }
            Problem::UnknownUnit { found } => {
                if vi {
                    format!("mã đơn vị \"{found}\" không có trong danh mục đơn vị")
                } else {
                    format!("unit code \"{found}\" is not in the unit registry")
                }
            }
            Problem::MissingPeriod => {
                if vi {
                    "thiếu \"Kỳ báo cáo\" phía trên dòng tiêu đề".to_owned()
                } else {
                    "no \"Kỳ báo cáo\" (period) above the header row".to_owned()
                }
            }
            Problem::BadPeriod { found } => {
                if vi {
                    format!(
                        "\"{found}\" không phải kỳ báo cáo; cần ví dụ \"Năm 2022\", \"6 tháng đầu năm 2023\", \"Quý II/2023\", \"Tháng 3/2023\""
                    )
                } else {
                    format!(
                        "\"{found}\" is not a period; expected e.g. \"Năm 2022\", \"6 tháng đầu năm 2023\", \"Quý II/2023\", \"Tháng 3/2023\""
                    )
                }
            }
            Problem::MetadataConflict { label, in_file, given } => {
                if vi {
                    format!("{label} trong tệp là \"{in_file}\" nhưng lệnh nhập chỉ định \"{given}\"")
                } else {
                    format!("{label} in the file is \"{in_file}\" but the command line says \"{given}\"")
                }
            }
            Problem::UnknownIndicator { found } => {
                if found.is_empty() {
                    if vi {
                        "dòng có số liệu nhưng không có mã chỉ tiêu".to_owned()
                    } else {
                        "the row holds a figure but no indicator code".to_owned()
                    }
                } else if vi {
                    format!("mã chỉ tiêu \"{found}\" không có trong danh mục chỉ tiêu")
                } else {
                    format!("indicator code \"{found}\" is not in the catalog")
                }
            }
            Problem::DuplicateIndicator { code, first_cell } => {
                if vi {
                    format!("chỉ tiêu {code} xuất hiện hai lần (đã có ở ô {first_cell})")
                } else {
                    format!("indicator {code} appears twice (already at {first_cell})")
                }
            }
            Problem::NotANumber { found, indicator, column } => {
                if vi {
                    format!("\"{found}\" không phải là số ({indicator}, {column})")
                } else {
                    format!("\"{found}\" is not a number ({indicator}, {column})")
                }
            }
            Problem::NotWhole { found, indicator, column } => {
                if vi {
                    format!("{found} không phải số nguyên; cần số nguyên ≥ 0 ({indicator}, {column})")
                } else {
                    format!("{found} is not a whole number; expected a whole number ≥ 0 ({indicator}, {column})")
                }
            }
            Problem::Negative { found, indicator, column } => {
                if vi {
                    format!("{found} là số âm; cần số ≥ 0 ({indicator}, {column})")
                } else {
                    format!("{found} is negative; expected a number ≥ 0 ({indicator}, {column})")
                }
            }
            Problem::TooLargeNumber { found, indicator, column } => {
                if vi {
                    format!("{found} lớn quá mức cho phép; cần số nguyên từ 0 đến {MAX_WHOLE} ({indicator}, {column})")
                } else {
                    format!(
                        "{found} is too large; expected a whole number from 0 to {MAX_WHOLE} ({indicator}, {column})"
                    )
                }
            }
            Problem::OutOfRange { found, indicator } => {
                if vi {
                    format!("{found} nằm ngoài khoảng cho phép; cần tỷ lệ từ 0 đến 100 ({indicator}, Giá trị)")
                } else {
                    format!("{found} is out of range; expected a percentage from 0 to 100 ({indicator}, Giá trị)")
                }
            }
            Problem::NumeratorExceedsDenominator { numerator, denominator, indicator } => {
                if vi {
                    format!("tử số {numerator} lớn hơn mẫu số {denominator}; cần tử số ≤ mẫu số ({indicator})")
                } else {
                    format!(
                        "numerator {numerator} exceeds denominator {denominator}; expected numerator ≤ denominator ({indicator})"
                    )
                }
            }
            Problem::ZeroDenominator { indicator } => {
                if vi {
                    format!("mẫu số bằng 0; cần mẫu số > 0 ({indicator}, Mẫu số)")
                } else {
                    format!("the denominator is 0; expected a denominator > 0 ({indicator}, Mẫu số)")
                }
            }
            Problem::MissingFigure { indicator, column } => {
                if vi {
                    format!("ô trống; chỉ tiêu tỷ lệ cần cả Tử số và Mẫu số ({indicator}, {column})")
                } else {
                    format!("the cell is empty; a ratio indicator needs both Tử số and Mẫu số ({indicator}, {column})")
                }
            }
            Problem::InconsistentValue { found, expected, indicator } => {
                if vi {
                    format!(
                        "giá trị {found} không khớp với 100 × Tử số / Mẫu số = {expected:.2} ({indicator}, Giá trị)"
                    )
                } else {
                    format!(
                        "value {found} does not agree with 100 × Tử số / Mẫu số = {expected:.2} ({indicator}, Giá trị)"
                    )
                }
            }
            Problem::ErrorValue { found, indicator, column } => {
                if vi {
                    format!("ô chứa lỗi công thức {found}; cần một số ({indicator}, {column})")
                } else {
                    format!("the cell holds the error {found}; expected a number ({indicator}, {column})")
                }
            }
            Problem::FormulaWithoutResult { indicator, column } => {
                if vi {
                    format!(
                        "công thức chưa có kết quả được lưu; hãy mở tệp bằng Excel hoặc LibreOffice rồi lưu lại ({indicator}, {column})"
                    )
                } else {
                    format!(
                        "the formula has no saved result; open the file in a spreadsheet program and save it ({indicator}, {column})"
                    )
                }
            }
            Problem::AmbiguousInBatch { other, unit, period } => {
                if vi {
                    format!(
                        "tệp {other} trong cùng đợt nhập cũng là báo cáo của {unit} kỳ {period}; không biết tệp nào đúng"
                    )
                } else {
                    format!(
                        "{other} in the same batch is also the report of {unit} for {period}; cannot tell which is right"
                    )
                }
            }
            Problem::PeriodApproved { unit, period, by, at } => {
                if vi {
                    format!(
                        "báo cáo của {unit} kỳ {period} đã được {by} phê duyệt lúc {at}; cần hủy phê duyệt trước khi nhập lại"
                    )
                } else {
                    format!(
                        "the report of {unit} for {period} was approved by {by} at {at}; it must be unapproved before another import"
                    )
                }
            }
            Problem::PeriodLocked { unit, period, by, at } => {
                if vi {
                    format!(
                        "kỳ {period} đã được {by} khóa cho {unit} và các đơn vị trực thuộc lúc {at}; cần mở khóa trước khi nhập"
                    )
                } else {
                    format!(
                        "period {period} was closed for {unit} and the units below it by {by} at {at}; it must be unlocked before an import"
                    )
                }
            }
            Problem::PeriodClosed { period, deadline, closed_on, after_days } => {
                if vi {
                    format!(
                        "kỳ {period} đã tự đóng ngày {closed_on}, {after_days} ngày sau hạn nộp {deadline} (close_after_days trong danh mục)"
                    )
                } else {
                    format!(
                        "period {period} closed by itself on {closed_on}, {after_days} days after its deadline {deadline} (the catalog's close_after_days)"
                    )
                }
            }
            Problem::RuleViolated(violation) => {
                let RuleViolation { code, name, expression, left, right, cells } = violation.as_ref();
                if vi {
                    format!(
                        "quy tắc {code} ({name}) không thỏa: {expression}, vế trái {left}, vế phải {right} (các ô {cells})"
                    )
                } else {
                    format!(
                        "rule {code} ({name}) does not hold: {expression}, left side {left}, right side {right} (cells {cells})"
                    )
                }
            }
            Problem::Outlier { indicator, value, expected, judged_on } => {
                if vi {
                    format!("{indicator} = {value} bất thường: dự kiến {expected}, theo {judged_on}")
                } else {
                    format!("{indicator} = {value} looks wrong: expected {expected}, judged on {judged_on}")
                }
            }
            Problem::UnitNameMismatch { found, registry } => {
                if vi {
                    format!("tên đơn vị \"{found}\" khác tên trong danh mục \"{registry}\"")
                } else {
                    format!("unit name \"{found}\" differs from the registry's \"{registry}\"")
                }
            }
            Problem::UnassignedIndicator { indicator, unit } => {
                if vi {
                    format!("đơn vị {unit} không được giao chỉ tiêu {indicator}; số liệu vẫn được lưu")
                } else {
                    format!("unit {unit} is not assigned indicator {indicator}; the figure is stored anyway")
                }
            }
            Problem::SuspectFraction { found, indicator } => {
                let percent = found * 100.0;
                if vi {
                    format!("giá trị {found} ≤ 1: có phải là {percent}%? Đã lưu nguyên {found} ({indicator}, Giá trị)")
                } else {
                    format!("value {found} ≤ 1: did you mean {percent}%? Stored as {found} ({indicator}, Giá trị)")
                }
            }
            Problem::BadDate { found } => {
                if vi {
                    format!("\"{found}\" không phải ngày; cần dạng dd/mm/yyyy; bỏ qua Ngày lập")
                } else {
                    format!("\"{found}\" is not a date; expected dd/mm/yyyy; Ngày lập ignored")
                }
            }
            Problem::UnexpectedFigure { indicator, column } => {
                if vi {
                    format!("số liệu ở cột {column} bị bỏ qua: chỉ tiêu {indicator} chỉ dùng cột Giá trị")
                } else {
                    format!(
                        "the figure in the {column} column is ignored: indicator {indicator} uses the Giá trị column only"
                    )
                }
            }
        }
    }
}

/// Builds an [`Issue`] with the full message: file, sheet, cell, then the problem.
pub fn issue(lang: Lang, file: &str, sheet: &str, cell: &str, problem: &Problem) -> Issue {
    let place = match (sheet.is_empty(), cell.is_empty(), lang) {
        (true, _, _) => format!("{file}: "),
        (false, true, Lang::Vi) => format!("{file}, trang \"{sheet}\": "),
        (false, true, Lang::En) => format!("{file}, sheet \"{sheet}\": "),
        (false, false, Lang::Vi) => format!("{file}, trang \"{sheet}\", ô {cell}: "),
        (false, false, Lang::En) => format!("{file}, sheet \"{sheet}\", {cell}: "),
    };
    Issue {
        sheet: sheet.to_owned(),
        cell: cell.to_owned(),
        code: problem.code(),
        message: format!("{place}{}", problem.describe(lang)),
    }
}

/// A1 notation of a zero-based (row, column).
pub fn a1(row: u32, col: u32) -> String {
    use std::fmt::Write;
    // A column number has at most 7 letters (u32::MAX + 1 is "MWLQKWV"), written last first.
    let mut letters = [0u8; 7];
    let mut used = 0;
    let mut n = u64::from(col) + 1;
    while n > 0 && used < letters.len() {
        letters[used] = b'A' + ((n - 1) % 26) as u8;
        used += 1;
        n = (n - 1) / 26;
    }
    let mut cell = String::with_capacity(used + 10);
    cell.extend(letters[..used].iter().rev().map(|&letter| char::from(letter)));
    // Writing to a String cannot fail.
    let _ = write!(cell, "{}", u64::from(row) + 1);
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1_notation() {
        assert_eq!(a1(0, 0), "A1");
        assert_eq!(a1(13, 4), "E14");
        assert_eq!(a1(0, 25), "Z1");
        assert_eq!(a1(0, 26), "AA1");
        assert_eq!(a1(1_048_575, 16_383), "XFD1048576");
        assert_eq!(a1(u32::MAX, u32::MAX), "MWLQKWV4294967296");
    }

    #[test]
    fn message_names_file_sheet_and_cell() {
        let problem = Problem::NotANumber { found: "mười".into(), indicator: "B01".into(), column: "Tử số" };
        let en = issue(Lang::En, "bang-thanh-2022.xlsx", "Báo cáo", "E14", &problem);
        assert_eq!(en.message, "bang-thanh-2022.xlsx, sheet \"Báo cáo\", E14: \"mười\" is not a number (B01, Tử số)");
        assert_eq!(en.code, "not_a_number");
        let vi = issue(Lang::Vi, "f.xlsx", "", "", &Problem::MissingUnit);
        assert!(vi.message.starts_with("f.xlsx: thiếu"));
    }
}
