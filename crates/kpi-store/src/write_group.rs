//! A group of revision writes, in a handful of statements whatever its size.
//!
//! 1. [`GroupState::load`] reads what the group needs: the units' locks (PostgreSQL), their
//!    report rows, the reports' revisions and the units' current figures.
//! 2. [`plan`] decides every file's outcome in memory, in order (unchanged, frozen, or the
//!    next revision with its changes to the totals), each file seeing the earlier ones as it
//!    would have read them back. A file that cannot be written (an unknown unit) ends the
//!    group there; the files before it are written.
//! 3. [`GroupPlan::write`] writes the planned revisions, their values and the reports' new
//!    current revisions in multi-row statements.
//!
//! Every check that can refuse a file runs in step 2, so a statement of step 3 fails only for
//! the database's own reasons, which roll back the whole group: each file stays all or
//! nothing, and none is reported stored before the group commits.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use kpi_core::figure::{MAX_WHOLE, within_bounds};
use kpi_core::totals::Reported;
use kpi_core::{Figure, Period};
use sea_orm::sea_query::{Expr, ExprTrait, Iden, LockType, OnConflict, Order, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, Statement, Value,
};

use crate::approvals;
use crate::batches::statement_batches;
use crate::entity::{report, report_value, revision, unit};
use crate::error::StoreError;
use crate::overlapped;
use crate::quality;
use crate::revisions::{NewRevision, NewValue, WriteOutcome};
use crate::rows_insert::RowsInsert;
use crate::snapshot::{Snapshot, UnitInfo};
use crate::totals;

/// Report rows per saving statement: 5 parameters each, well under every backend's limit.
const REPORTS_PER_STATEMENT: usize = 500;
/// Revisions per insert: 10 parameters each.
const REVISIONS_PER_STATEMENT: usize = 300;
/// Values per insert: 6 parameters each.
const VALUES_PER_STATEMENT: usize = 1000;

/// One report as the group's writes see it.
#[derive(Debug, Clone)]
pub(crate) struct ReportState {
    pub row: report::Model,
    /// The current revision's number and SHA-256.
    pub current: Option<(i32, String)>,
    /// The highest revision number so far (0 for none).
    pub latest: i32,
}

/// The reports and figures of a group's units.
#[derive(Debug)]
pub(crate) struct GroupState {
    reports: HashMap<(i32, Period), ReportState>,
    figures: totals::FiguresByUnit,
    /// The reports whose row changed (a new current revision), saved once before the commit.
    changed: BTreeSet<(i32, Period)>,
}

impl GroupState {
    /// Locks the units (PostgreSQL; SQLite's writer already holds the database), creates the
    /// missing report rows and reads the rest, for the reports `keys` name.
    pub(crate) async fn load(
        txn: &DatabaseTransaction,
        snapshot: &Snapshot,
        keys: &[(&UnitInfo, Period)],
    ) -> Result<GroupState, StoreError> {
        let unit_ids: BTreeSet<i32> = keys.iter().map(|(unit, _)| unit.id).collect();
        let periods: BTreeSet<String> = keys.iter().map(|(_, period)| period.code()).collect();
        if keys.is_empty() {
            return Ok(GroupState { reports: HashMap::new(), figures: HashMap::new(), changed: BTreeSet::new() });
        }
        if txn.get_database_backend() == DbBackend::Postgres {
            lock_units(txn, &unit_ids).await?;
        }
        create_reports(txn, keys).await?;
        let rows = report::Entity::find()
            .filter(report::Column::UnitId.is_in(unit_ids.iter().copied()))
            .filter(report::Column::Period.is_in(periods.iter().cloned()))
            .all(txn)
            .await?;
        let revisions = revision::Entity::find()
            .filter(revision::Column::ReportId.is_in(rows.iter().map(|row| row.id)))
            .all(txn)
            .await?;
        let mut latest: HashMap<i32, i32> = HashMap::new();
        let mut by_id: HashMap<i32, &revision::Model> = HashMap::with_capacity(revisions.len());
        for revision in &revisions {
            let number = latest.entry(revision.report_id).or_default();
            *number = std::cmp::max(*number, revision.number);
            by_id.insert(revision.id, revision);
        }
        let mut reports = HashMap::with_capacity(rows.len());
        for row in rows {
            let Ok(period) = Period::parse(&row.period) else {
                return Err(StoreError::Corrupt(format!("stored period {:?}", row.period)));
            };
            let current = row.current_revision_id.map(|id| {
                by_id
                    .get(&id)
                    .filter(|revision| revision.report_id == row.id)
                    .map(|revision| (revision.number, revision.sha256.clone()))
                    .ok_or_else(|| StoreError::Corrupt(format!("report {} points at a missing revision", row.id)))
            });
            let latest = latest.get(&row.id).copied().unwrap_or(0);
            reports.insert((row.unit_id, period), ReportState { current: current.transpose()?, latest, row });
        }
        let years = totals::year_codes(keys.iter().map(|(_, period)| *period));
        let unit_ids: Vec<i32> = unit_ids.into_iter().collect();
        let figures = totals::current_figures_of(txn, snapshot, &unit_ids, Some(&years)).await?;
        Ok(GroupState { reports, figures, changed: BTreeSet::new() })
    }

