//! [`PerCorePool`]: one [`Pool`] per core behind a `Send + Sync` handle.

use std::cell::RefCell;

use std::sync::Arc;
use std::time::Duration;

use super::{Metrics, Pool, PoolMetrics, PoolOpts, PooledConn, add, sub};
use crate::error::{Error, Result};
use crate::opts::{IntoOpts, Opts};

static NEXT_PER_CORE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// This thread's pools, one per [`PerCorePool`] that was used here.
    static CORE_POOLS: RefCell<Vec<(u64, Pool)>> = const { RefCell::new(Vec::new()) };
}

/// One [`Pool`] per core (per io_uring thread), behind a handle that is
/// `Send + Sync + Clone`: give it to [`crate::runtime::Runtime::run_on_all`]
/// and each core gets its own pool, created on first use and kept for the
/// thread's life, so connections are reused across runs. The handle crosses
/// threads; [`get`](PerCorePool::get) runs on a core (its future and the
/// connection it gives are that core's). From tokio or any other executor,
/// use [`Client`](crate::Client), which routes each call to a core's pool.
///
/// ```no_run
/// use mysql_uring::runtime::Runtime;
/// use mysql_uring::{PerCorePool, PoolOpts};
///
/// # fn main() -> mysql_uring::Result<()> {
/// let rt = Runtime::builder().build()?;
/// let pools = PerCorePool::new("mysql://root@127.0.0.1:3306/test", PoolOpts::default())?;
/// for _ in 0..3 {
///     let pools = pools.clone();
///     rt.run_on_all(move |_core| async move {
///         let mut cnx = pools.get().await?; // this core's pool
///         cnx.query_drop("DO 1").await?;
///         Ok(())
///     });
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PerCorePool {
    inner: std::sync::Arc<PerCoreInner>,
}

#[derive(Debug)]
struct PerCoreInner {
    id: u64,
    opts: Opts,
    popts: PoolOpts,
    /// With a hard total over the cores of a runtime: core `i`'s (min, max).
    split: Option<Vec<(usize, usize)>>,
    metrics: Arc<Metrics>,
    /// Set when its owner (a [`Client`](crate::Client)) has gone: no core
    /// keeps a new pool for it in its thread-local list any more.
    retired: std::sync::atomic::AtomicBool,
}

impl PerCorePool {
    /// Checks the options like [`Pool::new`]; no pool is made until a core asks.
    pub fn new(opts: impl IntoOpts, popts: PoolOpts) -> Result<PerCorePool> {
        let check = Pool::new(opts, popts)?;
        Ok(Self::with_split(
            check.0.opts.clone(),
            check.0.popts.clone(),
            None,
        ))
    }

    /// `min` and `max` as totals over `cores` cores of a runtime, divided
    /// exactly: core `i` gets `total / cores`, plus one for the first
    /// `total % cores` cores. A core whose share of `max` is 0 has no pool
    /// (see [`PerCorePool::max_on`]). Options checked like [`Pool::new`],
    /// except that `max` may be below `cores`.
    pub(crate) fn with_totals(opts: Opts, popts: PoolOpts, cores: usize) -> Result<PerCorePool> {
        let cores = cores.max(1);
        if popts.max == 0 {
            return Err(Error::config("the pool's max must be at least 1"));
        }
        if popts.min > popts.max {
            return Err(Error::config(format!(
                "the pool's min ({}) exceeds its max ({})",
                popts.min, popts.max
            )));
        }
        let share = |total: usize, i: usize| total / cores + usize::from(i < total % cores);
        let split = (0..cores)
            .map(|i| (share(popts.min, i), share(popts.max, i)))
            .collect();
        Ok(Self::with_split(opts, popts, Some(split)))
    }

    fn with_split(opts: Opts, popts: PoolOpts, split: Option<Vec<(usize, usize)>>) -> PerCorePool {
        let id = NEXT_PER_CORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PerCorePool {
            inner: std::sync::Arc::new(PerCoreInner {
                id,
                opts,
                popts,
                split,
                metrics: Arc::default(),
                retired: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The most connections core `index` may open (its share of a total).
    pub(crate) fn max_on(&self, index: usize) -> usize {
        match &self.inner.split {
            Some(split) => split.get(index).map_or(0, |s| s.1),
            None => self.inner.popts.max,
        }
    }

    /// The pool options of the calling thread's pool.
    fn popts_here(&self) -> PoolOpts {
        let mut popts = self.inner.popts.clone();
        if let Some(split) = &self.inner.split {
            let (min, max) = crate::runtime::current_core()
                .and_then(|i| split.get(i).copied())
                .unwrap_or((0, 0));
            // A core without a share never gets calls routed to it; one made
            // anyway (max 0 cannot work) gets a single connection.
            popts.max = max.max(1);
            popts.min = min.min(popts.max);
        }
        popts
    }

    /// The identity shared by the clones of this handle.
    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// The calling thread's pool, made on first use.
    pub fn pool(&self) -> Pool {
        let id = self.inner.id;
        CORE_POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            if let Some((_, p)) = pools.iter().find(|(i, _)| *i == id) {
                return p.clone();
            }
            let p = Pool::with_checked(
                self.inner.opts.clone(),
                self.popts_here(),
                self.inner.metrics.clone(),
            );
            if !self
                .inner
                .retired
                .load(std::sync::atomic::Ordering::Acquire)
            {
                pools.push((id, p.clone()));
            }
            p
        })
    }

    /// From now on, a core that makes a pool for this handle does not keep
    /// it: it lives only as long as its users.
    pub(crate) fn retire(&self) {
        self.inner
            .retired
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Takes the calling thread's pool out of its thread-local place, so it
    /// goes away (with its idle connections) once its last user drops it.
    pub(crate) fn forget_here(&self) -> Option<Pool> {
        let id = self.inner.id;
        CORE_POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            let at = pools.iter().position(|(i, _)| *i == id)?;
            Some(pools.swap_remove(at).1)
        })
    }

    /// Counters and gauges of every core's pool added up; see [`PoolMetrics`].
    pub fn metrics(&self) -> PoolMetrics {
        self.inner.metrics.snapshot()
    }

    /// A [`Client`](crate::Client) call starts waiting for a connection (in
    /// its core's queue rather than in the pool): counted as a pool wait.
    pub(crate) fn wait_started(&self) {
        add(&self.inner.metrics.waiting, 1);
        add(&self.inner.metrics.waits, 1);
    }

    /// That wait ended after `waited`, at the wait timeout when `timed_out`.
    pub(crate) fn wait_ended(&self, waited: Duration, timed_out: bool) {
        sub(&self.inner.metrics.waiting, 1);
        add(&self.inner.metrics.wait_nanos, waited.as_nanos() as u64);
        if timed_out {
            add(&self.inner.metrics.wait_timeouts, 1);
        }
    }

    /// A connection from the calling thread's pool; see [`Pool::get`].
    pub async fn get(&self) -> Result<PooledConn> {
        self.pool().get().await
    }
}
