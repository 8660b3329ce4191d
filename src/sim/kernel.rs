//! The simulated kernel: the io_uring contract (submissions, completions,
//! multishot receives into provided buffers, cancellation, waits with a
//! timeout) played out over simulated sockets to the simulated server, in
//! virtual time, every choice drawn from one seeded generator.
//!
//! What it promises the driver is exactly what the real kernel promises,
//! and nothing more: a send may complete in pieces or short, a receive may
//! deliver any number of bytes, completions of different operations come in
//! any order, a cancel may lose the race against a completion, provided
//! buffers run out, connections reset, waits return early. What it checks
//! is what the driver owes the kernel: every range of memory an operation
//! handed over stays allocated and unchanged until the operation's last
//! completion ([`super::memory`]), and a provided buffer is never published
//! twice.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::io::uring::kernel::{Cqe, Sqe, Submission, Target};

use super::memory::{self, Use};
use super::world::{Event, World};

/// Kernel entries in a row, with neither virtual time passing nor any byte,
/// connect or read getting anywhere, after which the loop is called a
/// livelock (a loop that spins without end in real time and never lets
/// virtual time move: it would stop the whole run, so it is reported as
/// this schedule's failure instead).
const SPIN_LIMIT: u64 = 200_000;

/// Virtual time after which a run that has not finished is called a hang.
/// The simulation's own hang check sees a loop with nothing left to wait
/// for; a task can also wait for good while a timer still fires now and
/// then (the pool's maintenance, every 30 s), so
/// virtual time runs on for ever. A healthy schedule ends within minutes
/// of virtual time (at most 25 steps per task, none waiting longer than a
/// 30 s pool wait).
const VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);

/// `IORING_CQE_F_BUFFER`, `IORING_CQE_F_MORE`, and where the buffer id sits.
const F_BUFFER: u32 = 1;
const F_MORE: u32 = 2;
const BUFFER_SHIFT: u32 = 16;

#[derive(Debug)]
enum Progress {
    /// Bytes of a send handed to the network so far, and a copy of the
    /// bytes as they were at submission.
    Send {
        done: usize,
        snapshot: Vec<u8>,
    },
    Recv,
    /// An eventfd read (completes when another thread writes it).
    WakeRead,
    /// A file read: it runs in the kernel's worker threads (io-wq) from
    /// `not_before` on and cannot be cancelled then.
    FileRead {
        started: bool,
    },
    Connect,
}

#[derive(Debug)]
struct Op {
    id: u64,
    sub: Submission,
    progress: Progress,
    /// No progress before this time (a delayed completion).
    not_before: Instant,
    /// The registry slot of the memory it references.
    mem: Option<usize>,
    /// The socket it works on (recv, send, connect).
    sock: Option<usize>,
    ended: bool,
}

/// A submission in the submission queue. The kernel may read the memory
/// it names from the moment it is pushed.
struct Pending {
    sub: Submission,
    id: u64,
    mem: Option<usize>,
    snapshot: Vec<u8>,
}

/// The provided buffers the kernel holds: published by the driver, not yet
/// used for a receive.
struct Group {
    slots: u64,
    entries: u16,
    /// Our copy of how far the driver's tail has been read.
    seen_tail: u16,
    /// Buffers in the kernel, in ring order: (bid, addr, len, registry slot).
    avail: VecDeque<(u16, u64, u32, Option<usize>)>,
    slots_mem: Option<usize>,
}

/// The simulated kernel of one core.
pub(crate) struct SimKernel {
    world: Rc<RefCell<World>>,
    sim: u32,
    /// Pushed, not yet submitted: the submission, its op id, the registry
    /// slot of the memory it names, and a send's bytes as they were pushed.
    sq: Vec<Pending>,
    sq_cap: usize,
    ops: Vec<Op>,
    next_op: u64,
    cq: VecDeque<Cqe>,
    files: BTreeMap<u32, RawFd>,
    group: Option<Group>,
    /// Since when (real time) no wait has seen anything happen.
    stuck_since: Option<Instant>,
    /// How long a wait for a remote wake-up (another thread writing the
    /// eventfd) may take in real time before the simulation calls it a hang.
    remote_grace: Duration,
    /// File reads enter the kernel's worker threads and never come back
    /// (storage that stopped answering): they cannot be cancelled either.
    hang_file_reads: bool,
    /// Real progress so far (bytes sent and received, connects and reads
    /// completed), for the livelock check.
    moved: u64,
    /// The virtual time and `moved` at the last kernel entry that saw
    /// progress, and the entries since.
    spin_mark: (Instant, u64),
    spins: u64,
    /// Completions posted (by result) since then.
    spin_results: BTreeMap<i32, u64>,
    /// The virtual-time bound was reported.
    over_time: bool,
}

