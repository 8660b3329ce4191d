//! The connection phase: initial handshake, handshake response, and the
//! authentication exchange (plugin switch, more-data), as a state machine.
//!
//! The IO shell reads a packet, passes it to [`Handshake::on_packet`], and
//! does what the returned [`Step`] says. No IO happens here.

use super::auth::{self, AuthPlugin};
use super::codec::{Reader, has_nul, put_lenenc_bytes, put_lenenc_int, put_null_terminated};
use super::consts::{UTF8MB4_GENERAL_CI, caps};
use super::error::{ProtoError, ProtoResult};
use super::packets::{ErrPacket, parse_err, parse_ok};

/// What the server says about itself in its first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// Protocol version (always 10).
    pub protocol_version: u8,
    /// Version string as sent (MariaDB may prefix it with `5.5.5-`; show
    /// [`version`](Self::version) instead).
    pub server_version: String,
    /// The server's thread id for this connection.
    pub connection_id: u32,
    /// The 20-byte authentication challenge.
    pub scramble: Vec<u8>,
    /// The server's capability flags (lower 32 bits).
    pub capabilities: u32,
    /// MariaDB extended capabilities (0 for MySQL).
    pub mariadb_capabilities: u32,
    /// The server's default collation id.
    pub collation: u8,
    /// Server status flags.
    pub status: u16,
    /// The server's default authentication plugin.
    pub auth_plugin: Vec<u8>,
}

impl ServerHello {
    /// True for MariaDB, which clears the `CLIENT_MYSQL` bit.
    pub fn is_mariadb(&self) -> bool {
        self.capabilities & caps::LONG_PASSWORD == 0 || self.server_version.contains("MariaDB")
    }

    /// The version with MariaDB's `5.5.5-` compatibility prefix removed:
    /// what to show (in messages, too) rather than `server_version`.
    pub fn version(&self) -> &str {
        crate::server_version::without_compat_prefix(&self.server_version)
    }
}

/// Parses the initial handshake packet (protocol v10).
pub fn parse_hello(payload: &[u8]) -> ProtoResult<ServerHello> {
    let mut r = Reader::new(payload);
    let protocol_version = r.u8("handshake protocol version")?;
    if protocol_version != 10 {
        return Err(ProtoError::Unsupported(format!(
            "handshake protocol version {protocol_version} (only version 10 is supported)"
        )));
    }
    let server_version = String::from_utf8_lossy(r.null_terminated("server version")?).into_owned();
    let connection_id = r.u32("connection id")?;
    let mut scramble = r.take(8, "auth data part 1")?.to_vec();
    r.skip(1, "handshake filler")?;
    let mut capabilities = u32::from(r.u16("capability flags")?);
    let mut hello = ServerHello {
        protocol_version,
        server_version,
        connection_id,
        scramble: Vec::new(),
        capabilities,
        mariadb_capabilities: 0,
        collation: 0,
        status: 0,
        auth_plugin: auth::NATIVE_PASSWORD.as_bytes().to_vec(),
    };
    if r.is_empty() {
        hello.scramble = scramble;
        return Ok(hello);
    }
    hello.collation = r.u8("server collation")?;
    hello.status = r.u16("server status")?;
    capabilities |= u32::from(r.u16("capability flags (upper)")?) << 16;
    hello.capabilities = capabilities;
    let auth_len = r.u8("auth data length")?;
    r.skip(6, "handshake reserved")?;
    let ext = r.u32("MariaDB capabilities")?;
    if capabilities & caps::LONG_PASSWORD == 0 {
        hello.mariadb_capabilities = ext;
    }
    if capabilities & caps::SECURE_CONNECTION != 0 {
        let n = usize::from(auth_len).saturating_sub(8).max(13);
        let part2 = r.take(n, "auth data part 2")?;
        let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
        scramble.extend_from_slice(part2);
    }
    hello.scramble = scramble;
    if capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
        // Some servers omit the final NUL.
        let rest = r.rest();
        let name = rest.split(|&b| b == 0).next().unwrap_or(rest);
        hello.auth_plugin = name.to_vec();
    }
    Ok(hello)
}

