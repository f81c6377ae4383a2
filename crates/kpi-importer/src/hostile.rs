//! Workbook builders for the tests and the fuzz run: the same cells written as `.xls` (BIFF8
//! records in a compound file) and `.ods` (a zip with `content.xml`), zip rewriting, and the
//! hostile files the reader must reject, each built exactly as the attack it stands for.
//!
//! Only compiled with the `test-support` feature: nothing here runs in production.

use std::io::{Cursor, Read, Write};

use crate::workbook::{CellValue, SheetCells};

/// BIFF8 record types the builders write.
pub mod biff {
    pub const BOF: u16 = 0x0809;
    pub const EOF: u16 = 0x000A;
    pub const CODEPAGE: u16 = 0x0042;
    pub const BOUND_SHEET: u16 = 0x0085;
    pub const DIMENSIONS: u16 = 0x0200;
    pub const NUMBER: u16 = 0x0203;
    pub const LABEL: u16 = 0x0204;
    pub const BOOLERR: u16 = 0x0205;
}

/// A file the reader must reject, and the code it must be rejected with.
#[derive(Debug, Clone)]
pub struct HostileFile {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub code: &'static str,
}

/// One BIFF record: type, length, data.
pub fn record(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 4);
    out.extend(kind.to_le_bytes());
    out.extend(u16::try_from(data.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend(data);
    out
}

/// A BOF record's data: BIFF8, of a workbook globals (`0x0005`) or worksheet (`0x0010`) substream.
pub fn bof(substream: u16) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend(0x0600u16.to_le_bytes());
    data.extend(substream.to_le_bytes());
    data.extend([0u8; 12]);
    data
}

/// A BIFF8 DIMENSIONS record's data: first row, last row + 1, first column, last column + 1.
pub fn dimensions(first_row: u32, last_row: u32, first_col: u16, last_col: u16) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend(first_row.to_le_bytes());
    data.extend(last_row.to_le_bytes());
    data.extend(first_col.to_le_bytes());
    data.extend(last_col.to_le_bytes());
    data.extend(0u16.to_le_bytes());
    data
}

fn unicode(text: &str, length_bytes: usize) -> Vec<u8> {
    let units: Vec<u16> = text.encode_utf16().take(255).collect();
    let mut data = Vec::new();
    let count = units.len() as u16;
    data.extend(&count.to_le_bytes()[..length_bytes]);
    data.push(1);
    data.extend(units.iter().flat_map(|unit| unit.to_le_bytes()));
    data
}

fn bound_sheet(offset: u32, name: &str) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend(offset.to_le_bytes());
    data.extend([0u8, 0u8]);
    data.extend(unicode(name, 1));
    data
}

/// The record of one cell; dates become their serial, like any number.
pub fn cell_record(row: u16, col: u16, value: &CellValue) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    data.extend(row.to_le_bytes());
    data.extend(col.to_le_bytes());
    data.extend(0u16.to_le_bytes());
    let kind = match value {
        CellValue::Number(number) | CellValue::Date { serial: number, .. } => {
            data.extend(number.to_le_bytes());
            biff::NUMBER
        }
        CellValue::Text(text) | CellValue::Error(text) => {
            data.extend(unicode(text, 2));
            biff::LABEL
        }
        CellValue::Bool(flag) => {
            data.extend([u8::from(*flag), 0]);
            biff::BOOLERR
        }
        CellValue::FormulaWithoutResult => return None,
    };
    Some(record(kind, &data))
}

/// A workbook stream: the globals (with each sheet's BoundSheet8 pointing at its substream),
/// then each sheet's substream.
pub fn xls_stream(sheets: &[SheetCells]) -> Vec<u8> {
    let bodies: Vec<Vec<u8>> = sheets.iter().map(sheet_substream).collect();
    let names_len: usize = sheets.iter().map(|s| record(biff::BOUND_SHEET, &bound_sheet(0, &s.name)).len()).sum();
    let head = record(biff::BOF, &bof(0x0005)).len() + record(biff::CODEPAGE, &1200u16.to_le_bytes()).len();
    let mut offset = (head + names_len + record(biff::EOF, &[]).len()) as u32;
    let mut stream = record(biff::BOF, &bof(0x0005));
    stream.extend(record(biff::CODEPAGE, &1200u16.to_le_bytes()));
    for (sheet, body) in sheets.iter().zip(&bodies) {
        stream.extend(record(biff::BOUND_SHEET, &bound_sheet(offset, &sheet.name)));
        offset += body.len() as u32;
    }
    stream.extend(record(biff::EOF, &[]));
    for body in bodies {
        stream.extend(body);
    }
    stream
}

