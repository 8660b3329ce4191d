//! The three-node Galera cluster: a row written on one node is on the others,
//! the cluster shrinks when a node is killed or stopped and grows back when it
//! restarts, and the restarted node has what was written while it was down.
//! (Through the `mariadb` command-line client: this crate does not depend on
//! the driver.)

use mysql_uring_testserver::{self as testserver, GALERA_NODES, Galera};

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The tests share one cluster and some take nodes down: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cluster. The tests that use it are ignored when `MYSQL_URL` says to
/// use another server rather than start private ones (the cfg
/// `external_server`, from build.rs).
fn cluster() -> &'static Galera {
    let t0 = Instant::now();
    let g = testserver::galera();
    eprintln!("galera() took {:.2} s", t0.elapsed().as_secs_f64());
    g
}

/// Runs SQL on a node, panicking with the error.
fn sql(g: &Galera, node: usize, q: &str) -> String {
    g.sql(node, q)
        .unwrap_or_else(|e| panic!("{q:?} on node {node}: {e}"))
}

/// Reads on a node after everything committed anywhere before is applied
/// there (`wsrep_sync_wait`).
fn read(g: &Galera, node: usize, q: &str) -> String {
    sql(g, node, &format!("SET SESSION wsrep_sync_wait=1; {q}"))
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private Galera cluster"
)]
fn a_row_written_on_node_0_is_on_node_2() {
    let _serial = serial();
    let g = cluster();
    sql(
        g,
        0,
        "CREATE OR REPLACE TABLE galera_rows (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO galera_rows (v) VALUES ('from node 0')",
    );
    assert_eq!(read(g, 2, "SELECT v FROM galera_rows"), "from node 0");
    // And the other way round.
    sql(g, 2, "INSERT INTO galera_rows (v) VALUES ('from node 2')");
    assert_eq!(
        read(g, 1, "SELECT v FROM galera_rows ORDER BY v"),
        "from node 0\nfrom node 2"
    );
    // Every node has the test users.
    for node in 0..GALERA_NODES {
        assert_eq!(
            sql(
                g,
                node,
                "SELECT COUNT(*) FROM mysql.user WHERE user IN ('mu_native', 'mu_ed25519')"
            ),
            "4",
            "node {node}"
        );
    }
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private Galera cluster"
)]
fn a_killed_node_leaves_and_rejoins() {
    let _serial = serial();
    let g = cluster();
    for node in 0..GALERA_NODES {
        g.wait_synced(node);
        assert_eq!(g.cluster_size(node), 3, "node {node}");
    }
    sql(
        g,
        0,
        "CREATE OR REPLACE TABLE kill_rows (id INT PRIMARY KEY); INSERT INTO kill_rows VALUES (1)",
    );
    let t0 = Instant::now();
    g.kill(2);
    g.wait_synced(0);
    g.wait_synced(1);
    eprintln!("killed node gone after {:.2} s", t0.elapsed().as_secs_f64());
    assert_eq!(g.cluster_size(0), 2);
    assert_eq!(g.cluster_size(1), 2);
    // Written while node 2 is down: it gets this by IST when it rejoins.
    sql(g, 1, "INSERT INTO kill_rows VALUES (2)");
    let t0 = Instant::now();
    g.restart(2);
    eprintln!(
        "killed node rejoined in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    for node in 0..GALERA_NODES {
        g.wait_synced(node);
        assert_eq!(g.cluster_size(node), 3, "node {node}");
    }
    assert_eq!(
        read(g, 2, "SELECT GROUP_CONCAT(id ORDER BY id) FROM kill_rows"),
        "1,2"
    );
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private Galera cluster"
)]
fn a_stopped_node_leaves_and_rejoins() {
    let _serial = serial();
    let g = cluster();
    sql(
        g,
        0,
        "CREATE OR REPLACE TABLE stop_rows (id INT PRIMARY KEY)",
    );
    let t0 = Instant::now();
    g.stop(1);
    eprintln!("node stopped in {:.2} s", t0.elapsed().as_secs_f64());
    assert!(!g.node(1).is_running());
    // Each node installs the smaller view on its own: wait for both.
    g.wait_synced(0);
    g.wait_synced(2);
    assert_eq!(g.cluster_size(0), 2);
    assert_eq!(g.cluster_size(2), 2);
    sql(g, 0, "INSERT INTO stop_rows VALUES (1)");
    let t0 = Instant::now();
    g.restart(1);
    eprintln!(
        "stopped node rejoined in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    for node in 0..GALERA_NODES {
        g.wait_synced(node);
        assert_eq!(g.cluster_size(node), 3, "node {node}");
    }
    assert_eq!(read(g, 1, "SELECT COUNT(*) FROM stop_rows"), "1");
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private Galera cluster"
)]
fn urls_name_every_node() {
    let g = cluster();
    let p = g.ports();
    assert_eq!(p.len(), GALERA_NODES);
    assert_eq!(
        g.root_url(),
        format!(
            "mysql://root@127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/test",
            p[0], p[1], p[2]
        )
    );
    assert_eq!(
        g.node(1).url("mu_native", "native-pass", None),
        format!("mysql://mu_native:native-pass@127.0.0.1:{}", p[1])
    );
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private Galera cluster"
)]
fn the_whole_cluster_stops_and_starts_again() {
    let _serial = serial();
    let g = cluster();
    sql(
        g,
        0,
        "CREATE OR REPLACE TABLE restart_rows (id INT PRIMARY KEY); \
         INSERT INTO restart_rows VALUES (1)",
    );
    let t0 = Instant::now();
    for node in 0..GALERA_NODES {
        g.stop(node);
    }
    // The node stopped last has everything: it bootstraps the cluster again,
    // the others join it.
    for node in (0..GALERA_NODES).rev() {
        g.restart(node);
    }
    eprintln!(
        "whole cluster stopped and started in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    for node in 0..GALERA_NODES {
        g.wait_synced(node);
        assert_eq!(g.cluster_size(node), 3, "node {node}");
        assert_eq!(read(g, node, "SELECT COUNT(*) FROM restart_rows"), "1");
    }
    sql(g, 1, "INSERT INTO restart_rows VALUES (2)");
    assert_eq!(read(g, 0, "SELECT COUNT(*) FROM restart_rows"), "2");
}
