//! Checks of a parsed file beyond its own cells, before it is stored or predicted: the
//! catalog's validation rules and outliers against the unit's history (kpi-core's
//! `checks::check_report`, with the children's figures and the history the store reads for a
//! whole group at once). An error rule rejects the file (`rule_violated`); a warning rule and
//! an outlier (`outlier`) become warnings, kept with the revision and in the store's data
//! issues for follow-up.

use std::collections::BTreeMap;

use kpi_core::checks::{Finding, ReportContext, check_report};
use kpi_core::quality::Outlier;
use kpi_core::{Catalog, Importance, IndicatorCode, Period, UnitCode};
use kpi_store::{IssueKind, NewDataIssue, QualityContext, Severity, Store, StoreError};

use crate::issues::{Issue, Lang, Problem, RuleViolation, issue};
use crate::report::ParsedReport;
use crate::{ParsedFile, file_name_of};

/// Checks every acceptable file of a group; returns, aligned with `files`, the data issues to
/// keep with each (none for a rejected file). A file breaking an error rule is rejected.
pub(crate) async fn check_files(
    store: &Store,
    files: &mut [ParsedFile],
    lang: Lang,
) -> Result<Vec<Vec<NewDataIssue>>, StoreError> {
    let keys: Vec<(UnitCode, Period)> = files.iter().filter_map(ParsedFile::key).collect();
    let mut found = vec![Vec::new(); files.len()];
    if keys.is_empty() {
        return Ok(found);
    }
    let snapshot = store.snapshot().await?;
    let catalog = snapshot.catalog()?;
    let contexts = store.quality_context(&keys).await?;
    for (file, kept) in files.iter_mut().zip(found.iter_mut()) {
        let Some(key) = file.key() else { continue };
        let Some(context) = contexts.get(&key) else { continue };
        let file_name = file_name_of(&file.path).to_owned();
        let Ok(report) = file.result.as_mut() else { continue };
        let (errors, warnings) = check_report_file(&catalog, &file_name, report, context, lang);
        report.warnings.extend(warnings.iter().map(|(issue, _)| issue.clone()));
        kept.extend(warnings.into_iter().map(|(_, data_issue)| data_issue));
        for error in errors {
            file.reject(error);
        }
    }
    Ok(found)
}

/// The errors (rules of importance `error`) and warnings, each with the data issue it keeps,
/// of one report.
fn check_report_file(
    catalog: &Catalog,
    file_name: &str,
    report: &ParsedReport,
    context: &QualityContext,
    lang: Lang,
) -> (Vec<Issue>, Vec<(Issue, NewDataIssue)>) {
    let Some(unit) = catalog.unit(&report.unit) else { return (Vec::new(), Vec::new()) };
    let own: BTreeMap<IndicatorCode, kpi_core::Figure> =
        report.values.iter().map(|value| (value.indicator.clone(), value.figure)).collect();
    let cells: BTreeMap<&IndicatorCode, &str> =
        report.values.iter().map(|value| (&value.indicator, value.cell.as_str())).collect();
    let checked = ReportContext { own: &own, children: &context.children, history: &context.history };
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for finding in check_report(catalog, unit, &checked) {
        let described = describe(catalog, &finding, &cells, lang);
        let issue = issue(lang, file_name, &report.sheet, &described.cell, &described.problem);
        let data_issue = described.into_data_issue(report.sheet.clone(), issue.message.clone());
        match data_issue.severity {
            Severity::Error => errors.push(issue),
            Severity::Warning => warnings.push((issue, data_issue)),
        }
    }
    (errors, warnings)
}

/// A finding as a problem to report, with what the store keeps of it.
#[derive(Debug)]
struct Described {
    problem: Problem,
    kind: IssueKind,
    code: String,
    severity: Severity,
    indicator: String,
    /// The cell of the (first) figure concerned; empty when the file has none of them.
    cell: String,
}

impl Described {
    /// What the store keeps of it, found in `sheet` (empty for a stored report) and told as
    /// `message`.
    fn into_data_issue(self, sheet: String, message: String) -> NewDataIssue {
        NewDataIssue {
            kind: self.kind,
            code: self.code,
            severity: self.severity,
            indicator: self.indicator,
            sheet,
            cell: self.cell,
            message,
        }
    }
}

/// The issue a finding in a stored report becomes: no file, so no sheet or cell.
fn stored_issue(catalog: &Catalog, finding: &Finding<'_>, lang: Lang) -> NewDataIssue {
    let described = describe(catalog, finding, &BTreeMap::new(), lang);
    let message = described.problem.describe(lang);
    described.into_data_issue(String::new(), message)
}

