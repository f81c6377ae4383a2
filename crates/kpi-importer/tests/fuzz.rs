//! A deterministic, structure-aware mutation test of the whole read path: a few thousand
//! seeded mutations of reports the project writes itself (as `.xlsx`, `.xls` and `.ods`), read
//! by parse workers of the real binary and checked against the report contract.
//!
//! Each mutation must end as an accepted or rejected file: the pre-checks must catch whatever
//! would make calamine exhaust memory or time, so no worker may die or miss its deadline (a
//! panic the worker catches is a clean rejection). Mutations:
//! - zip workbooks: bytes flipped inside an entry; a cell reference, dimension, count or
//!   repeat attribute set to an extreme value or requoted; an entry dropped or truncated;
//! - `.xls`: a record's length, a sheet's `lbPlyPos`, DIMENSIONS fields or cell coordinates
//!   set to extreme values; bytes flipped in a record; a sheet hidden in an unknown record;
//! - any format: bytes flipped in the container itself.
//!
//! `KPI_FUZZ_CASES` (default 5,000) and `KPI_FUZZ_SEED` (default 1) set the run; a longer one
//! is `KPI_FUZZ_CASES=100000 cargo test --release -p kpi-importer --test fuzz -- --nocapture`.
//! A failing case is written to the temporary directory to be replayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use kpi_core::{Catalog, Period, UnitCode};
use kpi_importer::hostile::{self, biff};
use kpi_importer::template::demo_report;
use kpi_importer::workbook::read_sheets;
use kpi_importer::{IsolationConfig, Lang, SheetReader, WorkerCommand, parse_sheets};
use kpi_store::test_support::{SeededRng as Rng, env_number};

const ATTRIBUTES: &[&str] = &[
    "r",
    "ref",
    "count",
    "uniqueCount",
    "spans",
    "s",
    "t",
    "table:number-rows-repeated",
    "table:number-columns-repeated",
    "table:number-columns-spanned",
    "office:value",
    "office:value-type",
];

const EXTREME_TEXT: &[&str] = &[
    "0",
    "-1",
    "1",
    "6000",
    "65536",
    "1048576",
    "1048577",
    "2147483647",
    "4294967295",
    "4294967296",
    "99999999999",
    "A99999999999",
    "XFD1048576",
    "XFE1",
    "ZZZZZZ1",
    "A0",
    "A1:XFD1048576",
    "B2:A1",
    "",
    "1e308",
    "NaN",
    "str",
    "e",
];

const EXTREME_U32: &[u32] = &[0, 1, 255, 256, 65_535, 65_536, 1_048_576, 2_000_000, 0x7FFF_FFFF, u32::MAX];

fn flip_bytes(rng: &mut Rng, data: &mut [u8]) {
    if data.is_empty() {
        return;
    }
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len());
        data[at] = rng.next_u64() as u8;
    }
}

/// Sets one attribute value of an XML part to an extreme value, or requotes it.
fn edit_attribute(rng: &mut Rng, xml: &str) -> String {
    let name = rng.pick(ATTRIBUTES);
    let needle = format!(" {name}=\"");
    let hits: Vec<usize> = xml.match_indices(&needle).map(|(at, _)| at + needle.len()).collect();
    if hits.is_empty() {
        return xml.to_owned();
    }
    let start = *rng.pick(&hits);
    let end = xml[start..].find('"').map_or(start, |len| start + len);
    let value = if rng.below(4) == 0 { xml[start..end].to_owned() } else { (*rng.pick(EXTREME_TEXT)).to_owned() };
    if rng.below(3) == 0 {
        // Legal XML the naive scanners missed: spaces around `=` and single quotes.
        let open = start - needle.len();
        format!("{} {name} = '{value}'{}", &xml[..open], &xml[end + 1..])
    } else {
        format!("{}{value}{}", &xml[..start], &xml[end..])
    }
}

