//! The review's words: Vietnamese by default, English on request.

use kpi_core::Status;
use kpi_core::calendar::Timeliness;

pub use kpi_core::text::Lang;

/// Every fixed text of the workbook.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub summary_sheet: &'static str,
    pub group_sheet: &'static str,
    pub trend_sheet: &'static str,
    pub progress_sheet: &'static str,
    pub title: &'static str,
    pub code: &'static str,
    pub indicator: &'static str,
    pub unit_of_measure: &'static str,
    pub numerator: &'static str,
    pub denominator: &'static str,
    pub value: &'static str,
    pub target: &'static str,
    pub achievement: &'static str,
    pub status: &'static str,
    pub change: &'static str,
    pub against: &'static str,
    pub reporting: &'static str,
    pub rank: &'static str,
    pub unit: &'static str,
    pub due: &'static str,
    pub received: &'static str,
    pub days_late: &'static str,
    pub period: &'static str,
    pub rates: &'static str,
    pub author: &'static str,
}

const VI: Labels = Labels {
    summary_sheet: "Tổng hợp",
    group_sheet: "Nhóm",
    trend_sheet: "Xu hướng",
    progress_sheet: "Tiến độ báo cáo",
    title: "KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU",
    code: "Mã",
    indicator: "Chỉ tiêu",
    unit_of_measure: "Đơn vị tính",
    numerator: "Tử số",
    denominator: "Mẫu số",
    value: "Kết quả",
    target: "Mục tiêu",
    achievement: "% so với mục tiêu",
    status: "Đánh giá",
    change: "Tăng/giảm",
    against: "so với",
    reporting: "Đơn vị báo cáo",
    rank: "Xếp hạng",
    unit: "Đơn vị",
    due: "Hạn nộp",
    received: "Ngày nhận",
    days_late: "Số ngày làm việc trễ",
    period: "Kỳ",
    rates: "Tỷ lệ báo cáo / đúng hạn",
    author: "Hệ thống theo dõi chỉ tiêu",
};

const EN: Labels = Labels {
    summary_sheet: "Summary",
    group_sheet: "Group",
    trend_sheet: "Trend",
    progress_sheet: "Reporting progress",
    title: "WHERE THE TARGETS STAND",
    code: "Code",
    indicator: "Indicator",
    unit_of_measure: "Unit",
    numerator: "Numerator",
    denominator: "Denominator",
    value: "Value",
    target: "Target",
    achievement: "% of target",
    status: "Status",
    change: "Change",
    against: "against",
    reporting: "Reporting units",
    rank: "Rank",
    unit: "Unit",
    due: "Due",
    received: "Received",
    days_late: "Working days late",
    period: "Period",
    rates: "Reporting / on-time rate",
    author: "KPI tracker",
};

/// The workbook's fixed texts in `lang`.
pub fn labels(lang: Lang) -> &'static Labels {
    match lang {
        Lang::Vi => &VI,
        Lang::En => &EN,
    }
}

/// A KPI's status as the review says it.
pub fn status(lang: Lang, status: Status) -> &'static str {
    match (lang, status) {
        (Lang::Vi, Status::Met) => "Đạt",
        (Lang::Vi, Status::NotMet) => "Chưa đạt",
        (Lang::Vi, Status::NoData) => "Chưa có số liệu",
        (Lang::Vi, Status::NoTarget) => "Không có mục tiêu",
        (Lang::En, Status::Met) => "Met",
        (Lang::En, Status::NotMet) => "Not met",
        (Lang::En, Status::NoData) => "No data",
        (Lang::En, Status::NoTarget) => "No target",
    }
}

/// A report's timeliness as the review says it.
pub fn timeliness(lang: Lang, status: Timeliness) -> &'static str {
    match (lang, status) {
        (Lang::Vi, Timeliness::OnTime) => "Đúng hạn",
        (Lang::Vi, Timeliness::Late) => "Trễ hạn",
        (Lang::Vi, Timeliness::Missing) => "Chưa nộp (quá hạn)",
        (Lang::Vi, Timeliness::NotDue) => "Chưa đến hạn",
        (Lang::En, Timeliness::OnTime) => "On time",
        (Lang::En, Timeliness::Late) => "Late",
        (Lang::En, Timeliness::Missing) => "Missing (overdue)",
        (Lang::En, Timeliness::NotDue) => "Not due yet",
    }
}
