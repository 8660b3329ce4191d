//! What a simulated schedule does: a few tasks, each with its own
//! connection, running a random plan of commands against the simulated
//! server, some of them cut at a random point (a dropped future, a
//! timeout), and the ledger that says what each write's fate must be.
//!
//! The checks made here, on every schedule:
//! - every result is its own command's: echoes return their token, a
//!   prepared statement's value has the type its parameter gives it,
//!   streams return their sequence in order, reads return the bytes written;
//! - every write the driver acknowledged is in the server's table exactly
//!   once, every write it reported failed (and not commit-unknown) is not;
//! - errors are of the kinds the injected faults can cause.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use mysql_uring::Value;
use mysql_uring::{Connection, Error, ErrorKind, Opts};

/// A small generator for the plan (its own stream: the plan does not
/// depend on what the kernel drew).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0xD1B5_4A32_D192_ED03)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// One command of a plan.
#[derive(Debug, Clone)]
pub enum Step {
    /// `SELECT <token>`.
    Echo(i64),
    /// `SELECT ? + 1, SLEEP(?)` with an integer or a double.
    Typed {
        int: bool,
        x: i64,
        sleep_ms: u64,
    },
    /// An autocommit INSERT (text or prepared).
    Insert {
        id: i64,
        len: usize,
        prepared: bool,
    },
    /// BEGIN, these INSERTs, COMMIT.
    Tx {
        ids: Vec<i64>,
        len: usize,
    },
    /// `SELECT v FROM t WHERE id = ?` of an acknowledged row.
    ReadBack,
    /// `SELECT seq FROM seq_1_to_<n>`, row by row.
    Stream(u64),
    /// Echoes and INSERTs sent together.
    Pipeline {
        stages: Vec<(i64, usize)>,
    },
    /// `SELECT SLEEP(s)`.
    Sleep(u64),
    /// A statement the server rejects (1064): the connection stays usable.
    Bad,
    Ping,
    /// `LOAD DATA LOCAL INFILE` of these rows, from a reader.
    Load {
        ids: Vec<i64>,
    },
    /// `COM_CHANGE_USER` to the same user: the session starts over.
    ChangeUser,
}

/// How a step is cut short.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// Dropped after this many polls.
    Polls(u32),
    /// Dropped when this much virtual time has passed.
    After(Duration),
}

#[derive(Debug, Clone)]
pub struct TaskPlan {
    pub steps: Vec<(Step, Option<Cut>)>,
    pub query_timeout: Option<Duration>,
    pub unix: bool,
    /// Takes a connection from the schedule's shared pool for every step
    /// (and gives it back, settled by the pool when cut), instead of
    /// keeping one of its own.
    pub pooled: bool,
    /// How long an abandoned statement may run before `KILL QUERY`.
    pub kill_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub tasks: Vec<TaskPlan>,
}

fn payload(id: i64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[(i + id as usize) % 36])
        .collect()
}

