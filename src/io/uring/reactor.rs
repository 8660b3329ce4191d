//! The ring of one core and everything in flight on it: one-shot operations
//! ([`super::ops`]), sockets ([`super::sock`]), the provided buffer ring,
//! and the wait in `io_uring_enter`.
//!
//! Every completion is dispatched here by its `user_data`: a tag (what kind
//! of operation), a generation (so a late completion never reaches a reused
//! slot) and a slot index.
//!
//! # What the kernel may touch, and who owns it
//! Every piece of memory named in a submission is owned by the reactor for
//! as long as the kernel may use it, by construction:
//! - a one-shot op's memory travels inside its [`super::ops::OneShot`] and
//!   stays in the op's slot until its completion;
//! - a send's bytes sit in the socket's `SendState::Busy` until the send's
//!   completion (every send posts one: none is skipped);
//! - the provided buffers and the eventfd's read target belong to the
//!   reactor itself.
//!
//! Nothing of that is freed or reused before the last completion, and when
//! the ring stops before a completion arrives (a cancel the kernel did not
//! confirm), the memory is leaked rather than freed ([`Reactor::shutdown_all`]).

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::RawFd;
use std::task::Waker;
use std::time::Duration;

use io_uring::IoUring;

use super::bufring::{BGID, BufRing};
use super::kernel::{Cqe, Kernel, Sqe, Submission, Target};
use super::ops::OpSlot;
use super::sock::Sock;
use super::{RingConfig, RingInfo, RingSetup};

/// The overall bound of a batched wait with no timer due (see
/// [`Reactor::enter`]): long, since it only gives the min-wait its meaning;
/// when it passes the loop simply waits again.
pub(crate) const IDLE_WAIT_SECS: u64 = 3600;

/// How long a stopping ring waits for the kernel to confirm its cancels
/// before it gives up and leaks what is still lent out.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- user_data

pub(super) const TAG_OP: u64 = 1;
pub(super) const TAG_RECV: u64 = 2;
pub(super) const TAG_SEND: u64 = 3;
const TAG_WAKE: u64 = 4;
pub(super) const TAG_CLOSE: u64 = 5;
/// Completions nobody waits for (cancels): counted only.
pub(super) const TAG_IGNORE: u64 = 6;
/// A fixed-file slot was closed: it may be reused now, not before.
pub(super) const TAG_UNFIX: u64 = 7;

pub(super) fn ud(tag: u64, gen_: u32, idx: usize) -> u64 {
    tag << 56 | (gen_ as u64 & 0xff_ffff) << 32 | (idx as u64 & 0xffff_ffff)
}

fn ud_parts(ud: u64) -> (u64, u32, usize) {
    (
        ud >> 56,
        ((ud >> 32) & 0xff_ffff) as u32,
        (ud & 0xffff_ffff) as usize,
    )
}

/// A buffer that grew beyond this (one huge packet) is not kept.
pub(super) const KEEP_CAPACITY: usize = 4 << 20;

/// Counters of one core's ring, for diagnostics and the bench tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// `io_uring_enter` calls (the loop's only system call on the hot path).
    pub enters: u64,
    /// Of those, the ones that waited for completions.
    pub waits: u64,
    /// Completions dispatched.
    pub completions: u64,
    /// Submission entries pushed.
    pub submissions: u64,
    /// Multishot receives armed (once per connection unless stopped).
    pub recv_arms: u64,
    /// Receives that ran out of provided buffers (`ENOBUFS`) and were re-armed.
    pub recv_nobufs: u64,
    /// Sends resubmitted after the kernel sent only part of them.
    pub short_sends: u64,
    /// Operations cancelled in the kernel because their future was dropped.
    pub cancels: u64,
    /// Operations whose memory was leaked because the ring stopped before
    /// the kernel confirmed it was done with them.
    pub leaked: u64,
}

// ---------------------------------------------------------------- the reactor

