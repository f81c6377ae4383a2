//! Approval and locking of reports, and their audit trail.
//!
//! An approver declares one unit's report for one period final; a unit locks a period for its
//! whole subtree; the catalog may close a period by itself some days after its deadline.
//! Each of the three freezes the report: a write into it is refused (see
//! [`Freezes`], read once per group of writes inside its transaction), and only unapproving or unlocking
//! thaws it. Every change is kept in `approval_events` with who, when and why.
//!
//! `approval_counts` holds, per unit and exact period, how many reports of the unit's subtree
//! exist and how many are approved, updated in the same transaction as each new report and
//! each approval change, so whether a KPI's figures are final is one indexed read.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use kpi_core::text::minute_utc;
use kpi_core::{Period, UnitCode};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Set, Statement, TransactionOptions, TransactionTrait,
};

use crate::batches::statement_batches;
use crate::connection::Store;
use crate::entity::{approval, approval_event, period_lock, report};
use crate::error::StoreError;
use crate::snapshot::{Snapshot, UnitInfo};
use crate::state;

/// Rows per upsert of `approval_counts` (4 parameters each), and units per query.
const UPSERT_BATCH: usize = 1000;
/// The PostgreSQL advisory lock between revision writes and approval changes.
const APPROVAL_LOCK_KEY: i64 = 0x6b70_6930_3922;

/// What changed a report's approval or a period's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAction {
    Approved,
    Unapproved,
    Locked,
    Unlocked,
}

impl ApprovalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalAction::Approved => "approved",
            ApprovalAction::Unapproved => "unapproved",
            ApprovalAction::Locked => "locked",
            ApprovalAction::Unlocked => "unlocked",
        }
    }

    fn parse(text: &str) -> Option<ApprovalAction> {
        [ApprovalAction::Approved, ApprovalAction::Unapproved, ApprovalAction::Locked, ApprovalAction::Unlocked]
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalEvent {
    /// The unit whose report was (un)approved, or which (un)locked the period.
    pub unit: UnitCode,
    pub period: Period,
    pub action: ApprovalAction,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// The approver's comment, or the reason for unapproving or unlocking.
    pub comment: String,
}

/// Who declared something, when, and what they said.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: String,
}

/// A lock in force on a report: set by `unit` (the report's unit or an ancestor) for `period`
/// (the report's period or one containing it).
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodLock {
    pub unit: UnitCode,
    pub period: Period,
    pub stamp: Stamp,
}

/// Why a report may not be written.
#[derive(Debug, Clone, PartialEq)]
pub enum Freeze {
    Approved(Stamp),
    Locked(PeriodLock),
    /// Closed by the catalog's `close_after_days`, on `closed_on`, that many days after the
    /// deadline.
    Closed {
        deadline: NaiveDate,
        closed_on: NaiveDate,
        after_days: u32,
    },
}

/// Where one report stands: approved or not, frozen or not, and its audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalStatus {
    pub unit: UnitCode,
    pub period: Period,
    /// Whether any revision was imported.
    pub has_report: bool,
    pub approval: Option<Stamp>,
    /// The lock in force, if any.
    pub lock: Option<PeriodLock>,
    /// The day the period closes by itself for this unit, when the catalog says so.
    pub closes_on: Option<NaiveDate>,
    /// The report's deadline, by the catalog's reporting cycle.
    pub due_on: NaiveDate,
    /// Oldest first.
    pub history: Vec<ApprovalEvent>,
}

impl ApprovalStatus {
    /// What refuses a write into this report on `today`: approval first, then a lock, then
    /// the period's closing.
    pub fn freeze(&self, today: NaiveDate) -> Option<Freeze> {
        freeze_from(self.approval.clone(), self.lock.clone(), self.closes_on, self.due_on, today)
    }
}

fn freeze_from(
    approval: Option<Stamp>,
    lock: Option<PeriodLock>,
    closes_on: Option<NaiveDate>,
    deadline: NaiveDate,
    today: NaiveDate,
) -> Option<Freeze> {
    if let Some(stamp) = approval {
        return Some(Freeze::Approved(stamp));
    }
    if let Some(lock) = lock {
        return Some(Freeze::Locked(lock));
    }
    let closed_on = closes_on.filter(|day| *day <= today)?;
    let after_days = u32::try_from((closed_on - deadline).num_days() - 1).unwrap_or(0);
    Some(Freeze::Closed { deadline, closed_on, after_days })
}

