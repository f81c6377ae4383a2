//! The gRPC KPI service: KPIs per unit and aggregated up the tree, targets and achievement,
//! scorecards, trends, rankings, completeness, revisions, and workbook upload.
//!
//! `main.rs` only parses flags and waits for a signal; everything else is here so the
//! end-to-end tests run the very same server on port 0.

mod admission;
mod approval_service;
pub mod auth;
pub mod config;
mod convert;
mod data_quality_service;
mod errors;
mod import_service;
mod kpi_service;
pub mod startup;
pub mod telemetry;
pub mod tls;

pub use config::{Config, LogFormat};
pub use startup::{Application, StartupError};
