//! The ODS pre-check: reads `content.xml` with a real XML tokenizer (quick-xml, calamine's
//! own) and refuses a sheet whose repeated rows and columns would expand, in calamine's dense
//! grid, beyond [`MAX_ODS_GRID`] cells.
//!
//! Attributes are parsed as XML defines them (either quote, spaces around `=`, entities), so
//! `table:number-rows-repeated = '6000'` counts as 6,000 rows here exactly as it does in
//! calamine.

use quick_xml::events::{BytesStart, Event};

use super::{MAX_COLUMNS, MAX_ODS_GRID, MAX_ROWS};
use crate::issues::Problem;

/// Refuses an ODS file whose tables, in its `content.xml` (already inflated within the
/// limits by the zip pre-check), would expand beyond [`MAX_ODS_GRID`] cells.
pub(super) fn check_ods_grid(content: &[u8]) -> Result<(), Problem> {
    match ods_max_grid(content) {
        Ok(grid) if grid > MAX_ODS_GRID => Err(Problem::TooLarge { detail: format!("a sheet spans {grid} cells") }),
        Ok(_) => Ok(()),
        Err(detail) => Err(Problem::NotAWorkbook { detail: format!("content.xml: {detail}") }),
    }
}

/// A repeat attribute (`table:number-rows-repeated`, `table:number-columns-repeated`), 1 when
/// absent; a value calamine could not parse either is refused.
fn repeat(tag: &BytesStart<'_>, name: &str) -> Result<u64, String> {
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        if attribute.key.as_ref() == name {
            let value = quick_xml::escape::unescape(&attribute.value).map_err(|e| e.to_string())?;
            return value.trim().parse::<u64>().map_err(|_| format!("bad repeat count \"{value}\""));
        }
    }
    Ok(1)
}

fn has_attribute(tag: &BytesStart<'_>, names: &[&str]) -> bool {
    tag.attributes().flatten().any(|attribute| names.contains(&attribute.key.as_ref()))
}

/// What calamine materialises for one table: the bounding box of non-empty cells over the
/// expanded rows and columns, and the cells it pushes row by row before compacting.
#[derive(Debug, Default)]
struct TableExtent {
    /// Expanded rows so far (capped as calamine caps them).
    rows: u64,
    /// (first row, last row, first column, last column) of the non-empty cells.
    used: Option<(u64, u64, u64, u64)>,
    /// Cells pushed by the rows read so far (the dense rows before compaction).
    pushed: u64,
}

impl TableExtent {
    fn grid(&self) -> u64 {
        let Some((top, bottom, left, right)) = self.used else { return 0 };
        (bottom - top + 1).saturating_mul(right - left + 1).max(self.pushed)
    }
}

/// The row being read: its repeat count, the next column, and its non-empty columns.
#[derive(Debug, Default)]
struct RowExtent {
    repeats: u64,
    col: u64,
    used: Option<(u64, u64)>,
}

/// The cell being read: its columns and whether it holds anything.
#[derive(Debug, Default)]
struct CellExtent {
    repeats: u64,
    non_empty: bool,
}