impl Plan {
    /// The plan of schedule `seed`.
    pub fn from_seed(seed: u64, max_ops: usize) -> Plan {
        let mut r = Rng::new(seed);
        let mut next_id = 1i64;
        let mut id = || {
            next_id += 1;
            next_id
        };
        let ntasks = 1 + r.below(4) as usize;
        let huge = r.chance(1, 50);
        let cuts = r.chance(2, 3);
        let mut tasks = Vec::new();
        for t in 0..ntasks {
            let n = 1 + r.below(max_ops as u64) as usize;
            let mut steps = Vec::new();
            if huge && t == 0 {
                // 100 INSERTs of 80 KB in one pipeline: 8 MB in one write.
                let stages = (0..100).map(|_| (id(), 80_000)).collect();
                steps.push((Step::Pipeline { stages }, None));
            }
            for _ in 0..n {
                let step = match r.below(20) {
                    0..=3 => Step::Echo(r.below(1 << 40) as i64),
                    4..=6 => Step::Typed {
                        int: r.chance(1, 2),
                        x: r.below(1000) as i64,
                        sleep_ms: if r.chance(1, 3) { r.below(20) } else { 0 },
                    },
                    7..=9 => Step::Insert {
                        id: id(),
                        len: [1, 100, 5000][r.below(3) as usize],
                        prepared: r.chance(1, 2),
                    },
                    10..=11 => Step::Tx {
                        ids: (0..1 + r.below(3)).map(|_| id()).collect(),
                        len: 20,
                    },
                    12 => Step::ReadBack,
                    13..=14 => Step::Stream([1, 10, 300][r.below(3) as usize]),
                    15..=16 => {
                        let stages = (0..1 + r.below(6))
                            .map(|_| {
                                if r.chance(1, 2) {
                                    (-(r.below(1 << 40) as i64) - 1, 0)
                                } else {
                                    (id(), [1, 3000][r.below(2) as usize])
                                }
                            })
                            .collect();
                        Step::Pipeline { stages }
                    }
                    17 => Step::Sleep(if r.chance(1, 4) {
                        100 + r.below(200)
                    } else {
                        r.below(30)
                    }),
                    18 => match r.below(4) {
                        0 => Step::Load {
                            ids: (0..1 + r.below(4)).map(|_| id()).collect(),
                        },
                        1 => Step::ChangeUser,
                        _ => Step::Bad,
                    },
                    _ => Step::Ping,
                };
                let cut = if cuts && r.chance(1, 4) {
                    Some(if r.chance(1, 2) {
                        Cut::Polls(1 + r.below(12) as u32)
                    } else {
                        Cut::After(Duration::from_micros(r.below(30_000)))
                    })
                } else {
                    None
                };
                steps.push((step, cut));
            }
            tasks.push(TaskPlan {
                steps,
                query_timeout: r
                    .chance(1, 5)
                    .then(|| Duration::from_millis(1 + r.below(25))),
                unix: r.chance(1, 3),
                pooled: r.chance(1, 3),
                kill_grace: Duration::from_millis([0, 2, 50][r.below(3) as usize]),
            });
        }
        Plan { tasks }
    }
}

/// What the workload knows about each write, and what went wrong.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Acknowledged: must be in the table exactly once.
    pub acked: BTreeMap<i64, Vec<u8>>,
    /// Fate unknown (commit-unknown, or its future was dropped).
    pub unknown: BTreeMap<i64, Vec<u8>>,
    /// Reported failed: must not be in the table.
    pub failed: BTreeSet<i64>,
    /// Invariant violations seen while running, with a category.
    pub problems: Vec<(&'static str, String)>,
    pub ops: u64,
    pub errors: u64,
}

impl Ledger {
    fn problem(&mut self, cat: &'static str, msg: String) {
        self.problems.push((cat, msg));
    }

    /// Checks the server's table against what the driver said.
    pub fn check(&mut self, committed: &BTreeMap<i64, Vec<u8>>, log: &[(u32, i64)]) {
        let mut count: BTreeMap<i64, usize> = BTreeMap::new();
        for (_, id) in log {
            *count.entry(*id).or_default() += 1;
        }
        for (id, v) in &self.acked {
            match committed.get(id) {
                None => self.problems.push((
                    "lost-write",
                    format!("write {id} was acknowledged but is not in the table"),
                )),
                Some(got) if got != v => self.problems.push((
                    "wrong-write",
                    format!(
                        "write {id} stored {} bytes that differ from the ones sent",
                        got.len()
                    ),
                )),
                _ => {}
            }
            if count.get(id).copied().unwrap_or(0) != 1 {
                self.problems.push((
                    "duplicate-write",
                    format!(
                        "write {id} was applied {} times",
                        count.get(id).copied().unwrap_or(0)
                    ),
                ));
            }
        }
        for id in &self.failed {
            if committed.contains_key(id) {
                self.problems.push((
                    "unreported-write",
                    format!(
                        "write {id} was reported failed (not commit-unknown) but the server applied it"
                    ),
                ));
            }
        }
        for id in committed.keys() {
            if !self.acked.contains_key(id)
                && !self.unknown.contains_key(id)
                && !self.failed.contains(id)
            {
                self.problems
                    .push(("phantom-write", format!("row {id} was never written")));
            }
        }
    }
}

