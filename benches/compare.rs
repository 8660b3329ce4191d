//! mysql-uring against mysql_async, end to end, same server, same data, same run.
//!
//! ```text
//! cargo bench --bench compare                    # full run: 5 s per point case, 1,000,000 rows
//! cargo bench --bench compare -- --quick         # smoke run: 1 s per case, 100,000 rows
//! cargo bench --bench compare -- --only point --secs 10 --pin-client 1
//! cargo bench --bench compare -- --only point --driver uring   # one driver, for a profiler
//! cargo bench --bench compare -- --pin-client 1 --pin-server 0   # steadier numbers
//! ```
//!
//! The server is `MYSQL_URL` if set, else a private mariadbd started by
//! `tests/support`. Tables live in the database `bench` and are created once
//! (and reused while big enough).
//!
//! Workloads, each run with both drivers on ONE client thread:
//! - `point`: `SELECT id, name, price, qty FROM bench_point WHERE id = ?` with
//!   a random id (text protocol, the id in the SQL text) over 1 and over 64
//!   connections for a fixed time after a warm-up. mysql-uring: tasks on one
//!   io_uring runtime (`tokio_uring::spawn`), streaming the row with
//!   `cmd_query` + `next_row` into `(u64, &str, f64, i32)`. mysql_async:
//!   `spawn_local` tasks on a current-thread tokio runtime, `query_first` into
//!   `(u64, String, f64, i32)`.
//! - `decode`: `SELECT * FROM bench_decode LIMIT rows` (BIGINT, INT, DOUBLE,
//!   VARCHAR(32), DATETIME, DECIMAL(10,2), TEXT with every 10th NULL) read to
//!   typed values. mysql-uring: `cmd_query` + `next_row`, `RowRef::get` into
//!   `u64, i32, f64, &str, &str, &str, Option<&str>` (zero-copy). mysql_async:
//!   `query_iter` + `for_each` + `from_row` into
//!   `(u64, i32, f64, String, String, String, Option<String>)` (`from_row`
//!   moves the values out of the row, the fastest conversion it offers).
//!   Three runs per driver, interleaved; the median run is reported.
//! - `prepared`: the point select as a prepared statement with the id as a
//!   parameter, through each driver's statement cache. mysql-uring:
//!   `cmd_execute` + `next_row` (binary rows, zero-copy). mysql_async:
//!   `exec_first` into `(u64, String, f64, i32)`.
//! - `decode-binary`: the decode query as a prepared statement (`LIMIT ?`),
//!   binary rows; DATETIME read as a typed value by both
//!   (`mysql_uring::DateTime`, `mysql_async::Value::Date`), DECIMAL as text.
//!   mysql-uring: `cmd_execute` + `next_row`; mysql_async: `exec_iter` +
//!   `for_each` + `from_row`.
//!
//! Client CPU is `getrusage(RUSAGE_THREAD)` of the client thread around the
//! measured phase (the process total is in the JSON too). Server CPU, when the
//! server's pid can be found (`@@pid_file`, `/proc`), is reported for context:
//! on a 2-core machine client and server compete, so throughput depends on
//! both, while client CPU per operation is the figure the driver controls.
//!
//! Server CPU comes from `/proc/PID/stat` in clock ticks (10 ms), so it is
//! coarse for short runs.
//!
//! Flags: `--secs N` (per point case, default 5), `--rows N` (decode, default
//! 1,000,000), `--conns 1,64` (connection counts of the point cases),
//! `--only point,prepared,decode,decode-binary` (any of them; text and prepared
//! point selects, text and binary-protocol decode), `--quick` (1 s, 100,000 rows),
//! `--pin-client CPU` (sched_setaffinity of the client thread), `--pin-server
//! CPU` (every thread of the server process, found by its pid file; for the
//! private server, which `taskset` cannot reach separately), `--driver
//! uring|async` (run one driver only, e.g. under perf), `--coop-taskrun`
//! (experiment: mysql-uring on a ring set up with IORING_SETUP_COOP_TASKRUN |
//! TASKRUN_FLAG instead of `mysql_uring::start`'s defaults). Unknown flags,
//! such as the `--bench` cargo passes, are ignored.
//!
//! Output: a markdown table on stdout and `target/bench-compare.json`.
//! Without the `--bench` flag that `cargo bench` passes (e.g. under
//! `cargo test --all-targets`) the binary does nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

type BoxResult<T> = std::result::Result<T, Box<dyn Error>>;

/// Rows in `bench_point`.
const POINT_ROWS: u64 = 10_000;
/// Rows inserted per statement when filling tables.
const FILL_CHUNK: u64 = 100_000;
/// Bump when the table definitions or contents change: tables are rebuilt.
const TABLE_VERSION: &str = "mysql-uring bench v1";

// ---------------------------------------------------------------- arguments

