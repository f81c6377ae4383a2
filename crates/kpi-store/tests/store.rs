//! The store against a real database: SQLite always, PostgreSQL too when `TEST_DATABASE_URL`
//! is set. Each test gets its own database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kpi_core::figure::MAX_WHOLE;
use kpi_core::{Catalog, Figure, IndicatorCode, Period, Status, UnitCode};
use kpi_store::test_support::TestDatabase;
use kpi_store::{CatalogChanges, NewRevision, NewValue, SHIPPED_CATALOG, Store, StoreError, WriteOutcome};

fn unit(code: &str) -> UnitCode {
    UnitCode::parse(code).unwrap()
}

fn indicator(code: &str) -> IndicatorCode {
    IndicatorCode::parse(code).unwrap()
}

async fn store_with_catalog(db: &TestDatabase) -> Store {
    let store = Store::connect(&db.url).await.unwrap();
    store.load_catalog(&Catalog::from_toml(SHIPPED_CATALOG).unwrap()).await.unwrap();
    store
}

fn revision(unit_code: &str, period: Period, sha: &str, values: Vec<(&str, Figure)>) -> NewRevision {
    NewRevision {
        unit: unit(unit_code),
        period,
        file_name: format!("{unit_code}.xlsx"),
        sha256: sha.to_owned(),
        imported_by: "tester".into(),
        prepared_by: Some("Nông Thị Hoa".into()),
        prepared_on: Some("2023-01-12".into()),
        warnings: Vec::new(),
        values: values
            .into_iter()
            .map(|(code, figure)| NewValue { indicator: indicator(code), figure, note: None })
            .collect(),
        data_issues: Vec::new(),
    }
}

#[tokio::test]
async fn catalog_loads_idempotently_and_updates_in_place() {
    let db = TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let catalog = Catalog::from_toml(SHIPPED_CATALOG).unwrap();
    let first = store.load_catalog(&catalog).await.unwrap();
    // 14 units + 1 resolution + 19 indicators + assignments + 12 targets.
    let assignments: usize = catalog.units.iter().map(|u| u.reports.len()).sum();
    assert_eq!(first.inserted, 14 + 1 + 19 + assignments + 12);
    assert_eq!(store.load_catalog(&catalog).await.unwrap(), CatalogChanges::default());

    // Reconnecting (a restart) migrates nothing and loads nothing new.
    let again = Store::connect(&db.url).await.unwrap();
    assert!(again.load_catalog(&catalog).await.unwrap().is_empty());

    // An edited file renames a unit and moves a target; nothing is duplicated.
    let edited = SHIPPED_CATALOG.replace("Xã Bộc Bố", "Xã Bộc Bố (mới)").replace("value = 15\n", "value = 20\n");
    let changes = store.load_catalog(&Catalog::from_toml(&edited).unwrap()).await.unwrap();
    assert_eq!(changes, CatalogChanges { inserted: 0, updated: 2, deleted: 0 });
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.unit(&unit("BOCBO")).unwrap().definition.name, "Xã Bộc Bố (mới)");
    assert_eq!(snapshot.units.len(), 14);
    let b05 = snapshot.indicator(&indicator("B05")).unwrap();
    assert_eq!(snapshot.target_for(b05, &unit("PACNAM"), Period::Year(2022)), Some(20.0));
}

