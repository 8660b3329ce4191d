//! Running a test: `--threads` connections sharded over `--cores` ring
//! threads (connection `i` on ring `i % cores`), each connection a task on
//! its ring issuing events back to back (or at `--rate`), counted as
//! sysbench counts them; the main thread prints the interval lines.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use mysql_uring::runtime::RingConfig;
use mysql_uring::{Connection, ErrorKind, QueryResult};

use super::Target;
use super::opts::Opts;
use super::rand::{Rand, Unique};
use super::report::{Cpu, Hdr, Interval, Summary, interval_line, pct_of};
use super::stats::{BUCKETS, CoreStats, Counter, Counts};
use super::workload::{Bulk, Events, Query, Sql, Test};
use crate::BoxResult;
use crate::stats::{Hist, new_hist, record};
use crate::sys::{ThreadCost, ThreadMeter, pid_cpu};

/// What every core shares.
struct Shared {
    /// Set on a fatal error: every connection stops.
    stop: AtomicBool,
    fatal: Mutex<Option<String>>,
    /// Events started, for `--events`.
    issued: AtomicU64,
    unique: Unique,
}

impl Shared {
    fn fail(&self, msg: String) {
        let mut f = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(msg);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The `--rate` event generator of one core: exponential gaps, due events
/// queued until a connection takes them (their latency counts from when
/// they were due, as sysbench's does).
struct RateGen {
    rng: Rand,
    mean_ns: f64,
    next: Instant,
    due: VecDeque<Instant>,
}

/// sysbench's event queue size: more due events than this ends the run.
const MAX_QUEUE: usize = 100_000;

impl RateGen {
    fn step(&mut self) {
        self.next += Duration::from_nanos(self.rng.exp(self.mean_ns) as u64);
    }

    /// The due time of the next event to run.
    fn take(&mut self, now: Instant) -> Option<Instant> {
        while self.next <= now {
            self.due.push_back(self.next);
            self.step();
            if self.due.len() > MAX_QUEUE {
                return None;
            }
        }
        Some(self.due.pop_front().unwrap_or_else(|| {
            let a = self.next;
            self.step();
            a
        }))
    }
}

/// One ring thread's context, shared by its connection tasks.
struct Core {
    o: Arc<Opts>,
    sql: Arc<Sql>,
    shared: Arc<Shared>,
    stats: Arc<CoreStats>,
    target: Arc<Target>,
    deadline: Option<Instant>,
    seed: u64,
    hdr: RefCell<Hist>,
    rate: Option<RefCell<RateGen>>,
}

/// What one connection did.
#[derive(Default)]
struct ConnOut {
    events: u64,
    busy_ns: u64,
    min_ns: u64,
    max_ns: u64,
}

/// How a failed statement is handled.
enum Failure {
    /// In `--mysql-ignore-errors`: the event starts over.
    Ignored,
    /// The connection was lost and 2013 etc. are ignored: reconnect, start over.
    Reconnect,
    /// The run ends.
    Fatal(String),
}

/// The MySQL client's code for a connection that broke mid-query.
const CR_SERVER_LOST: u32 = 2013;

fn classify(o: &Opts, e: &mysql_uring::Error, sql: &str) -> Failure {
    let code = e.code().map(u32::from);
    let lost = code.is_none() && matches!(e.kind(), ErrorKind::Io | ErrorKind::Broken);
    match code {
        Some(c) if o.ignore_errors.ignores(c) => Failure::Ignored,
        None if lost && o.ignore_errors.ignores(CR_SERVER_LOST) => Failure::Reconnect,
        _ => Failure::Fatal(format!(
            "FATAL: statement returned error {} ({e}) for query '{sql}'",
            code.unwrap_or(CR_SERVER_LOST)
        )),
    }
}

/// The server's error for a statement it cannot prepare.
const ER_UNSUPPORTED_PS: u16 = 1295;

/// Runs one statement and reads its rows; says which counter it goes to.
async fn exec(
    c: &mut Connection,
    sql: &str,
    q: &Query,
    prepared: bool,
) -> mysql_uring::Result<Counter> {
    let r = if prepared {
        c.cmd_execute(sql, q.args.as_slice()).await?
    } else if q.args.is_empty() {
        c.cmd_query(sql).await?
    } else {
        let text = c.interpolate(sql, q.args.as_slice())?;
        c.cmd_query(&text).await?
    };
    Ok(match r {
        QueryResult::Rows(_) => {
            while c.next_row().await?.is_some() {}
            Counter::Read
        }
        QueryResult::Done(o) if o.affected_rows > 0 => Counter::Write,
        QueryResult::Done(_) => Counter::Other,
    })
}

/// One connection: events until the time, the event budget or a fatal error.
async fn conn_task(core: Rc<Core>, idx: usize, mut conn: Connection) -> (ConnOut, Connection) {
    let o = &core.o;
    let events = Events::new(o, idx);
    let mut rng = Rand::new(o.rand, core.seed, idx as u64);
    let mut qs: Vec<Query> = Vec::new();
    let mut bulk = (o.test == Test::BulkInsert)
        .then(|| Bulk::new(&format!("INSERT INTO sbtest{} VALUES", idx + 1)));
    let mut cursize = 0u64;
    // Statements the server would not prepare: sent as text from then on.
    let mut text_only = [false; 16];
    let mut out = ConnOut {
        min_ns: u64::MAX,
        ..ConnOut::default()
    };
    let stats = &core.stats;
    'events: loop {
        if core.shared.stop.load(Ordering::Relaxed)
            || core.deadline.is_some_and(|d| Instant::now() >= d)
            || (o.events > 0 && core.shared.issued.fetch_add(1, Ordering::Relaxed) >= o.events)
        {
            break;
        }
        let start = match &core.rate {
            None => Instant::now(),
            Some(g) => {
                let now = Instant::now();
                let Some(due) = g.borrow_mut().take(now) else {
                    core.shared.fail(
                        "FATAL: The event queue is full. This means the worker threads are \
                         unable to keep up with the specified event generation rate"
                            .into(),
                    );
                    break;
                };
                CoreStats::gauge(&stats.queue, g.borrow().due.len() as u64);
                if due > now {
                    mysql_uring::runtime::sleep_until(due).await;
                }
                if core.deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                due
            }
        };
        CoreStats::gauge(&stats.running, stats.running.load(Ordering::Relaxed) + 1);
        loop {
            let failed = if let Some(b) = &mut bulk {
                cursize += 1;
                match b.push(&format!("({cursize},{cursize})")) {
                    None => None,
                    Some(sql) => match conn.query_drop(&sql).await {
                        Ok(_) => {
                            stats.count(Counter::Write);
                            None
                        }
                        Err(e) => Some((e, sql)),
                    },
                }
            } else {
                events.event(&mut rng, &core.shared.unique, &mut qs);
                let mut failed = None;
                for q in &qs {
                    let sql = core.sql.get(q.stmt, q.table);
                    let prepared = o.ps && q.stmt.prepared() && !text_only[q.stmt as usize];
                    let mut r = exec(&mut conn, sql, q, prepared).await;
                    if prepared && matches!(&r, Err(e) if e.code() == Some(ER_UNSUPPORTED_PS)) {
                        text_only[q.stmt as usize] = true;
                        r = exec(&mut conn, sql, q, false).await;
                    }
                    match r {
                        Ok(c) => stats.count(c),
                        Err(e) => {
                            failed = Some((e, sql.to_string()));
                            break;
                        }
                    }
                }
                failed
            };
            let Some((e, sql)) = failed else { break };
            stats.count(Counter::Error);
            match classify(o, &e, &sql) {
                Failure::Ignored => continue,
                Failure::Reconnect => {
                    stats.count(Counter::Reconnect);
                    loop {
                        if core.shared.stop.load(Ordering::Relaxed)
                            || core.deadline.is_some_and(|d| Instant::now() >= d)
                        {
                            break 'events;
                        }
                        match core.target.connect(idx, o).await {
                            Ok(c) => {
                                conn = c;
                                break;
                            }
                            Err(_) => mysql_uring::runtime::sleep(Duration::from_millis(1)).await,
                        }
                    }
                }
                Failure::Fatal(msg) => {
                    core.shared.fail(msg);
                    break 'events;
                }
            }
        }
        CoreStats::gauge(&stats.running, stats.running.load(Ordering::Relaxed) - 1);
        let d = start.elapsed();
        let ns = d.as_nanos() as u64;
        stats.event(ns as f64 / 1e6);
        record(&mut core.hdr.borrow_mut(), d);
        out.events += 1;
        out.busy_ns += ns;
        out.min_ns = out.min_ns.min(ns);
        out.max_ns = out.max_ns.max(ns);
    }
    // bulk_insert's last rows (sysbench's thread_done).
    if let Some(sql) = bulk.as_mut().and_then(Bulk::take) {
        match conn.query_drop(&sql).await {
            Ok(_) => stats.count(Counter::Write),
            Err(e) => core
                .shared
                .fail(format!("FATAL: the last bulk INSERT failed: {e}")),
        }
    }
    CoreStats::gauge(&stats.live, stats.live.load(Ordering::Relaxed) - 1);
    (out, conn)
}

/// What one ring thread reports at the end.
struct CoreOut {
    conns: Vec<ConnOut>,
    hdr: Hist,
    cost: ThreadCost,
    ring: mysql_uring::runtime::RingStats,
}

/// The ring configuration: the library's defaults and the expert knobs.
pub fn ring_config(o: &Opts) -> RingConfig {
    let mut c = RingConfig::default();
    if let Some(n) = o.ring.batch_per {
        c.batch_per = n;
    }
    if let Some(n) = o.ring.batch_max {
        c.batch_max = n;
    }
    if let Some(us) = o.ring.min_wait_us {
        c.batch_min_wait = Duration::from_micros(us);
    }
    c
}

/// The per-core barriers and start time.
struct Sync {
    /// All connected (or failed), then started, then finished.
    barrier: Barrier,
    start: Mutex<Option<Instant>>,
}

/// What a ring thread is handed.
struct CoreArgs {
    core_ix: usize,
    o: Arc<Opts>,
    target: Arc<Target>,
    sql: Arc<Sql>,
    shared: Arc<Shared>,
    stats: Arc<CoreStats>,
    sync: Arc<Sync>,
    done: mpsc::Sender<()>,
    seed: u64,
}

/// One ring thread: connects its share, runs it, reports.
fn core_thread(a: CoreArgs) -> Result<CoreOut, String> {
    let CoreArgs {
        core_ix,
        o,
        target,
        sql,
        shared,
        stats,
        sync,
        done,
        seed,
    } = a;
    let cfg = ring_config(&o);
    let r = mysql_uring::runtime::try_start_with(&cfg, async move {
        let mine: Vec<usize> = (core_ix..o.threads).step_by(o.cores).collect();
        let mut conns = Vec::with_capacity(mine.len());
        for &i in &mine {
            match target.connect(i, &o).await {
                Ok(c) => conns.push(c),
                Err(e) => {
                    shared.fail(format!("FATAL: unable to connect to {}: {e}", target.label));
                    break;
                }
            }
        }
        sync.barrier.wait(); // connected
        sync.barrier.wait(); // start time set
        let t0 = sync.start.lock().map_or_else(|e| *e.into_inner(), |g| *g);
        let t0 = t0.unwrap_or_else(Instant::now);
        let rate = (o.rate > 0).then(|| {
            let mut rng = Rand::new(o.rand, seed ^ 0x5eed, 1 << 40 | core_ix as u64);
            let mean_ns = 1e9 * o.cores as f64 / o.rate as f64;
            let first = Duration::from_nanos(rng.exp(mean_ns) as u64);
            RefCell::new(RateGen {
                rng,
                mean_ns,
                next: t0 + first,
                due: VecDeque::new(),
            })
        });
        let core = Rc::new(Core {
            deadline: (o.time > 0).then(|| t0 + Duration::from_secs(o.time)),
            o: o.clone(),
            sql,
            shared: shared.clone(),
            stats: stats.clone(),
            target,
            seed,
            hdr: RefCell::new(new_hist()),
            rate,
        });
        CoreStats::gauge(&stats.live, conns.len() as u64);
        let meter = ThreadMeter::start();
        let ring0 = mysql_uring::runtime::stats().unwrap_or_default();
        let tasks: Vec<_> = mine
            .iter()
            .zip(conns)
            .map(|(&i, c)| mysql_uring::runtime::spawn(conn_task(core.clone(), i, c)))
            .collect();
        let mut outs = Vec::with_capacity(tasks.len());
        let mut closing = Vec::with_capacity(tasks.len());
        for t in tasks {
            match t.await {
                Ok((out, c)) => {
                    outs.push(out);
                    closing.push(c);
                }
                Err(e) => shared.fail(format!("FATAL: a connection task failed: {e}")),
            }
        }
        let cost = meter.stop();
        let ring1 = mysql_uring::runtime::stats().unwrap_or_default();
        let _ = done.send(());
        sync.barrier.wait(); // finished
        for c in closing {
            let _ = c.close().await;
        }
        let mut ring = ring1;
        ring.enters -= ring0.enters;
        ring.waits -= ring0.waits;
        ring.completions -= ring0.completions;
        let hdr = core.hdr.borrow().clone();
        CoreOut {
            conns: outs,
            hdr,
            cost,
            ring,
        }
    });
    r.map_err(|e| format!("ring thread {core_ix}: {e}"))
}

/// The seed of a run: `--rand-seed`, or the clock.
pub fn seed_of(o: &Opts) -> u64 {
    if o.rand_seed != 0 {
        return o.rand_seed;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Runs the test; prints the interval lines unless `quiet`. Returns the
/// summary, or the fatal error that ended it.
pub fn run(o: &Opts, target: &Target, quiet: bool) -> BoxResult<Summary> {
    let o = Arc::new(o.clone());
    let target = Arc::new(target.clone());
    let sql = Arc::new(Sql::new(&o));
    let seed = seed_of(&o);
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        issued: AtomicU64::new(0),
        unique: Unique::new(seed as u32, (seed >> 32) as u32),
    });
    let sync = Arc::new(Sync {
        barrier: Barrier::new(o.cores + 1),
        start: Mutex::new(None),
    });
    let stats: Vec<Arc<CoreStats>> = (0..o.cores).map(|_| Arc::default()).collect();
    let (done_tx, done_rx) = mpsc::channel();
    let handles: Vec<_> = (0..o.cores)
        .map(|i| {
            let a = CoreArgs {
                core_ix: i,
                o: o.clone(),
                target: target.clone(),
                sql: sql.clone(),
                shared: shared.clone(),
                stats: stats[i].clone(),
                sync: sync.clone(),
                done: done_tx.clone(),
                seed,
            };
            std::thread::Builder::new()
                .name(format!("sysbench-ring-{i}"))
                .spawn(move || core_thread(a))
        })
        .collect::<Result<_, _>>()?;
    drop(done_tx);
    sync.barrier.wait(); // connected
    if !quiet {
        println!("Threads started!\n");
    }
    let server0 = target.server_pid.and_then(pid_cpu);
    let cpu0 = crate::sys::getrusage(libc::RUSAGE_SELF);
    let t0 = Instant::now();
    *sync.start.lock().unwrap_or_else(|e| e.into_inner()) = Some(t0);
    sync.barrier.wait(); // start
    let every = Duration::from_secs(o.report_interval.max(1));
    let mut intervals = Vec::new();
    let (mut last_t, mut last_counts, mut last_buckets) = (t0, Counts::default(), vec![0; BUCKETS]);
    let mut next = t0 + every;
    let mut finished = 0;
    while finished < o.cores {
        let wait = next.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(wait) {
            Ok(()) => finished += 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let (mut counts, mut buckets) = (Counts::default(), vec![0; BUCKETS]);
                let (mut live, mut queue, mut running) = (0, 0, 0);
                for s in &stats {
                    counts.add(&s.counts());
                    s.add_buckets(&mut buckets);
                    live += s.live.load(Ordering::Relaxed);
                    queue += s.queue.load(Ordering::Relaxed);
                    running += s.running.load(Ordering::Relaxed);
                }
                let delta: Vec<u64> = buckets
                    .iter()
                    .zip(&last_buckets)
                    .map(|(a, b)| a - b)
                    .collect();
                let i = Interval {
                    at: (now - t0).as_secs_f64(),
                    secs: (now - last_t).as_secs_f64(),
                    threads: live,
                    counts: counts.since(&last_counts),
                    pct_ms: pct_of(&delta, if o.percentile > 0 { o.percentile } else { 95 }),
                    queue,
                    concurrency: running,
                };
                if o.report_interval > 0 && !quiet {
                    println!("{}", interval_line(&i, o.percentile, o.rate > 0));
                }
                intervals.push(i);
                (last_t, last_counts, last_buckets) = (now, counts, buckets);
                next += every;
            }
        }
    }
    let time_total = t0.elapsed().as_secs_f64();
    let cpu1 = crate::sys::getrusage(libc::RUSAGE_SELF);
    let server = match (server0, target.server_pid.and_then(pid_cpu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
        _ => None,
    };
    sync.barrier.wait(); // finished: the cores close their connections
    let mut outs = Vec::new();
    for h in handles {
        outs.push(
            h.join()
                .map_err(|_| "a ring thread panicked")?
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(msg) = shared
        .fatal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(msg.into());
    }
    let tv = |t: libc::timeval| crate::sys::tv(t).as_secs_f64();
    let mut counts = Counts::default();
    let mut buckets = vec![0; BUCKETS];
    for s in &stats {
        counts.add(&s.counts());
        s.add_buckets(&mut buckets);
    }
    let mut cpu = Cpu {
        user: tv(cpu1.ru_utime) - tv(cpu0.ru_utime),
        sys: tv(cpu1.ru_stime) - tv(cpu0.ru_stime),
        syscalls: Some(0),
        server,
        ..Cpu::default()
    };
    let mut hdr = new_hist();
    let conns: Vec<&ConnOut> = outs.iter().flat_map(|c| &c.conns).collect();
    for c in &outs {
        let _ = hdr.add(&c.hdr);
        cpu.syscalls = cpu.syscalls.zip(c.cost.syscalls).map(|(a, b)| a + b);
        cpu.sleeps += c.cost.sleeps;
        cpu.ring_threads += c.cost.cpu().as_secs_f64();
        cpu.enters += c.ring.enters;
        cpu.waits += c.ring.waits;
        cpu.completions += c.ring.completions;
    }
    let n = conns.len().max(1) as f64;
    let events_avg = conns.iter().map(|c| c.events as f64).sum::<f64>() / n;
    let busy_avg = conns.iter().map(|c| c.busy_ns as f64 / 1e9).sum::<f64>() / n;
    let sd = |f: &dyn Fn(&ConnOut) -> f64, avg: f64| {
        (conns.iter().map(|c| (f(c) - avg).powi(2)).sum::<f64>() / n).sqrt()
    };
    let lat_sum_ms = conns.iter().map(|c| c.busy_ns as f64 / 1e6).sum::<f64>();
    let q = |p: f64| hdr.value_at_quantile(p) as f64 / 1e6;
    Ok(Summary {
        test: o.test.name().into(),
        threads: o.threads,
        cores: o.cores,
        time_total,
        counts,
        lat_min: conns
            .iter()
            .map(|c| c.min_ns)
            .min()
            .filter(|&m| m != u64::MAX)
            .map_or(0.0, |m| m as f64 / 1e6),
        lat_avg: lat_sum_ms / counts.events.max(1) as f64,
        lat_max: conns.iter().map(|c| c.max_ns).max().unwrap_or(0) as f64 / 1e6,
        lat_sum: lat_sum_ms,
        percentile: o.percentile,
        pct_ms: pct_of(&buckets, o.percentile),
        buckets,
        fairness: [
            events_avg,
            sd(&|c| c.events as f64, events_avg),
            busy_avg,
            sd(&|c| c.busy_ns as f64 / 1e9, busy_avg),
        ],
        hdr: Hdr {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: hdr.max() as f64 / 1e6,
        },
        cpu,
        intervals,
    })
}

/// Which statement kinds a test prepares (for the statement cache's size).
pub fn cache_size(o: &Opts) -> usize {
    64.max(o.tables as usize * 12 + 4)
}
