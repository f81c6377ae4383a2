//! A batch's passes, in memory bounded by the files in flight, not by the batch.
//!
//! 1. **Read**: every input is read by the parse workers and held to the report contract,
//!    `jobs` at a time, in batch order ([`Reading`]). An acceptable file's checked report is
//!    spilled to disk ([`Spill`]) and only its unit and period are kept; a rejected file is kept
//!    as it is (its errors belong to the batch's report anyway).
//! 2. **Store**: with every file's unit and period known, files that share them are rejected
//!    as ambiguous; the others are read back one at a time, as they were checked, and stored
//!    in groups of [`FILES_PER_COMMIT`].
//!
//! A dry run stores nothing, so what it predicts for one file never depends on another: it
//! predicts each group while the workers read on ([`predict_all`]), keeps the predictions on
//! disk, and only relabels the ambiguous files once every file has been read.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use kpi_core::{Catalog, Period, UnitCode};
use kpi_store::Store;

use kpi_store::StoreError;
use tokio::task::JoinHandle;

use crate::batch::{BatchOptions, BatchProgress, BatchReport, Input, input_bytes};
use crate::file_reports::FileReports;
use crate::issues::{Issue, Problem, issue};
use crate::spill::{Spill, SpillError, SpillRecords};
use crate::{
    FileReport, ImportOptions, ParsedFile, SheetReader, Status, WorkerError, file_name_of, read_file, sha256_hex,
    store_files,
};

/// Files stored per transaction: the commit, the statements and the ancestors' totals are
/// paid once per group, and a file is reported stored only once its group committed.
const FILES_PER_COMMIT: usize = 200;

