//! Data quality in the store: what a report is checked with (its children's figures and its
//! unit's history, read for a whole group of reports at once), and the issues found — rule
//! violations and outliers, kept per report in `data_issues` with their follow-up.
//!
//! kpi-core's `checks` decides what is wrong; this module only reads the figures it needs and
//! keeps what it found. A new revision replaces its report's open issues in the same
//! transaction; an issue marked for follow-up or resolved stays, with who, when and why.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use kpi_core::{Figure, IndicatorCode, Period, UnitCode};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::approvals::Stamp;
use crate::connection::Store;
use crate::entity::data_issue;
use crate::error::StoreError;
use crate::snapshot::{Snapshot, UnitInfo};
use crate::totals::current_figures_of;

/// What a report is checked with, besides its own figures (kpi-core's `ReportContext`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityContext {
    /// The current figures of each direct child of the unit for the same period.
    pub children: Vec<BTreeMap<IndicatorCode, Figure>>,
    /// Per indicator, the unit's current values in past periods of the same length, oldest
    /// first, as many as the catalog's `history_periods`.
    pub history: BTreeMap<IndicatorCode, Vec<(Period, f64)>>,
}

/// Whether an issue breaks a rule or looks like an outlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    Rule,
    Outlier,
}

/// How bad an issue is: an error rule refuses a file, so stored errors come from re-validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// Where an issue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueStatus {
    Open,
    FollowUp,
    Resolved,
}

macro_rules! text_enum {
    ($type:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self { $($type::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$type> {
                match text { $($text => Some($type::$variant),)+ _ => None }
            }
        }
    };
}

text_enum!(IssueKind { Rule => "rule", Outlier => "outlier" });
text_enum!(Severity { Error => "error", Warning => "warning" });
text_enum!(IssueStatus { Open => "open", FollowUp => "follow_up", Resolved => "resolved" });

/// An issue to keep with a report.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDataIssue {
    pub kind: IssueKind,
    /// The rule's code, or `outlier`.
    pub code: String,
    pub severity: Severity,
    /// The indicator the issue is about (an outlier's, a rule's first).
    pub indicator: String,
    /// Where in the file, when it came from one.
    pub sheet: String,
    pub cell: String,
    pub message: String,
}

/// A kept issue.
#[derive(Debug, Clone, PartialEq)]
pub struct DataIssue {
    pub id: i32,
    pub unit: UnitCode,
    pub period: Period,
    pub issue: NewDataIssue,
    pub status: IssueStatus,
    pub found_at: DateTime<Utc>,
    pub follow_up: Option<Stamp>,
    pub resolution: Option<Stamp>,
}

impl Store {
    /// The context each of `keys`' reports is checked with: its unit's children's figures for
    /// the period and its unit's history, read in two queries for all of them.
    pub async fn quality_context(
        &self,
        keys: &[(UnitCode, Period)],
    ) -> Result<HashMap<(UnitCode, Period), QualityContext>, StoreError> {
        let snapshot = self.snapshot().await?;
        let depth = snapshot.catalog().map(|catalog| catalog.outliers).unwrap_or_default().history_periods;
        let known: Vec<(&UnitInfo, Period)> =
            keys.iter().filter_map(|(code, period)| snapshot.unit(code).map(|unit| (unit, *period))).collect();
        let children_of = |unit: &UnitInfo| -> Vec<&UnitInfo> {
            snapshot.tree.children(&unit.definition.code).iter().filter_map(|code| snapshot.unit(code)).collect()
        };
        let child_ids: BTreeSet<i32> =
            known.iter().flat_map(|(unit, _)| children_of(unit)).map(|child| child.id).collect();
        let periods: BTreeSet<String> = known.iter().map(|(_, period)| period.code()).collect();
        let child_figures = figures_of(&self.db, &snapshot, &child_ids, &periods).await?;
        let pasts: BTreeSet<String> =
            known.iter().flat_map(|(_, period)| past_periods(*period, depth)).map(Period::code).collect();
        let unit_ids: BTreeSet<i32> = known.iter().map(|(unit, _)| unit.id).collect();
        let past_figures = figures_of(&self.db, &snapshot, &unit_ids, &pasts).await?;
        let mut contexts = HashMap::new();
        for (unit, period) in known {
            let children = children_of(unit)
                .into_iter()
                .filter_map(|child| child_figures.get(&(child.id, period)).cloned())
                .collect();
            let mut history: BTreeMap<IndicatorCode, Vec<(Period, f64)>> = BTreeMap::new();
            for past in past_periods(period, depth).into_iter().rev() {
                for (indicator, figure) in past_figures.get(&(unit.id, past)).into_iter().flatten() {
                    history.entry(indicator.clone()).or_default().push((past, figure.value()));
                }
            }
            contexts.insert((unit.definition.code.clone(), period), QualityContext { children, history });
        }
        Ok(contexts)
    }

