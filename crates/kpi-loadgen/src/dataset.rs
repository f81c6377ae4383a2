//! `kpi-loadgen dataset`: a national catalog (the tree of the kpi-store `national_scale`
//! bench: country, provinces, districts, communes) and a demo report for every reporting unit
//! and year, ready for `kpi-import`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use kpi_core::{Catalog, Period, UnitCode};
use kpi_store::SHIPPED_CATALOG;

use crate::cli::DatasetArgs;

pub async fn write(args: &DatasetArgs) -> Result<()> {
    let text = national_catalog(args.provinces, args.districts, args.communes)?;
    let catalog = Catalog::from_toml(&text).context("the generated catalog")?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let catalog_path = args.out.join("catalog.toml");
    std::fs::write(&catalog_path, &text).with_context(|| format!("cannot write {}", catalog_path.display()))?;
    println!("{}: {} units", catalog_path.display(), catalog.units.len());
    let last = catalog.resolution.term_end_year;
    if let Some(url) = &args.database_url {
        return store_directly(&catalog, url, last - i32::from(args.years) + 1..=last).await;
    }
    for year in last - i32::from(args.years) + 1..=last {
        write_year(&catalog, &args.out.join("reports").join(year.to_string()), year)?;
    }
    print_next_steps(&args.out);
    Ok(())
}

/// The shipped catalog's resolution, indicators and targets over a national tree in which
/// every commune reports all 19 indicators and every province C01 and C02 — the catalog of
/// `national_catalog()` in crates/kpi-store/benches/national_scale.rs, with the tree's size
/// as parameters. The percent indicators' reporter is the country, which reports them.
pub fn national_catalog(provinces: u16, districts: u16, communes: u16) -> Result<String> {
    let missing = |what: &str| anyhow!("the shipped catalog has no {what:?} any more");
    let indicators_start = SHIPPED_CATALOG.find("[[indicators]]").ok_or_else(|| missing("[[indicators]]"))?;
    let resolution_end =
        SHIPPED_CATALOG.find("# The indicators each kind").ok_or_else(|| missing("# The indicators each kind"))?;
    let all: Vec<String> = ["A", "B"]
        .iter()
        .flat_map(|letter| (1..=7).map(move |n| format!("\"{letter}{n:02}\"")))
        .chain((1..=5).map(|n| format!("\"C{n:02}\"")))
        .collect();
    let mut text = SHIPPED_CATALOG[..resolution_end].to_owned();
    writeln!(text, "[reports_by_kind]\ncommune = [{}]\n", all.join(", "))?;
    text.push_str(
        "[[units]]\ncode = \"VN\"\nname = \"Việt Nam\"\nkind = \"country\"\nreports = [\"C01\", \"C02\"]\n\n",
    );
    for p in 0..provinces {
        writeln!(
            text,
            "[[units]]\ncode = \"P{p:02}\"\nname = \"Tỉnh {p}\"\nkind = \"province\"\nparent = \"VN\"\nreports = [\"C01\", \"C02\"]\n"
        )?;
        for d in 0..districts {
            writeln!(
                text,
                "[[units]]\ncode = \"P{p:02}D{d:02}\"\nname = \"Huyện {p}-{d}\"\nkind = \"district\"\nparent = \"P{p:02}\"\n"
            )?;
            for c in 0..communes {
                writeln!(
                    text,
                    "[[units]]\ncode = \"P{p:02}D{d:02}C{c:02}\"\nname = \"Xã {p}-{d}-{c}\"\nkind = \"commune\"\nparent = \"P{p:02}D{d:02}\"\n"
                )?;
            }
        }
    }
    text.push_str(&SHIPPED_CATALOG[indicators_start..].replace("reported_by = \"VPHDND\"", "reported_by = \"VN\""));
    Ok(text)
}

/// One demo report per reporting unit into `dir`, named as `kpi-import demo-data` names them,
/// written by one thread per core (the reports of a national year take minutes otherwise).
fn write_year(catalog: &Catalog, dir: &Path, year: i32) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let started = Instant::now();
    let units: Vec<&UnitCode> = catalog.units.iter().filter(|u| !u.reports.is_empty()).map(|u| &u.code).collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        let writers: Vec<_> = units
            .chunks(units.len().div_ceil(threads).max(1))
            .map(|chunk| scope.spawn(move || write_reports(catalog, dir, chunk, Period::Year(year))))
            .collect();
        writers.into_iter().try_for_each(|writer| writer.join().map_err(|_| anyhow!("a writer thread panicked"))?)
    })?;
    println!("{}: {} reports in {:.1?}", dir.display(), units.len(), started.elapsed());
    Ok(())
}

