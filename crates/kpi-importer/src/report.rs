//! Reading one report workbook by the contract (docs/report-format.md): find the report sheet,
//! its metadata, header and columns by their labels, then check every data row against the
//! catalog, collecting all errors of the file at once.
//!
//! Everything here is pure: bytes and a catalog in, a [`ParsedReport`] or the file's errors
//! out, so the batch importer, the server and the tests share exactly the same rules.

use std::borrow::Cow;
use std::collections::HashMap;

use kpi_core::figure::MAX_WHOLE;
use kpi_core::number::parse_text_number;
use kpi_core::text::normalize_label;
use kpi_core::{Catalog, Figure, IndicatorCode, IndicatorKind, Period, UnitCode};

use crate::issues::{Issue, Lang, Problem, a1, issue};
use crate::workbook::{CellValue, SheetCells, read_sheets};

/// Metadata supplied on the command line for files that lack it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub unit: Option<UnitCode>,
    pub period: Option<Period>,
}

/// One figure read from a data row.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedValue {
    pub indicator: IndicatorCode,
    pub figure: Figure,
    pub note: Option<String>,
    /// The code cell, for messages.
    pub cell: String,
}

/// A report that passed every rule: what gets stored as one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReport {
    pub sheet: String,
    pub unit: UnitCode,
    pub period: Period,
    pub prepared_by: Option<String>,
    /// ISO `yyyy-mm-dd`.
    pub prepared_on: Option<String>,
    pub values: Vec<ParsedValue>,
    pub warnings: Vec<Issue>,
}

/// A report refused with its errors; unit and period when they could be read, for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rejected {
    pub unit: Option<UnitCode>,
    pub period: Option<Period>,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

/// Reads and validates one workbook in this process. Pure: no IO, never panics on any input
/// (but see [`crate::isolation`]: a reader's allocation failure would still abort).
pub fn parse_workbook(
    file_name: &str,
    bytes: &[u8],
    catalog: &Catalog,
    overrides: &Overrides,
    lang: Lang,
) -> Result<ParsedReport, Rejected> {
    parse_sheets(file_name, &read_sheets(bytes), catalog, overrides, lang)
}

/// Validates a workbook already read into cells (by a worker process or in this process), or
/// rejects it with the problem its reading ran into. Pure, and linear in the cells that exist.
pub fn parse_sheets(
    file_name: &str,
    sheets: &Result<Vec<SheetCells>, Problem>,
    catalog: &Catalog,
    overrides: &Overrides,
    lang: Lang,
) -> Result<ParsedReport, Rejected> {
    let whole_file = |problem: Problem| {
        let (sheet, cell) = problem.location();
        Rejected {
            unit: overrides.unit.clone(),
            period: overrides.period,
            errors: vec![issue(lang, file_name, sheet, cell, &problem)],
            warnings: Vec::new(),
        }
    };
    let sheets = sheets.as_ref().map_err(|problem| whole_file(problem.clone()))?;
    let Some((sheet, header_row, header_col)) =
        sheets.iter().find_map(|sheet| find_header(sheet).map(|(row, col)| (sheet, row, col)))
    else {
        let names = sheets.iter().map(|s| s.name.clone()).collect();
        return Err(whole_file(Problem::NoReportSheet { sheets: names }));
    };
    let mut parser = Parser { file: file_name, sheet, catalog, lang, errors: Vec::new(), warnings: Vec::new() };
    let meta = parser.metadata(header_row, overrides);
    let values = parser.data(header_row, header_col, meta.unit.as_ref());
    let Parser { errors, warnings, .. } = parser;
    match (meta.unit, meta.period) {
        (Some(unit), Some(period)) if errors.is_empty() => Ok(ParsedReport {
            sheet: sheet.name.clone(),
            unit,
            period,
            prepared_by: meta.prepared_by,
            prepared_on: meta.prepared_on,
            values,
            warnings,
        }),
        (unit, period) => Err(Rejected { unit, period, errors, warnings }),
    }
}

