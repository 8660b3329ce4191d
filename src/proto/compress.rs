//! The compressed protocol (`CLIENT_COMPRESS`, `CLIENT_ZSTD_COMPRESSION_ALGORITHM`),
//! sans IO: plain packet bytes in, compressed packets out, and back.
//!
//! Once a connection has authenticated with compression negotiated, every
//! byte each side sends travels inside *compressed packets*: a 7-byte header
//! (3 bytes: payload length; 1 byte: sequence id; 3 bytes: length before
//! compression, 0 when the payload was sent as is) and the payload, which is
//! one zlib (or zstd) stream holding up to 16 MiB - 1 bytes of ordinary
//! packets, headers included. Payloads under [`MIN_COMPRESS`] bytes are sent
//! as is, like the reference clients do.
//!
//! Sequence ids: the compressed sequence restarts at 0 with every command
//! (an inner packet with sequence id 0 starts one) and otherwise continues
//! from the last compressed packet either side sent. Each command therefore
//! goes into compressed packets of its own, so a pipeline of several
//! commands stays readable by the server command by command.
//!
//! The codecs are maintained crates: `flate2` (zlib) and, with the `zstd`
//! feature, `zstd` (libzstd).

use bytes::{Buf, BytesMut};

use super::consts::MAX_PAYLOAD;
use super::error::{ProtoError, ProtoResult};

/// Size of a compressed packet's header.
pub const HEADER_LEN: usize = 7;
/// Payloads shorter than this are sent uncompressed (as libmysqlclient does).
pub const MIN_COMPRESS: usize = 50;

/// A compression algorithm and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// zlib (`CLIENT_COMPRESS`): MariaDB and MySQL. Level 0-9 (default 6).
    Zlib(u8),
    /// zstd (`CLIENT_ZSTD_COMPRESSION_ALGORITHM`): MySQL 8.0.18+. Level 1-22
    /// (default 3).
    Zstd(u8),
}

enum Codec {
    Zlib {
        deflate: flate2::Compress,
        inflate: flate2::Decompress,
    },
    #[cfg(feature = "zstd")]
    Zstd {
        compress: zstd::bulk::Compressor<'static>,
        decompress: zstd::bulk::Decompressor<'static>,
    },
}

/// Wraps outgoing packets into compressed packets and unwraps incoming ones.
pub struct Compressor {
    codec: Codec,
    /// The next compressed sequence id to send (continues from the last one
    /// received).
    seq: u8,
    /// Largest uncompressed payload accepted from the peer.
    max_packet: usize,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let alg = match &self.codec {
            Codec::Zlib { .. } => "zlib",
            #[cfg(feature = "zstd")]
            Codec::Zstd { .. } => "zstd",
        };
        f.debug_struct("Compressor")
            .field("algorithm", &alg)
            .field("seq", &self.seq)
            .finish()
    }
}

fn invalid(what: &'static str, detail: impl std::fmt::Display) -> ProtoError {
    ProtoError::Invalid {
        what,
        detail: detail.to_string(),
    }
}

fn u24(b: &[u8]) -> usize {
    usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16
}

fn put_u24(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
}

impl Compressor {
    /// A compressor for `alg`; payloads larger than `max_packet` are refused
    /// on the way in. Fails for zstd when the crate was built without the
    /// `zstd` feature.
    pub fn new(alg: Algorithm, max_packet: usize) -> ProtoResult<Compressor> {
        let codec = match alg {
            Algorithm::Zlib(level) => Codec::Zlib {
                deflate: flate2::Compress::new(flate2::Compression::new(level.min(9).into()), true),
                inflate: flate2::Decompress::new(true),
            },
            #[cfg(feature = "zstd")]
            Algorithm::Zstd(level) => Codec::Zstd {
                compress: zstd::bulk::Compressor::new(i32::from(level.clamp(1, 22)))
                    .map_err(|e| invalid("zstd compressor", e))?,
                decompress: zstd::bulk::Decompressor::new()
                    .map_err(|e| invalid("zstd decompressor", e))?,
            },
            #[cfg(not(feature = "zstd"))]
            Algorithm::Zstd(_) => {
                return Err(ProtoError::Unsupported(
                    "zstd compression: this build of mysql-uring lacks the `zstd` feature".into(),
                ));
            }
        };
        Ok(Compressor {
            codec,
            seq: 0,
            max_packet,
        })
    }

    /// Appends `plain` (whole ordinary packets, as the framer wrote them) to
    /// `out` as compressed packets. `command_starts` are the offsets in
    /// `plain` where commands begin (from [`Framer::take_command_starts`]):
    /// each command gets compressed packets of its own, its sequence
    /// restarting at 0; bytes before the first start continue the current
    /// exchange.
    ///
    /// [`Framer::take_command_starts`]: crate::proto::framer::Framer::take_command_starts
    pub fn encode(
        &mut self,
        plain: &[u8],
        command_starts: &[usize],
        out: &mut Vec<u8>,
    ) -> ProtoResult<()> {
        let mut from = 0;
        for &at in command_starts.iter().filter(|&&at| at < plain.len()) {
            if at > from {
                self.encode_group(&plain[from..at], out)?;
            }
            self.seq = 0;
            from = at;
        }
        self.encode_group(&plain[from..], out)
    }

