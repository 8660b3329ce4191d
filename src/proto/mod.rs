//! The sans-IO MySQL protocol: bytes in, events out.
//!
//! Nothing here performs IO, awaits, or allocates per row. Every decoder
//! returns a [`ProtoError`] on malformed input instead of panicking, which the
//! unit tests beside each module and the fuzz targets in `fuzz/` check.
//!
//! - [`framer`]: packet headers, sequence ids, 16 MiB continuation.
//! - [`compress`]: the compressed protocol (zlib, zstd) around the packets.
//! - [`handshake`]: the connection phase and authentication state machine.
//! - [`result`]: the response to a command as a state machine.
//! - [`packets`], [`column`](mod@column), [`row`]: decoders for OK/ERR/EOF, column definitions, text rows.
//! - [`command`]: encoders for `COM_*` commands.
//! - [`stmt`], [`binary`], [`temporal`]: prepared statements, binary rows and parameters, dates and times.

// Private unless feature `internals`: then some accessors and protocol
// constants serve only the fuzz targets, the decoder benchmark and the tests.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

pub mod auth;
pub mod binary;
pub mod codec;
pub mod column;
pub mod command;
pub mod compress;
pub mod consts;
pub mod error;
pub mod framer;
pub mod handshake;
pub mod packets;
pub mod result;
pub mod row;
pub mod stmt;
pub mod temporal;

pub use error::{ProtoError, ProtoResult};
