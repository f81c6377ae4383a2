//! Loading a catalog file into the database: idempotent, updating in place, never orphaning
//! data.
//!
//! Rows are matched by code. A load that finds nothing different writes nothing; an edited
//! file updates names, rules, assignments and targets; a unit or indicator missing from the
//! file is deleted only when no report refers to it, and otherwise the whole load is refused.

use std::collections::{HashMap, HashSet};

use kpi_core::Catalog;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Set, Statement, TransactionOptions, TransactionTrait,
};

use crate::approvals;
use crate::connection::{SCHEMA_LOCK_KEY, Store};
use crate::entity::{indicator, report, report_value, resolution, target, unit, unit_indicator};
use crate::error::StoreError;
use crate::snapshot::read_snapshot;
use crate::state;
use crate::totals;

/// Assignments inserted per statement: 2 parameters each, well under SQLite's limit.
const ASSIGNMENT_BATCH: usize = 1000;

/// What a catalog load changed, counted in rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogChanges {
    pub inserted: usize,
    pub updated: usize,
    pub deleted: usize,
}

impl CatalogChanges {
    pub fn is_empty(&self) -> bool {
        *self == CatalogChanges::default()
    }
}

impl Store {
    /// Loads `catalog` in one transaction (serialised across processes) and says what changed.
    /// A catalog identical to the last one loaded costs one read: nothing is compared row by
    /// row.
    pub async fn load_catalog(&self, catalog: &Catalog) -> Result<CatalogChanges, StoreError> {
        self.load_catalog_from(catalog, None).await
    }

    /// Loads the catalog written in `text` (TOML), as [`Store::load_catalog`] does, without
    /// even parsing it when the stored catalog was last loaded from this very text: a national
    /// catalog's parse costs a command more than the rest of its start-up.
    pub async fn load_catalog_text(&self, text: &str) -> Result<CatalogChanges, StoreError> {
        let digest = text_digest(text);
        if self.holds_catalog_text(&digest).await? {
            return Ok(CatalogChanges::default());
        }
        self.load_catalog_from(&Catalog::from_toml(text)?, Some(&digest)).await
    }

    /// Whether the stored catalog was last loaded from the text with `digest`, and its totals
    /// and approval counts are built: what a load of that text would find unchanged.
    async fn holds_catalog_text(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(state::get(&self.db, state::CATALOG_TEXT).await?.as_deref() == Some(digest)
            && totals::are_built(&self.db).await?
            && approvals::counts_are_built(&self.db).await?)
    }

    /// [`Store::load_catalog`], recording the digest of the text `catalog` was parsed from, or
    /// that it came from none, in the load's own transaction: a digest in the store always
    /// names the text of the catalog it holds.
    async fn load_catalog_from(&self, catalog: &Catalog, digest: Option<&str>) -> Result<CatalogChanges, StoreError> {
        let backend = self.db.get_database_backend();
        let transaction = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        if backend == DbBackend::Postgres {
            transaction
                .execute_raw(Statement::from_string(
                    backend,
                    format!("SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"),
                ))
                .await?;
        }
        let fingerprint = fingerprint(catalog);
        let unchanged = state::get(&transaction, state::CATALOG_FINGERPRINT).await?.as_deref() == Some(&fingerprint)
            && totals::are_built(&transaction).await?
            && approvals::counts_are_built(&transaction).await?;
        if unchanged {
            // The same catalog: the text it was parsed from names it too. A load from no
            // text leaves the digest as it is, since it still names this catalog.
            if let Some(digest) = digest
                && state::get(&transaction, state::CATALOG_TEXT).await?.as_deref() != Some(digest)
            {
                state::set(&transaction, state::CATALOG_TEXT, digest).await?;
            }
            transaction.commit().await?;
            return Ok(CatalogChanges::default());
        }
        let mut changes = sync(&transaction, catalog).await?;
        let tree_changed = !changes.is_empty();
        if sync_reporting_cycle(&transaction, catalog).await? {
            changes.updated += 1;
        }
        if sync_quality(&transaction, catalog).await? {
            changes.updated += 1;
        }
        // The tree, an indicator's rules or a percent's reporter may have changed: totals and
        // approval counts are rebuilt under the same lock, so no write sees them half-built.
        let totals_missing = !totals::are_built(&transaction).await?;
        let counts_missing = !approvals::counts_are_built(&transaction).await?;
        if tree_changed || totals_missing || counts_missing {
            let snapshot = read_snapshot(&transaction).await?;
            if tree_changed || totals_missing {
                totals::rebuild(&transaction, &snapshot).await?;
            }
            approvals::rebuild_counts(&transaction, &snapshot).await?;
        }
        if !changes.is_empty() || totals_missing {
            // Every process's cached snapshot sees this within its check interval.
            let version = format!("{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
            state::set(&transaction, state::CATALOG_VERSION, &version).await?;
        }
        state::set(&transaction, state::CATALOG_FINGERPRINT, &fingerprint).await?;
        state::set(&transaction, state::CATALOG_TEXT, digest.unwrap_or_default()).await?;
        transaction.commit().await?;
        self.invalidate_snapshot().await;
        if !changes.is_empty() {
            tracing::info!(?changes, resolution = %catalog.resolution.code, "catalog loaded");
        }
        Ok(changes)
    }
}

/// Stores the catalog's reporting cycle when it differs from the stored one, and says
/// whether it did.
async fn sync_reporting_cycle(txn: &DatabaseTransaction, catalog: &Catalog) -> Result<bool, StoreError> {
    let json = serde_json::to_string(&catalog.reporting).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if state::get(txn, state::REPORTING_CYCLE).await?.as_deref() == Some(json.as_str()) {
        return Ok(false);
    }
    state::set(txn, state::REPORTING_CYCLE, &json).await?;
    Ok(true)
}

/// What the store keeps of the catalog's data quality settings.
#[derive(serde::Serialize)]
struct QualitySettings<'a> {
    rules: &'a [kpi_core::ValidationRule],
    bounds: &'a [kpi_core::Bounds],
    outliers: &'a kpi_core::OutlierSettings,
}

