//! [`ClientTransaction`]: a transaction held open across calls, `Send`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use super::handoff::{LocalBoxFuture, Work};
use super::slot::{self, Sender};
use super::{Call, Client, ClientCall, ConnWork, OwnedParams, one};
use crate::conn::{Connection, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::from_row::FromRow;
use crate::params::Params;
use crate::row::Row;
use crate::transaction::TxOpts;

enum Cmd {
    Run(Box<dyn Work>),
    Commit(Sender<()>),
    Rollback(Sender<()>),
}

struct State {
    cmds: VecDeque<Cmd>,
    /// The handle is gone (finished or dropped): the session ends.
    closed: bool,
    /// The session on the core has ended (or never started).
    gone: bool,
    session: Option<Waker>,
}

struct Chan {
    st: Mutex<State>,
}

impl Chan {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `cmd` for the session; dropped (its caller told the core
    /// stopped) when the session has ended.
    fn send(&self, cmd: Cmd) {
        let wake = {
            let mut st = self.lock();
            if st.gone {
                drop(st);
                drop(cmd);
                return;
            }
            st.cmds.push_back(cmd);
            st.session.take()
        };
        if let Some(w) = wake {
            w.wake();
        }
    }
}

/// A transaction open on one of a [`Client`]'s connections: from
/// [`Client::begin`]. `Send`, so a tokio handler can hold it across its
/// own awaits; its calls run in order on the transaction's connection, on
/// its core. End it with [`commit`](ClientTransaction::commit) or
/// [`rollback`](ClientTransaction::rollback); dropped without either (an
/// early `?`, a panic, a cancelled handler), it is rolled back before the
/// connection serves anyone else.
///
/// The transaction holds its connection until it ends: like a pooled
/// connection held by hand, keep it short.
///
/// ```no_run
/// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
/// let tx = client.begin().await?;
/// tx.exec_drop("UPDATE accounts SET balance = balance - ? WHERE id = ?", (10, 1)).await?;
/// tx.exec_drop("UPDATE accounts SET balance = balance + ? WHERE id = ?", (10, 2)).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct ClientTransaction {
    chan: Arc<Chan>,
    core: usize,
}

impl std::fmt::Debug for ClientTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTransaction")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientTransaction {
    fn drop(&mut self) {
        let wake = {
            let mut st = self.chan.lock();
            st.closed = true;
            st.session.take()
        };
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl ClientTransaction {
    /// Runs `f` on the transaction's connection, on its core (see
    /// [`Client::with_conn`]); the transaction stays open.
    pub fn with_conn<F, T>(&self, f: F) -> ClientCall<T>
    where
        F: AsyncFnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = slot::slot(self.core);
        self.chan.send(Cmd::Run(Box::new(ConnWork {
            f: async move |c: &mut Connection, _| f(c).await,
            tx,
            caller: crate::trace::caller(),
        })));
        ClientCall(Call::Slot(rx))
    }

    /// See [`Client::query`].
    pub fn query(&self, sql: impl Into<String>) -> ClientCall<Vec<Row>> {
        let sql = sql.into();
        self.with_conn(async move |c| c.query(&sql).await)
    }

    /// See [`Client::query_one`].
    pub fn query_one(&self, sql: impl Into<String>) -> ClientCall<Row> {
        let sql = sql.into();
        self.with_conn(async move |c| one(c.query_first_as::<Row>(&sql).await?))
    }

    /// See [`Client::query_drop`].
    pub fn query_drop(&self, sql: impl Into<String>) -> ClientCall<Outcome> {
        let sql = sql.into();
        self.with_conn(async move |c| c.query_drop(&sql).await)
    }

    /// See [`Client::exec`].
    pub fn exec<P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Vec<Row>> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| c.exec(sql.as_str(), &params).await)
    }

    /// See [`Client::exec_first`].
    pub fn exec_first<P: Params>(
        &self,
        sql: impl Into<String>,
        params: P,
    ) -> ClientCall<Option<Row>> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| c.exec_first(sql.as_str(), &params).await)
    }

    /// See [`Client::exec_one`].
    pub fn exec_one<P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Row> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| one(c.exec_first(sql.as_str(), &params).await?))
    }

    /// See [`Client::exec_drop`].
    pub fn exec_drop<P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Outcome> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| c.exec_drop(sql.as_str(), &params).await)
    }

    /// See [`Client::query_as`].
    pub fn query_as<T>(&self, sql: impl Into<String>) -> ClientCall<Vec<T>>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let sql = sql.into();
        self.with_conn(async move |c| c.query_as::<T>(&sql).await)
    }

    /// See [`Client::exec_as`].
    pub fn exec_as<T, P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Vec<T>>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| c.exec_as::<T>(sql.as_str(), &params).await)
    }

    /// See [`Client::exec_first_as`].
    pub fn exec_first_as<T, P: Params>(
        &self,
        sql: impl Into<String>,
        params: P,
    ) -> ClientCall<Option<T>>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| c.exec_first_as::<T>(sql.as_str(), &params).await)
    }

    /// Commits (`COMMIT`). If the call ends without an answer once `COMMIT`
    /// was sent (the connection lost, a timeout, the core stopped), its
    /// error says so ([`Error::is_commit_unknown`]).
    pub fn commit(self) -> ClientCall<()> {
        let (tx, rx) = slot::slot(self.core);
        self.chan.send(Cmd::Commit(tx));
        ClientCall(Call::Slot(rx))
    }

    /// Rolls back (`ROLLBACK`).
    pub fn rollback(self) -> ClientCall<()> {
        let (tx, rx) = slot::slot(self.core);
        self.chan.send(Cmd::Rollback(tx));
        ClientCall(Call::Slot(rx))
    }
}