/// The first row with a cell reading `Mã chỉ tiêu`: (row, column of that cell).
fn find_header(sheet: &SheetCells) -> Option<(u32, u32)> {
    sheet.iter().find_map(|((row, col), value)| match value {
        CellValue::Text(text) if label(text) == "ma chi tieu" => Some((row, col)),
        _ => None,
    })
}

/// A label normalised as the contract says, also dropping a trailing `(...)` such as `(%)`.
fn label(text: &str) -> String {
    let normalized = normalize_label(text);
    match normalized.rfind('(') {
        Some(open) if normalized.ends_with(')') && open > 0 => normalize_label(&normalized[..open]),
        _ => normalized,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Unit,
    Period,
    Name,
    PreparedBy,
    PreparedOn,
}

fn field_of(label: &str) -> Option<Field> {
    match label {
        "ma don vi" => Some(Field::Unit),
        "ky bao cao" => Some(Field::Period),
        "don vi" | "ten don vi" => Some(Field::Name),
        "nguoi lap" | "nguoi lap bieu" => Some(Field::PreparedBy),
        "ngay lap" | "ngay lap bieu" => Some(Field::PreparedOn),
        _ => None,
    }
}

/// A metadata value and where it was found.
#[derive(Debug, Clone)]
struct Located {
    cell: String,
    value: CellValue,
}

#[derive(Debug, Default)]
struct Metadata {
    unit: Option<UnitCode>,
    period: Option<Period>,
    prepared_by: Option<String>,
    prepared_on: Option<String>,
}

/// The columns of the header, by role.
#[derive(Debug, Default, Clone, Copy)]
struct Columns {
    code: u32,
    numerator: Option<u32>,
    denominator: Option<u32>,
    value: Option<u32>,
    note: Option<u32>,
}

/// A numerator, denominator or value cell, classified; its text is borrowed from the cell
/// and copied only into a message.
#[derive(Debug, Clone, PartialEq)]
enum Slot<'a> {
    Empty,
    NotApplicable,
    /// A number; `percent_text` is the text as typed when it carried a percent sign (`45%`).
    Number {
        value: f64,
        percent_text: Option<&'a str>,
    },
    NotNumber(&'a str),
    Error(&'a str),
    NoResult,
}

impl Slot<'_> {
    fn is_figure(&self) -> bool {
        matches!(self, Slot::Number { .. })
    }

    fn is_absent(&self) -> bool {
        matches!(self, Slot::Empty | Slot::NotApplicable)
    }
}

const NUMERATOR: &str = "Tử số";
const DENOMINATOR: &str = "Mẫu số";
const VALUE: &str = "Giá trị";
/// Agreement allowed between a ratio's value cell and its numerator and denominator.
const TOLERANCE_PP: f64 = 0.05 + 1e-9;

struct Parser<'a> {
    file: &'a str,
    sheet: &'a SheetCells,
    catalog: &'a Catalog,
    lang: Lang,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
}

