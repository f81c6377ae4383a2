//! What was due, by when, and what came: completeness and timeliness below a unit.
//!
//! kpi-core's reporting cycle says which units owe a report for a period and by which day;
//! this module reads when each report's first revision came (the first accepted file, since
//! rejected files store nothing) and lets kpi-core judge it.

use chrono::{DateTime, NaiveDate, Utc};
use kpi_core::calendar::{ReportingCycle, ReportingRates, Timeliness};
use kpi_core::{Period, UnitCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use std::collections::HashMap;

use crate::connection::Store;
use crate::entity::report;
use crate::error::StoreError;
use crate::snapshot::{Snapshot, UnitInfo};

/// One expected report: when it was due, when it came, and what that makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitTimeliness {
    pub unit: UnitCode,
    pub name: String,
    pub due_on: NaiveDate,
    /// When the first accepted revision was imported; `None` while nothing has come.
    pub first_accepted_at: Option<DateTime<Utc>>,
    pub status: Timeliness,
    /// Working days past the deadline: until it came (late), or until the day asked about
    /// (missing); 0 otherwise.
    pub working_days_late: u32,
}

/// The rates of one unit's subtree.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRates {
    pub unit: UnitCode,
    pub rates: ReportingRates,
}

/// Which units below a parent owed a report for a period, which sent it, and how timely.
#[derive(Debug, Clone, PartialEq)]
pub struct Completeness {
    pub period: Period,
    /// The day the statuses are judged on.
    pub as_of: NaiveDate,
    /// Units below the parent that owe a report for the period, in tree order.
    pub expected: Vec<UnitCode>,
    pub reported: Vec<UnitCode>,
    /// Expected units without a report yet, whether or not their deadline has passed.
    pub missing: Vec<UnitCode>,
    /// One entry per expected unit, in the same order.
    pub units: Vec<UnitTimeliness>,
    /// The whole subtree below the parent.
    pub total: ReportingRates,
    /// Each direct child's subtree (the child included), in tree order.
    pub children: Vec<UnitRates>,
}

impl Completeness {
    /// The expected units whose report is missing past its deadline, most working days late
    /// first (tree order among equals).
    pub fn overdue(&self) -> Vec<&UnitTimeliness> {
        let mut overdue: Vec<&UnitTimeliness> =
            self.units.iter().filter(|unit| unit.status == Timeliness::Missing).collect();
        overdue.sort_by_key(|unit| std::cmp::Reverse(unit.working_days_late));
        overdue
    }
}

/// Whether `unit` owes a report for `period`: it has a data set, and its kind reports
/// periods of that length.
pub(crate) fn owes_report(cycle: &ReportingCycle, unit: &UnitInfo, period: Period) -> bool {
    !unit.definition.reports.is_empty() && cycle.is_due(&unit.definition.kind, period)
}

impl Store {
    /// Completeness and timeliness of the units below `parent` (the parent excluded) for
    /// `period`, judged on `as_of`.
    pub async fn completeness(
        &self,
        parent: &UnitCode,
        period: Period,
        as_of: NaiveDate,
    ) -> Result<Completeness, StoreError> {
        let snapshot = self.snapshot().await?;
        if snapshot.unit(parent).is_none() {
            return Err(StoreError::Unknown { kind: "unit", code: parent.to_string() });
        }
        let first_accepted = self.first_accepted(period).await?;
        let judged = judge_subtree(&snapshot, parent, period, as_of, &first_accepted);
        let mut completeness = Completeness {
            period,
            as_of,
            expected: Vec::new(),
            reported: Vec::new(),
            missing: Vec::new(),
            units: Vec::new(),
            total: ReportingRates::default(),
            children: Vec::new(),
        };
        let status_by_unit: HashMap<&UnitCode, Timeliness> =
            judged.iter().map(|(info, timeliness)| (&info.definition.code, timeliness.status)).collect();
        for child in snapshot.tree.children(parent) {
            let mut rates = ReportingRates::default();
            for unit in snapshot.tree.subtree(child) {
                if let Some(&status) = status_by_unit.get(&unit) {
                    rates.add(status);
                }
            }
            completeness.total.merge(&rates);
            if rates.expected > 0 {
                completeness.children.push(UnitRates { unit: child.clone(), rates });
            }
        }
        for (info, timeliness) in judged {
            let code = info.definition.code.clone();
            completeness.expected.push(code.clone());
            if timeliness.first_accepted_at.is_some() {
                completeness.reported.push(code);
            } else {
                completeness.missing.push(code);
            }
            completeness.units.push(timeliness);
        }
        Ok(completeness)
    }

    /// The units below `parent` whose report for `period` is missing past its deadline on
    /// `as_of`, most working days late first.
    pub async fn overdue(
        &self,
        parent: &UnitCode,
        period: Period,
        as_of: NaiveDate,
    ) -> Result<Vec<UnitTimeliness>, StoreError> {
        let completeness = self.completeness(parent, period, as_of).await?;
        Ok(completeness.overdue().into_iter().cloned().collect())
    }

    /// When each unit's report for exactly `period` first came: its revision 1's import time,
    /// kept on the report.
    async fn first_accepted(&self, period: Period) -> Result<HashMap<i32, DateTime<Utc>>, StoreError> {
        let rows: Vec<(i32, Option<DateTime<Utc>>)> = report::Entity::find()
            .select_only()
            .column(report::Column::UnitId)
            .column(report::Column::FirstAcceptedAt)
            .filter(report::Column::Period.eq(period.code()))
            .filter(report::Column::FirstAcceptedAt.is_not_null())
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(|(unit, at)| at.map(|at| (unit, at))).collect())
    }
}

/// Every unit below `parent` that owes a report for `period`, in tree order, judged on
/// `as_of`.
fn judge_subtree<'a>(
    snapshot: &'a Snapshot,
    parent: &UnitCode,
    period: Period,
    as_of: NaiveDate,
    first_accepted: &HashMap<i32, DateTime<Utc>>,
) -> Vec<(&'a UnitInfo, UnitTimeliness)> {
    let cycle = snapshot.reporting();
    // A national tree has a handful of kinds and eleven thousand units: each kind's deadline
    // is worked out once.
    let mut deadlines: HashMap<&str, NaiveDate> = HashMap::new();
    let below = snapshot.subtree_units(parent).into_iter().skip(1);
    below
        .filter(|info| owes_report(cycle, info, period))
        .map(|info| {
            let kind = info.definition.kind.as_str();
            let due_on = *deadlines.entry(kind).or_insert_with(|| cycle.deadline(kind, period));
            let accepted_at = first_accepted.get(&info.id).copied();
            let accepted_on = accepted_at.map(kpi_core::calendar::local_date);
            let status = kpi_core::calendar::Timeliness::judge(due_on, accepted_on, as_of);
            let working_days_late = match status {
                Timeliness::Late => accepted_on.map_or(0, |day| cycle.working_days_late(due_on, day)),
                Timeliness::Missing => cycle.working_days_late(due_on, as_of),
                Timeliness::OnTime | Timeliness::NotDue => 0,
            };
            let timeliness = UnitTimeliness {
                unit: info.definition.code.clone(),
                name: info.definition.name.clone(),
                due_on,
                first_accepted_at: accepted_at,
                status,
                working_days_late,
            };
            (info, timeliness)
        })
        .collect()
}
