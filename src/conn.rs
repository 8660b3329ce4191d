//! [`Connection`]: one session with the server.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::column::Column;
use crate::cursor::Cursor;
use crate::error::{Error, ErrorKind, Result, ServerError};
use crate::io::channel::ReadState;
use crate::io::tls::{TlsFiles, Verify, client_config};
use crate::io::{Channel, Stream};
use crate::opts::SslMode;
use crate::opts::{IntoOpts, Opts};
use crate::proto::command::{write_init_db, write_query, write_simple};
use crate::proto::consts::{com, status};
use crate::proto::handshake::{Handshake, HandshakeError, HandshakeOpts, Step, TlsMode};
use crate::proto::packets::OkPacket;
use crate::proto::result::{ResultEvent, ResultMachine};
use crate::proto::row::text_row_fields;
use crate::row::{Fields, Row, RowRef};
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

/// Where the current command's response is.
#[derive(Debug)]
enum Response {
    /// Nothing unread.
    Idle,
    /// A response (or a further result set) has not been read yet.
    Pending(ResultMachine),
    /// A `COM_STMT_PREPARE` response is being read; `id` once its OK was
    /// seen (a prepare abandoned after that has its statement closed).
    Prepare {
        machine: crate::proto::stmt::PrepareMachine,
        id: Option<u32>,
    },
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
    response: Response,
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
    /// A [`crate::Transaction`] was dropped unfinished: `ROLLBACK` runs before
    /// the next command.
    rollback_pending: bool,
    /// The connection-phase state machine, kept for `COM_CHANGE_USER`.
    handshake: Handshake,
    /// Whole responses owed after `response` (a pipeline abandoned midway).
    owed: u32,
    /// Long data went out for this statement and its execute did not: the
    /// server keeps it until a reset, which runs before the next command.
    reset_stmt: Option<u32>,
    /// An exchange that cannot be resumed (authentication in `change_user`,
    /// file data of `LOAD DATA LOCAL INFILE`) was interrupted: why.
    poisoned: Option<&'static str>,
    /// `KILL QUERY` in flight for a statement that timed out: awaited before
    /// the next command, so it can never hit a later statement.
    killer: Option<crate::runtime::JoinHandle<Result<()>>>,
    /// A `begin` was abandoned after sending `START TRANSACTION`: roll back
    /// before the next command.
    rollback_on_abandon: bool,
    /// True while [`Connection::drain`] reads abandoned replies.
    draining: bool,
    /// Default database and charset, as last known.
    session: SessionTrack,
    /// True while `COMMIT` of a [`crate::Transaction`] runs: a connection
    /// lost then leaves the outcome unknown.
    pub(crate) committing: bool,
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

/// Runs `$fut` (which borrows `$self`) under the query timeout, if any. A
/// timed-out command is abandoned, not broken: what it left on the wire is
/// the connection's to finish (see [`Connection::drain`]), and the statement
/// is interrupted on the server.
///
/// A connection lost inside a transaction fails with
/// [`ErrorKind::TransactionLost`] instead of the bare I/O error.
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
        let in_tx = $self.status & crate::proto::consts::status::IN_TRANS != 0;
        let r = match $self.query_timeout {
            None => $fut.await,
            Some(limit) => {
                let r = crate::io::uring::timeout(limit, $fut).await;
                match r {
                    Ok(r) => r,
                    Err(_) => Err($self.timed_out($what, limit)),
                }
            }
        };
        match r {
            Err(e) => Err($self.command_failed(e, in_tx)),
            r => r,
        }
    }};
}

impl Connection {
    /// Connects and authenticates; see [`connect`].
    pub async fn connect(opts: impl IntoOpts) -> Result<Connection> {
        // Outside a driver runtime: say what to do, before doing anything.
        crate::io::uring::Core::current()?;
        let opts = opts.into_opts()?;
        match &opts.hosts {
            Some(set) => Self::connect_any(&opts, set).await,
            None => Self::connect_one(&opts).await,
        }
    }

    /// Connects to the one host of `opts`, within the connect timeout.
    async fn connect_one(opts: &Opts) -> Result<Connection> {
        let mut conn = crate::trace::connect(opts, Self::connect_timed(opts)).await?;
        if opts.prefer_socket && opts.socket.is_none() && is_local(&opts.host) {
            conn = conn.switch_to_socket().await;
        }
        Ok(conn)
    }

