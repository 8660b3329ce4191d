//! One connection's socket, reused buffers and framing.
//!
//! Reads land in one [`BytesMut`] per connection. A packet is handed out as a
//! range of that buffer (borrowed until the next read) or split off as a
//! [`Bytes`] that shares the allocation: values are never copied. Writes are
//! encoded into one reused `Vec<u8>` and submitted as a single operation,
//! together with the wait for the reply when one follows.
//!
//! Every await here is cancel-safe: the buffers never leave the channel
//! while the kernel works (the ring receives into its own buffers, and a
//! socket keeps the bytes it sends), so a read or write that is dropped
//! midway leaves the channel consistent: unread bytes stay queued on the
//! socket, and sent bytes were sent. What the connection still owes the
//! server (or the server owes it) is the connection's bookkeeping, not lost
//! state.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use super::stream::{Stream, Transport};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::framer::{Frame, Framer};

/// Initial read buffer capacity.
const READ_CHUNK: usize = 64 * 1024;
/// Buffers that grew beyond this (for a huge packet) are released once idle.
const KEEP_CAPACITY: usize = 4 << 20;

/// A connection's transport, buffers and packet framer.
#[derive(Debug)]
pub struct Channel {
    /// `None` only while a TLS handshake is in flight (or after one was cancelled).
    stream: Option<Stream>,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
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
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(4096),
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
        if !self.rbuf.is_empty() {
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
        if self.stream.is_none() {
            return Err(Error::broken(
                "connection is unusable: its TLS handshake was cancelled; open a new connection",
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
    /// empty unless earlier commands were encoded and not yet sent
    /// (pipelining).
    pub fn encoder(&mut self) -> Result<(&mut Framer, &mut Vec<u8>)> {
        self.check()?;
        Ok((&mut self.framer, &mut self.wbuf))
    }

    /// Frames `payload` as the next packet of the current sequence.
    pub fn push_packet(&mut self, payload: &[u8]) -> Result<()> {
        let (f, w) = self.encoder()?;
        f.encode(payload, w)?;
        Ok(())
    }

    /// True when encoded bytes wait to be sent.
    pub fn has_unsent(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Forgets encoded bytes that were not sent (a command abandoned before
    /// it went out).
    pub fn discard_unsent(&mut self) {
        self.wbuf.clear();
    }

    /// Writes everything encoded so far and waits until the kernel has it.
    /// Not needed before a read: [`Channel::read_packet`] submits pending
    /// bytes together with the wait for the reply.
    pub async fn flush(&mut self) -> Result<()> {
        self.check()?;
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let stream = self.stream.as_mut().expect("checked");
        if let Err(e) = stream.write_all(&mut self.wbuf).await {
            self.mark_broken("a write failed");
            return Err(Error::io("writing to the server", e));
        }
        self.trim_wbuf();
        Ok(())
    }

    /// Reads the next logical packet and returns where its payload lies in
    /// [`Channel::buf`]. The previous packet's bytes are released first.
    pub async fn read_packet(&mut self) -> Result<Range<usize>> {
        self.check()?;
        self.release();
        loop {
            match self.framer.decode(&mut self.rbuf[..]) {
                Ok(Frame::Packet { payload, consumed }) => {
                    self.consumed = consumed;
                    return Ok(payload);
                }
                Ok(Frame::Incomplete { .. }) => self.fill().await?,
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
        &self.rbuf
    }

    /// Splits the packet last returned by [`Channel::read_packet`] off the
    /// read buffer as shared bytes, without copying.
    pub fn take_packet(&mut self, payload: Range<usize>) -> Bytes {
        self.rbuf.advance(payload.start);
        let bytes = self.rbuf.split_to(payload.len()).freeze();
        self.rbuf.advance(self.consumed - payload.end);
        self.consumed = 0;
        bytes
    }

    fn release(&mut self) {
        self.rbuf.advance(self.consumed);
        self.consumed = 0;
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
    }

    fn trim_wbuf(&mut self) {
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = Vec::with_capacity(4096);
        }
    }

    /// Sends what is pending (without waiting, when the reply will prove it
    /// arrived) and waits for more bytes.
    async fn fill(&mut self) -> Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(Error::broken("connection is unusable: its stream is gone"));
        };
        if !self.wbuf.is_empty() {
            match stream.fire(&mut self.wbuf) {
                Ok(true) => self.trim_wbuf(),
                Ok(false) => self.flush().await?,
                Err(e) => {
                    self.mark_broken("a write failed");
                    return Err(Error::io("writing to the server", e));
                }
            }
        }
        let stream = self.stream.as_mut().expect("checked");
        match stream.read_into(&mut self.rbuf).await {
            Ok(0) => {
                self.mark_broken("the server closed the connection");
                Err(Error::new(
                    ErrorKind::Io,
                    "the server closed the connection (it may have restarted, been killed, or timed the session out)",
                ))
            }
            Ok(_) => {
                stream.reply_seen();
                Ok(())
            }
            Err(e) => {
                self.mark_broken("a read failed");
                Err(Error::io("reading from the server", e))
            }
        }
    }

    /// Shuts the socket down (both directions).
    pub fn shutdown(&self) {
        if let Some(s) = &self.stream {
            s.shutdown();
        }
    }

    /// True while bytes were fired at the server and no reply has proved
    /// them sent yet.
    pub fn has_fired(&mut self) -> bool {
        match self.stream.as_mut() {
            Some(Stream::Tcp(s) | Stream::Unix(s)) => s.has_fired(),
            _ => false,
        }
    }
}
