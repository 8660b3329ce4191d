//! The hand-off: how a [`Client`](crate::Client) call gets from the
//! caller's thread to a connection on a core, and back.
//!
//! - **Caller side** ([`Inbox`], one per route and core): the call, already
//!   encoded into owned values, is pushed on a locked list. Only the push
//!   that finds the list unscheduled sends a job to the core (and writes the
//!   core's eventfd if it sleeps): under load one job, one wake-up, carries
//!   a whole batch of calls.
//! - **Core side** ([`Lane`], one per route on each core): the batch joins a
//!   local queue served by long-lived worker tasks, at most one per
//!   connection the core's pool may open. A worker takes the next call and
//!   runs it on a pooled connection, which it keeps for the call after
//!   while calls are waiting (a clean connection only, and only while no one
//!   else waits for the pool); once the queue is empty it gives it back.
//!   So a call under load costs no task, no pool round trip and no large
//!   future moved around: the worker's state machine is built once.
//! - **Back**: the owned result goes through a [`slot`](super::slot) and
//!   wakes the caller.
//!
//! Dropping a call abandons it: a queued one is skipped, a running one is
//! dropped on the core (its connection is settled by the pool, as for any
//! dropped command). A call queued longer than the pool's `wait_timeout`
//! fails with [`ErrorKind::Timeout`], as a wait in the pool does.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use super::OwnedParams;
use super::slot::CommitMark;
use crate::conn::{Connection, StageOutput};
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{PerCorePool, Pool, PooledConn};
use crate::runtime::Runtime;

pub(crate) type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One call sent to a core: runs there on a pooled connection.
pub(crate) trait Work: Send {
    /// True once nobody waits for the result.
    fn canceled(&self) -> bool;
    /// Ends the call with `e` (no connection could be had for it).
    fn fail(self: Box<Self>, e: Error);
    /// Runs the call on `conn`. Resolves to true when the call finished
    /// normally (not cancelled, not panicked): only then may the worker keep
    /// the connection for the next call, if it is clean.
    fn run<'c>(self: Box<Self>, conn: &'c mut Connection) -> LocalBoxFuture<'c, bool>;
    /// For a prepared execute that may share a round trip with the calls
    /// queued behind it ([`ClientBuilder::multiplex`](crate::ClientBuilder::multiplex)):
    /// its statement, parameters and commit mark (set once its execute is
    /// written: from then on a call ended without its result has an
    /// unknown outcome), taken to join a batch (after which only
    /// [`Work::finish`] ends it). `None` for every other call.
    fn take_stage(&mut self) -> Option<(String, OwnedParams, CommitMark)> {
        None
    }
    /// Ends a call whose stage joined a batch, with its result.
    fn finish(self: Box<Self>, r: Result<StageOutput>) {
        drop(r);
    }
    /// True for a call [`Work::take_stage`] would give a stage.
    fn is_stage(&self) -> bool {
        false
    }
}

/// A queued call and when it was queued (for the wait timeout).
struct Queued {
    work: Box<dyn Work>,
    since: Instant,
    /// Queued with every worker busy: counted as a pool wait until taken.
    waits: bool,
}

// ------------------------------------------------------------ caller side

/// Where callers leave calls for one core of one route.
pub(crate) struct Inbox {
    calls: Mutex<Vec<Queued>>,
    /// True while a job that will take `calls` is on its way to the core.
    scheduled: AtomicBool,
    core: usize,
    pools: PerCorePool,
    /// Calls per round trip ([`ClientBuilder::multiplex`](crate::ClientBuilder::multiplex)).
    multiplex: usize,
}

impl Inbox {
    pub(crate) fn new(core: usize, pools: PerCorePool, multiplex: usize) -> Arc<Inbox> {
        Arc::new(Inbox {
            calls: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
            core,
            pools,
            multiplex,
        })
    }

