//! One connection's socket, reused buffers and framing.
//!
//! Reads land in one [`BytesMut`] per connection. A packet is handed out as a
//! range of that buffer (borrowed until the next read) or split off as a
//! [`Bytes`] that shares the allocation: values are never copied. Writes are
//! encoded into one reused `Vec<u8>` and submitted as a single operation.
//!
//! tokio-uring owns a buffer while an operation is in flight and does not
//! cancel the operation when its future is dropped. If that happens the
//! buffer is gone from the channel, which therefore knows it is broken:
//! every later call fails with [`ErrorKind::Broken`]
//! and the socket is shut down, so no caller can ever read another command's
//! bytes.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use super::stream::{Stream, Transport};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::framer::{Frame, Framer};

/// Bytes requested from the kernel per read when nothing larger is needed.
const READ_CHUNK: usize = 64 * 1024;
/// Buffers that grew beyond this (for a huge packet) are released once idle.
const KEEP_CAPACITY: usize = 4 << 20;

/// A connection's transport, buffers and packet framer.
#[derive(Debug)]
pub struct Channel {
    /// `None` only while a TLS handshake is in flight (or after one was cancelled).
    stream: Option<Stream>,
    rbuf: Option<BytesMut>,
    wbuf: Option<Vec<u8>>,
    framer: Framer,
    /// Bytes of the last packet handed out, still at the front of `rbuf`.
    consumed: usize,
    broken: Option<String>,
}

impl Channel {
    /// Wraps a connected stream.
    pub fn new(stream: Stream, max_packet: usize) -> Self {
        Channel {
            stream: Some(stream),
            rbuf: Some(BytesMut::with_capacity(READ_CHUNK)),
            wbuf: Some(Vec::with_capacity(4096)),
            framer: Framer::new(max_packet),
            consumed: 0,
            broken: None,
        }
    }

