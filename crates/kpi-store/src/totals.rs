//! Keeping the KPI totals (`kpi_totals`) in step with the reports, and reading them.
//!
//! kpi-core's `totals` module defines what a report changes; this module reads a unit's
//! current figures, asks kpi-core for the changes, and adds them to the rows of the unit and
//! of each ancestor with one additive upsert (`count = count + excluded.count`), which is
//! atomic per row on both backends. Writers of one unit are serialised (SQLite's write lock;
//! the unit row's lock on PostgreSQL), so each computes its changes from the state it
//! replaces. A catalog change rebuilds every total from the current reports.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use kpi_core::totals::{Reported, Totals, TotalsChange, resolution_changes, totals_change, years_of_either};
use kpi_core::{Figure, Period};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Iden, Query, UnionType};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, Value};

use crate::batches::statement_batches;
use crate::entity::{kpi_total, report, report_value};
use crate::error::StoreError;
use crate::overlapped;
use crate::revisions::figure_from_columns;
use crate::rows_insert::{RowsInsert, quoted};
use crate::snapshot::{Snapshot, UnitInfo};
use crate::state;
use crate::warm_reads::WarmReads;

/// Rows per upsert: 8 parameters each, well under every backend's limit.
const UPSERT_BATCH: usize = 1000;
/// Units whose figures are read per query when rebuilding.
const REBUILD_BATCH: usize = 500;

/// Per unit id, per indicator id, the unit's current figures by period.
pub(crate) type FiguresByUnit = HashMap<i32, HashMap<i32, Reported>>;

/// One pending change to the totals of (unit, indicator, period).
pub(crate) type Change = (i32, i32, Period, TotalsChange);

/// The current figures of `unit_ids`, for `periods` (every period when `None`).
pub(crate) async fn current_figures_of(
    conn: &impl ConnectionTrait,
    snapshot: &Snapshot,
    unit_ids: &[i32],
    periods: Option<&[String]>,
) -> Result<FiguresByUnit, StoreError> {
    let mut figures: FiguresByUnit = HashMap::new();
    if unit_ids.is_empty() {
        return Ok(figures);
    }
    let mut query = Query::select();
    query
        .from(report::Entity)
        .inner_join(
            report_value::Entity,
            Expr::col((report_value::Entity, report_value::Column::RevisionId))
                .equals((report::Entity, report::Column::CurrentRevisionId)),
        )
        .column((report::Entity, report::Column::UnitId))
        .column((report::Entity, report::Column::Period))
        .column((report_value::Entity, report_value::Column::IndicatorId))
        .column((report_value::Entity, report_value::Column::Value))
        .column((report_value::Entity, report_value::Column::Numerator))
        .column((report_value::Entity, report_value::Column::Denominator))
        .and_where(Expr::col((report::Entity, report::Column::UnitId)).is_in(unit_ids.iter().copied()));
    if let Some(periods) = periods {
        query.and_where(Expr::col((report::Entity, report::Column::Period)).is_in(periods.iter().cloned()));
    }
    for row in conn.query_all(&query).await? {
        let unit_id: i32 = row.try_get_by_index(0)?;
        let code: String = row.try_get_by_index(1)?;
        let indicator_id: i32 = row.try_get_by_index(2)?;
        let indicator = snapshot
            .indicator_by_id(indicator_id)
            .ok_or_else(|| StoreError::Corrupt(format!("value for indicator {indicator_id} outside the catalog")))?;
        let period = Period::parse(&code).map_err(|_| StoreError::Corrupt(format!("stored period {code:?}")))?;
        let figure = figure_from_columns(
            indicator.definition.kind,
            row.try_get_by_index(3)?,
            row.try_get_by_index(4)?,
            row.try_get_by_index(5)?,
        )?;
        figures.entry(unit_id).or_default().entry(indicator_id).or_default().insert(period, figure);
    }
    Ok(figures)
}

