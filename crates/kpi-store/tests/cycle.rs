//! The reporting cycle against a real database (SQLite, and PostgreSQL when
//! `TEST_DATABASE_URL` is set): timeliness from known import times, approval, locks, closing,
//! and whether figures are final.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kpi_core::calendar::Timeliness;
use kpi_core::{Catalog, Figure, IndicatorCode, Period, UnitCode};
use kpi_store::test_support::{TestDatabase, set_imported_at};
use kpi_store::{ApprovalAction, Freeze, NewRevision, NewValue, SHIPPED_CATALOG, Store, StoreError, WriteOutcome};

fn unit(code: &str) -> UnitCode {
    UnitCode::parse(code).unwrap()
}

fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0).unwrap()
}

async fn store_with(db: &TestDatabase, catalog: &str) -> Store {
    let store = Store::connect(&db.url).await.unwrap();
    store.load_catalog(&Catalog::from_toml(catalog).unwrap()).await.unwrap();
    store
}

/// A report of one count, whose bytes are told apart by `sha`.
fn report(unit_code: &str, period: Period, sha: &str, members: i64) -> NewRevision {
    NewRevision {
        unit: unit(unit_code),
        period,
        file_name: format!("{unit_code}-{period}.xlsx"),
        sha256: sha.to_owned(),
        imported_by: "van.thu".into(),
        prepared_by: None,
        prepared_on: None,
        warnings: Vec::new(),
        values: vec![NewValue {
            indicator: IndicatorCode::parse("A01").unwrap(),
            figure: Figure::Count(members),
            note: None,
        }],
        data_issues: Vec::new(),
    }
}

async fn write(store: &Store, revision: NewRevision) -> WriteOutcome {
    store.write_revision(&revision).await.unwrap()
}

#[tokio::test]
async fn timeliness_is_judged_from_the_first_accepted_revision() {
    let db = TestDatabase::new().await;
    let store = store_with(&db, SHIPPED_CATALOG).await;
    let half = Period::Half(2025, 1);
    // Decree 09: the first half is cut off on Saturday 14 June 2025; communes and agencies are
    // due two working days later, on Tuesday 17 June.
    for (code, at) in [
        ("BOCBO", utc(2025, 6, 17, 16, 59)), // 23:59 on 17 June in Vietnam: on time.
        ("XUANLA", utc(2025, 6, 17, 17, 0)), // 00:00 on 18 June in Vietnam: late by one day.
        ("COLINH", utc(2025, 6, 20, 3, 0)),  // Friday 20 June: three working days late.
    ] {
        write(&store, report(code, half, &format!("{code}-1"), 10)).await;
        set_imported_at(&db.url, code, "2025S1", at).await;
    }
    // A correction later on does not make BOCBO late: its first revision counts.
    write(&store, report("BOCBO", half, "BOCBO-2", 11)).await;

    let on_deadline = store.completeness(&unit("PACNAM"), half, day(2025, 6, 17)).await.unwrap();
    let status_of = |completeness: &kpi_store::Completeness, code: &str| {
        let entry = completeness.units.iter().find(|u| u.unit.as_str() == code).unwrap();
        (entry.status, entry.working_days_late, entry.due_on)
    };
    assert_eq!(on_deadline.expected.len(), 13);
    assert_eq!(status_of(&on_deadline, "BOCBO"), (Timeliness::OnTime, 0, day(2025, 6, 17)));
    assert_eq!(status_of(&on_deadline, "XUANLA"), (Timeliness::Late, 1, day(2025, 6, 17)));
    assert_eq!(status_of(&on_deadline, "NHANMON"), (Timeliness::NotDue, 0, day(2025, 6, 17)));

    // A week later: Wednesday 18 to Tuesday 24 June holds five working days.
    let week_later = store.completeness(&unit("PACNAM"), half, day(2025, 6, 24)).await.unwrap();
    assert_eq!(status_of(&week_later, "COLINH"), (Timeliness::Late, 3, day(2025, 6, 17)));
    assert_eq!(status_of(&week_later, "NHANMON"), (Timeliness::Missing, 5, day(2025, 6, 17)));
    let total = &week_later.total;
    assert_eq!((total.expected, total.reported, total.on_time), (13, 3, 1));
    assert!((total.reporting_rate() - 3.0 / 13.0).abs() < 1e-12);
    assert!((total.on_time_rate() - 1.0 / 13.0).abs() < 1e-12);
    // Every commune and agency is a child of the district: one rate each.
    assert_eq!(week_later.children.len(), 13);
    let bocbo = week_later.children.iter().find(|c| c.unit.as_str() == "BOCBO").unwrap();
    assert_eq!((bocbo.rates.expected, bocbo.rates.on_time), (1, 1));

    let overdue = store.overdue(&unit("PACNAM"), half, day(2025, 6, 24)).await.unwrap();
    assert_eq!(overdue.len(), 10);
    assert!(overdue.iter().all(|u| u.status == Timeliness::Missing && u.working_days_late == 5));
    assert_eq!(overdue[0].unit.as_str(), "BANGTHANH", "equally late units keep tree order");

    // Communes report halves and years only: nothing is due for a quarter.
    let quarter = store.completeness(&unit("PACNAM"), Period::Quarter(2025, 1), day(2025, 6, 24)).await.unwrap();
    assert!(quarter.expected.is_empty());
    assert!(store.missing_units(Period::Quarter(2025, 1)).await.unwrap().is_empty());
}