/// A catalog's text loads as its parsed form does. The same text again is skipped only while
/// the store holds that text's catalog: after another catalog, loaded from a text or not, the
/// first text is loaded in full again.
#[tokio::test]
async fn a_catalog_text_is_loaded_again_only_after_another_catalog() {
    let db = TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let edited = SHIPPED_CATALOG.replace("Xã Bộc Bố", "Xã Bộc Bố (mới)");
    let renamed = CatalogChanges { inserted: 0, updated: 1, deleted: 0 };
    let bocbo_name = || async { store.snapshot().await.unwrap().unit(&unit("BOCBO")).unwrap().definition.name.clone() };

    assert!(!store.load_catalog_text(SHIPPED_CATALOG).await.unwrap().is_empty());
    assert!(store.load_catalog_text(SHIPPED_CATALOG).await.unwrap().is_empty());
    assert_eq!(store.load_catalog_text(&edited).await.unwrap(), renamed);
    assert_eq!(bocbo_name().await, "Xã Bộc Bố (mới)");
    assert_eq!(store.load_catalog_text(SHIPPED_CATALOG).await.unwrap(), renamed);
    assert_eq!(bocbo_name().await, "Xã Bộc Bố");

    // Another process loads the edited catalog from no text; the shipped text is loaded again.
    let other = Store::connect(&db.url).await.unwrap();
    assert_eq!(other.load_catalog(&Catalog::from_toml(&edited).unwrap()).await.unwrap(), renamed);
    assert_eq!(store.load_catalog_text(SHIPPED_CATALOG).await.unwrap(), renamed);
    assert_eq!(bocbo_name().await, "Xã Bộc Bố");

    // A text that is not a catalog is refused, and the stored catalog stays.
    assert!(matches!(store.load_catalog_text("[[units]]\ncode = 1").await, Err(StoreError::Catalog(_))));
    assert_eq!(bocbo_name().await, "Xã Bộc Bố");
}

#[tokio::test]
async fn removing_a_unit_with_data_is_refused_and_without_data_allowed() {
    let db = TestDatabase::new().await;
    let store = store_with_catalog(&db).await;
    store
        .write_revision(&revision("COLINH", Period::Year(2022), "aa", vec![("A01", Figure::Count(18))]))
        .await
        .unwrap();
    let without = |code: &str| {
        let start = SHIPPED_CATALOG.find(&format!("code = \"{code}\"")).unwrap();
        let block_start = SHIPPED_CATALOG[..start].rfind("[[units]]").unwrap();
        let block_end = start + SHIPPED_CATALOG[start..].find("[[units]]").unwrap();
        format!("{}{}", &SHIPPED_CATALOG[..block_start], &SHIPPED_CATALOG[block_end..])
    };
    let refused = store.load_catalog(&Catalog::from_toml(&without("COLINH")).unwrap()).await;
    assert!(matches!(refused, Err(StoreError::CatalogConflict(ref m)) if m.contains("COLINH")), "{refused:?}");
    assert_eq!(store.snapshot().await.unwrap().units.len(), 14, "a refused load changes nothing");

    let allowed = store.load_catalog(&Catalog::from_toml(&without("CAOTAN")).unwrap()).await.unwrap();
    assert!(allowed.deleted >= 1);
    assert!(store.snapshot().await.unwrap().unit(&unit("CAOTAN")).is_none());
}

/// A group holding the same report twice, then the same file again: each file sees the
/// ones before it, as if they had been written one at a time.
#[tokio::test]
async fn a_group_sees_its_own_earlier_files() {
    let db = TestDatabase::new().await;
    let store = store_with_catalog(&db).await;
    let period = Period::Year(2022);
    let first = revision("PNV", period, "sha-1", vec![("B05", Figure::Ratio { numerator: 14, denominator: 145 })]);
    let second = revision("PNV", period, "sha-2", vec![("B05", Figure::Ratio { numerator: 15, denominator: 145 })]);
    let outcomes = store.write_revisions(&[first, second.clone(), second]).await.unwrap();
    let outcomes: Vec<WriteOutcome> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        vec![
            WriteOutcome::Created { revision: 1 },
            WriteOutcome::Created { revision: 2 },
            WriteOutcome::Unchanged { revision: 2 }
        ]
    );
    let history = store.list_revisions(&unit("PNV"), period).await.unwrap();
    let summary: Vec<(i32, &str, &str)> =
        history.iter().map(|r| (r.number, r.sha256.as_str(), r.status.as_str())).collect();
    assert!(summary.contains(&(1, "sha-1", "superseded")) && summary.contains(&(2, "sha-2", "current")), "{summary:?}");
    let current = store.current_revision(&unit("PNV"), period).await.unwrap().map(|c| (c.number, c.sha256));
    assert_eq!(current, Some((2, "sha-2".to_owned())));
    let figures = store.current_figures(&unit("PNV"), period).await.unwrap();
    assert_eq!(figures, vec![(indicator("B05"), Figure::Ratio { numerator: 15, denominator: 145 })]);
}

