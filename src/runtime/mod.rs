//! Running on io_uring: the runtime entry points.
//!
//! Every connection lives on the thread whose io_uring it was created on.
//! [`start`] runs a future on a new io_uring runtime on the current thread;
//! [`Runtime`] starts one such thread per core (thread-per-core) and runs
//! work on all of them or on one.

use std::future::Future;

use crate::error::{Error, ErrorKind, Result};

mod cores;

pub(crate) use cores::panic_message;
pub use cores::{Builder, RingSetup, Runtime, current_core};

/// Creates a tokio-uring runtime on this thread with the best ring setup the
/// kernel accepts; see [`RingSetup`].
pub(crate) fn new_uring_runtime() -> Result<(tokio_uring::Runtime, RingSetup)> {
    // Cooperative task running: completions are processed when the thread
    // enters the kernel anyway, instead of interrupting it (kernel 5.19+).
    // Measured: client CPU per point select over 64 connections 16-17 µs ->
    // 11.3 µs with client and server pinned apart. Single issuer (6.0+) tells
    // the kernel only this thread submits, which tokio-uring guarantees (one
    // ring per thread, created and used there). Older kernels reject the
    // flags with EINVAL; fall back one step at a time to a plain ring.
    // IORING_SETUP_DEFER_TASKRUN is not used: its completions only appear
    // when the ring is entered with GETEVENTS, which tokio-uring 0.5 never
    // does (it waits in epoll on the ring fd), so the first connect hangs
    // (tried on Linux 6.18).
    let attempts = [
        RingSetup::SingleIssuer,
        RingSetup::CoopTaskrun,
        RingSetup::Plain,
    ];
    let mut last = None;
    for setup in attempts {
        let mut ring = tokio_uring::uring_builder();
        match setup {
            RingSetup::SingleIssuer => {
                ring.setup_coop_taskrun()
                    .setup_taskrun_flag()
                    .setup_single_issuer();
            }
            RingSetup::CoopTaskrun => {
                ring.setup_coop_taskrun().setup_taskrun_flag();
            }
            RingSetup::Plain => {}
        }
        let mut builder = tokio_uring::builder();
        builder.uring_builder(&ring);
        match tokio_uring::Runtime::new(&builder) {
            Ok(rt) => return Ok((rt, setup)),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no ring setup was tried"));
    Err(Error::new(
        ErrorKind::Io,
        "cannot create an io_uring instance: mysql-uring needs Linux 5.11 or newer with io_uring \
         enabled (check `sysctl kernel.io_uring_disabled` is 0, and that a container's seccomp \
         profile allows io_uring_setup)",
    )
    .with_source(e))
}

/// Runs `fut` to completion on an io_uring runtime on this thread.
///
/// Fails with [`ErrorKind::Io`] when io_uring cannot be set up (old kernel,
/// `kernel.io_uring_disabled=2`, or a seccomp profile that blocks it), saying
/// how to fix it.
pub fn try_start<F: Future>(fut: F) -> Result<F::Output> {
    let (rt, _) = new_uring_runtime()?;
    Ok(rt.block_on(fut))
}

/// Like [`try_start`], but panics with the explanation if io_uring is unavailable.
pub fn start<F: Future>(fut: F) -> F::Output {
    match try_start(fut) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
