//! A private MariaDB server for the integration tests, examples and
//! benchmarks.
//!
//! [`server()`] starts one `mariadbd` per process, the first time it is
//! called: a fresh data directory under `target/mysql-uring-test/<pid>/`, a
//! free TCP port on 127.0.0.1, a Unix socket, TLS with a private test CA
//! ([`TestServer::tls`]), and the test users below. The
//! server is killed when the process exits (`PR_SET_PDEATHSIG`), however it
//! exits, and its directory is removed at a normal exit (or by the next run
//! when the process was killed). Set `MYSQL_URING_KEEP_DATADIR=1` to keep it.
//!
//! When `MYSQL_URL` is set, [`test_url()`] returns it and no server is
//! started; [`external()`] tells tests that need this server's users, or that
//! kill and restart it, to skip.
//!
//! This file is a plain module with no dependency on the crate itself:
//! integration tests include it with `mod support;`, examples and benchmarks
//! with `#[path = "../tests/support/mod.rs"] mod support;`.
// Each test binary, example and benchmark uses only some of these items. An
// includer may also put `#[allow(dead_code)]` on its `mod support;` line,
// which clippy would otherwise flag as a duplicated attribute.
#![allow(dead_code, clippy::duplicated_attributes)]

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// The address the private server listens on.
pub const HOST: &str = "127.0.0.1";
/// The database every test user can use; [`TestServer::root_url`] selects it.
pub const TEST_DB: &str = "test";
/// The administrator: all privileges, empty password, from any host.
pub const ROOT_USER: &str = "root";
/// A user with all privileges that authenticates with `mysql_native_password`.
pub const NATIVE_USER: &str = "mu_native";
/// [`NATIVE_USER`]'s password.
pub const NATIVE_PASSWORD: &str = "native-pass";
/// A user with all privileges that authenticates with MariaDB's `ed25519` plugin.
pub const ED25519_USER: &str = "mu_ed25519";
/// [`ED25519_USER`]'s password.
pub const ED25519_PASSWORD: &str = "ed-pass";
/// A user with all privileges and an empty password.
pub const NOPASS_USER: &str = "mu_nopass";
/// A user who may only `SELECT` in the `test` database.
pub const LIMITED_USER: &str = "mu_limited";
/// [`LIMITED_USER`]'s password.
pub const LIMITED_PASSWORD: &str = "limited-pass";
/// A user with all privileges who may only connect over TLS (`REQUIRE SSL`).
pub const SSL_USER: &str = "mu_ssl";
/// [`SSL_USER`]'s password.
pub const SSL_PASSWORD: &str = "ssl-pass";
/// A user with all privileges who must present a client certificate signed by
/// the test CA (`REQUIRE X509`): [`TlsFiles::client_cert`] and
/// [`TlsFiles::client_key`].
pub const X509_USER: &str = "mu_x509";
/// [`X509_USER`]'s password.
pub const X509_PASSWORD: &str = "x509-pass";

/// The start of the names of data directory templates (see [`prepare_datadir`]).
/// v2: `data/` and `tls/` inside (v1 was the data directory alone).
const TEMPLATE_PREFIX: &str = "template-v2-";
/// How long the test certificates are valid: they are made once per template,
/// which lives as long as the installed MariaDB.
const TLS_DAYS: &str = "3650";
/// How long the server may take to become ready before we give up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest Unix socket path (`sun_path` is 108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 107;
/// The command to suggest when MariaDB cannot be installed automatically.
const MANUAL_INSTALL: &str =
    "sudo apt-get update && sudo apt-get install -y mariadb-server mariadb-client openssl";