#[tokio::test]
async fn a_figure_beyond_the_whole_number_bound_is_refused_and_ends_its_group() {
    let db = TestDatabase::new().await;
    let store = store_with_catalog(&db).await;
    let period = Period::Year(2022);
    let largest = revision("PNV", period, "sha-1", vec![("A01", Figure::Count(MAX_WHOLE))]);
    let beyond = revision("BOCBO", period, "sha-2", vec![("A01", Figure::Count(MAX_WHOLE + 1))]);
    let after = revision("BANGTHANH", period, "sha-3", vec![("A01", Figure::Count(3))]);
    let outcomes = store.write_revisions(&[largest, beyond, after]).await.unwrap();
    assert_eq!(outcomes[0].as_ref().ok(), Some(&WriteOutcome::Created { revision: 1 }));
    assert!(matches!(&outcomes[1], Err(StoreError::Precondition(m)) if m.contains("beyond")), "{:?}", outcomes[1]);
    assert_eq!(outcomes.len(), 2, "the refusal ends the group");
    assert_eq!(store.current_revision(&unit("BOCBO"), period).await.unwrap(), None);
    let pnv = store.kpis(&unit("PNV"), &[indicator("A01")], &[period]).await.unwrap();
    assert_eq!(pnv[0].figure, Some(Figure::Count(MAX_WHOLE)));
}

#[tokio::test]
async fn revisions_are_new_unchanged_or_revised_and_history_is_kept() {
    let db = TestDatabase::new().await;
    let store = store_with_catalog(&db).await;
    let period = Period::Year(2022);
    let first = revision("PNV", period, "sha-1", vec![("B05", Figure::Ratio { numerator: 14, denominator: 145 })]);
    assert_eq!(store.write_revision(&first).await.unwrap(), WriteOutcome::Created { revision: 1 });
    assert_eq!(store.write_revision(&first).await.unwrap(), WriteOutcome::Unchanged { revision: 1 });
    let corrected = revision("PNV", period, "sha-2", vec![("B05", Figure::Ratio { numerator: 15, denominator: 145 })]);
    assert_eq!(store.write_revision(&corrected).await.unwrap(), WriteOutcome::Created { revision: 2 });

    let figures = store.current_figures(&unit("PNV"), period).await.unwrap();
    assert_eq!(figures, vec![(indicator("B05"), Figure::Ratio { numerator: 15, denominator: 145 })]);
    let history = store.list_revisions(&unit("PNV"), period).await.unwrap();
    let summary: Vec<(i32, &str, &str)> =
        history.iter().map(|r| (r.number, r.sha256.as_str(), r.status.as_str())).collect();
    assert_eq!(summary, vec![(2, "sha-2", "current"), (1, "sha-1", "superseded")]);
    assert_eq!(store.current_revision(&unit("PNV"), period).await.unwrap().map(|r| r.number), Some(2));
}

