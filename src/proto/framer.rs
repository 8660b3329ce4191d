//! Packet framing: the 4-byte header (3-byte length, 1-byte sequence id) and
//! the 16 MiB continuation rule.
//!
//! A payload of `0xFFFFFF` bytes or more is sent as several physical packets,
//! each full one followed by the next, the last one shorter than `0xFFFFFF`
//! (possibly empty). [`Framer::decode`] joins them in place; [`Framer::finish`]
//! splits them on write.

use std::ops::Range;

use super::consts::MAX_PAYLOAD;
use super::error::{ProtoError, ProtoResult};

/// Size of a packet header.
pub const HEADER_LEN: usize = 4;

/// The outcome of [`Framer::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole logical packet is at the front of the buffer.
    Packet {
        /// Where the (joined) payload lies in the buffer.
        payload: Range<usize>,
        /// How many bytes of the buffer the packet used, headers included.
        consumed: usize,
    },
    /// More bytes are needed; at least this many.
    Incomplete {
        /// Minimum number of further bytes before a packet can be complete.
        need: usize,
    },
}

/// Tracks sequence ids and limits for one connection.
#[derive(Debug, Clone)]
pub struct Framer {
    seq: u8,
    max_packet: usize,
    /// A command was started ([`Framer::reset`]) and its first packet not
    /// written yet.
    new_command: bool,
    /// Where in the output each command written since the last
    /// [`Framer::take_command_starts`] begins (the compressed protocol
    /// restarts its sequence there).
    command_starts: Vec<usize>,
    /// Check the sequence ids of packets read (off under the compressed
    /// protocol, where the compressed packets carry the checked sequence and
    /// servers number the packets inside it their own way).
    check_seq: bool,
}

impl Framer {
    /// A framer that refuses logical packets larger than `max_packet` bytes.
    pub fn new(max_packet: usize) -> Self {
        Framer {
            seq: 0,
            max_packet,
            new_command: false,
            command_starts: Vec::new(),
            check_seq: true,
        }
    }

    /// Starts a new command: the next packet written has sequence id 0.
    pub fn reset(&mut self) {
        self.seq = 0;
        self.new_command = true;
    }

    /// The offsets in the output where the commands written since the last
    /// call begin; forgets them. (The output must not have been changed by
    /// anything but this framer meanwhile, except truncation.)
    pub fn take_command_starts(&mut self, into: &mut Vec<usize>) {
        into.clear();
        into.append(&mut self.command_starts);
    }

    /// Stops checking the sequence ids of packets read (the compressed
    /// protocol checks its own).
    pub fn ignore_read_sequence(&mut self) {
        self.check_seq = false;
    }

    /// Forgets the command starts at `len` or beyond: the caller truncated
    /// the output to `len` bytes (commands refused before sending).
    pub fn forget_starts_from(&mut self, len: usize) {
        self.command_starts.retain(|&at| at < len);
    }

    /// Forgets the recorded command starts (the output was sent as is).
    pub fn clear_command_starts(&mut self) {
        self.command_starts.clear();
    }

    /// Expects the reply to a command written earlier (pipelining): the next
    /// packet read must carry sequence id 1.
    pub fn expect_reply(&mut self) {
        self.seq = 1;
    }

    /// The sequence id of the next packet to read or write.
    pub fn seq(&self) -> u8 {
        self.seq
    }

    /// The largest logical packet accepted.
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// Tries to take one logical packet from the front of `buf`.
    ///
    /// When the packet spans several physical packets and all of them have
    /// arrived, their headers are squeezed out in place so the payload is
    /// contiguous. Nothing is modified while the packet is incomplete, so the
    /// call can be repeated as more bytes arrive.
    #[inline]
    pub fn decode(&mut self, buf: &mut [u8]) -> ProtoResult<Frame> {
        // The common cases: nothing yet (the reply has not arrived), or one
        // whole physical packet, in sequence, in bounds.
        if buf.len() < HEADER_LEN {
            return Ok(Frame::Incomplete {
                need: HEADER_LEN - buf.len(),
            });
        }
        if let Some(h) = buf.get(..HEADER_LEN) {
            let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
            if (h[3] == self.seq || !self.check_seq)
                && len < MAX_PAYLOAD
                && len <= self.max_packet
                && buf.len() >= HEADER_LEN + len
            {
                self.seq = self.seq.wrapping_add(1);
                return Ok(Frame::Packet {
                    payload: HEADER_LEN..HEADER_LEN + len,
                    consumed: HEADER_LEN + len,
                });
            }
        }
        self.decode_slow(buf)
    }

