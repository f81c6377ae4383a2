//! A dry run in one pass. It stores nothing, so what it predicts for one file never depends
//! on another file of the batch: each group of acceptable files is predicted (checked against
//! the store and compared with its current revisions) while the parse workers read on, the
//! predictions are kept on disk ([`FileReports`]), and once every file is read the ambiguous
//! ones are rejected, exactly as the store pass of an import would have reported them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use kpi_core::{Catalog, Period, UnitCode};
use kpi_store::{Store, StoreError};
use tokio::task::JoinHandle;

use crate::batch::{BatchOptions, BatchReport, Input};
use crate::file_reports::FileReports;
use crate::issues::{Issue, issue};
use crate::pipeline::{FILES_PER_COMMIT, ReadPassError, Reading, ambiguous_files};
use crate::{FileReport, ImportOptions, ParsedFile, SheetReader, Status, file_name_of, store_files};

/// Groups a dry run predicts at once while the workers read on: one predicting while the
/// next fills, so the workers' pipes never wait on the database.
const GROUPS_PREDICTED_AT_ONCE: usize = 2;

/// Reads and predicts every input, `jobs` at a time; `options.progress` advances as each file
/// is read and then as each is final. A reader failure stops the batch as the read pass of an
/// import does.
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
    running: Running,
    reports: FileReports,
    /// Each predicted file's warnings from reading alone, before the store's checks added theirs.
    read_warnings: Vec<usize>,
    /// Why the batch stopped: the database failed (later files are not predicted, as after a
    /// failed group of an import) or a prediction was lost.
    stopped: Option<String>,
    /// A group's prediction task failed: later predictions are dropped, and their files end
    /// `not_stored`.
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
            running: Running(VecDeque::with_capacity(GROUPS_PREDICTED_AT_ONCE + 1)),
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
            self.running.0.push_back(tokio::spawn(std::future::ready((
                group.into_iter().map(ParsedFile::not_stored).collect(),
                None,
            ))));
        } else {
            let (store, options) = (self.store.clone(), self.options.clone());
            self.running.0.push_back(tokio::spawn(async move { store_files(&store, group, &options).await }));
        }
        while self.running.0.len() > GROUPS_PREDICTED_AT_ONCE {
            self.collect_oldest().await;
        }
    }

    /// Keeps the oldest running group's predictions. A group predicted after the batch
    /// stopped is kept as `not_stored`, as if it had not been predicted.
    async fn collect_oldest(&mut self) {
        let Some(running) = self.running.0.pop_front() else { return };
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
        while !self.running.0.is_empty() {
            self.collect_oldest().await;
        }
        Predicted { reports: self.reports, read_warnings: self.read_warnings, stopped: self.stopped }
    }
}

/// The groups being predicted, oldest first. A batch that stops before collecting them (the
/// reader failed) abandons them.
struct Running(VecDeque<JoinHandle<(Vec<FileReport>, Option<StoreError>)>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.iter().for_each(JoinHandle::abort);
    }
}

/// The batch's report from a dry run's predictions, in batch order: an ambiguous file is
/// rejected as such, with only the warnings of its reading, as an import's store pass
/// reports it.
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
