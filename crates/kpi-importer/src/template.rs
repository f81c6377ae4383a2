//! Writing report workbooks: the blank template a unit fills in, the demo data set, and the
//! test workbooks. One writer serves all three, so what the project generates is exactly what
//! it reads back.

use std::path::{Path, PathBuf};

use kpi_core::{Catalog, IndicatorKind, Period, UnitCode};
use rust_xlsxwriter::{
    DataValidation, DataValidationErrorStyle, DataValidationRule, Format, FormatAlign, FormatBorder, Formula, Workbook,
    XlsxError,
};

/// Name of the report sheet in generated workbooks.
pub const SHEET_NAME: &str = "Báo cáo";
/// Zero-based row of the header in generated workbooks (row 9 in Excel).
pub const HEADER_ROW: u32 = 8;
/// Zero-based row of the first indicator in generated workbooks (row 10 in Excel).
pub const FIRST_DATA_ROW: u32 = HEADER_ROW + 1;
/// The header labels, in column order A–H, exactly as the contract reads them.
pub const HEADER: [&str; 8] =
    ["STT", "Mã chỉ tiêu", "Tên chỉ tiêu", "Đơn vị tính", "Tử số", "Mẫu số", "Giá trị", "Ghi chú"];
/// Zero-based columns of the inputs.
pub const NUMERATOR_COL: u16 = 4;
pub const DENOMINATOR_COL: u16 = 5;
pub const VALUE_COL: u16 = 6;
pub const NOTE_COL: u16 = 7;

/// Why a workbook could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("unit {0} is not in the catalog")]
    UnknownUnit(UnitCode),
    #[error("cannot build the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What goes into one cell of a generated report.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Number(f64),
    Text(String),
    /// A formula with its saved result (`"94.44"`, `"#DIV/0!"`), or `None` for a formula
    /// never calculated.
    Formula {
        formula: String,
        result: Option<String>,
    },
}

/// One indicator row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub code: String,
    pub name: String,
    pub unit_of_measure: String,
    pub numerator: Option<Input>,
    pub denominator: Option<Input>,
    pub value: Option<Input>,
    pub note: Option<String>,
}

/// The content of a report workbook. Metadata values that are `None` leave the label with an
/// empty value cell, as a careless hand would.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportContent {
    pub unit_name: Option<String>,
    pub unit_code: Option<String>,
    pub period: Option<String>,
    pub prepared_by: Option<String>,
    pub prepared_on: Option<String>,
    pub rows: Vec<Row>,
    /// Protect the sheet, unlock the inputs and validate them (the blank template).
    pub protect: bool,
}

/// A4 in Excel's paper codes.
const PAPER_A4: u8 = 9;
/// Zero-based row of the first metadata label (`Đơn vị:`), under the heading and the title.
const METADATA_ROW: u32 = 3;
/// The national motto of an administrative document's heading (Decree 30/2020/NĐ-CP).
const NATION: &str = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM";
const MOTTO: &str = "Độc lập – Tự do – Hạnh phúc";
/// The form's title.
const TITLE: &str = "BÁO CÁO KẾT QUẢ THỰC HIỆN NGHỊ QUYẾT SỐ 09-NQ/HU";

/// The heading Decree 30/2020/NĐ-CP gives administrative documents: the unit's name top left,
/// the nation and its motto top right, then the form's title across the page. None of it is a
/// metadata label, so the importer reads past it.
fn write_heading(
    sheet: &mut rust_xlsxwriter::Worksheet,
    content: &ReportContent,
    bold: &Format,
) -> Result<(), XlsxError> {
    let centered = bold.clone().set_align(FormatAlign::Center);
    if let Some(name) = &content.unit_name {
        sheet.merge_range(0, 0, 0, 2, &name.to_uppercase(), &centered)?;
    }
    sheet.merge_range(0, 4, 0, 7, NATION, &centered)?;
    sheet.merge_range(1, 4, 1, 7, MOTTO, &centered.clone().set_underline(rust_xlsxwriter::FormatUnderline::Single))?;
    sheet.merge_range(2, 0, 2, 7, TITLE, &centered.set_font_size(13))?;
    Ok(())
}

/// The signature block under the table: the preparer on the left, the head of the unit on the
/// right. Its texts sit in the name and note columns, which hold no figures.
fn write_signatures(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    content: &ReportContent,
) -> Result<(), XlsxError> {
    let title = Format::new().set_bold().set_align(FormatAlign::Center);
    let hint = Format::new().set_italic().set_align(FormatAlign::Center);
    sheet.write_with_format(row, 2, "Người lập biểu", &title)?;
    sheet.write_with_format(row, NOTE_COL, "Thủ trưởng đơn vị", &title)?;
    sheet.write_with_format(row + 1, 2, "(Ký, ghi rõ họ tên)", &hint)?;
    sheet.write_with_format(row + 1, NOTE_COL, "(Ký tên, đóng dấu)", &hint)?;
    if let Some(preparer) = &content.prepared_by {
        sheet.write_with_format(row + 5, 2, preparer.as_str(), &title)?;
    }
    Ok(())
}