/// The changes to the totals when `unit`'s figures go from `old` to `new` (per indicator id).
fn changes_for_unit(
    snapshot: &Snapshot,
    unit: &UnitInfo,
    old: &HashMap<i32, Reported>,
    new: &HashMap<i32, Reported>,
) -> Result<Vec<Change>, StoreError> {
    let ancestors = unit.self_and_ancestor_ids()?;
    let empty = Reported::new();
    let mut changes = Vec::new();
    let mut indicator_ids: Vec<i32> = old.keys().chain(new.keys()).copied().collect();
    indicator_ids.sort_unstable();
    indicator_ids.dedup();
    for indicator_id in indicator_ids {
        let (before, after) = (old.get(&indicator_id).unwrap_or(&empty), new.get(&indicator_id).unwrap_or(&empty));
        let years = years_of_either(before, after);
        indicator_changes(snapshot, unit, &ancestors, indicator_id, years, (before, after), &mut changes)?;
    }
    Ok(changes)
}

/// Appends to `changes` what one indicator's figures going from `before` to `after` change
/// within `years`, for the unit and each of its `ancestors`.
fn indicator_changes(
    snapshot: &Snapshot,
    unit: &UnitInfo,
    ancestors: &[i32],
    indicator_id: i32,
    years: impl Iterator<Item = i32>,
    (before, after): (&Reported, &Reported),
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let indicator = snapshot
        .indicator_by_id(indicator_id)
        .ok_or_else(|| StoreError::Corrupt(format!("value for indicator {indicator_id} outside the catalog")))?;
    let definition = &indicator.definition;
    let is_reporter = definition.reported_by.as_ref() == Some(&unit.definition.code);
    for year in years {
        for (period, was, is) in resolution_changes(year, definition.time_aggregation, before, after) {
            if let Some(change) = totals_change(definition.kind, is_reporter, was, is) {
                changes.extend(ancestors.iter().map(|&ancestor| (ancestor, indicator_id, period, change)));
            }
        }
    }
    Ok(())
}

/// The changes to the totals when `unit`'s report for `period` gets `values` (indicator id,
/// figure) as its current figures, given the unit's current figures `current` (at least those
/// of the period's year); `current` then holds the new figures.
///
/// Only the indicators with a figure for `period` before or after can change, and only within
/// its year ([`resolution_changes`] reads no other year's figures), so only theirs are
/// compared: a file's write copies its own indicators' figures, not the unit's.
pub(crate) fn report_changes(
    snapshot: &Snapshot,
    unit: &UnitInfo,
    period: Period,
    current: &mut HashMap<i32, Reported>,
    values: &[(i32, Figure)],
) -> Result<Vec<Change>, StoreError> {
    let mut touched: Vec<i32> = current
        .iter()
        .filter(|(_, reported)| reported.contains_key(&period))
        .map(|(&indicator_id, _)| indicator_id)
        .chain(values.iter().map(|&(indicator_id, _)| indicator_id))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    let before: Vec<(i32, Reported)> = touched
        .iter()
        .map(|indicator_id| (*indicator_id, current.get(indicator_id).cloned().unwrap_or_default()))
        .collect();
    for &indicator_id in &touched {
        if let Some(reported) = current.get_mut(&indicator_id) {
            reported.remove(&period);
        }
    }
    for &(indicator_id, figure) in values {
        current.entry(indicator_id).or_default().insert(period, figure);
    }
    let ancestors = unit.self_and_ancestor_ids()?;
    let empty = Reported::new();
    let mut changes = Vec::new();
    for (indicator_id, before) in &before {
        let after = current.get(indicator_id).unwrap_or(&empty);
        let year = std::iter::once(period.year());
        indicator_changes(snapshot, unit, &ancestors, *indicator_id, year, (before, after), &mut changes)?;
    }
    Ok(changes)
}

/// The codes of the years of `periods` and of every period inside them, each once: what
/// reports for `periods` can change the totals of.
pub(crate) fn year_codes(periods: impl IntoIterator<Item = Period>) -> Vec<String> {
    let years: BTreeSet<i32> = periods.into_iter().map(Period::year).collect();
    years.into_iter().flat_map(|year| Period::Year(year).with_descendants()).map(Period::code).collect()
}

/// The changes of a group of writes, summed per total, applied once before the group commits:
/// ancestors shared by the group's units are updated once, and their rows are locked only at
/// the end of the transaction.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    totals: BTreeMap<(i32, i32, Period), (Totals, bool)>,
}

impl Pending {
    pub(crate) fn add(&mut self, changes: Vec<Change>) {
        for (unit_id, indicator_id, period, change) in changes {
            let (total, percent_set) = self.totals.entry((unit_id, indicator_id, period)).or_default();
            *percent_set |= matches!(change, TotalsChange::SetPercent(_));
            accumulate(total, change);
        }
    }

