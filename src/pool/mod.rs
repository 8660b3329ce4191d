use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::ops::{Deref, DerefMut};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::opts::{IntoOpts, Opts};

/// How a [`Pool`] sizes, checks and recycles its connections.
///
/// ```
/// use std::time::Duration;
/// use mysql_uring::PoolOpts;
///
/// let p = PoolOpts { max: 16, reset_on_return: true, ..PoolOpts::default() };
/// assert_eq!(p.min, 0);
/// assert_eq!(p.wait_timeout, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone)]
pub struct PoolOpts {
    /// Connections kept open even when idle (opened in the background after
    /// the first [`Pool::get`], and by [`Pool::maintain`]). Default 0.
    pub min: usize,
    /// Most connections open at once, handed out or idle. Default 10.
    pub max: usize,
    /// An idle connection older than this is closed (down to `min`), by the
    /// background maintenance or when [`Pool::get`] finds it. `None`: never.
    /// Default 10 minutes.
    pub idle_timeout: Option<Duration>,
    /// How long [`Pool::get`] waits for a connection when all `max` are in
    /// use, before failing with [`ErrorKind::Timeout`]. `None`: forever.
    /// Default 30 s.
    pub wait_timeout: Option<Duration>,
    /// Reset the session (`COM_RESET_CONNECTION`, see [`Connection::reset`])
    /// when a connection comes back, so the next user never sees the last
    /// one's variables, temporary tables, locks or transaction. The current
    /// database is kept (as the server does). Default false; an open
    /// transaction is rolled back either way.
    pub reset_on_return: bool,
    /// Ping a connection before handing it out when it has been idle this
    /// long; a connection that fails the ping, or does not answer within the
    /// options' connect timeout, is closed and another one used.
    /// `Some(Duration::ZERO)`: always. `None`: never. Default 1 s.
    pub health_check_after: Option<Duration>,
}

impl Default for PoolOpts {
    fn default() -> Self {
        PoolOpts {
            min: 0,
            max: 10,
            idle_timeout: Some(Duration::from_secs(600)),
            wait_timeout: Some(Duration::from_secs(30)),
            reset_on_return: false,
            health_check_after: Some(Duration::from_secs(1)),
        }
    }
}

/// Counts of a pool's connections, from [`Pool::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open or being opened, idle or in use (at most `max`).
    pub total: usize,
    /// Connections idle in the pool.
    pub idle: usize,
    /// Callers of [`Pool::get`] waiting for a connection.
    pub waiting: usize,
}

/// What a pool has done, and how it stands: counters since it was made,
/// and gauges now. For a [`PerCorePool`] (and a [`Client`](crate::Client))
/// they add up every core's pool; readable at any time from any thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolMetrics {
    /// Connections open or being opened, idle or in use (gauge).
    pub open: u64,
    /// Connections idle in the pool (gauge).
    pub idle: u64,
    /// Callers of `get` waiting for a connection (gauge).
    pub waiting: u64,
    /// Connections handed out.
    pub gets: u64,
    /// Connections opened.
    pub created: u64,
    /// Connection attempts that failed.
    pub connect_errors: u64,
    /// Connections the pool closed: broken, failing their health check,
    /// not settled on return, or idle too long.
    pub closed: u64,
    /// Connections settled on return before reuse (unread rows drained, a
    /// dropped transaction rolled back, a reset asked for).
    pub cleaned: u64,
    /// `get` calls that had to wait for capacity.
    pub waits: u64,
    /// Of those, the ones that gave up at the wait timeout.
    pub wait_timeouts: u64,
    /// Time spent waiting, in total.
    pub wait_time: Duration,
}

/// The shared counters behind [`PoolMetrics`].
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    open: AtomicU64,
    idle: AtomicU64,
    waiting: AtomicU64,
    gets: AtomicU64,
    created: AtomicU64,
    connect_errors: AtomicU64,
    closed: AtomicU64,
    cleaned: AtomicU64,
    waits: AtomicU64,
    wait_timeouts: AtomicU64,
    wait_nanos: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

