//! How the review is laid out: a summary sheet, a sheet per indicator group with a native bar
//! chart per indicator (the children against the target), a trend sheet with a native line
//! chart per indicator (the target as a second series) under its table, and the reporting
//! progress. Every
//! sheet has frozen headings, set column widths and an A4 landscape print set-up fitted to one
//! page wide; the document carries a title and an author, and its date is the request's, so
//! the same request gives the same bytes.

use kpi_core::{Figure, IndicatorKind, Status};
use kpi_store::Kpi;
use rust_xlsxwriter::{
    Chart, ChartType, Color, DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet,
    XlsxError,
};

use crate::ScorecardRequest;
use crate::data::{RankedBlock, ScorecardData, SummaryRow};
use crate::labels::Labels;

/// A4 in Excel's paper codes.
const PAPER_A4: u8 = 9;
/// Rows a chart takes on a sheet, and its size in pixels.
const CHART_ROWS: u32 = 16;
const CHART_WIDTH: u32 = 560;
const CHART_HEIGHT: u32 = 300;
/// The trend charts sit under the table, as wide as its name and year columns.
const TREND_CHART_WIDTH: u32 = 720;
/// The first data row of the summary and of the trend table (after the title and headings).
const FIRST_ROW: u32 = 4;

/// The formats the review uses.
struct Formats {
    title: Format,
    heading: Format,
    text: Format,
    wrapped: Format,
    count: Format,
    percent_value: Format,
    achievement: Format,
    count_change: Format,
    percent_change: Format,
    met: Format,
    not_met: Format,
    no_data: Format,
}

impl Formats {
    fn new() -> Formats {
        let cell = Format::new().set_border(FormatBorder::Thin).set_align(FormatAlign::VerticalCenter);
        let status =
            |fill: u32, font: u32| cell.clone().set_background_color(Color::RGB(fill)).set_font_color(Color::RGB(font));
        Formats {
            title: Format::new().set_bold().set_font_size(14),
            heading: cell
                .clone()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_background_color(Color::RGB(0xDDEBF7)),
            text: cell.clone(),
            wrapped: cell.clone().set_text_wrap(),
            count: cell.clone().set_num_format("#,##0"),
            percent_value: cell.clone().set_num_format("0.00\"%\""),
            achievement: cell.clone().set_num_format("0%"),
            count_change: cell.clone().set_num_format("+#,##0;-#,##0;0"),
            percent_change: cell.clone().set_num_format("+0.00;-0.00;0.00"),
            met: status(0xC6EFCE, 0x006100),
            not_met: status(0xFFC7CE, 0x9C0006),
            no_data: status(0xD9D9D9, 0x404040),
        }
    }

    /// The number format of an indicator's values.
    fn value(&self, kind: IndicatorKind) -> &Format {
        if kind == IndicatorKind::Count { &self.count } else { &self.percent_value }
    }

    fn status(&self, status: Status) -> &Format {
        match status {
            Status::Met => &self.met,
            Status::NotMet => &self.not_met,
            Status::NoData | Status::NoTarget => &self.no_data,
        }
    }
}

/// The workbook's bytes.
pub fn write(data: &ScorecardData, request: &ScorecardRequest) -> Result<Vec<u8>, XlsxError> {
    let labels = crate::labels::labels(request.lang);
    let formats = Formats::new();
    let mut workbook = Workbook::new();
    let date = request.as_of;
    let created = ExcelDateTime::from_ymd(year_u16(date), month_u8(date), day_u8(date))?;
    workbook.set_properties(
        &DocProperties::new()
            .set_title(format!("{} {} – {} – {}", labels.title, data.resolution.code, data.unit.name, request.period))
            .set_author(labels.author)
            .set_company(data.unit.name.as_str())
            .set_creation_datetime(&created),
    );
    write_summary(workbook.add_worksheet(), data, request, labels, &formats)?;
    for (letter, blocks) in &data.groups {
        write_group(
            workbook.add_worksheet(),
            &format!("{} {letter}", labels.group_sheet),
            blocks,
            request,
            labels,
            &formats,
        )?;
    }
    write_trend(workbook.add_worksheet(), data, request, labels, &formats)?;
    write_progress(workbook.add_worksheet(), data, request, labels, &formats)?;
    workbook.save_to_buffer()
}

