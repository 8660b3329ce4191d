//! Opening a connection: one host or several (failover, Galera, replicas),
//! the socket, TLS, the handshake and the session setup.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::{Connection, Fit, Outcome, SessionTrack, is_local};
use crate::error::{Error, ErrorKind, Result, ServerError};
use crate::io::tls::{TlsFiles, Verify, client_config};
use crate::io::{Channel, Stream};
use crate::opts::{IntoOpts, Opts, SslMode};
use crate::proto::handshake::{Handshake, HandshakeError, HandshakeOpts, Step, TlsMode};

impl Connection {
    /// Connects and authenticates; see [`connect`](crate::connect).
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
                .map_err(|e| Error::io(&format!("resolving host '{}'", opts.host), e))?
                .map_err(|e| Error::unresolved(&opts.host, opts.port, Some(e)))?
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
            None => Error::unresolved(&opts.host, opts.port, None),
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
        let opts = Arc::new(opts.clone());
        let session = crate::session::Session::new();
        session
            .shared()
            .set_target(opts.clone(), hello.connection_id);
        let mut conn = Connection {
            chan,
            capabilities: hs.capabilities(),
            server_version: hello.version().to_string(),
            connection_id: hello.connection_id,
            mariadb: hello.is_mariadb(),
            status: hello.status,
            columns: Arc::from(Vec::new()),
            fields: Vec::with_capacity(16),
            last: Outcome::default(),
            query_timeout: opts.query_timeout,
            stmts: crate::statement::StmtCache::new(opts.stmt_cache_size),
            mariadb_caps: hs.mariadb_capabilities(),
            bulk_off: false,
            handshake: hs,
            session,
            track: SessionTrack::new(opts.database.as_deref()),
            opts,
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
    pub(super) async fn apply_session_setup(&mut self) -> Result<()> {
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
}

pub(super) fn handshake_error(e: HandshakeError, opts: &Opts) -> Error {
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
