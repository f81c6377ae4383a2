//! Turning untrusted file bytes into sparse sheets of cells.
//!
//! The format is sniffed from the bytes, never the name. Zip-based files (xlsx, xlsm, xlsb,
//! ods) have their directory checked and every entry actually inflated, within limits, before
//! calamine sees them, so a zip bomb is refused in a fraction of a second. Sheets are read
//! cell by cell with calamine's cell readers where it has them, so a sheet declaring
//! `A1:XFD1048576` costs two cells, not 550 GB. Every calamine call runs under
//! `catch_unwind`: a parser panic rejects the file instead of ending the batch.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{Data, DataRef, Ods, Reader, SheetType, Xls, Xlsb, Xlsx};

use crate::issues::Problem;

/// Largest report file accepted: real reports are tens of kilobytes.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Largest total of inflated zip entries.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;
/// Largest expansion ratio of one zip entry above [`RATIO_CHECK_FROM`] bytes.
pub const MAX_RATIO: u64 = 200;
/// Entries smaller than this are not ratio-checked (tiny XML compresses very well).
const RATIO_CHECK_FROM: u64 = 1024 * 1024;
/// Most entries a workbook zip may hold.
const MAX_ENTRIES: usize = 2_000;
/// Most non-empty cells read from a whole workbook.
pub const MAX_CELLS: usize = 200_000;
/// Largest bounding box of non-empty cells an ODS sheet may have (calamine reads ODS densely).
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

/// One sheet's non-empty cells, keyed by zero-based (row, column).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SheetCells {
    pub name: String,
    pub cells: BTreeMap<(u32, u32), CellValue>,
}

impl SheetCells {
    pub fn get(&self, row: u32, col: u32) -> Option<&CellValue> {
        self.cells.get(&(row, col))
    }

    /// The cells of one row, in column order.
    pub fn row(&self, row: u32) -> impl Iterator<Item = (u32, &CellValue)> {
        self.cells.range((row, 0)..=(row, u32::MAX)).map(|(&(_, col), value)| (col, value))
    }

    /// The last row holding a cell, if any.
    pub fn last_row(&self) -> Option<u32> {
        self.cells.keys().next_back().map(|&(row, _)| row)
    }
}

/// Detects the format from the bytes and checks zip containers, before any parser runs.
pub fn sniff(bytes: &[u8]) -> Result<Format, Problem> {
    if bytes.is_empty() {
        return Err(Problem::NotAWorkbook { detail: "empty file".into() });
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Problem::TooLarge { detail: format!("{} bytes > {MAX_FILE_BYTES}", bytes.len()) });
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return sniff_zip(bytes);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        let encrypted: Vec<u8> = "EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes).collect();
        if bytes.windows(encrypted.len()).any(|w| w == encrypted.as_slice()) {
            return Err(Problem::PasswordProtected);
        }
        check_xls_grid(bytes)?;
        return Ok(Format::Xls);
    }
    let head = &bytes[..bytes.len().min(512)];
    let detail = if std::str::from_utf8(head).is_ok() || head.iter().all(|b| b.is_ascii()) {
        "plain text (CSV or HTML?), not a spreadsheet"
    } else {
        "unknown file format"
    };
    Err(Problem::NotAWorkbook { detail: detail.into() })
}

/// Inflates every entry of a zip within the limits, then tells which workbook format it is.
fn sniff_zip(bytes: &[u8]) -> Result<Format, Problem> {
    let not_a_workbook = |detail: String| Problem::NotAWorkbook { detail };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| not_a_workbook(format!("broken zip container: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(Problem::TooLarge { detail: format!("{} zip entries", archive.len()) });
    }
    let mut total: u64 = 0;
    let mut names = Vec::with_capacity(archive.len());
    let mut mimetype = String::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| not_a_workbook(format!("broken zip entry: {e}")))?;
        let name = entry.name().map_err(|e| not_a_workbook(format!("broken zip entry name: {e}")))?.into_owned();
        let declared = entry.size();
        let compressed = entry.compressed_size().max(1);
        if declared > MAX_UNPACKED_BYTES || total.saturating_add(declared) > MAX_UNPACKED_BYTES {
            return Err(Problem::TooLarge { detail: format!("{name} declares {declared} bytes") });
        }
        if declared > RATIO_CHECK_FROM && declared / compressed > MAX_RATIO {
            return Err(Problem::TooLarge { detail: format!("{name} expands {}×", declared / compressed) });
        }
        // Inflate for real: the directory may lie.
        let budget = MAX_UNPACKED_BYTES - total;
        let mut limited = (&mut entry).take(budget + 1);
        let actual = if name == "mimetype" {
            let mut text = Vec::new();
            let n =
                limited.read_to_end(&mut text).map_err(|e| not_a_workbook(format!("broken zip entry {name}: {e}")))?;
            mimetype = String::from_utf8_lossy(&text).into_owned();
            n as u64
        } else {
            std::io::copy(&mut limited, &mut std::io::sink())
                .map_err(|e| not_a_workbook(format!("broken zip entry {name}: {e}")))?
        };
        if actual > budget || actual > declared.saturating_add(4096) {
            return Err(Problem::TooLarge { detail: format!("{name} inflates beyond its declared size") });
        }
        if actual > RATIO_CHECK_FROM && actual / compressed > MAX_RATIO {
            return Err(Problem::TooLarge { detail: format!("{name} expands {}×", actual / compressed) });
        }
        total += actual;
        names.push(name);
    }
    let has = |wanted: &str| names.iter().any(|n| n.eq_ignore_ascii_case(wanted));
    if has("xl/workbook.bin") {
        Ok(Format::Xlsb)
    } else if has("xl/workbook.xml") {
        Ok(Format::Xlsx)
    } else if has("content.xml") && (mimetype.contains("opendocument.spreadsheet") || mimetype.is_empty()) {
        check_ods_grid(bytes)?;
        Ok(Format::Ods)
    } else {
        Err(not_a_workbook("a zip archive, but not a workbook".into()))
    }
}

