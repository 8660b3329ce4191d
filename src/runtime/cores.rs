//! Thread-per-core: N OS threads, each with its own io_uring loop.
//!
//! Each core is an OS thread that owns one ring (the driver's own loop,
//! [`crate::io::uring`]) for its whole life, optionally pinned to one CPU.
//! Work is sent to a core as a closure that *builds* a future there, so the
//! future itself need not be `Send`: connections, pools and `Rc`s are created
//! and used on their core and never cross threads. Nothing is shared between
//! cores on the hot path; the only cross-thread traffic is the job sent in
//! (a lock-protected list plus an eventfd write when the core sleeps) and the
//! result sent back.
//!
//! Choices:
//! - **One loop per thread**, not a work-stealing scheduler: a socket is
//!   registered with one ring, and its connection stays on that ring.
//! - **Ring flags**: see [`RingSetup`]; each core uses the best the kernel
//!   accepts and [`Runtime::ring_info`] says which.
//! - **Pinning** with `sched_setaffinity` from `libc`: core `i` goes to the
//!   `i`-th CPU of the process's allowed mask (`taskset`, cgroups), so
//!   pinning never asks for a CPU the process may not use.
//! - **Blocking `run_on*`**: the caller is usually `main` or a test, not a
//!   task; the results come back over a std channel, and a panic is caught
//!   and returned as an error.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::io::uring::exec::{CatchUnwind, Job, Shared, panic_message};
use crate::io::uring::{self, Core as RingCore, RingConfig, RingInfo, RingSetup};

static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// (runtime id, core index) on a core thread.
    static CURRENT: Cell<Option<(u64, usize)>> = const { Cell::new(None) };
}

/// The index of the core the calling thread is, or `None` when it is not a
/// core of a [`Runtime`].
pub fn current_core() -> Option<usize> {
    CURRENT.with(|c| c.get()).map(|(_, i)| i)
}

/// Configures a [`Runtime`]; see [`Runtime::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    cores: Option<usize>,
    pin: bool,
    name: String,
    ring: RingConfig,
}

impl Builder {
    /// How many cores (threads) to start. Default: all the CPUs this process
    /// may use ([`std::thread::available_parallelism`]).
    pub fn cores(mut self, n: usize) -> Self {
        self.cores = Some(n);
        self
    }

    /// Pins core `i` to the `i`-th CPU this process may run on (wrapping
    /// around when there are more cores than CPUs). Default: not pinned.
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// The threads' name prefix (`mysql-uring-core` by default); core `i` is
    /// named `{prefix}-{i}`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// How each core's ring is sized and waits (see [`RingConfig`]).
    pub fn ring(mut self, config: RingConfig) -> Self {
        self.ring = config;
        self
    }

    /// Starts the cores and waits until every one has its io_uring runtime.
    ///
    /// Fails with [`ErrorKind::Config`] for zero cores, with
    /// [`ErrorKind::Io`] when io_uring is unavailable (the message says how to
    /// fix it), a thread cannot be started, or a core cannot be pinned.
    /// Cores started before the failure are stopped.
    pub fn build(self) -> Result<Runtime> {
        let n = match self.cores {
            Some(0) => {
                return Err(Error::config(
                    "a runtime needs at least one core (Builder::cores(0) was given)",
                ));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let cpus = if self.pin {
            let cpus = allowed_cpus().map_err(|e| {
                Error::new(ErrorKind::Io, "cannot read the CPUs this process may use")
                    .with_source(e)
            })?;
            if cpus.is_empty() {
                return Err(Error::new(
                    ErrorKind::Io,
                    "cannot pin cores: the process's CPU affinity mask is empty",
                ));
            }
            Some(cpus)
        } else {
            None
        };
        let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
        let mut rt = Runtime {
            id,
            cores: Vec::with_capacity(n),
        };
        let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
        for index in 0..n {
            let cpu = cpus.as_ref().map(|c| c[index % c.len()]);
            let ready = ready_tx.clone();
            let ring = self.ring.clone();
            let exit = Arc::new(Exit::default());
            let exited = ExitGuard(exit.clone());
            let thread = std::thread::Builder::new()
                .name(format!("{}-{index}", self.name))
                .spawn(move || {
                    let _exited = exited;
                    core_main(id, index, cpu, ring, ready)
                })
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("cannot start the thread of core {index}"),
                    )
                    .with_source(e)
                })?;
            rt.cores.push(Core {
                shared: None,
                exit,
                thread: Some(thread),
                cpu,
                ring: None,
            });
        }
        drop(ready_tx);
        let mut first_err = None;
        let mut started = 0;
        for (index, r) in ready_rx.iter() {
            started += 1;
            match r {
                Ok((info, shared)) => {
                    rt.cores[index].ring = Some(info);
                    rt.cores[index].shared = Some(shared);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e); // dropping rt stops and joins the cores
        }
        if started < n {
            return Err(Error::new(
                ErrorKind::Io,
                "a core thread stopped before its io_uring runtime was ready",
            ));
        }
        Ok(rt)
    }
}

