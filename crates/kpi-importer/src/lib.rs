//! The batch importer of commune report workbooks.

pub mod issues;
pub mod report;
pub mod workbook;
