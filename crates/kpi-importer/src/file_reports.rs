//! Every file's report of a batch, in batch order: counted in memory, kept whole on disk.
//!
//! A batch of 100,000 files would otherwise hold 100,000 reports (paths, hashes, warnings)
//! until it ends, only for the JSON report to list them. Here each report is counted (by
//! status and period) and written to an unlinked temp file as it becomes final; memory keeps
//! only what the summary shows: every file while the batch is small, and past that the files
//! a person must act on, up to [`MAX_LISTED`]. The JSON report streams the file back. Where
//! no temp file can be created, the reports are held in memory instead, as a small batch's
//! would be, and the batch and its JSON report go on.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::isolation::protocol::{Decoder, Encoder};
use crate::spill::{SpillError, decode_issues, encode_issues, optional, read_optional, unlinked_temp_file};
use crate::{FileReport, Status};

/// Files up to which every file is listed; past it, only the files to act on are.
pub const LIST_ALL_UP_TO: usize = 50;
/// Most files to act on kept for the summary; the others are counted (all are on disk).
pub const MAX_LISTED: usize = 500;

/// A batch's file reports.
#[derive(Debug)]
pub struct FileReports {
    log: Log,
    folder: PathBuf,
    /// The issue codes seen, each written as its position here.
    codes: Vec<&'static str>,
    total: usize,
    by_status: [usize; STATUSES.len()],
    listed: Vec<FileReport>,
    /// Files to act on beyond the [`MAX_LISTED`] kept.
    unlisted_to_act_on: usize,
    /// The periods the files named, readable or not.
    periods: BTreeSet<String>,
}

const STATUSES: [Status; 5] =
    [Status::Accepted, Status::Revised, Status::Unchanged, Status::Rejected, Status::NotStored];

fn status_index(status: Status) -> usize {
    STATUSES.iter().position(|&s| s == status).unwrap_or(0)
}

/// Whether a file's line of the summary asks something of a person.
fn needs_action(file: &FileReport) -> bool {
    !file.errors.is_empty() || !file.warnings.is_empty() || file.status == Status::NotStored
}

impl Default for FileReports {
    fn default() -> Self {
        FileReports::new()
    }
}

impl FileReports {
    /// No file yet; the log is a new unlinked temp file, or memory when none can be created.
    pub fn new() -> FileReports {
        let (log, folder) = match unlinked_temp_file("files") {
            Ok((file, folder)) => (Log::Disk { writer: BufWriter::new(file), bytes: 0 }, folder),
            Err(error) => {
                tracing::warn!(%error, "the batch's file reports are held in memory");
                (Log::Memory(Vec::new()), std::env::temp_dir())
            }
        };
        FileReports {
            log,
            folder,
            codes: Vec::new(),
            total: 0,
            by_status: [0; STATUSES.len()],
            listed: Vec::new(),
            unlisted_to_act_on: 0,
            periods: BTreeSet::new(),
        }
    }

    /// Adds the next file's final report. A log that fails is remembered (see
    /// [`FileReports::iter`]); the counts and the listing go on.
    pub fn push(&mut self, file: FileReport) {
        self.total += 1;
        self.by_status[status_index(file.status)] += 1;
        if let Some(period) = &file.period
            && !self.periods.contains(period)
        {
            self.periods.insert(period.clone());
        }
        match &mut self.log {
            Log::Disk { writer, bytes } => {
                if let Err(error) = append(writer, bytes, &file, &mut self.codes) {
                    let error = SpillError::Io { folder: self.folder.clone(), source: error };
                    tracing::error!(%error, "the batch's list of file reports could not be kept");
                    self.log = Log::Failed(error.to_string());
                }
            }
            Log::Memory(files) => files.push(file.clone()),
            Log::Failed(_) => {}
        }
        self.list(file);
    }

    /// Keeps `file` for the summary when it is listed.
    fn list(&mut self, file: FileReport) {
        if self.total == LIST_ALL_UP_TO + 1 {
            // The batch outgrew the full listing: from here on only files to act on are kept.
            self.listed.retain(needs_action);
        }
        if self.total <= LIST_ALL_UP_TO {
            self.listed.push(file);
        } else if needs_action(&file) {
            if self.listed.len() < MAX_LISTED {
                self.listed.push(file);
            } else {
                self.unlisted_to_act_on += 1;
            }
        }
    }