    fn encode_group(&mut self, group: &[u8], out: &mut Vec<u8>) -> ProtoResult<()> {
        if group.is_empty() {
            return Ok(());
        }
        for chunk in group.chunks(MAX_PAYLOAD) {
            let at = out.len();
            out.extend_from_slice(&[0; HEADER_LEN]);
            let ulen = if chunk.len() < MIN_COMPRESS {
                out.extend_from_slice(chunk);
                0
            } else {
                self.compress_into(chunk, out)?;
                chunk.len()
            };
            let clen = out.len() - at - HEADER_LEN;
            if clen > MAX_PAYLOAD {
                // Incompressible: send it as is (the length fits, it is a chunk).
                out.truncate(at + HEADER_LEN);
                out.extend_from_slice(chunk);
                self.write_header(out, at, chunk.len(), 0);
            } else {
                self.write_header(out, at, clen, ulen);
            }
        }
        Ok(())
    }

    fn write_header(&mut self, out: &mut [u8], at: usize, clen: usize, ulen: usize) {
        let mut h = Vec::with_capacity(HEADER_LEN);
        put_u24(&mut h, clen);
        h.push(self.seq);
        put_u24(&mut h, ulen);
        out[at..at + HEADER_LEN].copy_from_slice(&h);
        self.seq = self.seq.wrapping_add(1);
    }

    fn compress_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> ProtoResult<()> {
        match &mut self.codec {
            Codec::Zlib { deflate, .. } => {
                deflate.reset();
                out.reserve(chunk.len() / 2 + 64);
                loop {
                    let before_in = deflate.total_in() as usize;
                    let status = deflate
                        .compress_vec(&chunk[before_in..], out, flate2::FlushCompress::Finish)
                        .map_err(|e| invalid("zlib stream", e))?;
                    match status {
                        flate2::Status::StreamEnd => return Ok(()),
                        _ => out.reserve(chunk.len().max(4096)),
                    }
                }
            }
            #[cfg(feature = "zstd")]
            Codec::Zstd { compress, .. } => {
                let bound = zstd::zstd_safe::compress_bound(chunk.len());
                let at = out.len();
                out.resize(at + bound, 0);
                let n = compress
                    .compress_to_buffer(chunk, &mut out[at..])
                    .map_err(|e| invalid("zstd stream", e))?;
                out.truncate(at + n);
                Ok(())
            }
        }
    }

