//! Byte streams driven by io_uring.
//!
//! tokio-uring takes buffers by value for the duration of each operation and
//! hands them back with the result, so the [`Transport`] trait is written in
//! that owned-buffer style. Another runtime or a TLS layer can implement it.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use tokio_uring::buf::BoundedBuf;

/// An owned-buffer byte stream.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Reads into the spare capacity of `buf` (after its current length),
    /// returning how many bytes arrived (0 at end of stream) and the buffer.
    async fn read_into(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut);
    /// Writes all of `buf`, returning it for reuse.
    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>);
    /// Shuts both directions down so in-flight operations complete promptly.
    fn shutdown(&self);
    /// True when the stream is local or encrypted, so a password may be sent in clear.
    fn is_secure(&self) -> bool;
}

/// A TCP or Unix-domain socket on the current thread's io_uring.
pub enum Stream {
    /// TCP.
    Tcp(tokio_uring::net::TcpStream),
    /// Unix domain socket.
    Unix(tokio_uring::net::UnixStream),
    /// TLS over one of the above.
    Tls(Box<super::tls::TlsStream>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stream::Tcp(s) => write!(f, "Stream::Tcp(fd {})", s.as_raw_fd()),
            Stream::Unix(s) => write!(f, "Stream::Unix(fd {})", s.as_raw_fd()),
            Stream::Tls(t) => write!(f, "Stream::Tls({t:?})"),
        }
    }
}

impl Stream {
    /// Connects over TCP and applies `TCP_NODELAY` and keepalive.
    pub async fn connect_tcp(
        addr: SocketAddr,
        nodelay: bool,
        keepalive: Option<Duration>,
    ) -> io::Result<Stream> {
        let s = tokio_uring::net::TcpStream::connect(addr).await?;
        s.set_nodelay(nodelay)?;
        if let Some(idle) = keepalive {
            // SAFETY: the fd is owned by `s`, which outlives this borrow.
            let fd = unsafe { BorrowedFd::borrow_raw(s.as_raw_fd()) };
            let sock = socket2::SockRef::from(&fd);
            sock.set_tcp_keepalive(
                &socket2::TcpKeepalive::new()
                    .with_time(idle)
                    .with_interval(idle / 4),
            )?;
        }
        Ok(Stream::Tcp(s))
    }

    /// Connects to a Unix domain socket.
    pub async fn connect_unix(path: &Path) -> io::Result<Stream> {
        Ok(Stream::Unix(
            tokio_uring::net::UnixStream::connect(path).await?,
        ))
    }
}

impl Stream {
    /// Reads from a TCP or Unix socket (used under TLS too); a TLS stream here is a bug.
    pub(crate) async fn plain_read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let start = buf.len();
        let slice = buf.slice(start..);
        let (res, slice) = match self {
            Stream::Tcp(s) => s.read(slice).await,
            Stream::Unix(s) => s.read(slice).await,
            Stream::Tls(_) => return (Err(io::Error::other("TLS inside TLS")), slice.into_inner()),
        };
        (res, slice.into_inner())
    }

    /// Writes all of `buf` to a TCP or Unix socket.
    pub(crate) async fn plain_write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            Stream::Unix(s) => s.write_all(buf).await,
            Stream::Tls(_) => (Err(io::Error::other("TLS inside TLS")), buf),
        }
    }
}

impl Transport for Stream {
    async fn read_into(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        match self {
            Stream::Tls(t) => t.read_into(buf).await,
            plain => plain.plain_read(buf).await,
        }
    }

    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            Stream::Tls(t) => t.write_all(buf).await,
            plain => plain.plain_write_all(buf).await,
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tls(t) => {
                t.shutdown();
                Ok(())
            }
        };
    }

    fn is_secure(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Unix(_) => true,
            Stream::Tls(t) => t.is_secure(),
        }
    }
}