    /// How many files the batch has.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the batch has no file.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many files ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.by_status[status_index(status)]
    }

    /// The files the summary lists: all of them up to [`LIST_ALL_UP_TO`] files, else the first
    /// [`MAX_LISTED`] to act on (with errors, warnings, or not stored).
    pub fn listed(&self) -> &[FileReport] {
        &self.listed
    }

    /// Files to act on that are not listed (past [`MAX_LISTED`]).
    pub fn unlisted_to_act_on(&self) -> usize {
        self.unlisted_to_act_on
    }

    /// The periods the files named, readable or not.
    pub fn periods(&self) -> impl Iterator<Item = &str> {
        self.periods.iter().map(String::as_str)
    }

    /// Per period, the units of the files that were not rejected, read back from the log: only
    /// a dry run needs them (the units its files would add), so no batch keeps them in memory.
    pub fn units_by_period(&self) -> Result<BTreeMap<String, BTreeSet<String>>, SpillError> {
        let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in self.iter() {
            let file = file?;
            if file.status != Status::Rejected
                && let (Some(unit), Some(period)) = (file.unit, file.period)
            {
                units.entry(period).or_default().insert(unit);
            }
        }
        Ok(units)
    }

    /// Every file's report, in batch order, read back from the log; after an error (the log
    /// failed while the batch ran, or cannot be read back) nothing more.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Result<FileReport, SpillError>> + '_> {
        match &self.log {
            Log::Memory(files) => Box::new(files.iter().cloned().map(Ok)),
            Log::Failed(reason) => {
                let reason = format!("the list of file reports was not kept: {reason}");
                Box::new(std::iter::once(Err(SpillError::Corrupt(reason))))
            }
            Log::Disk { writer, bytes } => {
                let logged = Logged {
                    file: writer.get_ref(),
                    position: 0,
                    flushed: bytes - writer.buffer().len() as u64,
                    tail: writer.buffer(),
                };
                Box::new(Records {
                    reader: BufReader::new(logged),
                    remaining: self.total,
                    codes: &self.codes,
                    folder: &self.folder,
                })
            }
        }
    }
}

/// The reports as a JSON list, streamed from the log one at a time.
impl Serialize for FileReports {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.total))?;
        for file in self.iter() {
            list.serialize_element(&file.map_err(serde::ser::Error::custom)?)?;
        }
        list.end()
    }
}

/// Where the reports are kept.
#[derive(Debug)]
enum Log {
    /// An unlinked temp file, and the bytes written to it (buffered ones included).
    Disk { writer: BufWriter<File>, bytes: u64 },
    /// No temp file could be created.
    Memory(Vec<FileReport>),
    /// Writing failed midway: the counts and the listing stay right, the full list is lost.
    Failed(String),
}

/// Writes one report to the log as `length:u32 record`.
fn append(
    writer: &mut BufWriter<File>,
    bytes: &mut u64,
    file: &FileReport,
    codes: &mut Vec<&'static str>,
) -> std::io::Result<()> {
    let record = encode_file(file, codes);
    let length = u32::try_from(record.len()).map_err(|_| std::io::Error::other("a record over 4 GiB"))?;
    writer.write_all(&length.to_le_bytes())?;
    writer.write_all(&record)?;
    *bytes += 4 + record.len() as u64;
    Ok(())
}

/// The log's bytes: the flushed part from the file (read at an offset, so the writer's
/// position stays), then the part still in the writer's buffer.
struct Logged<'a> {
    file: &'a File,
    position: u64,
    flushed: u64,
    tail: &'a [u8],
}

impl Read for Logged<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if self.position < self.flushed {
            let wanted = usize::try_from(self.flushed - self.position).unwrap_or(usize::MAX).min(out.len());
            let read = self.file.read_at(&mut out[..wanted], self.position)?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.position += read as u64;
            return Ok(read);
        }
        self.tail.read(out)
    }
}

/// The log's records, decoded one at a time.
struct Records<'a> {
    reader: BufReader<Logged<'a>>,
    remaining: usize,
    codes: &'a [&'static str],
    folder: &'a PathBuf,
}

impl Iterator for Records<'_> {
    type Item = Result<FileReport, SpillError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let record = self.read_record();
        if record.is_err() {
            self.remaining = 0;
        }
        Some(record)
    }
}

impl Records<'_> {
    fn read_record(&mut self) -> Result<FileReport, SpillError> {
        let io = |source| SpillError::Io { folder: self.folder.clone(), source };
        let mut length = [0u8; 4];
        self.reader.read_exact(&mut length).map_err(io)?;
        let mut record = Vec::new();
        let length = u64::from(u32::from_le_bytes(length));
        (&mut self.reader).take(length).read_to_end(&mut record).map_err(io)?;
        if record.len() as u64 != length {
            return Err(SpillError::Corrupt("a file report ends early".into()));
        }
        decode_file(&record, self.codes)
    }
}

/// A file report as `path status:u8 unit? period? revision? sha256 errors warnings`, where
/// `x?` is a flag byte then `x`, a revision is an `i32` as `u32`, and issues are written by
/// [`encode_issues`].
fn encode_file(file: &FileReport, codes: &mut Vec<&'static str>) -> Vec<u8> {
    let mut out = Encoder::default();
    out.str(&file.path);
    out.u8(u8::try_from(status_index(file.status)).unwrap_or(0));
    optional(&mut out, file.unit.as_deref());
    optional(&mut out, file.period.as_deref());
    match file.revision {
        Some(revision) => {
            out.u8(1);
            out.u32(u32::from_le_bytes(revision.to_le_bytes()));
        }
        None => out.u8(0),
    }
    out.str(&file.sha256);
    encode_issues(&mut out, &file.errors, codes);
    encode_issues(&mut out, &file.warnings, codes);
    out.0
}

