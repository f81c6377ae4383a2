//! The catalog as stored, held in memory: units, indicators, assignments and targets.
//!
//! Every query needs the tree and the indicator definitions; reading them once per request
//! would cost more than the query itself at national scale (about 11,000 units), so a
//! snapshot is cached. Every few seconds one cheap read of the catalog's version (changed by
//! each catalog load that changes anything) says whether it is still current, so replicas
//! converge within that time after another process loads an edited catalog, and an unchanged
//! catalog is never read again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kpi_core::calendar::ReportingCycle;
use kpi_core::catalog::{IndicatorDef, ResolutionDef, TargetDef, UnitDef};
use kpi_core::{Direction, IndicatorCode, IndicatorKind, Period, ResolutionCode, TimeAggregation, UnitCode, UnitTree};
use sea_orm::{EntityName, EntityTrait, QueryOrder, Statement};

use crate::connection::Store;
use crate::entity::{indicator, resolution, target, unit, unit_indicator};
use crate::error::StoreError;
use crate::sql::{comma_joined, joined};

/// How long a snapshot is trusted before the catalog's version is checked again.
const SNAPSHOT_TTL: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct CachedSnapshot {
    checked_at: Instant,
    version: Option<String>,
    snapshot: Arc<Snapshot>,
}

/// A unit of the tree, as the catalog defines it, with its database identity.
#[derive(Debug, Clone)]
pub struct UnitInfo {
    pub id: i32,
    /// `/<root id>/.../<own id>/`: the unit's subtree is every path with this prefix.
    pub path: String,
    /// Code, name, kind, parent and data set (`reports`, in catalog order).
    pub definition: UnitDef,
}

/// An indicator, as the catalog defines it, with its database identity and resolution.
#[derive(Debug, Clone)]
pub struct IndicatorInfo {
    pub id: i32,
    pub resolution: ResolutionCode,
    pub definition: IndicatorDef,
}

impl UnitInfo {
    /// The ids of the unit and of its ancestors, read from its materialised path.
    pub(crate) fn self_and_ancestor_ids(&self) -> Result<Vec<i32>, StoreError> {
        self.path
            .split('/')
            .filter(|part| !part.is_empty())
            .map(|part| part.parse().map_err(|_| corrupt(format!("unit path {:?}", self.path))))
            .collect()
    }
}

/// The whole catalog at one moment, indexed for lookups.
#[derive(Debug)]
pub struct Snapshot {
    pub units: Vec<UnitInfo>,
    pub indicators: Vec<IndicatorInfo>,
    pub targets: Vec<TargetDef>,
    pub resolutions: Vec<ResolutionDef>,
    pub tree: UnitTree,
    unit_index: HashMap<UnitCode, usize>,
    indicator_index: HashMap<IndicatorCode, usize>,
    indicator_by_id: HashMap<i32, usize>,
    unit_by_id: HashMap<i32, usize>,
    /// Data windows, deadlines, holidays and closing (the default cycle before any load).
    reporting: ReportingCycle,
    /// For each unit, then each indicator (in `units` and `indicators` order), the units of the
    /// subtree whose data set has the indicator: about 0.8 MB for a national tree.
    expected: Vec<u32>,
    /// The same catalog in kpi-core's form, for validating uploads against what queries see.
    catalog: Option<Arc<kpi_core::Catalog>>,
}

impl Snapshot {
    pub fn unit(&self, code: &UnitCode) -> Option<&UnitInfo> {
        self.unit_index.get(code).map(|&i| &self.units[i])
    }

    pub fn indicator(&self, code: &IndicatorCode) -> Option<&IndicatorInfo> {
        self.indicator_index.get(code).map(|&i| &self.indicators[i])
    }

    /// The stored catalog as kpi-core's `Catalog` (none before the first catalog load): what
    /// the import pipeline validates against, so uploads and queries share one catalog.
    pub fn catalog(&self) -> Result<Arc<kpi_core::Catalog>, StoreError> {
        self.catalog.clone().ok_or_else(|| corrupt("no catalog has been loaded".into()))
    }

    /// The units of `unit_id`'s subtree whose data set includes `indicator_id`.
    pub fn expected_units(&self, unit_id: i32, indicator_id: i32) -> u32 {
        let (Some(&unit), Some(&indicator)) = (self.unit_by_id.get(&unit_id), self.indicator_by_id.get(&indicator_id))
        else {
            return 0;
        };
        self.expected.get(unit * self.indicators.len() + indicator).copied().unwrap_or(0)
    }

