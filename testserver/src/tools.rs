//! Finding the programs the private server needs (`mariadbd`,
//! `mariadb-install-db`, `openssl`), and installing them with
//! `scripts/install-mariadb.sh` when they are missing.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::datadir::workspace_dir;

/// The command to suggest when MariaDB cannot be installed automatically.
const MANUAL_INSTALL: &str =
    "sudo apt-get update && sudo apt-get install -y mariadb-server mariadb-client openssl";

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

/// Finds the server binaries and `openssl`, running
/// `scripts/install-mariadb.sh` first when any is missing. Panics with the
/// command to run by hand when that fails.
pub(crate) fn find_or_install() -> Tools {
    if let Some(found) = find_tools() {
        return found;
    }
    let script = workspace_dir().join("scripts/install-mariadb.sh");
    eprintln!(
        "mysql-uring-testserver: mariadbd, mariadb-install-db or openssl not found; running {} \
         (apt-get update && apt-get install -y of what is missing, with sudo -n when not root)",
        script.display()
    );
    // From a terminal the script asks before installing: give it the terminal.
    let stdin = if std::io::stdin().is_terminal() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let status = Command::new("bash").arg(&script).stdin(stdin).status();
    match (status, find_tools()) {
        (Ok(s), Some(found)) if s.success() => found,
        (status, _) => panic!(
            "mysql-uring-testserver: the MariaDB server or the openssl tool (for the test \
             server's TLS certificates) is not installed and could not be installed \
             automatically ({} exited with {status:?}). Install them with:\n    {MANUAL_INSTALL}\n\
             or point the tests at an existing server with MYSQL_URL=mysql://user:pass@host:port/db",
            script.display()
        ),
    }
}
