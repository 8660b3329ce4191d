//! The driver's own io_uring event loop: one ring per thread, and the only
//! io_uring code in the crate.
//!
//! # How a core runs
//! A core is one thread with one ring (`reactor.rs`), one task table
//! (`exec.rs`) and one list of timers (`time.rs`). Each turn of its loop:
//! 1. polls the tasks that were woken (each may queue submissions: a send,
//!    a receive to arm, a connect);
//! 2. takes work other threads sent (jobs, wake-ups) and fires due timers;
//! 3. enters the kernel **once** (`io_uring_enter`): submitting everything
//!    queued and, when no task is runnable, waiting for completions;
//! 4. dispatches the completions, waking the tasks they belong to.
//!
//! There is no epoll and no timer thread: the wait happens in
//! `io_uring_enter` itself, with the nearest timer as its timeout.
//!
//! # Why the ring is set up this way
//! - `SINGLE_ISSUER | DEFER_TASKRUN` (with `COOP_TASKRUN | TASKRUN_FLAG`):
//!   completions are produced only when this thread asks for them, in its
//!   own wait, instead of interrupting it; measured on the raw floor client,
//!   dropping `DEFER_TASKRUN` costs about 11 µs of client CPU per query at
//!   64 connections. Kernels without it fall back step by step
//!   ([`RingSetup`]), and [`RingInfo`] says which setup a core got.
//! - **Batched waits**: when many tasks wait, the loop asks the kernel for
//!   several completions per wait (one per [`RingConfig::batch_per`]
//!   waiters, at most [`RingConfig::batch_max`]) with a short minimum-wait
//!   bound ([`RingConfig::batch_min_wait`], Linux 6.12+): after that bound
//!   the wait returns as soon as one completion is there, so a lightly
//!   loaded core adds no latency while a busy one sleeps far less than once
//!   per query. With one waiter it waits for one completion. The wait
//!   always carries an overall timeout too (the next timer, else an hour):
//!   without one the kernel treats the minimum wait as the timeout and
//!   returns empty every 200 µs while nothing arrives, which cost slow
//!   statements ~20 wake-ups each (found by the bench tool's multi-row
//!   INSERT at 4 connections; a test guards it).
//! - **Multishot receive into a provided buffer ring**: each socket has one
//!   receive armed for its whole life; the kernel picks a buffer from the
//!   core's ring, the loop copies the bytes into the socket's inbox and gives
//!   the buffer straight back. The reader then takes the inbox by swapping
//!   buffers (no copy when its own buffer is empty). An inbox above
//!   [`RingConfig::inbox_limit`] stops the receive until it is read, so TCP
//!   back-pressure still works.
//! - **Sends with `CQE_SKIP_SUCCESS`** when the reply will prove them done
//!   (a command followed by reading its reply): no completion, no wake-up;
//!   a failed or short send still posts one (`MSG_WAITALL`). Other sends
//!   wait for their completion and resubmit what a short send left.
//! - **Registered ring fd and fixed files**: the kernel skips the fd lookup
//!   on every enter and every socket operation.
//! - **Cancellation in the kernel**: a dropped operation is cancelled with
//!   `ASYNC_CANCEL`; the memory it used is kept until its last completion. A
//!   closed socket's operations are cancelled before its buffers and fd go.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

mod bufring;
pub(crate) mod exec;
pub(crate) mod kernel;
mod ops;
mod reactor;
mod sock;
pub(crate) mod socket;
pub(crate) mod time;

#[cfg(test)]
mod tests;

pub use exec::{JoinError, JoinHandle};
pub use reactor::RingStats;
pub use socket::Socket;
pub use time::{Elapsed, Sleep, Timeout};

use exec::{Executor, Job, Remote, Shared};
use reactor::Reactor;
use time::Timers;

