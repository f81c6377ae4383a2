//! A batch's passes, in memory bounded by the files in flight, not by the batch.
//!
//! 1. **Read**: every input is read by the parse workers and held to the report contract,
//!    `jobs` at a time, in batch order ([`Reading`]). An acceptable file's checked report is
//!    spilled to disk ([`Spill`]) and only its unit and period are kept; a rejected file is kept
//!    as it is (its errors belong to the batch's report anyway).
//! 2. **Store**: with every file's unit and period known, files that share them are rejected
//!    as ambiguous; the others are read back one at a time, as they were checked, and stored
//!    in groups of [`FILES_PER_COMMIT`], up to [`Store::write_lanes`] groups at once
//!    ([`Storing`]).
//!
//! A dry run stores nothing and runs in one pass instead ([`crate::dry_run`]), on the same
//! [`Reading`] and the same ambiguity rule ([`ambiguous_files`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use kpi_core::{Catalog, Period, UnitCode};
use kpi_store::{Store, StoreError};
use tokio::task::JoinHandle;

use crate::batch::{BatchOptions, BatchProgress, BatchReport, Input, input_bytes};
use crate::issues::{Problem, issue};
use crate::spill::{Spill, SpillError, SpillRecords};
use crate::{
    FileReport, ImportOptions, ParsedFile, SheetReader, WorkerError, checks, file_name_of, read_file, sha256_hex,
    write_checked_files,
};

/// Files stored per transaction: the commit, the statements and the ancestors' totals are
/// paid once per group, and a file is reported stored only once its group committed. Groups
/// of 500 took a tenth off a national batch's store pass, but raised the peak of the 10-year
/// batch from 81 to 132 MiB, past #8's 100.
pub(crate) const FILES_PER_COMMIT: usize = 200;

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
pub(crate) struct Reading {
    reader: SheetReader,
    inputs: std::vec::IntoIter<Input>,
    catalog: Arc<Catalog>,
    options: ImportOptions,
    window: usize,
    in_flight: VecDeque<JoinHandle<Result<ParsedFile, WorkerError>>>,
}

