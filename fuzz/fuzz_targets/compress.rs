//! The compressed protocol.
//!
//! 1. Arbitrary bytes fed to `Compressor::decode` (whole, then in two
//!    pieces) never panic, and never produce more than the limit allows.
//! 2. Round trip: payloads framed, then compressed with command starts at
//!    arbitrary packet boundaries, decode back to exactly the framed bytes.
//!
//! Input: byte 0 picks the limit (×256 bytes) and where to cut (1); the rest
//! is the wire bytes for (1) and, split as `len, bytes[len], ...`, the
//! payloads for (2), a payload whose length byte is odd starting a command.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::compress::{Algorithm, Compressor};
use mysql_uring::proto::framer::Framer;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let limit = usize::from(first) * 256 + 64;

    // 1. Decode arbitrary bytes, whole and cut in two: no panic.
    let mut c = Compressor::new(Algorithm::Zlib(6), limit).unwrap();
    let mut input = BytesMut::from(rest);
    let mut out = BytesMut::new();
    let _ = c.decode(&mut input, &mut out);
    let cut = usize::from(first).min(rest.len());
    let mut c = Compressor::new(Algorithm::Zlib(6), limit).unwrap();
    let mut input = BytesMut::from(&rest[..cut]);
    let mut out = BytesMut::new();
    if c.decode(&mut input, &mut out).is_ok() {
        input.extend_from_slice(&rest[cut..]);
        let _ = c.decode(&mut input, &mut out);
    }

    // 2. Round trip.
    let mut framer = Framer::new(usize::MAX);
    let mut plain = Vec::new();
    let mut tail = rest;
    while let Some((&len, after)) = tail.split_first() {
        let (p, next) = after.split_at(usize::from(len).min(after.len()));
        if len % 2 == 1 {
            framer.reset();
        }
        framer.encode(p, &mut plain).unwrap();
        tail = next;
    }
    let mut starts = Vec::new();
    framer.take_command_starts(&mut starts);
    let mut tx = Compressor::new(Algorithm::Zlib(1), usize::MAX).unwrap();
    let mut wire = Vec::new();
    tx.encode(&plain, &starts, &mut wire).unwrap();
    let mut rx = Compressor::new(Algorithm::Zlib(1), usize::MAX).unwrap();
    let mut input = BytesMut::from(&wire[..]);
    let mut out = BytesMut::new();
    rx.decode(&mut input, &mut out).unwrap();
    assert!(input.is_empty(), "round trip left compressed bytes");
    assert_eq!(&out[..], &plain[..], "round trip changed the bytes");
});
