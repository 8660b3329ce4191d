//! The connection-phase state machine fed an arbitrary packet sequence: no panic.
//!
//! Input: byte 0 picks the options (bit 0: a database, bit 1: secure
//! transport, bit 2: allow cleartext, bit 3: empty password, bit 4: extra
//! capabilities); the rest is split into packets as `len, bytes[len], ...`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::consts::caps;
use mysql_uring::proto::handshake::{Handshake, HandshakeOpts, Step, TlsMode};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut hs = Handshake::new(HandshakeOpts {
        user: "fuzz".into(),
        password: if flags & 8 != 0 { Vec::new() } else { b"secret".to_vec() },
        database: (flags & 1 != 0).then(|| "db".into()),
        max_packet: 1 << 24,
        extra_capabilities: if flags & 16 != 0 {
            caps::MULTI_STATEMENTS | caps::FOUND_ROWS | caps::SESSION_TRACK
        } else {
            0
        },
        secure_transport: flags & 2 != 0,
        allow_cleartext_password: flags & 4 != 0,
        attributes: vec![("program_name".into(), "fuzz".into())],
        tls: match flags >> 5 & 3 {
            0 => TlsMode::Disabled,
            1 => TlsMode::Preferred,
            _ => TlsMode::Required,
        },
        server_public_key: None,
        allow_public_key_retrieval: flags & 128 != 0,
        compression: None,
    });
    let mut out = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, next) = tail.split_at(usize::from(len).min(tail.len()));
        rest = next;
        match hs.on_packet(packet, &mut out) {
            Ok(Step::Done) | Err(_) => break,
            Ok(Step::Send | Step::Read) => {}
            // Pretend the TLS handshake succeeded and go on.
            Ok(Step::StartTls) => {
                if hs.tls_established(&mut out).is_err() {
                    break;
                }
            }
        }
        let _ = (hs.hello(), hs.capabilities(), hs.plugin());
    }
});
