//! [`Connection`]: one session with the server.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::column::Column;
use crate::cursor::Cursor;
use crate::error::{Error, ErrorKind, Result};
use crate::io::Channel;
use crate::io::channel::ReadState;
use crate::opts::{IntoOpts, Opts};
use crate::proto::consts::status;
use crate::proto::handshake::Handshake;
use crate::proto::packets::OkPacket;
use crate::proto::row::text_row_fields;
use crate::row::{Row, RowRef};
use crate::trace::traced;

/// Connects and authenticates. Accepts [`Opts`] or a URL.
///
/// Must run inside an io_uring runtime ([`crate::start`] or [`crate::runtime`]).
///
/// ```no_run
/// # async fn f() -> mysql_uring::Result<()> {
/// let mut cnx = mysql_uring::connect("mysql://root@127.0.0.1:3306/test").await?;
/// let mut cur = cnx.cursor();
/// cur.execute("SELECT version()").await?;
/// let rows = cur.fetch_all().await?;
/// println!("{:?}", rows);
/// # Ok(()) }
/// ```
pub async fn connect(opts: impl IntoOpts) -> Result<Connection> {
    Connection::connect(opts).await
}

/// The outcome of a statement that returned no rows (or of the end of a result set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Rows inserted, updated or deleted.
    pub affected_rows: u64,
    /// The AUTO_INCREMENT id generated, or 0.
    pub last_insert_id: u64,
    /// Number of warnings (see `SHOW WARNINGS`).
    pub warnings: u16,
    /// Server status flags.
    pub status: u16,
    /// The server's info string, e.g. `Records: 3  Duplicates: 0  Warnings: 0`.
    pub info: String,
}

impl Outcome {
    fn from_ok(ok: &OkPacket<'_>) -> Self {
        Outcome {
            affected_rows: ok.affected_rows,
            last_insert_id: ok.last_insert_id,
            warnings: ok.warnings,
            status: ok.status,
            info: if ok.info.is_empty() {
                String::new()
            } else {
                String::from_utf8_lossy(ok.info).into_owned()
            },
        }
    }
}

/// One stage's result in a [`crate::Pipeline`].
#[derive(Debug, Clone, Default)]
pub struct StageOutput {
    /// The rows, if the statement returned a result set.
    pub rows: Vec<Row>,
    /// Affected rows, insert id, warnings, info.
    pub outcome: Outcome,
}

/// What [`Connection::cmd_query`] returns: a result set's columns, or the
/// outcome of a statement without rows.
#[derive(Debug, Clone)]
pub enum QueryResult {
    /// The statement produced rows; read them with [`Connection::get_rows`].
    Rows(Arc<[Column]>),
    /// The statement produced no rows.
    Done(Outcome),
}

/// What the session is known to use: set by the driver's own commands and
/// from the server's session-state tracking in OK packets.
#[derive(Debug, Clone, Default)]
struct SessionTrack {
    /// The default database; `None` when none is selected.
    database: Option<String>,
    /// `character_set_client`.
    charset: String,
    /// MariaDB's `last_gtid`, when the session tracks it (read-your-writes).
    last_gtid: Option<String>,
}

impl SessionTrack {
    /// The state after the handshake (`utf8mb4_general_ci` is asked for).
    fn new(database: Option<&str>) -> Self {
        SessionTrack {
            database: database.map(str::to_string),
            charset: "utf8mb4".to_string(),
            last_gtid: None,
        }
    }

    /// Applies the session-state changes an OK packet carries (cheap when
    /// it carries none, which is almost always).
    #[inline]
    fn on_ok(&mut self, ok: &OkPacket<'_>) {
        if !ok.session_state.is_empty() {
            self.apply(ok.session_state);
        }
    }

    #[cold]
    fn apply(&mut self, state: &[u8]) {
        use crate::proto::packets::SessionChange;
        for change in crate::proto::packets::session_changes(state) {
            match change {
                SessionChange::Schema(db) => {
                    self.database =
                        (!db.is_empty()).then(|| String::from_utf8_lossy(db).into_owned());
                }
                SessionChange::SystemVariable { name, value }
                    if name.eq_ignore_ascii_case(b"character_set_client") =>
                {
                    self.charset = String::from_utf8_lossy(value).into_owned();
                }
                SessionChange::SystemVariable { name, value }
                    if name.eq_ignore_ascii_case(b"last_gtid") && !value.is_empty() =>
                {
                    self.last_gtid = Some(String::from_utf8_lossy(value).into_owned());
                }
                _ => {}
            }
        }
    }
}

