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
}

impl Column {
    pub(crate) fn new(packet: Bytes, def: ColumnDef) -> Self {
        Column { packet, def }
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
