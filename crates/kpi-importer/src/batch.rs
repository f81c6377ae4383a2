//! A batch import: collecting files from paths, folders and zip archives, parsing them in
//! parallel, rejecting in-batch duplicates, storing each file in its own transaction, and the
//! end-of-run summary and JSON report.
//!
//! One bad file never stops the batch; only infrastructure failures (a missing path, an
//! unreadable folder, an unreachable database) end it early, as [`BatchError`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use kpi_core::{Catalog, Period, UnitCode};
use kpi_store::{Store, StoreError};
use serde::Serialize;

use crate::issues::{Lang, Problem, issue};
use crate::workbook::{MAX_FILE_BYTES, MAX_RATIO, MAX_UNPACKED_BYTES};
use crate::{FileReport, ImportOptions, ParsedFile, Status, file_name_of, parse_file, sha256_hex, store_file};

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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {source}")]
    Output { path: PathBuf, source: std::io::Error },
    #[error("the parsing threads failed: {0}")]
    Internal(String),
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

/// The JSON report: `{"files":[…],"missing":{"2023S1":["COLINH",…]}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchReport {
    pub files: Vec<FileReport>,
    /// Per period seen in the batch, the expected units that have no report.
    pub missing: BTreeMap<String, Vec<String>>,
}

impl BatchReport {
    pub fn any_rejected(&self) -> bool {
        self.files.iter().any(|f| f.status == Status::Rejected)
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
    let mut entries = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if is_skipped_name(&name) {
            continue;
        }
        if path.is_dir() {
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

/// Reads one input's bytes and parses it.
fn parse_input(input: Input, catalog: &Catalog, options: &ImportOptions) -> ParsedFile {
    let unusable = |path: String, bytes: &[u8], problem: Problem| {
        ParsedFile::refused(path, sha256_hex(bytes), &problem, options.lang)
    };
    let bytes = match input.source {
        Source::Bytes(bytes) => bytes,
        Source::Unusable(problem) => return unusable(input.path, &[], problem),
        Source::File(path) => match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_FILE_BYTES as u64 => {
                let problem = Problem::TooLarge { detail: format!("{} bytes > {MAX_FILE_BYTES}", meta.len()) };
                return unusable(input.path, &[], problem);
            }
            _ => match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => return unusable(input.path, &[], Problem::Unreadable { detail: e.to_string() }),
            },
        },
    };
    parse_file(&input.path, &bytes, catalog, options)
}

/// Parses inputs on `jobs` threads, keeping their order; `on_parsed` is called as each
/// finishes (for progress).
pub fn parse_all(
    inputs: Vec<Input>,
    catalog: &Catalog,
    options: &ImportOptions,
    jobs: usize,
    on_parsed: &(dyn Fn(&ParsedFile) + Sync),
) -> Vec<ParsedFile> {
    let count = inputs.len();
    let queue: Vec<Mutex<Option<Input>>> = inputs.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let results: Vec<Mutex<Option<ParsedFile>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, count.max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let input = queue[index].lock().map(|mut slot| slot.take()).ok().flatten();
                    let Some(input) = input else { continue };
                    let path = input.path.clone();
                    // A bug in the rules must reject one file, not end the batch.
                    let parsed = catch_unwind(AssertUnwindSafe(|| parse_input(input, catalog, options)))
                        .unwrap_or_else(|_| {
                            let problem = Problem::NotAWorkbook { detail: "internal error while reading".into() };
                            ParsedFile::refused(path, String::new(), &problem, options.lang)
                        });
                    on_parsed(&parsed);
                    if let Ok(mut slot) = results[index].lock() {
                        *slot = Some(parsed);
                    }
                }
            });
        }
    });
    results.into_iter().filter_map(|slot| slot.into_inner().ok().flatten()).collect()
}

/// Rejects every file whose unit and period another file of the batch also claims.
pub fn reject_ambiguous(parsed: &mut [ParsedFile], lang: Lang) {
    let mut by_key: HashMap<(UnitCode, Period), Vec<usize>> = HashMap::new();
    for (index, file) in parsed.iter().enumerate() {
        if let Some(key) = file.key() {
            by_key.entry(key).or_default().push(index);
        }
    }
    for ((unit, period), indexes) in by_key.into_iter().filter(|(_, v)| v.len() > 1) {
        for &index in &indexes {
            let others: Vec<String> =
                indexes.iter().filter(|&&other| other != index).map(|&other| parsed[other].path.clone()).collect();
            let problem =
                Problem::AmbiguousInBatch { other: others.join(", "), unit: unit.to_string(), period: period.code() };
            let name = file_name_of(&parsed[index].path).to_owned();
            parsed[index].reject(issue(lang, &name, "", "", &problem));
        }
    }
}

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub import: ImportOptions,
    pub jobs: usize,
    /// Show a progress bar (stderr is a terminal); otherwise one plain line per file.
    pub progress: bool,
}

