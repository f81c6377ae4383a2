//! Format detection and the zip pre-checks: which workbook format the bytes are (never the
//! name), and whether a zip container is safe to hand to calamine. Every entry is inflated
//! for real, within limits, so a zip bomb is refused in a fraction of a second, and the
//! counts calamine reserves memory for are bounded before it reads them. The inflated
//! entries are then packed again without compression for calamine, so no entry is inflated
//! twice (inflating was a fifth of calamine's own time on a typical report). Parts no cell
//! value depends on (the package's properties, its content types, the theme) are left out
//! unread.

use std::borrow::Cow;
use std::io::{Cursor, Read, Write};

use super::ods_guard::check_ods_grid;
use super::xls_guard::check_xls_grid;
use super::{Format, MAX_CELLS, MAX_FILE_BYTES, MAX_RATIO, MAX_UNPACKED_BYTES};
use crate::issues::Problem;

/// Entries smaller than this are not ratio-checked (tiny XML compresses very well).
const RATIO_CHECK_FROM: u64 = 1024 * 1024;
/// Most entries a workbook zip may hold.
const MAX_ENTRIES: usize = 2_000;
/// How much of a shared-strings part is kept to read its root element's counts.
const SST_HEAD_BYTES: u64 = 4096;
/// How much of the package relationships (`_rels/.rels`) is kept to find the workbook part.
const RELS_HEAD_BYTES: u64 = 64 * 1024;

/// A workbook that passed the pre-checks: its format and the bytes calamine is to read.
#[derive(Debug)]
pub struct Sniffed<'a> {
    pub format: Format,
    /// A zip container's entries, already inflated and checked, packed without compression;
    /// the bytes as given for `.xls`, or when repacking failed.
    pub bytes: Cow<'a, [u8]>,
}

/// Detects the format from the bytes and checks zip containers, before any parser runs.
pub fn sniff(bytes: &[u8]) -> Result<Sniffed<'_>, Problem> {
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
        return Ok(Sniffed { format: Format::Xls, bytes: Cow::Borrowed(bytes) });
    }
    let head = &bytes[..bytes.len().min(512)];
    let detail = if std::str::from_utf8(head).is_ok() || head.iter().all(|b| b.is_ascii()) {
        "plain text (CSV or HTML?), not a spreadsheet"
    } else {
        "unknown file format"
    };
    Err(Problem::NotAWorkbook { detail: detail.into() })
}

/// The last component of a zip entry's name, whichever separator its writer used.
fn part_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// A zip entry's name as a package part name: `/` separators (some Windows tools write `\`),
/// no leading `/`, lowercase (parts are matched case-insensitively, as calamine matches them).
fn normalized(name: &str) -> String {
    name.replace('\\', "/").trim_start_matches('/').to_ascii_lowercase()
}

/// Whether no cell value depends on the part (a [`normalized`] name): the package's document
/// properties (`docProps/`, which calamine reads only when asked for them), its content types
/// (never read), and the theme (`theme/theme1.xml` beside the workbook part: calamine
/// resolves only colours from it, and falls back to the default theme when it is missing).
/// They are left out, neither inflated nor handed on: on a typical report, four of ten
/// entries and two fifths of the inflated bytes, and a bomb there costs nothing.
fn not_needed(part: &str) -> bool {
    let theme = part == "theme/theme1.xml" || part.ends_with("/theme/theme1.xml");
    part.starts_with("docprops/") || part == "[content_types].xml" || theme
}

/// The target of the package's `officeDocument` relationship (the workbook part), if the
/// relationships say.
fn office_document(rels: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(rels);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf).ok()? {
            quick_xml::events::Event::Start(tag) | quick_xml::events::Event::Empty(tag)
                if tag.local_name().as_ref() == "Relationship" =>
            {
                let attribute = |wanted: &str| {
                    tag.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == wanted)
                        .and_then(|a| quick_xml::escape::unescape(&a.value).ok().map(|v| v.into_owned()))
                };
                if attribute("Type").is_some_and(|t| t.ends_with("/relationships/officeDocument")) {
                    return attribute("Target").map(|target| normalized(&target));
                }
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// The first `length` bytes of `data`, or all of it.
fn head(data: &[u8], length: u64) -> &[u8] {
    &data[..data.len().min(usize::try_from(length).unwrap_or(usize::MAX))]
}

/// The entries packed again, uncompressed, in their order and under their names; `None` when
/// the writer refuses one (a name given twice, say), and calamine then reads the original.
fn stored_zip(entries: &[(String, Vec<u8>)], total: u64) -> Option<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let capacity = usize::try_from(total).ok()?.saturating_add(entries.len().saturating_mul(128));
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(capacity)));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        writer.start_file(name.as_str(), options).ok()?;
        writer.write_all(data).ok()?;
    }
    writer.finish().ok().map(Cursor::into_inner)
}

