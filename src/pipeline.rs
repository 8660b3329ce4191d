//! [`Pipeline`]: several queries in one round trip.

use crate::conn::{Connection, StageOutput};
use crate::error::Result;

/// Queries written to the server together, before the first reply is read.
///
/// Built with [`Connection::pipeline`]. Each stage's result stands on its
/// own: a statement that fails gives `Err` for that stage and the later
/// stages still run (the server executes each command independently). If the
/// connection itself fails, the stages not yet read get a "not run" error.
#[derive(Debug)]
pub struct Pipeline<'c> {
    conn: &'c mut Connection,
    sqls: Vec<String>,
}

impl<'c> Pipeline<'c> {
    pub(crate) fn new(conn: &'c mut Connection) -> Self {
        Pipeline {
            conn,
            sqls: Vec::new(),
        }
    }

    /// Adds a text-protocol query.
    pub fn query(mut self, sql: impl Into<String>) -> Self {
        self.sqls.push(sql.into());
        self
    }

    /// Adds a query without consuming the builder (for loops).
    pub fn push(&mut self, sql: impl Into<String>) -> &mut Self {
        self.sqls.push(sql.into());
        self
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.sqls.len()
    }

    /// True when no stage was added.
    pub fn is_empty(&self) -> bool {
        self.sqls.is_empty()
    }

    /// Sends every stage and reads the replies in order. The outer `Err` means
    /// nothing was sent (e.g. a query over the packet limit, or a broken connection).
    pub async fn run(self) -> Result<Vec<Result<StageOutput>>> {
        if self.sqls.is_empty() {
            return Ok(Vec::new());
        }
        self.conn.run_pipeline(&self.sqls).await
    }
}