/// A4 landscape, one page wide, the heading rows repeated on every page.
fn print_setup(sheet: &mut Worksheet, heading_row: u32) -> Result<(), XlsxError> {
    sheet.set_paper_size(PAPER_A4).set_landscape().set_print_fit_to_pages(1, 0);
    sheet.set_repeat_rows(heading_row, heading_row)?;
    Ok(())
}

fn headings(sheet: &mut Worksheet, row: u32, texts: &[&str], formats: &Formats) -> Result<(), XlsxError> {
    for (column, text) in (0u16..).zip(texts) {
        sheet.write_string_with_format(row, column, *text, &formats.heading)?;
    }
    Ok(())
}

fn widths(sheet: &mut Worksheet, widths: &[f64]) -> Result<(), XlsxError> {
    for (column, width) in (0u16..).zip(widths) {
        sheet.set_column_width(column, *width)?;
    }
    Ok(())
}

/// A number in its cell, or an empty bordered cell when there is none.
fn write_optional(
    sheet: &mut Worksheet,
    row: u32,
    column: u16,
    value: Option<f64>,
    format: &Format,
    formats: &Formats,
) -> Result<(), XlsxError> {
    match value {
        Some(value) => sheet.write_number_with_format(row, column, value, format)?,
        None => sheet.write_blank(row, column, &formats.text)?,
    };
    Ok(())
}

/// A KPI's value in its cell, or an empty bordered cell without data.
fn write_value(
    sheet: &mut Worksheet,
    row: u32,
    column: u16,
    kpi: &Kpi,
    kind: IndicatorKind,
    formats: &Formats,
) -> Result<(), XlsxError> {
    write_optional(sheet, row, column, kpi.figure.map(Figure::value), formats.value(kind), formats)
}

fn write_summary(
    sheet: &mut Worksheet,
    data: &ScorecardData,
    request: &ScorecardRequest,
    labels: &Labels,
    formats: &Formats,
) -> Result<(), XlsxError> {
    sheet.set_name(labels.summary_sheet)?;
    sheet.write_string_with_format(0, 0, format!("{} {}", labels.title, data.resolution.code), &formats.title)?;
    sheet.write_string(1, 0, format!("{} – {} {}", data.unit.name, labels.period, request.period))?;
    let change = match request.compare {
        Some(period) => format!("{} {} {period}", labels.change, labels.against),
        None => labels.change.to_owned(),
    };
    let texts = [
        labels.code,
        labels.indicator,
        labels.unit_of_measure,
        labels.numerator,
        labels.denominator,
        labels.value,
        labels.target,
        labels.achievement,
        labels.status,
        change.as_str(),
        labels.reporting,
    ];
    headings(sheet, FIRST_ROW - 1, &texts, formats)?;
    for (row, line) in (FIRST_ROW..).zip(&data.summary) {
        write_summary_row(sheet, row, line, request, formats)?;
    }
    widths(sheet, &[7.0, 58.0, 14.0, 9.0, 9.0, 10.0, 10.0, 11.0, 17.0, 14.0, 11.0])?;
    sheet.set_freeze_panes(FIRST_ROW, 2)?;
    print_setup(sheet, FIRST_ROW - 1)
}

fn write_summary_row(
    sheet: &mut Worksheet,
    row: u32,
    line: &SummaryRow,
    request: &ScorecardRequest,
    formats: &Formats,
) -> Result<(), XlsxError> {
    let (indicator, kpi) = (&line.indicator, &line.kpi);
    let name = request.lang.pick(&indicator.name, &indicator.name_en);
    sheet.write_string_with_format(row, 0, indicator.code.as_str(), &formats.text)?;
    sheet.write_string_with_format(row, 1, name, &formats.wrapped)?;
    sheet.write_string_with_format(row, 2, &indicator.unit_of_measure, &formats.text)?;
    match kpi.figure {
        Some(Figure::Ratio { numerator, denominator }) => {
            sheet.write_number_with_format(row, 3, numerator as f64, &formats.count)?;
            sheet.write_number_with_format(row, 4, denominator as f64, &formats.count)?;
        }
        _ => {
            sheet.write_blank(row, 3, &formats.text)?;
            sheet.write_blank(row, 4, &formats.text)?;
        }
    }
    write_value(sheet, row, 5, kpi, indicator.kind, formats)?;
    write_optional(sheet, row, 6, kpi.target, formats.value(indicator.kind), formats)?;
    write_optional(sheet, row, 7, kpi.evaluation.achievement, &formats.achievement, formats)?;
    let status = kpi.evaluation.status;
    sheet.write_string_with_format(row, 8, crate::labels::status(request.lang, status), formats.status(status))?;
    let change = line.compared.as_ref().and_then(|before| Some(kpi.figure?.value() - before.figure?.value()));
    let change_format =
        if indicator.kind == IndicatorKind::Count { &formats.count_change } else { &formats.percent_change };
    write_optional(sheet, row, 9, change, change_format, formats)?;
    sheet.write_string_with_format(
        row,
        10,
        format!("{}/{}", kpi.reporting_units, kpi.expected_units),
        &formats.text,
    )?;
    Ok(())
}