    pub(crate) fn indicator_by_id(&self, id: i32) -> Option<&IndicatorInfo> {
        self.indicator_by_id.get(&id).map(|&i| &self.indicators[i])
    }

    pub(crate) fn unit_by_id(&self, id: i32) -> Result<&UnitInfo, StoreError> {
        self.unit_by_id.get(&id).map(|&i| &self.units[i]).ok_or_else(|| corrupt(format!("no unit with id {id}")))
    }

    pub(crate) fn unit_code_by_id(&self, id: i32) -> Result<UnitCode, StoreError> {
        self.unit_by_id(id).map(|unit| unit.definition.code.clone())
    }

    /// The catalog's reporting cycle: what is due, by when, and when a period closes.
    pub fn reporting(&self) -> &ReportingCycle {
        &self.reporting
    }

    pub fn resolution(&self, code: &ResolutionCode) -> Option<&ResolutionDef> {
        self.resolutions.iter().find(|r| &r.code == code)
    }

    /// The root of the unit tree (the catalog guarantees there is exactly one).
    pub fn root(&self) -> Option<&UnitInfo> {
        self.units.iter().find(|u| u.definition.parent.is_none())
    }

    /// `unit` and every unit below it, `unit` first.
    pub fn subtree_units(&self, unit: &UnitCode) -> Vec<&UnitInfo> {
        self.tree.subtree(unit).iter().filter_map(|code| self.unit(code)).collect()
    }

    /// The target in force for `indicator` at `unit` in `period`, chosen by kpi-core's
    /// [`kpi_core::target::choose_target`] from the targets of the unit and its ancestors.
    pub fn target_for(&self, indicator: &IndicatorInfo, unit: &UnitCode, period: Period) -> Option<f64> {
        let holders =
            std::iter::successors(Some(unit.clone()), |code| self.unit(code).and_then(|u| u.definition.parent.clone()));
        kpi_core::target::choose_target(indicator.definition.kind, holders, period, |holder, wanted| {
            self.targets
                .iter()
                .find(|t| t.indicator == indicator.definition.code && &t.unit == holder && t.period == wanted)
                .map(|t| t.value)
        })
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

impl Store {
    /// The catalog as stored, at most a few seconds old.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        if let Some(cached) = self.snapshot.read().await.as_ref().filter(|c| c.checked_at.elapsed() < SNAPSHOT_TTL) {
            return Ok(Arc::clone(&cached.snapshot));
        }
        let version = crate::state::get(&self.db, crate::state::CATALOG_VERSION).await?;
        let mut cache = self.snapshot.write().await;
        if let Some(cached) = cache.as_mut().filter(|c| c.version == version) {
            cached.checked_at = Instant::now();
            return Ok(Arc::clone(&cached.snapshot));
        }
        let snapshot = Arc::new(read_snapshot(&self.db).await?);
        *cache = Some(CachedSnapshot { checked_at: Instant::now(), version, snapshot: Arc::clone(&snapshot) });
        Ok(snapshot)
    }

    /// Forgets the cached snapshot, after this process changed the catalog.
    pub(crate) async fn invalidate_snapshot(&self) {
        *self.snapshot.write().await = None;
    }
}

/// Every unit's assigned indicator ids, all in one row: `unit:id,id,…;unit:id,…` (see
/// [`comma_joined`]). A national catalog has about 200,000 assignments over 10,600 units,
/// whose rows one by one, or even one per unit, cost more than the catalog's whole parse.
async fn assignments(conn: &impl sea_orm::ConnectionTrait) -> Result<HashMap<i32, Vec<i32>>, StoreError> {
    let backend = conn.get_database_backend();
    let per_unit = comma_joined(backend, "CAST(indicator_id AS TEXT)");
    let all = joined(backend, "unit_ids", ";");
    let table = unit_indicator::Entity.table_name();
    let sql = format!(
        "SELECT {all} FROM (SELECT CAST(unit_id AS TEXT) || ':' || {per_unit} AS unit_ids \
         FROM {table} GROUP BY unit_id) AS per_unit"
    );
    let row = conn.query_one_raw(Statement::from_string(backend, sql)).await?;
    let text: Option<String> = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    let mut by_unit = HashMap::new();
    for unit in text.as_deref().unwrap_or_default().split(';').filter(|unit| !unit.is_empty()) {
        let bad = || corrupt(format!("assignments {unit:?}"));
        let (unit_id, ids) = unit.split_once(':').ok_or_else(bad)?;
        let unit_id: i32 = unit_id.parse().map_err(|_| bad())?;
        // Sized from the text once: grown id by id, the 10,600 lists were reallocated 50,000
        // times.
        let mut parsed = Vec::with_capacity(ids.bytes().filter(|&byte| byte == b',').count() + 1);
        for id in ids.split(',') {
            parsed.push(id.parse::<i32>().map_err(|_| bad())?);
        }
        by_unit.insert(unit_id, parsed);
    }
    Ok(by_unit)
}

