//! The seam under the loop: what the reactor asks of the kernel, as typed
//! submissions, and the two kernels that can answer — the real io_uring
//! ([`Kernel::Ring`]) and, with the `sim` feature, the seeded simulated
//! kernel of [`crate::sim`].
//!
//! The reactor never builds an `io_uring` entry itself: it describes each
//! operation as an [`Sqe`] and the kernel turns it into what it runs. On the
//! real ring that is one `match` that the compiler folds into the caller
//! (without the `sim` feature the enum has one variant), so the seam costs
//! nothing there.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};

/// Which file an operation is on: a slot of the registered file table, or
/// a plain descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Fixed(u32),
    Fd(RawFd),
}

/// One operation the reactor submits. Every pointer in it points into
/// memory its owner keeps alive until the operation's last completion.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sqe {
    /// `read(2)` of up to `len` bytes at `offset` (a file, or the eventfd).
    Read {
        fd: Target,
        buf: *mut u8,
        len: u32,
        offset: u64,
    },
    /// A multishot receive into buffers of provided-buffer group `group`.
    RecvMulti { fd: Target, group: u16 },
    /// `send(2)` of `len` bytes at `buf` with `MSG_WAITALL | MSG_NOSIGNAL`.
    Send {
        fd: Target,
        buf: *const u8,
        len: u32,
    },
    /// `connect(2)` to the address at `addr`.
    Connect {
        fd: Target,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    },
    /// Cancels the operation submitted with `user_data`.
    Cancel { user_data: u64 },
    /// Cancels every operation on `fd`.
    CancelFd { fd: Target },
    /// Closes slot `slot` of the registered file table.
    CloseFixed { slot: u32 },
}

/// An operation with its completion tag.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Submission {
    pub(crate) op: Sqe,
    pub(crate) user_data: u64,
    /// No completion is posted when it succeeds (`IOSQE_CQE_SKIP_SUCCESS`).
    pub(crate) skip_success: bool,
}

impl Sqe {
    /// True when the operation names memory of ours (a buffer, an address)
    /// the kernel reads or writes.
    pub(crate) fn lends_memory(&self) -> bool {
        matches!(
            self,
            Sqe::Read { .. } | Sqe::Send { .. } | Sqe::Connect { .. }
        )
    }
}

impl Submission {
    pub(crate) fn new(op: Sqe, user_data: u64) -> Self {
        Submission {
            op,
            user_data,
            skip_success: false,
        }
    }

    pub(crate) fn skip_success(mut self) -> Self {
        self.skip_success = true;
        self
    }

    /// The io_uring entry for this submission.
    #[inline]
    fn entry(&self) -> squeue::Entry {
        macro_rules! on {
            ($t:expr, |$f:ident| $e:expr) => {
                match $t {
                    Target::Fixed(i) => {
                        let $f = types::Fixed(i);
                        $e
                    }
                    Target::Fd(fd) => {
                        let $f = types::Fd(fd);
                        $e
                    }
                }
            };
        }
        let e = match self.op {
            Sqe::Read {
                fd,
                buf,
                len,
                offset,
            } => on!(fd, |f| opcode::Read::new(f, buf, len)
                .offset(offset)
                .build()),
            Sqe::RecvMulti { fd, group } => on!(fd, |f| opcode::RecvMulti::new(f, group).build()),
            Sqe::Send { fd, buf, len } => on!(fd, |f| opcode::Send::new(f, buf, len)
                .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
                .build()),
            Sqe::Connect { fd, addr, len } => {
                on!(fd, |f| opcode::Connect::new(f, addr, len).build())
            }
            Sqe::Cancel { user_data } => opcode::AsyncCancel::new(user_data).build(),
            Sqe::CancelFd { fd } => {
                let b = on!(fd, |f| types::CancelBuilder::fd(f).all());
                opcode::AsyncCancel2::new(b).build()
            }
            Sqe::CloseFixed { slot } => opcode::Close::new(types::Fixed(slot)).build(),
        };
        let e = e.user_data(self.user_data);
        if self.skip_success {
            e.flags(squeue::Flags::SKIP_SUCCESS)
        } else {
            e
        }
    }
}

/// One completion: `user_data`, result, flags.
pub(crate) type Cqe = (u64, i32, u32);

/// The kernel under a core: the real ring, or the simulated one.
// The real ring stays inline (the hot path reads it on every submission);
// the simulated one, for tests only, is boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Kernel {
    Ring(IoUring),
    #[cfg(feature = "sim")]
    Sim(Box<crate::sim::kernel::SimKernel>),
}

impl Kernel {
    /// Queues `s`; false when the submission queue is full.
    ///
    /// # Safety
    /// Every pointer in `s` must stay valid, and its memory unmoved and
    /// otherwise unused, from now until the operation's last completion
    /// (or for ever, if that completion is never seen).
    #[inline]
    pub(crate) unsafe fn push(&mut self, s: &Submission) -> bool {
        match self {
            // SAFETY: forwarded to the caller.
            Kernel::Ring(r) => unsafe { r.submission().push(&s.entry()) }.is_ok(),
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.push(s),
        }
    }