#[derive(Debug, Clone)]
struct Args {
    secs: f64,
    warmup: f64,
    rows: u64,
    /// Connection counts of the point cases.
    conns: Vec<usize>,
    only: Option<String>,
    /// Run only this driver (`uring` or `async`), e.g. under a profiler.
    driver: Option<String>,
    quick: bool,
    /// Build mysql-uring's io_uring with IORING_SETUP_COOP_TASKRUN |
    /// IORING_SETUP_TASKRUN_FLAG (an experiment; `mysql_uring::start` does not).
    coop_taskrun: bool,
    pin_client: Option<usize>,
    pin_server: Option<usize>,
    runs: usize,
}

/// The workloads `--only` selects from.
const WORKLOADS: [&str; 4] = ["point", "prepared", "decode", "decode-binary"];

/// True when `--only` is absent or names `workload`.
fn wants(args: &Args, workload: &str) -> bool {
    args.only
        .as_deref()
        .is_none_or(|o| o.split(',').any(|w| w == workload))
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if !argv.iter().any(|a| a == "--bench") {
        // Built and started by `cargo test --all-targets`: not a benchmark run.
        println!("compare: skipped (run it with `cargo bench --bench compare`)");
        return None;
    }
    let mut secs = None;
    let mut rows = None;
    let mut conns = vec![1, 64];
    let mut only = None;
    let mut driver = None;
    let mut quick = false;
    let mut coop_taskrun = false;
    let mut pin_client = None;
    let mut pin_server = None;
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> String {
            it.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
                .clone()
        };
        match a.as_str() {
            "--secs" => secs = Some(value("--secs").parse::<f64>().expect("--secs N")),
            "--rows" => rows = Some(value("--rows").parse::<u64>().expect("--rows N")),
            "--conns" => {
                conns = value("--conns")
                    .split(',')
                    .map(|c| c.trim().parse::<usize>().expect("--conns N[,N...]"))
                    .collect()
            }
            "--only" => {
                let v = value("--only");
                assert!(
                    v.split(',').all(|w| WORKLOADS.contains(&w)),
                    "--only takes a comma-separated list of {WORKLOADS:?}, not `{v}`"
                );
                only = Some(v);
            }
            "--driver" => {
                let v = value("--driver");
                assert!(
                    v == "uring" || v == "async",
                    "--driver takes `uring` or `async`, not `{v}`"
                );
                driver = Some(v);
            }
            "--pin-client" => {
                pin_client = Some(
                    value("--pin-client")
                        .parse::<usize>()
                        .expect("--pin-client CPU"),
                )
            }
            "--pin-server" => {
                pin_server = Some(
                    value("--pin-server")
                        .parse::<usize>()
                        .expect("--pin-server CPU"),
                )
            }
            "--quick" => quick = true,
            "--coop-taskrun" => coop_taskrun = true,
            _ => {} // --bench and whatever else cargo passes
        }
    }
    let secs = secs.unwrap_or(if quick { 1.0 } else { 5.0 });
    Some(Args {
        secs,
        warmup: if quick { 0.3 } else { 1.0f64.min(secs) },
        rows: rows.unwrap_or(if quick { 100_000 } else { 1_000_000 }),
        conns,
        only,
        driver,
        quick,
        coop_taskrun,
        pin_client,
        pin_server,
        runs: 3,
    })
}

// ---------------------------------------------------------------- CPU time

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time of the whole process (all its threads, io_uring workers included).
fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// CPU time of another process, from /proc (clock-tick resolution).
fn pid_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Restricts thread `tid` (0: the calling thread) to `cpu`.
fn pin(tid: libc::pid_t, cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays in bounds for
    // cpu < CPU_SETSIZE, which sched_setaffinity then validates.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Pins every thread of process `pid` to `cpu`; threads it creates later
/// inherit the affinity of their creator.
fn pin_process(pid: u32, cpu: usize) -> std::io::Result<()> {
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = t?.file_name().to_str().and_then(|s| s.parse().ok()) {
            pin(tid, cpu)?;
        }
    }
    Ok(())
}

/// What one measured phase cost.
#[derive(Debug, Clone, Copy)]
struct Sample {
    ops: u64,
    elapsed: Duration,
    thread_cpu: Duration,
    process_cpu: Duration,
    server_cpu: Option<Duration>,
    /// CPU time used by everything else on the machine (other processes,
    /// interrupts, steal), when the server's CPU is known: a noise gauge.
    other_cpu: Option<Duration>,
}

/// Busy time of all CPUs together, from /proc/stat (clock-tick resolution).
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(busy * 1_000_000_000 / hz))
}

/// Measures a phase from `start()` to `stop(ops)`.
struct Meter {
    server_pid: Option<u32>,
    t: Instant,
    thread: Duration,
    process: Duration,
    server: Option<Duration>,
    machine: Option<Duration>,
}

impl Meter {
    fn start(server_pid: Option<u32>) -> Meter {
        Meter {
            server_pid,
            server: server_pid.and_then(pid_cpu),
            machine: machine_busy(),
            thread: thread_cpu(),
            process: process_cpu(),
            t: Instant::now(),
        }
    }

