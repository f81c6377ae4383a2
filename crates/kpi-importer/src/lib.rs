//! The importer of commune report workbooks: reads hand-made Excel/ODS reports, checks them
//! against the report contract (docs/report-format.md) and stores each file as one revision.
//!
//! A library, apart from any front end: the `kpi-import` command line (crate `kpi-import`)
//! and the server's upload service call the same functions, and nothing here knows of
//! arguments, terminals or progress bars. [`import_file`] handles one file end to end; [`parse_file`] is the reading half
//! (cells from a [`SheetReader`], then the report rules) and [`store_file`] the database half.
//!
//! - [`isolation`]: worker processes with OS limits, where untrusted bytes are read;
//! - [`workbook`]: bytes → sparse cells, refusing hostile files cheaply;
//! - [`report`]: cells → a validated report, or every error of the file;
//! - [`issues`]: error codes and their Vietnamese and English messages;
//! - [`checks`]: the catalog's rules and outliers, checked against the store's figures;
//! - [`batch`]: files, folders and zips, and the batch's report;
//! - [`file_reports`]: a batch's file reports, counted in memory and kept whole on disk;
//! - `pipeline` and [`spill`]: a batch's read and store passes, in bounded memory;
//! - `dry_run`: a dry run's one pass, predicting while the workers read;
//! - [`template`]: the blank template, demo data and test workbooks.

pub mod batch;
pub mod checks;
mod dry_run;
pub mod file_reports;
#[cfg(feature = "test-support")]
pub mod hostile;
pub mod isolation;
pub mod issues;
mod pipeline;
pub mod report;
pub mod spill;
pub mod template;
pub mod workbook;

use std::sync::Arc;

use kpi_core::text::minute_utc;
use kpi_core::{Catalog, Period, UnitCode};
use kpi_store::{Freeze, NewDataIssue, NewRevision, NewValue, Store, StoreError, StoredIssue, WriteOutcome};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use isolation::{IsolationConfig, SheetReader, WorkerCommand, WorkerError};
pub use issues::{Issue, Lang};
pub use report::{Overrides, ParsedReport, Rejected, parse_sheets, parse_workbook};

/// Why an import could not run: the database or the workbook reader failed, not the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reader(#[from] WorkerError),
}

/// How to import: the command line's options, or the server's request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportOptions {
    /// Validate and predict the outcome, store nothing.
    pub dry_run: bool,
    /// Unit for files that lack one; a file naming another unit is rejected.
    pub unit: Option<UnitCode>,
    /// Period for files that lack one; a file naming another period is rejected.
    pub period: Option<Period>,
    pub imported_by: String,
    pub lang: Lang,
}

impl ImportOptions {
    fn overrides(&self) -> Overrides {
        Overrides { unit: self.unit.clone(), period: self.period }
    }
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The first revision of its unit and period.
    Accepted,
    /// A new revision replacing a different earlier file.
    Revised,
    /// Byte-identical to the current revision: nothing written.
    Unchanged,
    Rejected,
    /// Acceptable, but not stored: the batch stopped before its turn (the database failed).
    NotStored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Revised => "revised",
            Status::Unchanged => "unchanged",
            Status::Rejected => "rejected",
            Status::NotStored => "not_stored",
        }
    }
}

/// One file's entry of the JSON report, and what the server returns for an upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    pub path: String,
    pub status: Status,
    /// Unit code, when it could be read.
    pub unit: Option<String>,
    /// Canonical period code, when it could be read.
    pub period: Option<String>,
    /// The revision number stored (or, in a dry run, that would be), none when rejected.
    pub revision: Option<i32>,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

/// A file parsed and hashed, ready to be stored: the CPU half of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFile {
    pub path: String,
    pub sha256: String,
    pub result: Result<ParsedReport, Rejected>,
}

