//! The domain of the KPI tracker: codes, periods, figures, the catalog, and the rules that
//! turn reported figures into KPIs (aggregation up the unit tree and over time, achievement
//! against targets, the reporting calendar and its deadlines, validation rules and outliers).
//!
//! This crate does no IO and knows nothing of databases, gRPC or spreadsheets, so every rule
//! here is tested with plain values and shared unchanged by the importer and the server.

pub mod aggregate;
pub mod calendar;
pub mod catalog;
pub mod checks;
pub mod codes;
pub mod figure;
pub mod number;
pub mod period;
pub mod quality;
pub mod rank;
pub mod rules;
#[cfg(test)]
mod seeded;
pub mod target;
pub mod text;
pub mod totals;

pub use aggregate::{Aggregate, UnitTree};
pub use calendar::{
    Cutoff, DataWindow, KindSchedule, PeriodType, ReportingCycle, ReportingRates, Timeliness, local_date,
};
pub use catalog::{Catalog, CatalogError};
pub use codes::{CodeError, IndicatorCode, ResolutionCode, RuleCode, UnitCode};
pub use figure::{Direction, Figure, IndicatorKind, TimeAggregation};
pub use period::{Period, PeriodError};
pub use quality::{Bounds, Outlier, OutlierSettings};
pub use rules::{Importance, RuleOutcome, ValidationRule};
pub use target::{Evaluation, Status, Target, evaluate};
