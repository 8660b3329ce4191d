//! Test clusters, started once per process like [`server()`](crate::server):
//! a primary and a replica with GTID replication ([`replication()`]).
//!
//! Every node is a [`TestServer`] started from the same data directory
//! template as the single server, with the same test users, TLS files and
//! database `test`, in `target/mysql-uring-test/<pid>/<node>/`, killed when
//! the process exits and removed with the rest of the process's directory.
//! Nodes are small (a 32 MiB buffer pool) and their ports come from
//! [`reserve_port`], so a node restarts on the ports its cluster knows it by.
//! Everything is driven through the `mariadb` command-line client over the
//! nodes' Unix sockets ([`TestServer::sql`]): the crate does not depend on
//! the driver.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{HOST, Spec, TestServer, reserve_port, url_for};
use crate::tools::find_or_install_cluster_tools;
use crate::users::{INIT_SQL, ROOT_USER, TEST_DB};

/// The user the replica of [`replication()`] connects to the primary as
/// (it exists on both nodes, with `REPLICATION SLAVE` only).
pub const REPL_USER: &str = "mu_repl";

/// [`REPL_USER`]'s password.
pub const REPL_PASSWORD: &str = "repl-pass";

/// How long to wait for a replica to catch up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// How often to look again while waiting.
const POLL: Duration = Duration::from_millis(50);

/// `mariadbd` options every cluster node has on top of the single server's:
/// a small buffer pool (several nodes must fit two cores and little memory).
const SMALL: &[&str] = &["--innodb-buffer-pool-size=32M"];

/// The replication user, made on both nodes (its own statement list, after
/// the test users of [`INIT_SQL`]).
const REPL_SQL: &str = "\
CREATE OR REPLACE USER 'mu_repl'@'%' IDENTIFIED BY 'repl-pass';
GRANT REPLICATION SLAVE ON *.* TO 'mu_repl'@'%';
";

/// A node of the [`replication()`] pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The primary (`server_id` 1): takes the writes, writes the binary log.
    Primary,
    /// The replica (`server_id` 2, `read_only`): replicates from the primary
    /// by GTID.
    Replica,
}

/// A primary and a replica with GTID replication, from [`replication()`].
pub struct Replication {
    primary: TestServer,
    replica: TestServer,
}

static REPLICATION: OnceLock<Result<Replication, String>> = OnceLock::new();

/// Starts (once per process, at the first call) a primary and a replica with
/// GTID replication between them, and returns them.
///
/// Both nodes have the single server's test users, TLS files and database
/// `test` (and [`REPL_USER`]); none of that is in the binary log, so the
/// replica starts from the primary's first GTID. The primary (`server_id=1`)
/// and the replica (`server_id=2`, `read_only=ON`) both have `log_bin`,
/// `log_slave_updates`, `binlog_format=ROW` and `gtid_strict_mode`; the
/// replica is set up with `CHANGE MASTER TO … master_use_gtid=slave_pos,
/// master_connect_retry=1` (so it reconnects within a second of a primary
/// restart) and `START SLAVE`, and this returns once both replication
/// threads run. About a second on a warm machine: the two nodes start in
/// parallel.
///
/// `read_only` stops users without the `READ ONLY ADMIN` privilege (which
/// `ALL PRIVILEGES` includes: `root` and the test users can still write to
/// the replica, and would break replication if they did).
///
/// Panics with the reason when the pair cannot be started, and at every call
/// after that.
pub fn replication() -> &'static Replication {
    match REPLICATION.get_or_init(|| start_once("the replication pair", Replication::start)) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `start`, turning a panic into an error that is kept, so a cluster
/// that failed to start is not started again by every test (the nodes it
/// did start are killed as they are dropped).
fn start_once<T>(what: &str, start: fn() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(start)).map_err(|e| {
        let why = e
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| e.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        format!("mysql-uring-testserver: {what} could not be started: {why}")
    })
}

/// Panics with the reason SQL that sets up or checks a cluster failed.
fn must(node: &TestServer, sql: &str) -> String {
    node.sql(sql).unwrap_or_else(|e| {
        panic!(
            "mysql-uring-testserver: {sql:?} failed on {HOST}:{}: {e}",
            node.port
        )
    })
}