fn write_reports(catalog: &Catalog, dir: &Path, units: &[&UnitCode], period: Period) -> Result<()> {
    for unit in units {
        let bytes = kpi_importer::template::demo_report(catalog, unit, period)?;
        let path = dir.join(format!("{}-{}.xlsx", unit.as_str().to_lowercase(), period.code()));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Writers storing revisions at once, as several `kpi-import` runs would.
const WRITERS: usize = 8;

/// Loads the catalog and stores one revision per reporting unit and year, with the figures
/// of its demo report, eight writers at a time; prints the revisions per second.
async fn store_directly(catalog: &Catalog, url: &str, years: std::ops::RangeInclusive<i32>) -> Result<()> {
    let store = kpi_store::Store::connect(url).await?;
    store.load_catalog(catalog).await?;
    let units: Vec<UnitCode> = catalog.units.iter().filter(|u| !u.reports.is_empty()).map(|u| u.code.clone()).collect();
    let catalog = std::sync::Arc::new(catalog.clone());
    let started = Instant::now();
    let mut revisions = 0usize;
    for year in years {
        let mut writers = tokio::task::JoinSet::new();
        for chunk in units.chunks(units.len().div_ceil(WRITERS).max(1)) {
            let (store, catalog, chunk) = (store.clone(), catalog.clone(), chunk.to_vec());
            writers.spawn(async move {
                for unit in &chunk {
                    store.write_revision(&demo_revision(&catalog, unit, year)?).await?;
                }
                anyhow::Ok(chunk.len())
            });
        }
        while let Some(written) = writers.join_next().await {
            revisions += written??;
        }
        println!("{year}: stored ({revisions} revisions so far, {:.1?})", started.elapsed());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{revisions} revisions in {seconds:.1} s ({:.0} revisions/s)", revisions as f64 / seconds);
    Ok(())
}

/// A unit's demo report for a year, read back as the importer reads it, as a revision.
fn demo_revision(catalog: &Catalog, unit: &UnitCode, year: i32) -> Result<kpi_store::NewRevision> {
    let bytes = kpi_importer::template::demo_report(catalog, unit, Period::Year(year))?;
    let report =
        kpi_importer::parse_workbook("demo.xlsx", &bytes, catalog, &Default::default(), kpi_importer::Lang::En)
            .map_err(|rejected| anyhow!("the demo report of {unit} is rejected: {:?}", rejected.errors))?;
    Ok(kpi_store::NewRevision {
        unit: unit.clone(),
        period: Period::Year(year),
        file_name: format!("{}-{year}.xlsx", unit.as_str().to_lowercase()),
        sha256: kpi_importer::sha256_hex(&bytes),
        imported_by: "kpi-loadgen".into(),
        prepared_by: report.prepared_by,
        prepared_on: report.prepared_on,
        warnings: Vec::new(),
        values: report
            .values
            .into_iter()
            .map(|v| kpi_store::NewValue { indicator: v.indicator, figure: v.figure, note: v.note })
            .collect(),
        data_issues: Vec::new(),
    })
}

fn print_next_steps(out: &Path) {
    let (catalog, reports): (PathBuf, PathBuf) = (out.join("catalog.toml"), out.join("reports"));
    let database = format!("sqlite://{}?mode=rwc", out.join("kpi.db").display());
    println!("\nNext:");
    println!("  kpi-import --catalog {} import --database-url '{database}' {}", catalog.display(), reports.display());
    println!("  kpi-server --catalog {} --database-url '{database}' &", catalog.display());
    println!("  kpi-loadgen run --scenario scorecard --unit VN --period 2025 --server-pid $!");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_national_catalog_is_valid_and_keeps_the_shipped_indicators_and_targets() -> Result<()> {
        let catalog = Catalog::from_toml(&national_catalog(2, 3, 4)?)?;
        let shipped = kpi_store::load_catalog_file(None)?;
        assert_eq!(catalog.units.len(), 1 + 2 + 2 * 3 + 2 * 3 * 4);
        assert_eq!(catalog.units[0].code.as_str(), "VN");
        assert_eq!(catalog.indicators.len(), shipped.indicators.len());
        assert_eq!(catalog.targets.len(), shipped.targets.len());
        assert!(catalog.targets.iter().all(|t| t.unit.as_str() == "VN"));
        let commune = catalog.unit(&UnitCode::parse("P01D02C03")?).ok_or_else(|| anyhow!("no commune"))?;
        assert_eq!(commune.reports.len(), 19);
        Ok(())
    }
}
