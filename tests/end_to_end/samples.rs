//! The 26 sample workbooks of ../shared/samples (written by openpyxl, LibreOffice and xlwt),
//! uploaded through ImportWorkbook: the district totals must equal totals.json. A missing
//! folder skips the test locally and fails it under `CI=true`.

use std::path::{Path, PathBuf};

use kpi_proto::v1::KpiStatus;

use crate::helpers::{assert_close, district_scorecard_2022, indicators_with_status, kpi_request, spawn_app};

fn samples_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples");
    if dir.join("totals.json").is_file() {
        return Some(dir);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {} is missing", dir.display());
    eprintln!("skipping: {} is missing", dir.display());
    None
}

fn sample_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for year in std::fs::read_dir(dir).unwrap() {
        let year = year.unwrap().path();
        if year.is_dir() {
            files.extend(std::fs::read_dir(&year).unwrap().map(|f| f.unwrap().path()));
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn samples_reproduce_the_district_totals_and_the_review() {
    let Some(dir) = samples_dir() else { return };
    let app = spawn_app().await;
    let files = sample_files(&dir);
    assert_eq!(files.len(), 26);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let result = app.upload(&name, &std::fs::read(file).unwrap(), false).await.unwrap();
        assert_eq!(result.status, "accepted", "{name}: {:?}", result.errors);
    }

    let totals: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("totals.json")).unwrap()).unwrap();
    let mut client = app.kpi().await;
    let mut checked = 0;
    for (period, indicators) in totals["totals"].as_object().unwrap() {
        for (indicator, expected) in indicators.as_object().unwrap() {
            let kpi = client.get_kpi(kpi_request("PACNAM", indicator, period)).await.unwrap().into_inner();
            assert!(kpi.has_value, "{indicator} {period} has no value");
            match expected {
                serde_json::Value::Array(pair) => {
                    let pair: Vec<i64> = pair.iter().map(|v| v.as_i64().unwrap()).collect();
                    assert_eq!(vec![kpi.numerator, kpi.denominator], pair, "{indicator} {period}");
                }
                number => assert_close(kpi.value, number.as_f64().unwrap(), 1e-9),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 38);

    let b05 = client.get_kpi(kpi_request("PACNAM", "B05", "2022")).await.unwrap().into_inner();
    assert_close(b05.value, 10.34, 0.005);
    assert_eq!(b05.status(), KpiStatus::NotMet);
    assert_close(b05.achievement.unwrap(), 0.6897, 0.0001);
    let c02 = client.get_kpi(kpi_request("PACNAM", "C02", "2022")).await.unwrap().into_inner();
    assert_close(c02.achievement.unwrap(), 1.37, 1e-9);
    assert_eq!(c02.status(), KpiStatus::Met);
    let scorecard = client.get_scorecard(district_scorecard_2022()).await.unwrap().into_inner();
    let not_met = indicators_with_status(&scorecard.entries, KpiStatus::NotMet);
    assert!(not_met.contains(&"B05") && not_met.contains(&"B06"), "{not_met:?}");

    // A second upload of every file changes nothing.
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let result = app.upload(&name, &std::fs::read(file).unwrap(), false).await.unwrap();
        assert_eq!(result.status, "unchanged", "{name}");
    }
}