    /// True when the transport is local or encrypted.
    pub fn is_secure(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_secure())
    }

    /// True once the stream is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    /// Replaces the plain stream by a TLS session negotiated over it. Called
    /// right after the client's SSLRequest, when no bytes may be pending.
    pub async fn upgrade_tls(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        host: &str,
    ) -> Result<()> {
        self.check()?;
        self.release();
        if !self.buf().is_empty() {
            self.mark_broken("unexpected bytes before TLS");
            return Err(Error::new(
                ErrorKind::Protocol,
                "the server sent data before the TLS handshake; the connection was closed",
            ));
        }
        self.flush().await?;
        let plain = self.stream.take().expect("checked");
        match super::tls::TlsStream::connect(plain, config, host).await {
            Ok(t) => {
                self.stream = Some(Stream::Tls(Box::new(t)));
                Ok(())
            }
            Err(e) => {
                self.broken = Some("the TLS handshake failed".into());
                Err(e)
            }
        }
    }

    /// Fails if the channel can no longer be used.
    pub fn check(&self) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(Error::broken(format!(
                "connection is unusable: {why}; open a new connection"
            )));
        }
        if self.rbuf.is_none() || self.wbuf.is_none() || self.stream.is_none() {
            return Err(Error::broken(
                "connection is unusable: an earlier operation on it was cancelled or timed out \
                 while reading or writing, so its state is unknown; open a new connection",
            ));
        }
        Ok(())
    }

    /// True when [`Channel::check`] would fail.
    pub fn is_broken(&self) -> bool {
        self.check().is_err()
    }

    /// Marks the channel unusable and shuts the socket down.
    pub fn mark_broken(&mut self, why: impl Into<String>) {
        if self.broken.is_none() {
            self.broken = Some(why.into());
        }
        self.shutdown();
    }

    /// The framer, for commands that continue a sequence.
    pub fn framer(&mut self) -> &mut Framer {
        &mut self.framer
    }

    /// The write buffer and framer, for encoding a command. The buffer is
    /// empty unless earlier commands were encoded and not yet flushed
    /// (pipelining).
    pub fn encoder(&mut self) -> Result<(&mut Framer, &mut Vec<u8>)> {
        self.check()?;
        let w = self.wbuf.as_mut().expect("checked");
        Ok((&mut self.framer, w))
    }

    /// Frames `payload` as the next packet of the current sequence.
    pub fn push_packet(&mut self, payload: &[u8]) -> Result<()> {
        let (f, w) = self.encoder()?;
        f.encode(payload, w)?;
        Ok(())
    }

    /// Writes everything encoded so far in one operation. Not needed before a
    /// read: [`Channel::read_packet`] submits pending bytes together with the
    /// read of the reply.
    pub async fn flush(&mut self) -> Result<()> {
        self.check()?;
        let buf = self.wbuf.take().expect("checked");
        let stream = self.stream.as_mut().expect("checked");
        let (res, buf) = stream.write_all(buf).await;
        self.put_wbuf(buf);
        if let Err(e) = res {
            self.mark_broken("a write failed");
            return Err(Error::io("writing to the server", e));
        }
        Ok(())
    }

    /// Reads the next logical packet and returns where its payload lies in
    /// [`Channel::buf`]. The previous packet's bytes are released first.
    pub async fn read_packet(&mut self) -> Result<Range<usize>> {
        self.check()?;
        self.release();
        loop {
            let rbuf = self.rbuf.as_mut().expect("checked");
            match self.framer.decode(&mut rbuf[..]) {
                Ok(Frame::Packet { payload, consumed }) => {
                    self.consumed = consumed;
                    return Ok(payload);
                }
                Ok(Frame::Incomplete { need }) => self.fill(need).await?,
                Err(e) => {
                    let err = Error::from(e);
                    self.mark_broken(err.to_string());
                    return Err(if err.kind() == ErrorKind::TooLarge {
                        Error::new(
                            ErrorKind::TooLarge,
                            format!("{err}; the connection was closed"),
                        )
                    } else {
                        err
                    });
                }
            }
        }
    }

    /// The read buffer; index it with a range from [`Channel::read_packet`].
    pub fn buf(&self) -> &[u8] {
        self.rbuf.as_deref().unwrap_or(&[])
    }

    /// Splits the packet last returned by [`Channel::read_packet`] off the
    /// read buffer as shared bytes, without copying.
    pub fn take_packet(&mut self, payload: Range<usize>) -> Bytes {
        let Some(rbuf) = self.rbuf.as_mut() else {
            return Bytes::new();
        };
        rbuf.advance(payload.start);
        let bytes = rbuf.split_to(payload.len()).freeze();
        rbuf.advance(self.consumed - payload.end);
        self.consumed = 0;
        bytes
    }

    fn release(&mut self) {
        if let Some(rbuf) = self.rbuf.as_mut() {
            rbuf.advance(self.consumed);
            self.consumed = 0;
            if rbuf.is_empty() && rbuf.capacity() > KEEP_CAPACITY {
                *rbuf = BytesMut::with_capacity(READ_CHUNK);
            }
        }
    }

    async fn fill(&mut self, need: usize) -> Result<()> {
        let mut buf = self.rbuf.take().expect("checked by caller");
        if buf.capacity() - buf.len() < need.max(READ_CHUNK / 4) {
            buf.reserve(need.max(READ_CHUNK));
        }
        let pending_write = self.wbuf.as_ref().is_some_and(|w| !w.is_empty());
        let Some(stream) = self.stream.as_mut() else {
            self.rbuf = Some(buf);
            return Err(Error::broken("connection is unusable: its stream is gone"));
        };
        let res = if pending_write && !matches!(stream, Stream::Tls(_)) {
            // Submit the command's write and the read of its reply together:
            // one trip through the ring instead of two.
            let w = self.wbuf.take().expect("checked");
            let stream = &*stream;
            let ((wres, w), (res, buf)) =
                tokio::join!(stream.plain_write_all(w), stream.plain_read(buf));
            self.rbuf = Some(buf);
            self.put_wbuf(w);
            if let Err(e) = wres {
                self.mark_broken("a write failed");
                return Err(Error::io("writing to the server", e));
            }
            res
        } else {
            if pending_write {
                self.rbuf = Some(buf);
                self.flush().await?;
                buf = self.rbuf.take().expect("flush keeps the read buffer");
            }
            let stream = self.stream.as_mut().expect("checked");
            let (res, buf) = stream.read_into(buf).await;
            self.rbuf = Some(buf);
            res
        };
        match res {
            Ok(0) => {
                self.mark_broken("the server closed the connection");
                Err(Error::new(
                    ErrorKind::Io,
                    "the server closed the connection (it may have restarted, been killed, or timed the session out)",
                ))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.mark_broken("a read failed");
                Err(Error::io("reading from the server", e))
            }
        }
    }

    fn put_wbuf(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if buf.capacity() > KEEP_CAPACITY {
            buf = Vec::with_capacity(4096);
        }
        self.wbuf = Some(buf);
    }

    /// Shuts the socket down (both directions).
    pub fn shutdown(&self) {
        if let Some(s) = &self.stream {
            s.shutdown();
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if self.rbuf.is_none() || self.wbuf.is_none() {
            // An operation is still in flight in the kernel: make it finish now.
            self.shutdown();
        }
    }
}