    fn stop(self, ops: u64) -> Sample {
        let elapsed = self.t.elapsed();
        let thread = thread_cpu() - self.thread;
        let process = process_cpu() - self.process;
        let server = match (self.server, self.server_pid.and_then(pid_cpu)) {
            (Some(a), Some(b)) if b >= a => Some(b - a),
            _ => None,
        };
        let other = match (self.machine, machine_busy(), server) {
            (Some(a), Some(b), Some(srv)) => {
                Some((b.saturating_sub(a)).saturating_sub(process + srv))
            }
            _ => None,
        };
        Sample {
            ops,
            elapsed,
            thread_cpu: thread,
            process_cpu: process,
            server_cpu: server,
            other_cpu: other,
        }
    }
}

// ---------------------------------------------------------------- setup

/// A tiny xorshift generator: random ids without another dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn id(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % POINT_ROWS + 1
    }
}

/// `url` with its database replaced by `bench`.
fn bench_url(url: &str) -> BoxResult<String> {
    let mut u = url::Url::parse(url)?;
    u.set_path("/bench");
    Ok(u.to_string())
}

/// The SQL producing `seq` from `a` to `b` as a derived table `g`.
fn seq_source(mariadb: bool, a: u64, b: u64) -> String {
    if mariadb {
        format!("seq_{a}_to_{b} AS g")
    } else {
        format!(
            "(WITH RECURSIVE s(seq) AS (SELECT {a} UNION ALL SELECT seq + 1 FROM s WHERE seq < {b}) \
             SELECT seq FROM s) AS g"
        )
    }
}

/// Creates `table` with `rows` rows unless a big enough one exists (told by
/// its comment). `ddl` has `{comment}` where the table comment goes; `select`
/// maps `g.seq` to a row and has `{source}` where the sequence goes.
async fn ensure_table(
    c: &mut mysql_uring::Connection,
    table: &str,
    ddl: &str,
    select: &str,
    rows: u64,
) -> mysql_uring::Result<()> {
    let have = c
        .query(&format!(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = 'bench' AND TABLE_NAME = '{table}'"
        ))
        .await?;
    if let Some(r) = have.first() {
        let comment: &str = r.get(0)?;
        let have_rows = comment
            .strip_prefix(TABLE_VERSION)
            .and_then(|s| s.trim().strip_prefix("rows="))
            .and_then(|s| s.parse::<u64>().ok());
        if have_rows.is_some_and(|n| n >= rows) {
            return Ok(());
        }
    }
    let t = Instant::now();
    eprint!("creating bench.{table} with {rows} rows ...");
    let mariadb = c.is_mariadb();
    if !mariadb {
        c.query_drop(&format!(
            "SET SESSION cte_max_recursion_depth = {}",
            FILL_CHUNK + 10
        ))
        .await?;
    }
    c.query_drop(&format!("DROP TABLE IF EXISTS {table}"))
        .await?;
    c.query_drop(&ddl.replace("{comment}", "being filled"))
        .await?;
    let mut a = 1;
    while a <= rows {
        let b = (a + FILL_CHUNK - 1).min(rows);
        c.query_drop(&select.replace("{source}", &seq_source(mariadb, a, b)))
            .await?;
        a = b + 1;
    }
    // Only a completely filled table is marked as reusable.
    c.query_drop(&format!(
        "ALTER TABLE {table} COMMENT = '{TABLE_VERSION} rows={rows}'"
    ))
    .await?;
    eprintln!(" {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

const POINT_DDL: &str = "CREATE TABLE bench_point (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    name VARCHAR(32) NOT NULL,
    price DOUBLE NOT NULL,
    qty INT NOT NULL
) ENGINE=InnoDB COMMENT='{comment}'";

const POINT_FILL: &str = "INSERT INTO bench_point (id, name, price, qty)
    SELECT g.seq, CONCAT('item-', LPAD(g.seq, 6, '0'), '-', LEFT(MD5(g.seq), 8)),
           g.seq * 1e0 / 7, g.seq % 1000
    FROM {source}";

const DECODE_DDL: &str = "CREATE TABLE bench_decode (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    qty INT NOT NULL,
    price DOUBLE NOT NULL,
    name VARCHAR(32) NOT NULL,
    created DATETIME NOT NULL,
    amount DECIMAL(10,2) NOT NULL,
    note TEXT NULL
) ENGINE=InnoDB COMMENT='{comment}'";

const DECODE_FILL: &str = "INSERT INTO bench_decode (id, qty, price, name, created, amount, note)
    SELECT g.seq, CAST(g.seq % 100000 AS SIGNED) - 50000, g.seq * 1e0 / 7,
           CONCAT('name-', g.seq, '-', LEFT(MD5(g.seq), 10)),
           TIMESTAMP '2024-01-01 00:00:00' + INTERVAL g.seq SECOND,
           (g.seq % 100000) / 100,
           IF(g.seq % 10 = 0, NULL, CONCAT('note for row ', g.seq, ': ', MD5(g.seq)))
    FROM {source}";