    /// Applies the summed changes, the units deepest in the tree first and the root last, so
    /// the rows every writer shares are held for the shortest time.
    pub(crate) async fn apply(self, conn: &impl ConnectionTrait) -> Result<(), StoreError> {
        let mut rows: Vec<Change> = Vec::with_capacity(self.totals.len());
        for ((unit_id, indicator_id, period), (total, percent_set)) in self.totals {
            let add = TotalsChange::Add {
                count: total.count,
                numerator: total.numerator,
                denominator: total.denominator,
                units: total.reporting_units,
            };
            if add != (TotalsChange::Add { count: 0, numerator: 0, denominator: 0, units: 0 }) {
                rows.push((unit_id, indicator_id, period, add));
            }
            if percent_set {
                rows.push((unit_id, indicator_id, period, TotalsChange::SetPercent(total.percent)));
            }
        }
        rows.sort_by_key(|&(unit_id, indicator_id, period, _)| (std::cmp::Reverse(unit_id), indicator_id, period));
        apply_changes(conn, &rows).await
    }
}

/// Adds counts and ratios to the rows, and sets percents, in batched upserts, each built while
/// the one before it runs.
async fn apply_changes(conn: &impl ConnectionTrait, changes: &[Change]) -> Result<(), StoreError> {
    let (adds, sets): (Vec<&Change>, Vec<&Change>) =
        changes.iter().partition(|(.., change)| matches!(change, TotalsChange::Add { .. }));
    let backend = conn.get_database_backend();
    // Each statement's text around its rows is written once for the whole apply.
    let (add, set) = (totals_upsert(true), totals_upsert(false));
    let mut batches = statement_batches(&adds, UPSERT_BATCH)
        .map(|batch| (batch, &add))
        .chain(statement_batches(&sets, UPSERT_BATCH).map(|batch| (batch, &set)));
    overlapped::execute_all(conn, || batches.next().map(|(batch, upsert)| upsert_statement(upsert, backend, batch)))
        .await
}

/// The upsert of a batch of changes with `upsert`'s text.
fn upsert_statement(upsert: &RowsInsert<8>, backend: DbBackend, batch: &[&Change]) -> Statement {
    upsert.statement(backend, batch.iter().map(|change| total_row(change)))
}

/// The upsert of changes into `kpi_totals`: added to the rows (`additive`) or set.
fn totals_upsert(additive: bool) -> RowsInsert<8> {
    use kpi_total::Column as C;
    let columns: [&dyn Iden; 8] = [
        &C::UnitId,
        &C::IndicatorId,
        &C::Period,
        &C::Count,
        &C::Numerator,
        &C::Denominator,
        &C::Percent,
        &C::ReportingUnits,
    ];
    let key = [&C::UnitId as &dyn Iden, &C::IndicatorId, &C::Period].map(quoted).join(", ");
    let updates: Vec<String> = if additive {
        let table = quoted(&kpi_total::Entity);
        [C::Count, C::Numerator, C::Denominator, C::ReportingUnits]
            .iter()
            .map(|column| format!("{name} = {table}.{name} + \"excluded\".{name}", name = quoted(column)))
            .collect()
    } else {
        [C::Percent, C::ReportingUnits]
            .iter()
            .map(|column| format!("{name} = \"excluded\".{name}", name = quoted(column)))
            .collect()
    };
    let tail = format!(" ON CONFLICT ({key}) DO UPDATE SET {}", updates.join(", "));
    RowsInsert::new(&kpi_total::Entity, columns, tail)
}

/// One row of `kpi_totals` for a change: the amounts to add, or the percent to set.
fn total_row(&(unit_id, indicator_id, period, change): &Change) -> [Value; 8] {
    let (count, numerator, denominator, percent, units) = match change {
        TotalsChange::Add { count, numerator, denominator, units } => (count, numerator, denominator, None, units),
        TotalsChange::SetPercent(percent) => (0, 0, 0, percent, i64::from(percent.is_some())),
    };
    [
        unit_id.into(),
        indicator_id.into(),
        period.code().into(),
        count.into(),
        numerator.into(),
        denominator.into(),
        percent.into(),
        units.into(),
    ]
}