/// What the client brings to the handshake.
#[derive(Clone)]
pub struct HandshakeOpts {
    /// User name.
    pub user: String,
    /// Password (never printed).
    pub password: Vec<u8>,
    /// Database to select, if any.
    pub database: Option<String>,
    /// Largest packet the client accepts.
    pub max_packet: u32,
    /// Extra capability flags wanted (e.g. `MULTI_STATEMENTS`, `FOUND_ROWS`).
    pub extra_capabilities: u32,
    /// True over TLS or a Unix socket: the password may be sent in clear.
    pub secure_transport: bool,
    /// Allow `mysql_clear_password` over an insecure transport.
    pub allow_cleartext_password: bool,
    /// Connection attributes (`_client_name` etc. are added automatically).
    pub attributes: Vec<(String, String)>,
    /// Whether to upgrade to TLS (the shell performs it on [`Step::StartTls`]).
    pub tls: TlsMode,
    /// The server's RSA public key (PEM), for RSA password exchange over plain TCP.
    pub server_public_key: Option<Vec<u8>>,
    /// Ask the server for its RSA public key when needed and none was given.
    pub allow_public_key_retrieval: bool,
    /// Protocol compression to negotiate; a server without it is an error.
    pub compression: Option<super::compress::Algorithm>,
}

/// Whether the handshake asks for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Never.
    #[default]
    Disabled,
    /// When the server offers it; plain text otherwise.
    Preferred,
    /// Always; a server without TLS is an error.
    Required,
}

impl std::fmt::Debug for HandshakeOpts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeOpts")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("max_packet", &self.max_packet)
            .field("secure_transport", &self.secure_transport)
            .finish_non_exhaustive()
    }
}

/// What the IO shell must do after feeding a packet to the handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the payload written to `out`, then read the next packet.
    Send,
    /// Read the next packet; nothing to send.
    Read,
    /// Connected: the connection is ready for commands.
    Done,
    /// Send the SSLRequest written to `out`, run the TLS handshake, then call
    /// [`Handshake::tls_established`].
    StartTls,
}

/// Why the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// A malformed or unexpected packet.
    Proto(ProtoError),
    /// The server refused (wrong password, unknown database, too many connections...).
    Server {
        /// Server error code.
        code: u16,
        /// SQLSTATE.
        sql_state: [u8; 5],
        /// Server message.
        message: String,
    },
    /// Authentication cannot proceed safely or is not supported.
    Auth(String),
    /// TLS was required but cannot be used.
    Tls(String),
}

impl From<ProtoError> for HandshakeError {
    fn from(e: ProtoError) -> Self {
        HandshakeError::Proto(e)
    }
}