fn sub(c: &AtomicU64, n: u64) {
    c.fetch_sub(n, Relaxed);
}

impl Metrics {
    fn snapshot(&self) -> PoolMetrics {
        PoolMetrics {
            open: self.open.load(Relaxed),
            idle: self.idle.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            gets: self.gets.load(Relaxed),
            created: self.created.load(Relaxed),
            connect_errors: self.connect_errors.load(Relaxed),
            closed: self.closed.load(Relaxed),
            cleaned: self.cleaned.load(Relaxed),
            waits: self.waits.load(Relaxed),
            wait_timeouts: self.wait_timeouts.load(Relaxed),
            wait_time: Duration::from_nanos(self.wait_nanos.load(Relaxed)),
        }
    }
}

/// A connection pool for the current io_uring thread; cheap to clone (an `Rc`).
///
/// ```no_run
/// use mysql_uring::{Pool, PoolOpts};
///
/// # async fn f() -> mysql_uring::Result<()> {
/// let pool = Pool::new("mysql://root@127.0.0.1:3306/test", PoolOpts { max: 8, ..Default::default() })?;
/// let mut cnx = pool.get().await?; // a PooledConn: derefs to Connection
/// cnx.query_drop("UPDATE counters SET n = n + 1").await?;
/// drop(cnx); // back to the pool
/// # Ok(()) }
/// ```
///
/// [`Pool`]: a connection pool for one core (one io_uring thread).
///
/// Connections belong to the io_uring of the thread that opened them, so a
/// pool is per core too: it is `Rc`-based (`!Send`), with no locks or atomics.
/// With [`crate::runtime::Runtime`], make one pool per core inside the work
/// sent there.
///
/// Every unit of the pool's capacity (`max`) is held by exactly one of: an
/// idle connection, a [`PooledConn`] handed out, a connection being opened,
/// checked or cleaned, or a waiter it was just granted to. Each of these gives
/// its unit back when dropped, so a cancelled [`Pool::get`] or a dropped
/// connection never leaks capacity.
#[derive(Clone)]
pub struct Pool(Rc<Inner>);

struct Inner {
    opts: Opts,
    popts: PoolOpts,
    state: RefCell<State>,
    metrics: Arc<Metrics>,
}

struct State {
    /// Back: most recently returned (handed out first); front: oldest (reaped first).
    idle: VecDeque<IdleConn>,
    total: usize,
    waiters: VecDeque<Rc<Waiter>>,
    maintenance_started: bool,
    /// The server refused a connect for having too many (1040, 1203) while
    /// this pool held others open: until then, callers wait for one of
    /// those instead of connecting again.
    connect_backoff: Option<(Instant, Duration)>,
}

/// The first pause after a refused connect; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The server's "too many connections" (1040), "user has too many
/// connections" (1203, the global `max_user_connections`) and "user has
/// exceeded its resource" (1226, a user's own `MAX_USER_CONNECTIONS`).
fn too_many_connections(e: &Error) -> bool {
    matches!(e.code(), Some(1040 | 1203 | 1226))
}

struct IdleConn {
    conn: Box<Connection>,
    since: Instant,
}

/// A caller of [`Pool::get`] waiting for capacity: it is granted a lease, with
/// a connection (handed over on return) or without (it may open one).
#[derive(Default)]
struct Waiter {
    grant: RefCell<Option<Lease>>,
    waker: RefCell<Option<Waker>>,
    /// Set when taken out of the line (to be granted): leaving need not search it.
    dequeued: std::cell::Cell<bool>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .field("popts", &self.0.popts)
            .finish()
    }
}

impl Pool {
    /// A pool for `opts` (an [`Opts`] or a URL). Opens nothing yet; the first
    /// [`get`](Pool::get) starts the background maintenance (idle reaping,
    /// keeping `min` open) on the current io_uring thread.
    ///
    /// Fails with [`ErrorKind::Config`] when the options are invalid,
    /// `max` is 0 or `min` exceeds `max`.
    pub fn new(opts: impl IntoOpts, popts: PoolOpts) -> Result<Pool> {
        let opts = opts.into_opts()?;
        if popts.max == 0 {
            return Err(Error::config("PoolOpts::max must be at least 1"));
        }
        if popts.min > popts.max {
            return Err(Error::config(format!(
                "PoolOpts::min ({}) exceeds PoolOpts::max ({})",
                popts.min, popts.max
            )));
        }
        Ok(Pool::with_checked(opts, popts, Arc::default()))
    }