    /// The report of `unit_id` for `period`; every key the group was loaded with has one.
    pub(crate) fn report(&self, unit_id: i32, period: Period) -> Result<&ReportState, StoreError> {
        self.reports.get(&(unit_id, period)).ok_or_else(|| {
            StoreError::Corrupt(format!("report {unit_id} {} vanished inside its transaction", period.code()))
        })
    }

    /// The current figures of `unit_id` for the years of the group's periods.
    pub(crate) fn figures(&self, unit_id: i32) -> HashMap<i32, Reported> {
        self.figures.get(&unit_id).cloned().unwrap_or_default()
    }

    /// Records a planned revision (its report row changed in memory, saved by
    /// [`GroupState::save_reports`]) and the unit's figures after it, so the group's later files
    /// see them.
    fn written(&mut self, period: Period, report: ReportState, figures: HashMap<i32, Reported>) {
        let unit_id = report.row.unit_id;
        self.figures.insert(unit_id, figures);
        self.reports.insert((unit_id, period), report);
        self.changed.insert((unit_id, period));
    }

    /// Points a report at its revision `number`, once the database gave it `id`; an earlier
    /// revision of the same group never overrides a later one.
    fn set_current_revision(&mut self, unit_id: i32, period: Period, number: i32, id: i32) {
        if let Some(report) = self.reports.get_mut(&(unit_id, period))
            && report.latest == number
        {
            report.row.current_revision_id = Some(id);
        }
    }

    /// Saves the changed report rows (current revision, first arrival) in one statement per
    /// 500 reports, instead of one per file.
    async fn save_reports(&self, txn: &DatabaseTransaction) -> Result<(), StoreError> {
        use report::Column as C;
        let rows: Vec<&report::Model> =
            self.changed.iter().filter_map(|key| self.reports.get(key)).map(|report| &report.row).collect();
        for batch in statement_batches(&rows, REPORTS_PER_STATEMENT) {
            let mut insert = Query::insert();
            insert.into_table(report::Entity).columns([
                C::Id,
                C::UnitId,
                C::Period,
                C::CurrentRevisionId,
                C::FirstAcceptedAt,
            ]);
            for row in batch {
                insert.values_panic([
                    row.id.into(),
                    row.unit_id.into(),
                    row.period.clone().into(),
                    row.current_revision_id.into(),
                    row.first_accepted_at.into(),
                ]);
            }
            insert.on_conflict(
                OnConflict::column(C::Id).update_columns([C::CurrentRevisionId, C::FirstAcceptedAt]).to_owned(),
            );
            txn.execute(&insert).await?;
        }
        Ok(())
    }
}

/// `SELECT … FOR NO KEY UPDATE` on the units, in id order so concurrent groups cannot
/// deadlock: a unit's reports are written by one transaction at a time. The lock is the
/// weakest that writers of one unit still take in turn: `FOR UPDATE` also blocked the
/// foreign-key checks of every other transaction adding totals or counts under the unit (a
/// province's rows, say), so two groups, one holding a province's file and the other writing
/// under it, deadlocked on the province's totals.
async fn lock_units(txn: &DatabaseTransaction, unit_ids: &BTreeSet<i32>) -> Result<(), StoreError> {
    let mut query = Query::select();
    query
        .column(unit::Column::Id)
        .from(unit::Entity)
        .and_where(Expr::col(unit::Column::Id).is_in(unit_ids.iter().copied()))
        .order_by(unit::Column::Id, Order::Asc)
        .lock(LockType::NoKeyUpdate);
    txn.query_all(&query).await?;
    Ok(())
}

