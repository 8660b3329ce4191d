//! Result-set column metadata.

use std::fmt;

use bytes::Bytes;

use crate::proto::column::ColumnDef;
pub use crate::proto::consts::ColumnType;
use crate::proto::consts::{BINARY_COLLATION, column_flags};

/// One column of a result set: name, type, flags. Its strings share the
/// received packet's bytes.
#[derive(Clone)]
pub struct Column {
    packet: Bytes,
    def: ColumnDef,
    /// [`NameKey`] of the name, computed once so that looking a column up by
    /// name compares one integer per column.
    name_key: NameKey,
}

/// A cheap fingerprint of a column name for lookups by name: names of up to
/// 7 bytes map one-to-one to their key (length in the top byte, the bytes
/// below), so equal keys mean equal names; longer names get a hash whose top
/// byte is above 7, and equal keys are confirmed by comparing the bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NameKey(u64);

impl NameKey {
    /// The key of `name` (raw bytes; names are compared byte for byte).
    #[inline]
    pub(crate) fn of(name: &[u8]) -> NameKey {
        if name.len() <= 7 {
            let mut b = [0u8; 8];
            b[..name.len()].copy_from_slice(name);
            return NameKey(u64::from_le_bytes(b) | (name.len() as u64) << 56);
        }
        // FxHash-style mixing of 8-byte words; the last word overlaps the
        // previous one rather than being padded.
        let mut h = name.len() as u64;
        let mut words = name.chunks_exact(8);
        for w in &mut words {
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        if !words.remainder().is_empty() {
            let tail = &name[name.len() - 8..];
            h = (h.rotate_left(5) ^ u64::from_le_bytes(tail.try_into().unwrap_or([0; 8])))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        // Top byte 8..=255: never the key of a short name.
        NameKey(h | 1 << 59)
    }

    /// True for the key of a name of at most 7 bytes (equal keys, equal names).
    #[inline]
    fn is_exact(self) -> bool {
        self.0 >> 56 <= 7
    }
}

impl Column {
    pub(crate) fn new(packet: Bytes, def: ColumnDef) -> Self {
        let name_key = NameKey::of(ColumnDef::slice(&packet, &def.name));
        Column {
            packet,
            def,
            name_key,
        }
    }

    /// True when this column's name is exactly `name` (byte for byte, as
    /// [`Column::name`] compares), given `key == NameKey::of(name)`.
    #[inline]
    pub(crate) fn has_name(&self, key: NameKey, name: &[u8]) -> bool {
        self.name_key == key
            && (key.is_exact() || ColumnDef::slice(&self.packet, &self.def.name) == name)
    }

    /// The column definition packet as received (to tell whether a later
    /// result's metadata is the same).
    pub(crate) fn raw(&self) -> &[u8] {
        &self.packet
    }

    fn text(&self, r: &std::ops::Range<u32>) -> &str {
        std::str::from_utf8(ColumnDef::slice(&self.packet, r)).unwrap_or("<non-UTF-8 name>")
    }

    /// The column's name or alias (`AS ...`).
    pub fn name(&self) -> &str {
        self.text(&self.def.name)
    }

    /// The original column name, before aliasing (empty for expressions).
    pub fn org_name(&self) -> &str {
        self.text(&self.def.org_name)
    }

    /// The table alias (empty for expressions).
    pub fn table(&self) -> &str {
        self.text(&self.def.table)
    }

    /// The original table name.
    pub fn org_table(&self) -> &str {
        self.text(&self.def.org_table)
    }

    /// The database (schema) name.
    pub fn schema(&self) -> &str {
        self.text(&self.def.schema)
    }

    /// The column type, or `None` for a type byte this client does not know.
    pub fn column_type(&self) -> Option<ColumnType> {
        self.def.column_type()
    }

    /// The raw type byte as sent by the server.
    pub fn type_byte(&self) -> u8 {
        self.def.type_byte
    }

    /// Column flags (`NOT_NULL`, `UNSIGNED`, ...).
    pub fn flags(&self) -> u16 {
        self.def.flags
    }

    /// True for unsigned integer columns.
    pub fn is_unsigned(&self) -> bool {
        self.def.flags & column_flags::UNSIGNED != 0
    }

    /// True unless the column is declared `NOT NULL`.
    pub fn is_nullable(&self) -> bool {
        self.def.flags & column_flags::NOT_NULL == 0
    }

    /// True for binary strings and blobs (collation `binary`).
    pub fn is_binary(&self) -> bool {
        self.def.charset == BINARY_COLLATION
    }

    /// The collation id of the column's values.
    pub fn collation(&self) -> u16 {
        self.def.charset
    }

    /// Maximum display length.
    pub fn length(&self) -> u32 {
        self.def.length
    }

    /// Number of decimal digits.
    pub fn decimals(&self) -> u8 {
        self.def.decimals
    }
}

impl fmt::Debug for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Column")
            .field("name", &self.name())
            .field("type", &self.column_type())
            .field("unsigned", &self.is_unsigned())
            .field("nullable", &self.is_nullable())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::column::{encode_column_def, parse_column_def};
    use crate::row::ColumnIndex;

    fn column_raw(name: &[u8]) -> Column {
        let mut p = encode_column_def("", ColumnType::Long, 0, 63);
        // Rewrite the empty alias, after "def", "test", "t" and "t" (each a
        // 1-byte length then the bytes).
        let at = 4 + 5 + 2 + 2;
        assert_eq!(p[at], 0);
        p.splice(
            at..at + 1,
            std::iter::once(name.len() as u8).chain(name.iter().copied()),
        );
        let def = parse_column_def(&p).unwrap();
        Column::new(Bytes::from(p), def)
    }

    fn columns(names: &[&str]) -> Vec<Column> {
        names.iter().map(|n| column_raw(n.as_bytes())).collect()
    }

    #[test]
    fn lookup_by_name_finds_exact_names() {
        let long = "a_rather_long_column_name_of_40_bytes___";
        let cols = columns(&[
            "id", "", "name", "created", "created2", "Name", long, "日付",
        ]);
        assert_eq!(cols[2].name(), "name");
        let at = |n: &str| n.index(&cols);
        assert_eq!(at("id"), Some(0));
        assert_eq!(at(""), Some(1));
        assert_eq!(at("name"), Some(2));
        assert_eq!(at("created"), Some(3), "7 bytes: the key is the name");
        assert_eq!(at("created2"), Some(4), "8 bytes: hashed, then compared");
        assert_eq!(at("Name"), Some(5), "case matters, as it always did");
        assert_eq!(at("NAME"), None);
        assert_eq!(at(long), Some(6));
        assert_eq!(at("日付"), Some(7));
        assert_eq!(at("created3"), None);
        assert_eq!(at("a_rather_long_column_name_of_40_bytes__x"), None);
        assert_eq!(at("nam"), None);
        assert_eq!(at("name\0"), None);
    }

    #[test]
    fn a_repeated_name_finds_the_first_column() {
        let cols = columns(&[
            "id",
            "x",
            "id",
            "a_long_repeated_name",
            "a_long_repeated_name",
        ]);
        assert_eq!("id".index(&cols), Some(0));
        assert_eq!("a_long_repeated_name".index(&cols), Some(3));
    }

    #[test]
    fn names_that_share_a_hash_prefix_are_told_apart() {
        // Same length, same first and last 8 bytes: only the middle differs.
        let a = "order_date_local_time";
        let b = "order_date_XXXXX_time";
        let cols = columns(&[a, b]);
        assert_eq!(a.index(&cols), Some(0));
        assert_eq!(b.index(&cols), Some(1));
        assert_eq!("order_date_YYYYY_time".index(&cols), None);
    }

    #[test]
    fn a_name_that_is_not_utf8_matches_no_string() {
        let cols = vec![column_raw(b"\xff\xfe"), column_raw(b"ok")];
        assert_eq!(cols[0].name(), "<non-UTF-8 name>");
        assert_eq!("<non-UTF-8 name>".index(&cols), None);
        assert_eq!("ok".index(&cols), Some(1));
    }

    #[test]
    fn keys_of_short_names_are_the_names() {
        for (a, b) in [
            ("", "\0"),
            ("a", "a\0"),
            ("abc", "abd"),
            ("abcdefg", "abcdefh"),
        ] {
            assert_ne!(
                NameKey::of(a.as_bytes()),
                NameKey::of(b.as_bytes()),
                "{a:?} {b:?}"
            );
        }
        assert!(NameKey::of(b"1234567").is_exact());
        assert!(!NameKey::of(b"12345678").is_exact());
        assert!(!NameKey::of(&[0xFF; 100]).is_exact());
    }
}