fn sheet_substream(sheet: &SheetCells) -> Vec<u8> {
    let last_row = sheet.iter().map(|((row, _), _)| row + 1).max().unwrap_or(0);
    let last_col = sheet.iter().map(|((_, col), _)| col + 1).max().unwrap_or(0);
    let mut body = record(biff::BOF, &bof(0x0010));
    body.extend(record(biff::DIMENSIONS, &dimensions(0, last_row, 0, last_col as u16)));
    for ((row, col), value) in sheet.iter() {
        body.extend(cell_record(row as u16, col as u16, value).unwrap_or_default());
    }
    body.extend(record(biff::EOF, &[]));
    body
}

/// A compound file holding `stream` as its `Workbook` stream: version 3 (512-byte sectors),
/// as Excel writes `.xls`, which calamine reads whatever the stream's size.
pub fn xls_of(stream: &[u8]) -> Vec<u8> {
    let build = || -> std::io::Result<Vec<u8>> {
        let mut file = cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))?;
        file.create_stream("/Workbook")?.write_all(stream)?;
        file.flush()?;
        Ok(file.into_inner().into_inner())
    };
    build().unwrap_or_default()
}

/// The sheets as an `.xls` workbook.
pub fn xls_from_cells(sheets: &[SheetCells]) -> Vec<u8> {
    xls_of(&xls_stream(sheets))
}

/// The `Workbook` stream of an `.xls` file, if it has one.
pub fn xls_stream_of(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes)).ok()?;
    let mut stream = Vec::new();
    file.open_stream("/Workbook").ok()?.read_to_end(&mut stream).ok()?;
    Some(stream)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn ods_cell(value: &CellValue) -> String {
    let (kind, attribute, text) = match value {
        CellValue::Number(n) | CellValue::Date { serial: n, .. } => {
            ("float", format!(" office:value=\"{n}\""), n.to_string())
        }
        CellValue::Bool(flag) => ("boolean", format!(" office:boolean-value=\"{flag}\""), flag.to_string()),
        CellValue::Text(text) | CellValue::Error(text) => ("string", String::new(), text.clone()),
        CellValue::FormulaWithoutResult => return "<table:table-cell/>".into(),
    };
    format!(
        "<table:table-cell office:value-type=\"{kind}\"{attribute}><text:p>{}</text:p></table:table-cell>",
        escape(&text)
    )
}

fn ods_table(sheet: &SheetCells) -> String {
    let mut xml = format!("<table:table table:name=\"{}\">", escape(&sheet.name));
    let mut next_row = 0;
    let rows: std::collections::BTreeSet<u32> = sheet.iter().map(|((row, _), _)| row).collect();
    for row in rows {
        if row > next_row {
            xml += &format!(
                "<table:table-row table:number-rows-repeated=\"{}\"><table:table-cell/></table:table-row>",
                row - next_row
            );
        }
        xml += "<table:table-row>";
        let mut next_col = 0;
        for (col, value) in sheet.row(row) {
            if col > next_col {
                xml += &format!("<table:table-cell table:number-columns-repeated=\"{}\"/>", col - next_col);
            }
            xml += &ods_cell(value);
            next_col = col + 1;
        }
        xml += "</table:table-row>";
        next_row = row + 1;
    }
    xml + "</table:table>"
}

/// An ODS `content.xml` around the given tables.
pub fn ods_content(tables: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content \
         xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\">\
         <office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"
    )
}

const ODS_MANIFEST: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest \
    xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\">\
    <manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/>\
    <manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/></manifest:manifest>";

/// An `.ods` file with the given `content.xml`.
pub fn ods_of(content: &str) -> Vec<u8> {
    zip_of(&[
        ("mimetype".into(), b"application/vnd.oasis.opendocument.spreadsheet".to_vec()),
        ("META-INF/manifest.xml".into(), ODS_MANIFEST.as_bytes().to_vec()),
        ("content.xml".into(), content.as_bytes().to_vec()),
    ])
}