/// Which io_uring setup a core's ring was created with: the most capable
/// the kernel accepted, from the best down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RingSetup {
    /// No setup flags (any kernel with io_uring).
    Plain,
    /// `COOP_TASKRUN` + `TASKRUN_FLAG` (Linux 5.19+).
    CoopTaskrun,
    /// `SINGLE_ISSUER` + `COOP_TASKRUN` + `TASKRUN_FLAG` (Linux 6.0+).
    SingleIssuer,
    /// `SINGLE_ISSUER` + `DEFER_TASKRUN` + `COOP_TASKRUN` + `TASKRUN_FLAG`
    /// (Linux 6.1+): completions run only in this thread's own wait.
    DeferTaskrun,
}

/// What a core's ring got from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingInfo {
    /// The setup flags.
    pub setup: RingSetup,
    /// The ring fd is registered (`IORING_REGISTER_RING_FDS`).
    pub registered_ring_fd: bool,
    /// Sockets are registered as fixed files.
    pub fixed_files: bool,
    /// Batched waits can use the kernel's minimum-wait bound (Linux 6.12+);
    /// without it the loop waits for one completion at a time.
    pub min_wait: bool,
    /// Provided buffers in the core's buffer ring.
    pub buffers: u16,
    /// Size of each provided buffer.
    pub buffer_size: usize,
}

/// How a core's ring is sized and how it waits. The defaults suit a
/// database client; tests use tiny values to force the hard cases.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Submission queue entries (completion queue: 4x). Default 256.
    pub entries: u32,
    /// Provided buffers for receives (a power of two). Default 256.
    pub buffers: u16,
    /// Bytes per provided buffer. Default 16 KiB.
    pub buffer_size: usize,
    /// Unread bytes a socket may hold before its receive pauses. Default 4 MiB.
    pub inbox_limit: usize,
    /// Size of the fixed-file table (0: plain fds). Default 1024.
    pub fixed_files: u32,
    /// Wait for one more completion per this many waiting tasks (0: always
    /// one). Default 2.
    ///
    /// The defaults were measured (prepared point selects against MariaDB
    /// on the same 2-core machine, interleaved with mysql_async): at 64
    /// connections, client CPU per query fell from 0.69-0.76x mysql_async's
    /// without batching to 0.32-0.49x with 2/32/200 µs, with p99 latency
    /// lower and p50 unchanged; at 1, 4 and 16 connections p50 was the same
    /// or better (a wait returns as soon as one completion is there once the
    /// minimum wait has passed, and one waiter always waits for one).
    pub batch_per: usize,
    /// At most this many completions per wait. Default 32.
    pub batch_max: usize,
    /// How long a batched wait may hold out for its count before returning
    /// with what it has. Default 200 µs.
    pub batch_min_wait: Duration,
    /// The most capable setup to try (tests force fallbacks with it).
    pub max_setup: RingSetup,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            batch_per: 2,
            batch_max: 32,
            batch_min_wait: Duration::from_micros(200),
            entries: 256,
            buffers: 256,
            buffer_size: 16 * 1024,
            inbox_limit: 4 << 20,
            fixed_files: 1024,
            max_setup: RingSetup::DeferTaskrun,
        }
    }
}

/// Tasks polled per turn before the loop looks at the ring again.
const BUDGET: usize = 256;

/// One thread's ring, tasks and timers.
pub(crate) struct Core {
    pub(crate) reactor: RefCell<Reactor>,
    pub(crate) exec: Executor,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) shared: Arc<Shared>,
    /// True while `block_on` drives this core.
    pub(crate) running: Cell<bool>,
    /// Set by a job to end `block_on` (a runtime core stopping).
    pub(crate) stop: Cell<bool>,
}

