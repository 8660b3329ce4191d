//! Connection options, from a builder or a `mysql://` URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};
use crate::hosts::{HostAddr, HostMode, HostSet, Role, parse_host_list};
use crate::proto::compress::Algorithm;

/// Default port of MySQL and MariaDB.
pub const DEFAULT_PORT: u16 = 3306;
/// Default limit on one packet or row: 64 MiB (MariaDB's default `max_allowed_packet` is 16 MiB).
pub const DEFAULT_MAX_PACKET: usize = 64 << 20;
/// Hard upper limit of `max_packet_size`: the server never sends more than 1 GiB.
pub const MAX_PACKET_LIMIT: usize = 1 << 30;
/// Default number of cached prepared statements per connection.
pub const DEFAULT_STMT_CACHE_SIZE: usize = 64;

/// Whether and how to use TLS (`ssl_mode` in URLs).
///
/// Certificates are verified whenever TLS is asked for: `required` checks the
/// chain and the host name (unlike MySQL's `REQUIRED`, which checks nothing).
/// Only the opportunistic default, `preferred`, does not verify; it protects
/// against passive eavesdropping only, and a connection under it never counts
/// as secure, so no password is ever sent in clear over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disabled,
    /// Use TLS when the server offers it, without verifying its certificate;
    /// plain text otherwise.
    #[default]
    Preferred,
    /// TLS is mandatory; the certificate must chain to a trusted CA and name the host.
    Required,
    /// TLS is mandatory; the certificate must chain to a trusted CA (any host name).
    VerifyCa,
    /// TLS is mandatory; the certificate must chain to a trusted CA and name the host.
    VerifyIdentity,
}

impl FromStr for SslMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<SslMode> {
        Ok(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" | "disable" => SslMode::Disabled,
            "preferred" | "prefer" => SslMode::Preferred,
            "required" | "require" => SslMode::Required,
            "verify_ca" => SslMode::VerifyCa,
            "verify_identity" | "verify_full" => SslMode::VerifyIdentity,
            _ => {
                return Err(Error::config(format!(
                    "invalid ssl_mode '{s}' (use disabled, preferred, required, verify_ca or verify_identity)"
                )));
            }
        })
    }
}

/// How to connect: address, credentials, database and tuning.
///
/// Build it with methods, or parse a URL:
///
/// ```
/// use mysql_uring::Opts;
/// let a = Opts::new().user("app").password("s3cret").database("shop");
/// let b: Opts = "mysql://app:s3cret@127.0.0.1:3306/shop?connect_timeout=5".parse().unwrap();
/// assert_eq!(a.get_user(), b.get_user());
/// // The password never shows up in Debug output.
/// assert!(!format!("{b:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct Opts {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) socket: Option<PathBuf>,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) max_packet_size: usize,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) query_timeout: Option<Duration>,
    pub(crate) drain_timeout: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) compression: Option<crate::proto::compress::Algorithm>,
    pub(crate) tcp_nodelay: bool,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) init: Vec<String>,
    pub(crate) allow_cleartext_password: bool,
    pub(crate) ssl_mode: SslMode,
    pub(crate) ssl_ca: Option<PathBuf>,
    pub(crate) ssl_cert: Option<PathBuf>,
    pub(crate) ssl_key: Option<PathBuf>,
    pub(crate) tls_server_name: Option<String>,
    pub(crate) server_public_key: Option<PathBuf>,
    pub(crate) allow_public_key_retrieval: bool,
    pub(crate) multi_statements: bool,
    pub(crate) charset: Option<String>,
    pub(crate) local_infile_dirs: Vec<PathBuf>,
    pub(crate) stmt_cache_size: usize,
    pub(crate) local_infile_reader: bool,
    /// Several hosts (and what is known of them), shared by clones.
    pub(crate) hosts: Option<Arc<HostSet>>,
    /// Writes (default) or reads: which of several hosts a connection goes to.
    pub(crate) role: Role,
    /// Replicas lagging more are not used for reads.
    pub(crate) max_replica_lag: Option<Duration>,
    /// How often a pooled read connection's replica is re-checked.
    pub(crate) replica_check_interval: Duration,
    /// Reads go to the primary when no replica is usable.
    pub(crate) read_fallback: bool,
    /// Pool sizes from the URL (`pool_min`, `pool_max`), used when no
    /// [`PoolOpts`](crate::PoolOpts) are given.
    pub(crate) pool_min: Option<usize>,
    pub(crate) pool_max: Option<usize>,
    /// Over TCP to this machine, switch to the server's Unix socket.
    pub(crate) prefer_socket: bool,
    /// Client reads wait for replicas to apply the client's writes.
    pub(crate) read_your_writes: bool,
    pub(crate) read_your_writes_timeout: Duration,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            socket: None,
            user: "root".into(),
            password: None,
            database: None,
            max_packet_size: DEFAULT_MAX_PACKET,
            connect_timeout: Some(Duration::from_secs(10)),
            query_timeout: None,
            drain_timeout: Duration::from_secs(5),
            kill_grace: Duration::from_millis(50),
            compression: None,
            tcp_nodelay: true,
            tcp_keepalive: Some(Duration::from_secs(60)),
            attributes: Vec::new(),
            init: Vec::new(),
            allow_cleartext_password: false,
            ssl_mode: SslMode::Preferred,
            ssl_ca: None,
            ssl_cert: None,
            ssl_key: None,
            tls_server_name: None,
            server_public_key: None,
            allow_public_key_retrieval: false,
            multi_statements: false,
            charset: None,
            local_infile_dirs: Vec::new(),
            stmt_cache_size: DEFAULT_STMT_CACHE_SIZE,
            local_infile_reader: false,
            hosts: None,
            role: Role::Write,
            max_replica_lag: None,
            replica_check_interval: Duration::from_secs(1),
            read_fallback: true,
            pool_min: None,
            pool_max: None,
            prefer_socket: false,
            read_your_writes: false,
            read_your_writes_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for Opts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opts")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("hosts", &self.hosts)
            .field("role", &self.role)
            .field("socket", &self.socket)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("max_packet_size", &self.max_packet_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("kill_grace", &self.kill_grace)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("tcp_keepalive", &self.tcp_keepalive)
            .field("compression", &self.compression)
            .field("attributes", &self.attributes)
            .field("init", &self.init)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_ca", &self.ssl_ca)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("server_public_key", &self.server_public_key)
            .field(
                "allow_public_key_retrieval",
                &self.allow_public_key_retrieval,
            )
            .finish()
    }
}