/// Inserts the report rows that do not exist yet, in one statement.
async fn create_reports(txn: &DatabaseTransaction, keys: &[(&UnitInfo, Period)]) -> Result<(), StoreError> {
    let mut insert = Query::insert();
    insert.into_table(report::Entity).columns([report::Column::UnitId, report::Column::Period]);
    for (unit, period) in keys {
        insert.values_panic([unit.id.into(), period.code().into()]);
    }
    insert.on_conflict(OnConflict::columns([report::Column::UnitId, report::Column::Period]).do_nothing().to_owned());
    txn.execute(&insert).await?;
    Ok(())
}

/// A revision the group will write, decided before any statement runs.
#[derive(Debug)]
struct PlannedWrite<'a> {
    new: &'a NewRevision,
    unit_id: i32,
    report_id: i32,
    number: i32,
    /// The report had a current revision before this one, to mark superseded.
    had_current: bool,
    imported_at: DateTime<Utc>,
    warnings: String,
    values: Vec<(i32, &'a NewValue)>,
}

/// Every file's outcome, and what the group will write.
#[derive(Debug, Default)]
pub(crate) struct GroupPlan<'a> {
    pub outcomes: Vec<Result<WriteOutcome, StoreError>>,
    pub changes: totals::Pending,
    /// The reports that get their first revision.
    pub new_reports: Vec<(&'a UnitInfo, Period)>,
    writes: Vec<PlannedWrite<'a>>,
}

/// What one file comes to.
enum Planned<'a> {
    Outcome(WriteOutcome),
    Write(PlannedWrite<'a>, Vec<totals::Change>),
}

/// Decides, in order, what each of `revisions` does; the first that cannot be written ends
/// the group with its error.
pub(crate) fn plan<'a>(
    snapshot: &'a Snapshot,
    group: &mut GroupState,
    revisions: &'a [NewRevision],
    frozen: &approvals::Freezes,
    today: chrono::NaiveDate,
) -> GroupPlan<'a> {
    let mut plan = GroupPlan::default();
    for new in revisions {
        match plan_one(snapshot, group, new, frozen, today) {
            Ok(Planned::Outcome(outcome)) => plan.outcomes.push(Ok(outcome)),
            Ok(Planned::Write(write, changes)) => {
                plan.changes.add(changes);
                if write.number == 1
                    && let Some(unit) = snapshot.unit(&new.unit)
                {
                    plan.new_reports.push((unit, new.period));
                }
                plan.outcomes.push(Ok(WriteOutcome::Created { revision: write.number }));
                plan.writes.push(write);
            }
            Err(error) => {
                plan.outcomes.push(Err(error));
                break;
            }
        }
    }
    plan
}

/// One file's outcome, with the group's state moved past it when it is written.
fn plan_one<'a>(
    snapshot: &Snapshot,
    group: &mut GroupState,
    new: &'a NewRevision,
    frozen: &approvals::Freezes,
    today: chrono::NaiveDate,
) -> Result<Planned<'a>, StoreError> {
    let unit =
        snapshot.unit(&new.unit).ok_or_else(|| StoreError::Unknown { kind: "unit", code: new.unit.to_string() })?;
    let mut values = Vec::with_capacity(new.values.len());
    for value in &new.values {
        let indicator = snapshot
            .indicator(&value.indicator)
            .ok_or_else(|| StoreError::Unknown { kind: "indicator", code: value.indicator.to_string() })?;
        if !within_bounds(value.figure) {
            let message = format!("{} of {} {} is beyond {MAX_WHOLE}", value.indicator, new.unit, new.period);
            return Err(StoreError::Precondition(message));
        }
        values.push((indicator.id, value));
    }
    let warnings = serde_json::to_string(&new.warnings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let report = group.report(unit.id, new.period)?;
    if let Some((number, sha256)) = &report.current
        && *sha256 == new.sha256
    {
        return Ok(Planned::Outcome(WriteOutcome::Unchanged { revision: *number }));
    }
    if let Some(freeze) = frozen.freeze(snapshot, unit, new.period, today)? {
        return Ok(Planned::Outcome(WriteOutcome::Frozen(freeze)));
    }
    let number = report.latest + 1;
    let had_current = report.current.is_some();
    let imported_at = Utc::now();
    let mut row = report.row.clone();
    row.first_accepted_at = row.first_accepted_at.or(Some(imported_at));
    let figures: Vec<(i32, Figure)> = values.iter().map(|(id, value)| (*id, value.figure)).collect();
    let mut unit_figures = group.figures(unit.id);
    let changes = totals::report_changes(snapshot, unit, new.period, &mut unit_figures, &figures)?;
    let report_id = row.id;
    group.written(
        new.period,
        ReportState { row, current: Some((number, new.sha256.clone())), latest: number },
        unit_figures,
    );
    let write = PlannedWrite { new, unit_id: unit.id, report_id, number, had_current, imported_at, warnings, values };
    Ok(Planned::Write(write, changes))
}