/// Runs a whole batch: parse in parallel, reject ambiguous files, store each file, then list
/// the missing units of every period seen.
pub async fn run_batch(
    store: &Store,
    catalog: &Catalog,
    inputs: Vec<Input>,
    options: &BatchOptions,
) -> Result<BatchReport, BatchError> {
    let lang = options.import.lang;
    let bar = if options.progress {
        let bar = ProgressBar::new(inputs.len() as u64 * 2);
        let style = ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(if lang == Lang::Vi { "đang đọc tệp" } else { "parsing" });
        bar
    } else {
        ProgressBar::hidden()
    };
    let parse_bar = bar.clone();
    let (catalog_owned, import, jobs) = (Arc::new(catalog.clone()), options.import.clone(), options.jobs);
    let mut parsed =
        tokio::task::spawn_blocking(move || parse_all(inputs, &catalog_owned, &import, jobs, &|_| parse_bar.inc(1)))
            .await
            .map_err(|e| BatchError::Internal(e.to_string()))?;
    reject_ambiguous(&mut parsed, lang);
    bar.set_message(if lang == Lang::Vi { "đang lưu" } else { "storing" });
    let mut report = BatchReport::default();
    let mut periods = BTreeSet::new();
    for file in parsed {
        let period = match &file.result {
            Ok(report) => Some(report.period),
            Err(rejected) => rejected.period,
        };
        periods.extend(period);
        let file_report = store_file(store, file, &options.import).await?;
        let line = file_line(&file_report, lang);
        if options.progress {
            bar.println(line);
        } else {
            say(&format!("{line}\n"));
        }
        bar.inc(1);
        report.files.push(file_report);
    }
    bar.finish_and_clear();
    for period in periods {
        let mut missing = store.missing_units(period).await?;
        if options.import.dry_run {
            let code = period.code();
            let present: BTreeSet<&str> = report
                .files
                .iter()
                .filter(|f| f.status != Status::Rejected && f.period.as_deref() == Some(code.as_str()))
                .filter_map(|f| f.unit.as_deref())
                .collect();
            missing.retain(|unit| !present.contains(unit.as_str()));
        }
        report.missing.insert(period.code(), missing.iter().map(|u| u.to_string()).collect());
    }
    Ok(report)
}

fn status_label(status: Status, lang: Lang) -> &'static str {
    match (status, lang) {
        (Status::Accepted, Lang::Vi) => "mới",
        (Status::Revised, Lang::Vi) => "sửa đổi",
        (Status::Unchanged, Lang::Vi) => "không đổi",
        (Status::Rejected, Lang::Vi) => "từ chối",
        (status, Lang::En) => status.as_str(),
    }
}

/// The line printed as each file is processed.
pub fn file_line(file: &FileReport, lang: Lang) -> String {
    let what = match (&file.unit, &file.period) {
        (Some(unit), Some(period)) => format!(" {unit} {period}"),
        (Some(unit), None) => format!(" {unit}"),
        _ => String::new(),
    };
    let revision = match (file.status, file.revision, lang) {
        (Status::Rejected, _, Lang::Vi) => format!(", {} lỗi", file.errors.len()),
        (Status::Rejected, _, Lang::En) => format!(", {} error(s)", file.errors.len()),
        (_, Some(n), Lang::Vi) => format!(", lần {n}"),
        (_, Some(n), Lang::En) => format!(", revision {n}"),
        (_, None, _) => String::new(),
    };
    format!("[{}] {}{what}{revision}", status_label(file.status, lang), file.path)
}

/// The end-of-run summary: a table of files, the errors of rejected files, totals, and the
/// missing units per period.
pub fn render_summary(report: &BatchReport, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let head = if vi {
        ["Tệp", "Kết quả", "Đơn vị", "Kỳ", "Lần", "Lỗi", "Cảnh báo"]
    } else {
        ["File", "Status", "Unit", "Period", "Rev", "Errors", "Warnings"]
    };
    let rows: Vec<[String; 7]> = report
        .files
        .iter()
        .map(|f| {
            [
                f.path.clone(),
                status_label(f.status, lang).to_owned(),
                f.unit.clone().unwrap_or_else(|| "-".into()),
                f.period.clone().unwrap_or_else(|| "-".into()),
                f.revision.map_or_else(|| "-".into(), |n| n.to_string()),
                f.errors.len().to_string(),
                f.warnings.len().to_string(),
            ]
        })
        .collect();
    let mut widths = head.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = String::new();
    out.push_str(&line(&head.map(str::to_owned)));
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for (row, file) in rows.iter().zip(&report.files) {
        out.push_str(&line(row));
        out.push('\n');
        for error in &file.errors {
            out.push_str(&format!("    ✗ [{}] {}\n", error.code, error.message));
        }
        for warning in &file.warnings {
            out.push_str(&format!("    ! [{}] {}\n", warning.code, warning.message));
        }
    }
    let count = |status: Status| report.files.iter().filter(|f| f.status == status).count();
    let (accepted, revised, unchanged, rejected) =
        (count(Status::Accepted), count(Status::Revised), count(Status::Unchanged), count(Status::Rejected));
    out.push('\n');
    if vi {
        out.push_str(&format!(
            "Tổng: {} tệp: {accepted} mới, {revised} sửa đổi, {unchanged} không đổi, {rejected} từ chối\n",
            report.files.len()
        ));
        out.push_str("Đơn vị chưa báo cáo:\n");
    } else {
        out.push_str(&format!(
            "Total: {} files: {accepted} accepted, {revised} revised, {unchanged} unchanged, {rejected} rejected\n",
            report.files.len()
        ));
        out.push_str("Units still missing:\n");
    }
    if report.missing.is_empty() {
        out.push_str(if vi { "  (không có kỳ nào đọc được)\n" } else { "  (no period could be read)\n" });
    }
    for (period, units) in &report.missing {
        let list = if units.is_empty() { (if vi { "(đủ)" } else { "(none)" }).to_owned() } else { units.join(", ") };
        out.push_str(&format!("  {period}: {list}\n"));
    }
    out
}

/// Prints to stdout, ignoring a closed pipe (`kpi-import … | head`): the files are already
/// stored, and a print must never turn that into a panic.
pub fn say(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// Writes the JSON report.
pub fn write_json(report: &BatchReport, path: &Path) -> Result<(), BatchError> {
    let output = |source| BatchError::Output { path: path.to_owned(), source };
    let json = serde_json::to_vec_pretty(report).map_err(|e| output(std::io::Error::other(e)))?;
    std::fs::write(path, json).map_err(output)
}