impl SimKernel {
    pub(crate) fn new(
        world: Rc<RefCell<World>>,
        sim: u32,
        sq_cap: usize,
        remote_grace: Duration,
        hang_file_reads: bool,
    ) -> SimKernel {
        SimKernel {
            world,
            sim,
            sq: Vec::new(),
            sq_cap: sq_cap.max(1),
            ops: Vec::new(),
            next_op: 1,
            cq: VecDeque::new(),
            files: BTreeMap::new(),
            group: None,
            stuck_since: None,
            remote_grace,
            hang_file_reads,
            moved: 0,
            spin_mark: (Instant::now(), 0),
            spins: 0,
            spin_results: BTreeMap::new(),
            over_time: false,
        }
    }

    /// The virtual-time bound, once per wait.
    fn virtual_time_check(&mut self) -> io::Result<()> {
        let ns = self.world.borrow().ns();
        if self.over_time || Duration::from_nanos(ns) < VIRTUAL_LIMIT {
            return Ok(());
        }
        self.over_time = true;
        let msg = format!(
            "a task waits forever: {:?} of virtual time passed and the run has not finished; \
             only timers still fire (in flight: {:?})",
            VIRTUAL_LIMIT,
            self.ops
                .iter()
                .map(|o| (o.sub.user_data >> 56, o.sub.op))
                .collect::<Vec<_>>()
        );
        self.world.borrow_mut().fail(msg.clone());
        Err(io::Error::other(format!("simulation: {msg}")))
    }

    /// The livelock check, once per kernel entry.
    fn spin_check(&mut self) -> io::Result<()> {
        let now = self.world.borrow().now;
        if (now, self.moved) != self.spin_mark {
            self.spin_mark = (now, self.moved);
            self.spins = 0;
            self.spin_results.clear();
            return Ok(());
        }
        self.spins += 1;
        if self.spins < SPIN_LIMIT {
            return Ok(());
        }
        let msg = format!(
            "the loop spins: {} kernel entries in a row without virtual time passing or any \
             byte, connect or read getting anywhere (a livelock); completions meanwhile by \
             result: {:?}",
            self.spins, self.spin_results
        );
        self.spins = 0;
        self.spin_results.clear();
        self.world.borrow_mut().fail(msg.clone());
        Err(io::Error::other(format!("simulation: {msg}")))
    }

    /// Queues `s`; the memory it names is registered as the kernel's from
    /// now on (see [`super::memory`]).
    pub(crate) fn push(&mut self, s: &Submission) -> bool {
        if self.sq.len() >= self.sq_cap {
            return false;
        }
        let id = self.next_op;
        self.next_op += 1;
        let (mem, snapshot) = match s.op {
            Sqe::Send { buf, len, .. } => (
                memory::reference(self.sim, id, Use::Send, buf as usize, len as usize),
                // SAFETY: the driver hands `buf..buf+len` to the kernel
                // from now until the completion; it is valid now.
                unsafe { std::slice::from_raw_parts(buf, len as usize) }.to_vec(),
            ),
            Sqe::Read { buf, len, .. } => (
                memory::reference(self.sim, id, Use::Read, buf as usize, len as usize),
                Vec::new(),
            ),
            Sqe::Connect { addr, len, .. } => (
                memory::reference(self.sim, id, Use::Connect, addr as usize, len as usize),
                Vec::new(),
            ),
            _ => (None, Vec::new()),
        };
        self.sq.push(Pending {
            sub: *s,
            id,
            mem,
            snapshot,
        });
        true
    }