impl From<ErrPacket<'_>> for HandshakeError {
    fn from(e: ErrPacket<'_>) -> Self {
        HandshakeError::Server {
            code: e.code,
            sql_state: e.sql_state,
            message: String::from_utf8_lossy(e.message).into_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHello,
    AwaitTls,
    AwaitAuthResult,
    AwaitOkAfterFastAuth,
    Done,
}

/// The connection-phase state machine.
#[derive(Debug)]
pub struct Handshake {
    opts: HandshakeOpts,
    state: State,
    hello: Option<ServerHello>,
    capabilities: u32,
    mariadb_capabilities: u32,
    plugin: AuthPlugin,
    scramble: Vec<u8>,
    switched: bool,
    tls: bool,
    awaiting_key: bool,
}

/// MariaDB extended capabilities this client asks for (when the server has
/// them), as the upper 32 bits of the 64-bit flags: `COM_STMT_BULK_EXECUTE`,
/// and metadata caching for prepared statements (only with
/// `CLIENT_DEPRECATE_EOF`), which adds a byte to every column count packet.
pub const WANT_MARIADB_CAPS: u32 = ((caps::MARIADB_CLIENT_STMT_BULK_OPERATIONS
    | caps::MARIADB_CLIENT_CACHE_METADATA)
    >> 32) as u32;

/// Capabilities this client always asks for (when the server has them).
const BASE_CAPS: u32 = caps::LONG_PASSWORD
    | caps::LONG_FLAG
    | caps::PROTOCOL_41
    | caps::SECURE_CONNECTION
    | caps::PLUGIN_AUTH
    | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | caps::MULTI_RESULTS
    | caps::PS_MULTI_RESULTS
    | caps::DEPRECATE_EOF
    | caps::CONNECT_ATTRS
    // The server reports changes of the default database and of the
    // charset variables in OK packets (Connection::database, ::charset).
    | caps::SESSION_TRACK;

impl Handshake {
    /// A handshake that will authenticate with `opts`.
    pub fn new(opts: HandshakeOpts) -> Self {
        Handshake {
            opts,
            state: State::AwaitHello,
            hello: None,
            capabilities: 0,
            mariadb_capabilities: 0,
            plugin: AuthPlugin::Native,
            scramble: Vec::new(),
            switched: false,
            tls: false,
            awaiting_key: false,
        }
    }

    /// The server's greeting, once received.
    pub fn hello(&self) -> Option<&ServerHello> {
        self.hello.as_ref()
    }

    /// The negotiated MariaDB extended capabilities (upper 32 bits; 0 for MySQL).
    pub fn mariadb_capabilities(&self) -> u32 {
        self.mariadb_capabilities
    }

    /// The negotiated capability flags, once the response was sent.
    pub fn capabilities(&self) -> u32 {
        self.capabilities
    }

    /// The plugin that is (or was last) used to authenticate.
    pub fn plugin(&self) -> &AuthPlugin {
        &self.plugin
    }

    /// Feeds one packet from the server; writes any reply payload into `out`
    /// (which is cleared first).
    pub fn on_packet(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<Step, HandshakeError> {
        out.clear();
        match self.state {
            State::AwaitHello => {
                if payload.first() == Some(&0xFF) {
                    // E.g. "Too many connections" or "Host is blocked".
                    return Err(parse_err(payload)?.into());
                }
                let hello = parse_hello(payload)?;
                self.negotiate(hello)?;
                if self.capabilities & caps::SSL != 0 {
                    // SSLRequest: the fixed first 32 bytes of the response.
                    self.write_fixed(out);
                    self.state = State::AwaitTls;
                    return Ok(Step::StartTls);
                }
                self.write_response(out)?;
                self.state = State::AwaitAuthResult;
                Ok(Step::Send)
            }
            State::AwaitTls => Err(ProtoError::Unexpected {
                expected: "nothing (the TLS handshake comes next)",
                first_byte: payload.first().copied(),
            }
            .into()),
            State::AwaitAuthResult => self.on_auth_result(payload, out),
            State::AwaitOkAfterFastAuth => match payload.first() {
                Some(0x00) => {
                    parse_ok(payload, self.capabilities)?;
                    self.state = State::Done;
                    Ok(Step::Done)
                }
                Some(0xFF) => Err(parse_err(payload)?.into()),
                b => Err(ProtoError::Unexpected {
                    expected: "OK after fast authentication",
                    first_byte: b.copied(),
                }
                .into()),
            },
            State::Done => Err(ProtoError::Unexpected {
                expected: "nothing (handshake is complete)",
                first_byte: payload.first().copied(),
            }
            .into()),
        }
    }

    /// After the TLS handshake that [`Step::StartTls`] asked for: writes the
    /// handshake response (now encrypted) into `out`.
    pub fn tls_established(&mut self, out: &mut Vec<u8>) -> Result<Step, HandshakeError> {
        out.clear();
        if self.state != State::AwaitTls {
            return Err(HandshakeError::Tls(
                "TLS was not requested at this point of the handshake".into(),
            ));
        }
        self.tls = true;
        self.write_response(out)?;
        self.state = State::AwaitAuthResult;
        Ok(Step::Send)
    }

    /// True once the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Declares whether the transport is secure enough for a clear-text
    /// password (verified TLS or a local socket). Opportunistic TLS that did
    /// not verify the server is not.
    pub fn set_secure_transport(&mut self, secure: bool) {
        self.opts.secure_transport = secure;
    }

    fn negotiate(&mut self, hello: ServerHello) -> Result<(), HandshakeError> {
        if hello.capabilities & caps::PROTOCOL_41 == 0 {
            return Err(ProtoError::Unsupported(format!(
                "server {} does not speak protocol 4.1",
                hello.version()
            ))
            .into());
        }
        if has_nul(self.opts.user.as_bytes()) {
            return Err(HandshakeError::Auth(
                "the user name contains a NUL byte".into(),
            ));
        }
        let mut want = BASE_CAPS | self.opts.extra_capabilities;
        if self.opts.database.is_some() {
            want |= caps::CONNECT_WITH_DB;
        }
        match self.opts.tls {
            TlsMode::Disabled => {}
            TlsMode::Preferred => want |= caps::SSL,
            TlsMode::Required => {
                if hello.capabilities & caps::SSL == 0 {
                    return Err(HandshakeError::Tls(format!(
                        "TLS is required but the server ({}) does not offer it; enable TLS on the server \
                         (ssl_cert/ssl_key), or use ssl_mode=preferred or disabled",
                        hello.version()
                    )));
                }
                want |= caps::SSL;
            }
        }
        match self.opts.compression {
            None => {}
            Some(super::compress::Algorithm::Zlib(_)) => {
                if hello.capabilities & caps::COMPRESS == 0 {
                    return Err(ProtoError::Unsupported(format!(
                        "compress=zlib was asked for, but the server ({}) does not offer \
                         protocol compression",
                        hello.version()
                    ))
                    .into());
                }
                want |= caps::COMPRESS;
            }
            Some(super::compress::Algorithm::Zstd(_)) => {
                if hello.capabilities & caps::ZSTD_COMPRESSION == 0 {
                    return Err(ProtoError::Unsupported(format!(
                        "compress=zstd was asked for, but the server ({}) does not offer it \
                         (zstd is MySQL 8.0.18+; MariaDB offers compress=zlib)",
                        hello.version()
                    ))
                    .into());
                }
                want |= caps::ZSTD_COMPRESSION;
            }
        }
        let mut negotiated = want & hello.capabilities;
        let mariadb = hello.capabilities & caps::LONG_PASSWORD == 0;
        if mariadb {
            // MariaDB reads the extended capabilities only when CLIENT_MYSQL is clear.
            negotiated &= !caps::LONG_PASSWORD;
            self.mariadb_capabilities = hello.mariadb_capabilities & WANT_MARIADB_CAPS;
            if negotiated & caps::DEPRECATE_EOF == 0 {
                self.mariadb_capabilities &= !((caps::MARIADB_CLIENT_CACHE_METADATA >> 32) as u32);
            }
        }
        self.capabilities = negotiated;
        self.scramble = hello.scramble.clone();
        self.plugin = AuthPlugin::from_name(&hello.auth_plugin);
        self.hello = Some(hello);
        Ok(())
    }

    /// The fixed part shared by the SSLRequest and the handshake response.
    fn write_fixed(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.capabilities.to_le_bytes());
        out.extend_from_slice(&self.opts.max_packet.to_le_bytes());
        out.push(UTF8MB4_GENERAL_CI);
        out.extend_from_slice(&[0; 19]);
        out.extend_from_slice(&self.mariadb_capabilities.to_le_bytes()); // MariaDB extended capabilities
    }

    fn write_response(&mut self, out: &mut Vec<u8>) -> Result<(), HandshakeError> {
        let negotiated = self.capabilities;
        let auth_response = match self.auth_response() {
            Ok(r) => r,
            // An unknown default plugin: answer with native and let the server switch us.
            Err(_) if matches!(self.plugin, AuthPlugin::Other(_)) => {
                self.plugin = AuthPlugin::Native;
                self.auth_response()?
            }
            Err(e) => return Err(e),
        };
        self.awaiting_key = self.plugin == AuthPlugin::Sha256 && auth_response == [0x01];
        self.write_fixed(out);
        put_null_terminated(out, self.opts.user.as_bytes());
        if negotiated & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(out, &auth_response);
        } else {
            out.push(auth_response.len() as u8);
            out.extend_from_slice(&auth_response);
        }
        if negotiated & caps::CONNECT_WITH_DB != 0 {
            let db = self.opts.database.as_deref().unwrap_or("");
            if has_nul(db.as_bytes()) {
                return Err(HandshakeError::Auth(
                    "the database name contains a NUL byte".into(),
                ));
            }
            put_null_terminated(out, db.as_bytes());
        }
        if negotiated & caps::PLUGIN_AUTH != 0 {
            put_null_terminated(out, self.plugin.name().as_bytes());
        }
        if negotiated & caps::CONNECT_ATTRS != 0 {
            self.write_attributes(out);
        }
        if negotiated & caps::ZSTD_COMPRESSION != 0 {
            let level = match self.opts.compression {
                Some(super::compress::Algorithm::Zstd(l)) => l,
                _ => 3,
            };
            out.push(level);
        }
        Ok(())
    }

    /// The compression the connection uses once authenticated, if any.
    pub fn compression(&self) -> Option<super::compress::Algorithm> {
        if self.capabilities & (caps::COMPRESS | caps::ZSTD_COMPRESSION) == 0 {
            return None;
        }
        self.opts.compression
    }

    /// The length-prefixed connection attributes.
    fn write_attributes(&self, out: &mut Vec<u8>) {
        {
            let mut attrs = Vec::with_capacity(128);
            let pid = std::process::id().to_string();
            let builtin = [
                ("_client_name", "mysql-uring"),
                ("_client_version", env!("CARGO_PKG_VERSION")),
                ("_os", std::env::consts::OS),
                ("_platform", std::env::consts::ARCH),
                ("_pid", pid.as_str()),
            ];
            for (k, v) in builtin.iter().map(|(k, v)| (*k, *v)).chain(
                self.opts
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ) {
                put_lenenc_bytes(&mut attrs, k.as_bytes());
                put_lenenc_bytes(&mut attrs, v.as_bytes());
            }
            put_lenenc_int(out, attrs.len() as u64);
            out.extend_from_slice(&attrs);
        }
    }

    /// Starts re-authentication on an established session (`COM_CHANGE_USER`):
    /// writes the command's payload into `out`; feed the server's replies to
    /// [`Handshake::on_packet`] as during the handshake, until [`Step::Done`].
    /// The answer to the server's original challenge uses the plugin last
    /// used; the server switches plugin if the new user needs another.
    pub fn change_user(
        &mut self,
        user: &str,
        password: &[u8],
        database: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), HandshakeError> {
        out.clear();
        if self.state != State::Done {
            return Err(HandshakeError::Auth(
                "change_user needs an established session".into(),
            ));
        }
        if has_nul(user.as_bytes()) || database.is_some_and(|d| has_nul(d.as_bytes())) {
            return Err(HandshakeError::Auth(
                "the user or database name contains a NUL byte".into(),
            ));
        }
        self.opts.user = user.to_string();
        self.opts.password = password.to_vec();
        self.opts.database = database.map(str::to_string);
        self.switched = false;
        if matches!(self.plugin, AuthPlugin::Other(_)) {
            self.plugin = AuthPlugin::Native;
        }
        let auth_response = self.auth_response()?;
        self.awaiting_key = self.plugin == AuthPlugin::Sha256 && auth_response == [0x01];
        out.push(super::consts::com::CHANGE_USER);
        put_null_terminated(out, user.as_bytes());
        if self.capabilities & caps::SECURE_CONNECTION != 0 {
            let len = u8::try_from(auth_response.len()).map_err(|_| {
                HandshakeError::Auth(
                    "the authentication response is too long for COM_CHANGE_USER".into(),
                )
            })?;
            out.push(len);
            out.extend_from_slice(&auth_response);
        } else {
            put_null_terminated(out, &auth_response);
        }
        put_null_terminated(out, database.unwrap_or("").as_bytes());
        out.extend_from_slice(&u16::from(UTF8MB4_GENERAL_CI).to_le_bytes());
        if self.capabilities & caps::PLUGIN_AUTH != 0 {
            put_null_terminated(out, self.plugin.name().as_bytes());
        }
        if self.capabilities & caps::CONNECT_ATTRS != 0 {
            self.write_attributes(out);
        }
        self.state = State::AwaitAuthResult;
        Ok(())
    }

    fn auth_response(&self) -> Result<Vec<u8>, HandshakeError> {
        let pw = &self.opts.password;
        match &self.plugin {
            AuthPlugin::Native => Ok(auth::scramble_native(pw, &self.scramble)),
            AuthPlugin::CachingSha2 => Ok(auth::scramble_sha256(pw, &self.scramble)),
            AuthPlugin::Clear => {
                if !self.opts.secure_transport && !self.opts.allow_cleartext_password {
                    return Err(HandshakeError::Auth(
                        "the server asks for mysql_clear_password, which would send the password \
                         unencrypted over TCP; use TLS or a Unix socket, or allow it explicitly"
                            .into(),
                    ));
                }
                let mut v = pw.clone();
                v.push(0);
                Ok(v)
            }
            AuthPlugin::Ed25519 => Ok(auth::sign_ed25519(pw, &self.scramble)),
            AuthPlugin::Sha256 => {
                if pw.is_empty() {
                    Ok(vec![0])
                } else if self.opts.secure_transport {
                    let mut v = pw.clone();
                    v.push(0);
                    Ok(v)
                } else {
                    self.rsa_step("sha256_password", 0x01)
                }
            }
            AuthPlugin::Other(name) => Err(HandshakeError::Auth(format!(
                "the server asks for authentication plugin '{name}', which this client does not support \
                 (supported: mysql_native_password, caching_sha2_password, sha256_password, \
                 client_ed25519, mysql_clear_password)"
            ))),
        }
    }

    /// The RSA leg of a password exchange over plain TCP: encrypt with the
    /// configured key, or ask the server for its key (`request` byte) if allowed.
    fn rsa_step(&self, plugin: &str, request: u8) -> Result<Vec<u8>, HandshakeError> {
        if let Some(pem) = &self.opts.server_public_key {
            return auth::rsa_encrypt_password(&self.opts.password, &self.scramble, pem)
                .map_err(HandshakeError::Auth);
        }
        if self.opts.allow_public_key_retrieval {
            return Ok(vec![request]);
        }
        Err(HandshakeError::Auth(format!(
            "{plugin} needs to send the password, which this client does only over TLS, a Unix socket, \
             or RSA-encrypted: use TLS (ssl_mode=required), give the server's public key \
             (server_public_key=FILE), or allow fetching it (allow_public_key_retrieval=true; \
             an attacker on the network could substitute their own key)"
        )))
    }

    fn on_auth_result(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Step, HandshakeError> {
        match payload.first() {
            Some(0x00) => {
                parse_ok(payload, self.capabilities)?;
                self.state = State::Done;
                Ok(Step::Done)
            }
            Some(0xFF) => Err(parse_err(payload)?.into()),
            Some(0xFE) => {
                // Auth switch request: plugin name, then the new challenge.
                if self.switched {
                    return Err(HandshakeError::Auth(
                        "the server asked to switch authentication plugin twice".into(),
                    ));
                }
                self.switched = true;
                let mut r = Reader::new(&payload[1..]);
                if r.is_empty() {
                    return Err(HandshakeError::Auth(
                        "the server asks for the pre-4.1 password scheme (mysql_old_password), \
                         which is insecure and not supported"
                            .into(),
                    ));
                }
                let name = r.null_terminated("auth switch plugin name")?;
                let data = r.rest();
                self.plugin = AuthPlugin::from_name(name);
                // The 20-byte challenges of the SHA plugins come NUL-terminated;
                // ed25519's 32 random bytes do not (and may end in 0).
                self.scramble = match (&self.plugin, data) {
                    (AuthPlugin::Ed25519, _) => data.to_vec(),
                    (_, [rest @ .., 0]) => rest.to_vec(),
                    _ => data.to_vec(),
                };
                let response = self.auth_response()?;
                self.awaiting_key = response.len() == 1
                    && matches!(self.plugin, AuthPlugin::Sha256)
                    && response[0] == 0x01;
                out.extend_from_slice(&response);
                Ok(Step::Send)
            }
            Some(0x01) => self.on_more_data(&payload[1..], out),
            b => Err(ProtoError::Unexpected {
                expected: "authentication result",
                first_byte: b.copied(),
            }
            .into()),
        }
    }

    fn on_more_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<Step, HandshakeError> {
        if self.awaiting_key {
            // The server's public key, which we asked for.
            self.awaiting_key = false;
            let enc = auth::rsa_encrypt_password(&self.opts.password, &self.scramble, data)
                .map_err(HandshakeError::Auth)?;
            out.extend_from_slice(&enc);
            return Ok(Step::Send);
        }
        if self.plugin != AuthPlugin::CachingSha2 {
            return Err(HandshakeError::Auth(format!(
                "unexpected extra authentication data for plugin {}",
                self.plugin.name()
            )));
        }
        match data {
            // Fast authentication succeeded; an OK follows.
            [0x03] => {
                self.state = State::AwaitOkAfterFastAuth;
                Ok(Step::Read)
            }
            // Full authentication: the password must be sent.
            [0x04] => {
                if self.opts.secure_transport {
                    out.extend_from_slice(&self.opts.password);
                    out.push(0);
                    return Ok(Step::Send);
                }
                let step = self.rsa_step("caching_sha2_password full authentication", 0x02)?;
                self.awaiting_key = step == [0x02];
                out.extend_from_slice(&step);
                Ok(Step::Send)
            }
            _ => Err(ProtoError::Invalid {
                what: "caching_sha2_password status",
                detail: format!("{} bytes starting {:?}", data.len(), data.first()),
            }
            .into()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