fn mutate_zip(rng: &mut Rng, bytes: &[u8]) -> (String, Vec<u8>) {
    let Some(mut entries) = hostile::zip_entries(bytes) else { return ("unchanged".into(), bytes.to_vec()) };
    let index = rng.below(entries.len());
    let name = entries[index].0.clone();
    let what = match rng.below(10) {
        0..=4 => {
            let Ok(xml) = std::str::from_utf8(&entries[index].1) else {
                return ("binary entry".into(), bytes.to_vec());
            };
            entries[index].1 = edit_attribute(rng, xml).into_bytes();
            "attribute edited"
        }
        5..=7 => {
            flip_bytes(rng, &mut entries[index].1);
            "bytes flipped"
        }
        8 => {
            let keep = rng.below(entries[index].1.len() + 1);
            entries[index].1.truncate(keep);
            "truncated"
        }
        _ => {
            entries.remove(index);
            "dropped"
        }
    };
    (format!("{name}: {what}"), hostile::zip_of(&entries))
}

/// The offsets of the records of a BIFF stream, in order.
fn record_offsets(stream: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 4 <= stream.len() {
        offsets.push(at);
        at += 4 + usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]));
    }
    offsets
}

fn kind_at(stream: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([stream[at], stream[at + 1]])
}

fn mutate_xls(rng: &mut Rng, bytes: &[u8]) -> (String, Vec<u8>) {
    let Some(mut stream) = hostile::xls_stream_of(bytes) else { return ("unchanged".into(), bytes.to_vec()) };
    let offsets = record_offsets(&stream);
    let of_kind = |kinds: &[u16]| -> Vec<usize> {
        offsets.iter().copied().filter(|&at| kinds.contains(&kind_at(&stream, at))).collect()
    };
    let extreme = *rng.pick(EXTREME_U32);
    let what = match rng.below(7) {
        0 => {
            let at = *rng.pick(&offsets);
            let length = if rng.below(2) == 0 { extreme as u16 } else { rng.next_u64() as u16 };
            stream[at + 2..at + 4].copy_from_slice(&length.to_le_bytes());
            "record length"
        }
        1 => {
            let sheets = of_kind(&[biff::BOUND_SHEET]);
            let Some(&at) = sheets.first() else { return ("no sheet".into(), bytes.to_vec()) };
            let target = if rng.below(2) == 0 { *rng.pick(&offsets) as u32 } else { extreme };
            stream[at + 4..at + 8].copy_from_slice(&target.to_le_bytes());
            "lbPlyPos"
        }
        2 => {
            let dims = of_kind(&[biff::DIMENSIONS]);
            let Some(&at) = dims.first() else { return ("no dimensions".into(), bytes.to_vec()) };
            let field = rng.below(4);
            let (offset, width) = [(4, 4), (8, 4), (12, 2), (14, 2)][field];
            stream[at + offset..at + offset + width].copy_from_slice(&extreme.to_le_bytes()[..width]);
            "DIMENSIONS field"
        }
        3 => {
            let cells = of_kind(&[biff::NUMBER, biff::LABEL, biff::BOOLERR]);
            let Some(&at) = cells.get(rng.below(cells.len())) else { return ("no cells".into(), bytes.to_vec()) };
            let offset = at + 4 + 2 * rng.below(2);
            stream[offset..offset + 2].copy_from_slice(&(extreme as u16).to_le_bytes());
            "cell coordinate"
        }
        4 => {
            let at = *rng.pick(&offsets);
            let end = (at + 4 + usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]))).min(stream.len());
            flip_bytes(rng, &mut stream[at + 4..end]);
            "record bytes flipped"
        }
        5 => {
            hide_sheet_in_unknown_record(&mut stream, extreme);
            "sheet hidden in an unknown record"
        }
        _ => {
            let keep = rng.below(stream.len());
            stream.truncate(keep);
            "stream truncated"
        }
    };
    (what.into(), hostile::xls_of(&stream))
}