/// How a period is written in the `Kỳ báo cáo` cell of a form.
pub fn period_label(period: Period) -> String {
    match period {
        Period::Year(year) => format!("Năm {year}"),
        Period::Half(year, 1) => format!("6 tháng đầu năm {year}"),
        Period::Half(year, _) => format!("6 tháng cuối năm {year}"),
        Period::Quarter(year, quarter) => format!("Quý {quarter}/{year}"),
        Period::Month(year, month) => format!("Tháng {month}/{year}"),
    }
}

/// Writes a report workbook (xlsx bytes).
pub fn write_report(content: &ReportContent) -> Result<Vec<u8>, TemplateError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET_NAME)?;
    sheet.set_formula_result_default("");
    let bold = Format::new().set_bold();
    let input = Format::new().set_unlocked().set_border(FormatBorder::Thin);
    let header = Format::new().set_bold().set_border(FormatBorder::Thin).set_align(FormatAlign::Center).set_text_wrap();
    let locked = Format::new().set_border(FormatBorder::Thin);
    for (col, width) in [6.0, 12.0, 55.0, 12.0, 10.0, 10.0, 10.0, 24.0].into_iter().enumerate() {
        sheet.set_column_width(col as u16, width)?;
    }
    write_heading(sheet, content, &bold)?;
    let metadata = [
        ("Đơn vị:", &content.unit_name),
        ("Mã đơn vị:", &content.unit_code),
        ("Kỳ báo cáo:", &content.period),
        ("Người lập:", &content.prepared_by),
        ("Ngày lập:", &content.prepared_on),
    ];
    for (offset, (label, value)) in metadata.into_iter().enumerate() {
        let row = METADATA_ROW + offset as u32;
        sheet.write_with_format(row, 0, label, &bold)?;
        match value {
            Some(value) => sheet.write_with_format(row, 2, value.as_str(), &input)?,
            None => sheet.write_blank(row, 2, &input)?,
        };
    }
    for (col, label) in HEADER.into_iter().enumerate() {
        sheet.write_with_format(HEADER_ROW, col as u16, label, &header)?;
    }
    for (index, row) in content.rows.iter().enumerate() {
        let r = FIRST_DATA_ROW + index as u32;
        sheet.write_with_format(r, 0, (index + 1) as f64, &locked)?;
        sheet.write_with_format(r, 1, row.code.as_str(), &locked)?;
        sheet.write_with_format(r, 2, row.name.as_str(), &locked)?;
        sheet.write_with_format(r, 3, row.unit_of_measure.as_str(), &locked)?;
        for (col, cell) in
            [(NUMERATOR_COL, &row.numerator), (DENOMINATOR_COL, &row.denominator), (VALUE_COL, &row.value)]
        {
            match cell {
                None => sheet.write_blank(r, col, &input)?,
                Some(Input::Number(n)) => sheet.write_with_format(r, col, *n, &input)?,
                Some(Input::Text(t)) => sheet.write_with_format(r, col, t.as_str(), &input)?,
                Some(Input::Formula { formula, result }) => {
                    let formula = Formula::new(formula.as_str()).set_result(result.clone().unwrap_or_default());
                    sheet.write_formula_with_format(r, col, formula, &input)?
                }
            };
        }
        match &row.note {
            Some(note) => sheet.write_with_format(r, NOTE_COL, note.as_str(), &input)?,
            None => sheet.write_blank(r, NOTE_COL, &input)?,
        };
    }
    write_signatures(sheet, FIRST_DATA_ROW + content.rows.len() as u32 + 1, content)?;
    // A4 landscape, every column on one page width, the header row on every page.
    sheet.set_paper_size(PAPER_A4).set_landscape().set_print_fit_to_pages(1, 0);
    sheet.set_repeat_rows(HEADER_ROW, HEADER_ROW)?;
    if content.protect && !content.rows.is_empty() {
        let last = FIRST_DATA_ROW + content.rows.len() as u32 - 1;
        let validation = DataValidation::new()
            .allow_decimal_number(DataValidationRule::GreaterThanOrEqualTo(0.0))
            .set_error_style(DataValidationErrorStyle::Stop)
            .set_error_title("Số liệu không hợp lệ")?
            .set_error_message("Nhập một số ≥ 0 (tỷ lệ: nhập Tử số và Mẫu số).")?;
        sheet.add_data_validation(FIRST_DATA_ROW, NUMERATOR_COL, last, VALUE_COL, &validation)?;
        sheet.protect();
    }
    Ok(workbook.save_to_buffer()?)
}