    pub(crate) fn sq_is_empty(&self) -> bool {
        self.sq.is_empty()
    }

    fn fd_of(&self, t: Target) -> Option<RawFd> {
        match t {
            Target::Fd(fd) => Some(fd),
            Target::Fixed(i) => self.files.get(&i).copied(),
        }
    }

    fn post(&mut self, user_data: u64, res: i32, flags: u32) {
        self.world
            .borrow_mut()
            .event(Event::Complete(user_data, res, flags));
        if self.spins > 0 && self.spin_results.len() < 16 {
            *self.spin_results.entry(res).or_default() += 1;
        } else if let Some(c) = self.spin_results.get_mut(&res) {
            *c += 1;
        }
        self.cq.push_back((user_data, res, flags));
    }

    /// Ends op `i` with `res` (posting its completion unless it is a
    /// skipped success) and releases its memory.
    fn end(&mut self, i: usize, res: i32, flags: u32) {
        self.end_as(i, res, flags, false);
    }

    /// [`SimKernel::end`]; `failed` marks a result the kernel counts as a
    /// failure although it is not negative (a short `MSG_WAITALL` send),
    /// which posts a completion even with `CQE_SKIP_SUCCESS`.
    fn end_as(&mut self, i: usize, res: i32, flags: u32, failed: bool) {
        let op = &mut self.ops[i];
        op.ended = true;
        memory::release(op.mem.take());
        let (ud, skip) = (op.sub.user_data, op.sub.skip_success);
        if !(skip && res >= 0 && !failed) {
            self.post(ud, res, flags);
        }
    }

    pub(crate) fn submit(&mut self) -> io::Result<usize> {
        let n = self.sq.len();
        let subs = std::mem::take(&mut self.sq);
        for p in subs {
            self.start(p);
        }
        self.pump();
        self.spin_check()?;
        Ok(n)
    }

    fn start(&mut self, p: Pending) {
        let Pending {
            sub: s,
            id,
            mem,
            snapshot,
        } = p;
        let now = self.world.borrow().now;
        self.world.borrow_mut().event(Event::Submit(id, s));
        let delay = self.world.borrow_mut().op_delay();
        let mut op = Op {
            id,
            sub: s,
            progress: Progress::Recv,
            not_before: now + delay,
            mem,
            sock: None,
            ended: false,
        };
        match s.op {
            Sqe::Cancel { user_data } => {
                let res = self.cancel_where(|o| o.sub.user_data == user_data, false);
                self.finish_cancel(s, res);
                return;
            }
            Sqe::CancelFd { fd } => {
                let fd = self.fd_of(fd);
                let res = self.cancel_fd(fd);
                self.finish_cancel(s, res);
                return;
            }
            Sqe::CloseFixed { slot } => {
                self.files.remove(&slot);
                if !s.skip_success {
                    self.post(s.user_data, 0, 0);
                }
                return;
            }
            Sqe::Send { fd, .. } => {
                op.progress = Progress::Send { done: 0, snapshot };
                op.sock = self
                    .fd_of(fd)
                    .and_then(|fd| self.world.borrow().sock_of(fd));
            }
            Sqe::RecvMulti { fd, .. } => {
                op.progress = Progress::Recv;
                op.not_before = now;
                op.sock = self
                    .fd_of(fd)
                    .and_then(|fd| self.world.borrow().sock_of(fd));
            }
            Sqe::Read { fd, .. } => {
                let raw = self.fd_of(fd).unwrap_or(-1);
                op.progress = if is_regular_file(raw) {
                    Progress::FileRead { started: false }
                } else {
                    op.not_before = now;
                    Progress::WakeRead
                };
            }
            Sqe::Connect { .. } => op.progress = Progress::Connect,
        }
        self.ops.push(op);
    }

    fn finish_cancel(&mut self, s: Submission, res: i32) {
        if !(s.skip_success && res >= 0) {
            self.post(s.user_data, res, 0);
        }
    }