/// A file report [`encode_file`] wrote with `codes`.
fn decode_file(bytes: &[u8], codes: &[&'static str]) -> Result<FileReport, SpillError> {
    let mut input = Decoder(bytes);
    let path = input.str()?;
    let status = STATUSES
        .get(usize::from(input.u8()?))
        .copied()
        .ok_or_else(|| SpillError::Corrupt("a file report's status".into()))?;
    let unit = read_optional(&mut input)?;
    let period = read_optional(&mut input)?;
    let revision = match input.u8()? {
        0 => None,
        1 => Some(i32::from_le_bytes(input.u32()?.to_le_bytes())),
        _ => return Err(SpillError::Corrupt("a flag byte".into())),
    };
    let sha256 = input.str()?;
    let errors = decode_issues(&mut input, codes)?;
    let warnings = decode_issues(&mut input, codes)?;
    input.finish()?;
    Ok(FileReport { path, status, unit, period, revision, sha256, errors, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Issue;

    fn file(index: usize) -> FileReport {
        let issue =
            |code, message: &str| Issue {
                sheet: "Báo cáo".into(), cell: "C12".into(), code, message: message.into()
            };
        let (status, errors, warnings) = match index % 4 {
            0 => (Status::Accepted, Vec::new(), Vec::new()),
            1 => (Status::Revised, Vec::new(), vec![issue("suspect_fraction", "tỷ lệ lạ")]),
            2 => (Status::Rejected, vec![issue("not_a_number", "không phải số"), issue("bad_date", "x")], Vec::new()),
            _ => (Status::NotStored, Vec::new(), Vec::new()),
        };
        FileReport {
            path: format!("reports/{index:06}.xlsx"),
            status,
            unit: (index % 8 != 2).then(|| format!("U{}", index % 7)),
            period: (index % 16 != 6).then(|| format!("{}", 2020 + index % 3)),
            revision: (status != Status::Rejected).then(|| i32::try_from(index).unwrap_or(i32::MAX) - 5),
            sha256: "ab".repeat(32),
            errors,
            warnings,
        }
    }

    /// Enough files that the log is read back partly from the file and partly from the
    /// writer's buffer.
    #[test]
    fn every_report_comes_back_in_order() -> Result<(), SpillError> {
        let written: Vec<FileReport> = (0..3_001).map(file).collect();
        let mut reports = FileReports::new();
        for file in &written {
            reports.push(file.clone());
        }
        let read: Vec<FileReport> = reports.iter().collect::<Result<_, _>>()?;
        assert_eq!(read, written);
        // Reading does not disturb writing.
        reports.push(file(3_001));
        assert_eq!(reports.iter().last().transpose()?, Some(file(3_001)));
        assert_eq!(reports.len(), 3_002);
        assert_eq!(reports.count(Status::Rejected), 750);
        assert_eq!(reports.count(Status::NotStored), 750);
        Ok(())
    }

    #[test]
    fn a_large_batch_lists_only_the_files_to_act_on() {
        let mut reports = FileReports::new();
        for index in 0..LIST_ALL_UP_TO {
            reports.push(file(index));
        }
        assert_eq!(reports.listed().len(), LIST_ALL_UP_TO, "every file of a small batch");
        for index in LIST_ALL_UP_TO..4 * MAX_LISTED {
            reports.push(file(index));
        }
        assert_eq!(reports.listed().len(), MAX_LISTED);
        assert!(reports.listed().iter().all(needs_action));
        assert_eq!(reports.listed()[0].path, "reports/000001.xlsx");
        // Three files in four need action: 1,500 of the 2,000, 500 listed.
        assert_eq!(reports.unlisted_to_act_on(), 1_000);
    }

    #[test]
    fn periods_and_the_units_present_in_them() {
        let mut reports = FileReports::new();
        for index in 0..16 {
            reports.push(file(index));
        }
        assert_eq!(reports.periods().collect::<Vec<_>>(), vec!["2020", "2021", "2022"]);
        // Files 0, 3, 9, 12 and 15 name 2020 and are not rejected.
        let by_period = reports.units_by_period().map_err(|e| e.to_string());
        let units: Vec<String> = by_period
            .map(|by_period| by_period.get("2020").map(|u| u.iter().cloned().collect()).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(units, vec!["U0", "U1", "U2", "U3", "U5"]);
    }

    #[test]
    fn a_damaged_record_is_corrupt_not_a_panic() {
        let mut codes = Vec::new();
        let encoded = encode_file(&file(2), &mut codes);
        assert_eq!(decode_file(&encoded, &codes).ok(), Some(file(2)));
        for length in 0..encoded.len() {
            assert!(matches!(decode_file(&encoded[..length], &codes), Err(SpillError::Corrupt(_))), "{length}");
        }
        assert!(matches!(decode_file(&encoded, &[]), Err(SpillError::Corrupt(_))), "a code never written");
    }
}
