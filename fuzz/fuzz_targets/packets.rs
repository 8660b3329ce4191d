//! Every single-packet decoder: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::consts::caps;
use mysql_uring::proto::{column, handshake, packets, row};

fuzz_target!(|data: &[u8]| {
    let _ = packets::parse_ok(data, 0);
    let _ = packets::parse_ok(data, caps::SESSION_TRACK);
    let _ = packets::parse_err(data);
    let _ = packets::parse_eof(data);
    let _ = packets::is_eof(data, 0);
    let _ = packets::is_eof(data, caps::DEPRECATE_EOF);
    if let Ok(c) = column::parse_column_def(data) {
        let _ = column::ColumnDef::slice(data, &c.name);
    }
    let _ = handshake::parse_hello(data);
    if let Some((&n, rest)) = data.split_first() {
        let mut fields = Vec::new();
        if row::text_row_fields(rest, usize::from(n), &mut fields).is_ok() {
            for f in fields {
                let _ = f.get(rest);
            }
        }
    }
});