/// Runs at every server start (`--init-file`), so every statement is
/// idempotent. Each user exists for host `%` (TCP) and `localhost` (the Unix
/// socket, where an anonymous or host-specific entry would otherwise win).
const INIT_SQL: &str = "\
CREATE DATABASE IF NOT EXISTS test;
CREATE OR REPLACE USER 'root'@'%' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE OR REPLACE USER 'mu_native'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('native-pass');
CREATE OR REPLACE USER 'mu_native'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('native-pass');
CREATE OR REPLACE USER 'mu_ed25519'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pass');
CREATE OR REPLACE USER 'mu_ed25519'@'localhost' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pass');
CREATE OR REPLACE USER 'mu_nopass'@'%' IDENTIFIED BY '';
CREATE OR REPLACE USER 'mu_nopass'@'localhost' IDENTIFIED BY '';
CREATE OR REPLACE USER 'mu_limited'@'%' IDENTIFIED BY 'limited-pass';
CREATE OR REPLACE USER 'mu_limited'@'localhost' IDENTIFIED BY 'limited-pass';
GRANT ALL PRIVILEGES ON *.* TO 'mu_native'@'%', 'mu_native'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO 'mu_ed25519'@'%', 'mu_ed25519'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO 'mu_nopass'@'%', 'mu_nopass'@'localhost';
GRANT SELECT ON test.* TO 'mu_limited'@'%', 'mu_limited'@'localhost';
CREATE OR REPLACE USER 'mu_ssl'@'%' IDENTIFIED BY 'ssl-pass' REQUIRE SSL;
CREATE OR REPLACE USER 'mu_ssl'@'localhost' IDENTIFIED BY 'ssl-pass' REQUIRE SSL;
CREATE OR REPLACE USER 'mu_x509'@'%' IDENTIFIED BY 'x509-pass' REQUIRE X509;
CREATE OR REPLACE USER 'mu_x509'@'localhost' IDENTIFIED BY 'x509-pass' REQUIRE X509;
GRANT ALL PRIVILEGES ON *.* TO 'mu_ssl'@'%', 'mu_ssl'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO 'mu_x509'@'%', 'mu_x509'@'localhost';
";

/// The pid of the running server, for the exit hook (0: none).
static SERVER_PID: AtomicI32 = AtomicI32::new(0);
/// What the exit hook removes: the per-process directory and a socket in /tmp.
static CLEANUP: OnceLock<(PathBuf, Option<PathBuf>)> = OnceLock::new();
/// The one server of this process.
static SERVER: OnceLock<TestServer> = OnceLock::new();

/// A private `mariadbd` owned by this process.
pub struct TestServer {
    /// The TCP address it listens on: always `127.0.0.1`.
    pub host: String,
    /// The TCP port, chosen free at first start and kept across restarts.
    pub port: u16,
    /// The Unix socket it listens on.
    pub socket: PathBuf,
    /// Its data directory (`error.log` is in there).
    pub datadir: PathBuf,
    /// The server's TLS certificates and keys, and certificates for clients.
    /// The server always has TLS enabled (`have_ssl` is `YES`), over TCP and
    /// the Unix socket.
    pub tls: TlsFiles,
    /// The `mariadbd` command line after the program name.
    args: Vec<OsString>,
    /// The running server, `None` after [`TestServer::kill`].
    child: Mutex<Option<Child>>,
    /// Asks the spawner thread to start the server; it replies on the sender.
    spawner: mpsc::Sender<SpawnRequest>,
}

