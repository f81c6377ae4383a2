//! The maintained totals against the obvious reference: seeded random trees get random
//! revisions, corrections and sub-period reports (months, quarters, halves, years), alone or
//! in groups (one transaction, a savepoint per file, one refused midway), and then
//! a catalog change that moves a unit; after each step every KPI the store answers for every
//! unit, indicator and period must equal a direct recomputation, by kpi-core alone, from the
//! current revisions the test kept in memory. Reports are also approved and unapproved at
//! random: an approved report refuses new files, and whether each KPI's figures are final
//! (from the maintained `approval_counts`) must equal the obvious answer: some figures, and
//! every report of the subtree for the period and the periods inside it approved. Runs on
//! SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
//!
//! `KPI_PROPERTY_CASES` (default 8) and `KPI_PROPERTY_SEED` (default 1) set the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use kpi_core::aggregate::{aggregate_units, resolve_over_time};
use kpi_core::{Catalog, Figure, IndicatorCode, IndicatorKind, Period, UnitCode, UnitTree};
use kpi_store::test_support::{SeededRng as Rng, TestDatabase, env_number};
use kpi_store::{NewRevision, NewValue, SHIPPED_CATALOG, Store, WriteOutcome};

/// A random tree under PACNAM: districts of communes, as (code, parent) pairs.
fn random_tree(rng: &mut Rng) -> Vec<(String, Option<String>)> {
    let mut units = vec![("PACNAM".to_owned(), None)];
    for d in 0..1 + rng.below(3) {
        let district = format!("D{d}");
        units.push((district.clone(), Some("PACNAM".to_owned())));
        for c in 0..rng.below(4) {
            units.push((format!("D{d}C{c}"), Some(district.clone())));
        }
    }
    units
}

/// The shipped resolution, indicators and targets over `units`; every unit reports every
/// indicator, and the percents are reported by `reporter`.
fn catalog_text(units: &[(String, Option<String>)], reporter: &str) -> String {
    let indicators_start = SHIPPED_CATALOG.find("[[indicators]]").unwrap();
    let resolution_end = SHIPPED_CATALOG.find("# The indicators each kind").unwrap();
    let mut text = SHIPPED_CATALOG[..resolution_end].to_owned();
    let all: Vec<String> = INDICATORS.iter().map(|c| format!("\"{c}\"")).collect();
    for (unit, parent) in units {
        writeln!(text, "[[units]]\ncode = \"{unit}\"\nname = \"{unit}\"\nkind = \"unit\"").unwrap();
        if let Some(parent) = parent {
            writeln!(text, "parent = \"{parent}\"").unwrap();
        }
        writeln!(text, "reports = [{}]\n", all.join(", ")).unwrap();
    }
    text.push_str(
        &SHIPPED_CATALOG[indicators_start..]
            .replace("reported_by = \"VPHDND\"", &format!("reported_by = \"{reporter}\"")),
    );
    text
}

/// A count flow, a count stock, a ratio and a percent (stock).
const INDICATORS: [&str; 4] = ["A01", "A03", "B01", "C01"];

fn random_period(rng: &mut Rng) -> Period {
    let year = 2023 + (rng.below(4) == 0) as i32;
    match rng.below(4) {
        0 => Period::Year(year),
        1 => Period::Half(year, 1 + rng.below(2) as u8),
        2 => Period::Quarter(year, 1 + rng.below(4) as u8),
        _ => Period::Month(year, 1 + rng.below(12) as u8),
    }
}

fn random_figure(rng: &mut Rng, kind: IndicatorKind) -> Figure {
    match kind {
        IndicatorKind::Count => Figure::Count(rng.below(50) as i64),
        IndicatorKind::Ratio => {
            let denominator = rng.below(30) as i64;
            Figure::Ratio { numerator: rng.below(denominator as usize + 1) as i64, denominator }
        }
        IndicatorKind::Percent => Figure::Percent(rng.below(1001) as f64 / 10.0),
    }
}