    /// Cancels the first op (or, with `all`, every op) matching `pick`:
    /// 0 (or the count with `all`), `-ENOENT` when none, `-EALREADY` when
    /// the op already runs where it cannot be stopped.
    fn cancel_where(&mut self, pick: impl Fn(&Op) -> bool, all: bool) -> i32 {
        let mut n = 0;
        let mut busy = false;
        for i in 0..self.ops.len() {
            if self.ops[i].ended || !pick(&self.ops[i]) {
                continue;
            }
            // The race: the operation may complete before the cancel reaches it.
            if self.world.borrow_mut().cancel_race() {
                self.progress(i);
                if self.ops[i].ended {
                    if !all {
                        return -libc::ENOENT;
                    }
                    continue;
                }
            }
            if matches!(self.ops[i].progress, Progress::FileRead { started: true }) {
                busy = true;
            } else {
                self.end(i, -libc::ECANCELED, 0);
                n += 1;
            }
            if !all {
                break;
            }
        }
        self.gc();
        match (n, busy) {
            (0, true) => -libc::EALREADY,
            (0, false) => -libc::ENOENT,
            (n, _) if all => n,
            _ => 0,
        }
    }

    fn cancel_fd(&mut self, fd: Option<RawFd>) -> i32 {
        let Some(fd) = fd else { return -libc::ENOENT };
        let targets: Vec<u64> = self
            .ops
            .iter()
            .filter(|o| !o.ended && self.op_fd(o) == Some(fd))
            .map(|o| o.id)
            .collect();
        self.cancel_where(|o| targets.contains(&o.id), true)
    }

    fn op_fd(&self, o: &Op) -> Option<RawFd> {
        let t = match o.sub.op {
            Sqe::Read { fd, .. }
            | Sqe::RecvMulti { fd, .. }
            | Sqe::Send { fd, .. }
            | Sqe::Connect { fd, .. } => fd,
            _ => return None,
        };
        self.fd_of(t)
    }

    fn gc(&mut self) {
        self.ops.retain(|o| !o.ended);
    }

    /// Moves every op that can progress at the current time, in a random
    /// order, and the network and the server with them. True when anything
    /// happened.
    fn pump(&mut self) -> bool {
        let mut any = false;
        loop {
            self.sync_group();
            let mut moved = self.world.borrow_mut().pump_network();
            let mut order: Vec<usize> = (0..self.ops.len()).collect();
            self.world.borrow_mut().shuffle(&mut order);
            for i in order {
                if i < self.ops.len() && !self.ops[i].ended {
                    moved |= self.progress(i);
                }
            }
            self.gc();
            if !moved {
                return any;
            }
            any = true;
        }
    }

    /// One step of op `i`; true when it did something.
    fn progress(&mut self, i: usize) -> bool {
        let now = self.world.borrow().now;
        if self.ops[i].not_before > now {
            return false;
        }
        match self.ops[i].sub.op {
            Sqe::Send { buf, len, .. } => self.progress_send(i, buf, len as usize),
            Sqe::RecvMulti { .. } => self.progress_recv(i),
            Sqe::Read {
                fd,
                buf,
                len,
                offset,
            } => self.progress_read(i, fd, buf, len as usize, offset),
            Sqe::Connect { fd, addr, len } => {
                if self.world.borrow().vanished() {
                    return false; // no answer to the SYN: it never completes
                }
                let fd = self.fd_of(fd).unwrap_or(-1);
                // SAFETY: the driver keeps the address valid until completion.
                let target = unsafe { sockaddr(addr, len) };
                let res = self.world.borrow_mut().connect(fd, target);
                self.moved += 1;
                self.end(i, res, 0);
                true
            }
            _ => false,
        }
    }

