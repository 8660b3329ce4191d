//! Errors raised by the sans-IO protocol layer.

use std::fmt;

/// A malformed or unexpected packet, detected without any IO.
///
/// Every decoder in [`crate::proto`] returns this instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The packet ended before a field that must be there.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// Bytes were left over after a packet that must be consumed exactly.
    TrailingBytes {
        /// What was being read.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A field held a value the protocol does not allow.
    Invalid {
        /// What was being read.
        what: &'static str,
        /// A short description of the problem.
        detail: String,
    },
    /// A packet arrived with the wrong sequence id.
    OutOfOrder {
        /// The sequence id the client expected.
        expected: u8,
        /// The sequence id the server sent.
        got: u8,
    },
    /// A packet (or a logical packet joined from 16 MiB parts) exceeds the configured limit.
    PacketTooLarge {
        /// The announced size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A packet the client was asked to send exceeds the configured limit.
    /// It was not sent (nor anything of its command): the connection is
    /// still in step with the server.
    CommandTooLarge {
        /// The payload size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The server sent a packet that does not fit the current state.
    Unexpected {
        /// What the client was waiting for.
        expected: &'static str,
        /// The first byte of the packet (its header marker).
        first_byte: Option<u8>,
    },
    /// The server asked for something the client does not support.
    Unsupported(String),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated { what } => write!(f, "malformed packet: {what} is truncated"),
            ProtoError::TrailingBytes { what, extra } => {
                write!(
                    f,
                    "malformed packet: {extra} unexpected trailing bytes after {what}"
                )
            }
            ProtoError::Invalid { what, detail } => {
                write!(f, "malformed packet: invalid {what}: {detail}")
            }
            ProtoError::OutOfOrder { expected, got } => write!(
                f,
                "packets out of order: expected sequence id {expected}, got {got} (the connection is desynchronised)"
            ),
            ProtoError::PacketTooLarge { size, limit } => write!(
                f,
                "packet of {size} bytes exceeds the limit of {limit} bytes (raise Opts::max_packet_size if this is expected)"
            ),
            ProtoError::CommandTooLarge { size, limit } => write!(
                f,
                "a packet of {size} bytes to send exceeds the limit of {limit} bytes \
                 (Opts::max_packet_size); it was not sent and the connection is still usable"
            ),
            ProtoError::Unexpected {
                expected,
                first_byte,
            } => match first_byte {
                Some(b) => write!(
                    f,
                    "unexpected packet starting with 0x{b:02x} while waiting for {expected}"
                ),
                None => write!(f, "unexpected empty packet while waiting for {expected}"),
            },
            ProtoError::Unsupported(what) => write!(f, "unsupported by this client: {what}"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Result alias for the protocol layer.
pub type ProtoResult<T> = Result<T, ProtoError>;
