//! The private `mariadbd` processes: starting one (the process-wide
//! [`server()`], or a cluster node with more configuration), kill, stop,
//! restart, running SQL through the `mariadb` client, and the exit hook that
//! takes them all down with the process.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::TlsFiles;
use crate::datadir::{create_dir, prepare_datadir, remove_stale, target_dir, template_name};
use crate::tools::{Tools, find_client, find_or_install, is_root};
use crate::users::{INIT_SQL, ROOT_USER, TEST_DB};

/// The address the private server listens on.
pub const HOST: &str = "127.0.0.1";

/// How long the server may take to become ready before we give up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a clean shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`TestServer::sql`] waits for the client.
const SQL_TIMEOUT: Duration = Duration::from_secs(90);

/// Longest Unix socket path (`sun_path` is 108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 107;

/// How many servers one process may start (the single server, a replication
/// pair, a three-node Galera cluster, and room to spare).
const MAX_SERVERS: usize = 16;

/// The pids of the running servers, one slot per [`TestServer`], for the exit
/// hook (0: not running).
static PIDS: [AtomicI32; MAX_SERVERS] = [const { AtomicI32::new(0) }; MAX_SERVERS];

/// The next free slot in [`PIDS`].
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// Sockets made in /tmp (their paths under `target/` were too long), removed
/// by the exit hook.
static TMP_SOCKETS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// What every server of the process shares: the programs, the directories,
/// and the spawner thread.
struct Process {
    tools: Tools,
    /// `target/mysql-uring-test/`: the templates and the per-process directories.
    base: PathBuf,
    /// `target/mysql-uring-test/<pid>/`, removed by the exit hook.
    dir: PathBuf,
    /// Asks the spawner thread to start a server; it replies on the sender.
    spawner: mpsc::Sender<SpawnRequest>,
}

/// Set up once per process, by the first server started.
static PROCESS: OnceLock<Process> = OnceLock::new();

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
    /// This server's slot in [`PIDS`].
    slot: usize,
}

/// How to start a server other than the process-wide one: a cluster node.
pub(crate) struct Spec {
    /// Its directory under the process's: `target/mysql-uring-test/<pid>/<name>/`
    /// (`data/`, `tls/`, `init.sql`); also in the name of a socket in /tmp.
    pub(crate) name: String,
    /// The TCP port (see [`reserve_port`]): a cluster's configuration names
    /// its nodes' ports, so they are chosen before the start.
    pub(crate) port: u16,
    /// More `mariadbd` arguments, for every start (later ones win over the
    /// defaults of [`server_args`]).
    pub(crate) args: Vec<OsString>,
    /// Arguments for the first start only (`--wsrep-new-cluster`).
    pub(crate) first_args: Vec<OsString>,
    /// The init file, run at every start ([`INIT_SQL`] and more).
    pub(crate) init_sql: String,
    /// Files written into the data directory before the first start
    /// (Galera's `grastate.dat`).
    pub(crate) files: Vec<(&'static str, String)>,
}

/// Starts (once per process) a private `mariadbd` and returns it.
///
/// The first call installs MariaDB with `scripts/install-mariadb.sh` when it
/// is missing, creates a fresh data directory and waits until the server
/// accepts connections (well under a second on a warm machine). The server is
/// killed automatically when the process exits. Panics with the reason (and
/// the end of the server's error log) when it cannot be started.
pub fn server() -> &'static TestServer {
    SERVER.get_or_init(TestServer::start_single)
}

/// `MYSQL_URL` if it is set (then no private server is started), else
/// [`server()`]'s [`TestServer::root_url`].
///
/// `MYSQL_TEST_TRANSPORT` picks how the private server is reached, so the
/// same suite runs over each: `tls` (the default: TLS over TCP, as the
/// server offers it), `tcp` (plain TCP, no TLS) or `unix` (its Unix socket).
pub fn test_url() -> String {
    match std::env::var("MYSQL_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let s = server();
            let url = s.root_url();
            match transport().as_str() {
                "tcp" => format!("{url}?ssl_mode=disabled"),
                "unix" => format!("{url}?ssl_mode=disabled&socket={}", s.socket.display()),
                _ => url,
            }
        }
    }
}