/// What the setup learned about the server.
struct ServerInfo {
    version: String,
    pid: Option<u32>,
}

/// mysql-uring options for `url`, in plain text like mysql_async's defaults
/// (the private server offers TLS, which mysql-uring would otherwise use).
fn uring_opts(url: &str) -> mysql_uring::Result<mysql_uring::Opts> {
    Ok(mysql_uring::Opts::from_url(url)?.ssl_mode(mysql_uring::SslMode::Disabled))
}

/// Creates the database and tables (with mysql-uring) and finds the server's
/// pid. `url` is the server's URL as given (its database may not be `bench`).
fn setup(url: &str, args: &Args) -> BoxResult<ServerInfo> {
    let url = url.to_string();
    let args = args.clone();
    let info = mysql_uring::start(async move {
        let mut c = mysql_uring::connect(uring_opts(&url)?).await?;
        c.query_drop("CREATE DATABASE IF NOT EXISTS bench").await?;
        c.select_db("bench").await?;
        if wants(&args, "point") || wants(&args, "prepared") {
            ensure_table(&mut c, "bench_point", POINT_DDL, POINT_FILL, POINT_ROWS).await?;
        }
        if wants(&args, "decode") || wants(&args, "decode-binary") {
            ensure_table(&mut c, "bench_decode", DECODE_DDL, DECODE_FILL, args.rows).await?;
        }
        let pid_file: Option<String> = c.query("SELECT @@pid_file").await.ok().and_then(|r| {
            r.first()
                .and_then(|r| r.get::<Option<String>>(0).ok().flatten())
        });
        let version = c.server_version().to_string();
        c.close().await?;
        Ok::<_, mysql_uring::Error>(ServerInfo {
            version,
            pid: pid_file.and_then(|f| std::fs::read_to_string(f).ok()?.trim().parse().ok()),
        })
    })?;
    Ok(info)
}

// ---------------------------------------------------------------- point selects

/// Runs `fut` on an io_uring runtime on this thread: `mysql_uring::start`, or
/// with `coop_taskrun` a tokio-uring runtime whose ring is set up with
/// IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG (completions are not
/// signalled to the running thread with an inter-processor interrupt).
fn uring_start<F: std::future::Future>(coop_taskrun: bool, fut: F) -> F::Output {
    if coop_taskrun {
        let mut ring = tokio_uring::uring_builder();
        ring.setup_coop_taskrun().setup_taskrun_flag();
        tokio_uring::builder().uring_builder(&ring).start(fut)
    } else {
        mysql_uring::start(fut)
    }
}

fn point_sql(id: u64) -> String {
    format!("SELECT id, name, price, qty FROM bench_point WHERE id = {id}")
}

/// One mysql-uring point select; returns a checksum of the row.
async fn uring_point(c: &mut mysql_uring::Connection, id: u64) -> mysql_uring::Result<u64> {
    c.cmd_query(&point_sql(id)).await?;
    let mut sum = 0;
    while let Some(row) = c.next_row().await? {
        let (rid, name, price, qty): (u64, &str, f64, i32) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        sum += rid + name.len() as u64 + price as u64 + qty as u64;
    }
    assert!(sum > 0, "id {id} not found");
    Ok(sum)
}

const POINT_PREPARED: &str = "SELECT id, name, price, qty FROM bench_point WHERE id = ?";

/// One mysql-uring prepared point select (statement cache, binary rows).
async fn uring_point_prepared(
    c: &mut mysql_uring::Connection,
    id: u64,
) -> mysql_uring::Result<u64> {
    c.cmd_execute(POINT_PREPARED, (id,)).await?;
    let mut sum = 0;
    while let Some(row) = c.next_row().await? {
        let (rid, name, price, qty): (u64, &str, f64, i32) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        sum += rid + name.len() as u64 + price as u64 + qty as u64;
    }
    assert!(sum > 0, "id {id} not found");
    Ok(sum)
}

/// One mysql_async prepared point select (`exec_first`, its statement cache).
async fn async_point_prepared(c: &mut mysql_async::Conn, id: u64) -> mysql_async::Result<u64> {
    let (rid, name, price, qty) = c
        .exec_first::<(u64, String, f64, i32), _, _>(POINT_PREPARED, (id,))
        .await?
        .unwrap_or_else(|| panic!("id {id} not found"));
    Ok(rid + name.len() as u64 + price as u64 + qty as u64)
}

/// One mysql_async point select; returns a checksum of the row.
async fn async_point(c: &mut mysql_async::Conn, id: u64) -> mysql_async::Result<u64> {
    let (rid, name, price, qty) = c
        .query_first::<(u64, String, f64, i32), _>(point_sql(id))
        .await?
        .unwrap_or_else(|| panic!("id {id} not found"));
    Ok(rid + name.len() as u64 + price as u64 + qty as u64)
}