/// Walks the BIFF records of an `.xls` workbook stream and refuses a sheet whose DIMENSIONS
/// record, or whose cells' bounding box, exceeds [`MAX_XLS_GRID`] cells. Without this, a few
/// bytes declaring 1,000,000 × 256 cells make calamine reserve gigabytes (or abort the process).
fn check_xls_grid(bytes: &[u8]) -> Result<(), Problem> {
    let broken = |detail: String| Problem::NotAWorkbook { detail };
    let mut container = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|e| broken(format!("broken Excel 97-2003 container: {e}")))?;
    let stream_name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|name| container.is_stream(name))
        .ok_or_else(|| broken("an OLE file, but not an Excel workbook".into()))?;
    let mut stream = Vec::new();
    container
        .open_stream(stream_name)
        .and_then(|s| s.take(MAX_FILE_BYTES as u64).read_to_end(&mut stream))
        .map_err(|e| broken(format!("unreadable workbook stream: {e}")))?;
    let too_large =
        |rows: u64, cols: u64| Problem::TooLarge { detail: format!("a sheet spans {rows} × {cols} cells") };
    // (first row, last row, first column, last column) of the current substream's cells.
    let mut bounds: Option<(u16, u16, u16, u16)> = None;
    let check_bounds = |bounds: Option<(u16, u16, u16, u16)>| match bounds {
        Some((top, bottom, left, right)) => {
            let (rows, cols) = (u64::from(bottom - top) + 1, u64::from(right - left) + 1);
            if rows * cols > MAX_XLS_GRID { Err(too_large(rows, cols)) } else { Ok(()) }
        }
        None => Ok(()),
    };
    let mut offset = 0;
    while let Some(header) = stream.get(offset..offset + 4) {
        let record = u16::from_le_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let data = stream.get(offset + 4..offset + 4 + length).unwrap_or(&[]);
        offset += 4 + length;
        let u16_at = |at: usize| data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |at: usize| data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        match record {
            // BOF and EOF: a new substream (a sheet) starts or ends.
            0x0809 | 0x000A => {
                check_bounds(bounds.take())?;
            }
            // DIMENSIONS: BIFF8 has 32-bit rows, BIFF5 16-bit ones; the last row and column are exclusive.
            0x0200 => {
                let declared = match length {
                    14 => u32_at(0).zip(u32_at(4)).zip(u16_at(8).zip(u16_at(10))).map(|((r0, r1), (c0, c1))| {
                        (u64::from(r1.saturating_sub(r0)), u64::from(c1.saturating_sub(c0)))
                    }),
                    _ => u16_at(0).zip(u16_at(2)).zip(u16_at(4).zip(u16_at(6))).map(|((r0, r1), (c0, c1))| {
                        (u64::from(r1.saturating_sub(r0)), u64::from(c1.saturating_sub(c0)))
                    }),
                };
                if let Some((rows, cols)) = declared.filter(|(rows, cols)| rows.saturating_mul(*cols) > MAX_XLS_GRID) {
                    return Err(too_large(rows, cols));
                }
            }
            // Cell records calamine keeps: NUMBER, LABEL, RSTRING, BOOLERR, RK, LABELSST,
            // FORMULA, and MULRK (whose last column closes the record).
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 | 0x00BD => {
                if let (Some(row), Some(first_col)) = (u16_at(0), u16_at(2)) {
                    let last_col = if record == 0x00BD {
                        length.checked_sub(2).and_then(u16_at).unwrap_or(first_col)
                    } else {
                        first_col
                    };
                    let (top, bottom, left, right) = bounds.unwrap_or((row, row, first_col, first_col));
                    bounds =
                        Some((top.min(row), bottom.max(row), left.min(first_col), right.max(last_col.max(first_col))));
                }
            }
            _ => {}
        }
    }
    check_bounds(bounds)
}

