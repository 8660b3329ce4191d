//! The result-set state machine fed an arbitrary packet sequence: no panic.
//!
//! Input: byte 0 picks the capabilities (bit 0: DEPRECATE_EOF, bit 1:
//! SESSION_TRACK, bit 2: MariaDB metadata caching, bit 3: binary rows); the
//! rest is split into packets as `len, bytes[len], ...`.
//! Rows are also located with `text_row_fields`, as the driver does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::consts::caps;
use mysql_uring::proto::result::{ResultEvent, ResultMachine};
use mysql_uring::proto::row::text_row_fields;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut c = 0;
    if flags & 1 != 0 {
        c |= caps::DEPRECATE_EOF;
    }
    if flags & 2 != 0 {
        c |= caps::SESSION_TRACK;
    }
    let mut m = if flags & 8 != 0 {
        ResultMachine::binary(c)
    } else {
        ResultMachine::new(c)
    }
    .with_cache_metadata(flags & 4 != 0);
    let mut columns = 0usize;
    let mut fields = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, next) = tail.split_at(usize::from(len).min(tail.len()));
        rest = next;
        match m.on_packet(packet) {
            Ok(ResultEvent::ColumnCount(n)) => columns = n,
            Ok(ResultEvent::Row) => {
                fields.clear();
                let _ = text_row_fields(packet, columns, &mut fields);
            }
            Ok(_) => {}
            Err(_) => break,
        }
        let _ = (m.in_rows(), m.in_columns(), m.at_result_start());
        if m.is_done() {
            break;
        }
    }
});
