//! Every single-packet decoder fed the same arbitrary payload: no panic.
//!
//! For `text_row_fields` the first byte is the column count and the rest the row.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_uring::proto::column::{self, ColumnDef};
use mysql_uring::proto::consts::caps;
use mysql_uring::proto::{handshake, packets, row};

fuzz_target!(|data: &[u8]| {
    let _ = packets::parse_ok(data, 0);
    let _ = packets::parse_ok(data, caps::SESSION_TRACK);
    let _ = packets::parse_ok(data, caps::SESSION_TRACK | caps::DEPRECATE_EOF);
    let _ = packets::parse_err(data);
    let _ = packets::parse_eof(data);
    let _ = packets::is_eof(data, 0);
    let _ = packets::is_eof(data, caps::DEPRECATE_EOF);
    if let Ok(c) = column::parse_column_def(data) {
        for r in [&c.schema, &c.table, &c.org_table, &c.name, &c.org_name] {
            let _ = ColumnDef::slice(data, r);
        }
        let _ = c.column_type();
    }
    if let Ok(h) = handshake::parse_hello(data) {
        let _ = (h.is_mariadb(), h.version());
    }
    if let Some((&n, rest)) = data.split_first() {
        let mut fields = Vec::new();
        let _ = row::text_row_fields(rest, usize::from(n), &mut fields);
        for f in fields {
            let _ = f.get(rest);
        }
    }
});
