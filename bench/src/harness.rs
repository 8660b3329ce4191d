//! Runs a workload over cores x connections: one thread per core with the
//! driver's own runtime, every connection a task, all threads started and
//! stopped together at barriers so the main thread can measure the phase.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::BoxResult;
use crate::driver::{Compression, Digest, Driver, Op, Rng};
use crate::stats::{Hist, Sample, new_hist, record};
use crate::sys::{ThreadCost, ThreadMeter, machine_busy, pid_cpu, pin, process_cpu};

/// An error a client thread hands back to the main thread.
pub type SendError = Box<dyn std::error::Error + Send + Sync>;

/// Where and how long to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Client threads, each with its own runtime.
    pub cores: usize,
    /// Connections per client thread.
    pub conns: usize,
    pub warmup: Duration,
    pub secs: Duration,
    /// CPUs to pin the client threads to, round robin (empty: not pinned).
    pub pins: Vec<usize>,
    pub server_pid: Option<u32>,
    /// Case name for the progress line.
    pub label: String,
}

/// Measures the machine around a phase, from the main thread.
pub struct Meter {
    t: Instant,
    process: Duration,
    server: Option<Duration>,
    machine: Option<Duration>,
    server_pid: Option<u32>,
}

impl Meter {
    /// Starts measuring; `server_pid` is the server process to account for.
    pub fn start(server_pid: Option<u32>) -> Meter {
        Meter {
            server: server_pid.and_then(pid_cpu),
            machine: machine_busy(),
            process: process_cpu(),
            server_pid,
            t: Instant::now(),
        }
    }

    /// The sample, with what the client threads spent and their latencies.
    pub fn stop(self, ops: u64, units: u64, client: ThreadCost, latency: Option<Hist>) -> Sample {
        let elapsed = self.t.elapsed();
        let process = process_cpu().saturating_sub(self.process);
        let server = match (self.server, self.server_pid.and_then(pid_cpu)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let other = match (self.machine, machine_busy(), server) {
            (Some(a), Some(b), Some(srv)) => {
                Some(b.saturating_sub(a).saturating_sub(process + srv))
            }
            _ => None,
        };
        Sample {
            ops,
            units,
            elapsed,
            client,
            process_cpu: process,
            server_cpu: server,
            other_cpu: other,
            latency,
            wire_bytes: None,
        }
    }
}

/// Prints a live progress line on a terminal until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Shows `units` per second under `label` for a phase of `secs`.
    pub fn start(label: String, units: Arc<AtomicU64>, secs: Duration) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let mut last = (t0, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    let now = (Instant::now(), units.load(Ordering::Relaxed));
                    if now.0.duration_since(last.0) >= Duration::from_secs(1) {
                        let rate =
                            (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64();
                        eprint!(
                            "\r  {label}: {rate:>10.0}/s  {:>4.0}/{:.0} s ",
                            t0.elapsed().as_secs_f64(),
                            secs.as_secs_f64()
                        );
                        let _ = std::io::stderr().flush();
                        last = now;
                    }
                }
                eprint!("\r\x1b[2K");
            })
        });
        Progress { stop, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What one connection's task did in a phase.
struct TaskOut<C> {
    conn: C,
    ops: u64,
    units: u64,
    hist: Hist,
    error: Option<SendError>,
}

/// A thread-local error as one that can cross threads (its message).
pub fn send_error(e: Box<dyn std::error::Error>) -> SendError {
    e.to_string().into()
}

/// Runs `op` on every connection until `deadline`.
async fn phase<D: Driver>(
    conns: Vec<D::Conn>,
    op: Op,
    deadline: Instant,
    seed: u64,
    progress: Option<Arc<AtomicU64>>,
) -> Vec<TaskOut<D::Conn>> {
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            let progress = progress.clone();
            D::spawn(async move {
                let mut rng = Rng::new(seed + i as u64);
                let mut hist = new_hist();
                let (mut ops, mut units, mut unreported) = (0u64, 0u64, 0u64);
                let mut error = None;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match D::op(&mut conn, op, &mut rng).await {
                        Ok(n) => {
                            record(&mut hist, t.elapsed());
                            ops += 1;
                            units += n;
                            unreported += n;
                        }
                        Err(e) => {
                            error = Some(send_error(e));
                            break;
                        }
                    }
                    if unreported >= 64 {
                        if let Some(p) = &progress {
                            p.fetch_add(unreported, Ordering::Relaxed);
                        }
                        unreported = 0;
                    }
                }
                TaskOut {
                    conn,
                    ops,
                    units,
                    hist,
                    error,
                }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(o) => out.push(o),
            Err(e) => panic!("benchmark task failed: {e}"),
        }
    }
    out
}

