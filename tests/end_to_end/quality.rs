//! Data quality over gRPC: an error rule rejects an upload naming the rule, both sides and the
//! cells; a warning rule and an outlier are kept and listed; issues are followed up and
//! resolved with who and why; re-validation re-checks stored reports; dry runs show it all.

use kpi_proto::v1;
use kpi_proto::v1::data_quality_service_client::DataQualityServiceClient;
use tonic::Code;

use crate::fixtures::{Cell, report};
use crate::helpers::spawn_app;

/// PNV's report: university graduates (B04), postgraduates (B05) and the district staff.
fn pnv(period: &str, graduates: f64, postgraduates: f64, staff: (f64, f64), denominator: f64) -> Vec<u8> {
    report(
        "PNV",
        period,
        &[
            ("A02", Cell::Value(staff.0)),
            ("A04", Cell::Value(staff.1)),
            ("B04", Cell::Ratio(graduates, denominator)),
            ("B05", Cell::Ratio(postgraduates, denominator)),
        ],
    )
}

fn english<T>(message: T, user: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("accept-language", "en".parse().unwrap());
    request.metadata_mut().insert("x-kpi-user", user.parse().unwrap());
    request
}

#[tokio::test]
async fn rules_and_outliers_are_checked_listed_and_followed_up() {
    let app = spawn_app().await;
    let mut kpi = app.kpi().await;
    let mut quality = DataQualityServiceClient::new(app.channel().await);

    // R01 (an error): 20 postgraduates among 15 graduates. The dry run says so, and so does
    // the import, which stores nothing.
    let wrong = pnv("2025", 15.0, 20.0, (80.0, 20.0), 100.0);
    for dry_run in [true, false] {
        let refused = app.upload("pnv-2025.xlsx", &wrong, dry_run).await.unwrap();
        assert_eq!(refused.status, "rejected", "dry run {dry_run}");
        let error = &refused.errors[0];
        assert_eq!((error.code.as_str(), error.cell.as_str()), ("rule_violated", "B13"), "{}", error.message);
        for part in ["R01", "B05.numerator <= B04.numerator", "20", "15", "B13 (B05)", "B12 (B04)"] {
            assert!(error.message.contains(part), "{part} missing from {}", error.message);
        }
    }
    let nothing = kpi.get_kpi(crate::helpers::kpi_request("PNV", "B05", "2025")).await.unwrap().into_inner();
    assert!(!nothing.has_value);

    // R02 (a warning): a staff of 100 against 80 + 15 is kept, with the warning.
    let kept = app.upload("pnv-2025.xlsx", &pnv("2025", 60.0, 10.0, (80.0, 15.0), 100.0), false).await.unwrap();
    assert_eq!(kept.status, "accepted");
    assert_eq!(kept.warnings.iter().map(|w| w.code.as_str()).collect::<Vec<_>>(), ["rule_violated"]);
    assert!(kept.warnings[0].message.contains("R02"), "{}", kept.warnings[0].message);

    // Bộc Bố's membership over five years, then a jump the modified z-score flags.
    for (year, members) in [(2020, 20.0), (2021, 21.0), (2022, 19.0), (2023, 20.0), (2024, 22.0)] {
        let bytes = report("BOCBO", &year.to_string(), &[("A01", Cell::Value(members))]);
        let stored = app.upload(&format!("bocbo-{year}.xlsx"), &bytes, false).await.unwrap();
        assert!(stored.warnings.is_empty(), "{year}: {:?}", stored.warnings);
    }
    let jump = report("BOCBO", "2025", &[("A01", Cell::Value(60.0))]);
    let flagged = app.upload("bocbo-2025.xlsx", &jump, false).await.unwrap();
    assert_eq!(flagged.status, "accepted");
    let outlier = flagged.warnings.iter().find(|w| w.code == "outlier").unwrap();
    // Median 20, MAD 1: the expected range is 20 ± 3.5 / 0.6745.
    for part in ["A01 = 60", "14.81–25.19", "2020: 20", "2024: 22"] {
        assert!(outlier.message.contains(part), "{part} missing from {}", outlier.message);
    }

    let listed = |kind: &str| v1::ListDataIssuesRequest {
        parent_code: "PACNAM".into(),
        period: "2025".into(),
        kind: kind.into(),
    };
    let issues = kpi.list_data_issues(listed("")).await.unwrap().into_inner().issues;
    let summary: Vec<(&str, &str, &str, &str)> = issues
        .iter()
        .map(|i| (i.unit_code.as_str(), i.code.as_str(), i.severity.as_str(), i.status.as_str()))
        .collect();
    assert_eq!(summary, [("PNV", "R02", "warning", "open"), ("BOCBO", "outlier", "warning", "open")]);
    let outliers = kpi.list_data_issues(listed("outlier")).await.unwrap().into_inner().issues;
    assert_eq!((outliers.len(), outliers[0].cell.as_str(), outliers[0].indicator_code.as_str()), (1, "B10", "A01"));
    let bad_kind = kpi.list_data_issues(listed("typo")).await.unwrap_err();
    assert_eq!(bad_kind.code(), Code::InvalidArgument);

    // Follow-up and resolution, with who and why; a comment is required.
    let settle = |id: i32, comment: &str| v1::SettleDataIssueRequest { id, comment: comment.into() };
    let no_comment = quality.follow_up_data_issue(settle(outliers[0].id, "")).await.unwrap_err();
    assert_eq!(no_comment.code(), Code::InvalidArgument);
    let followed = quality
        .follow_up_data_issue(english(settle(outliers[0].id, "Hỏi lại xã Bộc Bố"), "can.bo.to.chuc"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((followed.status.as_str(), followed.follow_up_by.as_str()), ("follow_up", "can.bo.to.chuc"));
    let r02 = issues.iter().find(|i| i.code == "R02").unwrap();
    let resolved = quality
        .resolve_data_issue(english(settle(r02.id, "Biên chế gồm 5 hợp đồng"), "truong.phong"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((resolved.status.as_str(), resolved.resolved_by.as_str()), ("resolved", "truong.phong"));
    assert_eq!(resolved.comment, "Biên chế gồm 5 hợp đồng");
    let twice = quality.resolve_data_issue(settle(r02.id, "again")).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let open = kpi.list_data_issues(listed("")).await.unwrap().into_inner().issues;
    assert_eq!(open.iter().map(|i| i.status.as_str()).collect::<Vec<_>>(), ["follow_up"]);

    // Re-validation checks both reports again: the settled issues stand, none is raised twice.
    let run = quality
        .run_validation(english(
            v1::RunValidationRequest { parent_code: "PACNAM".into(), period: "2025".into() },
            "tester",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((run.reports_checked, run.issues_found), (2, 2));
    assert_eq!(run.issues.iter().map(|i| i.status.as_str()).collect::<Vec<_>>(), ["follow_up"]);
}