fn describe(catalog: &Catalog, finding: &Finding<'_>, cells: &BTreeMap<&IndicatorCode, &str>, lang: Lang) -> Described {
    match finding {
        Finding::Rule { rule, left, right } => {
            let read: Vec<&IndicatorCode> = rule.figures().map(|figure| &figure.indicator).collect();
            let named: Vec<String> = read
                .iter()
                .filter_map(|indicator| cells.get(indicator).map(|cell| format!("{cell} ({indicator})")))
                .collect();
            let name = lang.pick(&rule.name, &rule.name_en);
            Described {
                problem: Problem::RuleViolated(Box::new(RuleViolation {
                    code: rule.code.to_string(),
                    name: name.to_owned(),
                    expression: rule.expression(),
                    left: number(*left),
                    right: number(*right),
                    cells: if named.is_empty() { "-".to_owned() } else { named.join(", ") },
                })),
                kind: IssueKind::Rule,
                code: rule.code.to_string(),
                severity: if rule.importance == Importance::Error { Severity::Error } else { Severity::Warning },
                indicator: read.first().map(ToString::to_string).unwrap_or_default(),
                cell: read
                    .iter()
                    .find_map(|indicator| cells.get(indicator))
                    .map(|c| (*c).to_owned())
                    .unwrap_or_default(),
            }
        }
        Finding::Outlier { indicator, value, outlier } => {
            let (expected, judged_on) = outlier_terms(catalog, outlier, lang);
            Described {
                problem: Problem::Outlier {
                    indicator: indicator.to_string(),
                    value: number(*value),
                    expected,
                    judged_on,
                },
                kind: IssueKind::Outlier,
                code: "outlier".to_owned(),
                severity: Severity::Warning,
                indicator: indicator.to_string(),
                cell: cells.get(indicator).map(|c| (*c).to_owned()).unwrap_or_default(),
            }
        }
    }
}

/// What was expected of an outlier, and what it was judged on.
fn outlier_terms(catalog: &Catalog, outlier: &Outlier, lang: Lang) -> (String, String) {
    let vi = lang == Lang::Vi;
    match outlier {
        Outlier::ZScore { score, expected: (low, high), history } => {
            let past: Vec<String> =
                history.iter().map(|(period, value)| format!("{period}: {}", number(*value))).collect();
            let expected = format!("{}–{}", number(*low), number(*high));
            let judged_on = if vi {
                format!("{} kỳ trước ({}; điểm z hiệu chỉnh {score:.1})", history.len(), past.join(", "))
            } else {
                format!("the {} past periods ({}; modified z-score {score:.1})", history.len(), past.join(", "))
            };
            (expected, judged_on)
        }
        Outlier::Change { previous: (period, value), factor } => {
            let limit = catalog.outliers.change_factor;
            let expected = format!("{}–{}", number(value / limit), number(value * limit));
            let judged_on = if vi {
                format!("kỳ {period} ({}), gấp {factor:.1} lần", number(*value))
            } else {
                format!("{period} ({}), ×{factor:.1}", number(*value))
            };
            (expected, judged_on)
        }
        Outlier::OutOfBounds { min, max } => {
            let low = min.map_or_else(|| "…".to_owned(), number);
            let high = max.map_or_else(|| "…".to_owned(), number);
            let judged_on = if vi { "giới hạn trong danh mục" } else { "the catalog's bounds" };
            (format!("{low}–{high}"), judged_on.to_owned())
        }
    }
}

/// A number as people read it: at most two decimals, no trailing zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// What a re-validation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Revalidation {
    pub reports: usize,
    pub issues: usize,
}

/// Re-checks every stored report of `period` in `parent`'s subtree (the parent included), for
/// example after a rule was added: each report's open issues are replaced by what the checks
/// find now; issues under follow-up or resolved are kept.
pub async fn revalidate(
    store: &Store,
    parent: &UnitCode,
    period: Period,
    lang: Lang,
) -> Result<Revalidation, StoreError> {
    let catalog = store.snapshot().await?.catalog()?;
    let reports = store.reports_below(parent, period).await?;
    let keys: Vec<(UnitCode, Period)> = reports.iter().map(|(unit, _)| (unit.clone(), period)).collect();
    let contexts = store.quality_context(&keys).await?;
    let mut done = Revalidation::default();
    for (unit, own) in &reports {
        let (Some(definition), Some(context)) = (catalog.unit(unit), contexts.get(&(unit.clone(), period))) else {
            continue;
        };
        let checked = ReportContext { own, children: &context.children, history: &context.history };
        let issues: Vec<NewDataIssue> = check_report(&catalog, definition, &checked)
            .iter()
            .map(|finding| stored_issue(&catalog, finding, lang))
            .collect();
        store.replace_data_issues(unit, period, &issues).await?;
        done.reports += 1;
        done.issues += issues.len();
    }
    Ok(done)
}