/// What one client thread reports.
pub struct ThreadOut {
    /// Operations completed.
    pub ops: u64,
    /// Units (queries, rows) completed.
    pub units: u64,
    /// What the thread spent in the measured phase.
    pub cost: ThreadCost,
    /// Latency of every operation.
    pub hist: Hist,
}

async fn connect_all<D: Driver>(url: &str, n: usize) -> Result<Vec<D::Conn>, SendError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(D::connect(url).await.map_err(send_error)?);
    }
    Ok(v)
}

/// Runs the timed operation `op` per [`Plan`]: warm-up, then the measured
/// phase. Every thread passes every barrier even after an error, so a failure
/// is reported rather than hanging the others.
pub fn timed<D: Driver>(url: &str, plan: &Plan, op: Op) -> BoxResult<Sample> {
    let barrier = Arc::new(Barrier::new(plan.cores + 1));
    let units = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..plan.cores)
            .map(|core| {
                let (barrier, units, url) = (barrier.clone(), units.clone(), url.to_string());
                let plan = plan.clone();
                s.spawn(move || -> Result<ThreadOut, SendError> {
                    let pinned = match plan.pins.get(core % plan.pins.len().max(1)) {
                        Some(&cpu) => {
                            pin(0, cpu).map_err(|e| format!("pinning to CPU {cpu}: {e}").into())
                        }
                        None => Ok(()),
                    };
                    D::block_on(async move {
                        let conns = match pinned {
                            Ok(()) => connect_all::<D>(&url, plan.conns).await,
                            Err(e) => Err(e),
                        };
                        let (mut conns, mut error) = match conns {
                            Ok(c) => (c, None),
                            Err(e) => (Vec::new(), Some(e)),
                        };
                        let seed = core as u64 * 1_000_003;
                        barrier.wait();
                        let out =
                            phase::<D>(conns, op, Instant::now() + plan.warmup, seed, None).await;
                        conns = Vec::new();
                        for o in out {
                            error = error.or(o.error);
                            conns.push(o.conn);
                        }
                        barrier.wait();
                        let meter = ThreadMeter::start();
                        let out = phase::<D>(
                            conns,
                            op,
                            Instant::now() + plan.secs,
                            seed + 7,
                            Some(units),
                        )
                        .await;
                        let cost = meter.stop();
                        barrier.wait();
                        let mut res = ThreadOut {
                            ops: 0,
                            units: 0,
                            cost,
                            hist: new_hist(),
                        };
                        for o in out {
                            res.ops += o.ops;
                            res.units += o.units;
                            let _ = res.hist.add(&o.hist);
                            error = error.or(o.error);
                            let _ = D::close(o.conn).await;
                        }
                        match error {
                            Some(e) => Err(e),
                            None => Ok(res),
                        }
                    })
                })
            })
            .collect();
        collect_timed(D::NAME, plan, &barrier, units, handles)
    })
}

/// The main thread's side of a timed run whose `plan.cores` client threads
/// wait at `barrier` when connected, when warmed up and when the measured
/// phase is over: measures the machine over the phase and sums what the
/// threads report. Shared by the drivers and the floor.
pub fn collect_timed(
    name: &str,
    plan: &Plan,
    barrier: &Barrier,
    units: Arc<AtomicU64>,
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<ThreadOut, SendError>>>,
) -> BoxResult<Sample> {
    barrier.wait(); // connected
    barrier.wait(); // warmed up
    let meter = Meter::start(plan.server_pid);
    let progress = Progress::start(format!("{name} {}", plan.label), units, plan.secs);
    barrier.wait(); // measured phase over
    let mut sample = meter.stop(0, 0, ThreadCost::default(), None);
    drop(progress);
    let (mut ops, mut n, mut hist) = (0, 0, new_hist());
    let mut cost = ThreadCost {
        syscalls: Some(0),
        ..ThreadCost::default()
    };
    let mut outs = Vec::new();
    for h in handles {
        outs.push(h.join().map_err(|_| "a client thread panicked")?);
    }
    for o in outs {
        let o = o.map_err(|e| format!("{name} {}: {e}", plan.label))?;
        ops += o.ops;
        n += o.units;
        cost.add(&o.cost);
        let _ = hist.add(&o.hist);
    }
    sample.ops = ops;
    sample.units = n;
    sample.client = cost;
    sample.latency = Some(hist);
    Ok(sample)
}