/// The shipped catalog with a cluster between the district and two of its communes, BOCBO
/// and XUANLA: three levels.
fn catalog_with_a_cluster() -> String {
    let cluster = "[[units]]\ncode = \"CUM1\"\nname = \"Cụm 1\"\nkind = \"cluster\"\nparent = \"PACNAM\"\n\n";
    let mut catalog =
        SHIPPED_CATALOG.replacen("[[units]]\ncode = \"BOCBO\"", &format!("{cluster}[[units]]\ncode = \"BOCBO\""), 1);
    for commune in ["BOCBO", "XUANLA"] {
        let below_district = format!("code = \"{commune}\"\nname = ");
        let start = catalog.find(&below_district).unwrap();
        let parent = catalog[start..].find("parent = \"PACNAM\"").unwrap() + start;
        catalog.replace_range(parent..parent + "parent = \"PACNAM\"".len(), "parent = \"CUM1\"");
    }
    catalog
}

#[tokio::test]
async fn completeness_rates_each_child_over_its_whole_subtree() {
    let db = TestDatabase::new().await;
    let store = store_with(&db, &catalog_with_a_cluster()).await;
    let half = Period::Half(2025, 1);
    let on_time = utc(2025, 6, 16, 3, 0);
    for (code, at) in [("BOCBO", on_time), ("XUANLA", utc(2025, 6, 20, 3, 0)), ("NHANMON", on_time)] {
        write(&store, report(code, half, &format!("{code}-1"), 10)).await;
        set_imported_at(&db.url, code, "2025S1", at).await;
    }
    let completeness = store.completeness(&unit("PACNAM"), half, day(2025, 6, 24)).await.unwrap();
    // The cluster owes nothing itself, so 13 units are still expected, and it is rated over
    // its two communes.
    assert_eq!(completeness.expected.len(), 13);
    let rates = |code: &str| {
        let child = completeness.children.iter().find(|c| c.unit.as_str() == code).unwrap();
        (child.rates.expected, child.rates.reported, child.rates.on_time)
    };
    assert_eq!(rates("CUM1"), (2, 2, 1));
    assert_eq!(rates("NHANMON"), (1, 1, 1));
    assert!(completeness.children.iter().all(|c| !["BOCBO", "XUANLA"].contains(&c.unit.as_str())));
    assert_eq!(completeness.children.len(), 12, "the cluster and the 11 other communes and agencies");
    let total = &completeness.total;
    assert_eq!((total.expected, total.reported, total.on_time), (13, 3, 2));
    // The time each report first came is read back exactly.
    let xuanla = completeness.units.iter().find(|u| u.unit.as_str() == "XUANLA").unwrap();
    assert_eq!(xuanla.first_accepted_at, Some(utc(2025, 6, 20, 3, 0)));
    assert_eq!((xuanla.status, xuanla.working_days_late), (Timeliness::Late, 3));

    // Below the cluster, its communes are the children.
    let cluster = store.completeness(&unit("CUM1"), half, day(2025, 6, 24)).await.unwrap();
    let codes: Vec<&str> = cluster.expected.iter().map(UnitCode::as_str).collect();
    assert_eq!(codes, ["BOCBO", "XUANLA"]);
    assert_eq!(cluster.children.len(), 2);
}

