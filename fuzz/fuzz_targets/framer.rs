//! Packet framing.
//!
//! 1. Arbitrary bytes fed to `Framer::decode` again and again (one packet
//!    after another, until `Incomplete` or an error) never panic.
//! 2. Round trip: payloads framed by `Framer::encode` decode to the same
//!    payloads, in order, using up exactly the bytes that were written.
//!
//! Input: byte 0 picks the max packet size (low 7 bits, ×128: 0..=16256 bytes)
//! and whether the decoder is reset between packets (high bit); the rest is
//! the wire bytes for (1) and, split as `len, bytes[len], len, ...`, the
//! payloads for (2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::framer::{Frame, Framer};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(first & 0x7F) * 128;
    let reset = first & 0x80 != 0;

    // 1. Decode arbitrary bytes: no panic.
    let mut buf = rest.to_vec();
    let mut dec = Framer::new(max);
    let mut at = 0usize;
    loop {
        let Some(window) = buf.get_mut(at..) else {
            break;
        };
        match dec.decode(window) {
            Ok(Frame::Packet { payload, consumed }) => {
                let _ = window.get(payload);
                if consumed == 0 {
                    break;
                }
                at = at.saturating_add(consumed);
                if reset {
                    dec.reset();
                }
            }
            Ok(Frame::Incomplete { .. }) | Err(_) => break,
        }
    }

    // 2. Round trip: encode the payloads back to back, decode them again.
    let mut payloads: Vec<&[u8]> = Vec::new();
    let mut tail = rest;
    while let Some((&len, after)) = tail.split_first() {
        let (p, next) = after.split_at(usize::from(len).min(after.len()));
        payloads.push(p);
        tail = next;
    }
    let mut enc = Framer::new(max);
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for p in payloads {
        if enc.encode(p, &mut wire).is_err() {
            break; // over the limit: stop here, the rest is not on the wire
        }
        sent.push(p);
        if reset {
            enc.reset();
        }
    }
    let mut dec = Framer::new(max);
    let mut at = 0usize;
    for p in sent {
        match dec.decode(&mut wire[at..]) {
            Ok(Frame::Packet { payload, consumed }) => {
                assert_eq!(&wire[at..][payload], p, "round trip changed the payload");
                at += consumed;
            }
            other => panic!("round trip: encoded payload of {} bytes decoded as {other:?}", p.len()),
        }
        if reset {
            dec.reset();
        }
    }
    assert_eq!(at, wire.len(), "round trip left bytes undecoded");
});
