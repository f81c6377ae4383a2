//! sea-orm entities, one module per table.
//!
//! Relations are left out on purpose: queries join explicitly, which keeps the SQL each one
//! sends obvious and lets the aggregate query use the `path` prefix index.

pub mod approval;
pub mod approval_event;
pub mod data_issue;
pub mod indicator;
pub mod kpi_total;
pub mod period_lock;
pub mod report;
pub mod report_value;
pub mod resolution;
pub mod revision;
pub mod target;
pub mod unit;
pub mod unit_indicator;