/// The arguments as `OsString`s.
fn os_args<S: AsRef<str>>(args: &[S]) -> Vec<OsString> {
    args.iter().map(|a| OsString::from(a.as_ref())).collect()
}

/// `target/mysql-uring-test/<pid>/`, where a node's directory is.
fn process_dir(node: &TestServer) -> &Path {
    node.datadir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(&node.datadir)
}

/// The last lines of a node's error log, for panic messages.
fn log_tail(node: &TestServer) -> String {
    let log = node.datadir.join("error.log");
    let text = fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    format!("--- last lines of {} ---\n{tail}", log.display())
}

impl Replication {
    /// Starts both nodes (in parallel), sets up replication and waits until
    /// it runs.
    fn start() -> Replication {
        let t0 = Instant::now();
        find_or_install_cluster_tools(false);
        // The users are made on each node on its own: no GTIDs for them, so
        // the replica's position starts empty and strict mode is happy.
        let init_sql = format!("SET SESSION sql_log_bin=0;\n{INIT_SQL}{REPL_SQL}");
        let spec = |name: &str, server_id: u32, extra: &[&str]| {
            let mut args = os_args(SMALL);
            args.extend(os_args(&[
                format!("--server-id={server_id}"),
                "--log-bin=mysql-bin".to_string(),
                "--relay-log=relay-bin".to_string(),
                "--log-slave-updates".to_string(),
                "--binlog-format=ROW".to_string(),
                "--gtid-strict-mode=ON".to_string(),
            ]));
            args.extend(os_args(extra));
            Spec {
                name: name.to_string(),
                port: reserve_port(),
                args,
                first_args: Vec::new(),
                init_sql: init_sql.clone(),
                files: Vec::new(),
            }
        };
        let primary_spec = spec("replication-primary", 1, &[]);
        let replica_spec = spec("replication-replica", 2, &["--read-only"]);
        let (primary, replica) = thread::scope(|s| {
            let replica = s.spawn(|| TestServer::launch(replica_spec));
            let primary = TestServer::launch(primary_spec);
            let replica = replica.join().unwrap_or_else(|e| panic::resume_unwind(e));
            (primary, replica)
        });
        must(
            &replica,
            &format!(
                "CHANGE MASTER TO master_host='{HOST}', master_port={}, \
                 master_user='{REPL_USER}', master_password='{REPL_PASSWORD}', \
                 master_use_gtid=slave_pos, master_connect_retry=1; START SLAVE",
                primary.port
            ),
        );
        let pair = Replication { primary, replica };
        pair.wait_running(true);
        pair.wait_caught_up();
        eprintln!(
            "mysql-uring-testserver: replication pair ready in {:.2} s: primary {HOST}:{}, \
             replica {HOST}:{} ({})",
            t0.elapsed().as_secs_f64(),
            pair.primary.port,
            pair.replica.port,
            process_dir(&pair.primary).display()
        );
        pair
    }

    /// The primary.
    pub fn primary(&self) -> &TestServer {
        &self.primary
    }

    /// The replica.
    pub fn replica(&self) -> &TestServer {
        &self.replica
    }

    /// The node in `role`.
    pub fn node(&self, role: Role) -> &TestServer {
        match role {
            Role::Primary => &self.primary,
            Role::Replica => &self.replica,
        }
    }

    /// The TCP ports: primary, replica.
    pub fn ports(&self) -> [u16; 2] {
        [self.primary.port, self.replica.port]
    }

    /// A URL naming both nodes, primary first:
    /// `mysql://user:password@127.0.0.1:P1,127.0.0.1:P2/db` (user and
    /// password percent-encoded, the password left out when empty). Each
    /// node's own URL is [`TestServer::url`].
    pub fn url(&self, user: &str, password: &str, db: Option<&str>) -> String {
        url_for(&[&self.primary, &self.replica], user, password, db)
    }

    /// [`Replication::url`] for `root` (empty password) and the database
    /// `test`: `mysql://root@127.0.0.1:P1,127.0.0.1:P2/test`.
    pub fn root_url(&self) -> String {
        self.url(ROOT_USER, "", Some(TEST_DB))
    }

