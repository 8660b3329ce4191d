//! A private MariaDB server for the tests, examples and benchmarks.
//!
//! [`server()`] starts one `mariadbd` per process from the installed binaries
//! (installing `mariadb-server` with `scripts/install-mariadb.sh` if they are
//! missing): a fresh datadir under `target/mysql-uring-test/<pid>/`, a free
//! port on 127.0.0.1, a Unix socket, and the users the tests need. The server
//! is killed when the process exits (`PR_SET_PDEATHSIG`), and can be killed
//! and restarted by fault tests. With `MYSQL_URL` set, [`test_url`] returns
//! that instead and no server is started.
//!
//! Included with `mod support;` by tests and with
//! `#[path = "../tests/support/mod.rs"] mod support;` by examples and benches.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A user with a `mysql_native_password` password.
pub const NATIVE_USER: &str = "mu_native";
/// Its password.
pub const NATIVE_PASSWORD: &str = "native-pass";
/// A user authenticated by MariaDB's `ed25519` plugin.
pub const ED25519_USER: &str = "mu_ed25519";
/// Its password.
pub const ED25519_PASSWORD: &str = "ed-pass";
/// A user with an empty password.
pub const NOPASS_USER: &str = "mu_nopass";
/// A user that may only SELECT from `test`.
pub const LIMITED_USER: &str = "mu_limited";
/// Its password.
pub const LIMITED_PASSWORD: &str = "limited-pass";

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The per-process private server.
pub struct TestServer {
    /// Always `127.0.0.1`.
    pub host: String,
    /// The TCP port it listens on.
    pub port: u16,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// Its data directory.
    pub datadir: PathBuf,
    args: Vec<String>,
    binary: PathBuf,
    spawner: Mutex<Sender<Request>>,
    pid: Mutex<Option<u32>>,
}

enum Request {
    Spawn(PathBuf, Vec<String>, PathBuf, Sender<std::io::Result<u32>>),
    Kill(u32, Sender<()>),
}

/// True when `MYSQL_URL` is set: tests use that server and no private one starts.
pub fn external() -> bool {
    std::env::var("MYSQL_URL").is_ok_and(|u| !u.is_empty())
}

/// `MYSQL_URL` if set, else the private server's root URL (starting it if needed).
pub fn test_url() -> String {
    match std::env::var("MYSQL_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => server().root_url(),
    }
}

/// The private server of this process, started on first use.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let t0 = Instant::now();
        let s = TestServer::start();
        eprintln!(
            "mysql-uring: started a private mariadbd on 127.0.0.1:{} (socket {}) ready in {:.1} s",
            s.port,
            s.socket.display(),
            t0.elapsed().as_secs_f64()
        );
        s
    })
}

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target")
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        if c.starts_with('/') {
            if Path::new(c).is_file() {
                return Some(PathBuf::from(c));
            }
        } else if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let p = dir.join(c);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
    }
    None
}

