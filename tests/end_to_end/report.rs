//! The review workbook over gRPC: every figure of its summary equals the KPI service's, the
//! charts point at the ranges that hold the children's values and the targets, and the bytes
//! are the library's own, which `kpi-report` writes too.

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx};
use kpi_proto::v1;
use tokio_stream::StreamExt;

use crate::fixtures::district_2022;
use crate::helpers::spawn_app;

fn export(lang: &str) -> v1::ExportScorecardRequest {
    v1::ExportScorecardRequest {
        unit_code: "PACNAM".into(),
        period: "2022".into(),
        compare_period: String::new(),
        lang: lang.into(),
        as_of: "2023-01-20".into(),
    }
}

#[tokio::test]
async fn the_review_workbook_holds_the_services_figures_and_native_charts() {
    let app = spawn_app().await;
    for (name, bytes) in district_2022() {
        assert_eq!(app.upload(&name, &bytes, false).await.unwrap().status, "accepted");
    }
    let mut kpi = app.kpi().await;
    let mut stream = kpi.export_scorecard(export("vi")).await.unwrap().into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend(chunk.unwrap().data);
    }

    // The summary: one row per indicator, each value and status as GetKpi gives them.
    let mut workbook = Xlsx::new(Cursor::new(bytes.clone())).unwrap();
    let names = workbook.sheet_names();
    assert_eq!(names, ["Tổng hợp", "Nhóm A", "Nhóm B", "Nhóm C", "Xu hướng", "Tiến độ báo cáo"]);
    let summary = workbook.worksheet_range("Tổng hợp").unwrap();
    let indicators = kpi.list_indicators(v1::ListIndicatorsRequest::default()).await.unwrap().into_inner().indicators;
    for (offset, indicator) in indicators.iter().enumerate() {
        let row = 4 + offset as u32;
        let cell = |column: u32| summary.get_value((row, column)).cloned().unwrap_or(Data::Empty);
        assert_eq!(cell(0), Data::String(indicator.code.clone()));
        let expected = kpi.get_kpi(crate::helpers::kpi_request("PACNAM", &indicator.code, "2022")).await.unwrap();
        let expected = expected.into_inner();
        match cell(5) {
            Data::Float(value) => {
                assert!(expected.has_value && (value - expected.value).abs() < 1e-9, "{}", indicator.code)
            }
            Data::Empty => assert!(!expected.has_value, "{} has a value the workbook lacks", indicator.code),
            other => panic!("{}: {other:?}", indicator.code),
        }
        let optional = |value: Option<f64>| value.map_or(Data::Empty, Data::Float);
        assert_eq!(cell(6), optional(expected.target), "{} target", indicator.code);
        assert_eq!(cell(7), optional(expected.achievement), "{} achievement", indicator.code);
        if expected.has_value && indicator.kind() == v1::IndicatorKind::Ratio {
            let sums = (cell(3), cell(4));
            assert_eq!(sums, (Data::Float(expected.numerator as f64), Data::Float(expected.denominator as f64)));
        }
        assert_eq!(cell(10), Data::String(format!("{}/{}", expected.reporting_units, expected.expected_units)));
        let status = match expected.status() {
            v1::KpiStatus::Met => "Đạt",
            v1::KpiStatus::NotMet => "Chưa đạt",
            v1::KpiStatus::NoData => "Chưa có số liệu",
            _ => "Không có mục tiêu",
        };
        assert_eq!(cell(8), Data::String(status.into()), "{}", indicator.code);
    }
    // The review's own figures: 993 staff; B05 15/145 = 10.34% against 15%, 69% of the target.
    let b05 = 4 + indicators.iter().position(|i| i.code == "B05").unwrap() as u32;
    assert_eq!(summary.get_value((4, 5)), Some(&Data::Float(993.0)));
    assert_eq!(summary.get_value((b05, 3)), Some(&Data::Float(15.0)));
    assert_eq!(summary.get_value((b05, 4)), Some(&Data::Float(145.0)));

    // Group A's first block: A01's children in RankUnits' order, with its values.
    let group = workbook.worksheet_range("Nhóm A").unwrap();
    let ranking = kpi
        .rank_units(v1::RankUnitsRequest {
            parent_code: "PACNAM".into(),
            indicator_code: "A01".into(),
            period: "2022".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    for (offset, entry) in ranking.iter().enumerate() {
        let row = 2 + offset as u32;
        let entry_kpi = entry.kpi.as_ref().unwrap();
        assert_eq!(group.get_value((row, 0)), Some(&Data::Float(f64::from(entry.rank))));
        assert_eq!(group.get_value((row, 1)), Some(&Data::String(entry.unit_name.clone())));
        let value = group.get_value((row, 2)).cloned().unwrap_or(Data::Empty);
        let expected = if entry_kpi.has_value { Data::Float(entry_kpi.value) } else { Data::Empty };
        assert_eq!(value, expected, "{}", entry.unit_name);
    }
    // The trend: each indicator's row holds GetTrend's points over 2021–2025.
    let trend = workbook.worksheet_range("Xu hướng").unwrap();
    for (offset, indicator) in indicators.iter().enumerate() {
        let row = 4 + 2 * offset as u32;
        assert_eq!(trend.get_value((row, 0)), Some(&Data::String(indicator.code.clone())));
        let points = kpi
            .get_trend(v1::GetTrendRequest {
                unit_code: "PACNAM".into(),
                indicator_code: indicator.code.clone(),
                from_period: "2021".into(),
                to_period: "2025".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .points;
        for (column, point) in (2u32..).zip(&points) {
            let value = trend.get_value((row, column)).cloned().unwrap_or(Data::Empty);
            let expected = if point.has_value { Data::Float(point.value) } else { Data::Empty };
            assert_eq!(value, expected, "{} {}", indicator.code, point.period);
        }
    }

    // Group A's first chart: the 13 units' A01 values (C3:C15) by name (B3:B15), and the
    // target (D3:D15) as a line.
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    let charts =
        archive.file_names().filter(|name| name.as_ref().is_ok_and(|n| n.starts_with("xl/charts/chart"))).count();
    assert_eq!(charts, 2 * indicators.len(), "a bar chart per indicator and a line chart per indicator");
    let mut first = String::new();
    archive.by_name("xl/charts/chart1.xml").unwrap().read_to_string(&mut first).unwrap();
    for range in ["'Nhóm A'!$B$3:$B$15", "'Nhóm A'!$C$3:$C$15", "'Nhóm A'!$D$3:$D$15"] {
        assert!(first.contains(range), "{range} missing");
    }
    assert!(first.contains("<c:barChart>") && first.contains("<c:lineChart>"));

    // The library's bytes, which kpi-report writes: the same.
    let store = kpi_store::Store::connect(&app.database.url).await.unwrap();
    let request = kpi_report::ScorecardRequest {
        unit: kpi_core::UnitCode::parse("PACNAM").unwrap(),
        period: kpi_core::Period::Year(2022),
        compare: None,
        lang: kpi_report::Lang::Vi,
        as_of: chrono::NaiveDate::from_ymd_opt(2023, 1, 20).unwrap(),
    };
    assert!(kpi_report::scorecard_workbook(&store, &request).await.unwrap() == bytes, "gRPC and the library differ");

    let english = kpi.export_scorecard(export("en")).await.unwrap().into_inner();
    let english: Vec<u8> = english.map(|chunk| chunk.unwrap().data).collect::<Vec<_>>().await.concat();
    let names = Xlsx::new(Cursor::new(english)).unwrap().sheet_names();
    assert_eq!(names, ["Summary", "Group A", "Group B", "Group C", "Trend", "Reporting progress"]);
    let wrong = kpi.export_scorecard(v1::ExportScorecardRequest { lang: "fr".into(), ..export("vi") }).await;
    assert_eq!(wrong.unwrap_err().code(), tonic::Code::InvalidArgument);
}