    fn progress_send(&mut self, i: usize, buf: *const u8, len: usize) -> bool {
        let Some(sock) = self.ops[i].sock else {
            self.end(i, -libc::ENOTCONN, 0);
            return true;
        };
        let Progress::Send { done, .. } = &self.ops[i].progress else {
            return false;
        };
        let done = *done;
        let err = self.world.borrow().send_error(sock);
        if let Err(errno) = err {
            let res = if done > 0 { done as i32 } else { -errno };
            self.end_as(i, res, 0, true);
            return true;
        }
        let space = self.world.borrow().send_space(sock);
        if space == 0 {
            return false;
        }
        let mut n = space.min(len - done);
        if self.world.borrow_mut().chunk_send() {
            n = self.world.borrow_mut().below(n) + 1;
        }
        // The bytes as they are now: the kernel copies them only as the
        // socket takes them. They must still be the ones submitted.
        // SAFETY: the range is referenced in the registry, so its memory is
        // never freed (a free is quarantined and reported) and readable.
        let live = unsafe { std::slice::from_raw_parts(buf.add(done), n) };
        if let Progress::Send { snapshot, .. } = &self.ops[i].progress {
            if live != &snapshot[done..done + n] {
                let id = self.ops[i].id;
                self.world.borrow_mut().fail(format!(
                    "the bytes of send #{id} changed while the kernel was sending them \
                     (offset {done}, {n} bytes): its buffer was reused or freed early"
                ));
            }
        }
        self.world.borrow_mut().send(sock, live);
        self.moved += n as u64;
        let done = done + n;
        if let Progress::Send { done: d, .. } = &mut self.ops[i].progress {
            *d = done;
        }
        if done == len {
            self.end(i, len as i32, 0);
        } else if self.world.borrow_mut().short_send() {
            self.end_as(i, done as i32, 0, true);
        }
        true
    }

    fn progress_recv(&mut self, i: usize) -> bool {
        let Some(sock) = self.ops[i].sock else {
            self.end(i, -libc::ENOTCONN, 0);
            return true;
        };
        let (avail, end) = {
            let w = self.world.borrow();
            (w.recv_available(sock), w.recv_end(sock))
        };
        if avail == 0 {
            return match end {
                Some(res) => {
                    self.end(i, res, 0);
                    true
                }
                None => false,
            };
        }
        let Some((bid, addr, blen, mem)) = self.group.as_mut().and_then(|g| g.avail.pop_front())
        else {
            self.world.borrow_mut().count_enobufs();
            self.end(i, -libc::ENOBUFS, 0);
            return true;
        };
        let mut n = avail.min(blen as usize);
        if self.world.borrow_mut().split_recv() {
            n = self.world.borrow_mut().below(n) + 1;
        }
        let bytes = self.world.borrow_mut().recv(sock, n);
        self.moved += bytes.len() as u64;
        // SAFETY: the buffer was published to the kernel and is referenced
        // in the registry (never freed while we hold it); it is `blen` long.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        memory::release(mem);
        let ud = self.ops[i].sub.user_data;
        self.post(
            ud,
            bytes.len() as i32,
            F_BUFFER | F_MORE | (u32::from(bid) << BUFFER_SHIFT),
        );
        true
    }

