//! Settling what earlier commands left, and what a failed command's error
//! says about the data.
//!
//! Every command starts with [`Connection::settle`], which carries out what
//! the session machine ([`crate::session`]) says is owed: replies of
//! abandoned commands are read to their end and dropped (keeping what they
//! teach: an execute's new column definitions, a prepared statement to
//! close, a transaction opened), a statement still running for nobody is
//! interrupted with `KILL QUERY` once [`Opts::kill_grace`] has passed, long
//! data sent without its execute is reset, a dropped transaction is rolled
//! back.
//!
//! A command's future that is dropped midway is noticed at once by its
//! [`AbandonGuard`]: when replies are still owed, a task on the core waits
//! out the grace and interrupts the statement if its reply has not been
//! read by then, so nothing runs on for nobody even when the connection is
//! not used again soon. The next command waits for that task before it
//! sends anything, so a `KILL QUERY` can never reach a later statement.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::opts::Opts;
use crate::proto::command::write_query;
use crate::session::{Loss, Reply, Shared, Stake, Step};

/// Notices a command dropped midway; see the module docs.
pub(crate) struct AbandonGuard {
    shared: Option<Rc<Shared>>,
    grace: Duration,
    limit: Duration,
}

impl AbandonGuard {
    /// The command ended (well or with an error it returned): nothing to do.
    #[inline]
    pub(crate) fn disarm(mut self) {
        self.shared = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            spawn_killer(shared, self.grace, self.limit);
        }
    }
}

/// When replies are still owed: after `grace`, unless they were read by
/// then, interrupts the statement with `KILL QUERY` (bounded by `limit`).
/// While it runs, the session is marked killing: the next command waits.
fn spawn_killer(shared: Rc<Shared>, grace: Duration, limit: Duration) {
    if shared.owed() == 0 || shared.killing() {
        return;
    }
    let Some((opts, id)) = shared.target() else {
        return;
    };
    shared.set_killing(true);
    let finished = shared.finished();
    let task = {
        let shared = shared.clone();
        async move {
            // The grace, cut short once the owed replies are read.
            let read = std::future::poll_fn(|cx| {
                if shared.owed() == 0 || shared.finished() != finished {
                    Poll::Ready(())
                } else {
                    shared.watch(cx.waker());
                    Poll::Pending
                }
            });
            let _ = crate::io::uring::timeout(grace, read).await;
            if shared.owed() > 0 && shared.finished() == finished {
                let _ = crate::io::uring::timeout(limit, kill_query((*opts).clone(), id)).await;
            }
            shared.set_killing(false);
        }
    };
    if crate::io::uring::try_spawn(task).is_err() {
        // No loop here (a connection dropped after its runtime ended): the
        // socket is closed, nothing can be sent.
        shared.set_killing(false);
    }
}

impl Connection {
    /// The guard of a command starting now.
    #[inline]
    pub(crate) fn abandon_guard(&self) -> AbandonGuard {
        AbandonGuard {
            shared: Some(self.session.shared().clone()),
            grace: self.opts.kill_grace,
            limit: self.opts.drain_timeout,
        }
    }

    /// Settles what earlier commands left (see the module docs), so the
    /// next command starts clean. Server errors inside abandoned replies
    /// are not reported (nobody waits for them); IO and protocol errors
    /// are, and a connection that cannot be settled is closed with
    /// [`ErrorKind::Broken`].
    pub(crate) async fn settle(&mut self) -> Result<()> {
        loop {
            let now = crate::io::uring::kernel::now();
            let step = self.session.next_step(now);
            match step {
                Step::Ready => return Ok(()),
                Step::Close(why) => {
                    self.chan.mark_broken(why);
                    self.session.lost(u64::MAX);
                    return Err(Error::broken(format!(
                        "connection is unusable: {why}, so its state is unknown; open a new connection"
                    )));
                }
                Step::ReadOwed => self.settle_owed().await?,
                Step::AwaitKill => {
                    let shared = self.session.shared().clone();
                    let done = std::future::poll_fn(|cx| {
                        if shared.killing() {
                            shared.watch(cx.waker());
                            Poll::Pending
                        } else {
                            Poll::Ready(())
                        }
                    });
                    if crate::io::uring::timeout(self.opts.drain_timeout.saturating_mul(2), done)
                        .await
                        .is_err()
                    {
                        // The kill task is bounded itself; this cannot
                        // happen but must not hang.
                        shared.set_killing(false);
                    }
                }
                Step::ResetStatement(id) => {
                    let limit = self.opts.drain_timeout;
                    let r = crate::io::uring::timeout(limit, self.reset_inner(id)).await;
                    if !matches!(r, Ok(Ok(()))) {
                        return Err(self.unsettled(
                            "a statement's abandoned long data could not be discarded (COM_STMT_RESET failed)",
                        ));
                    }
                    self.session.settled(step);
                }
                Step::Rollback => {
                    let limit = self.opts.drain_timeout;
                    let r = crate::io::uring::timeout(limit, async {
                        self.write_query_expect("ROLLBACK", Stake::Nothing)?;
                        self.read_result_start().await?;
                        self.consume(false).await
                    })
                    .await;
                    if let Err(e) = r.unwrap_or_else(|_| {
                        Err(Error::new(ErrorKind::Timeout, "ROLLBACK timed out"))
                    }) {
                        return Err(self.unsettled_owned(format!(
                            "rolling back a dropped transaction failed ({e})"
                        )));
                    }
                    self.session.settled(step);
                }
            }
        }
    }