/// The transport of [`test_url`]: `tls`, `tcp` or `unix`.
pub fn transport() -> String {
    match std::env::var("MYSQL_TEST_TRANSPORT") {
        Ok(t) if matches!(t.as_str(), "tls" | "tcp" | "unix") => t,
        Ok(t) if !t.is_empty() => {
            panic!("MYSQL_TEST_TRANSPORT={t}: expected tls, tcp or unix")
        }
        _ => "tls".to_string(),
    }
}

/// Whether `MYSQL_URL` points at an external server.
///
/// Tests that need the private server's users, or that kill and restart it,
/// cannot run when this is true: mark them
/// `#[cfg_attr(external_server, ignore = "why")]` (the cfg is set by the
/// build scripts from the same variable), so they are reported as ignored.
pub fn external() -> bool {
    std::env::var_os("MYSQL_URL").is_some_and(|v| !v.is_empty())
}

impl TestServer {
    /// A `mysql://user:password@127.0.0.1:PORT/db` URL for this server, with
    /// the user and password percent-encoded (the password is left out when
    /// empty).
    pub fn url(&self, user: &str, password: &str, db: Option<&str>) -> String {
        url_for(&[self], user, password, db)
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
            PIDS[self.slot].store(0, Ordering::SeqCst);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Shuts the server down cleanly (`SIGTERM`, as `mariadb-admin shutdown`
    /// would) and waits until it has exited; kills it when that takes more
    /// than a minute. Does nothing when it is not running.
    pub fn stop(&self) {
        let mut child = lock(&self.child);
        if let Some(mut c) = child.take() {
            PIDS[self.slot].store(0, Ordering::SeqCst);
            // SAFETY: a signal to our own child, not yet reaped.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            if wait_timeout(&mut c, STOP_TIMEOUT).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Starts the server again on the same port, socket and data directory
    /// (killing it first if it is running) and waits until it accepts
    /// connections. Panics when it does not come up.
    pub fn restart(&self) {
        self.restart_with(&[]);
    }

    /// [`TestServer::restart`] with more arguments for this start only.
    pub(crate) fn restart_with(&self, once: &[OsString]) {
        let mut child = lock(&self.child);
        if let Some(mut c) = child.take() {
            PIDS[self.slot].store(0, Ordering::SeqCst);
            let _ = c.kill();
            let _ = c.wait();
        }
        let log = self.datadir.join("error.log");
        let offset = file_len(&log);
        let mut args = self.args.clone();
        args.extend(once.iter().cloned());
        let mut c = spawn_via(&process().spawner, args)
            .unwrap_or_else(|e| panic!("mysql-uring-testserver: cannot start mariadbd: {e}"));
        PIDS[self.slot].store(c.id() as i32, Ordering::SeqCst);
        if let Err(why) = wait_ready(&mut c, &log, offset, self.port) {
            let _ = c.kill();
            let _ = c.wait();
            PIDS[self.slot].store(0, Ordering::SeqCst);
            panic!(
                "mysql-uring-testserver: mariadbd ({}) did not start: {why}\n{}",
                self.datadir.display(),
                log_tail(&log)
            );
        }
        *child = Some(c);
    }

    /// Runs `mariadbd` with this server's arguments and `extra` (such as
    /// `--wsrep-recover`) while the server is down, and waits until it exits
    /// (killing it after `timeout`). `None` when it is running or did not end.
    pub(crate) fn run_once(&self, extra: &[OsString], timeout: Duration) -> Option<ExitStatus> {
        let child = lock(&self.child);
        if child.is_some() {
            return None;
        }
        let mut args = self.args.clone();
        args.extend(extra.iter().cloned());
        let mut c = spawn_via(&process().spawner, args).ok()?;
        PIDS[self.slot].store(c.id() as i32, Ordering::SeqCst);
        let status = wait_timeout(&mut c, timeout);
        if status.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        PIDS[self.slot].store(0, Ordering::SeqCst);
        status
    }

    /// Whether the server process is alive.
    pub fn is_running(&self) -> bool {
        let mut child = lock(&self.child);
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                *child = None;
                PIDS[self.slot].store(0, Ordering::SeqCst);
                false
            }
            None => false,
        }
    }

    /// Runs `sql` (one or more statements) as `root` in the database `test`
    /// with the `mariadb` command-line client over the Unix socket, and
    /// returns what it printed: rows one per line, columns separated by
    /// tabs, no column names (`--batch --skip-column-names`), without the
    /// last newline. `Err` holds the client's error message (a failed
    /// statement, a refused connection, or a minute and a half without an
    /// answer).
    ///
    /// The crate does not depend on the driver: this is for setting up and
    /// checking servers, not a way to test the driver.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        self.sql_as(ROOT_USER, "", sql)
    }

    /// [`TestServer::sql`] as another user (over the Unix socket, so as
    /// `user@localhost`).
    pub fn sql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        run_client(&self.socket, user, password, sql, false)
    }

