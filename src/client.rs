//! [`Client`]: the `Send` front door, for tokio and every other executor.
//!
//! Connections live on the cores of a [`Runtime`] (one io_uring loop per
//! thread) and never cross threads. A `Client` is a cheap, `Send + Sync`
//! handle to those cores and to one connection pool per core: each call is
//! sent to a core as a job (one lock-protected push, plus an eventfd write
//! when that core sleeps), runs there on a pooled connection, and its owned
//! result comes back over a one-shot channel. The futures it returns are
//! `Send`, so `tokio::spawn` takes them; dropping one cancels the work on the
//! core, and the connection is settled (see [`Connection`]'s cancellation)
//! before the pool hands it out again.
//!
//! ```no_run
//! # async fn f() -> mysql_uring::Result<()> {
//! use mysql_uring::Client;
//!
//! let client = Client::new("mysql://root@127.0.0.1:3306/test")?; // starts the cores
//! let rows = client.exec("SELECT name FROM users WHERE id = ?", (7,)).await?;
//! let n: i64 = client
//!     .with_conn(async |c| {
//!         c.query_drop("UPDATE counters SET n = n + 1").await?;
//!         c.query("SELECT n FROM counters").await?[0].get(0)
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use crate::conn::{Connection, Outcome};
use crate::error::{Error, Result};
use crate::opts::IntoOpts;
use crate::params::Params;
use crate::pool::{PerCorePool, PoolOpts};
use crate::row::Row;
use crate::runtime::{CoreTask, RingConfig, Runtime};
use crate::session::{Transaction, TxOpts};

/// A `Send + Sync + Clone` handle to the driver's cores and their pools.
/// See the [module docs](self).
#[derive(Clone)]
pub struct Client(Arc<Shared>);

struct Shared {
    rt: Arc<Runtime>,
    pools: PerCorePool,
    next: AtomicUsize,
    /// With [`HostMode::Replication`](crate::HostMode::Replication): the
    /// read route's pools (connections to replicas).
    reads: Option<Arc<Shared>>,
    /// Read-your-writes (`read_your_writes`): the GTID position written.
    ryw: Option<Arc<ReadYourWrites>>,
    /// On the read route with read-your-writes: the primary's pools, for
    /// reads no replica caught up with in time.
    primary: Option<PerCorePool>,
}