    fn progress_read(&mut self, i: usize, fd: Target, buf: *mut u8, len: usize, off: u64) -> bool {
        let raw = self.fd_of(fd).unwrap_or(-1);
        match &mut self.ops[i].progress {
            Progress::WakeRead => {
                let mut v: u64 = 0;
                // SAFETY: a read of 8 bytes into a local.
                let n = unsafe { libc::read(raw, (&mut v as *mut u64).cast(), 8) };
                if n == 8 {
                    self.moved += 1;
                    // SAFETY: the target is referenced (valid, 8 bytes long).
                    unsafe { std::ptr::copy_nonoverlapping((&v as *const u64).cast(), buf, 8) };
                    self.end(i, 8, 0);
                    return true;
                }
                false
            }
            Progress::FileRead { started } => {
                if *started && self.hang_file_reads {
                    return false;
                }
                if !*started {
                    // It enters the worker thread now; it completes later.
                    *started = true;
                    let d = self.world.borrow_mut().op_delay() + Duration::from_micros(50);
                    self.ops[i].not_before = self.world.borrow().now + d;
                    return true;
                }
                self.moved += 1;
                let mut tmp = vec![0u8; len];
                // SAFETY: pread into a local buffer of `len` bytes.
                let n = unsafe { libc::pread(raw, tmp.as_mut_ptr().cast(), len, off as i64) };
                let res = if n < 0 {
                    -io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EIO)
                } else {
                    // SAFETY: the target is referenced and `len` long.
                    unsafe { std::ptr::copy_nonoverlapping(tmp.as_ptr(), buf, n as usize) };
                    n as i32
                };
                self.end(i, res, 0);
                true
            }
            _ => false,
        }
    }

    /// Reads what the driver published to the buffer ring since last time.
    fn sync_group(&mut self) {
        let Some(g) = self.group.as_mut() else { return };
        // SAFETY: the slots are referenced (allocated) while registered;
        // the tail is the u16 at offset 14 of the first slot, written by the
        // driver with release ordering.
        let tail = unsafe {
            std::sync::atomic::AtomicU16::from_ptr((g.slots as *mut u8).add(14).cast())
                .load(std::sync::atomic::Ordering::Acquire)
        };
        let mask = g.entries - 1;
        while g.seen_tail != tail {
            let idx = (g.seen_tail & mask) as usize;
            // SAFETY: idx < entries; each slot is 16 bytes: addr, len, bid.
            let (addr, len, bid) = unsafe {
                let p = (g.slots as *const u8).add(idx * 16);
                (
                    std::ptr::read_unaligned(p.cast::<u64>()),
                    std::ptr::read_unaligned(p.add(8).cast::<u32>()),
                    std::ptr::read_unaligned(p.add(12).cast::<u16>()),
                )
            };
            g.seen_tail = g.seen_tail.wrapping_add(1);
            if g.avail.iter().any(|b| b.0 == bid) {
                self.world.borrow_mut().fail(format!(
                    "provided buffer {bid} was published to the kernel while the kernel \
                     still held it"
                ));
                continue;
            }
            let mem = memory::reference(
                self.sim,
                0,
                Use::ProvidedBuffer,
                addr as usize,
                len as usize,
            );
            g.avail.push_back((bid, addr, len, mem));
        }
    }

    pub(crate) fn submit_and_wait(
        &mut self,
        want: usize,
        timeout: Option<Duration>,
        min_wait_us: u32,
    ) -> io::Result<usize> {
        let n = self.submit()?;
        self.virtual_time_check()?;
        let start = self.world.borrow().now;
        let deadline = timeout.map(|t| start + t);
        let min_until = start + Duration::from_micros(min_wait_us.into());
        loop {
            if self.pump() || !self.cq.is_empty() {
                self.stuck_since = None;
            }
            let ready = self.cq.len();
            if ready >= want.max(1) {
                return Ok(n);
            }
            let next = self.next_event();
            if (next.is_some() || deadline.is_some()) && self.world.borrow_mut().spurious_wake() {
                return Err(io::Error::from_raw_os_error(libc::EINTR));
            }
            let now = self.world.borrow().now;
            // With some completions in hand, the wait holds out only for
            // the min-wait bound.
            if ready > 0 && next.is_none_or(|t| t > min_until.max(now)) {
                return Ok(n);
            }
            match (next, deadline) {
                (Some(t), None) => {
                    self.stuck_since = None;
                    self.world.borrow_mut().advance(t);
                }
                (Some(t), Some(d)) if t <= d => {
                    self.stuck_since = None;
                    self.world.borrow_mut().advance(t);
                }
                (_, Some(d)) => {
                    self.stuck_since = None;
                    let late = self.world.borrow_mut().timer_lateness();
                    self.world.borrow_mut().advance(d + late);
                    return Ok(n);
                }
                (None, None) => {
                    // Nothing will ever happen here by itself: only another
                    // thread can still wake the core (through its eventfd).
                    let waiting_remote = self
                        .ops
                        .iter()
                        .any(|o| matches!(o.progress, Progress::WakeRead));
                    let since = *self.stuck_since.get_or_insert_with(Instant::now);
                    if waiting_remote && since.elapsed() < self.remote_grace {
                        std::thread::sleep(Duration::from_micros(200));
                        continue;
                    }
                    let msg = "the loop waits forever: no operation can complete, no timer is set \
                               and the server has nothing to do (a lost wake-up or a hang)";
                    self.world.borrow_mut().fail(msg.to_string());
                    return Err(io::Error::other(format!("simulation: {msg}")));
                }
            }
        }
    }

    /// The earliest virtual time at which something can happen by itself.
    fn next_event(&self) -> Option<Instant> {
        let now = self.world.borrow().now;
        let ops = self
            .ops
            .iter()
            .filter(|o| !o.ended && o.not_before > now)
            .filter(|o| {
                !(self.hang_file_reads
                    && matches!(o.progress, Progress::FileRead { started: true }))
            })
            .map(|o| o.not_before)
            .min();
        let net = self.world.borrow().next_event();
        match (ops, net) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn completions(&mut self, out: &mut Vec<Cqe>) {
        out.extend(self.cq.drain(..));
    }

    pub(crate) fn register_file(&mut self, slot: u32, fd: RawFd) -> io::Result<()> {
        self.files.insert(slot, fd);
        Ok(())
    }

    pub(crate) fn unregister_files(&mut self) {
        self.files.clear();
    }

    pub(crate) fn register_buf_ring(
        &mut self,
        ring: u64,
        entries: u16,
        _group: u16,
    ) -> io::Result<()> {
        let slots_mem = memory::reference(
            self.sim,
            0,
            Use::BufRingSlots,
            ring as usize,
            entries as usize * 16,
        );
        self.group = Some(Group {
            slots: ring,
            entries,
            seen_tail: 0,
            avail: VecDeque::new(),
            slots_mem,
        });
        Ok(())
    }

    pub(crate) fn unregister_buf_ring(&mut self, _group: u16) {
        if let Some(g) = self.group.take() {
            for (_, _, _, mem) in g.avail {
                memory::release(mem);
            }
            memory::release(g.slots_mem);
        }
    }

    /// `IORING_REGISTER_SYNC_CANCEL`: true when every matching op was
    /// cancelled (an op running in a worker thread is not).
    pub(crate) fn sync_cancel(&mut self, fd: Option<Target>) -> bool {
        let res = match fd {
            None => self.cancel_where(|_| true, true),
            Some(t) => {
                let fd = self.fd_of(t);
                self.cancel_fd(fd)
            }
        };
        let busy = self
            .ops
            .iter()
            .any(|o| !o.ended && matches!(o.progress, Progress::FileRead { started: true }));
        res != -libc::EALREADY && !busy
    }

    pub(crate) fn shutdown(&mut self, fd: RawFd) {
        self.world.borrow_mut().shutdown(fd);
    }
}

