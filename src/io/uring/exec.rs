//! The task executor of one core: local (`!Send`) tasks, a run queue, and
//! the only two ways in from other threads (wake-ups and jobs).
//!
//! A task's future lives in this thread's task table and never moves; its
//! [`Waker`] is an `Arc<Header>` (wakers must be `Send`). Waking on the owning
//! thread pushes the header on the local run queue; waking from any other
//! thread pushes it on the core's remote list and, if the core is asleep in
//! `io_uring_enter`, writes its eventfd (see [`Shared::notify`]).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Work sent to a core from another thread: called there, on the core.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The part of a core other threads may touch.
pub(crate) struct Shared {
    remote: Mutex<Remote>,
    /// True while `remote` holds something (read without the lock).
    pending: AtomicBool,
    /// True while the core is (about to be) asleep in the kernel.
    sleeping: AtomicBool,
    /// False once the core has stopped: remote work is dropped, not queued.
    open: AtomicBool,
    eventfd: OwnedFd,
}

#[derive(Default)]
pub(crate) struct Remote {
    pub(crate) wakes: Vec<Arc<Header>>,
    pub(crate) jobs: Vec<Job>,
}

impl Shared {
    pub(crate) fn new() -> std::io::Result<Arc<Shared>> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Arc::new(Shared {
            remote: Mutex::new(Remote::default()),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            open: AtomicBool::new(true),
            // SAFETY: fd is a fresh descriptor we own.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
        }))
    }

    pub(crate) fn eventfd(&self) -> i32 {
        self.eventfd.as_raw_fd()
    }

    /// False once the core has stopped taking work.
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Queues `job` to run on the core. Gives it back if the core has stopped.
    pub(crate) fn send_job(&self, job: Job) -> Result<(), Job> {
        {
            let mut r = self.remote.lock().unwrap_or_else(|p| p.into_inner());
            if !self.open.load(Ordering::Acquire) {
                return Err(job);
            }
            r.jobs.push(job);
        }
        self.pending.store(true, Ordering::SeqCst);
        self.notify();
        Ok(())
    }

    fn push_wake(&self, h: Arc<Header>) {
        {
            let mut r = self.remote.lock().unwrap_or_else(|p| p.into_inner());
            if !self.open.load(Ordering::Acquire) {
                return;
            }
            r.wakes.push(h);
        }
        self.pending.store(true, Ordering::SeqCst);
        self.notify();
    }

    /// Wakes the core if it sleeps (or is about to) in `io_uring_enter`.
    fn notify(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd. A full
            // counter (EAGAIN) still leaves the core woken.
            unsafe { libc::write(self.eventfd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Takes what other threads queued, if anything.
    pub(crate) fn take_remote(&self, into: &mut Remote) -> bool {
        if !self.pending.load(Ordering::SeqCst) {
            return false;
        }
        self.pending.store(false, Ordering::SeqCst);
        let mut r = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *r, into);
        true
    }

    /// Declares the core asleep; false (and awake) if remote work arrived meanwhile.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Stops accepting remote work; returns what was queued.
    pub(crate) fn close(&self) -> Remote {
        let mut r = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        self.open.store(false, Ordering::Release);
        std::mem::take(&mut *r)
    }
}

thread_local! {
    /// Wakers of other threads' tasks, woken together once per loop turn
    /// (see [`defer_wake`]).
    static DEFERRED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
    /// When the oldest of them was deferred.
    static DEFERRED_SINCE: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    /// Calls for other threads running on this core (see [`calls_running`]).
    static RUNNING: Cell<usize> = const { Cell::new(0) };
    /// The run queue of the core running on this thread.
    static RUN_QUEUE: RefCell<VecDeque<Arc<Header>>> = const { RefCell::new(VecDeque::new()) };
    /// The `Shared` of the core running on this thread (identity only).
    static CURRENT: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

/// Marks `shared` as the core running on this thread (null: none). The
/// run queue is the driven core's: [`Executor::unpark`] and
/// [`Executor::park`] move it in and out around each drive.
pub(crate) fn set_current(shared: *const Shared) {
    CURRENT.with(|c| c.set(shared));
}

/// The id of the main future's header.
const MAIN: usize = usize::MAX;

/// A task's identity and wake-up state; its waker.
pub(crate) struct Header {
    id: usize,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for Header {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let here = CURRENT.with(|c| c.get());
        if std::ptr::eq(here, Arc::as_ptr(&self.shared)) {
            RUN_QUEUE.with(|q| q.borrow_mut().push_back(self.clone()));
        } else {
            self.shared.push_wake(self.clone());
        }
    }
}

/// Wakes `w` (a task of another thread, e.g. a tokio task awaiting a
/// [`Client`](crate::Client) call) later, in a burst with the others: see
/// [`flush_deferred`]. Off a core, wakes now.
pub(crate) fn defer_wake(w: Waker) {
    if CURRENT.with(|c| c.get().is_null()) {
        w.wake();
        return;
    }
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_empty() {
            DEFERRED_SINCE.with(|s| s.set(Some(super::kernel::now())));
        }
        d.push(w);
    });
}

