//! The `tokio` workload: what a tokio service sees. `--tasks` tokio tasks on
//! a multi-threaded tokio runtime issue prepared point selects, through
//! mysql-uring's `Client` (which hands each call to its own io_uring cores)
//! or through mysql_async's pool (which does the IO on the tokio workers
//! themselves). Both sides get the same number of connections in total.
//!
//! The client's cost is the whole process's CPU over the measured phase
//! (tokio workers, mysql-uring's cores, everything): the honest figure for a
//! service, since the work moves between threads. System calls are not
//! counted here (they would need a counter per thread).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::BoxResult;
use crate::driver::{Rng, point_sum};
use crate::harness::SendError;
use crate::harness::{Meter, Plan, Progress};
use crate::setup::{POINT_SQL, uring_opts};
use crate::stats::{Hist, Sample, new_hist, record};
use crate::sys::ThreadCost;

/// How the tokio workload is run.
#[derive(Debug, Clone, Copy)]
pub struct Front {
    /// Concurrent tokio tasks.
    pub tasks: usize,
    /// Connections in total (mysql-uring: over its cores; mysql_async: its pool max).
    pub conns: usize,
    /// Tokio worker threads.
    pub workers: usize,
    /// mysql-uring cores.
    pub cores: usize,
    /// mysql-uring Client calls per round trip (`ClientBuilder::multiplex`).
    pub multiplex: usize,
}

/// The process's own CPU, sleeps (voluntary context switches) over a phase.
struct ProcessMeter(libc::rusage);

impl ProcessMeter {
    fn start() -> ProcessMeter {
        ProcessMeter(crate::sys::getrusage(libc::RUSAGE_SELF))
    }

    fn stop(self) -> ThreadCost {
        let ru = crate::sys::getrusage(libc::RUSAGE_SELF);
        let tv = crate::sys::tv;
        ThreadCost {
            user: tv(ru.ru_utime).saturating_sub(tv(self.0.ru_utime)),
            sys: tv(ru.ru_stime).saturating_sub(tv(self.0.ru_stime)),
            sleeps: (ru.ru_nvcsw - self.0.ru_nvcsw) as u64,
            syscalls: None,
        }
    }
}

fn tokio_rt(workers: usize) -> BoxResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?)
}

/// What the tasks of one phase did.
#[derive(Default)]
struct Tally {
    ops: u64,
    hist: Option<Hist>,
}

/// Runs `query(i, rng)` in `tasks` tokio tasks for warm-up plus the measured
/// phase; returns the sample of the measured phase.
fn drive<Q, Fut>(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    f: &Front,
    query: Q,
) -> BoxResult<Sample>
where
    Q: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u64, SendError>> + Send + 'static,
{
    rt.block_on(async {
        // Warm-up: every connection opened, caches filled.
        phase(plan.warmup, f.tasks, query.clone(), None).await?;
        let units = Arc::new(AtomicU64::new(0));
        let progress = Progress::start(plan.label.clone(), units.clone(), plan.secs);
        let meter = Meter::start(plan.server_pid);
        let cost = ProcessMeter::start();
        let tally = phase(plan.secs, f.tasks, query, Some(units)).await?;
        let client = cost.stop();
        drop(progress);
        Ok(meter.stop(tally.ops, tally.ops, client, tally.hist))
    })
}

async fn phase<Q, Fut>(
    secs: Duration,
    tasks: usize,
    query: Q,
    units: Option<Arc<AtomicU64>>,
) -> BoxResult<Tally>
where
    Q: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u64, SendError>> + Send + 'static,
{
    let deadline = Instant::now() + secs;
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let query = query.clone();
        let units = units.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = Rng::new(0x5eed ^ t as u64);
            let mut hist = new_hist();
            let mut ops = 0u64;
            while Instant::now() < deadline {
                let id = rng.id();
                let t0 = Instant::now();
                if query(id).await? == 0 {
                    return Err(format!("point select: id {id} not found").into());
                }
                record(&mut hist, t0.elapsed());
                ops += 1;
                if let Some(u) = &units {
                    if ops % 64 == 0 {
                        u.fetch_add(64, Ordering::Relaxed);
                    }
                }
            }
            Ok::<_, SendError>((ops, hist))
        }));
    }
    let mut tally = Tally::default();
    for h in handles {
        let (ops, hist) = h.await?.map_err(|e| e.to_string())?;
        let _: &Hist = &hist;
        tally.ops += ops;
        match &mut tally.hist {
            Some(all) => all.add(&hist)?,
            None => tally.hist = Some(hist),
        }
    }
    Ok(tally)
}

/// mysql-uring: `Client::exec_first` from every task.
pub fn uring(url: &str, plan: &Plan, f: &Front) -> BoxResult<Sample> {
    uring_route(url, plan, f, false)
}

/// [`uring`], on the client's read route (`Client::reads`) when `reads`.
pub fn uring_route(url: &str, plan: &Plan, f: &Front, reads: bool) -> BoxResult<Sample> {
    let client = mysql_uring::Client::builder()
        .cores(f.cores)
        .max_connections(f.conns)
        .multiplex(f.multiplex)
        .pool(mysql_uring::PoolOpts {
            // Connections are opened on demand up to max; keep them.
            health_check_after: None,
            ..Default::default()
        })
        .build(uring_opts(url)?)?;
    let client = if reads { client.reads() } else { client };
    let rt = tokio_rt(f.workers)?;
    let sample = drive(&rt, plan, f, move |id| {
        let call = client.exec_first(POINT_SQL, (id,));
        async move {
            let row = call.await?.ok_or("point select: no row")?;
            let sum = point_sum(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            Ok::<_, SendError>(sum)
        }
    })?;
    Ok(sample)
}

/// mysql_async: a pool connection per query (`Pool::get_conn`), then
/// `exec_first`, the way a tokio service uses it; connections are not reset
/// on return (as in mysql-uring's pool).
pub fn mysql_async(url: &str, plan: &Plan, f: &Front) -> BoxResult<Sample> {
    use mysql_async::prelude::Queryable;
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(url)?)
        .prefer_socket(false)
        .tcp_nodelay(true)
        .pool_opts(
            mysql_async::PoolOpts::default()
                .with_constraints(
                    mysql_async::PoolConstraints::new(f.conns, f.conns)
                        .ok_or("pool constraints")?,
                )
                // Its default resets every connection on return (a round trip
                // and, with it, every prepared statement); mysql-uring's pool
                // does not by default. Like for like: no reset on either side.
                // And min = max: with min 0 it closes and reopens connections
                // under this load (measured: 5.5k queries/s, 218 µs of server
                // CPU per query), which mysql-uring's pool does not do.
                .with_reset_connection(false),
        );
    let rt = tokio_rt(f.workers)?;
    let pool = rt.block_on(async { mysql_async::Pool::new(opts) });
    let p = pool.clone();
    let sample = drive(&rt, plan, f, move |id| {
        let pool = p.clone();
        async move {
            let mut conn = pool.get_conn().await?;
            let row: Option<(u64, String, f64, i32)> = conn.exec_first(POINT_SQL, (id,)).await?;
            let (rid, name, price, qty) = row.ok_or("point select: no row")?;
            Ok::<_, SendError>(point_sum(rid, &name, price, qty))
        }
    })?;
    rt.block_on(async { pool.disconnect().await })?;
    Ok(sample)
}