impl ParsedFile {
    /// A file refused as a whole (unreadable, hostile, or a reader that failed), with its one
    /// file-level error.
    pub fn refused(path: String, sha256: String, problem: &issues::Problem, lang: Lang) -> ParsedFile {
        let error = issues::issue(lang, file_name_of(&path), "", "", problem);
        ParsedFile { path, sha256, result: Err(Rejected { errors: vec![error], ..Rejected::default() }) }
    }

    /// A file a stopped batch never got to: it has no error of its own (the batch's `stopped`
    /// says why), and is reported `not_stored`.
    pub fn unread(path: String) -> ParsedFile {
        ParsedFile { path, sha256: String::new(), result: Err(Rejected::default()) }
    }

    /// The unit and period of an acceptable file (for the in-batch ambiguity check).
    pub fn key(&self) -> Option<(UnitCode, Period)> {
        self.result.as_ref().ok().map(|report| (report.unit.clone(), report.period))
    }

    /// Rejects the file with one more error, keeping what was read for the summary.
    pub fn reject(&mut self, error: Issue) {
        let rejected = match std::mem::replace(&mut self.result, Err(Rejected::default())) {
            Ok(report) => Rejected {
                unit: Some(report.unit),
                period: Some(report.period),
                errors: vec![error],
                warnings: report.warnings,
            },
            Err(mut rejected) => {
                rejected.errors.push(error);
                rejected
            }
        };
        self.result = Err(rejected);
    }

    /// The report of a file the batch stopped before storing (a rejected file stays rejected).
    pub fn not_stored(self) -> FileReport {
        self.report(Status::NotStored, None)
    }

    /// The report of a file refused because its report is approved or its period closed.
    fn refused_by(mut self, freeze: &Freeze, lang: Lang) -> FileReport {
        let (unit, period) = self.key().map(|(u, p)| (u.to_string(), p.code())).unwrap_or_default();
        let problem = match freeze {
            Freeze::Approved(approval) => {
                issues::Problem::PeriodApproved { unit, period, by: approval.by.clone(), at: minute_utc(approval.at) }
            }
            Freeze::Locked(lock) => issues::Problem::PeriodLocked {
                unit: lock.unit.to_string(),
                period: lock.period.code(),
                by: lock.stamp.by.clone(),
                at: minute_utc(lock.stamp.at),
            },
            Freeze::Closed { deadline, closed_on, after_days } => issues::Problem::PeriodClosed {
                period,
                deadline: deadline.to_string(),
                closed_on: closed_on.to_string(),
                after_days: *after_days,
            },
        };
        let error = issues::issue(lang, file_name_of(&self.path), "", "", &problem);
        self.reject(error);
        self.report(Status::Rejected, None)
    }

