//! SQL that SQLite and PostgreSQL spell differently, written once for every query that needs it.

use sea_orm::DbBackend;

/// An aggregate joining a column's values, as text, with commas: the rows of a group come back
/// as one, because the driver hands each row over on its own (a channel message and often a
/// wake-up), which costs more than the rest of a call that reads thousands of them.
pub(crate) fn comma_joined(backend: DbBackend, text: &str) -> String {
    joined(backend, text, ",")
}

/// [`comma_joined`] with another `separator`, for values that hold commas themselves. The
/// separator is this crate's own literal, never input.
pub(crate) fn joined(backend: DbBackend, text: &str, separator: &'static str) -> String {
    match backend {
        DbBackend::Postgres => format!("string_agg({text}, '{separator}')"),
        _ => format!("group_concat({text}, '{separator}')"),
    }
}