/// Runs every connection in its own task until `deadline`; gives the
/// connections back with the number of queries done.
async fn uring_phase(
    conns: Vec<mysql_uring::Connection>,
    deadline: Instant,
    seed: u64,
    prepared: bool,
) -> (Vec<mysql_uring::Connection>, u64) {
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio_uring::spawn(async move {
                let mut rng = Rng::new(seed + i as u64);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let id = rng.id();
                    let r = if prepared {
                        uring_point_prepared(&mut c, id).await
                    } else {
                        uring_point(&mut c, id).await
                    };
                    std::hint::black_box(r.expect("point select"));
                    n += 1;
                }
                (c, n)
            })
        })
        .collect();
    let mut conns = Vec::new();
    let mut total = 0;
    for t in tasks {
        let (c, n) = t.await.expect("task");
        conns.push(c);
        total += n;
    }
    (conns, total)
}

async fn async_phase(
    conns: Vec<mysql_async::Conn>,
    deadline: Instant,
    seed: u64,
    prepared: bool,
) -> (Vec<mysql_async::Conn>, u64) {
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::task::spawn_local(async move {
                let mut rng = Rng::new(seed + i as u64);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let id = rng.id();
                    let r = if prepared {
                        async_point_prepared(&mut c, id).await
                    } else {
                        async_point(&mut c, id).await
                    };
                    std::hint::black_box(r.expect("point select"));
                    n += 1;
                }
                (c, n)
            })
        })
        .collect();
    let mut conns = Vec::new();
    let mut total = 0;
    for t in tasks {
        let (c, n) = t.await.expect("task");
        conns.push(c);
        total += n;
    }
    (conns, total)
}

fn point_uring(
    url: &str,
    conns: usize,
    args: &Args,
    pid: Option<u32>,
    prepared: bool,
) -> BoxResult<Sample> {
    let url = url.to_string();
    let (warm, secs) = (args.warmup, args.secs);
    let s = uring_start(args.coop_taskrun, async move {
        let mut cs = Vec::with_capacity(conns);
        for _ in 0..conns {
            cs.push(mysql_uring::connect(uring_opts(&url)?).await?);
        }
        let (cs, _) = uring_phase(
            cs,
            Instant::now() + Duration::from_secs_f64(warm),
            1,
            prepared,
        )
        .await;
        let m = Meter::start(pid);
        let (cs, n) = uring_phase(
            cs,
            Instant::now() + Duration::from_secs_f64(secs),
            1000,
            prepared,
        )
        .await;
        let s = m.stop(n);
        for c in cs {
            c.close().await?;
        }
        Ok::<_, mysql_uring::Error>(s)
    })?;
    Ok(s)
}

fn async_opts(url: &str) -> BoxResult<mysql_async::Opts> {
    let opts = mysql_async::Opts::from_url(url)?;
    // By default mysql_async switches to the Unix socket when the host is
    // local; the comparison is TCP against TCP.
    Ok(mysql_async::OptsBuilder::from_opts(opts)
        .prefer_socket(false)
        .tcp_nodelay(true)
        .into())
}

fn current_thread_runtime() -> BoxResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn point_async(
    url: &str,
    conns: usize,
    args: &Args,
    pid: Option<u32>,
    prepared: bool,
) -> BoxResult<Sample> {
    let opts = async_opts(url)?;
    let (warm, secs) = (args.warmup, args.secs);
    let rt = current_thread_runtime()?;
    let local = tokio::task::LocalSet::new();
    let s = local.block_on(&rt, async move {
        let mut cs = Vec::with_capacity(conns);
        for _ in 0..conns {
            cs.push(mysql_async::Conn::new(opts.clone()).await?);
        }
        let (cs, _) = async_phase(
            cs,
            Instant::now() + Duration::from_secs_f64(warm),
            1,
            prepared,
        )
        .await;
        let m = Meter::start(pid);
        let (cs, n) = async_phase(
            cs,
            Instant::now() + Duration::from_secs_f64(secs),
            1000,
            prepared,
        )
        .await;
        let s = m.stop(n);
        for c in cs {
            c.disconnect().await?;
        }
        Ok::<_, mysql_async::Error>(s)
    })?;
    Ok(s)
}

// ---------------------------------------------------------------- decode

fn decode_sql(rows: u64) -> String {
    format!("SELECT * FROM bench_decode LIMIT {rows}")
}

/// Row count and a checksum over every value, to check both drivers read the same.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    rows: u64,
    sum: u64,
}

impl Digest {
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        id: u64,
        qty: i32,
        price: f64,
        name: &str,
        created: u64,
        amount: &str,
        note: Option<&str>,
    ) {
        self.rows += 1;
        self.sum = self
            .sum
            .wrapping_add(id)
            .wrapping_add(qty as u64)
            .wrapping_add(price as u64)
            .wrapping_add(name.len() as u64)
            .wrapping_add(created)
            .wrapping_add(amount.len() as u64)
            .wrapping_add(note.map_or(7, |s| s.len() as u64));
    }
}