fn binaries() -> (PathBuf, PathBuf) {
    let look = || {
        (
            find(&[
                "mariadbd",
                "/usr/sbin/mariadbd",
                "/usr/sbin/mysqld",
                "mysqld",
            ]),
            find(&[
                "mariadb-install-db",
                "mysql_install_db",
                "/usr/bin/mariadb-install-db",
            ]),
        )
    };
    if let (Some(d), Some(i)) = look() {
        return (d, i);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-mariadb.sh");
    eprintln!(
        "mysql-uring tests: MariaDB binaries missing; running {}",
        script.display()
    );
    let ok = Command::new("bash")
        .arg(&script)
        .status()
        .is_ok_and(|s| s.success());
    match look() {
        (Some(d), Some(i)) if ok => (d, i),
        _ => panic!(
            "mariadbd and mariadb-install-db are not installed and could not be installed automatically.\n\
             Install them with:  sudo apt-get install -y mariadb-server\n\
             or point the tests at a server with MYSQL_URL=mysql://user:pass@host:port/db"
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free TCP port on 127.0.0.1")
}

/// Removes datadirs left by test processes that are gone.
fn clean_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A pristine installed datadir, made once and copied for each process.
fn template(root: &Path, install_db: &Path) -> PathBuf {
    let tpl = root.join("template");
    if tpl.join("mysql").is_dir() {
        return tpl;
    }
    let tmp = root.join(format!("template-tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("create template dir");
    let mut cmd = Command::new(install_db);
    cmd.arg("--no-defaults")
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .arg(format!("--datadir={}", tmp.display()));
    if is_root() {
        cmd.arg("--user=root");
    }
    let out = cmd.output().expect("run mariadb-install-db");
    if !out.status.success() {
        panic!(
            "mariadb-install-db failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Another process may have won the race; either way a template exists.
    if std::fs::rename(&tmp, &tpl).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    tpl
}

const INIT_SQL: &str = "\
CREATE DATABASE IF NOT EXISTS test;
CREATE OR REPLACE USER 'root'@'%' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE OR REPLACE USER 'mu_native'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('native-pass');
CREATE OR REPLACE USER 'mu_native'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('native-pass');
GRANT ALL PRIVILEGES ON *.* TO 'mu_native'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'mu_native'@'localhost';
CREATE OR REPLACE USER 'mu_ed25519'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pass');
CREATE OR REPLACE USER 'mu_ed25519'@'localhost' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pass');
GRANT ALL PRIVILEGES ON *.* TO 'mu_ed25519'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'mu_ed25519'@'localhost';
CREATE OR REPLACE USER 'mu_nopass'@'%' IDENTIFIED BY '';
CREATE OR REPLACE USER 'mu_nopass'@'localhost' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'mu_nopass'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'mu_nopass'@'localhost';
CREATE OR REPLACE USER 'mu_limited'@'%' IDENTIFIED BY 'limited-pass';
CREATE OR REPLACE USER 'mu_limited'@'localhost' IDENTIFIED BY 'limited-pass';
GRANT SELECT ON test.* TO 'mu_limited'@'%';
GRANT SELECT ON test.* TO 'mu_limited'@'localhost';
";

/// The thread that spawns (and reaps) server processes. It lives as long as the
/// process, so `PR_SET_PDEATHSIG` (which fires when the *spawning thread* exits)
/// kills the server exactly when the test process ends.
fn spawner() -> Sender<Request> {
    let (tx, rx) = channel::<Request>();
    std::thread::Builder::new()
        .name("mariadbd-spawner".into())
        .spawn(move || {
            let mut children: HashMap<u32, Child> = HashMap::new();
            while let Ok(req) = rx.recv() {
                match req {
                    Request::Spawn(bin, args, log, reply) => {
                        let stdout = std::fs::File::create(&log)
                            .map(Stdio::from)
                            .unwrap_or(Stdio::null());
                        let mut cmd = Command::new(bin);
                        cmd.args(args)
                            .stdin(Stdio::null())
                            .stdout(stdout)
                            .stderr(Stdio::null());
                        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                        unsafe {
                            cmd.pre_exec(|| {
                                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                    return Err(std::io::Error::last_os_error());
                                }
                                Ok(())
                            });
                        }
                        let r = cmd.spawn().map(|c| {
                            let pid = c.id();
                            children.insert(pid, c);
                            pid
                        });
                        let _ = reply.send(r);
                    }
                    Request::Kill(pid, reply) => {
                        if let Some(mut c) = children.remove(&pid) {
                            let _ = c.kill();
                            let _ = c.wait();
                        }
                        let _ = reply.send(());
                    }
                }
            }
        })
        .expect("spawn the mariadbd spawner thread");
    tx
}

fn count_ready(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|s| s.matches("ready for connections").count())
        .unwrap_or(0)
}

fn tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl TestServer {
    fn start() -> TestServer {
        let (mariadbd, install_db) = binaries();
        let root = target_dir().join("mysql-uring-test");
        std::fs::create_dir_all(&root).expect("create target/mysql-uring-test");
        clean_stale(&root);
        let tpl = template(&root, &install_db);
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&tpl)
            .arg(&dir)
            .status()
            .expect("copy the template datadir");
        assert!(
            st.success(),
            "cp -a {} {} failed",
            tpl.display(),
            dir.display()
        );
        let datadir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let init = datadir.join("init.sql");
        std::fs::write(&init, INIT_SQL).expect("write init.sql");

        let mut socket = datadir.join("mysqld.sock");
        if socket.as_os_str().len() > 100 {
            socket = PathBuf::from(format!("/tmp/mysql-uring-{}.sock", std::process::id()));
        }
        let port = free_port();
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", socket.display()),
            format!("--pid-file={}", datadir.join("mariadbd.pid").display()),
            format!("--log-error={}", datadir.join("error.log").display()),
            "--skip-log-bin".into(),
            "--max-connections=2000".into(),
            "--innodb-buffer-pool-size=128M".into(),
            "--innodb-log-file-size=64M".into(),
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--skip-name-resolve".into(),
            "--max-allowed-packet=64M".into(),
            "--plugin-load-add=auth_ed25519".into(),
            format!("--init-file={}", init.display()),
        ];
        if is_root() {
            args.push("--user=root".into());
        }
        let s = TestServer {
            host: "127.0.0.1".into(),
            port,
            socket,
            datadir,
            args,
            binary: mariadbd,
            spawner: Mutex::new(spawner()),
            pid: Mutex::new(None),
        };
        s.spawn_and_wait();
        s
    }

    fn error_log(&self) -> PathBuf {
        self.datadir.join("error.log")
    }

    fn spawn_and_wait(&self) {
        let log = self.error_log();
        let before = count_ready(&log);
        let (tx, rx) = channel();
        self.spawner
            .lock()
            .unwrap()
            .send(Request::Spawn(
                self.binary.clone(),
                self.args.clone(),
                self.datadir.join("stdout.log"),
                tx,
            ))
            .expect("spawner thread alive");
        let pid = rx.recv().expect("spawner reply").expect("spawn mariadbd");
        *self.pid.lock().unwrap() = Some(pid);
        let t0 = Instant::now();
        loop {
            if count_ready(&log) > before && self.answers() {
                return;
            }
            if !Path::new(&format!("/proc/{pid}")).exists() || t0.elapsed() > READY_TIMEOUT {
                panic!(
                    "mariadbd did not become ready on port {} within {:?}; last lines of {}:\n{}",
                    self.port,
                    READY_TIMEOUT,
                    log.display(),
                    tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when the port accepts a connection and sends a v10 greeting.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect((self.host.as_str(), self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut h = [0u8; 5];
        let ok = s.read_exact(&mut h).is_ok() && h[4] == 10;
        let _ = s.write_all(&[1, 0, 0, 0, 1]);
        ok
    }

    /// `mysql://user:password@127.0.0.1:PORT/db` with user and password percent-encoded.
    pub fn url(&self, user: &str, password: &str, db: Option<&str>) -> String {
        let cred = if password.is_empty() {
            percent_encode(user)
        } else {
            format!("{}:{}", percent_encode(user), percent_encode(password))
        };
        format!(
            "mysql://{cred}@{}:{}/{}",
            self.host,
            self.port,
            db.unwrap_or("")
        )
    }

    /// root (empty password), database `test`.
    pub fn root_url(&self) -> String {
        self.url("root", "", Some("test"))
    }

    /// Kills the server with SIGKILL and waits until it is gone.
    pub fn kill(&self) {
        let pid = self.pid.lock().unwrap().take();
        if let Some(pid) = pid {
            let (tx, rx) = channel();
            self.spawner
                .lock()
                .unwrap()
                .send(Request::Kill(pid, tx))
                .expect("spawner alive");
            let _ = rx.recv();
        }
    }

    /// Starts the server again on the same port, datadir and socket.
    pub fn restart(&self) {
        self.kill();
        self.spawn_and_wait();
    }

    /// True while the server process is alive.
    pub fn is_running(&self) -> bool {
        self.pid
            .lock()
            .unwrap()
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }
}
