//! What a group of revision writes reads before its first write: the units' locks
//! (PostgreSQL), their report rows, the reports' revisions and the units' current figures, in
//! a handful of statements for the whole group instead of five per file. Each write then
//! keeps it current for the files after it, so a file sees the group's earlier files exactly
//! as it would have read them back.

use std::collections::{BTreeSet, HashMap};

use kpi_core::Period;
use kpi_core::totals::Reported;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter};

use crate::entity::{report, revision, unit};
use crate::error::StoreError;
use crate::snapshot::{Snapshot, UnitInfo};
use crate::totals;

/// Report rows per saving statement: 5 parameters each, well under every backend's limit.
const REPORTS_PER_STATEMENT: usize = 500;

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
        let mut reports = HashMap::with_capacity(rows.len());
        for row in rows {
            let Ok(period) = Period::parse(&row.period) else {
                return Err(StoreError::Corrupt(format!("stored period {:?}", row.period)));
            };
            let of_report = revisions.iter().filter(|revision| revision.report_id == row.id);
            let latest = of_report.clone().map(|revision| revision.number).max().unwrap_or(0);
            let current = row.current_revision_id.map(|id| {
                of_report
                    .clone()
                    .find(|revision| revision.id == id)
                    .map(|revision| (revision.number, revision.sha256.clone()))
                    .ok_or_else(|| StoreError::Corrupt(format!("report {} points at a missing revision", row.id)))
            });
            reports.insert((row.unit_id, period), ReportState { current: current.transpose()?, latest, row });
        }
        let mut years: Vec<String> = keys.iter().flat_map(|(_, period)| totals::year_codes(*period)).collect();
        years.sort_unstable();
        years.dedup();
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

    /// Records a written revision (its report row changed in memory, saved by
    /// [`GroupState::save_reports`]) and the unit's figures after it, so the group's later files
    /// see them.
    pub(crate) fn written(&mut self, period: Period, report: ReportState, figures: HashMap<i32, Reported>) {
        let unit_id = report.row.unit_id;
        self.figures.insert(unit_id, figures);
        self.reports.insert((unit_id, period), report);
        self.changed.insert((unit_id, period));
    }

    /// Saves the changed report rows (current revision, first arrival) in one statement per
    /// 500 reports, instead of one per file.
    pub(crate) async fn save_reports(&self, txn: &DatabaseTransaction) -> Result<(), StoreError> {
        use report::Column as C;
        let rows: Vec<&report::Model> =
            self.changed.iter().filter_map(|key| self.reports.get(key)).map(|report| &report.row).collect();
        for batch in rows.chunks(REPORTS_PER_STATEMENT) {
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

/// `SELECT … FOR UPDATE` on the units, in id order so concurrent groups cannot deadlock: a
/// unit's reports are written by one transaction at a time.
async fn lock_units(txn: &DatabaseTransaction, unit_ids: &BTreeSet<i32>) -> Result<(), StoreError> {
    let mut query = Query::select();
    query
        .column(unit::Column::Id)
        .from(unit::Entity)
        .and_where(Expr::col(unit::Column::Id).is_in(unit_ids.iter().copied()))
        .order_by(unit::Column::Id, Order::Asc)
        .lock(LockType::Update);
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