/// Rebuilds every total from the current reports, with the catalog as `conn` sees it.
pub(crate) async fn rebuild(conn: &impl ConnectionTrait, snapshot: &Snapshot) -> Result<(), StoreError> {
    kpi_total::Entity::delete_many().exec(conn).await?;
    // Every unit's reports, as changes from nothing, summed the way a group of writes sums them.
    let mut pending = Pending::default();
    let none = HashMap::new();
    for units in snapshot.units.chunks(REBUILD_BATCH) {
        let ids: Vec<i32> = units.iter().map(|u| u.id).collect();
        let figures = current_figures_of(conn, snapshot, &ids, None).await?;
        for unit in units {
            let Some(reported) = figures.get(&unit.id) else { continue };
            pending.add(changes_for_unit(snapshot, unit, &none, reported)?);
        }
    }
    pending.apply(conn).await?;
    state::set(conn, state::TOTALS_BUILT, "built").await
}

/// Adds one change to a total being summed.
fn accumulate(total: &mut Totals, change: TotalsChange) {
    match change {
        TotalsChange::Add { count, numerator, denominator, units } => {
            total.count += count;
            total.numerator += numerator;
            total.denominator += denominator;
            total.reporting_units += units;
        }
        TotalsChange::SetPercent(percent) => total.percent = percent,
    }
}

/// Whether the totals were ever built in this database.
pub(crate) async fn are_built(conn: &impl ConnectionTrait) -> Result<bool, StoreError> {
    Ok(state::get(conn, state::TOTALS_BUILT).await?.is_some())
}

/// What a KPI query reads: the totals, and which (unit id, period) have reports of the
/// subtree not yet approved.
#[derive(Debug, Default)]
pub(crate) struct TotalsRead {
    pub totals: HashMap<(i32, i32, Period), Totals>,
    pub unsettled: HashSet<(i32, Period)>,
}

/// The totals of `unit_ids` for `indicator_ids` and `periods`, and the unapproved reports of
/// those units in the years the periods span, in one statement per batch of units (a second
/// query would cost a second round trip on every KPI call): the `approval_counts` rows come
/// back with indicator id -1 and their unapproved count in `count`.
pub(crate) async fn read(
    reads: &WarmReads,
    unit_ids: &[i32],
    indicator_ids: &[i32],
    periods: &[Period],
) -> Result<TotalsRead, StoreError> {
    let mut read = TotalsRead::default();
    let (Some(first), Some(last)) = (periods.iter().map(|p| p.year()).min(), periods.iter().map(|p| p.year()).max())
    else {
        return Ok(read);
    };
    if unit_ids.is_empty() || indicator_ids.is_empty() {
        return Ok(read);
    }
    let by_code: HashMap<String, Period> = periods.iter().map(|&p| (p.code(), p)).collect();
    for batch in unit_ids.chunks(UPSERT_BATCH) {
        let mut query = totals_query(batch, indicator_ids, by_code.keys());
        query.union(UnionType::All, unsettled_query(batch, first, last));
        for row in
            reads.query_all(&query, rows_at_most(batch.len(), indicator_ids.len(), by_code.len(), first, last)).await?
        {
            let unit_id: i32 = row.get(0)?;
            let indicator_id: i32 = row.get(1)?;
            let code: String = row.get(2)?;
            if indicator_id == UNSETTLED_ROW {
                let period =
                    Period::parse(&code).map_err(|_| StoreError::Corrupt(format!("stored period {code:?}")))?;
                read.unsettled.insert((unit_id, period));
                continue;
            }
            let Some(&period) = by_code.get(&code) else { continue };
            let total = Totals {
                count: row.get(3)?,
                numerator: row.get(4)?,
                denominator: row.get(5)?,
                percent: row.get(6)?,
                reporting_units: row.get(7)?,
            };
            read.totals.insert((unit_id, indicator_id, period), total);
        }
    }
    Ok(read)
}

/// The most rows [`read`]'s statement returns for `units`: a totals row per unit, indicator
/// and period, and an `approval_counts` row per unit and period of the years `first..=last`.
fn rows_at_most(units: usize, indicators: usize, periods: usize, first: i32, last: i32) -> usize {
    let years = usize::try_from(last.saturating_sub(first)).unwrap_or(0).saturating_add(1);
    let totals = units.saturating_mul(indicators).saturating_mul(periods);
    totals.saturating_add(units.saturating_mul(years).saturating_mul(kpi_core::aggregate::PERIODS_IN_A_YEAR))
}

