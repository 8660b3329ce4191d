//! The io_uring shell: sockets and buffers around the sans-IO protocol core.
//!
//! - [`uring`]: the driver's own per-core io_uring loop (the only io_uring
//!   code): tasks, timers, sockets, provided buffers.
//! - [`stream`]: the `Transport` trait and the TCP / Unix socket streams.
//! - [`tls`]: rustls driven over in-memory buffers on top of a stream.
//! - [`channel`]: one connection's reused read and write buffers, packet
//!   framing, and cancel-safety bookkeeping.

pub mod channel;
pub mod stream;
pub mod tls;
pub mod uring;

pub use channel::Channel;
pub use stream::Stream;