impl Parser<'_> {
    fn error(&mut self, cell: &str, problem: Problem) {
        let found = issue(self.lang, self.file, &self.sheet.name, cell, &problem);
        self.errors.push(found);
    }

    fn warn(&mut self, cell: &str, problem: Problem) {
        let found = issue(self.lang, self.file, &self.sheet.name, cell, &problem);
        self.warnings.push(found);
    }

    /// Reads the label/value pairs above the header row.
    fn metadata(&mut self, header_row: u32, overrides: &Overrides) -> Metadata {
        let mut found: HashMap<Field, Located> = HashMap::new();
        for row in self.sheet.rows_from(0).take_while(|&row| row < header_row) {
            let cells: Vec<(u32, &CellValue)> = self.sheet.row(row).collect();
            for (index, &(col, value)) in cells.iter().enumerate() {
                let CellValue::Text(text) = value else { continue };
                if let Some(field) = field_of(&label(text)) {
                    let located = match cells.get(index + 1) {
                        Some(&(value_col, value)) => Located { cell: a1(row, value_col), value: value.clone() },
                        None => Located { cell: a1(row, col), value: CellValue::Text(String::new()) },
                    };
                    found.entry(field).or_insert(located);
                    break;
                }
                if let Some((left, right)) = text.split_once(':')
                    && let Some(field) = field_of(&label(left))
                {
                    let located = Located { cell: a1(row, col), value: CellValue::Text(right.trim().to_owned()) };
                    found.entry(field).or_insert(located);
                    break;
                }
            }
        }
        let mut meta = Metadata {
            unit: self.unit(found.get(&Field::Unit), overrides),
            period: self.period(found.get(&Field::Period), overrides),
            ..Metadata::default()
        };
        if let (Some(unit), Some(name)) = (&meta.unit, found.get(&Field::Name))
            && let Some(def) = self.catalog.unit(unit)
        {
            let text = display(&name.value);
            if !text.is_empty() && normalize_label(&text) != normalize_label(&def.name) {
                let registry = def.name.clone();
                self.warn(&name.cell, Problem::UnitNameMismatch { found: text.into_owned(), registry });
            }
        }
        meta.prepared_by =
            found.get(&Field::PreparedBy).map(|l| display(&l.value).into_owned()).filter(|t| !t.is_empty());
        if let Some(located) = found.get(&Field::PreparedOn) {
            match iso_date(&located.value) {
                Ok(date) => meta.prepared_on = date,
                Err(text) => self.warn(&located.cell, Problem::BadDate { found: text }),
            }
        }
        meta
    }

    fn unit(&mut self, located: Option<&Located>, overrides: &Overrides) -> Option<UnitCode> {
        let text = located.map(|l| display(&l.value).into_owned()).unwrap_or_default();
        let cell = located.map(|l| l.cell.clone()).unwrap_or_default();
        if text.is_empty() {
            if overrides.unit.is_none() {
                self.error(&cell, Problem::MissingUnit);
            }
            return overrides.unit.clone();
        }
        let code = UnitCode::parse_lenient(&text).ok().filter(|code| self.catalog.unit(code).is_some());
        let Some(code) = code else {
            self.error(&cell, Problem::UnknownUnit { found: text });
            return None;
        };
        if let Some(given) = &overrides.unit
            && given != &code
        {
            let conflict =
                Problem::MetadataConflict {
                    label: "Mã đơn vị", in_file: code.to_string(), given: given.to_string()
                };
            self.error(&cell, conflict);
        }
        Some(code)
    }

    fn period(&mut self, located: Option<&Located>, overrides: &Overrides) -> Option<Period> {
        let cell = located.map(|l| l.cell.clone()).unwrap_or_default();
        let parsed = match located.map(|l| &l.value) {
            None => None,
            Some(CellValue::Number(n)) if n.fract() == 0.0 && (1990.0..=2100.0).contains(n) => {
                Some(Ok(Period::Year(*n as i32)))
            }
            Some(value) => {
                let text = display(value);
                if text.is_empty() {
                    None
                } else {
                    Some(Period::parse_vietnamese(&text).map_err(|_| text.into_owned()))
                }
            }
        };
        let period = match parsed {
            None => {
                if overrides.period.is_none() {
                    self.error(&cell, Problem::MissingPeriod);
                }
                return overrides.period;
            }
            Some(Err(text)) => {
                self.error(&cell, Problem::BadPeriod { found: text });
                return None;
            }
            Some(Ok(period)) => period,
        };
        if let Some(given) = overrides.period
            && given != period
        {
            let conflict = Problem::MetadataConflict {
                label: "Kỳ báo cáo",
                in_file: period.to_string(),
                given: given.to_string(),
            };
            self.error(&cell, conflict);
        }
        Some(period)
    }

    /// Maps header labels to columns, looking one row down for value columns (two-row
    /// headers); returns the columns and the last header row.
    fn columns(&self, header_row: u32, code_col: u32) -> (Columns, u32) {
        let mut columns = Columns { code: code_col, ..Columns::default() };
        let assign = |columns: &mut Columns, row: u32, values_only: bool| {
            for (col, value) in self.sheet.row(row) {
                let CellValue::Text(text) = value else { continue };
                let slot = match label(text).as_str() {
                    "tu so" => &mut columns.numerator,
                    "mau so" => &mut columns.denominator,
                    "gia tri" | "so lieu" | "ket qua" | "so luong" => &mut columns.value,
                    "ghi chu" if !values_only => &mut columns.note,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = Some(col);
                }
            }
        };
        assign(&mut columns, header_row, false);
        let before = (columns.numerator, columns.denominator, columns.value);
        assign(&mut columns, header_row + 1, true);
        let last =
            if before == (columns.numerator, columns.denominator, columns.value) { header_row } else { header_row + 1 };
        (columns, last)
    }

    /// Reads and checks every data row below the header.
    fn data(&mut self, header_row: u32, code_col: u32, unit: Option<&UnitCode>) -> Vec<ParsedValue> {
        let (columns, last_header) = self.columns(header_row, code_col);
        if columns.value.is_none() && (columns.numerator.is_none() || columns.denominator.is_none()) {
            self.error(&a1(header_row, code_col), Problem::NoHeader { missing: "Giá trị / Tử số, Mẫu số" });
            return Vec::new();
        }
        let mut first_row = last_header + 1;
        if self.is_numbering_row(first_row) {
            first_row += 1;
        }
        let unit_def = unit.and_then(|unit| self.catalog.unit(unit).map(|def| (unit, def)));
        // Each indicator's first row, named only when a duplicate needs it.
        let mut seen: HashMap<IndicatorCode, u32> = HashMap::new();
        let mut values = Vec::new();
        for row in self.sheet.rows_from(first_row) {
            let slot = |col: Option<u32>| col.map_or(Slot::Empty, |c| classify(self.sheet.get(row, c)));
            let (numerator, denominator, value) =
                (slot(columns.numerator), slot(columns.denominator), slot(columns.value));
            let code_cell = a1(row, code_col);
            let code_text = self.sheet.get(row, code_col).map(display).unwrap_or_default();
            let indicator = IndicatorCode::parse_lenient(&code_text)
                .ok()
                .and_then(|code| self.catalog.indicator(&code).map(|def| (code, def.kind)));
            let has_figure = numerator.is_figure() || denominator.is_figure() || value.is_figure();
            let Some((code, kind)) = indicator else {
                if has_figure {
                    self.error(&code_cell, Problem::UnknownIndicator { found: code_text.trim().to_owned() });
                }
                continue;
            };
            if let Some(&first_row) = seen.get(&code) {
                let first_cell = a1(first_row, code_col);
                self.error(&code_cell, Problem::DuplicateIndicator { code: code.to_string(), first_cell });
                continue;
            }
            seen.insert(code.clone(), row);
            let cells = RowCells { row, columns, indicator: code.as_str() };
            let figure = match kind {
                IndicatorKind::Count => self.count(&cells, &numerator, &denominator, &value),
                IndicatorKind::Ratio => self.ratio(&cells, &numerator, &denominator, &value),
                IndicatorKind::Percent => self.percent(&cells, &numerator, &denominator, &value),
            };
            let Some(figure) = figure else { continue };
            if let Some((unit, def)) = unit_def
                && !def.reports.contains(&code)
            {
                let problem = Problem::UnassignedIndicator { indicator: code.to_string(), unit: unit.to_string() };
                self.warn(&code_cell, problem);
            }
            let note = columns
                .note
                .and_then(|c| self.sheet.get(row, c))
                .map(display)
                .filter(|t| !t.is_empty())
                .map(Cow::into_owned);
            values.push(ParsedValue { indicator: code, figure, note, cell: code_cell });
        }
        values
    }

    /// A column-numbering row: every non-empty cell like `1`, `(1)`, `[1]`, `(4)=(2)/(3)`.
    fn is_numbering_row(&self, row: u32) -> bool {
        let mut cells = self.sheet.row(row).peekable();
        cells.peek().is_some()
            && cells.all(|(_, value)| match value {
                CellValue::Number(n) => n.fract() == 0.0 && (0.0..=100.0).contains(n),
                CellValue::Text(text) => {
                    let text = text.trim();
                    text.chars().any(|c| c.is_ascii_digit())
                        && text.chars().all(|c| c.is_ascii_digit() || "()[]=/+-*x×:. ".contains(c))
                }
                _ => false,
            })
    }

    /// Reports what is wrong with a non-number slot; `true` when it was a problem.
    fn slot_problem(&mut self, at: At, slot: &Slot, indicator: &str, column: &'static str) -> bool {
        let problem = match *slot {
            Slot::NotNumber(found) => {
                Problem::NotANumber { found: found.to_owned(), indicator: indicator.to_owned(), column }
            }
            Slot::Error(found) => {
                Problem::ErrorValue { found: found.to_owned(), indicator: indicator.to_owned(), column }
            }
            Slot::NoResult => Problem::FormulaWithoutResult { indicator: indicator.to_owned(), column },
            _ => return false,
        };
        self.error(&at.name(), problem);
        true
    }

    /// A whole number ≥ 0 from a numerator, denominator or count cell.
    fn whole(&mut self, at: At, slot: &Slot, indicator: &str, column: &'static str) -> Option<i64> {
        match *slot {
            Slot::Number { value, percent_text: None } => {
                let problem = if value < 0.0 {
                    Problem::Negative { found: value, indicator: indicator.to_owned(), column }
                } else if value.fract() != 0.0 {
                    Problem::NotWhole { found: value, indicator: indicator.to_owned(), column }
                } else if value > MAX_WHOLE as f64 {
                    Problem::TooLargeNumber { found: value, indicator: indicator.to_owned(), column }
                } else {
                    return Some(value as i64);
                };
                self.error(&at.name(), problem);
                None
            }
            Slot::Number { percent_text: Some(typed), .. } => {
                let problem = Problem::NotANumber { found: typed.to_owned(), indicator: indicator.to_owned(), column };
                self.error(&at.name(), problem);
                None
            }
            ref other => {
                self.slot_problem(at, other, indicator, column);
                None
            }
        }
    }

    /// Figures in columns an indicator does not use are ignored, with a warning.
    fn unused(&mut self, cells: &RowCells, numerator: &Slot, denominator: &Slot) {
        for (slot, column, col) in
            [(numerator, NUMERATOR, cells.columns.numerator), (denominator, DENOMINATOR, cells.columns.denominator)]
        {
            if let (true, Some(col)) = (slot.is_figure(), col) {
                let problem = Problem::UnexpectedFigure { indicator: cells.indicator.to_owned(), column };
                self.warn(&a1(cells.row, col), problem);
            }
        }
    }

    fn count(&mut self, cells: &RowCells, numerator: &Slot, denominator: &Slot, value: &Slot) -> Option<Figure> {
        self.unused(cells, numerator, denominator);
        if value.is_absent() {
            return None;
        }
        self.whole(cells.value_cell(), value, cells.indicator, VALUE).map(Figure::Count)
    }

    fn percent(&mut self, cells: &RowCells, numerator: &Slot, denominator: &Slot, value: &Slot) -> Option<Figure> {
        self.unused(cells, numerator, denominator);
        let at = cells.value_cell();
        match *value {
            Slot::Empty | Slot::NotApplicable => None,
            Slot::Number { value, percent_text } => {
                if !(0.0..=100.0).contains(&value) {
                    let indicator = cells.indicator.to_owned();
                    self.error(&at.name(), Problem::OutOfRange { found: value, indicator });
                    return None;
                }
                if percent_text.is_none() && value > 0.0 && value <= 1.0 && self.targets_far_above_one(cells.indicator)
                {
                    let indicator = cells.indicator.to_owned();
                    self.warn(&at.name(), Problem::SuspectFraction { found: value, indicator });
                }
                Some(Figure::Percent(value))
            }
            ref other => {
                self.slot_problem(at, other, cells.indicator, VALUE);
                None
            }
        }
    }

    /// Whether every target of the indicator is far above 1% (or it has none).
    fn targets_far_above_one(&self, indicator: &str) -> bool {
        self.catalog.targets.iter().filter(|t| t.indicator.as_str() == indicator).all(|t| t.value > 5.0)
    }

    fn ratio(&mut self, cells: &RowCells, numerator: &Slot, denominator: &Slot, value: &Slot) -> Option<Figure> {
        if numerator.is_absent() && denominator.is_absent() && value.is_absent() {
            return None;
        }
        if *numerator == Slot::NotApplicable || *denominator == Slot::NotApplicable {
            return None;
        }
        let (Some(num_col), Some(den_col)) = (cells.columns.numerator, cells.columns.denominator) else {
            self.error(&a1(cells.row, cells.columns.code), Problem::NoHeader { missing: "Tử số, Mẫu số" });
            return None;
        };
        let mut parts = [None, None];
        for (index, (slot, column, col)) in
            [(numerator, NUMERATOR, num_col), (denominator, DENOMINATOR, den_col)].into_iter().enumerate()
        {
            let at = At::cell(cells.row, col);
            if *slot == Slot::Empty {
                let problem = Problem::MissingFigure { indicator: cells.indicator.to_owned(), column };
                self.error(&at.name(), problem);
            } else {
                parts[index] = self.whole(at, slot, cells.indicator, column);
            }
        }
        let value_checked = match value {
            Slot::Number { .. } | Slot::Empty | Slot::NotApplicable => true,
            other => !self.slot_problem(cells.value_cell(), other, cells.indicator, VALUE),
        };
        let [Some(numerator), Some(denominator)] = parts else { return None };
        if denominator == 0 {
            let indicator = cells.indicator.to_owned();
            self.error(&a1(cells.row, den_col), Problem::ZeroDenominator { indicator });
            return None;
        }
        if numerator > denominator {
            let indicator = cells.indicator.to_owned();
            let problem = Problem::NumeratorExceedsDenominator { numerator, denominator, indicator };
            self.error(&a1(cells.row, num_col), problem);
            return None;
        }
        if let Slot::Number { value, percent_text } = *value {
            let expected = 100.0 * numerator as f64 / denominator as f64;
            let as_points = (value - expected).abs() <= TOLERANCE_PP;
            let as_fraction = percent_text.is_none() && (value * 100.0 - expected).abs() <= TOLERANCE_PP;
            if !as_points && !as_fraction {
                let indicator = cells.indicator.to_owned();
                let problem = Problem::InconsistentValue { found: value, expected, indicator };
                self.error(&cells.value_cell().name(), problem);
                return None;
            }
        }
        value_checked.then_some(Figure::Ratio { numerator, denominator })
    }
}

