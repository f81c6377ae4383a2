//! The batch importer of commune report workbooks.

pub mod issues;
pub mod workbook;
