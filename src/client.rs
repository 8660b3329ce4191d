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

use futures_channel::oneshot;

use crate::conn::{Connection, Outcome};
use crate::error::{Error, Result};
use crate::opts::IntoOpts;
use crate::params::Params;
use crate::pool::{PerCorePool, PoolOpts};
use crate::row::Row;
use crate::runtime::{RingConfig, Runtime};
use crate::session::{Transaction, TxOpts};

/// A `Send + Sync + Clone` handle to the driver's cores and their pools.
/// See the [module docs](self).
#[derive(Clone)]
pub struct Client(Arc<Shared>);

struct Shared {
    rt: Arc<Runtime>,
    pools: PerCorePool,
    next: AtomicUsize,
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
        if let Some(total) = self.max_connections {
            if total == 0 {
                return Err(Error::config("max_connections must be at least 1"));
            }
            pool.max = total.div_ceil(rt.cores());
            pool.min = pool.min.min(pool.max);
        }
        Ok(Client(Arc::new(Shared {
            pools: PerCorePool::new(opts, pool)?,
            rt,
            next: AtomicUsize::new(0),
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
            max_connections: None,
            runtime: None,
        }
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
        self.call(move |_| async move {
            let mut conn = pools.get().await?;
            f(&mut conn).await
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

    /// [`Client::transaction`] with an isolation level, read-only mode or a
    /// consistent snapshot.
    pub fn transaction_with<F, T>(&self, opts: TxOpts, f: F) -> ClientCall<T>
    where
        F: for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.with_conn(async move |c| {
            let mut tx = c.begin_with(opts).await?;
            match f(&mut tx).await {
                Ok(v) => {
                    tx.commit().await?;
                    Ok(v)
                }
                Err(e) => {
                    // The error that matters is `f`'s; a failed rollback
                    // leaves the connection to be settled or closed.
                    let _ = tx.rollback().await;
                    Err(e)
                }
            }
        })
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
        let (tx, rx) = oneshot::channel();
        // The caller's span goes along: spans made on the core are its children.
        let caller = crate::trace::caller();
        let f = move |core| caller.run(f(core));
        self.0.rt.send(core, f, tx);
        ClientCall { rx, core }
    }
}

/// A call in flight on a [`Client`]: a `Send` future of its result.
/// Dropping it cancels the call on its core.
#[must_use = "dropping it cancels the call"]
pub struct ClientCall<T> {
    rx: oneshot::Receiver<Result<T>>,
    core: usize,
}

impl<T> std::fmt::Debug for ClientCall<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCall")
            .field("core", &self.core)
            .finish()
    }
}

impl<T> Future for ClientCall<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let core = self.core;
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(crate::runtime::cores_stopped(core))))
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