/// The TLS material of the private server: PEM files in
/// `target/mysql-uring-test/<pid>/tls/`, made with the `openssl` command-line
/// tool (RSA 2048-bit keys in PKCS#8, SHA-256 signatures, X.509 v3, valid for
/// ten years from when the data directory template was made).
///
/// To test a server name mismatch, connect to `127.0.0.1` while expecting a
/// name the server certificate does not carry, such as `db.example`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The test CA's certificate (`ca.pem`, CN `mysql-uring test CA`): it
    /// signed [`server_cert`](Self::server_cert) and
    /// [`client_cert`](Self::client_cert), and the server trusts it for
    /// client certificates. Use it as the client's root to verify the server.
    pub ca: PathBuf,
    /// The server's certificate (`server-cert.pem`): CN `localhost`,
    /// subjectAltName `IP:127.0.0.1` and `DNS:localhost`, extended key usage
    /// serverAuth, signed by [`ca`](Self::ca).
    pub server_cert: PathBuf,
    /// The private key of [`server_cert`](Self::server_cert)
    /// (`server-key.pem`, PKCS#8).
    pub server_key: PathBuf,
    /// A client certificate (`client-cert.pem`): CN `mu_x509`, extended key
    /// usage clientAuth, signed by [`ca`](Self::ca). Required by
    /// [`X509_USER`]; accepted for any user.
    pub client_cert: PathBuf,
    /// The private key of [`client_cert`](Self::client_cert)
    /// (`client-key.pem`, PKCS#8).
    pub client_key: PathBuf,
    /// An unrelated CA's certificate (`wrong-ca.pem`, CN `mysql-uring wrong
    /// CA`) that signed nothing the server presents: verifying the server
    /// against it must fail.
    pub wrong_ca: PathBuf,
}

impl TlsFiles {
    /// The files in `dir`, under their fixed names.
    fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server-cert.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client-cert.pem"),
            client_key: dir.join("client-key.pem"),
            wrong_ca: dir.join("wrong-ca.pem"),
        }
    }

    /// Whether all the files exist.
    fn complete(&self) -> bool {
        [
            &self.ca,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
            &self.wrong_ca,
        ]
        .iter()
        .all(|p| p.is_file())
    }
}

/// Starts (once per process) a private `mariadbd` and returns it.
///
/// The first call installs MariaDB with `scripts/install-mariadb.sh` when it
/// is missing, creates a fresh data directory and waits until the server
/// accepts connections (well under a second on a warm machine). The server is
/// killed automatically when the process exits. Panics with the reason (and
/// the end of the server's error log) when it cannot be started.
pub fn server() -> &'static TestServer {
    SERVER.get_or_init(TestServer::start)
}

/// `MYSQL_URL` if it is set (then no private server is started), else
/// [`server()`]'s [`TestServer::root_url`].
pub fn test_url() -> String {
    match std::env::var("MYSQL_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => server().root_url(),
    }
}

/// Whether `MYSQL_URL` points at an external server.
///
/// Tests that need the private server's users, or that kill and restart it,
/// should print a note and skip when this is true.
pub fn external() -> bool {
    std::env::var_os("MYSQL_URL").is_some_and(|v| !v.is_empty())
}

impl TestServer {
    /// A `mysql://user:password@127.0.0.1:PORT/db` URL for this server, with
    /// the user and password percent-encoded (the password is left out when
    /// empty).
    pub fn url(&self, user: &str, password: &str, db: Option<&str>) -> String {
        let mut url = format!("mysql://{}", encode(user));
        if !password.is_empty() {
            url.push(':');
            url.push_str(&encode(password));
        }
        url.push_str(&format!("@{}:{}", self.host, self.port));
        if let Some(db) = db {
            url.push('/');
            url.push_str(&encode(db));
        }
        url
    }

    /// The URL for `root` (empty password) and the database `test`.
    pub fn root_url(&self) -> String {
        self.url(ROOT_USER, "", Some(TEST_DB))
    }

