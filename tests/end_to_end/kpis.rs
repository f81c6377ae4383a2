//! Every KpiService method over the project's own 2022 workbooks.

use kpi_proto::v1;
use kpi_proto::v1::KpiStatus;

use crate::fixtures::district_2022;
use crate::helpers::{TestApp, assert_close, district_scorecard_2022, indicators_with_status, kpi_request, spawn_app};

async fn app_with_2022() -> TestApp {
    let app = spawn_app().await;
    for (name, bytes) in district_2022() {
        let result = app.upload(&name, &bytes, false).await.unwrap();
        assert_eq!(result.status, "accepted", "{name}: {:?}", result.errors);
    }
    app
}

#[tokio::test]
async fn get_kpi_gives_the_review_figures() {
    let app = app_with_2022().await;
    let mut client = app.kpi().await;

    let b05 = client.get_kpi(kpi_request("PACNAM", "B05", "2022")).await.unwrap().into_inner();
    assert!(b05.has_value);
    assert_close(b05.value, 10.34, 0.005);
    assert_eq!((b05.numerator, b05.denominator), (15, 145));
    assert_eq!(b05.status(), KpiStatus::NotMet);
    assert_eq!(b05.target, Some(15.0));
    assert_close(b05.achievement.unwrap(), 0.6897, 0.0001);

    let a01 = client.get_kpi(kpi_request("PACNAM", "A01", "2022")).await.unwrap().into_inner();
    assert_eq!(a01.value, 993.0);
    assert_eq!(a01.status(), KpiStatus::NoTarget);
    assert_eq!((a01.reporting_units, a01.expected_units), (6, 13), "VPHDND reported no A01");

    let c02 = client.get_kpi(kpi_request("PACNAM", "C02", "2022")).await.unwrap().into_inner();
    assert_close(c02.value, 27.4, 1e-9);
    assert_close(c02.achievement.unwrap(), 1.37, 1e-9);
    assert_eq!(c02.status(), KpiStatus::Met);

    // B01 aggregates communes of different sizes as Σnum/Σden: 181/184, not a mean.
    let b01 = client.get_kpi(kpi_request("PACNAM", "B01", "2022")).await.unwrap().into_inner();
    assert_eq!((b01.numerator, b01.denominator), (181, 184));

    // A commune's own KPI, and a year nobody reported.
    let colinh = client.get_kpi(kpi_request("COLINH", "B01", "2022")).await.unwrap().into_inner();
    assert_eq!((colinh.numerator, colinh.denominator, colinh.status()), (50, 52, KpiStatus::NotMet));
    let empty = client.get_kpi(kpi_request("PACNAM", "B05", "2021")).await.unwrap().into_inner();
    assert!(!empty.has_value);
    assert_eq!(empty.status(), KpiStatus::NoData);
    assert_eq!(empty.achievement, None);
}

#[tokio::test]
async fn scorecard_lists_b05_and_b06_as_not_met() {
    let app = app_with_2022().await;
    let mut client = app.kpi().await;
    let scorecard = client.get_scorecard(district_scorecard_2022()).await.unwrap().into_inner();
    assert_eq!(scorecard.entries.len(), 12, "every indicator with a target");
    let not_met = indicators_with_status(&scorecard.entries, KpiStatus::NotMet);
    // C01 47% falls short of its illustrative 50%; B01 is 181/184 in these fixtures.
    assert_eq!(not_met, ["B01", "B05", "B06", "C01"]);
    let no_data = indicators_with_status(&scorecard.entries, KpiStatus::NoData);
    assert_eq!(no_data, ["B02", "B03", "B07"]);
    assert_eq!((scorecard.met_count, scorecard.not_met_count, scorecard.no_data_count), (5, 4, 3));
}