    /// Closes a connection that could not be settled.
    fn unsettled(&mut self, why: &str) -> Error {
        self.unsettled_owned(why.to_string())
    }

    fn unsettled_owned(&mut self, why: String) -> Error {
        self.chan.mark_broken(why.clone());
        self.session.lost(u64::MAX);
        Error::broken(format!(
            "connection is unusable: {why}; the connection was closed, open a new one"
        ))
    }

    /// Reads the abandoned replies; if they have not ended within the kill
    /// grace (counted from when they were abandoned), interrupts their
    /// statement, then reads the rest within `drain_timeout`.
    async fn settle_owed(&mut self) -> Result<()> {
        let now = crate::io::uring::kernel::now();
        let left = self
            .opts
            .kill_grace
            .saturating_sub(self.session.abandoned_for(now));
        if let Ok(r) = crate::io::uring::timeout(left, self.read_owed()).await {
            return r;
        }
        // Still running for nobody: interrupt it (unless a kill is already
        // on its way), and read the rest.
        let shared = self.session.shared().clone();
        if !shared.killing() {
            if let Some((opts, id)) = shared.target() {
                shared.set_killing(true);
                let _ = crate::io::uring::timeout(
                    self.opts.drain_timeout,
                    kill_query((*opts).clone(), id),
                )
                .await;
                shared.set_killing(false);
            }
        }
        let limit = self.opts.drain_timeout;
        match crate::io::uring::timeout(limit, self.read_owed()).await {
            Ok(r) => r,
            Err(_) => Err(self.unsettled_owned(format!(
                "the rest of an abandoned reply did not arrive within {limit:?} (drain_timeout), \
                 even after interrupting its statement with KILL QUERY"
            ))),
        }
    }

