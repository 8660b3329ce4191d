//! # mysql-uring
//!
//! A MySQL and MariaDB client driver built on io_uring: a sans-IO protocol
//! core, zero-copy rows, and its own thread-per-core runtime (one io_uring
//! loop per core, multishot receives into provided buffers, batched waits).
//!
//! ## From tokio (or any executor): [`Client`]
//!
//! [`Client`] is the front door. It is `Send + Sync + Clone`; every call is
//! a `Send` future that runs on one of the driver's cores, next to its
//! connection, and only the command and its result cross threads.
//! Parameters may borrow from the request.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use mysql_uring::{Client, Result};
//!
//! #[tokio::main]
//! async fn main() -> Result<()> {
//!     // One pool over all cores: at most 32 connections in total.
//!     let client = Client::new("mysql://app:secret@127.0.0.1:3306/shop?pool_max=32")?;
//!
//!     let name = String::from("widget"); // request-scoped: borrowed below
//!     let row = client
//!         .exec_one("SELECT id, stock FROM items WHERE name = ?", (name.as_str(),))
//!         .await?; // no row: an error of kind ErrorKind::RowNotFound
//!     let (id, stock): (u64, u32) = (row.get(0)?, row.get(1)?);
//!
//!     // A transaction guard: dropped without commit(), it rolls back.
//!     let tx = client.begin().await?;
//!     tx.exec_drop("UPDATE items SET stock = ? WHERE id = ?", (stock - 1, id)).await?;
//!     tx.commit().await?;
//!
//!     // Rows as a stream, with back-pressure.
//!     let mut rows = client.query_stream_as::<(u64, String)>("SELECT id, name FROM items");
//!     while let Some((id, name)) = rows.try_next().await? {
//!         println!("{id} {name}");
//!     }
//!     client.close().await
//! }
//! ```
//!
//! Without an async runtime, [`Client::blocking`] gives the same calls as
//! plain functions.
//!
//! ## Thread-per-core: [`runtime::Runtime`] and [`Pool`]
//!
//! For the lowest cost per query, run your own code on the driver's cores:
//! one [`Pool`] per core, connections that never leave their core, and
//! futures that need not be `Send`.
//!
//! ```no_run
//! use mysql_uring::runtime::Runtime;
//! use mysql_uring::{Pool, PoolOpts, Result};
//!
//! fn main() -> Result<()> {
//!     let rt = Runtime::new()?; // one io_uring loop per core
//!     let per_core = rt.run_on_all(|core| async move {
//!         let pool = Pool::new("mysql://root@127.0.0.1:3306/test", PoolOpts::default())?;
//!         let mut n = 0u64;
//!         for i in 0..1000u64 {
//!             let mut c = pool.get().await?;
//!             let v: u64 = c.exec_first("SELECT ? + ?", (i, core as u64)).await?.unwrap().get(0)?;
//!             n += v;
//!         }
//!         Ok(n)
//!     });
//!     for r in per_core {
//!         println!("{}", r?);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! [`Batch`] shards a list of jobs over the cores, a few connections per
//! core; [`start`] runs one future on a ring on the current thread.
//!
//! ## Connector/Python's model: [`Connection`] and [`Cursor`]
//!
//! `connect`, `cursor`, `execute`, `fetch_one`/`fetch_many`/`fetch_all`,
//! `cmd_query` + `get_rows`, `close`, as in MySQL Connector/Python's asyncio
//! API:
//!
//! ```no_run
//! use mysql_uring::{connect, Result};
//!
//! fn main() -> Result<()> {
//!     mysql_uring::start(async {
//!         let mut cnx = connect("mysql://root@127.0.0.1:3306/test").await?;
//!         let mut cur = cnx.cursor();
//!         cur.execute("SELECT version()").await?;
//!         let rows = cur.fetch_all().await?;
//!         println!("{}", rows[0].get::<&str>(0)?);
//!         cnx.close().await
//!     })
//! }
//! ```
//!
//! ## What to use
//!
//! | You have | Use |
//! |---|---|
//! | a tokio / async-std / smol service | [`Client`] |
//! | a program without async | [`Client::blocking`] ([`BlockingClient`]) |
//! | throughput-bound work you can shard | [`runtime::Runtime`] + [`Pool`] per core, or [`Batch`] |
//! | one connection, full control (pipelines, LOAD DATA, streaming) | [`Connection`] |
//! | code ported from Connector/Python | [`Cursor`] |
//!
//! ## Options, errors, reliability
//!
//! Options come from a URL (`mysql://user:pass@host:port/db?opt=value`, see
//! [`Opts`] for the full list; several hosts for failover or read
//! replicas) or from [`Opts`]' builder methods. Every failure is an
//! [`Error`] with an [`ErrorKind`]; [`Error::is_commit_unknown`] says when
//! a write may or may not have been applied (the connection was lost after
//! the command was sent) and must not be blindly retried. A dropped or
//! timed-out call abandons its statement: the driver reads and discards
//! its reply, and kills it on the server if it is still running after
//! [`Opts::kill_grace`].
//!
//! Prepared statements use the binary protocol: `exec*` calls take SQL
//! text (prepared once per connection and cached) or a [`Statement`], and
//! parameters as a tuple, array, slice or [`params!`]. Rows are zero-copy:
//! a [`Row`] is the received packet plus value offsets, and [`RowRef`]
//! (from [`Connection::next_row`]) borrows the read buffer itself. Values
//! read as [`FromValue`] types, [`Date`], [`Time`], [`DateTime`] or the
//! dynamic [`Value`].
//!
//! ## Tracing
//!
//! With feature `tracing`, every command, connect and pool wait is a span
//! (statement text truncated; never parameter values or passwords). The
//! driver reports spans, not events, so `tracing_subscriber::fmt` prints
//! them only when asked to print span closings:
//!
//! ```text
//! tracing_subscriber::fmt()
//!     .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
//!     .init();
//! ```
#![warn(missing_docs)]