    /// Kills the server with `SIGKILL` and waits until it is gone (its port
    /// then refuses connections). Does nothing when it is not running.
    pub fn kill(&self) {
        let mut child = lock(&self.child);
        if let Some(mut c) = child.take() {
            SERVER_PID.store(0, Ordering::SeqCst);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, socket and data directory
    /// (killing it first if it is running) and waits until it accepts
    /// connections. Panics when it does not come up.
    pub fn restart(&self) {
        let mut child = lock(&self.child);
        if let Some(mut c) = child.take() {
            SERVER_PID.store(0, Ordering::SeqCst);
            let _ = c.kill();
            let _ = c.wait();
        }
        let log = self.datadir.join("error.log");
        let offset = file_len(&log);
        let mut c = spawn_via(&self.spawner, self.args.clone())
            .unwrap_or_else(|e| panic!("mysql-uring test support: cannot restart mariadbd: {e}"));
        SERVER_PID.store(c.id() as i32, Ordering::SeqCst);
        if let Err(why) = wait_ready(&mut c, &log, offset, self.port) {
            let _ = c.kill();
            let _ = c.wait();
            SERVER_PID.store(0, Ordering::SeqCst);
            panic!(
                "mysql-uring test support: mariadbd did not restart: {why}\n{}",
                log_tail(&log)
            );
        }
        *child = Some(c);
    }

    /// Whether the server process is alive.
    pub fn is_running(&self) -> bool {
        let mut child = lock(&self.child);
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                *child = None;
                SERVER_PID.store(0, Ordering::SeqCst);
                false
            }
            None => false,
        }
    }

    /// Installs (if needed), initialises and starts the server.
    fn start() -> TestServer {
        let t0 = Instant::now();
        let tools = find_or_install();
        let mariadbd = tools.mariadbd.clone();
        let base = target_dir().join("mysql-uring-test");
        remove_stale(&base, &template_name(&mariadbd));

        let pid = std::process::id();
        let dir = base.join(pid.to_string());
        let _ = fs::remove_dir_all(&dir);
        let datadir = dir.join("data");
        fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "mysql-uring test support: cannot create {}: {e}",
                dir.display()
            )
        });
        let mut socket = datadir.join("mysqld.sock");
        let tmp_socket = socket.as_os_str().len() > MAX_SOCKET_PATH;
        if tmp_socket {
            socket = std::env::temp_dir().join(format!("mysql-uring-{pid}.sock"));
            if socket.as_os_str().len() > MAX_SOCKET_PATH {
                socket = PathBuf::from(format!("/tmp/mysql-uring-{pid}.sock"));
            }
        }
        let _ = CLEANUP.set((dir.clone(), tmp_socket.then(|| socket.clone())));
        register_exit_hook();

        let tls = prepare_datadir(&tools, &base, &dir, &datadir);
        let t_install = t0.elapsed();
        let init_file = dir.join("init.sql");
        fs::write(&init_file, INIT_SQL).unwrap_or_else(|e| {
            panic!(
                "mysql-uring test support: cannot write {}: {e}",
                init_file.display()
            )
        });

        let spawner = start_spawner(mariadbd.clone());
        let log = datadir.join("error.log");
        let mut attempt = 0;
        let (port, args, child) = loop {
            attempt += 1;
            let port = free_port();
            let args = server_args(&datadir, &socket, &init_file, &tls, port);
            let offset = file_len(&log);
            let mut c = spawn_via(&spawner, args.clone())
                .unwrap_or_else(|e| panic!("mysql-uring test support: cannot start mariadbd: {e}"));
            SERVER_PID.store(c.id() as i32, Ordering::SeqCst);
            match wait_ready(&mut c, &log, offset, port) {
                Ok(()) => break (port, args, c),
                Err(why) => {
                    let _ = c.kill();
                    let _ = c.wait();
                    SERVER_PID.store(0, Ordering::SeqCst);
                    // Another process may have taken the port between our
                    // probe and the server's bind: try another one.
                    let lost_port = log_since(&log, offset).contains("Bind on TCP/IP port");
                    if !(lost_port && attempt < 3) {
                        panic!(
                            "mysql-uring test support: mariadbd did not start: {why}\n{}\n\
                             (its data directory is a copy of {}; remove that to have it made afresh)",
                            log_tail(&log),
                            base.join(template_name(&mariadbd)).display()
                        );
                    }
                }
            }
        };
        eprintln!(
            "mysql-uring test support: mariadbd ready on {HOST}:{port} in {:.2} s \
             ({:.2} s data directory, {:.2} s server start; {})",
            t0.elapsed().as_secs_f64(),
            t_install.as_secs_f64(),
            (t0.elapsed() - t_install).as_secs_f64(),
            datadir.display()
        );
        TestServer {
            host: HOST.to_string(),
            port,
            socket,
            datadir,
            tls,
            args,
            child: Mutex::new(Some(child)),
            spawner,
        }
    }
}

