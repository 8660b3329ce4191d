//! The io_uring shell: sockets and buffers around the sans-IO protocol core.
//!
//! - [`stream`]: the [`Transport`] trait and the TCP / Unix socket streams
//!   (tokio-uring, owned buffers).
//! - [`tls`]: rustls driven over in-memory buffers on top of a stream.
//! - [`channel`]: one connection's reused read and write buffers, packet
//!   framing, and cancel-safety bookkeeping.

pub mod channel;
pub mod stream;
pub mod tls;

pub use channel::Channel;
pub use stream::{Stream, Transport};
