//! Multi-row inserts written straight as SQL text and a list of values.
//!
//! sea-query builds a statement as a tree of expressions, one per value, then walks the tree
//! to write the text and copy the values out, and drops it. For the thousand-row statements of
//! a group's values and totals, that cost the importer more than SQLite took to run them. The
//! text here is the one sea-query writes (the tests hold the two equal, text and values), for
//! SQLite and PostgreSQL alike: quoted names, `?` or `$n` placeholders.

use std::fmt::Write;

use sea_orm::sea_query::Iden;
use sea_orm::{DbBackend, Statement, Value};

/// An insert of rows of `N` columns into one table, with what follows the rows (an
/// `ON CONFLICT` clause, or nothing).
#[derive(Debug)]
pub(crate) struct RowsInsert<const N: usize> {
    /// `INSERT INTO "table" ("a", "b") VALUES `.
    head: String,
    tail: String,
}

impl<const N: usize> RowsInsert<N> {
    pub(crate) fn new(table: &impl Iden, columns: [&dyn Iden; N], tail: String) -> RowsInsert<N> {
        let names: Vec<String> = columns.iter().map(|column| quoted(*column)).collect();
        let head = format!("INSERT INTO {} ({}) VALUES ", quoted(table), names.join(", "));
        RowsInsert { head, tail }
    }

    /// The statement inserting `rows`, which must not be empty.
    pub(crate) fn statement(&self, backend: DbBackend, rows: impl ExactSizeIterator<Item = [Value; N]>) -> Statement {
        let count = rows.len();
        let mut sql = String::with_capacity(self.head.len() + count * N * 6 + self.tail.len());
        sql.push_str(&self.head);
        let mut values = Vec::with_capacity(count * N);
        for (index, row) in rows.enumerate() {
            sql.push_str(if index == 0 { "(" } else { ", (" });
            for column in 0..N {
                if column > 0 {
                    sql.push_str(", ");
                }
                match backend {
                    // Writing to a `String` cannot fail.
                    DbBackend::Postgres => drop(write!(sql, "${}", values.len() + column + 1)),
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
            values.extend(row);
        }
        sql.push_str(&self.tail);
        Statement::from_sql_and_values(backend, sql, values)
    }
}

/// A table or column name in double quotes, as both backends read it.
pub(crate) fn quoted(name: &dyn Iden) -> String {
    format!("\"{}\"", name.to_string())
}
