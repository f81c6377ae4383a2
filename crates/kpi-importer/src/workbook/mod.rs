//! Turning untrusted file bytes into sparse sheets of cells.
//!
//! - [`sniff`]: the format from the bytes, never the name; zip containers are inflated for
//!   real within limits before calamine sees them;
//! - `xls_guard` and `ods_guard`: the grids calamine would allocate densely, computed the way
//!   calamine computes them, and refused when huge;
//! - this module: calamine's cell readers, cell by cell where it has them, so a sheet declaring
//!   `A1:XFD1048576` costs two cells, not 550 GB.
//!
//! Every calamine call runs under `catch_unwind`, so a parser panic rejects the file. That does
//! not make calamine safe: an allocation failure aborts the process. These guards are defence in
//! depth; the real boundary is the worker process of [`crate::isolation`].

mod ods_guard;
pub mod sniff;
mod xls_guard;

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{Data, DataRef, Ods, Reader, SheetType, Xls, Xlsb, Xlsx};

use crate::issues::{Problem, a1};
pub use sniff::{Sniffed, sniff};

/// Largest report file accepted: real reports are tens of kilobytes.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Largest total of inflated zip entries.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;
/// Largest expansion ratio of one zip entry above 1 MiB.
pub const MAX_RATIO: u64 = 200;
/// Most non-empty cells read from a whole workbook.
pub const MAX_CELLS: usize = 200_000;
/// Rows of a sheet, as in Excel and the report contract: a cell below is refused.
pub const MAX_ROWS: u64 = 1_048_576;
/// Columns of a sheet (A to XFD), as in Excel and the report contract.
pub const MAX_COLUMNS: u64 = 16_384;
/// Largest grid calamine may materialise for an ODS sheet (it reads ODS densely).
const MAX_ODS_GRID: u64 = 2_000_000;
/// Largest grid an `.xls` sheet may declare or span: calamine reserves the declared
/// DIMENSIONS and then allocates the cells' bounding box, both densely.
const MAX_XLS_GRID: u64 = 2_000_000;

/// The container formats the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    Xlsb,
    Xls,
    Ods,
}

/// A cell's content, as the report rules need it.
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue {
    Text(String),
    Number(f64),
    /// A date-formatted number: the serial and its calendar date.
    Date {
        serial: f64,
        ymd: (u16, u8, u8),
    },
    Bool(bool),
    /// An error value such as `#DIV/0!`.
    Error(String),
    /// A formula whose result was never saved (files written by libraries, not spreadsheets).
    FormulaWithoutResult,
}

/// One sheet's non-empty cells at zero-based (row, column) positions.
///
/// A sorted list rather than a map: a sheet arrives in order (from calamine, and from the
/// worker), so building it is a push per cell, and every parsed file builds one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SheetCells {
    pub name: String,
    /// In (row, column) order, each position once.
    cells: Vec<((u32, u32), CellValue)>,
}

impl SheetCells {
    /// A sheet of `cells` in any order; a position given twice keeps its last value.
    pub fn new(name: String, mut cells: Vec<((u32, u32), CellValue)>) -> SheetCells {
        if !cells.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            // Reversed, a stable sort puts each position's last value first, and dedup keeps it.
            cells.reverse();
            cells.sort_by_key(|&(position, _)| position);
            cells.dedup_by_key(|&mut (position, _)| position);
        }
        SheetCells { name, cells }
    }

    pub fn get(&self, row: u32, col: u32) -> Option<&CellValue> {
        let index = self.cells.binary_search_by_key(&(row, col), |&(position, _)| position).ok()?;
        self.cells.get(index).map(|(_, value)| value)
    }

    /// Every cell, in (row, column) order.
    pub fn iter(&self) -> impl Iterator<Item = ((u32, u32), &CellValue)> {
        self.cells.iter().map(|(position, value)| (*position, value))
    }

    /// How many non-empty cells the sheet has.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cells from position `first` on.
    fn from(&self, first: (u32, u32)) -> &[((u32, u32), CellValue)] {
        let start = self.cells.partition_point(|&(position, _)| position < first);
        self.cells.get(start..).unwrap_or_default()
    }

    /// The cells of one row, in column order.
    pub fn row(&self, row: u32) -> impl Iterator<Item = (u32, &CellValue)> {
        self.from((row, 0)).iter().take_while(move |&&((r, _), _)| r == row).map(|((_, col), value)| (*col, value))
    }

    /// The rows from `first` on that hold a cell, in order, each once: what the report rules
    /// walk, so their time follows the cells that exist, never the rows a corrupt file spans.
    pub fn rows_from(&self, first: u32) -> impl Iterator<Item = u32> + '_ {
        let mut previous = None;
        self.from((first, 0)).iter().filter_map(move |&((row, _), _)| {
            let new = previous != Some(row);
            previous = Some(row);
            new.then_some(row)
        })
    }
}

