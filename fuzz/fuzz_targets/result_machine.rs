//! The result-set state machine fed arbitrary packet sequences: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::consts::caps;
use mysql_uring::proto::result::ResultMachine;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let c = if flags & 1 == 1 {
        caps::DEPRECATE_EOF
    } else {
        0
    } | if flags & 2 == 2 {
        caps::SESSION_TRACK
    } else {
        0
    };
    let mut m = ResultMachine::new(c);
    // Each packet: one length byte, then that many bytes.
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (packet, next) = tail.split_at(len);
        rest = next;
        if m.on_packet(packet).is_err() || m.is_done() {
            break;
        }
    }
});
