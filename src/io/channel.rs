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

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

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
    /// Where the unread bytes of `rbuf` start.
    pos: usize,
    /// Where they will start once the last packet handed out is released
    /// (at the next read): that packet stays valid until then.
    next: usize,
    broken: Option<String>,
    /// The compressed protocol, once negotiated and authenticated.
    compress: Option<Box<Compress>>,
}

/// A channel's compressed-protocol state.
#[derive(Debug)]
struct Compress {
    codec: crate::proto::compress::Compressor,
    /// Compressed bytes received and not yet unwrapped.
    raw: BytesMut,
    /// Compressed packets to send.
    out: Vec<u8>,
    /// Where the commands in the write buffer begin (reused).
    starts: Vec<usize>,
}

/// Where a [`Channel::poll_packet`] is (kept by the future that polls it).
#[derive(Debug, Default)]
pub struct ReadState {
    started: bool,
    /// Pending in the transport (its waker registered there).
    waiting: bool,
}

impl Channel {
    /// Wraps a connected stream.
    pub fn new(stream: Stream, max_packet: usize) -> Self {
        Channel {
            stream: Some(stream),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(4096),
            framer: Framer::new(max_packet),
            pos: 0,
            next: 0,
            broken: None,
            compress: None,
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
        if self.pos < self.rbuf.len() {
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

    /// Writes everything encoded so far and waits until the kernel has it.
    /// Not needed before a read: [`Channel::read_packet`] submits pending
    /// bytes together with the wait for the reply.
    pub async fn flush(&mut self) -> Result<()> {
        self.check()?;
        if self.wbuf.is_empty() && self.compress.as_ref().is_none_or(|c| c.out.is_empty()) {
            return Ok(());
        }
        Flush { chan: self }.await
    }

    /// Reads the next logical packet and returns where its payload lies in
    /// [`Channel::buf`]. The previous packet's bytes are released first;
    /// pending bytes are sent first (fired: the reply proves them sent).
    /// Cancel-safe.
    #[inline]
    pub fn read_packet(&mut self) -> ReadPacket<'_> {
        ReadPacket {
            chan: self,
            st: ReadState::default(),
        }
    }

    /// The poll behind [`Channel::read_packet`], for futures that do more
    /// with the packet: `st` keeps its progress between polls, and dropping
    /// a pending poll must call [`Channel::abandon_read`].
    #[inline]
    pub fn poll_packet(
        &mut self,
        cx: &mut Context<'_>,
        st: &mut ReadState,
    ) -> Poll<Result<Range<usize>>> {
        if !st.started {
            st.started = true;
            self.check()?;
            self.release();
        }
        loop {
            match self.framer.decode(&mut self.rbuf[self.pos..]) {
                Ok(Frame::Packet { payload, consumed }) => {
                    let at = self.pos;
                    self.next = at + consumed;
                    st.waiting = false;
                    return Poll::Ready(Ok(at + payload.start..at + payload.end));
                }
                Ok(Frame::Incomplete { .. }) => {}
                Err(e) => return Poll::Ready(Err(self.frame_error(e))),
            }
            if let Err(e) = std::task::ready!(self.poll_more(cx, st)) {
                return Poll::Ready(Err(e));
            }
        }
    }

    /// Sends what is pending and receives more bytes (at least one, or an error).
    fn poll_more(&mut self, cx: &mut Context<'_>, st: &mut ReadState) -> Poll<Result<()>> {
        if self.pos > 0 {
            // Keep the unread tail at the front, so the buffer's room is usable
            // (once per receive, not once per packet).
            self.rbuf.advance(self.pos);
            self.next -= self.pos.min(self.next);
            self.pos = 0;
        }
        if let Err(e) = self.compress_pending() {
            return Poll::Ready(Err(e));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(Err(Error::broken(
                "connection is unusable: its stream is gone",
            )));
        };
        let out = match self.compress.as_mut() {
            Some(c) => &mut c.out,
            None => &mut self.wbuf,
        };
        if !out.is_empty() {
            // The command goes out now and the reply is read at once: the
            // send's completion is not awaited here (the socket owns the
            // bytes until it arrives; the next write waits for it).
            match stream.poll_start_write(cx, out) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(self.io_error("writing to the server", e)));
                }
                Poll::Pending => {
                    st.waiting = true;
                    return Poll::Pending;
                }
            }
            if out.capacity() > KEEP_CAPACITY {
                *out = Vec::with_capacity(4096);
            }
        }
        loop {
            let stream = self.stream.as_mut().expect("checked above");
            let into = match self.compress.as_mut() {
                Some(c) => &mut c.raw,
                None => &mut self.rbuf,
            };
            match stream.poll_read(cx, into) {
                Poll::Pending => {
                    st.waiting = true;
                    return Poll::Pending;
                }
                Poll::Ready(Ok(0)) => {
                    st.waiting = false;
                    self.mark_broken("the server closed the connection");
                    return Poll::Ready(Err(Error::new(
                        ErrorKind::Io,
                        "the server closed the connection (it may have restarted, been killed, or timed the session out)",
                    )));
                }
                Poll::Ready(Ok(_)) => {
                    let Some(c) = self.compress.as_mut() else {
                        return Poll::Ready(Ok(()));
                    };
                    match c.codec.decode(&mut c.raw, &mut self.rbuf) {
                        Ok(0) => continue, // part of a compressed packet: read on
                        Ok(_) => return Poll::Ready(Ok(())),
                        Err(e) => return Poll::Ready(Err(self.frame_error(e))),
                    }
                }
                Poll::Ready(Err(e)) => {
                    st.waiting = false;
                    return Poll::Ready(Err(self.io_error("reading from the server", e)));
                }
            }
        }
    }

    /// With compression on, moves what was encoded into compressed packets
    /// (each command in packets of its own); without, forgets the command
    /// starts the framer noted.
    fn compress_pending(&mut self) -> Result<()> {
        match self.compress.as_mut() {
            None => {
                self.framer.clear_command_starts();
                Ok(())
            }
            Some(c) if !self.wbuf.is_empty() => {
                self.framer.take_command_starts(&mut c.starts);
                let r = c.codec.encode(&self.wbuf, &c.starts, &mut c.out);
                self.wbuf.clear();
                r.map_err(|e| {
                    let err = Error::from(e);
                    self.mark_broken(err.to_string());
                    err
                })
            }
            Some(_) => Ok(()),
        }
    }

    /// Turns the compressed protocol on (right after authentication, when
    /// it was negotiated): every byte sent and received from now on travels
    /// in compressed packets.
    pub fn enable_compression(&mut self, alg: crate::proto::compress::Algorithm) -> Result<()> {
        let codec = crate::proto::compress::Compressor::new(
            alg,
            self.framer.max_packet().saturating_add(64),
        )?;
        // Bytes already received (nothing, after the final OK) were plain.
        self.framer.ignore_read_sequence();
        self.compress = Some(Box::new(Compress {
            codec,
            raw: BytesMut::new(),
            out: Vec::new(),
            starts: Vec::new(),
        }));
        Ok(())
    }

    /// True when the compressed protocol is on.
    pub fn is_compressed(&self) -> bool {
        self.compress.is_some()
    }

    /// A pending [`Channel::poll_packet`] is being dropped: take back its waker.
    pub fn abandon_read(&mut self, st: &ReadState) {
        if st.waiting {
            if let Some(s) = self.stream.as_mut() {
                s.unwait();
            }
        }
    }

    /// A framing error: the channel is closed; the error says why.
    fn frame_error(&mut self, e: crate::proto::ProtoError) -> Error {
        let err = Error::from(e);
        self.mark_broken(err.to_string());
        if err.kind() == ErrorKind::TooLarge {
            Error::new(
                ErrorKind::TooLarge,
                format!("{err}; the connection was closed"),
            )
        } else {
            err
        }
    }

    /// A failed send or receive: the channel is closed.
    fn io_error(&mut self, what: &'static str, e: std::io::Error) -> Error {
        self.mark_broken(format!("{what} failed"));
        Error::io(what, e)
    }

    /// The read buffer; index it with a range from [`Channel::read_packet`].
    #[inline]
    pub fn buf(&self) -> &[u8] {
        &self.rbuf
    }

    /// Splits the packet last returned by [`Channel::read_packet`] off the
    /// read buffer as shared bytes, without copying.
    pub fn take_packet(&mut self, payload: Range<usize>) -> Bytes {
        self.rbuf.advance(payload.start);
        let bytes = self.rbuf.split_to(payload.len()).freeze();
        self.next -= payload.end;
        self.pos = 0;
        bytes
    }

    /// Releases the last packet handed out: its bytes may be reused.
    #[inline]
    fn release(&mut self) {
        self.pos = self.next;
        if self.pos == self.rbuf.len() {
            // Nothing unread: start over at the front, no copy. A buffer that
            // grew for one huge packet is given back.
            self.pos = 0;
            self.next = 0;
            if self.rbuf.capacity() > KEEP_CAPACITY {
                self.rbuf = BytesMut::with_capacity(READ_CHUNK);
            } else {
                self.rbuf.clear();
            }
        }
    }

    fn trim_wbuf(&mut self) {
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = Vec::with_capacity(4096);
        }
    }

    /// Shuts the socket down (both directions).
    pub fn shutdown(&self) {
        if let Some(s) = &self.stream {
            s.shutdown();
        }
    }

    /// True once nothing more can arrive from the server (it closed or
    /// reset the connection), even if nobody has read since: the ring saw
    /// it. A pool never hands out such a connection.
    pub fn peer_gone(&self) -> bool {
        self.stream.as_ref().is_none_or(|s| s.peer_gone())
    }
}