    fn with_checked(opts: Opts, popts: PoolOpts, metrics: Arc<Metrics>) -> Pool {
        Pool(Rc::new(Inner {
            opts,
            popts,
            metrics,
            state: RefCell::new(State {
                idle: VecDeque::new(),
                total: 0,
                waiters: VecDeque::new(),
                maintenance_started: false,
                connect_backoff: None,
            }),
        }))
    }

    /// The pool's options.
    pub fn pool_opts(&self) -> &PoolOpts {
        &self.0.popts
    }

    /// What the pool has done and how it stands (counters and gauges).
    pub fn metrics(&self) -> PoolMetrics {
        self.0.metrics.snapshot()
    }

    /// How many connections are open, idle, and how many callers wait.
    pub fn status(&self) -> PoolStatus {
        let st = self.0.state.borrow();
        PoolStatus {
            total: st.total,
            idle: st.idle.len(),
            waiting: st.waiters.len(),
        }
    }

    /// A connection: an idle one (pinged first if idle for
    /// `health_check_after`), else a new one while fewer than `max` are
    /// open, else the next one returned, waiting at most `wait_timeout`
    /// ([`ErrorKind::Timeout`]). Waiters are served in order. Connection
    /// errors are returned as they are.
    pub async fn get(&self) -> Result<PooledConn> {
        // Outside a driver runtime: say what to do, before doing anything.
        crate::io::uring::Core::current()?;
        let c = self.get_inner().await?;
        add(&self.0.metrics.gets, 1);
        Ok(c)
    }

    async fn get_inner(&self) -> Result<PooledConn> {
        self.start_maintenance();
        let popts = &self.0.popts;
        // One deadline for the whole checkout: health checks of idle
        // connections, connects and waiting all come out of it.
        let deadline = popts.wait_timeout.map(|t| now() + t);
        loop {
            let idle = self.0.state.borrow_mut().idle.pop_back();
            if let Some(IdleConn { conn, since }) = idle {
                sub(&self.0.metrics.idle, 1);
                let mut lease = Lease::with(&self.0, conn);
                let age = now().saturating_duration_since(since);
                if popts.idle_timeout.is_some_and(|t| age >= t) {
                    lease.discard("idle_timeout");
                    continue;
                }
                // The ring saw the server close or reset it (a restart, a
                // wait_timeout): no ping needed to know it is dead.
                if lease.conn_mut().peer_gone() {
                    lease.discard("server_closed");
                    continue;
                }
                if popts.health_check_after.is_some_and(|t| age >= t) {
                    match self.alive(&mut lease, deadline).await {
                        Health::Alive => {}
                        Health::Failed => {
                            lease.discard("health_check_failed");
                            continue;
                        }
                        Health::Silent => {
                            // No answer at all: the server (or the way to it)
                            // is gone, and every connection idle as long went
                            // with it. Close them all rather than wait for
                            // each in turn.
                            lease.discard("health_check_failed");
                            self.discard_idle_since(since);
                            continue;
                        }
                    }
                }
                // Reads over replicas: one whose replica stopped or lags,
                // or a fallback to the primary while a replica is back, is
                // replaced by a connection to a better host.
                if !lease.conn_mut().still_fits().await {
                    lease.discard("replica_unfit");
                    continue;
                }
                return Ok(PooledConn { lease });
            }
            let lease = {
                let mut st = self.0.state.borrow_mut();
                let backing_off =
                    st.total > 0 && st.connect_backoff.is_some_and(|(until, _)| now() < until);
                if st.total < popts.max && !backing_off {
                    st.total += 1;
                    add(&self.0.metrics.open, 1);
                    Some(Lease::empty(&self.0))
                } else {
                    None
                }
            };
            let lease = match lease {
                Some(l) => l,
                None => {
                    let ahead = self.0.state.borrow().waiters.len();
                    crate::trace::pool_wait(popts.max, ahead, self.wait(deadline)).await?
                }
            };
            if lease.conn.is_some() {
                // Handed over straight from a return: just used, no check needed.
                return Ok(PooledConn { lease });
            }
            match self.open(lease, deadline).await {
                Err(e) if too_many_connections(&e) && self.others_open() => {
                    // The server is full but this pool holds connections:
                    // wait for one of them, and connect less eagerly.
                    self.back_off();
                    continue;
                }
                r => return r,
            }
        }
    }

