//! Writing imported files as revisions, and reading the revision history.
//!
//! A report is one unit's figures for one period; each imported file for it is a revision.
//! A group of writes is one transaction: its units' rows are locked (PostgreSQL) or the
//! database is (SQLite, `BEGIN IMMEDIATE`), each current revision is compared by SHA-256, and
//! a new one supersedes it. The unique (report, number) index backs this up: a writer that still loses
//! a race retries, so two importers at once never lose or duplicate a revision.

use std::time::Duration;

use kpi_core::{Figure, IndicatorCode, IndicatorKind, Period, UnitCode};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionOptions, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::approvals::{self, Freeze};
use crate::connection::Store;
use crate::entity::{report, report_value, revision};
use crate::error::StoreError;
use crate::quality::NewDataIssue;
use crate::snapshot::UnitInfo;
use crate::timeliness::owes_report;
use crate::write_group::{self, GroupState};

/// Attempts at a write that keeps losing races with concurrent writers.
const WRITE_ATTEMPTS: u32 = 8;

/// A warning or error about one cell of a file, as kept with a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIssue {
    pub sheet: String,
    /// A1 notation; empty when the issue is about the whole file.
    pub cell: String,
    /// Stable machine-readable kind, such as `suspect_fraction`.
    pub code: String,
    pub message: String,
}

/// One figure to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewValue {
    pub indicator: IndicatorCode,
    pub figure: Figure,
    pub note: Option<String>,
}

/// One parsed file to store as a revision.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRevision {
    pub unit: UnitCode,
    pub period: Period,
    pub file_name: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub imported_by: String,
    pub prepared_by: Option<String>,
    /// ISO date, `YYYY-MM-DD`.
    pub prepared_on: Option<String>,
    pub warnings: Vec<StoredIssue>,
    pub values: Vec<NewValue>,
    /// The rule violations and outliers found in the file, kept for follow-up; they replace
    /// the report's open ones.
    pub data_issues: Vec<NewDataIssue>,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// A new revision: number 1 is a new report, a higher number a correction.
    Created { revision: i32 },
    /// The file is byte-identical to the current revision: nothing was written.
    Unchanged { revision: i32 },
    /// The report is approved, or its period locked or closed: nothing was written.
    Frozen(Freeze),
}

/// The current revision of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentRevision {
    pub number: i32,
    pub sha256: String,
}

/// A revision in a report's history.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionInfo {
    pub number: i32,
    pub file_name: String,
    pub sha256: String,
    pub imported_at: chrono::DateTime<chrono::Utc>,
    pub imported_by: String,
    pub prepared_by: Option<String>,
    pub prepared_on: Option<String>,
    /// `current` or `superseded`.
    pub status: String,
    pub warnings: Vec<StoredIssue>,
}

impl Store {
    /// Stores one file's figures as a new revision, or reports it unchanged when its SHA-256
    /// equals the current revision's.
    pub async fn write_revision(&self, revision: &NewRevision) -> Result<WriteOutcome, StoreError> {
        let mut outcomes = self.write_revisions(std::slice::from_ref(revision)).await?;
        outcomes.pop().unwrap_or_else(|| Err(StoreError::Corrupt("a write returned no outcome".into())))
    }

