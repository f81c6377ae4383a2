//! The project's own report workbooks for 2022, made with the importer's writer: figures
//! chosen so the district matches the 2023 review (993 staff, B05 15/145 = 10.34%, B06
//! 485/664 = 73.04%, C02 27.4% = 137% of target). Four communes report; six do not.

use kpi_importer::template::{Input, ReportContent, Row, write_report};

pub enum Cell {
    /// A count or a percent, in the value column.
    Value(f64),
    Ratio(f64, f64),
}

pub fn report(unit: &str, period: &str, rows: &[(&str, Cell)]) -> Vec<u8> {
    let content = ReportContent {
        unit_name: None,
        unit_code: Some(unit.to_owned()),
        period: Some(period.to_owned()),
        prepared_by: Some("Nông Thị Hoa".to_owned()),
        prepared_on: Some("12/01/2023".to_owned()),
        rows: rows
            .iter()
            .map(|(code, cell)| match cell {
                Cell::Value(value) => {
                    Row { code: (*code).to_owned(), value: Some(Input::Number(*value)), ..Row::default() }
                }
                Cell::Ratio(numerator, denominator) => Row {
                    code: (*code).to_owned(),
                    numerator: Some(Input::Number(*numerator)),
                    denominator: Some(Input::Number(*denominator)),
                    ..Row::default()
                },
            })
            .collect(),
        protect: false,
    };
    write_report(&content).unwrap()
}

/// (file name, bytes) of the 2022 fixture reports.
pub fn district_2022() -> Vec<(String, Vec<u8>)> {
    use Cell::{Ratio, Value};
    let mut files = vec![
        (
            "pnv-2022.xlsx".to_owned(),
            report(
                "PNV",
                "Năm 2022",
                &[
                    ("A01", Value(145.0)),
                    ("A02", Value(111.0)),
                    ("A04", Value(34.0)),
                    ("B04", Ratio(145.0, 145.0)),
                    ("B05", Ratio(15.0, 145.0)),
                    ("C04", Ratio(12.0, 12.0)),
                ],
            ),
        ),
        (
            "pgddt-2022.xlsx".to_owned(),
            report("PGDDT", "2022", &[("A01", Value(664.0)), ("A05", Value(664.0)), ("B06", Ratio(485.0, 664.0))]),
        ),
        ("vphdnd-2022.xlsx".to_owned(), report("VPHDND", "Năm 2022", &[("C01", Value(47.0)), ("C02", Value(27.4))])),
    ];
    // 184 commune staff over four communes of different sizes.
    for (unit, staff, trained) in
        [("BOCBO", 40.0, 40.0), ("COLINH", 52.0, 50.0), ("XUANLA", 46.0, 46.0), ("CAOTAN", 46.0, 45.0)]
    {
        files.push((
            format!("{}-2022.xlsx", unit.to_lowercase()),
            report(
                unit,
                "Năm 2022",
                &[
                    ("A01", Value(staff)),
                    ("A03", Value(staff)),
                    ("B01", Ratio(trained, staff)),
                    ("C03", Ratio(1.0, 1.0)),
                    ("C05", Value(0.0)),
                ],
            ),
        ));
    }
    files
}
