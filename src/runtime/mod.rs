//! Running on io_uring: the driver's own per-core loop and its entry points.
//!
//! Every connection lives on the thread whose ring it was opened on.
//! [`start`] runs a future on a new ring on the current thread; [`Runtime`]
//! starts one such thread per core (thread-per-core) and runs work on all of
//! them or on one. Inside either, [`spawn`] starts more tasks on the same
//! core, and [`sleep`] / [`timeout`] use the core's own timers.
//!
//! # How a core waits
//! Each core is one thread running one loop over one ring
//! (the driver's own, in `src/io/uring`): poll the woken tasks, then enter
//! the kernel once to submit what they queued and wait for completions. The
//! wait is `io_uring_enter` itself (never epoll), with the nearest timer as
//! its timeout; the ring is set up with `SINGLE_ISSUER | DEFER_TASKRUN` so
//! completions are produced in that wait instead of interrupting the thread,
//! and under load the loop asks for several completions per wait (bounded by
//! a short minimum-wait time) so the thread sleeps far less than once per
//! query. Receives are multishot into a provided buffer ring; sends whose
//! reply proves them done post no completion. [`RingInfo`] (from
//! [`Runtime::ring_info`] or [`ring_info`]) says which of these the kernel
//! granted; older kernels fall back step by step ([`RingSetup`]).

use std::future::Future;

use crate::error::Result;

mod cores;

pub use crate::io::uring::{
    Elapsed, JoinError, JoinHandle, LocalRuntime, RingConfig, RingInfo, RingSetup, RingStats,
    Sleep, Timeout, ring_info, sleep, sleep_until, spawn, spawn_blocking, stats, timeout,
    try_spawn, yield_now,
};
pub use cores::{Builder, CoreTask, Runtime, current_core};

/// Runs `fut` on the calling thread until it is done, parking the thread
/// between wake-ups: the blocking form of the `Send` futures of
/// [`Client`](crate::Client) and [`Runtime::spawn_on`]. Not for a thread that
/// runs a ring (its loop would stop).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Runs `fut` to completion on a new io_uring loop on this thread, with the
/// tasks it [`spawn`]s (dropped when `fut` returns).
///
/// Fails with [`crate::ErrorKind::Io`] when io_uring cannot be set up (old
/// kernel, `kernel.io_uring_disabled=2`, or a seccomp profile that blocks
/// it), saying how to fix it, and with [`crate::ErrorKind::Usage`] when a
/// loop already runs on this thread.
pub fn try_start<F: Future>(fut: F) -> Result<F::Output> {
    try_start_with(&RingConfig::default(), fut)
}

/// [`try_start`] with a ring configuration.
pub fn try_start_with<F: Future>(config: &RingConfig, fut: F) -> Result<F::Output> {
    LocalRuntime::with_config(config)?.block_on(fut)
}

/// Like [`try_start`], but panics with the explanation if io_uring is unavailable.
pub fn start<F: Future>(fut: F) -> F::Output {
    match try_start(fut) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