fn decode_uring(
    url: &str,
    rows: u64,
    pid: Option<u32>,
    coop_taskrun: bool,
) -> BoxResult<(Sample, Digest)> {
    let url = url.to_string();
    let r = uring_start(coop_taskrun, async move {
        let mut c = mysql_uring::connect(uring_opts(&url)?).await?;
        let sql = decode_sql(rows);
        let m = Meter::start(pid);
        let mut d = Digest::default();
        c.cmd_query(&sql).await?;
        while let Some(row) = c.next_row().await? {
            d.add(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get::<&str>(4)?.len() as u64,
                row.get(5)?,
                row.get(6)?,
            );
        }
        let s = m.stop(d.rows);
        c.close().await?;
        Ok::<_, mysql_uring::Error>((s, d))
    })?;
    Ok(r)
}

type DecodeRow = (u64, i32, f64, String, String, String, Option<String>);

fn decode_async(url: &str, rows: u64, pid: Option<u32>) -> BoxResult<(Sample, Digest)> {
    let opts = async_opts(url)?;
    let rt = current_thread_runtime()?;
    let r = rt.block_on(async move {
        let mut c = mysql_async::Conn::new(opts).await?;
        let sql = decode_sql(rows);
        let m = Meter::start(pid);
        let mut d = Digest::default();
        let mut result = c.query_iter(sql).await?;
        result
            .for_each(|row| {
                let (id, qty, price, name, created, amount, note): DecodeRow =
                    mysql_async::from_row(row);
                d.add(
                    id,
                    qty,
                    price,
                    &name,
                    created.len() as u64,
                    &amount,
                    note.as_deref(),
                );
            })
            .await?;
        drop(result);
        let s = m.stop(d.rows);
        c.disconnect().await?;
        Ok::<_, mysql_async::Error>((s, d))
    })?;
    Ok(r)
}

const DECODE_PREPARED: &str = "SELECT * FROM bench_decode LIMIT ?";

/// Sums a DATETIME's fields, the same for both drivers' typed values.
fn dt_sum(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64, us: u64) -> u64 {
    y + mo + d + h + mi + s + us
}

fn decode_binary_uring(
    url: &str,
    rows: u64,
    pid: Option<u32>,
    coop_taskrun: bool,
) -> BoxResult<(Sample, Digest)> {
    let url = url.to_string();
    let r = uring_start(coop_taskrun, async move {
        let mut c = mysql_uring::connect(uring_opts(&url)?).await?;
        let m = Meter::start(pid);
        let mut d = Digest::default();
        c.cmd_execute(DECODE_PREPARED, (rows,)).await?;
        while let Some(row) = c.next_row().await? {
            let t: mysql_uring::DateTime = row.get(4)?;
            d.add(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                dt_sum(
                    t.date.year.into(),
                    t.date.month.into(),
                    t.date.day.into(),
                    t.hour.into(),
                    t.minute.into(),
                    t.second.into(),
                    t.micros.into(),
                ),
                row.get(5)?,
                row.get(6)?,
            );
        }
        let s = m.stop(d.rows);
        c.close().await?;
        Ok::<_, mysql_uring::Error>((s, d))
    })?;
    Ok(r)
}

type DecodeBinaryRow = (
    u64,
    i32,
    f64,
    String,
    mysql_async::Value,
    String,
    Option<String>,
);

fn decode_binary_async(url: &str, rows: u64, pid: Option<u32>) -> BoxResult<(Sample, Digest)> {
    let opts = async_opts(url)?;
    let rt = current_thread_runtime()?;
    let r = rt.block_on(async move {
        let mut c = mysql_async::Conn::new(opts).await?;
        let m = Meter::start(pid);
        let mut d = Digest::default();
        let mut result = c.exec_iter(DECODE_PREPARED, (rows,)).await?;
        result
            .for_each(|row| {
                let (id, qty, price, name, created, amount, note): DecodeBinaryRow =
                    mysql_async::from_row(row);
                let created = match created {
                    mysql_async::Value::Date(y, mo, d, h, mi, s, us) => dt_sum(
                        y.into(),
                        mo.into(),
                        d.into(),
                        h.into(),
                        mi.into(),
                        s.into(),
                        us.into(),
                    ),
                    other => panic!("DATETIME came as {other:?}"),
                };
                d.add(id, qty, price, &name, created, &amount, note.as_deref());
            })
            .await?;
        drop(result);
        let s = m.stop(d.rows);
        c.disconnect().await?;
        Ok::<_, mysql_async::Error>((s, d))
    })?;
    Ok(r)
}

// ---------------------------------------------------------------- report

struct Line {
    workload: String,
    metric: &'static str,
    uring: f64,
    async_: f64,
    /// Server CPU per op, for context.
    server: (Option<f64>, Option<f64>),
    samples: (Vec<Sample>, Vec<Sample>),
}

fn per_op(d: Duration, ops: u64, unit: f64) -> f64 {
    d.as_secs_f64() * unit / ops.max(1) as f64
}

fn rate(s: &Sample) -> f64 {
    s.ops as f64 / s.elapsed.as_secs_f64()
}