    /// True while the pool holds connections besides the one being opened.
    fn others_open(&self) -> bool {
        self.0.state.borrow().total > 0
    }

    /// A connect was refused for too many connections: no new connect for
    /// a while (doubling, up to [`MAX_BACKOFF`]).
    fn back_off(&self) {
        let mut st = self.0.state.borrow_mut();
        let next = match st.connect_backoff {
            Some((_, d)) => (d * 2).min(MAX_BACKOFF),
            None => FIRST_BACKOFF,
        };
        st.connect_backoff = Some((now() + next, next));
    }

    /// Closes every idle connection idle since `since` or longer.
    fn discard_idle_since(&self, since: Instant) {
        let stale: Vec<IdleConn> = {
            let mut st = self.0.state.borrow_mut();
            let (stale, fresh): (VecDeque<IdleConn>, VecDeque<IdleConn>) =
                st.idle.drain(..).partition(|c| c.since <= since);
            st.idle = fresh;
            stale.into()
        };
        for c in stale {
            sub(&self.0.metrics.idle, 1);
            Lease::with(&self.0, c.conn).discard("health_check_failed");
        }
    }

    /// Pings the lease's connection, within the connect timeout (10 s by
    /// default) and the checkout's deadline, so that a peer that vanished
    /// without a reset cannot hold up `get`; a ping cut short leaves the
    /// connection to be closed.
    async fn alive(&self, lease: &mut Lease, deadline: Option<Instant>) -> Health {
        let mut limit = self.0.ping_limit();
        if let Some(d) = deadline {
            limit = limit.min(d.saturating_duration_since(now()));
        }
        match crate::io::uring::timeout(limit, lease.conn_mut().ping()).await {
            Ok(Ok(())) => Health::Alive,
            Ok(Err(_)) => Health::Failed,
            Err(_) => Health::Silent,
        }
    }

