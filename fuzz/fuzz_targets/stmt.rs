//! The prepared-statement decoders fed arbitrary bytes: no panic.
//!
//! Input: byte 0 picks the capabilities (bit 0: DEPRECATE_EOF) and, in its
//! upper bits, how many column types follow (0..=15); those type bytes, then
//! packets as `len, bytes[len], ...`. Each packet goes to the prepare machine,
//! the prepare-OK parser, the binary row decoder (with those column types)
//! and the date/time decoders and parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::binary::binary_row_fields;
use mysql_uring::proto::consts::caps;
use mysql_uring::proto::stmt::{PrepareMachine, parse_prepare_ok};
use mysql_uring::proto::temporal::{Date, DateTime, Time, decode_datetime, decode_time};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let caps = if flags & 1 != 0 { caps::DEPRECATE_EOF } else { 0 };
    let ntypes = usize::from(flags >> 4).min(rest.len());
    let (types, mut rest) = rest.split_at(ntypes);
    let mut m = PrepareMachine::new(caps);
    let mut prepare_over = false;
    let mut fields = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, next) = tail.split_at(usize::from(len).min(tail.len()));
        rest = next;
        if !prepare_over {
            prepare_over = m.on_packet(packet).is_err() || m.is_done();
        }
        let _ = parse_prepare_ok(packet);
        fields.clear();
        if binary_row_fields(packet, types.iter().copied(), &mut fields).is_ok() {
            for f in &fields {
                let _ = f.get(packet);
            }
        }
        let _ = decode_datetime(packet);
        let _ = decode_time(packet);
        let _ = (Date::parse(packet), DateTime::parse(packet), Time::parse(packet));
    }
});