/// The core's side: begins, serves the handle's calls, ends.
struct Session {
    opts: TxOpts,
    chan: Arc<Chan>,
    /// Read-your-writes: a commit notes the GTID it made.
    ryw: Option<Arc<super::ReadYourWrites>>,
    /// The handle, sent back once the transaction has begun. Dropped with
    /// it (the caller went away, or the core stopped), the session ends.
    begun: Option<(ClientTransaction, Sender<ClientTransaction>)>,
    caller: crate::trace::Caller,
}

/// Marks the session gone however it ends (its calls then fail with
/// [`ErrorKind::Stopped`]).
struct Gone(Arc<Chan>);

impl Drop for Gone {
    fn drop(&mut self) {
        let cmds = {
            let mut st = self.0.lock();
            st.gone = true;
            std::mem::take(&mut st.cmds)
        };
        drop(cmds);
    }
}

fn next_cmd(chan: &Chan) -> impl Future<Output = Option<Cmd>> + '_ {
    std::future::poll_fn(move |cx| {
        let mut st = chan.lock();
        if let Some(c) = st.cmds.pop_front() {
            return Poll::Ready(Some(c));
        }
        if st.closed {
            return Poll::Ready(None);
        }
        st.session = Some(cx.waker().clone());
        Poll::Pending
    })
}

impl Work for Session {
    fn canceled(&self) -> bool {
        self.begun.as_ref().is_none_or(|(_, s)| s.is_canceled())
    }

    fn fail(mut self: Box<Self>, e: Error) {
        if let Some((_, s)) = self.begun.take() {
            s.send(Err(e));
        }
    }

    fn run<'c>(mut self: Box<Self>, conn: &'c mut Connection) -> LocalBoxFuture<'c, bool> {
        let begun = self.begun.take();
        let Session {
            opts,
            chan,
            ryw,
            caller,
            ..
        } = *self;
        Box::pin(caller.run(async move {
            let _gone = Gone(chan.clone());
            let Some((handle, begun)) = begun else {
                return true;
            };
            let mut tx = match conn.begin_with(opts).await {
                Ok(tx) => tx,
                Err(e) => {
                    drop(handle);
                    begun.send(Err(e));
                    // The worker checks the connection before keeping it.
                    return true;
                }
            };
            if begun.is_canceled() {
                return false; // dropping `tx` rolls back
            }
            begun.send(Ok(handle));
            while let Some(cmd) = next_cmd(&chan).await {
                match cmd {
                    Cmd::Run(work) => {
                        // A call cut short is settled by the connection
                        // before the next command of the transaction.
                        work.run(&mut tx).await;
                    }
                    Cmd::Commit(s) => {
                        s.commit_mark().set();
                        let r = match tx.commit().await {
                            Err(e) if e.kind() == ErrorKind::Timeout => Err(e.commit_unknown()),
                            r => r,
                        };
                        let ok = r.is_ok();
                        if let (true, Some(ryw)) = (ok, &ryw) {
                            ryw.note_write(conn).await;
                        }
                        s.send(r);
                        return ok;
                    }
                    Cmd::Rollback(s) => {
                        let r = tx.rollback().await;
                        let ok = r.is_ok();
                        s.send(r);
                        return ok;
                    }
                }
            }
            // The handle was dropped: `tx` drops here, and the pool rolls
            // the transaction back before the connection is used again.
            false
        }))
    }
}

impl Client {
    /// Begins a transaction on one of the cores and returns it as a `Send`
    /// handle with the call methods, [`commit`](ClientTransaction::commit)
    /// and [`rollback`](ClientTransaction::rollback); dropped, it rolls
    /// back. The closure forms ([`Client::transaction`]) do the same in one
    /// call.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client, user: &str) -> mysql_uring::Result<()> {
    /// let tx = client.begin().await?;
    /// let row = tx.exec_one("SELECT balance FROM accounts WHERE owner = ? FOR UPDATE", (user,)).await?;
    /// let balance: i64 = row.get(0)?;
    /// tx.exec_drop("UPDATE accounts SET balance = ? WHERE owner = ?", (balance - 10, user)).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub fn begin(&self) -> ClientCall<ClientTransaction> {
        self.begin_with(TxOpts::default())
    }

    /// [`Client::begin`] with an isolation level, read-only mode or a
    /// consistent snapshot. A read-only transaction runs on the read route
    /// ([`Client::reads`]).
    pub fn begin_with(&self, opts: TxOpts) -> ClientCall<ClientTransaction> {
        if opts.read_only && self.0.reads.is_some() {
            return self.reads().begin_with(opts);
        }
        let core = match self.pick() {
            Ok(c) => c,
            Err(e) => return ClientCall::failed(e),
        };
        let chan = Arc::new(Chan {
            st: Mutex::new(State {
                cmds: VecDeque::new(),
                closed: false,
                gone: false,
                session: None,
            }),
        });
        let handle = ClientTransaction {
            chan: chan.clone(),
            core,
        };
        let (tx, rx) = slot::slot(core);
        self.push(
            core,
            Box::new(Session {
                opts,
                chan,
                ryw: self.0.ryw.clone(),
                begun: Some((handle, tx)),
                caller: crate::trace::caller(),
            }),
        );
        ClientCall(Call::Slot(rx))
    }
}