    /// The report of a file that is rejected (or would be stored as `status`).
    fn report(self, status: Status, revision: Option<i32>) -> FileReport {
        let (unit, period, errors, warnings) = match self.result {
            Ok(report) => (Some(report.unit), Some(report.period), Vec::new(), report.warnings),
            Err(rejected) => (rejected.unit, rejected.period, rejected.errors, rejected.warnings),
        };
        let status = if errors.is_empty() { status } else { Status::Rejected };
        FileReport {
            path: self.path,
            status,
            unit: unit.map(|u| u.to_string()),
            period: period.map(|p| p.code()),
            revision: if status == Status::Rejected { None } else { revision },
            sha256: self.sha256,
            errors,
            warnings,
        }
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(bytes) {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Longest file name kept with a revision.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// A file's name as it is stored and logged: its last component, without control characters,
/// at most [`MAX_FILE_NAME_CHARS`] characters. An upload names its file freely.
pub fn stored_file_name(path: &str) -> String {
    file_name_of(path).chars().filter(|ch| !ch.is_control()).take(MAX_FILE_NAME_CHARS).collect()
}

/// The last component of a path, for messages (`bang-thanh-2022.xlsx`).
pub fn file_name_of(path: &str) -> &str {
    path.rsplit(['/', '\\', '!']).next().unwrap_or(path)
}

/// Reads one file's cells with `reader` (a worker process, normally) and checks them against
/// the report contract and the catalog. Every problem of the file is in the result; the error
/// is the reader's own failure.
pub async fn parse_file(
    reader: &SheetReader,
    path: &str,
    bytes: Vec<u8>,
    catalog: &Catalog,
    options: &ImportOptions,
) -> Result<ParsedFile, WorkerError> {
    Ok(read_file(reader, path.to_owned(), bytes).await?.check(catalog, options))
}

/// A file as its reader gave it: the cells of its sheets, or the reader's problem with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadFile {
    pub path: String,
    pub sha256: String,
    pub sheets: isolation::protocol::Answer,
}

/// Reads one file's cells with `reader`; the error is the reader's own failure.
pub async fn read_file(reader: &SheetReader, path: String, bytes: Vec<u8>) -> Result<ReadFile, WorkerError> {
    let sha256 = sha256_hex(&bytes);
    let sheets = reader.read(Arc::new(bytes)).await?;
    Ok(ReadFile { path, sha256, sheets })
}

impl ReadFile {
    /// Holds the cells to the report contract and the catalog. The same cells always give
    /// the same result.
    pub fn check(&self, catalog: &Catalog, options: &ImportOptions) -> ParsedFile {
        // The rules are this crate's own bounded code, but a bug in one must still cost one
        // file, not a batch or an upload connection.
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            parse_sheets(file_name_of(&self.path), &self.sheets, catalog, &options.overrides(), options.lang)
        }));
        match checked {
            Ok(result) => ParsedFile { path: self.path.clone(), sha256: self.sha256.clone(), result },
            Err(_) => {
                tracing::error!(path = self.path, "the report rules panicked on a file; it is rejected");
                let problem = issues::Problem::ReaderFailed { detail: "the report rules failed on it".into() };
                ParsedFile::refused(self.path.clone(), self.sha256.clone(), &problem, options.lang)
            }
        }
    }
}

/// Stores a parsed file as one revision (one transaction), or in a dry run predicts what
/// would happen from the current revision. Rejected files are reported, never stored.
pub async fn store_file(store: &Store, parsed: ParsedFile, options: &ImportOptions) -> Result<FileReport, StoreError> {
    let (mut reports, failure) = store_files(store, vec![parsed], options).await;
    match (failure, reports.pop()) {
        (Some(error), _) => Err(error),
        (None, Some(report)) => Ok(report),
        (None, None) => Err(StoreError::Corrupt("a stored file has no report".into())),
    }
}

/// Stores parsed files as one group: one transaction (see `Store::write_revisions`), so the
/// commit and the statements are paid once and each file stays all-or-nothing. Every file
/// gets its report, in order; when the database fails, the files it did not store are
/// `not_stored`, and the error says why. A dry run stores nothing and predicts.
pub async fn store_files(
    store: &Store,
    files: Vec<ParsedFile>,
    options: &ImportOptions,
) -> (Vec<FileReport>, Option<StoreError>) {
    let mut files = files;
    let data_issues = match checks::check_files(store, &mut files, options.lang).await {
        Ok(data_issues) => data_issues,
        Err(error) => return (files.into_iter().map(ParsedFile::not_stored).collect(), Some(error)),
    };
    if options.dry_run {
        return predict_files(store, files, options.lang).await;
    }
    write_checked_files(store, files, data_issues, options).await
}