/// Counts a call made from another thread that runs on this core, while
/// `f` runs: with such calls running, results are held back a little
/// longer (see [`flush_deferred`]).
pub(crate) async fn calls_running<F: std::future::Future>(f: F) -> F::Output {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            RUNNING.with(|r| r.set(r.get().saturating_sub(1)));
        }
    }
    RUNNING.with(|r| r.set(r.get() + 1));
    let _g = Guard;
    f.await
}

/// Deferred wakes go out once this many have gathered...
const DEFER_MAX: usize = 64;
/// ... or once the oldest has waited this long.
const DEFER_MAX_AGE: std::time::Duration = std::time::Duration::from_micros(300);

/// Wakes what [`defer_wake`] kept, in one burst. The loop calls it every
/// turn, with `sleeping` true when it is about to wait in the kernel. The
/// burst goes out when the core is about to sleep with no call for another
/// thread still running (so a lone call is answered at once), and
/// otherwise once it is [`DEFER_MAX`] long or [`DEFER_MAX_AGE`] old (what
/// is left of that age is returned, for the core's wait to end by then). The
/// woken executor (tokio, say) then finds many results at once instead of
/// parking and being woken again between them. Measured on the bench
/// tool's tokio workload (per-thread CPU over 4 s, loaded machine): a
/// burst per turn or per sleep, tokio's workers slept 0.29-0.42 times and
/// spent 7.2-7.7 us per query; held while calls run (64 / 1 ms), 0.10-0.12
/// times and 4.0-4.9 us, and the core's own CPU fell too.
pub(crate) fn flush_deferred(sleeping: bool) -> Option<std::time::Duration> {
    let idle = RUNNING.with(|r| r.get()) == 0;
    if !(sleeping && idle) {
        let held = DEFERRED.with(|d| {
            let d = d.borrow();
            if d.is_empty() {
                return None;
            }
            let age = DEFERRED_SINCE.with(|s| s.get()).map_or(DEFER_MAX_AGE, |t| {
                super::kernel::now().saturating_duration_since(t)
            });
            (d.len() < DEFER_MAX && age < DEFER_MAX_AGE).then(|| DEFER_MAX_AGE - age)
        });
        match held {
            // Held back: a sleeping core must wake for it by then.
            Some(left) => return Some(left),
            None if DEFERRED.with(|d| d.borrow().is_empty()) => return None,
            None => {}
        }
    }
    flush_deferred_now();
    None
}

/// Wakes every waker [`defer_wake`] kept, now (a loop that stops).
pub(crate) fn flush_deferred_now() {
    let mut wakers = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    if wakers.is_empty() {
        return;
    }
    for w in wakers.drain(..) {
        w.wake();
    }
    // Keep the allocation for the next burst.
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_empty() {
            *d = wakers;
        }
    });
}

/// Queues a header that arrived from another thread.
pub(crate) fn requeue(h: Arc<Header>) {
    RUN_QUEUE.with(|q| q.borrow_mut().push_back(h));
}

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

struct Task {
    /// `None` while the task is being polled.
    fut: Option<LocalFuture>,
    header: Arc<Header>,
    waker: Waker,
}

/// The tasks of one core.
pub(crate) struct Executor {
    tasks: RefCell<slab::Slab<Task>>,
    shared: Arc<Shared>,
    main: Arc<Header>,
    /// Set when the main future was woken.
    main_woken: Cell<bool>,
    /// Polls since the core started (for statistics).
    pub(crate) polls: Cell<u64>,
    /// The run queue while the core is not driven: tasks woken (and
    /// marked queued) before its last drive ended run in the next.
    parked: RefCell<VecDeque<Arc<Header>>>,
}

impl Executor {
    pub(crate) fn new(shared: Arc<Shared>) -> Executor {
        let main = Arc::new(Header {
            id: MAIN,
            queued: AtomicBool::new(false),
            shared: shared.clone(),
        });
        Executor {
            tasks: RefCell::new(slab::Slab::new()),
            shared,
            main,
            main_woken: Cell::new(true),
            polls: Cell::new(0),
            parked: RefCell::new(VecDeque::new()),
        }
    }

    /// The waker of the main future (the one `block_on` runs).
    pub(crate) fn main_waker(&self) -> Waker {
        Waker::from(self.main.clone())
    }

    /// Makes the loop poll the main future first (a new `block_on`).
    pub(crate) fn wake_main(&self) {
        self.main_woken.set(true);
    }

    /// True (and cleared) when the main future should be polled.
    pub(crate) fn take_main_woken(&self) -> bool {
        self.main_woken.replace(false)
    }

    /// Adds a task; it is polled on the next turn of the loop.
    pub(crate) fn spawn(&self, fut: LocalFuture) {
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let header = Arc::new(Header {
            id: entry.key(),
            queued: AtomicBool::new(true),
            shared: self.shared.clone(),
        });
        let waker = Waker::from(header.clone());
        RUN_QUEUE.with(|q| q.borrow_mut().push_back(header.clone()));
        entry.insert(Task {
            fut: Some(fut),
            header,
            waker,
        });
    }

