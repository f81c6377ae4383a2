//! The reports a batch has read and checked, held on disk between its two passes.
//!
//! Two files of one batch for the same unit and period are both rejected, so nothing can be
//! stored before every file has been read; holding every checked report in memory until then
//! would make a batch's memory grow with its size. The first pass writes each acceptable
//! file's checked report here, in batch order, in the parse workers' encoding; the second
//! reads them back one at a time, as they were checked, without checking them again. The file
//! is unlinked as soon as it is created, so it vanishes with the process, whatever happens.
//! The same pieces (the unlinked file, issues and optional strings) keep the batch's file
//! reports too ([`crate::file_reports`]).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;

use kpi_core::{Figure, IndicatorCode, Period, UnitCode};

use crate::isolation::protocol::{Decoder, Encoder, ProtocolError};
use crate::report::{ParsedReport, ParsedValue};
use crate::{Issue, ParsedFile};

/// Why the spill file failed.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("the batch's spill file in {folder} failed: {source}")]
    Io { folder: PathBuf, source: std::io::Error },
    #[error("the batch's spill file is corrupt: {0}")]
    Corrupt(String),
}

/// Checked files, written one after the other.
#[derive(Debug)]
pub struct Spill {
    writer: BufWriter<File>,
    folder: PathBuf,
    count: usize,
    /// The issue codes seen, each written as its position here: a code is a `&'static str`
    /// of this process, which the records refer to rather than spell out.
    codes: Vec<&'static str>,
}

/// The spilled files, read back in the order they were written.
#[derive(Debug)]
pub struct SpillRecords {
    reader: BufReader<File>,
    folder: PathBuf,
    remaining: usize,
    codes: Vec<&'static str>,
}

impl Spill {
    /// An empty spill file in the system's temporary folder (`TMPDIR`), already unlinked.
    pub fn create() -> Result<Spill, SpillError> {
        let (file, folder) = unlinked_temp_file("spill")?;
        Ok(Spill { writer: BufWriter::new(file), folder, count: 0, codes: Vec::new() })
    }

    /// Appends one acceptable file: its path, hash and checked report.
    pub fn push(&mut self, path: &str, sha256: &str, report: &ParsedReport) -> Result<(), SpillError> {
        let encoded = encode_report(report, &mut self.codes);
        let io = |source| SpillError::Io { folder: self.folder.clone(), source };
        for part in [path.as_bytes(), sha256.as_bytes(), &encoded] {
            let length = u32::try_from(part.len()).map_err(|_| SpillError::Corrupt("a record over 4 GiB".into()))?;
            self.writer.write_all(&length.to_le_bytes()).map_err(io)?;
            self.writer.write_all(part).map_err(io)?;
        }
        self.count += 1;
        Ok(())
    }

    /// Ends writing; the records can then be read from the first.
    pub fn into_records(self) -> Result<SpillRecords, SpillError> {
        let Spill { writer, folder, count, codes } = self;
        let io = |source| SpillError::Io { folder: folder.clone(), source };
        let mut file = writer.into_inner().map_err(|error| io(error.into_error()))?;
        file.rewind().map_err(io)?;
        Ok(SpillRecords { reader: BufReader::new(file), folder, remaining: count, codes })
    }
}

impl SpillRecords {
    /// The next file, or `None` after the last.
    pub fn next_file(&mut self) -> Option<Result<ParsedFile, SpillError>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(self.read_record())
    }

    fn read_record(&mut self) -> Result<ParsedFile, SpillError> {
        let path = String::from_utf8(self.read_part()?).map_err(|_| SpillError::Corrupt("a path".into()))?;
        let sha256 = String::from_utf8(self.read_part()?).map_err(|_| SpillError::Corrupt("a hash".into()))?;
        let report = decode_report(&self.read_part()?, &self.codes)?;
        Ok(ParsedFile { path, sha256, result: Ok(report) })
    }

    fn read_part(&mut self) -> Result<Vec<u8>, SpillError> {
        let io = |source| SpillError::Io { folder: self.folder.clone(), source };
        let mut length = [0u8; 4];
        self.reader.read_exact(&mut length).map_err(io)?;
        let mut part = vec![0u8; u32::from_le_bytes(length) as usize];
        self.reader.read_exact(&mut part).map_err(io)?;
        Ok(part)
    }
}

