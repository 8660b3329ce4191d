//! A sans-IO simulated MariaDB server for mysql-uring's deterministic
//! simulation: the driver's real code runs on a simulated kernel that feeds
//! this server the bytes the driver writes and hands the driver the bytes
//! the server produces.
//!
//! The server is an oracle: it shares no code with the driver. It speaks the
//! MariaDB 10.11 client/server protocol (`CLIENT_PROTOCOL_41` only; no TLS,
//! no compression, no session tracking, no multi-statements, no cursors, no
//! bulk execute) for a small SQL subset over one table
//! `t (id BIGINT PRIMARY KEY, v BLOB)`. There are no threads, sockets, clocks
//! or randomness inside: time is virtual nanoseconds passed in by the caller,
//! and every call's effect depends only on the calls before it.
//!
//! # Protocol
//!
//! * Greeting: protocol 10, [`Config::version`], the connection id, a
//!   20-byte scramble derived from the connection id, `CLIENT_MYSQL` clear and
//!   the MariaDB extended capabilities in the last 4 reserved bytes
//!   (`MARIADB_CLIENT_CACHE_METADATA` when [`Config::cache_metadata`]).
//!   Offered: `FOUND_ROWS LONG_FLAG CONNECT_WITH_DB LOCAL_FILES PROTOCOL_41
//!   TRANSACTIONS SECURE_CONNECTION MULTI_RESULTS PS_MULTI_RESULTS
//!   PLUGIN_AUTH CONNECT_ATTRS PLUGIN_AUTH_LENENC_CLIENT_DATA DEPRECATE_EOF`.
//!   Capabilities used are the intersection with the client's.
//! * Authentication: `mysql_native_password` only (another plugin named by
//!   the client gets an AuthSwitchRequest); wrong user or password: ERR 1045
//!   and the connection is closed. The handshake itself takes no time.
//! * Every command's reply starts at the sequence id after the client's last
//!   packet. A wrong client sequence id: ERR 1156 (08S01), close, violation.
//!   A payload over [`Config::max_allowed_packet`]: ERR 1153 (08S01), close
//!   (not a violation).
//! * Metadata cache (`MARIADB_CLIENT_CACHE_METADATA` negotiated): every
//!   column count carries a metadata-follows byte (always 1 for text
//!   results). For COM_STMT_EXECUTE it is 0, and the definitions are left
//!   out, when they are byte-for-byte those this connection last received for
//!   that statement, at prepare or at an execute; what is sent is remembered
//!   per statement (an execute that fails before its metadata is sent
//!   remembers nothing; a sleeping one sends its metadata when it starts, so
//!   it is remembered even if the execute is then killed or fails). Without
//!   `DEPRECATE_EOF` the EOF after the (absent) definitions is still sent.
//!
//! # SQL subset
//!
//! Keywords are case-insensitive; whitespace and comments are free; one
//! trailing `;` is allowed. `?` placeholders only in COM_STMT_PREPARE.
//!
//! * `SELECT <int>`: one LONGLONG column named as the literal's text.
//! * `SELECT <a> + <int>, SLEEP(<secs>)`: column 1 is LONGLONG for an integer
//!   (or a parameter of an integer or NULL type, and at prepare time), DOUBLE
//!   for a literal with `.`/exponent or a FLOAT/DOUBLE/string/decimal
//!   parameter; column 2 is 0. Names are the expressions' text (`? + 1`).
//! * `SELECT SLEEP(<secs>)`: 0 after the sleep. SLEEP adds its seconds of
//!   virtual time to the command's duration (negative or NULL: none). A
//!   statement that sleeps (> 0, text or prepared) sends its result's
//!   metadata when it starts and its row when the sleep ends; an error in
//!   the row (1690 out of range, KILL QUERY's 1317) then follows the
//!   metadata, continuing its sequence ids.
//! * `INSERT INTO t [(id, v)] VALUES (<id>, <v>)[, ...]`: all rows or none;
//!   duplicate: ERR 1062; NULL id or v: ERR 1048 (v is treated as NOT NULL).
//! * `SELECT v FROM t WHERE id = <id>`, `SELECT id, v FROM t ORDER BY id`.
//! * `SELECT seq FROM seq_1_to_<n>`.
//! * `BEGIN [WORK]`, `START TRANSACTION [WITH CONSISTENT SNAPSHOT] [, READ
//!   ONLY | READ WRITE]` (an open transaction is committed first), `COMMIT`,
//!   `ROLLBACK`, `SET [SESSION] autocommit = 0|1` (off: a statement on `t`
//!   opens a transaction; on: commits the open one).
//! * `KILL [QUERY | CONNECTION] <id>`: ERR 1094 for an unknown or closed id.
//!   QUERY: the target's running command ends at once with ERR 1317 (70100)
//!   and no effect (a LOAD DATA reads the rest of the file, then 1317; a
//!   sleeping statement has sent its metadata, and the ERR follows it).
//!   CONNECTION: the target's running command (if any) gets ERR 1927 (70100)
//!   "Connection was killed", then it is closed and rolled back; an idle
//!   target is closed with no output. Killing oneself: 1317 / 1927 + close.
//! * `SET ...` and `DO ...`: OK, ignored.
//! * `LOAD DATA LOCAL INFILE '<file>' INTO TABLE t [FIELDS TERMINATED BY
//!   '<s>'] [LINES TERMINATED BY '<s>']`: the default field terminator is a
//!   TAB, as MariaDB's; backslash escapes and `\N` in the data. 0xFB + file
//!   name after the latency; the OK (affected = rows) or ERR right after the
//!   empty packet. Without `CLIENT_LOCAL_FILES`: ERR 1148. Not preparable
//!   (ERR 1295).
//! * Anything else: ERR 1064 (42000) "... near '<up to 40 chars>' at line
//!   1"; an empty text: ERR 1065. Text with bytes that are not printable
//!   ASCII outside string literals: ERR 1064 and a violation.
//!
//! Transactions are REPEATABLE READ: a transaction's reads see the rows
//! committed before its first read (or its start, with a consistent
//! snapshot) plus its own. An INSERT of a key inserted by another open
//! transaction waits for it (a running command): a commit there gives ERR
//! 1062, a rollback lets it through, [`LOCK_WAIT_TIMEOUT_NS`] gives ERR 1205,
//! and a wait cycle gives the requester ERR 1213 (40001) with its
//! transaction rolled back.
//!
//! # Violations
//!
//! Recorded (see [`Server::violations`]), as "conn N: what": packets out of
//! order; a malformed or SSL-requesting handshake response or
//! COM_CHANGE_USER (ERR 1043, close); an empty or unknown command (ERR
//! 1047); a malformed COM_STMT_EXECUTE (truncated, trailing bytes, no types
//! ever bound, cursor flags, a bad long-data parameter: ERR 1210);
//! malformed COM_STMT_SEND_LONG_DATA / CLOSE / RESET; non-printable bytes
//! where SQL is expected; bytes after COM_QUIT. Server-side errors of
//! well-formed commands (1064, 1062, 1243 unknown statement, ...) are not
//! violations.