/// calamine reads an ODS sheet into a dense grid, expanding `number-*-repeated`: refuse a
/// content.xml whose non-empty cells span more than [`MAX_ODS_GRID`] cells on any sheet.
fn check_ods_grid(bytes: &[u8]) -> Result<(), Problem> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Problem::NotAWorkbook { detail: format!("broken zip container: {e}") })?;
    let mut content = String::new();
    archive
        .by_name("content.xml")
        .map_err(|e| Problem::NotAWorkbook { detail: format!("content.xml: {e}") })?
        .take(MAX_UNPACKED_BYTES)
        .read_to_string(&mut content)
        .map_err(|e| Problem::NotAWorkbook { detail: format!("content.xml: {e}") })?;
    match ods_max_grid(&content) {
        grid if grid > MAX_ODS_GRID => Err(Problem::TooLarge { detail: format!("a sheet spans {grid} cells") }),
        _ => Ok(()),
    }
}

/// The largest bounding box (rows × columns) of non-empty cells over the tables of an ODS
/// content.xml, from a light scan of its tags.
fn ods_max_grid(xml: &str) -> u64 {
    let repeat = |tag: &str, attribute: &str| -> u64 {
        tag.find(attribute)
            .and_then(|at| {
                let rest = &tag[at + attribute.len()..];
                let rest = rest.strip_prefix("=\"")?;
                rest.split('"').next()?.parse::<u64>().ok()
            })
            .unwrap_or(1)
    };
    let (mut row, mut col, mut row_repeat) = (0u64, 0u64, 1u64);
    let (mut max_row, mut max_col, mut used) = (0u64, 0u64, false);
    let mut largest = 0u64;
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        let end = rest.find('>').map_or(rest.len(), |e| e + 1);
        let tag = &rest[..end];
        rest = &rest[end..];
        if tag.starts_with("<table:table ") || tag == "<table:table>" {
            (row, max_row, max_col, used) = (0, 0, 0, false);
        } else if tag.starts_with("</table:table>") {
            if used {
                largest = largest.max(max_row.saturating_mul(max_col));
            }
        } else if tag.starts_with("<table:table-row") {
            col = 0;
            row_repeat = repeat(tag, "table:number-rows-repeated");
            if tag.ends_with("/>") {
                row = row.saturating_add(row_repeat);
            }
        } else if tag.starts_with("</table:table-row") {
            row = row.saturating_add(row_repeat);
        } else if tag.starts_with("<table:table-cell") || tag.starts_with("<table:covered-table-cell") {
            let columns = repeat(tag, "table:number-columns-repeated");
            let empty = tag.ends_with("/>") && !tag.contains("office:value-type");
            col = col.saturating_add(columns);
            if !empty {
                used = true;
                max_col = max_col.max(col);
                max_row = max_row.max(row.saturating_add(row_repeat));
            }
        }
    }
    largest
}

