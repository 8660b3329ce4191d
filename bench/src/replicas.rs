//! The `replicas` workload: several servers, on the private replicated pair
//! of `mysql-uring-testserver` (a primary and a GTID replica on this
//! machine).
//!
//! - Reads (the tokio workload's prepared point selects from `--tasks`
//!   tasks) on the primary alone, spread over primary and replica
//!   (`hosts=loadbalance`), and on the replica through the read route
//!   (`hosts=replication`, `Client::reads`); mysql_async, which has no read
//!   routing, reads from the primary alone beside each.
//! - Failover: a `hosts=replication` client writes every millisecond while
//!   the primary is killed and restarted; reported: how long writes failed
//!   (last error to first success after the restart), how long the restart
//!   itself took, how long the longest failing call took, and whether reads
//!   on the replica failed at all meanwhile.
//!
//! On this 2-core machine both servers and the client share two CPUs, so
//! spreading reads cannot add capacity here: the figures show the cost of
//! the routing, not the gain a second machine would bring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_uring_testserver::{self as cluster, Role as Node};

use crate::BoxResult;
use crate::setup;

/// The pair's URLs: (primary alone, loadbalance over both, replication).
pub struct Pair {
    pub primary: String,
    pub balanced: String,
    pub replication: String,
}

/// Starts the pair (once), creates the bench tables on the primary and
/// waits for the replica to have them.
pub fn pair() -> BoxResult<Pair> {
    let r = cluster::replication();
    let base = r.primary().url("root", "", Some("test"));
    setup::setup(&base, true, None)?;
    let primary = setup::bench_url(&base)?;
    r.wait_caught_up();
    let [p, rp] = r.ports();
    let list = format!("127.0.0.1:{p},127.0.0.1:{rp}");
    Ok(Pair {
        balanced: format!("mysql://root@{list}/bench?hosts=loadbalance"),
        replication: format!("mysql://root@{list}/bench?hosts=replication"),
        primary,
    })
}

/// What one failover run measured.
pub struct Failover {
    /// From the kill to the first write that succeeded after the restart.
    pub writes_down: Duration,
    /// How long the primary was kept dead before the restart began.
    pub kept_down: Duration,
    /// From the restart's beginning to the first write that succeeded.
    pub back_after_restart: Duration,
    /// The longest single failing write call.
    pub slowest_failure: Duration,
    pub failed_writes: u64,
    pub reads_ok: u64,
    pub reads_failed: u64,
}

/// Kills the pair's primary under a write and a read load, restarts it, and
/// times what the client saw.
pub fn failover(pair: &Pair) -> BoxResult<Failover> {
    let r = cluster::replication();
    let client = mysql_uring::Client::builder()
        .cores(1)
        .build(setup::uring_opts(&format!(
            "{}&connect_timeout=2",
            pair.replication
        ))?)?;
    let bc = client.blocking();
    bc.query_drop("CREATE TABLE IF NOT EXISTS bench_failover (id BIGINT PRIMARY KEY)")?;
    bc.query_drop("DELETE FROM bench_failover")?;
    r.wait_caught_up();
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let first_ok_after = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let killed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let writer = {
        let (bc, stop, failed, slowest, first_ok_after, killed_at) = (
            bc.clone(),
            stop.clone(),
            failed.clone(),
            slowest.clone(),
            first_ok_after.clone(),
            killed_at.clone(),
        );
        std::thread::spawn(move || {
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let t = Instant::now();
                match bc.exec_drop("INSERT INTO bench_failover VALUES (?)", (id,)) {
                    Ok(_) => {
                        if killed_at.lock().unwrap().is_some() && failed.load(Ordering::Relaxed) > 0
                        {
                            first_ok_after
                                .lock()
                                .unwrap()
                                .get_or_insert_with(Instant::now);
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut s = slowest.lock().unwrap();
                        *s = (*s).max(t.elapsed());
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let (reads_ok, reads_failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (rc, stop, ok, bad) = (
            bc.reads(),
            stop.clone(),
            reads_ok.clone(),
            reads_failed.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match rc.query("SELECT COUNT(*) FROM bench_point") {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => bad.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (ok0, bad0) = (
        reads_ok.load(Ordering::Relaxed),
        reads_failed.load(Ordering::Relaxed),
    );
    let kill = Instant::now();
    r.kill(Node::Primary);
    *killed_at.lock().unwrap() = Some(kill);
    std::thread::sleep(Duration::from_millis(300));
    let restart_began = Instant::now();
    r.restart(Node::Primary);
    let deadline = Instant::now() + Duration::from_secs(60);
    while first_ok_after.lock().unwrap().is_none() {
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            return Err("writes did not resume within 60 s of the restart".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| "writer panicked")?;
    reader.join().map_err(|_| "reader panicked")?;
    r.wait_caught_up();
    let back = first_ok_after.lock().unwrap().unwrap();
    let out = Failover {
        writes_down: back - kill,
        kept_down: restart_began - kill,
        back_after_restart: back.saturating_duration_since(restart_began),
        slowest_failure: *slowest.lock().unwrap(),
        failed_writes: failed.load(Ordering::Relaxed),
        reads_ok: reads_ok.load(Ordering::Relaxed) - ok0,
        reads_failed: reads_failed.load(Ordering::Relaxed) - bad0,
    };
    Ok(out)
}