/// Appends a copy of the first sheet, with extreme DIMENSIONS, inside an unknown record, and
/// points the first BoundSheet8 at it.
fn hide_sheet_in_unknown_record(stream: &mut Vec<u8>, rows: u32) {
    let mut hidden = hostile::record(biff::BOF, &hostile::bof(0x0010));
    hidden.extend(hostile::record(biff::DIMENSIONS, &hostile::dimensions(0, rows, 0, 256)));
    hidden.extend(hostile::record(biff::EOF, &[]));
    let Some(&at) = record_offsets(stream).iter().find(|&&at| kind_at(stream, at) == biff::BOUND_SHEET) else { return };
    let target = (stream.len() + 4) as u32;
    stream[at + 4..at + 8].copy_from_slice(&target.to_le_bytes());
    stream.extend(hostile::record(0x1234, &hidden));
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> (String, Vec<u8>) {
    if rng.below(10) == 0 {
        let mut bytes = seed.to_vec();
        flip_bytes(rng, &mut bytes);
        return ("container bytes flipped".into(), bytes);
    }
    if seed.starts_with(b"PK") { mutate_zip(rng, seed) } else { mutate_xls(rng, seed) }
}

/// The outcome of one file: `accepted`, or its first error code.
async fn outcome(reader: &SheetReader, catalog: &Catalog, bytes: Vec<u8>) -> (String, String) {
    let sheets = reader.read(Arc::new(bytes)).await.expect("the worker pool itself never fails");
    match parse_sheets("fuzz", &sheets, catalog, &Default::default(), Lang::En) {
        Ok(_) => ("accepted".into(), String::new()),
        Err(rejected) => {
            let error = rejected.errors.into_iter().next().expect("a rejected file has an error");
            (error.code.to_owned(), error.message)
        }
    }
}

#[tokio::test]
async fn mutated_workbooks_are_accepted_or_rejected_never_fatal() {
    let (cases, seed) = (env_number("KPI_FUZZ_CASES", 5_000), env_number("KPI_FUZZ_SEED", 1));
    let catalog = Arc::new(kpi_store::load_catalog_file(None).unwrap());
    let xlsx = demo_report(&catalog, &UnitCode::parse("BOCBO").unwrap(), Period::Year(2023)).unwrap();
    let sheets = read_sheets(&xlsx).unwrap();
    let seeds = Arc::new(vec![xlsx, hostile::xls_from_cells(&sheets), hostile::ods_from_cells(&sheets)]);
    let command = WorkerCommand::binary(env!("CARGO_BIN_EXE_kpi-parse-worker"));
    let reader = SheetReader::start(command, IsolationConfig::default()).await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    let mut histogram: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in 0..cases {
        let (reader, catalog, seeds) = (reader.clone(), catalog.clone(), seeds.clone());
        tasks.spawn(async move {
            let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(case));
            let seed_file = &seeds[rng.below(seeds.len())];
            let (what, bytes) = mutate(&mut rng, seed_file);
            let (code, message) = outcome(&reader, &catalog, bytes.clone()).await;
            (case, what, bytes, code, message)
        });
        // Keep a few reads in flight: the pool's two workers stay busy.
        while tasks.len() >= 4 || (case + 1 == cases && !tasks.is_empty()) {
            let (case, what, bytes, code, message) = tasks.join_next().await.unwrap().unwrap();
            let fatal = code == "too_slow" || (code == "reader_failed" && !message.contains("it panicked"));
            if fatal {
                let path = std::env::temp_dir().join(format!("kpi-fuzz-seed{seed}-case{case}.bin"));
                std::fs::write(&path, &bytes).ok();
                failures.push(format!("case {case} ({what}): {code}: {message} — saved as {}", path.display()));
            }
            *histogram.entry(code).or_default() += 1;
        }
    }
    eprintln!("{cases} mutations (seed {seed}): {histogram:?}");
    assert!(failures.is_empty(), "{} fatal outcomes:\n{}", failures.len(), failures.join("\n"));
    assert!(histogram.get("accepted").copied().unwrap_or(0) > 0, "some mutations keep a valid report");
    assert!(histogram.len() > 5, "the mutations reach many error paths: {histogram:?}");
}