/// Reads every worksheet of a workbook into sparse cells, bounded, never panicking.
pub fn read_sheets(bytes: &[u8]) -> Result<Vec<SheetCells>, Problem> {
    let format = sniff(bytes)?;
    match catch_unwind(AssertUnwindSafe(|| read_format(format, bytes))) {
        Ok(result) => result,
        Err(_) => Err(Problem::NotAWorkbook { detail: "the spreadsheet reader failed on this file".into() }),
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
                let mut sheet = SheetCells { name, cells: BTreeMap::new() };
                while let Some(cell) = reader.next_cell_with_formula().map_err(|e| broken(&e))? {
                    let value = match (from_data_ref(&cell.value), &cell.formula) {
                        (Some(value), _) => value,
                        (None, Some(formula)) if !formula.is_empty() => CellValue::FormulaWithoutResult,
                        (None, _) => continue,
                    };
                    insert(&mut sheet, cell.pos, value, &mut budget)?;
                }
                sheets.push(sheet);
            }
        }
        Format::Xlsb => {
            let mut workbook = Xlsb::new(Cursor::new(bytes)).map_err(|e| broken(&e))?;
            for name in worksheet_names(workbook.sheets_metadata()) {
                let mut reader = workbook.worksheet_cells_reader(&name).map_err(|e| broken(&e))?;
                let mut sheet = SheetCells { name, cells: BTreeMap::new() };
                while let Some(cell) = reader.next_cell().map_err(|e| broken(&e))? {
                    if let Some(value) = from_data_ref(cell.get_value()) {
                        insert(&mut sheet, cell.get_position(), value, &mut budget)?;
                    }
                }
                sheets.push(sheet);
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

fn insert(sheet: &mut SheetCells, pos: (u32, u32), value: CellValue, budget: &mut usize) -> Result<(), Problem> {
    if *budget == 0 {
        return Err(Problem::TooLarge { detail: format!("more than {MAX_CELLS} cells") });
    }
    *budget -= 1;
    sheet.cells.insert(pos, value);
    Ok(())
}

fn from_range(name: String, range: &calamine::Range<Data>, budget: &mut usize) -> Result<SheetCells, Problem> {
    let mut sheet = SheetCells { name, cells: BTreeMap::new() };
    let (row0, col0) = range.start().unwrap_or((0, 0));
    for (row, col, data) in range.used_cells() {
        if let Some(value) = from_data(data) {
            let pos = (row0 + row as u32, col0 + col as u32);
            insert(&mut sheet, pos, value, budget)?;
        }
    }
    Ok(sheet)
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
    use super::*;

    #[test]
    fn sniffs_by_bytes() {
        assert_eq!(sniff(b"").map_err(|p| p.code()), Err("not_a_workbook"));
        assert_eq!(sniff(b"a;b;c\n1;2;3\n").map_err(|p| p.code()), Err("not_a_workbook"));
        assert_eq!(sniff(b"PK\x03\x04garbage").map_err(|p| p.code()), Err("not_a_workbook"));
    }

    #[test]
    fn encrypted_workbooks_are_recognised() {
        let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        bytes.extend_from_slice(&[0; 64]);
        bytes.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(sniff(&bytes).map_err(|p| p.code()), Err("password_protected"));
    }

    /// An Excel 97-2003 file whose workbook stream holds the given BIFF records.
    fn xls_with_records(records: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut stream = Vec::new();
        for (record, data) in records {
            stream.extend(record.to_le_bytes());
            stream.extend((data.len() as u16).to_le_bytes());
            stream.extend(data);
        }
        let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        std::io::Write::write_all(&mut file.create_stream("/Workbook").unwrap(), &stream).unwrap();
        file.flush().unwrap();
        file.into_inner().into_inner()
    }

    fn number_at(row: u16, col: u16) -> (u16, Vec<u8>) {
        let mut data = Vec::new();
        data.extend(row.to_le_bytes());
        data.extend(col.to_le_bytes());
        data.extend(0u16.to_le_bytes());
        data.extend(1.0f64.to_le_bytes());
        (0x0203, data)
    }

    #[test]
    fn xls_declaring_or_spanning_a_huge_grid_is_refused_before_calamine() {
        let bof = (0x0809, vec![0u8; 16]);
        let eof = (0x000A, Vec::new());
        let mut dimensions = Vec::new();
        dimensions.extend(0u32.to_le_bytes());
        dimensions.extend(1_000_000u32.to_le_bytes());
        dimensions.extend(0u16.to_le_bytes());
        dimensions.extend(256u16.to_le_bytes());
        dimensions.extend(0u16.to_le_bytes());
        let declared = xls_with_records(&[bof.clone(), (0x0200, dimensions), number_at(0, 0), eof.clone()]);
        assert_eq!(sniff(&declared).map_err(|p| p.code()), Err("too_large"));

        let spanning = xls_with_records(&[bof.clone(), number_at(0, 0), number_at(65_535, 255), eof.clone()]);
        assert_eq!(sniff(&spanning).map_err(|p| p.code()), Err("too_large"));

        let modest = xls_with_records(&[bof, number_at(0, 0), number_at(40, 7), eof]);
        assert_eq!(sniff(&modest), Ok(Format::Xls));
    }

    #[test]
    fn ods_grid_counts_only_used_cells() {
        let xml = r#"<table:table table:name="S"><table:table-row><table:table-cell office:value-type="float"/><table:table-cell table:number-columns-repeated="1000"/></table:table-row><table:table-row table:number-rows-repeated="1048575"><table:table-cell table:number-columns-repeated="1024"/></table:table-row></table:table>"#;
        assert_eq!(ods_max_grid(xml), 1);
        let hostile = r#"<table:table table:name="S"><table:table-row table:number-rows-repeated="1048576"><table:table-cell table:number-columns-repeated="16384" office:value-type="float"/></table:table-row></table:table>"#;
        assert!(ods_max_grid(hostile) > MAX_ODS_GRID);
    }
}
