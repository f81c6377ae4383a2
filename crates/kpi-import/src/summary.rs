//! What `kpi-import` prints: a line per file as the batch goes, and the end-of-run summary
//! (a table of the files to act on, the errors of rejected files, totals, and the missing units
//! per period, counted by parent when there are many).

use kpi_importer::batch::{BatchReport, PeriodTimeliness};
use kpi_importer::{FileReport, Lang, Status};

fn status_label(status: Status, lang: Lang) -> &'static str {
    match (status, lang) {
        (Status::Accepted, Lang::Vi) => "mới",
        (Status::Revised, Lang::Vi) => "sửa đổi",
        (Status::Unchanged, Lang::Vi) => "không đổi",
        (Status::Rejected, Lang::Vi) => "từ chối",
        (Status::NotStored, Lang::Vi) => "chưa lưu",
        (status, Lang::En) => status.as_str(),
    }
}

/// The line printed as each file is processed.
pub fn file_line(file: &FileReport, lang: Lang) -> String {
    let what = match (&file.unit, &file.period) {
        (Some(unit), Some(period)) => format!(" {unit} {period}"),
        (Some(unit), None) => format!(" {unit}"),
        _ => String::new(),
    };
    let revision = match (file.status, file.revision, lang) {
        (Status::Rejected, _, Lang::Vi) => format!(", {} lỗi", file.errors.len()),
        (Status::Rejected, _, Lang::En) => format!(", {} error(s)", file.errors.len()),
        (_, Some(n), Lang::Vi) => format!(", lần {n}"),
        (_, Some(n), Lang::En) => format!(", revision {n}"),
        (_, None, _) => String::new(),
    };
    format!("[{}] {}{what}{revision}", status_label(file.status, lang), file.path)
}

/// The end-of-run summary: a table of files, the errors of rejected files, totals, and the
/// missing units per period.
pub fn render_summary(report: &BatchReport, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let head = if vi {
        ["Tệp", "Kết quả", "Đơn vị", "Kỳ", "Lần", "Lỗi", "Cảnh báo"]
    } else {
        ["File", "Status", "Unit", "Period", "Rev", "Errors", "Warnings"]
    };
    // A large batch printed a line per file as it went: the table keeps the files to act on
    // (the batch kept only those, and at most a few hundred of them).
    let shown = report.files.listed();
    let unlisted = report.files.unlisted_to_act_on();
    let clean = report.files.len() - shown.len() - unlisted;
    let rows: Vec<[String; 7]> = shown
        .iter()
        .map(|f| {
            [
                f.path.clone(),
                status_label(f.status, lang).to_owned(),
                f.unit.clone().unwrap_or_else(|| "-".into()),
                f.period.clone().unwrap_or_else(|| "-".into()),
                f.revision.map_or_else(|| "-".into(), |n| n.to_string()),
                f.errors.len().to_string(),
                f.warnings.len().to_string(),
            ]
        })
        .collect();
    let mut widths = head.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = String::new();
    out.push_str(&line(&head.map(str::to_owned)));
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for (row, file) in rows.iter().zip(shown) {
        out.push_str(&line(row));
        out.push('\n');
        for error in &file.errors {
            out.push_str(&format!("    ✗ [{}] {}\n", error.code, error.message));
        }
        for warning in &file.warnings {
            out.push_str(&format!("    ! [{}] {}\n", warning.code, warning.message));
        }
    }
    if unlisted > 0 {
        out.push_str(&if vi {
            format!("… và {unlisted} tệp khác có lỗi hoặc cảnh báo (đủ trong --report-json)\n")
        } else {
            format!("… and {unlisted} more files with errors or warnings (all in --report-json)\n")
        });
    }
    if clean > 0 {
        out.push_str(&if vi {
            format!("… và {clean} tệp không lỗi, không cảnh báo (đã in ở trên; đủ trong --report-json)\n")
        } else {
            format!("… and {clean} files without errors or warnings (printed above; all in --report-json)\n")
        });
    }
    let count = |status: Status| report.files.count(status);
    let (accepted, revised, unchanged, rejected) =
        (count(Status::Accepted), count(Status::Revised), count(Status::Unchanged), count(Status::Rejected));
    out.push('\n');
    if vi {
        out.push_str(&format!(
            "Tổng: {} tệp: {accepted} mới, {revised} sửa đổi, {unchanged} không đổi, {rejected} từ chối\n",
            report.files.len()
        ));
        out.push_str("Đơn vị chưa báo cáo:\n");
    } else {
        out.push_str(&format!(
            "Total: {} files: {accepted} accepted, {revised} revised, {unchanged} unchanged, {rejected} rejected\n",
            report.files.len()
        ));
        out.push_str("Units still missing:\n");
    }
    if report.missing.is_empty() {
        out.push_str(if vi { "  (không có kỳ nào đọc được)\n" } else { "  (no period could be read)\n" });
    }
    for (period, units) in &report.missing {
        out.push_str(&format!("  {period}: {}\n", missing_line(units, lang)));
        if units.len() > LISTED_UNITS {
            let parents = report.missing_by_parent.get(period).map(Vec::as_slice).unwrap_or_default();
            out.push_str(&format!("    {}\n", parents_line(parents, lang)));
        }
    }
    for (period, timeliness) in &report.timeliness {
        out.push_str(&timeliness_lines(period, timeliness, lang));
    }
    if let Some(reason) = &report.stopped {
        let not_stored = count(Status::NotStored);
        out.push_str(&if vi {
            format!("\nĐã dừng giữa chừng ({reason}); {not_stored} tệp chưa được lưu\n")
        } else {
            format!("\nStopped early ({reason}); {not_stored} file(s) not stored\n")
        });
    }
    out
}

