//! `mysql-uring-bench`: mysql-uring, mysql_async, zero-mysql and a raw
//! io_uring floor side by side, same server, same data, same run, with ratios.
//!
//! ```text
//! cargo run --release -p mysql-uring-bench               # everything
//! cargo run --release -p mysql-uring-bench -- --quick    # smoke run
//! cargo run --release -p mysql-uring-bench -- \
//!     --workloads point --conns 64 --pin-client 1 --pin-server 0 --secs 10
//! ```
//!
//! The server is `--url`, else `MYSQL_URL`, else a private mariadbd from
//! `mysql-uring-testserver`, like the tests'. Tables live in the databases
//! `bench` and `bench_tables`; the read-only ones are created once and
//! reused. `--help` lists the workloads and options.

use mysql_uring_testserver as testserver;

mod asyncd;
mod driver;
mod floor;
mod front;
mod harness;
mod replicas;
mod setup;
mod stats;
mod sys;
mod sysbench;
mod uring;
mod zero;

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use crate::asyncd::Async;
use crate::driver::{Compression, Digest, Driver, Op};
use crate::harness::{DecodeKind, Plan};
use crate::stats::{Case, Sample, Unit, fmt_num};
use crate::uring::Uring;
use crate::zero::Zero;

/// The tool's error type: anything, with a message that says what failed.
pub type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const HELP: &str = "\
mysql-uring-bench: mysql-uring against mysql_async, zero-mysql and a raw
io_uring floor, side by side

USAGE: mysql-uring-bench [OPTIONS]
       mysql-uring-bench sysbench TEST prepare|run|cleanup [sysbench's options]
         (sysbench 1.0's OLTP tests, options and report; `sysbench --help`)

WORKLOADS (--workloads a,b,...; default: all)
  point      point selects by primary key, id in the SQL text (text protocol)
  prepared   point selects through prepared statements (binary protocol)
  decode     one SELECT of --rows mixed-type rows read into typed values
  decode-prepared  the same SELECT as a prepared statement (binary rows)
  insert     INSERTs of 1 row and of 1000 rows per statement (text), and a
             prepared one-row INSERT over 1000 parameter rows per call
             (mysql-uring execute_many and zero-mysql: MariaDB bulk execute;
             mysql_async exec_batch)
  pipeline   --depth point selects per round trip on one connection, and the
             same selects one by one (mysql_async and zero-mysql cannot
             pipeline: they run both one by one, and the table says so)
  tables     the Connector/Python docs' demo: create then drop --tables
             tables over --jobs connections, checking SHOW TABLES
  compress   the decode workload's SELECT (--rows rows, text protocol) with
             protocol compression off, zlib (level 6) and zstd (level 3):
             mysql-uring, and mysql_async (off and zlib: it has no zstd);
             zstd only when the server offers it (MySQL 8.0.18+; MariaDB
             does not: the case says so and shows dashes). Adds wire
             bytes/row: what the server sent (its Bytes_sent status delta,
             counted after compression)
  replicas   several servers, on a private primary + GTID replica pair
             (started by the tool; skipped with --url or MYSQL_URL): the
             tokio workload's reads on the primary alone, spread over both
             (hosts=loadbalance) and on the replica (hosts=replication,
             Client::reads), mysql_async on the primary alone beside each;
             then writes while the primary is killed and restarted: how
             long writes failed, and whether reads on the replica did
  tokio      --tasks tokio tasks (multi-threaded tokio runtime) issuing
             prepared point selects: mysql-uring through its Send Client
             (calls routed to --cores io_uring cores), mysql_async through
             its pool; --tokio-conns connections in total on both sides.
             Client CPU is the whole process's

OPTIONS
  --url URL            server (default: MYSQL_URL, else a private mariadbd)
  --cores N            client threads, each with its own runtime (default 1)
  --conns N[,N...]     connections per client thread for point/prepared (1,64)
  --insert-conns N     connections per client thread for insert (4)
  --jobs N[,N...]      connections in total for tables (12)
  --tables N           tables for the tables workload (511)
  --depth N            pipeline depth (16)
  --secs S             measured seconds per timed run (3)
  --warmup S           warm-up seconds before each timed run (0.5)
  --rows N             rows for decode (1000000)
  --tasks N            tokio tasks for the tokio workload (200)
  --tokio-conns N      connections in total for the tokio workload (64)
  --tokio-workers N    tokio worker threads for the tokio workload (CPUs)
  --multiplex N        mysql-uring Client calls per round trip on one
                       connection for the tokio and replicas workloads
                       (ClientBuilder::multiplex; 1: off, the default)
  --runs N             runs of every case per driver, interleaved between the
                       drivers; the median is shown (3)
  --drivers A,B        drivers to run: uring, async, zero, floor (default: all;
                       one alone e.g. under a profiler)
  --pin-client CPU[,CPU...]  pin the client threads (round robin)
  --pin-server CPU     pin every thread of the server process (needs its pid);
                       its previous affinity is restored at the end, on an
                       error, and on Ctrl-C
  --json PATH          also write the results as JSON (default
                       target/bench-results.json; `-` for stdout only)
  --quick              1 s cases, 0.3 s warm-up, 100000 rows, 1 run
  -h, --help           this text

COLUMNS
  floor (raw io_uring)  the tool's own minimal client (src/floor.rs): N
                       connections on one ring, multishot receives into a
                       buffer ring, replies parsed only to find their end;
                       point, prepared and decode workloads. Its ratio is
                       mysql-uring / floor.
  Per case: rate, client CPU per query (or row) and its user/sys split
  (getrusage of the client threads; the split is tick-sampled), system calls
  and sleeps (voluntary context switches) of the client threads per query (or
  per 1k rows; system calls from a perf counter on raw_syscalls:sys_enter,
  `–` when it cannot be opened), server CPU, latency percentiles.
";

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    url: Option<String>,
    workloads: Vec<String>,
    cores: usize,
    conns: Vec<usize>,
    insert_conns: usize,
    jobs: Vec<usize>,
    tables: usize,
    depth: usize,
    secs: f64,
    warmup: f64,
    rows: u64,
    runs: usize,
    drivers: Vec<DriverId>,
    pin_client: Vec<usize>,
    pin_server: Option<usize>,
    json: Option<String>,
    tasks: usize,
    tokio_conns: usize,
    tokio_workers: Option<usize>,
    multiplex: usize,
}

const WORKLOADS: [&str; 10] = [
    "point",
    "prepared",
    "decode",
    "decode-prepared",
    "compress",
    "insert",
    "pipeline",
    "tables",
    "tokio",
    "replicas",
];

fn list<T: std::str::FromStr>(flag: &str, v: &str) -> BoxResult<Vec<T>> {
    v.split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .map_err(|_| format!("{flag}: `{x}` is not a valid value (try --help)").into())
        })
        .collect()
}