#[tokio::test]
async fn concurrent_writers_never_lose_or_duplicate_a_revision() {
    let db = TestDatabase::new().await;
    let store = store_with_catalog(&db).await;
    let period = Period::Year(2023);
    let mut tasks = Vec::new();
    for writer in 0..6 {
        // A second connection pool, as a second importer process would have.
        let store = if writer % 2 == 0 { store.clone() } else { Store::connect(&db.url).await.unwrap() };
        tasks.push(tokio::spawn(async move {
            store
                .write_revision(&revision(
                    "XUANLA",
                    period,
                    &format!("sha-{writer}"),
                    vec![("A01", Figure::Count(writer))],
                ))
                .await
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            WriteOutcome::Created { revision } => numbers.push(revision),
            other => panic!("unexpected {other:?}"),
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6]);
    let history = store.list_revisions(&unit("XUANLA"), period).await.unwrap();
    assert_eq!(history.iter().filter(|r| r.status == "current").count(), 1);
    assert_eq!(history.len(), 6);
}

/// Another process's reads of a KPI while revisions commit (on SQLite, inline reads on their
/// own connections): none fails, each sees a whole commit, never an older one than the read
/// before it, and the last commit as soon as it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_writes_see_each_commit_whole_and_at_once() {
    let db = TestDatabase::new().await;
    let writer = store_with_catalog(&db).await;
    let reader = Store::connect(&db.url).await.unwrap();
    let period = Period::Year(2023);
    let read = move |store: Store| async move {
        let kpis = store.kpis(&unit("PACNAM"), &[indicator("A01")], &[period]).await?;
        Ok::<_, StoreError>(kpis.first().and_then(|kpi| kpi.figure))
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = tokio::spawn({
        let (reader, done) = (reader.clone(), done.clone());
        async move {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                seen.push(read(reader.clone()).await);
                tokio::task::yield_now().await;
            }
            seen
        }
    });
    for count in 1..=30 {
        let values = vec![("A01", Figure::Count(count))];
        let outcome = writer.write_revision(&revision("XUANLA", period, &format!("sha-{count}"), values)).await;
        assert!(matches!(outcome, Ok(WriteOutcome::Created { .. })), "{outcome:?}");
        assert_eq!(read(reader.clone()).await.unwrap(), Some(Figure::Count(count)), "seen at once");
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let (mut last, mut distinct) = (0, 0);
    for seen in reads.await.unwrap() {
        let count = match seen.unwrap() {
            None => 0,
            Some(Figure::Count(count)) if (1..=30).contains(&count) => count,
            other => panic!("a read saw {other:?}"),
        };
        assert!(count >= last, "a read saw {count} after {last}");
        distinct += usize::from(count != last);
        last = count;
    }
    assert!(distinct >= 2, "the reads ran while the writes did: they saw {distinct} commits");
}

#[tokio::test]
async fn kpis_aggregate_up_the_tree_and_over_time() {
    let db = TestDatabase::new().await;
    let store = store_with_catalog(&db).await;
    let year = Period::Year(2022);
    // Two communes of different sizes: the district ratio is Σnum/Σden, not a mean.
    store
        .write_revision(&revision(
            "BOCBO",
            year,
            "a",
            vec![("B01", Figure::Ratio { numerator: 15, denominator: 15 }), ("A01", Figure::Count(19))],
        ))
        .await
        .unwrap();
    store
        .write_revision(&revision(
            "COLINH",
            year,
            "b",
            vec![("B01", Figure::Ratio { numerator: 75, denominator: 150 }), ("A01", Figure::Count(18))],
        ))
        .await
        .unwrap();
    store.write_revision(&revision("VPHDND", year, "c", vec![("C02", Figure::Percent(27.4))])).await.unwrap();
    // C05 is a flow reported by half-years only: the year sums them.
    store
        .write_revision(&revision("XUANLA", Period::Half(2022, 1), "d", vec![("C05", Figure::Count(2))]))
        .await
        .unwrap();
    store
        .write_revision(&revision("XUANLA", Period::Half(2022, 2), "e", vec![("C05", Figure::Count(1))]))
        .await
        .unwrap();

    let kpis = store
        .kpis(&unit("PACNAM"), &[indicator("B01"), indicator("A01"), indicator("C02"), indicator("C05")], &[year])
        .await
        .unwrap();
    let b01 = &kpis[0];
    assert_eq!(b01.figure, Some(Figure::Ratio { numerator: 90, denominator: 165 }));
    assert_eq!((b01.reporting_units, b01.expected_units), (2, 10));
    assert_eq!(b01.evaluation.status, Status::NotMet);
    assert_eq!(kpis[1].figure, Some(Figure::Count(37)));
    assert_eq!(kpis[1].evaluation.status, Status::NoTarget);
    let c02 = &kpis[2];
    assert_eq!(c02.figure, Some(Figure::Percent(27.4)));
    assert!((c02.evaluation.achievement.unwrap() - 1.37).abs() < 1e-9);
    assert_eq!(kpis[3].figure, Some(Figure::Count(3)));
    assert_eq!(kpis[3].evaluation.status, Status::NotMet);

    // A commune's own KPI is its own figure; its rate target comes from the district.
    let colinh = store.kpis(&unit("COLINH"), &[indicator("B01")], &[year]).await.unwrap();
    assert_eq!(colinh[0].figure, Some(Figure::Ratio { numerator: 75, denominator: 150 }));
    assert_eq!(colinh[0].target, Some(100.0));
    // A commune has no reporter of C02 below it: no data.
    let c02_commune = store.kpis(&unit("COLINH"), &[indicator("C02")], &[year]).await.unwrap();
    assert_eq!(c02_commune[0].evaluation.status, Status::NoData);

    let as_of = chrono::NaiveDate::from_ymd_opt(2023, 1, 10).unwrap();
    let completeness = store.completeness(&unit("PACNAM"), year, as_of).await.unwrap();
    assert_eq!(completeness.expected.len(), 13);
    let reported: Vec<&str> = completeness.reported.iter().map(UnitCode::as_str).collect();
    assert_eq!(reported, ["BOCBO", "COLINH", "VPHDND"]);
    assert_eq!(store.missing_units(year).await.unwrap().len(), 10);
}

#[tokio::test]
async fn direct_reports_win_over_sub_periods_and_both_add_up() {
    let db = TestDatabase::new().await;
    let store = store_with_catalog(&db).await;
    let write = |unit: &'static str, period: Period, sha: &'static str, values: Vec<(&'static str, Figure)>| {
        let store = store.clone();
        async move { store.write_revision(&revision(unit, period, sha, values)).await.unwrap() }
    };
    // PNV reported the year (145) and, earlier, its first half (140): the year wins.
    write("PNV", Period::Year(2022), "1", vec![("A01", Figure::Count(145))]).await;
    write("PNV", Period::Half(2022, 1), "2", vec![("A01", Figure::Count(140))]).await;
    // PGDDT reported only half-years: a stock takes the second.
    write("PGDDT", Period::Half(2022, 1), "3", vec![("A01", Figure::Count(600))]).await;
    write("PGDDT", Period::Half(2022, 2), "4", vec![("A01", Figure::Count(664))]).await;
    // C05 is a flow: COLINH's year (5) ignores its half (100); XUANLA's halves sum to 3.
    write("COLINH", Period::Year(2022), "5", vec![("C05", Figure::Count(5))]).await;
    write("COLINH", Period::Half(2022, 1), "6", vec![("C05", Figure::Count(100))]).await;
    write("XUANLA", Period::Half(2022, 1), "7", vec![("C05", Figure::Count(2))]).await;
    write("XUANLA", Period::Half(2022, 2), "8", vec![("C05", Figure::Count(1))]).await;
    // C02 reported by quarters only: the latest quarter is the year's.
    write("VPHDND", Period::Quarter(2022, 3), "9", vec![("C02", Figure::Percent(25.0))]).await;
    write("VPHDND", Period::Quarter(2022, 4), "10", vec![("C02", Figure::Percent(27.4))]).await;

    let year = Period::Year(2022);
    let kpis =
        store.kpis(&unit("PACNAM"), &[indicator("A01"), indicator("C05"), indicator("C02")], &[year]).await.unwrap();
    assert_eq!((kpis[0].figure, kpis[0].reporting_units), (Some(Figure::Count(145 + 664)), 2));
    assert_eq!((kpis[1].figure, kpis[1].reporting_units), (Some(Figure::Count(5 + 3)), 2));
    assert_eq!(kpis[2].figure, Some(Figure::Percent(27.4)));

    // The half-year itself is what was reported for it.
    let first_half =
        store.kpis(&unit("PACNAM"), &[indicator("A01"), indicator("C05")], &[Period::Half(2022, 1)]).await.unwrap();
    assert_eq!(first_half[0].figure, Some(Figure::Count(140 + 600)));
    assert_eq!(first_half[1].figure, Some(Figure::Count(100 + 2)));
    // Asking for the year and its half at once gives each its own answer.
    let both = store.kpis(&unit("PACNAM"), &[indicator("C05")], &[year, Period::Half(2022, 1)]).await.unwrap();
    assert_eq!((both[0].figure, both[1].figure), (Some(Figure::Count(8)), Some(Figure::Count(102))));
}