impl Opts {
    /// Defaults: `root` on `127.0.0.1:3306`, no password, no database.
    pub fn new() -> Self {
        Opts::default()
    }

    /// Parses a URL: `mysql://user:password@host:port/database?option=value&…`.
    ///
    /// The scheme may be `mysql` or `mariadb`; user and password are
    /// percent-decoded. Options: `socket` (Unix socket path), `connect_timeout`
    /// and `query_timeout` (seconds, may be fractional), `max_packet_size`
    /// (bytes), `tcp_nodelay` and `allow_cleartext_password` (`true`/`false`),
    /// `program_name`, and `init` (an SQL statement run after connecting; may be
    /// repeated), and more (the TLS, pool, host and compression options of
    /// the builder methods, and aliases other drivers use). Anything else is
    /// an error that suggests the closest option and lists every accepted
    /// name, so typos do not go unnoticed.
    pub fn from_url(url: &str) -> Result<Opts> {
        // `url` takes one host: a list (`h1:3306,h2`) is cut out and parsed here.
        let (url, host_list) = split_host_list(url)?;
        let url = url.as_ref();
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::config(format!(
                "invalid connection URL: {e}; expected mysql://user:password@host:port/database"
            ))
        })?;
        if parsed.scheme() != "mysql" && parsed.scheme() != "mariadb" {
            return Err(Error::config(format!(
                "invalid connection URL: scheme '{}' is not supported; use mysql://",
                parsed.scheme()
            )));
        }
        let mut o = Opts::new();
        match parsed.host_str() {
            Some(h) if !h.is_empty() => {
                o.host = h.trim_start_matches('[').trim_end_matches(']').to_string();
            }
            _ => {}
        }
        if let Some(p) = parsed.port() {
            if p == 0 {
                return Err(Error::config("invalid connection URL: port 0"));
            }
            o.port = p;
        }
        if !parsed.username().is_empty() {
            o.user = decode(parsed.username(), "user name")?;
        }
        if let Some(p) = parsed.password() {
            o.password = Some(decode(p, "password")?);
        }
        let path = parsed.path().trim_start_matches('/');
        if !path.is_empty() {
            if path.contains('/') {
                return Err(Error::config(format!(
                    "invalid connection URL: the path '/{path}' must be just a database name"
                )));
            }
            o.database = Some(decode(path, "database name")?);
        }
        let mut mode = None;
        for (k, v) in parsed.query_pairs() {
            let (k, v) = (k.as_ref(), v.as_ref());
            let Some(opt) = URL_OPTIONS.iter().find(|opt| opt.names.contains(&k)) else {
                return Err(unknown_option(k));
            };
            let mut p = Parsing {
                o: &mut o,
                mode: &mut mode,
            };
            (opt.apply)(&mut p, k, v)?;
        }
        if let (Some(min), Some(max)) = (o.pool_min, o.pool_max) {
            if min > max || max == 0 {
                return Err(Error::config(format!(
                    "invalid URL options pool_min={min}, pool_max={max}: need pool_min <= pool_max and pool_max >= 1"
                )));
            }
        }
        if let Some(list) = host_list {
            let hosts = parse_host_list(&list, DEFAULT_PORT)?;
            o.host = hosts[0].host.clone();
            o.port = hosts[0].port;
            if hosts.len() > 1 || mode.is_some() {
                if o.socket.is_some() {
                    return Err(Error::config(
                        "invalid connection URL: several hosts and a socket; a socket is one local server",
                    ));
                }
                o.hosts = Some(HostSet::new(hosts, mode.unwrap_or_default())?);
            }
        } else if let Some(mode) = mode {
            o.hosts = Some(HostSet::new(
                vec![HostAddr {
                    host: o.host.clone(),
                    port: o.port,
                }],
                mode,
            )?);
        }
        Ok(o)
    }

    /// Several servers instead of one: new connections go to one of `hosts`
    /// as `mode` says (see [`HostMode`](crate::HostMode)): failover, load balancing, Galera
    /// or a replication primary with replicas. What is learned about the
    /// hosts (down, read-only, lagging) is shared by every clone of these
    /// options.
    ///
    /// ```
    /// use mysql_uring::{HostMode, Opts};
    /// let o = Opts::new().hosts([("10.0.0.1", 3306), ("10.0.0.2", 3306)], HostMode::Replication).unwrap();
    /// let same: Opts = "mysql://root@10.0.0.1,10.0.0.2/?hosts=replication".parse().unwrap();
    /// assert_eq!(o.get_hosts().len(), same.get_hosts().len());
    /// ```
    pub fn hosts<H: Into<String>>(
        mut self,
        hosts: impl IntoIterator<Item = (H, u16)>,
        mode: HostMode,
    ) -> Result<Self> {
        let hosts: Vec<HostAddr> = hosts
            .into_iter()
            .map(|(h, port)| HostAddr {
                host: h.into(),
                port,
            })
            .collect();
        let set = HostSet::new(hosts, mode)?;
        self.host = set.addr(0).host.clone();
        self.port = set.addr(0).port;
        self.hosts = Some(set);
        Ok(self)
    }

    /// The hosts, with what is known of each (one entry for a single host).
    pub fn get_hosts(&self) -> Vec<HostAddr> {
        match &self.hosts {
            Some(set) => (0..set.len()).map(|i| set.addr(i).clone()).collect(),
            None => vec![HostAddr {
                host: self.host.clone(),
                port: self.port,
            }],
        }
    }

    /// The host set of several hosts, for its [`status`](HostSet::status).
    pub fn host_set(&self) -> Option<&Arc<HostSet>> {
        self.hosts.as_ref()
    }

    /// What connections made from these options are for: with
    /// [`HostMode::Replication`], [`Role::Read`] connections go to replicas
    /// (see [`HostMode`](crate::HostMode)). Default [`Role::Write`].
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The role.
    pub fn get_role(&self) -> Role {
        self.role
    }

    /// Replicas whose lag (`Seconds_Behind_Master`) is above this are not
    /// used for reads until they catch up (default: no bound; a replica whose
    /// replication is stopped is never used).
    pub fn max_replica_lag(mut self, lag: Option<Duration>) -> Self {
        self.max_replica_lag = lag;
        self
    }

    /// How often a pooled read connection's replica is re-checked for lag
    /// and stopped replication, when it is handed out (default 1 s).
    pub fn replica_check_interval(mut self, every: Duration) -> Self {
        self.replica_check_interval = every;
        self
    }

    /// Whether reads go to the primary when no replica is usable (default
    /// true); when false they fail with
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
    pub fn read_fallback(mut self, on: bool) -> Self {
        self.read_fallback = on;
        self
    }

    /// With `hosts=replication`, a [`Client`](crate::Client)'s reads
    /// ([`Client::reads`](crate::Client::reads)) see its own earlier writes:
    /// after each call on the write route the client notes the session's
    /// GTID (MariaDB reports it in the OK packets: write connections track
    /// `last_gtid`, so it costs no extra round trip), and a read on a replica
    /// first waits for the replica to apply it (`MASTER_GTID_WAIT`, at most
    /// `timeout`), else runs on the primary. Off by default.
    pub fn read_your_writes(mut self, on: bool, timeout: Duration) -> Self {
        self.read_your_writes = on;
        self.read_your_writes_timeout = timeout;
        self
    }

    /// Over TCP to this machine (`localhost`, `127.0.0.1`, `::1`), ask the
    /// server for its Unix socket (`@@socket`) and use that instead, as
    /// mysql_async's `prefer_socket` does; stays on TCP when it cannot.
    pub fn prefer_socket(mut self, on: bool) -> Self {
        self.prefer_socket = on;
        self
    }

    /// Host name or IP address (default `127.0.0.1`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// TCP port (default 3306).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Connect through a Unix domain socket instead of TCP.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// User name (default `root`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Password. Never shown by `Debug` or in errors.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Default database.
    pub fn database(mut self, db: impl Into<String>) -> Self {
        self.database = Some(db.into());
        self
    }

    /// Largest packet or row accepted from the server, and largest command sent
    /// (default 64 MiB, at most 1 GiB). Larger ones fail with
    /// [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge).
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = bytes.clamp(1024, MAX_PACKET_LIMIT);
        self
    }

    /// Time allowed to connect and authenticate (default 10 s; `None`: unbounded).
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time allowed for each command, from sending it to reading its last
    /// packet (default: unbounded). A command that times out fails with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout); the statement is
    /// interrupted on the server (`KILL QUERY` over a second connection) and
    /// the connection stays usable: what is left of its reply is discarded
    /// before the next command (see [`Opts::drain_timeout`]).
    pub fn query_timeout(mut self, t: Option<Duration>) -> Self {
        self.query_timeout = t;
        self
    }

    /// Protocol compression: zlib (MariaDB and MySQL) or zstd (MySQL
    /// 8.0.18+, needs the `zstd` feature), with a level. The server must
    /// offer it, or connecting fails and says so. Default: none.
    pub fn compression(mut self, alg: Option<crate::proto::compress::Algorithm>) -> Self {
        self.compression = alg;
        self
    }

    /// How long the rest of an abandoned reply may take once its statement
    /// was interrupted with `KILL QUERY` (see [`Opts::kill_grace`]): if it
    /// still has not ended then, the connection is closed. Default 5 s.
    pub fn drain_timeout(mut self, t: Duration) -> Self {
        self.drain_timeout = t;
        self
    }

    /// How long a statement whose command was abandoned (its future
    /// dropped, or `query_timeout` passed) may keep running before it is
    /// interrupted with `KILL QUERY` over a second connection. Its reply is
    /// read and dropped before the connection's next command, so nothing is
    /// left running for nobody and the connection stays usable. Default
    /// 50 ms (URL: `kill_grace=50`, in milliseconds); zero kills at once.
    ///
    /// ```
    /// let o = mysql_uring::Opts::new().kill_grace(std::time::Duration::from_millis(10));
    /// # let _ = o;
    /// ```
    pub fn kill_grace(mut self, t: Duration) -> Self {
        self.kill_grace = t;
        self
    }

    /// `TCP_NODELAY` (default on: every command is one small write).
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = on;
        self
    }

    /// TCP keepalive idle time (default 60 s; `None` to disable).
    pub fn tcp_keepalive(mut self, t: Option<Duration>) -> Self {
        self.tcp_keepalive = t;
        self
    }

    /// Adds a connection attribute, visible in `performance_schema.session_connect_attrs`.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Adds a statement run right after connecting (e.g. `SET time_zone = '+00:00'`).
    pub fn init(mut self, sql: impl Into<String>) -> Self {
        self.init.push(sql.into());
        self
    }

    /// Allow `mysql_clear_password` over plain TCP (off by default: it sends
    /// the password unencrypted).
    pub fn allow_cleartext_password(mut self, on: bool) -> Self {
        self.allow_cleartext_password = on;
        self
    }

    /// TLS mode (default [`SslMode::Preferred`]).
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = mode;
        self
    }

    /// PEM file of the CA certificate(s) to trust instead of the system's.
    pub fn ssl_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_ca = Some(path.into());
        self
    }

    /// Client certificate (PEM) and its private key (PEM), for servers that require one.
    pub fn ssl_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.ssl_cert = Some(cert.into());
        self.ssl_key = Some(key.into());
        self
    }

    /// The name the server's certificate must carry (default: the host).
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls_server_name = Some(name.into());
        self
    }

    /// PEM file with the server's RSA public key, for `caching_sha2_password`
    /// and `sha256_password` over unencrypted TCP.
    pub fn server_public_key_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.server_public_key = Some(path.into());
        self
    }

    /// Let the client ask the server for its RSA public key when it needs one
    /// and none was given (off by default: over plain TCP an attacker could
    /// substitute their own key).
    pub fn allow_public_key_retrieval(mut self, on: bool) -> Self {
        self.allow_public_key_retrieval = on;
        self
    }

    /// How many prepared statements each connection keeps for SQL text given to
    /// [`Connection::exec`](crate::Connection::exec) and friends (least recently
    /// used ones are closed on the server when it is full). Default 64; 0
    /// disables the cache: such statements are then prepared and closed per call.
    pub fn stmt_cache_size(mut self, n: usize) -> Self {
        self.stmt_cache_size = n;
        self
    }

    /// Allow several statements separated by `;` in one query
    /// (`CLIENT_MULTI_STATEMENTS`; off by default, since it widens the damage of
    /// SQL injection).
    pub fn multi_statements(mut self, on: bool) -> Self {
        self.multi_statements = on;
        self
    }

    /// Connection character set, applied with `SET NAMES` after connecting
    /// (default `utf8mb4`, sent in the handshake). Fails on a name that is not
    /// a plain identifier.
    pub fn charset(mut self, name: &str) -> Result<Self> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::config(format!("invalid charset name '{name}'")));
        }
        self.charset = (!name.eq_ignore_ascii_case("utf8mb4")).then(|| name.to_string());
        Ok(self)
    }

    /// Allows `LOAD DATA LOCAL INFILE` to read files under `dir` (repeatable).
    /// Off by default: the client then does not announce the capability, and
    /// refuses any server request for a file outside the allowed directories
    /// without sending a byte, keeping the connection usable.
    pub fn local_infile_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.local_infile_dirs.push(dir.into());
        self
    }

    /// Lets [`Connection::load_local_data`](crate::Connection::load_local_data)
    /// answer `LOAD DATA LOCAL INFILE` from data the program supplies (off by
    /// default). The capability is announced to the server, but requests for
    /// files are still refused unless they are under a
    /// [`local_infile_dir`](Opts::local_infile_dir).
    pub fn local_infile_reader(mut self, on: bool) -> Self {
        self.local_infile_reader = on;
        self
    }

    /// The TLS mode.
    pub fn get_ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The user name.
    pub fn get_user(&self) -> &str {
        &self.user
    }

    /// The host name.
    pub fn get_host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn get_port(&self) -> u16 {
        self.port
    }

    /// The default database.
    pub fn get_database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The Unix socket path, when set.
    pub fn get_socket(&self) -> Option<&std::path::Path> {
        self.socket.as_deref()
    }

    /// Where this connects, for messages: `host:port` or the socket path.
    pub fn address(&self) -> String {
        match &self.socket {
            Some(p) => p.display().to_string(),
            None if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    fn check_packet_size(&self) -> Result<()> {
        if !(1024..=MAX_PACKET_LIMIT).contains(&self.max_packet_size) {
            return Err(Error::config(format!(
                "max_packet_size {} is out of range (1024 ..= {MAX_PACKET_LIMIT})",
                self.max_packet_size
            )));
        }
        Ok(())
    }
}

/// What a URL option's setter works on: the options, and the host mode
/// (applied once the host list is known).
struct Parsing<'a> {
    o: &'a mut Opts,
    mode: &'a mut Option<HostMode>,
}