thread_local! {
    static CORE: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// The message of every "no runtime here" error.
pub(crate) const NO_RUNTIME: &str = "this needs mysql-uring's io_uring runtime on the current thread, \
     and there is none: run the code inside mysql_uring::start(..), on a core of a \
     mysql_uring::runtime::Runtime (run_on / run_on_all / spawn_on), or use mysql_uring::Client \
     from tokio or any other executor";

impl Core {
    /// The core running on this thread.
    pub(crate) fn current() -> crate::Result<Rc<Core>> {
        CORE.with(|c| c.borrow().clone())
            .ok_or_else(|| crate::Error::usage(NO_RUNTIME))
    }

    /// [`Core::current`] as an IO error (for the IO shell).
    pub(crate) fn current_io() -> io::Result<Rc<Core>> {
        CORE.with(|c| c.borrow().clone())
            .ok_or_else(|| io::Error::other(NO_RUNTIME))
    }

    /// Fails when this core's loop is not running (a socket outlived it).
    pub(crate) fn check_running(&self) -> io::Result<()> {
        if self.running.get() {
            Ok(())
        } else {
            Err(io::Error::other(
                "this connection belongs to an io_uring runtime that has stopped; \
                 connections cannot outlive the runtime (start) they were opened in",
            ))
        }
    }

    fn new(cfg: &RingConfig) -> io::Result<Core> {
        let shared = Shared::new()?;
        let reactor = Reactor::new(cfg, shared.eventfd())?;
        Ok(Self::with_reactor(shared, reactor))
    }

    #[cfg(feature = "sim")]
    fn simulated(cfg: &RingConfig, kernel: Box<crate::sim::kernel::SimKernel>) -> io::Result<Core> {
        let shared = Shared::new()?;
        let reactor = Reactor::simulated(kernel, cfg, shared.eventfd())?;
        Ok(Self::with_reactor(shared, reactor))
    }

    fn with_reactor(shared: Arc<Shared>, reactor: Reactor) -> Core {
        Core {
            reactor: RefCell::new(reactor),
            exec: Executor::new(shared.clone()),
            timers: RefCell::new(Timers::default()),
            shared,
            running: Cell::new(false),
            stop: Cell::new(false),
        }
    }

    fn wake_all(wakers: &mut Vec<Waker>) {
        for w in wakers.drain(..) {
            w.wake();
        }
    }

    /// The loop; returns when `main` is ready (or a job set `stop`).
    fn run<F: Future>(&self, main: Pin<&mut F>) -> io::Result<Option<F::Output>> {
        let mut main = main;
        let main_waker = self.exec.main_waker();
        let mut remote = Remote::default();
        let mut wakers = Vec::new();
        loop {
            if self.exec.take_main_woken() {
                let mut cx = Context::from_waker(&main_waker);
                if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
                    return Ok(Some(v));
                }
            }
            self.exec.run(BUDGET);
            if self.shared.take_remote(&mut remote) {
                for h in remote.wakes.drain(..) {
                    exec::requeue(h);
                }
                for job in remote.jobs.drain(..) {
                    job();
                }
            }
            // Results for other threads' callers go out in bursts.
            let _ = exec::flush_deferred(false);
            if self.stop.get() {
                return Ok(None);
            }
            let mut timeout = None;
            if !self.timers.borrow().is_empty() {
                let now = kernel::now();
                self.timers.borrow_mut().expire(now, &mut wakers);
                Self::wake_all(&mut wakers);
                timeout = self
                    .timers
                    .borrow()
                    .next_deadline()
                    .map(|d| d.saturating_duration_since(now));
            }
            let mut ready = self.exec.has_ready();
            if !ready {
                // About to wait: the results kept for other threads go now
                // (a waker may be one of this core's own tasks: look again),
                // or, while calls still run here, by the time they are due.
                if let Some(due) = exec::flush_deferred(true) {
                    timeout = Some(timeout.map_or(due, |t: Duration| t.min(due)));
                }
                ready = self.exec.has_ready();
            }
            let sleeping = !ready && self.shared.prepare_sleep();
            if !sleeping {
                ready = true;
            }
            let r = self.reactor.borrow_mut().enter(ready, timeout);
            if sleeping {
                self.shared.awake();
            }
            r?;
            let mut reactor = self.reactor.borrow_mut();
            reactor.dispatch();
            reactor.take_wakes(&mut wakers);
            drop(reactor);
            Self::wake_all(&mut wakers);
        }
    }
}