#![warn(missing_docs)]

mod conn;
mod db;
mod eval;
mod exec;
mod handshake;
mod lex;
mod proto;
mod sql;
mod stmt;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use conn::Conn;

/// A connection id: also the server's thread id (`CONNECTION_ID()`, the
/// target of `KILL`). The first connection is 1.
pub type ConnId = u32;

/// How long an INSERT waits for a row lock held by another transaction
/// before failing with ERR 1205 (InnoDB's default, 50 s).
pub const LOCK_WAIT_TIMEOUT_NS: u64 = 50_000_000_000;

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The one user (default `sim`).
    pub user: String,
    /// Its password, checked with `mysql_native_password` (default `simpass`).
    pub password: String,
    /// The version string of the greeting (default `5.5.5-10.11.99-MariaDB-sim`).
    pub version: String,
    /// The largest command payload accepted (default 16 MiB); a bigger one
    /// gets ERR 1153 (08S01) and the connection is closed.
    pub max_allowed_packet: usize,
    /// Client bytes the server holds unread per connection (default 256 KiB).
    pub recv_window: usize,
    /// The server starts no new command while more than this many bytes of
    /// output are unsent (default 256 KiB).
    pub out_window: usize,
    /// Offer `MARIADB_CLIENT_CACHE_METADATA` (default true).
    pub cache_metadata: bool,
    /// Every command's reply is produced this long after it starts (a
    /// sleeping statement's metadata excepted: it goes out at the start)
    /// (default 0).
    pub latency_ns: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user: "sim".into(),
            password: "simpass".into(),
            version: "5.5.5-10.11.99-MariaDB-sim".into(),
            max_allowed_packet: 16 << 20,
            recv_window: 256 << 10,
            out_window: 256 << 10,
            cache_metadata: true,
            latency_ns: 0,
        }
    }
}

