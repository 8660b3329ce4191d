//! One-shot operations (a connect, a file read): each owns the memory it
//! hands the kernel until its last completion.
//!
//! The only way to start one is [`Reactor::op_start`] with a [`OneShot`],
//! which carries that memory by value: the submission's pointers are taken
//! from it inside the reactor, and it stays in the operation's slot until
//! the completion arrives. A caller that stops waiting (its future is
//! dropped) only orphans the slot: the operation is cancelled in the
//! kernel, and its memory is dropped when the kernel posts its completion,
//! not before — or never, if the ring stops first (see
//! [`Reactor::shutdown_all`]).

use std::os::fd::AsRawFd;
use std::task::{Context, Poll, Waker};

use super::kernel::{Sqe, Submission, Target};
use super::reactor::{Reactor, TAG_IGNORE, TAG_OP, ud};

/// An operation to start, with the memory it lends the kernel.
pub(crate) enum OneShot {
    /// Connects socket `sock` (a reactor socket index) to `addr`.
    Connect {
        sock: usize,
        addr: Box<socket2::SockAddr>,
    },
    /// Reads into `buf`'s spare capacity from `file` at `offset`. The file
    /// is owned too: its descriptor cannot be closed (and its number
    /// reused by another file) while the read may still run.
    ReadFile {
        file: std::fs::File,
        buf: Vec<u8>,
        offset: u64,
    },
}

impl OneShot {
    /// The submission for this operation; its pointers point into `self`'s
    /// heap memory, which does not move when `self` does.
    fn sqe(&mut self, r: &Reactor) -> Sqe {
        match self {
            OneShot::Connect { sock, addr } => Sqe::Connect {
                fd: r.sock_target(*sock),
                addr: addr.as_ptr().cast(),
                len: addr.len(),
            },
            OneShot::ReadFile { file, buf, offset } => {
                let len = buf.len();
                let spare = (buf.capacity() - len).min(u32::MAX as usize) as u32;
                Sqe::Read {
                    fd: Target::Fd(file.as_raw_fd()),
                    // SAFETY: `len` is within the allocation (at most its end).
                    buf: unsafe { buf.as_mut_ptr().add(len) },
                    len: spare,
                    offset: *offset,
                }
            }
        }
    }

    fn sock(&self) -> Option<usize> {
        match self {
            OneShot::Connect { sock, .. } => Some(*sock),
            OneShot::ReadFile { .. } => None,
        }
    }
}

/// A one-shot operation's handle: its slot and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpId {
    idx: usize,
    gen_: u32,
}

enum OpState {
    /// In the kernel; the waker of whoever awaits it.
    Waiting(Option<Waker>),
    /// Completed with this result.
    Done(i32),
    /// Its future was dropped: cancelled in the kernel, its memory kept
    /// until the completion.
    Orphaned,
}

pub(super) struct OpSlot {
    gen_: u32,
    state: OpState,
    /// Lent to the kernel until the completion.
    op: OneShot,
}

impl Reactor {
    /// Starts `op`. The memory it carries stays with the operation until
    /// its completion, whatever happens to the caller.
    pub(crate) fn op_start(&mut self, mut op: OneShot) -> OpId {
        let sqe = op.sqe(self);
        if let Some(sock) = op.sock() {
            self.sock_op_started(sock);
        }
        let gen_ = self.next_gen();
        let idx = self.ops.insert(OpSlot {
            gen_,
            state: OpState::Waiting(None),
            op,
        });
        // SAFETY: `sqe` points into `op`'s heap memory, now in the slot,
        // which is dropped only at the op's completion (`op_done`), or
        // leaked if the ring stops first (`leak_ops`).
        unsafe { self.push(Submission::new(sqe, ud(TAG_OP, gen_, idx))) };
        OpId { idx, gen_ }
    }

    fn op_slot(&mut self, id: OpId) -> Option<&mut OpSlot> {
        self.ops.get_mut(id.idx).filter(|s| s.gen_ == id.gen_)
    }

    /// Polls op `id`: its result and, now that the kernel is done with it,
    /// the memory it was lent.
    ///
    /// An op whose ring stopped first ends with `ECANCELED` and no memory
    /// (the ring kept it: the kernel may not have let go of it).
    pub(crate) fn op_poll(
        &mut self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(i32, Option<OneShot>)> {
        let Some(slot) = self.op_slot(id) else {
            return Poll::Ready((-libc::ECANCELED, None));
        };
        match &mut slot.state {
            OpState::Done(res) => {
                let res = *res;
                let slot = self.ops.remove(id.idx);
                Poll::Ready((res, Some(slot.op)))
            }
            OpState::Waiting(w) => {
                let fresh = w.is_none();
                *w = Some(cx.waker().clone());
                if fresh {
                    self.waiting += 1;
                }
                Poll::Pending
            }
            OpState::Orphaned => Poll::Ready((-libc::ECANCELED, None)),
        }
    }

    /// The owner of op `id` stopped waiting: cancel it in the kernel; its
    /// memory goes when the kernel posts the completion.
    pub(crate) fn op_drop(&mut self, id: OpId) {
        let Some(slot) = self.op_slot(id) else {
            return;
        };
        match &mut slot.state {
            OpState::Done(_) => {
                self.ops.remove(id.idx);
            }
            OpState::Orphaned => {}
            OpState::Waiting(w) => {
                let had = w.take().is_some();
                slot.state = OpState::Orphaned;
                if had {
                    self.waiting = self.waiting.saturating_sub(1);
                }
                self.stats.cancels += 1;
                let c = Sqe::Cancel {
                    user_data: ud(TAG_OP, id.gen_, id.idx),
                };
                self.push_plain(Submission::new(c, ud(TAG_IGNORE, 0, 0)).skip_success());
            }
        }
    }

    /// The completion of op `idx` (generation `gen_`): its last.
    pub(super) fn op_done(&mut self, gen_: u32, idx: usize, res: i32) {
        let Some(slot) = self.ops.get_mut(idx).filter(|s| s.gen_ == gen_) else {
            return;
        };
        let sock = slot.op.sock();
        match &mut slot.state {
            OpState::Waiting(w) => {
                let w = w.take();
                slot.state = OpState::Done(res);
                self.wake(w);
            }
            OpState::Orphaned => {
                // The kernel is done with it: its memory may go now.
                self.ops.remove(idx);
            }
            OpState::Done(_) => {}
        }
        if let Some(sock) = sock {
            self.sock_op_finished(sock);
        }
    }

    /// One-shot operations whose completion has not arrived.
    pub(crate) fn ops_in_flight(&self) -> usize {
        self.ops
            .iter()
            .filter(|(_, s)| !matches!(s.state, OpState::Done(_)))
            .count()
    }

    /// Orphans every op still waiting (the ring is stopping): each is
    /// cancelled, its memory kept until its completion.
    pub(super) fn orphan_all_ops(&mut self) {
        let ids: Vec<OpId> = self
            .ops
            .iter()
            .map(|(idx, s)| OpId { idx, gen_: s.gen_ })
            .collect();
        for id in ids {
            self.op_drop(id);
        }
    }

    /// Gives up on every op still in the kernel (the ring is stopping and
    /// its completion was not seen): its memory is leaked, never freed.
    pub(super) fn leak_ops(&mut self) -> usize {
        let mut leaked = 0;
        for slot in self.ops.drain() {
            if matches!(slot.state, OpState::Done(_)) {
                drop(slot);
            } else {
                leaked += 1;
                std::mem::forget(slot);
            }
        }
        leaked
    }
}