#[tokio::test]
async fn an_approved_report_refuses_imports_until_unapproved_and_the_trail_is_kept() {
    let db = TestDatabase::new().await;
    let store = store_with(&db, SHIPPED_CATALOG).await;
    let year = Period::Year(2025);
    let a01 = [IndicatorCode::parse("A01").unwrap()];

    let nothing = store.approve_report(&unit("BOCBO"), year, "chu.tich", "").await;
    assert!(matches!(nothing, Err(StoreError::Precondition(ref m)) if m.contains("no report")), "{nothing:?}");

    assert_eq!(write(&store, report("BOCBO", year, "b1", 10)).await, WriteOutcome::Created { revision: 1 });
    let kpi = store.kpis(&unit("BOCBO"), &a01, &[year]).await.unwrap();
    assert!(!kpi[0].figures_final, "nothing is approved yet");

    let approved = store.approve_report(&unit("BOCBO"), year, "chu.tich", "Số liệu khớp sổ").await.unwrap();
    assert_eq!(approved.approval.as_ref().map(|a| a.by.as_str()), Some("chu.tich"));
    let twice = store.approve_report(&unit("BOCBO"), year, "pho.chu.tich", "").await;
    assert!(matches!(twice, Err(StoreError::Precondition(ref m)) if m.contains("chu.tich")), "{twice:?}");
    assert!(store.kpis(&unit("BOCBO"), &a01, &[year]).await.unwrap()[0].figures_final);
    assert!(store.kpis(&unit("PACNAM"), &a01, &[year]).await.unwrap()[0].figures_final);

    // A different file is refused, naming the approver; the same file is merely unchanged.
    match write(&store, report("BOCBO", year, "b2", 12)).await {
        WriteOutcome::Frozen(Freeze::Approved(stamp)) => assert_eq!(stamp.by, "chu.tich"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(write(&store, report("BOCBO", year, "b1", 10)).await, WriteOutcome::Unchanged { revision: 1 });
    let kpi = store.kpis(&unit("BOCBO"), &a01, &[year]).await.unwrap();
    assert_eq!(kpi[0].figure, Some(Figure::Count(10)), "the refused file changed nothing");

    // Another commune's unapproved report makes the district's figures provisional again, and
    // so does an unapproved quarter inside the approved year.
    write(&store, report("XUANLA", year, "x1", 7)).await;
    assert!(!store.kpis(&unit("PACNAM"), &a01, &[year]).await.unwrap()[0].figures_final);
    write(&store, report("BOCBO", Period::Quarter(2025, 1), "q1", 9)).await;
    assert!(!store.kpis(&unit("BOCBO"), &a01, &[year]).await.unwrap()[0].figures_final);

    // The counts survive a catalog load that rebuilds them.
    let renamed = SHIPPED_CATALOG.replace("Xã Bộc Bố", "Xã Bộc Bố (mới)");
    store.load_catalog(&Catalog::from_toml(&renamed).unwrap()).await.unwrap();
    store.approve_report(&unit("BOCBO"), Period::Quarter(2025, 1), "chu.tich", "").await.unwrap();
    assert!(store.kpis(&unit("BOCBO"), &a01, &[year]).await.unwrap()[0].figures_final);

    let missing_reason = store.unapprove_report(&unit("XUANLA"), year, "chu.tich", "sai").await;
    assert!(matches!(missing_reason, Err(StoreError::Precondition(ref m)) if m.contains("not approved")));
    let thawed = store.unapprove_report(&unit("BOCBO"), year, "pho.chu.tich", "Sai số đảng viên").await.unwrap();
    assert!(thawed.approval.is_none());
    assert_eq!(write(&store, report("BOCBO", year, "b2", 12)).await, WriteOutcome::Created { revision: 2 });

    let status = store.approval_status(&unit("BOCBO"), year).await.unwrap();
    let trail: Vec<(ApprovalAction, &str, &str)> =
        status.history.iter().map(|e| (e.action, e.actor.as_str(), e.comment.as_str())).collect();
    assert_eq!(
        trail,
        [
            (ApprovalAction::Approved, "chu.tich", "Số liệu khớp sổ"),
            (ApprovalAction::Unapproved, "pho.chu.tich", "Sai số đảng viên"),
        ]
    );
}

#[tokio::test]
async fn a_lock_covers_the_subtree_and_the_periods_inside() {
    let db = TestDatabase::new().await;
    let store = store_with(&db, SHIPPED_CATALOG).await;
    store.lock_period(&unit("PACNAM"), Period::Year(2025), "bi.thu", "Chốt số liệu năm").await.unwrap();
    for period in [Period::Year(2025), Period::Half(2025, 1), Period::Month(2025, 12)] {
        match write(&store, report("BOCBO", period, "b", 3)).await {
            WriteOutcome::Frozen(Freeze::Locked(lock)) => {
                assert_eq!(
                    (lock.unit.as_str(), lock.period, lock.stamp.by.as_str()),
                    ("PACNAM", Period::Year(2025), "bi.thu")
                );
            }
            other => panic!("{period}: expected the lock, got {other:?}"),
        }
    }
    assert_eq!(write(&store, report("BOCBO", Period::Year(2024), "b", 3)).await, WriteOutcome::Created { revision: 1 });
    let twice = store.lock_period(&unit("PACNAM"), Period::Year(2025), "bi.thu", "").await;
    assert!(matches!(twice, Err(StoreError::Precondition(_))));

    // A commune's own lock binds only itself.
    store.lock_period(&unit("XUANLA"), Period::Year(2026), "xa", "").await.unwrap();
    assert!(matches!(write(&store, report("XUANLA", Period::Year(2026), "x", 1)).await, WriteOutcome::Frozen(_)));
    assert_eq!(write(&store, report("BOCBO", Period::Year(2026), "b", 1)).await, WriteOutcome::Created { revision: 1 });

    let not_locked = store.unlock_period(&unit("BOCBO"), Period::Year(2025), "bi.thu", "mở").await;
    assert!(matches!(not_locked, Err(StoreError::Precondition(_))));
    store.unlock_period(&unit("PACNAM"), Period::Year(2025), "bi.thu", "Bổ sung số liệu").await.unwrap();
    assert_eq!(write(&store, report("BOCBO", Period::Year(2025), "b", 3)).await, WriteOutcome::Created { revision: 1 });
    let history = store.approval_status(&unit("BOCBO"), Period::Half(2025, 1)).await.unwrap().history;
    let actions: Vec<(ApprovalAction, &str)> = history.iter().map(|e| (e.action, e.unit.as_str())).collect();
    assert_eq!(actions, [(ApprovalAction::Locked, "PACNAM"), (ApprovalAction::Unlocked, "PACNAM")]);
}

#[tokio::test]
async fn a_period_closes_by_itself_after_the_catalogs_days() {
    let db = TestDatabase::new().await;
    let catalog = SHIPPED_CATALOG.replace("cutoff = \"decree-09\"", "cutoff = \"decree-09\"\nclose_after_days = 10");
    let store = store_with(&db, &catalog).await;
    // Due Tuesday 17 June 2025; open through 27 June, closed from 28 June.
    match write(&store, report("BOCBO", Period::Half(2025, 1), "b", 3)).await {
        WriteOutcome::Frozen(Freeze::Closed { deadline, closed_on, after_days }) => {
            assert_eq!((deadline, closed_on, after_days), (day(2025, 6, 17), day(2025, 6, 28), 10));
        }
        other => panic!("expected the period closed, got {other:?}"),
    }
    let status = store.approval_status(&unit("BOCBO"), Period::Half(2025, 1)).await.unwrap();
    assert_eq!(status.closes_on, Some(day(2025, 6, 28)));
    // A period whose deadline is years ahead is open.
    assert_eq!(
        write(&store, report("BOCBO", Period::Half(2030, 1), "b", 3)).await,
        WriteOutcome::Created { revision: 1 }
    );
    // Dropping the setting reopens every period.
    store.load_catalog(&Catalog::from_toml(SHIPPED_CATALOG).unwrap()).await.unwrap();
    assert_eq!(
        write(&store, report("BOCBO", Period::Half(2025, 1), "b", 3)).await,
        WriteOutcome::Created { revision: 1 }
    );
}
