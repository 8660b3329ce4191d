//! Several servers for real: a primary and a replica with GTID replication,
//! and a three-node Galera cluster, started once for this test binary by
//! `mysql-uring-testserver` (private `mariadbd` nodes on loopback). The
//! fault tests kill and restart nodes, so the tests of each cluster take
//! turns (a lock per cluster).
//!
//! Skipped (counted) when `MYSQL_URL` points at a server of the user's own:
//! these need servers the tests can kill.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mysql_uring::{Client, ErrorKind, Opts, Role};
use mysql_uring_testserver as support;
use support::Role as Node;

static REPLICATION: Mutex<()> = Mutex::new(());
static GALERA: Mutex<()> = Mutex::new(());

fn turn(m: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An application user: it may read and write `app.*` and look at replica
/// status, but not write past `read_only` (unlike root).
const APP: &str = "mu_app";
const APP_PW: &str = "app-pw";

fn app_user_sql() -> String {
    format!(
        "CREATE DATABASE IF NOT EXISTS app; \
         CREATE USER IF NOT EXISTS '{APP}'@'%' IDENTIFIED BY '{APP_PW}'; \
         GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON app.* TO '{APP}'@'%'; \
         GRANT SLAVE MONITOR ON *.* TO '{APP}'@'%';"
    )
}

/// The replicated pair with the app user, the replica listed first (so
/// routing cannot be an accident of order), as a `hosts=replication` URL.
/// The tests that use it are ignored when `MYSQL_URL` is set (the cfg
/// `external_server`, from build.rs).
fn pair(extra: &str) -> (&'static support::Replication, String) {
    let r = support::replication();
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        r.sql(Node::Primary, &app_user_sql())
            .expect("app user on the primary");
        r.wait_caught_up();
    });
    let [p, rp] = r.ports();
    let url = format!(
        "mysql://{APP}:{APP_PW}@127.0.0.1:{rp},127.0.0.1:{p}/app?hosts=replication&connect_timeout=2&{extra}"
    );
    (r, url)
}

/// Holds `LOCK TABLES table WRITE` on the server at `port` (as root) until
/// dropped: a replica's applier stops at the first event for that table.
struct Hold(
    Option<std::sync::mpsc::Sender<()>>,
    Option<std::thread::JoinHandle<()>>,
);