/// The periods whose locks cover a report of `period`: itself and every period containing it.
fn enclosing_codes(period: Period) -> Vec<String> {
    Period::Year(period.year())
        .with_descendants()
        .into_iter()
        .filter(|p| p.contains(period))
        .map(Period::code)
        .collect()
}

fn unknown_unit(code: &UnitCode) -> StoreError {
    StoreError::Unknown { kind: "unit", code: code.to_string() }
}

/// The approvals and locks that may freeze a set of reports, read in two queries, so a group
/// of writes or a dry run pays for them once, not per file.
#[derive(Debug, Default)]
pub(crate) struct Freezes {
    approvals: HashMap<(i32, String), Stamp>,
    /// Locks on any of the reports' periods or the periods containing them, earliest first.
    locks: Vec<period_lock::Model>,
}

impl Freezes {
    /// Reads what may freeze the reports of `keys` as `conn` sees it.
    pub(crate) async fn load(conn: &impl ConnectionTrait, keys: &[(&UnitInfo, Period)]) -> Result<Freezes, StoreError> {
        let mut freezes = Freezes::default();
        if keys.is_empty() {
            return Ok(freezes);
        }
        let unit_ids: BTreeSet<i32> = keys.iter().map(|(unit, _)| unit.id).collect();
        let periods: BTreeSet<String> = keys.iter().map(|(_, period)| period.code()).collect();
        let enclosing: BTreeSet<String> = keys.iter().flat_map(|(_, period)| enclosing_codes(*period)).collect();
        for batch in Vec::from_iter(unit_ids).chunks(UPSERT_BATCH) {
            let rows = approval::Entity::find()
                .filter(approval::Column::UnitId.is_in(batch.iter().copied()))
                .filter(approval::Column::Period.is_in(periods.iter().cloned()))
                .all(conn)
                .await?;
            for row in rows {
                let stamp = Stamp { by: row.approved_by, at: row.approved_at, comment: row.comment };
                freezes.approvals.insert((row.unit_id, row.period), stamp);
            }
        }
        // Locks are few (one per unit that closes a period); the ancestors are matched here.
        freezes.locks = period_lock::Entity::find()
            .filter(period_lock::Column::Period.is_in(enclosing))
            .order_by_asc(period_lock::Column::LockedAt)
            .all(conn)
            .await?;
        Ok(freezes)
    }

    /// The approval of `unit`'s report for `period`, if any.
    fn approval(&self, unit: &UnitInfo, period: Period) -> Option<Stamp> {
        self.approvals.get(&(unit.id, period.code())).cloned()
    }

    /// The earliest lock set by `unit` or an ancestor for `period` or a period containing it.
    fn lock(&self, snapshot: &Snapshot, unit: &UnitInfo, period: Period) -> Result<Option<PeriodLock>, StoreError> {
        let holders = unit.self_and_ancestor_ids()?;
        let covering = enclosing_codes(period);
        self.locks
            .iter()
            .find(|row| holders.contains(&row.unit_id) && covering.contains(&row.period))
            .map(|row| lock_from_row(snapshot, row.clone()))
            .transpose()
    }

    /// What freezes `unit`'s report for `period` on `today` (see [`freeze_from`]).
    pub(crate) fn freeze(
        &self,
        snapshot: &Snapshot,
        unit: &UnitInfo,
        period: Period,
        today: NaiveDate,
    ) -> Result<Option<Freeze>, StoreError> {
        let cycle = snapshot.reporting();
        let kind = &unit.definition.kind;
        let lock = self.lock(snapshot, unit, period)?;
        Ok(freeze_from(
            self.approval(unit, period),
            lock,
            cycle.closes_on(kind, period),
            cycle.deadline(kind, period),
            today,
        ))
    }
}

/// Takes, on PostgreSQL, the approval lock: shared by groups of revision writes (so the
/// approvals and locks a group read stay true until it commits), exclusive for an approval
/// change. SQLite's write lock does the same there.
pub(crate) async fn lock_approvals(txn: &DatabaseTransaction, exclusive: bool) -> Result<(), StoreError> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let function = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
    let sql = format!("SELECT {function}({APPROVAL_LOCK_KEY})");
    txn.execute_raw(Statement::from_string(DbBackend::Postgres, sql)).await?;
    Ok(())
}

