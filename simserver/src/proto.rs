//! Protocol constants and encoders of the server's packets: OK, ERR, EOF,
//! column definitions and result sets (text and binary rows).

use crate::wire::{put_lenenc, put_lenenc_bytes, put_packet};

/// Capability flags (`CLIENT_*`).
pub mod caps {
    /// `CLIENT_LONG_PASSWORD`; MariaDB names it `CLIENT_MYSQL` and clears it.
    pub const CLIENT_MYSQL: u32 = 1;
    /// `CLIENT_FOUND_ROWS`.
    pub const FOUND_ROWS: u32 = 1 << 1;
    /// `CLIENT_LONG_FLAG`.
    pub const LONG_FLAG: u32 = 1 << 2;
    /// `CLIENT_CONNECT_WITH_DB`.
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    /// `CLIENT_LOCAL_FILES`.
    pub const LOCAL_FILES: u32 = 1 << 7;
    /// `CLIENT_PROTOCOL_41`.
    pub const PROTOCOL_41: u32 = 1 << 9;
    /// `CLIENT_SSL` (never offered).
    pub const SSL: u32 = 1 << 11;
    /// `CLIENT_TRANSACTIONS`.
    pub const TRANSACTIONS: u32 = 1 << 13;
    /// `CLIENT_SECURE_CONNECTION`.
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    /// `CLIENT_MULTI_RESULTS`.
    pub const MULTI_RESULTS: u32 = 1 << 17;
    /// `CLIENT_PS_MULTI_RESULTS`.
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    /// `CLIENT_PLUGIN_AUTH`.
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    /// `CLIENT_CONNECT_ATTRS`.
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    /// `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`.
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    /// `CLIENT_DEPRECATE_EOF`.
    pub const DEPRECATE_EOF: u32 = 1 << 24;
    /// What this server offers (no SSL, no COMPRESS, no SESSION_TRACK, and
    /// `CLIENT_MYSQL` clear as on MariaDB).
    pub const SERVER: u32 = FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | LOCAL_FILES
        | PROTOCOL_41
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_CLIENT_DATA
        | DEPRECATE_EOF;
    /// MariaDB extended capability `MARIADB_CLIENT_CACHE_METADATA` (1 << 36),
    /// as a bit of the upper 32-bit word.
    pub const EXT_CACHE_METADATA: u32 = 1 << 4;
}

/// Status flags (`SERVER_STATUS_*`).
pub mod status {
    /// A transaction is open.
    pub const IN_TRANS: u16 = 1;
    /// Autocommit is on (always, here).
    pub const AUTOCOMMIT: u16 = 2;
}

/// Column types used by this server (`MYSQL_TYPE_*`).
pub mod ty {
    /// TINYINT.
    pub const TINY: u8 = 0x01;
    /// SMALLINT.
    pub const SHORT: u8 = 0x02;
    /// INT.
    pub const LONG: u8 = 0x03;
    /// FLOAT.
    pub const FLOAT: u8 = 0x04;
    /// DOUBLE.
    pub const DOUBLE: u8 = 0x05;
    /// NULL.
    pub const NULL: u8 = 0x06;
    /// BIGINT.
    pub const LONGLONG: u8 = 0x08;
    /// MEDIUMINT.
    pub const INT24: u8 = 0x09;
    /// YEAR.
    pub const YEAR: u8 = 0x0D;
    /// BLOB.
    pub const BLOB: u8 = 0xFC;
    /// VAR_STRING.
    pub const VAR_STRING: u8 = 0xFD;
}

/// Column flags.
pub mod flags {
    /// NOT NULL.
    pub const NOT_NULL: u16 = 1;
    /// PRIMARY KEY.
    pub const PRI_KEY: u16 = 2;
    /// A BLOB column.
    pub const BLOB: u16 = 16;
    /// Binary collation.
    pub const BINARY: u16 = 128;
    /// Part of a key.
    pub const PART_KEY: u16 = 0x4000;
}

/// The binary collation id.
pub const BINARY_CHARSET: u16 = 63;

/// One cell of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (LONGLONG columns).
    Int(i64),
    /// A double (DOUBLE columns).
    Double(f64),
    /// Bytes (BLOB columns).
    Bytes(Vec<u8>),
}