/// A connection to a MySQL or MariaDB server, on the current thread's io_uring.
///
/// One command runs at a time (methods take `&mut self`). Run many connections
/// concurrently as tasks, or use [`crate::runtime`] to spread them over cores.
/// Dropping a connection closes its socket; [`Connection::close`] also tells
/// the server goodbye.
#[derive(Debug)]
pub struct Connection {
    chan: Channel,
    capabilities: u32,
    server_version: String,
    connection_id: u32,
    mariadb: bool,
    status: u16,
    columns: Arc<[Column]>,
    fields: Vec<crate::proto::row::FieldRange>,
    last: Outcome,
    query_timeout: Option<Duration>,
    opts: Arc<Opts>,
    /// Prepared statements by SQL text, and statements waiting to be closed.
    stmts: crate::statement::StmtCache,
    /// Negotiated MariaDB extended capabilities (upper 32 bits).
    mariadb_caps: u32,
    /// Bulk execution turned off by the user.
    bulk_off: bool,
    /// The connection-phase state machine, kept for `COM_CHANGE_USER`.
    handshake: Handshake,
    /// What every command written still owes, and what the next one must
    /// settle first: the only record of what is in flight.
    session: crate::session::Session,
    /// Default database and charset, as last known.
    track: SessionTrack,
    /// The host this connection is on, when the options name several.
    host: Option<crate::hosts::HostLease>,
    /// A read connection on a replica (not on the primary as a fallback).
    replica: bool,
    /// Rows read, for the command spans (feature `tracing`; zero-sized without).
    trace_rows: crate::trace::RowCount,
}

/// Whether a server suits what a new connection is for.
pub(crate) enum Fit {
    /// Yes.
    Yes,
    /// Yes, a replica for reads.
    Replica,
    /// No: why, and whether to deny the host for a while.
    No { why: String, deny: bool },
}