/// The current figures, as the test knows them: per (unit, period), per indicator.
type Model = HashMap<(UnitCode, Period), BTreeMap<IndicatorCode, Figure>>;
/// The approved reports, as the test knows them.
type Approved = BTreeSet<(UnitCode, Period)>;

/// Whether a KPI's figures are final, the obvious way: some figures, and every report of the
/// subtree for the period and the periods inside it approved.
fn reference_final(
    catalog: &Catalog,
    model: &Model,
    approved: &Approved,
    unit: &UnitCode,
    period: Period,
    reporting: u32,
) -> bool {
    let tree = UnitTree::new(catalog.units.iter().map(|u| (u.code.clone(), u.parent.clone())));
    let members = tree.subtree(unit);
    let inner = period.with_descendants();
    reporting > 0
        && model.keys().filter(|(u, p)| members.contains(u) && inner.contains(p)).all(|key| approved.contains(key))
}

/// What kpi-core alone makes of the model for one unit's subtree.
fn reference(
    catalog: &Catalog,
    model: &Model,
    unit: &UnitCode,
    indicator: &IndicatorCode,
    period: Period,
) -> (Option<Figure>, u32) {
    let tree = UnitTree::new(catalog.units.iter().map(|u| (u.code.clone(), u.parent.clone())));
    let definition = catalog.indicators.iter().find(|i| &i.code == indicator).unwrap();
    let figures = tree.subtree(unit).into_iter().filter_map(|member| {
        let reported: BTreeMap<Period, Figure> = model
            .iter()
            .filter(|((u, _), _)| *u == member)
            .filter_map(|((_, p), values)| values.get(indicator).map(|f| (*p, *f)))
            .collect();
        resolve_over_time(period, definition.time_aggregation, &reported).map(|f| (member, f))
    });
    let aggregate = aggregate_units(definition.kind, definition.reported_by.as_ref(), figures);
    (aggregate.figure, aggregate.reporting_units)
}

/// Every KPI of every unit, indicator and period against the reference.
async fn check(store: &Store, catalog: &Catalog, model: &Model, approved: &Approved, step: &str) {
    let indicators: Vec<IndicatorCode> = INDICATORS.iter().map(|c| IndicatorCode::parse(c).unwrap()).collect();
    let mut periods = Period::Year(2023).with_descendants();
    periods.push(Period::Year(2024));
    periods.push(Period::Half(2024, 2));
    for unit in &catalog.units {
        let kpis = store.kpis(&unit.code, &indicators, &periods).await.unwrap();
        for kpi in kpis {
            let (figure, reporting) = reference(catalog, model, &unit.code, &kpi.indicator, kpi.period);
            let settled = reference_final(catalog, model, approved, &unit.code, kpi.period, reporting);
            assert_eq!(
                (kpi.figure, kpi.reporting_units, kpi.figures_final),
                (figure, reporting, settled),
                "{step}: {} {} {}",
                unit.code,
                kpi.indicator,
                kpi.period.code()
            );
        }
    }
}

fn random_revision(rng: &mut Rng, catalog: &Catalog, serial: usize) -> NewRevision {
    let unit = catalog.units[rng.below(catalog.units.len())].code.clone();
    let period = random_period(rng);
    let mut values = Vec::new();
    for indicator in INDICATORS {
        if rng.below(3) == 0 {
            continue;
        }
        let indicator = IndicatorCode::parse(indicator).unwrap();
        let kind = catalog.indicators.iter().find(|i| i.code == indicator).unwrap().kind;
        values.push(NewValue { indicator, figure: random_figure(rng, kind), note: None });
    }
    NewRevision {
        unit,
        period,
        file_name: format!("r{serial}.xlsx"),
        sha256: format!("{serial:064x}"),
        imported_by: "property".into(),
        prepared_by: None,
        prepared_on: None,
        warnings: Vec::new(),
        values,
        data_issues: Vec::new(),
    }
}

fn remember(model: &mut Model, revision: &NewRevision) {
    let values = revision.values.iter().map(|v| (v.indicator.clone(), v.figure)).collect();
    model.insert((revision.unit.clone(), revision.period), values);
}