/// A column definition, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Schema name.
    pub schema: &'static str,
    /// Table alias and original name.
    pub table: &'static str,
    /// Column alias.
    pub name: String,
    /// Original column name.
    pub org_name: String,
    /// Collation id.
    pub charset: u16,
    /// Display length.
    pub length: u32,
    /// Type byte.
    pub ty: u8,
    /// Flags.
    pub flags: u16,
    /// Decimals.
    pub decimals: u8,
}

impl Column {
    /// An expression column (no table) of type LONGLONG or DOUBLE.
    pub fn expr(name: &str, ty: u8, not_null: bool) -> Column {
        let double = ty == ty::DOUBLE;
        Column {
            schema: "",
            table: "",
            name: name.to_string(),
            org_name: String::new(),
            charset: BINARY_CHARSET,
            length: if double { 23 } else { 21 },
            ty,
            flags: flags::BINARY | if not_null { flags::NOT_NULL } else { 0 },
            decimals: if double { 31 } else { 0 },
        }
    }

    /// A column of table `t` (`id` or `v`).
    pub fn table_col(name: &str) -> Column {
        let id = name == "id";
        Column {
            schema: "test",
            table: "t",
            name: name.to_string(),
            org_name: name.to_string(),
            charset: BINARY_CHARSET,
            length: if id { 20 } else { 65535 },
            ty: if id { ty::LONGLONG } else { ty::BLOB },
            flags: if id {
                flags::NOT_NULL | flags::PRI_KEY | flags::PART_KEY
            } else {
                flags::BLOB | flags::BINARY
            },
            decimals: 0,
        }
    }

    /// The definition of a `?` parameter in a prepare response.
    pub fn param() -> Column {
        Column {
            schema: "",
            table: "",
            name: "?".into(),
            org_name: String::new(),
            charset: BINARY_CHARSET,
            length: 0,
            ty: ty::VAR_STRING,
            flags: flags::BINARY,
            decimals: 0,
        }
    }

    /// The column definition packet payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(48 + self.name.len() * 2);
        for s in [
            "def",
            self.schema,
            self.table,
            self.table,
            &self.name,
            &self.org_name,
        ] {
            put_lenenc_bytes(&mut p, s.as_bytes());
        }
        p.push(0x0C);
        p.extend_from_slice(&self.charset.to_le_bytes());
        p.extend_from_slice(&self.length.to_le_bytes());
        p.push(self.ty);
        p.extend_from_slice(&self.flags.to_le_bytes());
        p.push(self.decimals);
        p.extend_from_slice(&[0, 0]);
        p
    }
}

/// An OK packet payload (header 0x00, or 0xFE as an end of rows).
pub fn ok_payload(header: u8, affected: u64, status: u16) -> Vec<u8> {
    let mut p = vec![header];
    put_lenenc(&mut p, affected);
    put_lenenc(&mut p, 0);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p
}

/// A classic EOF packet payload.
pub fn eof_payload(status: u16) -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p
}

/// A server error: code, SQLSTATE, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Error code.
    pub code: u16,
    /// SQLSTATE.
    pub state: &'static str,
    /// Message.
    pub msg: String,
}

impl SqlError {
    /// A new error.
    pub fn new(code: u16, state: &'static str, msg: impl Into<String>) -> SqlError {
        SqlError {
            code,
            state,
            msg: msg.into(),
        }
    }

    /// The ERR packet payload.
    pub fn payload(&self) -> Vec<u8> {
        let mut p = vec![0xFF];
        p.extend_from_slice(&self.code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(self.state.as_bytes());
        p.extend_from_slice(self.msg.as_bytes());
        p
    }
}

/// How to write a result set.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// `CLIENT_DEPRECATE_EOF` negotiated.
    pub deprecate_eof: bool,
    /// `MARIADB_CLIENT_CACHE_METADATA` negotiated: the column count carries a
    /// metadata-follows byte.
    pub cache_metadata: bool,
    /// Whether the column definitions are sent (always for text results).
    pub send_metadata: bool,
    /// Binary rows (COM_STMT_EXECUTE) instead of text rows.
    pub binary: bool,
    /// Status flags of the closing packet.
    pub status: u16,
}

