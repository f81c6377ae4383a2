//! What was due, by when, and what came: completeness and timeliness below a unit.
//!
//! kpi-core's reporting cycle says which units owe a report for a period and by which day;
//! this module reads when each report's first revision came (the first accepted file, since
//! rejected files store nothing) and lets kpi-core judge it.

use chrono::{DateTime, NaiveDate, Utc};
use kpi_core::calendar::{ReportingCycle, ReportingRates, Timeliness};
use kpi_core::text::excerpt;
use kpi_core::{Period, UnitCode};
use sea_orm::{ConnectionTrait, DbBackend, EntityName, Statement};
use std::collections::HashMap;

use crate::connection::Store;
use crate::entity::report;
use crate::error::StoreError;
use crate::snapshot::{Snapshot, UnitInfo};
use crate::sql::comma_joined;

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
        let children = snapshot.tree.children(parent);
        let mut branch_rates = vec![ReportingRates::default(); children.len()];
        for judged in &judged {
            if let Some(rates) = branch_rates.get_mut(judged.branch) {
                rates.add(judged.timeliness.status);
            }
        }
        for (child, rates) in children.iter().zip(branch_rates) {
            completeness.total.merge(&rates);
            if rates.expected > 0 {
                completeness.children.push(UnitRates { unit: child.clone(), rates });
            }
        }
        for JudgedUnit { timeliness, .. } in judged {
            let code = timeliness.unit.clone();
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
    /// kept on the report. The times come as one row, `unit_id=time` pairs joined by commas
    /// ([`comma_joined`]): a national period has over ten thousand reports, whose rows one by
    /// one cost more than the rest of the call.
    async fn first_accepted(&self, period: Period) -> Result<HashMap<i32, DateTime<Utc>>, StoreError> {
        let backend = self.db.get_database_backend();
        // Each backend writes the time in a form read back exactly: PostgreSQL as microseconds
        // since 1970 (formatting 10,000 times as text cost it 5 ms), SQLite as the RFC 3339
        // text it stores.
        let (time, placeholder, parse): (&str, &str, ReadTime) = match backend {
            DbBackend::Postgres => (
                "CAST(CAST(EXTRACT(EPOCH FROM first_accepted_at) * 1000000 AS BIGINT) AS TEXT)",
                "$1",
                from_epoch_micros,
            ),
            _ => ("first_accepted_at", "?", from_rfc3339),
        };
        let joined = comma_joined(backend, &format!("CAST(unit_id AS TEXT) || '=' || {time}"));
        let table = report::Entity.table_name();
        let sql =
            format!("SELECT {joined} FROM {table} WHERE period = {placeholder} AND first_accepted_at IS NOT NULL");
        let statement = Statement::from_sql_and_values(backend, sql, [period.code().into()]);
        let row = self.db.query_one_raw(statement).await?;
        let joined: Option<String> = row.map(|row| row.try_get_by_index(0)).transpose()?.flatten();
        let Some(joined) = joined else { return Ok(HashMap::new()) };
        let mut times = HashMap::with_capacity(joined.bytes().filter(|&b| b == b',').count() + 1);
        let corrupt =
            || StoreError::Corrupt(format!("first accepted times of {}: {}", period.code(), excerpt(&joined)));
        for pair in joined.split(',') {
            let (unit, at) = pair.split_once('=').ok_or_else(corrupt)?;
            let unit = unit.parse::<i32>().map_err(|_| corrupt())?;
            times.insert(unit, parse(at).ok_or_else(corrupt)?);
        }
        Ok(times)
    }
}

/// Reads a time as one backend wrote it (see `Store::first_accepted`).
type ReadTime = fn(&str) -> Option<DateTime<Utc>>;

fn from_epoch_micros(text: &str) -> Option<DateTime<Utc>> {
    text.parse().ok().and_then(DateTime::from_timestamp_micros)
}

fn from_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|at| at.with_timezone(&Utc))
}

/// One expected unit's timeliness, and under which direct child of the parent it lies.
struct JudgedUnit {
    /// The position of that child among the parent's children.
    branch: usize,
    timeliness: UnitTimeliness,
}

/// Every unit below `parent` that owes a report for `period`, in tree order, judged on
/// `as_of`.
fn judge_subtree(
    snapshot: &Snapshot,
    parent: &UnitCode,
    period: Period,
    as_of: NaiveDate,
    first_accepted: &HashMap<i32, DateTime<Utc>>,
) -> Vec<JudgedUnit> {
    let cycle = snapshot.reporting();
    // A national tree has a handful of kinds and eleven thousand units: each kind's deadline
    // is worked out once.
    let mut deadlines: HashMap<&str, NaiveDate> = HashMap::new();
    let below = snapshot.subtree_units(parent);
    // Each direct child of `parent` starts a branch; the subtree lists every unit after its
    // parent, so every other unit takes its parent's branch.
    let mut branches: HashMap<&UnitCode, usize> = HashMap::with_capacity(below.len());
    branches.extend(snapshot.tree.children(parent).iter().enumerate().map(|(position, child)| (child, position)));
    let mut judged = Vec::with_capacity(below.len());
    for info in below.into_iter().skip(1) {
        let code = &info.definition.code;
        let branch = match branches.get(code) {
            Some(&branch) => branch,
            None => {
                let up = info.definition.parent.as_ref().and_then(|up| branches.get(up));
                let branch = up.copied().unwrap_or(usize::MAX);
                branches.insert(code, branch);
                branch
            }
        };
        if !owes_report(cycle, info, period) {
            continue;
        }
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
            unit: code.clone(),
            name: info.definition.name.clone(),
            due_on,
            first_accepted_at: accepted_at,
            status,
            working_days_late,
        };
        judged.push(JudgedUnit { branch, timeliness });
    }
    judged
}