/// Writes one revision, or a group of up to five in one transaction, sometimes with a file
/// the store refuses (an unknown unit) in the middle: the files before it are kept, it and
/// those after it are not.
async fn write(store: &Store, rng: &mut Rng, catalog: &Catalog, model: &mut Model, approved: &Approved, serial: usize) {
    let mut group: Vec<NewRevision> =
        (0..1 + rng.below(5)).map(|n| random_revision(rng, catalog, serial * 10 + n)).collect();
    let refused = (group.len() > 1 && rng.below(4) == 0).then(|| rng.below(group.len()));
    if let Some(index) = refused {
        group[index].unit = UnitCode::parse("NOWHERE").unwrap();
    }
    let outcomes = store.write_revisions(&group).await.unwrap();
    assert_eq!(outcomes.len(), refused.map_or(group.len(), |index| index + 1));
    for (revision, outcome) in group.iter().zip(&outcomes) {
        let key = (revision.unit.clone(), revision.period);
        match outcome {
            Ok(WriteOutcome::Frozen(_)) => assert!(approved.contains(&key), "{key:?} refused but not approved"),
            Ok(_) => {
                assert!(!approved.contains(&key), "{key:?} written though approved");
                remember(model, revision);
            }
            Err(error) => assert_eq!(Some(revision.unit.as_str()), refused.map(|_| "NOWHERE"), "{error}"),
        }
    }
}

/// Approves a random unapproved report, or now and then unapproves an approved one.
async fn change_approval(store: &Store, rng: &mut Rng, model: &Model, approved: &mut Approved) {
    if !approved.is_empty() && rng.below(3) == 0 {
        let key = approved.iter().nth(rng.below(approved.len())).cloned().unwrap();
        store.unapprove_report(&key.0, key.1, "property", "a random correction").await.unwrap();
        approved.remove(&key);
        return;
    }
    let candidates: Vec<&(UnitCode, Period)> = model.keys().filter(|key| !approved.contains(*key)).collect();
    if candidates.is_empty() {
        return;
    }
    let key = candidates[rng.below(candidates.len())].clone();
    store.approve_report(&key.0, key.1, "property", "").await.unwrap();
    approved.insert(key);
}

#[tokio::test]
async fn maintained_totals_equal_a_recomputation_from_current_revisions() {
    let (cases, seed) = (env_number("KPI_PROPERTY_CASES", 8), env_number("KPI_PROPERTY_SEED", 1));
    for case in 0..cases {
        let mut rng = Rng::new(seed.wrapping_mul(7_919).wrapping_add(case));
        let units = random_tree(&mut rng);
        let reporter = units[rng.below(units.len())].0.clone();
        let catalog = Catalog::from_toml(&catalog_text(&units, &reporter)).unwrap();
        let db = TestDatabase::new().await;
        let store = Store::connect(&db.url).await.unwrap();
        store.load_catalog(&catalog).await.unwrap();
        let mut model = Model::new();
        let mut approved = Approved::new();
        for serial in 0..24 {
            write(&store, &mut rng, &catalog, &mut model, &approved, serial).await;
            if rng.below(2) == 0 {
                change_approval(&store, &mut rng, &model, &mut approved).await;
            }
            if serial % 8 == 7 {
                check(&store, &catalog, &model, &approved, &format!("case {case}, after write {serial}")).await;
            }
        }
        // Move the last commune (or district) under the first district: the totals are rebuilt.
        let mut moved = units.clone();
        if let Some(last) = moved.iter_mut().rev().find(|(u, p)| p.is_some() && u != "D0") {
            last.1 = Some("D0".to_owned());
        }
        let catalog = Catalog::from_toml(&catalog_text(&moved, &reporter)).unwrap();
        store.load_catalog(&catalog).await.unwrap();
        check(&store, &catalog, &model, &approved, &format!("case {case}, after the catalog change")).await;
        for serial in 24..32 {
            write(&store, &mut rng, &catalog, &mut model, &approved, serial).await;
            change_approval(&store, &mut rng, &model, &mut approved).await;
        }
        check(&store, &catalog, &model, &approved, &format!("case {case}, after more writes")).await;
    }
}