    /// Reads every owed reply to its end on behalf of nobody: rows are
    /// dropped and server errors ignored, but what a reply teaches is kept
    /// (an execute's column definitions, a prepared statement to close).
    async fn read_owed(&mut self) -> Result<()> {
        while let Some(front) = self.session.front() {
            let r = match &front.reply {
                Reply::Prepare { .. } => self.read_prepare_rest().await,
                Reply::Result { machine, .. } if machine.in_rows() => self.skip_rows().await,
                Reply::Result { .. } => self.read_result_start().await.map(drop),
            };
            match r {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Server | ErrorKind::Usage) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the rest of the current result set's rows, dropping them.
    async fn skip_rows(&mut self) -> Result<()> {
        while self.next_row_packet().await?.is_some() {}
        Ok(())
    }

    /// Writes `sql` (`COM_QUERY`) and records the reply it owes.
    pub(crate) fn write_query_expect(&mut self, sql: &str, stake: Stake) -> Result<()> {
        {
            let (framer, out) = self.chan.encoder()?;
            write_query(framer, out, sql.as_bytes())?;
        }
        let machine = self.result_machine();
        self.session.expect(Reply::result(machine, None), stake);
        Ok(())
    }

    /// A command failed with `e`: a lost connection ends every owed reply,
    /// and the error says what that means for the commands written since
    /// `mark` (commit-unknown, or a transaction rolled back); the host, when
    /// it is one of several, is reported down or read-only.
    #[cold]
    pub(crate) fn command_failed(&mut self, e: Error, mark: u64) -> Error {
        self.note_host_error(&e);
        if !self.chan.is_broken() {
            return e;
        }
        let loss = self.session.lost(mark);
        self.with_loss(e, loss)
    }

    /// `e` as what `loss` means for the caller's data.
    pub(crate) fn with_loss(&self, e: Error, loss: Loss) -> Error {
        let address = self.opts.address();
        match loss {
            Loss::Harmless => e,
            Loss::RolledBack => e.in_transaction(&address, false),
            Loss::CommitUnknown => e.in_transaction(&address, true),
            Loss::StatementUnknown => e.outcome_unknown(&address),
        }
    }

    /// A command ran past the query timeout: it is abandoned (its future was
    /// dropped), its statement is interrupted after the kill grace unless
    /// it ends first, and the connection stays usable. A statement outside a
    /// transaction, or a `COMMIT`, may still complete: the error is then
    /// commit-unknown.
    pub(crate) fn timed_out(&mut self, what: &str, limit: Duration, mark: u64) -> Error {
        spawn_killer(
            self.session.shared().clone(),
            self.opts.kill_grace,
            self.opts.drain_timeout,
        );
        let e = Error::new(
            ErrorKind::Timeout,
            format!(
                "{what} did not finish within the query timeout of {limit:?}; the statement is \
                 being interrupted (KILL QUERY) and the connection stays usable"
            ),
        );
        match self.session.loss_if_cut(mark) {
            Loss::StatementUnknown | Loss::CommitUnknown => e.outcome_unknown(&self.opts.address()),
            _ => e,
        }
    }

    /// True when rows or further result sets of the last command remain
    /// unread (or a reply abandoned by a cancelled command is still owed).
    pub fn has_pending_response(&self) -> bool {
        self.session.owes()
    }

    /// True when something must be settled before the next command (see
    /// [`Connection::settle`]); a pool settles such a connection before
    /// handing it out again.
    pub(crate) fn needs_settle(&self) -> bool {
        !self.session.is_clean()
    }

    /// False when settling cannot make the connection usable again (an
    /// exchange nobody else can resume was abandoned): close it.
    pub(crate) fn can_settle(&self) -> bool {
        self.session.recoverable()
    }

    /// Discards what is left of the current response, under the query timeout.
    pub(crate) async fn query_drop_pending(&mut self) -> Result<()> {
        timed!(self, "discarding unread rows", self.settle())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A statement still running for nobody: interrupt it now (the
        // socket closes, but the server would run it to its end).
        if self.session.owes() && !self.chan.is_broken() {
            spawn_killer(
                self.session.shared().clone(),
                Duration::ZERO,
                self.opts.drain_timeout,
            );
        }
    }
}

/// Interrupts the statement running on a connection; see [`Connection::cancel_handle`].
///
/// ```no_run
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// let cancel = cnx.cancel_handle();
/// mysql_uring::runtime::spawn(async move {
///     mysql_uring::runtime::sleep(std::time::Duration::from_secs(1)).await;
///     let _ = cancel.cancel().await;
/// });
/// let e = cnx.query_drop("SELECT COUNT(*) FROM huge_a, huge_b").await.unwrap_err();
/// assert_eq!(e.code(), Some(1317)); // query execution was interrupted
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CancelHandle {
    opts: Arc<Opts>,
    connection_id: u32,
}

impl CancelHandle {
    pub(crate) fn new(opts: Arc<Opts>, connection_id: u32) -> Self {
        CancelHandle {
            opts,
            connection_id,
        }
    }

    /// The server id of the connection this handle cancels.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// Sends `KILL QUERY <id>` over a new connection. The interrupted
    /// statement fails with server error 1317; its connection stays usable.
    ///
    /// Works from any thread and any executor: the future is `Send`, and the
    /// kill runs on a short-lived thread with its own ring (so it never
    /// waits behind the busy core it is meant to help).
    pub fn cancel(&self) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        let (opts, id) = ((*self.opts).clone(), self.connection_id);
        let spawned = std::thread::Builder::new()
            .name("mysql-uring-cancel".into())
            .spawn(move || {
                let r = crate::runtime::try_start(kill_query(opts, id)).and_then(|r| r);
                let _ = tx.send(r);
            });
        async move {
            if let Err(e) = spawned {
                return Err(
                    Error::new(ErrorKind::Io, "cannot start a thread to send KILL QUERY")
                        .with_source(e),
                );
            }
            rx.await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Io,
                    "the thread sending KILL QUERY stopped before it finished",
                ))
            })
        }
    }
}

/// `KILL QUERY id` over a new connection made from `opts`. Boxed: a
/// connection settling an abandoned reply kills through here, and killing
/// connects, so the future types would nest.
pub(crate) fn kill_query(mut opts: Opts, id: u32) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        opts.init.clear();
        let mut c = Connection::connect(opts).await?;
        c.query_drop(&format!("KILL QUERY {id}")).await?;
        c.close().await
    })
}