mod batch;
mod client;
mod client_typed;
mod column;
mod compat;
mod conn;
mod cursor;
mod error;
pub mod escape;
mod from_row;
mod hosts;
mod io;
mod opts;
mod params;
mod pipeline;
mod pool;
// The sans-IO protocol codec, public only for the fuzz targets and the
// decoder benchmark (feature `internals`, not a stable API).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod proto;
#[cfg(not(feature = "internals"))]
mod proto;
mod row;
pub mod runtime;
mod server_version;
mod session;

/// The session state machine driven by arbitrary bytes, its invariants
/// checked after every step (the `session` fuzz target). Not an API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub fn __fuzz_session(data: &[u8]) -> std::result::Result<(), String> {
    session::check::run(data)
}
#[cfg(feature = "sim")]
#[doc(hidden)]
pub mod sim;
mod statement;
mod trace;
mod transaction;
mod value;

pub use batch::{Batch, Progress};
pub use client::{
    BlockingClient, Client, ClientBuilder, ClientCall, ClientStream, ClientTransaction,
};
pub use column::{Column, ColumnType};
pub use conn::RowStream;
pub use conn::{CallResult, StoredResult};
pub use conn::{CancelHandle, Connection, NextRow, Outcome, QueryResult, StageOutput, connect};
pub use cursor::Cursor;
pub use error::{Error, ErrorKind, Result, ServerError};
pub use from_row::FromRow;
// What `#[derive(FromRow)]` expands to calls; not an API.
#[doc(hidden)]
pub use from_row::__private;
pub use hosts::{HostAddr, HostMode, HostSet, HostStatus, Role};
/// `#[derive(FromRow)]`: rows into structs, fields by column name; see the
/// [`FromRow`](trait@FromRow) trait.
#[cfg(feature = "derive")]
pub use mysql_uring_derive::FromRow;
pub use opts::{IntoOpts, Opts, SslMode};
pub use params::{Params, ToValue, ValueRef};
pub use pipeline::Pipeline;
pub use pool::{PerCorePool, Pool, PoolMetrics, PoolOpts, PoolStatus, PooledConn};
pub use proto::compress::Algorithm as Compression;
pub use row::{ColumnIndex, Row, RowMap, RowRef};
pub use runtime::{start, try_start};
pub use server_version::ServerVersion;
pub use statement::{AsStatement, Statement, StatementRef};
pub use transaction::{IsolationLevel, Transaction, TxOpts, Warning};
pub use value::{Binary, ConvError, Date, DateTime, FromValue, ParseTemporalError, Time, Value};

/// The README's Rust examples, compiled as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
