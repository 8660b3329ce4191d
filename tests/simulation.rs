//! Deterministic simulation: the driver's real connection, pipeline and
//! cancellation code on the seeded simulated kernel of `mysql_uring::sim`,
//! against the simulated MariaDB of `mysql-uring-simserver`.
//!
//! Every schedule is one seed: it picks the faults (a random subset, at
//! random rates), the ring's shape, the socket buffers, and a plan of
//! commands for a few concurrent tasks, some cut at random points. After
//! the run the server's table is checked against what the driver
//! acknowledged. A failure prints its seed; replay it with
//!
//! ```text
//! SIM_SEED=<seed> cargo test --release --features sim --test simulation -- --nocapture
//! ```
//!
//! which runs that one schedule with its trace (every submission and
//! completion) and prints the trace's tail and the smallest set of faults
//! that still fails (`SIM_NO_MINIMIZE=1`: only the trace). `SIM_REPORT=<file>`
//! writes every problem of every failing schedule to the file, one a line.
//! `SIM_SCHEDULES=N` (default 10,000) and `SIM_THREADS=T`
//! (default: every core) set how many run; `SIM_FIRST=S` the first seed.
#![cfg(feature = "sim")]

#[path = "sim/workload.rs"]
mod workload;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mysql_uring::sim::{CheckingAllocator, Faults, Sim, SimConfig, SimStats};
use workload::{Ledger, Plan};

#[global_allocator]
static ALLOC: CheckingAllocator = CheckingAllocator;

/// Most commands per task.
const MAX_OPS: usize = 24;

/// What one schedule found.
#[derive(Debug)]
struct Failure {
    seed: u64,
    category: &'static str,
    detail: String,
}

/// Runs schedule `seed` with `cfg`; the failures it found, and the faults it injected.
fn run_schedule(
    seed: u64,
    cfg: &SimConfig,
) -> (Vec<(&'static str, String)>, SimStats, Vec<String>) {
    let sim = match Sim::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            return (
                vec![("setup", e.to_string())],
                SimStats::default(),
                Vec::new(),
            );
        }
    };
    let plan = Plan::from_seed(seed, MAX_OPS);
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    let faults = cfg.faults.total_probability() > 0.0;
    let opts = sim.opts();
    let unix = sim.unix_opts();
    // One pool for the tasks that share connections: two at most, so they
    // queue, and a cut step leaves its connection for the pool to settle.
    let pool = mysql_uring::Pool::new(
        opts.clone()
            .local_infile_reader(true)
            .drain_timeout(std::time::Duration::from_millis(200)),
        mysql_uring::PoolOpts {
            max: 2,
            health_check_after: None,
            ..Default::default()
        },
    )
    .expect("pool options");
    let r = sim.block_on({
        let ledger = ledger.clone();
        async move {
            let mut handles = Vec::new();
            for t in plan.tasks {
                let o = if t.unix { unix.clone() } else { opts.clone() };
                handles.push(if t.pooled {
                    mysql_uring::runtime::spawn(workload::run_pooled_task(
                        t,
                        pool.clone(),
                        ledger.clone(),
                        faults,
                    ))
                } else {
                    mysql_uring::runtime::spawn(workload::run_task(t, o, ledger.clone(), faults))
                });
            }
            for h in handles {
                if let Err(e) = h.await {
                    ledger.borrow_mut().problems.push(("panic", e.to_string()));
                }
            }
            // Let what the tasks left behind (closes, kills, the pool's
            // settling) finish.
            mysql_uring::runtime::sleep(std::time::Duration::from_secs(2)).await;
            drop(pool);
        }
    });
    let mut problems = std::mem::take(&mut ledger.borrow_mut().problems);
    if let Err(e) = r {
        let e = e.to_string();
        problems.push((
            if e.contains("the loop spins") {
                "livelock"
            } else {
                "hang"
            },
            e,
        ));
    }
    let committed = sim.server(|s| s.committed().clone());
    let log = sim.server(|s| s.commit_log().to_vec());
    let mut l = ledger.borrow_mut();
    l.problems.clear();
    l.check(&committed, &log);
    problems.append(&mut l.problems);
    drop(l);
    let stats = sim.stats();
    let trace = sim.trace();
    // Frees while the runtime goes count too.
    for f in sim.finish() {
        problems.push((category(&f), f));
    }
    (problems, stats, trace)
}