    /// Opens a connection into a lease that holds capacity but no connection,
    /// within the connect timeout and what is left of the checkout's deadline.
    async fn open(&self, mut lease: Lease, deadline: Option<Instant>) -> Result<PooledConn> {
        // On failure the lease drops and gives its capacity back (to a waiter, if any).
        let connect = Connection::connect(&self.0.opts);
        let r = match deadline {
            None => connect.await,
            Some(d) => {
                match crate::io::uring::timeout(d.saturating_duration_since(now()), connect).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "no connection within the pool's wait timeout of {:?}: connecting to the \
                         server did not finish in time (is it reachable?)",
                            self.0.popts.wait_timeout.unwrap_or_default()
                        ),
                    )),
                }
            }
        };
        let conn = match r {
            Ok(c) => c,
            Err(e) => {
                add(&self.0.metrics.connect_errors, 1);
                crate::trace::pool_connect_failed(&e);
                return Err(e);
            }
        };
        add(&self.0.metrics.created, 1);
        self.0.state.borrow_mut().connect_backoff = None;
        crate::trace::pool_opened(&conn);
        lease.conn = Some(Box::new(conn));
        Ok(PooledConn { lease })
    }

    /// Waits in line for a lease, until `deadline`.
    async fn wait(&self, deadline: Option<Instant>) -> Result<Lease> {
        let waiter = Rc::new(Waiter::default());
        self.0.state.borrow_mut().waiters.push_back(waiter.clone());
        let m = &self.0.metrics;
        add(&m.waiting, 1);
        add(&m.waits, 1);
        let t0 = now();
        let guard = WaitGuard {
            pool: &self.0,
            waiter,
        };
        let granted = poll_fn(|cx| match guard.waiter.grant.borrow_mut().take() {
            Some(lease) => Poll::Ready(lease),
            None => {
                *guard.waiter.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        let r = match deadline {
            None => Ok(granted.await),
            Some(d) => {
                match crate::io::uring::timeout(d.saturating_duration_since(now()), granted).await {
                    Ok(lease) => Ok(lease),
                    Err(_) => {
                        add(&m.wait_timeouts, 1);
                        Err(Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "no pooled connection became free within the wait timeout of {:?}: all {} \
                         (PoolOpts::max) are in use; raise max or return connections sooner",
                                self.0.popts.wait_timeout.unwrap_or_default(),
                                self.0.popts.max
                            ),
                        ))
                    }
                }
            }
        };
        add(
            &m.wait_nanos,
            now().saturating_duration_since(t0).as_nanos() as u64,
        );
        r
    }

    /// One maintenance pass: closes idle connections older than
    /// `idle_timeout` (keeping `min` open), then opens connections until
    /// `min` are open. The pool runs this in the background every half
    /// `idle_timeout` (at most every 30 s) once [`get`](Pool::get) was called;
    /// call it yourself to do it now. Returns the error of a failed connect.
    pub async fn maintain(&self) -> Result<()> {
        let popts = &self.0.popts;
        let mut reaped = Vec::new();
        if let Some(limit) = popts.idle_timeout {
            let mut st = self.0.state.borrow_mut();
            while st.total - reaped.len() > popts.min
                && st
                    .idle
                    .front()
                    .is_some_and(|c| now().saturating_duration_since(c.since) >= limit)
            {
                if let Some(c) = st.idle.pop_front() {
                    sub(&self.0.metrics.idle, 1);
                    add(&self.0.metrics.closed, 1);
                    crate::trace::pool_closed(&c.conn, "idle_timeout");
                    reaped.push(c.conn);
                }
            }
        }
        for conn in reaped {
            // Say goodbye; the capacity goes back once the socket is closed.
            let lease = Lease::empty(&self.0);
            let _ = conn.close().await;
            drop(lease);
        }
        loop {
            let lease = {
                let mut st = self.0.state.borrow_mut();
                if st.total >= popts.min {
                    break;
                }
                st.total += 1;
                add(&self.0.metrics.open, 1);
                Lease::empty(&self.0)
            };
            let mut fresh = self.open(lease, None).await?;
            // Straight to the idle list or a waiter: a new session needs no reset.
            if let Some(conn) = fresh.lease.conn.take() {
                fresh.lease.armed = false;
                hand_over(&self.0, conn);
            }
        }
        Ok(())
    }

    /// Closes every idle connection (`COM_QUIT`), as when the pool is
    /// being shut down; connections in use are not touched.
    pub(crate) async fn close_idle(&self) {
        let idle: Vec<IdleConn> = self.0.state.borrow_mut().idle.drain(..).collect();
        for c in idle {
            sub(&self.0.metrics.idle, 1);
            add(&self.0.metrics.closed, 1);
            crate::trace::pool_closed(&c.conn, "pool_closed");
            // The capacity goes back once the socket is closed.
            let lease = Lease::empty(&self.0);
            let _ = c.conn.close().await;
            drop(lease);
        }
    }

    /// Starts the background maintenance once, when there is something to maintain.
    fn start_maintenance(&self) {
        let p = &self.0.popts;
        if p.idle_timeout.is_none() && p.min == 0 {
            return;
        }
        {
            let mut st = self.0.state.borrow_mut();
            if st.maintenance_started {
                return;
            }
            st.maintenance_started = true;
        }
        let tick = p
            .idle_timeout
            .map_or(Duration::from_secs(30), |t| t / 2)
            .clamp(Duration::from_millis(10), Duration::from_secs(30));
        let weak: Weak<Inner> = Rc::downgrade(&self.0);
        let _ = crate::io::uring::try_spawn(async move {
            loop {
                // Holds the pool only during a pass: dropping every Pool ends the task.
                match weak.upgrade() {
                    Some(inner) => {
                        let _ = Pool(inner).maintain().await;
                    }
                    None => return,
                }
                crate::io::uring::sleep(tick).await;
            }
        });
    }
}

