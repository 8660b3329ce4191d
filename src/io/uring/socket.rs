//! Sockets and one-shot operations on the current core's ring.

use std::any::Any;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use io_uring::{opcode, squeue, types};

use super::Core;

/// A one-shot operation in flight; dropping it cancels it in the kernel.
pub(crate) struct Op {
    core: Rc<Core>,
    idx: usize,
    done: bool,
}

impl Op {
    /// Submits `e` on the current core, keeping `keep` alive until it completes.
    ///
    /// # Safety
    /// Every pointer in `e` must point into `keep` (or outlive the ring).
    pub(crate) unsafe fn submit(
        core: Rc<Core>,
        e: squeue::Entry,
        keep: Option<Box<dyn Any>>,
    ) -> io::Result<Op> {
        core.check_running()?;
        // SAFETY: forwarded to the caller.
        let idx = unsafe { core.reactor.borrow_mut().op_submit(e, keep) };
        Ok(Op {
            core,
            idx,
            done: false,
        })
    }
}

impl Future for Op {
    /// The completion's result (negative errno on failure) and the kept memory.
    type Output = (i32, Option<Box<dyn Any>>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let idx = self.idx;
        let r = self.core.reactor.borrow_mut().op_poll(idx, cx);
        match r {
            Poll::Ready((res, _flags, keep)) => {
                self.done = true;
                Poll::Ready((res, keep))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if !self.done {
            self.core.reactor.borrow_mut().op_drop(self.idx);
        }
    }
}

fn result(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// Reads up to `buf`'s spare capacity from `fd` at `offset` (a file; the
/// ring reads it without blocking the core), appending to `buf`.
pub(crate) async fn read_at(fd: RawFd, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
    let core = match Core::current_io() {
        Ok(c) => c,
        Err(e) => return (Err(e), buf),
    };
    let mut buf = Box::new(buf);
    let len = buf.len();
    let spare = (buf.capacity() - len).min(u32::MAX as usize) as u32;
    // SAFETY: the pointer is into the boxed Vec's spare capacity, which the
    // op keeps alive (and unmoved: the Vec's heap buffer) until it completes.
    let ptr = unsafe { buf.as_mut_ptr().add(len) };
    let e = opcode::Read::new(types::Fd(fd), ptr, spare)
        .offset(offset)
        .build();
    let op = match unsafe { Op::submit(core, e, Some(buf as Box<dyn Any>)) } {
        Ok(op) => op,
        Err(e) => return (Err(e), Vec::new()),
    };
    let (res, keep) = op.await;
    let mut buf = keep
        .and_then(|k| k.downcast::<Vec<u8>>().ok())
        .map(|b| *b)
        .unwrap_or_default();
    if res > 0 {
        // SAFETY: the kernel initialised `res` bytes after the old length.
        unsafe { buf.set_len(len + res as usize) };
    }
    (result(res), buf)
}

/// A connected TCP or Unix-domain socket on its core's ring: an
/// always-armed multishot receive into the core's provided buffers, and sends
/// from a buffer the socket keeps until the kernel is done with it.
///
/// Not `Send`: it belongs to the ring (thread) it was created on.
pub struct Socket {
    core: Rc<Core>,
    idx: usize,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Socket(fd {})", self.raw_fd())
    }
}

impl Socket {
    /// Connects a new TCP socket to `addr`; `setup` sets options first.
    pub(crate) async fn connect_tcp(
        addr: SocketAddr,
        setup: impl FnOnce(&socket2::Socket) -> io::Result<()>,
    ) -> io::Result<Socket> {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM.cloexec(),
            Some(socket2::Protocol::TCP),
        )?;
        setup(&s)?;
        Self::connect(s, socket2::SockAddr::from(addr)).await
    }

    /// Connects a new Unix-domain socket to `path`.
    pub(crate) async fn connect_unix(path: &Path) -> io::Result<Socket> {
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM.cloexec(), None)?;
        Self::connect(s, socket2::SockAddr::unix(path)?).await
    }

    async fn connect(s: socket2::Socket, addr: socket2::SockAddr) -> io::Result<Socket> {
        let core = Core::current_io()?;
        // SAFETY: into_raw_fd hands us sole ownership of the descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(s)) };
        let (idx, _) = core.reactor.borrow_mut().sock_add(fd);
        let sock = Socket { core, idx };
        let addr = Box::new(addr);
        let e =
            sock.core
                .reactor
                .borrow()
                .sock_connect_entry(idx, addr.as_ptr().cast(), addr.len());
        // SAFETY: the entry points into `addr`, which the op keeps.
        let op = unsafe { Op::submit(sock.core.clone(), e, Some(addr as Box<dyn Any>))? };
        let (res, _) = op.await;
        result(res)?;
        Ok(sock)
    }

    #[cfg(test)]
    pub(crate) fn idx(&self) -> usize {
        self.idx
    }

