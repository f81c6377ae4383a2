//! A batch import: collecting files from paths, folders and zip archives, running them
//! through the read and store passes (`pipeline`), and the batch's report (the front end
//! renders it).
//!
//! One bad file never stops the batch. A missing path or an unreadable folder stops it before
//! it starts ([`BatchError`]); a database or reader failure midway stops it with a report all
//! the same, saying which files were stored, which were not, and why ([`BatchReport::stopped`]).

use std::collections::BTreeMap;
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kpi_core::{Catalog, Period};
use kpi_store::Store;
use serde::Serialize;

use crate::file_reports::FileReports;
use crate::issues::Problem;
use crate::workbook::{MAX_FILE_BYTES, MAX_RATIO, MAX_UNPACKED_BYTES};
use crate::{FileReport, ImportOptions, ParsedFile, SheetReader, Status, dry_run, pipeline};

/// Extensions taken from folders and archives (a file named on the command line is always
/// tried, whatever its name).
const WORKBOOK_EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];
/// Most files one zip archive may hold.
const MAX_ARCHIVE_ENTRIES: usize = 10_000;
/// Largest zip archive read from disk.
const MAX_ARCHIVE_BYTES: u64 = 512 * 1024 * 1024;

/// Why a batch could not run.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),
    #[error("cannot read folder {path}: {source}")]
    UnreadableFolder { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Output { path: PathBuf, source: std::io::Error },
}

/// Where a file's bytes come from.
#[derive(Debug)]
pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
    /// The file could not even be read; it is rejected with this problem.
    Unusable(Problem),
}

/// One file of a batch.
#[derive(Debug)]
pub struct Input {
    /// As shown in the summary: the path, or `archive.zip!/inner/path.xlsx`.
    pub path: String,
    pub source: Source,
}

/// A batch's outcome. Its JSON ([`write_json`]) is
/// `{"files":[…],"missing":{"2023S1":["COLINH",…]},"timeliness":{…}}`, plus `"stopped"` when
/// the batch could not finish.
#[derive(Debug, Default, Serialize)]
pub struct BatchReport {
    /// Every file's report, in batch order (kept on disk; counted and sampled in memory).
    pub files: FileReports,
    /// Per period seen in the batch, the expected units that have no report.
    pub missing: BTreeMap<String, Vec<String>>,
    /// Per period, the missing units counted by parent, most first (for the summary; the JSON
    /// keeps the full lists above).
    #[serde(skip)]
    pub missing_by_parent: BTreeMap<String, Vec<(String, usize)>>,
    /// Per period seen in the batch, where the whole tree stands against its deadlines today.
    pub timeliness: BTreeMap<String, PeriodTimeliness>,
    /// Why the batch stopped early (the database or the reader failed); the files it did not
    /// store are listed as `not_stored`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// How timely one period's reports are across the whole tree, judged on `as_of`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeriodTimeliness {
    /// `YYYY-MM-DD`, today in Vietnam.
    pub as_of: String,
    pub expected: u32,
    pub reported: u32,
    pub on_time: u32,
    /// Reported over expected (0–1), and reported on time over expected.
    pub reporting_rate: f64,
    pub on_time_rate: f64,
    /// Units past their deadline with nothing sent, most working days late first.
    pub overdue: Vec<OverdueUnit>,
}

/// One unit that owes a report past its deadline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverdueUnit {
    pub unit: String,
    /// `YYYY-MM-DD`.
    pub due: String,
    pub working_days_late: u32,
}

impl BatchReport {
    pub fn any_rejected(&self) -> bool {
        self.files.count(Status::Rejected) > 0
    }
}

fn has_workbook_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| WORKBOOK_EXTENSIONS.iter().any(|w| w.eq_ignore_ascii_case(e)))
}

fn is_zip_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// Lock files (`~$x.xlsx`) and hidden files are never reports.
fn is_skipped_name(name: &str) -> bool {
    name.starts_with("~$") || name.starts_with('.') || name.contains("__MACOSX")
}

/// Expands paths into the batch's files: folders recursively in sorted order, archives into
/// their entries. A path that does not exist or a folder that cannot be read ends the batch.
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, BatchError> {
    let mut inputs = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|_| BatchError::NotFound(path.clone()))?;
        if metadata.is_dir() {
            collect_folder(path, &mut inputs)?;
        } else if is_zip_name(path) {
            collect_archive(path, &mut inputs);
        } else {
            inputs.push(Input { path: path.display().to_string(), source: Source::File(path.clone()) });
        }
    }
    Ok(inputs)
}