/// Formats a double as the server prints it in text rows.
pub fn format_double(d: f64) -> String {
    if d.is_finite() && d != 0.0 && (d.abs() >= 1e15 || d.abs() < 1e-4) {
        format!("{d:e}")
    } else {
        format!("{d}")
    }
}

fn text_row(row: &[Value]) -> Vec<u8> {
    let mut p = Vec::new();
    for v in row {
        match v {
            Value::Null => p.push(0xFB),
            Value::Int(i) => put_lenenc_bytes(&mut p, i.to_string().as_bytes()),
            Value::Double(d) => put_lenenc_bytes(&mut p, format_double(*d).as_bytes()),
            Value::Bytes(b) => put_lenenc_bytes(&mut p, b),
        }
    }
    p
}

fn binary_row(row: &[Value]) -> Vec<u8> {
    let mut p = vec![0x00];
    let bitmap = p.len();
    p.resize(bitmap + (row.len() + 7 + 2) / 8, 0);
    for (i, v) in row.iter().enumerate() {
        match v {
            Value::Null => p[bitmap + (i + 2) / 8] |= 1 << ((i + 2) % 8),
            Value::Int(x) => p.extend_from_slice(&x.to_le_bytes()),
            Value::Double(d) => p.extend_from_slice(&d.to_le_bytes()),
            Value::Bytes(b) => put_lenenc_bytes(&mut p, b),
        }
    }
    p
}

/// Writes a result set's metadata, starting at `*seq`: the column count
/// (with the metadata-follows byte under the metadata cache), the column
/// definitions (unless the cache leaves them out), and the EOF after them
/// without `DEPRECATE_EOF`.
pub fn write_metadata(out: &mut Vec<u8>, seq: &mut u8, cols: &[Column], shape: Shape) {
    let mut count = Vec::new();
    put_lenenc(&mut count, cols.len() as u64);
    if shape.cache_metadata {
        count.push(u8::from(shape.send_metadata));
    }
    put_packet(out, seq, &count);
    if shape.send_metadata || !shape.cache_metadata {
        for c in cols {
            put_packet(out, seq, &c.encode());
        }
    }
    if !shape.deprecate_eof {
        put_packet(out, seq, &eof_payload(shape.status));
    }
}

/// Writes a result set's rows and its end (OK with header 0xFE under
/// `DEPRECATE_EOF`, else EOF), starting at `*seq`.
pub fn write_rows(out: &mut Vec<u8>, seq: &mut u8, rows: &[Vec<Value>], shape: Shape) {
    for row in rows {
        let p = if shape.binary {
            binary_row(row)
        } else {
            text_row(row)
        };
        put_packet(out, seq, &p);
    }
    if shape.deprecate_eof {
        put_packet(out, seq, &ok_payload(0xFE, 0, shape.status));
    } else {
        put_packet(out, seq, &eof_payload(shape.status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_definition_layout() {
        let c = Column::expr("1", ty::LONGLONG, true).encode();
        assert_eq!(&c[..4], b"\x03def");
        // catalog, 4 empty names... name "1", empty org_name, 0x0C block.
        assert_eq!(&c[4..12], &[0, 0, 0, 1, b'1', 0, 0x0C, 63]);
        assert_eq!(c.len(), 11 + 12);
        assert_eq!(c[17], ty::LONGLONG);
    }

    #[test]
    fn binary_row_null_bitmap_offset_two() {
        let r = binary_row(&[Value::Null, Value::Int(1)]);
        assert_eq!(r[..2], [0, 0b100]);
        assert_eq!(r.len(), 2 + 8);
        let r = binary_row(&(0..7).map(|_| Value::Null).collect::<Vec<_>>());
        assert_eq!(r, [0, 0xFC, 0x01]);
    }

    #[test]
    fn doubles_print_like_the_server() {
        assert_eq!(format_double(3.5), "3.5");
        assert_eq!(format_double(4.0), "4");
        assert_eq!(format_double(1e300), "1e300");
        assert_eq!(format_double(-0.5), "-0.5");
    }
}