/// What a core thread reports once its ring is up (or why it is not).
type Ready = (usize, Result<(RingInfo, Arc<Shared>)>);

struct Core {
    /// The core's door for jobs; `None` once the runtime is stopping.
    shared: Option<Arc<Shared>>,
    /// Set when the core's thread has ended (however it ended).
    exit: Arc<Exit>,
    thread: Option<JoinHandle<()>>,
    cpu: Option<usize>,
    ring: Option<RingInfo>,
}

/// N cores, each an OS thread with its own io_uring runtime.
///
/// ```no_run
/// use mysql_uring::runtime::Runtime;
///
/// # fn main() -> mysql_uring::Result<()> {
/// let rt = Runtime::builder().cores(2).pin(true).build()?;
/// let ids = rt.run_on_all(|core| async move {
///     // Runs on core `core`; the future need not be Send.
///     let mut cnx = mysql_uring::connect("mysql://root@127.0.0.1:3306/test").await?;
///     let id = cnx.connection_id();
///     cnx.close().await?;
///     Ok((core, id))
/// });
/// for r in ids {
///     println!("{:?}", r?);
/// }
/// # Ok(()) }
/// ```
///
/// Dropping the runtime stops its cores: tasks still running there are
/// dropped, and the threads are joined.
pub struct Runtime {
    id: u64,
    cores: Vec<Core>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cores", &self.cores.len())
            .field(
                "cpus",
                &self.cores.iter().map(|c| c.cpu).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Runtime {
    /// A builder: `Runtime::builder().cores(n).pin(true).build()?`.
    pub fn builder() -> Builder {
        Builder {
            cores: None,
            pin: false,
            name: "mysql-uring-core".into(),
            ring: RingConfig::default(),
        }
    }

    /// Starts a runtime with the defaults: all available CPUs, not pinned.
    pub fn new() -> Result<Runtime> {
        Self::builder().build()
    }

    /// The number of cores.
    pub fn cores(&self) -> usize {
        self.cores.len()
    }

    /// The CPU core `index` is pinned to, if pinned.
    pub fn cpu(&self, index: usize) -> Option<usize> {
        self.cores.get(index).and_then(|c| c.cpu)
    }

    /// The io_uring setup core `index`'s ring was created with.
    pub fn ring_setup(&self, index: usize) -> Option<RingSetup> {
        self.ring_info(index).map(|i| i.setup)
    }

    /// What core `index`'s ring got from the kernel (setup flags, fixed
    /// files, batched waits, buffers).
    pub fn ring_info(&self, index: usize) -> Option<RingInfo> {
        self.cores.get(index).and_then(|c| c.ring)
    }

    /// Runs `f(i)` on every core `i` and waits for all of them: result `i` is
    /// core `i`'s. `f` is cloned for each core and called there, so the
    /// future it returns may hold `Rc`s and connections (it need not be
    /// `Send`); only `f` and the results cross threads.
    ///
    /// Waits for every core's future: one that never finishes blocks the
    /// caller. A panic on a core becomes that core's [`ErrorKind::Usage`] error with
    /// the panic message; the core keeps running. Blocks the calling thread,
    /// so it cannot be called from one of this runtime's own cores (that
    /// gives a [`ErrorKind::Usage`] error for each core instead of waiting
    /// for itself).
    pub fn run_on_all<F, Fut, T>(&self, f: F) -> Vec<Result<T>>
    where
        F: FnOnce(usize) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let n = self.cores.len();
        if let Err(e) = self.check_caller() {
            let msg = e.to_string();
            return (0..n).map(|_| Err(Error::usage(msg.clone()))).collect();
        }
        let (tx, rx) = mpsc::channel();
        for index in 0..n {
            self.submit(index, f.clone(), tx.clone());
        }
        drop(tx);
        let mut results: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
        for (index, r) in rx.iter() {
            results[index] = Some(r);
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|| Err(core_stopped(i))))
            .collect()
    }

