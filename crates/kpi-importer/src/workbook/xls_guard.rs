//! The `.xls` pre-check: walks the BIFF records of the workbook stream the way calamine will,
//! and refuses a sheet that would make calamine reserve a huge grid.
//!
//! calamine reads every sheet from the offset its BoundSheet8 record gives (`lbPlyPos`), not
//! from where the previous sheet ended, so a sheet can hide inside an unknown record. It then
//! reserves the DIMENSIONS record's grid with wrapping `u32` arithmetic and allocates the dense
//! bounding box of the cells. This walk follows the same offsets and computes the same sizes.

use std::io::{Cursor, Read};

use super::{MAX_FILE_BYTES, MAX_XLS_GRID};
use crate::issues::Problem;

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const BOUND_SHEET: u16 = 0x0085;
/// FILEPASS: the workbook is encrypted with a password.
const FILE_PASS: u16 = 0x002F;
const DIMENSIONS: u16 = 0x0200;
const MULRK: u16 = 0x00BD;
/// Cell records calamine keeps: NUMBER, LABEL, RSTRING, BOOLERR, RK, LABELSST, FORMULA, MULRK.
const CELL_RECORDS: [u16; 8] = [0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, 0x0006, MULRK];

/// One BIFF record: its type and data.
#[derive(Debug, Clone, Copy)]
struct Record<'a> {
    kind: u16,
    data: &'a [u8],
}

/// The records of a stream from an offset, stopping at the first truncated one (calamine
/// fails the file there, so nothing after it is ever allocated).
fn records(stream: &[u8], from: usize) -> impl Iterator<Item = Record<'_>> {
    let mut rest = stream.get(from..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let header = rest.get(..4)?;
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let data = rest.get(4..4 + length)?;
        rest = &rest[4 + length..];
        Some(Record { kind, data })
    })
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Refuses an encrypted `.xls` workbook (a FILEPASS record in its globals), and one any of
/// whose sheets declares or spans more than [`MAX_XLS_GRID`] cells, or whose sheet offsets
/// point outside the stream.
pub(super) fn check_xls_grid(bytes: &[u8]) -> Result<(), Problem> {
    let stream = workbook_stream(bytes)?;
    if records(&stream, 0).take_while(|record| record.kind != EOF).any(|record| record.kind == FILE_PASS) {
        return Err(Problem::PasswordProtected);
    }
    for offset in sheet_offsets(&stream) {
        if offset >= stream.len() {
            let detail = format!("a sheet starts at byte {offset}, beyond the {}-byte workbook stream", stream.len());
            return Err(Problem::NotAWorkbook { detail });
        }
        check_sheet(&stream, offset)?;
    }
    Ok(())
}

/// The `Workbook` (or BIFF5 `Book`) stream of the compound file, at most [`MAX_FILE_BYTES`].
fn workbook_stream(bytes: &[u8]) -> Result<Vec<u8>, Problem> {
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
    Ok(stream)
}

/// The `lbPlyPos` of every BoundSheet8 record of the globals substream.
fn sheet_offsets(stream: &[u8]) -> Vec<usize> {
    records(stream, 0)
        .take_while(|record| record.kind != EOF)
        .filter(|record| record.kind == BOUND_SHEET)
        .filter_map(|record| u32_at(record.data, 0))
        .map(|offset| offset as usize)
        .collect()
}

/// Walks one sheet's substream as calamine does: its first BOF is its own, nested substreams
/// (embedded charts) are skipped, and its EOF ends it.
fn check_sheet(stream: &[u8], offset: usize) -> Result<(), Problem> {
    let mut bounds = CellBounds::default();
    let (mut seen_bof, mut depth) = (false, 0usize);
    for record in records(stream, offset) {
        if depth > 0 {
            match record.kind {
                BOF => depth += 1,
                EOF => depth -= 1,
                _ => {}
            }
            continue;
        }
        match record.kind {
            BOF if seen_bof => depth += 1,
            BOF => seen_bof = true,
            EOF => break,
            DIMENSIONS => {
                let (rows, cols) = declared_grid(record.data);
                if rows.saturating_mul(cols) > MAX_XLS_GRID {
                    return Err(too_large(rows, cols));
                }
            }
            kind if CELL_RECORDS.contains(&kind) => bounds.add(kind, record.data),
            _ => {}
        }
    }
    bounds.check()
}

