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
use std::time::Duration;

use bytes::BytesMut;

use super::uring::socket::Socket;

/// A byte stream under a connection.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Appends the bytes that arrived (waiting for some) to `buf` and
    /// returns how many; 0 at the end of the stream. Cancel-safe.
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize>;
    /// Writes all of `buf` and waits until the kernel has it; `buf` comes
    /// back empty (possibly another allocation, ready for reuse).
    async fn write_all(&mut self, buf: &mut Vec<u8>) -> io::Result<()>;
    /// Starts writing `buf` without waiting, when the stream can prove the
    /// write done by the peer's reply (see [`Transport::reply_seen`]);
    /// `Ok(false)` when it cannot (then use [`Transport::write_all`]).
    fn fire(&mut self, buf: &mut Vec<u8>) -> io::Result<bool>;
    /// The peer answered: a fired write has arrived.
    fn reply_seen(&mut self);
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
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tls(t) => t.read_into(buf).await,
            Stream::Tcp(s) | Stream::Unix(s) => s.recv(buf).await,
        }
    }

    async fn write_all(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Stream::Tls(t) => t.write_all(buf).await,
            Stream::Tcp(s) | Stream::Unix(s) => s.send_all(buf).await,
        }
    }

    fn fire(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        match self {
            Stream::Tls(_) => Ok(false),
            Stream::Tcp(s) | Stream::Unix(s) => s.fire(buf).map(|()| true),
        }
    }

    fn reply_seen(&mut self) {
        if let Stream::Tcp(s) | Stream::Unix(s) = self {
            s.confirm_sent();
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
