//! Framing: decoding arbitrary bytes never panics, and encode→decode round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::framer::{Frame, Framer};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // Decode: take packets until incomplete or an error.
    let max = usize::from(first) * 64;
    let mut buf = rest.to_vec();
    let mut f = Framer::new(max);
    let mut at = 0;
    while at < buf.len() {
        match f.decode(&mut buf[at..]) {
            Ok(Frame::Packet { payload, consumed }) => {
                assert!(payload.end <= consumed);
                at += consumed;
            }
            Ok(Frame::Incomplete { need }) => {
                assert!(need > 0);
                break;
            }
            Err(_) => break,
        }
    }
    // Round trip of the payload.
    let mut enc = Framer::new(usize::MAX);
    let mut wire = Vec::new();
    enc.encode(rest, &mut wire).expect("no limit");
    let mut dec = Framer::new(usize::MAX);
    match dec.decode(&mut wire) {
        Ok(Frame::Packet { payload, consumed }) => {
            assert_eq!(consumed, wire.len());
            assert_eq!(&wire[payload], rest);
        }
        other => panic!("round trip failed: {other:?}"),
    }
});