fn hold_lock(port: u16, table: &str) -> Hold {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let sql = format!("LOCK TABLES {table} WRITE");
    let t = std::thread::spawn(move || {
        mysql_uring::start(async move {
            let mut c = mysql_uring::connect(format!("mysql://root@127.0.0.1:{port}/")).await?;
            c.query_drop(&sql).await?;
            ready_tx.send(()).ok();
            // Wait off the ring: a blocking receive in a blocking task.
            mysql_uring::runtime::spawn_blocking(move || rx.recv().ok())
                .await
                .ok();
            c.query_drop("UNLOCK TABLES").await?;
            Ok::<(), mysql_uring::Error>(())
        })
        .expect("hold a table lock");
    });
    ready_rx.recv().expect("the lock is taken");
    Hold(Some(tx), Some(t))
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.take();
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// The port of the server a connection is on.
async fn port_of(c: &mut mysql_uring::Connection) -> mysql_uring::Result<u16> {
    c.query("SELECT @@port").await?[0].get(0)
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "replication tests need private servers they can kill (MYSQL_URL is set)"
)]
fn replication_routes_writes_to_the_primary_and_reads_to_the_replica() {
    let _t = turn(&REPLICATION);
    let (r, url) = pair("");
    let [p, rp] = r.ports();
    let client = Client::builder().cores(1).build(url.as_str()).unwrap();
    let bc = client.blocking();
    bc.query_drop("CREATE TABLE IF NOT EXISTS route (id INT PRIMARY KEY)")
        .unwrap();
    bc.query_drop("DELETE FROM route").unwrap();
    let wport = bc.with_conn(async |c| port_of(c).await).unwrap();
    assert_eq!(
        wport, p,
        "writes go to the primary, though the replica is listed first"
    );
    let rport = bc.reads().with_conn(async |c| port_of(c).await).unwrap();
    assert_eq!(rport, rp, "reads go to the replica");
    assert!(bc.reads().with_conn(async |c| Ok(c.is_replica())).unwrap());

    // A read-only transaction takes the read route too.
    let tport = bc
        .transaction_with(mysql_uring::TxOpts::default().read_only(true), async |tx| {
            port_of(tx).await
        })
        .unwrap();
    assert_eq!(tport, rp);

    // The replica refuses writes (the app user has no READ ONLY ADMIN): typed,
    // and the host is marked read-only.
    let e = bc
        .reads()
        .query_drop("INSERT INTO route VALUES (1)")
        .unwrap_err();
    assert_eq!(e.code(), Some(1290), "{e:?}");
    assert!(e.is_retryable());

    // Replicated: written on the primary, read on the replica.
    bc.query_drop("INSERT INTO route VALUES (2)").unwrap();
    r.wait_caught_up();
    let n: i64 = bc
        .reads()
        .with_conn(async |c| c.query("SELECT COUNT(*) FROM route WHERE id = 2").await?[0].get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "replication tests need private servers they can kill (MYSQL_URL is set)"
)]
fn a_stopped_replica_leaves_the_rotation_and_comes_back() {
    let _t = turn(&REPLICATION);
    let (r, url) = pair("replica_check_interval=0.05");
    let [p, rp] = r.ports();
    let client = Client::builder().cores(1).build(url.as_str()).unwrap();
    let reads = client.reads().blocking();
    assert_eq!(reads.with_conn(async |c| port_of(c).await).unwrap(), rp);

    r.stop_replica_sql();
    std::thread::sleep(Duration::from_millis(100));
    let port = reads.with_conn(async |c| port_of(c).await).unwrap();
    assert_eq!(
        port, p,
        "replication stopped: reads fall back to the primary"
    );

    r.start_replica_sql();
    r.wait_caught_up();
    // Denied for a second after it was found stopped; then back in.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let port = reads.with_conn(async |c| port_of(c).await).unwrap();
        if port == rp {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reads never went back to the replica"
        );
    }
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "replication tests need private servers they can kill (MYSQL_URL is set)"
)]
fn a_lagging_replica_is_skipped_when_over_max_replica_lag() {
    let _t = turn(&REPLICATION);
    let (r, url) = pair("max_replica_lag=1&replica_check_interval=0.05");
    let [p, rp] = r.ports();
    let client = Client::builder().cores(1).build(url.as_str()).unwrap();
    let bc = client.blocking();
    bc.query_drop("CREATE TABLE IF NOT EXISTS lag (id INT PRIMARY KEY)")
        .unwrap();
    r.wait_caught_up();
    assert_eq!(
        bc.reads().with_conn(async |c| port_of(c).await).unwrap(),
        rp
    );
    // Hold the replica's applier on a locked table while the primary moves on.
    let hold = hold_lock(rp, "app.lag");
    bc.query_drop("INSERT INTO lag VALUES (1)").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let port = bc.reads().with_conn(async |c| port_of(c).await).unwrap();
    assert_eq!(
        port, p,
        "the replica is behind by more than max_replica_lag"
    );
    drop(hold);
    r.wait_caught_up();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bc.reads().with_conn(async |c| port_of(c).await).unwrap() != rp {
        assert!(
            Instant::now() < deadline,
            "reads never went back to the replica"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "replication tests need private servers they can kill (MYSQL_URL is set)"
)]
fn read_your_writes_waits_for_the_replica_or_reads_the_primary() {
    let _t = turn(&REPLICATION);
    let (r, url) = pair("read_your_writes=true&read_your_writes_timeout=0.3");
    let (_, plain) = pair("");
    let [_, rp] = r.ports();
    let ryw = Client::builder()
        .cores(1)
        .build(url.as_str())
        .unwrap()
        .blocking();
    let plain = Client::builder()
        .cores(1)
        .build(plain.as_str())
        .unwrap()
        .blocking();
    ryw.query_drop("CREATE TABLE IF NOT EXISTS ryw (id INT PRIMARY KEY)")
        .unwrap();
    r.wait_caught_up();
    // Make sure both read routes have a connection on the replica.
    assert_eq!(
        plain.reads().with_conn(async |c| port_of(c).await).unwrap(),
        rp
    );
    assert_eq!(
        ryw.reads().with_conn(async |c| port_of(c).await).unwrap(),
        rp
    );

    ryw.query_drop("CREATE TABLE IF NOT EXISTS ryw_block (id INT)")
        .unwrap();
    r.wait_caught_up();
    // The replica's applier is held on a locked table: a fresh write is not
    // there yet.
    let hold = hold_lock(rp, "app.ryw_block");
    ryw.query_drop("INSERT INTO ryw_block VALUES (1)").unwrap();
    ryw.query_drop("INSERT INTO ryw VALUES (7)").unwrap();
    // The write's GTID came in its OK packet (session tracking), and it is
    // the session's @@last_gtid.
    let (tracked, asked) = ryw
        .with_conn(async |c| {
            c.query_drop("INSERT INTO ryw_block VALUES (2)").await?;
            let tracked = c.last_gtid().map(str::to_string);
            let asked: String = c.query("SELECT @@last_gtid").await?[0].get(0)?;
            Ok((tracked, asked))
        })
        .unwrap();
    assert_eq!(
        tracked.as_deref(),
        Some(asked.as_str()),
        "last_gtid tracked"
    );
    let count = "SELECT COUNT(*) FROM ryw WHERE id = 7";
    let seen_plain: i64 = plain
        .reads()
        .with_conn(async move |c| c.query(count).await?[0].get(0))
        .unwrap();
    assert_eq!(
        seen_plain, 0,
        "without read_your_writes the replica is behind"
    );
    let seen: i64 = ryw
        .reads()
        .with_conn(async move |c| c.query(count).await?[0].get(0))
        .unwrap();
    assert_eq!(
        seen, 1,
        "read_your_writes: the write is seen (from the primary)"
    );
    drop(hold);
    r.wait_caught_up();
    let seen: i64 = ryw
        .reads()
        .with_conn(async move |c| {
            let on_replica = c.is_replica();
            let n: i64 = c.query(count).await?[0].get(0)?;
            Ok(if on_replica { n } else { -1 })
        })
        .unwrap();
    assert_eq!(seen, 1, "caught up: read on the replica");
    ryw.query_drop("DELETE FROM ryw").unwrap();
}

/// What a load thread saw: successes, typed failures, and when.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    last_err: Mutex<Option<(Instant, ErrorKind)>>,
    first_ok_after_err: Mutex<Option<Instant>>,
    max_call: Mutex<Duration>,
}