/// True for names of this machine.
fn is_local(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Runs a command: `$fut` (which borrows `$self`) under the query
/// timeout, if any, with a guard that notices when the command's future is
/// dropped midway (see [`settle`]): then the statement still running for
/// nobody is interrupted after a short grace. A timed-out command is
/// abandoned the same way, not broken: what it left on the wire is read
/// before the next command. Errors are classified by what was in flight
/// ([`Connection::command_failed`]): a lost reply of a statement outside a
/// transaction, or of a `COMMIT`, is commit-unknown; a connection lost inside
/// a transaction is [`ErrorKind::TransactionLost`].
///
/// `timed!(self, what, traced(op), fut)`: also a command span (feature
/// `tracing`, see [`crate::trace`]) around it; `traced_outcome(op)` when
/// `fut`'s output is the `Outcome` the span records.
macro_rules! timed {
    ($self:ident, $what:expr, traced($op:expr), $fut:expr) => {
        traced!($self, $op, timed!($self, $what, $fut))
    };
    ($self:ident, $what:expr, traced_outcome($op:expr), $fut:expr) => {
        traced!($self, $op, timed!($self, $what, $fut), outcome)
    };
    ($self:ident, $what:expr, $fut:expr) => {{
        let mark = $self.session.mark();
        let guard = $self.abandon_guard();
        let r = match $self.query_timeout {
            None => $fut.await,
            Some(limit) => {
                let r = crate::io::uring::timeout(limit, $fut).await;
                match r {
                    Ok(r) => r,
                    Err(_) => Err($self.timed_out($what, limit, mark)),
                }
            }
        };
        guard.disarm();
        match r {
            Err(e) => Err($self.command_failed(e, mark)),
            r => r,
        }
    }};
}

impl Connection {
    /// The GTID of this session's last write, as the server reported it
    /// (MariaDB, with `read_your_writes`: the session tracks `last_gtid`).
    pub fn last_gtid(&self) -> Option<&str> {
        self.track.last_gtid.as_deref()
    }

    /// The server's version, e.g. `10.11.19-MariaDB-0+deb12u1` or `8.4.3`.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The authentication plugin the session logged in with.
    #[cfg(feature = "tracing")]
    pub(crate) fn auth_plugin(&self) -> &str {
        self.handshake.plugin().name()
    }

    /// The server's id for this session (`CONNECTION_ID()`), usable with `KILL`.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// True when the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.chan.is_tls()
    }

    /// True when the connection uses the compressed protocol.
    pub fn is_compressed(&self) -> bool {
        self.chan.is_compressed()
    }

    /// True when the server is MariaDB.
    pub fn is_mariadb(&self) -> bool {
        self.mariadb
    }

    /// The server's version, parsed: major, minor, patch and whether it is
    /// MariaDB (from the handshake's capability flags, not only the text), like
    /// Connector/Python's `get_server_version()`. MariaDB's `5.5.5-`
    /// compatibility prefix is not part of it.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let v = cnx.server_version_info();
    /// let returning = v.is_mariadb && v.at_least(10, 5, 0); // INSERT ... RETURNING
    /// # Ok(()) }
    /// ```
    pub fn server_version_info(&self) -> crate::ServerVersion {
        let mut v = crate::ServerVersion::parse(&self.server_version).unwrap_or_default();
        v.is_mariadb |= self.mariadb;
        v
    }

    /// The default database, as last known: the one connected with, then
    /// changed by [`select_db`](Connection::select_db) and
    /// [`change_user`](Connection::change_user), and by `USE db` or anything
    /// else the server reports through session tracking (on by default:
    /// `session_track_schema`). `None` when none is selected.
    pub fn database(&self) -> Option<&str> {
        self.track.database.as_deref()
    }

    /// The connection's character set (`character_set_client`): the one of
    /// the options (`utf8mb4` by default), then as the server reports changes
    /// (`SET NAMES` run as SQL included; tracked by default through
    /// `session_track_system_variables`).
    pub fn charset(&self) -> &str {
        &self.track.charset
    }

    /// The connection's collation (`@@collation_connection`), asked of the
    /// server: one round trip. (Servers do not report collation changes by
    /// default, and the default collation of a charset differs between
    /// versions, so the client cannot know it otherwise.)
    pub async fn collation(&mut self) -> Result<String> {
        let rows = self.query("SELECT @@collation_connection").await?;
        match rows.first() {
            Some(r) => r.get(0),
            None => Err(Error::new(
                ErrorKind::Protocol,
                "SELECT @@collation_connection returned no row",
            )),
        }
    }

    /// The negotiated capability flags.
    pub fn capabilities(&self) -> u32 {
        self.capabilities
    }

    /// True while a transaction is open (from the last status flags).
    pub fn in_transaction(&self) -> bool {
        self.status & status::IN_TRANS != 0 && self.session.tx() != crate::session::Tx::RollbackOwed
    }

    /// Rows changed by the last statement (`affected_rows` of its OK packet).
    pub fn affected_rows(&self) -> u64 {
        self.last.affected_rows
    }

    /// The AUTO_INCREMENT id generated by the last statement, or 0.
    pub fn last_insert_id(&self) -> u64 {
        self.last.last_insert_id
    }

    /// The last statement's info string (e.g. `Records: 3  Duplicates: 0  Warnings: 0`).
    pub fn info(&self) -> &str {
        &self.last.info
    }

    /// The last statement's warning count; [`Connection::warnings`] reads them.
    pub fn warning_count(&self) -> u16 {
        self.last.warnings
    }

    /// The server status flags of the last OK or EOF packet (`SERVER_STATUS_*`).
    pub fn status_flags(&self) -> u16 {
        self.status
    }

    /// How string literals must be written for this session: it follows
    /// `NO_BACKSLASH_ESCAPES` as the server reports it and the charset set with
    /// [`Opts::charset`] or, as the server reports it, by a `SET NAMES` run as
    /// SQL (see [`Connection::charset`]).
    pub fn quoting(&self) -> crate::escape::Quoting {
        crate::escape::Quoting {
            no_backslash_escapes: self.status & status::NO_BACKSLASH_ESCAPES != 0,
            multibyte_hazard: self
                .opts
                .charset
                .as_deref()
                .is_some_and(crate::escape::charset_has_multibyte_hazard)
                || crate::escape::charset_has_multibyte_hazard(&self.track.charset),
        }
    }

    /// `s` as an SQL string literal, quoted for this session's `sql_mode` and
    /// charset. Prefer prepared-statement parameters; this is for SQL that
    /// cannot take them.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection, name: &str) -> mysql_uring::Result<()> {
    /// let sql = format!("SELECT id FROM users WHERE name = {}", cnx.quote(name));
    /// let rows = cnx.query(&sql).await?;
    /// # Ok(()) }
    /// ```
    pub fn quote(&self, s: &str) -> String {
        self.quoting().quote_str(s)
    }

    /// `sql` with its `?` placeholders replaced by `params` as SQL literals,
    /// quoted for this session (see [`Connection::quote`]): for the text
    /// protocol, e.g. statements the server cannot prepare. Fails with
    /// [`ErrorKind::Usage`] when the placeholder and parameter counts differ.
    pub fn interpolate(&self, sql: &str, params: impl crate::Params) -> Result<String> {
        crate::escape::interpolate(sql, &params, self.quoting()).map_err(Error::usage)
    }

    /// Runs `sql` through the text protocol with its `?` placeholders
    /// replaced by `params`, quoted for the session's `sql_mode` and charset;
    /// returns all rows. Prepared statements ([`Connection::exec`]) keep
    /// values out of the SQL entirely and are preferred where they work.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let rows = cnx.query_with("SELECT id FROM users WHERE name = ? OR id = ?", ("o'brien", 7)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn query_with(&mut self, sql: &str, params: impl crate::Params) -> Result<Vec<Row>> {
        // Traced with the template: the interpolated text holds the values.
        let op = crate::trace::Op::Query(sql);
        let sql = self.interpolate(sql, params)?;
        traced!(self, op, crate::trace::quiet(self.query(&sql)).await)
    }

    /// Like [`Connection::query_with`], discarding rows; returns the outcome.
    pub async fn query_drop_with(
        &mut self,
        sql: &str,
        params: impl crate::Params,
    ) -> Result<Outcome> {
        let op = crate::trace::Op::Query(sql);
        let sql = self.interpolate(sql, params)?;
        traced!(
            self,
            op,
            crate::trace::quiet(self.query_drop(&sql)).await,
            outcome
        )
    }

    /// Marks the session for `ROLLBACK` before its next command (a
    /// [`crate::Transaction`] was dropped without commit or rollback).
    pub(crate) fn schedule_rollback(&mut self) {
        self.session.tx_dropped();
    }

    /// The session machine (transactions drive it).
    pub(crate) fn session_mut(&mut self) -> &mut crate::session::Session {
        &mut self.session
    }

    /// The front reply ended: off the queue; the next owed reply, if any
    /// (a pipeline's), starts a new packet sequence.
    pub(crate) fn reply_finished(&mut self, ok: bool) {
        self.session.finish(ok);
        if self.session.owes() {
            self.chan.framer().expect_reply();
        }
    }

    /// True when the connection can no longer be used: closed, broken, the
    /// server closed or reset it (the ring sees that even while the
    /// connection sits idle, so a pool never hands such a connection out),
    /// or an exchange nobody can resume was cut short (a `change_user` or a
    /// `LOAD DATA LOCAL` whose future was dropped midway): its next command
    /// would fail with [`ErrorKind::Broken`].
    pub fn is_broken(&self) -> bool {
        self.chan.is_broken() || self.chan.peer_gone() || !self.session.recoverable()
    }

    /// True once the server closed or reset the connection (nothing more
    /// can arrive), seen without sending anything.
    pub(crate) fn peer_gone(&self) -> bool {
        self.chan.peer_gone()
    }

    /// The outcome of the last statement (affected rows, insert id, warnings, info).
    pub fn last_outcome(&self) -> &Outcome {
        &self.last
    }

    /// A handle that can interrupt this connection's running statement from
    /// another task (`KILL QUERY`, sent over a separate connection).
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::new(self.opts.clone(), self.connection_id)
    }

    /// Starts a pipeline: queries added to it are sent together and their
    /// replies read in order, saving a round trip per query.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let results = cnx.pipeline().query("SELECT 1").query("UPDATE t SET n = n + 1").run().await?;
    /// for r in results {
    ///     let stage = r?; // each stage succeeds or fails on its own
    ///     println!("{} rows, {} affected", stage.rows.len(), stage.outcome.affected_rows);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pipeline(&mut self) -> crate::Pipeline<'_> {
        crate::Pipeline::new(self)
    }

    /// Opens a cursor: `execute` a statement, then `fetch_*` its rows.
    pub fn cursor(&mut self) -> Cursor<'_> {
        Cursor::new(self)
    }

    pub(crate) fn protocol_error(&mut self, e: crate::proto::ProtoError) -> Error {
        let err = Error::from(e);
        self.chan.mark_broken(err.to_string());
        err
    }

    /// The columns of the current (or last) result set.
    pub fn columns(&self) -> &Arc<[Column]> {
        &self.columns
    }

    /// True when the current result's rows are binary (from a prepared statement).
    pub(crate) fn binary_rows(&self) -> bool {
        self.session.binary_rows()
    }

    /// True while rows of a result set remain unread.
    pub fn has_pending_rows(&self) -> bool {
        self.session.in_rows()
    }

    /// Tells the host set what an error says about this connection's host:
    /// a lost connection denies it for a while; a write refused as read-only
    /// (1290, 1792) marks it read-only.
    pub(crate) fn note_host_error(&self, e: &Error) {
        let Some(lease) = &self.host else { return };
        match e.kind() {
            ErrorKind::Io | ErrorKind::Protocol => {
                lease.set().failed(lease.index(), &e.to_string());
            }
            ErrorKind::Server if matches!(e.code(), Some(1290 | 1792)) => {
                lease.set().set_read_only(lease.index(), true);
            }
            _ => {}
        }
    }

    /// Which of the options' hosts this connection is on (`None` with a
    /// single host).
    pub fn host_index(&self) -> Option<usize> {
        self.host.as_ref().map(|l| l.index())
    }

    /// True for a read connection on a replica (with `hosts=replication`),
    /// false on the primary or with other options.
    pub fn is_replica(&self) -> bool {
        self.replica
    }

    /// Where this connection goes: `host:port` or the socket path.
    pub fn address(&self) -> String {
        self.opts.address()
    }
}