/// Locks a mutex, ignoring poisoning (a failed test must not break the others).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `mariadbd` arguments (after the program name).
fn server_args(
    datadir: &Path,
    socket: &Path,
    init_file: &Path,
    tls: &TlsFiles,
    port: u16,
) -> Vec<OsString> {
    let path_arg = |name: &str, p: &Path| {
        let mut a = OsString::from(format!("--{name}="));
        a.push(p);
        a
    };
    // --no-defaults must come first: mariadbd only honours it there.
    let mut args = vec![
        OsString::from("--no-defaults"),
        path_arg("datadir", datadir),
        OsString::from(format!("--port={port}")),
        OsString::from(format!("--bind-address={HOST}")),
        path_arg("socket", socket),
        path_arg("pid-file", &datadir.join("mysqld.pid")),
        path_arg("log-error", &datadir.join("error.log")),
        path_arg("init-file", init_file),
        path_arg("ssl-ca", &tls.ca),
        path_arg("ssl-cert", &tls.server_cert),
        path_arg("ssl-key", &tls.server_key),
    ];
    args.extend(
        [
            "--skip-log-bin",
            "--max-connections=2000",
            "--innodb-buffer-pool-size=128M",
            "--innodb-log-file-size=64M",
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-name-resolve",
            "--max-allowed-packet=64M",
            "--plugin-load-add=auth_ed25519",
        ]
        .map(OsString::from),
    );
    if is_root() {
        // mariadbd refuses to run as root unless told to.
        args.push(OsString::from("--user=root"));
    }
    args
}

/// Whether this process runs as root.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The first of `candidates` that exists, looking bare names up in `PATH`.
fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for c in candidates {
        if c.contains('/') {
            if Path::new(c).is_file() {
                return Some(PathBuf::from(c));
            }
        } else if let Some(p) = std::env::split_paths(&path)
            .map(|d| d.join(c))
            .find(|p| p.is_file())
        {
            return Some(p);
        }
    }
    None
}

/// The programs the private server needs.
struct Tools {
    /// `mariadbd` (or `mysqld`).
    mariadbd: PathBuf,
    /// `mariadb-install-db` (or `mysql_install_db`).
    install_db: PathBuf,
    /// `openssl`, to make the TLS certificates.
    openssl: PathBuf,
}

/// `mariadbd` and `mariadb-install-db`, if installed.
fn find_binaries() -> Option<(PathBuf, PathBuf)> {
    let server = find_program(&[
        "/usr/sbin/mariadbd",
        "/usr/sbin/mysqld",
        "mariadbd",
        "mysqld",
    ])?;
    let install = find_program(&[
        "mariadb-install-db",
        "mysql_install_db",
        "/usr/bin/mariadb-install-db",
        "/usr/bin/mysql_install_db",
    ])?;
    Some((server, install))
}

/// The `openssl` command-line tool, if installed.
fn find_openssl() -> Option<PathBuf> {
    find_program(&["openssl", "/usr/bin/openssl"])
}

/// All of [`Tools`], if installed.
fn find_tools() -> Option<Tools> {
    let (mariadbd, install_db) = find_binaries()?;
    let openssl = find_openssl()?;
    Some(Tools {
        mariadbd,
        install_db,
        openssl,
    })
}

