//! Sockets and one-shot operations on the current core's ring.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;

use super::Core;
use super::ops::{OneShot, OpId};

/// A one-shot operation in flight; dropping it cancels it in the kernel
/// (its memory stays with the ring until the kernel's completion).
pub(crate) struct Op {
    core: Rc<Core>,
    id: OpId,
    done: bool,
}

impl Op {
    /// Starts `op` on `core`; the memory it carries is the ring's until the
    /// operation completes.
    pub(crate) fn start(core: Rc<Core>, op: OneShot) -> io::Result<Op> {
        core.check_running()?;
        let id = core.reactor.borrow_mut().op_start(op);
        Ok(Op {
            core,
            id,
            done: false,
        })
    }
}

impl Future for Op {
    /// The completion's result (negative errno on failure) and the memory
    /// the operation was lent, back (`None` if the ring stopped first).
    type Output = (i32, Option<OneShot>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let r = self.core.reactor.borrow_mut().op_poll(id, cx);
        if r.is_ready() {
            self.done = true;
        }
        r
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if !self.done {
            if let Ok(mut r) = self.core.reactor.try_borrow_mut() {
                r.op_drop(self.id);
            }
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

/// Reads up to `buf`'s spare capacity from `file` at `offset` (the ring reads
/// it without blocking the core), appending to `buf`. The file and the
/// buffer come back with the result; if this future is dropped first, the
/// read keeps both (the file stays open) until the kernel completes it.
pub(crate) async fn read_at(
    file: std::fs::File,
    buf: Vec<u8>,
    offset: u64,
) -> (io::Result<usize>, Option<(std::fs::File, Vec<u8>)>) {
    let core = match Core::current_io() {
        Ok(c) => c,
        Err(e) => return (Err(e), Some((file, buf))),
    };
    let op = match Op::start(core, OneShot::ReadFile { file, buf, offset }) {
        Ok(op) => op,
        Err(e) => return (Err(e), None),
    };
    let (res, back) = op.await;
    match back {
        Some(OneShot::ReadFile { file, mut buf, .. }) => {
            if res > 0 {
                // A read never returns more than it was given room for; a
                // kernel (or simulation) that did must not make us read past
                // the capacity, so the count is clamped to it.
                let n = (res as usize).min(buf.capacity() - buf.len());
                // SAFETY: the kernel initialised `n` bytes after the old
                // length, within the spare capacity it was given.
                unsafe { buf.set_len(buf.len() + n) };
            }
            (result(res), Some((file, buf)))
        }
        _ => (result(res), None),
    }
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
        core.check_running()?;
        // SAFETY: into_raw_fd hands us sole ownership of the descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(s)) };
        let idx = core.reactor.borrow_mut().sock_add(fd);
        let sock = Socket { core, idx };
        let op = Op::start(
            sock.core.clone(),
            OneShot::Connect {
                sock: idx,
                addr: Box::new(addr),
            },
        )?;
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

    /// Starts sending all of `buf` (which comes back empty); completion is
    /// awaited with [`Socket::poll_sent`]. The previous send must be done.
    pub(crate) fn start_send(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.core.check_running()?;
        self.core.reactor.borrow_mut().sock_send(self.idx, buf)
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

    /// Starts sending all of `buf` once an earlier send is done, without
    /// waiting for this one's completion (the reply read next stands in for
    /// it; the socket owns the bytes until the completion). `buf` comes back
    /// empty.
    pub(crate) fn poll_start_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_sent(cx))?;
        if !buf.is_empty() {
            self.start_send(buf)?;
        }
        Poll::Ready(Ok(()))
    }

    /// True once nothing more can arrive: the peer closed or reset the
    /// stream (seen by the ring even while nobody reads), or a send failed.
    pub(crate) fn peer_gone(&self) -> bool {
        self.core
            .reactor
            .try_borrow()
            .is_ok_and(|r| r.sock_peer_gone(self.idx))
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
        if let Ok(mut r) = self.core.reactor.try_borrow_mut() {
            r.sock_shutdown(self.idx);
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Ok(mut r) = self.core.reactor.try_borrow_mut() {
            r.sock_close(self.idx);
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