    /// Runs `f(index)` on core `index` and waits for it; see
    /// [`run_on_all`](Runtime::run_on_all). An index out of range is an
    /// [`ErrorKind::Usage`] error.
    pub fn run_on<F, Fut, T>(&self, index: usize, f: F) -> Result<T>
    where
        F: FnOnce(usize) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        if index >= self.cores.len() {
            return Err(Error::usage(format!(
                "core {index} does not exist: this runtime has {} cores",
                self.cores.len()
            )));
        }
        self.check_caller()?;
        let (tx, rx) = mpsc::channel();
        self.submit(index, f, tx);
        match rx.recv() {
            Ok((_, r)) => r,
            Err(_) => Err(core_stopped(index)),
        }
    }

    /// Runs `f(index)` on core `index` without blocking: the returned future
    /// (`Send`, usable from tokio or any executor) resolves to its result.
    /// `f` builds the future there, so that future need not be `Send`.
    /// Dropping the handle cancels the work on the core (its future is
    /// dropped there, which cancels what it had in flight). An index out of
    /// range is an [`ErrorKind::Usage`] error.
    ///
    /// ```no_run
    /// # async fn f() -> mysql_uring::Result<()> {
    /// let rt = mysql_uring::runtime::Runtime::builder().cores(2).build()?;
    /// let version = rt
    ///     .spawn_on(1, |_| async {
    ///         let mut c = mysql_uring::connect("mysql://root@127.0.0.1/test").await?;
    ///         Ok(c.server_version().to_string())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn spawn_on<F, Fut, T>(&self, index: usize, f: F) -> CoreTask<T>
    where
        F: FnOnce(usize) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = futures_channel::oneshot::channel();
        if index >= self.cores.len() {
            let _ = tx.send(Err(Error::usage(format!(
                "core {index} does not exist: this runtime has {} cores",
                self.cores.len()
            ))));
        } else {
            self.send(index, f, tx);
        }
        CoreTask { rx, index }
    }

    /// Sends `f` to core `index`, its result to `tx`; the work is dropped
    /// when `tx`'s receiver is.
    pub(crate) fn send<F, Fut, T>(
        &self,
        index: usize,
        f: F,
        mut tx: futures_channel::oneshot::Sender<Result<T>>,
    ) where
        F: FnOnce(usize) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let job: Job = Box::new(move || {
            let fut = match catch_unwind(AssertUnwindSafe(move || f(index))) {
                Ok(fut) => fut,
                Err(p) => {
                    let _ = tx.send(Err(panicked(index, &*p)));
                    return;
                }
            };
            uring::spawn(async move {
                let mut fut = std::pin::pin!(CatchUnwind(fut));
                // Runs until done, or until nobody waits any more.
                let r = std::future::poll_fn(|cx| {
                    if let std::task::Poll::Ready(r) = fut.as_mut().poll(cx) {
                        return std::task::Poll::Ready(Some(r));
                    }
                    tx.poll_canceled(cx).map(|()| None)
                })
                .await;
                if let Some(r) = r {
                    let _ = tx.send(r.unwrap_or_else(|p| Err(panicked(index, &*p))));
                }
            });
        });
        // Fails only when the core has stopped; the job (and `tx` in it)
        // is dropped, which the receiver sees.
        let _ = self.send_job_to(index, job);
    }

    /// Queues `job` on core `index`; gives it back when that core has
    /// stopped (or does not exist).
    pub(crate) fn send_job_to(&self, index: usize, job: Job) -> std::result::Result<(), Job> {
        match self.cores.get(index).and_then(|c| c.shared.as_ref()) {
            Some(shared) => uring::send_job(shared, job),
            None => Err(job),
        }
    }

    /// True while core `index` takes work: the runtime not stopped, the
    /// core's thread not ended (a panic outside its tasks ends it; a
    /// [`Client`](crate::Client) then routes calls to the other cores).
    pub fn is_alive(&self, index: usize) -> bool {
        self.cores.get(index).is_some_and(|c| {
            c.shared.as_ref().is_some_and(|s| s.is_open()) && !c.exit.done.load(Ordering::Acquire)
        })
    }

    /// Stops every core (their tasks are dropped, as when the runtime is
    /// dropped) and resolves once every core thread has ended, without
    /// blocking the caller's thread. The runtime then takes no more work;
    /// dropping it later has nothing left to wait for.
    pub(crate) fn stop(&self) -> impl Future<Output = ()> + Send + 'static {
        for core in &self.cores {
            if let Some(shared) = &core.shared {
                let _ = uring::send_job(shared, stop_job());
            }
        }
        let exits: Vec<Arc<Exit>> = self.cores.iter().map(|c| c.exit.clone()).collect();
        std::future::poll_fn(move |cx| {
            for e in &exits {
                let mut w = e.wakers.lock().unwrap_or_else(|p| p.into_inner());
                if !e.done.load(Ordering::Acquire) {
                    w.push(cx.waker().clone());
                    return std::task::Poll::Pending;
                }
            }
            std::task::Poll::Ready(())
        })
    }

    /// Makes core `index` panic outside its tasks, as a bug in the loop
    /// would: its thread ends. For the tests of what a lost core does to
    /// the work routed to it.
    #[doc(hidden)]
    pub fn __panic_core(&self, index: usize) {
        let _ = self.send_job_to(
            index,
            Box::new(|| panic!("mysql-uring: a core was made to panic")),
        );
    }

    /// True when the calling thread is one of this runtime's cores.
    pub(crate) fn is_own_core(&self) -> bool {
        matches!(CURRENT.with(|c| c.get()), Some((id, _)) if id == self.id)
    }

    /// Refuses to block a core of this runtime on itself.
    fn check_caller(&self) -> Result<()> {
        match CURRENT.with(|c| c.get()) {
            Some((id, core)) if id == self.id => Err(Error::usage(format!(
                "Runtime::run_on/run_on_all block the calling thread and were called from core \
                 {core} of the same runtime, which would wait for itself; spawn the work with \
                 mysql_uring::runtime::spawn instead"
            ))),
            _ => Ok(()),
        }
    }

    /// Sends `f` to core `index`; its result (or the reason it has none) is
    /// sent on `done`, unless the core is gone, which dropping `done` tells.
    fn submit<F, Fut, T>(&self, index: usize, f: F, done: mpsc::Sender<(usize, Result<T>)>)
    where
        F: FnOnce(usize) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let job: Job = Box::new(move || {
            let fut = match catch_unwind(AssertUnwindSafe(move || f(index))) {
                Ok(fut) => fut,
                Err(p) => {
                    let _ = done.send((index, Err(panicked(index, &*p))));
                    return;
                }
            };
            uring::spawn(async move {
                let r = match CatchUnwind(fut).await {
                    Ok(r) => r,
                    Err(p) => Err(panicked(index, &*p)),
                };
                let _ = done.send((index, r));
            });
        });
        // Fails only when the core has stopped; the job (and `done` in
        // it) is dropped, which the receiver sees.
        let _ = self.send_job_to(index, job);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for core in &mut self.cores {
            if let Some(shared) = core.shared.take() {
                // Ends the core's loop; its tasks are dropped there.
                let _ = uring::send_job(&shared, stop_job());
            }
        }
        let here = CURRENT.with(|c| c.get());
        for (index, core) in self.cores.iter_mut().enumerate() {
            if let Some(t) = core.thread.take() {
                // Dropped on one of its own cores (the last handle went there):
                // that thread cannot join itself; it ends when this job returns.
                if here != Some((self.id, index)) {
                    let _ = t.join();
                }
            }
        }
    }
}

