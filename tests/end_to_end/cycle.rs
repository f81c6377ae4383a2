//! The reporting cycle over gRPC: timeliness and overdue units, approval that refuses imports
//! until withdrawn, locks, final figures, the audit trail, and the approve role.

use kpi_proto::v1;
use kpi_proto::v1::approval_service_client::ApprovalServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::fixtures::{Cell, report};
use crate::helpers::{TestApp, kpi_request, spawn_app, spawn_app_with, upload_request};

async fn approvals(app: &TestApp) -> ApprovalServiceClient<Channel> {
    ApprovalServiceClient::new(app.channel().await)
}

/// A request that names its caller, as the audit trail records it.
fn as_user<T>(message: T, user: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-kpi-user", user.parse().unwrap());
    request
}

fn approve(unit: &str, period: &str, comment: &str) -> v1::ApproveReportRequest {
    v1::ApproveReportRequest { unit_code: unit.into(), period: period.into(), comment: comment.into() }
}

fn unapprove(unit: &str, period: &str, reason: &str) -> v1::UnapproveReportRequest {
    v1::UnapproveReportRequest { unit_code: unit.into(), period: period.into(), reason: reason.into() }
}

#[tokio::test]
async fn approve_refuse_unapprove_accept() {
    let app = spawn_app().await;
    let mut approval = approvals(&app).await;
    let mut kpi = app.kpi().await;
    let first = report("BOCBO", "2025", &[("A01", Cell::Value(19.0))]);
    assert_eq!(app.upload("bocbo-2025.xlsx", &first, false).await.unwrap().status, "accepted");
    assert!(!kpi.get_kpi(kpi_request("BOCBO", "A01", "2025")).await.unwrap().into_inner().is_final);

    let status = approval
        .approve_report(as_user(approve("BOCBO", "2025", "Đã đối chiếu"), "chu.tich"))
        .await
        .unwrap()
        .into_inner();
    assert!(status.approved && status.frozen && status.has_report);
    assert_eq!((status.approved_by.as_str(), status.approval_comment.as_str()), ("chu.tich", "Đã đối chiếu"));
    // Decree 09 cuts 2025 off on Sunday 14 December; communes are due two working days
    // later, on Tuesday 16 December.
    assert_eq!(status.due_date, "2025-12-16");
    assert!(kpi.get_kpi(kpi_request("BOCBO", "A01", "2025")).await.unwrap().into_inner().is_final);

    // Another file for the approved report is rejected with its own code, naming the approver;
    // a dry run predicts the same.
    let second = report("BOCBO", "2025", &[("A01", Cell::Value(21.0))]);
    for dry_run in [true, false] {
        let refused = app.upload("bocbo-2025-v2.xlsx", &second, dry_run).await.unwrap();
        assert_eq!(refused.status, "rejected", "dry run {dry_run}");
        assert_eq!(refused.errors[0].code, "period_approved");
        assert!(refused.errors[0].message.contains("chu.tich"), "{}", refused.errors[0].message);
    }
    let kept = kpi.get_kpi(kpi_request("BOCBO", "A01", "2025")).await.unwrap().into_inner();
    assert_eq!(kept.value, 19.0);

    let no_reason = approval.unapprove_report(unapprove("BOCBO", "2025", " ")).await.unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let not_approved = approval.unapprove_report(unapprove("XUANLA", "2025", "nhầm")).await.unwrap_err();
    assert_eq!(not_approved.code(), Code::FailedPrecondition);
    let thawed = approval
        .unapprove_report(as_user(unapprove("BOCBO", "2025", "Sai số đảng viên"), "pho.chu.tich"))
        .await
        .unwrap()
        .into_inner();
    assert!(!thawed.approved && !thawed.frozen);
    let accepted = app.upload("bocbo-2025-v2.xlsx", &second, false).await.unwrap();
    assert_eq!((accepted.status.as_str(), accepted.revision), ("revised", 2));
    assert_eq!(kpi.get_kpi(kpi_request("BOCBO", "A01", "2025")).await.unwrap().into_inner().value, 21.0);

    let history = kpi
        .list_revisions(v1::ListRevisionsRequest { unit_code: "BOCBO".into(), period: "2025".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.revisions.len(), 2);
    let trail: Vec<(&str, &str, &str)> =
        history.approval_events.iter().map(|e| (e.action.as_str(), e.actor.as_str(), e.comment.as_str())).collect();
    assert_eq!(trail, [("approved", "chu.tich", "Đã đối chiếu"), ("unapproved", "pho.chu.tich", "Sai số đảng viên")]);

    // A lock by the district closes the period for its communes, with its own code.
    approval
        .lock_period(as_user(
            v1::LockPeriodRequest { unit_code: "PACNAM".into(), period: "2025".into(), comment: "Chốt năm".into() },
            "bi.thu",
        ))
        .await
        .unwrap();
    let locked = app.upload("xuanla.xlsx", &report("XUANLA", "2025", &[("A01", Cell::Value(5.0))]), false).await;
    let locked = locked.unwrap();
    assert_eq!((locked.status.as_str(), locked.errors[0].code.as_str()), ("rejected", "period_closed"));
    assert!(locked.errors[0].message.contains("bi.thu"), "{}", locked.errors[0].message);
    let status = kpi
        .get_approval_status(v1::GetApprovalStatusRequest { unit_code: "XUANLA".into(), period: "2025".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(status.frozen && !status.has_report);
    assert_eq!((status.locked_by_unit.as_str(), status.locked_by.as_str()), ("PACNAM", "bi.thu"));
}

#[tokio::test]
async fn completeness_and_overdue_say_who_is_late() {
    let app = spawn_app().await;
    let mut kpi = app.kpi().await;
    for unit in ["BOCBO", "XUANLA"] {
        let bytes = report(unit, "2025S1", &[("A01", Cell::Value(10.0))]);
        assert_eq!(app.upload(&format!("{unit}.xlsx"), &bytes, false).await.unwrap().status, "accepted");
    }
    // Imported today, long after 17 June 2025: late.
    let completeness = kpi
        .get_completeness(v1::GetCompletenessRequest {
            parent_code: "PACNAM".into(),
            period: "2025S1".into(),
            as_of: "2025-06-24".into(),
            include_units: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completeness.as_of, "2025-06-24");
    assert_eq!(completeness.expected.len(), 13);
    assert_eq!(completeness.reported, ["BOCBO", "XUANLA"]);
    let total = completeness.total.unwrap();
    assert_eq!(
        (total.unit_code.as_str(), total.expected, total.reported, total.reported_on_time),
        ("PACNAM", 13, 2, 0)
    );
    assert_eq!(completeness.on_time_rate, 0.0);
    let bocbo = completeness.units.iter().find(|u| u.unit_code == "BOCBO").unwrap();
    assert_eq!((bocbo.status.as_str(), bocbo.due_date.as_str()), ("late", "2025-06-17"));
    assert!(bocbo.first_accepted_at.is_some());

    let overdue = kpi
        .list_overdue(v1::ListOverdueRequest {
            parent_code: "PACNAM".into(),
            period: "2025S1".into(),
            as_of: "2025-06-24".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overdue.units.len(), 11);
    assert!(overdue.units.iter().all(|u| u.status == "missing" && u.working_days_late == 5));
    let before = kpi
        .list_overdue(v1::ListOverdueRequest {
            parent_code: "PACNAM".into(),
            period: "2025S1".into(),
            as_of: "2025-06-17".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(before.units.is_empty(), "nobody is overdue on the deadline itself");
    let bad_day = kpi
        .list_overdue(v1::ListOverdueRequest {
            parent_code: "PACNAM".into(),
            period: "2025S1".into(),
            as_of: "24/06/2025".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_day.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn only_the_approve_role_approves() {
    let app = spawn_app_with(|config| {
        config.tokens = Some("read:reader-token,import:importer-token,approve:approver-token".into())
    })
    .await;
    let bytes = report("BOCBO", "2025", &[("A01", Cell::Value(19.0))]);
    let mut upload = upload_request("bocbo.xlsx", &bytes, false, "", "");
    upload.metadata_mut().insert("authorization", "Bearer approver-token".parse().unwrap());
    assert_eq!(app.importer().await.import_workbook(upload).await.unwrap().into_inner().status, "accepted");

    let mut approval = approvals(&app).await;
    for (token, expected) in [("reader-token", Code::PermissionDenied), ("importer-token", Code::PermissionDenied)] {
        let mut request = tonic::Request::new(approve("BOCBO", "2025", ""));
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        assert_eq!(approval.approve_report(request).await.unwrap_err().code(), expected, "{token}");
    }
    let mut request = tonic::Request::new(approve("BOCBO", "2025", ""));
    request.metadata_mut().insert("authorization", "Bearer approver-token".parse().unwrap());
    assert!(approval.approve_report(request).await.unwrap().into_inner().approved);
}