/// How the decode workload reads its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeKind {
    /// A text-protocol query.
    Text,
    /// A prepared statement (binary rows).
    Prepared,
}

/// Reads the decode query (`rows` rows) once on one connection, on a
/// (pinned) thread.
pub fn decode<D: Driver>(
    url: &str,
    plan: &Plan,
    kind: DecodeKind,
    rows: u64,
) -> BoxResult<(Sample, Digest)> {
    let url = url.to_string();
    let pin_to = plan.pins.first().copied();
    let pid = plan.server_pid;
    let r = std::thread::spawn(move || -> Result<(Sample, Digest), SendError> {
        if let Some(cpu) = pin_to {
            pin(0, cpu)?;
        }
        D::block_on(async move {
            let mut c = D::connect(&url).await.map_err(send_error)?;
            let sql = crate::setup::decode_sql(rows);
            let meter = Meter::start(pid);
            let thread = ThreadMeter::start();
            let d = match kind {
                DecodeKind::Text => D::decode(&mut c, &sql).await,
                DecodeKind::Prepared => D::decode_prepared(&mut c, rows).await,
            }
            .map_err(send_error)?;
            let cost = thread.stop();
            let s = meter.stop(d.rows, d.rows, cost, None);
            D::close(c).await.map_err(send_error)?;
            Ok((s, d))
        })
    })
    .join()
    .map_err(|_| "the decode thread panicked")?;
    r.map_err(|e| format!("{} decode ({kind:?}): {e}", D::NAME).into())
}

/// The compress workload: reads the decode query (`rows` rows, text
/// protocol) once on one connection that uses protocol compression `comp`,
/// on a (pinned) thread, like [`decode`], and counts the bytes the server
/// sent for it: the delta of its session status `Bytes_sent`, which the
/// server counts as written to the socket (after compression), less what one
/// status query itself costs (measured: two of them in a row). `None` when
/// the driver lacks that compression.
pub fn compressed_decode<D: Driver>(
    url: &str,
    plan: &Plan,
    comp: Compression,
    rows: u64,
) -> BoxResult<Option<(Sample, Digest)>> {
    let url = url.to_string();
    let pin_to = plan.pins.first().copied();
    let pid = plan.server_pid;
    let r = std::thread::spawn(move || -> Result<Option<(Sample, Digest)>, SendError> {
        if let Some(cpu) = pin_to {
            pin(0, cpu)?;
        }
        D::block_on(async move {
            let Some(mut c) = D::connect_compressed(&url, comp)
                .await
                .map_err(send_error)?
            else {
                return Ok(None);
            };
            let status = async |c: &mut D::Conn, name: &str| {
                D::session_status(c, name).await.map_err(send_error)
            };
            let on = status(&mut c, "Compression").await?;
            if (on == "ON") != (comp != Compression::Off) {
                return Err(format!("{}: the server says Compression={on}", comp.label()).into());
            }
            let sent = async |c: &mut D::Conn| -> Result<u64, SendError> {
                let v = status(c, "Bytes_sent").await?;
                v.parse()
                    .map_err(|_| format!("Bytes_sent is `{v}`, not a number").into())
            };
            let s0 = sent(&mut c).await?;
            let s1 = sent(&mut c).await?;
            let sql = crate::setup::decode_sql(rows);
            let meter = Meter::start(pid);
            let thread = ThreadMeter::start();
            let d = D::decode(&mut c, &sql).await.map_err(send_error)?;
            let cost = thread.stop();
            let mut s = meter.stop(d.rows, d.rows, cost, None);
            let s2 = sent(&mut c).await?;
            // s1 - s0: one status result; s2 - s1: one more, and the rows.
            s.wire_bytes = Some((s2 - s1).saturating_sub(s1 - s0));
            D::close(c).await.map_err(send_error)?;
            Ok(Some((s, d)))
        })
    })
    .join()
    .map_err(|_| "the compress thread panicked")?;
    r.map_err(|e| format!("{} decode ({}): {e}", D::NAME, comp.label()).into())
}