fn too_large(rows: u64, cols: u64) -> Problem {
    Problem::TooLarge { detail: format!("a sheet spans {rows} × {cols} cells") }
}

/// The (rows, columns) calamine reserves for a DIMENSIONS record, with its exact rules: BIFF8
/// has 32-bit rows, BIFF5 16-bit ones; the last row and column are exclusive; a first column
/// over 255 or past the last one counts as 0; and the differences wrap as `u32`, so inverted
/// bounds declare about four billion rows. Unparsable records reserve nothing.
fn declared_grid(data: &[u8]) -> (u64, u64) {
    let fields = match data.len() {
        10 => u16_at(data, 0)
            .zip(u16_at(data, 2))
            .zip(u16_at(data, 4).zip(u16_at(data, 6)))
            .map(|((rf, rl), (cf, cl))| (u32::from(rf), u32::from(rl), u32::from(cf), u32::from(cl))),
        14 | 16 => u32_at(data, 0)
            .zip(u32_at(data, 4))
            .zip(u16_at(data, 8).zip(u16_at(data, 10)))
            .map(|((rf, rl), (cf, cl))| (rf, rl, u32::from(cf), u32::from(cl))),
        _ => None,
    };
    let Some((first_row, last_row, first_col, last_col)) = fields else { return (0, 0) };
    let first_col = if first_col > 0xFF || last_col < first_col { 0 } else { first_col };
    if last_row == 0 || last_col == 0 {
        return (1, 1);
    }
    let span = |first: u32, last_exclusive: u32| u64::from((last_exclusive - 1).wrapping_sub(first).wrapping_add(1));
    (span(first_row, last_row), span(first_col, last_col))
}

/// The bounding box of a substream's cells, which calamine allocates densely.
#[derive(Debug, Default)]
struct CellBounds {
    /// (first row, last row, first column, last column).
    bounds: Option<(u16, u16, u16, u16)>,
}

impl CellBounds {
    fn add(&mut self, kind: u16, data: &[u8]) {
        let (Some(row), Some(first_col)) = (u16_at(data, 0), u16_at(data, 2)) else { return };
        // MULRK's last column closes the record.
        let last_col = match kind {
            MULRK => data.len().checked_sub(2).and_then(|at| u16_at(data, at)).unwrap_or(first_col),
            _ => first_col,
        };
        let (top, bottom, left, right) = self.bounds.unwrap_or((row, row, first_col, first_col));
        self.bounds = Some((top.min(row), bottom.max(row), left.min(first_col), right.max(last_col.max(first_col))));
    }

    fn check(&self) -> Result<(), Problem> {
        let Some((top, bottom, left, right)) = self.bounds else { return Ok(()) };
        let (rows, cols) = (u64::from(bottom - top) + 1, u64::from(right - left) + 1);
        if rows * cols > MAX_XLS_GRID { Err(too_large(rows, cols)) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::dimensions as dimensions_biff8;

    #[test]
    fn declared_grids_follow_calamines_arithmetic() {
        assert_eq!(declared_grid(&dimensions_biff8(0, 40, 0, 8)), (40, 8));
        assert_eq!(declared_grid(&dimensions_biff8(0, 0, 0, 0)), (1, 1));
        // Inverted rows wrap to about four billion.
        assert_eq!(declared_grid(&dimensions_biff8(10, 5, 0, 8)).0, u64::from(u32::MAX) - 4);
        // A first column over 255 counts as 0, so the last column alone sets the width.
        assert_eq!(declared_grid(&dimensions_biff8(0, 10, 300, 200)), (10, 200));
        assert_eq!(declared_grid(&[0; 7]), (0, 0));
    }
}