fn collect_folder(dir: &Path, inputs: &mut Vec<Input>) -> Result<(), BatchError> {
    let unreadable = |source| BatchError::UnreadableFolder { path: dir.to_owned(), source };
    // The entry's own type, known from the folder listing: a stat per file would cost a
    // system call for each of a national batch's files. A link is followed, as a path is.
    let is_folder = |entry: &std::fs::DirEntry| match entry.file_type() {
        Ok(kind) if !kind.is_symlink() => kind.is_dir(),
        _ => entry.path().is_dir(),
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| (e.path(), is_folder(&e))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    entries.sort();
    for (path, is_folder) in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if is_skipped_name(&name) {
            continue;
        }
        if is_folder {
            collect_folder(&path, inputs)?;
        } else if is_zip_name(&path) {
            collect_archive(&path, inputs);
        } else if has_workbook_extension(&path) {
            inputs.push(Input { path: path.display().to_string(), source: Source::File(path) });
        }
    }
    Ok(())
}

/// Adds the workbooks inside a zip archive, inflating within limits; a broken or hostile
/// archive becomes one rejected input.
fn collect_archive(path: &Path, inputs: &mut Vec<Input>) {
    let shown = path.display().to_string();
    match read_archive(path, &shown) {
        Ok(entries) => inputs.extend(entries),
        Err(problem) => inputs.push(Input { path: shown, source: Source::Unusable(problem) }),
    }
}

fn read_archive(path: &Path, shown: &str) -> Result<Vec<Input>, Problem> {
    let unreadable = |e: &dyn std::fmt::Display| Problem::Unreadable { detail: e.to_string() };
    let size = std::fs::metadata(path).map_err(|e| unreadable(&e))?.len();
    if size > MAX_ARCHIVE_BYTES {
        return Err(Problem::TooLarge { detail: format!("{size} bytes > {MAX_ARCHIVE_BYTES}") });
    }
    let bytes = std::fs::read(path).map_err(|e| unreadable(&e))?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Problem::NotAWorkbook { detail: format!("broken zip archive: {e}") })?;
    if archive.len() > MAX_ARCHIVE_ENTRIES {
        return Err(Problem::TooLarge { detail: format!("{} entries in the archive", archive.len()) });
    }
    let names: Vec<(String, usize)> = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).and_then(|n| n.ok()).map(|n| (n.into_owned(), i)))
        .collect();
    let is_workbook = names.iter().any(|(n, _)| n == "xl/workbook.xml" || n == "xl/workbook.bin" || n == "content.xml");
    if is_workbook {
        // A workbook named .zip: import it as a file.
        return Ok(vec![Input { path: shown.to_owned(), source: Source::File(path.to_owned()) }]);
    }
    let mut inputs = Vec::new();
    let mut names = names;
    names.sort();
    let mut total: u64 = 0;
    for (name, index) in names {
        let inner = Path::new(&name);
        let base = inner.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with('/') || is_skipped_name(&base) || is_skipped_name(&name) || !has_workbook_extension(inner) {
            continue;
        }
        let shown_entry = format!("{shown}!/{name}");
        let source = match archive.by_index(index) {
            Err(e) => Source::Unusable(Problem::NotAWorkbook { detail: format!("broken zip entry: {e}") }),
            Ok(entry) => {
                let compressed = entry.compressed_size().max(1);
                let mut bytes = Vec::new();
                let read = entry.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes);
                total += bytes.len() as u64;
                let ratio = bytes.len() as u64 / compressed;
                match read {
                    Err(e) => Source::Unusable(Problem::NotAWorkbook { detail: format!("broken zip entry: {e}") }),
                    Ok(_) if bytes.len() > MAX_FILE_BYTES || (bytes.len() > 1024 * 1024 && ratio > MAX_RATIO) => {
                        Source::Unusable(Problem::TooLarge {
                            detail: format!("{} bytes, {ratio}× compressed", bytes.len()),
                        })
                    }
                    Ok(_) => Source::Bytes(bytes),
                }
            }
        };
        if total > MAX_UNPACKED_BYTES * 5 {
            return Err(Problem::TooLarge {
                detail: format!("the archive expands beyond {} bytes", MAX_UNPACKED_BYTES * 5),
            });
        }
        inputs.push(Input { path: shown_entry, source });
    }
    Ok(inputs)
}