fn parse_args() -> BoxResult<Option<Args>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let mut a = Args {
        url: None,
        workloads: WORKLOADS.iter().map(|s| s.to_string()).collect(),
        cores: 1,
        conns: vec![1, 64],
        insert_conns: 4,
        jobs: vec![12],
        tables: 511,
        depth: 16,
        secs: if quick { 1.0 } else { 3.0 },
        warmup: if quick { 0.3 } else { 0.5 },
        rows: if quick { 100_000 } else { 1_000_000 },
        runs: if quick { 1 } else { 3 },
        drivers: ORDER.to_vec(),
        pin_client: Vec::new(),
        pin_server: None,
        json: None,
        tasks: 200,
        tokio_conns: 64,
        tokio_workers: None,
        multiplex: 1,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            print!("{HELP}");
            return Ok(None);
        }
        if flag == "--quick" {
            continue;
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value (try --help)"))?;
        let one = |flag: &str, v: &str| -> BoxResult<usize> {
            let n: Vec<usize> = list(flag, v)?;
            match n.as_slice() {
                [n] if *n > 0 => Ok(*n),
                _ => Err(format!("{flag} takes one number above 0, not `{v}`").into()),
            }
        };
        match flag.as_str() {
            "--url" => a.url = Some(v.clone()),
            "--workloads" => {
                a.workloads = v.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = a
                    .workloads
                    .iter()
                    .find(|w| !WORKLOADS.contains(&w.as_str()))
                {
                    return Err(format!(
                        "--workloads: unknown workload `{bad}` (one of {})",
                        WORKLOADS.join(", ")
                    )
                    .into());
                }
            }
            "--cores" => a.cores = one(flag, v)?,
            "--conns" => a.conns = list(flag, v)?,
            "--insert-conns" => a.insert_conns = one(flag, v)?,
            "--jobs" => a.jobs = list(flag, v)?,
            "--tables" => a.tables = one(flag, v)?,
            "--depth" => a.depth = one(flag, v)?,
            "--secs" => a.secs = list::<f64>(flag, v)?[0],
            "--warmup" => a.warmup = list::<f64>(flag, v)?[0],
            "--rows" => a.rows = one(flag, v)? as u64,
            "--tasks" => a.tasks = one(flag, v)?,
            "--tokio-conns" => a.tokio_conns = one(flag, v)?,
            "--tokio-workers" => a.tokio_workers = Some(one(flag, v)?),
            "--multiplex" => a.multiplex = one(flag, v)?,
            "--runs" => a.runs = one(flag, v)?,
            "--drivers" | "--driver" => {
                a.drivers = v
                    .split(',')
                    .map(|d| match d.trim() {
                        "uring" => Ok(DriverId::Uring),
                        "async" => Ok(DriverId::Async),
                        "zero" => Ok(DriverId::Zero),
                        "floor" => Ok(DriverId::Floor),
                        x => Err(format!(
                            "{flag}: unknown driver `{x}` (uring, async, zero, floor)"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--pin-client" => a.pin_client = list(flag, v)?,
            "--pin-server" => {
                a.pin_server = Some(one(flag, v).or_else(|_| list(flag, v).map(|l| l[0]))?)
            }
            "--json" => a.json = Some(v.clone()),
            // `cargo bench` passes --bench to every bench target; be lenient.
            "--bench" => {}
            _ => return Err(format!("unknown option `{flag}` (try --help)").into()),
        }
    }
    if a.conns.contains(&0) || a.jobs.contains(&0) {
        return Err("--conns and --jobs take numbers above 0".into());
    }
    if !(a.secs > 0.0 && a.warmup >= 0.0) {
        return Err("--secs must be above 0 and --warmup at least 0".into());
    }
    Ok(Some(a))
}

/// The workspace's `target/` (or `CARGO_TARGET_DIR`): where the JSON goes.
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("target")
        })
}

/// The drivers the tool can run, and the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DriverId {
    Uring,
    Async,
    Zero,
    /// The tool's own minimal io_uring client (`floor.rs`).
    Floor,
}