impl Reading {
    pub(crate) fn new(
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
    pub(crate) async fn next(&mut self) -> Option<Result<ParsedFile, WorkerError>> {
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
/// Up to [`Store::write_lanes`] groups are written at once, each after every earlier group it
/// depends on ([`Storing::start`]).
pub async fn store_all(
    store: &Store,
    pass: ReadPass,
    paths: Vec<String>,
    catalog: &Catalog,
    options: &BatchOptions,
) -> BatchReport {
    let lang = options.import.lang;
    let ReadPass { mut spilled, mut rejected, keys } = pass;
    let mut ambiguous = ambiguous_files(&keys, &paths);
    drop(keys);
    let mut storing = Storing::new(store, catalog, options);
    let mut group = Vec::with_capacity(FILES_PER_COMMIT);
    // Each path is dropped as its file is reached: its report holds its own copy.
    for (index, path) in paths.into_iter().enumerate() {
        let mut file = match rejected.remove(&index) {
            Some(file) => file,
            None if storing.report.stopped.is_some() => ParsedFile::unread(path),
            None => match spilled.next_file() {
                Some(Ok(file)) => file,
                failed => {
                    let reason = failed
                        .and_then(Result::err)
                        .map_or_else(|| "the batch's spill file ended early".to_owned(), |error| error.to_string());
                    tracing::error!(%reason, "the batch stops: its spill file failed");
                    storing.report.stopped = Some(reason);
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
            storing.start(std::mem::take(&mut group)).await;
        }
    }
    storing.start(group).await;
    storing.finish().await
}

/// The groups being stored, oldest first, and the report of the groups already stored.
struct Storing<'a> {
    store: &'a Store,
    catalog: &'a Catalog,
    options: &'a BatchOptions,
    lanes: usize,
    in_flight: VecDeque<GroupInFlight>,
    report: BatchReport,
}

/// A group being stored by a task of its own.
struct GroupInFlight {
    /// The group's units and their parents: a later group with one of these units waits for
    /// this one to commit, because its checks read its units' history and their children's
    /// figures, and its writes its units' current figures.
    reach: HashSet<UnitCode>,
    /// The group's paths, for the reports of its files if its task is lost.
    paths: Vec<String>,
    task: JoinHandle<(Vec<FileReport>, Option<StoreError>)>,
}

impl<'a> Storing<'a> {
    fn new(store: &'a Store, catalog: &'a Catalog, options: &'a BatchOptions) -> Self {
        let lanes = store.write_lanes().max(1);
        Storing {
            store,
            catalog,
            options,
            lanes,
            in_flight: VecDeque::with_capacity(lanes),
            report: BatchReport::default(),
        }
    }

    /// Checks `group` and starts writing it, once a lane is free and every group in flight
    /// that holds one of its units or a child of one has committed: its checks and writes
    /// then read what those wrote, as they would after them in one lane. Checks run here, in
    /// batch order, so a group's checks (a parent's reading its children's figures) are done
    /// before any later group writes. Once the batch has stopped, the group is reported
    /// `not_stored` (after the groups before it).
    async fn start(&mut self, mut group: Vec<ParsedFile>) {
        if group.is_empty() {
            return;
        }
        let units: Vec<UnitCode> = group.iter().filter_map(ParsedFile::key).map(|(unit, _)| unit).collect();
        while self.in_flight.len() >= self.lanes
            || (self.report.stopped.is_some() && !self.in_flight.is_empty())
            || self.in_flight.iter().any(|earlier| units.iter().any(|unit| earlier.reach.contains(unit)))
        {
            self.finish_oldest().await;
        }
        if self.report.stopped.is_some() {
            let reports = group.into_iter().map(ParsedFile::not_stored).collect();
            self.keep(reports);
            return;
        }
        let data_issues = match checks::check_files(self.store, &mut group, self.options.import.lang).await {
            Ok(data_issues) => data_issues,
            Err(error) => {
                tracing::error!(%error, "the batch stops: the database failed");
                self.report.stopped = Some(error.to_string());
                // The groups before this one are reported first.
                self.finish_all().await;
                self.keep(group.into_iter().map(ParsedFile::not_stored).collect());
                return;
            }
        };
        let reach = units
            .iter()
            .flat_map(|unit| {
                let parent = self.catalog.unit(unit).and_then(|def| def.parent.clone());
                std::iter::once(unit.clone()).chain(parent)
            })
            .collect();
        let paths = group.iter().map(|file| file.path.clone()).collect();
        let (store, options) = (self.store.clone(), self.options.import.clone());
        let task = tokio::spawn(async move { write_checked_files(&store, group, data_issues, &options).await });
        self.in_flight.push_back(GroupInFlight { reach, paths, task });
    }

    /// Waits for the oldest group in flight and keeps its files' reports; a database failure
    /// (or a lost task) stops the batch.
    async fn finish_oldest(&mut self) {
        let Some(GroupInFlight { paths, task, .. }) = self.in_flight.pop_front() else { return };
        match task.await {
            Ok((reports, failure)) => {
                if let Some(error) = failure {
                    tracing::error!(%error, "the batch stops: the database failed");
                    self.report.stopped.get_or_insert_with(|| error.to_string());
                }
                self.keep(reports);
            }
            Err(error) => {
                tracing::error!(%error, "the batch stops: a group's task failed");
                self.report.stopped.get_or_insert_with(|| format!("a group's storing failed: {error}"));
                self.keep(paths.into_iter().map(|path| ParsedFile::unread(path).not_stored()).collect());
            }
        }
    }

    /// Tells the progress of each file and adds it to the batch's report.
    fn keep(&mut self, reports: Vec<FileReport>) {
        for file_report in reports {
            self.options.progress.finished(&file_report);
            self.report.files.push(file_report);
        }
    }

    /// Waits for every group in flight, oldest first, keeping their reports.
    async fn finish_all(&mut self) {
        while !self.in_flight.is_empty() {
            self.finish_oldest().await;
        }
    }

    /// Waits for every group in flight; the batch's report, in batch order.
    async fn finish(mut self) -> BatchReport {
        self.finish_all().await;
        std::mem::take(&mut self.report)
    }
}

impl Drop for Storing<'_> {
    /// A batch dropped midway (its caller gave up on it) abandons its groups in flight: each
    /// one's transaction rolls back.
    fn drop(&mut self) {
        self.in_flight.iter().for_each(|group| group.task.abort());
    }
}

/// The files whose unit and period another file of the batch also claims, each with the
/// problem naming the others.
pub(crate) fn ambiguous_files(keys: &[Option<(UnitCode, Period)>], paths: &[String]) -> HashMap<usize, Problem> {
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