    /// The socket's file descriptor (for socket options).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.core.reactor.borrow().sock_fd(self.idx)
    }

    /// Appends received bytes to `dst` once there are any; `Ok(0)` at end of
    /// stream (the loop's tests use it; the IO shell polls). Cancel-safe: dropped while waiting, it loses nothing (bytes
    /// stay with the socket for the next call).
    #[cfg(test)]
    pub(crate) fn recv<'a>(&'a mut self, dst: &'a mut BytesMut) -> Recv<'a> {
        Recv { sock: self, dst }
    }

    /// Poll form of [`Socket::recv`]: registers `cx`'s waker when nothing
    /// has arrived. A caller that stops polling while pending calls
    /// [`Socket::unwait_recv`].
    #[inline]
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.core.check_running() {
            return Poll::Ready(Err(e));
        }
        self.core
            .reactor
            .borrow_mut()
            .sock_poll_recv(self.idx, dst, cx)
    }

    /// Forgets the waker a pending [`Socket::poll_recv`] registered.
    pub(crate) fn unwait_recv(&mut self) {
        if let Ok(mut r) = self.core.reactor.try_borrow_mut() {
            r.sock_unwait_recv(self.idx);
        }
    }

    /// Starts sending `buf` without asking for a completion (`data` comes
    /// back empty; the bytes stay with the socket) and returns true; the
    /// caller must read the peer's reply (proof that the bytes arrived) and
    /// then call [`Socket::confirm_sent`] before the next send. A failed send
    /// shows in the next send or wait. Returns false, sending nothing, while
    /// an earlier send (abandoned midway) is still in flight: then send with
    /// [`Socket::poll_write`], which waits for it first.
    #[inline]
    pub(crate) fn fire(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        self.core.check_running()?;
        let mut r = self.core.reactor.borrow_mut();
        if r.sock_sending(self.idx) {
            return Ok(false);
        }
        r.sock_send(self.idx, buf, true).map(|()| true)
    }

    /// The peer has answered the fired bytes.
    #[inline]
    pub(crate) fn confirm_sent(&mut self) {
        self.core.reactor.borrow_mut().confirm_sent(self.idx);
    }

    /// True while fired bytes are unconfirmed.
    pub(crate) fn has_fired(&self) -> bool {
        self.core.reactor.borrow().sock_fired(self.idx)
    }

    /// Starts sending all of `buf` (which comes back empty); completion is
    /// awaited with [`Socket::poll_sent`]. The previous send must be done.
    pub(crate) fn start_send(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.core.check_running()?;
        self.core
            .reactor
            .borrow_mut()
            .sock_send(self.idx, buf, false)
    }

    /// Ready once no awaited send is in flight (with its error, if it failed).
    pub(crate) fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.core.reactor.borrow_mut().sock_poll_sent(self.idx, cx)
    }

    /// Forgets the waker a pending [`Socket::poll_sent`] registered.
    pub(crate) fn unwait_send(&mut self) {
        if let Ok(mut r) = self.core.reactor.try_borrow_mut() {
            r.sock_unwait_send(self.idx);
        }
    }

    /// Sends all of `buf`, ready once the kernel has taken it (`buf` comes
    /// back empty at once). A send from an earlier, abandoned call that is
    /// still in flight is waited for first; abandoned midway, this send
    /// still completes in the kernel and the next one waits for it.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.poll_sent(cx))?;
            if buf.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.start_send(buf)?;
        }
    }

    /// Sends all of `buf` and waits until the kernel has taken it (`buf`
    /// comes back empty); see [`Socket::poll_write`].
    #[cfg(test)]
    pub(crate) async fn send_all(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.core.check_running()?;
        SendAll { sock: self, buf }.await
    }

    /// Shuts both directions down: the peer sees the end, receives end.
    pub(crate) fn shutdown(&self) {
        self.core.reactor.borrow().sock_shutdown(self.idx);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let running = self.core.running.get();
        if let Ok(mut r) = self.core.reactor.try_borrow_mut() {
            r.sock_close(self.idx, running);
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.raw_fd()
    }
}

/// See [`Socket::recv`].
#[cfg(test)]
pub(crate) struct Recv<'a> {
    sock: &'a mut Socket,
    dst: &'a mut BytesMut,
}

#[cfg(test)]
impl Future for Recv<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.sock.poll_recv(cx, this.dst)
    }
}

#[cfg(test)]
impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.sock.unwait_recv();
    }
}

#[cfg(test)]
struct SendAll<'a> {
    sock: &'a mut Socket,
    buf: &'a mut Vec<u8>,
}

#[cfg(test)]
impl Future for SendAll<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.sock.poll_write(cx, this.buf)
    }
}

#[cfg(test)]
impl Drop for SendAll<'_> {
    fn drop(&mut self) {
        self.sock.unwait_send();
    }
}