    /// The current figures of every report of `period` in `parent`'s subtree (the parent
    /// included), for re-validation, in tree order.
    pub async fn reports_below(
        &self,
        parent: &UnitCode,
        period: Period,
    ) -> Result<Vec<(UnitCode, BTreeMap<IndicatorCode, Figure>)>, StoreError> {
        let snapshot = self.snapshot().await?;
        let units = snapshot.subtree_units(parent);
        if units.is_empty() {
            return Err(StoreError::Unknown { kind: "unit", code: parent.to_string() });
        }
        let ids: BTreeSet<i32> = units.iter().map(|unit| unit.id).collect();
        let mut figures = figures_of(&self.db, &snapshot, &ids, &BTreeSet::from([period.code()])).await?;
        Ok(units
            .into_iter()
            .filter_map(|unit| figures.remove(&(unit.id, period)).map(|own| (unit.definition.code.clone(), own)))
            .collect())
    }

    /// Replaces the open issues of `unit`'s report for `period` with `issues` (re-validation);
    /// issues under follow-up or resolved are kept.
    pub async fn replace_data_issues(
        &self,
        unit: &UnitCode,
        period: Period,
        issues: &[NewDataIssue],
    ) -> Result<(), StoreError> {
        let snapshot = self.snapshot().await?;
        let info = snapshot.unit(unit).ok_or_else(|| StoreError::Unknown { kind: "unit", code: unit.to_string() })?;
        replace_open_issues(&self.db, info.id, period, issues).await
    }

    /// The open issues and those under follow-up of `period`'s reports in `parent`'s subtree,
    /// of one kind or all, most severe first: errors before warnings, rule violations before
    /// outliers, then in tree order.
    pub async fn list_data_issues(
        &self,
        parent: &UnitCode,
        period: Period,
        kind: Option<IssueKind>,
    ) -> Result<Vec<DataIssue>, StoreError> {
        let snapshot = self.snapshot().await?;
        let units = snapshot.subtree_units(parent);
        if units.is_empty() {
            return Err(StoreError::Unknown { kind: "unit", code: parent.to_string() });
        }
        let position: HashMap<i32, usize> = units.iter().enumerate().map(|(index, unit)| (unit.id, index)).collect();
        let mut query = data_issue::Entity::find()
            .filter(data_issue::Column::Period.eq(period.code()))
            .filter(data_issue::Column::Status.ne(IssueStatus::Resolved.as_str()))
            .order_by_asc(data_issue::Column::Id);
        if let Some(kind) = kind {
            query = query.filter(data_issue::Column::Kind.eq(kind.as_str()));
        }
        let mut issues = Vec::new();
        for row in query.all(&self.db).await? {
            if position.contains_key(&row.unit_id) {
                issues.push(issue_from_row(&snapshot, row)?);
            }
        }
        let rank = |issue: &DataIssue| {
            let unit = snapshot.unit(&issue.unit).and_then(|u| position.get(&u.id)).copied().unwrap_or(usize::MAX);
            (issue.issue.severity, issue.issue.kind != IssueKind::Rule, unit)
        };
        issues.sort_by_key(rank);
        Ok(issues)
    }

    /// Marks an issue for follow-up (`resolve` false) or resolves it, with who and why.
    pub async fn settle_data_issue(
        &self,
        id: i32,
        actor: &str,
        comment: &str,
        resolve: bool,
    ) -> Result<DataIssue, StoreError> {
        let snapshot = self.snapshot().await?;
        let row = data_issue::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::Unknown { kind: "data issue", code: id.to_string() })?;
        if row.status == IssueStatus::Resolved.as_str() {
            return Err(StoreError::Precondition(format!("data issue {id} is already resolved")));
        }
        let now = Utc::now();
        let mut update: data_issue::ActiveModel = row.into();
        if resolve {
            update.status = Set(IssueStatus::Resolved.as_str().to_owned());
            update.resolved_by = Set(Some(actor.to_owned()));
            update.resolved_at = Set(Some(now));
            update.resolution = Set(Some(comment.to_owned()));
        } else {
            update.status = Set(IssueStatus::FollowUp.as_str().to_owned());
            update.follow_up_by = Set(Some(actor.to_owned()));
            update.follow_up_at = Set(Some(now));
            update.resolution = Set(Some(comment.to_owned()));
        }
        issue_from_row(&snapshot, update.update(&self.db).await?)
    }
}