pub(crate) struct Reactor {
    /// Dropped (the ring closed) before `bufs` and `wake_buf`, and only
    /// through [`Reactor::shutdown_all`].
    pub(super) kernel: ManuallyDrop<Kernel>,
    pub(super) bufs: ManuallyDrop<BufRing>,
    pub(super) ops: slab::Slab<OpSlot>,
    pub(super) socks: slab::Slab<Sock>,
    next_gen: u32,
    pub(super) fixed_free: Vec<u32>,
    /// Entries that did not fit in the submission queue yet.
    overflow: Vec<Submission>,
    cqes: Vec<Cqe>,
    /// Sockets whose receive stopped for lack of buffers: re-armed after the
    /// buffers of this dispatch are back in the ring.
    pub(super) rearm: Vec<usize>,
    wakes: Vec<Waker>,
    /// Target of the eventfd read that wakes the core from other threads.
    wake_buf: ManuallyDrop<Box<u64>>,
    /// True while that read is in the kernel.
    wake_armed: bool,
    eventfd: RawFd,
    /// Tasks waiting on this ring (readers, writers, one-shot ops).
    pub(super) waiting: usize,
    /// Sends submitted since the last wait whose completion nobody waits
    /// for: expected at once (the kernel issues them inline), so the wait
    /// counts them on top of what the tasks wait for.
    pub(super) sends_now: usize,
    /// Counts waits; a send counted in `sends_now` remembers the epoch.
    pub(super) epoch: u32,
    /// Provided buffers held by socket queues, and the most they may hold.
    pub(super) held: usize,
    pub(super) hold_limit: usize,
    info: RingInfo,
    pub(super) cfg: RingConfig,
    pub(crate) stats: RingStats,
    /// Set when the ring starts stopping: nothing new is lent to it.
    shut: bool,
    kernel_dropped: bool,
}

fn no_uring(e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot create an io_uring instance ({e}): mysql-uring needs Linux 6.0 or newer with \
             io_uring enabled (check that `sysctl kernel.io_uring_disabled` is 0 and that a \
             container's seccomp profile allows io_uring_setup)"
        ),
    )
}