/// calamine reserves the shared-string table's `uniqueCount` before reading a string; refuse a
/// table whose `uniqueCount` or `count` exceeds [`MAX_CELLS`] (each string is a cell's).
fn check_shared_string_counts(name: &str, head: &[u8]) -> Result<(), Problem> {
    let mut reader = quick_xml::Reader::from_reader(head);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(tag) | quick_xml::events::Event::Empty(tag))
                if tag.local_name().as_ref() == "sst" =>
            {
                for attribute in tag.attributes().flatten() {
                    let key = attribute.key.local_name();
                    if key.as_ref() != "uniqueCount" && key.as_ref() != "count" {
                        continue;
                    }
                    let value =
                        quick_xml::escape::unescape(&attribute.value).map(|v| v.trim().to_owned()).unwrap_or_default();
                    // A count that is not a number is ignored by calamine too.
                    let fits = value.parse::<u64>().map_or(true, |n| n <= MAX_CELLS as u64);
                    if !fits {
                        let attribute = key.as_ref();
                        let detail = format!("{name} declares {attribute}=\"{value}\" shared strings");
                        return Err(Problem::TooLarge { detail });
                    }
                }
                return Ok(());
            }
            // A whole part without a root is broken, and calamine reserves nothing for it; a
            // root pushed past the head (by a long comment, say) could still be read, so refuse.
            Ok(quick_xml::events::Event::Eof) | Err(_) if (head.len() as u64) < SST_HEAD_BYTES => return Ok(()),
            Ok(quick_xml::events::Event::Eof) | Err(_) => {
                let detail = format!("{name} has no root element in its first {SST_HEAD_BYTES} bytes");
                return Err(Problem::NotAWorkbook { detail });
            }
            Ok(_) => {}
        }
    }
}