    /// Hands `work` to the core. When the core has stopped, the work is
    /// dropped, which its caller sees as [`ErrorKind::Stopped`].
    pub(crate) fn push(self: &Arc<Self>, rt: &Runtime, work: Box<dyn Work>) {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Queued {
                work,
                since: Instant::now(),
                waits: false,
            });
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return; // a job on its way takes this call too
        }
        let mut taker = Taker(Some(self.clone()));
        let job = Box::new(move || {
            if let Some(inbox) = taker.0.take() {
                inbox.take_on_core();
            }
        });
        // Refused (the core stopped): dropping the job drops the calls.
        let _ = rt.send_job_to(self.core, job);
    }

    /// On the core: moves the waiting calls to the lane.
    fn take_on_core(self: Arc<Self>) {
        // Cleared first: a push after this point schedules another job.
        self.scheduled.store(false, Ordering::SeqCst);
        let calls = std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()));
        if calls.is_empty() {
            return;
        }
        let lane = Lane::here(&self.pools, self.core, self.multiplex);
        lane.accept(calls);
    }
}

/// The job that takes an inbox's calls to its core. Dropped without
/// running (the core stopped), it drops those calls, so their callers hear
/// of it instead of waiting for ever.
struct Taker(Option<Arc<Inbox>>);

impl Drop for Taker {
    fn drop(&mut self) {
        if let Some(inbox) = self.0.take() {
            inbox.scheduled.store(false, Ordering::SeqCst);
            let calls = std::mem::take(&mut *inbox.calls.lock().unwrap_or_else(|p| p.into_inner()));
            drop(calls);
        }
    }
}

// ------------------------------------------------------------ core side

thread_local! {
    /// This core's lanes, one per route (keyed by the route's pool id).
    static LANES: RefCell<Vec<Rc<Lane>>> = const { RefCell::new(Vec::new()) };
}

/// One route's calls on one core, and the workers serving them.
pub(crate) struct Lane {
    id: u64,
    pool: Pool,
    /// For the metrics of calls that wait in the queue.
    pools: PerCorePool,
    queue: RefCell<VecDeque<Queued>>,
    /// Workers waiting for a call (most recent last).
    idle: RefCell<Vec<Waker>>,
    workers: Cell<usize>,
    max_workers: usize,
    /// Calls queued or running (for a graceful close).
    active: Cell<usize>,
    closed: Cell<bool>,
    /// Who waits for `active` to reach 0.
    quiet: RefCell<Vec<Waker>>,
    /// True while a task fails calls that waited too long.
    reaper: Cell<bool>,
    /// Calls per round trip on one connection.
    multiplex: usize,
}

impl Lane {
    /// This core's lane of the route whose pools are `pools`, made on first use.
    fn here(pools: &PerCorePool, core: usize, multiplex: usize) -> Rc<Lane> {
        let id = pools.id();
        LANES.with(|l| {
            let mut lanes = l.borrow_mut();
            if let Some(lane) = lanes.iter().find(|l| l.id == id) {
                return lane.clone();
            }
            let lane = Rc::new(Lane {
                id,
                pool: pools.pool(),
                pools: pools.clone(),
                queue: RefCell::new(VecDeque::new()),
                idle: RefCell::new(Vec::new()),
                workers: Cell::new(0),
                max_workers: pools.max_on(core).max(1),
                active: Cell::new(0),
                closed: Cell::new(false),
                quiet: RefCell::new(Vec::new()),
                reaper: Cell::new(false),
                multiplex,
            });
            lanes.push(lane.clone());
            lane
        })
    }

    /// Takes this core's lane of the route out of use: its workers finish
    /// what is queued, then end. Returns it (to wait for it), if there was one.
    pub(crate) fn close_here(pools: &PerCorePool) -> Option<Rc<Lane>> {
        let id = pools.id();
        let lane = LANES.with(|l| {
            let mut lanes = l.borrow_mut();
            let at = lanes.iter().position(|l| l.id == id)?;
            Some(lanes.swap_remove(at))
        })?;
        lane.closed.set(true);
        lane.wake_idle_all();
        Some(lane)
    }