fn median_by(samples: &[Sample], key: impl Fn(&Sample) -> f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<f64> = samples.iter().map(key).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_opt(samples: &[Sample], key: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().map(&key).collect::<Option<Vec<_>>>()?;
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// Throughput and CPU lines for one workload.
fn lines_for(workload: &str, unit: &'static str, us: Vec<Sample>, asy: Vec<Sample>) -> Vec<Line> {
    let (rate_name, cpu_name, scale) = match unit {
        "query" => ("queries/s", "client CPU µs/query", 1e6),
        _ => ("rows/s", "client CPU ns/row", 1e9),
    };
    let cpu = |s: &Sample| per_op(s.thread_cpu, s.ops, scale);
    let srv = |s: &Sample| s.server_cpu.map(|d| per_op(d, s.ops, scale));
    vec![
        Line {
            workload: workload.to_string(),
            metric: rate_name,
            uring: median_by(&us, rate),
            async_: median_by(&asy, rate),
            server: (None, None),
            samples: (us.clone(), asy.clone()),
        },
        Line {
            workload: workload.to_string(),
            metric: cpu_name,
            uring: median_by(&us, cpu),
            async_: median_by(&asy, cpu),
            server: (median_opt(&us, srv), median_opt(&asy, srv)),
            samples: (us, asy),
        },
    ]
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 1000.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}")
    } else {
        "–".into()
    }
}