/// Where a data row's cells are.
struct RowCells<'a> {
    row: u32,
    columns: Columns,
    indicator: &'a str,
}

impl RowCells<'_> {
    fn value_cell(&self) -> At {
        At { row: self.row, col: self.columns.value }
    }
}

/// A cell of a data row, named (`D12`) only when a message needs it: most rows need none.
#[derive(Debug, Clone, Copy)]
struct At {
    row: u32,
    /// `None` when the sheet has no such column (the message then names no cell).
    col: Option<u32>,
}

impl At {
    fn cell(row: u32, col: u32) -> At {
        At { row, col: Some(col) }
    }

    fn name(self) -> String {
        self.col.map_or_else(String::new, |col| a1(self.row, col))
    }
}

fn classify(cell: Option<&CellValue>) -> Slot<'_> {
    match cell {
        None => Slot::Empty,
        Some(CellValue::Number(value)) => Slot::Number { value: *value, percent_text: None },
        Some(CellValue::Date { serial, .. }) => Slot::Number { value: *serial, percent_text: None },
        Some(CellValue::Text(text)) => {
            let trimmed = text.trim();
            let trimmed = trimmed.strip_prefix('\'').unwrap_or(trimmed).trim();
            if matches!(trimmed, "-" | "–" | "—" | "x" | "X") {
                return Slot::NotApplicable;
            }
            match parse_text_number(trimmed) {
                Some(number) => Slot::Number { value: number.value, percent_text: number.percent.then_some(trimmed) },
                None if trimmed.starts_with('#') => Slot::Error(trimmed),
                None => Slot::NotNumber(trimmed),
            }
        }
        Some(CellValue::Bool(b)) => Slot::NotNumber(if *b { "TRUE" } else { "FALSE" }),
        Some(CellValue::Error(e)) => Slot::Error(e),
        Some(CellValue::FormulaWithoutResult) => Slot::NoResult,
    }
}