/// One input's bytes, or the problem that makes it unusable.
pub(crate) fn input_bytes(source: Source) -> Result<Vec<u8>, Problem> {
    match source {
        Source::Bytes(bytes) => Ok(bytes),
        Source::Unusable(problem) => Err(problem),
        Source::File(path) => read_bounded(&path),
    }
}

/// A file's bytes, never more than [`MAX_FILE_BYTES`] of them, whatever size it claims or
/// reaches while it is read: one more byte refuses it.
fn read_bounded(path: &Path) -> Result<Vec<u8>, Problem> {
    let unreadable = |e: std::io::Error| Problem::Unreadable { detail: e.to_string() };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let claimed = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(claimed.min(MAX_FILE_BYTES as u64 + 1) as usize);
    (&file).take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() > MAX_FILE_BYTES {
        let size = file.metadata().map(|meta| meta.len()).unwrap_or(bytes.len() as u64);
        return Err(Problem::TooLarge { detail: format!("{size} bytes > {MAX_FILE_BYTES}") });
    }
    Ok(bytes)
}

/// What a front end shows while a batch runs: the library reports events and knows nothing
/// of terminals.
pub trait BatchProgress: Send + Sync + std::fmt::Debug {
    /// A file was read and checked.
    fn parsed(&self) {}
    /// Every file was read; storing begins.
    fn storing(&self) {}
    /// A file's outcome is final (stored, unchanged, rejected or not stored).
    fn finished(&self, _file: &FileReport) {}
    /// The batch is over.
    fn done(&self) {}
}

/// Shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl BatchProgress for Silent {}

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub import: ImportOptions,
    pub jobs: usize,
    pub progress: Arc<dyn BatchProgress>,
}

/// Runs a whole batch: read every file (on the parse workers, in parallel), reject files that
/// claim the same unit and period, store the rest, then list the missing units of every
/// period seen. Memory stays bounded by the files in flight, whatever the size of the batch
/// (see `pipeline`). A database or reader failure midway stops the batch, and the report says
/// so ([`BatchReport::stopped`]): it is returned either way.
pub async fn run_batch(
    store: &Store,
    reader: &SheetReader,
    catalog: Arc<Catalog>,
    inputs: Vec<Input>,
    options: &BatchOptions,
) -> BatchReport {
    let paths: Vec<String> = inputs.iter().map(|input| input.path.clone()).collect();
    let started = std::time::Instant::now();
    tracing::debug!(files = paths.len(), "read pass starts");
    let mut report = if options.import.dry_run {
        match dry_run::predict_all(store, reader, inputs, &catalog, &paths, options).await {
            Ok(report) => report,
            Err(error) => {
                options.progress.done();
                return stopped_before_storing(paths, error.to_string());
            }
        }
    } else {
        let read = pipeline::read_all(reader, inputs, &catalog, &options.import, options.jobs, &options.progress).await;
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                options.progress.done();
                return stopped_before_storing(paths, error.to_string());
            }
        };
        tracing::debug!(files = paths.len(), seconds = started.elapsed().as_secs_f64(), "read pass done");
        options.progress.storing();
        pipeline::store_all(store, read, paths, &catalog, options).await
    };
    options.progress.done();
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "store pass done");
    if report.stopped.is_none()
        && let Err(error) = list_missing(store, &mut report, options.import.dry_run).await
    {
        report.stopped = Some(error.to_string());
    }
    if report.stopped.is_none()
        && let Err(error) = judge_timeliness(store, &mut report).await
    {
        report.stopped = Some(error.to_string());
    }
    report
}

/// Fills in, per period seen, the reporting and on-time rates of the whole tree today, and who
/// is overdue (in a dry run, as the store stands: the batch's own files are not counted).
async fn judge_timeliness(store: &Store, report: &mut BatchReport) -> Result<(), kpi_store::StoreError> {
    let snapshot = store.snapshot().await?;
    let Some(root) = snapshot.root() else { return Ok(()) };
    let today = kpi_core::calendar::local_date(chrono::Utc::now());
    let periods: Vec<String> = report.files.periods().map(str::to_owned).collect();
    for code in periods {
        let Ok(period) = Period::parse(&code) else { continue };
        let completeness = store.completeness(&root.definition.code, period, today).await?;
        let total = &completeness.total;
        let timeliness = PeriodTimeliness {
            as_of: today.to_string(),
            expected: total.expected,
            reported: total.reported,
            on_time: total.on_time,
            reporting_rate: total.reporting_rate(),
            on_time_rate: total.on_time_rate(),
            overdue: completeness
                .overdue()
                .into_iter()
                .map(|unit| OverdueUnit {
                    unit: unit.unit.to_string(),
                    due: unit.due_on.to_string(),
                    working_days_late: unit.working_days_late,
                })
                .collect(),
        };
        report.timeliness.insert(code, timeliness);
    }
    Ok(())
}

