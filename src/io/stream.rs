//! Byte streams on the core's io_uring: the [`Transport`] seam between the
//! sockets (and TLS) and the connection's [`Channel`](super::Channel).
//!
//! Reads append to a buffer the caller keeps: the kernel writes only into
//! the ring's provided buffers, so a read that is dropped while waiting
//! loses nothing, and the caller's buffer is never borrowed by the kernel.
//! Writes hand their buffer to the socket, which keeps it until the kernel
//! is done with it and gives an empty one back.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;

use super::uring::socket::Socket;

/// A byte stream under a connection.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Appends the bytes that arrived to `buf` and returns how many (0 at
    /// the end of the stream), or registers `cx` to be woken when some do.
    /// A caller that stops polling while pending calls [`Transport::unwait`].
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;
    /// Takes back the wakers a pending poll registered.
    fn unwait(&mut self);
    /// Writes all of `buf`, ready once the kernel has it; `buf` empties as
    /// it goes (possibly swapped for another allocation, ready for reuse).
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> Poll<io::Result<()>>;
    /// Starts writing all of `buf` once an earlier write is done, ready as
    /// soon as the bytes are handed over (their completion is not awaited:
    /// the stream owns them until then). `buf` empties.
    fn poll_start_write(&mut self, cx: &mut Context<'_>, buf: &mut Vec<u8>)
    -> Poll<io::Result<()>>;
    /// True once nothing more can arrive (the peer closed or reset the
    /// stream), even if nobody has read since.
    fn peer_gone(&self) -> bool;
    /// Shuts both directions down so in-flight operations complete promptly.
    fn shutdown(&self);
    /// True when the stream is local or encrypted, so a password may be sent in clear.
    fn is_secure(&self) -> bool;
}

/// A TCP or Unix-domain socket on the current thread's io_uring, or TLS over one.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(Socket),
    /// Unix domain socket.
    Unix(Socket),
    /// TLS over one of the above.
    Tls(Box<super::tls::TlsStream>),
}

impl Stream {
    /// Connects over TCP with `TCP_NODELAY` and keepalive as asked.
    pub async fn connect_tcp(
        addr: SocketAddr,
        nodelay: bool,
        keepalive: Option<Duration>,
    ) -> io::Result<Stream> {
        let s = Socket::connect_tcp(addr, |s| {
            s.set_nodelay(nodelay)?;
            if let Some(idle) = keepalive {
                s.set_tcp_keepalive(
                    &socket2::TcpKeepalive::new()
                        .with_time(idle)
                        .with_interval(idle / 4),
                )?;
            }
            Ok(())
        })
        .await?;
        Ok(Stream::Tcp(s))
    }

    /// Connects to a Unix domain socket.
    pub async fn connect_unix(path: &Path) -> io::Result<Stream> {
        Ok(Stream::Unix(Socket::connect_unix(path).await?))
    }

    /// The plain socket under this stream (under TLS, the one TLS runs on).
    pub(crate) fn socket(&mut self) -> &mut Socket {
        match self {
            Stream::Tcp(s) | Stream::Unix(s) => s,
            Stream::Tls(t) => t.socket(),
        }
    }
}

impl Transport for Stream {
    #[inline]
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        match self {
            Stream::Tls(t) => t.poll_read(cx, buf),
            Stream::Tcp(s) | Stream::Unix(s) => s.poll_recv(cx, buf),
        }
    }

    fn unwait(&mut self) {
        match self {
            Stream::Tls(t) => Transport::unwait(&mut **t),
            Stream::Tcp(s) | Stream::Unix(s) => {
                s.unwait_recv();
                s.unwait_send();
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tls(t) => t.poll_write(cx, buf),
            Stream::Tcp(s) | Stream::Unix(s) => s.poll_write(cx, buf),
        }
    }

    #[inline]
    fn poll_start_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<()>> {
        match self {
            Stream::Tls(t) => t.poll_start_write(cx, buf),
            Stream::Tcp(s) | Stream::Unix(s) => s.poll_start_write(cx, buf),
        }
    }

    fn peer_gone(&self) -> bool {
        match self {
            Stream::Tls(t) => t.peer_gone(),
            Stream::Tcp(s) | Stream::Unix(s) => s.peer_gone(),
        }
    }

    fn shutdown(&self) {
        match self {
            Stream::Tcp(s) | Stream::Unix(s) => s.shutdown(),
            Stream::Tls(t) => t.shutdown(),
        }
    }

    fn is_secure(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Unix(_) => true,
            Stream::Tls(t) => t.is_secure(),
        }
    }
}