/// Locates a row's values: text rows (queries) or binary rows (prepared statements).
fn row_fields(
    payload: &[u8],
    columns: &[Column],
    binary: bool,
    out: &mut impl Extend<crate::proto::row::FieldRange>,
) -> std::result::Result<(), crate::proto::ProtoError> {
    if binary {
        crate::proto::binary::binary_row_fields(payload, columns.iter().map(Column::type_byte), out)
    } else {
        text_row_fields(payload, columns.len(), out)
    }
}

/// The next row of the current result set, borrowed from the read buffer;
/// see [`Connection::next_row`]. Cancel-safe: dropped while waiting, the row
/// is read by the next call (or discarded by the next command).
#[must_use = "futures do nothing unless awaited"]
pub struct NextRow<'a> {
    /// `None` once it has returned.
    conn: Option<&'a mut Connection>,
    st: ReadState,
    begun: bool,
    /// The query timeout, from the first wait on.
    deadline: Option<crate::runtime::Sleep>,
}

impl std::fmt::Debug for NextRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextRow").finish_non_exhaustive()
    }
}

impl<'a> std::future::Future for NextRow<'a> {
    type Output = Result<Option<RowRef<'a>>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        let Some(conn) = this.conn.take() else {
            return Poll::Ready(Err(Error::usage("NextRow polled after it returned")));
        };
        if !this.begun {
            this.begun = true;
            if !conn.has_pending_rows() {
                return Poll::Ready(Ok(None));
            }
        }
        let p = match conn.chan.poll_packet(cx, &mut this.st) {
            Poll::Ready(Ok(p)) => p,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some(limit) = conn.query_timeout {
                    let sleep = this
                        .deadline
                        .get_or_insert_with(|| crate::runtime::sleep(limit));
                    if std::pin::Pin::new(sleep).poll(cx).is_ready() {
                        conn.chan.abandon_read(&this.st);
                        return Poll::Ready(Err(conn.timed_out(
                            "reading a row",
                            limit,
                            conn.session.mark(),
                        )));
                    }
                }
                this.conn = Some(conn);
                return Poll::Pending;
            }
        };
        Poll::Ready(match conn.on_row_packet(p) {
            Ok(Some(p)) => conn.row_ref_at(p).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        })
    }
}

impl Drop for NextRow<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.chan.abandon_read(&self.st);
        }
    }
}

mod admin;
mod call;
mod connect;
mod exec;
mod infile;
mod multiplex;
mod pipeline;
mod query;
mod settle;
mod stream;
mod typed;
pub use call::{CallResult, StoredResult};
pub use settle::CancelHandle;
pub use stream::RowStream;