fn table(lines: &[Line]) -> String {
    let mut t = String::new();
    t.push_str("| workload | metric | mysql-uring | mysql_async | uring/async |\n");
    t.push_str("|---|---|---:|---:|---:|\n");
    for l in lines {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} |",
            l.workload,
            l.metric,
            fmt_num(l.uring),
            fmt_num(l.async_),
            fmt_ratio(l.uring / l.async_)
        );
        if l.server.0.is_some() || l.server.1.is_some() {
            let (a, b) = (
                l.server.0.unwrap_or(f64::NAN),
                l.server.1.unwrap_or(f64::NAN),
            );
            let _ = writeln!(
                t,
                "| {} | server CPU {} | {} | {} | {} |",
                l.workload,
                l.metric.trim_start_matches("client CPU "),
                fmt_num(a),
                fmt_num(b),
                fmt_ratio(a / b)
            );
        }
    }
    // How busy the rest of the machine was: on a shared 2-core box another
    // build or test run skews everything, so say so next to the numbers.
    let noise = |v: &[Sample]| -> String {
        v.iter()
            .filter_map(|s| Some(s.other_cpu?.as_secs_f64() / s.elapsed.as_secs_f64()))
            .max_by(|a, b| a.total_cmp(b))
            .map_or("?".into(), |x| format!("{:.0}%", x * 100.0))
    };
    let parts: Vec<String> = lines
        .iter()
        .filter(|l| l.metric.ends_with("/s"))
        .filter(|l| !l.samples.0.is_empty() || !l.samples.1.is_empty())
        .map(|l| {
            format!(
                "{}: {} / {}",
                l.workload,
                noise(&l.samples.0),
                noise(&l.samples.1)
            )
        })
        .collect();
    let _ = writeln!(
        t,
        "\nCPU used by other processes during the measured phases (% of one CPU, \
         worst run, uring / async): {}",
        parts.join("; ")
    );
    t
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_f(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

fn json_samples(v: &[Sample]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| {
            format!(
                "{{\"ops\":{},\"elapsed_s\":{},\"thread_cpu_s\":{},\"process_cpu_s\":{},\"server_cpu_s\":{},\"other_cpu_s\":{}}}",
                s.ops,
                s.elapsed.as_secs_f64(),
                s.thread_cpu.as_secs_f64(),
                s.process_cpu.as_secs_f64(),
                json_f(s.server_cpu.map(|d| d.as_secs_f64())),
                json_f(s.other_cpu.map(|d| d.as_secs_f64()))
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json(lines: &[Line], args: &Args, server: &ServerInfo) -> String {
    let mut o = String::from("{\n");
    let _ = writeln!(o, "  \"server\": {},", json_str(&server.version));
    let _ = writeln!(
        o,
        "  \"args\": {{\"secs\": {}, \"warmup_s\": {}, \"rows\": {}, \"quick\": {}, \"pin_client\": {}, \"pin_server\": {}, \"driver\": {}, \"decode_runs\": {}}},",
        args.secs,
        args.warmup,
        args.rows,
        args.quick,
        args.pin_client
            .map_or("null".to_string(), |c| c.to_string()),
        args.pin_server
            .map_or("null".to_string(), |c| c.to_string()),
        args.driver.as_deref().map_or("null".to_string(), json_str),
        args.runs
    );
    let _ = writeln!(o, "  \"statistic\": \"median\",");
    o.push_str("  \"results\": [\n");
    let items: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "    {{\"workload\": {}, \"metric\": {}, \"mysql_uring\": {}, \"mysql_async\": {}, \"ratio\": {}, \
                 \"server_per_op\": {{\"mysql_uring\": {}, \"mysql_async\": {}}}, \
                 \"samples\": {{\"mysql_uring\": {}, \"mysql_async\": {}}}}}",
                json_str(&l.workload),
                json_str(l.metric),
                json_f(Some(l.uring)),
                json_f(Some(l.async_)),
                json_f(Some(l.uring / l.async_)),
                json_f(l.server.0),
                json_f(l.server.1),
                json_samples(&l.samples.0),
                json_samples(&l.samples.1),
            )
        })
        .collect();
    o.push_str(&items.join(",\n"));
    o.push_str("\n  ]\n}\n");
    o
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

// ---------------------------------------------------------------- main

fn main() -> BoxResult<()> {
    let Some(args) = parse_args() else {
        return Ok(());
    };
    // Start the private server (if any) before pinning the client: the server
    // would inherit the client thread's affinity.
    let base_url = support::test_url();
    if let Some(cpu) = args.pin_client {
        pin(0, cpu).map_err(|e| format!("pinning the client to CPU {cpu}: {e}"))?;
    }
    let server = setup(&base_url, &args)?;
    if let Some(cpu) = args.pin_server {
        let pid = server
            .pid
            .ok_or("--pin-server: the server's pid is unknown (is it on this machine?)")?;
        pin_process(pid, cpu).map_err(|e| format!("pinning the server to CPU {cpu}: {e}"))?;
    }
    let url = bench_url(&base_url)?;
    eprintln!(
        "server {} (pid {}, pinned to {}), client thread pinned to {}, {} s per point case after {} s warm-up, decode {} rows x {} runs",
        server.version,
        server.pid.map_or("unknown".into(), |p| p.to_string()),
        args.pin_server
            .map_or("nothing".into(), |c| format!("CPU {c}")),
        args.pin_client
            .map_or("nothing".into(), |c| format!("CPU {c}")),
        args.secs,
        args.warmup,
        args.rows,
        args.runs
    );

    let run_uring = args.driver.as_deref() != Some("async");
    let run_async = args.driver.as_deref() != Some("uring");
    let mut lines = Vec::new();
    for (workload, prepared) in [("point", false), ("prepared", true)] {
        if !wants(&args, workload) {
            continue;
        }
        for &conns in &args.conns {
            eprint!("{workload}, {conns} connection(s):");
            let (mut u, mut a) = (Vec::new(), Vec::new());
            if run_uring {
                u.push(point_uring(&url, conns, &args, server.pid, prepared)?);
                eprint!(" mysql-uring {:.0} q/s", rate(&u[0]));
            }
            if run_async {
                a.push(point_async(&url, conns, &args, server.pid, prepared)?);
                eprint!(" mysql_async {:.0} q/s", rate(&a[0]));
            }
            eprintln!();
            lines.extend(lines_for(
                &format!(
                    "point select{}, {conns} conn{}",
                    if prepared { " (prepared)" } else { "" },
                    if conns == 1 { "" } else { "s" }
                ),
                "query",
                u,
                a,
            ));
        }
    }
    for (workload, binary) in [("decode", false), ("decode-binary", true)] {
        if !wants(&args, workload) {
            continue;
        }
        let (mut us, mut asy) = (Vec::new(), Vec::new());
        for run in 1..=args.runs {
            eprint!("{workload} run {run}/{}:", args.runs);
            let mut digests = Vec::new();
            if run_uring {
                let (u, d) = if binary {
                    decode_binary_uring(&url, args.rows, server.pid, args.coop_taskrun)?
                } else {
                    decode_uring(&url, args.rows, server.pid, args.coop_taskrun)?
                };
                eprint!(" mysql-uring {:.0} rows/s", rate(&u));
                us.push(u);
                digests.push(d);
            }
            if run_async {
                let (a, d) = if binary {
                    decode_binary_async(&url, args.rows, server.pid)?
                } else {
                    decode_async(&url, args.rows, server.pid)?
                };
                eprint!(" mysql_async {:.0} rows/s", rate(&a));
                asy.push(a);
                digests.push(d);
            }
            eprintln!();
            for d in &digests {
                assert_eq!(d.rows, args.rows, "row count");
                assert_eq!(*d, digests[0], "both drivers must read the same values");
            }
        }
        lines.extend(lines_for(
            &format!(
                "decode {} rows{}, 7 typed cols",
                fmt_num(args.rows as f64),
                if binary { " (prepared)" } else { "" }
            ),
            "row",
            us,
            asy,
        ));
    }

    let t = table(&lines);
    println!(
        "\nmysql-uring vs mysql_async on {} ({}, {}; median of {} decode runs; ratio = uring/async)\n",
        server.version,
        args.pin_client
            .map_or("client unpinned".into(), |c| format!(
                "client pinned to CPU {c}"
            )),
        args.pin_server
            .map_or("server unpinned".into(), |c| format!(
                "server pinned to CPU {c}"
            )),
        args.runs
    );
    println!("{t}");
    let dir = target_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench-compare.json");
    std::fs::write(&path, json(&lines, &args, &server))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