/// A ring and its tasks on the current thread, driven by [`LocalRuntime::block_on`]
/// calls; what [`start`](crate::start) and every core of a
/// [`Runtime`](crate::runtime::Runtime) run on.
///
/// Connections opened inside `block_on` may be kept and used again in a later
/// `block_on` of the same `LocalRuntime`; tasks spawned and not finished keep
/// running whenever it is driven. Dropping it drops those tasks, cancels
/// everything in flight and closes the ring. Not `Send`: it is this thread's.
///
/// ```no_run
/// use mysql_uring::runtime::LocalRuntime;
///
/// # fn main() -> mysql_uring::Result<()> {
/// let rt = LocalRuntime::new()?;
/// let mut cnx = rt.block_on(mysql_uring::connect("mysql://root@127.0.0.1:3306/test"))??;
/// let one = rt.block_on(async { cnx.query("SELECT 1").await })??;
/// # Ok(()) }
/// ```
pub struct LocalRuntime {
    core: Rc<Core>,
}

impl std::fmt::Debug for LocalRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRuntime")
            .field("ring", &self.info())
            .finish()
    }
}

impl LocalRuntime {
    /// A ring with the default configuration.
    ///
    /// Fails with [`crate::ErrorKind::Io`] when io_uring cannot be set up,
    /// saying how to fix it.
    pub fn new() -> crate::Result<LocalRuntime> {
        Self::with_config(&RingConfig::default())
    }

    /// A ring configured by `cfg`.
    pub fn with_config(cfg: &RingConfig) -> crate::Result<LocalRuntime> {
        let core = Core::new(cfg)
            .map_err(|e| crate::Error::new(crate::ErrorKind::Io, e.to_string()).with_source(e))?;
        Ok(LocalRuntime {
            core: Rc::new(core),
        })
    }

    /// A ring on the simulated kernel (feature `sim`; see [`crate::sim`]).
    #[cfg(feature = "sim")]
    pub(crate) fn simulated(
        cfg: &RingConfig,
        kernel: Box<crate::sim::kernel::SimKernel>,
    ) -> crate::Result<LocalRuntime> {
        let core = Core::simulated(cfg, kernel)
            .map_err(|e| crate::Error::new(crate::ErrorKind::Io, e.to_string()).with_source(e))?;
        Ok(LocalRuntime {
            core: Rc::new(core),
        })
    }

    /// What the ring got from the kernel.
    pub fn info(&self) -> RingInfo {
        self.core.reactor.borrow().info()
    }

    /// The ring's counters (enters, completions, ...).
    pub fn stats(&self) -> RingStats {
        self.core.reactor.borrow().stats
    }

    /// The door other threads send jobs through.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.core.shared
    }

    /// Runs `fut` (and the tasks spawned here) until `fut` is done.
    ///
    /// Fails with [`crate::ErrorKind::Usage`] when a runtime is already being
    /// driven on this thread (`block_on` cannot nest: spawn or `.await`
    /// instead), and with [`crate::ErrorKind::Io`] if the ring fails.
    pub fn block_on<F: Future>(&self, fut: F) -> crate::Result<F::Output> {
        let mut fut = std::pin::pin!(fut);
        match self.drive(fut.as_mut())? {
            Some(v) => Ok(v),
            None => Err(crate::Error::usage(
                "the io_uring loop was stopped before the future finished",
            )),
        }
    }

    /// Runs the loop until `fut` is done (`Some`) or a job stops it (`None`).
    pub(crate) fn drive<F: Future>(&self, fut: Pin<&mut F>) -> crate::Result<Option<F::Output>> {
        if CORE.with(|c| c.borrow().is_some()) {
            return Err(crate::Error::usage(
                "an io_uring runtime is already being driven on this thread: block_on/start \
                 cannot nest; spawn the future (mysql_uring::runtime::spawn) or .await it",
            ));
        }
        let core = &self.core;
        CORE.with(|c| *c.borrow_mut() = Some(core.clone()));
        exec::set_current(Arc::as_ptr(&core.shared));
        core.exec.unpark();
        core.running.set(true);
        core.stop.set(false);
        let _guard = DriveGuard(core);
        core.exec.wake_main();
        core.run(fut).map_err(|e| {
            crate::Error::new(
                crate::ErrorKind::Io,
                format!("the io_uring loop failed: {e}"),
            )
            .with_source(e)
        })
    }
}

/// Undoes what `drive` set up, however it ends.
struct DriveGuard<'a>(&'a Rc<Core>);