/// The sheets as an `.ods` workbook.
pub fn ods_from_cells(sheets: &[SheetCells]) -> Vec<u8> {
    ods_of(&ods_content(&sheets.iter().map(ods_table).collect::<String>()))
}

/// A zip of named entries, deflated.
pub fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let build = || -> zip::result::ZipResult<Vec<u8>> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            writer.start_file(name.as_str(), options)?;
            writer.write_all(data)?;
        }
        Ok(writer.finish()?.into_inner())
    };
    build().unwrap_or_default()
}

/// The entries of a zip, inflated (for rewriting test files, never for reading input).
pub fn zip_entries(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).ok()?;
        let name = entry.name().ok()?.into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).ok()?;
        entries.push((name, data));
    }
    Some(entries)
}

/// The zip with one entry's text rewritten.
pub fn rewrite_entry(bytes: &[u8], name: &str, edit: impl FnOnce(&str) -> String) -> Option<Vec<u8>> {
    let mut entries = zip_entries(bytes)?;
    let (_, data) = entries.iter_mut().find(|(entry, _)| entry == name)?;
    *data = edit(std::str::from_utf8(data).ok()?).into_bytes();
    Some(zip_of(&entries))
}

fn sheet_with_a_number() -> Vec<u8> {
    let mut body = record(biff::BOF, &bof(0x0010));
    body.extend(cell_record(0, 0, &CellValue::Number(1.0)).unwrap_or_default());
    body
}

/// An `.xls` whose only sheet hides inside an unknown record of the globals: a walker that
/// reads records in order never sees it, but calamine parses from `lbPlyPos`. The sheet
/// declares 2,000,000 × 256 cells.
fn xls_sheet_hidden_in_an_unknown_record() -> Vec<u8> {
    let mut hidden = record(biff::BOF, &bof(0x0010));
    hidden.extend(record(biff::DIMENSIONS, &dimensions(0, 2_000_000, 0, 256)));
    hidden.extend(cell_record(0, 0, &CellValue::Number(1.0)).unwrap_or_default());
    hidden.extend(record(biff::EOF, &[]));
    let mut stream = record(biff::BOF, &bof(0x0005));
    let sheet_record_len = record(biff::BOUND_SHEET, &bound_sheet(0, "Sheet1")).len();
    // The hidden BOF starts right after the unknown record's own 4-byte header.
    let offset = stream.len() + sheet_record_len + 4;
    stream.extend(record(biff::BOUND_SHEET, &bound_sheet(offset as u32, "Sheet1")));
    stream.extend(record(0x1234, &hidden));
    stream.extend(record(biff::EOF, &[]));
    xls_of(&stream)
}

/// An `.xls` sheet whose DIMENSIONS are `first`..`last` rows and columns (calamine wraps them).
fn xls_with_dimensions(first_row: u32, last_row: u32, first_col: u16, last_col: u16) -> Vec<u8> {
    let mut sheet = sheet_with_a_number();
    sheet.extend(record(biff::DIMENSIONS, &dimensions(first_row, last_row, first_col, last_col)));
    sheet.extend(record(biff::EOF, &[]));
    let mut stream = record(biff::BOF, &bof(0x0005));
    let offset = stream.len() + record(biff::BOUND_SHEET, &bound_sheet(0, "Sheet1")).len() + 4;
    stream.extend(record(biff::BOUND_SHEET, &bound_sheet(offset as u32, "Sheet1")));
    stream.extend(record(biff::EOF, &[]));
    stream.extend(sheet);
    xls_of(&stream)
}

/// The parts of a one-sheet `.xlsx` with shared strings.
fn xlsx_parts(sheet_xml: &str, shared_strings: &str) -> Vec<(String, Vec<u8>)> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let parts = [
        ("[Content_Types].xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/><Override PartName=\"/xl/sharedStrings.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml\"/></Types>".to_owned()),
        ("_rels/.rels", format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>")),
        ("xl/workbook.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets><sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>")),
        ("xl/_rels/workbook.xml.rels", format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"{REL}/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Type=\"{REL}/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>")),
        ("xl/worksheets/sheet1.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"{MAIN}\"><sheetData>{sheet_xml}</sheetData></worksheet>")),
        ("xl/sharedStrings.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{shared_strings}")),
    ];
    parts.into_iter().map(|(name, xml)| (name.to_owned(), xml.into_bytes())).collect()
}