impl Inner {
    /// How long a health-check ping or a return's cleanup may take: the
    /// options' connect timeout, 10 s without one.
    fn ping_limit(&self) -> Duration {
        self.opts.connect_timeout.unwrap_or(Duration::from_secs(10))
    }
}

/// What a health check found.
enum Health {
    Alive,
    /// It answered with an error, or the connection failed.
    Failed,
    /// No answer within the time allowed.
    Silent,
}

/// The core's clock (virtual in a simulation).
fn now() -> Instant {
    crate::io::uring::kernel::now()
}

/// Removes a waiter that gave up (timed out or dropped) from the line, and
/// passes on a lease granted to it meanwhile.
struct WaitGuard<'a> {
    pool: &'a Rc<Inner>,
    waiter: Rc<Waiter>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        sub(&self.pool.metrics.waiting, 1);
        if !self.waiter.dequeued.get() {
            self.pool
                .state
                .borrow_mut()
                .waiters
                .retain(|w| !Rc::ptr_eq(w, &self.waiter));
        }
        let unused = self.waiter.grant.borrow_mut().take();
        drop(unused); // outside every borrow: this may grant the next waiter
    }
}

/// One unit of a pool's capacity, with or without a connection. Dropping it
/// gives both back: the connection to the idle list or the next waiter (after
/// cleaning it, see [`PoolOpts::reset_on_return`]), or, when there is no
/// usable connection, the capacity alone to the next waiter.
struct Lease {
    pool: Rc<Inner>,
    /// Boxed: a connection is a large struct, and it moves between the idle
    /// list, leases and waiters on every get and return.
    conn: Option<Box<Connection>>,
    /// False while the connection is being cleaned: if that is cut short
    /// (the task dropped), the connection is closed, not returned again.
    recycle: bool,
    /// False once the capacity moved elsewhere; dropping then does nothing.
    armed: bool,
}

impl Lease {
    fn empty(pool: &Rc<Inner>) -> Lease {
        Lease {
            pool: pool.clone(),
            conn: None,
            recycle: true,
            armed: true,
        }
    }

    fn with(pool: &Rc<Inner>, conn: Box<Connection>) -> Lease {
        Lease {
            pool: pool.clone(),
            conn: Some(conn),
            recycle: true,
            armed: true,
        }
    }

    fn conn_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a lease being checked holds a connection")
    }

    /// Closes the connection (`reason` for the trace); the capacity goes
    /// back when the lease drops.
    fn discard(&mut self, reason: &'static str) {
        if let Some(conn) = self.conn.take() {
            add(&self.pool.metrics.closed, 1);
            crate::trace::pool_closed(&conn, reason);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let pool = self.pool.clone();
        match self.conn.take() {
            Some(conn) if self.recycle => give_back(&pool, conn),
            other => {
                if let Some(conn) = &other {
                    add(&pool.metrics.closed, 1);
                    crate::trace::pool_closed(conn, "not_settled");
                }
                drop(other);
                give_back_capacity(&pool);
            }
        }
    }
}

