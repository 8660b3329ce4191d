mod blocking;
mod handoff;
mod multiplex;
mod params;
mod slot;
mod stream;
mod tx;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use crate::conn::{Connection, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::io::uring::exec::{CatchUnwind, panic_message};
use crate::opts::IntoOpts;
use crate::params::Params;
use crate::pool::{PerCorePool, PoolOpts};
use crate::row::Row;
use crate::runtime::{RingConfig, Runtime};
use crate::transaction::{Transaction, TxOpts};

pub use blocking::BlockingClient;
use handoff::{Inbox, Lane, LocalBoxFuture, Work};
pub(crate) use params::OwnedParams;
use slot::{CommitMark, Receiver, Sender};
pub use stream::ClientStream;
pub use tx::ClientTransaction;

/// A `Send + Sync + Clone` handle to the driver's cores and their pools.
///
/// [`Client`]: the `Send` front door, for tokio and every other executor.
///
/// Connections live on the cores of a [`Runtime`] (one io_uring loop per
/// thread) and never cross threads. A `Client` is a cheap, `Send + Sync`
/// handle to those cores and to one connection pool per core. A call's
/// parameters are copied on the caller's thread (so they may be borrowed:
/// `(name.as_str(), &bytes[..])`), the call is queued for a core (one
/// locked push; one job and at most one eventfd write carry a whole batch
/// of calls), a worker there runs it on a pooled connection, and its owned
/// result comes back, woken together with the other results of that loop
/// turn. The futures it returns are `Send`, so `tokio::spawn` takes them;
/// dropping one cancels the work on the core, and the connection is settled
/// (see [`Connection`]'s cancellation) before the pool hands it out again.
///
/// ```no_run
/// # async fn f(user: &str) -> mysql_uring::Result<()> {
/// use mysql_uring::Client;
///
/// let client = Client::new("mysql://root@127.0.0.1:3306/test")?; // starts the cores
/// let rows = client.exec("SELECT id FROM users WHERE name = ?", (user,)).await?;
/// let tx = client.begin().await?;
/// tx.exec_drop("UPDATE counters SET n = n + 1 WHERE owner = ?", (user,)).await?;
/// tx.commit().await?;
/// let n: i64 = client
///     .with_conn(async |c| {
///         c.query_drop("UPDATE counters SET n = n + 1").await?;
///         c.query("SELECT n FROM counters").await?[0].get(0)
///     })
///     .await?;
/// client.close().await?;
/// # Ok(()) }
/// ```
///
/// # For sqlx and mysql_async users
///
/// | sqlx | mysql_async | `Client` |
/// | --- | --- | --- |
/// | `fetch_all` | `exec` | [`exec`](Client::exec) / [`exec_as`](Client::exec_as) |
/// | `fetch_optional` | `exec_first` | [`exec_first`](Client::exec_first) / [`exec_first_as`](Client::exec_first_as) (`Option`) |
/// | `fetch_one` (`RowNotFound`) | `exec_first` + `ok_or` | [`exec_one`](Client::exec_one) / [`exec_one_as`](Client::exec_one_as) ([`ErrorKind::RowNotFound`]) |
/// | `execute` | `exec_drop` | [`exec_drop`](Client::exec_drop) |
/// | `fetch` (a stream) | `exec_stream` | [`exec_stream`](Client::exec_stream) / [`exec_stream_as`](Client::exec_stream_as) |
/// | `pool.begin()` + `commit()` | `start_transaction` | [`begin`](Client::begin) + [`commit`](ClientTransaction::commit) |
/// | `pool.close()` | `pool.disconnect()` | [`close`](Client::close) |
///
/// # Cores that stop
/// A core whose thread panics (a bug outside the calls themselves, which
/// are caught) leaves the rotation: its calls in flight end with
/// [`ErrorKind::Stopped`], later calls go to the other cores. A call that
/// ends without its result after its `COMMIT` was sent (the core stopped,
/// the commit timed out, the connection was lost) says so:
/// [`Error::is_commit_unknown`].
#[derive(Clone)]
pub struct Client(Arc<Shared>);

/// One route's pools and the doors to them on each core.
struct Route {
    pools: PerCorePool,
    /// Calls per round trip on one connection ([`ClientBuilder::multiplex`]).
    multiplex: usize,
    /// Core `i`'s inbox for this route.
    inboxes: Vec<Arc<Inbox>>,
    /// The cores with a share of the connections (round robin over them).
    cores: Vec<usize>,
    next: AtomicUsize,
}

impl Route {
    fn new(rt: &Runtime, pools: PerCorePool, multiplex: usize) -> Route {
        let inboxes = (0..rt.cores())
            .map(|i| Inbox::new(i, pools.clone(), multiplex))
            .collect();
        let cores = (0..rt.cores()).filter(|&i| pools.max_on(i) > 0).collect();
        Route {
            pools,
            multiplex,
            inboxes,
            cores,
            next: AtomicUsize::new(0),
        }
    }
}

struct Shared {
    rt: Arc<Runtime>,
    route: Route,
    /// Set by [`Client::close`]: every handle of the client refuses calls.
    closed: Arc<AtomicBool>,
    /// With [`HostMode::Replication`](crate::HostMode::Replication): the
    /// read route (connections to replicas).
    reads: Option<Arc<Shared>>,
    /// Read-your-writes (`read_your_writes`): the GTID position written.
    ryw: Option<Arc<ReadYourWrites>>,
    /// On the read route with read-your-writes: the primary's pools, for
    /// reads no replica caught up with in time.
    primary: Option<PerCorePool>,
    /// The runtime, when the client started it: stopped once the last
    /// handle goes. Last, so it drops after everything else here.
    owned: Owned,
}

/// The runtime a client started itself. Dropped with the last handle, it
/// stops the cores from a thread of its own: the dropping thread (a tokio
/// worker, say) never waits for them.
struct Owned(Option<Arc<Runtime>>);

impl Drop for Owned {
    fn drop(&mut self) {
        let Some(rt) = self.0.take() else { return };
        // Only the last owner stops it (a clone may live in a user's hands).
        let Ok(rt) = Arc::try_unwrap(rt) else { return };
        let spawned = std::thread::Builder::new()
            .name("mysql-uring-stop".into())
            .spawn(move || drop(rt));
        if let Err(e) = spawned {
            // No thread to spare: nothing better than stopping it here.
            drop(e);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // No idle connection outlives its client: each core closes its lane
        // and its pool (the calls still running finish first).
        retire(&self.rt, &self.route.pools);
    }
}

/// Sends every core the job that closes the route's lane and pool there;
/// the pool's idle connections are closed (`COM_QUIT`) once its calls are
/// done. Returns the slots that say when each core is done.
fn retire(rt: &Runtime, pools: &PerCorePool) -> Vec<Receiver<()>> {
    pools.retire();
    (0..rt.cores())
        .map(|core| {
            let (tx, rx) = slot::slot::<()>(core);
            let pools = pools.clone();
            let job = Box::new(move || {
                let lane = Lane::close_here(&pools);
                let pool = pools.forget_here();
                if lane.is_none() && pool.is_none() {
                    tx.send(Ok(()));
                    return;
                }
                let _ = crate::io::uring::try_spawn(async move {
                    if let Some(lane) = lane {
                        lane.quiet().await;
                    }
                    if let Some(pool) = pool {
                        pool.close_idle().await;
                    }
                    tx.send(Ok(()));
                });
            });
            let _ = rt.send_job_to(core, job);
            rx
        })
        .collect()
}

/// A call that runs `f` on a pooled connection on a core (see [`handoff`]).
struct ConnWork<F, T> {
    f: F,
    tx: Sender<T>,
    caller: crate::trace::Caller,
}

impl<F, T> Work for ConnWork<F, T>
where
    F: AsyncFnOnce(&mut Connection, CommitMark) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    fn canceled(&self) -> bool {
        self.tx.is_canceled()
    }