/// Reads every worksheet of a workbook into sparse cells, bounded, never panicking.
pub fn read_sheets(bytes: &[u8]) -> Result<Vec<SheetCells>, Problem> {
    let sniffed = sniff(bytes)?;
    match catch_unwind(AssertUnwindSafe(|| read_format(sniffed.format, &sniffed.bytes))) {
        Ok(result) => result,
        Err(_) => Err(Problem::ReaderFailed { detail: "it panicked".into() }),
    }
}

fn read_format(format: Format, bytes: &[u8]) -> Result<Vec<SheetCells>, Problem> {
    let broken = |e: &dyn std::fmt::Display| Problem::NotAWorkbook { detail: e.to_string() };
    let mut budget = MAX_CELLS;
    let mut sheets = Vec::new();
    match format {
        Format::Xlsx => {
            let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|e| broken(&e))?;
            for name in worksheet_names(workbook.sheets_metadata()) {
                let mut reader = workbook.worksheet_cells_reader(&name).map_err(|e| broken(&e))?;
                let mut cells = Vec::new();
                while let Some(cell) = reader.next_cell_with_formula().map_err(|e| broken(&e))? {
                    let value = match (from_data_ref(&cell.value), &cell.formula) {
                        (Some(value), _) => value,
                        (None, Some(formula)) if !formula.is_empty() => CellValue::FormulaWithoutResult,
                        (None, _) => continue,
                    };
                    insert(&name, &mut cells, cell.pos, value, &mut budget)?;
                }
                sheets.push(SheetCells::new(name, cells));
            }
        }
        Format::Xlsb => {
            let mut workbook = Xlsb::new(Cursor::new(bytes)).map_err(|e| broken(&e))?;
            for name in worksheet_names(workbook.sheets_metadata()) {
                let mut reader = workbook.worksheet_cells_reader(&name).map_err(|e| broken(&e))?;
                let mut cells = Vec::new();
                while let Some(cell) = reader.next_cell().map_err(|e| broken(&e))? {
                    if let Some(value) = from_data_ref(cell.get_value()) {
                        insert(&name, &mut cells, cell.get_position(), value, &mut budget)?;
                    }
                }
                sheets.push(SheetCells::new(name, cells));
            }
        }
        Format::Xls => {
            let mut workbook = Xls::new(Cursor::new(bytes)).map_err(|e| broken(&e))?;
            for name in worksheet_names(workbook.sheets_metadata()) {
                let range = workbook.worksheet_range(&name).map_err(|e| broken(&e))?;
                sheets.push(from_range(name, &range, &mut budget)?);
            }
        }
        Format::Ods => {
            let mut workbook = Ods::new(Cursor::new(bytes)).map_err(|e| broken(&e))?;
            for name in worksheet_names(workbook.sheets_metadata()) {
                let range = workbook.worksheet_range(&name).map_err(|e| broken(&e))?;
                sheets.push(from_range(name, &range, &mut budget)?);
            }
        }
    }
    Ok(sheets)
}

fn worksheet_names(metadata: &[calamine::Sheet]) -> Vec<String> {
    metadata.iter().filter(|sheet| sheet.typ == SheetType::WorkSheet).map(|sheet| sheet.name.clone()).collect()
}

/// Keeps one cell, refusing a cell outside the sheet's limits and more than [`MAX_CELLS`].
fn insert(
    sheet: &str,
    cells: &mut Vec<((u32, u32), CellValue)>,
    pos: (u32, u32),
    value: CellValue,
    budget: &mut usize,
) -> Result<(), Problem> {
    let (row, col) = pos;
    if u64::from(row) >= MAX_ROWS || u64::from(col) >= MAX_COLUMNS {
        return Err(Problem::CellOutOfBounds { sheet: sheet.to_owned(), cell: a1(row, col) });
    }
    if *budget == 0 {
        return Err(Problem::TooLarge { detail: format!("more than {MAX_CELLS} cells") });
    }
    *budget -= 1;
    cells.push((pos, value));
    Ok(())
}