    /// Stores several files in one transaction (see `write_group`), so the commit, the
    /// statements and the totals of the ancestors they share are paid once for the group.
    /// Files are taken in order; the first that cannot be written (an unknown unit or
    /// indicator) ends the group: the outcomes are those of the files attempted, its error
    /// last, and the files before it are committed. The outer error means nothing was stored:
    /// each file stays all or nothing.
    pub async fn write_revisions(
        &self,
        revisions: &[NewRevision],
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        let mut attempt = 1;
        loop {
            match self.try_write_revisions(revisions).await {
                Err(error) if error.is_write_conflict() && attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(%error, attempt, "revision write lost a race; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn try_write_revisions(
        &self,
        revisions: &[NewRevision],
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        let snapshot = self.snapshot().await?;
        let backend = self.db.get_database_backend();
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        if backend == DbBackend::Postgres {
            lock_against_rebuilds(&txn).await?;
        }
        approvals::lock_approvals(&txn, false).await?;
        let keys: Vec<(&UnitInfo, Period)> =
            revisions.iter().filter_map(|r| snapshot.unit(&r.unit).map(|unit| (unit, r.period))).collect();
        let frozen = approvals::Freezes::load(&txn, &keys).await?;
        let mut group = GroupState::load(&txn, &snapshot, &keys).await?;
        let today = kpi_core::calendar::local_date(chrono::Utc::now());
        let plan = write_group::plan(&snapshot, &mut group, revisions, &frozen, today);
        plan.write(&txn, &mut group).await?;
        plan.changes.apply(&txn).await?;
        approvals::count_new_reports(&txn, &plan.new_reports).await?;
        txn.commit().await?;
        Ok(plan.outcomes)
    }

    /// The current revision of a unit's report for a period, if there is one.
    pub async fn current_revision(
        &self,
        unit: &UnitCode,
        period: Period,
    ) -> Result<Option<CurrentRevision>, StoreError> {
        let Some(report_row) = self.find_report(unit, period).await? else { return Ok(None) };
        let Some(current_id) = report_row.current_revision_id else { return Ok(None) };
        Ok(revision::Entity::find_by_id(current_id)
            .one(&self.db)
            .await?
            .map(|r| CurrentRevision { number: r.number, sha256: r.sha256 }))
    }

    /// The current revisions of several (unit, period) reports in one query, for predicting a
    /// batch; reports without one are absent. Unknown units are simply absent.
    pub async fn current_revisions(
        &self,
        keys: &[(UnitCode, Period)],
    ) -> Result<std::collections::HashMap<(UnitCode, Period), CurrentRevision>, StoreError> {
        let snapshot = self.snapshot().await?;
        let wanted: std::collections::HashMap<(i32, String), &(UnitCode, Period)> =
            keys.iter().filter_map(|key| snapshot.unit(&key.0).map(|unit| ((unit.id, key.1.code()), key))).collect();
        let mut found = std::collections::HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let unit_ids: std::collections::BTreeSet<i32> = wanted.keys().map(|(id, _)| *id).collect();
        let periods: std::collections::BTreeSet<&String> = wanted.keys().map(|(_, period)| period).collect();
        let rows: Vec<(i32, String, i32, String)> = report::Entity::find()
            .select_only()
            .column(report::Column::UnitId)
            .column(report::Column::Period)
            .column_as(revision::Column::Number, "number")
            .column_as(revision::Column::Sha256, "sha256")
            .join(
                sea_orm::JoinType::InnerJoin,
                report::Entity::belongs_to(revision::Entity)
                    .from(report::Column::CurrentRevisionId)
                    .to(revision::Column::Id)
                    .into(),
            )
            .filter(report::Column::UnitId.is_in(unit_ids))
            .filter(report::Column::Period.is_in(periods.into_iter().cloned()))
            .into_tuple()
            .all(&self.db)
            .await?;
        for (unit_id, period, number, sha256) in rows {
            if let Some(&key) = wanted.get(&(unit_id, period)) {
                found.insert(key.clone(), CurrentRevision { number, sha256 });
            }
        }
        Ok(found)
    }

    /// Every revision of a unit's report for a period, newest first.
    pub async fn list_revisions(&self, unit: &UnitCode, period: Period) -> Result<Vec<RevisionInfo>, StoreError> {
        let Some(report_row) = self.find_report(unit, period).await? else { return Ok(Vec::new()) };
        let rows = revision::Entity::find()
            .filter(revision::Column::ReportId.eq(report_row.id))
            .order_by_desc(revision::Column::Number)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let warnings = serde_json::from_str(&row.warnings)
                    .map_err(|e| StoreError::Corrupt(format!("warnings of revision {}: {e}", row.id)))?;
                Ok(RevisionInfo {
                    number: row.number,
                    file_name: row.file_name,
                    sha256: row.sha256,
                    imported_at: row.imported_at,
                    imported_by: row.imported_by,
                    prepared_by: row.prepared_by,
                    prepared_on: row.prepared_on,
                    status: row.status,
                    warnings,
                })
            })
            .collect()
    }

    /// The figures of a unit's current revision for a period, in catalog order.
    pub async fn current_figures(
        &self,
        unit: &UnitCode,
        period: Period,
    ) -> Result<Vec<(IndicatorCode, Figure)>, StoreError> {
        let snapshot = self.snapshot().await?;
        let Some(report_row) = self.find_report(unit, period).await? else { return Ok(Vec::new()) };
        let Some(current_id) = report_row.current_revision_id else { return Ok(Vec::new()) };
        let rows =
            report_value::Entity::find().filter(report_value::Column::RevisionId.eq(current_id)).all(&self.db).await?;
        let mut figures = Vec::with_capacity(rows.len());
        for row in rows {
            let indicator = snapshot
                .indicator_by_id(row.indicator_id)
                .ok_or_else(|| StoreError::Corrupt(format!("value of unknown indicator {}", row.indicator_id)))?;
            figures.push((
                indicator.definition.code.clone(),
                figure_from_columns(indicator.definition.kind, row.value, row.numerator, row.denominator)?,
            ));
        }
        figures.sort_by_key(|(code, _)| snapshot.indicator(code).map(|i| i.id));
        Ok(figures)
    }

    /// Units that owe a report for `period` (a data set, and a kind that reports periods of
    /// its length) and have no current report for it, in catalog order.
    pub async fn missing_units(&self, period: Period) -> Result<Vec<UnitCode>, StoreError> {
        let snapshot = self.snapshot().await?;
        let reported = self.reporting_unit_ids(period).await?;
        Ok(snapshot
            .units
            .iter()
            .filter(|u| owes_report(snapshot.reporting(), u, period) && !reported.contains(&u.id))
            .map(|u| u.definition.code.clone())
            .collect())
    }

    /// Ids of the units with a current report for exactly `period`.
    pub(crate) async fn reporting_unit_ids(
        &self,
        period: Period,
    ) -> Result<std::collections::HashSet<i32>, StoreError> {
        let rows: Vec<i32> = report::Entity::find()
            .select_only()
            .column(report::Column::UnitId)
            .filter(report::Column::Period.eq(period.code()))
            .filter(report::Column::CurrentRevisionId.is_not_null())
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn find_report(&self, unit: &UnitCode, period: Period) -> Result<Option<report::Model>, StoreError> {
        let snapshot = self.snapshot().await?;
        let unit = snapshot.unit(unit).ok_or_else(|| StoreError::Unknown { kind: "unit", code: unit.to_string() })?;
        Ok(report::Entity::find()
            .filter(report::Column::UnitId.eq(unit.id))
            .filter(report::Column::Period.eq(period.code()))
            .one(&self.db)
            .await?)
    }
}

/// Takes, on PostgreSQL, the schema lock shared: a rebuild of the totals (which holds it
/// exclusively while a catalog loads) never runs alongside a write.
async fn lock_against_rebuilds(txn: &DatabaseTransaction) -> Result<(), StoreError> {
    let shared = format!("SELECT pg_advisory_xact_lock_shared({})", crate::connection::SCHEMA_LOCK_KEY);
    txn.execute_raw(Statement::from_string(DbBackend::Postgres, shared)).await?;
    Ok(())
}

/// Locks, on PostgreSQL, the unit's row: writers of one unit take turns, so each computes the
/// totals' changes from the figures it replaces.
/// Rebuilds a figure from its stored columns, refusing rows that break the kind's shape.
pub(crate) fn figure_from_columns(
    kind: IndicatorKind,
    value: Option<f64>,
    numerator: Option<i64>,
    denominator: Option<i64>,
) -> Result<Figure, StoreError> {
    match (kind, value, numerator, denominator) {
        (IndicatorKind::Ratio, _, Some(numerator), Some(denominator)) => Ok(Figure::Ratio { numerator, denominator }),
        (IndicatorKind::Count, Some(count), _, _) if count.fract() == 0.0 => Ok(Figure::Count(count as i64)),
        (IndicatorKind::Percent, Some(percent), _, _) => Ok(Figure::Percent(percent)),
        _ => Err(StoreError::Corrupt(format!("a stored {} value has the wrong shape", kind.as_str()))),
    }
}
