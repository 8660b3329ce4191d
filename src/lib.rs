//! # mysql-uring
//!
//! A MySQL and MariaDB client driver built on io_uring, with the model of
//! MySQL Connector/Python's asyncio API: `connect`, `cursor`, `execute`,
//! `fetch_one`/`fetch_many`/`fetch_all`, `cmd_query` + `get_rows`, `close`.
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
//! ## Layers
//! - [`proto`]: the sans-IO protocol (bytes in, events out), no sockets, no async.
//! - [`io`]: the io_uring shell: sockets, reused buffers, framing.
//! - The API: [`Connection`], [`Cursor`], [`Row`], [`Opts`], [`Error`].
//! - [`runtime`]: io_uring runtimes, one per core ([`runtime::Runtime`]);
//!   [`Pool`]: a connection pool per core; [`Batch`]: many jobs sharded
//!   over cores, K connections per core.
//!
//! Prepared statements use the binary protocol: [`Connection::exec`],
//! [`Connection::exec_first`], [`Connection::exec_drop`] and
//! [`Cursor::execute_params`] take SQL text (prepared once, kept in a
//! per-connection statement cache) or a [`Statement`], and parameters as a
//! tuple, array, slice or [`params!`]; [`Connection::execute_many`] uses
//! MariaDB's bulk execution. Rows of both protocols are the same [`Row`] and
//! [`RowRef`], read with [`FromValue`] types, [`Date`], [`Time`],
//! [`DateTime`] or the dynamic [`Value`].
//!
//! Rows are zero-copy: a [`Row`] is the received packet plus value offsets,
//! and [`RowRef`] (from [`Connection::next_row`] / [`Cursor::next_row`])
//! borrows the read buffer itself.
#![warn(missing_docs)]

pub mod batch;
pub mod client;
mod client_typed;
pub mod column;
mod compat;
pub mod conn;
pub mod cursor;
pub mod error;
pub mod escape;
pub mod from_row;
pub mod hosts;
pub mod io;
pub mod opts;
pub mod params;
pub mod pipeline;
pub mod pool;
pub mod proto;
pub mod row;
pub mod runtime;
mod server_version;
mod session;
#[cfg(feature = "sim")]
#[doc(hidden)]
pub mod sim;
pub mod statement;
mod trace;
pub mod transaction;
pub mod value;

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
pub use value::{Binary, ConvError, Date, DateTime, FromValue, Time, Value};

/// The README's Rust examples, compiled as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
