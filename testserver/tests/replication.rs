//! The replication pair: a row written on the primary appears on the
//! replica, the replica is read-only, and replication survives a killed
//! primary and a stopped SQL thread. (Through the `mariadb` command-line
//! client: this crate does not depend on the driver.)

use mysql_uring_testserver::{self as testserver, Role};

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The tests share one pair and some kill or pause it: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pair. The tests that use it are ignored when `MYSQL_URL` says to use
/// another server rather than start private ones (the cfg
/// `external_server`, from build.rs).
fn pair() -> &'static testserver::Replication {
    let t0 = Instant::now();
    let r = testserver::replication();
    eprintln!("replication() took {:.2} s", t0.elapsed().as_secs_f64());
    r
}

/// Runs SQL on a node, panicking with the error.
fn sql(r: &testserver::Replication, role: Role, q: &str) -> String {
    r.sql(role, q)
        .unwrap_or_else(|e| panic!("{q:?} on the {role:?}: {e}"))
}

/// Asserts that both replication threads run and report no error.
fn assert_replicating(r: &testserver::Replication) {
    let status = r.replica_status();
    assert_eq!(status["Slave_IO_Running"], "Yes", "{status:?}");
    assert_eq!(status["Slave_SQL_Running"], "Yes", "{status:?}");
    assert_eq!(status["Last_IO_Error"], "", "{status:?}");
    assert_eq!(status["Last_SQL_Error"], "", "{status:?}");
    assert_eq!(status["Using_Gtid"], "Slave_Pos", "{status:?}");
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private replication pair"
)]
fn row_on_primary_appears_on_replica() {
    let _serial = serial();
    let r = pair();
    assert_replicating(r);
    sql(
        r,
        Role::Primary,
        "CREATE OR REPLACE TABLE repl_rows (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO repl_rows VALUES (1, 'one'), (2, 'two')",
    );
    r.wait_caught_up();
    assert_eq!(
        sql(r, Role::Replica, "SELECT v FROM repl_rows ORDER BY id"),
        "one\ntwo"
    );
    // Both nodes have the test users and database of the single server.
    for role in [Role::Primary, Role::Replica] {
        let users = sql(
            r,
            role,
            "SELECT COUNT(*) FROM mysql.user WHERE user IN ('mu_native', 'mu_ed25519', 'mu_repl')",
        );
        assert_eq!(users, "5", "{role:?}");
    }
    assert_replicating(r);
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private replication pair"
)]
fn replica_is_read_only() {
    let _serial = serial();
    let r = pair();
    assert_eq!(sql(r, Role::Replica, "SELECT @@read_only"), "1");
    assert_eq!(sql(r, Role::Primary, "SELECT @@read_only"), "0");
    // A user with write privileges but not READ ONLY ADMIN: made on the
    // primary, replicated to the replica.
    sql(
        r,
        Role::Primary,
        "CREATE OR REPLACE TABLE ro_rows (id INT PRIMARY KEY); \
         CREATE OR REPLACE USER 'mu_writer'@'localhost' IDENTIFIED BY 'writer-pass'; \
         GRANT SELECT, INSERT ON test.* TO 'mu_writer'@'localhost'",
    );
    r.wait_caught_up();
    let insert = "INSERT INTO ro_rows VALUES (1)";
    let err = r
        .replica()
        .sql_as("mu_writer", "writer-pass", insert)
        .expect_err("an INSERT on the read-only replica");
    assert!(err.contains("1290") && err.contains("read-only"), "{err}");
    r.primary()
        .sql_as("mu_writer", "writer-pass", insert)
        .expect("an INSERT on the primary");
    r.wait_caught_up();
    assert_eq!(sql(r, Role::Replica, "SELECT COUNT(*) FROM ro_rows"), "1");
    assert_replicating(r);
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private replication pair"
)]
fn replication_resumes_after_the_primary_is_killed() {
    let _serial = serial();
    let r = pair();
    sql(
        r,
        Role::Primary,
        "CREATE OR REPLACE TABLE kill_rows (id INT PRIMARY KEY); INSERT INTO kill_rows VALUES (1)",
    );
    r.wait_caught_up();
    let port = r.primary().port;
    r.kill(Role::Primary);
    assert!(!r.primary().is_running());
    assert!(r.sql(Role::Primary, "SELECT 1").is_err());
    let t0 = Instant::now();
    r.restart(Role::Primary);
    eprintln!(
        "primary restart and replica reconnect: {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(r.primary().port, port);
    sql(r, Role::Primary, "INSERT INTO kill_rows VALUES (2)");
    r.wait_caught_up();
    assert_eq!(
        sql(
            r,
            Role::Replica,
            "SELECT GROUP_CONCAT(id ORDER BY id) FROM kill_rows"
        ),
        "1,2"
    );
    assert_replicating(r);
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private replication pair"
)]
fn replication_resumes_after_the_replica_is_stopped() {
    let _serial = serial();
    let r = pair();
    sql(
        r,
        Role::Primary,
        "CREATE OR REPLACE TABLE stop_rows (id INT PRIMARY KEY)",
    );
    r.wait_caught_up();
    r.stop(Role::Replica);
    assert!(!r.replica().is_running());
    sql(r, Role::Primary, "INSERT INTO stop_rows VALUES (1)");
    r.restart(Role::Replica);
    r.wait_caught_up();
    assert_eq!(sql(r, Role::Replica, "SELECT COUNT(*) FROM stop_rows"), "1");
    assert_replicating(r);
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private replication pair"
)]
fn a_paused_replica_falls_behind_and_catches_up() {
    let _serial = serial();
    let r = pair();
    sql(
        r,
        Role::Primary,
        "CREATE OR REPLACE TABLE lag_rows (id INT PRIMARY KEY)",
    );
    r.wait_caught_up();
    r.stop_replica_sql();
    sql(
        r,
        Role::Primary,
        "INSERT INTO lag_rows VALUES (1), (2), (3)",
    );
    // The I/O thread still receives the events; the SQL thread applies none.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sql(r, Role::Replica, "SELECT COUNT(*) FROM lag_rows"), "0");
    assert_eq!(r.replica_status()["Slave_SQL_Running"], "No");
    r.start_replica_sql();
    r.wait_caught_up();
    assert_eq!(sql(r, Role::Replica, "SELECT COUNT(*) FROM lag_rows"), "3");
    assert_eq!(
        sql(r, Role::Replica, "SELECT @@gtid_slave_pos"),
        sql(r, Role::Primary, "SELECT @@gtid_binlog_pos")
    );
    assert_replicating(r);
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set: no private replication pair"
)]
fn urls_name_both_nodes() {
    let r = pair();
    let [p, q] = r.ports();
    assert_eq!(
        r.root_url(),
        format!("mysql://root@127.0.0.1:{p},127.0.0.1:{q}/test")
    );
    assert_eq!(
        r.url("a b", "p@ss", None),
        format!("mysql://a%20b:p%40ss@127.0.0.1:{p},127.0.0.1:{q}")
    );
    assert_eq!(
        r.node(Role::Replica).root_url(),
        format!("mysql://root@127.0.0.1:{q}/test")
    );
    assert_ne!(p, q);
}