/// The blank template of one unit and period: every indicator the unit reports, metadata
/// filled in, inputs empty.
pub fn template(catalog: &Catalog, unit: &UnitCode, period: Period) -> Result<Vec<u8>, TemplateError> {
    let def = catalog.unit(unit).ok_or_else(|| TemplateError::UnknownUnit(unit.clone()))?;
    let rows = def
        .reports
        .iter()
        .filter_map(|code| catalog.indicator(code))
        .map(|indicator| Row {
            code: indicator.code.to_string(),
            name: indicator.name.clone(),
            unit_of_measure: indicator.unit_of_measure.clone(),
            ..Row::default()
        })
        .collect();
    write_report(&ReportContent {
        unit_name: Some(def.name.clone()),
        unit_code: Some(def.code.to_string()),
        period: Some(period_label(period)),
        rows,
        protect: true,
        ..ReportContent::default()
    })
}

/// A small deterministic hash (FNV-1a), so demo figures look random but never change.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A filled-in report with realistic, deterministic figures for one unit and period.
pub fn demo_report(catalog: &Catalog, unit: &UnitCode, period: Period) -> Result<Vec<u8>, TemplateError> {
    let def = catalog.unit(unit).ok_or_else(|| TemplateError::UnknownUnit(unit.clone()))?;
    let commune = def.kind == "commune";
    let year = period.year().to_string();
    let staff =
        if commune { 15 + hash(&[unit.as_str(), "staff"]) % 8 } else { 40 + hash(&[unit.as_str(), "staff"]) % 100 };
    let rows = def
        .reports
        .iter()
        .filter_map(|code| catalog.indicator(code))
        .map(|indicator| {
            let h = hash(&[unit.as_str(), indicator.code.as_str(), &year]);
            let mut row = Row {
                code: indicator.code.to_string(),
                name: indicator.name.clone(),
                unit_of_measure: indicator.unit_of_measure.clone(),
                ..Row::default()
            };
            match indicator.kind {
                IndicatorKind::Count => {
                    // Consistent with the catalog's rules: A03 is every ratio's denominator
                    // (R03, R04), and A02 + A04 is the staff B04 counts (R02).
                    let count = match indicator.code.as_str() {
                        "A01" => staff + h % 3,
                        "A03" => staff,
                        "A02" => staff - staff / 4,
                        "A04" => staff / 4,
                        "A05" => 600 + h % 80,
                        "A06" => 1 + h % 3,
                        "A07" => 150 + h % 150,
                        _ => h % 3,
                    };
                    row.numerator = Some(Input::Text("x".into()));
                    row.denominator = Some(Input::Text("x".into()));
                    row.value = Some(Input::Number(count as f64));
                }
                IndicatorKind::Ratio => {
                    let denominator = match indicator.code.as_str() {
                        "C03" => 1,
                        "C04" => 12,
                        _ => staff,
                    };
                    // Postgraduates (B05) are a few of the university-educated (B04, R01).
                    let numerator = match indicator.code.as_str() {
                        "B05" => denominator / 10 + h % 3,
                        _ => denominator - (h % 4).min(denominator),
                    };
                    let percent = (10_000.0 * numerator as f64 / denominator as f64).round() / 100.0;
                    row.numerator = Some(Input::Number(numerator as f64));
                    row.denominator = Some(Input::Number(denominator as f64));
                    row.value = Some(Input::Number(percent));
                }
                IndicatorKind::Percent => {
                    let percent = 20.0 + (h % 600) as f64 / 10.0;
                    row.value = Some(Input::Number(percent));
                }
            }
            row
        })
        .collect();
    let preparers = ["Triệu Thị Mai", "Lộc Văn Sơn", "Hoàng Văn Thành", "Nông Thị Hoa", "Ma Văn Dũng"];
    let preparer = preparers[(hash(&[unit.as_str()]) % preparers.len() as u64) as usize];
    write_report(&ReportContent {
        unit_name: Some(def.name.clone()),
        unit_code: Some(def.code.to_string()),
        period: Some(period_label(period)),
        prepared_by: Some(preparer.to_owned()),
        prepared_on: Some(format!("15/01/{}", period.year() + 1)),
        rows,
        protect: false,
    })
}

/// Writes demo reports for every unit that reports anything, for each of `years`, into `dir`
/// as `<unit>-<period>.xlsx`; returns the files written.
pub fn write_demo_data(catalog: &Catalog, dir: &Path, years: &[i32]) -> Result<Vec<PathBuf>, TemplateError> {
    std::fs::create_dir_all(dir).map_err(|source| TemplateError::Io { path: dir.to_owned(), source })?;
    let mut written = Vec::new();
    for &year in years {
        let period = Period::Year(year);
        for unit in catalog.units.iter().filter(|u| !u.reports.is_empty()) {
            let bytes = demo_report(catalog, &unit.code, period)?;
            let path = dir.join(format!("{}-{}.xlsx", unit.code.as_str().to_lowercase(), period.code()));
            std::fs::write(&path, bytes).map_err(|source| TemplateError::Io { path: path.clone(), source })?;
            written.push(path);
        }
    }
    Ok(written)
}