fn lock_from_row(snapshot: &Snapshot, row: period_lock::Model) -> Result<PeriodLock, StoreError> {
    Ok(PeriodLock {
        unit: snapshot.unit_code_by_id(row.unit_id)?,
        period: stored_period(&row.period)?,
        stamp: Stamp { by: row.locked_by, at: row.locked_at, comment: row.comment },
    })
}

fn stored_period(code: &str) -> Result<Period, StoreError> {
    Period::parse(code).map_err(|_| StoreError::Corrupt(format!("stored period {code:?}")))
}

/// Adds `approved` (1 or -1) approvals to the counts of `unit` and each ancestor for `period`.
async fn count_approval(
    conn: &impl ConnectionTrait,
    unit: &UnitInfo,
    period: Period,
    approved: i64,
) -> Result<(), StoreError> {
    let rows: Vec<(i32, String, i64, i64)> =
        unit.self_and_ancestor_ids()?.into_iter().map(|id| (id, period.code(), 0, approved)).collect();
    add_counts(conn, &rows).await
}

/// Counts a group's new reports (their first revisions) for their units and every ancestor,
/// summed per row so the group pays one upsert per batch.
pub(crate) async fn count_new_reports(
    conn: &impl ConnectionTrait,
    reports: &[(&UnitInfo, Period)],
) -> Result<(), StoreError> {
    let mut counts: BTreeMap<(i32, String), i64> = BTreeMap::new();
    for (unit, period) in reports {
        for ancestor in unit.self_and_ancestor_ids()? {
            *counts.entry((ancestor, period.code())).or_default() += 1;
        }
    }
    let rows: Vec<(i32, String, i64, i64)> =
        counts.into_iter().map(|((id, period), reports)| (id, period, reports, 0)).collect();
    add_counts(conn, &rows).await
}

async fn add_counts(conn: &impl ConnectionTrait, rows: &[(i32, String, i64, i64)]) -> Result<(), StoreError> {
    let table = Alias::new("approval_counts");
    let [unit_id, period, reports, approved] = ["unit_id", "period", "reports", "approved"].map(Alias::new);
    for batch in statement_batches(rows, UPSERT_BATCH) {
        let mut insert = Query::insert();
        insert.into_table(table.clone()).columns([unit_id.clone(), period.clone(), reports.clone(), approved.clone()]);
        for (id, code, report_count, approved_count) in batch {
            insert.values_panic([(*id).into(), code.clone().into(), (*report_count).into(), (*approved_count).into()]);
        }
        let mut on_conflict = OnConflict::columns([unit_id.clone(), period.clone()]);
        for column in [reports.clone(), approved.clone()] {
            let sum =
                Expr::col((table.clone(), column.clone())).add(Expr::col((Alias::new("excluded"), column.clone())));
            on_conflict.value(column, sum);
        }
        insert.on_conflict(on_conflict);
        conn.execute(&insert).await?;
    }
    Ok(())
}

/// Recounts every unit's reports and approvals from scratch, with the tree as `conn` sees
/// it: after a catalog load changed the tree, or on the first load after the migration.
pub(crate) async fn rebuild_counts(conn: &impl ConnectionTrait, snapshot: &Snapshot) -> Result<(), StoreError> {
    conn.execute(&Query::delete().from_table(Alias::new("approval_counts")).to_owned()).await?;
    let reports: Vec<(i32, String)> = report::Entity::find()
        .filter(report::Column::CurrentRevisionId.is_not_null())
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.unit_id, row.period))
        .collect();
    let approved: HashSet<(i32, String)> =
        approval::Entity::find().all(conn).await?.into_iter().map(|row| (row.unit_id, row.period)).collect();
    let mut counts: BTreeMap<(i32, String), (i64, i64)> = BTreeMap::new();
    for (unit_id, period) in reports {
        let unit = snapshot.unit_by_id(unit_id)?;
        let is_approved = i64::from(approved.contains(&(unit_id, period.clone())));
        for ancestor in unit.self_and_ancestor_ids()? {
            let entry = counts.entry((ancestor, period.clone())).or_default();
            entry.0 += 1;
            entry.1 += is_approved;
        }
    }
    let rows: Vec<(i32, String, i64, i64)> =
        counts.into_iter().map(|((id, period), (reports, approved))| (id, period, reports, approved)).collect();
    add_counts(conn, &rows).await?;
    state::set(conn, state::APPROVAL_COUNTS_BUILT, "built").await
}