fn from_range(name: String, range: &calamine::Range<Data>, budget: &mut usize) -> Result<SheetCells, Problem> {
    let mut cells = Vec::new();
    let (row0, col0) = range.start().unwrap_or((0, 0));
    for (row, col, data) in range.used_cells() {
        if let Some(value) = from_data(data) {
            let pos = (row0.saturating_add(row as u32), col0.saturating_add(col as u32));
            insert(&name, &mut cells, pos, value, budget)?;
        }
    }
    Ok(SheetCells::new(name, cells))
}

fn text(value: &str) -> Option<CellValue> {
    (!value.trim().is_empty()).then(|| CellValue::Text(value.to_owned()))
}

fn date(dt: &calamine::ExcelDateTime) -> CellValue {
    let (year, month, day, ..) = dt.to_ymd_hms_milli();
    CellValue::Date { serial: dt.as_f64(), ymd: (year, month, day) }
}

fn from_data_ref(data: &DataRef<'_>) -> Option<CellValue> {
    match data {
        DataRef::Int(i) => Some(CellValue::Number(*i as f64)),
        DataRef::Float(f) => Some(CellValue::Number(*f)),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => text(s),
        DataRef::SharedString(s) => text(s),
        DataRef::Bool(b) => Some(CellValue::Bool(*b)),
        DataRef::DateTime(dt) => Some(date(dt)),
        DataRef::Error(e) => Some(CellValue::Error(e.to_string())),
        DataRef::Empty => None,
    }
}

fn from_data(data: &Data) -> Option<CellValue> {
    match data {
        Data::Int(i) => Some(CellValue::Number(*i as f64)),
        Data::Float(f) => Some(CellValue::Number(*f)),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => text(s),
        Data::Bool(b) => Some(CellValue::Bool(*b)),
        Data::DateTime(dt) => Some(date(dt)),
        Data::Error(e) => Some(CellValue::Error(e.to_string())),
        Data::Empty => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The sorted list answers as the map it replaced would, whatever the order the cells came
    /// in and however often a position repeats (its last value wins, as in a map).
    #[test]
    fn sheet_cells_answer_as_a_map_of_the_same_cells() {
        let mut rng = kpi_store::test_support::SeededRng::new(8);
        for case in 0..2_000 {
            let count = rng.below(40);
            let mut cells = Vec::new();
            for _ in 0..count {
                let position = (rng.below(6) as u32, rng.below(4) as u32);
                cells.push((position, CellValue::Number(rng.below(100) as f64)));
            }
            let cells = if case % 2 == 0 {
                cells
            } else {
                // Half the cases arrive in order, as calamine and the worker send them.
                let map: BTreeMap<_, _> = cells.into_iter().collect();
                map.into_iter().collect()
            };
            let map: BTreeMap<(u32, u32), CellValue> = cells.iter().cloned().collect();
            let sheet = SheetCells::new("S".into(), cells);
            assert_eq!(sheet.len(), map.len(), "case {case}");
            let listed: Vec<_> = sheet.iter().map(|(position, value)| (position, value.clone())).collect();
            assert_eq!(listed, map.clone().into_iter().collect::<Vec<_>>(), "case {case}");
            for row in 0..7 {
                for col in 0..5 {
                    assert_eq!(sheet.get(row, col), map.get(&(row, col)), "case {case} at {row},{col}");
                }
                let in_row: Vec<_> = map.range((row, 0)..=(row, u32::MAX)).map(|(&(_, c), v)| (c, v)).collect();
                assert_eq!(sheet.row(row).collect::<Vec<_>>(), in_row, "case {case} row {row}");
                let mut rows: Vec<u32> = map.range((row, 0)..).map(|(&(r, _), _)| r).collect();
                rows.dedup();
                assert_eq!(sheet.rows_from(row).collect::<Vec<_>>(), rows, "case {case} from {row}");
            }
        }
    }
}