    /// True when something is queued to run.
    pub(crate) fn has_ready(&self) -> bool {
        self.main_woken.get() || RUN_QUEUE.with(|q| !q.borrow().is_empty())
    }

    /// Polls up to `budget` queued tasks; returns how many ran.
    pub(crate) fn run(&self, budget: usize) -> usize {
        let mut ran = 0;
        while ran < budget {
            let Some(h) = RUN_QUEUE.with(|q| q.borrow_mut().pop_front()) else {
                break;
            };
            h.queued.store(false, Ordering::Release);
            if h.id == MAIN {
                if Arc::ptr_eq(&h, &self.main) {
                    self.main_woken.set(true);
                }
                continue;
            }
            let (mut fut, waker) = {
                let mut tasks = self.tasks.borrow_mut();
                match tasks.get_mut(h.id) {
                    Some(t) if Arc::ptr_eq(&t.header, &h) => match t.fut.take() {
                        Some(f) => (f, t.waker.clone()),
                        None => continue,
                    },
                    _ => continue, // finished, or the id was reused
                }
            };
            ran += 1;
            let mut cx = Context::from_waker(&waker);
            let done = fut.as_mut().poll(&mut cx).is_ready();
            let mut tasks = self.tasks.borrow_mut();
            if done {
                tasks.remove(h.id);
            } else if let Some(t) = tasks.get_mut(h.id) {
                t.fut = Some(fut);
            }
        }
        self.polls.set(self.polls.get() + ran as u64);
        ran
    }

    /// A drive of this core starts on this thread: its parked run queue
    /// becomes the thread's.
    pub(crate) fn unpark(&self) {
        let mut parked = self.parked.borrow_mut();
        RUN_QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            debug_assert!(q.is_empty(), "another core's run queue was left behind");
            q.extend(parked.drain(..));
        });
    }

    /// A drive of this core ends: the tasks still queued keep their place
    /// (and their `queued` mark, so later wakes need not queue them again).
    pub(crate) fn park(&self) {
        let mut parked = self.parked.borrow_mut();
        RUN_QUEUE.with(|q| parked.extend(q.borrow_mut().drain(..)));
    }

    /// Drops every task (the core is stopping). Tasks spawned while dropping
    /// are dropped too, without being polled.
    pub(crate) fn drop_all(&self) {
        loop {
            let futs: Vec<LocalFuture> = {
                let mut tasks = self.tasks.borrow_mut();
                if tasks.is_empty() {
                    break;
                }
                tasks.drain().filter_map(|t| t.fut).collect()
            };
            drop(futs); // outside the borrow: dropping may spawn or wake
        }
        self.parked.borrow_mut().clear();
    }
}

// ---------------------------------------------------------------- join handles

/// Why a task gave no output; see [`JoinHandle`].
pub enum JoinError {
    /// The task panicked; the payload is the panic's.
    Panicked(Box<dyn Any + Send>),
    /// The runtime stopped before the task finished.
    Cancelled,
}

impl JoinError {
    /// True when the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload (resume it with `std::panic::resume_unwind`).
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self {
            JoinError::Panicked(p) => p,
            JoinError::Cancelled => Box::new("the task was cancelled"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "the task panicked: {}", panic_message(&**p)),
            JoinError::Cancelled => f.write_str("the task was cancelled: its runtime stopped"),
        }
    }
}

impl std::error::Error for JoinError {}

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

struct JoinState<T> {
    result: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
}

/// Awaits a task started with [`spawn`](crate::runtime::spawn): its output,
/// or a [`JoinError`] if it panicked or its runtime stopped first. Dropping
/// the handle lets the task run on, detached.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// True once the task has finished (its output waits here).
    pub fn is_finished(&self) -> bool {
        self.state.borrow().result.is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.state.borrow_mut();
        match st.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The future a task runs: the user's future, its panic caught, its output
/// (or the reason there is none) delivered to the join handle.
struct TaskFuture<F: Future> {
    fut: F,
    state: Rc<RefCell<JoinState<F::Output>>>,
    done: bool,
}

impl<F: Future> TaskFuture<F> {
    fn finish(&mut self, r: Result<F::Output, JoinError>) {
        self.done = true;
        let waker = {
            let mut st = self.state.borrow_mut();
            st.result = Some(r);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of
        // `self` (Drop leaves it in place); the other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                this.finish(Ok(v));
                Poll::Ready(())
            }
            Err(p) => {
                this.finish(Err(JoinError::Panicked(p)));
                Poll::Ready(())
            }
        }
    }
}

impl<F: Future> Drop for TaskFuture<F> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Err(JoinError::Cancelled));
        }
    }
}

/// Wraps `fut` as a task future and its join handle.
pub(crate) fn task<F: Future + 'static>(fut: F) -> (LocalFuture, JoinHandle<F::Output>) {
    let state = Rc::new(RefCell::new(JoinState {
        result: None,
        waker: None,
    }));
    let tf = TaskFuture {
        fut,
        state: state.clone(),
        done: false,
    };
    (Box::pin(tf), JoinHandle { state })
}

/// A future whose panic is caught: `Err(payload)` instead of unwinding.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the only field is structurally pinned and never moved.
        let fut = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}