/// Whether the approval counts were ever built in this database.
pub(crate) async fn counts_are_built(conn: &impl ConnectionTrait) -> Result<bool, StoreError> {
    Ok(state::get(conn, state::APPROVAL_COUNTS_BUILT).await?.is_some())
}

impl Store {
    /// Approves `unit`'s report for `period`: it must exist and not be approved already.
    pub async fn approve_report(
        &self,
        unit: &UnitCode,
        period: Period,
        actor: &str,
        comment: &str,
    ) -> Result<ApprovalStatus, StoreError> {
        self.change_approval(unit, period, async |txn, snapshot, info| {
            let status = status_in(txn, snapshot, info, period).await?;
            if !status.has_report {
                return Err(StoreError::Precondition(format!(
                    "{} has no report for {period} to approve",
                    info.definition.code
                )));
            }
            if let Some(stamp) = &status.approval {
                return Err(StoreError::Precondition(format!(
                    "the report of {} for {period} is already approved by {} at {}",
                    info.definition.code,
                    stamp.by,
                    minute_utc(stamp.at)
                )));
            }
            let now = Utc::now();
            approval::ActiveModel {
                unit_id: Set(info.id),
                period: Set(period.code()),
                approved_by: Set(actor.to_owned()),
                approved_at: Set(now),
                comment: Set(comment.to_owned()),
            }
            .insert(txn)
            .await?;
            count_approval(txn, info, period, 1).await?;
            record(txn, info.id, period, ApprovalAction::Approved, actor, now, comment).await
        })
        .await
    }

    /// Withdraws the approval of `unit`'s report for `period`, recording why.
    pub async fn unapprove_report(
        &self,
        unit: &UnitCode,
        period: Period,
        actor: &str,
        reason: &str,
    ) -> Result<ApprovalStatus, StoreError> {
        self.change_approval(unit, period, async |txn, _snapshot, info| {
            let deleted = approval::Entity::delete_by_id((info.id, period.code())).exec(txn).await?;
            if deleted.rows_affected == 0 {
                return Err(StoreError::Precondition(format!(
                    "the report of {} for {period} is not approved",
                    info.definition.code
                )));
            }
            count_approval(txn, info, period, -1).await?;
            record(txn, info.id, period, ApprovalAction::Unapproved, actor, Utc::now(), reason).await
        })
        .await
    }

    /// Locks `period` (and every period inside it) for `unit`'s whole subtree.
    pub async fn lock_period(
        &self,
        unit: &UnitCode,
        period: Period,
        actor: &str,
        comment: &str,
    ) -> Result<ApprovalStatus, StoreError> {
        self.change_approval(unit, period, async |txn, _snapshot, info| {
            if let Some(row) = period_lock::Entity::find_by_id((info.id, period.code())).one(txn).await? {
                return Err(StoreError::Precondition(format!(
                    "{period} is already locked for {} by {} at {}",
                    info.definition.code,
                    row.locked_by,
                    minute_utc(row.locked_at)
                )));
            }
            let now = Utc::now();
            period_lock::ActiveModel {
                unit_id: Set(info.id),
                period: Set(period.code()),
                locked_by: Set(actor.to_owned()),
                locked_at: Set(now),
                comment: Set(comment.to_owned()),
            }
            .insert(txn)
            .await?;
            record(txn, info.id, period, ApprovalAction::Locked, actor, now, comment).await
        })
        .await
    }

    /// Lifts the lock `unit` set on `period`, recording why.
    pub async fn unlock_period(
        &self,
        unit: &UnitCode,
        period: Period,
        actor: &str,
        reason: &str,
    ) -> Result<ApprovalStatus, StoreError> {
        self.change_approval(unit, period, async |txn, _snapshot, info| {
            let deleted = period_lock::Entity::delete_by_id((info.id, period.code())).exec(txn).await?;
            if deleted.rows_affected == 0 {
                return Err(StoreError::Precondition(format!("{} has not locked {period}", info.definition.code)));
            }
            record(txn, info.id, period, ApprovalAction::Unlocked, actor, Utc::now(), reason).await
        })
        .await
    }

    /// Where `unit`'s report for `period` stands, with its audit trail.
    pub async fn approval_status(&self, unit: &UnitCode, period: Period) -> Result<ApprovalStatus, StoreError> {
        let snapshot = self.snapshot().await?;
        let info = snapshot.unit(unit).ok_or_else(|| unknown_unit(unit))?;
        status_in(&self.db, &snapshot, info, period).await
    }