/// The simulated server.
///
/// # Time
///
/// Every call that takes `now` first runs everything due up to `now`
/// ([`Server::advance`]), in virtual-time order across connections; `now`
/// never goes backwards (a smaller value is treated as the latest seen).
/// A command starts when the previous command of its connection has
/// produced its whole reply and at most `out_window` bytes of output are
/// unsent; its reply (and its effect on the data) is produced at start +
/// `latency_ns` (+ the `SLEEP` of the statement). A statement that sleeps
/// (`SLEEP` > 0) is the exception, as on a real server, which sends a result
/// set's metadata before it evaluates the rows: its metadata (column count,
/// definitions, the EOF without `DEPRECATE_EOF`) is produced at start, and
/// its row and end (or the error in their place) at completion, with the
/// sequence ids running on. Zero-duration commands complete within the
/// call that made them possible (`input`, `output`, `advance`).
///
/// # Closing
///
/// * [`Server::client_closed`]: unread client bytes and unsent output are
///   discarded (commands not yet started never run). A command already
///   running keeps running until its end (as a real server only notices a
///   dead client when it next writes to it): it stays counted by
///   [`Server::running_statements`] and can still be killed; when it
///   completes, its effects are applied exactly as if the client were there
///   (an autocommit INSERT commits, a COMMIT commits), its reply is thrown
///   away, and then the connection is cleaned up: an open transaction rolls
///   back, prepared statements are freed. A half-received LOAD DATA ends at
///   once with nothing applied. With nothing running, cleanup is immediate.
/// * The server closes a connection on COM_QUIT, `KILL [CONNECTION]`, a
///   failed login or COM_CHANGE_USER, and fatal protocol errors (packets out
///   of order, a packet over `max_allowed_packet`, a bad handshake). Its
///   last packets (an ERR, where there is one) stay queued:
///   [`Server::server_closed`] is true at once, and the caller delivers EOF
///   to the client after [`Server::pending_output`] reaches 0.
/// * [`Server::drop_connection`] is a crash of the connection: the running
///   command is aborted (no effects), the transaction rolls back, queued
///   output is discarded.
pub struct Server {
    cfg: Config,
    conns: Vec<Conn>,
    db: db::Db,
    now: u64,
    violations: Vec<String>,
    /// Connections changed by another connection's command (KILL, a lock
    /// released) that must be pumped at the current time.
    dirty: Vec<ConnId>,
}

impl Server {
    /// A server with an empty table `t`.
    pub fn new(cfg: Config) -> Server {
        Server {
            cfg,
            conns: Vec::new(),
            db: db::Db::default(),
            now: 0,
            violations: Vec::new(),
            dirty: Vec::new(),
        }
    }

    /// Changes the latency of commands that start from now on.
    pub fn set_latency(&mut self, ns: u64) {
        self.cfg.latency_ns = ns;
    }

    /// A client connected at `now`: the greeting is queued as output.
    pub fn connect(&mut self, now: u64) -> ConnId {
        self.advance(now);
        let id = ConnId::try_from(self.conns.len() + 1).expect("too many connections");
        let ext = if self.cfg.cache_metadata {
            proto::caps::EXT_CACHE_METADATA
        } else {
            0
        };
        let mut conn = Conn::new(id);
        let g = handshake::greeting(&self.cfg.version, id, &conn.scramble, ext);
        let mut seq = 0;
        let mut out = Vec::new();
        wire::put_packet(&mut out, &mut seq, &g);
        conn.out.push(&out);
        self.conns.push(conn);
        id
    }

    /// Client bytes arrived at `now` (any split). Returns how many were
    /// accepted: at most `recv_window` minus what the server holds unread
    /// (the caller keeps the rest and offers it again later, e.g. after
    /// [`Server::output`] or [`Server::advance`]). Bytes for a connection
    /// the server closed are swallowed (all accepted); after
    /// [`Server::client_closed`] none are.
    pub fn input(&mut self, c: ConnId, bytes: &[u8], now: u64) -> usize {
        self.advance(now);
        let now = self.now;
        let window = self.cfg.recv_window;
        let conn = self.conn_mut(c);
        if conn.client_gone {
            return 0;
        }
        if conn.is_closed() {
            if conn.quit && !bytes.is_empty() {
                let v = format!("conn {c}: {} bytes sent after COM_QUIT", bytes.len());
                self.violations.push(v);
            }
            return bytes.len();
        }
        let n = bytes.len().min(window.saturating_sub(conn.inbuf.len()));
        conn.inbuf.push(&bytes[..n]);
        self.pump(c, now);
        self.drain_dirty(now);
        n
    }