    /// Takes every whole compressed packet from the front of `input` and
    /// appends what it carries to `out`. Bytes of an incomplete packet stay
    /// in `input`. Returns how many bytes were appended.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> ProtoResult<usize> {
        let mut added = 0;
        while input.len() >= HEADER_LEN {
            let clen = u24(&input[..3]);
            let seq = input[3];
            let ulen = u24(&input[4..7]);
            if input.len() < HEADER_LEN + clen {
                break;
            }
            if ulen > self.max_packet || (ulen == 0 && clen > self.max_packet) {
                return Err(ProtoError::PacketTooLarge {
                    size: ulen.max(clen),
                    limit: self.max_packet,
                });
            }
            let payload = &input[HEADER_LEN..HEADER_LEN + clen];
            if ulen == 0 {
                out.extend_from_slice(payload);
                added += clen;
            } else {
                let at = out.len();
                out.resize(at + ulen, 0);
                let got = self.decompress(payload, &mut out[at..])?;
                if got != ulen {
                    out.truncate(at);
                    return Err(invalid(
                        "compressed packet",
                        format!("it said {ulen} bytes uncompressed, but holds {got}"),
                    ));
                }
                added += ulen;
            }
            self.seq = seq.wrapping_add(1);
            input.advance(HEADER_LEN + clen);
        }
        Ok(added)
    }

    fn decompress(&mut self, payload: &[u8], dst: &mut [u8]) -> ProtoResult<usize> {
        match &mut self.codec {
            Codec::Zlib { inflate, .. } => {
                inflate.reset(true);
                let status = inflate
                    .decompress(payload, dst, flate2::FlushDecompress::Finish)
                    .map_err(|e| invalid("zlib stream", e))?;
                if status != flate2::Status::StreamEnd {
                    return Err(invalid(
                        "zlib stream",
                        "it does not end where the compressed packet says",
                    ));
                }
                Ok(inflate.total_out() as usize)
            }
            #[cfg(feature = "zstd")]
            Codec::Zstd { decompress, .. } => decompress
                .decompress_to_buffer(payload, dst)
                .map_err(|e| invalid("zstd stream", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::framer::Framer;

    fn packets(framer: &mut Framer, payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            framer.encode(p, &mut out).unwrap();
        }
        out
    }

    fn round_trip(alg: Algorithm, plain: &[u8]) {
        let mut tx = Compressor::new(alg, 1 << 30).unwrap();
        let mut rx = Compressor::new(alg, 1 << 30).unwrap();
        let mut wire = Vec::new();
        tx.encode(plain, &[0], &mut wire).unwrap();
        // Fed a few bytes at a time: incomplete packets wait.
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        for piece in wire.chunks(1000) {
            input.extend_from_slice(piece);
            rx.decode(&mut input, &mut out).unwrap();
        }
        assert!(input.is_empty());
        assert!(out[..] == plain[..], "{alg:?}: {} bytes", plain.len());
    }

    #[test]
    fn small_and_large_payloads_round_trip() {
        let mut f = Framer::new(usize::MAX);
        f.reset();
        let small = packets(&mut f, &[b"\x03SELECT 1"]);
        round_trip(Algorithm::Zlib(6), &small);
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        f.reset();
        let big = packets(&mut f, &[&text]);
        round_trip(Algorithm::Zlib(6), &big);
        // Across the 16 MiB boundary: several compressed packets, and the
        // inner packet itself split in two.
        let huge = vec![b'x'; MAX_PAYLOAD + 12345];
        f.reset();
        let huge = packets(&mut f, &[&huge]);
        round_trip(Algorithm::Zlib(1), &huge);
    }

    #[test]
    fn short_payloads_go_uncompressed_and_sequence_ids_follow_the_protocol() {
        let mut f = Framer::new(usize::MAX);
        let mut plain = Vec::new();
        f.reset();
        f.encode(b"\x0e", &mut plain).unwrap(); // COM_PING: a command
        f.reset();
        f.encode(&[b'a'; 100], &mut plain).unwrap(); // a second command
        let mut starts = Vec::new();
        f.take_command_starts(&mut starts);
        assert_eq!(starts, vec![0, 5]);
        let mut c = Compressor::new(Algorithm::Zlib(6), 1 << 20).unwrap();
        let mut wire = Vec::new();
        c.encode(&plain, &starts, &mut wire).unwrap();
        // First command: 5 bytes, as is, seq 0.
        assert_eq!(&wire[..7], &[5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&wire[7..12], &plain[..5]);
        // Second command: compressed, its own packet, seq 0 again.
        let second = &wire[12..];
        assert_eq!(second[3], 0);
        assert_eq!(u24(&second[4..7]), 104);
        // A reply with seq 1, then a continuation of the same command is seq 2.
        let mut input = BytesMut::from(&[3u8, 0, 0, 1, 0, 0, 0, 1, 2, 3][..]);
        let mut out = BytesMut::new();
        c.decode(&mut input, &mut out).unwrap();
        let mut cont = Vec::new();
        let mut f2 = Framer::new(usize::MAX);
        f2.expect_reply();
        f2.encode(b"more", &mut cont).unwrap(); // not a new command
        f2.take_command_starts(&mut starts);
        assert!(starts.is_empty());
        let mut wire = Vec::new();
        c.encode(&cont, &starts, &mut wire).unwrap();
        assert_eq!(wire[3], 2);
    }

    #[test]
    fn malformed_compressed_packets_are_errors_not_panics() {
        let mut c = Compressor::new(Algorithm::Zlib(6), 1 << 20).unwrap();
        // Claims 100 uncompressed bytes, holds garbage.
        let mut input = BytesMut::from(&[4u8, 0, 0, 0, 100, 0, 0, 1, 2, 3, 4][..]);
        assert!(c.decode(&mut input, &mut BytesMut::new()).is_err());
        // Claims more than the limit.
        let mut input = BytesMut::from(&[4u8, 0, 0, 0, 0xff, 0xff, 0x7f, 1, 2, 3, 4][..]);
        assert!(matches!(
            c.decode(&mut input, &mut BytesMut::new()),
            Err(ProtoError::PacketTooLarge { .. })
        ));
        // A valid zlib stream whose length does not match the header.
        let mut z = Vec::new();
        Compressor::new(Algorithm::Zlib(6), 1 << 20)
            .unwrap()
            .compress_into(&[7u8; 80], &mut z)
            .unwrap();
        let mut wrong = vec![z.len() as u8, 0, 0, 0, 81, 0, 0];
        wrong.extend_from_slice(&z);
        let mut input = BytesMut::from(&wrong[..]);
        assert!(c.decode(&mut input, &mut BytesMut::new()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_packets_round_trip(payloads in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000), 1..6)) {
            let mut f = Framer::new(usize::MAX);
            f.reset();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let plain = packets(&mut f, &refs);
            round_trip(Algorithm::Zlib(6), &plain);
        }

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(
            proptest::prelude::any::<u8>(), 0..400)) {
            let mut c = Compressor::new(Algorithm::Zlib(6), 1 << 16).unwrap();
            let mut input = BytesMut::from(&bytes[..]);
            let _ = c.decode(&mut input, &mut BytesMut::new());
        }
    }
}