/// Runs `f` in a transaction on `c`: committed when it returns `Ok`, rolled
/// back when it returns `Err` (the error that matters is `f`'s; a failed
/// rollback leaves the connection to be settled or closed by its pool).
async fn in_transaction<T>(
    c: &mut Connection,
    opts: TxOpts,
    f: impl for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T>,
) -> Result<T> {
    let mut tx = c.begin_with(opts).await?;
    match f(&mut tx).await {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The highest GTID this client's writes made, per replication domain
/// (MariaDB GTIDs: `domain-server-sequence`).
struct ReadYourWrites {
    pos: std::sync::Mutex<Vec<(u32, u32, u64)>>,
    timeout: std::time::Duration,
}

impl ReadYourWrites {
    /// After a call on the write route: the session's `@@last_gtid`.
    async fn note_write(&self, conn: &mut Connection) {
        let Ok(rows) = conn.query("SELECT @@last_gtid").await else {
            return;
        };
        let Some(g) = rows
            .first()
            .and_then(|r| r.get::<Option<String>>(0).ok().flatten())
        else {
            return;
        };
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        for one in g.split(',') {
            let mut it = one.trim().split('-').map(str::parse::<u64>);
            if let (Some(Ok(d)), Some(Ok(srv)), Some(Ok(seq))) = (it.next(), it.next(), it.next()) {
                let (d, srv) = (d as u32, srv as u32);
                match pos.iter_mut().find(|p| p.0 == d) {
                    Some(p) if p.2 >= seq => {}
                    Some(p) => *p = (d, srv, seq),
                    None => pos.push((d, srv, seq)),
                }
            }
        }
    }

    /// Before a read on a replica: waits (`MASTER_GTID_WAIT`) until it has
    /// applied this client's writes; false when it did not in time.
    async fn caught_up(&self, conn: &mut Connection) -> bool {
        let pos = {
            let p = self.pos.lock().unwrap_or_else(|e| e.into_inner());
            if p.is_empty() {
                return true;
            }
            p.iter()
                .map(|(d, s, n)| format!("{d}-{s}-{n}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let sql = format!(
            "SELECT MASTER_GTID_WAIT('{pos}', {:.3})",
            self.timeout.as_secs_f64()
        );
        matches!(
            conn.query(&sql)
                .await
                .map(|r| r.first().map(|r| r.get::<i64>(0))),
            Ok(Some(Ok(0)))
        )
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("cores", &self.0.rt.cores())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    cores: Option<usize>,
    pin: bool,
    ring: RingConfig,
    pool: PoolOpts,
    pool_set: bool,
    max_connections: Option<usize>,
    runtime: Option<Arc<Runtime>>,
}

impl ClientBuilder {
    /// How many cores (threads with a ring) to start. Default: all the CPUs
    /// this process may use. Ignored with [`ClientBuilder::runtime`].
    pub fn cores(mut self, n: usize) -> Self {
        self.cores = Some(n);
        self
    }

    /// Pins core `i` to the `i`-th allowed CPU. Default: not pinned.
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// How each core's ring is sized and waits.
    pub fn ring(mut self, config: RingConfig) -> Self {
        self.ring = config;
        self
    }

    /// The pool options of each core's pool (its `max` is per core unless
    /// [`ClientBuilder::max_connections`] is given).
    pub fn pool(mut self, popts: PoolOpts) -> Self {
        self.pool = popts;
        self.pool_set = true;
        self
    }

    /// Most connections open at once, over all cores (divided between them,
    /// rounding up). Default: the pool's `max` on every core.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Runs on an existing runtime instead of starting one (share one
    /// runtime between several clients, e.g. for several servers).
    pub fn runtime(mut self, rt: Arc<Runtime>) -> Self {
        self.runtime = Some(rt);
        self
    }

    /// Starts the cores (unless a runtime was given) and checks the options;
    /// connections are opened on first use.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) for bad
    /// options and with [`ErrorKind::Io`](crate::ErrorKind::Io) when io_uring
    /// is unavailable (the message says how to fix it).
    pub fn build(self, opts: impl IntoOpts) -> Result<Client> {
        let opts = opts.into_opts()?;
        let rt = match self.runtime {
            Some(rt) => rt,
            None => {
                let mut b = Runtime::builder().pin(self.pin).ring(self.ring);
                if let Some(n) = self.cores {
                    b = b.cores(n);
                }
                Arc::new(b.build()?)
            }
        };
        let mut pool = self.pool;
        let mut max_connections = self.max_connections;
        if !self.pool_set {
            // The URL's pool_max / pool_min: totals over all cores.
            if max_connections.is_none() {
                max_connections = opts.pool_max;
            }
            if let Some(min) = opts.pool_min {
                pool.min = min.div_ceil(rt.cores());
                pool.max = pool.max.max(pool.min);
            }
        }
        if let Some(total) = max_connections {
            if total == 0 {
                return Err(Error::config("max_connections must be at least 1"));
            }
            pool.max = total.div_ceil(rt.cores());
            pool.min = pool.min.min(pool.max);
        }
        let writes = PerCorePool::new(opts.clone(), pool.clone())?;
        let replication =
            opts.hosts.as_ref().map(|h| h.mode()) == Some(crate::HostMode::Replication);
        let ryw = (replication && opts.read_your_writes).then(|| {
            Arc::new(ReadYourWrites {
                pos: Default::default(),
                timeout: opts.read_your_writes_timeout,
            })
        });
        let reads = if replication {
            Some(Arc::new(Shared {
                pools: PerCorePool::new(opts.clone().role(crate::Role::Read), pool)?,
                rt: rt.clone(),
                next: AtomicUsize::new(0),
                reads: None,
                ryw: ryw.clone(),
                primary: ryw.is_some().then(|| writes.clone()),
            }))
        } else {
            None
        };
        Ok(Client(Arc::new(Shared {
            pools: writes,
            rt,
            next: AtomicUsize::new(0),
            reads,
            ryw,
            primary: None,
        })))
    }
}

impl Client {
    /// A client with the defaults: one core per CPU, each with its own pool
    /// (the URL's `pool_max`/`pool_min`, else 10 connections per core).
    pub fn new(opts: impl IntoOpts) -> Result<Client> {
        Self::builder().build(opts)
    }

    /// A builder: `Client::builder().cores(2).max_connections(64).build(url)?`.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            cores: None,
            pin: false,
            ring: RingConfig::default(),
            pool: PoolOpts::default(),
            pool_set: false,
            max_connections: None,
            runtime: None,
        }
    }

    /// The read route: with `hosts=replication`, a client whose calls run on
    /// replicas (by load, within `max_replica_lag`; the primary when none is
    /// usable, unless `read_fallback=false`). With other options, this
    /// client itself. It shares this client's cores; its pools are its own.
    ///
    /// ```no_run
    /// # async fn f() -> mysql_uring::Result<()> {
    /// let client = mysql_uring::Client::new("mysql://app@db1,db2,db3/shop?hosts=replication")?;
    /// client.query_drop("INSERT INTO orders (item) VALUES ('tea')").await?; // the primary
    /// let n = client.reads().query("SELECT COUNT(*) FROM orders").await?;  // a replica
    /// # Ok(()) }
    /// ```
    pub fn reads(&self) -> Client {
        Client(self.0.reads.clone().unwrap_or_else(|| self.0.clone()))
    }

    /// Counters and gauges of the client's pools, all cores added up:
    /// connections open, idle and waited for, created, closed, settled on
    /// return, wait time. Readable at any time, from any thread.
    pub fn pool_metrics(&self) -> crate::PoolMetrics {
        self.0.pools.metrics()
    }

    /// The runtime the client's connections live on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.0.rt
    }

    /// Runs `f` on a pooled connection on one of the cores and returns its
    /// output. `f` runs on the core, next to its connection (its future
    /// need not be `Send`); only `f` itself and the output cross threads.
    /// Whatever `f` leaves unfinished on the connection (unread rows, an open
    /// transaction) is settled before the connection is used again.
    pub fn with_conn<F, T>(&self, f: F) -> ClientCall<T>
    where
        F: AsyncFnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pools = self.0.pools.clone();
        let Some(ryw) = self.0.ryw.clone() else {
            return self.call(move |_| async move {
                let mut conn = pools.get().await?;
                f(&mut conn).await
            });
        };
        // Read-your-writes: writes note their GTID; reads on a replica wait
        // for it, or go to the primary.
        let primary = self.0.primary.clone();
        self.call(move |_| async move {
            let mut conn = pools.get().await?;
            match primary {
                None => {
                    let r = f(&mut conn).await;
                    ryw.note_write(&mut conn).await;
                    r
                }
                Some(primary) => {
                    if conn.is_replica() && !ryw.caught_up(&mut conn).await {
                        drop(conn);
                        let mut p = primary.get().await?;
                        return f(&mut p).await;
                    }
                    f(&mut conn).await
                }
            }
        })
    }

    /// Runs `f` in a transaction on one of the cores: committed when `f`
    /// returns `Ok`, rolled back when it returns `Err` (or panics, or the
    /// call is dropped).
    pub fn transaction<F, T>(&self, f: F) -> ClientCall<T>
    where
        F: for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.transaction_with(TxOpts::default(), f)
    }

    /// Runs `f` in a transaction like [`Client::transaction`], and runs it
    /// again (on a fresh connection, after a short pause that doubles each
    /// time) when it fails in a way that re-running can fix
    /// ([`Error::is_retryable`]: a deadlock or Galera certification
    /// conflict, a connection lost mid-transaction, a primary that moved),
    /// up to `attempts` runs in all. A connection lost during `COMMIT` is
    /// not retried: whether it committed is unknown
    /// ([`Error::is_commit_unknown`]). `f` must be safe to run again: all
    /// its effects on the database are rolled back between runs, effects
    /// elsewhere are not.
    pub fn transaction_retry<F, T>(&self, attempts: u32, f: F) -> ClientCall<T>
    where
        F: for<'c> AsyncFn(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pools = self.0.pools.clone();
        let ryw = self.0.ryw.clone();
        self.call(move |_| async move {
            let mut pause = std::time::Duration::from_millis(5);
            let mut run = 1;
            loop {
                // Until `f` starts nothing has happened: a dead pooled
                // connection or an unreachable host is worth another try too.
                let started = std::cell::Cell::new(false);
                let r = async {
                    let mut conn = pools.get().await?;
                    let r = in_transaction(&mut conn, TxOpts::default(), async |tx| {
                        started.set(true);
                        f(tx).await
                    })
                    .await;
                    if let (Ok(_), Some(ryw)) = (&r, &ryw) {
                        ryw.note_write(&mut conn).await;
                    }
                    r
                }
                .await;
                let again = |e: &Error| {
                    e.is_retryable()
                        || !started.get()
                            && matches!(
                                e.kind(),
                                crate::ErrorKind::Io
                                    | crate::ErrorKind::Broken
                                    | crate::ErrorKind::Unavailable
                            )
                };
                match r {
                    Err(e) if again(&e) && run < attempts.max(1) => {
                        run += 1;
                        crate::runtime::sleep(pause).await;
                        pause = (pause * 2).min(std::time::Duration::from_millis(500));
                    }
                    r => return r,
                }
            }
        })
    }

    /// [`Client::transaction`] with an isolation level, read-only mode or a
    /// consistent snapshot. A read-only transaction runs on the read route
    /// ([`Client::reads`]).
    pub fn transaction_with<F, T>(&self, opts: TxOpts, f: F) -> ClientCall<T>
    where
        F: for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let route = if opts.read_only {
            self.reads()
        } else {
            self.clone()
        };
        route.with_conn(async move |c| in_transaction(c, opts, f).await)
    }

    /// Runs a query and returns all its rows.
    pub fn query(&self, sql: impl Into<String>) -> ClientCall<Vec<Row>> {
        let sql = sql.into();
        self.with_conn(async move |c| c.query(&sql).await)
    }

    /// Runs a statement, discarding any rows; returns its outcome.
    pub fn query_drop(&self, sql: impl Into<String>) -> ClientCall<Outcome> {
        let sql = sql.into();
        self.with_conn(async move |c| c.query_drop(&sql).await)
    }

    /// Runs a prepared statement (cached per connection) with `params` and
    /// returns all its rows. Parameters are moved to the core: pass owned
    /// values (`String`, numbers, `Vec<u8>`) or `'static` ones.
    pub fn exec<P>(&self, sql: impl Into<String>, params: P) -> ClientCall<Vec<Row>>
    where
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.with_conn(async move |c| c.exec(sql.as_str(), params).await)
    }

    /// Like [`Client::exec`], returning the first row (the rest is discarded).
    pub fn exec_first<P>(&self, sql: impl Into<String>, params: P) -> ClientCall<Option<Row>>
    where
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.with_conn(async move |c| c.exec_first(sql.as_str(), params).await)
    }

    /// Like [`Client::exec`], discarding rows; returns the outcome.
    pub fn exec_drop<P>(&self, sql: impl Into<String>, params: P) -> ClientCall<Outcome>
    where
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.with_conn(async move |c| c.exec_drop(sql.as_str(), params).await)
    }

    /// The blocking form, for plain threads: the same calls, returning
    /// their results directly.
    pub fn blocking(&self) -> BlockingClient {
        BlockingClient(self.clone())
    }

    /// Sends `f` to the next core (round robin).
    fn call<F, Fut, T>(&self, f: F) -> ClientCall<T>
    where
        F: FnOnce(usize) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let n = self.0.rt.cores();
        let core = self.0.next.fetch_add(1, Ordering::Relaxed) % n;
        // The caller's span goes along: spans made on the core are its children.
        let caller = crate::trace::caller();
        ClientCall(self.0.rt.spawn_on(core, move |core| caller.run(f(core))))
    }
}