impl Reactor {
    /// Creates a ring with the most capable setup the kernel accepts, at or
    /// below `cfg.max_setup`, and registers its fd, a sparse file table and
    /// the provided buffer ring.
    pub(crate) fn new(cfg: &RingConfig, eventfd: RawFd) -> io::Result<Reactor> {
        let setups = [
            RingSetup::DeferTaskrun,
            RingSetup::SingleIssuer,
            RingSetup::CoopTaskrun,
            RingSetup::Plain,
        ];
        let mut last = None;
        let mut made = None;
        for setup in setups.into_iter().filter(|s| *s <= cfg.max_setup) {
            let mut b = IoUring::builder();
            b.setup_cqsize(cfg.entries.saturating_mul(4).max(256))
                .setup_submit_all();
            match setup {
                RingSetup::DeferTaskrun => {
                    b.setup_single_issuer()
                        .setup_defer_taskrun()
                        .setup_coop_taskrun()
                        .setup_taskrun_flag();
                }
                RingSetup::SingleIssuer => {
                    b.setup_single_issuer()
                        .setup_coop_taskrun()
                        .setup_taskrun_flag();
                }
                RingSetup::CoopTaskrun => {
                    b.setup_coop_taskrun().setup_taskrun_flag();
                }
                RingSetup::Plain => {}
            }
            match b.build(cfg.entries) {
                Ok(r) => {
                    made = Some((r, setup));
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some((ring, setup)) = made else {
            return Err(no_uring(
                last.unwrap_or_else(|| io::Error::other("no ring setup allowed")),
            ));
        };
        let registered_ring_fd = ring.submitter().register_ring_fd().is_ok();
        let fixed_files = if cfg.fixed_files > 0 {
            ring.submitter()
                .register_files_sparse(cfg.fixed_files)
                .is_ok()
        } else {
            false
        };
        let min_wait = ring.params().is_feature_min_timeout();
        let info = RingInfo {
            setup,
            registered_ring_fd,
            fixed_files,
            min_wait,
            buffers: cfg.buffers,
            buffer_size: cfg.buffer_size,
        };
        Self::with_kernel(Kernel::Ring(ring), info, cfg, eventfd)
    }

    /// A reactor on a simulated kernel (feature `sim`).
    #[cfg(feature = "sim")]
    pub(crate) fn simulated(
        kernel: Box<crate::sim::kernel::SimKernel>,
        cfg: &RingConfig,
        eventfd: RawFd,
    ) -> io::Result<Reactor> {
        let info = RingInfo {
            setup: RingSetup::DeferTaskrun,
            registered_ring_fd: true,
            fixed_files: cfg.fixed_files > 0,
            min_wait: true,
            buffers: cfg.buffers,
            buffer_size: cfg.buffer_size,
        };
        Self::with_kernel(Kernel::Sim(kernel), info, cfg, eventfd)
    }

    fn with_kernel(
        mut kernel: Kernel,
        info: RingInfo,
        cfg: &RingConfig,
        eventfd: RawFd,
    ) -> io::Result<Reactor> {
        let bufs = BufRing::new(&mut kernel, cfg.buffers, cfg.buffer_size).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot register a provided buffer ring ({e}): mysql-uring needs Linux 6.0 or newer"
                ),
            )
        })?;
        let mut r = Reactor {
            kernel: ManuallyDrop::new(kernel),
            bufs: ManuallyDrop::new(bufs),
            ops: slab::Slab::with_capacity(16),
            socks: slab::Slab::with_capacity(16),
            next_gen: 1,
            fixed_free: if info.fixed_files {
                (0..cfg.fixed_files).rev().collect()
            } else {
                Vec::new()
            },
            overflow: Vec::new(),
            cqes: Vec::with_capacity(256),
            rearm: Vec::new(),
            wakes: Vec::new(),
            wake_buf: ManuallyDrop::new(Box::new(0)),
            wake_armed: false,
            eventfd,
            waiting: 0,
            sends_now: 0,
            epoch: 1,
            held: 0,
            hold_limit: (cfg.buffers as usize / 2).max(1),
            info,
            cfg: cfg.clone(),
            stats: RingStats::default(),
            shut: false,
            kernel_dropped: false,
        };
        r.arm_wake();
        Ok(r)
    }

    pub(crate) fn info(&self) -> RingInfo {
        self.info
    }

    /// A fresh generation for a slot (24 bits, never 0).
    pub(super) fn next_gen(&mut self) -> u32 {
        let g = self.next_gen;
        self.next_gen = (self.next_gen + 1) & 0xff_ffff;
        if self.next_gen == 0 {
            self.next_gen = 1;
        }
        g
    }

    /// Queues a submission that lends the kernel no memory (a cancel, a
    /// multishot receive into the provided buffers, a fixed-file close).
    pub(super) fn push_plain(&mut self, e: Submission) {
        assert!(!e.op.lends_memory(), "{:?} lends memory: use push", e.op);
        // SAFETY: no pointer in it.
        unsafe { self.push(e) }
    }

    /// Queues `e`; when the submission queue is full, submits what is there
    /// first, and keeps `e` for later if that does not make room.
    ///
    /// # Safety
    /// Every pointer in `e` must point into memory the reactor owns and
    /// keeps, unmoved and unused, until the operation's last completion (a
    /// one-shot op's slot, a socket's busy send, the eventfd target), or
    /// leaks if the ring stops first (see [`Reactor::shutdown_all`]).
    pub(super) unsafe fn push(&mut self, e: Submission) {
        if self.kernel_dropped {
            return; // the kernel is gone: nothing is lent to it any more
        }
        self.stats.submissions += 1;
        if !self.overflow.is_empty() {
            self.overflow.push(e);
            return;
        }
        // SAFETY: the caller's promise, forwarded (the overflow list keeps
        // `e` pushed later, its memory still owned as the caller promised).
        if unsafe { self.kernel.push(&e) } {
            return;
        }
        let _ = self.kernel.submit();
        if !unsafe { self.kernel.push(&e) } {
            self.overflow.push(e);
        }
    }

    fn flush_overflow(&mut self) {
        while !self.overflow.is_empty() {
            let mut pushed = 0;
            for e in &self.overflow {
                // SAFETY: pushed with `push`'s promise, which still holds.
                if !unsafe { self.kernel.push(e) } {
                    break;
                }
                pushed += 1;
            }
            self.overflow.drain(..pushed);
            if self.overflow.is_empty() {
                break;
            }
            self.stats.enters += 1;
            if self.kernel.submit().is_err() && pushed == 0 {
                break; // retried on the next turn
            }
        }
    }

    fn arm_wake(&mut self) {
        if self.shut {
            return;
        }
        let buf: *mut u64 = &mut **self.wake_buf;
        let e = Sqe::Read {
            fd: Target::Fd(self.eventfd),
            buf: buf.cast(),
            len: 8,
            offset: 0,
        };
        self.wake_armed = true;
        // SAFETY: `wake_buf` is the reactor's; it is freed only once this
        // read has completed (else leaked), see `shutdown_all`.
        unsafe { self.push(Submission::new(e, ud(TAG_WAKE, 0, 0))) };
    }

    // ------------------------------------------------------------ the wait

    /// Submits what was queued and, unless `ready`, waits for completions:
    /// for several when many tasks wait (bounded by the minimum-wait time, so
    /// the thread sleeps far less than once per completion under load), for
    /// one otherwise, never longer than `timeout`. One `io_uring_enter`.
    ///
    /// The sends submitted since the last wait are counted on top: the
    /// kernel issues them inline, so their completions are there before it
    /// starts waiting, and a wait for one reply must not return with only
    /// its request's send completion.
    ///
    /// A min-wait always comes with an overall timeout (the next timer, else
    /// [`IDLE_WAIT_SECS`]): with none, the kernel takes the min-wait as the
    /// timeout and returns empty-handed every `min_wait` while nothing
    /// arrives (measured: ~20 wake-ups per 16 ms INSERT on 4 connections).
    pub(crate) fn enter(&mut self, ready: bool, timeout: Option<Duration>) -> io::Result<()> {
        if self.shut {
            return Err(io::Error::other("the ring was stopped"));
        }
        // Buffers readers gave back since the last dispatch.
        self.bufs.publish();
        self.flush_overflow();
        let pending_sq = !self.kernel.sq_is_empty();
        if ready {
            // Work is queued: only submit, and collect completions the kernel
            // holds back for us (deferred task work), without sleeping.
            let taskrun = self.kernel.taskrun();
            if !pending_sq && !taskrun {
                return Ok(());
            }
            self.stats.enters += 1;
            self.sends_now = 0;
            self.epoch = self.epoch.wrapping_add(1);
            return self.kernel.submit().map(drop).or_else(benign);
        }
        // Fresh sends' completions count only where the kernel can bound
        // the wait (min-wait): a send that does not complete at once (a full
        // socket buffer) must not hold the wait up for good.
        let batch = self.want();
        let want = if self.info.min_wait {
            batch + self.sends_now
        } else {
            batch
        };
        self.sends_now = 0;
        self.epoch = self.epoch.wrapping_add(1);
        self.stats.enters += 1;
        self.stats.waits += 1;
        let min_wait = if want > 1 && self.info.min_wait {
            self.cfg.batch_min_wait.as_micros().min(u32::MAX as u128) as u32
        } else {
            0
        };
        self.kernel
            .submit_and_wait(want, timeout, min_wait)
            .map(drop)
            .or_else(benign)
    }

    /// How many completions to wait for (besides fresh sends').
    fn want(&self) -> usize {
        if !self.info.min_wait || self.cfg.batch_per == 0 {
            return 1;
        }
        (self.waiting / self.cfg.batch_per).clamp(1, self.cfg.batch_max.max(1))
    }

    // ------------------------------------------------------------ dispatch

    /// Handles every completion in the queue; returns how many. Wakers are
    /// collected and woken after the reactor is updated (by the caller, via
    /// [`Reactor::take_wakes`]).
    pub(crate) fn dispatch(&mut self) -> usize {
        if self.kernel_gone() {
            return 0;
        }
        self.cqes.clear();
        self.kernel.completions(&mut self.cqes);
        let n = self.cqes.len();
        self.stats.completions += n as u64;
        for i in 0..n {
            let (data, res, flags) = self.cqes[i];
            let (tag, gen_, idx) = ud_parts(data);
            match tag {
                TAG_OP => self.op_done(gen_, idx, res),
                TAG_RECV => self.recv_done(gen_, idx, res, flags),
                TAG_SEND => self.send_done(gen_, idx, res),
                TAG_CLOSE => self.close_done(gen_, idx),
                TAG_WAKE => {
                    self.wake_armed = false;
                    self.arm_wake();
                }
                TAG_UNFIX => self.fixed_free.push(idx as u32),
                _ => {
                    // A cancel: nothing waits for it.
                    if let Some(bid) = io_uring::cqueue::buffer_select(flags) {
                        self.bufs.taken(bid);
                        self.bufs.recycle(bid);
                    }
                }
            }
        }
        self.bufs.publish();
        while let Some(idx) = self.rearm.pop() {
            self.arm_recv(idx);
        }
        n
    }

    /// The wakers collected by [`Reactor::dispatch`], to wake outside the borrow.
    pub(crate) fn take_wakes(&mut self, into: &mut Vec<Waker>) {
        into.append(&mut self.wakes);
    }

    pub(super) fn wake(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            self.waiting = self.waiting.saturating_sub(1);
            self.wakes.push(w);
        }
    }

    /// Submits what is queued without waiting (a `block_on` is returning:
    /// cancels and closes should reach the kernel now).
    pub(crate) fn submit_pending(&mut self) {
        if self.kernel_dropped {
            return;
        }
        self.flush_overflow();
        if !self.kernel.sq_is_empty() {
            self.stats.enters += 1;
            let _ = self.kernel.submit();
        }
    }

    /// True once the kernel (the ring) has been dropped.
    fn kernel_gone(&self) -> bool {
        self.kernel_dropped
    }

    /// Stops the ring: cancels everything in flight and waits (up to
    /// [`SHUTDOWN_WAIT`]) for the kernel to confirm it is done with every
    /// piece of memory it was lent. What it has not confirmed by then is
    /// leaked, never freed: an operation still running in the kernel (a
    /// file read in a worker thread, say) may write into it after the ring
    /// is gone.
    pub(crate) fn shutdown_all(&mut self) {
        if self.shut {
            return;
        }
        self.shut = true;
        self.close_all_socks();
        self.orphan_all_ops();
        if self.wake_armed {
            let c = Sqe::Cancel {
                user_data: ud(TAG_WAKE, 0, 0),
            };
            self.push_plain(Submission::new(c, ud(TAG_IGNORE, 0, 0)).skip_success());
        }
        // The ring's clock (virtual under the simulation), as every wait's.
        let deadline = super::kernel::now() + SHUTDOWN_WAIT;
        let mut cancelled_all = false;
        loop {
            self.flush_overflow();
            let outstanding =
                self.ops_in_flight() + self.socks_in_kernel() + self.wake_armed as usize;
            if outstanding == 0 {
                break;
            }
            let now = super::kernel::now();
            if now >= deadline {
                break;
            }
            if !cancelled_all {
                // Everything left: cancel it synchronously too.
                cancelled_all = true;
                let _ = self.kernel.submit();
                let _ = self.kernel.sync_cancel(None, Duration::from_millis(100));
            }
            let wait = (deadline - now).min(Duration::from_millis(20));
            let _ = self.kernel.submit_and_wait(1, Some(wait), 0);
            self.dispatch();
            self.wakes.clear();
        }
        let leaked_ops = self.leak_ops();
        let leaked_socks = self.leak_socks();
        self.stats.leaked += (leaked_ops + leaked_socks) as u64;
        let bufs_in_kernel = leaked_socks > 0;
        if !bufs_in_kernel {
            self.kernel.unregister_buf_ring(BGID);
        }
        if self.info.fixed_files {
            self.kernel.unregister_files();
            self.fixed_free.clear();
        }
        // SAFETY: each field is dropped once, here, and never used again
        // (`shut` stops every later use; Drop does not drop them again).
        // The ring goes first: the kernel lets go of what it still holds.
        unsafe { ManuallyDrop::drop(&mut self.kernel) };
        self.kernel_dropped = true;
        if bufs_in_kernel {
            self.stats.leaked += 1; // the provided buffers: a receive may still fill them
        } else {
            // SAFETY: as above; no receive is left in the kernel.
            unsafe { ManuallyDrop::drop(&mut self.bufs) };
        }
        if !self.wake_armed {
            // SAFETY: as above; the eventfd read completed.
            unsafe { ManuallyDrop::drop(&mut self.wake_buf) };
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.shutdown_all();
    }
}

/// Errors of `io_uring_enter` that only mean "look at the queue again".
fn benign(e: io::Error) -> io::Result<()> {
    match e.raw_os_error() {
        Some(libc::EINTR | libc::ETIME | libc::EBUSY | libc::EAGAIN) => Ok(()),
        _ => Err(e),
    }
}
