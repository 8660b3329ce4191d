//! Sockets on the reactor: the always-armed multishot receive, one send at
//! a time, and closing.
//!
//! What the kernel may touch is owned here until its last completion:
//! - a send's bytes belong to [`SendState::Busy`] from submission until the
//!   send's completion (every send posts one; a short one is resubmitted
//!   from where it stopped, a failed one is an error);
//! - received bytes arrive in the core's provided buffers, which a socket
//!   holds only between a receive completion and the reader taking them;
//! - the descriptor (and its fixed-file slot) stays open until the socket
//!   has no receive, send, one-shot op or cancel left in the kernel, so an
//!   operation can never land on a reused descriptor number.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;

use super::bufring::BGID;
use super::kernel::{Sqe, Submission, Target};
use super::reactor::{
    KEEP_CAPACITY, Reactor, TAG_CLOSE, TAG_IGNORE, TAG_RECV, TAG_SEND, TAG_UNFIX, ud,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arm {
    Idle,
    Armed,
    /// A cancel was requested; the receive's last completion is still to come.
    Cancelling,
}

/// A socket's send side.
pub(super) enum SendState {
    /// No send in the kernel; an empty buffer to swap in for the next one.
    Idle { spare: Vec<u8> },
    /// These bytes are in the kernel from `off` on: owned here until the
    /// send's completion.
    Busy { buf: Vec<u8>, off: usize },
}

/// Where closing a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closing {
    Open,
    /// Closed by its owner; a cancel of its operations is in the kernel.
    Cancelling,
    /// Closed by its owner; nothing of it is being cancelled.
    Closed,
}

pub(super) struct Sock {
    pub(super) gen_: u32,
    fd: OwnedFd,
    fixed: Option<u32>,
    /// Provided buffers holding received bytes not yet taken by the reader,
    /// oldest first: the reader copies them straight into its own buffer.
    queue: VecDeque<(u16, u32)>,
    /// Received bytes copied out of the provided buffers (when too many were
    /// held), after those in `queue`.
    inbox: BytesMut,
    /// Bytes in `queue` and `inbox`.
    unread: usize,
    pub(super) recv: Arm,
    eof: bool,
    /// A receive error (errno), reported once the inbox is empty.
    recv_err: Option<i32>,
    reader: Option<Waker>,
    send: SendState,
    send_err: Option<i32>,
    writer: Option<Waker>,
    /// The wait epoch in which the send in flight was counted as an
    /// expected completion (0: not counted).
    send_epoch: u32,
    /// One-shot operations (a connect) in flight on this socket.
    ops: u32,
    closing: Closing,
}

impl Sock {
    pub(super) fn target(&self) -> Target {
        match self.fixed {
            Some(i) => Target::Fixed(i),
            None => Target::Fd(self.fd.as_raw_fd()),
        }
    }

    /// True while the kernel may still use this socket's memory or descriptor.
    pub(super) fn in_kernel(&self) -> bool {
        self.recv != Arm::Idle
            || matches!(self.send, SendState::Busy { .. })
            || self.ops > 0
            || self.closing == Closing::Cancelling
    }
}

impl Reactor {
    /// Takes ownership of a socket and registers it as a fixed file when the
    /// table has room. Its receive is armed on first use.
    pub(crate) fn sock_add(&mut self, fd: OwnedFd) -> usize {
        let fixed = self.fixed_free.pop().and_then(|i| {
            match self.kernel.register_file(i, fd.as_raw_fd()) {
                Ok(()) => Some(i),
                Err(_) => {
                    self.fixed_free.push(i);
                    None
                }
            }
        });
        let gen_ = self.next_gen();
        self.socks.insert(Sock {
            gen_,
            fd,
            fixed,
            queue: VecDeque::new(),
            inbox: BytesMut::new(),
            unread: 0,
            recv: Arm::Idle,
            eof: false,
            recv_err: None,
            reader: None,
            send: SendState::Idle { spare: Vec::new() },
            send_err: None,
            writer: None,
            send_epoch: 0,
            ops: 0,
            closing: Closing::Open,
        })
    }

    /// The target (fixed slot or descriptor) of socket `idx`'s operations.
    pub(super) fn sock_target(&self, idx: usize) -> Target {
        self.socks[idx].target()
    }

    pub(super) fn sock_op_started(&mut self, idx: usize) {
        self.socks[idx].ops += 1;
    }

    pub(super) fn sock_op_finished(&mut self, idx: usize) {
        if let Some(s) = self.socks.get_mut(idx) {
            s.ops -= 1;
        }
        self.maybe_release(idx);
    }

    /// The socket's descriptor (for socket options).
    pub(crate) fn sock_fd(&self, idx: usize) -> i32 {
        self.socks.get(idx).map_or(-1, |s| s.fd.as_raw_fd())
    }

