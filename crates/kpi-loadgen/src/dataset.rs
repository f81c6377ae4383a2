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

pub fn write(args: &DatasetArgs) -> Result<()> {
    let text = national_catalog(args.provinces, args.districts, args.communes)?;
    let catalog = Catalog::from_toml(&text).context("the generated catalog")?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let catalog_path = args.out.join("catalog.toml");
    std::fs::write(&catalog_path, &text).with_context(|| format!("cannot write {}", catalog_path.display()))?;
    println!("{}: {} units", catalog_path.display(), catalog.units.len());
    let last = catalog.resolution.term_end_year;
    for year in last - i32::from(args.years) + 1..=last {
        write_year(&catalog, &args.out.join("reports").join(year.to_string()), year)?;
    }
    print_next_steps(&args.out);
    Ok(())
}

/// The shipped catalog's resolution, indicators and targets over a national tree in which
/// every commune reports all 19 indicators and every province C01 and C02 — the catalog of
/// `national_catalog()` in crates/kpi-store/benches/national_scale.rs, with the tree's size
/// as parameters. As there, the percent indicators' reporter is the country, which reports
/// nothing: C01 and C02 have no data above the provinces.
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
    text.push_str("[[units]]\ncode = \"VN\"\nname = \"Việt Nam\"\nkind = \"country\"\n\n");
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
