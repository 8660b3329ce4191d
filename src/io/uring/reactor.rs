//! The ring of one core and everything in flight on it: one-shot operations,
//! sockets (their always-armed multishot receive and their sends), the
//! provided buffer ring, and the wait in `io_uring_enter`.
//!
//! Every completion is dispatched here by its `user_data`: a tag (what kind
//! of operation), a generation (so a late completion never reaches a reused
//! slot) and a slot index.

use std::any::Any;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::bufring::{BGID, BufRing};
use super::{RingConfig, RingInfo, RingSetup};

/// The overall bound of a batched wait with no timer due (see
/// [`Reactor::enter`]): long, since it only gives the min-wait its meaning;
/// when it passes the loop simply waits again.
const IDLE_WAIT_SECS: u64 = 3600;

// ---------------------------------------------------------------- user_data

const TAG_OP: u64 = 1;
const TAG_RECV: u64 = 2;
const TAG_SEND: u64 = 3;
const TAG_WAKE: u64 = 4;
const TAG_CLOSE: u64 = 5;
/// Completions nobody waits for (cancels): counted only.
const TAG_IGNORE: u64 = 6;
/// A fixed-file slot was closed: it may be reused now, not before.
const TAG_UNFIX: u64 = 7;

fn ud(tag: u64, gen_: u32, idx: usize) -> u64 {
    tag << 56 | (gen_ as u64 & 0xff_ffff) << 32 | (idx as u64 & 0xffff_ffff)
}

fn ud_parts(ud: u64) -> (u64, u32, usize) {
    (
        ud >> 56,
        ((ud >> 32) & 0xff_ffff) as u32,
        (ud & 0xffff_ffff) as usize,
    )
}

/// A read buffer that grew beyond this (one huge packet) is not kept.
const KEEP_CAPACITY: usize = 4 << 20;

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
}

// ---------------------------------------------------------------- one-shot ops

enum OpState {
    /// In the kernel; the waker of whoever awaits it.
    Waiting(Option<Waker>),
    Done(i32, u32),
    /// Its future was dropped: the kernel may still use `keep`; freed at completion.
    Orphaned,
}

/// What a finished one-shot op gives back: result, flags, the kept memory.
pub(crate) type OpOutput = (i32, u32, Option<Box<dyn Any>>);

struct OpSlot {
    state: OpState,
    /// Memory the kernel may read or write until the completion arrives.
    keep: Option<Box<dyn Any>>,
}

// ---------------------------------------------------------------- sockets

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    Idle,
    Armed,
    /// A cancel was requested; the receive's last completion is still to come.
    Cancelling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendState {
    Idle,
    /// Submitted with `CQE_SKIP_SUCCESS`: no completion unless it fails. The
    /// reply to it proves it done ([`Reactor::confirm_sent`]).
    Fired,
    /// Submitted; its completion is awaited.
    Waiting,
}

struct Sock {
    gen_: u32,
    fd: OwnedFd,
    fixed: Option<u32>,
    /// Provided buffers holding received bytes not yet taken by the reader,
    /// oldest first: the reader copies them straight into its own buffer.
    queue: std::collections::VecDeque<(u16, u32)>,
    /// Received bytes copied out of the provided buffers (when too many were
    /// held), after those in `queue`.
    inbox: BytesMut,
    /// Bytes in `queue` and `inbox`.
    unread: usize,
    recv: Arm,
    eof: bool,
    /// A receive error (errno), reported once the inbox is empty.
    recv_err: Option<i32>,
    reader: Option<Waker>,
    /// The bytes in flight (or, idle, an empty buffer to swap in next).
    send_buf: Vec<u8>,
    send_off: usize,
    send: SendState,
    send_err: Option<i32>,
    writer: Option<Waker>,
    closing: bool,
}

impl Sock {
    fn target(&self) -> Target {
        match self.fixed {
            Some(i) => Target::Fixed(i),
            None => Target::Fd(self.fd.as_raw_fd()),
        }
    }
}

#[derive(Clone, Copy)]
enum Target {
    Fixed(u32),
    Fd(RawFd),
}