/// One URL option: its names (the first is the usual one, the others are
/// aliases other drivers use) and what it sets from `(name, value)`.
struct UrlOption {
    names: &'static [&'static str],
    apply: fn(&mut Parsing<'_>, &str, &str) -> Result<()>,
}

/// Every option [`Opts::from_url`] accepts, with its aliases: the parser
/// looks names up here, and the error for an unknown one lists them from
/// here, so the two cannot disagree.
const URL_OPTIONS: &[UrlOption] = &[
    UrlOption {
        names: &["socket"],
        apply: |p, _, v| {
            p.o.socket = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["connect_timeout"],
        apply: |p, k, v| {
            p.o.connect_timeout = Some(seconds(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["query_timeout", "read_timeout"],
        apply: |p, k, v| {
            p.o.query_timeout = Some(seconds(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["drain_timeout"],
        apply: |p, k, v| {
            p.o.drain_timeout = seconds(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["kill_grace", "kill_grace_ms"],
        apply: |p, k, v| {
            p.o.kill_grace = Duration::from_millis(count(k, v)? as u64);
            Ok(())
        },
    },
    UrlOption {
        names: &["max_packet_size"],
        apply: |p, _, v| {
            p.o.max_packet_size = v.parse().map_err(|_| {
                Error::config(format!(
                    "invalid URL option max_packet_size={v}: expected bytes"
                ))
            })?;
            p.o.check_packet_size()
        },
    },
    UrlOption {
        names: &["tcp_nodelay"],
        apply: |p, k, v| {
            p.o.tcp_nodelay = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        // mysql_async's unit: milliseconds; 0 turns it off.
        names: &["tcp_keepalive", "tcp_keepalive_ms"],
        apply: |p, k, v| {
            let ms = count(k, v)?;
            p.o.tcp_keepalive = (ms > 0).then(|| Duration::from_millis(ms as u64));
            Ok(())
        },
    },
    UrlOption {
        names: &["compress", "compression"],
        apply: |p, k, v| {
            p.o.compression = compression(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["allow_cleartext_password"],
        apply: |p, k, v| {
            p.o.allow_cleartext_password = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["program_name"],
        apply: |p, _, v| {
            p.o.attributes.push(("program_name".into(), v.to_string()));
            Ok(())
        },
    },
    UrlOption {
        names: &["init"],
        apply: |p, _, v| {
            p.o.init.push(v.to_string());
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_mode", "ssl-mode", "sslmode"],
        apply: |p, _, v| {
            p.o.ssl_mode = v.parse()?;
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_ca", "ssl-ca"],
        apply: |p, _, v| {
            p.o.ssl_ca = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_cert", "ssl-cert"],
        apply: |p, _, v| {
            p.o.ssl_cert = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_key", "ssl-key"],
        apply: |p, _, v| {
            p.o.ssl_key = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["tls_server_name"],
        apply: |p, _, v| {
            p.o.tls_server_name = Some(v.to_string());
            Ok(())
        },
    },
    UrlOption {
        names: &["server_public_key", "server-public-key-path"],
        apply: |p, _, v| {
            p.o.server_public_key = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["allow_public_key_retrieval", "allowPublicKeyRetrieval"],
        apply: |p, k, v| {
            p.o.allow_public_key_retrieval = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["multi_statements"],
        apply: |p, k, v| {
            p.o.multi_statements = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["charset"],
        apply: |p, _, v| {
            let o = std::mem::take(p.o);
            *p.o = o.charset(v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["local_infile_dir"],
        apply: |p, _, v| {
            p.o.local_infile_dirs.push(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["local_infile_reader"],
        apply: |p, k, v| {
            p.o.local_infile_reader = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &[
            "stmt_cache_size",
            "statement-cache-capacity",
            "statement_cache_capacity",
        ],
        apply: |p, _, v| {
            p.o.stmt_cache_size = v.parse().map_err(|_| {
                Error::config(format!(
                    "stmt_cache_size must be a number of statements (0 disables the cache), got '{v}'"
                ))
            })?;
            Ok(())
        },
    },
    UrlOption {
        names: &["pool_min", "min_connections"],
        apply: |p, k, v| {
            p.o.pool_min = Some(count(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["pool_max", "max_connections"],
        apply: |p, k, v| {
            p.o.pool_max = Some(count(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["prefer_socket"],
        apply: |p, k, v| {
            p.o.prefer_socket = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["hosts", "host_mode"],
        apply: |p, _, v| {
            *p.mode = Some(v.parse::<HostMode>()?);
            Ok(())
        },
    },
    UrlOption {
        names: &["max_replica_lag"],
        apply: |p, k, v| {
            p.o.max_replica_lag = Some(seconds(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["replica_check_interval"],
        apply: |p, k, v| {
            p.o.replica_check_interval = seconds(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["read_fallback"],
        apply: |p, k, v| {
            p.o.read_fallback = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["read_your_writes"],
        apply: |p, k, v| {
            p.o.read_your_writes = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["read_your_writes_timeout"],
        apply: |p, k, v| {
            p.o.read_your_writes_timeout = seconds(k, v)?;
            Ok(())
        },
    },
];

/// The error for a URL option not in [`URL_OPTIONS`]: the closest known name
/// when one is close enough to be a typo, and every name accepted.
fn unknown_option(name: &str) -> Error {
    let known: Vec<String> = URL_OPTIONS
        .iter()
        .map(|opt| match opt.names {
            [one] => one.to_string(),
            [first, aliases @ ..] => format!("{first} (or {})", aliases.join(", ")),
            [] => String::new(),
        })
        .collect();
    let suggestion = closest_option(name)
        .map(|n| format!("; did you mean '{n}'?"))
        .unwrap_or_default();
    Error::config(format!(
        "unknown URL option '{name}'{suggestion} (known: {})",
        known.join(", ")
    ))
}

/// The accepted option name nearest to `name` (case, `-` and `_` aside, by
/// edit distance), when it is within a typo's reach.
fn closest_option(name: &str) -> Option<&'static str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let wanted = norm(name);
    URL_OPTIONS
        .iter()
        .flat_map(|opt| opt.names.iter().copied())
        .map(|n| (edit_distance(&wanted, &norm(n)), n))
        .filter(|&(d, n)| d <= (n.len() / 4).clamp(1, 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// Levenshtein distance between two short ASCII-ish strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Cuts the host list out of a URL's authority when it names several hosts
/// (or an IPv6 literal among others), leaving a one-host URL for `url`.
fn split_host_list(url: &str) -> Result<(std::borrow::Cow<'_, str>, Option<String>)> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return Ok((url.into(), None));
    };
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let at = authority.rfind('@').map_or(0, |i| i + 1);
    let list = &authority[at..];
    if !list.contains(',') {
        return Ok((url.into(), None));
    }
    let mut one = String::with_capacity(url.len());
    one.push_str(&url[..start + at]);
    one.push_str("placeholder");
    one.push_str(&rest[end..]);
    Ok((one.into(), Some(list.to_string())))
}

fn compression(key: &str, v: &str) -> Result<Option<Algorithm>> {
    let bad = || {
        Error::config(format!(
            "invalid URL option {key}={v}: expected zlib, zstd, zlib:LEVEL (0-9), zstd:LEVEL (1-22) or off"
        ))
    };
    let (name, level) = match v.split_once(':') {
        Some((n, l)) => (n, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (v, None),
    };
    Ok(Some(match name {
        "off" | "none" | "false" | "0" if level.is_none() => return Ok(None),
        // mysql_async's spellings: fast, best, or a zlib level.
        "fast" => Algorithm::Zlib(1),
        "best" => Algorithm::Zlib(9),
        "true" | "on" => Algorithm::Zlib(6),
        "zlib" => {
            let l = level.unwrap_or(6);
            if l > 9 {
                return Err(bad());
            }
            Algorithm::Zlib(l)
        }
        "zstd" => {
            let l = level.unwrap_or(3);
            if !(1..=22).contains(&l) {
                return Err(bad());
            }
            #[cfg(not(feature = "zstd"))]
            return Err(Error::config(format!(
                "URL option {key}={v}: zstd needs the crate's `zstd` feature (mysql-uring = {{ features = [\"zstd\"] }})"
            )));
            #[cfg(feature = "zstd")]
            Algorithm::Zstd(l)
        }
        n if level.is_none() && n.len() == 1 && n.as_bytes()[0].is_ascii_digit() => {
            Algorithm::Zlib(n.as_bytes()[0] - b'0')
        }
        _ => return Err(bad()),
    }))
}

fn count(key: &str, v: &str) -> Result<usize> {
    v.parse().map_err(|_| {
        Error::config(format!(
            "invalid URL option {key}={v}: expected a whole number"
        ))
    })
}

fn decode(s: &str, what: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            Error::config(format!(
                "invalid connection URL: the {what} is not valid UTF-8 once percent-decoded"
            ))
        })
}

fn seconds(key: &str, v: &str) -> Result<Duration> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::config(format!(
                "invalid URL option {key}={v}: expected a positive number of seconds"
            ))
        })
}

fn boolean(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::config(format!(
            "invalid URL option {key}={v}: expected true or false"
        ))),
    }
}

impl FromStr for Opts {
    type Err = Error;
    fn from_str(s: &str) -> Result<Opts> {
        Opts::from_url(s)
    }
}

/// Anything [`connect`](crate::connect) accepts: [`Opts`], or a URL string.
pub trait IntoOpts {
    /// Converts into options, failing on an invalid URL.
    fn into_opts(self) -> Result<Opts>;
}

impl IntoOpts for Opts {
    fn into_opts(self) -> Result<Opts> {
        Ok(self)
    }
}

impl IntoOpts for &Opts {
    fn into_opts(self) -> Result<Opts> {
        Ok(self.clone())
    }
}

impl IntoOpts for &str {
    fn into_opts(self) -> Result<Opts> {
        Opts::from_url(self)
    }
}

impl IntoOpts for String {
    fn into_opts(self) -> Result<Opts> {
        Opts::from_url(&self)
    }
}

impl IntoOpts for &String {
    fn into_opts(self) -> Result<Opts> {
        Opts::from_url(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn full_url() {
        let o = Opts::from_url(
            "mysql://us%40er:p%3Ass%2Fw@db.example:3307/shop?connect_timeout=2.5&query_timeout=1&program_name=x&init=SET%20a%3D1",
        )
        .unwrap();
        assert_eq!(o.user, "us@er");
        assert_eq!(o.password.as_deref(), Some("p:ss/w"));
        assert_eq!(o.host, "db.example");
        assert_eq!(o.port, 3307);
        assert_eq!(o.database.as_deref(), Some("shop"));
        assert_eq!(o.connect_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(o.query_timeout, Some(Duration::from_secs(1)));
        assert_eq!(o.init, ["SET a=1"]);
        assert_eq!(
            o.attributes,
            [("program_name".to_string(), "x".to_string())]
        );
    }

    #[test]
    fn minimal_and_ipv6_and_socket() {
        let o = Opts::from_url("mysql://localhost").unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.user.as_str()),
            ("localhost", 3306, "root")
        );
        assert!(o.password.is_none() && o.database.is_none());
        let o = Opts::from_url("mariadb://u@[::1]:3310/").unwrap();
        assert_eq!(o.host, "::1");
        assert_eq!(o.address(), "[::1]:3310");
        let o = Opts::from_url("mysql://u@localhost/db?socket=%2Ftmp%2Fm.sock").unwrap();
        assert_eq!(o.get_socket().unwrap().to_str(), Some("/tmp/m.sock"));
    }

    #[test]
    fn bad_urls_are_config_errors_that_say_why() {
        for (url, needle) in [
            ("postgres://u@h/db", "scheme"),
            ("mysql://u@h:99999/db", "invalid connection URL"),
            ("not a url", "invalid connection URL"),
            ("mysql://u@h/db/extra", "just a database name"),
            (
                "mysql://u@h/db?conect_timeout=1",
                "unknown URL option 'conect_timeout'",
            ),
            ("mysql://u@h/db?connect_timeout=-1", "positive number"),
            ("mysql://u@h/db?tcp_nodelay=maybe", "true or false"),
            ("mysql://u@h/db?max_packet_size=1", "out of range"),
            ("mysql://u:%FF@h/db", "UTF-8"),
            ("mysql://u@h/db?ssl_mode=sometimes", "invalid ssl_mode"),
        ] {
            let e = Opts::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.to_string().contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn an_unknown_option_lists_every_accepted_name_and_suggests_the_closest() {
        let e = Opts::from_url("mysql://u@h/db?bogus=1").unwrap_err();
        let msg = e.to_string();
        // Every name the parser accepts, aliases included, is in the list.
        for opt in URL_OPTIONS {
            for name in opt.names {
                assert!(msg.contains(name), "'{name}' missing from: {msg}");
            }
        }
        for alias in [
            "statement-cache-capacity",
            "compression",
            "read_timeout",
            "ssl-mode",
        ] {
            assert!(msg.contains(alias), "{alias}: {msg}");
        }
        assert!(!msg.contains("did you mean"), "{msg}");
        // Typos get a suggestion.
        for (typo, want) in [
            ("conect_timeout", "connect_timeout"),
            ("ssl_mod", "ssl_mode"),
            ("SSL-CA", "ssl_ca"),
            ("stmt_cache_sise", "stmt_cache_size"),
            ("read_timeot", "read_timeout"),
        ] {
            let e = Opts::from_url(&format!("mysql://u@h/db?{typo}=1")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(
                e.to_string().contains(&format!(
                    "unknown URL option '{typo}'; did you mean '{want}'?"
                )),
                "{typo}: {e}"
            );
        }
    }

    #[test]
    fn every_name_in_the_option_table_is_accepted() {
        // A value each option takes (the table is what the parser uses, so
        // this checks no entry is a dead name).
        for opt in URL_OPTIONS {
            let value = match opt.names[0] {
                "socket" | "ssl_ca" | "ssl_cert" | "ssl_key" | "server_public_key"
                | "local_infile_dir" => "/tmp/x",
                "compress" => "zlib",
                "ssl_mode" => "disabled",
                "hosts" => "sequential",
                "charset" => "latin1",
                "program_name" | "init" | "tls_server_name" => "x",
                "max_packet_size" => "4096",
                "tcp_nodelay"
                | "allow_cleartext_password"
                | "allow_public_key_retrieval"
                | "multi_statements"
                | "local_infile_reader"
                | "prefer_socket"
                | "read_fallback"
                | "read_your_writes" => "true",
                _ => "2",
            };
            for name in opt.names {
                Opts::from_url(&format!("mysql://u@h/db?{name}={value}"))
                    .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
            }
        }
        let o =
            Opts::from_url("mysql://h/?read_timeout=3&compression=zlib&ssl-mode=required").unwrap();
        assert_eq!(o.query_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.compression, Some(Algorithm::Zlib(6)));
        assert_eq!(o.ssl_mode, SslMode::Required);
    }

    #[test]
    fn tls_options() {
        let o = Opts::from_url("mysql://u@h/db?ssl-mode=VERIFY_CA&ssl-ca=%2Fca.pem&ssl_cert=c.pem&ssl_key=k.pem&allow_public_key_retrieval=true").unwrap();
        assert_eq!(o.ssl_mode, SslMode::VerifyCa);
        assert_eq!(o.ssl_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert!(o.ssl_cert.is_some() && o.ssl_key.is_some());
        assert!(o.allow_public_key_retrieval);
        assert_eq!(Opts::new().ssl_mode, SslMode::Preferred);
        assert_eq!("disabled".parse::<SslMode>().unwrap(), SslMode::Disabled);
    }

    #[test]
    fn several_hosts_and_modes() {
        let o = Opts::from_url(
            "mysql://u:pw@h1:3306,h2:3307,[::1]:3308,h4/db?hosts=replication&max_replica_lag=5",
        )
        .unwrap();
        let hosts: Vec<String> = o.get_hosts().iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["h1:3306", "h2:3307", "[::1]:3308", "h4:3306"]);
        assert_eq!(o.host_set().unwrap().mode(), HostMode::Replication);
        assert_eq!((o.user.as_str(), o.password.as_deref()), ("u", Some("pw")));
        assert_eq!(o.database.as_deref(), Some("db"));
        assert_eq!(o.max_replica_lag, Some(Duration::from_secs(5)));
        // No mode: in order. One host: no host set.
        let o = Opts::from_url("mysql://h1,h2").unwrap();
        assert_eq!(o.host_set().unwrap().mode(), HostMode::Sequential);
        assert!(
            Opts::from_url("mysql://h1/db")
                .unwrap()
                .host_set()
                .is_none()
        );
        // Clones share what is learned about the hosts.
        let a = Opts::from_url("mysql://h1,h2/?hosts=loadbalance").unwrap();
        let b = a.clone();
        assert!(Arc::ptr_eq(a.host_set().unwrap(), b.host_set().unwrap()));
        for (url, needle) in [
            ("mysql://h1,,h2/db", "empty host"),
            ("mysql://h1,h2/db?hosts=roundrobin", "sequential, random"),
            ("mysql://h1,h2:0/db", "not a port"),
            ("mysql://h1,::1/db", "brackets"),
            ("mysql://h1,h2/db?socket=%2Ftmp%2Fs", "socket"),
        ] {
            let e = Opts::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.to_string().contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn options_other_drivers_use() {
        let o = Opts::from_url(
            "mysql://h/db?pool_min=2&pool_max=20&tcp_keepalive=10000&prefer_socket=true&statement-cache-capacity=7",
        )
        .unwrap();
        assert_eq!((o.pool_min, o.pool_max), (Some(2), Some(20)));
        assert_eq!(o.tcp_keepalive, Some(Duration::from_secs(10)));
        assert!(o.prefer_socket);
        assert_eq!(o.stmt_cache_size, 7);
        assert_eq!(
            Opts::from_url("mysql://h/?tcp_keepalive=0")
                .unwrap()
                .tcp_keepalive,
            None
        );
        let e = Opts::from_url("mysql://h/?pool_min=5&pool_max=2").unwrap_err();
        assert!(e.to_string().contains("pool_min <= pool_max"), "{e}");
    }

    #[test]
    fn compression_options() {
        let c =
            |v: &str| Opts::from_url(&format!("mysql://h/?compress={v}")).map(|o| o.compression);
        assert_eq!(c("zlib").unwrap(), Some(Algorithm::Zlib(6)));
        assert_eq!(c("zlib:9").unwrap(), Some(Algorithm::Zlib(9)));
        assert_eq!(c("fast").unwrap(), Some(Algorithm::Zlib(1)));
        assert_eq!(c("off").unwrap(), None);
        #[cfg(feature = "zstd")]
        assert_eq!(c("zstd:19").unwrap(), Some(Algorithm::Zstd(19)));
        #[cfg(not(feature = "zstd"))]
        assert!(c("zstd").unwrap_err().to_string().contains("feature"));
        for bad in ["zlib:10", "zstd:0", "lz4", "zlib:x"] {
            let e = c(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(e.to_string().contains("expected zlib"), "{bad}: {e}");
        }
    }

    #[test]
    fn password_is_redacted_in_debug() {
        let o = Opts::new().password("hunter2");
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("<redacted>"));
        let e = Opts::from_url("mysql://u:hunter2@h/db?bogus=1").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