/// The job that ends a core's loop; its tasks are dropped there.
fn stop_job() -> Job {
    Box::new(|| {
        if let Ok(c) = RingCore::current() {
            c.stop.set(true);
        }
    })
}

/// Whether a core's thread has ended, and who waits for it.
#[derive(Default)]
struct Exit {
    done: std::sync::atomic::AtomicBool,
    wakers: std::sync::Mutex<Vec<std::task::Waker>>,
}

/// Held by a core's thread: marks its end, a panic's unwinding included
/// (after the ring and its tasks are gone).
struct ExitGuard(Arc<Exit>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let wakers = {
            let mut w = self.0.wakers.lock().unwrap_or_else(|p| p.into_inner());
            self.0.done.store(true, Ordering::Release);
            std::mem::take(&mut *w)
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// A core thread: pin, create the ring, then run jobs until the runtime is dropped.
fn core_main(
    id: u64,
    index: usize,
    cpu: Option<usize>,
    ring: RingConfig,
    ready: mpsc::Sender<Ready>,
) {
    CURRENT.with(|c| c.set(Some((id, index))));
    if let Some(cpu) = cpu {
        if let Err(e) = pin_to(cpu) {
            let _ = ready.send((
                index,
                Err(Error::new(
                    ErrorKind::Io,
                    format!("cannot pin core {index} to CPU {cpu}"),
                )
                .with_source(e)),
            ));
            return;
        }
    }
    // The sender is dropped as soon as it has spoken: `build` counts on it.
    let ready = std::cell::RefCell::new(Some(ready));
    let r = uring::block_on(&ring, std::future::pending::<()>(), |info, shared| {
        if let Some(tx) = ready.borrow_mut().take() {
            let _ = tx.send((index, Ok((info, shared.clone()))));
        }
    });
    if let (Err(e), Some(tx)) = (r, ready.borrow_mut().take()) {
        // The ring could not be set up.
        let _ = tx.send((index, Err(e)));
    }
}

/// The result of [`Runtime::spawn_on`]: a `Send` future of the work's
/// output. Dropping it cancels the work.
#[must_use = "dropping it cancels the work on the core"]
pub struct CoreTask<T> {
    rx: futures_channel::oneshot::Receiver<Result<T>>,
    index: usize,
}

impl<T> std::fmt::Debug for CoreTask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreTask")
            .field("core", &self.index)
            .finish()
    }
}

impl<T> Future for CoreTask<T> {
    type Output = Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<T>> {
        let index = self.index;
        std::pin::Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(core_stopped(index))))
    }
}

pub(crate) fn core_stopped(index: usize) -> Error {
    Error::new(
        ErrorKind::Stopped,
        format!("core {index} stopped before the work sent to it finished"),
    )
}

fn panicked(index: usize, payload: &(dyn Any + Send)) -> Error {
    Error::usage(format!(
        "the work on core {index} panicked: {}",
        panic_message(payload)
    ))
}

/// The CPUs the calling thread may run on, in increasing order.
fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data, all-zero is a valid empty set, and the
    // kernel writes at most size_of::<cpu_set_t>() bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: c < CPU_SETSIZE, within the set.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: as in allowed_cpus; cpu < CPU_SETSIZE was checked.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