macro_rules! on_target {
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

// ---------------------------------------------------------------- the reactor

pub(crate) struct Reactor {
    ring: IoUring,
    /// Declared after `ring`: dropped after it (the kernel lets go first).
    bufs: BufRing,
    ops: slab::Slab<OpSlot>,
    socks: slab::Slab<Sock>,
    next_gen: u32,
    fixed_free: Vec<u32>,
    /// Entries that did not fit in the submission queue yet.
    overflow: Vec<squeue::Entry>,
    cqes: Vec<(u64, i32, u32)>,
    /// Sockets whose receive stopped for lack of buffers: re-armed after the
    /// buffers of this dispatch are back in the ring.
    rearm: Vec<usize>,
    wakes: Vec<Waker>,
    /// Target of the eventfd read that wakes the core from other threads.
    wake_buf: Box<u64>,
    eventfd: RawFd,
    /// Tasks waiting on this ring (readers, writers, one-shot ops).
    waiting: usize,
    /// Provided buffers held by socket queues, and the most they may hold.
    held: usize,
    hold_limit: usize,
    info: RingInfo,
    cfg: RingConfig,
    pub(crate) stats: RingStats,
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
        let bufs = BufRing::new(&ring.submitter(), cfg.buffers, cfg.buffer_size).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot register a provided buffer ring ({e}): mysql-uring needs Linux 6.0 or newer"
                ),
            )
        })?;
        let info = RingInfo {
            setup,
            registered_ring_fd,
            fixed_files,
            min_wait,
            buffers: cfg.buffers,
            buffer_size: cfg.buffer_size,
        };
        let mut r = Reactor {
            ring,
            bufs,
            ops: slab::Slab::with_capacity(16),
            socks: slab::Slab::with_capacity(16),
            next_gen: 1,
            fixed_free: if fixed_files {
                (0..cfg.fixed_files).rev().collect()
            } else {
                Vec::new()
            },
            overflow: Vec::new(),
            cqes: Vec::with_capacity(256),
            rearm: Vec::new(),
            wakes: Vec::new(),
            wake_buf: Box::new(0),
            eventfd,
            waiting: 0,
            held: 0,
            hold_limit: (cfg.buffers as usize / 2).max(1),
            info,
            cfg: cfg.clone(),
            stats: RingStats::default(),
        };
        r.arm_wake();
        Ok(r)
    }

    pub(crate) fn info(&self) -> RingInfo {
        self.info
    }

    /// Queues `e`; when the submission queue is full, submits what is there
    /// first, and keeps `e` for later if that does not make room.
    fn push(&mut self, e: squeue::Entry) {
        self.stats.submissions += 1;
        if !self.overflow.is_empty() {
            self.overflow.push(e);
            return;
        }
        // SAFETY (for every push): each entry's buffers are owned by a slot of
        // this reactor (op `keep`, socket inbox/send buffer, `wake_buf`, the
        // buffer ring) and are freed only after the entry's last completion,
        // or after the operation was cancelled and the cancel completed.
        if unsafe { self.ring.submission().push(&e) }.is_ok() {
            return;
        }
        let _ = self.ring.submit();
        if unsafe { self.ring.submission().push(&e) }.is_err() {
            self.overflow.push(e);
        }
    }

    fn flush_overflow(&mut self) {
        while !self.overflow.is_empty() {
            let mut pushed = 0;
            {
                let mut sq = self.ring.submission();
                for e in &self.overflow {
                    // SAFETY: as in `push`.
                    if unsafe { sq.push(e) }.is_err() {
                        break;
                    }
                    pushed += 1;
                }
            }
            self.overflow.drain(..pushed);
            if self.overflow.is_empty() {
                break;
            }
            self.stats.enters += 1;
            if self.ring.submit().is_err() && pushed == 0 {
                break; // retried on the next turn
            }
        }
    }

    fn arm_wake(&mut self) {
        let buf: *mut u64 = &mut *self.wake_buf;
        let e = opcode::Read::new(types::Fd(self.eventfd), buf.cast(), 8)
            .build()
            .user_data(ud(TAG_WAKE, 0, 0));
        self.push(e);
    }

    // ------------------------------------------------------------ the wait

    /// Submits what was queued and, unless `ready`, waits for completions:
    /// for several when many tasks wait (bounded by the minimum-wait time, so
    /// the thread sleeps far less than once per completion under load), for
    /// one otherwise, never longer than `timeout`. One `io_uring_enter`.
    pub(crate) fn enter(&mut self, ready: bool, timeout: Option<Duration>) -> io::Result<()> {
        // Buffers readers gave back since the last dispatch.
        self.bufs.publish();
        self.flush_overflow();
        let pending_sq = !self.ring.submission().is_empty();
        if ready {
            // Work is queued: only submit, and collect completions the kernel
            // holds back for us (deferred task work), without sleeping.
            let taskrun = self.ring.submission().taskrun();
            if !pending_sq && !taskrun {
                return Ok(());
            }
            self.stats.enters += 1;
            return self.ring.submit().map(drop).or_else(benign);
        }
        let want = self.want();
        self.stats.enters += 1;
        self.stats.waits += 1;
        let min_wait = if want > 1 && self.info.min_wait {
            self.cfg.batch_min_wait.as_micros().min(u32::MAX as u128) as u32
        } else {
            0
        };
        let r = match timeout {
            None if min_wait == 0 => self.ring.submit_and_wait(want),
            None => {
                // A min-wait needs an overall timeout to mean "wait this
                // long for `want`, then return with whatever there is": with
                // none, the kernel takes the min-wait as the timeout and
                // returns empty-handed every `min_wait` while nothing
                // arrives (measured: ~20 wake-ups per 16 ms INSERT on 4
                // connections). A long timeout keeps the sleep unbroken.
                let ts = types::Timespec::new().sec(IDLE_WAIT_SECS);
                let args = types::SubmitArgs::new()
                    .timespec(&ts)
                    .min_wait_usec(min_wait);
                self.ring.submitter().submit_with_args(want, &args)
            }
            Some(t) => {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new()
                    .timespec(&ts)
                    .min_wait_usec(min_wait);
                self.ring.submitter().submit_with_args(want, &args)
            }
        };
        r.map(drop).or_else(benign)
    }

    /// How many completions to wait for.
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
        self.cqes.clear();
        for e in self.ring.completion() {
            self.cqes.push((e.user_data(), e.result(), e.flags()));
        }
        let n = self.cqes.len();
        self.stats.completions += n as u64;
        for i in 0..n {
            let (data, res, flags) = self.cqes[i];
            let (tag, gen_, idx) = ud_parts(data);
            match tag {
                TAG_OP => self.op_done(idx, res, flags),
                TAG_RECV => self.recv_done(gen_, idx, res, flags),
                TAG_SEND => self.send_done(gen_, idx, res),
                TAG_CLOSE => self.close_done(gen_, idx),
                TAG_WAKE => self.arm_wake(),
                TAG_UNFIX => self.fixed_free.push(idx as u32),
                _ => {
                    // A cancel, or a close of a fixed file: nothing waits.
                    if let Some(bid) = cqueue::buffer_select(flags) {
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

    fn wake(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            self.waiting = self.waiting.saturating_sub(1);
            self.wakes.push(w);
        }
    }

    // ------------------------------------------------------------ one-shot ops

    /// Submits `e` (its user_data is set here); `keep` stays alive until its
    /// completion. Returns the slot to poll.
    ///
    /// # Safety
    /// Every pointer in `e` must point into `keep` (or into memory that
    /// outlives the ring).
    pub(crate) unsafe fn op_submit(
        &mut self,
        e: squeue::Entry,
        keep: Option<Box<dyn Any>>,
    ) -> usize {
        let idx = self.ops.insert(OpSlot {
            state: OpState::Waiting(None),
            keep,
        });
        self.push(e.user_data(ud(TAG_OP, 0, idx)));
        idx
    }

    /// Polls a one-shot op: its result, flags and the memory it kept.
    pub(crate) fn op_poll(&mut self, idx: usize, cx: &mut Context<'_>) -> Poll<OpOutput> {
        let Some(slot) = self.ops.get_mut(idx) else {
            return Poll::Ready((-libc::ECANCELED, 0, None));
        };
        match &mut slot.state {
            OpState::Done(res, flags) => {
                let (res, flags) = (*res, *flags);
                let slot = self.ops.remove(idx);
                Poll::Ready((res, flags, slot.keep))
            }
            OpState::Waiting(w) => {
                if w.is_none() {
                    self.waiting += 1;
                }
                *w = Some(cx.waker().clone());
                Poll::Pending
            }
            OpState::Orphaned => Poll::Ready((-libc::ECANCELED, 0, None)),
        }
    }

    /// The future of op `idx` was dropped: cancel it in the kernel; its memory
    /// is freed when its completion arrives.
    pub(crate) fn op_drop(&mut self, idx: usize) {
        let Some(slot) = self.ops.get_mut(idx) else {
            return;
        };
        match &mut slot.state {
            OpState::Done(..) | OpState::Orphaned => {
                self.ops.remove(idx);
            }
            OpState::Waiting(w) => {
                if w.take().is_some() {
                    self.waiting = self.waiting.saturating_sub(1);
                }
                slot.state = OpState::Orphaned;
                self.stats.cancels += 1;
                let c = opcode::AsyncCancel::new(ud(TAG_OP, 0, idx))
                    .build()
                    .user_data(ud(TAG_IGNORE, 0, 0))
                    .flags(squeue::Flags::SKIP_SUCCESS);
                self.push(c);
            }
        }
    }

    fn op_done(&mut self, idx: usize, res: i32, flags: u32) {
        let Some(slot) = self.ops.get_mut(idx) else {
            return;
        };
        match &mut slot.state {
            OpState::Waiting(w) => {
                let w = w.take();
                slot.state = OpState::Done(res, flags);
                self.wake(w);
            }
            OpState::Orphaned => {
                self.ops.remove(idx);
            }
            OpState::Done(..) => {}
        }
    }

    // ------------------------------------------------------------ sockets

    /// Takes ownership of a socket and registers it as a fixed file when the
    /// table has room. Its receive is armed on first use.
    pub(crate) fn sock_add(&mut self, fd: OwnedFd) -> (usize, u32) {
        let fixed = self.fixed_free.pop().and_then(|i| {
            match self
                .ring
                .submitter()
                .register_files_update(i, &[fd.as_raw_fd()])
            {
                Ok(_) => Some(i),
                Err(_) => {
                    self.fixed_free.push(i);
                    None
                }
            }
        });
        let gen_ = self.next_gen;
        self.next_gen = (self.next_gen + 1) & 0xff_ffff;
        let idx = self.socks.insert(Sock {
            gen_,
            fd,
            fixed,
            queue: std::collections::VecDeque::new(),
            inbox: BytesMut::new(),
            unread: 0,
            recv: Arm::Idle,
            eof: false,
            recv_err: None,
            reader: None,
            send_buf: Vec::new(),
            send_off: 0,
            send: SendState::Idle,
            send_err: None,
            writer: None,
            closing: false,
        });
        (idx, gen_)
    }

    /// The target (fixed index or fd) operations on socket `idx` use.
    pub(crate) fn sock_connect_entry(
        &self,
        idx: usize,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    ) -> squeue::Entry {
        let t = self.socks[idx].target();
        on_target!(t, |f| opcode::Connect::new(f, addr, len).build())
    }

    pub(crate) fn sock_fd(&self, idx: usize) -> RawFd {
        self.socks.get(idx).map_or(-1, |s| s.fd.as_raw_fd())
    }

    fn arm_recv(&mut self, idx: usize) {
        let Some(s) = self.socks.get_mut(idx) else {
            return;
        };
        if s.recv != Arm::Idle
            || s.eof
            || s.recv_err.is_some()
            || s.closing
            || s.unread >= self.cfg.inbox_limit
        {
            return;
        }
        s.recv = Arm::Armed;
        let t = s.target();
        let data = ud(TAG_RECV, s.gen_, idx);
        self.stats.recv_arms += 1;
        let e = on_target!(t, |f| opcode::RecvMulti::new(f, BGID).build());
        self.push(e.user_data(data));
    }

    fn recv_done(&mut self, gen_: u32, idx: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let Some(s) = self.socks.get_mut(idx).filter(|s| s.gen_ == gen_) else {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            return;
        };
        let mut news = true;
        if res > 0 {
            if let Some(bid) = bid {
                s.unread += res as usize;
                // Keep the bytes where the kernel put them, for the reader to
                // copy once; but never let sockets hold more than half the
                // ring (a socket nobody reads must not starve the others):
                // then copy them out and give the buffer back at once.
                if s.inbox.is_empty() && self.held < self.hold_limit {
                    s.queue.push_back((bid, res as u32));
                    self.held += 1;
                } else {
                    s.inbox.extend_from_slice(self.bufs.get(bid, res as usize));
                    self.bufs.recycle(bid);
                }
            }
        } else if res == 0 {
            s.eof = true;
        } else if res == -libc::ENOBUFS {
            // Every provided buffer was in use: re-armed once this
            // dispatch has given its buffers back.
            self.stats.recv_nobufs += 1;
            news = false;
            if !more {
                self.rearm.push(idx);
            }
        } else if res == -libc::ECANCELED {
            news = false;
        } else {
            s.recv_err = Some(-res);
        }
        if !more {
            s.recv = Arm::Idle;
        }
        // Too much unread: stop receiving until the reader catches up (the
        // kernel's socket buffer then applies TCP back-pressure).
        if s.recv == Arm::Armed && s.unread >= self.cfg.inbox_limit {
            s.recv = Arm::Cancelling;
            let c = opcode::AsyncCancel::new(ud(TAG_RECV, s.gen_, idx))
                .build()
                .user_data(ud(TAG_IGNORE, 0, 0))
                .flags(squeue::Flags::SKIP_SUCCESS);
            self.push(c);
        }
        if news {
            let w = self.socks[idx].reader.take();
            self.wake(w);
        }
    }

    /// Moves received bytes into `dst` (appending; no copy when `dst` is
    /// empty: the buffers are swapped). `Ok(0)` at end of stream.
    pub(crate) fn sock_poll_recv(
        &mut self,
        idx: usize,
        dst: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let Some(s) = self.socks.get_mut(idx) else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        if s.unread > 0 {
            let n = s.unread;
            if !s.queue.is_empty() {
                dst.reserve(n);
                for (bid, len) in s.queue.drain(..) {
                    dst.extend_from_slice(self.bufs.get(bid, len as usize));
                    self.bufs.recycle(bid);
                    self.held -= 1;
                }
            }
            if !s.inbox.is_empty() {
                if dst.is_empty() {
                    std::mem::swap(dst, &mut s.inbox);
                    s.inbox.clear();
                    if s.inbox.capacity() > KEEP_CAPACITY {
                        s.inbox = BytesMut::new();
                    }
                } else {
                    dst.extend_from_slice(&s.inbox);
                    s.inbox.clear();
                }
            }
            s.unread = 0;
            if s.reader.take().is_some() {
                self.waiting = self.waiting.saturating_sub(1);
            }
            self.arm_recv(idx);
            return Poll::Ready(Ok(n));
        }
        if let Some(e) = s.recv_err {
            return Poll::Ready(Err(io::Error::from_raw_os_error(e)));
        }
        if s.eof {
            return Poll::Ready(Ok(0));
        }
        if s.reader.is_none() {
            self.waiting += 1;
        }
        s.reader = Some(cx.waker().clone());
        self.arm_recv(idx);
        Poll::Pending
    }

    /// The reader stopped waiting (its future was dropped).
    pub(crate) fn sock_unwait_recv(&mut self, idx: usize) {
        if let Some(s) = self.socks.get_mut(idx) {
            if s.reader.take().is_some() {
                self.waiting = self.waiting.saturating_sub(1);
            }
        }
    }

    /// Starts sending `data` (swapped with the socket's idle buffer, so
    /// `data` comes back empty). With `fire`, no completion is posted unless
    /// the send fails; [`Reactor::confirm_sent`] marks it done.
    pub(crate) fn sock_send(
        &mut self,
        idx: usize,
        data: &mut Vec<u8>,
        fire: bool,
    ) -> io::Result<()> {
        let Some(s) = self.socks.get_mut(idx) else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        if let Some(e) = s.send_err {
            return Err(io::Error::from_raw_os_error(e));
        }
        if s.send != SendState::Idle {
            return Err(io::Error::other(
                "a send was started while the previous one on this socket is still in flight",
            ));
        }
        std::mem::swap(&mut s.send_buf, data);
        data.clear();
        s.send_off = 0;
        s.send = if fire {
            SendState::Fired
        } else {
            SendState::Waiting
        };
        self.submit_send(idx);
        Ok(())
    }

    fn submit_send(&mut self, idx: usize) {
        let s = &self.socks[idx];
        let rest = &s.send_buf[s.send_off..];
        let (ptr, len) = (rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32);
        let t = s.target();
        let mut e = on_target!(t, |f| opcode::Send::new(f, ptr, len)
            .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
            .build())
        .user_data(ud(TAG_SEND, s.gen_, idx));
        if s.send == SendState::Fired {
            e = e.flags(squeue::Flags::SKIP_SUCCESS);
        }
        self.push(e);
    }

    fn send_done(&mut self, gen_: u32, idx: usize, res: i32) {
        let Some(s) = self.socks.get_mut(idx).filter(|s| s.gen_ == gen_) else {
            return;
        };
        if s.send == SendState::Idle {
            // A fired send that was confirmed by its reply, then failed late.
            if res < 0 && res != -libc::ECANCELED {
                s.send_err.get_or_insert(-res);
            }
            return;
        }
        if res < 0 {
            s.send_err = Some(-res);
        } else {
            s.send_off += res as usize;
            if s.send_off < s.send_buf.len() {
                if res == 0 {
                    s.send_err = Some(libc::EPIPE);
                } else {
                    // Short send: the rest goes out as its own operation.
                    self.stats.short_sends += 1;
                    self.submit_send(idx);
                    return;
                }
            }
        }
        s.send = SendState::Idle;
        s.send_buf.clear();
        if s.send_buf.capacity() > KEEP_CAPACITY {
            s.send_buf = Vec::new();
        }
        let w = s.writer.take();
        self.wake(w);
    }

    /// Waits until no send is in flight (a fired send counts as done).
    pub(crate) fn sock_poll_sent(
        &mut self,
        idx: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(s) = self.socks.get_mut(idx) else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        if s.send == SendState::Waiting {
            if s.writer.is_none() {
                self.waiting += 1;
            }
            s.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if s.writer.take().is_some() {
            self.waiting = self.waiting.saturating_sub(1);
        }
        match s.send_err {
            Some(e) => Poll::Ready(Err(io::Error::from_raw_os_error(e))),
            None => Poll::Ready(Ok(())),
        }
    }

    /// The writer stopped waiting (its future was dropped).
    pub(crate) fn sock_unwait_send(&mut self, idx: usize) {
        if let Some(s) = self.socks.get_mut(idx) {
            if s.writer.take().is_some() {
                self.waiting = self.waiting.saturating_sub(1);
            }
        }
    }

    /// The peer answered what was fired: the fired send has completed.
    pub(crate) fn confirm_sent(&mut self, idx: usize) {
        if let Some(s) = self.socks.get_mut(idx) {
            if s.send == SendState::Fired {
                s.send = SendState::Idle;
                s.send_buf.clear();
                if s.send_buf.capacity() > KEEP_CAPACITY {
                    s.send_buf = Vec::new();
                }
            }
        }
    }

    /// True while a send whose completion is awaited is in flight (one
    /// abandoned midway, say): the next send must wait for it.
    pub(crate) fn sock_sending(&self, idx: usize) -> bool {
        self.socks
            .get(idx)
            .is_some_and(|s| s.send == SendState::Waiting)
    }

    /// True while a fired send has not been confirmed.
    pub(crate) fn sock_fired(&self, idx: usize) -> bool {
        self.socks
            .get(idx)
            .is_some_and(|s| s.send == SendState::Fired)
    }

    /// Closes socket `idx`: cancels everything in flight on it in the
    /// kernel; its buffers and fd are released when that cancel completes.
    /// With `running` false (no loop will see the completion) it is done
    /// synchronously.
    pub(crate) fn sock_close(&mut self, idx: usize, running: bool) {
        let Some(s) = self.socks.get_mut(idx) else {
            return;
        };
        if s.closing {
            return;
        }
        s.closing = true;
        if s.reader.take().is_some() {
            self.waiting = self.waiting.saturating_sub(1);
        }
        if s.writer.take().is_some() {
            self.waiting = self.waiting.saturating_sub(1);
        }
        // The peer sees the end now, not when the kernel lets go of the fd.
        // SAFETY: a plain syscall on a descriptor we own.
        unsafe { libc::shutdown(s.fd.as_raw_fd(), libc::SHUT_RDWR) };
        let t = s.target();
        let busy = s.recv != Arm::Idle || s.send != SendState::Idle;
        if !busy {
            self.sock_release(idx);
            return;
        }
        let builder = on_target!(t, |f| types::CancelBuilder::fd(f).all());
        if running {
            let c = opcode::AsyncCancel2::new(builder)
                .build()
                .user_data(ud(TAG_CLOSE, s.gen_, idx));
            self.push(c);
        } else {
            let _ = self
                .ring
                .submitter()
                .register_sync_cancel(Some(types::Timespec::from(Duration::from_secs(1))), builder);
            self.sock_release(idx);
        }
    }

    fn close_done(&mut self, gen_: u32, idx: usize) {
        if self.socks.get(idx).is_some_and(|s| s.gen_ == gen_) {
            self.sock_release(idx);
        }
    }

    /// Frees a closed socket's slot, fixed file and fd: nothing is in flight.
    fn sock_release(&mut self, idx: usize) {
        let s = self.socks.remove(idx);
        for &(bid, _) in &s.queue {
            self.bufs.recycle(bid);
            self.held -= 1;
        }
        if let Some(i) = s.fixed {
            // The slot is reused only once this close has completed: an
            // earlier reuse would have the queued close hit the new socket.
            let e = opcode::Close::new(types::Fixed(i))
                .build()
                .user_data(ud(TAG_UNFIX, 0, i as usize));
            self.push(e);
        }
        drop(s); // closes the fd
    }

    /// Shuts the socket down in both directions (a plain system call), so
    /// the peer sees the end and receives end promptly.
    pub(crate) fn sock_shutdown(&self, idx: usize) {
        if let Some(s) = self.socks.get(idx) {
            // SAFETY: a plain syscall on a descriptor we own.
            unsafe { libc::shutdown(s.fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }

    /// Submits what is queued without waiting (a `block_on` is returning:
    /// cancels and closes should reach the kernel now).
    pub(crate) fn submit_pending(&mut self) {
        self.flush_overflow();
        if !self.ring.submission().is_empty() {
            self.stats.enters += 1;
            let _ = self.ring.submit();
        }
    }

    /// Cancels everything and waits for the kernel to let go of our memory
    /// (the core is stopping).
    pub(crate) fn shutdown_all(&mut self) {
        self.flush_overflow();
        let _ = self.ring.submit();
        let _ = self.ring.submitter().register_sync_cancel(
            Some(types::Timespec::from(Duration::from_secs(1))),
            types::CancelBuilder::any(),
        );
        for _ in self.ring.completion() {}
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
        // Close every socket now (fixed-file references and fds): the peer
        // must see the end without waiting for the ring itself to go.
        if self.info.fixed_files {
            let _ = self.ring.submitter().unregister_files();
            self.fixed_free.clear();
        }
        self.socks.clear();
        self.ops.clear();
    }
}

#[cfg(test)]
impl Reactor {
    /// One-shot operations whose completion has not arrived.
    pub(crate) fn ops_in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Bytes received and not yet read on `s`.
    pub(crate) fn inbox_len(&self, s: &super::socket::Socket) -> usize {
        self.socks.get(s.idx()).map_or(0, |s| s.unread)
    }
}

/// Errors of `io_uring_enter` that only mean "look at the queue again".
fn benign(e: io::Error) -> io::Result<()> {
    match e.raw_os_error() {
        Some(libc::EINTR | libc::ETIME | libc::EBUSY | libc::EAGAIN) => Ok(()),
        _ => Err(e),
    }
}