    /// How many more client bytes [`Server::input`] would accept now.
    pub fn recv_space(&self, c: ConnId) -> usize {
        let conn = self.conn(c);
        if conn.client_gone {
            0
        } else if conn.is_closed() {
            usize::MAX
        } else {
            self.cfg.recv_window.saturating_sub(conn.inbuf.len())
        }
    }

    /// Takes up to `max` bytes of output at `now`. Taking output may let
    /// the next command start (see `out_window`).
    pub fn output(&mut self, c: ConnId, max: usize, now: u64) -> Vec<u8> {
        self.advance(now);
        let now = self.now;
        let bytes = self.conn_mut(c).out.take(max);
        self.pump(c, now);
        self.drain_dirty(now);
        bytes
    }

    /// Bytes waiting to be taken with [`Server::output`].
    pub fn pending_output(&self, c: ConnId) -> usize {
        self.conn(c).out.len()
    }

    /// Runs everything due at or before `now`, in time order across
    /// connections (ties by connection id): commands whose latency or sleep
    /// ended, lock waits that timed out, and the commands that can start
    /// after them.
    pub fn advance(&mut self, now: u64) {
        let now = now.max(self.now);
        while let Some((t, c)) = self.next_event().filter(|(t, _)| *t <= now) {
            self.now = t;
            self.pump(c, t);
            self.drain_dirty(t);
        }
        self.now = now;
    }

    /// The earliest time at which something happens by itself (a command
    /// completing, a lock wait timing out), if anything is pending.
    pub fn next_wake(&self) -> Option<u64> {
        self.next_event().map(|(t, _)| t)
    }

    fn next_event(&self) -> Option<(u64, ConnId)> {
        self.conns
            .iter()
            .filter_map(|c| c.due_at().map(|t| (t, c.id)))
            .min()
    }

    /// The client closed or reset the connection at `now` (see "Closing" in
    /// [`Server`]).
    pub fn client_closed(&mut self, c: ConnId, now: u64) {
        self.advance(now);
        let now = self.now;
        let conn = self.conn_mut(c);
        conn.client_gone = true;
        conn.inbuf.clear();
        conn.asm.reset();
        conn.out.clear();
        self.pump(c, now);
        self.drain_dirty(now);
    }

    /// True once the server has closed the connection (COM_QUIT, KILL, a
    /// failed login, a fatal protocol error, [`Server::drop_connection`], or
    /// the cleanup after [`Server::client_closed`]). Deliver EOF to the
    /// client once [`Server::pending_output`] is 0.
    pub fn server_closed(&self, c: ConnId) -> bool {
        self.conn(c).is_closed()
    }

    /// Fault injection: the connection's server thread dies at `now`; the
    /// running command is aborted without effects, the transaction rolls
    /// back, and queued output is discarded.
    pub fn drop_connection(&mut self, c: ConnId, now: u64) {
        self.advance(now);
        let now = self.now;
        self.abort_busy(c);
        self.close(c);
        let conn = self.conn_mut(c);
        conn.out.clear();
        self.drain_dirty(now);
    }

    /// The committed rows of table `t` (id -> v).
    pub fn committed(&self) -> &BTreeMap<i64, Vec<u8>> {
        self.db.committed()
    }

    /// Every committed write in commit order, with the connection that
    /// committed it.
    pub fn commit_log(&self) -> &[(ConnId, i64)] {
        self.db.log()
    }

    /// Commands in progress over all connections: running (latency, sleep),
    /// waiting for a row lock, or receiving a LOAD DATA file; including those
    /// whose client closed the connection but that have not ended yet.
    pub fn running_statements(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| !c.is_closed() && c.busy.is_some())
            .count()
    }

    /// Protocol violations seen from clients, as text (any is a driver bug).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    fn conn(&self, c: ConnId) -> &Conn {
        c.checked_sub(1)
            .and_then(|i| self.conns.get(i as usize))
            .unwrap_or_else(|| panic!("simserver: no connection {c}"))
    }

    fn conn_mut(&mut self, c: ConnId) -> &mut Conn {
        c.checked_sub(1)
            .and_then(|i| self.conns.get_mut(i as usize))
            .unwrap_or_else(|| panic!("simserver: no connection {c}"))
    }

    fn violation(&mut self, c: ConnId, what: impl std::fmt::Display) {
        self.violations.push(format!("conn {c}: {what}"));
    }

    fn drain_dirty(&mut self, t: u64) {
        while let Some(c) = self.dirty.pop() {
            self.pump(c, t);
        }
    }
}