/// Polls `fut` at most `polls` times, or until `after` passes: `None` when cut.
async fn cut<F: Future>(fut: F, how: Option<Cut>) -> Option<F::Output> {
    match how {
        None => Some(fut.await),
        Some(Cut::After(d)) => mysql_uring::runtime::timeout(d, fut).await.ok(),
        Some(Cut::Polls(n)) => {
            struct Polls<F> {
                fut: Pin<Box<F>>,
                left: u32,
            }
            impl<F: Future> Future for Polls<F> {
                type Output = Option<F::Output>;
                fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                    if self.left == 0 {
                        return Poll::Ready(None);
                    }
                    self.left -= 1;
                    match self.fut.as_mut().poll(cx) {
                        Poll::Ready(v) => Poll::Ready(Some(v)),
                        Poll::Pending if self.left == 0 => Poll::Ready(None),
                        Poll::Pending => Poll::Pending,
                    }
                }
            }
            Polls {
                fut: Box::pin(fut),
                left: n,
            }
            .await
        }
    }
}

/// The kinds of error a fault (or a cut, or a timeout) can explain.
fn explained(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Io
            | ErrorKind::Broken
            | ErrorKind::Timeout
            | ErrorKind::TransactionLost
            | ErrorKind::Unavailable
    ) || e.code() == Some(1317)
}

/// The options every task adds to the simulated server's.
pub fn task_opts(opts: Opts, plan: &TaskPlan) -> Opts {
    opts.query_timeout(plan.query_timeout)
        .local_infile_reader(true)
        .drain_timeout(Duration::from_millis(200))
        .kill_grace(plan.kill_grace)
}

/// Runs one task's plan on connections from `pool`.
pub async fn run_pooled_task(
    plan: TaskPlan,
    pool: mysql_uring::Pool,
    ledger: Rc<RefCell<Ledger>>,
    faults: bool,
) {
    for (step, how) in plan.steps {
        ledger.borrow_mut().ops += 1;
        let writes = step_writes(&step);
        let r = cut(
            async {
                let mut c = pool.get().await?;
                run_step(&mut c, &step, &ledger).await
            },
            how,
        )
        .await;
        record(
            &ledger,
            &step,
            writes,
            r,
            plan.query_timeout.is_some(),
            faults,
        );
    }
}

/// What a step's result says about its writes, and whether its error is
/// one the faults explain.
fn record(
    ledger: &RefCell<Ledger>,
    step: &Step,
    writes: Vec<(i64, Vec<u8>)>,
    r: Option<mysql_uring::Result<()>>,
    timeouts: bool,
    faults: bool,
) {
    let mut l = ledger.borrow_mut();
    match r {
        None => {
            // Cut: every write of the step has an unknown fate.
            for (id, v) in writes {
                l.unknown.insert(id, v);
            }
        }
        Some(Ok(())) => {}
        Some(Err(e)) => {
            l.errors += 1;
            let timed = timeouts && e.kind() == ErrorKind::Timeout;
            if !(timed || faults && explained(&e)) {
                l.problem("error", format!("{step:?} failed: {e:?}"));
            }
            for (id, v) in writes {
                if l.acked.contains_key(&id) {
                    continue;
                }
                if e.is_commit_unknown() {
                    l.unknown.insert(id, v);
                } else if !l.unknown.contains_key(&id) {
                    l.failed.insert(id);
                }
            }
        }
    }
}