    /// Everything but the common case: incomplete, out of order, too large,
    /// or split over several physical packets.
    fn decode_slow(&mut self, buf: &mut [u8]) -> ProtoResult<Frame> {
        let mut pos = 0usize;
        let mut total = 0usize;
        let mut seq = self.seq;
        let mut parts = 0usize;
        loop {
            let Some(h) = buf.get(pos..pos + HEADER_LEN) else {
                return Ok(Frame::Incomplete {
                    need: pos + HEADER_LEN - buf.len(),
                });
            };
            let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
            if h[3] != seq && self.check_seq {
                return Err(ProtoError::OutOfOrder {
                    expected: seq,
                    got: h[3],
                });
            }
            total += len;
            if total > self.max_packet {
                return Err(ProtoError::PacketTooLarge {
                    size: total,
                    limit: self.max_packet,
                });
            }
            let end = pos + HEADER_LEN + len;
            if buf.len() < end {
                return Ok(Frame::Incomplete {
                    need: end - buf.len(),
                });
            }
            parts += 1;
            seq = seq.wrapping_add(1);
            pos = end;
            if len < MAX_PAYLOAD {
                break;
            }
        }
        self.seq = seq;
        if parts > 1 {
            // Squeeze out the inner headers: part k starts at k * (4 + MAX) + 4.
            let mut dst = HEADER_LEN + MAX_PAYLOAD;
            let mut src = dst + HEADER_LEN;
            while src < pos {
                let h = &buf[src - HEADER_LEN..src];
                let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                buf.copy_within(src..src + len, dst);
                dst += len;
                src += len + HEADER_LEN;
            }
        }
        Ok(Frame::Packet {
            payload: HEADER_LEN..HEADER_LEN + total,
            consumed: pos,
        })
    }

    /// Starts a packet in `out`: reserves room for its header and returns the
    /// offset to pass to [`Framer::finish`]. Write the payload right after.
    pub fn begin(out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        start
    }

    /// Completes the packet begun at `start`: writes its header, and splits it
    /// into 16 MiB parts if needed. Fails if the payload exceeds the limit.
    pub fn finish(&mut self, out: &mut Vec<u8>, start: usize) -> ProtoResult<()> {
        let first = std::mem::take(&mut self.new_command);
        if first {
            self.command_starts.push(start);
        }
        let len = out.len() - start - HEADER_LEN;
        if len > self.max_packet {
            out.truncate(start);
            if first {
                // Nothing of this command is written: forget where it began.
                self.forget_starts_from(start);
                self.new_command = true;
            }
            return Err(ProtoError::CommandTooLarge {
                size: len,
                limit: self.max_packet,
            });
        }
        if len < MAX_PAYLOAD {
            self.write_header(&mut out[start..start + HEADER_LEN], len);
            return Ok(());
        }
        // Rare: a payload of 16 MiB or more. Re-frame it part by part.
        let payload = out.split_off(start + HEADER_LEN);
        out.truncate(start);
        let mut chunks = payload.chunks(MAX_PAYLOAD);
        loop {
            let chunk = chunks.next().unwrap_or(&[]);
            let at = out.len();
            out.extend_from_slice(&[0; HEADER_LEN]);
            self.write_header(&mut out[at..at + HEADER_LEN], chunk.len());
            out.extend_from_slice(chunk);
            if chunk.len() < MAX_PAYLOAD {
                break;
            }
        }
        Ok(())
    }

    /// Appends `payload` to `out` as one framed logical packet.
    pub fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> ProtoResult<()> {
        let start = Self::begin(out);
        out.extend_from_slice(payload);
        self.finish(out, start)
    }