/// See [`Channel::read_packet`].
#[must_use = "futures do nothing unless awaited"]
pub struct ReadPacket<'a> {
    chan: &'a mut Channel,
    st: ReadState,
}

impl Future for ReadPacket<'_> {
    type Output = Result<Range<usize>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.chan.poll_packet(cx, &mut this.st)
    }
}

impl Drop for ReadPacket<'_> {
    fn drop(&mut self) {
        self.chan.abandon_read(&self.st);
    }
}

/// See [`Channel::flush`].
struct Flush<'a> {
    chan: &'a mut Channel,
}

impl Future for Flush<'_> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let chan = &mut *self.get_mut().chan;
        if let Err(e) = chan.compress_pending() {
            return Poll::Ready(Err(e));
        }
        let Some(stream) = chan.stream.as_mut() else {
            return Poll::Ready(Err(Error::broken(
                "connection is unusable: its stream is gone",
            )));
        };
        let out = match chan.compress.as_mut() {
            Some(c) => &mut c.out,
            None => &mut chan.wbuf,
        };
        match stream.poll_write(cx, out) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                chan.trim_wbuf();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(chan.io_error("writing to the server", e))),
        }
    }
}

impl Drop for Flush<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.chan.stream.as_mut() {
            s.unwait();
        }
    }
}