impl DriverId {
    fn name(self) -> &'static str {
        match self {
            DriverId::Uring => Uring::NAME,
            DriverId::Async => Async::NAME,
            DriverId::Zero => Zero::NAME,
            DriverId::Floor => floor::NAME,
        }
    }

    fn supports(self, op: Op) -> bool {
        match self {
            DriverId::Uring => Uring::supports(op),
            DriverId::Async => Async::supports(op),
            DriverId::Zero => Zero::supports(op),
            DriverId::Floor => floor::supports(op),
        }
    }

    /// One timed run of `op`; `None` when this driver does not run it.
    fn timed(self, url: &str, plan: &Plan, op: Op) -> BoxResult<Option<Sample>> {
        if !self.supports(op) {
            return Ok(None);
        }
        Ok(Some(match self {
            DriverId::Uring => harness::timed::<Uring>(url, plan, op)?,
            DriverId::Async => harness::timed::<Async>(url, plan, op)?,
            DriverId::Zero => harness::timed::<Zero>(url, plan, op)?,
            DriverId::Floor => return floor::timed(url, plan, op),
        }))
    }

    /// One decode run; the digest of what was read (the floor, which reads
    /// no values, counts rows only: its sum is 0).
    fn decode(
        self,
        url: &str,
        plan: &Plan,
        kind: DecodeKind,
        rows: u64,
    ) -> BoxResult<Option<(Sample, Digest)>> {
        let runs = match kind {
            DecodeKind::Text => self.supports_decode(),
            DecodeKind::Prepared => self.supports_decode_prepared(),
        };
        if !runs {
            return Ok(None);
        }
        Ok(Some(match self {
            DriverId::Uring => harness::decode::<Uring>(url, plan, kind, rows)?,
            DriverId::Async => harness::decode::<Async>(url, plan, kind, rows)?,
            DriverId::Zero => harness::decode::<Zero>(url, plan, kind, rows)?,
            DriverId::Floor => match floor::decode(url, plan, kind, rows)? {
                Some((s, n)) => (s, Digest { rows: n, sum: 0 }),
                None => return Ok(None),
            },
        }))
    }

    fn supports_decode(self) -> bool {
        match self {
            DriverId::Uring => Uring::supports_decode(),
            DriverId::Async => Async::supports_decode(),
            DriverId::Zero => Zero::supports_decode(),
            DriverId::Floor => true,
        }
    }

    fn supports_decode_prepared(self) -> bool {
        match self {
            DriverId::Uring => Uring::supports_decode_prepared(),
            DriverId::Async => Async::supports_decode_prepared(),
            DriverId::Zero => Zero::supports_decode_prepared(),
            DriverId::Floor => true,
        }
    }

    /// The tables workload; the floor does not run it.
    fn tables(
        self,
        url: &str,
        plan: &Plan,
        n: usize,
        count: &dyn Fn() -> BoxResult<usize>,
    ) -> BoxResult<Option<Sample>> {
        Ok(Some(match self {
            DriverId::Uring => harness::tables::<Uring>(url, plan, n, count)?,
            DriverId::Async => harness::tables::<Async>(url, plan, n, count)?,
            DriverId::Zero => harness::tables::<Zero>(url, plan, n, count)?,
            DriverId::Floor => return Ok(None),
        }))
    }
}

