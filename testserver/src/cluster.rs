//! Test clusters, started once per process like [`server()`](crate::server):
//! a primary and a replica with GTID replication ([`replication()`]) and a
//! three-node Galera cluster ([`galera()`]).
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
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
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

/// How many nodes [`galera()`] has.
pub const GALERA_NODES: usize = 3;

/// How long to wait for a replica to catch up or a Galera node to sync.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `mariadbd --wsrep-recover` may take.
const RECOVER_TIMEOUT: Duration = Duration::from_secs(60);

/// How often to look again while waiting.
const POLL: Duration = Duration::from_millis(50);

/// `mariadbd` options every cluster node has on top of the single server's:
/// a small buffer pool (three nodes and a pair must fit two cores and little
/// memory).
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

/// A three-node Galera cluster, from [`galera()`].
pub struct Galera {
    nodes: Vec<TestServer>,
    /// Serialises kill, stop and restart: a restart looks at which nodes run.
    control: Mutex<()>,
}

static REPLICATION: OnceLock<Result<Replication, String>> = OnceLock::new();
static GALERA: OnceLock<Result<Galera, String>> = OnceLock::new();

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

/// Starts (once per process, at the first call) a three-node Galera cluster
/// and returns it once every node is `Synced` in a cluster of three.
///
/// Node 0 bootstraps the cluster (`--wsrep-new-cluster`), then nodes 1 and 2
/// join it one after the other. All three start from copies of the same
/// data directory, so no snapshot transfer is needed: every `grastate.dat`
/// is written with the same new cluster UUID at seqno 0 and the joiners start
/// at that position (`--wsrep-start-position`), which makes their join an
/// incremental transfer (IST) of the cluster's few events so far. Three to
/// five seconds on a warm machine, most of it Galera's group communication
/// settling each join.
///
/// Each node: `wsrep_on`, the Galera 4 library installed with MariaDB
/// (`galera-4`; installed by `scripts/install-mariadb.sh` when missing), a
/// cluster name of its own per process, private ports for group
/// communication and IST on 127.0.0.1, a 32 MiB gcache, a 3 s suspect
/// timeout (a killed node leaves the cluster after about four seconds), join
/// messages resent every 0.1 s rather than every second (joins settle
/// faster), no automatic primary-component recovery (`pc.recovery=false`:
/// [`Galera::restart`] bootstraps when no node runs),
/// `binlog_format=ROW`, `innodb_autoinc_lock_mode=2` and a 32 MiB buffer
/// pool. Snapshot transfers, when one is needed (a node that was behind by
/// more than the gcache holds), use `mysqldump`, which needs no extra
/// package, and are quick on test-sized data.
///
/// Galera applies a write on the other nodes shortly after it commits: read
/// with `SET SESSION wsrep_sync_wait=1` to see every write committed before.
///
/// Panics with the reason when the cluster cannot be started, and at every
/// call after that.
pub fn galera() -> &'static Galera {
    match GALERA.get_or_init(|| start_once("the Galera cluster", Galera::start)) {
        Ok(g) => g,
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

impl Galera {
    /// Starts node 0 as a new cluster, then the others one after the other,
    /// each from a copy of the same data directory at the same position.
    fn start() -> Galera {
        let t0 = Instant::now();
        let library = find_or_install_cluster_tools(true)
            .expect("find_or_install_cluster_tools(true) returns the Galera library");
        // Client, group communication and IST port of each node.
        let ports: Vec<[u16; 3]> = (0..GALERA_NODES)
            .map(|_| [reserve_port(), reserve_port(), reserve_port()])
            .collect();
        let address = ports
            .iter()
            .map(|p| format!("{HOST}:{}", p[1]))
            .collect::<Vec<_>>()
            .join(",");
        let uuid = new_uuid();
        let mut nodes: Vec<TestServer> = Vec::new();
        for (i, &[port, gcomm, ist]) in ports.iter().enumerate() {
            let mut args = os_args(SMALL);
            let mut provider = OsString::from("--wsrep-provider=");
            provider.push(&library);
            args.push(provider);
            args.extend(os_args(&[
                "--wsrep-on=ON".to_string(),
                format!("--wsrep-cluster-address=gcomm://{address}"),
                format!("--wsrep-cluster-name=mysql-uring-{}", std::process::id()),
                format!("--wsrep-node-name=galera-{i}"),
                format!("--wsrep-node-address={HOST}"),
                format!(
                    "--wsrep-provider-options=base_host={HOST};base_port={gcomm};\
                     gmcast.listen_addr=tcp://{HOST}:{gcomm};ist.recv_addr={HOST}:{ist};\
                     gcache.size=32M;evs.suspect_timeout=PT3S;evs.join_retrans_period=PT0.1S;pc.recovery=false"
                ),
                "--wsrep-sst-method=mysqldump".to_string(),
                format!("--wsrep-sst-auth={ROOT_USER}:"),
                format!("--wsrep-sst-receive-address={HOST}:{port}"),
                "--binlog-format=ROW".to_string(),
                "--innodb-autoinc-lock-mode=2".to_string(),
            ]));
            let first_args = if i == 0 {
                os_args(&["--wsrep-new-cluster"])
            } else {
                os_args(&[format!("--wsrep-start-position={uuid}:0")])
            };
            nodes.push(TestServer::launch(Spec {
                name: format!("galera-{i}"),
                port,
                args,
                first_args,
                init_sql: INIT_SQL.to_string(),
                files: vec![("grastate.dat", grastate(&uuid, 0, i == 0))],
            }));
            wait_node_synced(&nodes[i], i + 1);
        }
        eprintln!(
            "mysql-uring-testserver: Galera cluster of {GALERA_NODES} ready in {:.2} s on {} ({})",
            t0.elapsed().as_secs_f64(),
            nodes
                .iter()
                .map(|n| format!("{HOST}:{}", n.port))
                .collect::<Vec<_>>()
                .join(", "),
            process_dir(&nodes[0]).display()
        );
        Galera {
            nodes,
            control: Mutex::new(()),
        }
    }

    /// The nodes, node 0 first.
    pub fn nodes(&self) -> &[TestServer] {
        &self.nodes
    }

    /// Node `i` (0, 1 or 2). Panics when there is no such node.
    pub fn node(&self, i: usize) -> &TestServer {
        &self.nodes[i]
    }

    /// The nodes' TCP ports, node 0 first.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// A URL naming every node, node 0 first:
    /// `mysql://user:password@127.0.0.1:P0,127.0.0.1:P1,127.0.0.1:P2/db`
    /// (user and password percent-encoded, the password left out when
    /// empty). Each node's own URL is [`TestServer::url`].
    pub fn url(&self, user: &str, password: &str, db: Option<&str>) -> String {
        let nodes: Vec<&TestServer> = self.nodes.iter().collect();
        url_for(&nodes, user, password, db)
    }

    /// [`Galera::url`] for `root` (empty password) and the database `test`.
    pub fn root_url(&self) -> String {
        self.url(ROOT_USER, "", Some(TEST_DB))
    }

    /// Runs SQL as `root` on node `i` (see [`TestServer::sql`]).
    pub fn sql(&self, i: usize, sql: &str) -> Result<String, String> {
        self.nodes[i].sql(sql)
    }

    /// A global status variable of node `i` (`wsrep_cluster_size`, …), or
    /// `None` when the node does not answer or has no such variable.
    pub fn status(&self, i: usize, name: &str) -> Option<String> {
        let out = self.nodes[i]
            .sql(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))
            .ok()?;
        out.split_once('\t').map(|(_, v)| v.to_string())
    }

    /// How many nodes node `i` sees in its cluster (`wsrep_cluster_size`);
    /// 0 when it does not answer.
    pub fn cluster_size(&self, i: usize) -> usize {
        self.status(i, "wsrep_cluster_size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Kills node `i` with `SIGKILL` (see [`TestServer::kill`]). The others
    /// notice after about four seconds (the suspect timeout), then see a
    /// cluster of one node less: [`Galera::wait_synced`] on one of them
    /// waits for that.
    pub fn kill(&self, i: usize) {
        let _control = lock(&self.control);
        self.nodes[i].kill();
    }

    /// Shuts node `i` down cleanly (see [`TestServer::stop`]): it leaves the
    /// cluster at once.
    pub fn stop(&self, i: usize) {
        let _control = lock(&self.control);
        self.nodes[i].stop();
    }

    /// Starts node `i` again on its ports and data directory (killing it
    /// first if it runs) and waits until it is synced with the running nodes
    /// ([`Galera::wait_synced`]).
    ///
    /// It rejoins by an incremental transfer (IST) of what it missed, from
    /// its last position: after a clean stop that is in its `grastate.dat`;
    /// after a kill it is recovered first with `mariadbd --wsrep-recover`, as
    /// the MariaDB service scripts do. When no other node runs, the node
    /// bootstraps a cluster again from its own state (`safe_to_bootstrap`,
    /// `--wsrep-new-cluster`): restart the node that stopped last first, or
    /// the others cannot join. Panics when the node does not come up or
    /// sync within a minute.
    pub fn restart(&self, i: usize) {
        let _control = lock(&self.control);
        let node = &self.nodes[i];
        node.kill();
        let alone = !self
            .nodes
            .iter()
            .enumerate()
            .any(|(j, n)| j != i && n.is_running());
        let position = match read_grastate(&node.datadir) {
            Some((uuid, seqno)) if seqno >= 0 => Some((uuid, seqno)),
            _ => recover_position(node),
        };
        let mut once = Vec::new();
        if let Some((uuid, seqno)) = &position {
            once.push(OsString::from(format!(
                "--wsrep-start-position={uuid}:{seqno}"
            )));
        }
        if alone {
            if let Some((uuid, seqno)) = &position {
                fs::write(
                    node.datadir.join("grastate.dat"),
                    grastate(uuid, *seqno, true),
                )
                .unwrap_or_else(|e| {
                    panic!("mysql-uring-testserver: cannot write grastate.dat: {e}")
                });
            }
            once.push(OsString::from("--wsrep-new-cluster"));
        }
        node.restart_with(&once);
        wait_node_synced(node, self.running());
    }

    /// Waits until node `i` is `Synced` (`wsrep_local_state_comment`),
    /// `wsrep_ready` is `ON`, its cluster is the primary component and has as
    /// many nodes as are running (`wsrep_cluster_size`): after a kill, until
    /// the others have noticed it is gone. Panics after a minute, or when the
    /// node is not running.
    pub fn wait_synced(&self, i: usize) {
        wait_node_synced(&self.nodes[i], self.running());
    }

    /// How many nodes are running.
    fn running(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_running()).count()
    }
}

/// Waits until `node` is synced in a primary cluster of `size` nodes.
fn wait_node_synced(node: &TestServer, size: usize) {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    let want = [
        ("WSREP_LOCAL_STATE_COMMENT", "Synced".to_string()),
        ("WSREP_READY", "ON".to_string()),
        ("WSREP_CLUSTER_STATUS", "Primary".to_string()),
        ("WSREP_CLUSTER_SIZE", size.to_string()),
    ];
    let sql = format!(
        "SELECT UPPER(variable_name), variable_value FROM information_schema.global_status \
         WHERE variable_name IN ({})",
        want.iter()
            .map(|(k, _)| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    loop {
        let got = node.sql(&sql);
        let status: BTreeMap<String, String> = got
            .as_deref()
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if want.iter().all(|(k, v)| status.get(*k) == Some(v)) {
            return;
        }
        if !node.is_running() || Instant::now() > deadline {
            panic!(
                "mysql-uring-testserver: Galera node {HOST}:{} is not synced in a cluster of \
                 {size} ({}): {:?}\n{}",
                node.port,
                if node.is_running() {
                    format!("after {} s", SYNC_TIMEOUT.as_secs())
                } else {
                    "it is not running".to_string()
                },
                got.map(|_| status),
                log_tail(node)
            );
        }
        thread::sleep(POLL);
    }
}

/// A Galera `grastate.dat`.
fn grastate(uuid: &str, seqno: i64, safe_to_bootstrap: bool) -> String {
    format!(
        "# GALERA saved state\nversion: 2.1\nuuid:    {uuid}\nseqno:   {seqno}\n\
         safe_to_bootstrap: {}\n",
        u8::from(safe_to_bootstrap)
    )
}

/// The cluster UUID and seqno of a data directory's `grastate.dat` (seqno -1
/// after a crash or kill).
fn read_grastate(datadir: &Path) -> Option<(String, i64)> {
    let text = fs::read_to_string(datadir.join("grastate.dat")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    Some((field("uuid:")?, field("seqno:")?.parse().ok()?))
}

/// The position a killed node's InnoDB has (`mariadbd --wsrep-recover`, as
/// `galera_recovery` does), or `None` when it has none (then the node gets a
/// full snapshot transfer).
fn recover_position(node: &TestServer) -> Option<(String, i64)> {
    let log: PathBuf = node
        .datadir
        .parent()
        .unwrap_or(&node.datadir)
        .join("recover.log");
    let _ = fs::remove_file(&log);
    let mut log_arg = OsString::from("--log-error=");
    log_arg.push(&log);
    node.run_once(
        &[OsString::from("--wsrep-recover"), log_arg],
        RECOVER_TIMEOUT,
    )?;
    let text = fs::read_to_string(&log).ok()?;
    let position = text
        .lines()
        .rev()
        .find_map(|l| l.split_once("WSREP: Recovered position: "))?
        .1
        .trim();
    let (uuid, seqno) = position.rsplit_once(':')?;
    let seqno: i64 = seqno.parse().ok()?;
    (seqno >= 0 && !uuid.starts_with("00000000-")).then(|| (uuid.to_string(), seqno))
}

/// A new random UUID for a cluster (the kernel's, else from std's random
/// hasher keys).
fn new_uuid() -> String {
    if let Ok(u) = fs::read_to_string("/proc/sys/kernel/random/uuid") {
        let u = u.trim();
        if u.len() == 36 {
            return u.to_string();
        }
    }
    use std::hash::BuildHasher;
    let h = |i: u64| std::collections::hash_map::RandomState::new().hash_one(i);
    let hex = format!("{:016x}{:016x}", h(1), h(2));
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Locks a mutex, ignoring poisoning (a failed test must not break the others).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