fn write_group(
    sheet: &mut Worksheet,
    name: &str,
    blocks: &[RankedBlock],
    request: &ScorecardRequest,
    labels: &Labels,
    formats: &Formats,
) -> Result<(), XlsxError> {
    sheet.set_name(name)?;
    let mut row = 0;
    let mut page_breaks = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        // Two indicators to a printed page, so no chart is cut in two.
        if index > 0 && index % 2 == 0 {
            page_breaks.push(row);
        }
        let indicator = &block.indicator;
        let title = request.lang.pick(&indicator.name, &indicator.name_en);
        sheet.write_string_with_format(row, 0, format!("{} – {title}", indicator.code), &formats.title)?;
        headings(sheet, row + 1, &[labels.rank, labels.unit, labels.value, labels.target], formats)?;
        let first = row + 2;
        for (line, (rank, unit, kpi)) in (first..).zip(&block.entries) {
            sheet.write_number_with_format(line, 0, f64::from(*rank), &formats.text)?;
            sheet.write_string_with_format(line, 1, unit, &formats.text)?;
            write_value(sheet, line, 2, kpi, indicator.kind, formats)?;
            write_optional(sheet, line, 3, kpi.target, formats.value(indicator.kind), formats)?;
        }
        let count = u32::try_from(block.entries.len()).unwrap_or(u32::MAX);
        if count > 0 {
            let last = first + count - 1;
            let mut chart = Chart::new(ChartType::Column);
            chart.title().set_name(&format!("{} – {}", indicator.code, request.period));
            chart
                .add_series()
                .set_name(labels.value)
                .set_categories((name, first, 1, last, 1))
                .set_values((name, first, 2, last, 2));
            let mut target = Chart::new(ChartType::Line);
            target
                .add_series()
                .set_name(labels.target)
                .set_categories((name, first, 1, last, 1))
                .set_values((name, first, 3, last, 3));
            chart.combine(&target);
            chart.set_width(CHART_WIDTH).set_height(CHART_HEIGHT);
            sheet.insert_chart(row, 5, &chart)?;
        }
        row = first + count.max(CHART_ROWS) + 1;
    }
    widths(sheet, &[9.0, 30.0, 11.0, 11.0])?;
    sheet.set_page_breaks(&page_breaks)?;
    sheet.set_freeze_panes(0, 2)?;
    sheet.set_paper_size(PAPER_A4).set_landscape().set_print_fit_to_pages(1, 0);
    Ok(())
}