    fn write_header(&mut self, h: &mut [u8], len: usize) {
        h[..3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
        h[3] = self.seq;
        self.seq = self.seq.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Framer::new(usize::MAX).encode(payload, &mut out).unwrap();
        out
    }

    fn decode_all(bytes: &[u8], max: usize) -> ProtoResult<Vec<u8>> {
        let mut buf = bytes.to_vec();
        match Framer::new(max).decode(&mut buf)? {
            Frame::Packet { payload, consumed } => {
                assert_eq!(consumed, bytes.len());
                Ok(buf[payload].to_vec())
            }
            Frame::Incomplete { need } => panic!("incomplete, need {need}"),
        }
    }

    #[test]
    fn small_packet_round_trip() {
        let bytes = frame(b"\x03SELECT 1");
        assert_eq!(&bytes[..4], &[9, 0, 0, 0]);
        assert_eq!(decode_all(&bytes, 1 << 30).unwrap(), b"\x03SELECT 1");
    }

    #[test]
    fn empty_packet() {
        let bytes = frame(b"");
        assert_eq!(bytes, [0, 0, 0, 0]);
        assert_eq!(decode_all(&bytes, 10).unwrap(), b"");
    }

    #[test]
    fn exactly_max_payload_is_followed_by_an_empty_packet() {
        let payload = vec![7u8; MAX_PAYLOAD];
        let bytes = frame(&payload);
        assert_eq!(bytes.len(), MAX_PAYLOAD + 8);
        assert_eq!(&bytes[..4], &[0xFF, 0xFF, 0xFF, 0]);
        assert_eq!(&bytes[MAX_PAYLOAD + 4..], &[0, 0, 0, 1]);
        assert_eq!(decode_all(&bytes, usize::MAX).unwrap(), payload);
    }

    #[test]
    fn large_payload_splits_and_joins() {
        let payload: Vec<u8> = (0..(2 * MAX_PAYLOAD + 10))
            .map(|i| (i % 251) as u8)
            .collect();
        let bytes = frame(&payload);
        assert_eq!(bytes.len(), payload.len() + 12);
        assert_eq!(bytes[MAX_PAYLOAD + 4 + 3], 1);
        assert_eq!(bytes[2 * (MAX_PAYLOAD + 4) + 3], 2);
        assert_eq!(decode_all(&bytes, usize::MAX).unwrap(), payload);
    }

    #[test]
    fn incomplete_is_reported_and_does_not_mutate() {
        let bytes = frame(b"hello");
        let mut f = Framer::new(100);
        for cut in 0..bytes.len() {
            let mut b = bytes[..cut].to_vec();
            let before = b.clone();
            match f.decode(&mut b).unwrap() {
                Frame::Incomplete { need } => assert_eq!(cut + need, if cut < 4 { 4 } else { 9 }),
                other => panic!("{other:?}"),
            }
            assert_eq!(b, before);
            assert_eq!(f.seq(), 0);
        }
    }

    #[test]
    fn sequence_ids_are_checked_and_advance() {
        let mut f = Framer::new(100);
        let mut b = vec![1, 0, 0, 0, b'a', 1, 0, 0, 1, b'b'];
        let Frame::Packet { consumed, .. } = f.decode(&mut b).unwrap() else {
            panic!()
        };
        let mut rest = b[consumed..].to_vec();
        assert!(matches!(f.decode(&mut rest).unwrap(), Frame::Packet { .. }));
        assert_eq!(f.seq(), 2);
        let mut bad = vec![1, 0, 0, 7, b'x'];
        assert_eq!(
            f.decode(&mut bad),
            Err(ProtoError::OutOfOrder {
                expected: 2,
                got: 7
            })
        );
    }

    #[test]
    fn oversize_packets_are_refused_from_the_header() {
        // Only the header has arrived: the limit is enforced before buffering the body.
        let mut b = vec![0x00, 0x00, 0x10, 0];
        assert_eq!(
            Framer::new(1024).decode(&mut b),
            Err(ProtoError::PacketTooLarge {
                size: 0x100000,
                limit: 1024
            })
        );
        let mut out = Vec::new();
        let mut f = Framer::new(4);
        f.reset();
        assert_eq!(
            f.encode(b"12345", &mut out),
            Err(ProtoError::CommandTooLarge { size: 5, limit: 4 })
        );
        assert!(out.is_empty());
        let mut starts = vec![9];
        f.take_command_starts(&mut starts);
        assert!(
            starts.is_empty(),
            "a refused command leaves no start behind"
        );
    }

    #[test]
    fn trailing_bytes_after_packet_are_left_alone() {
        let mut b = frame(b"one");
        b.extend_from_slice(&[9, 9]);
        let Frame::Packet { payload, consumed } = Framer::new(10).decode(&mut b).unwrap() else {
            panic!()
        };
        assert_eq!(&b[payload], b"one");
        assert_eq!(&b[consumed..], &[9, 9]);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of payloads, framed back to back and cut into arbitrary
        /// read chunks, decodes to the same payloads.
        #[test]
        fn encode_then_decode_in_chunks(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..8),
                                        chunk in 1usize..97) {
            let mut enc = Framer::new(1 << 20);
            let mut wire = Vec::new();
            for p in &payloads {
                enc.encode(p, &mut wire).unwrap();
                enc.reset();
            }
            let mut dec = Framer::new(1 << 20);
            let mut buf: Vec<u8> = Vec::new();
            let mut got = Vec::new();
            let mut fed = 0;
            while got.len() < payloads.len() {
                match dec.decode(&mut buf).unwrap() {
                    Frame::Packet { payload, consumed } => {
                        got.push(buf[payload].to_vec());
                        buf.drain(..consumed);
                        dec.reset();
                    }
                    Frame::Incomplete { need } => {
                        prop_assert!(need > 0);
                        let end = (fed + chunk).min(wire.len());
                        prop_assert!(end > fed, "decoder wants more than was sent");
                        buf.extend_from_slice(&wire[fed..end]);
                        fed = end;
                    }
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert_eq!(fed, wire.len());
        }

        /// Arbitrary bytes never make the decoder panic.
        #[test]
        fn decode_never_panics(mut bytes in prop::collection::vec(any::<u8>(), 0..64), max in 0usize..100) {
            let _ = Framer::new(max).decode(&mut bytes);
        }
    }
}