/// Why the read pass stopped: the reader or the spill file failed, not a file.
#[derive(Debug, thiserror::Error)]
pub enum ReadPassError {
    #[error(transparent)]
    Reader(#[from] WorkerError),
    #[error(transparent)]
    Spill(#[from] SpillError),
}

/// What the read pass leaves for the store pass.
#[derive(Debug)]
pub struct ReadPass {
    /// The readable reports, in batch order.
    spilled: SpillRecords,
    /// The rejected files, by position in the batch.
    rejected: HashMap<usize, ParsedFile>,
    /// Each file's unit and period, when it is a readable report.
    keys: Vec<Option<(UnitCode, Period)>>,
}

/// The inputs being read and checked, `jobs` at a time, handed out in batch order. At most
/// four times `jobs` files are in memory at once (as many as the workers admit); dropping it
/// abandons the files in flight.
struct Reading {
    reader: SheetReader,
    inputs: std::vec::IntoIter<Input>,
    catalog: Arc<Catalog>,
    options: ImportOptions,
    window: usize,
    in_flight: VecDeque<JoinHandle<Result<ParsedFile, WorkerError>>>,
}

impl Reading {
    fn new(
        reader: &SheetReader,
        inputs: Vec<Input>,
        catalog: &Arc<Catalog>,
        options: &ImportOptions,
        jobs: usize,
    ) -> Self {
        let window = jobs.max(1) * crate::isolation::pool::FILES_PER_WORKER;
        Reading {
            reader: reader.clone(),
            inputs: inputs.into_iter(),
            catalog: Arc::clone(catalog),
            options: options.clone(),
            window,
            in_flight: VecDeque::with_capacity(window),
        }
    }

    /// The next file, read and checked, or `None` after the last.
    async fn next(&mut self) -> Option<Result<ParsedFile, WorkerError>> {
        while self.in_flight.len() < self.window
            && let Some(input) = self.inputs.next()
        {
            let task = read_input(self.reader.clone(), input, Arc::clone(&self.catalog), self.options.clone());
            self.in_flight.push_back(tokio::spawn(task));
        }
        let next = self.in_flight.pop_front()?;
        Some(match next.await {
            Ok(outcome) => outcome,
            Err(error) => Err(WorkerError::Task(error.to_string())),
        })
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.in_flight.iter().for_each(JoinHandle::abort);
    }
}

/// Reads and checks every input, `jobs` at a time; `progress` advances as each finishes.
pub async fn read_all(
    reader: &SheetReader,
    inputs: Vec<Input>,
    catalog: &Arc<Catalog>,
    options: &ImportOptions,
    jobs: usize,
    progress: &Arc<dyn BatchProgress>,
) -> Result<ReadPass, ReadPassError> {
    let mut keys = Vec::with_capacity(inputs.len());
    let mut reading = Reading::new(reader, inputs, catalog, options, jobs);
    let mut spill = Spill::create()?;
    let mut rejected = HashMap::new();
    while let Some(outcome) = reading.next().await {
        let parsed = outcome?;
        progress.parsed();
        match &parsed.result {
            Ok(report) => {
                spill.push(&parsed.path, &parsed.sha256, report)?;
                keys.push(Some((report.unit.clone(), report.period)));
            }
            Err(_) => {
                rejected.insert(keys.len(), parsed);
                keys.push(None);
            }
        }
    }
    Ok(ReadPass { spilled: spill.into_records()?, rejected, keys })
}

/// Reads one input and checks it.
async fn read_input(
    reader: SheetReader,
    input: Input,
    catalog: Arc<Catalog>,
    options: ImportOptions,
) -> Result<ParsedFile, WorkerError> {
    let Input { path, source } = input;
    let bytes = tokio::task::spawn_blocking(move || input_bytes(source))
        .await
        .unwrap_or_else(|e| Err(Problem::Unreadable { detail: e.to_string() }));
    match bytes {
        Ok(bytes) => {
            let read = read_file(&reader, path, bytes).await?;
            Ok(read.check(&catalog, &options))
        }
        Err(problem) => Ok(ParsedFile::refused(path, sha256_hex(&[]), &problem, options.lang)),
    }
}

/// Stores the files group by group, in batch order, telling the progress of each once its
/// group committed; after a database or spill failure the remaining files are `not_stored`.
pub async fn store_all(store: &Store, pass: ReadPass, paths: Vec<String>, options: &BatchOptions) -> BatchReport {
    let lang = options.import.lang;
    let ReadPass { mut spilled, mut rejected, keys } = pass;
    let mut ambiguous = ambiguous_files(&keys, &paths);
    drop(keys);
    let mut report = BatchReport::default();
    let mut group = Vec::with_capacity(FILES_PER_COMMIT);
    // Each path is dropped as its file is reached: its report holds its own copy.
    for (index, path) in paths.into_iter().enumerate() {
        let mut file = match rejected.remove(&index) {
            Some(file) => file,
            None if report.stopped.is_some() => ParsedFile::unread(path),
            None => match spilled.next_file() {
                Some(Ok(file)) => file,
                failed => {
                    let reason = failed
                        .and_then(Result::err)
                        .map_or_else(|| "the batch's spill file ended early".to_owned(), |error| error.to_string());
                    tracing::error!(%reason, "the batch stops: its spill file failed");
                    report.stopped = Some(reason);
                    ParsedFile::unread(path)
                }
            },
        };
        if let Some(problem) = ambiguous.remove(&index) {
            let name = file_name_of(&file.path).to_owned();
            file.reject(issue(lang, &name, "", "", &problem));
        }
        group.push(file);
        if group.len() == FILES_PER_COMMIT {
            store_group(store, std::mem::take(&mut group), options, &mut report).await;
        }
    }
    store_group(store, group, options, &mut report).await;
    report
}

/// Stores one group (or, once the batch has stopped, reports it `not_stored`).
async fn store_group(store: &Store, group: Vec<ParsedFile>, options: &BatchOptions, report: &mut BatchReport) {
    if group.is_empty() {
        return;
    }
    let reports = if report.stopped.is_some() {
        group.into_iter().map(ParsedFile::not_stored).collect()
    } else {
        let (reports, failure) = store_files(store, group, &options.import).await;
        if let Some(error) = failure {
            tracing::error!(%error, "the batch stops: the database failed");
            report.stopped = Some(error.to_string());
        }
        reports
    };
    for file_report in reports {
        options.progress.finished(&file_report);
        report.files.push(file_report);
    }
}

/// Groups a dry run predicts at once while the workers read on: one predicting while the
/// next fills, so the workers' pipes never wait on the database.
const GROUPS_PREDICTED_AT_ONCE: usize = 2;

/// A dry run, in one pass: each group of acceptable files is predicted (checked against the
/// store and compared with its current revisions) as soon as it is read, while the workers
/// read the next. Once every file is read, the ambiguous ones are rejected, exactly as
/// [`store_all`] would have rejected them before predicting; a reader failure stops the batch
/// as [`read_all`]'s does.
pub async fn predict_all(
    store: &Store,
    reader: &SheetReader,
    inputs: Vec<Input>,
    catalog: &Arc<Catalog>,
    paths: &[String],
    options: &BatchOptions,
) -> Result<BatchReport, ReadPassError> {
    let mut keys = Vec::with_capacity(inputs.len());
    let mut reading = Reading::new(reader, inputs, catalog, &options.import, options.jobs);
    let mut predictions = Predictions::new(store, &options.import);
    let mut rejected = HashMap::new();
    while let Some(outcome) = reading.next().await {
        let parsed = outcome?;
        options.progress.parsed();
        let key = parsed.key();
        if key.is_some() {
            predictions.push(parsed).await;
        } else {
            rejected.insert(keys.len(), parsed);
        }
        keys.push(key);
    }
    drop(reading);
    options.progress.storing();
    let predicted = predictions.finish().await;
    Ok(relabel_ambiguous(paths, &keys, rejected, predicted, options))
}

/// The predictions of a dry run's acceptable files, in batch order, kept on disk.
struct Predictions {
    store: Store,
    options: ImportOptions,
    group: Vec<ParsedFile>,
    running: VecDeque<JoinHandle<(Vec<FileReport>, Option<StoreError>)>>,
    reports: FileReports,
    /// Each predicted file's warnings from reading alone, before the store's checks added theirs.
    read_warnings: Vec<usize>,
    /// Why the batch stopped: the database failed (later files are not predicted), or a
    /// prediction was lost (later predictions are dropped, and those files are `not_stored`).
    stopped: Option<String>,
    lost: bool,
}

/// What a dry run's predicting left for the relabelling.
struct Predicted {
    reports: FileReports,
    read_warnings: Vec<usize>,
    stopped: Option<String>,
}

impl Predictions {
    fn new(store: &Store, options: &ImportOptions) -> Self {
        Predictions {
            store: store.clone(),
            options: options.clone(),
            group: Vec::with_capacity(FILES_PER_COMMIT),
            running: VecDeque::with_capacity(GROUPS_PREDICTED_AT_ONCE + 1),
            reports: FileReports::new(),
            read_warnings: Vec::new(),
            stopped: None,
            lost: false,
        }
    }

    /// Adds an acceptable file; a full group starts predicting.
    async fn push(&mut self, file: ParsedFile) {
        self.read_warnings.push(file.result.as_ref().map_or(0, |report| report.warnings.len()));
        self.group.push(file);
        if self.group.len() == FILES_PER_COMMIT {
            self.start_group().await;
        }
    }

    /// Starts predicting the group, after collecting the oldest prediction if as many as
    /// [`GROUPS_PREDICTED_AT_ONCE`] are running. Once the batch has stopped, its files are
    /// `not_stored` without asking the database.
    async fn start_group(&mut self) {
        let group = std::mem::replace(&mut self.group, Vec::with_capacity(FILES_PER_COMMIT));
        if self.stopped.is_some() {
            self.running.push_back(tokio::spawn(std::future::ready((
                group.into_iter().map(ParsedFile::not_stored).collect(),
                None,
            ))));
        } else {
            let (store, options) = (self.store.clone(), self.options.clone());
            self.running.push_back(tokio::spawn(async move { store_files(&store, group, &options).await }));
        }
        while self.running.len() > GROUPS_PREDICTED_AT_ONCE {
            self.collect_oldest().await;
        }
    }

    /// Keeps the oldest running group's predictions. A group predicted after the batch
    /// stopped is kept as `not_stored`, as if it had not been predicted.
    async fn collect_oldest(&mut self) {
        let Some(running) = self.running.pop_front() else { return };
        let (reports, failure) = match running.await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, "the batch stops: a group's prediction failed");
                self.stopped.get_or_insert_with(|| format!("a group's prediction failed: {error}"));
                self.lost = true;
                return;
            }
        };
        if self.lost {
            return;
        }
        let after_stop = self.stopped.is_some();
        let first = self.reports.len();
        for (offset, report) in reports.into_iter().enumerate() {
            let read_warnings = self.read_warnings.get(first + offset).copied().unwrap_or(0);
            self.reports.push(if after_stop { unchecked(report, read_warnings, None) } else { report });
        }
        if let Some(error) = failure {
            tracing::error!(%error, "the batch stops: the database failed");
            self.stopped.get_or_insert_with(|| error.to_string());
        }
    }

    /// Predicts the last group and collects every prediction.
    async fn finish(mut self) -> Predicted {
        if !self.group.is_empty() {
            self.start_group().await;
        }
        while !self.running.is_empty() {
            self.collect_oldest().await;
        }
        Predicted { reports: self.reports, read_warnings: self.read_warnings, stopped: self.stopped }
    }
}