fn write_trend(
    sheet: &mut Worksheet,
    data: &ScorecardData,
    request: &ScorecardRequest,
    labels: &Labels,
    formats: &Formats,
) -> Result<(), XlsxError> {
    let name = labels.trend_sheet;
    sheet.set_name(name)?;
    sheet.write_string_with_format(
        0,
        0,
        format!("{} {} – {}", labels.title, data.resolution.code, data.unit.name),
        &formats.title,
    )?;
    let years: Vec<String> = data.years.iter().map(ToString::to_string).collect();
    let mut texts = vec![labels.code, labels.indicator];
    texts.extend(years.iter().map(String::as_str));
    headings(sheet, FIRST_ROW - 1, &texts, formats)?;
    let last_column = u16::try_from(data.years.len() + 1).unwrap_or(u16::MAX);
    let mut chart_row = FIRST_ROW + 2 * u32::try_from(data.trends.len()).unwrap_or(0) + 1;
    let mut page_breaks = Vec::new();
    for (index, trend) in data.trends.iter().enumerate() {
        let row = FIRST_ROW + 2 * u32::try_from(index).unwrap_or(0);
        let indicator = &trend.indicator;
        let title = request.lang.pick(&indicator.name, &indicator.name_en);
        sheet.write_string_with_format(row, 0, indicator.code.as_str(), &formats.text)?;
        sheet.write_string_with_format(row, 1, title, &formats.text)?;
        sheet.write_string_with_format(row + 1, 0, "", &formats.text)?;
        sheet.write_string_with_format(row + 1, 1, labels.target, &formats.text)?;
        for (column, point) in (2u16..).zip(&trend.points) {
            write_value(sheet, row, column, point, indicator.kind, formats)?;
            write_optional(sheet, row + 1, column, point.target, formats.value(indicator.kind), formats)?;
        }
        let mut chart = Chart::new(ChartType::Line);
        chart.title().set_name(&format!("{} – {}", indicator.code, data.unit.name));
        let categories = (name, FIRST_ROW - 1, 2, FIRST_ROW - 1, last_column);
        chart.add_series().set_name(labels.value).set_categories(categories).set_values((
            name,
            row,
            2,
            row,
            last_column,
        ));
        chart.add_series().set_name(labels.target).set_categories(categories).set_values((
            name,
            row + 1,
            2,
            row + 1,
            last_column,
        ));
        chart.set_width(TREND_CHART_WIDTH).set_height(CHART_HEIGHT);
        // One chart a row under the table, two to a printed page, none cut in two.
        if index % 2 == 0 {
            page_breaks.push(chart_row);
        }
        sheet.insert_chart(chart_row, 1, &chart)?;
        chart_row += CHART_ROWS;
    }
    sheet.set_page_breaks(&page_breaks)?;
    let mut column_widths = vec![7.0, 50.0];
    column_widths.extend(std::iter::repeat_n(10.0, data.years.len()));
    widths(sheet, &column_widths)?;
    sheet.set_freeze_panes(FIRST_ROW, 2)?;
    print_setup(sheet, FIRST_ROW - 1)
}

fn write_progress(
    sheet: &mut Worksheet,
    data: &ScorecardData,
    request: &ScorecardRequest,
    labels: &Labels,
    formats: &Formats,
) -> Result<(), XlsxError> {
    sheet.set_name(labels.progress_sheet)?;
    let completeness = &data.completeness;
    sheet.write_string_with_format(
        0,
        0,
        format!("{} – {} {}", labels.progress_sheet, labels.period, request.period),
        &formats.title,
    )?;
    let total = &completeness.total;
    let rates = format!(
        "{}: {}/{} ({:.1}%) / {} ({:.1}%), {}",
        labels.rates,
        total.reported,
        total.expected,
        100.0 * total.reporting_rate(),
        total.on_time,
        100.0 * total.on_time_rate(),
        completeness.as_of
    );
    sheet.write_string(1, 0, rates)?;
    headings(
        sheet,
        FIRST_ROW - 1,
        &[labels.code, labels.unit, labels.due, labels.received, labels.status, labels.days_late],
        formats,
    )?;
    for (row, unit) in (FIRST_ROW..).zip(&completeness.units) {
        sheet.write_string_with_format(row, 0, unit.unit.as_str(), &formats.text)?;
        sheet.write_string_with_format(row, 1, &unit.name, &formats.text)?;
        sheet.write_string_with_format(row, 2, unit.due_on.to_string(), &formats.text)?;
        let received =
            unit.first_accepted_at.map(|at| kpi_core::calendar::local_date(at).to_string()).unwrap_or_default();
        sheet.write_string_with_format(row, 3, received, &formats.text)?;
        let on_time = unit.status == kpi_core::calendar::Timeliness::OnTime;
        let format = if on_time {
            &formats.met
        } else if unit.first_accepted_at.is_some() {
            &formats.no_data
        } else {
            &formats.not_met
        };
        sheet.write_string_with_format(row, 4, crate::labels::timeliness(request.lang, unit.status), format)?;
        sheet.write_number_with_format(row, 5, f64::from(unit.working_days_late), &formats.text)?;
    }
    widths(sheet, &[12.0, 34.0, 12.0, 12.0, 20.0, 12.0])?;
    sheet.set_freeze_panes(FIRST_ROW, 0)?;
    print_setup(sheet, FIRST_ROW - 1)
}

fn year_u16(date: chrono::NaiveDate) -> u16 {
    use chrono::Datelike;
    u16::try_from(date.year()).unwrap_or(1900)
}

fn month_u8(date: chrono::NaiveDate) -> u8 {
    use chrono::Datelike;
    u8::try_from(date.month()).unwrap_or(1)
}

fn day_u8(date: chrono::NaiveDate) -> u8 {
    use chrono::Datelike;
    u8::try_from(date.day()).unwrap_or(1)
}