impl Tally {
    fn record<T>(&self, started: Instant, r: &mysql_uring::Result<T>) {
        let took = started.elapsed();
        {
            let mut m = self.max_call.lock().unwrap();
            *m = (*m).max(took);
        }
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                if self.last_err.lock().unwrap().is_some() {
                    self.first_ok_after_err
                        .lock()
                        .unwrap()
                        .get_or_insert(Instant::now());
                }
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                *self.last_err.lock().unwrap() = Some((Instant::now(), e.kind()));
                self.first_ok_after_err.lock().unwrap().take();
            }
        }
    }
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "replication tests need private servers they can kill (MYSQL_URL is set)"
)]
fn killing_the_primary_fails_writes_typed_keeps_reads_flowing_and_writes_resume() {
    let _t = turn(&REPLICATION);
    let (r, url) = pair("");
    let client = Client::builder().cores(1).build(url.as_str()).unwrap();
    let bc = client.blocking();
    bc.query_drop("CREATE TABLE IF NOT EXISTS kp (id BIGINT PRIMARY KEY)")
        .unwrap();
    bc.query_drop("DELETE FROM kp").unwrap();
    r.wait_caught_up();

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Tally::default());
    let reads = Arc::new(Tally::default());
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let w = {
        let (bc, stop, writes, acked) = (bc.clone(), stop.clone(), writes.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let t = Instant::now();
                let res = bc.exec_drop("INSERT INTO kp VALUES (?)", (id,));
                if let Err(e) = &res {
                    assert!(
                        !matches!(
                            e.kind(),
                            ErrorKind::Protocol
                                | ErrorKind::Usage
                                | ErrorKind::Conversion
                                | ErrorKind::Other
                        ),
                        "a write fails typed, as a lost server: {e:?}"
                    );
                } else {
                    acked.lock().unwrap().insert(id);
                }
                writes.record(t, &res);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let rd = {
        let (reads_c, stop, reads) = (bc.reads(), stop.clone(), reads.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let res = reads_c.query("SELECT COUNT(*) FROM kp");
                reads.record(t, &res);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    r.kill(Node::Primary);
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let reads_during = reads.ok.load(Ordering::Relaxed);
    let failed_during = writes.failed.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        reads.ok.load(Ordering::Relaxed) > reads_during,
        "reads keep flowing from the replica while the primary is down"
    );
    assert!(failed_during > 0, "writes fail while the primary is down");
    r.restart(Node::Primary);
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while writes.first_ok_after_err.lock().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "writes never resumed after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let resumed = writes.first_ok_after_err.lock().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    rd.join().unwrap();
    let max_write = *writes.max_call.lock().unwrap();
    eprintln!(
        "primary killed: writes failed {} times, longest call {:?}; resumed {:?} after the restart \
         ({:?} after the kill); reads ok {} failed {}",
        writes.failed.load(Ordering::Relaxed),
        max_write,
        resumed.saturating_duration_since(restarted),
        resumed - killed,
        reads.ok.load(Ordering::Relaxed),
        reads.failed.load(Ordering::Relaxed),
    );
    assert!(
        max_write < Duration::from_secs(5),
        "writes fail in bounded time: {max_write:?}"
    );
    // Every acknowledged write is on the primary (and once: a primary key).
    r.wait_caught_up();
    let acked = acked.lock().unwrap().clone();
    let ids: Vec<u64> = bc
        .with_conn(async |c| {
            let rows = c.query("SELECT id FROM kp ORDER BY id").await?;
            rows.iter().map(|r| r.get::<u64>(0)).collect()
        })
        .unwrap();
    let have: BTreeSet<u64> = ids.iter().copied().collect();
    assert!(acked.is_subset(&have), "an acknowledged write was lost");
}

/// Galera: the three nodes' `hosts=galera` URL for the app user.
/// The tests that use it are ignored when `MYSQL_URL` is set (the cfg
/// `external_server`, from build.rs).
fn galera_url(extra: &str) -> (&'static support::Galera, String) {
    let g = support::galera();
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        g.sql(0, &app_user_sql()).expect("app user");
    });
    let hosts: Vec<String> = g.ports().iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let url = format!(
        "mysql://{APP}:{APP_PW}@{}/app?hosts=galera&connect_timeout=2&{extra}",
        hosts.join(",")
    );
    (g, url)
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "Galera tests need private servers they can kill (MYSQL_URL is set)"
)]
fn galera_balances_connections_and_skips_a_node_that_is_not_synced() {
    let _t = turn(&GALERA);
    let (g, url) = galera_url("");
    mysql_uring::start(async move {
        let opts = Opts::from_url(&url)?;
        let mut conns = Vec::new();
        for _ in 0..6 {
            conns.push(mysql_uring::connect(&opts).await?);
        }
        let open: Vec<usize> = opts
            .host_set()
            .unwrap()
            .status()
            .iter()
            .map(|h| h.open)
            .collect();
        assert_eq!(open, [2, 2, 2], "spread by load");
        drop(conns);
        // Desynced, node 0 is not Synced: new connections avoid it.
        g.sql(0, "SET GLOBAL wsrep_desync = ON").unwrap();
        let mut ports = BTreeSet::new();
        let mut conns = Vec::new();
        for _ in 0..4 {
            let mut c = mysql_uring::connect(&opts).await?;
            ports.insert(port_of(&mut c).await?);
            conns.push(c);
        }
        g.sql(0, "SET GLOBAL wsrep_desync = OFF").unwrap();
        assert!(
            !ports.contains(&g.ports()[0]),
            "the desynced node was skipped: {ports:?}"
        );
        let why = opts.host_set().unwrap().status()[0]
            .why
            .clone()
            .unwrap_or_default();
        assert!(why.contains("not ready"), "{why}");
        Ok::<(), mysql_uring::Error>(())
    })
    .unwrap();
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "Galera tests need private servers they can kill (MYSQL_URL is set)"
)]
fn galera_certification_conflicts_are_typed_and_retryable() {
    let _t = turn(&GALERA);
    let (g, _) = galera_url("");
    let ports = g.ports();
    mysql_uring::start(async move {
        let url = |i: usize| format!("mysql://{APP}:{APP_PW}@127.0.0.1:{}/app", ports[i]);
        let mut a = mysql_uring::connect(url(0)).await?;
        let mut b = mysql_uring::connect(url(1)).await?;
        a.query_drop("CREATE TABLE IF NOT EXISTS cert (id INT PRIMARY KEY, n INT)")
            .await?;
        a.query_drop("REPLACE INTO cert VALUES (1, 0)").await?;
        b.query_drop("SET SESSION wsrep_sync_wait = 1").await?;
        b.query("SELECT * FROM cert").await?;
        let e = {
            let mut tx = a.begin().await?;
            tx.query_drop("UPDATE cert SET n = n + 1 WHERE id = 1")
                .await?;
            // Node 1 commits a change to the same row first.
            b.query_drop("UPDATE cert SET n = n + 10 WHERE id = 1")
                .await?;
            match tx.query_drop("SELECT 1").await {
                Err(e) => e,
                Ok(_) => tx.commit().await.unwrap_err(),
            }
        };
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
        assert_eq!(e.code(), Some(1213));
        assert!(e.is_retryable() && !e.is_fatal());
        a.query_drop("SELECT 1").await?; // still usable
        Ok::<(), mysql_uring::Error>(())
    })
    .unwrap();
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "Galera tests need private servers they can kill (MYSQL_URL is set)"
)]
fn killing_a_galera_node_moves_traffic_with_no_acknowledged_write_lost_or_doubled() {
    let _t = turn(&GALERA);
    let (g, url) = galera_url("");
    let client = Client::builder().cores(1).build(url.as_str()).unwrap();
    let bc = client.blocking();
    bc.query_drop("CREATE TABLE IF NOT EXISTS kg (id BIGINT PRIMARY KEY, node INT)")
        .unwrap();
    bc.query_drop("DELETE FROM kg").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let unknown = Arc::new(Mutex::new(BTreeSet::new()));
    let mut threads = Vec::new();
    for t in 0..3u64 {
        let (bc, stop, tally, acked, unknown) = (
            bc.clone(),
            stop.clone(),
            tally.clone(),
            acked.clone(),
            unknown.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = t * 1_000_000 + n;
                let started = Instant::now();
                let res = bc.transaction_retry(5, async move |tx| {
                    tx.exec_drop("INSERT INTO kg VALUES (?, @@server_id)", (id,))
                        .await
                        .map(|_| ())
                });
                match &res {
                    Ok(()) => {
                        acked.lock().unwrap().insert(id);
                    }
                    Err(e) if e.is_commit_unknown() || e.code() == Some(1062) => {
                        unknown.lock().unwrap().insert(id);
                    }
                    Err(_) => {}
                }
                tally.record(started, &res);
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(700));
    g.kill(1);
    std::thread::sleep(Duration::from_millis(6000));
    let ok_mid = tally.ok.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        tally.ok.load(Ordering::Relaxed) > ok_mid,
        "traffic moved to the other two nodes"
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    g.restart(1);
    g.wait_synced(1);
    let acked = acked.lock().unwrap().clone();
    let unknown = unknown.lock().unwrap().clone();
    let ids: Vec<u64> = bc
        .with_conn(async |c| {
            c.query_drop("SET SESSION wsrep_sync_wait = 1").await?;
            let rows = c.query("SELECT id FROM kg").await?;
            rows.iter().map(|r| r.get::<u64>(0)).collect()
        })
        .unwrap();
    let have: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(have.len(), ids.len(), "no write doubled");
    let lost: Vec<_> = acked.difference(&have).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let extra: Vec<_> = have
        .difference(&acked)
        .filter(|i| !unknown.contains(i))
        .collect();
    assert!(
        extra.is_empty(),
        "writes present that were never acknowledged nor unknown: {extra:?}"
    );
    eprintln!(
        "galera node killed: {} writes acknowledged, {} unknown at commit, {} failed, longest call {:?}",
        acked.len(),
        unknown.len(),
        tally.failed.load(Ordering::Relaxed),
        *tally.max_call.lock().unwrap()
    );
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "replication tests need private servers they can kill (MYSQL_URL is set)"
)]
fn role_read_options_are_the_one_routing_switch() {
    let _t = turn(&REPLICATION);
    let (r, url) = pair("");
    let [_, rp] = r.ports();
    mysql_uring::start(async move {
        let pool =
            mysql_uring::Pool::new(Opts::from_url(&url)?.role(Role::Read), Default::default())?;
        let mut c = pool.get().await?;
        assert_eq!(port_of(&mut c).await?, rp);
        Ok::<(), mysql_uring::Error>(())
    })
    .unwrap();
}
