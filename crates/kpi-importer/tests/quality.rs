//! Re-validation of stored reports: a rule added to the catalog after the reports came is
//! applied to them, and re-running it replaces the open issues without duplicating them.
//! Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kpi_core::{Catalog, Figure, IndicatorCode, Period, UnitCode};
use kpi_importer::Lang;
use kpi_importer::checks::{Revalidation, revalidate};
use kpi_store::test_support::TestDatabase;
use kpi_store::{IssueKind, NewRevision, NewValue, SHIPPED_CATALOG, Store};

fn count(code: &str, value: i64) -> NewValue {
    NewValue { indicator: IndicatorCode::parse(code).unwrap(), figure: Figure::Count(value), note: None }
}

#[tokio::test]
async fn a_rule_added_later_is_applied_to_stored_reports() {
    let db = TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.load_catalog(&Catalog::from_toml(SHIPPED_CATALOG).unwrap()).await.unwrap();
    let (pacnam, year) = (UnitCode::parse("PACNAM").unwrap(), Period::Year(2025));
    for (unit, members) in [("BOCBO", 30), ("XUANLA", 12)] {
        let revision = NewRevision {
            unit: UnitCode::parse(unit).unwrap(),
            period: year,
            file_name: format!("{unit}.xlsx"),
            sha256: format!("{unit}-1"),
            imported_by: "tester".into(),
            prepared_by: None,
            prepared_on: None,
            warnings: Vec::new(),
            values: vec![count("A01", members), count("A03", 20)],
            data_issues: Vec::new(),
        };
        store.write_revision(&revision).await.unwrap();
    }
    assert_eq!(revalidate(&store, &pacnam, year, Lang::En).await.unwrap(), Revalidation { reports: 2, issues: 0 });

    // A commune's party members should not outnumber its civil servants, the district decides.
    let rule = "\n[[rules]]\ncode = \"R09\"\nname = \"Đảng viên không vượt số công chức\"\n\
                name_en = \"Members do not outnumber civil servants\"\nleft = \"A01\"\noperator = \"<=\"\n\
                right = \"A03\"\nimportance = \"warning\"\n";
    store.load_catalog(&Catalog::from_toml(&format!("{SHIPPED_CATALOG}{rule}")).unwrap()).await.unwrap();
    for _ in 0..2 {
        let done = revalidate(&store, &pacnam, year, Lang::En).await.unwrap();
        assert_eq!(done, Revalidation { reports: 2, issues: 1 });
        let issues = store.list_data_issues(&pacnam, year, Some(IssueKind::Rule)).await.unwrap();
        assert_eq!(issues.len(), 1, "re-running replaces, never duplicates");
        assert_eq!((issues[0].unit.as_str(), issues[0].issue.code.as_str()), ("BOCBO", "R09"));
        let message = &issues[0].issue.message;
        assert!(message.contains("A01 <= A03") && message.contains("left side 30, right side 20"), "{message}");
    }
}

#[tokio::test]
async fn children_sums_bounds_and_sudden_changes_are_found() {
    let db = TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    // The district reports its own A03 here, held to its communes' sum; Bộc Bố's membership is
    // bounded.
    let catalog = SHIPPED_CATALOG.replacen("kind = \"district\"\n", "kind = \"district\"\nreports = [\"A03\"]\n", 1)
        + "\n[[rules]]\ncode = \"R08\"\nname = \"Huyện không ít hơn tổng các xã\"\nleft = \"A03\"\n\
           operator = \">=\"\nright = \"children(A03)\"\nimportance = \"warning\"\n\
           \n[[bounds]]\nindicator = \"A01\"\nunit = \"BOCBO\"\nmax = 25\n";
    store.load_catalog(&Catalog::from_toml(&catalog).unwrap()).await.unwrap();
    let write = |unit: &str, period: Period, values: Vec<NewValue>| {
        let revision = NewRevision {
            unit: UnitCode::parse(unit).unwrap(),
            period,
            file_name: format!("{unit}-{period}.xlsx"),
            sha256: format!("{unit}-{period}"),
            imported_by: "tester".into(),
            prepared_by: None,
            prepared_on: None,
            warnings: Vec::new(),
            values,
            data_issues: Vec::new(),
        };
        let store = store.clone();
        async move { store.write_revision(&revision).await.unwrap() }
    };
    let year = Period::Year(2025);
    write("PACNAM", year, vec![count("A03", 30)]).await;
    write("BOCBO", year, vec![count("A03", 20), count("A01", 30)]).await;
    write("XUANLA", Period::Year(2024), vec![count("A01", 5)]).await;
    write("XUANLA", year, vec![count("A03", 15), count("A01", 16)]).await;

    let pacnam = UnitCode::parse("PACNAM").unwrap();
    let done = revalidate(&store, &pacnam, year, Lang::En).await.unwrap();
    assert_eq!(done, Revalidation { reports: 3, issues: 3 });
    let issues = store.list_data_issues(&pacnam, year, None).await.unwrap();
    let found: Vec<(&str, &str, &str)> =
        issues.iter().map(|i| (i.unit.as_str(), i.issue.code.as_str(), i.issue.message.as_str())).collect();
    assert_eq!(found[0].0, "PACNAM");
    assert!(found[0].2.contains("A03 >= children(A03)") && found[0].2.contains("left side 30, right side 35"));
    assert_eq!((found[1].0, found[1].1), ("BOCBO", "outlier"));
    assert!(found[1].2.contains("A01 = 30") && found[1].2.contains("…–25"), "{}", found[1].2);
    assert_eq!((found[2].0, found[2].1), ("XUANLA", "outlier"));
    assert!(found[2].2.contains("A01 = 16") && found[2].2.contains("2024 (5), ×3.2"), "{}", found[2].2);
}