/// The largest expanded grid over the tables of an ODS `content.xml`, or why it is not XML.
fn ods_max_grid(xml: &[u8]) -> Result<u64, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().expand_empty_elements = true;
    let (mut table, mut row, mut cell) = (TableExtent::default(), None::<RowExtent>, None::<CellExtent>);
    let mut largest = 0u64;
    let mut in_table = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf).map_err(|e| e.to_string())? {
            Event::Start(tag) => match tag.name().as_ref() {
                "table:table" => {
                    table = TableExtent::default();
                    in_table = true;
                }
                "table:table-row" => {
                    let repeats = repeat(&tag, "table:number-rows-repeated")?;
                    let repeats = repeats.min(MAX_ROWS.saturating_sub(table.rows));
                    row = Some(RowExtent { repeats, ..RowExtent::default() });
                }
                "table:table-cell" | "table:covered-table-cell" => {
                    let repeats = repeat(&tag, "table:number-columns-repeated")?;
                    let non_empty = has_attribute(&tag, &["office:value-type", "table:formula"]);
                    cell = Some(CellExtent { repeats, non_empty });
                }
                _ => {}
            },
            Event::Text(text) => {
                if let Some(cell) = cell.as_mut() {
                    cell.non_empty |= text.chars().any(|c| !c.is_whitespace());
                }
            }
            Event::End(tag) => match tag.name().as_ref() {
                "table:table-cell" | "table:covered-table-cell" => {
                    if let (Some(done), Some(row)) = (cell.take(), row.as_mut()) {
                        let repeats = done.repeats.min(MAX_COLUMNS.saturating_sub(row.col));
                        if done.non_empty && repeats > 0 {
                            let (left, right) = row.used.unwrap_or((row.col, row.col));
                            row.used = Some((left.min(row.col), right.max(row.col + repeats - 1)));
                        }
                        row.col += repeats;
                    }
                }
                "table:table-row" => {
                    if let Some(done) = row.take() {
                        if let Some((left, right)) = done.used {
                            table.pushed = table.pushed.saturating_add(right + 1);
                            let (top, bottom) = (table.rows, table.rows + done.repeats.max(1) - 1);
                            let (t, b, l, r) = table.used.unwrap_or((top, bottom, left, right));
                            table.used = Some((t.min(top), b.max(bottom), l.min(left), r.max(right)));
                        }
                        table.rows = table.rows.saturating_add(done.repeats);
                    }
                }
                "table:table" => {
                    largest = largest.max(table.grid());
                    in_table = false;
                }
                _ => {}
            },
            // calamine reads a table until its end tag, and spins forever at the end of the
            // input instead: a truncated table never reaches it.
            Event::Eof if in_table => return Err("the sheet's XML ends inside a table: the file is truncated".into()),
            Event::Eof => return Ok(largest),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &str) -> Vec<u8> {
        format!("<office:spreadsheet><table:table table:name=\"S\">{rows}</table:table></office:spreadsheet>")
            .into_bytes()
    }

    #[test]
    fn only_used_cells_count() {
        let xml = table(
            r#"<table:table-row><table:table-cell office:value-type="float"/><table:table-cell table:number-columns-repeated="1000"/></table:table-row><table:table-row table:number-rows-repeated="1048575"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>"#,
        );
        assert_eq!(ods_max_grid(&xml), Ok(1));
    }

    #[test]
    fn repeats_are_read_whatever_the_quoting() {
        for quoted in [r#"="6000""#, "='6000'", r#" = "6000""#, "= '6000' "] {
            let xml = table(&format!(
                r#"<table:table-row table:number-rows-repeated{quoted}><table:table-cell table:number-columns-repeated{quoted}><text:p>x</text:p></table:table-cell></table:table-row>"#
            ));
            assert_eq!(ods_max_grid(&xml), Ok(36_000_000), "{quoted}");
        }
    }

    #[test]
    fn repeats_are_capped_as_calamine_caps_them() {
        let xml = table(
            r#"<table:table-row table:number-rows-repeated="99999999999"><table:table-cell table:number-columns-repeated="99999999999" office:value-type="float"/></table:table-row>"#,
        );
        assert_eq!(ods_max_grid(&xml), Ok(MAX_ROWS * MAX_COLUMNS));
        assert!(ods_max_grid(b"<table:table-row table:number-rows-repeated='x'>").is_err());
    }

    #[test]
    fn a_table_cut_short_is_refused() {
        let whole = table("<table:table-row><table:table-cell office:value-type=\"float\"/></table:table-row>");
        assert!(ods_max_grid(&whole).is_ok());
        let cut = &whole[..whole.len() - "</table:table></office:spreadsheet>".len()];
        let refused = ods_max_grid(cut).err().unwrap_or_default();
        assert!(refused.contains("truncated"), "{refused}");
    }
}