/// The seed's job: create `tables` tables, check `SHOW TABLES`, drop them,
/// check again, over cores x connections, each connection taking the next
/// table as soon as it is free. One sample: elapsed and client CPU of both
/// phases together.
pub fn tables<D: Driver>(
    url: &str,
    plan: &Plan,
    tables: usize,
    count: &dyn Fn() -> BoxResult<usize>,
) -> BoxResult<Sample> {
    let barrier = Arc::new(Barrier::new(plan.cores + 1));
    let next = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..plan.cores)
            .map(|core| {
                let (barrier, next, url) = (barrier.clone(), next.clone(), url.to_string());
                let plan = plan.clone();
                s.spawn(move || -> Result<ThreadCost, SendError> {
                    if let Some(&cpu) = plan.pins.get(core % plan.pins.len().max(1)) {
                        let _ = pin(0, cpu);
                    }
                    D::block_on(async move {
                        let conns = connect_all::<D>(&url, plan.conns).await;
                        let (conns, mut error) = match conns {
                            Ok(c) => (c, None),
                            Err(e) => (Vec::new(), Some(e)),
                        };
                        let mut conns: Vec<Option<D::Conn>> = conns.into_iter().map(Some).collect();
                        let mut cost = ThreadCost {
                            syscalls: Some(0),
                            ..ThreadCost::default()
                        };
                        for (phase, next) in next.iter().enumerate() {
                            barrier.wait();
                            let meter = ThreadMeter::start();
                            let tasks: Vec<_> = conns
                                .iter_mut()
                                .map(|slot| {
                                    let mut c = slot.take().expect("connection");
                                    let next = next.clone();
                                    D::spawn(async move {
                                        loop {
                                            let i = next.fetch_add(1, Ordering::Relaxed);
                                            if i >= tables {
                                                return (c, None);
                                            }
                                            let r = async {
                                                D::exec(&mut c, &crate::setup::drop_table_sql(i))
                                                    .await?;
                                                if phase == 0 {
                                                    D::exec(
                                                        &mut c,
                                                        &crate::setup::create_table_sql(i),
                                                    )
                                                    .await?;
                                                }
                                                Ok::<_, Box<dyn std::error::Error>>(())
                                            };
                                            if let Err(e) = r.await {
                                                return (c, Some(send_error(e)));
                                            }
                                        }
                                    })
                                })
                                .collect();
                            for (slot, t) in conns.iter_mut().zip(tasks) {
                                let (c, e) = t.await.expect("table task");
                                *slot = Some(c);
                                error = error.or(e);
                            }
                            cost.add(&meter.stop());
                            barrier.wait();
                        }
                        for c in conns.into_iter().flatten() {
                            let _ = D::close(c).await;
                        }
                        match error {
                            Some(e) => Err(e),
                            None => Ok(cost),
                        }
                    })
                })
            })
            .collect();
        let mut elapsed = Duration::ZERO;
        let mut checks = Vec::new();
        let meter = Meter::start(plan.server_pid);
        for phase in 0..2 {
            barrier.wait();
            let t = Instant::now();
            barrier.wait();
            elapsed += t.elapsed();
            checks.push((phase, count()));
        }
        let mut cost = ThreadCost {
            syscalls: Some(0),
            ..ThreadCost::default()
        };
        for h in handles {
            cost.add(
                &h.join()
                    .map_err(|_| "a client thread panicked")?
                    .map_err(|e| format!("{} tables: {e}", D::NAME))?,
            );
        }
        for (phase, n) in checks {
            let (n, want) = (n?, if phase == 0 { tables } else { 0 });
            if n != want {
                return Err(format!(
                    "{} tables: SHOW TABLES counted {n}, expected {want}",
                    D::NAME
                )
                .into());
            }
        }
        let mut s = meter.stop(2 * tables as u64, 2 * tables as u64, cost, None);
        s.elapsed = elapsed;
        Ok(s)
    })
}