/// A checked report in the spill's encoding:
/// `sheet unit period prepared_by? prepared_on? values warnings`, where `x?` is a flag byte
/// and then `x`, a value is `indicator figure note? cell`, a figure is `0 count:i64`,
/// `1 numerator:i64 denominator:i64` or `2 percent:f64`, and a warning is
/// `sheet cell code:u32 message`, the code its position in `codes`.
fn encode_report(report: &ParsedReport, codes: &mut Vec<&'static str>) -> Vec<u8> {
    let mut out = Encoder::default();
    out.str(&report.sheet);
    out.str(report.unit.as_str());
    out.str(&report.period.code());
    optional(&mut out, report.prepared_by.as_deref());
    optional(&mut out, report.prepared_on.as_deref());
    out.u32(u32::try_from(report.values.len()).unwrap_or(u32::MAX));
    for value in &report.values {
        out.str(value.indicator.as_str());
        match value.figure {
            Figure::Count(count) => {
                out.u8(0);
                out.u64(u64::from_le_bytes(count.to_le_bytes()));
            }
            Figure::Ratio { numerator, denominator } => {
                out.u8(1);
                out.u64(u64::from_le_bytes(numerator.to_le_bytes()));
                out.u64(u64::from_le_bytes(denominator.to_le_bytes()));
            }
            Figure::Percent(percent) => {
                out.u8(2);
                out.f64(percent);
            }
        }
        optional(&mut out, value.note.as_deref());
        out.str(&value.cell);
    }
    encode_issues(&mut out, &report.warnings, codes);
    out.0
}

/// Issues as `count:u32 (sheet cell code:u32 message)*`, each code its position in `codes`
/// (added there when new).
pub(crate) fn encode_issues(out: &mut Encoder, issues: &[Issue], codes: &mut Vec<&'static str>) {
    out.u32(u32::try_from(issues.len()).unwrap_or(u32::MAX));
    for issue in issues {
        out.str(&issue.sheet);
        out.str(&issue.cell);
        let position = codes.iter().position(|&code| code == issue.code).unwrap_or_else(|| {
            codes.push(issue.code);
            codes.len() - 1
        });
        out.u32(u32::try_from(position).unwrap_or(u32::MAX));
        out.str(&issue.message);
    }
}

/// Issues [`encode_issues`] wrote with `codes`.
pub(crate) fn decode_issues(input: &mut Decoder<'_>, codes: &[&'static str]) -> Result<Vec<Issue>, SpillError> {
    let count = input.u32()?;
    let mut issues = Vec::new();
    for _ in 0..count {
        let sheet = input.str()?;
        let cell = input.str()?;
        let code = codes
            .get(input.u32()? as usize)
            .copied()
            .ok_or_else(|| SpillError::Corrupt("an issue's code was never written".into()))?;
        issues.push(Issue { sheet, cell, code, message: input.str()? });
    }
    Ok(issues)
}

/// A new file in the system's temporary folder (`TMPDIR`), already unlinked so that it
/// vanishes with the process whatever happens, and the folder (for messages).
pub(crate) fn unlinked_temp_file(kind: &str) -> Result<(File, PathBuf), SpillError> {
    let folder = std::env::temp_dir();
    let io = |source| SpillError::Io { folder: folder.clone(), source };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = folder.join(format!(".kpi-import-{}-{nanos}.{kind}", std::process::id()));
    let file = File::options().read(true).write(true).create_new(true).open(&path).map_err(io)?;
    std::fs::remove_file(&path).map_err(io)?;
    Ok((file, folder))
}

pub(crate) fn optional(out: &mut Encoder, value: Option<&str>) {
    match value {
        Some(value) => {
            out.u8(1);
            out.str(value);
        }
        None => out.u8(0),
    }
}

