//! National scale: 63 provinces × 12 districts × 14 communes (10,584 communes), each
//! reporting the 19 indicators for several years, then the queries the service runs over
//! the whole tree. Prints timings; speed is measured here, never asserted in tests.
//!
//! `cargo bench -p kpi-store` uses a fresh SQLite file; `DATABASE_URL=postgres://…` runs it on
//! PostgreSQL (the database must be empty). `KPI_BENCH_YEARS` sets how many years (default 10,
//! about 2 million values).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::time::Instant;

use kpi_core::{Catalog, Figure, IndicatorCode, Period, UnitCode};
use kpi_store::{NewRevision, NewValue, SHIPPED_CATALOG, Store};

const PROVINCES: usize = 63;
const DISTRICTS_PER_PROVINCE: usize = 12;
const COMMUNES_PER_DISTRICT: usize = 14;
/// Files per transaction, as `kpi-import` groups them.
const FILES_PER_COMMIT: usize = 200;

/// The shipped catalog's resolution and indicators over a national unit tree where every
/// commune reports all 19 indicators; the percent indicators' reporter is the country itself.
fn national_catalog() -> String {
    let indicators_start = SHIPPED_CATALOG.find("[[indicators]]").unwrap();
    let resolution_end = SHIPPED_CATALOG.find("# The indicators each kind").unwrap();
    let all: Vec<String> = (1..=7)
        .map(|n| format!("\"A{n:02}\""))
        .chain((1..=7).map(|n| format!("\"B{n:02}\"")))
        .chain((1..=5).map(|n| format!("\"C{n:02}\"")))
        .collect();
    let mut text = SHIPPED_CATALOG[..resolution_end].to_owned();
    writeln!(text, "[reports_by_kind]\ncommune = [{}]\n", all.join(", ")).unwrap();
    text.push_str("[[units]]\ncode = \"VN\"\nname = \"Việt Nam\"\nkind = \"country\"\n\n");
    for p in 0..PROVINCES {
        writeln!(text, "[[units]]\ncode = \"P{p:02}\"\nname = \"Tỉnh {p}\"\nkind = \"province\"\nparent = \"VN\"\nreports = [\"C01\", \"C02\"]\n").unwrap();
        for d in 0..DISTRICTS_PER_PROVINCE {
            writeln!(text, "[[units]]\ncode = \"P{p:02}D{d:02}\"\nname = \"Huyện {p}-{d}\"\nkind = \"district\"\nparent = \"P{p:02}\"\n").unwrap();
            for c in 0..COMMUNES_PER_DISTRICT {
                writeln!(text, "[[units]]\ncode = \"P{p:02}D{d:02}C{c:02}\"\nname = \"Xã {p}-{d}-{c}\"\nkind = \"commune\"\nparent = \"P{p:02}D{d:02}\"\n").unwrap();
            }
        }
    }
    text.push_str(&SHIPPED_CATALOG[indicators_start..].replace("reported_by = \"VPHDND\"", "reported_by = \"VN\""));
    text
}

fn figures(seed: usize) -> Vec<NewValue> {
    let codes = [
        "A01", "A02", "A03", "A04", "A05", "A06", "A07", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "C01", "C02",
        "C03", "C04", "C05",
    ];
    codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let base = 10 + ((seed * 31 + i * 7) % 40) as i64;
            let figure = match code.as_bytes()[0] {
                b'B' => Figure::Ratio { numerator: base - (seed % 3) as i64, denominator: base },
                b'C' if *code == "C01" || *code == "C02" => Figure::Percent(20.0 + (seed % 50) as f64),
                b'C' if *code == "C03" || *code == "C04" => Figure::Ratio { numerator: 1, denominator: 1 },
                _ => Figure::Count(base),
            };
            NewValue { indicator: IndicatorCode::parse(code).unwrap(), figure, note: None }
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let years: i32 = std::env::var("KPI_BENCH_YEARS").ok().and_then(|y| y.parse().ok()).unwrap_or(10);
    let path = std::env::temp_dir().join(format!("kpi-bench-{}.db", std::process::id()));
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", path.display()));
    let store = Store::connect(&url).await.unwrap();
    println!("backend: {}", store.backend_name());

    let started = Instant::now();
    let catalog = Catalog::from_toml(&national_catalog()).unwrap();
    let changes = store.load_catalog(&catalog).await.unwrap();
    println!("catalog: {} units, {} rows inserted in {:.1?}", catalog.units.len(), changes.inserted, started.elapsed());

    let communes: Vec<UnitCode> =
        catalog.units.iter().filter(|u| u.kind == "commune").map(|u| u.code.clone()).collect();
    let started = Instant::now();
    let mut revisions = 0usize;
    let writers = 8;
    for year in 2025 - years + 1..=2025 {
        let mut tasks = Vec::new();
        for chunk in communes.chunks(communes.len().div_ceil(writers)) {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                let revisions: Vec<NewRevision> = chunk
                    .iter()
                    .enumerate()
                    .map(|(index, unit)| NewRevision {
                        unit: unit.clone(),
                        period: Period::Year(year),
                        file_name: format!("{unit}-{year}.xlsx"),
                        sha256: format!("{unit}-{year}"),
                        imported_by: "bench".into(),
                        prepared_by: None,
                        prepared_on: None,
                        warnings: Vec::new(),
                        values: figures(index + year as usize),
                        data_issues: Vec::new(),
                    })
                    .collect();
                // As kpi-import stores them: groups of files per transaction.
                for group in revisions.chunks(FILES_PER_COMMIT) {
                    for outcome in store.write_revisions(group).await.unwrap() {
                        outcome.unwrap();
                    }
                }
                chunk.len()
            }));
        }
        for task in tasks {
            revisions += task.await.unwrap();
        }
    }
    let elapsed = started.elapsed();
    println!(
        "import: {revisions} revisions, {} values in {elapsed:.1?} ({:.0} revisions/s)",
        revisions * 19,
        revisions as f64 / elapsed.as_secs_f64()
    );

    let root = UnitCode::parse("VN").unwrap();
    let province = UnitCode::parse("P07").unwrap();
    let district = UnitCode::parse("P07D03").unwrap();
    let b05 = [IndicatorCode::parse("B05").unwrap()];
    let all: Vec<IndicatorCode> = catalog.indicators.iter().map(|i| i.code.clone()).collect();
    let year = [Period::Year(2025)];
    let trend: Vec<Period> = (2025 - years + 1..=2025).map(Period::Year).collect();
    let cases: [(&str, &UnitCode, &[IndicatorCode], &[Period]); 5] = [
        ("one KPI, whole country", &root, &b05, &year),
        ("scorecard (19 KPIs), whole country", &root, &all, &year),
        ("trend over every year, whole country", &root, &b05, &trend),
        ("scorecard, one province", &province, &all, &year),
        ("scorecard, one district", &district, &all, &year),
    ];
    store.snapshot().await.unwrap();
    for (name, unit, indicators, periods) in cases {
        let runs = 5;
        let mut timings = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let kpis = store.kpis(unit, indicators, periods).await.unwrap();
            timings.push(started.elapsed());
            // Percent indicators come from their one reporter, which no commune is.
            assert!(kpis.iter().all(|k| k.figure.is_some() || k.indicator.as_str().starts_with("C0")));
        }
        timings.sort();
        println!("{name}: median {:.1?}, best {:.1?} over {runs} runs", timings[runs / 2], timings[0]);
    }
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", path.display())).ok();
    }
}