/// Collects every case's samples, one column per driver (mysql-uring first).
struct Runner<'a> {
    args: &'a Args,
    cases: Vec<Case>,
}

/// The report's column order: mysql-uring, mysql_async, zero-mysql, floor.
const ORDER: [DriverId; 4] = [
    DriverId::Uring,
    DriverId::Async,
    DriverId::Zero,
    DriverId::Floor,
];

impl Runner<'_> {
    /// Runs one case: `--runs` rounds, each calling `f` once per selected
    /// driver in report order, so the drivers' runs interleave and a slow
    /// spell of the machine hits all of them alike; the report shows medians.
    /// `None` from `f` means the driver does not run this case (an empty
    /// column). `ran_as` names what a driver runs instead of the case as
    /// named (the report shows it next to the case).
    fn case(
        &mut self,
        name: String,
        unit: Unit,
        ran_as: &[(DriverId, &'static str)],
        mut f: impl FnMut(DriverId) -> BoxResult<Option<Sample>>,
    ) -> BoxResult<()> {
        let mut runs: Vec<(&'static str, Option<&'static str>, Vec<Sample>)> = ORDER
            .iter()
            .map(|id| {
                let ran = ran_as.iter().find(|(d, _)| d == id).map(|(_, r)| *r);
                (id.name(), ran, Vec::new())
            })
            .collect();
        let mut skipped = [false; ORDER.len()];
        for _ in 0..self.args.runs {
            for (i, id) in ORDER.into_iter().enumerate() {
                if skipped[i] || !self.args.drivers.contains(&id) {
                    continue;
                }
                match f(id)? {
                    Some(s) => runs[i].2.push(s),
                    None => skipped[i] = true,
                }
            }
        }
        let shown: Vec<String> = runs
            .iter()
            .map(|(n, ran, v)| {
                let show = match (v.first(), unit) {
                    (None, _) => "–".to_string(),
                    (Some(_), Unit::Job) => {
                        let mut e: Vec<f64> = v.iter().map(|s| s.elapsed.as_secs_f64()).collect();
                        e.sort_by(f64::total_cmp);
                        format!("{:.2} s", e[e.len() / 2])
                    }
                    (Some(_), _) => {
                        let mut r: Vec<f64> = v.iter().map(Sample::rate).collect();
                        r.sort_by(f64::total_cmp);
                        format!("{}/s", fmt_num(Some(r[r.len() / 2])))
                    }
                };
                format!("{} {show}", ran.unwrap_or(n))
            })
            .collect();
        eprintln!(
            "{name}: {} (median of {} run(s))",
            shown.join(", "),
            self.args.runs
        );
        self.cases.push(Case { name, unit, runs });
        Ok(())
    }
}

fn main() {
    // `mysql-uring-bench sysbench TEST COMMAND [options]`: sysbench's tests.
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "sysbench") {
        std::process::exit(sysbench::main(&argv[1..]));
    }
    let r = run();
    // --pin-server: give the server its CPUs back, whatever happened.
    match sys::restore_server_affinity() {
        Ok(0) => {}
        Ok(n) => eprintln!("restored the server's CPU affinity ({n} threads)"),
        Err(e) => eprintln!("mysql-uring-bench: could not restore the server's CPU affinity: {e}"),
    }
    if let Err(e) = r {
        eprintln!("mysql-uring-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> BoxResult<()> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let wants = |w: &str| args.workloads.iter().any(|x| x == w);
    // Start the private server (if any) before pinning anything: it would
    // inherit the affinity of the thread that starts it.
    let base_url = match &args.url {
        Some(u) => u.clone(),
        // The private server's password user: zero-mysql cannot log in with
        // root's empty password, and every driver should authenticate alike.
        None if !testserver::external() => testserver::server().url(
            testserver::NATIVE_USER,
            testserver::NATIVE_PASSWORD,
            Some(testserver::TEST_DB),
        ),
        None => testserver::test_url(),
    };
    let server = setup::setup(
        &base_url,
        wants("point") || wants("prepared") || wants("pipeline") || wants("tokio"),
        (wants("decode") || wants("decode-prepared") || wants("compress")).then_some(args.rows),
    )?;
    // The pair, too, before any pinning.
    let pair = if wants("replicas") && args.url.is_none() && !testserver::external() {
        Some(replicas::pair()?)
    } else {
        if wants("replicas") {
            eprintln!(
                "replicas: skipped (it needs private servers it can kill; --url or MYSQL_URL is set)"
            );
        }
        None
    };
    if let Some(cpu) = args.pin_server {
        let pid = server
            .pid
            .ok_or("--pin-server: the server's pid is unknown (is it on this machine?)")?;
        sys::pin_process(pid, cpu).map_err(|e| format!("pinning the server to CPU {cpu}: {e}"))?;
    }
    let url = setup::bench_url(&base_url)?;
    // Why system calls cannot be counted, if so: said once, `–` in the table.
    let syscalls_not_counted = sys::syscall_counting();
    eprintln!(
        "server {} (pid {}), {} client thread(s), {} s per timed case after {} s warm-up",
        server.version,
        server.pid.map_or("unknown".into(), |p| p.to_string()),
        args.cores,
        args.secs,
        args.warmup,
    );
    let plan = |conns: usize, label: String| Plan {
        cores: args.cores,
        conns,
        warmup: Duration::from_secs_f64(args.warmup),
        secs: Duration::from_secs_f64(args.secs),
        pins: args.pin_client.clone(),
        server_pid: server.pid,
        label,
    };
    let per_core = |n: usize| {
        if args.cores == 1 {
            format!("{n} conn{}", if n == 1 { "" } else { "s" })
        } else {
            format!("{} cores x {n} conns", args.cores)
        }
    };
    let mut r = Runner {
        args: &args,
        cases: Vec::new(),
    };

    // A timed case: each driver that supports `op` runs it once.
    let timed = |id: DriverId, p: &Plan, op: Op| id.timed(&url, p, op);

    for (w, op) in [("point", Op::PointText), ("prepared", Op::PointPrepared)] {
        if !wants(w) {
            continue;
        }
        for &conns in &args.conns {
            let kind = if w == "point" {
                "point"
            } else {
                "prepared point"
            };
            let name = format!("{kind} select, {}", per_core(conns));
            let p = plan(conns, name.clone());
            r.case(name, Unit::Query, &[], |id| timed(id, &p, op))?;
        }
    }

    for (w, kind, label) in [
        ("decode", DecodeKind::Text, ""),
        ("decode-prepared", DecodeKind::Prepared, " (prepared)"),
    ] {
        if !wants(w) {
            continue;
        }
        let p = plan(1, w.into());
        let mut digests = Vec::<Digest>::new();
        let rows = fmt_num(Some(args.rows as f64));
        let name = format!("decode {rows} rows{label}, 7 typed cols");
        r.case(name, Unit::Row, &[], |id| {
            let Some((s, d)) = id.decode(&url, &p, kind, args.rows)? else {
                return Ok(None);
            };
            // The floor reads no values: its row count is all there is to check.
            let differs = id != DriverId::Floor && digests.first().is_some_and(|d0| *d0 != d);
            if d.rows != args.rows || differs {
                return Err(format!(
                    "{w}: {} read different data ({d:?} vs {:?}, {} rows wanted)",
                    id.name(),
                    digests.first(),
                    args.rows
                )
                .into());
            }
            if id != DriverId::Floor {
                digests.push(d);
            }
            Ok(Some(s))
        })?;
    }

    if wants("compress") {
        let p = plan(1, "compress".into());
        let rows = fmt_num(Some(args.rows as f64));
        let mut digests = Vec::<Digest>::new();
        for comp in [Compression::Off, Compression::Zlib, Compression::Zstd] {
            let mut name = format!("decode {rows} rows, {}", comp.label());
            let skip = match (comp, &server.no_zstd) {
                (Compression::Zstd, Some(why)) => {
                    let _ = write!(name, " – not run: {why}");
                    true
                }
                _ => false,
            };
            r.case(name, Unit::Row, &[], |id| {
                let got = match id {
                    _ if skip => return Ok(None),
                    DriverId::Uring => {
                        harness::compressed_decode::<Uring>(&url, &p, comp, args.rows)?
                    }
                    DriverId::Async => {
                        harness::compressed_decode::<Async>(&url, &p, comp, args.rows)?
                    }
                    // zero-mysql and the floor speak no compressed protocol.
                    DriverId::Zero | DriverId::Floor => None,
                };
                let Some((s, d)) = got else {
                    return Ok(None);
                };
                if d.rows != args.rows || digests.first().is_some_and(|d0| *d0 != d) {
                    return Err(format!(
                        "compress: {} read different data with {} ({d:?} vs {:?}, {} rows wanted)",
                        id.name(),
                        comp.label(),
                        digests.first(),
                        args.rows
                    )
                    .into());
                }
                digests.push(d);
                Ok(Some(s))
            })?;
        }
    }

    if wants("insert") {
        let ins = [
            (Op::InsertText(1), "1 row/stmt"),
            (Op::InsertText(1000), "1000 rows/stmt (text)"),
            (Op::InsertBulk(1000), "1000 rows/batch (prepared bulk)"),
        ];
        for (op, label) in ins {
            let name = format!("insert {label}, {}", per_core(args.insert_conns));
            let p = plan(args.insert_conns, name.clone());
            r.case(name, Unit::Row, &[], |id| {
                if !id.supports(op) {
                    return Ok(None);
                }
                setup::admin(&url, "TRUNCATE TABLE bench_insert")?;
                timed(id, &p, op)
            })?;
        }
        setup::admin(&url, "TRUNCATE TABLE bench_insert")?;
    }

    if wants("pipeline") {
        let d = args.depth;
        // Neither comparison can pipeline: they run the pipelined case one
        // by one, and the table says so next to the case.
        let one_by_one: &[(DriverId, &str)] = &[
            (DriverId::Async, "mysql_async (no pipelining: one by one)"),
            (DriverId::Zero, "zero-mysql (no pipelining: one by one)"),
        ];
        for (label, op, ran_as) in [
            ("pipelined", Op::Pipeline(d), one_by_one),
            ("one by one", Op::Sequential(d), &[][..]),
        ] {
            let name = format!("{d} point selects {label}, {}", per_core(1));
            let p = plan(1, name.clone());
            r.case(name, Unit::Query, ran_as, |id| timed(id, &p, op))?;
        }
    }

    if wants("tables") {
        let count = || setup::count_tables(&url);
        for &jobs in &args.jobs {
            let conns = jobs.div_ceil(args.cores);
            let name = format!(
                "{} tables create+drop, {} jobs",
                args.tables,
                conns * args.cores
            );
            let p = plan(conns, name.clone());
            r.case(name, Unit::Job, &[], |id| {
                id.tables(&url, &p, args.tables, &count)
            })?;
        }
    }

    // The tokio and replicas workloads: tokio tasks calling a Client.
    let tokio_front = front::Front {
        tasks: args.tasks,
        conns: args.tokio_conns,
        workers: args
            .tokio_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        cores: args.cores,
        multiplex: args.multiplex,
    };
    if wants("tokio") {
        let f = tokio_front;
        let name = format!(
            "tokio: {} tasks, prepared point selects, {} conns",
            f.tasks, f.conns
        );
        let p = plan(f.conns, name.clone());
        let ran_as: &[(DriverId, &str)] = &[
            (DriverId::Uring, "mysql-uring (Client)"),
            (DriverId::Async, "mysql_async (Pool)"),
        ];
        r.case(name, Unit::Query, ran_as, |id| match id {
            DriverId::Uring => front::uring(&url, &p, &f).map(Some),
            DriverId::Async => front::mysql_async(&url, &p, &f).map(Some),
            _ => Ok(None),
        })?;
    }

    let mut failover_json = serde_json::Value::Null;
    let mut failover_text = String::new();
    if let Some(pair) = &pair {
        let f = tokio_front;
        let ran_as: &[(DriverId, &str)] = &[
            (DriverId::Uring, "Client"),
            (DriverId::Async, "Pool, primary"),
        ];
        for (label, url, reads) in [
            ("primary alone", &pair.primary, false),
            ("primary + replica (loadbalance)", &pair.balanced, false),
            (
                "replica (replication, Client::reads)",
                &pair.replication,
                true,
            ),
        ] {
            let name = format!(
                "replicas: {} tasks, prepared point selects, {} conns, {label}",
                f.tasks, f.conns
            );
            // Two servers: the one-server CPU column would mislead.
            let mut p = plan(f.conns, name.clone());
            p.server_pid = None;
            r.case(name, Unit::Query, ran_as, |id| match id {
                DriverId::Uring => front::uring_route(url, &p, &f, reads).map(Some),
                DriverId::Async => front::mysql_async(&pair.primary, &p, &f).map(Some),
                _ => Ok(None),
            })?;
        }
        let fo = replicas::failover(pair)?;
        failover_text = format!(
            "Failover (hosts=replication, one write per ms; the primary killed, kept down {:.0} ms, \
             restarted): writes failed for {:.0} ms in all, and succeeded again {:.0} ms after \
             the restart began (mariadbd start-up included); {} failed writes, the slowest \
             failing call {:.1} ms; reads on the replica meanwhile: {} ok, {} failed.\n",
            fo.kept_down.as_secs_f64() * 1e3,
            fo.writes_down.as_secs_f64() * 1e3,
            fo.back_after_restart.as_secs_f64() * 1e3,
            fo.failed_writes,
            fo.slowest_failure.as_secs_f64() * 1e3,
            fo.reads_ok,
            fo.reads_failed,
        );
        failover_json = json!({
            "writes_down_ms": fo.writes_down.as_secs_f64() * 1e3,
            "kept_down_ms": fo.kept_down.as_secs_f64() * 1e3,
            "back_after_restart_ms": fo.back_after_restart.as_secs_f64() * 1e3,
            "failed_writes": fo.failed_writes,
            "slowest_failure_ms": fo.slowest_failure.as_secs_f64() * 1e3,
            "reads_ok": fo.reads_ok,
            "reads_failed": fo.reads_failed,
        });
    }

    let cases = r.cases;
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let report = json!({
        "tool": "mysql-uring-bench",
        "server": server.version,
        "machine": {"cpu": machine, "cpus": cpus},
        "args": {
            "cores": args.cores, "secs": args.secs, "warmup_s": args.warmup, "rows": args.rows,
            "runs": args.runs, "pin_client": args.pin_client, "pin_server": args.pin_server,
            "drivers": args.drivers.iter().map(|d| d.name()).collect::<Vec<_>>(),
        },
        "syscalls_not_counted": syscalls_not_counted,
        "zstd_not_run": server.no_zstd,
        "cases": cases.iter().map(Case::json).collect::<Vec<_>>(),
        "failover": failover_json,
    });
    let text = serde_json::to_string_pretty(&report)?;
    if args.json.as_deref() == Some("-") {
        println!("{text}");
        return Ok(());
    }
    println!(
        "\nmysql-uring side by side on {} ({cpus} CPUs {machine}; client {}, server {}; medians; ratio = mysql-uring / that column)\n",
        server.version,
        if args.pin_client.is_empty() {
            "unpinned".to_string()
        } else {
            format!("pinned to {:?}", args.pin_client)
        },
        args.pin_server
            .map_or("unpinned".into(), |c| format!("pinned to CPU {c}")),
    );
    println!("{}", stats::table(&cases));
    if !failover_text.is_empty() {
        println!("{failover_text}");
    }
    let path = match &args.json {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let dir = target_dir();
            std::fs::create_dir_all(&dir)?;
            dir.join("bench-results.json")
        }
    };
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