/// Every unit row, in catalog order, its columns read by position: a national catalog has
/// 11,404 units, and sea-orm's models look each column up by name (a hash per value).
async fn unit_rows(conn: &impl sea_orm::ConnectionTrait) -> Result<Vec<unit::Model>, StoreError> {
    use unit::Column as C;
    let mut query = sea_orm::sea_query::Query::select();
    query
        .columns([C::Id, C::Code, C::Name, C::Kind, C::ParentId, C::Path, C::Position])
        .from(unit::Entity)
        .order_by(C::Position, sea_orm::sea_query::Order::Asc);
    let rows = conn.query_all(&query).await?;
    let mut units = Vec::with_capacity(rows.len());
    for row in rows {
        units.push(unit::Model {
            id: row.try_get_by_index(0)?,
            code: row.try_get_by_index(1)?,
            name: row.try_get_by_index(2)?,
            kind: row.try_get_by_index(3)?,
            parent_id: row.try_get_by_index(4)?,
            path: row.try_get_by_index(5)?,
            position: row.try_get_by_index(6)?,
        });
    }
    Ok(units)
}

/// Reads the catalog as `conn` sees it (inside a catalog load's transaction, the new one).
pub(crate) async fn read_snapshot(conn: &impl sea_orm::ConnectionTrait) -> Result<Snapshot, StoreError> {
    let unit_rows = unit_rows(conn).await?;
    let indicator_rows = indicator::Entity::find().order_by_asc(indicator::Column::Position).all(conn).await?;
    let assigned_ids = assignments(conn).await?;
    let target_rows = target::Entity::find().order_by_asc(target::Column::Id).all(conn).await?;
    let resolution_rows = resolution::Entity::find().order_by_asc(resolution::Column::Id).all(conn).await?;

    let unit_codes: HashMap<i32, UnitCode> = unit_rows
        .iter()
        .map(|row| UnitCode::parse(&row.code).map(|code| (row.id, code)))
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt(e.to_string()))?;
    let resolution_codes: HashMap<i32, ResolutionCode> = resolution_rows
        .iter()
        .map(|row| ResolutionCode::parse(&row.code).map(|code| (row.id, code)))
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt(e.to_string()))?;
    let unit_code = |id: i32| unit_codes.get(&id).cloned().ok_or_else(|| corrupt(format!("no unit with id {id}")));

    let mut indicators = Vec::with_capacity(indicator_rows.len());
    for row in &indicator_rows {
        let definition = IndicatorDef {
            code: IndicatorCode::parse(&row.code).map_err(|e| corrupt(e.to_string()))?,
            name: row.name.clone(),
            name_en: row.name_en.clone(),
            kind: IndicatorKind::from_str_opt(&row.kind).ok_or_else(|| corrupt(format!("kind {:?}", row.kind)))?,
            time_aggregation: TimeAggregation::from_str_opt(&row.time_aggregation)
                .ok_or_else(|| corrupt(format!("time aggregation {:?}", row.time_aggregation)))?,
            direction: Direction::from_str_opt(&row.direction)
                .ok_or_else(|| corrupt(format!("direction {:?}", row.direction)))?,
            unit_of_measure: row.unit_of_measure.clone(),
            reported_by: row.reporter_unit_id.map(unit_code).transpose()?,
        };
        indicators.push(IndicatorInfo {
            id: row.id,
            resolution: resolution_codes
                .get(&row.resolution_id)
                .cloned()
                .ok_or_else(|| corrupt(format!("indicator {} has no resolution", row.code)))?,
            definition,
        });
    }
    let indicator_by_id: HashMap<i32, usize> = indicators.iter().enumerate().map(|(i, ind)| (ind.id, i)).collect();

    let mut reports_by_unit: HashMap<i32, Vec<usize>> = HashMap::with_capacity(assigned_ids.len());
    for (unit_id, indicator_ids) in assigned_ids {
        let indexes = indicator_ids
            .iter()
            .map(|id| {
                indicator_by_id.get(id).copied().ok_or_else(|| corrupt(format!("assignment to unknown indicator {id}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        reports_by_unit.insert(unit_id, indexes);
    }

    let mut units = Vec::with_capacity(unit_rows.len());
    // Each unit's assigned indicators by position, for the expected counts.
    let mut assigned_positions = Vec::with_capacity(unit_rows.len());
    for row in &unit_rows {
        let mut assigned = reports_by_unit.remove(&row.id).unwrap_or_default();
        assigned.sort_unstable();
        units.push(UnitInfo {
            id: row.id,
            path: row.path.clone(),
            definition: UnitDef {
                code: unit_code(row.id)?,
                name: row.name.clone(),
                kind: row.kind.clone(),
                parent: row.parent_id.map(unit_code).transpose()?,
                reports: assigned.iter().map(|&i| indicators[i].definition.code.clone()).collect(),
            },
        });
        assigned_positions.push(assigned);
    }

    let mut targets = Vec::with_capacity(target_rows.len());
    for row in &target_rows {
        let indicator = indicator_by_id
            .get(&row.indicator_id)
            .map(|&i| indicators[i].definition.code.clone())
            .ok_or_else(|| corrupt(format!("target of unknown indicator {}", row.indicator_id)))?;
        let period = if row.period.is_empty() {
            None
        } else {
            Some(Period::parse(&row.period).map_err(|e| corrupt(e.to_string()))?)
        };
        targets.push(TargetDef { indicator, unit: unit_code(row.unit_id)?, period, value: row.value });
    }

    let resolutions = resolution_rows
        .iter()
        .map(|row| {
            Ok(ResolutionDef {
                code: resolution_codes.get(&row.id).cloned().ok_or_else(|| corrupt("resolution code".into()))?,
                title: row.title.clone(),
                adopted_on: row.adopted_on.clone(),
                term_end_year: row.term_end_year,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

    let reporting = read_reporting_cycle(conn).await?;
    let quality = read_quality(conn).await?;
    let tree = UnitTree::new(units.iter().map(|u| (u.definition.code.clone(), u.definition.parent.clone())));
    let unit_index: HashMap<UnitCode, usize> =
        units.iter().enumerate().map(|(i, u)| (u.definition.code.clone(), i)).collect();
    let indicator_index: HashMap<IndicatorCode, usize> =
        indicators.iter().enumerate().map(|(i, ind)| (ind.definition.code.clone(), i)).collect();
    let expected = expected_counts(&units, &unit_index, indicators.len(), &assigned_positions);
    let catalog = resolutions.first().map(|resolution| {
        Arc::new(
            kpi_core::Catalog::new(
                resolution.clone(),
                units.iter().map(|u| u.definition.clone()).collect(),
                indicators.iter().map(|i| i.definition.clone()).collect(),
                targets.clone(),
            )
            .with_reporting(reporting.clone())
            .with_quality(quality.rules.clone(), quality.bounds.clone(), quality.outliers),
        )
    });
    Ok(Snapshot {
        expected,
        catalog,
        unit_index,
        indicator_index,
        indicator_by_id,
        unit_by_id: units.iter().enumerate().map(|(i, u)| (u.id, i)).collect(),
        reporting,
        units,
        indicators,
        targets,
        resolutions,
        tree,
    })
}

/// The catalog's data quality settings as stored.
#[derive(Debug, Default, serde::Deserialize)]
struct StoredQuality {
    rules: Vec<kpi_core::ValidationRule>,
    bounds: Vec<kpi_core::Bounds>,
    outliers: kpi_core::OutlierSettings,
}

/// The rules, bounds and outlier settings the last catalog load stored; none before any.
async fn read_quality(conn: &impl sea_orm::ConnectionTrait) -> Result<StoredQuality, StoreError> {
    match crate::state::get(conn, crate::state::QUALITY).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| corrupt(format!("stored quality settings: {e}"))),
        None => Ok(StoredQuality::default()),
    }
}

/// The reporting cycle the last catalog load stored; the default before any.
async fn read_reporting_cycle(conn: &impl sea_orm::ConnectionTrait) -> Result<ReportingCycle, StoreError> {
    match crate::state::get(conn, crate::state::REPORTING_CYCLE).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| corrupt(format!("stored reporting cycle: {e}"))),
        None => Ok(ReportingCycle::default()),
    }
}

/// For each unit and indicator (see [`Snapshot::expected_units`]), how many units of the
/// unit's subtree report the indicator: each unit counts its own data set (`assigned`: by
/// unit, the positions of its indicators, below `width`), then adds its counts to its
/// parent's, the deepest units first. Positions, not codes: a national catalog has 200,000
/// assignments, whose codes hashed one by one cost most of this function.
fn expected_counts(
    units: &[UnitInfo],
    unit_index: &HashMap<UnitCode, usize>,
    width: usize,
    assigned: &[Vec<usize>],
) -> Vec<u32> {
    let mut expected = vec![0u32; units.len() * width];
    for (u, positions) in assigned.iter().enumerate() {
        for &index in positions.iter().filter(|&&index| index < width) {
            expected[u * width + index] += 1;
        }
    }
    let mut deepest_first: Vec<usize> = (0..units.len()).collect();
    // A unit's depth is counted once, not at each of the sort's comparisons.
    deepest_first.sort_by_cached_key(|&u| std::cmp::Reverse(units[u].path.matches('/').count()));
    for u in deepest_first {
        let Some(&parent) = units[u].definition.parent.as_ref().and_then(|code| unit_index.get(code)) else {
            continue;
        };
        for i in 0..width {
            expected[parent * width + i] += expected[u * width + i];
        }
    }
    expected
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A three-level tree, listed children first so the order of the input cannot help: a
    /// province over two districts, one with two communes.
    #[test]
    fn expected_counts_add_every_unit_of_the_subtree_once() -> Result<(), Box<dyn std::error::Error>> {
        let catalog = kpi_core::Catalog::from_toml(crate::SHIPPED_CATALOG)?;
        let resolution = catalog.resolution.code.clone();
        let indicators: Vec<IndicatorInfo> = catalog.indicators[..2]
            .iter()
            .enumerate()
            .map(|(i, definition)| IndicatorInfo {
                id: 100 + i as i32,
                resolution: resolution.clone(),
                definition: definition.clone(),
            })
            .collect();
        let (first, second) = (indicators[0].definition.code.clone(), indicators[1].definition.code.clone());
        let unit = |id: i32, path: &str, code: &str, parent: Option<&str>, reports: Vec<IndicatorCode>| {
            Ok::<_, kpi_core::CodeError>(UnitInfo {
                id,
                path: path.to_owned(),
                definition: UnitDef {
                    code: UnitCode::parse(code)?,
                    name: code.to_owned(),
                    kind: "unit".to_owned(),
                    parent: parent.map(UnitCode::parse).transpose()?,
                    reports,
                },
            })
        };
        let units = vec![
            unit(4, "/1/2/4/", "C1", Some("D1"), vec![first.clone(), second.clone()])?,
            unit(5, "/1/2/5/", "C2", Some("D1"), vec![first.clone()])?,
            unit(2, "/1/2/", "D1", Some("P"), vec![second.clone()])?,
            unit(3, "/1/3/", "D2", Some("P"), vec![first.clone()])?,
            unit(1, "/1/", "P", None, vec![])?,
        ];
        let unit_index: HashMap<UnitCode, usize> =
            units.iter().enumerate().map(|(i, u)| (u.definition.code.clone(), i)).collect();
        let indicator_index: HashMap<IndicatorCode, usize> =
            indicators.iter().enumerate().map(|(i, ind)| (ind.definition.code.clone(), i)).collect();
        let assigned: Vec<Vec<usize>> = units
            .iter()
            .map(|unit| unit.definition.reports.iter().filter_map(|code| indicator_index.get(code).copied()).collect())
            .collect();
        let expected = expected_counts(&units, &unit_index, indicators.len(), &assigned);
        let at = |unit: usize, indicator: usize| expected[unit * indicators.len() + indicator];
        // (unit position, first indicator, second indicator)
        for (position, first_count, second_count) in [(0, 1, 1), (1, 1, 0), (2, 2, 2), (3, 1, 0), (4, 3, 2)] {
            assert_eq!((at(position, 0), at(position, 1)), (first_count, second_count), "{}", units[position].id);
        }
        Ok(())
    }
}