impl GroupPlan<'_> {
    /// Writes the planned revisions and their values, marks the revisions they supersede,
    /// replaces their reports' open data issues where needed and saves the reports' rows.
    pub(crate) async fn write(&self, txn: &DatabaseTransaction, group: &mut GroupState) -> Result<(), StoreError> {
        let superseded: BTreeSet<i32> = self.writes.iter().filter(|w| w.had_current).map(|w| w.report_id).collect();
        if !superseded.is_empty() {
            revision::Entity::update_many()
                .col_expr(revision::Column::Status, Expr::value("superseded"))
                .filter(revision::Column::ReportId.is_in(superseded))
                .filter(revision::Column::Status.eq("current"))
                .exec(txn)
                .await?;
        }
        let ids = self.insert_revisions(txn).await?;
        self.insert_values(txn, &ids).await?;
        for write in &self.writes {
            // A new report has no issues to replace: most imports pay nothing here.
            if write.number > 1 || !write.new.data_issues.is_empty() {
                quality::replace_open_issues(txn, write.unit_id, write.new.period, &write.new.data_issues).await?;
            }
            let id = revision_id(&ids, write)?;
            group.set_current_revision(write.unit_id, write.new.period, write.number, id);
        }
        group.save_reports(txn).await
    }

    /// Inserts the revisions; each report's last one in the group is current, any earlier
    /// one already superseded. Returns their ids by (report, number).
    async fn insert_revisions(&self, txn: &DatabaseTransaction) -> Result<HashMap<(i32, i32), i32>, StoreError> {
        use revision::Column as C;
        let last: HashMap<i32, i32> = self.writes.iter().map(|w| (w.report_id, w.number)).collect();
        let mut ids = HashMap::with_capacity(self.writes.len());
        for batch in statement_batches(&self.writes, REVISIONS_PER_STATEMENT) {
            let mut insert = Query::insert();
            insert.into_table(revision::Entity).columns([
                C::ReportId,
                C::Number,
                C::FileName,
                C::Sha256,
                C::ImportedAt,
                C::ImportedBy,
                C::PreparedBy,
                C::PreparedOn,
                C::Warnings,
                C::Status,
            ]);
            for write in batch {
                let status = if last.get(&write.report_id) == Some(&write.number) { "current" } else { "superseded" };
                insert.values_panic([
                    write.report_id.into(),
                    write.number.into(),
                    write.new.file_name.clone().into(),
                    write.new.sha256.clone().into(),
                    write.imported_at.into(),
                    write.new.imported_by.clone().into(),
                    write.new.prepared_by.clone().into(),
                    write.new.prepared_on.clone().into(),
                    write.warnings.clone().into(),
                    status.into(),
                ]);
            }
            insert.returning(Query::returning().columns([C::Id, C::ReportId, C::Number]));
            for row in txn.query_all(&insert).await? {
                let (id, report_id, number): (i32, i32, i32) =
                    (row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?);
                ids.insert((report_id, number), id);
            }
        }
        Ok(ids)
    }

    /// Inserts every planned revision's values, each statement built while the one before it
    /// runs.
    async fn insert_values(&self, txn: &DatabaseTransaction, ids: &HashMap<(i32, i32), i32>) -> Result<(), StoreError> {
        let mut rows = Vec::new();
        for write in &self.writes {
            let id = revision_id(ids, write)?;
            rows.extend(write.values.iter().map(|(indicator_id, value)| (id, *indicator_id, *value)));
        }
        let backend = txn.get_database_backend();
        // The statements' text around their rows is written once for the group.
        let insert = values_insert();
        let mut batches = statement_batches(&rows, VALUES_PER_STATEMENT);
        overlapped::execute_all(txn, || batches.next().map(|batch| values_statement(&insert, backend, batch))).await
    }
}