impl Drop for SimKernel {
    fn drop(&mut self) {
        // Ops that never completed keep their memory referenced: the real
        // kernel would still finish them after the ring is gone, so freeing
        // that memory later is still a bug the registry must see.
        if let Some(g) = self.group.take() {
            for (_, _, _, mem) in g.avail {
                memory::release(mem);
            }
            memory::release(g.slots_mem);
        }
        for op in &mut self.ops {
            if !matches!(op.progress, Progress::FileRead { started: true }) {
                memory::release(op.mem.take());
            }
        }
        // Never submitted: the kernel never reads them.
        for p in self.sq.drain(..) {
            memory::release(p.mem);
        }
    }
}

fn is_regular_file(fd: RawFd) -> bool {
    // SAFETY: fstat into a zeroed local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0) && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
}

/// Where a connect goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Addr {
    Inet(SocketAddr),
    Unix(PathBuf),
    Other,
}

/// Reads a `sockaddr`.
///
/// # Safety
/// `addr` must point to `len` readable bytes.
unsafe fn sockaddr(addr: *const libc::sockaddr, len: libc::socklen_t) -> Addr {
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let n = (len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `n` bytes are readable at `addr` and fit in `storage`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            addr.cast::<u8>(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            n,
        )
    };
    // SAFETY: `storage` is a valid sockaddr_storage of length `len`.
    let sa = unsafe { socket2::SockAddr::new(storage, len) };
    if let Some(a) = sa.as_socket() {
        Addr::Inet(a)
    } else if let Some(p) = sa.as_pathname() {
        Addr::Unix(p.to_path_buf())
    } else {
        Addr::Other
    }
}