impl Drop for DriveGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.0.reactor.try_borrow_mut() {
            r.submit_pending();
        }
        self.0.running.set(false);
        exec::flush_deferred_now();
        self.0.exec.park();
        CORE.with(|c| c.borrow_mut().take());
        exec::set_current(std::ptr::null());
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        let core = &self.core;
        core.running.set(false);
        drop(core.shared.close()); // queued jobs are dropped: their senders see it
        core.exec.drop_all();
        core.reactor.borrow_mut().shutdown_all();
    }
}

/// Runs `fut` on a new ring on this thread (dropped afterwards, with any
/// task still running); `ready` is told what the ring got first.
pub(crate) fn block_on<F: Future>(
    cfg: &RingConfig,
    fut: F,
    ready: impl FnOnce(RingInfo, &Arc<Shared>),
) -> crate::Result<Option<F::Output>> {
    let rt = LocalRuntime::with_config(cfg)?;
    ready(rt.info(), rt.shared());
    let mut fut = std::pin::pin!(fut);
    rt.drive(fut.as_mut())
}

// ---------------------------------------------------------------- task API

/// Spawns a task on the current core: it runs on this thread, interleaved
/// with the others, and need not be `Send`.
///
/// # Panics
/// Outside a mysql-uring runtime (see [`try_spawn`]).
pub fn spawn<F: Future + 'static>(fut: F) -> JoinHandle<F::Output> {
    match try_spawn(fut) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`spawn`], but fails with [`crate::ErrorKind::Usage`] outside a runtime.
pub fn try_spawn<F: Future + 'static>(fut: F) -> crate::Result<JoinHandle<F::Output>> {
    let core = Core::current()?;
    let (task, handle) = exec::task(fut);
    core.exec.spawn(task);
    Ok(handle)
}

/// Sends a job to a core from any thread; gives it back if the core stopped.
pub(crate) fn send_job(shared: &Shared, job: Job) -> Result<(), Job> {
    shared.send_job(job)
}

/// Waits for `d`. The timer lives in the core's loop; no thread is woken.
///
/// # Panics
/// When polled outside a mysql-uring runtime.
pub fn sleep(d: Duration) -> Sleep {
    Sleep::until(kernel::now() + d)
}

/// Waits until `deadline`; see [`sleep`].
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::until(deadline)
}

/// Runs `fut` for at most `limit`: its output, or [`Elapsed`]. When the
/// deadline passes, `fut` is dropped (cancelling what it had in flight).
pub fn timeout<F: Future>(limit: Duration, fut: F) -> Timeout<F> {
    Timeout::new(fut, kernel::now() + limit, limit)
}

/// Lets the other tasks of this core run before continuing.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Runs blocking `f` on a new thread (a DNS lookup, a file read, a
/// blocking library call) and awaits its result without blocking the core.
/// Fails only if the thread cannot be started or `f` panics.
pub fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = io::Result<T>> {
    struct Slot<T> {
        value: Option<T>,
        waker: Option<Waker>,
        gone: bool,
    }
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        gone: false,
    }));
    let theirs = slot.clone();
    let started = std::thread::Builder::new()
        .name("mysql-uring-blocking".into())
        .spawn(move || {
            let v = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
            let w = {
                let mut s = theirs.lock().unwrap_or_else(|p| p.into_inner());
                s.value = v;
                s.gone = true;
                s.waker.take()
            };
            if let Some(w) = w {
                w.wake();
            }
        });
    std::future::poll_fn(move |cx| {
        if let Err(e) = &started {
            return Poll::Ready(Err(io::Error::new(e.kind(), e.to_string())));
        }
        let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = s.value.take() {
            return Poll::Ready(Ok(v));
        }
        if s.gone {
            return Poll::Ready(Err(io::Error::other("the blocking task panicked")));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// The ring counters of the core running on this thread, if any.
pub fn stats() -> Option<RingStats> {
    CORE.with(|c| c.borrow().as_ref().map(|core| core.reactor.borrow().stats))
}

/// What the ring of the core running on this thread got, if any.
pub fn ring_info() -> Option<RingInfo> {
    CORE.with(|c| c.borrow().as_ref().map(|core| core.reactor.borrow().info()))
}