/// Deletes the open issues of a report and inserts `issues` as open, inside `conn`'s
/// transaction when it has one. An issue already under follow-up or resolved (the same rule,
/// or an outlier of the same indicator) is not raised again: its comment says why it stands.
pub(crate) async fn replace_open_issues(
    conn: &impl ConnectionTrait,
    unit_id: i32,
    period: Period,
    issues: &[NewDataIssue],
) -> Result<(), StoreError> {
    data_issue::Entity::delete_many()
        .filter(data_issue::Column::UnitId.eq(unit_id))
        .filter(data_issue::Column::Period.eq(period.code()))
        .filter(data_issue::Column::Status.eq(IssueStatus::Open.as_str()))
        .exec(conn)
        .await?;
    if issues.is_empty() {
        return Ok(());
    }
    let settled: BTreeSet<(String, String, String)> = data_issue::Entity::find()
        .filter(data_issue::Column::UnitId.eq(unit_id))
        .filter(data_issue::Column::Period.eq(period.code()))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.kind, row.code, row.indicator))
        .collect();
    let issues: Vec<&NewDataIssue> = issues
        .iter()
        .filter(|issue| {
            !settled.contains(&(issue.kind.as_str().to_owned(), issue.code.clone(), issue.indicator.clone()))
        })
        .collect();
    if issues.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    data_issue::Entity::insert_many(issues.iter().map(|issue| data_issue::ActiveModel {
        unit_id: Set(unit_id),
        period: Set(period.code()),
        kind: Set(issue.kind.as_str().to_owned()),
        code: Set(issue.code.clone()),
        severity: Set(issue.severity.as_str().to_owned()),
        indicator: Set(issue.indicator.clone()),
        sheet: Set(issue.sheet.clone()),
        cell: Set(issue.cell.clone()),
        message: Set(issue.message.clone()),
        status: Set(IssueStatus::Open.as_str().to_owned()),
        found_at: Set(now),
        ..Default::default()
    }))
    .exec(conn)
    .await?;
    Ok(())
}

/// The `depth` periods of the same length before `period`, newest first.
fn past_periods(period: Period, depth: usize) -> Vec<Period> {
    std::iter::successors(Some(period.previous()), |p| Some(p.previous())).take(depth).collect()
}

/// The current figures of `unit_ids` for `periods`, by (unit id, period), by indicator code.
async fn figures_of(
    conn: &impl ConnectionTrait,
    snapshot: &Snapshot,
    unit_ids: &BTreeSet<i32>,
    periods: &BTreeSet<String>,
) -> Result<HashMap<(i32, Period), BTreeMap<IndicatorCode, Figure>>, StoreError> {
    let ids: Vec<i32> = unit_ids.iter().copied().collect();
    let codes: Vec<String> = periods.iter().cloned().collect();
    let mut found: HashMap<(i32, Period), BTreeMap<IndicatorCode, Figure>> = HashMap::new();
    if ids.is_empty() || codes.is_empty() {
        return Ok(found);
    }
    for (unit_id, by_indicator) in current_figures_of(conn, snapshot, &ids, Some(&codes)).await? {
        for (indicator_id, reported) in by_indicator {
            let Some(indicator) = snapshot.indicator_by_id(indicator_id) else { continue };
            for (period, figure) in reported {
                found.entry((unit_id, period)).or_default().insert(indicator.definition.code.clone(), figure);
            }
        }
    }
    Ok(found)
}

fn issue_from_row(snapshot: &Snapshot, row: data_issue::Model) -> Result<DataIssue, StoreError> {
    let corrupt = |what: &str, value: &str| StoreError::Corrupt(format!("data issue {}: {what} {value:?}", row.id));
    let stamp = |by: &Option<String>, at: Option<DateTime<Utc>>| {
        by.clone().zip(at).map(|(by, at)| Stamp { by, at, comment: row.resolution.clone().unwrap_or_default() })
    };
    Ok(DataIssue {
        id: row.id,
        unit: snapshot.unit_code_by_id(row.unit_id)?,
        period: Period::parse(&row.period).map_err(|_| corrupt("period", &row.period))?,
        issue: NewDataIssue {
            kind: IssueKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.kind))?,
            code: row.code.clone(),
            severity: Severity::parse(&row.severity).ok_or_else(|| corrupt("severity", &row.severity))?,
            indicator: row.indicator.clone(),
            sheet: row.sheet.clone(),
            cell: row.cell.clone(),
            message: row.message.clone(),
        },
        status: IssueStatus::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
        found_at: row.found_at,
        follow_up: stamp(&row.follow_up_by, row.follow_up_at),
        resolution: stamp(&row.resolved_by, row.resolved_at),
    })
}