    /// Resolves once no call is queued or running here.
    pub(crate) fn quiet(self: &Rc<Self>) -> impl Future<Output = ()> + 'static {
        let lane = self.clone();
        std::future::poll_fn(move |cx| {
            if lane.active.get() == 0 {
                Poll::Ready(())
            } else {
                lane.quiet.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn wake_idle_all(&self) {
        let idle = std::mem::take(&mut *self.idle.borrow_mut());
        for w in idle {
            w.wake();
        }
    }

    /// A batch of calls arrives from the inbox.
    fn accept(self: &Rc<Self>, calls: Vec<Queued>) {
        let n = calls.len();
        self.active.set(self.active.get() + n);
        self.queue.borrow_mut().extend(calls);
        let mut served = 0;
        while served < n {
            let idle = self.idle.borrow_mut().pop();
            match idle {
                Some(w) => w.wake(),
                None if self.workers.get() < self.max_workers => {
                    self.workers.set(self.workers.get() + 1);
                    let lane = self.clone();
                    if crate::io::uring::try_spawn(worker(lane)).is_err() {
                        self.workers.set(self.workers.get() - 1);
                        break;
                    }
                }
                None => break, // every worker is busy: they come back for it
            }
            served += 1;
        }
        if served < n {
            // The rest waits for a worker (and so for a connection).
            let mut q = self.queue.borrow_mut();
            let len = q.len();
            for c in q.range_mut(len - (n - served)..) {
                c.waits = true;
                self.pools.wait_started();
            }
            drop(q);
            self.start_reaper();
        }
    }

    /// A queued call leaves the queue (taken, skipped or failed).
    fn dequeued(&self, q: &Queued, timed_out: bool) {
        if q.waits {
            self.pools.wait_ended(q.since.elapsed(), timed_out);
        }
    }

    /// A call left the lane (done, failed or skipped).
    fn done(&self) {
        let a = self.active.get().saturating_sub(1);
        self.active.set(a);
        if a == 0 {
            let quiet = std::mem::take(&mut *self.quiet.borrow_mut());
            for w in quiet {
                w.wake();
            }
        }
    }

    /// The next call for a worker; `None` once the lane is closed and empty.
    /// Before waiting, the worker's held connection goes back to the pool.
    fn next<'a>(
        &'a self,
        held: &'a mut Option<PooledConn>,
    ) -> impl Future<Output = Option<Box<dyn Work>>> + 'a {
        std::future::poll_fn(move |cx| {
            loop {
                let Some(q) = self.queue.borrow_mut().pop_front() else {
                    break;
                };
                self.dequeued(&q, false);
                if q.work.canceled() {
                    drop(q);
                    self.done();
                    continue;
                }
                return Poll::Ready(Some(q.work));
            }
            // Nothing to do: the connection goes back while we wait.
            drop(held.take());
            if self.closed.get() {
                return Poll::Ready(None);
            }
            self.idle.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
    }

    /// The calls queued right behind `first` that may share its round trip
    /// (at most the lane's depth in all; cancelled ones are skipped). Only
    /// calls that would otherwise wait for a connection: while a worker is
    /// idle or another may start, calls keep a connection each.
    fn batch_behind(&self, first: &dyn Work) -> Vec<Box<dyn Work>> {
        let mut more = Vec::new();
        if self.multiplex < 2
            || !first.is_stage()
            || !self.idle.borrow().is_empty()
            || self.workers.get() < self.max_workers
        {
            return more;
        }
        while more.len() + 1 < self.multiplex {
            let mut q = self.queue.borrow_mut();
            if !q.front().is_some_and(|c| c.work.is_stage()) {
                break;
            }
            let Some(c) = q.pop_front() else { break };
            drop(q);
            self.dequeued(&c, false);
            if c.work.canceled() {
                drop(c);
                self.done();
                continue;
            }
            more.push(c.work);
        }
        more
    }

    /// May a worker keep `conn` for the next call?
    fn may_keep(&self, conn: &PooledConn) -> bool {
        !self.pool.pool_opts().reset_on_return
            && !conn.is_broken()
            && !conn.needs_settle()
            && !conn.in_transaction()
            && self.pool.status().waiting == 0
            && !self.queue.borrow().is_empty()
    }

    /// With every worker busy, calls wait in the queue: one task fails those
    /// that waited longer than the pool's wait timeout.
    fn start_reaper(self: &Rc<Self>) {
        let Some(limit) = self.pool.pool_opts().wait_timeout else {
            return;
        };
        if self.reaper.replace(true) {
            return;
        }
        let lane = Rc::downgrade(self);
        let started = crate::io::uring::try_spawn(async move {
            loop {
                let next = {
                    let Some(lane) = lane.upgrade() else { return };
                    let oldest = lane.queue.borrow().front().map(|q| q.since);
                    let Some(oldest) = oldest else {
                        lane.reaper.set(false);
                        return;
                    };
                    let now = Instant::now();
                    if now.duration_since(oldest) >= limit {
                        let expired: Vec<Queued> = {
                            let mut q = lane.queue.borrow_mut();
                            let keep = q
                                .iter()
                                .position(|c| now.duration_since(c.since) < limit)
                                .unwrap_or(q.len());
                            q.drain(..keep).collect()
                        };
                        for q in expired {
                            lane.dequeued(&q, true);
                            q.work.fail(Error::new(
                                ErrorKind::Timeout,
                                format!(
                                    "no pooled connection became free within the wait timeout \
                                     of {limit:?}: all {} of this core (PoolOpts::max, or its \
                                     share of max_connections) are in use; raise it or return \
                                     connections sooner",
                                    lane.max_workers
                                ),
                            ));
                            lane.done();
                        }
                        continue;
                    }
                    oldest + limit
                };
                crate::io::uring::sleep_until(next).await;
            }
        });
        if started.is_err() {
            self.reaper.set(false);
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Calls never taken (the core stopped): their waits end here.
        for q in self.queue.get_mut().drain(..) {
            if q.waits {
                self.pools.wait_ended(q.since.elapsed(), false);
            }
        }
    }
}

/// A worker: takes calls from its lane and runs them, one at a time, on a
/// pooled connection it keeps while calls are waiting.
async fn worker(lane: Rc<Lane>) {
    let mut held: Option<PooledConn> = None;
    while let Some(work) = lane.next(&mut held).await {
        let mut conn = match held.take() {
            Some(c) => c,
            None => match lane.pool.get().await {
                Ok(c) => c,
                Err(e) => {
                    work.fail(e);
                    lane.done();
                    continue;
                }
            },
        };
        let more = lane.batch_behind(&*work);
        let finished = if more.is_empty() {
            let finished = crate::io::uring::exec::calls_running(work.run(&mut conn)).await;
            lane.done();
            finished
        } else {
            let mut calls = Vec::with_capacity(more.len() + 1);
            calls.push(work);
            calls.extend(more);
            crate::io::uring::exec::calls_running(run_batch(&lane, &mut conn, calls)).await
        };
        if finished && lane.may_keep(&conn) {
            held = Some(conn);
        }
        // Otherwise `conn` goes back to the pool here, which settles it.
    }
    lane.workers.set(lane.workers.get().saturating_sub(1));
}

/// Runs `calls` (each with a stage) as one multiplexed round trip on `conn`;
/// each call ends as soon as its result is read. True when the batch ran
/// to its end.
async fn run_batch(lane: &Lane, conn: &mut Connection, calls: Vec<Box<dyn Work>>) -> bool {
    let mut calls: Vec<Option<Box<dyn Work>>> = calls.into_iter().map(Some).collect();
    let mut marks = Vec::with_capacity(calls.len());
    let stages: Vec<(String, OwnedParams)> = calls
        .iter_mut()
        .map(|c| match c.as_mut().and_then(|c| c.take_stage()) {
            Some((sql, params, mark)) => {
                marks.push(Some(mark));
                (sql, params)
            }
            None => {
                marks.push(None);
                (String::new(), OwnedParams::default())
            }
        })
        .collect();
    let refs: Vec<(&str, &OwnedParams)> = stages.iter().map(|(s, p)| (s.as_str(), p)).collect();
    // A call not ended by the batch (dropped midway: the core stopped, or
    // a panic) is ended by this guard: its sender goes, which its caller
    // hears of (as an unknown outcome once its execute was written).
    struct Ends<'a> {
        lane: &'a Lane,
        calls: Vec<Option<Box<dyn Work>>>,
    }
    impl Drop for Ends<'_> {
        fn drop(&mut self) {
            for c in self.calls.iter_mut() {
                if c.take().is_some() {
                    self.lane.done();
                }
            }
        }
    }
    let mut ends = Ends {
        lane,
        calls: std::mem::take(&mut calls),
    };
    let mut deliver = |i: usize, r: Result<StageOutput>| {
        if let Some(c) = ends.calls.get_mut(i).and_then(Option::take) {
            c.finish(r);
            ends.lane.done();
        }
    };
    let mut sent = |i: usize| {
        if let Some(Some(m)) = marks.get(i) {
            m.set();
        }
    };
    let run = conn.exec_multiplexed(&refs, &mut deliver, &mut sent);
    // A panic inside ends the batch, not the worker.
    let finished = crate::io::uring::exec::CatchUnwind(run).await.is_ok();
    drop(ends);
    finished
}