    /// [`TestServer::sql`] with column names: a first line of them in
    /// tabular output, `name: value` lines in vertical output (`\G`).
    pub(crate) fn sql_with_names(&self, sql: &str) -> Result<String, String> {
        run_client(&self.socket, ROOT_USER, "", sql, true)
    }

    /// Starts the process-wide server of [`server()`]: installs MariaDB (if
    /// needed), makes the data directory and starts `mariadbd` on a free port.
    fn start_single() -> TestServer {
        let t0 = Instant::now();
        let p = process();
        let dir = p.dir.clone();
        let datadir = dir.join("data");
        let socket = socket_path(&datadir, "");
        let tls = prepare_datadir(&p.tools, &p.base, &dir, &datadir);
        let t_install = t0.elapsed();
        let init_file = write_file(&dir.join("init.sql"), INIT_SQL);

        let slot = new_slot();
        let log = datadir.join("error.log");
        let mut attempt = 0;
        let (port, args, child) = loop {
            attempt += 1;
            let port = free_port();
            let args = server_args(&datadir, &socket, &init_file, &tls, port);
            let offset = file_len(&log);
            let mut c = spawn_via(&p.spawner, args.clone())
                .unwrap_or_else(|e| panic!("mysql-uring-testserver: cannot start mariadbd: {e}"));
            PIDS[slot].store(c.id() as i32, Ordering::SeqCst);
            match wait_ready(&mut c, &log, offset, port) {
                Ok(()) => break (port, args, c),
                Err(why) => {
                    let _ = c.kill();
                    let _ = c.wait();
                    PIDS[slot].store(0, Ordering::SeqCst);
                    // Another process may have taken the port between our
                    // probe and the server's bind: try another one.
                    let lost_port = log_since(&log, offset).contains("Bind on TCP/IP port");
                    if !(lost_port && attempt < 3) {
                        panic!(
                            "mysql-uring-testserver: mariadbd did not start: {why}\n{}\n\
                             (its data directory is a copy of {}; remove that to have it made afresh)",
                            log_tail(&log),
                            p.base.join(template_name(&p.tools.mariadbd)).display()
                        );
                    }
                }
            }
        };
        eprintln!(
            "mysql-uring-testserver: mariadbd ready on {HOST}:{port} in {:.2} s \
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
            slot,
        }
    }