fn category(f: &str) -> &'static str {
    if f.starts_with("memory freed") || f.contains("changed while the kernel") {
        "memory"
    } else if f.contains("published") {
        "buffer-ring"
    } else if f.contains("protocol violation") {
        "server-violation"
    } else if f.contains("waits forever") {
        "hang"
    } else if f.contains("the loop spins") {
        "livelock"
    } else {
        "sim"
    }
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn simulation_schedules() {
    if let Some(seed) = env::<u64>("SIM_SEED") {
        replay(seed);
        return;
    }
    let n: u64 = env("SIM_SCHEDULES").unwrap_or(10_000);
    let first: u64 = env("SIM_FIRST").unwrap_or(1);
    let threads: usize = env("SIM_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = Arc::new(AtomicU64::new(first));
    let failures = Arc::new(Mutex::new(Vec::<Failure>::new()));
    // Every problem of every failing schedule (not only its first), to sort
    // the failures into bugs: (seed, [(category, detail)]).
    let all = Arc::new(Mutex::new(Vec::<(u64, Vec<(&'static str, String)>)>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let totals = Arc::new(Mutex::new(SimStats::default()));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (next, failures, done, totals, all) = (
                next.clone(),
                failures.clone(),
                done.clone(),
                totals.clone(),
                all.clone(),
            );
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= first + n {
                        break;
                    }
                    let cfg = SimConfig::from_seed(seed);
                    let (problems, stats, _) = run_schedule(seed, &cfg);
                    totals.lock().unwrap().add(&stats);
                    done.fetch_add(1, Ordering::Relaxed);
                    if !problems.is_empty() {
                        all.lock().unwrap().push((seed, problems.clone()));
                    }
                    if let Some((cat, detail)) = problems.into_iter().next() {
                        failures.lock().unwrap().push(Failure {
                            seed,
                            category: cat,
                            detail,
                        });
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut failures = failures.lock().unwrap();
    failures.sort_by_key(|f| f.seed);
    let ran = done.load(Ordering::Relaxed);
    let totals = *totals.lock().unwrap();
    println!(
        "{ran} schedules in {secs:.1} s ({:.0}/s on {threads} threads); faults injected: {} ({totals:?})",
        ran as f64 / secs,
        totals.total()
    );
    let mut by_cat: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for f in failures.iter() {
        let e = by_cat.entry(f.category).or_insert((0, f.seed));
        e.0 += 1;
    }
    for (cat, (count, seed)) in &by_cat {
        println!("  {cat}: {count} schedules, first seed {seed}");
    }
    // Every category a failing schedule showed (a schedule counts once per
    // category), with the first seed and its first detail of that category.
    let mut all = all.lock().unwrap();
    all.sort_by_key(|f| f.0);
    let mut any_cat: BTreeMap<&str, (usize, u64, String)> = BTreeMap::new();
    for (seed, problems) in all.iter() {
        let mut seen = std::collections::BTreeSet::new();
        for (cat, detail) in problems {
            if seen.insert(*cat) {
                let e = any_cat
                    .entry(cat)
                    .or_insert_with(|| (0, *seed, detail.chars().take(400).collect()));
                e.0 += 1;
            }
        }
    }
    println!("every category seen (a schedule counts once per category):");
    for (cat, (count, seed, detail)) in &any_cat {
        println!("  {cat}: {count} schedules, first seed {seed}: {detail}");
    }
    if let Ok(path) = std::env::var("SIM_REPORT") {
        let mut out = String::new();
        for (seed, problems) in all.iter() {
            for (cat, detail) in problems {
                let d: String = detail.chars().take(600).collect();
                out.push_str(&format!("{seed}\t{cat}\t{}\n", d.replace('\n', " ")));
            }
        }
        std::fs::write(&path, out).expect("SIM_REPORT file");
        println!("every problem of every failing schedule: {path}");
    }
    match failures.first() {
        None => println!("simulation: {ran} schedules, 0 failures"),
        Some(f) => {
            println!(
                "simulation: {ran} schedules, {} failures; first failing seed {} ({}: {})\n\
                 replay: SIM_SEED={} cargo test --release --features sim --test simulation -- --nocapture",
                failures.len(),
                f.seed,
                f.category,
                f.detail,
                f.seed
            );
            panic!("simulation found {} failing schedules", failures.len());
        }
    }
}

/// Replays one schedule with its trace, then looks for the fewest faults
/// that still make it fail.
fn replay(seed: u64) {
    let mut cfg = SimConfig::from_seed(seed);
    cfg.trace = true;
    println!("schedule {seed}: {cfg:#?}");
    println!("plan: {:#?}", Plan::from_seed(seed, MAX_OPS));
    let (problems, stats, trace) = run_schedule(seed, &cfg);
    let keep = env::<usize>("SIM_TRACE_LINES").unwrap_or(80);
    let tail = trace.len().saturating_sub(keep);
    for line in &trace[tail..] {
        println!("{line}");
    }
    println!("faults injected: {stats:?}");
    if problems.is_empty() {
        println!("simulation: 1 schedules, 0 failures (seed {seed})");
        return;
    }
    for (cat, p) in &problems {
        println!("FAILURE ({cat}): {p}");
    }
    if std::env::var_os("SIM_NO_MINIMIZE").is_some() {
        // Sorting many failing seeds into bugs: the trace is enough.
        println!("simulation: 1 schedules, 1 failures; first failing seed {seed}");
        panic!("schedule {seed} fails");
    }
    // Minimize: turn each fault off in turn; keep it off if the schedule
    // still fails.
    let mut min = cfg.clone();
    min.trace = false;
    for knob in Faults::KNOBS {
        let mut tryc = min.clone();
        tryc.faults.disable(knob);
        if !run_schedule(seed, &tryc).0.is_empty() {
            min = tryc;
        }
    }
    println!("smallest set of faults that still fails: {:#?}", min.faults);
    println!("simulation: 1 schedules, 1 failures; first failing seed {seed}");
    panic!("schedule {seed} fails");
}

/// A pool whose server's host vanishes (no FIN, no reset: pings just go
/// unanswered) bounds a checkout by one deadline: the first silent health
/// check condemns every connection idle as long, instead of pinging each
/// in turn (with 1 s pings, 5 idle connections used to cost 5 s before a
/// connect was even tried).
#[test]
fn simulation_pool_checkout_is_bounded_when_the_server_vanishes() {
    let sim = Sim::new(&SimConfig::calm(7)).unwrap();
    let opts = sim
        .opts()
        .connect_timeout(Some(std::time::Duration::from_secs(1)));
    let popts = mysql_uring::PoolOpts {
        max: 5,
        health_check_after: Some(std::time::Duration::ZERO),
        wait_timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    let pool = mysql_uring::Pool::new(opts, popts).unwrap();
    let p = pool.clone();
    sim.block_on(async move {
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(p.get().await.unwrap());
        }
        drop(held);
        assert_eq!(p.status().idle, 5);
    })
    .unwrap();
    sim.vanish();
    let t0 = sim.elapsed();
    let r = sim
        .block_on(async move { pool.get().await.map(drop) })
        .unwrap();
    let took = sim.elapsed() - t0;
    let e = r.unwrap_err();
    assert!(
        took <= std::time::Duration::from_millis(2500),
        "the checkout took {took:?} of virtual time ({e})"
    );
    assert!(sim.finish().is_empty());
}

/// A `COMMIT` whose reply outlives the query timeout reached the server and
/// commits there: the error must say commit-unknown, never a plain timeout
/// that may be retried (which would run the transaction twice).
#[test]
fn simulation_a_timed_out_commit_is_commit_unknown() {
    let sim = Sim::new(&SimConfig::calm(11)).unwrap();
    let opts = sim
        .opts()
        .query_timeout(Some(std::time::Duration::from_millis(5)));
    let sim_ref = &sim;
    let e = sim
        .block_on(async move {
            let mut c = mysql_uring::connect(opts).await?;
            let mut tx = c.begin().await?;
            tx.query_drop("INSERT INTO t (id, v) VALUES (1, 'one')")
                .await?;
            // From now on every statement takes 20 ms on the server.
            sim_ref.server(|s| s.set_latency(20_000_000));
            Ok::<_, mysql_uring::Error>(tx.commit().await.unwrap_err())
        })
        .unwrap()
        .unwrap();
    assert_eq!(e.kind(), mysql_uring::ErrorKind::Timeout, "{e}");
    assert!(e.is_commit_unknown(), "{e}");
    // And the server did commit it.
    sim.block_on(mysql_uring::runtime::sleep(
        std::time::Duration::from_millis(100),
    ))
    .unwrap();
    assert!(sim.server(|s| s.committed().contains_key(&1)));
    assert!(sim.finish().is_empty());
}

/// A file read for LOAD DATA LOCAL that storage never answers (it runs in
/// the kernel's worker threads and cannot be cancelled) when the runtime
/// stops: its file and buffer must be leaked, never freed, since the
/// kernel may still write into them. (Shutdown used to wait 1 s, ignore
/// the cancel's result and free them.)
#[test]
fn simulation_memory_of_an_unconfirmed_cancel_is_never_freed() {
    let dir = std::env::temp_dir().join(format!("mu-sim-infile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rows.csv");
    std::fs::write(&file, b"1,one\n2,two\n").unwrap();
    let mut cfg = SimConfig::calm(5);
    cfg.hang_file_reads = true;
    let sim = Sim::new(&cfg).unwrap();
    let opts = sim.opts().local_infile_dir(&dir);
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ','",
        file.display()
    );
    let r = sim
        .block_on(async move {
            let mut c = mysql_uring::connect(opts).await?;
            // Gives up while the read hangs in the kernel.
            let cut = mysql_uring::runtime::timeout(
                std::time::Duration::from_millis(10),
                c.query_drop(&sql),
            )
            .await;
            assert!(cut.is_err(), "the load finished: {cut:?}");
            Ok::<_, mysql_uring::Error>(())
        })
        .unwrap();
    r.unwrap();
    let failures = sim.finish();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A seed replays exactly: the same schedule twice gives the same trace
/// (every submission and completion, memory addresses aside), so a
/// failing seed is a reproduction.
#[test]
fn simulation_a_seed_replays_exactly() {
    let strip = |t: Vec<String>| -> Vec<String> {
        t.into_iter()
            .map(|l| {
                // Heap addresses and descriptor numbers (other tests open
                // files meanwhile) differ between runs; nothing else may.
                let mut line = l;
                for (mark, digits) in [("0x", 16), ("Fd(", 10), ("fd ", 10)] {
                    let mut out = String::with_capacity(line.len());
                    let mut rest = line.as_str();
                    while let Some(i) = rest.find(mark) {
                        out.push_str(&rest[..i + mark.len()]);
                        out.push('_');
                        rest =
                            rest[i + mark.len()..].trim_start_matches(|c: char| c.is_digit(digits));
                    }
                    out.push_str(rest);
                    line = out;
                }
                line
            })
            .collect()
    };
    for seed in [3, 17, 52, 99] {
        let mut cfg = SimConfig::from_seed(seed);
        cfg.trace = true;
        let (p1, _, t1) = run_schedule(seed, &cfg);
        let (p2, _, t2) = run_schedule(seed, &cfg);
        assert_eq!(p1, p2, "seed {seed}: different failures");
        let (t1, t2) = (strip(t1), strip(t2));
        assert!(t1.len() > 20, "seed {seed}: a trace of {} lines", t1.len());
        if let Some(i) = (0..t1.len().min(t2.len())).find(|&i| t1[i] != t2[i]) {
            panic!("seed {seed} diverged at step {i}:\n{}\n{}", t1[i], t2[i]);
        }
        assert_eq!(t1.len(), t2.len(), "seed {seed}");
    }
}