    /// True when nothing is queued for submission.
    #[inline]
    pub(crate) fn sq_is_empty(&mut self) -> bool {
        match self {
            Kernel::Ring(r) => r.submission().is_empty(),
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.sq_is_empty(),
        }
    }

    /// True when the kernel holds completions back until we enter it
    /// (deferred task work).
    #[inline]
    pub(crate) fn taskrun(&mut self) -> bool {
        match self {
            Kernel::Ring(r) => r.submission().taskrun(),
            #[cfg(feature = "sim")]
            Kernel::Sim(_) => false,
        }
    }

    /// Submits what is queued, without waiting.
    #[inline]
    pub(crate) fn submit(&mut self) -> io::Result<usize> {
        match self {
            Kernel::Ring(r) => r.submit(),
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.submit(),
        }
    }

    /// Submits what is queued and waits for `want` completions, at most
    /// `timeout` (none: no bound), returning early after `min_wait_us`
    /// with at least one.
    #[inline]
    pub(crate) fn submit_and_wait(
        &mut self,
        want: usize,
        timeout: Option<Duration>,
        min_wait_us: u32,
    ) -> io::Result<usize> {
        match self {
            Kernel::Ring(r) => match timeout {
                None if min_wait_us == 0 => r.submit_and_wait(want),
                None => {
                    // A min-wait needs an overall timeout (see the reactor).
                    let ts = types::Timespec::new().sec(super::reactor::IDLE_WAIT_SECS);
                    let args = types::SubmitArgs::new()
                        .timespec(&ts)
                        .min_wait_usec(min_wait_us);
                    r.submitter().submit_with_args(want, &args)
                }
                Some(t) => {
                    let ts = types::Timespec::new()
                        .sec(t.as_secs())
                        .nsec(t.subsec_nanos());
                    let args = types::SubmitArgs::new()
                        .timespec(&ts)
                        .min_wait_usec(min_wait_us);
                    r.submitter().submit_with_args(want, &args)
                }
            },
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.submit_and_wait(want, timeout, min_wait_us),
        }
    }

    /// Moves every posted completion into `out`.
    #[inline]
    pub(crate) fn completions(&mut self, out: &mut Vec<Cqe>) {
        match self {
            Kernel::Ring(r) => {
                for e in r.completion() {
                    out.push((e.user_data(), e.result(), e.flags()));
                }
            }
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.completions(out),
        }
    }

    /// Puts `fd` in slot `slot` of the registered file table.
    pub(crate) fn register_file(&mut self, slot: u32, fd: RawFd) -> io::Result<()> {
        match self {
            Kernel::Ring(r) => r.submitter().register_files_update(slot, &[fd]).map(drop),
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.register_file(slot, fd),
        }
    }

    /// Empties the registered file table.
    pub(crate) fn unregister_files(&mut self) {
        match self {
            Kernel::Ring(r) => {
                let _ = r.submitter().unregister_files();
            }
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.unregister_files(),
        }
    }

    /// Registers a provided-buffer ring of `entries` slots at `ring` as
    /// group `group`.
    ///
    /// # Safety
    /// `ring` must stay valid (and the buffers its entries name) until the
    /// group is unregistered and the kernel has let go of it.
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        ring: u64,
        entries: u16,
        group: u16,
    ) -> io::Result<()> {
        match self {
            // SAFETY: forwarded to the caller.
            Kernel::Ring(r) => unsafe {
                r.submitter()
                    .register_buf_ring_with_flags(ring, entries, group, 0)
            },
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.register_buf_ring(ring, entries, group),
        }
    }

    /// Unregisters provided-buffer group `group`.
    pub(crate) fn unregister_buf_ring(&mut self, group: u16) {
        match self {
            Kernel::Ring(r) => {
                let _ = r.submitter().unregister_buf_ring(group);
            }
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.unregister_buf_ring(group),
        }
    }

    /// Cancels synchronously every operation (`fd` none) or those on `fd`,
    /// waiting at most `timeout`; true when the kernel confirmed it.
    pub(crate) fn sync_cancel(&mut self, fd: Option<Target>, timeout: Duration) -> bool {
        match self {
            Kernel::Ring(r) => {
                let b = match fd {
                    None => types::CancelBuilder::any(),
                    Some(Target::Fixed(i)) => types::CancelBuilder::fd(types::Fixed(i)).all(),
                    Some(Target::Fd(fd)) => types::CancelBuilder::fd(types::Fd(fd)).all(),
                };
                r.submitter()
                    .register_sync_cancel(Some(types::Timespec::from(timeout)), b)
                    .is_ok()
            }
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.sync_cancel(fd),
        }
    }

    /// `shutdown(fd, SHUT_RDWR)`: the peer sees the end now.
    pub(crate) fn shutdown(&mut self, fd: RawFd) {
        match self {
            // SAFETY: a plain system call on a descriptor the caller owns.
            Kernel::Ring(_) => unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            },
            #[cfg(feature = "sim")]
            Kernel::Sim(k) => k.shutdown(fd),
        }
    }
}

/// The time the loop's timers compare against: the machine's clock, or the
/// simulation's virtual one on a simulated core.
#[inline]
pub(crate) fn now() -> Instant {
    #[cfg(feature = "sim")]
    if let Some(t) = crate::sim::clock::virtual_now() {
        return t;
    }
    Instant::now()
}