    /// Starts a server as `spec` says, in `target/mysql-uring-test/<pid>/<name>/`
    /// (made afresh from the template), and waits until it accepts
    /// connections. Panics when it does not come up.
    pub(crate) fn launch(spec: Spec) -> TestServer {
        let p = process();
        let dir = p.dir.join(&spec.name);
        let _ = fs::remove_dir_all(&dir);
        create_dir(&dir);
        let datadir = dir.join("data");
        let socket = socket_path(&datadir, &spec.name);
        let tls = prepare_datadir(&p.tools, &p.base, &dir, &datadir);
        for (name, text) in &spec.files {
            write_file(&datadir.join(name), text);
        }
        let init_file = write_file(&dir.join("init.sql"), &spec.init_sql);
        let mut args = server_args(&datadir, &socket, &init_file, &tls, spec.port);
        args.extend(spec.args);
        let server = TestServer {
            host: HOST.to_string(),
            port: spec.port,
            socket,
            datadir,
            tls,
            args,
            child: Mutex::new(None),
            slot: new_slot(),
        };
        server.restart_with(&spec.first_args);
        server
    }
}

impl Drop for TestServer {
    /// A server dropped while running (a node of a cluster whose start
    /// failed half way) is killed. The process-wide ones live in statics and
    /// are never dropped.
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `mysql://` URL naming every server of `servers` as `host:port`, comma
/// separated, with the user and password percent-encoded (the password left
/// out when empty).
pub(crate) fn url_for(
    servers: &[&TestServer],
    user: &str,
    password: &str,
    db: Option<&str>,
) -> String {
    let mut url = format!("mysql://{}", encode(user));
    if !password.is_empty() {
        url.push(':');
        url.push_str(&encode(password));
    }
    url.push('@');
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("{}:{}", s.host, s.port))
        .collect();
    url.push_str(&hosts.join(","));
    if let Some(db) = db {
        url.push('/');
        url.push_str(&encode(db));
    }
    url
}

/// The process's shared state, set up by the first server started: finds (or
/// installs) the programs, removes what dead processes left, makes
/// `target/mysql-uring-test/<pid>/`, registers the exit hook and starts the
/// spawner thread.
fn process() -> &'static Process {
    PROCESS.get_or_init(|| {
        let tools = find_or_install();
        let base = target_dir().join("mysql-uring-test");
        remove_stale(&base, &template_name(&tools.mariadbd));
        let dir = base.join(std::process::id().to_string());
        let _ = fs::remove_dir_all(&dir);
        create_dir(&dir);
        register_exit_hook();
        let spawner = start_spawner(tools.mariadbd.clone());
        Process {
            tools,
            base,
            dir,
            spawner,
        }
    })
}

/// A slot in [`PIDS`] for a new server.
fn new_slot() -> usize {
    let slot = NEXT_SLOT.fetch_add(1, Ordering::SeqCst);
    assert!(
        slot < MAX_SERVERS,
        "mysql-uring-testserver: more than {MAX_SERVERS} servers in one process"
    );
    slot
}

/// The server's Unix socket: `mysqld.sock` in its data directory, or
/// `mysql-uring-<pid>[-<name>].sock` in the temporary directory when that
/// path is too long for a socket (removed by the exit hook).
fn socket_path(datadir: &Path, name: &str) -> PathBuf {
    let socket = datadir.join("mysqld.sock");
    if socket.as_os_str().len() <= MAX_SOCKET_PATH {
        return socket;
    }
    let pid = std::process::id();
    let file = if name.is_empty() {
        format!("mysql-uring-{pid}.sock")
    } else {
        format!("mysql-uring-{pid}-{name}.sock")
    };
    let mut socket = std::env::temp_dir().join(&file);
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        socket = Path::new("/tmp").join(&file);
    }
    lock(&TMP_SOCKETS).push(socket.clone());
    socket
}

/// Writes a file, panicking with the reason; returns its path.
fn write_file(path: &Path, text: &str) -> PathBuf {
    fs::write(path, text).unwrap_or_else(|e| {
        panic!(
            "mysql-uring-testserver: cannot write {}: {e}",
            path.display()
        )
    });
    path.to_path_buf()
}