/// An `.xlsx` whose shared-string table declares `uniqueCount="2147483647"`.
fn xlsx_huge_shared_string_count() -> Vec<u8> {
    let sheet = "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row>";
    let strings = "<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"1\" uniqueCount=\"2147483647\"><si><t>x</t></si></sst>";
    zip_of(&xlsx_parts(sheet, strings))
}

/// An `.ods` whose repeats are written with single quotes and spaces around `=` (legal XML):
/// 6,000 rows of 6,000 number cells, in a few hundred bytes.
fn ods_quoted_repeats() -> Vec<u8> {
    let row = "<table:table-row table:number-rows-repeated = '6000'><table:table-cell table:number-columns-repeated= \"6000\" office:value-type='float' office:value='1'><text:p>1</text:p></table:table-cell></table:table-row>";
    ods_of(&ods_content(&format!("<table:table table:name='Sheet1'>{row}</table:table>")))
}

/// A real report with one cell reference moved to `A99999999999` (row 1.2 billion once
/// calamine wraps it to 32 bits).
fn xlsx_cell_far_beyond_the_grid(report: &[u8]) -> Vec<u8> {
    let moved = rewrite_entry(report, "xl/worksheets/sheet1.xml", |xml| {
        let Some(start) = xml.find("<c r=\"").map(|at| at + 6) else { return xml.to_owned() };
        let end = xml[start..].find('"').map_or(start, |len| start + len);
        format!("{}A99999999999{}", &xml[..start], &xml[end..])
    });
    moved.unwrap_or_default()
}

/// Every hostile class of issue #12, given a valid `.xlsx` report to corrupt.
pub fn hostile_files(report: &[u8]) -> Vec<HostileFile> {
    vec![
        HostileFile {
            name: "xls-sheet-hidden-in-unknown-record.xls",
            bytes: xls_sheet_hidden_in_an_unknown_record(),
            code: "too_large",
        },
        HostileFile { name: "xls-inverted-dimensions.xls", bytes: xls_with_dimensions(10, 5, 0, 8), code: "too_large" },
        HostileFile {
            name: "xls-first-column-over-255.xls",
            bytes: xls_with_dimensions(0, 65_536, 300, 200),
            code: "too_large",
        },
        HostileFile {
            name: "xlsx-unique-count-2147483647.xlsx",
            bytes: xlsx_huge_shared_string_count(),
            code: "too_large",
        },
        HostileFile { name: "ods-quoted-repeats.ods", bytes: ods_quoted_repeats(), code: "too_large" },
        HostileFile {
            name: "xlsx-cell-A99999999999.xlsx",
            bytes: xlsx_cell_far_beyond_the_grid(report),
            code: "cell_out_of_bounds",
        },
    ]
}

/// An `.xls` that passes every pre-check yet makes calamine reserve about `cells` cells
/// (its DIMENSIONS declare them): for proving a worker's memory limit, not a guard.
pub fn xls_reserving(cells: u32) -> Vec<u8> {
    xls_with_dimensions(0, cells / 256, 0, 256)
}

/// A stand-in worker that completes the handshake, then never answers: it sleeps for a
/// duration made of `marker` digits, so [`processes_running`] can find it.
pub fn silent_worker(marker: u32) -> crate::isolation::WorkerCommand {
    // The `ready` frame: length 7, "KPIW", version 1, limits applied.
    let script = format!("printf '\\007\\000\\000\\000KPIW\\001\\000\\001'; exec sleep 86400.{marker}");
    crate::isolation::WorkerCommand { program: "/bin/sh".into(), args: vec!["-c".into(), script.into()] }
}

/// How many processes run a [`silent_worker`] with this marker (Linux `/proc`).
pub fn processes_running(marker: u32) -> usize {
    let needle = format!("86400.{marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(&needle))
        .count()
}