    /// What freezes each of several reports today, for predicting a batch; reports that may
    /// be written are absent.
    pub async fn freezes(
        &self,
        keys: &[(UnitCode, Period)],
    ) -> Result<HashMap<(UnitCode, Period), Freeze>, StoreError> {
        let snapshot = self.snapshot().await?;
        let today = kpi_core::calendar::local_date(Utc::now());
        let known: Vec<(&UnitInfo, Period)> =
            keys.iter().filter_map(|(code, period)| snapshot.unit(code).map(|unit| (unit, *period))).collect();
        let freezes = Freezes::load(&self.db, &known).await?;
        let mut found = HashMap::new();
        for (unit, period) in known {
            if let Some(freeze) = freezes.freeze(&snapshot, unit, period, today)? {
                found.insert((unit.definition.code.clone(), period), freeze);
            }
        }
        Ok(found)
    }

    /// Runs one approval change in a write transaction that excludes every group of revision
    /// writes, then returns the report's new status.
    async fn change_approval(
        &self,
        unit: &UnitCode,
        period: Period,
        change: impl AsyncFnOnce(&DatabaseTransaction, &Snapshot, &UnitInfo) -> Result<(), StoreError>,
    ) -> Result<ApprovalStatus, StoreError> {
        let snapshot = self.snapshot().await?;
        let info = snapshot.unit(unit).ok_or_else(|| unknown_unit(unit))?;
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        lock_approvals(&txn, true).await?;
        change(&txn, &snapshot, info).await?;
        let status = status_in(&txn, &snapshot, info, period).await?;
        txn.commit().await?;
        Ok(status)
    }
}

async fn record(
    conn: &impl ConnectionTrait,
    unit_id: i32,
    period: Period,
    action: ApprovalAction,
    actor: &str,
    at: DateTime<Utc>,
    comment: &str,
) -> Result<(), StoreError> {
    approval_event::ActiveModel {
        unit_id: Set(unit_id),
        period: Set(period.code()),
        action: Set(action.as_str().to_owned()),
        actor: Set(actor.to_owned()),
        at: Set(at),
        comment: Set(comment.to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The status of `unit`'s report for `period` as `conn` sees it.
async fn status_in(
    conn: &impl ConnectionTrait,
    snapshot: &Snapshot,
    unit: &UnitInfo,
    period: Period,
) -> Result<ApprovalStatus, StoreError> {
    let has_report = report::Entity::find()
        .filter(report::Column::UnitId.eq(unit.id))
        .filter(report::Column::Period.eq(period.code()))
        .filter(report::Column::CurrentRevisionId.is_not_null())
        .one(conn)
        .await?
        .is_some();
    let freezes = Freezes::load(conn, &[(unit, period)]).await?;
    Ok(ApprovalStatus {
        unit: unit.definition.code.clone(),
        period,
        has_report,
        approval: freezes.approval(unit, period),
        lock: freezes.lock(snapshot, unit, period)?,
        closes_on: snapshot.reporting().closes_on(&unit.definition.kind, period),
        due_on: snapshot.reporting().deadline(&unit.definition.kind, period),
        history: history(conn, snapshot, unit, period).await?,
    })
}

/// The approval changes of `unit`'s report for `period`, and the locks and unlocks of the
/// periods covering it by the unit and its ancestors, oldest first.
async fn history(
    conn: &impl ConnectionTrait,
    snapshot: &Snapshot,
    unit: &UnitInfo,
    period: Period,
) -> Result<Vec<ApprovalEvent>, StoreError> {
    let rows = approval_event::Entity::find()
        .filter(approval_event::Column::UnitId.is_in(unit.self_and_ancestor_ids()?))
        .filter(approval_event::Column::Period.is_in(enclosing_codes(period)))
        .order_by_asc(approval_event::Column::Id)
        .all(conn)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let action = ApprovalAction::parse(&row.action)
            .ok_or_else(|| StoreError::Corrupt(format!("approval action {:?}", row.action)))?;
        let is_own_report = row.unit_id == unit.id && row.period == period.code();
        let is_lock = matches!(action, ApprovalAction::Locked | ApprovalAction::Unlocked);
        if !is_own_report && !is_lock {
            continue;
        }
        events.push(ApprovalEvent {
            unit: snapshot.unit_code_by_id(row.unit_id)?,
            period: stored_period(&row.period)?,
            action,
            actor: row.actor,
            at: row.at,
            comment: row.comment,
        });
    }
    Ok(events)
}