    fn fail(self: Box<Self>, e: Error) {
        self.tx.send(Err(e));
    }

    fn run<'c>(self: Box<Self>, conn: &'c mut Connection) -> LocalBoxFuture<'c, bool> {
        let ConnWork { f, tx, caller } = *self;
        Box::pin(async move {
            let mark = tx.commit_mark();
            let fut = CatchUnwind(caller.run(f(conn, mark)));
            let r = until_canceled(&tx, fut).await;
            match r {
                Some(Ok(v)) => {
                    tx.send(v);
                    true
                }
                Some(Err(p)) => {
                    tx.send(Err(panicked(&*p)));
                    false
                }
                None => false,
            }
        })
    }
}

/// Runs `fut` until it is done (`Some`) or the caller behind `tx` has gone
/// away (`None`: `fut` is dropped, which abandons what it had in flight).
async fn until_canceled<T, F: Future>(tx: &Sender<T>, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        tx.poll_canceled(cx).map(|()| None)
    })
    .await
}

fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    Error::usage(format!(
        "the work of a Client call panicked on its core: {}",
        panic_message(payload)
    ))
}

/// Runs `f` in a transaction on `c`: committed when it returns `Ok`, rolled
/// back when it returns `Err` (the error that matters is `f`'s; a failed
/// rollback leaves the connection to be settled or closed by its pool).
/// `mark` is set as `COMMIT` is sent; a commit that times out is reported
/// as of unknown outcome.
async fn in_transaction<T>(
    c: &mut Connection,
    opts: TxOpts,
    mark: &CommitMark,
    f: impl for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T>,
) -> Result<T> {
    let mut tx = c.begin_with(opts).await?;
    match f(&mut tx).await {
        Ok(v) => {
            mark.set();
            match tx.commit().await {
                Ok(()) => Ok(v),
                Err(e) if e.kind() == ErrorKind::Timeout => Err(e.commit_unknown()),
                Err(e) => Err(e),
            }
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
    multiplex: usize,
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

    /// The pool options of each core's pool (its `max` and `min` are per
    /// core unless [`ClientBuilder::max_connections`] is given).
    pub fn pool(mut self, popts: PoolOpts) -> Self {
        self.pool = popts;
        self.pool_set = true;
        self
    }

    /// Most connections open at once, over all cores: a hard total (as a
    /// server's `max_user_connections` counts them). It is divided exactly:
    /// with 5 over 2 cores, one core opens at most 3 and the other 2; with
    /// fewer connections than cores, calls go only to the cores that have
    /// one. Default: the URL's `pool_max`, else the pool's `max` on every core.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Lets up to `depth` prepared-statement calls ([`Client::exec`],
    /// [`exec_first`](Client::exec_first), [`exec_one`](Client::exec_one),
    /// [`exec_drop`](Client::exec_drop)) share one connection's round trip
    /// when they would otherwise wait for a connection (every connection of
    /// the core busy): their executes are written together and the replies
    /// read in order. The server still runs them one after another, but no
    /// longer waits for each next command, so under load it does more
    /// queries per CPU second (measured on point selects from 200 tokio
    /// tasks over 64 connections: about 1.4x the queries per second of the
    /// default; see BENCHMARKS.md). Default 1: off. Other calls (queries,
    /// streams, transactions, closures) are never multiplexed.
    ///
    /// The cost is head-of-line blocking: a call waits for the calls
    /// written before it on its connection, so one slow statement (or one
    /// waiting for a row lock) delays those behind it. Each call still gets
    /// its own result or error (the server runs every command on its own;
    /// each runs in autocommit, as every `Client` call outside a
    /// transaction does). A multiplexed call whose caller goes away is not
    /// interrupted: its reply is read and dropped. The query timeout covers
    /// the whole round trip (with the prepares it needs and the calls run
    /// on their own after it, such as those with long data), so a fast
    /// call can time out because of the calls ahead of it. Turn it on for
    /// many short statements from many tasks.
    ///
    /// ```no_run
    /// # fn f() -> mysql_uring::Result<()> {
    /// let client = mysql_uring::Client::builder()
    ///     .multiplex(4)
    ///     .build("mysql://app@db/shop")?;
    /// # Ok(()) }
    /// ```
    pub fn multiplex(mut self, depth: usize) -> Self {
        self.multiplex = depth.max(1);
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
    /// Fails with [`ErrorKind::Config`] for bad
    /// options and with [`ErrorKind::Io`] when io_uring
    /// is unavailable (the message says how to fix it).
    pub fn build(self, opts: impl IntoOpts) -> Result<Client> {
        let opts = opts.into_opts()?;
        let (rt, owned) = match self.runtime {
            Some(rt) => (rt, false),
            None => {
                let mut b = Runtime::builder().pin(self.pin).ring(self.ring);
                if let Some(n) = self.cores {
                    b = b.cores(n);
                }
                (Arc::new(b.build()?), true)
            }
        };
        let cores = rt.cores();
        let mut pool = self.pool;
        let mut total = self.max_connections;
        let mut min_total = None;
        if !self.pool_set {
            // The URL's pool_max / pool_min: totals over all cores.
            if total.is_none() {
                total = opts.pool_max;
            }
            if let Some(min) = opts.pool_min {
                min_total = Some(min);
                if total.is_none() {
                    pool.max = pool.max.max(min.div_ceil(cores));
                    pool.min = min.div_ceil(cores);
                }
            }
        }
        let split = match total {
            Some(0) => return Err(Error::config("max_connections must be at least 1")),
            Some(total) => {
                pool.max = total;
                pool.min = min_total.unwrap_or(pool.min * cores).min(total);
                true
            }
            None => false,
        };
        let make = |opts: crate::Opts| {
            if split {
                PerCorePool::with_totals(opts, pool.clone(), cores)
            } else {
                PerCorePool::new(opts, pool.clone())
            }
        };
        let writes = make(opts.clone())?;
        let replication =
            opts.hosts.as_ref().map(|h| h.mode()) == Some(crate::HostMode::Replication);
        let ryw = (replication && opts.read_your_writes).then(|| {
            Arc::new(ReadYourWrites {
                pos: Default::default(),
                timeout: opts.read_your_writes_timeout,
            })
        });
        let closed = Arc::new(AtomicBool::new(false));
        let reads = if replication {
            Some(Arc::new(Shared {
                route: Route::new(
                    &rt,
                    make(opts.clone().role(crate::Role::Read))?,
                    self.multiplex,
                ),
                rt: rt.clone(),
                closed: closed.clone(),
                reads: None,
                ryw: ryw.clone(),
                primary: ryw.is_some().then(|| writes.clone()),
                owned: Owned(None),
            }))
        } else {
            None
        };
        Ok(Client(Arc::new(Shared {
            route: Route::new(&rt, writes, self.multiplex),
            owned: Owned(owned.then(|| rt.clone())),
            rt,
            closed,
            reads,
            ryw,
            primary: None,
        })))
    }
}

impl Client {
    /// A client with the defaults: one core per CPU, each with its own pool
    /// (the URL's `pool_max`/`pool_min` as totals over the cores, else 10
    /// connections per core).
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
            multiplex: 1,
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
    /// return, wait time. Readable at any time, from any thread. Calls
    /// waiting in a core's queue for a connection count as pool waits; a
    /// core keeps a connection for the next call while calls are waiting,
    /// so under load `gets` is lower than the number of calls.
    pub fn pool_metrics(&self) -> crate::PoolMetrics {
        self.0.route.pools.metrics()
    }

    /// The runtime the client's connections live on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.0.rt
    }

    /// Closes the client: every handle refuses new calls (with
    /// [`ErrorKind::Stopped`]), the calls already made finish, every idle
    /// connection is closed (`COM_QUIT`) on its core, and, when the client
    /// started its own runtime, its cores are stopped. Nothing blocks the
    /// calling thread: await it from tokio or any executor.
    ///
    /// Without it, dropping the last handle closes the idle connections and
    /// stops the cores too, without waiting: calls still running then end
    /// with [`ErrorKind::Stopped`].
    ///
    /// ```no_run
    /// # async fn f(client: mysql_uring::Client) -> mysql_uring::Result<()> {
    /// client.query_drop("DO 1").await?;
    /// client.close().await?;
    /// # Ok(()) }
    /// ```
    pub fn close(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.0.closed.store(true, Ordering::SeqCst);
        let mut done = retire(&self.0.rt, &self.0.route.pools);
        if let Some(reads) = &self.0.reads {
            done.extend(retire(&reads.rt, &reads.route.pools));
        }
        let stop = self.0.owned.0.as_ref().map(|rt| {
            let rt = rt.clone();
            async move { rt.stop().await }
        });
        async move {
            for d in done {
                // A core that has stopped has nothing left to close.
                let _ = d.await;
            }
            if let Some(stop) = stop {
                stop.await;
            }
            Ok(())
        }
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
        self.on_conn(async move |c, _| f(c).await)
    }

    /// [`Client::with_conn`], with the call's commit mark.
    fn on_conn<F, T>(&self, f: F) -> ClientCall<T>
    where
        F: AsyncFnOnce(&mut Connection, CommitMark) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let Some(ryw) = self.0.ryw.clone() else {
            return self.submit(f);
        };
        // Read-your-writes: writes note their GTID; reads on a replica wait
        // for it, or go to the primary.
        let pools = self.0.route.pools.clone();
        let primary = self.0.primary.clone();
        self.spawn_call(move |mark| async move {
            let mut conn = pools.get().await?;
            match primary {
                None => {
                    let r = f(&mut conn, mark).await;
                    ryw.note_write(&mut conn).await;
                    r
                }
                Some(primary) => {
                    if conn.is_replica() && !ryw.caught_up(&mut conn).await {
                        drop(conn);
                        let mut p = primary.get().await?;
                        return f(&mut p, mark).await;
                    }
                    f(&mut conn, mark).await
                }
            }
        })
    }

    /// Runs `f` in a transaction on one of the cores: committed when `f`
    /// returns `Ok`, rolled back when it returns `Err` (or panics, or the
    /// call is dropped). When the call ends without its result after
    /// `COMMIT` was sent (the core stopped, the commit timed out, the
    /// connection was lost), its error says the outcome is unknown
    /// ([`Error::is_commit_unknown`]). See also [`Client::begin`].
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
        let pools = self.0.route.pools.clone();
        let ryw = self.0.ryw.clone();
        self.spawn_call(move |mark| async move {
            let mut pause = std::time::Duration::from_millis(5);
            let mut run = 1;
            loop {
                // Until `f` starts nothing has happened: a dead pooled
                // connection or an unreachable host is worth another try too.
                let started = std::cell::Cell::new(false);
                let r = async {
                    let mut conn = pools.get().await?;
                    let r = in_transaction(&mut conn, TxOpts::default(), &mark, async |tx| {
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
                    !e.is_commit_unknown()
                        && (e.is_retryable()
                            || !started.get()
                                && matches!(
                                    e.kind(),
                                    crate::ErrorKind::Io
                                        | crate::ErrorKind::Broken
                                        | crate::ErrorKind::Unavailable
                                ))
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
        route.on_conn(async move |c, mark| in_transaction(c, opts, &mark, f).await)
    }

    /// Runs a query and returns all its rows.
    pub fn query(&self, sql: impl Into<String>) -> ClientCall<Vec<Row>> {
        let sql = sql.into();
        self.with_conn(async move |c| c.query(&sql).await)
    }

    /// Runs a query and returns its first row; fails with
    /// [`ErrorKind::RowNotFound`] when there is none (sqlx's `fetch_one`).
    /// The other rows are discarded.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// let n: i64 = client.query_one("SELECT COUNT(*) FROM users").await?.get(0)?;
    /// # Ok(()) }
    /// ```
    pub fn query_one(&self, sql: impl Into<String>) -> ClientCall<Row> {
        let sql = sql.into();
        self.with_conn(async move |c| one(c.query_first_as::<Row>(&sql).await?))
    }

    /// Runs a statement, discarding any rows; returns its outcome.
    pub fn query_drop(&self, sql: impl Into<String>) -> ClientCall<Outcome> {
        let sql = sql.into();
        self.with_conn(async move |c| c.query_drop(&sql).await)
    }

    /// Runs a prepared statement (cached per connection) with `params` and
    /// returns all its rows. The parameters are copied before the call
    /// leaves (nothing stays borrowed), so request-scoped `&str` and
    /// `&[u8]` work as well as owned values.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client, name: String, blob: Vec<u8>) -> mysql_uring::Result<()> {
    /// let rows = client
    ///     .exec("SELECT id FROM files WHERE owner = ? AND digest = ?", (name.as_str(), &blob[..]))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn exec<P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Vec<Row>> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        if self.multiplexing() {
            return self.submit_stage(sql, params, |o| Ok(o.rows));
        }
        self.with_conn(async move |c| c.exec(sql.as_str(), &params).await)
    }

    /// Like [`Client::exec`], returning the first row (the rest is
    /// discarded), `None` without rows (mysql_async's `exec_first`, sqlx's
    /// `fetch_optional`).
    pub fn exec_first<P: Params>(
        &self,
        sql: impl Into<String>,
        params: P,
    ) -> ClientCall<Option<Row>> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        if self.multiplexing() {
            return self.submit_stage(sql, params, |o| Ok(o.rows.into_iter().next()));
        }
        self.with_conn(async move |c| c.exec_first(sql.as_str(), &params).await)
    }

    /// Like [`Client::exec_first`], failing with [`ErrorKind::RowNotFound`]
    /// when there is no row (sqlx's `fetch_one`).
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// use mysql_uring::ErrorKind;
    /// match client.exec_one("SELECT name FROM users WHERE id = ?", (7,)).await {
    ///     Ok(row) => println!("{}", row.get::<&str>(0)?),
    ///     Err(e) if e.kind() == ErrorKind::RowNotFound => println!("no user 7"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn exec_one<P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Row> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        if self.multiplexing() {
            return self.submit_stage(sql, params, |o| one(o.rows.into_iter().next()));
        }
        self.with_conn(async move |c| one(c.exec_first(sql.as_str(), &params).await?))
    }

    /// Like [`Client::exec`], discarding rows; returns the outcome.
    pub fn exec_drop<P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Outcome> {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        if self.multiplexing() {
            return self.submit_stage(sql, params, |o| Ok(o.outcome));
        }
        self.with_conn(async move |c| c.exec_drop(sql.as_str(), &params).await)
    }

    /// The blocking form, for plain threads: the same calls, returning
    /// their results directly.
    pub fn blocking(&self) -> BlockingClient {
        BlockingClient(self.clone())
    }

    /// The core for the next call: round robin over the cores that have
    /// connections and are alive.
    fn pick(&self) -> Result<usize> {
        if self.0.closed.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::Stopped,
                "this Client was closed (Client::close)",
            ));
        }
        let route = &self.0.route;
        let n = route.cores.len();
        let start = route.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let core = route.cores[start.wrapping_add(k) % n];
            if self.0.rt.is_alive(core) {
                return Ok(core);
            }
        }
        Err(Error::new(
            ErrorKind::Stopped,
            "every core of this Client has stopped (its runtime was shut down, or they panicked)",
        ))
    }

    /// Hands `work` to core `core`'s lane of this route.
    fn push(&self, core: usize, work: Box<dyn Work>) {
        self.0.route.inboxes[core].push(&self.0.rt, work);
    }

    /// Sends `f` to the next core's lane, to run on a pooled connection.
    fn submit<F, T>(&self, f: F) -> ClientCall<T>
    where
        F: AsyncFnOnce(&mut Connection, CommitMark) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let core = match self.pick() {
            Ok(c) => c,
            Err(e) => return ClientCall::failed(e),
        };
        let (tx, rx) = slot::slot(core);
        let work = Box::new(ConnWork {
            f,
            tx,
            // The caller's span goes along: spans made on the core are its children.
            caller: crate::trace::caller(),
        });
        self.push(core, work);
        ClientCall(Call::Slot(rx))
    }

    /// Sends `f` to the next core as a task of its own (calls that take
    /// their connections from the pools themselves).
    fn spawn_call<F, Fut, T>(&self, f: F) -> ClientCall<T>
    where
        F: FnOnce(CommitMark) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let core = match self.pick() {
            Ok(c) => c,
            Err(e) => return ClientCall::failed(e),
        };
        let (tx, rx) = slot::slot::<T>(core);
        let caller = crate::trace::caller();
        let job = Box::new(move || {
            let mark = tx.commit_mark();
            let fut = caller.run(f(mark));
            let _ = crate::io::uring::try_spawn(async move {
                match until_canceled(&tx, CatchUnwind(fut)).await {
                    Some(Ok(r)) => tx.send(r),
                    Some(Err(p)) => tx.send(Err(panicked(&*p))),
                    None => {}
                }
            });
        });
        // Refused (the core stopped): the job and its sender are dropped,
        // which the receiver reports.
        let _ = self.0.rt.send_job_to(core, job);
        ClientCall(Call::Slot(rx))
    }
}