/// Stores files the store's checks have seen, as one group (see [`store_files`]), each with
/// the data issues the checks found for it (`data_issues` is aligned with `files`).
pub(crate) async fn write_checked_files(
    store: &Store,
    files: Vec<ParsedFile>,
    data_issues: Vec<Vec<NewDataIssue>>,
    options: &ImportOptions,
) -> (Vec<FileReport>, Option<StoreError>) {
    let revisions: Vec<NewRevision> = files
        .iter()
        .zip(data_issues)
        .filter_map(|(file, issues)| {
            file.result.as_ref().ok().map(|report| new_revision(file, report, options, issues))
        })
        .collect();
    let (mut outcomes, mut failure) = match store.write_revisions(&revisions).await {
        Ok(outcomes) => (outcomes.into_iter(), None),
        Err(error) => (Vec::new().into_iter(), Some(error)),
    };
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        if file.result.is_err() {
            reports.push(file.report(Status::Rejected, None));
            continue;
        }
        match outcomes.next() {
            Some(Ok(WriteOutcome::Created { revision: 1 })) => reports.push(file.report(Status::Accepted, Some(1))),
            Some(Ok(WriteOutcome::Created { revision })) => reports.push(file.report(Status::Revised, Some(revision))),
            Some(Ok(WriteOutcome::Unchanged { revision })) => {
                reports.push(file.report(Status::Unchanged, Some(revision)));
            }
            Some(Ok(WriteOutcome::Frozen(freeze))) => reports.push(file.refused_by(&freeze, options.lang)),
            Some(Err(error)) => {
                failure.get_or_insert(error);
                reports.push(file.not_stored());
            }
            None => reports.push(file.not_stored()),
        }
    }
    (reports, failure)
}

/// A dry run: what storing each file would do, from the current revisions (read in one
/// query for the group).
async fn predict_files(store: &Store, files: Vec<ParsedFile>, lang: Lang) -> (Vec<FileReport>, Option<StoreError>) {
    let keys: Vec<(UnitCode, Period)> = files.iter().filter_map(ParsedFile::key).collect();
    let current = match store.current_revisions(&keys).await {
        Ok(current) => current,
        Err(error) => return (files.into_iter().map(ParsedFile::not_stored).collect(), Some(error)),
    };
    let freezes = match store.freezes(&keys).await {
        Ok(freezes) => freezes,
        Err(error) => return (files.into_iter().map(ParsedFile::not_stored).collect(), Some(error)),
    };
    let reports = files
        .into_iter()
        .map(|file| match file.key().map(|key| (current.get(&key), freezes.get(&key))) {
            None => file.report(Status::Rejected, None),
            Some((Some(revision), _)) if revision.sha256 == file.sha256 => {
                let number = revision.number;
                file.report(Status::Unchanged, Some(number))
            }
            Some((_, Some(freeze))) => file.refused_by(freeze, lang),
            Some((None, None)) => file.report(Status::Accepted, Some(1)),
            Some((Some(revision), None)) => {
                let number = revision.number + 1;
                file.report(Status::Revised, Some(number))
            }
        })
        .collect();
    (reports, None)
}

/// The revision a parsed, acceptable file becomes.
fn new_revision(
    file: &ParsedFile,
    report: &ParsedReport,
    options: &ImportOptions,
    data_issues: Vec<NewDataIssue>,
) -> NewRevision {
    let stored = |issue: &Issue| StoredIssue {
        sheet: issue.sheet.clone(),
        cell: issue.cell.clone(),
        code: issue.code.to_owned(),
        message: issue.message.clone(),
    };
    NewRevision {
        unit: report.unit.clone(),
        period: report.period,
        file_name: stored_file_name(&file.path),
        sha256: file.sha256.clone(),
        imported_by: options.imported_by.clone(),
        prepared_by: report.prepared_by.clone(),
        prepared_on: report.prepared_on.clone(),
        warnings: report.warnings.iter().map(stored).collect(),
        values: report
            .values
            .iter()
            .map(|v| NewValue { indicator: v.indicator.clone(), figure: v.figure, note: v.note.clone() })
            .collect(),
        data_issues,
    }
}

/// Imports one file end to end: what the server's upload service calls. The catalog must
/// already be loaded into the store.
pub async fn import_file(
    store: &Store,
    reader: &SheetReader,
    catalog: &Catalog,
    file_name: &str,
    bytes: Vec<u8>,
    options: &ImportOptions,
) -> Result<FileReport, ImportError> {
    let parsed = parse_file(reader, file_name, bytes, catalog, options).await?;
    Ok(store_file(store, parsed, options).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hex_is_the_digest_in_lowercase_hex() {
        // FIPS 180-2's examples: "abc" and the empty message.
        assert_eq!(super::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(super::sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