/// The indicator id that marks an `approval_counts` row in [`read`]'s union.
const UNSETTLED_ROW: i32 = -1;

fn totals_query<'a>(
    unit_ids: &[i32],
    indicator_ids: &[i32],
    codes: impl Iterator<Item = &'a String>,
) -> sea_orm::sea_query::SelectStatement {
    use kpi_total::Column as C;
    let mut query = Query::select();
    query
        .from(kpi_total::Entity)
        .columns([C::UnitId, C::IndicatorId, C::Period, C::Count, C::Numerator, C::Denominator, C::Percent])
        .column(C::ReportingUnits)
        .and_where(Expr::col(C::UnitId).is_in(unit_ids.iter().copied()))
        .and_where(Expr::col(C::IndicatorId).is_in(indicator_ids.iter().copied()))
        .and_where(Expr::col(C::Period).is_in(codes.cloned()));
    query
}

/// The (unit, period) rows of `approval_counts` with unapproved reports, for the years
/// `first` to `last`: every period code starts with its year, so the range is a prefix range.
fn unsettled_query(unit_ids: &[i32], first: i32, last: i32) -> sea_orm::sea_query::SelectStatement {
    let column = |name: &str| Expr::col(Alias::new(name));
    let mut query = Query::select();
    query
        .from(Alias::new("approval_counts"))
        .column(Alias::new("unit_id"))
        .expr(Expr::val(UNSETTLED_ROW))
        .column(Alias::new("period"))
        .expr(column("reports").sub(column("approved")))
        .expr(Expr::val(0i64))
        .expr(Expr::val(0i64))
        .expr(Expr::cust("CAST(NULL AS DOUBLE PRECISION)"))
        .expr(Expr::val(0i64))
        .and_where(column("unit_id").is_in(unit_ids.iter().copied()))
        .and_where(column("period").gte(first.to_string()))
        .and_where(column("period").lt((last + 1).to_string()))
        .and_where(column("reports").gt(column("approved")));
    query
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::OnConflict;

    use super::*;

    /// The upsert as sea-query builds it: the slow, obvious reference.
    fn upsert_by_sea_query(backend: DbBackend, batch: &[&Change], additive: bool) -> Statement {
        use kpi_total::Column as C;
        let mut insert = Query::insert();
        insert.into_table(kpi_total::Entity).columns([
            C::UnitId,
            C::IndicatorId,
            C::Period,
            C::Count,
            C::Numerator,
            C::Denominator,
            C::Percent,
            C::ReportingUnits,
        ]);
        for change in batch {
            insert.values_panic(total_row(change).map(Into::into));
        }
        let mut on_conflict = OnConflict::columns([C::UnitId, C::IndicatorId, C::Period]);
        if additive {
            for column in [C::Count, C::Numerator, C::Denominator, C::ReportingUnits] {
                let sum = Expr::col((kpi_total::Entity, column)).add(Expr::col((Alias::new("excluded"), column)));
                on_conflict.value(column, sum);
            }
        } else {
            on_conflict.update_columns([C::Percent, C::ReportingUnits]);
        }
        insert.on_conflict(on_conflict);
        backend.build(&insert)
    }

    #[test]
    fn upserts_are_written_as_sea_query_writes_them() {
        let periods = [Period::Year(2025), Period::Half(2025, 2), Period::Quarter(2024, 1), Period::Month(2025, 3)];
        let changes: Vec<Change> = (0..40)
            .map(|index| {
                let change = match index % 3 {
                    0 => TotalsChange::Add { count: index, numerator: -index, denominator: 2 * index, units: 1 },
                    1 => TotalsChange::SetPercent(Some(index as f64 / 3.0)),
                    _ => TotalsChange::SetPercent(None),
                };
                (index as i32 + 1, index as i32 % 19, periods[index as usize % periods.len()], change)
            })
            .collect();
        let changes: Vec<&Change> = changes.iter().collect();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for additive in [true, false] {
                for count in 1..=changes.len() {
                    let batch = &changes[..count];
                    assert_eq!(
                        upsert_statement(&totals_upsert(additive), backend, batch),
                        upsert_by_sea_query(backend, batch, additive),
                        "{count} rows, additive {additive}"
                    );
                }
            }
        }
    }
}