/// A cell as text, the way a person would read it; a text cell is borrowed, trimmed.
fn display(value: &CellValue) -> Cow<'_, str> {
    match value {
        CellValue::Text(text) => Cow::Borrowed(text.trim()),
        CellValue::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Cow::Owned(format!("{}", *n as i64)),
        CellValue::Number(n) => Cow::Owned(n.to_string()),
        CellValue::Date { ymd: (y, m, d), .. } => Cow::Owned(format!("{y:04}-{m:02}-{d:02}")),
        CellValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        CellValue::Error(e) => Cow::Borrowed(e),
        CellValue::FormulaWithoutResult => Cow::Borrowed(""),
    }
}

/// `Ngày lập` as ISO `yyyy-mm-dd`: a date cell, a date serial, `dd/mm/yyyy`, `dd-mm-yyyy`,
/// `dd.mm.yyyy` or ISO text. `Ok(None)` when empty, `Err(text)` when unreadable.
fn iso_date(value: &CellValue) -> Result<Option<String>, String> {
    let valid = |y: i32, m: u32, d: u32| {
        chrono::NaiveDate::from_ymd_opt(y, m, d).map(|date| date.format("%Y-%m-%d").to_string())
    };
    match value {
        CellValue::Date { ymd: (y, m, d), .. } => {
            valid(i32::from(*y), u32::from(*m), u32::from(*d)).map(Some).ok_or_else(|| display(value).into_owned())
        }
        CellValue::Number(serial) if (1.0..200_000.0).contains(serial) => {
            let base = chrono::NaiveDate::from_ymd_opt(1899, 12, 30);
            base.and_then(|b| b.checked_add_days(chrono::Days::new(*serial as u64)))
                .map(|date| Some(date.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| display(value).into_owned())
        }
        CellValue::Text(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            let date_part = text.split(['T', ' ']).next().unwrap_or(text);
            let parts: Vec<&str> = date_part.split(['/', '-', '.']).collect();
            let number = |s: &str| s.parse::<u32>().ok();
            let parsed = match parts.as_slice() {
                [y, m, d] if y.len() == 4 => match (number(y), number(m), number(d)) {
                    (Some(y), Some(m), Some(d)) => valid(y as i32, m, d),
                    _ => None,
                },
                [d, m, y] if y.len() == 4 => match (number(y), number(m), number(d)) {
                    (Some(y), Some(m), Some(d)) => valid(y as i32, m, d),
                    _ => None,
                },
                _ => None,
            };
            parsed.map(Some).ok_or_else(|| text.to_owned())
        }
        other => Err(display(other).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso_date(&CellValue::Text("12/01/2023".into())), Ok(Some("2023-01-12".into())));
        assert_eq!(iso_date(&CellValue::Text("2023-01-12T00:00:00".into())), Ok(Some("2023-01-12".into())));
        assert_eq!(iso_date(&CellValue::Number(44938.0)), Ok(Some("2023-01-12".into())));
        assert_eq!(iso_date(&CellValue::Text("31/02/2023".into())), Err("31/02/2023".into()));
        assert_eq!(iso_date(&CellValue::Text("hôm qua".into())), Err("hôm qua".into()));
    }

    #[test]
    fn labels_drop_units_in_brackets() {
        assert_eq!(label("Giá trị (%)"), "gia tri");
        assert_eq!(label("  MÃ CHỈ TIÊU: "), "ma chi tieu");
    }

    #[test]
    fn not_applicable_markers() {
        for marker in ["-", "–", "—", "x", "X", " x "] {
            assert_eq!(classify(Some(&CellValue::Text(marker.into()))), Slot::NotApplicable);
        }
        assert!(matches!(classify(Some(&CellValue::Text("'18".into()))), Slot::Number { value: 18.0, .. }));
        assert!(matches!(classify(Some(&CellValue::Text("mười".into()))), Slot::NotNumber(_)));
        assert!(matches!(classify(Some(&CellValue::Text("#DIV/0!".into()))), Slot::Error(_)));
    }
}
