//! The review of the resolution as a workbook a person would put before the Standing
//! Committee: the scorecard of a unit, each indicator group's units ranked against the target
//! with native bar charts, every indicator over the term with native line charts, and who
//! reported. `kpi-report scorecard` writes it and the server's `ExportScorecard` streams the
//! same bytes, both through [`scorecard_workbook`].
//!
//! - [`data`]: what the workbook shows, read from the store (the KPI service's own answers);
//! - [`workbook`]: how it is laid out, formatted, charted and printed;
//! - [`labels`]: its words in Vietnamese and English.

pub mod data;
pub mod labels;
pub mod workbook;

use chrono::NaiveDate;
use kpi_core::{Period, UnitCode};
use kpi_store::{Store, StoreError};

pub use labels::Lang;

/// What to review.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorecardRequest {
    pub unit: UnitCode,
    pub period: Period,
    /// The period the change column compares with.
    pub compare: Option<Period>,
    pub lang: Lang,
    /// The day the reporting progress is judged on, and the document's date.
    pub as_of: NaiveDate,
}

/// Why a workbook could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the workbook: {0}")]
    Workbook(#[from] rust_xlsxwriter::XlsxError),
}

/// The review workbook's bytes: the same for the same request and data, whoever asks.
pub async fn scorecard_workbook(store: &Store, request: &ScorecardRequest) -> Result<Vec<u8>, ReportError> {
    let data = data::gather(store, request).await?;
    Ok(workbook::write(&data, request)?)
}
