//! Protocol constants: capability flags, commands, status flags, column types.

/// Capability flags exchanged in the handshake (`CLIENT_*`).
pub mod caps {
    /// Use the improved old-password scheme (always set by modern clients).
    pub const LONG_PASSWORD: u32 = 1;
    /// Send found rows instead of affected rows in OK packets.
    pub const FOUND_ROWS: u32 = 1 << 1;
    /// Longer flags in column definitions.
    pub const LONG_FLAG: u32 = 1 << 2;
    /// A database name may be given in the handshake response.
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    /// Compression protocol.
    pub const COMPRESS: u32 = 1 << 5;
    /// LOAD DATA LOCAL may be used.
    pub const LOCAL_FILES: u32 = 1 << 7;
    /// The 4.1 protocol.
    pub const PROTOCOL_41: u32 = 1 << 9;
    /// TLS may be negotiated.
    pub const SSL: u32 = 1 << 11;
    /// The 4.1 authentication (always set).
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    /// Several statements in one COM_QUERY.
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    /// Several result sets for one command.
    pub const MULTI_RESULTS: u32 = 1 << 17;
    /// Several result sets from COM_STMT_EXECUTE.
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    /// Authentication plugins.
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    /// Connection attributes.
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    /// Length-encoded auth response.
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    /// Session state tracking in OK packets.
    pub const SESSION_TRACK: u32 = 1 << 23;
    /// OK packets replace EOF packets.
    pub const DEPRECATE_EOF: u32 = 1 << 24;
    /// zstd protocol compression (MySQL 8.0.18+), with a level byte in the
    /// handshake response.
    pub const ZSTD_COMPRESSION: u32 = 1 << 26;

    /// MariaDB: the server is MariaDB (bit 0 clear in the legacy flags means MariaDB extended caps apply).
    pub const MARIADB_CLIENT_PROGRESS: u64 = 1 << 32;
    /// MariaDB: COM_STMT_BULK_EXECUTE.
    pub const MARIADB_CLIENT_STMT_BULK_OPERATIONS: u64 = 1 << 34;
    /// MariaDB: extended type info in column definitions.
    pub const MARIADB_CLIENT_EXTENDED_TYPE_INFO: u64 = 1 << 35;
    /// MariaDB: skip re-sent metadata for prepared statements.
    pub const MARIADB_CLIENT_CACHE_METADATA: u64 = 1 << 36;
}

/// Command bytes (`COM_*`).
pub mod com {
    /// Close the connection.
    pub const QUIT: u8 = 0x01;
    /// Change the default database.
    pub const INIT_DB: u8 = 0x02;
    /// Run a text-protocol query.
    pub const QUERY: u8 = 0x03;
    /// Check the server is alive.
    pub const PING: u8 = 0x0E;
    /// Re-authenticate as another user on the same connection.
    pub const CHANGE_USER: u8 = 0x11;
    /// Prepare a statement.
    pub const STMT_PREPARE: u8 = 0x16;
    /// Execute a prepared statement.
    pub const STMT_EXECUTE: u8 = 0x17;
    /// Close a prepared statement.
    pub const STMT_CLOSE: u8 = 0x19;
    /// Reset the session.
    pub const RESET_CONNECTION: u8 = 0x1F;
}

/// Server status flags (`SERVER_*`) from OK and EOF packets.
pub mod status {
    /// A transaction is open.
    pub const IN_TRANS: u16 = 0x0001;
    /// Autocommit is on.
    pub const AUTOCOMMIT: u16 = 0x0002;
    /// Another result set follows.
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    /// A cursor exists for the statement.
    pub const CURSOR_EXISTS: u16 = 0x0040;
    /// The last row of a cursor was sent.
    pub const LAST_ROW_SENT: u16 = 0x0080;
    /// NO_BACKSLASH_ESCAPES is active.
    pub const NO_BACKSLASH_ESCAPES: u16 = 0x0200;
    /// The result set just read holds a procedure's OUT and INOUT
    /// parameters (a `CALL` run as a prepared statement).
    pub const PS_OUT_PARAMS: u16 = 0x1000;
    /// Session state changed (session tracking info follows).
    pub const SESSION_STATE_CHANGED: u16 = 0x4000;
}

/// Column flags (`*_FLAG`) from column definitions.
pub mod column_flags {
    /// NOT NULL.
    pub const NOT_NULL: u16 = 1;
    /// Part of the primary key.
    pub const PRI_KEY: u16 = 2;
    /// Unsigned integer.
    pub const UNSIGNED: u16 = 32;
    /// Binary collation / binary string.
    pub const BINARY: u16 = 128;
}

/// The `binary` character set / collation id.
pub const BINARY_COLLATION: u16 = 63;
/// `utf8mb4_general_ci`, the collation requested in the handshake.
pub const UTF8MB4_GENERAL_CI: u8 = 45;

/// Largest payload of a single physical packet; a payload of this size is
/// continued in the next packet.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Column types (`MYSQL_TYPE_*`).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ColumnType {
    Decimal = 0x00,
    Tiny = 0x01,
    Short = 0x02,
    Long = 0x03,
    Float = 0x04,
    Double = 0x05,
    Null = 0x06,
    Timestamp = 0x07,
    LongLong = 0x08,
    Int24 = 0x09,
    Date = 0x0A,
    Time = 0x0B,
    DateTime = 0x0C,
    Year = 0x0D,
    NewDate = 0x0E,
    VarChar = 0x0F,
    Bit = 0x10,
    Timestamp2 = 0x11,
    DateTime2 = 0x12,
    Time2 = 0x13,
    Json = 0xF5,
    NewDecimal = 0xF6,
    Enum = 0xF7,
    Set = 0xF8,
    TinyBlob = 0xF9,
    MediumBlob = 0xFA,
    LongBlob = 0xFB,
    Blob = 0xFC,
    VarString = 0xFD,
    String = 0xFE,
    Geometry = 0xFF,
}

impl ColumnType {
    /// Maps a wire byte to a type; unknown bytes give `None`.
    pub const fn from_u8(b: u8) -> Option<ColumnType> {
        use ColumnType::*;
        Some(match b {
            0x00 => Decimal,
            0x01 => Tiny,
            0x02 => Short,
            0x03 => Long,
            0x04 => Float,
            0x05 => Double,
            0x06 => Null,
            0x07 => Timestamp,
            0x08 => LongLong,
            0x09 => Int24,
            0x0A => Date,
            0x0B => Time,
            0x0C => DateTime,
            0x0D => Year,
            0x0E => NewDate,
            0x0F => VarChar,
            0x10 => Bit,
            0x11 => Timestamp2,
            0x12 => DateTime2,
            0x13 => Time2,
            0xF5 => Json,
            0xF6 => NewDecimal,
            0xF7 => Enum,
            0xF8 => Set,
            0xF9 => TinyBlob,
            0xFA => MediumBlob,
            0xFB => LongBlob,
            0xFC => Blob,
            0xFD => VarString,
            0xFE => String,
            0xFF => Geometry,
            _ => return None,
        })
    }
}
