//! The private test server starts, has the test users, can be killed,
//! restarts on the same port, and speaks TLS with its test certificates.
//! (Through the `mariadb` command-line client: this crate does not depend on
//! the driver.)

use mysql_uring_testserver as testserver;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The tests share one server and one of them kills it: run them one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects over TCP and returns the protocol version byte of the server's
/// greeting (after the 4-byte packet header): 10 for MySQL and MariaDB.
fn greeting(port: u16) -> std::io::Result<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut h = [0u8; 5];
    s.read_exact(&mut h)?;
    Ok(h[4])
}

/// The `mariadb` (or `mysql`) command-line client, if installed.
fn cli() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["mariadb", "mysql"]
        .iter()
        .flat_map(|c| std::env::split_paths(&path).map(move |d| d.join(c)))
        .find(|p| p.is_file())
}

/// Runs `sql` as `user` with the command-line client over TCP (or the Unix
/// socket) and returns its output, or the client's error message.
fn run_sql(
    cli: &PathBuf,
    s: &testserver::TestServer,
    socket: bool,
    user: &str,
    password: &str,
    sql: &str,
) -> Result<String, String> {
    run_cli(cli, s, socket, &[], user, password, sql)
}

/// [`run_sql`] with more client options (the TLS ones).
fn run_cli(
    cli: &PathBuf,
    s: &testserver::TestServer,
    socket: bool,
    options: &[String],
    user: &str,
    password: &str,
    sql: &str,
) -> Result<String, String> {
    let mut cmd = Command::new(cli);
    cmd.arg("--no-defaults").args(options);
    if socket {
        cmd.arg("--protocol=socket")
            .arg(format!("--socket={}", s.socket.display()));
    } else {
        cmd.arg("--protocol=tcp")
            .arg(format!("--host={}", s.host))
            .arg(format!("--port={}", s.port));
    }
    let out = cmd
        .arg(format!("--user={user}"))
        .arg(format!("--password={password}"))
        .args([
            "--batch",
            "--skip-column-names",
            "--database=test",
            "-e",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set, so no private server is started"
)]
fn start_kill_restart() {
    let _serial = serial();
    let s = testserver::server();
    assert!(s.is_running());
    assert_eq!(greeting(s.port).unwrap(), 10, "protocol v10 greeting");
    assert!(s.datadir.join("error.log").is_file());

    s.kill();
    assert!(!s.is_running());
    assert!(greeting(s.port).is_err(), "nothing listens after kill");
    s.kill(); // killing a dead server is a no-op

    s.restart();
    assert!(s.is_running());
    assert_eq!(greeting(s.port).unwrap(), 10, "greeting after restart");
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set, so no private server is started"
)]
fn urls_are_percent_encoded() {
    let _serial = serial();
    let s = testserver::server();
    let p = s.port;
    assert_eq!(s.root_url(), format!("mysql://root@127.0.0.1:{p}/test"));
    assert_eq!(
        s.url("a:b@c", "p@ss/w:rd?#%", None),
        format!("mysql://a%3Ab%40c:p%40ss%2Fw%3Ard%3F%23%25@127.0.0.1:{p}")
    );
    assert_eq!(
        s.url(
            testserver::NATIVE_USER,
            testserver::NATIVE_PASSWORD,
            Some("test")
        ),
        format!("mysql://mu_native:native-pass@127.0.0.1:{p}/test")
    );
    assert_eq!(testserver::test_url(), s.root_url());
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set, so no private server is started"
)]
fn test_users_can_log_in() {
    let Some(cli) = cli() else {
        eprintln!("skipped: no mariadb command-line client");
        return;
    };
    let _serial = serial();
    let s = testserver::server();
    let users = [
        ("root", ""),
        (testserver::NATIVE_USER, testserver::NATIVE_PASSWORD),
        (testserver::ED25519_USER, testserver::ED25519_PASSWORD),
        (testserver::NOPASS_USER, ""),
        (testserver::LIMITED_USER, testserver::LIMITED_PASSWORD),
    ];
    for socket in [false, true] {
        for (user, password) in users {
            let who = run_sql(&cli, s, socket, user, password, "SELECT CURRENT_USER()")
                .unwrap_or_else(|e| panic!("{user} cannot log in (socket: {socket}): {e}"));
            assert!(
                who.starts_with(&format!("{user}@")),
                "{user} logged in as {who}"
            );
        }
    }
    let wrong = run_sql(&cli, s, false, testserver::NATIVE_USER, "wrong", "SELECT 1");
    assert!(wrong.unwrap_err().contains("Access denied"));
    let denied = run_sql(
        &cli,
        s,
        false,
        testserver::LIMITED_USER,
        testserver::LIMITED_PASSWORD,
        "CREATE TABLE t_limited (i INT)",
    );
    assert!(
        denied.unwrap_err().contains("denied"),
        "mu_limited may not create tables"
    );
    let plugin = run_sql(
        &cli,
        s,
        false,
        "root",
        "",
        "SELECT plugin FROM mysql.user WHERE user = 'mu_ed25519' AND host = '%'",
    );
    assert_eq!(plugin.unwrap(), "ed25519");
}