/// A call in flight on a [`Client`]: a `Send` future of its result.
/// Dropping it cancels the call on its core. (A [`CoreTask`] by another
/// name: the same hand-off to a core and one-shot result back.)
#[must_use = "dropping it cancels the call"]
pub struct ClientCall<T>(CoreTask<T>);

impl<T> std::fmt::Debug for ClientCall<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientCall").field(&self.0).finish()
    }
}

impl<T> Future for ClientCall<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// The blocking form of a [`Client`]; see [`Client::blocking`].
#[derive(Debug, Clone)]
pub struct BlockingClient(Client);

impl BlockingClient {
    fn wait<T>(&self, call: ClientCall<T>) -> Result<T> {
        if self.0.0.rt.is_own_core() {
            return Err(Error::usage(
                "BlockingClient was called on one of its own cores, which would wait for \
                 itself; use the async Client methods there",
            ));
        }
        crate::runtime::block_on(call)
    }

    /// See [`Client::with_conn`].
    pub fn with_conn<F, T>(&self, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.with_conn(f))
    }

    /// See [`Client::transaction_with`].
    pub fn transaction_with<F, T>(&self, opts: TxOpts, f: F) -> Result<T>
    where
        F: for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.transaction_with(opts, f))
    }

    /// See [`Client::reads`].
    pub fn reads(&self) -> BlockingClient {
        BlockingClient(self.0.reads())
    }

    /// See [`Client::transaction_retry`].
    pub fn transaction_retry<F, T>(&self, attempts: u32, f: F) -> Result<T>
    where
        F: for<'c> AsyncFn(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.transaction_retry(attempts, f))
    }

    /// See [`Client::transaction`].
    pub fn transaction<F, T>(&self, f: F) -> Result<T>
    where
        F: for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.transaction(f))
    }

    /// See [`Client::query`].
    pub fn query(&self, sql: impl Into<String>) -> Result<Vec<Row>> {
        self.wait(self.0.query(sql))
    }

    /// See [`Client::query_drop`].
    pub fn query_drop(&self, sql: impl Into<String>) -> Result<Outcome> {
        self.wait(self.0.query_drop(sql))
    }

    /// See [`Client::exec`].
    pub fn exec<P>(&self, sql: impl Into<String>, params: P) -> Result<Vec<Row>>
    where
        P: Params + Send + 'static,
    {
        self.wait(self.0.exec(sql, params))
    }

    /// See [`Client::exec_first`].
    pub fn exec_first<P>(&self, sql: impl Into<String>, params: P) -> Result<Option<Row>>
    where
        P: Params + Send + 'static,
    {
        self.wait(self.0.exec_first(sql, params))
    }

    /// See [`Client::exec_drop`].
    pub fn exec_drop<P>(&self, sql: impl Into<String>, params: P) -> Result<Outcome>
    where
        P: Params + Send + 'static,
    {
        self.wait(self.0.exec_drop(sql, params))
    }

    /// See [`Client::query_as`].
    pub fn query_as<T>(&self, sql: impl Into<String>) -> Result<Vec<T>>
    where
        T: for<'r> crate::FromRow<'r> + Send + 'static,
    {
        self.wait(self.0.query_as(sql))
    }

    /// See [`Client::exec_as`].
    pub fn exec_as<T, P>(&self, sql: impl Into<String>, params: P) -> Result<Vec<T>>
    where
        T: for<'r> crate::FromRow<'r> + Send + 'static,
        P: Params + Send + 'static,
    {
        self.wait(self.0.exec_as(sql, params))
    }

    /// See [`Client::exec_first_as`].
    pub fn exec_first_as<T, P>(&self, sql: impl Into<String>, params: P) -> Result<Option<T>>
    where
        T: for<'r> crate::FromRow<'r> + Send + 'static,
        P: Params + Send + 'static,
    {
        self.wait(self.0.exec_first_as(sql, params))
    }
}
