//! The drivers under test behind one small trait, so every workload runs the
//! same way with each of them.

use std::future::Future;

use crate::BoxResult;
use crate::setup::POINT_ROWS;

/// What one timed operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A point select with the id in the SQL text.
    PointText,
    /// A point select through a prepared statement (the driver's cache).
    PointPrepared,
    /// `depth` point selects sent before the first reply is read (drivers that
    /// cannot pipeline run them one after another).
    Pipeline(usize),
    /// `depth` point selects, one after another.
    Sequential(usize),
    /// An `INSERT` of this many rows as SQL text.
    InsertText(usize),
    /// A prepared one-row `INSERT` run over this many parameter rows, the
    /// driver's batch method (MariaDB bulk execute where the driver has it).
    InsertBulk(usize),
}

/// Protocol compression, for the compress workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Off,
    /// zlib at level 6 (zlib's default, and both drivers').
    Zlib,
    /// zstd at level 3 (libzstd's default); MySQL 8.0.18+ only.
    Zstd,
}

impl Compression {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Compression::Off => "compression off",
            Compression::Zlib => "zlib (level 6)",
            Compression::Zstd => "zstd (level 3)",
        }
    }
}

/// A tiny xorshift generator: random ids without another dependency.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next id of `bench_point`, 1..=POINT_ROWS.
    pub fn id(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % POINT_ROWS + 1
    }
}

/// Row count and a checksum over every value, to check both drivers read the same.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    pub sum: u64,
}

impl Digest {
    /// Adds one `bench_decode` row.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        id: u64,
        qty: i32,
        price: f64,
        name: &str,
        created: &str,
        amount: &str,
        note: Option<&str>,
    ) {
        self.add_typed(id, qty, price, name, created.len() as u64, amount, note);
    }

    /// Adds one `bench_decode` row whose DATETIME was read as a typed value
    /// (prepared decode): `created` is the sum of its fields ([`datetime_sum`]).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn add_typed(
        &mut self,
        id: u64,
        qty: i32,
        price: f64,
        name: &str,
        created: u64,
        amount: &str,
        note: Option<&str>,
    ) {
        self.rows += 1;
        self.sum = self
            .sum
            .wrapping_add(id)
            .wrapping_add(qty as u64)
            .wrapping_add(price as u64)
            .wrapping_add(name.len() as u64)
            .wrapping_add(created)
            .wrapping_add(amount.len() as u64)
            .wrapping_add(note.map_or(7, |s| s.len() as u64));
    }
}

/// A DATETIME's checksum for [`Digest::add_typed`]: the sum of its fields.
#[inline]
pub fn datetime_sum(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64, us: u64) -> u64 {
    y + mo + d + h + mi + s + us
}

/// A point-select row's checksum; 0 means the row was missing.
#[inline]
pub fn point_sum(id: u64, name: &str, price: f64, qty: i32) -> u64 {
    id + name.len() as u64 + price as u64 + qty as u64
}

/// A driver, run on one thread per core.
pub trait Driver: 'static {
    /// A connection.
    type Conn: 'static;
    /// The name in the report.
    const NAME: &'static str;
    /// Whether this driver runs `op` in the benchmark (all by default).
    fn supports(_op: Op) -> bool {
        true
    }
    /// Whether this driver runs the text-protocol decode workload.
    fn supports_decode() -> bool {
        Self::supports(Op::PointText)
    }
    /// Runs `fut` on this thread's runtime.
    fn block_on<F: Future>(fut: F) -> F::Output;
    /// Spawns a task on the current thread's runtime; awaiting the result
    /// gives the task's output, or why there is none (a panic).
    fn spawn<F: Future + 'static>(
        fut: F,
    ) -> impl Future<Output = Result<F::Output, String>> + 'static
    where
        F::Output: 'static;
    /// Opens a connection (plain TCP).
    fn connect(url: &str) -> impl Future<Output = BoxResult<Self::Conn>>;
    /// Closes a connection politely.
    fn close(c: Self::Conn) -> impl Future<Output = BoxResult<()>>;
    /// Runs `sql` and discards any result.
    fn exec(c: &mut Self::Conn, sql: &str) -> impl Future<Output = BoxResult<()>>;
    /// Runs one timed operation; returns how many units (queries, rows) it did.
    fn op(c: &mut Self::Conn, op: Op, rng: &mut Rng) -> impl Future<Output = BoxResult<u64>>;
    /// Reads `sql` (the decode query) into typed values.
    fn decode(c: &mut Self::Conn, sql: &str) -> impl Future<Output = BoxResult<Digest>>;
    /// Whether this driver runs the prepared (binary-protocol) decode workload.
    fn supports_decode_prepared() -> bool {
        false
    }
    /// Opens a connection (plain TCP) that uses protocol compression `c`;
    /// `None` when this driver cannot.
    fn connect_compressed(
        url: &str,
        c: Compression,
    ) -> impl Future<Output = BoxResult<Option<Self::Conn>>> {
        async move {
            match c {
                Compression::Off => Self::connect(url).await.map(Some),
                _ => Ok(None),
            }
        }
    }
    /// The session status variable `name` (`SHOW SESSION STATUS`), as text.
    fn session_status(_c: &mut Self::Conn, _name: &str) -> impl Future<Output = BoxResult<String>> {
        async { Err(format!("{} does not read session status here", Self::NAME).into()) }
    }
    /// Reads [`crate::setup::DECODE_PREPARED_SQL`] with `LIMIT ?` = `rows` as a
    /// prepared statement into typed values (DATETIME as a date/time value).
    fn decode_prepared(_c: &mut Self::Conn, _rows: u64) -> impl Future<Output = BoxResult<Digest>> {
        async { Err(format!("{} does not run the prepared decode", Self::NAME).into()) }
    }
}