/// Inflates every entry of a zip within the limits, tells which workbook format it is, and
/// packs the inflated entries for calamine.
fn sniff_zip(bytes: &[u8]) -> Result<Sniffed<'_>, Problem> {
    let not_a_workbook = |detail: String| Problem::NotAWorkbook { detail };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| not_a_workbook(format!("broken zip container: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(Problem::TooLarge { detail: format!("{} zip entries", archive.len()) });
    }
    let mut total: u64 = 0;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(archive.len());
    let mut mimetype = String::new();
    let mut workbook_part = None;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| not_a_workbook(format!("broken zip entry: {e}")))?;
        let name = entry.name().map_err(|e| not_a_workbook(format!("broken zip entry name: {e}")))?.into_owned();
        let part = normalized(&name);
        if not_needed(&part) {
            continue;
        }
        let declared = entry.size();
        let compressed = entry.compressed_size().max(1);
        if declared > MAX_UNPACKED_BYTES || total.saturating_add(declared) > MAX_UNPACKED_BYTES {
            return Err(Problem::TooLarge { detail: format!("{name} declares {declared} bytes") });
        }
        if declared > RATIO_CHECK_FROM && declared / compressed > MAX_RATIO {
            return Err(Problem::TooLarge { detail: format!("{name} expands {}×", declared / compressed) });
        }
        // Inflate for real: the directory may lie. The buffer grows as bytes really arrive,
        // from a reserve no larger than an entry that needs no ratio check.
        let budget = MAX_UNPACKED_BYTES - total;
        let mut data = Vec::with_capacity(usize::try_from(declared.min(RATIO_CHECK_FROM)).unwrap_or(0));
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(|e| not_a_workbook(format!("broken zip entry {name}: {e}")))?;
        let actual = data.len() as u64;
        if actual > budget || actual > declared.saturating_add(4096) {
            return Err(Problem::TooLarge { detail: format!("{name} inflates beyond its declared size") });
        }
        if actual > RATIO_CHECK_FROM && actual / compressed > MAX_RATIO {
            return Err(Problem::TooLarge { detail: format!("{name} expands {}×", actual / compressed) });
        }
        if name == "mimetype" {
            mimetype = String::from_utf8_lossy(head(&data, SST_HEAD_BYTES)).into_owned();
        }
        if part == "_rels/.rels" {
            workbook_part = office_document(head(&data, RELS_HEAD_BYTES));
        }
        if part_name(&name).eq_ignore_ascii_case("sharedStrings.xml") {
            check_shared_string_counts(&name, head(&data, SST_HEAD_BYTES))?;
        }
        total += actual;
        entries.push((name, data));
    }
    let has = |wanted: &str| entries.iter().any(|(n, _)| normalized(n) == wanted);
    // The package relationships say where the workbook is; `xl/` is only the usual place.
    let workbook = workbook_part.filter(|part| has(part));
    let format = if has("xl/workbook.bin") || workbook.as_deref().is_some_and(|part| part.ends_with(".bin")) {
        Format::Xlsb
    } else if has("xl/workbook.xml") || workbook.is_some() {
        Format::Xlsx
    } else if let Some((_, content)) = entries.iter().find(|(name, _)| normalized(name) == "content.xml")
        && (mimetype.contains("opendocument.spreadsheet") || mimetype.is_empty())
    {
        check_ods_grid(content)?;
        Format::Ods
    } else {
        return Err(not_a_workbook("a zip archive, but not a workbook".into()));
    };
    let bytes = stored_zip(&entries, total).map_or(Cow::Borrowed(bytes), Cow::Owned);
    Ok(Sniffed { format, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_bytes() {
        assert_eq!(sniff(b"").map(|s| s.format).map_err(|p| p.code()), Err("not_a_workbook"));
        assert_eq!(sniff(b"a;b;c\n1;2;3\n").map(|s| s.format).map_err(|p| p.code()), Err("not_a_workbook"));
        assert_eq!(sniff(b"PK\x03\x04garbage").map(|s| s.format).map_err(|p| p.code()), Err("not_a_workbook"));
    }

    #[test]
    fn encrypted_workbooks_are_recognised() {
        let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        bytes.extend_from_slice(&[0; 64]);
        bytes.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(sniff(&bytes).map(|s| s.format).map_err(|p| p.code()), Err("password_protected"));
    }

    #[test]
    fn zip_entries_reach_calamine_inflated_once() -> Result<(), Box<dyn std::error::Error>> {
        use zip::CompressionMethod;
        use zip::write::SimpleFileOptions;
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        let sheet = format!("<worksheet>{}</worksheet>", " ".repeat(10_000));
        writer.start_file("xl/workbook.xml", deflated)?;
        writer.write_all(b"<workbook/>")?;
        writer.start_file("xl/worksheets/sheet1.xml", deflated)?;
        writer.write_all(sheet.as_bytes())?;
        // Parts no cell value depends on, one of them a bomb: left out, not inflated.
        writer.start_file("docProps/core.xml", deflated)?;
        writer.write_all(&vec![b' '; 2 * 1024 * 1024])?;
        writer.start_file("[Content_Types].xml", deflated)?;
        writer.write_all(b"<Types/>")?;
        writer.start_file("xl\\theme\\theme1.xml", deflated)?;
        writer.write_all(b"<a:theme/>")?;
        let original = writer.finish()?.into_inner();

        let sniffed = sniff(&original).map_err(|problem| problem.code())?;
        assert_eq!(sniffed.format, Format::Xlsx);
        let mut repacked = zip::ZipArchive::new(Cursor::new(sniffed.bytes.as_ref()))?;
        assert_eq!(repacked.file_names().count(), 2);
        let mut entry = repacked.by_name("xl/worksheets/sheet1.xml")?;
        assert_eq!(entry.compression(), CompressionMethod::Stored);
        let mut text = String::new();
        entry.read_to_string(&mut text)?;
        assert_eq!(text, sheet);
        Ok(())
    }
}