/// Finds the server binaries and `openssl`, running
/// `scripts/install-mariadb.sh` first when any is missing. Panics with the
/// command to run by hand when that fails.
fn find_or_install() -> Tools {
    if let Some(found) = find_tools() {
        return found;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-mariadb.sh");
    eprintln!(
        "mysql-uring test support: mariadbd, mariadb-install-db or openssl not found; running {} \
         (apt-get update && apt-get install -y of what is missing, with sudo -n when not root)",
        script.display()
    );
    let status = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .status();
    match (status, find_tools()) {
        (Ok(s), Some(found)) if s.success() => found,
        (status, _) => panic!(
            "mysql-uring test support: the MariaDB server or the openssl tool (for the test \
             server's TLS certificates) is not installed and could not be installed \
             automatically ({} exited with {status:?}). Install them with:\n    {MANUAL_INSTALL}\n\
             or point the tests at an existing server with MYSQL_URL=mysql://user:pass@host:port/db",
            script.display()
        ),
    }
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the directory holding
/// the running executable (cargo marks it with `CACHEDIR.TAG`), else the
/// nearest `target/` above the crate.
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return manifest.join(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    manifest
        .ancestors()
        .map(|d| d.join("target"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| manifest.join("target"))
}

/// Whether a process with this pid exists.
fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes directories (and /tmp sockets) left by earlier processes that have
/// died without cleaning up, and data directory templates of other server
/// binaries.
fn remove_stale(base: &Path, template: &str) {
    let own = std::process::id();
    if let Ok(entries) = fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Ok(pid) = name.parse::<i32>() {
                if pid as u32 != own && pid > 0 && !pid_alive(pid) {
                    let _ = fs::remove_dir_all(e.path());
                }
            } else if name.starts_with("template") && name != template {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    for tmp in [std::env::temp_dir(), PathBuf::from("/tmp")] {
        let Ok(entries) = fs::read_dir(&tmp) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("mysql-uring-"))
                .and_then(|n| n.strip_suffix(".sock"))
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if pid as u32 != own && pid > 0 && !pid_alive(pid) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Fills the fresh `datadir` (`dir/data`) and `dir/tls` with a copy of a
/// template made once and kept under `base`: a pristine data directory
/// installed with `mariadb-install-db` (`data/`) and the TLS certificates
/// (`tls/`, see [`make_tls`]). Copying with `cp -a` takes a fraction of the
/// time `mariadb-install-db` does (it fsyncs everything it writes), and RSA
/// key generation is not free either. The template's name holds the server
/// binary's size and mtime, so an upgraded MariaDB gets a new one. Falls back
/// to making both in `dir` directly if the copy fails.
///
/// The certificates are kept beside the data directory, not in it: mariadbd
/// takes every directory in its data directory for a database.
fn prepare_datadir(tools: &Tools, base: &Path, dir: &Path, datadir: &Path) -> TlsFiles {
    let tpl = base.join(template_name(&tools.mariadbd));
    if !(tpl.join("data/mysql").is_dir() && TlsFiles::in_dir(&tpl.join("tls")).complete()) {
        // Built inside our own directory and renamed into place in one step,
        // so other processes see either no template or a complete one. If
        // another process won the race the rename fails and theirs is used.
        let build = dir.join("template-build");
        let _ = fs::remove_dir_all(&build);
        create_dir(&build);
        install_datadir(&tools.install_db, dir, &build.join("data"));
        make_tls(&tools.openssl, &build.join("tls"));
        if fs::rename(&build, &tpl).is_err() {
            let _ = fs::remove_dir_all(&build);
        }
    }
    let tls_dir = dir.join("tls");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(tpl.join("data"))
        .arg(tpl.join("tls"))
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let tls = TlsFiles::in_dir(&tls_dir);
    if !copied || !tls.complete() {
        let _ = fs::remove_dir_all(datadir);
        let _ = fs::remove_dir_all(&tls_dir);
        install_datadir(&tools.install_db, dir, datadir);
        make_tls(&tools.openssl, &tls_dir);
    }
    tls
}

/// Creates a directory (and its parents), panicking with the reason.
fn create_dir(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| {
        panic!(
            "mysql-uring test support: cannot create {}: {e}",
            p.display()
        )
    });
}

/// The `openssl` configuration [`make_tls`] uses instead of the system's:
/// the certificates' extensions.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = mysql-uring

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes the [`TlsFiles`] in `tls_dir` with the `openssl` tool: a test CA, a
/// server and a client certificate it signed, and an unrelated CA.
fn make_tls(openssl: &Path, tls_dir: &Path) {
    create_dir(tls_dir);
    let cnf = tls_dir.join("openssl.cnf");
    fs::write(&cnf, OPENSSL_CNF).unwrap_or_else(|e| {
        panic!(
            "mysql-uring test support: cannot write {}: {e}",
            cnf.display()
        )
    });
    // `fixed` holds no spaces inside an argument; `more` may.
    let run = |fixed: &str, more: &[&str]| {
        let args: Vec<&str> = fixed
            .split_whitespace()
            .chain(more.iter().copied())
            .collect();
        let out = Command::new(openssl)
            .args(&args)
            .current_dir(tls_dir)
            // Our configuration, not the system's.
            .env("OPENSSL_CONF", &cnf)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "mysql-uring test support: cannot run {}: {e}",
                    openssl.display()
                )
            });
        if !out.status.success() {
            panic!(
                "mysql-uring test support: `openssl {}` failed ({}) in {}:\n{}",
                args.join(" "),
                out.status,
                tls_dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let key = |file: &str| {
        run(
            "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
            &["-out", file],
        )
    };
    let self_signed = |key_file: &str, subject: &str, out: &str| {
        run(
            &format!(
                "req -config openssl.cnf -new -x509 -sha256 -days {TLS_DAYS} -extensions ca_ext"
            ),
            &["-key", key_file, "-subj", subject, "-out", out],
        )
    };
    let signed = |key_file: &str, subject: &str, ext: &str, serial: &str, out: &str| {
        run(
            "req -config openssl.cnf -new -sha256 -out req.csr",
            &["-key", key_file, "-subj", subject],
        );
        run(
            &format!(
                "x509 -req -sha256 -in req.csr -CA ca.pem -CAkey ca-key.pem -days {TLS_DAYS} \
                 -extfile openssl.cnf"
            ),
            &["-extensions", ext, "-set_serial", serial, "-out", out],
        );
    };
    key("ca-key.pem");
    self_signed("ca-key.pem", "/CN=mysql-uring test CA", "ca.pem");
    key("server-key.pem");
    signed(
        "server-key.pem",
        "/CN=localhost",
        "server_ext",
        "2",
        "server-cert.pem",
    );
    key("client-key.pem");
    signed(
        "client-key.pem",
        "/CN=mu_x509",
        "client_ext",
        "3",
        "client-cert.pem",
    );
    key("wrong-ca-key.pem");
    self_signed(
        "wrong-ca-key.pem",
        "/CN=mysql-uring wrong CA",
        "wrong-ca.pem",
    );
    for f in ["openssl.cnf", "req.csr", "ca-key.pem", "wrong-ca-key.pem"] {
        let _ = fs::remove_file(tls_dir.join(f));
    }
    // mariadbd runs as this user (`--user=root` when root): owner-only keys.
    use std::os::unix::fs::PermissionsExt;
    for f in ["server-key.pem", "client-key.pem"] {
        let _ = fs::set_permissions(tls_dir.join(f), fs::Permissions::from_mode(0o600));
    }
}

/// `template-v2-<size>-<mtime>` of the server binary.
fn template_name(mariadbd: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let (size, mtime) = fs::metadata(mariadbd)
        .map(|m| (m.size(), m.mtime()))
        .unwrap_or_default();
    format!("{TEMPLATE_PREFIX}{size}-{mtime}")
}

/// Creates the system tables in a fresh `datadir` with `mariadb-install-db`.
fn install_datadir(install_db: &Path, dir: &Path, datadir: &Path) {
    let log_path = dir.join("install.log");
    let log = fs::File::create(&log_path).unwrap_or_else(|e| {
        panic!(
            "mysql-uring test support: cannot create {}: {e}",
            log_path.display()
        )
    });
    let mut cmd = Command::new(install_db);
    cmd.arg("--no-defaults")
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .arg({
            let mut a = OsString::from("--datadir=");
            a.push(datadir);
            a
        })
        // Passed on to mariadbd: the redo log is created at the size the
        // server runs with, so the first start need not resize it.
        .arg("--innodb-log-file-size=64M")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone install log handle"))
        .stderr(log);
    if is_root() {
        cmd.arg("--user=root");
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "mysql-uring test support: cannot run {}: {e}",
            install_db.display()
        )
    });
    if !status.success() {
        panic!(
            "mysql-uring test support: {} failed ({status}):\n{}",
            install_db.display(),
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
}

/// A free TCP port on 127.0.0.1 (the kernel's choice for port 0).
fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| {
            panic!("mysql-uring test support: cannot find a free port on {HOST}: {e}")
        })
}

/// A request to the spawner thread: the arguments to start `mariadbd` with,
/// and where to send the result.
struct SpawnRequest {
    args: Vec<OsString>,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// Starts the thread that spawns every `mariadbd` of this process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// not the process, so the server must be spawned from a thread that lives
/// as long as the process: this one waits for requests forever (the sender
/// lives in a static that is never dropped).
fn start_spawner(program: PathBuf) -> mpsc::Sender<SpawnRequest> {
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    thread::Builder::new()
        .name("mysql-uring-test-server".into())
        .spawn(move || {
            for req in rx {
                let _ = req.reply.send(spawn_server(&program, &req.args));
            }
            loop {
                thread::park();
            }
        })
        .expect("spawn the mysql-uring test server thread");
    tx
}

/// Asks the spawner thread to start `mariadbd` and waits for the result.
fn spawn_via(spawner: &mpsc::Sender<SpawnRequest>, args: Vec<OsString>) -> io::Result<Child> {
    let (reply, result) = mpsc::channel();
    spawner
        .send(SpawnRequest { args, reply })
        .map_err(|_| io::Error::other("the server spawner thread is gone"))?;
    result
        .recv()
        .map_err(|_| io::Error::other("the server spawner thread is gone"))?
}

/// Spawns `mariadbd`, set up to receive `SIGKILL` when this thread dies.
fn spawn_server(program: &Path, args: &[OsString]) -> io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(io::Error::other("the test process exited"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// The size of a file, 0 when it does not exist.
fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// What was appended to a log file after `offset`.
fn log_since(p: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = fs::File::open(p) {
        use std::io::{Seek, SeekFrom};
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut buf);
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last 30 lines of the error log, for panic messages.
fn log_tail(p: &Path) -> String {
    let text = log_since(p, 0);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    format!("--- last lines of {} ---\n{tail}", p.display())
}

/// Waits until the server has logged "ready for connections" (after
/// `offset` in its error log) and accepts a TCP connection.
fn wait_ready(child: &mut Child, log: &Path, offset: u64, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("mariadbd exited ({status})"));
        }
        if log_since(log, offset).contains("ready for connections")
            && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not ready for connections on {addr} after {} s",
                READY_TIMEOUT.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Registers [`at_exit`] (once).
fn register_exit_hook() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: at_exit is a plain extern "C" function that never unwinds.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

/// At a normal process exit: kills the server (it would die anyway through
/// `PR_SET_PDEATHSIG`) and removes its directory, unless
/// `MYSQL_URING_KEEP_DATADIR` is set.
extern "C" fn at_exit() {
    let pid = SERVER_PID.swap(0, Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: plain system calls on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) == 0
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
    if std::env::var_os("MYSQL_URING_KEEP_DATADIR").is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    if let Some((dir, socket)) = CLEANUP.get() {
        let _ = fs::remove_dir_all(dir);
        if let Some(s) = socket {
            let _ = fs::remove_file(s);
        }
    }
}