    /// Runs SQL as `root` on a node (see [`TestServer::sql`]).
    pub fn sql(&self, role: Role, sql: &str) -> Result<String, String> {
        self.node(role).sql(sql)
    }

    /// Kills a node with `SIGKILL` (see [`TestServer::kill`]).
    pub fn kill(&self, role: Role) {
        self.node(role).kill();
    }

    /// Shuts a node down cleanly (see [`TestServer::stop`]).
    pub fn stop(&self, role: Role) {
        self.node(role).stop();
    }

    /// Starts a node again on the same port and data directory (killing it
    /// first if it runs) and, when both nodes then run, waits until the
    /// replica is connected to the primary again (its I/O thread). A
    /// restarted replica starts both replication threads by itself (even
    /// after [`Replication::stop_replica_sql`]); after a primary restart the
    /// replica reconnects within a second and its SQL thread is as it was.
    /// Panics when the node does not come up, or the replica does not
    /// reconnect within a minute.
    pub fn restart(&self, role: Role) {
        self.node(role).restart();
        if self.primary.is_running() && self.replica.is_running() {
            self.wait_running(false);
        }
    }

    /// Stops the replica's SQL thread (`STOP SLAVE SQL_THREAD`): it keeps
    /// receiving the primary's binary log but applies nothing, so the replica
    /// falls behind. Panics when that fails.
    pub fn stop_replica_sql(&self) {
        must(&self.replica, "STOP SLAVE SQL_THREAD");
    }

    /// Starts the replica's SQL thread again (`START SLAVE SQL_THREAD`).
    /// Panics when that fails.
    pub fn start_replica_sql(&self) {
        must(&self.replica, "START SLAVE SQL_THREAD");
    }

    /// The replica's `SHOW SLAVE STATUS`, by field name (`Slave_IO_Running`,
    /// `Slave_SQL_Running`, `Last_IO_Error`, `Gtid_IO_Pos`, …). Panics when
    /// the replica does not answer.
    pub fn replica_status(&self) -> BTreeMap<String, String> {
        let sql = "SHOW SLAVE STATUS\\G";
        let out = self.replica.sql_with_names(sql).unwrap_or_else(|e| {
            panic!(
                "mysql-uring-testserver: {sql:?} failed on the replica {HOST}:{}: {e}",
                self.replica.port
            )
        });
        out.lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// Waits until the replica has applied everything the primary has
    /// written: its `gtid_slave_pos` reaches the primary's `gtid_binlog_pos`
    /// (`MASTER_GTID_WAIT`). Panics after a minute, with the replica's
    /// status (a stopped SQL thread never catches up).
    pub fn wait_caught_up(&self) {
        let pos = must(&self.primary, "SELECT @@GLOBAL.gtid_binlog_pos");
        let sql = format!(
            "SELECT MASTER_GTID_WAIT('{pos}', {})",
            SYNC_TIMEOUT.as_secs()
        );
        match self.replica.sql(&sql) {
            Ok(r) if r == "0" => {}
            r => panic!(
                "mysql-uring-testserver: the replica did not reach the primary's GTID position \
                 {pos:?} in {} s ({r:?}); replica status: {:?}",
                SYNC_TIMEOUT.as_secs(),
                self.replica.sql_with_names("SHOW SLAVE STATUS\\G")
            ),
        }
    }

    /// Waits until the replica's I/O thread (and with `sql`, its SQL thread
    /// too) runs; panics with the errors after a minute or at once on an SQL
    /// thread error.
    fn wait_running(&self, sql: bool) {
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let status = self.replica_status();
            let yes = |k: &str| status.get(k).is_some_and(|v| v == "Yes");
            if yes("Slave_IO_Running") && (!sql || yes("Slave_SQL_Running")) {
                return;
            }
            let sql_error = status.get("Last_SQL_Error").filter(|e| !e.is_empty());
            if Instant::now() > deadline || sql_error.is_some() {
                panic!(
                    "mysql-uring-testserver: replication does not run: {status:?}\n{}",
                    log_tail(&self.replica)
                );
            }
            thread::sleep(POLL);
        }
    }
}