/// Waits up to `timeout` for a child to exit.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// Runs the `mariadb` client over `socket` (see [`TestServer::sql`]).
fn run_client(
    socket: &Path,
    user: &str,
    password: &str,
    sql: &str,
    names: bool,
) -> Result<String, String> {
    let client = find_client().ok_or_else(|| {
        "the mariadb command-line client is not installed \
         (scripts/install-mariadb.sh installs it)"
            .to_string()
    })?;
    let mut socket_arg = OsString::from("--socket=");
    socket_arg.push(socket);
    let child = Command::new(client)
        .arg("--no-defaults")
        .arg("--protocol=socket")
        .arg(socket_arg)
        .arg(format!("--user={user}"))
        .arg(format!("--password={password}"))
        .arg(format!("--database={TEST_DB}"))
        .args(["--batch", "--connect-timeout=10"])
        .args((!names).then_some("--skip-column-names"))
        .args(["-e", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the mariadb client: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(SQL_TIMEOUT) {
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string()),
        Ok(Ok(out)) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Ok(Err(e)) => Err(format!("cannot run the mariadb client: {e}")),
        Err(_) => {
            // SAFETY: our own child; the waiting thread reaps it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            Err(format!(
                "the mariadb client got no answer in {} s",
                SQL_TIMEOUT.as_secs()
            ))
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

/// A free TCP port on 127.0.0.1 (the kernel's choice for port 0).
fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| {
            panic!("mysql-uring-testserver: cannot find a free port on {HOST}: {e}")
        })
}

/// A TCP port on 127.0.0.1 for a cluster node (its client, group
/// communication or IST port) that is free now and should stay free while the
/// process runs: a cluster's configuration names its nodes' ports, and a node
/// restarts on the same ones.
///
/// Picked at random below the kernel's range of ephemeral ports (which
/// [`free_port`] and every outgoing connection draw from, so a port from there
/// may be taken by someone's connection while its node is down), checked by
/// binding it, and never handed out twice by this process. Parallel test
/// processes pick from some 20,000 ports at random, so they practically
/// never collide.
pub(crate) fn reserve_port() -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let (lo, hi) = reserved_range();
    let mut taken = lock(&TAKEN);
    for i in 0..1000u64 {
        let port = lo + (random(i) % u64::from(hi - lo)) as u16;
        if !taken.contains(&port) && TcpListener::bind((HOST, port)).is_ok() {
            taken.push(port);
            return port;
        }
    }
    let port = free_port();
    taken.push(port);
    port
}

/// Where [`reserve_port`] picks from: from 10000 up to the start of the
/// ephemeral range (`net.ipv4.ip_local_port_range`, 32768 by default), or
/// above its end when it starts low.
fn reserved_range() -> (u16, u16) {
    let range: Vec<u16> = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    match range[..] {
        [low, _] if low >= 12000 => (10000, low),
        [_, high] if high <= 63000 => (high + 1, 65535),
        _ => (20000, 30000),
    }
}

/// A random number (std's randomly keyed hasher: no dependency needed).
fn random(i: u64) -> u64 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    std::collections::hash_map::RandomState::new().hash_one((i, std::process::id(), now))
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

/// At a normal process exit: kills the servers (they would die anyway
/// through `PR_SET_PDEATHSIG`) and removes the process's directory and its
/// sockets in /tmp, unless `MYSQL_URING_KEEP_DATADIR` is set.
extern "C" fn at_exit() {
    let mut killed = Vec::new();
    for slot in &PIDS {
        let pid = slot.swap(0, Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: a plain system call on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed.push(pid);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in killed {
        // SAFETY: plain system calls on our own child's pid.
        while unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(5));
        }
    }
    if std::env::var_os("MYSQL_URING_KEEP_DATADIR").is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    if let Some(p) = PROCESS.get() {
        let _ = fs::remove_dir_all(&p.dir);
    }
    for s in lock(&TMP_SOCKETS).iter() {
        let _ = fs::remove_file(s);
    }
}
