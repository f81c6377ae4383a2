//! A transaction's run of statements, each built while the database runs the one before it.
//!
//! Writing a group of files is a few large multi-row statements whose building (their SQL
//! text and thousands of parameters) costs this process about as much as running them costs
//! the database. The database runs elsewhere (sqlx's SQLite thread, the PostgreSQL server),
//! so building the next statement while the last one runs puts both cores to work instead of
//! taking turns. The statements still run one at a time and in order, on one connection.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use sea_orm::{ConnectionTrait, Statement};

use crate::error::StoreError;

/// Runs, in order, every statement `next` builds until it returns `None`, calling `next`
/// again as soon as the statement before has been handed to the database.
pub(crate) async fn execute_all(
    conn: &impl ConnectionTrait,
    mut next: impl FnMut() -> Option<Statement>,
) -> Result<(), StoreError> {
    let Some(mut statement) = next() else { return Ok(()) };
    loop {
        let mut running = pin!(conn.execute_raw(statement));
        // The first poll hands the statement to the database: the driver sends it and waits.
        let started = poll_fn(|cx| Poll::Ready(running.as_mut().poll(cx))).await;
        let following = next();
        match started {
            Poll::Ready(done) => done?,
            Poll::Pending => running.await?,
        };
        match following {
            Some(built) => statement = built,
            None => return Ok(()),
        }
    }
}
