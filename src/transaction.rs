//! Transactions on a [`Connection`], autocommit, and warnings.

use std::ops::{Deref, DerefMut};

use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::session::Stake;

/// Transaction isolation levels (`SET TRANSACTION ISOLATION LEVEL …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// `READ UNCOMMITTED`
    ReadUncommitted,
    /// `READ COMMITTED`
    ReadCommitted,
    /// `REPEATABLE READ` (the InnoDB default)
    RepeatableRead,
    /// `SERIALIZABLE`
    Serializable,
}

impl IsolationLevel {
    fn sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "READ UNCOMMITTED",
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Serializable => "SERIALIZABLE",
        }
    }
}

/// How [`Connection::begin_with`] starts a transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOpts {
    /// Isolation level for this transaction only (default: the session's).
    pub isolation: Option<IsolationLevel>,
    /// `START TRANSACTION READ ONLY`: writes to tables fail.
    pub read_only: bool,
    /// `WITH CONSISTENT SNAPSHOT`: take the snapshot now, not at the first read.
    pub consistent_snapshot: bool,
}

impl TxOpts {
    /// Sets the isolation level.
    pub fn isolation(mut self, level: IsolationLevel) -> Self {
        self.isolation = Some(level);
        self
    }

    /// Makes the transaction read-only.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Takes a consistent snapshot at the start.
    pub fn consistent_snapshot(mut self, yes: bool) -> Self {
        self.consistent_snapshot = yes;
        self
    }

    fn start_sql(&self) -> String {
        let mut parts = Vec::new();
        if self.consistent_snapshot {
            parts.push("WITH CONSISTENT SNAPSHOT");
        }
        if self.read_only {
            parts.push("READ ONLY");
        }
        if parts.is_empty() {
            "START TRANSACTION".to_string()
        } else {
            format!("START TRANSACTION {}", parts.join(", "))
        }
    }
}

/// An open transaction on a connection: use the connection through it
/// (it derefs to [`Connection`]), then [`commit`](Transaction::commit) or
/// [`rollback`](Transaction::rollback).
///
/// Dropped without either (an early return, an error, a panic), the
/// transaction is rolled back: `ROLLBACK` is sent before the connection's next
/// command, and closing the connection rolls it back on the server.
///
/// ```no_run
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// let mut tx = cnx.begin().await?;
/// tx.query_drop("UPDATE accounts SET balance = balance - 10 WHERE id = 1").await?;
/// tx.query_drop("UPDATE accounts SET balance = balance + 10 WHERE id = 2").await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Transaction<'c> {
    conn: &'c mut Connection,
    finished: bool,
}

impl Transaction<'_> {
    /// Makes the transaction's changes permanent (`COMMIT`).
    ///
    /// If the connection is lost or the query timeout passes after `COMMIT`
    /// was sent and before its reply, the transaction may or may not have
    /// been committed: the error says so ([`Error::is_commit_unknown`]).
    pub async fn commit(mut self) -> Result<()> {
        self.finished = true;
        self.conn.session_mut().tx_committing();
        let r = self.conn.query_drop_as("COMMIT", Stake::Commit).await;
        if r.is_ok() {
            self.conn.session_mut().tx_closed();
        }
        // Refused by the server, the session machine owes a ROLLBACK (the
        // transaction may still be open); cut short, it settles the reply
        // the same way.
        r.map(|_| ())
    }

    /// Undoes the transaction's changes (`ROLLBACK`).
    pub async fn rollback(mut self) -> Result<()> {
        self.finished = true;
        let r = self.conn.query_drop_as("ROLLBACK", Stake::Nothing).await;
        if r.is_ok() {
            self.conn.session_mut().tx_closed();
        } else {
            // Not confirmed: roll back again before the next command.
            self.conn.schedule_rollback();
        }
        r.map(|_| ())
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.schedule_rollback();
        }
    }
}

/// One row of `SHOW WARNINGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `Note`, `Warning` or `Error`.
    pub level: String,
    /// The server's error code, e.g. 1265 (data truncated).
    pub code: u16,
    /// The server's message.
    pub message: String,
}

impl Connection {
    /// Starts a transaction (`START TRANSACTION`). Fails with
    /// [`crate::ErrorKind::Usage`] if one is already open on this connection.
    pub async fn begin(&mut self) -> Result<Transaction<'_>> {
        self.begin_with(TxOpts::default()).await
    }

    /// Starts a transaction with an isolation level, read-only mode or a
    /// consistent snapshot.
    pub async fn begin_with(&mut self, opts: TxOpts) -> Result<Transaction<'_>> {
        // Settle a dropped transaction's rollback first, so the status is current.
        self.query_drop_pending().await?;
        if self.in_transaction() {
            return Err(Error::usage(
                "a transaction is already open on this connection: commit or roll it back first",
            ));
        }
        if let Some(level) = opts.isolation {
            self.query_drop(&format!("SET TRANSACTION ISOLATION LEVEL {}", level.sql()))
                .await?;
        }
        // Abandoned between here and the return, the transaction would stay
        // open with no Transaction to end it: its reply is then read by the
        // next command, which rolls it back (the session's Begin stake).
        self.query_drop_as(&opts.start_sql(), Stake::Begin).await?;
        self.session_mut().tx_opened();
        Ok(Transaction {
            conn: self,
            finished: false,
        })
    }

    /// Turns autocommit on or off for the session (`SET autocommit = …`).
    pub async fn set_autocommit(&mut self, on: bool) -> Result<()> {
        self.query_drop(if on {
            "SET autocommit = 1"
        } else {
            "SET autocommit = 0"
        })
        .await
        .map(|_| ())
    }

    /// True when the session has autocommit on (from the server's status flags).
    pub fn autocommit(&self) -> bool {
        self.status_flags() & crate::proto::consts::status::AUTOCOMMIT != 0
    }

    /// The warnings, notes and errors of the last statement (`SHOW WARNINGS`).
    pub async fn warnings(&mut self) -> Result<Vec<Warning>> {
        let rows = self.query("SHOW WARNINGS").await?;
        rows.iter()
            .map(|r| {
                Ok(Warning {
                    level: r.get::<&str>(0)?.to_string(),
                    code: r.get(1)?,
                    message: r.get::<&str>(2)?.to_string(),
                })
            })
            .collect()
    }
}