/// Runs one task's plan.
pub async fn run_task(plan: TaskPlan, opts: Opts, ledger: Rc<RefCell<Ledger>>, faults: bool) {
    let opts = task_opts(opts, &plan);
    let mut conn: Option<Connection> = None;
    let failed_connects = Cell::new(0);
    for (step, how) in plan.steps {
        if conn.as_ref().is_none_or(Connection::is_broken) {
            conn = None;
            match mysql_uring::connect(opts.clone()).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    let mut l = ledger.borrow_mut();
                    l.errors += 1;
                    if !faults || !explained(&e) {
                        l.problem("connect", format!("connect failed: {e:?}"));
                    }
                    failed_connects.set(failed_connects.get() + 1);
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        ledger.borrow_mut().ops += 1;
        let writes = step_writes(&step);
        let r = cut(run_step(c, &step, &ledger), how).await;
        record(
            &ledger,
            &step,
            writes,
            r,
            plan.query_timeout.is_some(),
            faults,
        );
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

/// The writes a step attempts: (id, bytes).
fn step_writes(step: &Step) -> Vec<(i64, Vec<u8>)> {
    match step {
        Step::Insert { id, len, .. } => vec![(*id, payload(*id, *len))],
        Step::Tx { ids, len } => ids.iter().map(|&id| (id, payload(id, *len))).collect(),
        Step::Pipeline { stages } => stages
            .iter()
            .filter(|(id, _)| *id > 0)
            .map(|&(id, len)| (id, payload(id, len)))
            .collect(),
        Step::Load { ids } => ids.iter().map(|&id| (id, payload(id, 8))).collect(),
        _ => Vec::new(),
    }
}

fn insert_sql(id: i64, len: usize) -> String {
    format!(
        "INSERT INTO t (id, v) VALUES ({id}, '{}')",
        String::from_utf8(payload(id, len)).expect("ascii")
    )
}

/// Records the stages of a pipeline or a multiplexed batch: INSERTs
/// (id > 0) to the ledger, echoes (`SELECT id + plus`) checked. The first
/// error is the step's.
fn stage_results(
    ledger: &RefCell<Ledger>,
    stages: &[(i64, usize)],
    results: Vec<mysql_uring::Result<mysql_uring::StageOutput>>,
    how: &str,
    plus: i64,
) -> mysql_uring::Result<()> {
    let mut first_err = None;
    for (&(id, len), r) in stages.iter().zip(results) {
        match r {
            Ok(out) if id > 0 => {
                ledger.borrow_mut().acked.insert(id, payload(id, len));
                if out.outcome.affected_rows != 1 {
                    ledger.borrow_mut().problem(
                        "wrong-result",
                        format!("{how} INSERT {id} affected {}", out.outcome.affected_rows),
                    );
                }
            }
            Ok(out) => {
                let got: Vec<i64> = out
                    .rows
                    .iter()
                    .map(|r| r.get(0))
                    .collect::<Result<_, _>>()?;
                if got != [id + plus] {
                    ledger.borrow_mut().problem(
                        "wrong-result",
                        format!("{how} SELECT {id} + {plus} returned {got:?}"),
                    );
                }
            }
            Err(e) => {
                if id > 0 {
                    let mut l = ledger.borrow_mut();
                    if e.is_commit_unknown() {
                        l.unknown.insert(id, payload(id, len));
                    } else {
                        l.failed.insert(id);
                    }
                }
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// One step. Wrong results go to the ledger's problems; errors are returned.
async fn run_step(
    c: &mut Connection,
    step: &Step,
    ledger: &RefCell<Ledger>,
) -> mysql_uring::Result<()> {
    let wrong = |what: String| ledger.borrow_mut().problem("wrong-result", what);
    match step {
        Step::Echo(token) => {
            let rows = c.query(&format!("SELECT {token}")).await?;
            let got: Vec<i64> = rows.iter().map(|r| r.get(0)).collect::<Result<_, _>>()?;
            if got != [*token] {
                wrong(format!("SELECT {token} returned {got:?}"));
            }
        }
        Step::Typed { int, x, sleep_ms } => {
            let secs = *sleep_ms as f64 / 1000.0;
            let rows = if *int {
                c.exec("SELECT ? + 1, SLEEP(?)", (*x, secs)).await?
            } else {
                c.exec("SELECT ? + 1, SLEEP(?)", (*x as f64 + 0.5, secs))
                    .await?
            };
            let v: Vec<Value> = rows.iter().map(|r| r.get(0)).collect::<Result<_, _>>()?;
            let ok = match (int, v.as_slice()) {
                (true, [Value::Int(n)]) => *n == x + 1,
                (false, [Value::Double(d)]) => *d == *x as f64 + 1.5,
                _ => false,
            };
            if !ok {
                wrong(format!(
                    "SELECT ? + 1 with {} {x} returned {v:?}",
                    if *int { "integer" } else { "double" }
                ));
            }
        }
        Step::Insert { id, len, prepared } => {
            let o = if *prepared {
                c.exec_drop(
                    "INSERT INTO t (id, v) VALUES (?, ?)",
                    (*id, payload(*id, *len)),
                )
                .await?
            } else {
                c.query_drop(&insert_sql(*id, *len)).await?
            };
            if o.affected_rows != 1 {
                wrong(format!("INSERT {id} affected {} rows", o.affected_rows));
            }
            ledger.borrow_mut().acked.insert(*id, payload(*id, *len));
        }
        Step::Tx { ids, len } => {
            let mut tx = c.begin().await?;
            for &id in ids {
                tx.query_drop(&insert_sql(id, *len)).await?;
            }
            tx.commit().await?;
            let mut l = ledger.borrow_mut();
            for &id in ids {
                l.acked.insert(id, payload(id, *len));
            }
        }
        Step::ReadBack => {
            let pick = {
                let l = ledger.borrow();
                l.acked.iter().next_back().map(|(k, v)| (*k, v.clone()))
            };
            if let Some((id, v)) = pick {
                let rows = c.exec("SELECT v FROM t WHERE id = ?", (id,)).await?;
                let got: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect::<Result<_, _>>()?;
                if got != [v] {
                    wrong(format!(
                        "reading back write {id} gave {} rows / other bytes",
                        got.len()
                    ));
                }
            }
        }
        Step::Stream(n) => {
            c.cmd_query(&format!("SELECT seq FROM seq_1_to_{n}"))
                .await?;
            let mut i = 0u64;
            while let Some(row) = c.next_row().await? {
                i += 1;
                let v: u64 = row.get(0)?;
                if v != i {
                    wrong(format!("row {i} of seq_1_to_{n} was {v}"));
                    break;
                }
            }
            if i != *n
                && !ledger
                    .borrow()
                    .problems
                    .iter()
                    .any(|p| p.0 == "wrong-result")
            {
                wrong(format!("seq_1_to_{n} gave {i} rows"));
            }
        }
        Step::Pipeline { stages }
            if stages.len() % 2 == 0 && stages.iter().all(|s| s.1 <= 3000) =>
        {
            // Half the pipelines go as multiplexed prepared executes (what
            // a Client core does with ClientBuilder::multiplex).
            let plans: Vec<(&str, Vec<Value>)> = stages
                .iter()
                .map(|&(id, len)| {
                    if id > 0 {
                        (
                            "INSERT INTO t (id, v) VALUES (?, ?)",
                            vec![Value::Int(id), Value::Bytes(payload(id, len))],
                        )
                    } else {
                        (
                            "SELECT ? + 1, SLEEP(?)",
                            vec![Value::Int(id), Value::Double(0.0)],
                        )
                    }
                })
                .collect();
            let results = mysql_uring::sim::exec_multiplexed(c, &plans).await;
            stage_results(ledger, stages, results, "multiplexed", 1)?;
        }
        Step::Pipeline { stages } => {
            let mut p = c.pipeline();
            for &(id, len) in stages {
                p = if id > 0 {
                    p.query(insert_sql(id, len))
                } else {
                    p.query(format!("SELECT {id}"))
                };
            }
            let results = p.run().await?;
            stage_results(ledger, stages, results, "pipelined", 0)?;
        }
        Step::Sleep(ms) => {
            let rows = c
                .query(&format!("SELECT SLEEP({})", *ms as f64 / 1000.0))
                .await?;
            if rows.len() != 1 {
                wrong(format!("SELECT SLEEP returned {} rows", rows.len()));
            }
        }
        Step::Bad => match c.query("SELEKT 1").await {
            Err(e) if e.code() == Some(1064) => {}
            Err(e) => return Err(e),
            Ok(_) => wrong("SELEKT 1 succeeded".into()),
        },
        Step::Ping => c.ping().await?,
        Step::Load { ids } => {
            let mut data = Vec::new();
            for &id in ids {
                data.extend_from_slice(format!("{id},").as_bytes());
                data.extend_from_slice(&payload(id, 8));
                data.push(b'\n');
            }
            let o = c
                .load_local_data(
                    "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t FIELDS TERMINATED BY ','",
                    &data[..],
                )
                .await?;
            if o.affected_rows != ids.len() as u64 {
                wrong(format!(
                    "LOAD DATA of {} rows affected {}",
                    ids.len(),
                    o.affected_rows
                ));
            }
            let mut l = ledger.borrow_mut();
            for &id in ids {
                l.acked.insert(id, payload(id, 8));
            }
        }
        Step::ChangeUser => {
            c.change_user(SIM_USER, SIM_PASSWORD, None).await?;
            // The session starts over, and works.
            let rows = c.query("SELECT 77").await?;
            let got: Vec<i64> = rows.iter().map(|r| r.get(0)).collect::<Result<_, _>>()?;
            if got != [77] {
                wrong(format!("after change_user, SELECT 77 returned {got:?}"));
            }
        }
    }
    Ok(())
}

/// The simulated server's account (its `Config`'s defaults).
const SIM_USER: &str = "sim";
const SIM_PASSWORD: &str = "simpass";