/// `--name=path` for a client option.
fn opt(name: &str, path: &Path) -> String {
    format!("--{name}={}", path.display())
}

/// Client options for TLS that verifies the server against `ca`.
fn verified(ca: &Path) -> Vec<String> {
    vec![
        "--ssl".to_string(),
        opt("ssl-ca", ca),
        "--ssl-verify-server-cert".to_string(),
    ]
}

/// The value of a `SHOW STATUS` / `SHOW VARIABLES` row printed by the client
/// in batch mode without column names (`name<TAB>value`).
fn value(row: &str) -> &str {
    row.split_once('\t').map_or("", |(_, v)| v)
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set, so no private server is started"
)]
fn tls_files_exist() {
    let _serial = serial();
    let s = testserver::server();
    let t = &s.tls;
    for (path, begin) in [
        (&t.ca, "-----BEGIN CERTIFICATE-----"),
        (&t.server_cert, "-----BEGIN CERTIFICATE-----"),
        (&t.server_key, "-----BEGIN PRIVATE KEY-----"),
        (&t.client_cert, "-----BEGIN CERTIFICATE-----"),
        (&t.client_key, "-----BEGIN PRIVATE KEY-----"),
        (&t.wrong_ca, "-----BEGIN CERTIFICATE-----"),
    ] {
        let pem = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(pem.starts_with(begin), "{} is not {begin}", path.display());
    }
    assert_ne!(
        std::fs::read(&t.ca).unwrap(),
        std::fs::read(&t.wrong_ca).unwrap()
    );
    // Beside the data directory, not in it (where it would be a database).
    assert!(!t.ca.starts_with(&s.datadir));
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set, so no private server is started"
)]
fn tls_ssl_user() {
    let Some(cli) = cli() else {
        eprintln!("skipped: no mariadb command-line client");
        return;
    };
    let _serial = serial();
    let s = testserver::server();
    let have_ssl = run_sql(&cli, s, false, "root", "", "SHOW VARIABLES LIKE 'have_ssl'");
    assert_eq!(value(&have_ssl.unwrap()), "YES");

    let tls = verified(&s.tls.ca);
    for socket in [false, true] {
        let cipher = run_cli(
            &cli,
            s,
            socket,
            &tls,
            testserver::SSL_USER,
            testserver::SSL_PASSWORD,
            "SHOW STATUS LIKE 'Ssl_cipher'",
        )
        .unwrap_or_else(|e| panic!("mu_ssl cannot log in over TLS (socket: {socket}): {e}"));
        assert!(
            !value(&cipher).is_empty(),
            "no TLS cipher (socket: {socket}): {cipher:?}"
        );
    }
    let plain = run_cli(
        &cli,
        s,
        false,
        &["--skip-ssl".to_string()],
        testserver::SSL_USER,
        testserver::SSL_PASSWORD,
        "SELECT 1",
    );
    assert!(
        plain.as_ref().unwrap_err().contains("Access denied"),
        "mu_ssl without TLS: {plain:?}"
    );
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set, so no private server is started"
)]
fn tls_x509_user_needs_client_cert() {
    let Some(cli) = cli() else {
        eprintln!("skipped: no mariadb command-line client");
        return;
    };
    let _serial = serial();
    let s = testserver::server();
    let sql = "SHOW STATUS LIKE 'Ssl_cipher'";
    let (user, password) = (testserver::X509_USER, testserver::X509_PASSWORD);

    let mut tls = verified(&s.tls.ca);
    let without = run_cli(&cli, s, false, &tls, user, password, sql);
    assert!(
        without.as_ref().unwrap_err().contains("Access denied"),
        "mu_x509 without a client certificate: {without:?}"
    );

    tls.push(opt("ssl-cert", &s.tls.client_cert));
    tls.push(opt("ssl-key", &s.tls.client_key));
    let cipher = run_cli(&cli, s, false, &tls, user, password, sql)
        .unwrap_or_else(|e| panic!("mu_x509 cannot log in with the client certificate: {e}"));
    assert!(!value(&cipher).is_empty(), "no TLS cipher: {cipher:?}");
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set, so no private server is started"
)]
fn tls_wrong_ca_is_refused() {
    let Some(cli) = cli() else {
        eprintln!("skipped: no mariadb command-line client");
        return;
    };
    let _serial = serial();
    let s = testserver::server();
    let wrong = run_cli(
        &cli,
        s,
        false,
        &verified(&s.tls.wrong_ca),
        "root",
        "",
        "SELECT 1",
    );
    let err = wrong.expect_err("the client accepted a server certificate from another CA");
    assert!(
        !err.contains("Access denied"),
        "refused for the wrong reason: {err}"
    );
    // The right CA works for the same user and options.
    run_cli(&cli, s, false, &verified(&s.tls.ca), "root", "", "SELECT 1")
        .unwrap_or_else(|e| panic!("root cannot log in over verified TLS: {e}"));
}