    async fn connect_timed(opts: &Opts) -> Result<Connection> {
        match opts.connect_timeout {
            None => Self::connect_inner(opts).await,
            Some(limit) => {
                match crate::io::uring::timeout(limit, Self::connect_inner(opts)).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "connecting to {} did not complete within {:?}: the server is unreachable or not answering",
                            opts.address(),
                            limit
                        ),
                    )),
                }
            }
        }
    }

    /// `prefer_socket`: the same server over its Unix socket, when it has
    /// one this process can open; otherwise this connection as it is.
    async fn switch_to_socket(mut self) -> Connection {
        let path = match self.query("SELECT @@socket").await {
            Ok(rows) => rows
                .first()
                .and_then(|r| r.get::<Option<String>>(0).ok().flatten()),
            Err(_) => None,
        };
        let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) else {
            return self;
        };
        let mut o = (*self.opts).clone();
        o.socket = Some(std::path::PathBuf::from(path));
        o.prefer_socket = false;
        match Self::connect_timed(&o).await {
            Ok(c) => {
                let _ = self.close().await;
                c
            }
            Err(_) => self,
        }
    }

    /// Connects to one of several hosts: the candidates in the mode's order,
    /// skipping those that fail or do not suit the role (not ready, read-only
    /// for writes, stopped or lagging replicas for reads).
    async fn connect_any(opts: &Opts, set: &Arc<crate::hosts::HostSet>) -> Result<Connection> {
        use crate::hosts::{HostMode, Role};
        let mut tried: Vec<String> = Vec::new();
        // Reads: a primary is kept aside while replicas remain to be tried.
        let mut fallback: Option<(usize, Connection)> = None;
        for i in set.candidates(opts.role) {
            let addr = set.addr(i).clone();
            let mut one = opts.clone();
            one.hosts = None;
            one.host = addr.host.clone();
            one.port = addr.port;
            let mut conn = match Self::connect_one(&one).await {
                Ok(c) => c,
                // The user's own settings: the same on every host.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Auth | ErrorKind::Config | ErrorKind::Tls
                    ) =>
                {
                    return Err(e);
                }
                Err(e) if e.code() == Some(1049) => return Err(e),
                Err(e) => {
                    set.failed(i, &e.to_string());
                    tried.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            let verdict = match (set.mode(), opts.role) {
                (HostMode::Galera, _) => conn.galera_ready().await,
                (HostMode::Replication, Role::Write) => conn.writable().await,
                (HostMode::Replication, Role::Read) => conn.replica_state(opts).await,
                _ => Ok(Fit::Yes),
            };
            if set.mode() == HostMode::Replication && opts.role == Role::Read {
                match &verdict {
                    Ok(Fit::Replica) => set.set_replica(i, true),
                    Ok(Fit::Yes) => {
                        set.set_replica(i, false);
                        set.succeeded(i);
                        if fallback.is_none() {
                            fallback = Some((i, conn));
                            continue;
                        }
                    }
                    _ => {}
                }
            }
            match verdict {
                Ok(Fit::Yes | Fit::Replica) => {
                    set.succeeded(i);
                    if set.mode() == HostMode::Replication && opts.role == Role::Write {
                        set.set_read_only(i, false);
                        set.set_replica(i, false);
                    }
                    conn.replica = matches!(verdict, Ok(Fit::Replica));
                    conn.host = Some(set.open(i));
                    return Ok(conn);
                }
                Ok(Fit::No { why, deny }) => {
                    if deny {
                        set.failed(i, &why);
                    }
                    if set.mode() == HostMode::Replication && opts.role == Role::Write {
                        set.set_read_only(i, true);
                    }
                    tried.push(format!("{addr}: {why}"));
                }
                Err(e) => {
                    set.failed(i, &e.to_string());
                    tried.push(format!("{addr}: {e}"));
                }
            }
            let _ = conn.close().await;
        }
        if let Some((i, mut conn)) = fallback {
            conn.host = Some(set.open(i));
            return Ok(conn);
        }
        let want = match (set.mode(), opts.role) {
            (HostMode::Replication, Role::Write) => "no writable server",
            (HostMode::Replication, Role::Read) => "no server for reads",
            (HostMode::Galera, _) => "no ready Galera node",
            _ => "no server could be reached",
        };
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("{want} among the {} hosts: {}", set.len(), tried.join("; ")),
        ))
    }

    /// Galera: is this node ready for queries (`wsrep_ready` ON, state
    /// Synced)? A server without wsrep is taken as ready.
    async fn galera_ready(&mut self) -> Result<Fit> {
        let rows = match self
            .query(
                "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME IN ('WSREP_READY', 'WSREP_LOCAL_STATE', 'WSREP_LOCAL_STATE_COMMENT') \
                 UNION ALL SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES \
                 WHERE VARIABLE_NAME = 'WSREP_ON'",
            )
            .await
        {
            Ok(rows) => rows,
            // No such tables (MySQL 8): not a Galera node.
            Err(e) if e.kind() == ErrorKind::Server => return Ok(Fit::Yes),
            Err(e) => return Err(e),
        };
        let mut ready = None;
        let mut state = None;
        let mut comment = String::new();
        for r in &rows {
            let name: String = r.get(0)?;
            let value: String = r.get::<Option<String>>(1)?.unwrap_or_default();
            match name.to_ascii_uppercase().as_str() {
                "WSREP_READY" => ready = Some(value.eq_ignore_ascii_case("ON")),
                "WSREP_LOCAL_STATE" => state = value.parse::<u32>().ok(),
                // wsrep compiled in but off: a plain server.
                "WSREP_ON" if !value.eq_ignore_ascii_case("ON") => return Ok(Fit::Yes),
                "WSREP_ON" => {}
                _ => comment = value,
            }
        }
        Ok(match (ready, state) {
            (None, None) => Fit::Yes,
            (Some(true), Some(4)) | (Some(true), None) => Fit::Yes,
            _ => Fit::No {
                why: format!(
                    "Galera node not ready (wsrep_ready={}, wsrep_local_state={} {comment})",
                    if ready == Some(true) { "ON" } else { "OFF" },
                    state.map_or("?".to_string(), |s| s.to_string())
                ),
                deny: true,
            },
        })
    }

    /// Replication, writes: does this server take writes (`@@read_only` off)?
    async fn writable(&mut self) -> Result<Fit> {
        let rows = self.query("SELECT @@read_only").await?;
        let ro: i64 = rows.first().map(|r| r.get(0)).transpose()?.unwrap_or(0);
        Ok(if ro != 0 {
            Fit::No {
                why: "read-only (@@read_only = 1)".into(),
                deny: false,
            }
        } else {
            Fit::Yes
        })
    }

    /// Replication, reads: a replica whose replication runs within the lag
    /// bound is used; a server that is not a replica is used as the read
    /// fallback when that is allowed. A replica that lost its primary (I/O
    /// thread reconnecting) but still applies what it has stays usable.
    pub(crate) async fn replica_state(&mut self, opts: &Opts) -> Result<Fit> {
        let rows = match self.query("SHOW SLAVE STATUS").await {
            Ok(rows) => rows,
            // No right to look (1227): assume a working replica.
            Err(e) if e.code() == Some(1227) => return Ok(Fit::Replica),
            Err(e) => return Err(e),
        };
        let Some(r) = rows.first() else {
            return Ok(if opts.read_fallback {
                Fit::Yes
            } else {
                Fit::No {
                    why: "not a replica, and read_fallback is off".into(),
                    deny: false,
                }
            });
        };
        let sql_running: String = r
            .get::<Option<String>>("Slave_SQL_Running")?
            .unwrap_or_default();
        if !sql_running.eq_ignore_ascii_case("Yes") {
            return Ok(Fit::No {
                why: "replica with replication stopped (Slave_SQL_Running = No)".into(),
                deny: true,
            });
        }
        let lag: Option<u64> = r.get::<Option<u64>>("Seconds_Behind_Master")?;
        if let (Some(lag), Some(max)) = (lag, opts.max_replica_lag) {
            if Duration::from_secs(lag) > max {
                return Ok(Fit::No {
                    why: format!("replica lagging {lag} s behind (max_replica_lag {max:?})"),
                    deny: true,
                });
            }
        }
        Ok(Fit::Replica)
    }

    /// For a pool handing out a read connection: false when it should be
    /// replaced (its replica stopped or fell behind, or it is on the primary
    /// as a fallback while a replica is usable again). Checks at most once
    /// per `replica_check_interval` per host.
    pub(crate) async fn still_fits(&mut self) -> bool {
        use crate::hosts::{HostMode, Role};
        let Some(lease) = &self.host else { return true };
        let (set, i) = (lease.set().clone(), lease.index());
        if set.mode() != HostMode::Replication || self.opts.role != Role::Read {
            return true;
        }
        if set.lag_fresh(i, self.opts.replica_check_interval) {
            return true;
        }
        if !self.replica {
            return set.candidates(Role::Read).first() == Some(&i);
        }
        let opts = self.opts.clone();
        match self.replica_state(&opts).await {
            Ok(Fit::Replica | Fit::Yes) => true,
            Ok(Fit::No { why, .. }) => {
                set.failed(i, &why);
                false
            }
            Err(e) => {
                set.failed(i, &e.to_string());
                false
            }
        }
    }

    async fn open_stream(opts: &Opts) -> Result<Stream> {
        let addr = opts.address();
        if let Some(path) = &opts.socket {
            return Stream::connect_unix(path)
                .await
                .map_err(|e| Error::io(&format!("connecting to socket {addr}"), e));
        }
        let addrs: Vec<SocketAddr> = match opts.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, opts.port)],
            Err(_) => {
                // getaddrinfo blocks: run it off the core.
                let (host, port) = (opts.host.clone(), opts.port);
                crate::io::uring::spawn_blocking(move || {
                    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                        .map(Iterator::collect::<Vec<_>>)
                })
                .await
                .and_then(|r| r)
                .map_err(|e| Error::io(&format!("resolving host '{}'", opts.host), e))?
            }
        };
        let mut last = None;
        for a in addrs {
            match Stream::connect_tcp(a, opts.tcp_nodelay, opts.tcp_keepalive).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => Error::io(&format!("connecting to {addr}"), e),
            None => Error::new(
                ErrorKind::Io,
                format!("host '{}' resolved to no address", opts.host),
            ),
        })
    }

    async fn connect_inner(opts: &Opts) -> Result<Connection> {
        let stream = Self::open_stream(opts).await?;
        let mut chan = Channel::new(stream, opts.max_packet_size);
        let mut hs = Handshake::new(HandshakeOpts {
            user: opts.user.clone(),
            password: opts.password.clone().unwrap_or_default().into_bytes(),
            database: opts.database.clone(),
            max_packet: opts.max_packet_size.min(u32::MAX as usize) as u32,
            extra_capabilities: if opts.multi_statements {
                crate::proto::consts::caps::MULTI_STATEMENTS
            } else {
                0
            } | if opts.local_infile_dirs.is_empty()
                && !opts.local_infile_reader
            {
                0
            } else {
                crate::proto::consts::caps::LOCAL_FILES
            },
            secure_transport: chan.is_secure(),
            allow_cleartext_password: opts.allow_cleartext_password,
            attributes: opts.attributes.clone(),
            server_public_key: match &opts.server_public_key {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    Error::config(format!(
                        "cannot read server_public_key file {}: {e}",
                        path.display()
                    ))
                })?),
                None => None,
            },
            allow_public_key_retrieval: opts.allow_public_key_retrieval,
            tls: match opts.ssl_mode {
                SslMode::Disabled => TlsMode::Disabled,
                SslMode::Preferred => TlsMode::Preferred,
                _ => TlsMode::Required,
            },
            compression: opts.compression,
        });
        let mut out = Vec::new();
        loop {
            let p = chan.read_packet().await.map_err(|e| {
                if e.kind() == ErrorKind::Io {
                    Error::new(
                        ErrorKind::Io,
                        format!(
                            "{e} during the handshake with {} (is this a MySQL/MariaDB port?)",
                            opts.address()
                        ),
                    )
                } else {
                    e
                }
            })?;
            let step = hs
                .on_packet(&chan.buf()[p], &mut out)
                .map_err(|e| handshake_error(e, opts))?;
            match step {
                // Sent together with the read of the reply.
                Step::Send => chan.push_packet(&out)?,
                Step::Read => {}
                Step::Done => break,
                Step::StartTls => {
                    chan.push_packet(&out)?;
                    let verify = match opts.ssl_mode {
                        SslMode::Preferred | SslMode::Disabled => Verify::Nothing,
                        SslMode::VerifyCa => Verify::CaOnly,
                        SslMode::Required | SslMode::VerifyIdentity => Verify::Identity,
                    };
                    let files = TlsFiles {
                        ca: opts.ssl_ca.as_deref(),
                        cert: opts.ssl_cert.as_deref(),
                        key: opts.ssl_key.as_deref(),
                    };
                    let config = client_config(&files, verify)?;
                    let name = match (&opts.tls_server_name, &opts.socket) {
                        (Some(n), _) => n.as_str(),
                        (None, Some(_)) => "localhost",
                        (None, None) => opts.host.as_str(),
                    };
                    chan.upgrade_tls(config, name).await?;
                    let step = hs
                        .tls_established(&mut out)
                        .map_err(|e| handshake_error(e, opts))?;
                    // Unverified (opportunistic) TLS never counts as secure.
                    hs.set_secure_transport(
                        verify != Verify::Nothing || chan.is_secure() && opts.socket.is_some(),
                    );
                    if step == Step::Send {
                        chan.push_packet(&out)?;
                    }
                }
            }
        }
        if let Some(alg) = hs.compression() {
            chan.enable_compression(alg)?;
        }
        let hello = hs.hello().expect("handshake done").clone();
        let mut conn = Connection {
            chan,
            capabilities: hs.capabilities(),
            server_version: hello.version().to_string(),
            connection_id: hello.connection_id,
            mariadb: hello.is_mariadb(),
            status: hello.status,
            response: Response::Idle,
            columns: Arc::from(Vec::new()),
            fields: Vec::with_capacity(16),
            last: Outcome::default(),
            query_timeout: opts.query_timeout,
            opts: std::sync::Arc::new(opts.clone()),
            stmts: crate::statement::StmtCache::new(opts.stmt_cache_size),
            mariadb_caps: hs.mariadb_capabilities(),
            bulk_off: false,
            rollback_pending: false,
            handshake: hs,
            owed: 0,
            reset_stmt: None,
            poisoned: None,
            killer: None,
            rollback_on_abandon: false,
            draining: false,
            session: SessionTrack::new(opts.database.as_deref()),
            committing: false,
            host: None,
            replica: false,
            trace_rows: Default::default(),
        };
        conn.apply_session_setup().await?;
        Ok(conn)
    }

    /// Applies the options' session setup (`charset`, then the `init`
    /// statements): after connecting, and again after the server reset the
    /// session (`change_user`, `reset`).
    async fn apply_session_setup(&mut self) -> Result<()> {
        let opts = self.opts.clone();
        if let Some(cs) = &opts.charset {
            self.query_drop(&format!("SET NAMES {cs}")).await?;
        }
        for sql in &opts.init {
            self.query_drop(sql).await?;
        }
        if opts.read_your_writes && opts.role == crate::hosts::Role::Write && self.mariadb {
            // Read-your-writes: the server reports each write's GTID in its
            // OK packet, so noting it costs no round trip.
            self.query_drop(
                "SET SESSION session_track_system_variables = \
                 CONCAT_WS(',', NULLIF(@@session_track_system_variables, ''), 'last_gtid')",
            )
            .await?;
        }
        Ok(())
    }

    /// The GTID of this session's last write, as the server reported it
    /// (MariaDB, with `read_your_writes`: the session tracks `last_gtid`).
    pub fn last_gtid(&self) -> Option<&str> {
        self.session.last_gtid.as_deref()
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
        self.session.database.as_deref()
    }

    /// The connection's character set (`character_set_client`): the one of
    /// the options (`utf8mb4` by default), then as the server reports changes
    /// (`SET NAMES` run as SQL included; tracked by default through
    /// `session_track_system_variables`).
    pub fn charset(&self) -> &str {
        &self.session.charset
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
        self.status & status::IN_TRANS != 0 && !self.rollback_pending
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
                || crate::escape::charset_has_multibyte_hazard(&self.session.charset),
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
        self.rollback_pending = true;
    }

    /// True when the connection can no longer be used (closed, broken, timed out).
    pub fn is_broken(&self) -> bool {
        self.chan.is_broken()
    }

    /// The outcome of the last statement (affected rows, insert id, warnings, info).
    pub fn last_outcome(&self) -> &Outcome {
        &self.last
    }

    /// A handle that can interrupt this connection's running statement from
    /// another task (`KILL QUERY`, sent over a separate connection).
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            opts: self.opts.clone(),
            connection_id: self.connection_id,
        }
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

    /// Sends a query and reads the start of its response, like Connector/Python's
    /// `cmd_query`: a result set's columns (then read rows with
    /// [`get_rows`](Connection::get_rows) or [`get_row`](Connection::get_row)),
    /// or the outcome of a statement without rows.
    ///
    /// Rows left unread from an earlier query are read and discarded first.
    pub async fn cmd_query(&mut self, sql: &str) -> Result<QueryResult> {
        let op = crate::trace::Op::Query(sql);
        timed!(self, "the query", traced(op), self.cmd_query_inner(sql))
    }

    async fn cmd_query_inner(&mut self, sql: &str) -> Result<QueryResult> {
        if self.needs_drain() {
            self.drain().await?;
        }
        self.last = Outcome::default();
        {
            let (framer, out) = self.chan.encoder()?;
            write_query(framer, out, sql.as_bytes())?;
        }
        // The query is written together with the read of its reply.
        self.response = Response::Pending(self.result_machine());
        self.read_result_start().await
    }

    /// Runs a statement and discards any rows; returns its outcome.
    pub async fn query_drop(&mut self, sql: &str) -> Result<Outcome> {
        let op = crate::trace::Op::Query(sql);
        // Inline, not a helper: another future layer would cost a copy of
        // it on every call, feature or not.
        traced!(
            self,
            op,
            match self.cmd_query(sql).await? {
                QueryResult::Done(o) => {
                    timed!(self, "reading further results", self.consume(true))?;
                    Ok(o)
                }
                QueryResult::Rows(_) => {
                    timed!(self, "reading the result", self.consume(true))?;
                    Ok(self.last.clone())
                }
            },
            outcome
        )
    }

    /// Runs a statement that `drain` must not precede (the caller settled
    /// the connection just before), discarding rows; returns its outcome.
    pub(crate) async fn query_drop_settled(&mut self, sql: &str) -> Result<Outcome> {
        let op = crate::trace::Op::Query(sql);
        timed!(self, "the query", traced_outcome(op), async {
            self.last = Outcome::default();
            {
                let (framer, out) = self.chan.encoder()?;
                write_query(framer, out, sql.as_bytes())?;
            }
            self.response = Response::Pending(self.result_machine());
            let first = self.read_result_start().await?;
            self.consume(true).await?;
            Ok(match first {
                QueryResult::Done(o) => o,
                QueryResult::Rows(_) => self.last.clone(),
            })
        })
    }

    /// Marks (or clears) a `begin` in progress: abandoned after its
    /// `START TRANSACTION` went out, the next command rolls it back first.
    pub(crate) fn set_rollback_on_abandon(&mut self, on: bool) {
        self.rollback_on_abandon = on;
    }

    /// Runs a query and returns all its rows.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Row>> {
        let op = crate::trace::Op::Query(sql);
        traced!(
            self,
            op,
            match self.cmd_query(sql).await? {
                QueryResult::Rows(_) => self.get_rows().await,
                QueryResult::Done(_) => Ok(Vec::new()),
            }
        )
    }

    /// Reads the next row of the current result set, or `None` at its end.
    pub async fn get_row(&mut self) -> Result<Option<Row>> {
        timed!(self, "reading a row", self.read_row())
    }

    /// Reads the remaining rows of the current result set (Connector/Python's `get_rows`).
    pub async fn get_rows(&mut self) -> Result<Vec<Row>> {
        timed!(self, "reading rows", async {
            let mut rows = Vec::new();
            while let Some(r) = self.read_row().await? {
                rows.push(r);
            }
            Ok(rows)
        })
    }

    /// Reads at most `count` further rows of the current result set
    /// (Connector/Python's `get_rows(count)`): fewer at its end, none when
    /// `count` is 0. The rest stay readable with the next call;
    /// [`has_pending_rows`](Connection::has_pending_rows) tells whether any remain.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// cnx.cmd_query("SELECT id FROM big_table").await?;
    /// while cnx.has_pending_rows() {
    ///     let batch = cnx.get_rows_upto(1000).await?;
    ///     println!("{} rows", batch.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_rows_upto(&mut self, count: usize) -> Result<Vec<Row>> {
        timed!(self, "reading rows", async {
            let mut rows = Vec::with_capacity(count.min(1024));
            while rows.len() < count {
                match self.read_row().await? {
                    Some(r) => rows.push(r),
                    None => break,
                }
            }
            Ok(rows)
        })
    }

    /// Moves to the next result set of the current command: the next
    /// statement of a multi-statement query, or the next set of a `CALL`
    /// (whose last result is the `CALL`'s own outcome, without rows). Unread
    /// rows of the current set are discarded. `Ok(None)` when there are no
    /// more. When a statement in the middle fails, its server error is
    /// returned here, the server runs none after it, and the connection stays
    /// usable.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// use mysql_uring::QueryResult;
    /// let mut set = Some(cnx.cmd_query("CALL report()").await?);
    /// while let Some(result) = set {
    ///     if let QueryResult::Rows(columns) = result {
    ///         println!("{} columns, {} rows", columns.len(), cnx.get_rows().await?.len());
    ///     }
    ///     set = cnx.next_result().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_result(&mut self) -> Result<Option<QueryResult>> {
        timed!(self, "reading the next result", async {
            while self.has_pending_rows() {
                self.next_row_packet().await?;
            }
            if !self.has_pending_response() {
                return Ok(None);
            }
            self.last = Outcome::default();
            self.read_result_start().await.map(Some)
        })
    }

    /// Re-authenticates as another user on this connection
    /// (`COM_CHANGE_USER`), with any auth plugin the handshake supports. The
    /// server resets the session as for a new connection (variables,
    /// temporary tables, open transaction); the charset and `init` statements
    /// of the options are applied again. If the server refuses, the
    /// connection is closed (its session state is then unknown) and the error
    /// says why.
    pub async fn change_user(
        &mut self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<()> {
        let op = crate::trace::Op::ChangeUser { user, database };
        traced!(
            self,
            op,
            self.change_user_untraced(user, password, database).await
        )
    }

    async fn change_user_untraced(
        &mut self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<()> {
        timed!(
            self,
            "change_user",
            self.change_user_inner(user, password, database)
        )?;
        self.apply_session_setup().await
    }

    async fn change_user_inner(
        &mut self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<()> {
        if self.needs_drain() {
            self.drain().await?;
        }
        // The server frees the session's prepared statements.
        self.stmts.forget_all();
        let mut opts = (*self.opts).clone();
        opts.user = user.to_string();
        opts.password = Some(password.to_string());
        opts.database = database.map(str::to_string);
        let mut out = Vec::new();
        self.handshake
            .change_user(user, password.as_bytes(), database, &mut out)
            .map_err(|e| handshake_error(e, &opts))?;
        {
            let (framer, buf) = self.chan.encoder()?;
            crate::proto::command::write_payload(framer, buf, &out)?;
        }
        // An authentication exchange cannot be resumed by someone else.
        self.poisoned = Some("change_user was interrupted during authentication");
        let result: Result<()> = async {
            loop {
                let p = self.chan.read_packet().await?;
                let packet = &self.chan.buf()[p];
                if packet.first() == Some(&0x00) {
                    if let Ok(ok) = crate::proto::packets::parse_ok(packet, self.capabilities) {
                        self.status = ok.status;
                        self.session.on_ok(&ok);
                    }
                }
                match self
                    .handshake
                    .on_packet(packet, &mut out)
                    .map_err(|e| handshake_error(e, &opts))?
                {
                    Step::Send => self.chan.push_packet(&out)?,
                    Step::Read => {}
                    Step::Done => return Ok(()),
                    Step::StartTls => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            "the server asked for TLS in the middle of change_user",
                        ));
                    }
                }
            }
        }
        .await;
        self.poisoned = None;
        match result {
            Ok(()) => {
                // The server resets the session: the charset of the
                // handshake, the database asked for.
                self.session = SessionTrack::new(database);
                self.opts = Arc::new(opts);
                self.rollback_pending = false;
                self.last = Outcome::default();
                Ok(())
            }
            Err(e) => {
                self.chan
                    .mark_broken(format!("change_user as '{user}' failed: {e}"));
                // The server's code and SQLSTATE (e.g. 1045, 28000) stay in the error.
                Err(e.note(
                    "the connection was closed (its session state is unknown after a failed change_user)",
                ))
            }
        }
    }

    /// Checks the server is alive (`COM_PING`).
    pub async fn ping(&mut self) -> Result<()> {
        let op = crate::trace::Op::Ping;
        timed!(
            self,
            "ping",
            traced(op),
            self.simple_command(com::PING, &[])
        )
    }

    /// True when the connection is usable and the server answers a ping
    /// (Connector/Python's `is_connected()`); any failure is `false`, never
    /// an error. Like every command it first settles what an earlier one
    /// left (unread rows are discarded). On `false`, [`reconnect`](Connection::reconnect).
    pub async fn is_connected(&mut self) -> bool {
        !self.chan.is_broken() && self.ping().await.is_ok()
    }

    /// Replaces this session with a new one opened with the same options
    /// (Connector/Python's `reconnect(attempts, delay)`): the old one is
    /// closed first (`COM_QUIT` when it is still usable), then up to
    /// `attempts` connects are tried (at least one), `delay` apart. The new
    /// session gets the options' `charset` and `init` statements again; its
    /// user and database are the options' (those of the last
    /// [`change_user`](Connection::change_user)), not one chosen later with
    /// `USE`; prepared [`Statement`](crate::Statement)s of the old session
    /// are refused. When every attempt fails, the last attempt's error
    /// (kind, server code) is returned, noting how many attempts were made,
    /// and the connection stays closed.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// if !cnx.is_connected().await {
    ///     cnx.reconnect(3, std::time::Duration::from_secs(1)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn reconnect(&mut self, attempts: u32, delay: Duration) -> Result<()> {
        let attempts = attempts.max(1);
        if !self.chan.is_broken() && !self.needs_drain() {
            let quit = match self.chan.encoder() {
                Ok((framer, out)) => write_simple(framer, out, com::QUIT).is_ok(),
                Err(_) => false,
            };
            if quit {
                let _ = crate::io::uring::timeout(self.opts.drain_timeout, self.chan.flush()).await;
            }
        }
        self.chan.mark_broken("closed by reconnect");
        let opts = (*self.opts).clone();
        let mut last = None;
        for i in 0..attempts {
            if i > 0 && !delay.is_zero() {
                crate::io::uring::sleep(delay).await;
            }
            match Connection::connect(opts.clone()).await {
                Ok(new) => {
                    *self = new;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| Error::broken("reconnect made no attempt"));
        Err(e.note(format!(
            "reconnect gave up after {attempts} attempt{} ({delay:?} apart)",
            if attempts == 1 { "" } else { "s" }
        )))
    }

    /// Resets the session without reconnecting (`COM_RESET_CONNECTION`): rolls
    /// back an open transaction, drops temporary tables, releases locks and
    /// clears user variables and session settings, then re-applies the
    /// options' `charset` and `init` statements so the session is as after
    /// [`connect`]. The server also frees the session's prepared statements:
    /// the statement cache is emptied, and [`crate::Statement`]s prepared
    /// before the reset are refused with a clear error. Needs MariaDB 10.2.4+
    /// or MySQL 5.7.3+.
    pub async fn reset(&mut self) -> Result<()> {
        let op = crate::trace::Op::Reset;
        traced!(self, op, self.reset_untraced().await)
    }

    async fn reset_untraced(&mut self) -> Result<()> {
        timed!(
            self,
            "reset",
            self.simple_command(com::RESET_CONNECTION, &[])
        )?;
        self.stmts.forget_all();
        // The default database stays; the charset is the handshake's again.
        self.session = SessionTrack::new(self.session.database.as_deref());
        self.apply_session_setup().await
    }

    /// Changes the default database (`COM_INIT_DB`, like `USE db`);
    /// [`Connection::database`] then returns it.
    pub async fn select_db(&mut self, db: &str) -> Result<()> {
        let op = crate::trace::Op::SelectDb(db);
        timed!(
            self,
            "select_db",
            traced(op),
            self.simple_command(com::INIT_DB, db.as_bytes())
        )?;
        self.session.database = Some(db.to_string());
        Ok(())
    }

    /// Ends the session politely (`COM_QUIT`) and closes the socket. A
    /// connection with an abandoned command still in progress is just closed
    /// (the server ends that session when it sees the socket close).
    pub async fn close(mut self) -> Result<()> {
        if self.chan.is_broken() || self.needs_drain() {
            self.chan.shutdown();
            return Ok(());
        }
        let r = async {
            let (framer, out) = self.chan.encoder()?;
            write_simple(framer, out, com::QUIT)?;
            self.chan.flush().await
        }
        .await;
        self.chan.shutdown();
        r
    }

    async fn simple_command(&mut self, command: u8, arg: &[u8]) -> Result<()> {
        if self.needs_drain() {
            self.drain().await?;
        }
        {
            let (framer, out) = self.chan.encoder()?;
            if command == com::INIT_DB {
                write_init_db(framer, out, arg)?;
            } else {
                write_simple(framer, out, command)?;
            }
        }
        self.response = Response::Pending(self.result_machine());
        match self.read_result_start().await? {
            QueryResult::Done(_) => Ok(()),
            QueryResult::Rows(_) => {
                self.chan.mark_broken("unexpected result set");
                Err(Error::new(
                    ErrorKind::Protocol,
                    "the server answered a command with a result set",
                ))
            }
        }
    }

    /// Reads packets until a result set's columns are known or the statement's
    /// outcome arrives.
    pub(crate) async fn read_result_start(&mut self) -> Result<QueryResult> {
        self.read_result_start_with(None).await
    }

    /// Records an OK that ends a statement's response (or one result of
    /// several) and returns its outcome.
    pub(crate) fn finish_ok(&mut self, outcome: Outcome, done: bool) -> Outcome {
        self.status = outcome.status;
        self.last = outcome;
        if done {
            self.response = Response::Idle;
        }
        self.last.clone()
    }

    /// An ERR ends the response: the error to return.
    pub(crate) fn finish_err(&mut self, e: ServerError) -> Error {
        self.response = Response::Idle;
        Error::server(ErrorKind::Server, e)
    }

    /// [`Connection::read_result_start`], answering a `LOAD DATA LOCAL
    /// INFILE` request from `reader` when one is given.
    async fn read_result_start_with(
        &mut self,
        mut reader: Option<&mut dyn std::io::Read>,
    ) -> Result<QueryResult> {
        let mut columns: Vec<Column> = Vec::new();
        let mut infile_refused: Option<String> = None;
        loop {
            let p = self.chan.read_packet().await?;
            let Response::Pending(machine) = &mut self.response else {
                return Err(Error::usage("no command is waiting for a response"));
            };
            let event = match machine.on_packet(&self.chan.buf()[p.clone()]) {
                Ok(ev) => ev,
                Err(e) => return Err(self.protocol_error(e)),
            };
            let done = machine.is_done();
            let in_rows = machine.in_rows();
            match event {
                ResultEvent::Ok(ok) => {
                    self.session.on_ok(&ok);
                    let outcome = self.finish_ok(Outcome::from_ok(&ok), done);
                    if let Some(why) = infile_refused {
                        return Err(Error::new(ErrorKind::Usage, why));
                    }
                    return Ok(QueryResult::Done(outcome));
                }
                ResultEvent::Err(e) => {
                    let err = self.finish_err(ServerError::from_packet(&e));
                    return Err(match infile_refused {
                        Some(why) => Error::new(
                            ErrorKind::Usage,
                            format!("{why}; the server then said: {err}"),
                        ),
                        None => err,
                    });
                }
                ResultEvent::ColumnCount(n) => {
                    if in_rows {
                        // MariaDB skipped unchanged metadata (an execute's
                        // reply, read here when an abandoned execute is
                        // drained or a further result set follows): the
                        // columns are the ones last read.
                        if self.draining || self.columns.len() == n {
                            return Ok(QueryResult::Rows(self.columns.clone()));
                        }
                        return Err(self.protocol_error(crate::proto::ProtoError::Invalid {
                            what: "column count",
                            detail: format!(
                                "{n} columns without metadata, but the last result had {}",
                                self.columns.len()
                            ),
                        }));
                    }
                    columns.reserve_exact(n)
                }
                ResultEvent::Column(def) => {
                    let packet = self.chan.take_packet(p);
                    columns.push(Column::new(packet, def));
                    if in_rows {
                        break;
                    }
                }
                ResultEvent::ColumnsEnd => break,
                ResultEvent::Row | ResultEvent::End(_) => {
                    return Err(self.protocol_error(crate::proto::ProtoError::Unexpected {
                        expected: "column definitions",
                        first_byte: self.chan.buf().get(p.start).copied(),
                    }));
                }
                ResultEvent::LocalInfile(name) => {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let allowed = if self.draining {
                        // The command was abandoned: send no data at all.
                        Err(format!(
                            "the statement asking for '{name}' was abandoned; no data was sent"
                        ))
                    } else if let Some(r) = reader.take() {
                        // Once data flows it must be finished (or the
                        // connection closed): no one else can resume it.
                        self.poisoned = Some("LOAD DATA LOCAL INFILE was interrupted mid-file");
                        self.send_local_reader(r).await?;
                        self.poisoned = None;
                        continue;
                    } else {
                        local_file(&self.opts, &name)
                    };
                    match allowed {
                        Ok(path) => {
                            self.poisoned = Some("LOAD DATA LOCAL INFILE was interrupted mid-file");
                            self.send_local_file(&path).await?;
                            self.poisoned = None;
                        }
                        Err(why) => {
                            // Refuse: an empty packet means "no data"; the server answers OK/ERR.
                            infile_refused = Some(why);
                            self.chan.push_packet(&[])?;
                        }
                    }
                }
            }
        }
        self.columns = Arc::from(columns);
        Ok(QueryResult::Rows(self.columns.clone()))
    }

    /// Streams a local file for `LOAD DATA LOCAL INFILE` (io_uring file reads),
    /// then the empty packet that ends it.
    async fn send_local_file(&mut self, path: &std::path::Path) -> Result<()> {
        const CHUNK: usize = 64 * 1024;
        let file = std::fs::File::open(path).map_err(|e| {
            Error::io(
                &format!("opening {} for LOAD DATA LOCAL INFILE", path.display()),
                e,
            )
        })?;
        let mut pos = 0u64;
        let mut buf = Vec::with_capacity(CHUNK);
        loop {
            buf.clear();
            let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
            let (r, b) = crate::io::uring::socket::read_at(fd, buf, pos).await;
            buf = b;
            let n = match r {
                Ok(n) => n,
                Err(e) => {
                    return Err(self.abort_local_infile(&path.display().to_string(), e));
                }
            };
            if n == 0 {
                break;
            }
            pos += n as u64;
            self.chan.push_packet(&buf[..n])?;
            self.chan.flush().await?;
        }
        drop(file);
        self.chan.push_packet(&[])
    }

    /// A read failed half way through `LOAD DATA LOCAL INFILE` data. Ending the
    /// data normally would make the server commit a partial load, so the
    /// connection is closed instead: the server then rolls the statement back.
    fn abort_local_infile(&mut self, what: &str, e: std::io::Error) -> Error {
        let msg = format!(
            "reading {what} for LOAD DATA LOCAL INFILE failed ({e}); the connection was closed \
             so the server discards the partial load"
        );
        self.chan.mark_broken(msg.clone());
        self.response = Response::Idle;
        Error::new(ErrorKind::Io, msg).with_source(e)
    }

    /// Streams `reader` for `LOAD DATA LOCAL INFILE`, then the empty packet
    /// that ends the data.
    async fn send_local_reader(&mut self, reader: &mut dyn std::io::Read) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.abort_local_infile("the data", e)),
            };
            self.chan.push_packet(&buf[..n])?;
            self.chan.flush().await?;
        }
        self.chan.push_packet(&[])
    }

    /// Runs a `LOAD DATA LOCAL INFILE` statement with the data read from
    /// `reader` (whatever file name the statement gives). Needs
    /// [`Opts::local_infile_reader`]. The reader is read on this thread: pass
    /// in-memory data or a small file; for large files allow their directory
    /// with [`Opts::local_infile_dir`], which reads them through io_uring.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let csv = b"1,soup\n2,bread\n";
    /// let outcome = cnx
    ///     .load_local_data(
    ///         "LOAD DATA LOCAL INFILE 'dishes' INTO TABLE dishes FIELDS TERMINATED BY ','",
    ///         &csv[..],
    ///     )
    ///     .await?;
    /// assert_eq!(outcome.affected_rows, 2);
    /// # Ok(()) }
    /// ```
    pub async fn load_local_data(
        &mut self,
        sql: &str,
        mut reader: impl std::io::Read,
    ) -> Result<Outcome> {
        if !self.opts.local_infile_reader {
            return Err(Error::usage(
                "load_local_data needs Opts::local_infile_reader(true) (URL: local_infile_reader=true)",
            ));
        }
        let op = crate::trace::Op::LoadData(sql);
        timed!(self, "LOAD DATA LOCAL INFILE", traced_outcome(op), async {
            if self.needs_drain() {
                self.drain().await?;
            }
            self.last = Outcome::default();
            {
                let (framer, out) = self.chan.encoder()?;
                write_query(framer, out, sql.as_bytes())?;
            }
            self.response = Response::Pending(self.result_machine());
            let r = self.read_result_start_with(Some(&mut reader)).await?;
            self.consume(true).await?;
            match r {
                QueryResult::Done(o) => Ok(o),
                QueryResult::Rows(_) => Err(Error::usage(
                    "load_local_data ran a statement that returned rows; they were discarded",
                )),
            }
        })
    }

    fn protocol_error(&mut self, e: crate::proto::ProtoError) -> Error {
        let err = Error::from(e);
        self.chan.mark_broken(err.to_string());
        self.response = Response::Idle;
        err
    }

    /// The columns of the current (or last) result set.
    pub fn columns(&self) -> &Arc<[Column]> {
        &self.columns
    }

    /// True when the current result's rows are binary (from a prepared statement).
    fn binary_rows(&self) -> bool {
        matches!(&self.response, Response::Pending(m) if m.is_binary())
    }

    /// True while rows of a result set remain unread.
    pub fn has_pending_rows(&self) -> bool {
        matches!(&self.response, Response::Pending(m) if m.in_rows())
    }

    /// Reads the next row packet; `Ok(None)` at the end of the result set.
    async fn next_row_packet(&mut self) -> Result<Option<Range<usize>>> {
        if !self.has_pending_rows() {
            return Ok(None);
        }
        let p = self.chan.read_packet().await?;
        self.on_row_packet(p)
    }

    /// Classifies packet `p`, read where a row may come: `Some(p)` for a row,
    /// `None` at the end of the result set (the outcome is recorded).
    #[inline]
    fn on_row_packet(&mut self, p: Range<usize>) -> Result<Option<Range<usize>>> {
        let Response::Pending(machine) = &mut self.response else {
            return Err(Error::usage("no result is being read"));
        };
        match machine.on_packet(&self.chan.buf()[p.clone()]) {
            Ok(ResultEvent::Row) => {
                self.trace_rows.bump();
                Ok(Some(p))
            }
            Ok(ResultEvent::End(ok)) => {
                self.session.on_ok(&ok);
                self.last.warnings = ok.warnings;
                self.last.status = ok.status;
                self.status = ok.status;
                if machine.is_done() {
                    self.response = Response::Idle;
                }
                Ok(None)
            }
            Ok(ResultEvent::Err(e)) => Err(self.finish_err(ServerError::from_packet(&e))),
            Ok(_) => Err(self.protocol_error(crate::proto::ProtoError::Unexpected {
                expected: "a row",
                first_byte: self.chan.buf().get(p.start).copied(),
            })),
            Err(e) => Err(self.protocol_error(e)),
        }
    }

    /// Reads the next row as an owned [`Row`] sharing the read buffer.
    pub(crate) async fn read_row(&mut self) -> Result<Option<Row>> {
        let Some(p) = self.next_row_packet().await? else {
            return Ok(None);
        };
        let mut fields = Fields::new();
        let binary = self.binary_rows();
        if let Err(e) = row_fields(
            &self.chan.buf()[p.clone()],
            &self.columns,
            binary,
            &mut fields,
        ) {
            return Err(self.protocol_error(e));
        }
        let packet = self.chan.take_packet(p);
        Ok(Some(
            Row::new(packet, fields, self.columns.clone()).with_protocol(binary),
        ))
    }

    fn row_ref_at(&mut self, p: Range<usize>) -> Result<RowRef<'_>> {
        self.fields.clear();
        let binary = self.binary_rows();
        if let Err(e) = row_fields(
            &self.chan.buf()[p.clone()],
            &self.columns,
            binary,
            &mut self.fields,
        ) {
            return Err(self.protocol_error(e));
        }
        Ok(RowRef::new(&self.chan.buf()[p], &self.fields, &self.columns).with_protocol(binary))
    }

    /// Streams the next row of the current result set without copying or
    /// allocating: the row borrows the connection's read buffer and is valid
    /// until the next call. `Ok(None)` at the end.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// cnx.cmd_query("SELECT id, name FROM big_table").await?;
    /// let mut total = 0u64;
    /// while let Some(row) = cnx.next_row().await? {
    ///     total += row.get::<u64>(0)?;
    /// }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn next_row(&mut self) -> NextRow<'_> {
        NextRow {
            conn: Some(self),
            st: ReadState::default(),
            begun: false,
            deadline: None,
        }
    }

    /// Settles whatever an earlier command left behind, so the next command
    /// starts clean: reads and discards the rest of its reply (and of replies
    /// owed by an abandoned pipeline or prepare), resets a statement whose
    /// long data went out without its execute, and rolls back a dropped or
    /// abandoned transaction. Server errors inside an abandoned reply are not
    /// reported (nobody waits for them); IO and protocol errors are.
    ///
    /// Bounded: when the reply has not ended within the options'
    /// [`drain_timeout`](Opts::drain_timeout), the statement producing it is
    /// interrupted (`KILL QUERY` over a second connection) and the reply read
    /// for as long again; if it still has not ended, the connection is closed
    /// with [`ErrorKind::Timeout`].
    pub(crate) async fn drain(&mut self) -> Result<()> {
        if !self.needs_drain() {
            return Ok(());
        }
        if let Some(why) = self.poisoned.take() {
            self.chan.mark_broken(why);
            self.response = Response::Idle;
            self.owed = 0;
            return Err(Error::broken(format!(
                "connection is unusable: {why}, so its state is unknown; open a new connection"
            )));
        }
        let limit = self.opts.drain_timeout;
        if let Some(kill) = self.killer.take() {
            // Never let a KILL QUERY meant for an abandoned statement land on
            // the next one: wait for it before sending anything.
            let _ = crate::io::uring::timeout(limit, kill).await;
        }
        if crate::io::uring::timeout(limit, self.drain_owed())
            .await
            .is_err()
        {
            let kill = self.cancel_handle();
            let _ = crate::io::uring::timeout(limit, kill.cancel_here()).await;
            if crate::io::uring::timeout(limit, self.drain_owed())
                .await
                .is_err()
            {
                self.chan
                    .mark_broken("an abandoned reply did not end, even after KILL QUERY");
                self.response = Response::Idle;
                self.owed = 0;
                return Err(Error::new(
                    ErrorKind::Broken,
                    format!(
                        "the rest of an abandoned reply did not arrive within {limit:?} \
                         (drain_timeout), nor after interrupting its statement with KILL QUERY; \
                         the connection was closed"
                    ),
                ));
            }
        }
        if let Some(id) = self.reset_stmt.take() {
            let reset = crate::io::uring::timeout(limit, self.reset_inner(id)).await;
            if !matches!(reset, Ok(Ok(()))) {
                self.chan
                    .mark_broken("resetting a statement with abandoned long data failed");
                return Err(Error::broken(
                    "connection is unusable: a statement's abandoned long data could not be \
                     discarded (COM_STMT_RESET failed); open a new connection",
                ));
            }
        }
        if std::mem::take(&mut self.rollback_on_abandon) {
            self.rollback_pending = true;
        }
        if self.rollback_pending {
            self.rollback_pending = false;
            {
                let (framer, out) = self.chan.encoder()?;
                write_query(framer, out, b"ROLLBACK")?;
            }
            self.response = Response::Pending(self.result_machine());
            let r = crate::io::uring::timeout(limit, async {
                self.read_result_start().await?;
                self.consume(false).await
            })
            .await;
            if let Err(e) = r.unwrap_or_else(|_| Err(Error::new(ErrorKind::Timeout, "timed out"))) {
                // The session's state is unknown now: never reuse it.
                self.chan
                    .mark_broken(format!("rolling back a dropped transaction failed: {e}"));
                return Err(Error::broken(format!(
                    "rolling back a dropped transaction failed ({e}); the connection was closed"
                )));
            }
        }
        Ok(())
    }

    /// Reads every reply still owed, to its end.
    async fn drain_owed(&mut self) -> Result<()> {
        self.draining = true;
        let r = self.drain_owed_inner().await;
        self.draining = false;
        r
    }

    async fn drain_owed_inner(&mut self) -> Result<()> {
        loop {
            match &self.response {
                Response::Idle if self.owed > 0 => {
                    self.owed -= 1;
                    self.chan.framer().expect_reply();
                    self.response = Response::Pending(self.result_machine());
                }
                Response::Idle => return Ok(()),
                Response::Pending(_) => self.consume(false).await?,
                Response::Prepare { .. } => self.drain_prepare().await?,
            }
        }
    }

    /// Reads the rest of an abandoned prepare's reply; its statement (if the
    /// server made one) is closed with the next command.
    async fn drain_prepare(&mut self) -> Result<()> {
        loop {
            let Response::Prepare { machine, id } = &mut self.response else {
                return Ok(());
            };
            if machine.is_done() {
                if let Some(id) = id.take() {
                    self.stmts.to_close.push(id);
                }
                self.response = Response::Idle;
                return Ok(());
            }
            let p = self.chan.read_packet().await?;
            let Response::Prepare { machine, id } = &mut self.response else {
                return Ok(());
            };
            match machine.on_packet(&self.chan.buf()[p]) {
                Ok(crate::proto::stmt::PrepareEvent::Ok(ok)) => *id = Some(ok.statement_id),
                Ok(crate::proto::stmt::PrepareEvent::Err(_)) => {
                    self.response = Response::Idle;
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => return Err(self.protocol_error(e)),
            }
        }
    }

    /// An error met inside a transaction: a lost connection becomes
    /// [`ErrorKind::TransactionLost`]; and the host, when it is one of
    /// several, is reported down or read-only so new connections avoid it.
    #[cold]
    fn command_failed(&self, e: Error, in_tx: bool) -> Error {
        self.note_host_error(&e);
        if in_tx {
            e.in_transaction(&self.opts.address(), self.committing)
        } else {
            e
        }
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

    /// A command ran past the query timeout: it is abandoned (its future was
    /// dropped), the statement is interrupted on the server, and the error
    /// says so. The connection stays usable.
    fn timed_out(&mut self, what: &str, limit: Duration) -> Error {
        if self.needs_drain() && self.killer.is_none() && !self.chan.is_broken() {
            let kill = self.cancel_handle();
            self.killer = crate::io::uring::try_spawn(async move { kill.cancel_here().await }).ok();
        }
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{what} did not finish within the query timeout of {limit:?}; the statement is \
                 being interrupted (KILL QUERY) and the connection stays usable"
            ),
        )
    }

    /// Reads the rest of the current response. With `report`, the first server
    /// error (e.g. a statement killed mid-result, or a failing statement of a
    /// multi-statement query) is returned after the response is fully read.
    async fn consume(&mut self, report: bool) -> Result<()> {
        self.chan.check()?;
        let mut first_err = None;
        while let Response::Pending(machine) = &self.response {
            let r = if machine.in_rows() {
                self.next_row_packet().await.map(|_| ())
            } else {
                self.read_result_start().await.map(|_| ())
            };
            match r {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Server | ErrorKind::Usage) => {
                    if report && first_err.is_none() {
                        first_err = Some(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// True when rows or further result sets of the last command remain
    /// unread (or a reply abandoned by a cancelled command is still owed).
    pub fn has_pending_response(&self) -> bool {
        !matches!(self.response, Response::Idle) || self.owed > 0
    }

    /// True when something must run before the next command: an unread or
    /// abandoned reply, a rollback, a statement reset, an interrupted kill.
    pub(crate) fn needs_drain(&self) -> bool {
        !matches!(self.response, Response::Idle)
            || self.owed > 0
            || self.reset_stmt.is_some()
            || self.poisoned.is_some()
            || self.killer.is_some()
            || self.rollback_pending
            || self.rollback_on_abandon
    }

    /// Runs `sqls` pipelined: every query is written in one operation before
    /// the first reply is read; replies are read in order. See [`crate::Pipeline`].
    pub(crate) async fn run_pipeline(
        &mut self,
        sqls: &[String],
    ) -> Result<Vec<Result<StageOutput>>> {
        let op = crate::trace::Op::Pipeline(sqls);
        timed!(
            self,
            "the pipeline",
            traced(op),
            self.run_pipeline_inner(sqls)
        )
    }

    async fn run_pipeline_inner(&mut self, sqls: &[String]) -> Result<Vec<Result<StageOutput>>> {
        if self.needs_drain() {
            self.drain().await?;
        }
        {
            let (framer, out) = self.chan.encoder()?;
            let start = out.len();
            for sql in sqls {
                if let Err(e) = write_query(framer, out, sql.as_bytes()) {
                    // Nothing of the pipeline goes out.
                    out.truncate(start);
                    framer.forget_starts_from(start);
                    return Err(e.into());
                }
            }
        }
        // Every stage's reply is owed from here on: abandoned midway, the
        // next command reads the rest first.
        self.owed = sqls.len() as u32;
        let mut results = Vec::with_capacity(sqls.len());
        for i in 0..sqls.len() {
            if let Err(e) = self.chan.check() {
                results.push(Err(Error::broken(format!("stage {i} was not run: {e}"))));
                continue;
            }
            self.owed -= 1;
            self.chan.framer().expect_reply();
            self.last = Outcome::default();
            self.response = Response::Pending(self.result_machine());
            let stage = async {
                match self.read_result_start().await? {
                    QueryResult::Done(outcome) => Ok(StageOutput {
                        rows: Vec::new(),
                        outcome,
                    }),
                    QueryResult::Rows(_) => {
                        let mut rows = Vec::new();
                        while let Some(r) = self.read_row().await? {
                            rows.push(r);
                        }
                        Ok(StageOutput {
                            rows,
                            outcome: self.last.clone(),
                        })
                    }
                }
            }
            .await;
            // Anything left of this stage (further result sets) is read before the next one.
            let stage = match (stage, self.consume(true).await) {
                (Ok(out), Ok(())) => Ok(out),
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            };
            results.push(stage);
        }
        Ok(results)
    }

    /// Discards what is left of the current response, under the query timeout.
    pub(crate) async fn query_drop_pending(&mut self) -> Result<()> {
        timed!(self, "discarding unread rows", self.drain())
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

/// Interrupts the statement running on a connection; see [`Connection::cancel_handle`].
///
/// ```no_run
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// let cancel = cnx.cancel_handle();
/// mysql_uring::runtime::spawn(async move {
///     mysql_uring::runtime::sleep(std::time::Duration::from_secs(1)).await;
///     let _ = cancel.cancel().await;
/// });
/// let e = cnx.query_drop("SELECT COUNT(*) FROM huge_a, huge_b").await.unwrap_err();
/// assert_eq!(e.code(), Some(1317)); // query execution was interrupted
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CancelHandle {
    opts: Arc<Opts>,
    connection_id: u32,
}

impl CancelHandle {
    /// The server id of the connection this handle cancels.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// Sends `KILL QUERY <id>` over a new connection. The interrupted
    /// statement fails with server error 1317; its connection stays usable.
    ///
    /// Works from any thread and any executor: the future is `Send`, and the
    /// kill runs on a short-lived thread with its own ring (so it never
    /// waits behind the busy core it is meant to help).
    pub fn cancel(&self) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        let (opts, id) = ((*self.opts).clone(), self.connection_id);
        let spawned = std::thread::Builder::new()
            .name("mysql-uring-cancel".into())
            .spawn(move || {
                let r = crate::runtime::try_start(kill_query(opts, id)).and_then(|r| r);
                let _ = tx.send(r);
            });
        async move {
            if let Err(e) = spawned {
                return Err(
                    Error::new(ErrorKind::Io, "cannot start a thread to send KILL QUERY")
                        .with_source(e),
                );
            }
            rx.await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Io,
                    "the thread sending KILL QUERY stopped before it finished",
                ))
            })
        }
    }

    /// [`CancelHandle::cancel`] on the current core (the connection settling
    /// an abandoned reply does this; no thread is started).
    pub(crate) async fn cancel_here(&self) -> Result<()> {
        // Boxed: cancelling connects, and a connection settling an abandoned
        // reply cancels through here, so the future types would nest.
        let kill: std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>>>> =
            Box::pin(kill_query((*self.opts).clone(), self.connection_id));
        kill.await
    }
}

/// `KILL QUERY id` over a new connection made from `opts`.
async fn kill_query(mut opts: Opts, id: u32) -> Result<()> {
    opts.init.clear();
    let mut c = Connection::connect(opts).await?;
    c.query_drop(&format!("KILL QUERY {id}")).await?;
    c.close().await
}

/// Decides whether the server may read `name` for LOAD DATA LOCAL INFILE:
/// only files under a directory the user allowed.
fn local_file(opts: &Opts, name: &str) -> std::result::Result<std::path::PathBuf, String> {
    if opts.local_infile_dirs.is_empty() {
        return Err(format!(
            "the server asked for the local file '{name}' (LOAD DATA LOCAL INFILE), which is disabled; \
             nothing was sent (allow directories with Opts::local_infile_dir or local_infile_dir=DIR)"
        ));
    }
    let path = std::fs::canonicalize(name)
        .map_err(|e| format!("local file '{name}' cannot be read: {e}; nothing was sent"))?;
    let allowed = opts
        .local_infile_dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|d| path.starts_with(d));
    if allowed && path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the server asked for the local file '{name}', which is not a file under an allowed \
             local_infile_dir; nothing was sent"
        ))
    }
}

fn handshake_error(e: HandshakeError, opts: &Opts) -> Error {
    match e {
        HandshakeError::Proto(p) => Error::from(p),
        HandshakeError::Tls(msg) => Error::new(ErrorKind::Tls, msg),
        HandshakeError::Auth(msg) => Error::new(
            ErrorKind::Auth,
            format!("authentication as '{}' failed: {msg}", opts.user),
        ),
        HandshakeError::Server {
            code,
            sql_state,
            message,
        } => {
            let kind = match code {
                1044 | 1045 | 1698 | 1251 | 1275 | 2049 | 1862 => ErrorKind::Auth,
                _ => ErrorKind::Server,
            };
            Error::server(
                kind,
                ServerError {
                    code,
                    sql_state: String::from_utf8_lossy(&sql_state).into_owned(),
                    message,
                },
            )
        }
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
                        return Poll::Ready(Err(conn.timed_out("reading a row", limit)));
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

mod call;
mod exec;
mod stream;
mod typed;
pub use call::{CallResult, StoredResult};
pub use stream::RowStream;