/// The row of a call that needs one.
fn one(row: Option<Row>) -> Result<Row> {
    row.ok_or_else(|| Error::new(ErrorKind::RowNotFound, "the statement returned no row"))
}

/// A call in flight on a [`Client`]: a `Send` future of its result.
/// Dropping it cancels the call on its core: a call still queued is
/// skipped, a running one is abandoned (its statement interrupted and its
/// connection settled before reuse, see [`Connection`]'s cancellation).
#[must_use = "dropping it cancels the call"]
pub struct ClientCall<T>(Call<T>);

enum Call<T> {
    Slot(Receiver<T>),
    Failed(Option<Error>),
}

impl<T> ClientCall<T> {
    fn failed(e: Error) -> Self {
        ClientCall(Call::Failed(Some(e)))
    }
}

impl<T> std::fmt::Debug for ClientCall<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = match &self.0 {
            Call::Slot(rx) => rx.core(),
            Call::Failed(_) => None,
        };
        f.debug_struct("ClientCall").field("core", &core).finish()
    }
}

impl<T> Future for ClientCall<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.get_mut().0 {
            Call::Slot(rx) => Pin::new(rx).poll(cx),
            Call::Failed(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or_else(|| Error::usage("a Client call was polled after it finished")))),
        }
    }
}