/// The insert into `report_values`.
fn values_insert() -> RowsInsert<6> {
    use report_value::Column as C;
    let columns: [&dyn Iden; 6] =
        [&C::RevisionId, &C::IndicatorId, &C::Value, &C::Numerator, &C::Denominator, &C::Note];
    RowsInsert::new(&report_value::Entity, columns, String::new())
}

/// The insert of a batch of (revision id, indicator id, value) rows with `insert`'s text.
fn values_statement(insert: &RowsInsert<6>, backend: DbBackend, batch: &[(i32, i32, &NewValue)]) -> Statement {
    insert.statement(
        backend,
        batch.iter().map(|&(revision_id, indicator_id, value)| value_row(revision_id, indicator_id, value)),
    )
}

/// One row of `report_values`: the figure as a number, with its numerator and denominator
/// when it is a ratio.
fn value_row(revision_id: i32, indicator_id: i32, value: &NewValue) -> [Value; 6] {
    let (number, numerator, denominator) = match value.figure {
        Figure::Count(count) => (Some(count as f64), None, None),
        Figure::Ratio { numerator, denominator } => (Some(value.figure.value()), Some(numerator), Some(denominator)),
        Figure::Percent(percent) => (Some(percent), None, None),
    };
    [
        revision_id.into(),
        indicator_id.into(),
        number.into(),
        numerator.into(),
        denominator.into(),
        value.note.clone().into(),
    ]
}

/// The id the database gave a planned revision.
fn revision_id(ids: &HashMap<(i32, i32), i32>, write: &PlannedWrite<'_>) -> Result<i32, StoreError> {
    ids.get(&(write.report_id, write.number)).copied().ok_or_else(|| {
        StoreError::Corrupt(format!("revision {} of report {} was not returned", write.number, write.report_id))
    })
}

#[cfg(test)]
mod tests {
    use kpi_core::IndicatorCode;

    use super::*;

    /// The values insert as sea-query builds it: the slow, obvious reference.
    fn values_insert_by_sea_query(backend: DbBackend, batch: &[(i32, i32, &NewValue)]) -> Statement {
        use report_value::Column as C;
        let mut insert = Query::insert();
        insert.into_table(report_value::Entity).columns([
            C::RevisionId,
            C::IndicatorId,
            C::Value,
            C::Numerator,
            C::Denominator,
            C::Note,
        ]);
        for &(revision_id, indicator_id, value) in batch {
            insert.values_panic(value_row(revision_id, indicator_id, value).map(Into::into));
        }
        backend.build(&insert)
    }

    #[test]
    fn values_inserts_are_written_as_sea_query_writes_them() -> Result<(), Box<dyn std::error::Error>> {
        let indicator = IndicatorCode::parse("B05")?;
        let figures = [
            Figure::Count(7),
            Figure::Ratio { numerator: 3, denominator: 4 },
            Figure::Percent(61.5),
            Figure::Count(-2),
        ];
        let values: Vec<NewValue> = (0..40)
            .map(|index| NewValue {
                indicator: indicator.clone(),
                figure: figures[index % figures.len()],
                note: (index % 3 == 0).then(|| format!("ghi chú {index}")),
            })
            .collect();
        let rows: Vec<(i32, i32, &NewValue)> =
            values.iter().enumerate().map(|(index, value)| (index as i32 + 100, index as i32 % 19, value)).collect();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for count in 1..=rows.len() {
                let batch = &rows[..count];
                assert_eq!(
                    values_statement(&values_insert(), backend, batch),
                    values_insert_by_sea_query(backend, batch),
                    "{count} rows"
                );
            }
        }
        Ok(())
    }
}