/// Why a batch stopped after its files were stored: the database or the batch's own files.
#[derive(Debug, thiserror::Error)]
enum BatchStopped {
    #[error(transparent)]
    Store(#[from] kpi_store::StoreError),
    #[error(transparent)]
    Spill(#[from] crate::spill::SpillError),
}

/// The report of a batch whose reading failed: nothing was stored.
fn stopped_before_storing(paths: Vec<String>, reason: String) -> BatchReport {
    let mut report = BatchReport { stopped: Some(reason), ..BatchReport::default() };
    for path in paths {
        report.files.push(ParsedFile::unread(path).not_stored());
    }
    report
}

/// Fills in, per period seen, the expected units that have no report (in a dry run, none from
/// this batch either).
async fn list_missing(store: &Store, report: &mut BatchReport, dry_run: bool) -> Result<(), BatchStopped> {
    let periods: Vec<String> = report.files.periods().map(str::to_owned).collect();
    let present = if dry_run { report.files.units_by_period()? } else { BTreeMap::new() };
    for code in periods {
        let Ok(period) = Period::parse(&code) else { continue };
        let mut missing = store.missing_units(period).await?;
        if let Some(present) = present.get(&code) {
            missing.retain(|unit| !present.contains(unit.as_str()));
        }
        let snapshot = store.snapshot().await?;
        let mut by_parent: BTreeMap<String, usize> = BTreeMap::new();
        for unit in &missing {
            let parent = snapshot.unit(unit).and_then(|u| u.definition.parent.as_ref());
            *by_parent.entry(parent.map_or_else(|| "-".to_owned(), ToString::to_string)).or_default() += 1;
        }
        let mut by_parent: Vec<(String, usize)> = by_parent.into_iter().collect();
        by_parent.sort_by(|(a, m), (b, n)| n.cmp(m).then_with(|| a.cmp(b)));
        report.missing_by_parent.insert(code.clone(), by_parent);
        report.missing.insert(code, missing.iter().map(|u| u.to_string()).collect());
    }
    Ok(())
}

/// Writes the JSON report, streaming the files' reports from where the batch kept them. A
/// report that cannot be written whole is removed, never left half-written.
pub fn write_json(report: &BatchReport, path: &Path) -> Result<(), BatchError> {
    let output = |source| BatchError::Output { path: path.to_owned(), source };
    let file = std::fs::File::create(path).map_err(output)?;
    let mut out = BufWriter::new(file);
    let written =
        serde_json::to_writer_pretty(&mut out, report).map_err(std::io::Error::other).and_then(|()| out.flush());
    if written.is_err() {
        std::fs::remove_file(path).ok();
    }
    written.map_err(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_up_to_the_limit_and_refused_one_byte_past_it() -> Result<(), Box<dyn std::error::Error>> {
        let folder = kpi_store::test_support::temp_dir("read-bounded")?;
        let (small, huge) = (folder.join("small.xlsx"), folder.join("huge.xlsx"));
        std::fs::write(&small, b"PK")?;
        std::fs::write(&huge, vec![0u8; MAX_FILE_BYTES + 1])?;
        let read_small = input_bytes(Source::File(small));
        let read_huge = input_bytes(Source::File(huge));
        let read_folder = input_bytes(Source::File(folder.clone()));
        std::fs::remove_dir_all(&folder)?;
        assert_eq!(read_small, Ok(b"PK".to_vec()));
        let expected = format!("{} bytes > {MAX_FILE_BYTES}", MAX_FILE_BYTES + 1);
        assert!(matches!(&read_huge, Err(Problem::TooLarge { detail }) if *detail == expected), "{read_huge:?}");
        assert!(matches!(read_folder, Err(Problem::Unreadable { .. })), "{read_folder:?}");
        Ok(())
    }
}
