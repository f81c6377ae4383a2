//! End-to-end tests: the real server on port 0 against a fresh database (SQLite, or
//! PostgreSQL when `TEST_DATABASE_URL` is set), called only through the generated clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cycle;
mod errors;
mod fixtures;
mod helpers;
mod import;
mod kpis;
mod operations;
mod quality;
mod report;
mod samples;
mod transport;