/// A connection comes back: clean ones go to the next waiter or the idle
/// list; ones with something left to settle (an unread or abandoned reply, a
/// transaction open or dropped, a reset asked for) are cleaned first in a
/// task on this core, and handed out again only once clean; broken ones are
/// closed.
fn give_back(pool: &Rc<Inner>, conn: Box<Connection>) {
    if conn.is_broken() || !conn.can_settle() {
        add(&pool.metrics.closed, 1);
        crate::trace::pool_closed(&conn, "broken");
        drop(conn);
        give_back_capacity(pool);
        return;
    }
    let reset = pool.popts.reset_on_return;
    if reset || conn.in_transaction() || conn.needs_settle() {
        let mut lease = Lease::with(pool, conn);
        lease.recycle = false;
        // Outside a running loop (e.g. dropped after it ended) the task
        // cannot be started; dropping it drops the lease, which closes the
        // connection.
        let _ = crate::io::uring::try_spawn(async move {
            // Bounded like the health check: a silent peer must not hold
            // this unit of capacity for ever. `drain` reads abandoned
            // replies (interrupting their statement if they do not end) and
            // rolls back a dropped transaction.
            let limit = lease.pool.ping_limit();
            let conn = lease.conn_mut();
            let cleaned = crate::io::uring::timeout(limit.saturating_mul(3), async {
                conn.settle().await?;
                if reset {
                    conn.reset().await
                } else if conn.in_transaction() {
                    conn.query_drop("ROLLBACK").await.map(|_| ())
                } else {
                    Ok(())
                }
            })
            .await;
            if matches!(cleaned, Ok(Ok(()))) && !lease.conn_mut().is_broken() {
                add(&lease.pool.metrics.cleaned, 1);
                crate::trace::pool_cleaned(lease.conn_mut());
                if let Some(conn) = lease.conn.take() {
                    lease.armed = false; // the capacity moves on with the connection
                    hand_over(&lease.pool, conn);
                }
            }
            // Otherwise dropping the lease closes the connection.
        });
        return;
    }
    hand_over(pool, conn);
}

/// Hands a clean connection to the first waiter, or puts it on the idle list.
fn hand_over(pool: &Rc<Inner>, conn: Box<Connection>) {
    let waiter = pool.state.borrow_mut().waiters.pop_front();
    match waiter {
        Some(w) => grant(&w, Lease::with(pool, conn)),
        None => {
            add(&pool.metrics.idle, 1);
            pool.state
                .borrow_mut()
                .idle
                .push_back(IdleConn { conn, since: now() })
        }
    }
}

/// Capacity without a connection: to the first waiter (who opens one), or freed.
///
/// While connects back off (the server refused one for too many
/// connections), waiters keep waiting for a returned connection instead,
/// unless this was the pool's last one.
fn give_back_capacity(pool: &Rc<Inner>) {
    let waiter = {
        let mut st = pool.state.borrow_mut();
        let backing_off =
            st.total > 1 && st.connect_backoff.is_some_and(|(until, _)| now() < until);
        match st.waiters.front() {
            Some(_) if !backing_off => st.waiters.pop_front(),
            _ => {
                st.total -= 1;
                sub(&pool.metrics.open, 1);
                None
            }
        }
    };
    if let Some(w) = waiter {
        grant(&w, Lease::empty(pool));
    }
}

fn grant(w: &Waiter, lease: Lease) {
    w.dequeued.set(true);
    *w.grant.borrow_mut() = Some(lease);
    if let Some(waker) = w.waker.borrow_mut().take() {
        waker.wake();
    }
}

/// A connection from a [`Pool`]; derefs to [`Connection`]. Dropping it
/// returns it to the pool (closed instead if broken, or if a result was left
/// half-read).
pub struct PooledConn {
    lease: Lease,
}

impl PooledConn {
    /// Takes the connection out of the pool for good; the pool may open
    /// another in its place.
    pub fn detach(mut self) -> Connection {
        let conn = self.lease.conn.take().expect("a pooled connection");
        crate::trace::pool_detached(&conn);
        // The lease now holds no connection: dropping it frees the capacity.
        *conn
    }

    /// The pool this connection came from.
    pub fn pool(&self) -> Pool {
        Pool(self.lease.pool.clone())
    }
}

impl std::fmt::Debug for PooledConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledConn").field(&**self).finish()
    }
}

impl Deref for PooledConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.lease
            .conn
            .as_ref()
            .expect("a pooled connection holds its connection until dropped")
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut Connection {
        self.lease.conn_mut()
    }
}

mod per_core;
pub use per_core::PerCorePool;