/// Stores the catalog's rules, bounds and outlier settings when they differ from the stored
/// ones, and says whether it did.
async fn sync_quality(txn: &DatabaseTransaction, catalog: &Catalog) -> Result<bool, StoreError> {
    let settings = QualitySettings { rules: &catalog.rules, bounds: &catalog.bounds, outliers: &catalog.outliers };
    let json = serde_json::to_string(&settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if state::get(txn, state::QUALITY).await?.as_deref() == Some(json.as_str()) {
        return Ok(false);
    }
    state::set(txn, state::QUALITY, &json).await?;
    Ok(true)
}

/// A digest of a catalog's text (see [`versioned_hash`]) and its length.
fn text_digest(text: &str) -> String {
    format!("{}:{}", versioned_hash(text), text.len())
}

/// A fingerprint of everything a catalog says (its `Debug` form, hashed): equal catalogs give
/// equal fingerprints in one build; another build may differ, which costs one full sync.
fn fingerprint(catalog: &Catalog) -> String {
    versioned_hash(&format!("{catalog:?}"))
}

/// `text` hashed, with this build's version: another build may read the same text, or write
/// the same catalog's `Debug` form, differently.
fn versioned_hash(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    format!("{}:{:016x}", env!("CARGO_PKG_VERSION"), hasher.finish())
}

async fn sync(txn: &DatabaseTransaction, catalog: &Catalog) -> Result<CatalogChanges, StoreError> {
    let mut changes = CatalogChanges::default();

    // The resolution.
    let definition = &catalog.resolution;
    let existing =
        resolution::Entity::find().filter(resolution::Column::Code.eq(definition.code.as_str())).one(txn).await?;
    let resolution_id = match existing {
        Some(row) => {
            if (row.title.as_str(), row.adopted_on.as_str(), row.term_end_year)
                != (definition.title.as_str(), definition.adopted_on.as_str(), definition.term_end_year)
            {
                let mut active: resolution::ActiveModel = row.clone().into();
                active.title = Set(definition.title.clone());
                active.adopted_on = Set(definition.adopted_on.clone());
                active.term_end_year = Set(definition.term_end_year);
                active.update(txn).await?;
                changes.updated += 1;
            }
            row.id
        }
        None => {
            changes.inserted += 1;
            resolution::ActiveModel {
                code: Set(definition.code.to_string()),
                title: Set(definition.title.clone()),
                adopted_on: Set(definition.adopted_on.clone()),
                term_end_year: Set(definition.term_end_year),
                ..Default::default()
            }
            .insert(txn)
            .await?
            .id
        }
    };

    // Units, parents first (the catalog orders them so), with their materialised paths.
    let mut existing_units: HashMap<String, unit::Model> =
        unit::Entity::find().all(txn).await?.into_iter().map(|u| (u.code.clone(), u)).collect();
    let mut unit_ids: HashMap<String, (i32, String)> = HashMap::new();
    for (position, definition) in catalog.units.iter().enumerate() {
        let position = i32::try_from(position).map_err(|_| StoreError::Corrupt("too many units".into()))?;
        let (parent_id, parent_path) = match &definition.parent {
            Some(parent) => {
                let (id, path) = unit_ids.get(parent.as_str()).ok_or_else(|| {
                    StoreError::Corrupt(format!("parent {parent} not loaded before {}", definition.code))
                })?;
                (Some(*id), path.clone())
            }
            None => (None, "/".to_owned()),
        };
        let row = match existing_units.remove(definition.code.as_str()) {
            Some(row) => row,
            None => {
                changes.inserted += 1;
                unit::ActiveModel {
                    code: Set(definition.code.to_string()),
                    name: Set(definition.name.clone()),
                    kind: Set(definition.kind.clone()),
                    parent_id: Set(parent_id),
                    path: Set(String::new()),
                    position: Set(position),
                    ..Default::default()
                }
                .insert(txn)
                .await?
            }
        };
        let path = format!("{parent_path}{}/", row.id);
        if (row.name.as_str(), row.kind.as_str(), row.parent_id, row.path.as_str(), row.position)
            != (definition.name.as_str(), definition.kind.as_str(), parent_id, path.as_str(), position)
        {
            if !row.path.is_empty() {
                changes.updated += 1;
            }
            let mut active: unit::ActiveModel = row.clone().into();
            active.name = Set(definition.name.clone());
            active.kind = Set(definition.kind.clone());
            active.parent_id = Set(parent_id);
            active.path = Set(path.clone());
            active.position = Set(position);
            active.update(txn).await?;
        }
        unit_ids.insert(definition.code.to_string(), (row.id, path));
    }
    let removed_units: Vec<unit::Model> = existing_units.into_values().collect();
    for row in &removed_units {
        let reports = report::Entity::find().filter(report::Column::UnitId.eq(row.id)).count(txn).await?;
        if reports > 0 {
            return Err(StoreError::CatalogConflict(format!(
                "unit {} is not in the catalog any more but has {reports} report(s); keep it in the catalog",
                row.code
            )));
        }
    }

    // Indicators.
    let mut existing_indicators: HashMap<String, indicator::Model> =
        indicator::Entity::find().all(txn).await?.into_iter().map(|i| (i.code.clone(), i)).collect();
    let mut indicator_ids: HashMap<String, i32> = HashMap::new();
    for (position, definition) in catalog.indicators.iter().enumerate() {
        let position = i32::try_from(position).map_err(|_| StoreError::Corrupt("too many indicators".into()))?;
        let reporter = definition.reported_by.as_ref().and_then(|code| unit_ids.get(code.as_str())).map(|(id, _)| *id);
        let wanted = indicator::Model {
            id: 0,
            resolution_id,
            code: definition.code.to_string(),
            name: definition.name.clone(),
            name_en: definition.name_en.clone(),
            kind: definition.kind.as_str().to_owned(),
            time_aggregation: definition.time_aggregation.as_str().to_owned(),
            direction: definition.direction.as_str().to_owned(),
            unit_of_measure: definition.unit_of_measure.clone(),
            reporter_unit_id: reporter,
            position,
        };
        let id = match existing_indicators.remove(definition.code.as_str()) {
            Some(row) if indicator::Model { id: row.id, ..wanted.clone() } == row => row.id,
            Some(row) => {
                changes.updated += 1;
                let mut active: indicator::ActiveModel = row.clone().into();
                set_indicator_fields(&mut active, wanted);
                active.update(txn).await?;
                row.id
            }
            None => {
                changes.inserted += 1;
                let mut active = <indicator::ActiveModel as Default>::default();
                set_indicator_fields(&mut active, wanted);
                active.insert(txn).await?.id
            }
        };
        indicator_ids.insert(definition.code.to_string(), id);
    }
    for row in existing_indicators.into_values() {
        let values =
            report_value::Entity::find().filter(report_value::Column::IndicatorId.eq(row.id)).count(txn).await?;
        if values > 0 {
            return Err(StoreError::CatalogConflict(format!(
                "indicator {} is not in the catalog any more but has {values} stored value(s); keep it in the catalog",
                row.code
            )));
        }
        indicator::Entity::delete_by_id(row.id).exec(txn).await?;
        changes.deleted += 1;
    }

    // Assignments: which indicators each unit reports.
    let mut existing_assignments: HashSet<(i32, i32)> =
        unit_indicator::Entity::find().all(txn).await?.into_iter().map(|a| (a.unit_id, a.indicator_id)).collect();
    let mut new_assignments = Vec::new();
    for definition in &catalog.units {
        let Some(&(unit_id, _)) = unit_ids.get(definition.code.as_str()) else { continue };
        for code in &definition.reports {
            let Some(&indicator_id) = indicator_ids.get(code.as_str()) else { continue };
            if !existing_assignments.remove(&(unit_id, indicator_id)) {
                new_assignments
                    .push(unit_indicator::ActiveModel { unit_id: Set(unit_id), indicator_id: Set(indicator_id) });
            }
        }
    }
    changes.inserted += new_assignments.len();
    // Batched: a national catalog assigns some 200,000 (unit, indicator) pairs.
    for batch in new_assignments.chunks(ASSIGNMENT_BATCH) {
        unit_indicator::Entity::insert_many(batch.to_vec()).exec(txn).await?;
    }
    for (unit_id, indicator_id) in existing_assignments {
        unit_indicator::Entity::delete_many()
            .filter(unit_indicator::Column::UnitId.eq(unit_id))
            .filter(unit_indicator::Column::IndicatorId.eq(indicator_id))
            .exec(txn)
            .await?;
        changes.deleted += 1;
    }

    // Targets of this resolution's indicators.
    let resolution_indicators: HashSet<i32> = indicator_ids.values().copied().collect();
    let mut existing_targets: HashMap<(i32, i32, String), target::Model> = target::Entity::find()
        .all(txn)
        .await?
        .into_iter()
        .filter(|t| resolution_indicators.contains(&t.indicator_id))
        .map(|t| ((t.indicator_id, t.unit_id, t.period.clone()), t))
        .collect();
    for definition in &catalog.targets {
        let (Some(&indicator_id), Some(&(unit_id, _))) =
            (indicator_ids.get(definition.indicator.as_str()), unit_ids.get(definition.unit.as_str()))
        else {
            continue;
        };
        let period = definition.period.map(|p| p.code()).unwrap_or_default();
        match existing_targets.remove(&(indicator_id, unit_id, period.clone())) {
            Some(row) if row.value == definition.value => {}
            Some(row) => {
                let mut active: target::ActiveModel = row.into();
                active.value = Set(definition.value);
                active.update(txn).await?;
                changes.updated += 1;
            }
            None => {
                target::ActiveModel {
                    indicator_id: Set(indicator_id),
                    unit_id: Set(unit_id),
                    period: Set(period),
                    value: Set(definition.value),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                changes.inserted += 1;
            }
        }
    }
    for row in existing_targets.into_values() {
        target::Entity::delete_by_id(row.id).exec(txn).await?;
        changes.deleted += 1;
    }

    // Units that left the catalog, deepest first so no parent goes before its children.
    let mut removed_units = removed_units;
    removed_units.sort_by_key(|u| std::cmp::Reverse(u.path.len()));
    for row in removed_units {
        unit::Entity::delete_by_id(row.id).exec(txn).await?;
        changes.deleted += 1;
    }
    Ok(changes)
}

/// Sets every column but the id from `wanted`.
fn set_indicator_fields(active: &mut indicator::ActiveModel, wanted: indicator::Model) {
    active.resolution_id = Set(wanted.resolution_id);
    active.code = Set(wanted.code);
    active.name = Set(wanted.name);
    active.name_en = Set(wanted.name_en);
    active.kind = Set(wanted.kind);
    active.time_aggregation = Set(wanted.time_aggregation);
    active.direction = Set(wanted.direction);
    active.unit_of_measure = Set(wanted.unit_of_measure);
    active.reporter_unit_id = Set(wanted.reporter_unit_id);
    active.position = Set(wanted.position);
}
