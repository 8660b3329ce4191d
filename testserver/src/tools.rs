//! Finding the programs the private servers need (`mariadbd`,
//! `mariadb-install-db`, `openssl`; the `mariadb` client and the Galera
//! library for clusters), and installing them with
//! `scripts/install-mariadb.sh` when they are missing.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::datadir::workspace_dir;

/// The command to suggest when MariaDB cannot be installed automatically.
const MANUAL_INSTALL: &str =
    "sudo apt-get update && sudo apt-get install -y mariadb-server mariadb-client openssl galera-4";

/// Where distributions put the Galera 4 provider library.
const GALERA_LIBRARIES: &[&str] = &[
    "/usr/lib/galera/libgalera_smm.so",
    "/usr/lib/galera-4/libgalera_smm.so",
    "/usr/lib64/galera-4/libgalera_smm.so",
    "/usr/lib64/galera/libgalera_smm.so",
    "/usr/lib/x86_64-linux-gnu/galera/libgalera_smm.so",
    "/usr/lib/aarch64-linux-gnu/galera/libgalera_smm.so",
];

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
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
pub(crate) struct Tools {
    /// `mariadbd` (or `mysqld`).
    pub(crate) mariadbd: PathBuf,
    /// `mariadb-install-db` (or `mysql_install_db`).
    pub(crate) install_db: PathBuf,
    /// `openssl`, to make the TLS certificates.
    pub(crate) openssl: PathBuf,
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

/// The `mariadb` (or `mysql`) command-line client, if installed.
pub(crate) fn find_client() -> Option<PathBuf> {
    find_program(&["mariadb", "mysql", "/usr/bin/mariadb", "/usr/bin/mysql"])
}

/// The Galera provider library (`wsrep_provider`), if installed.
fn find_galera() -> Option<PathBuf> {
    GALERA_LIBRARIES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Finds the server binaries and `openssl`, running
/// `scripts/install-mariadb.sh` first when any is missing. Panics with the
/// command to run by hand when that fails.
pub(crate) fn find_or_install() -> Tools {
    if let Some(found) = find_tools() {
        return found;
    }
    run_install_script("mariadbd, mariadb-install-db or openssl not found", &[]);
    find_tools().unwrap_or_else(|| {
        panic!(
            "mysql-uring-testserver: the MariaDB server or the openssl tool (for the test \
             server's TLS certificates) is not installed and could not be installed \
             automatically. Install them with:\n    {MANUAL_INSTALL}\n\
             or point the tests at an existing server with MYSQL_URL=mysql://user:pass@host:port/db"
        )
    })
}

/// What a cluster needs besides [`Tools`]: the Galera library (`None` when
/// not asked for) and the `mariadb` client (to set the nodes up, and for
/// Galera's `mysqldump` state transfers).
pub(crate) fn find_or_install_cluster_tools(galera: bool) -> Option<PathBuf> {
    let found = || {
        let lib = if galera { Some(find_galera()?) } else { None };
        find_client()?;
        Some(lib)
    };
    if let Some(lib) = found() {
        return lib;
    }
    run_install_script(
        if galera {
            "the Galera library or the mariadb client not found"
        } else {
            "the mariadb client not found"
        },
        if galera { &["--galera"] } else { &[] },
    );
    found().unwrap_or_else(|| {
        let what = if galera {
            format!("the Galera 4 library (galera-4: one of {GALERA_LIBRARIES:?}) or the mariadb client is")
        } else {
            "the mariadb client is".to_string()
        };
        panic!(
            "mysql-uring-testserver: {what} not installed and could not be installed \
             automatically. Install them with:\n    {MANUAL_INSTALL}"
        )
    })
}

/// Runs `scripts/install-mariadb.sh` (handing it the terminal, if any: from
/// a terminal it asks before installing). Its failure shows in what is still
/// missing afterwards.
fn run_install_script(why: &str, args: &[&str]) {
    let script = workspace_dir().join("scripts/install-mariadb.sh");
    eprintln!(
        "mysql-uring-testserver: {why}; running {} \
         (apt-get update && apt-get install -y of what is missing, with sudo -n when not root)",
        script.display()
    );
    // From a terminal the script asks before installing: give it the terminal.
    let stdin = if std::io::stdin().is_terminal() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let status = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(stdin)
        .status();
    if !status.as_ref().is_ok_and(|s| s.success()) {
        eprintln!(
            "mysql-uring-testserver: {} exited with {status:?}",
            script.display()
        );
    }
}
