//! The reporting-cycle commands of `kpi-import`: who is overdue, and approving reports and
//! locking periods, as the gRPC `ListOverdue` and `ApprovalService` do. Whoever can reach the
//! database directly may approve; the server's `approve` role guards the network path.

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use kpi_core::{Period, UnitCode};
use kpi_importer::Lang;
use kpi_store::{ApprovalStatus, Store, StoreError, UnitTimeliness};

use crate::cli::{os_user, parse_period, parse_unit};

/// Where the database is, for every cycle command.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL (sqlite://file?mode=rwc or postgres://…); default: the server's embedded file.
    #[arg(long, env = "DATABASE_URL", default_value = kpi_store::DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

#[derive(Debug, Args)]
pub struct OverdueArgs {
    /// The unit whose subtree is checked.
    #[arg(long, value_parser = parse_unit)]
    pub parent: UnitCode,
    #[arg(long, value_parser = parse_period)]
    pub period: Period,
    /// The day to judge on (YYYY-MM-DD); default: today in Vietnam.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// One report, and who acts on it.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long, value_parser = parse_unit)]
    pub unit: UnitCode,
    #[arg(long, value_parser = parse_period)]
    pub period: Period,
    /// Who acts, kept in the audit trail; default: the OS user.
    #[arg(long, env = "KPI_ACTOR")]
    pub by: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// Approve a unit's report for a period: imports into it are refused until unapproved.
    Approve {
        #[command(flatten)]
        report: ReportArgs,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Withdraw an approval; the reason is kept.
    Unapprove {
        #[command(flatten)]
        report: ReportArgs,
        #[arg(long)]
        reason: String,
    },
    /// Lock a period (and the periods inside it) for a unit's whole subtree.
    Lock {
        #[command(flatten)]
        report: ReportArgs,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Lift a lock; the reason is kept.
    Unlock {
        #[command(flatten)]
        report: ReportArgs,
        #[arg(long)]
        reason: String,
    },
    /// Show whether a report is approved, locked or closed, with its history.
    Status {
        #[command(flatten)]
        report: ReportArgs,
    },
}

/// Why an approval change was refused before reaching the store.
fn reason_required() -> StoreError {
    StoreError::Precondition("--reason must say why".into())
}

/// Prints the overdue units of `args.parent`'s subtree.
pub async fn overdue(store: &Store, args: &OverdueArgs, lang: Lang) -> Result<String, StoreError> {
    let as_of = args.as_of.unwrap_or_else(|| kpi_core::calendar::local_date(chrono::Utc::now()));
    let units = store.overdue(&args.parent, args.period, as_of).await?;
    Ok(render_overdue(&args.parent, args.period, as_of, &units, lang))
}

/// Runs one approval command and renders the report's status after it.
pub async fn approval(store: &Store, command: &ApprovalCommand, lang: Lang) -> Result<String, StoreError> {
    let status = match command {
        ApprovalCommand::Approve { report, comment } => {
            store.approve_report(&report.unit, report.period, &actor(report), comment.trim()).await?
        }
        ApprovalCommand::Unapprove { report, reason } => {
            let reason = Some(reason.trim()).filter(|r| !r.is_empty()).ok_or_else(reason_required)?;
            store.unapprove_report(&report.unit, report.period, &actor(report), reason).await?
        }
        ApprovalCommand::Lock { report, comment } => {
            store.lock_period(&report.unit, report.period, &actor(report), comment.trim()).await?
        }
        ApprovalCommand::Unlock { report, reason } => {
            let reason = Some(reason.trim()).filter(|r| !r.is_empty()).ok_or_else(reason_required)?;
            store.unlock_period(&report.unit, report.period, &actor(report), reason).await?
        }
        ApprovalCommand::Status { report } => store.approval_status(&report.unit, report.period).await?,
    };
    Ok(render_status(&status, lang))
}

impl ApprovalCommand {
    pub fn database_url(&self) -> &str {
        let (ApprovalCommand::Approve { report, .. }
        | ApprovalCommand::Unapprove { report, .. }
        | ApprovalCommand::Lock { report, .. }
        | ApprovalCommand::Unlock { report, .. }
        | ApprovalCommand::Status { report }) = self;
        &report.database.database_url
    }
}

fn actor(report: &ReportArgs) -> String {
    report.by.clone().filter(|by| !by.trim().is_empty()).unwrap_or_else(os_user)
}

/// The overdue list: one line per unit, most late first.
pub fn render_overdue(
    parent: &UnitCode,
    period: Period,
    as_of: NaiveDate,
    units: &[UnitTimeliness],
    lang: Lang,
) -> String {
    let vi = lang == Lang::Vi;
    let mut out = if vi {
        format!("Đơn vị thuộc {parent} quá hạn nộp báo cáo kỳ {period} (tính đến {as_of}): {}\n", units.len())
    } else {
        format!("Units below {parent} overdue for {period} (as of {as_of}): {}\n", units.len())
    };
    for unit in units {
        out.push_str(&if vi {
            format!(
                "  {} {}: hạn {}, trễ {} ngày làm việc\n",
                unit.unit, unit.name, unit.due_on, unit.working_days_late
            )
        } else {
            format!(
                "  {} {}: due {}, {} working days late\n",
                unit.unit, unit.name, unit.due_on, unit.working_days_late
            )
        });
    }
    out
}

/// A report's approval status and history.
pub fn render_status(status: &ApprovalStatus, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let at = kpi_core::text::minute_utc;
    let mut out = format!("{} {}: ", status.unit, status.period);
    out.push_str(&match (&status.approval, vi) {
        (Some(a), true) => format!("đã phê duyệt ({}, {})", a.by, at(a.at)),
        (Some(a), false) => format!("approved ({}, {})", a.by, at(a.at)),
        (None, true) if status.has_report => "chưa phê duyệt".to_owned(),
        (None, false) if status.has_report => "not approved".to_owned(),
        (None, true) => "chưa có báo cáo".to_owned(),
        (None, false) => "no report yet".to_owned(),
    });
    if let Some(lock) = &status.lock {
        out.push_str(&if vi {
            format!("; kỳ {} bị {} khóa cho {} ({})", lock.period, lock.stamp.by, lock.unit, at(lock.stamp.at))
        } else {
            format!("; {} locked for {} by {} ({})", lock.period, lock.unit, lock.stamp.by, at(lock.stamp.at))
        });
    }
    if let Some(day) = status.closes_on {
        out.push_str(&if vi { format!("; tự đóng từ {day}") } else { format!("; closes by itself on {day}") });
    }
    out.push('\n');
    for event in &status.history {
        let comment = if event.comment.is_empty() { String::new() } else { format!(": {}", event.comment) };
        out.push_str(&format!(
            "  {} {} {} {} {}{comment}\n",
            at(event.at),
            event.action.as_str(),
            event.unit,
            event.period,
            event.actor
        ));
    }
    out
}