/// The batch's report from a dry run's predictions, in batch order: an ambiguous file is
/// rejected as such, with only the warnings of its reading, as [`store_all`] reports it.
fn relabel_ambiguous(
    paths: &[String],
    keys: &[Option<(UnitCode, Period)>],
    mut rejected: HashMap<usize, ParsedFile>,
    predicted: Predicted,
    options: &BatchOptions,
) -> BatchReport {
    let lang = options.import.lang;
    let mut ambiguous = ambiguous_files(keys, paths);
    let Predicted { reports: predictions, read_warnings, stopped } = predicted;
    let mut report = BatchReport { stopped, ..BatchReport::default() };
    let mut predictions = predictions.iter().zip(read_warnings);
    for (index, path) in paths.iter().enumerate() {
        let file_report = match rejected.remove(&index) {
            Some(file) => file.report(Status::Rejected, None),
            None => match predictions.next() {
                Some((Ok(predicted), read_warnings)) => match ambiguous.remove(&index) {
                    Some(problem) => {
                        let error = issue(lang, file_name_of(&predicted.path), "", "", &problem);
                        unchecked(predicted, read_warnings, Some(error))
                    }
                    None => predicted,
                },
                failed => {
                    if report.stopped.is_none() {
                        let reason = match failed {
                            Some((Err(error), _)) => error.to_string(),
                            _ => "the batch's predictions ended early".to_owned(),
                        };
                        tracing::error!(%reason, "the batch stops: its predictions were not kept");
                        report.stopped = Some(reason);
                    }
                    ParsedFile::unread(path.clone()).not_stored()
                }
            },
        };
        options.progress.finished(&file_report);
        report.files.push(file_report);
    }
    report
}

