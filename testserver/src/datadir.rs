//! Where the private servers live: data directories under the workspace's
//! `target/mysql-uring-test/`, copied from a template made once per MariaDB
//! binary, and the clean-up of what dead processes left behind.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::TlsFiles;
use crate::tls::make_tls;
use crate::tools::{Tools, is_root};

/// The start of the names of data directory templates (see [`prepare_datadir`]).
/// v2: `data/` and `tls/` inside (v1 was the data directory alone).
const TEMPLATE_PREFIX: &str = "template-v2-";

/// The workspace's root directory (this crate lives in `testserver/` inside it).
pub(crate) fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the
/// workspace), else the directory holding the running executable (cargo
/// marks it with `CACHEDIR.TAG`), else the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    let workspace = workspace_dir();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return workspace.join(dir);
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
    workspace.join("target")
}

/// Whether a process with this pid exists.
pub(crate) fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes directories (and /tmp sockets) left by earlier processes that have
/// died without cleaning up, and data directory templates of other server
/// binaries.
pub(crate) fn remove_stale(base: &Path, template: &str) {
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
            // mysql-uring-<pid>.sock, or mysql-uring-<pid>-<node>.sock.
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("mysql-uring-"))
                .and_then(|n| n.strip_suffix(".sock"))
                .and_then(|n| n.split('-').next())
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
pub(crate) fn prepare_datadir(tools: &Tools, base: &Path, dir: &Path, datadir: &Path) -> TlsFiles {
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
pub(crate) fn create_dir(p: &Path) {
    fs::create_dir_all(p)
        .unwrap_or_else(|e| panic!("mysql-uring-testserver: cannot create {}: {e}", p.display()));
}

/// `template-v2-<size>-<mtime>` of the server binary.
pub(crate) fn template_name(mariadbd: &Path) -> String {
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
            "mysql-uring-testserver: cannot create {}: {e}",
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
            "mysql-uring-testserver: cannot run {}: {e}",
            install_db.display()
        )
    });
    if !status.success() {
        panic!(
            "mysql-uring-testserver: {} failed ({status}):\n{}",
            install_db.display(),
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
}
