//! `kpi-loadgen floor`: what reading a corpus costs with calamine alone, the floor the importer
//! is measured against. Each file is opened with `open_workbook_auto_from_rs` and every cell of
//! every sheet is visited, one file after the other, in this process: the corpus is the
//! project's own, trusted, never a user's upload. With `--stages`, the importer's own reading
//! is timed the same way, to show where its time goes.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use calamine::{Data, Reader, open_workbook_auto_from_rs};

use crate::cli::FloorArgs;

pub fn run(args: &FloorArgs) -> Result<()> {
    let mut files = Vec::new();
    for folder in &args.folders {
        collect(folder, &mut files)?;
    }
    files.sort();
    let started = Instant::now();
    let mut cells = 0usize;
    for file in &files {
        cells += visit(file).with_context(|| format!("{}", file.display()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("calamine floor: {} files, {cells} non-empty cells in {seconds:.2} s", files.len());
    if args.stages {
        let sniffing = time_stage(&files, |bytes| kpi_importer::workbook::sniff(bytes).is_ok())?;
        println!("importer pre-checks (sniff): {sniffing:.2} s, {:.2}× floor", sniffing / seconds);
        let reading = time_stage(&files, |bytes| kpi_importer::workbook::read_sheets(bytes).is_ok())?;
        println!("importer reading (read_sheets): {reading:.2} s, {:.2}× floor", reading / seconds);
    }
    if let Some(catalog) = &args.catalog {
        let text = std::fs::read_to_string(catalog).with_context(|| format!("{}", catalog.display()))?;
        let catalog = kpi_core::Catalog::from_toml(&text)?;
        let checking = time_checks(&files, &catalog)?;
        println!("importer checking (parse_sheets): {checking:.2} s, {:.2}× floor", checking / seconds);
    }
    Ok(())
}

/// Seconds the importer's checks take over every file's cells (read beforehand, untimed);
/// every file must pass them.
fn time_checks(files: &[PathBuf], catalog: &kpi_core::Catalog) -> Result<f64> {
    let overrides = kpi_importer::Overrides::default();
    let mut seconds = 0.0;
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
        let sheets = kpi_importer::workbook::read_sheets(&bytes);
        let started = Instant::now();
        let checked = kpi_importer::parse_sheets("report.xlsx", &sheets, catalog, &overrides, kpi_importer::Lang::Vi);
        seconds += started.elapsed().as_secs_f64();
        anyhow::ensure!(checked.is_ok(), "{} failed the importer's checks: {checked:?}", file.display());
    }
    Ok(seconds)
}

/// Seconds `stage` takes over every file, one after the other; every file must pass it.
fn time_stage(files: &[PathBuf], stage: impl Fn(&[u8]) -> bool) -> Result<f64> {
    let started = Instant::now();
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
        anyhow::ensure!(stage(&bytes), "{} failed the importer's stage", file.display());
    }
    Ok(started.elapsed().as_secs_f64())
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_file() {
        files.push(path.to_owned());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))? {
        let path = entry?.path();
        let workbook = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["xlsx", "xlsm", "xlsb", "xls", "ods"].contains(&e.to_ascii_lowercase().as_str()));
        if path.is_dir() || workbook {
            collect(&path, files)?;
        }
    }
    Ok(())
}

/// The non-empty cells of every sheet of one workbook.
fn visit(path: &Path) -> Result<usize> {
    let bytes = std::fs::read(path)?;
    let mut workbook = open_workbook_auto_from_rs(Cursor::new(bytes))?;
    let mut cells = 0;
    for name in workbook.sheet_names() {
        let range = workbook.worksheet_range(&name)?;
        cells += range.used_cells().filter(|(_, _, data)| !matches!(data, Data::Empty)).count();
    }
    Ok(cells)
}
