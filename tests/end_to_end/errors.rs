//! Error codes: malformed input is INVALID_ARGUMENT with a field violation naming the field,
//! unknown codes are NOT_FOUND.

use kpi_proto::v1;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::{kpi_request, spawn_app};

fn violated_field(status: &Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let violations = details.bad_request().map(|b| b.field_violations.clone()).unwrap_or_default();
    assert_eq!(violations.len(), 1, "{status:?}");
    violations[0].field.clone()
}

#[tokio::test]
async fn malformed_requests_name_their_field() {
    let app = spawn_app().await;
    let mut client = app.kpi().await;

    let status = client.get_kpi(kpi_request("PACNAM", "B05", "2022X")).await.unwrap_err();
    assert_eq!(violated_field(&status), "period");
    let status = client.get_kpi(kpi_request("pac nam", "B05", "2022")).await.unwrap_err();
    assert_eq!(violated_field(&status), "unit_code");
    let status = client.get_kpi(kpi_request("PACNAM", "", "2022")).await.unwrap_err();
    assert_eq!(violated_field(&status), "indicator_code");

    let status = client
        .list_units(v1::ListUnitsRequest { parent_code: String::new(), page_size: -1, page_token: String::new() })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status), "page_size");
    let status = client
        .list_units(v1::ListUnitsRequest { parent_code: String::new(), page_size: 10, page_token: "forged".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status), "page_token");
    for almost in ["kpi1.+5", "kpi1.", "kpi1. 5", "kpi1.5x"] {
        let request = v1::ListUnitsRequest { parent_code: String::new(), page_size: 10, page_token: almost.into() };
        let status = client.list_units(request).await.unwrap_err();
        assert_eq!(violated_field(&status), "page_token", "{almost:?}");
    }

    let status = client
        .get_trend(v1::GetTrendRequest {
            unit_code: "PACNAM".into(),
            indicator_code: "A01".into(),
            from_period: "2022".into(),
            to_period: "2023Q1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status), "to_period");
    let status = client
        .query_kpis(v1::QueryKpisRequest { unit_codes: vec!["PACNAM".into()], ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status), "periods");
}

#[tokio::test]
async fn unknown_codes_are_not_found() {
    let app = spawn_app().await;
    let mut client = app.kpi().await;
    let status = client.get_kpi(kpi_request("HANOI", "B05", "2022")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("HANOI"));
    let status = client.get_kpi(kpi_request("PACNAM", "Z99", "2022")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .get_scorecard(v1::GetScorecardRequest {
            resolution_code: "01-NQ/TW".into(),
            unit_code: "PACNAM".into(),
            period: "2022".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status =
        client.list_indicators(v1::ListIndicatorsRequest { resolution_code: "01-NQ/TW".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .rank_units(v1::RankUnitsRequest {
            parent_code: "NOWHERE".into(),
            indicator_code: "A01".into(),
            period: "2022".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .list_revisions(v1::ListRevisionsRequest { unit_code: "NOWHERE".into(), period: "2022".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// A megabyte of input is refused as INVALID_ARGUMENT quoting an excerpt, never echoed whole
/// (it once overflowed the response's metadata and reached the log as one line).
#[tokio::test]
async fn oversized_input_is_quoted_as_an_excerpt() {
    let app = spawn_app().await;
    let mut client = app.kpi().await;
    let huge = "X".repeat(1_000_000);
    for request in [kpi_request(&huge, "B05", "2022"), kpi_request("PACNAM", "B05", &format!("2022\n{huge}"))] {
        let status = client.get_kpi(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{}", &status.message()[..200.min(status.message().len())]);
        assert!(status.message().len() < 400, "{} bytes", status.message().len());
        assert!(!status.message().contains('\n'), "{}", status.message());
    }
}

/// Lists past their documented maximum are INVALID_ARGUMENT naming the field.
#[tokio::test]
async fn overlong_lists_are_refused() {
    let app = spawn_app().await;
    let mut client = app.kpi().await;
    let request = v1::QueryKpisRequest {
        unit_codes: vec!["PACNAM".to_owned(); 400_000],
        periods: vec!["2022".to_owned()],
        ..Default::default()
    };
    let status = client.query_kpis(request).await.unwrap_err();
    assert_eq!(violated_field(&status), "unit_codes");
    assert!(status.message().contains("at most 1000"), "{}", status.message());
}

/// A GetKpiRequest whose `unit_code` (field 1, a string) arrives as a number: not a valid
/// message of the method's type.
#[derive(Clone, PartialEq, prost::Message)]
struct MistypedRequest {
    #[prost(uint64, tag = "1")]
    unit_code: u64,
}

/// A request that is not a valid message is INVALID_ARGUMENT, without the decoder's details.
#[tokio::test]
async fn undecodable_requests_are_invalid_argument() {
    let app = spawn_app().await;
    let mut grpc = tonic::client::Grpc::new(app.channel().await);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<MistypedRequest, v1::Kpi>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/kpi.v1.KpiService/GetKpi");
    let status = grpc.unary(tonic::Request::new(MistypedRequest { unit_code: 7 }), path, codec).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(!status.message().contains("wire type"), "{}", status.message());
}