/// A predicted file's report as it would have been without the store's checks and
/// prediction: rejected with `error`, or else not stored; either way with the warnings of its
/// reading alone (the first `read_warnings`).
fn unchecked(mut report: FileReport, read_warnings: usize, error: Option<Issue>) -> FileReport {
    report.warnings.truncate(read_warnings);
    report.errors = error.into_iter().collect();
    report.status = if report.errors.is_empty() { Status::NotStored } else { Status::Rejected };
    report.revision = None;
    report
}

/// The files whose unit and period another file of the batch also claims, each with the
/// problem naming the others.
fn ambiguous_files(keys: &[Option<(UnitCode, Period)>], paths: &[String]) -> HashMap<usize, Problem> {
    let mut by_key: HashMap<&(UnitCode, Period), Vec<usize>> = HashMap::new();
    for (index, key) in keys.iter().enumerate() {
        if let Some(key) = key {
            by_key.entry(key).or_default().push(index);
        }
    }
    let mut problems = HashMap::new();
    for ((unit, period), indexes) in by_key.into_iter().filter(|(_, indexes)| indexes.len() > 1) {
        for &index in &indexes {
            let others: Vec<&str> = indexes
                .iter()
                .filter(|&&other| other != index)
                .filter_map(|&other| paths.get(other).map(String::as_str))
                .collect();
            let problem =
                Problem::AmbiguousInBatch { other: others.join(", "), unit: unit.to_string(), period: period.code() };
            problems.insert(index, problem);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_sharing_a_unit_and_period_name_each_other() -> Result<(), Box<dyn std::error::Error>> {
        let key = |unit: &str, year| -> Result<_, Box<dyn std::error::Error>> {
            Ok(Some((UnitCode::parse(unit)?, Period::Year(year))))
        };
        let keys = vec![key("BOCBO", 2022)?, None, key("BOCBO", 2023)?, key("BOCBO", 2022)?, key("BOCBO", 2022)?];
        let paths: Vec<String> = ["a.xlsx", "b.xlsx", "c.xlsx", "d.xlsx", "e.xlsx"].map(String::from).to_vec();
        let problems = ambiguous_files(&keys, &paths);
        let mut indexes: Vec<usize> = problems.keys().copied().collect();
        indexes.sort_unstable();
        assert_eq!(indexes, vec![0, 3, 4]);
        assert!(
            matches!(problems.get(&3), Some(Problem::AmbiguousInBatch { other, .. }) if other == "a.xlsx, e.xlsx"),
            "{problems:?}"
        );
        Ok(())
    }
}
