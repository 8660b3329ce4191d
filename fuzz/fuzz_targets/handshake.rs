//! The connection-phase state machine fed arbitrary packets: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::handshake::{Handshake, HandshakeOpts, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut hs = Handshake::new(HandshakeOpts {
        user: "fuzz".into(),
        password: b"pw".to_vec(),
        database: (flags & 1 == 1).then(|| "db".into()),
        max_packet: 1 << 24,
        extra_capabilities: 0,
        secure_transport: flags & 2 == 2,
        allow_cleartext_password: flags & 4 == 4,
        attributes: vec![("k".into(), "v".into())],
    });
    let mut out = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (packet, next) = tail.split_at(len);
        rest = next;
        match hs.on_packet(packet, &mut out) {
            Ok(Step::Done) | Err(_) => break,
            Ok(_) => {}
        }
    }
});