/// A period's rates across the tree and its overdue units, the most late first.
fn timeliness_lines(period: &str, timeliness: &PeriodTimeliness, lang: Lang) -> String {
    let percent = |rate: f64| format!("{:.0}%", rate * 100.0);
    let PeriodTimeliness { as_of, expected, reported, on_time, .. } = timeliness;
    let (reporting, punctual) = (percent(timeliness.reporting_rate), percent(timeliness.on_time_rate));
    let mut out = match lang {
        Lang::Vi => format!(
            "Tiến độ kỳ {period} (tính đến {as_of}): {reported}/{expected} đơn vị đã nộp ({reporting}), {on_time} đúng hạn ({punctual})\n"
        ),
        Lang::En => format!(
            "Timeliness {period} (as of {as_of}): {reported}/{expected} units reported ({reporting}), {on_time} on time ({punctual})\n"
        ),
    };
    // Units due the same day and as late share a line: at national scale, a handful of lines.
    let mut groups: Vec<(&str, u32, Vec<String>)> = Vec::new();
    for unit in &timeliness.overdue {
        match groups.last_mut() {
            Some((due, late, units)) if *due == unit.due && *late == unit.working_days_late => {
                units.push(unit.unit.clone());
            }
            _ => groups.push((&unit.due, unit.working_days_late, vec![unit.unit.clone()])),
        }
    }
    for (due, late, units) in groups.iter().take(LISTED_GROUPS) {
        out.push_str(&match lang {
            Lang::Vi => format!("  quá hạn (hạn {due}, trễ {late} ngày làm việc): {}\n", missing_line(units, lang)),
            Lang::En => format!("  overdue (due {due}, {late} working days late): {}\n", missing_line(units, lang)),
        });
    }
    let rest: usize = groups.iter().skip(LISTED_GROUPS).map(|(_, _, units)| units.len()).sum();
    if rest > 0 {
        out.push_str(&match lang {
            Lang::Vi => format!("  … và {rest} đơn vị quá hạn khác (đủ trong --report-json)\n"),
            Lang::En => format!("  … and {rest} more overdue units (all in --report-json)\n"),
        });
    }
    out
}

/// Lines of overdue units (each a due date and a lateness) shown per period.
const LISTED_GROUPS: usize = 4;

/// Missing units listed by code per period before the rest are counted.
const LISTED_UNITS: usize = 12;
/// Parents listed with their counts of missing units.
const LISTED_PARENTS: usize = 8;

/// A period's missing units: all of them when few, else the first few and a count.
fn missing_line(units: &[String], lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    match units.len() {
        0 => (if vi { "(đủ)" } else { "(none)" }).to_owned(),
        n if n <= LISTED_UNITS => units.join(", "),
        n => {
            let first = units[..LISTED_UNITS].join(", ");
            let rest = n - LISTED_UNITS;
            if vi {
                format!("{n} đơn vị: {first}, … và {rest} đơn vị khác")
            } else {
                format!("{n} units: {first}, … and {rest} more")
            }
        }
    }
}