    // ------------------------------------------------------------ receive

    pub(super) fn arm_recv(&mut self, idx: usize) {
        let Some(s) = self.socks.get_mut(idx) else {
            return;
        };
        if s.recv != Arm::Idle
            || s.eof
            || s.recv_err.is_some()
            || s.closing != Closing::Open
            || s.unread >= self.cfg.inbox_limit
        {
            return;
        }
        s.recv = Arm::Armed;
        let data = ud(TAG_RECV, s.gen_, idx);
        let e = Sqe::RecvMulti {
            fd: s.target(),
            group: BGID,
        };
        self.stats.recv_arms += 1;
        self.push_plain(Submission::new(e, data));
    }

    pub(super) fn recv_done(&mut self, gen_: u32, idx: usize, res: i32, flags: u32) {
        let more = io_uring::cqueue::more(flags);
        let bid = io_uring::cqueue::buffer_select(flags);
        if let Some(bid) = bid {
            self.bufs.taken(bid);
        }
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
            let c = Sqe::Cancel {
                user_data: ud(TAG_RECV, s.gen_, idx),
            };
            self.push_plain(Submission::new(c, ud(TAG_IGNORE, 0, 0)).skip_success());
        }
        if !more {
            // Its last completion: re-arm at once unless the reader must
            // catch up first (then taking the bytes re-arms it), the stream
            // ended, or the socket is closing.
            self.arm_recv(idx);
            self.maybe_release(idx);
        }
        if news {
            if let Some(s) = self.socks.get_mut(idx) {
                let w = s.reader.take();
                self.wake(w);
            }
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
        if let Some(e) = s.recv_err.or(s.send_err) {
            // A failed send means no reply will come: the reader learns it too.
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

    /// Bytes received and not yet read.
    #[cfg(test)]
    pub(crate) fn sock_unread(&self, idx: usize) -> usize {
        self.socks.get(idx).map_or(0, |s| s.unread)
    }

    // ------------------------------------------------------------ send

    /// Starts sending all of `data`: its allocation is moved into the
    /// socket until the send's completion, and `data` gets back an empty
    /// buffer (the previous send's) to fill next. Fails while a send is in
    /// flight (wait with [`Reactor::sock_poll_sent`] first) and after a send
    /// failed.
    pub(crate) fn sock_send(&mut self, idx: usize, data: &mut Vec<u8>) -> io::Result<()> {
        let Some(s) = self.socks.get_mut(idx) else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        if let Some(e) = s.send_err {
            return Err(io::Error::from_raw_os_error(e));
        }
        let SendState::Idle { spare } = &mut s.send else {
            return Err(io::Error::other(
                "a send was started while the previous one on this socket is still in flight",
            ));
        };
        let mut buf = std::mem::take(spare);
        std::mem::swap(&mut buf, data);
        data.clear();
        s.send = SendState::Busy { buf, off: 0 };
        self.submit_send(idx);
        Ok(())
    }

    fn submit_send(&mut self, idx: usize) {
        let s = &self.socks[idx];
        let SendState::Busy { buf, off } = &s.send else {
            return;
        };
        let rest = &buf[*off..];
        let e = Sqe::Send {
            fd: s.target(),
            buf: rest.as_ptr(),
            len: rest.len().min(u32::MAX as usize) as u32,
        };
        let data = ud(TAG_SEND, s.gen_, idx);
        let counted = s.writer.is_none();
        // SAFETY: the bytes are `SendState::Busy`'s, which is left only in
        // `send_done`, at the send's completion (or leaked by `leak_socks`).
        unsafe { self.push(Submission::new(e, data)) };
        if counted {
            self.sends_now += 1;
            self.socks[idx].send_epoch = self.epoch;
        }
    }

    pub(super) fn send_done(&mut self, gen_: u32, idx: usize, res: i32) {
        let Some(s) = self.socks.get_mut(idx).filter(|s| s.gen_ == gen_) else {
            return;
        };
        let SendState::Busy { buf, off } = &mut s.send else {
            return;
        };
        if res < 0 {
            s.send_err = Some(-res);
        } else {
            *off += res as usize;
            if *off < buf.len() {
                if res == 0 || s.closing != Closing::Open {
                    s.send_err.get_or_insert(libc::EPIPE);
                } else {
                    // Short send: the rest goes out as its own operation.
                    self.stats.short_sends += 1;
                    self.submit_send(idx);
                    return;
                }
            }
        }
        // The kernel is done with the bytes: the buffer is ours again.
        let mut buf = match std::mem::replace(&mut s.send, SendState::Idle { spare: Vec::new() }) {
            SendState::Busy { buf, .. } => buf,
            SendState::Idle { spare } => spare,
        };
        buf.clear();
        if buf.capacity() <= KEEP_CAPACITY {
            s.send = SendState::Idle { spare: buf };
        }
        let failed = s.send_err.is_some();
        let w = s.writer.take();
        self.wake(w);
        if failed {
            // Whoever waits for the reply to these bytes learns it now.
            if let Some(s) = self.socks.get_mut(idx) {
                let r = s.reader.take();
                self.wake(r);
            }
        }
        self.maybe_release(idx);
    }

    /// Ready once no send is in flight, with the error if one failed.
    pub(crate) fn sock_poll_sent(
        &mut self,
        idx: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(s) = self.socks.get_mut(idx) else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        if let SendState::Busy { .. } = s.send {
            if s.writer.is_none() {
                self.waiting += 1;
                // Its writer waits for it: counted once, as a waiter.
                if std::mem::take(&mut s.send_epoch) == self.epoch {
                    self.sends_now -= 1;
                }
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

    /// True once the peer closed the stream or reset it, and every byte it
    /// sent was read: nothing more can arrive. (An idle pooled connection
    /// whose server restarted shows this before anyone sends on it.)
    pub(crate) fn sock_peer_gone(&self, idx: usize) -> bool {
        self.socks
            .get(idx)
            .is_none_or(|s| s.eof || s.recv_err.is_some() || s.send_err.is_some())
    }

    // ------------------------------------------------------------ close

    /// Shuts socket `idx` down in both directions (a plain system call), so
    /// the peer sees the end and receives end promptly.
    pub(crate) fn sock_shutdown(&mut self, idx: usize) {
        if let Some(s) = self.socks.get(idx) {
            let fd = s.fd.as_raw_fd();
            self.kernel.shutdown(fd);
        }
    }

    /// Closes socket `idx`: shuts it down and cancels what it has in the
    /// kernel. Its buffers, slot and descriptor are released once the last
    /// of those operations has completed — not before, whether or not the
    /// loop is running now (an unsubmitted cancel goes in with the next
    /// wait, or at shutdown).
    pub(crate) fn sock_close(&mut self, idx: usize) {
        let Some(s) = self.socks.get_mut(idx) else {
            return;
        };
        if s.closing != Closing::Open {
            return;
        }
        s.closing = Closing::Closed;
        if s.reader.take().is_some() {
            self.waiting = self.waiting.saturating_sub(1);
        }
        if s.writer.take().is_some() {
            self.waiting = self.waiting.saturating_sub(1);
        }
        let (fd, target, gen_) = (s.fd.as_raw_fd(), s.target(), s.gen_);
        // The peer sees the end now, not when the kernel lets go of the fd.
        self.kernel.shutdown(fd);
        if self.socks[idx].in_kernel() {
            self.socks[idx].closing = Closing::Cancelling;
            let c = Sqe::CancelFd { fd: target };
            self.push_plain(Submission::new(c, ud(TAG_CLOSE, gen_, idx)));
        }
        self.maybe_release(idx);
    }

    /// The cancel of a closed socket's operations completed.
    pub(super) fn close_done(&mut self, gen_: u32, idx: usize) {
        if let Some(s) = self.socks.get_mut(idx).filter(|s| s.gen_ == gen_) {
            s.closing = Closing::Closed;
            self.maybe_release(idx);
        }
    }

    /// Frees a closed socket once the kernel holds nothing of it.
    fn maybe_release(&mut self, idx: usize) {
        let Some(s) = self.socks.get(idx) else {
            return;
        };
        if s.closing != Closing::Closed || s.in_kernel() {
            return;
        }
        let s = self.socks.remove(idx);
        for &(bid, _) in &s.queue {
            self.bufs.recycle(bid);
            self.held -= 1;
        }
        if let Some(i) = s.fixed {
            // The slot is reused only once this close has completed: an
            // earlier reuse would have the queued close hit the new socket.
            let e = Sqe::CloseFixed { slot: i };
            self.push_plain(Submission::new(e, ud(TAG_UNFIX, 0, i as usize)));
        }
        drop(s); // closes the descriptor: nothing in the kernel names it now
    }

    /// Closes every socket (the ring is stopping).
    pub(super) fn close_all_socks(&mut self) {
        let idxs: Vec<usize> = self.socks.iter().map(|(i, _)| i).collect();
        for i in idxs {
            self.sock_close(i);
        }
    }

    /// Sockets the kernel still holds something of.
    pub(super) fn socks_in_kernel(&self) -> usize {
        self.socks.iter().filter(|(_, s)| s.in_kernel()).count()
    }

    /// Gives up on sockets whose operations never completed (the ring is
    /// stopping): their buffers and descriptors are leaked, never freed.
    pub(super) fn leak_socks(&mut self) -> usize {
        let mut leaked = 0;
        for s in self.socks.drain() {
            if s.in_kernel() {
                leaked += 1;
                std::mem::forget(s);
            }
        }
        leaked
    }
}
