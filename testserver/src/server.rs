//! One private `mariadbd` per process: start, kill, restart, and the exit hook
//! that takes it down with the process.

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

use crate::TlsFiles;
use crate::datadir::{prepare_datadir, remove_stale, target_dir, template_name};
use crate::tools::{find_or_install, is_root};
use crate::users::{INIT_SQL, ROOT_USER, TEST_DB};

/// The address the private server listens on.
pub const HOST: &str = "127.0.0.1";

/// How long the server may take to become ready before we give up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest Unix socket path (`sun_path` is 108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 107;

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
            .unwrap_or_else(|e| panic!("mysql-uring-testserver: cannot restart mariadbd: {e}"));
        SERVER_PID.store(c.id() as i32, Ordering::SeqCst);
        if let Err(why) = wait_ready(&mut c, &log, offset, self.port) {
            let _ = c.kill();
            let _ = c.wait();
            SERVER_PID.store(0, Ordering::SeqCst);
            panic!(
                "mysql-uring-testserver: mariadbd did not restart: {why}\n{}",
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
                "mysql-uring-testserver: cannot create {}: {e}",
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
                "mysql-uring-testserver: cannot write {}: {e}",
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
                .unwrap_or_else(|e| panic!("mysql-uring-testserver: cannot start mariadbd: {e}"));
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
                            "mysql-uring-testserver: mariadbd did not start: {why}\n{}\n\
                             (its data directory is a copy of {}; remove that to have it made afresh)",
                            log_tail(&log),
                            base.join(template_name(&mariadbd)).display()
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

/// A free TCP port on 127.0.0.1 (the kernel's choice for port 0).
fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| {
            panic!("mysql-uring-testserver: cannot find a free port on {HOST}: {e}")
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