/// A report [`encode_report`] wrote, with the codes it was written with.
fn decode_report(bytes: &[u8], codes: &[&'static str]) -> Result<ParsedReport, SpillError> {
    let corrupt = |what: &str| SpillError::Corrupt(format!("a report's {what}"));
    let mut input = Decoder(bytes);
    let sheet = input.str()?;
    let unit = UnitCode::parse(&input.str()?).map_err(|_| corrupt("unit"))?;
    let period = Period::parse(&input.str()?).map_err(|_| corrupt("period"))?;
    let prepared_by = read_optional(&mut input)?;
    let prepared_on = read_optional(&mut input)?;
    let count = input.u32()?;
    let mut values = Vec::new();
    for _ in 0..count {
        let indicator = IndicatorCode::parse(&input.str()?).map_err(|_| corrupt("indicator"))?;
        let whole = |input: &mut Decoder<'_>| input.u64().map(|n| i64::from_le_bytes(n.to_le_bytes()));
        let figure = match input.u8()? {
            0 => Figure::Count(whole(&mut input)?),
            1 => Figure::Ratio { numerator: whole(&mut input)?, denominator: whole(&mut input)? },
            2 => Figure::Percent(input.f64()?),
            _ => return Err(corrupt("figure")),
        };
        let note = read_optional(&mut input)?;
        values.push(ParsedValue { indicator, figure, note, cell: input.str()? });
    }
    let warnings = decode_issues(&mut input, codes)?;
    input.finish()?;
    Ok(ParsedReport { sheet, unit, period, prepared_by, prepared_on, values, warnings })
}

pub(crate) fn read_optional(input: &mut Decoder<'_>) -> Result<Option<String>, SpillError> {
    match input.u8()? {
        0 => Ok(None),
        1 => Ok(Some(input.str()?)),
        _ => Err(SpillError::Corrupt("a flag byte".into())),
    }
}

impl From<ProtocolError> for SpillError {
    fn from(error: ProtocolError) -> Self {
        SpillError::Corrupt(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(unit: &str, warnings: Vec<Issue>) -> ParsedReport {
        let value = |code: &str, figure, note: Option<&str>, cell: &str| ParsedValue {
            indicator: IndicatorCode::parse(code).unwrap_or_else(|e| panic!("{e}")),
            figure,
            note: note.map(str::to_owned),
            cell: cell.into(),
        };
        ParsedReport {
            sheet: "Báo cáo".into(),
            unit: UnitCode::parse(unit).unwrap_or_else(|e| panic!("{e}")),
            period: Period::Half(2025, 1),
            prepared_by: Some("Nguyễn Văn A".into()),
            prepared_on: None,
            values: vec![
                value("A01", Figure::Count(-3), None, "B10"),
                value("B05", Figure::Ratio { numerator: 15, denominator: 145 }, Some("ghi chú"), "B11"),
                value("C02", Figure::Percent(27.4), None, "B12"),
            ],
            warnings,
        }
    }

    #[test]
    fn reports_come_back_as_checked_in_order() -> Result<(), SpillError> {
        let warning =
            |cell: &str, code| Issue { sheet: "Báo cáo".into(), cell: cell.into(), code, message: "…".into() };
        let written = vec![
            ("bao-cao/bocbo.xlsx", "ab".repeat(32), report("BOCBO", vec![warning("C12", "suspect_fraction")])),
            ("x.xlsx", String::new(), report("XUANLA", Vec::new())),
            (
                "y.xlsx",
                "cd".repeat(32),
                report("COLINH", vec![warning("B3", "bad_date"), warning("C9", "suspect_fraction")]),
            ),
        ];
        let mut spill = Spill::create()?;
        for (path, sha256, report) in &written {
            spill.push(path, sha256, report)?;
        }
        let mut records = spill.into_records()?;
        let mut read = Vec::new();
        while let Some(file) = records.next_file() {
            read.push(file?);
        }
        let expected: Vec<ParsedFile> = written
            .into_iter()
            .map(|(path, sha256, report)| ParsedFile { path: path.into(), sha256, result: Ok(report) })
            .collect();
        assert_eq!(read, expected);
        Ok(())
    }

    #[test]
    fn a_damaged_record_is_corrupt_not_a_panic() {
        let mut codes = Vec::new();
        let encoded = encode_report(&report("BOCBO", Vec::new()), &mut codes);
        for length in 0..encoded.len() {
            assert!(matches!(decode_report(&encoded[..length], &codes), Err(SpillError::Corrupt(_))), "{length}");
        }
        let warning = Issue { sheet: String::new(), cell: "C3".into(), code: "bad_date", message: String::new() };
        let encoded = encode_report(&report("BOCBO", vec![warning]), &mut codes);
        assert!(matches!(decode_report(&encoded, &[]), Err(SpillError::Corrupt(_))), "a code never written");
    }
}