/// The parents with the most missing units, with their counts.
fn parents_line(parents: &[(String, usize)], lang: Lang) -> String {
    let listed: Vec<String> =
        parents.iter().take(LISTED_PARENTS).map(|(parent, count)| format!("{parent} ({count})")).collect();
    let more = parents.len().saturating_sub(LISTED_PARENTS);
    let tail = match (more, lang) {
        (0, _) => String::new(),
        (n, Lang::Vi) => format!(", … và {n} đơn vị cấp trên khác"),
        (n, Lang::En) => format!(", … and {n} more parents"),
    };
    let label = if lang == Lang::Vi { "theo đơn vị cấp trên" } else { "by parent" };
    format!("{label}: {}{tail}", listed.join(", "))
}

/// Prints to stdout, ignoring a closed pipe (`kpi-import … | head`): the files are already
/// stored, and a print must never turn that into a panic.
pub fn say(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_importer::batch::OverdueUnit;
    use kpi_importer::file_reports::{FileReports, MAX_LISTED};

    fn file(index: usize, status: Status) -> FileReport {
        FileReport {
            path: format!("f{index}.xlsx"),
            status,
            unit: None,
            period: None,
            revision: None,
            sha256: String::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_national_summary_stays_readable() {
        let mut files = FileReports::new();
        (0..60).for_each(|i| files.push(file(i, Status::Accepted)));
        files.push(file(60, Status::NotStored));
        let missing: Vec<String> = (0..100).map(|i| format!("U{i:03}")).collect();
        let by_parent: Vec<(String, usize)> = (0..10).map(|p| (format!("P{p}"), 10)).collect();
        let overdue = (0..25)
            .map(|i| OverdueUnit { unit: format!("V{i:03}"), due: "2025-12-16".into(), working_days_late: 30 - i / 5 })
            .collect();
        let timeliness = PeriodTimeliness {
            as_of: "2026-02-01".into(),
            expected: 120,
            reported: 20,
            on_time: 15,
            reporting_rate: 20.0 / 120.0,
            on_time_rate: 15.0 / 120.0,
            overdue,
        };
        let report = BatchReport {
            files,
            missing: [("2025".to_owned(), missing)].into(),
            missing_by_parent: [("2025".to_owned(), by_parent)].into(),
            timeliness: [("2025".to_owned(), timeliness)].into(),
            stopped: None,
        };
        let text = render_summary(&report, Lang::En);
        assert!(text.contains("f60.xlsx") && !text.contains("f59.xlsx"), "{text}");
        assert!(text.contains("… and 60 files without errors or warnings"), "{text}");
        assert!(text.contains("2025: 100 units: U000, U001,") && text.contains("U011, … and 88 more"), "{text}");
        assert!(!text.contains("U012"), "{text}");
        assert!(text.contains("by parent: P0 (10), P1 (10),") && text.contains("… and 2 more parents"), "{text}");
        let rates = "Timeliness 2025 (as of 2026-02-01): 20/120 units reported (17%), 15 on time (12%)";
        assert!(text.contains(rates), "{text}");
        let first = "  overdue (due 2025-12-16, 30 working days late): V000, V001, V002, V003, V004\n";
        assert!(text.contains(first), "{text}");
        assert!(text.contains("  overdue (due 2025-12-16, 27 working days late): V015,"), "{text}");
        assert!(!text.contains("26 working days late"), "{text}");
        assert!(text.contains("  … and 5 more overdue units (all in --report-json)"), "{text}");
    }

    #[test]
    fn files_to_act_on_past_the_listed_ones_are_counted() {
        let mut files = FileReports::new();
        for i in 0..2 * MAX_LISTED + 70 {
            files.push(file(i, if i % 2 == 0 { Status::Accepted } else { Status::NotStored }));
        }
        let report = BatchReport { files, ..BatchReport::default() };
        let text = render_summary(&report, Lang::En);
        let last_listed = format!("f{}.xlsx", 2 * MAX_LISTED - 1);
        let first_unlisted = format!("f{}.xlsx", 2 * MAX_LISTED + 1);
        assert!(text.contains(&last_listed) && !text.contains(&first_unlisted), "{text}");
        assert!(text.contains("… and 35 more files with errors or warnings (all in --report-json)"), "{text}");
        assert!(text.contains(&format!("… and {} files without errors or warnings", MAX_LISTED + 35)), "{text}");
        assert!(
            text.contains(&format!("Total: {} files: {} accepted", 2 * MAX_LISTED + 70, MAX_LISTED + 35)),
            "{text}"
        );
    }
}
