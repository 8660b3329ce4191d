//! Connection options, from a builder or a `mysql://` URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hosts::{HostAddr, HostMode, HostSet, Role};

mod parse;

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
        parse::from_url(url)
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
mod tests;