#[tokio::test]
async fn units_and_indicators_are_listed_with_pages() {
    let app = spawn_app().await;
    let mut client = app.kpi().await;
    let first = client
        .list_units(v1::ListUnitsRequest { parent_code: "PACNAM".into(), page_size: 10, page_token: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.units.len(), 10);
    assert_eq!((first.units[0].code.as_str(), first.units[0].name.as_str()), ("BOCBO", "Xã Bộc Bố"));
    assert_eq!(first.units[0].parent_code, "PACNAM");
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_units(v1::ListUnitsRequest {
            parent_code: "PACNAM".into(),
            page_size: 10,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<&str> = second.units.iter().map(|u| u.code.as_str()).collect();
    assert_eq!(codes, ["PNV", "PGDDT", "VPHDND"]);
    assert_eq!(second.next_page_token, "");

    let all = client.list_units(v1::ListUnitsRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.units.len(), 14);
    assert_eq!(all.units[0].kind, "district");

    let indicators = client
        .list_indicators(v1::ListIndicatorsRequest { resolution_code: "09-NQ/HU".into() })
        .await
        .unwrap()
        .into_inner()
        .indicators;
    assert_eq!(indicators.len(), 19);
    let b06 = indicators.iter().find(|i| i.code == "B06").unwrap();
    assert_eq!(b06.kind(), v1::IndicatorKind::Ratio);
    assert_eq!(b06.targets.len(), 1);
    assert_eq!(
        (b06.targets[0].unit_code.as_str(), b06.targets[0].period.as_str(), b06.targets[0].value),
        ("PACNAM", "", 85.0)
    );
    let c05 = indicators.iter().find(|i| i.code == "C05").unwrap();
    assert_eq!((c05.time_aggregation(), c05.direction()), (v1::TimeAggregation::Flow, v1::Direction::LowerIsBetter));
    assert_eq!(indicators.iter().find(|i| i.code == "C02").unwrap().reported_by, "VPHDND");
}

#[tokio::test]
async fn query_kpis_pages_through_units_indicators_and_periods() {
    let app = app_with_2022().await;
    let mut client = app.kpi().await;
    let request = |page_token: String| v1::QueryKpisRequest {
        unit_codes: vec!["PACNAM".into()],
        include_children: true,
        indicator_codes: vec!["A01".into(), "B01".into()],
        periods: vec!["2021".into(), "2022".into()],
        page_size: 20,
        page_token,
    };
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client.query_kpis(request(token)).await.unwrap().into_inner();
        all.extend(page.kpis);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // 14 units (the district and its 13 children) × 2 indicators × 2 periods.
    assert_eq!(all.len(), 56);
    let find = |unit: &str, indicator: &str, period: &str| {
        all.iter().find(|k| k.unit_code == unit && k.indicator_code == indicator && k.period == period).unwrap()
    };
    assert_eq!(find("PACNAM", "A01", "2022").value, 993.0);
    assert_eq!(find("COLINH", "A01", "2022").value, 52.0);
    assert!(!find("NHANMON", "A01", "2022").has_value);
    assert_eq!((find("XUANLA", "B01", "2022").numerator, find("XUANLA", "B01", "2022").denominator), (46, 46));
}

#[tokio::test]
async fn trend_ranking_completeness_and_revisions() {
    let app = app_with_2022().await;
    let mut client = app.kpi().await;

    let trend = client
        .get_trend(v1::GetTrendRequest {
            unit_code: "PACNAM".into(),
            indicator_code: "A01".into(),
            from_period: "2020".into(),
            to_period: "2022".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    let points: Vec<(&str, bool, f64)> = trend.iter().map(|p| (p.period.as_str(), p.has_value, p.value)).collect();
    assert_eq!(points, [("2020", false, 0.0), ("2021", false, 0.0), ("2022", true, 993.0)]);

    let ranking = client
        .rank_units(v1::RankUnitsRequest {
            parent_code: "PACNAM".into(),
            indicator_code: "B01".into(),
            period: "2022".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let order: Vec<(&str, i32)> =
        ranking.iter().map(|e| (e.kpi.as_ref().unwrap().unit_code.as_str(), e.rank)).collect();
    // 100% (BOCBO and XUANLA share rank 1), then 97.8% (CAOTAN), then 96.2% (COLINH), then no data.
    assert_eq!(&order[..4], [("BOCBO", 1), ("XUANLA", 1), ("CAOTAN", 3), ("COLINH", 4)]);
    assert_eq!(order.len(), 13);
    assert!(order[4..].iter().all(|(_, rank)| *rank == 5));
    assert_eq!(ranking[0].unit_name, "Xã Bộc Bố");

    let completeness = client
        .get_completeness(v1::GetCompletenessRequest {
            parent_code: "PACNAM".into(),
            period: "2022".into(),
            as_of: "2023-01-10".into(),
            include_units: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completeness.expected.len(), 13);
    assert_eq!(completeness.reported, ["BOCBO", "XUANLA", "COLINH", "CAOTAN", "PNV", "PGDDT", "VPHDND"]);
    assert_eq!(completeness.missing, ["BANGTHANH", "NHANMON", "GIAOHIEU", "ANTHANG", "CONGBANG", "NGHIENLOAN"]);
    assert_close(completeness.rate, 7.0 / 13.0, 1e-12);
    assert!(completeness.units.is_empty(), "units are listed only when asked");

    // A corrected PNV file becomes revision 2; the first stays as superseded.
    let corrected = crate::fixtures::report("PNV", "Năm 2022", &[("B05", crate::fixtures::Cell::Ratio(16.0, 145.0))]);
    let result = app.upload("pnv-2022-corrected.xlsx", &corrected, false).await.unwrap();
    assert_eq!((result.status.as_str(), result.revision), ("revised", 2));
    let revisions = client
        .list_revisions(v1::ListRevisionsRequest { unit_code: "PNV".into(), period: "2022".into() })
        .await
        .unwrap()
        .into_inner()
        .revisions;
    let summary: Vec<(i32, &str, &str)> =
        revisions.iter().map(|r| (r.number, r.file_name.as_str(), r.status.as_str())).collect();
    assert_eq!(summary, [(2, "pnv-2022-corrected.xlsx", "current"), (1, "pnv-2022.xlsx", "superseded")]);
    assert_eq!(revisions[1].imported_by, "grpc");
    assert_eq!(revisions[1].prepared_by, "Nông Thị Hoa");
    assert_eq!(revisions[0].sha256.len(), 64);
    assert!(revisions[0].imported_at.is_some());
    // The district now reflects only the current revision.
    let b05 = client.get_kpi(kpi_request("PACNAM", "B05", "2022")).await.unwrap().into_inner();
    assert_eq!((b05.numerator, b05.denominator), (16, 145));
    let a02 = client.get_kpi(kpi_request("PACNAM", "A02", "2022")).await.unwrap().into_inner();
    assert!(!a02.has_value, "the corrected file dropped A02, so the district has none");
}
