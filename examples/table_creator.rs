//! The table creator from the Connector/Python asyncio docs: create, then drop,
//! hundreds of tables — synchronously on one connection, with N jobs
//! (N connections working concurrently on one io_uring thread), and sharded
//! over C cores (C io_uring threads, `--jobs` connections on each, through
//! [`mysql_uring::Batch`]).
//!
//! The docs time 511 tables at 25.9 s synchronous, 19.1 s with 3 jobs and
//! 13.2 s with 12 jobs. Like the docs, each run asserts `SHOW TABLES` counts
//! 511 after creating and 0 after dropping.
//!
//! ```text
//! cargo run --release --example table_creator                      # sync, then 3 and 12 jobs
//! cargo run --release --example table_creator -- --jobs 12 --mode jobs
//! cargo run --release --example table_creator -- --tables 11 --jobs 3 --print-seq --batch
//! cargo run --release --example table_creator -- --mode cores --cores 1,2 --jobs 1,3,6 --pin
//! cargo run --release --example table_creator -- --shards mysql://u:p@db1/,mysql://u:p@db2/ --jobs 3
//! ```
//! Options: `--tables N` (511), `--jobs N[,N…]` (3,12), `--mode sync|jobs|cores|all` (all),
//! `--batch` (wait for each batch of N jobs like the docs, instead of letting each
//! connection pull the next table as soon as it is free), `--print-seq` (not in
//! cores mode), `--cores C[,C…]` (all CPUs) and `--pin` for the cores mode. In the
//! cores mode `--jobs N` means N connections **per core** (C×N in all), each
//! pulling the next table as soon as it is free, across cores.
//! `--shards URL,URL…` (mode `shards`): the tables split over several
//! servers by number (table i on shard i mod n, each in its own database
//! there), through [`mysql_uring::Batch::run_sharded`]: `--jobs N`
//! connections per core to every shard, all cores.
//! Uses `MYSQL_URL`, or starts a private MariaDB server. The tables live in
//! the example's own databases (`TABLE_CREATOR`, and `TABLE_CREATOR_S<n>` per
//! shard), dropped when the run ends, also after an error (and first, if an
//! earlier run left them behind).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use mysql_uring::runtime::Runtime;
use mysql_uring::{Batch, Connection, Opts, QueryResult, Result, connect};

const DATABASE: &str = "TABLE_CREATOR";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kernel {
    Create,
    Drop,
}

type ExecSeq = Rc<RefCell<Vec<String>>>;

/// Runs the kernel for table `i`: drop-if-exists then create, or drop.
async fn kernel(
    k: Kernel,
    seq: &ExecSeq,
    names: &[String],
    cnx: &mut Connection,
    i: usize,
) -> Result<bool> {
    if i >= names.len() {
        return Ok(false);
    }
    seq.borrow_mut().push(format!("start_{i}"));
    table_statements(k, cnx, &names[i]).await?;
    seq.borrow_mut().push(format!("end_{i}"));
    Ok(true)
}

/// The docs' statements for one table: drop it if it exists, then (for the
/// creator) create it.
async fn table_statements(k: Kernel, cnx: &mut Connection, name: &str) -> Result<()> {
    cnx.cmd_query(&format!("DROP TABLE IF EXISTS {name}"))
        .await?;
    if k == Kernel::Create {
        cnx.cmd_query(&format!(
            "CREATE TABLE IF NOT EXISTS {name} (
                dish_id INT(11) UNSIGNED AUTO_INCREMENT UNIQUE KEY,
                category TEXT,
                dish_name TEXT,
                price FLOAT,
                servings INT,
                order_time TIME
            )"
        ))
        .await?;
    }
    Ok(())
}

/// `SHOW TABLES` through `cmd_query` + `get_rows`, as in the docs.
async fn show_tables(cnx: &mut Connection) -> Result<usize> {
    match cnx.cmd_query("SHOW TABLES").await? {
        QueryResult::Rows(_) => Ok(cnx.get_rows().await?.len()),
        QueryResult::Done(_) => Ok(0),
    }
}

/// Everything on one connection, one table after another.
async fn main_sync(opts: &Opts, k: Kernel, names: &[String]) -> Result<(Vec<String>, usize)> {
    let seq = ExecSeq::default();
    let mut cnx = connect(opts).await?;
    cnx.cmd_query(&format!("CREATE DATABASE IF NOT EXISTS {DATABASE}"))
        .await?;
    cnx.cmd_query(&format!("USE {DATABASE}")).await?;
    for i in 0..names.len() {
        kernel(k, &seq, names, &mut cnx, i).await?;
    }
    let n = show_tables(&mut cnx).await?;
    cnx.close().await?;
    Ok((seq.take(), n))
}

/// `num_jobs` connections working concurrently.
async fn main_jobs(
    opts: &Opts,
    k: Kernel,
    names: Rc<Vec<String>>,
    num_jobs: usize,
    batch: bool,
) -> Result<(Vec<String>, usize)> {
    let seq = ExecSeq::default();
    {
        let mut cnx = connect(opts).await?;
        cnx.cmd_query(&format!("CREATE DATABASE IF NOT EXISTS {DATABASE}"))
            .await?;
        cnx.close().await?;
    }
    let opts = opts.clone().database(DATABASE);
    // Open the connections concurrently.
    let opening: Vec<_> = (0..num_jobs)
        .map(|_| {
            let o = opts.clone();
            mysql_uring::runtime::spawn(async move { connect(o).await })
        })
        .collect();
    let mut cnxs = Vec::with_capacity(num_jobs);
    for t in opening {
        cnxs.push(t.await.expect("connect task")?);
    }

    if batch {
        // The docs' approach: a batch of num_jobs tables, wait for all, then the next batch.
        let mut i = 0;
        loop {
            let tasks: Vec<_> = cnxs
                .drain(..)
                .enumerate()
                .map(|(idx, mut cnx)| {
                    let (seq, names) = (seq.clone(), names.clone());
                    mysql_uring::runtime::spawn(async move {
                        let r = kernel(k, &seq, &names, &mut cnx, i + idx).await;
                        (r, cnx)
                    })
                })
                .collect();
            let mut any = false;
            for t in tasks {
                let (r, cnx) = t.await.expect("job task");
                any |= r?;
                cnxs.push(cnx);
            }
            if !any {
                break;
            }
            i += num_jobs;
        }
    } else {
        // Each connection takes the next table as soon as it is free: no batch barrier.
        let next = Rc::new(Cell::new(0usize));
        let tasks: Vec<_> = cnxs
            .drain(..)
            .map(|mut cnx| {
                let (seq, names, next) = (seq.clone(), names.clone(), next.clone());
                mysql_uring::runtime::spawn(async move {
                    loop {
                        let i = next.get();
                        next.set(i + 1);
                        match kernel(k, &seq, &names, &mut cnx, i).await {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => return (Err(e), cnx),
                        }
                    }
                    (Ok(()), cnx)
                })
            })
            .collect();
        for t in tasks {
            let (r, cnx) = t.await.expect("job task");
            r?;
            cnxs.push(cnx);
        }
    }

    for cnx in cnxs {
        cnx.close().await?;
    }
    let mut cnx = connect(opts).await?;
    let n = show_tables(&mut cnx).await?;
    cnx.close().await?;
    Ok((seq.take(), n))
}

/// Creates (or drops) every table through the batch runner: `per_core`
/// connections on each of `rt`'s cores.
fn main_cores(
    rt: &Runtime,
    opts: &Opts,
    k: Kernel,
    names: &[String],
    per_core: usize,
) -> Result<usize> {
    let admin = opts.clone();
    rt.run_on(0, move |_| async move {
        let mut cnx = connect(admin).await?;
        cnx.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DATABASE}"))
            .await?;
        cnx.close().await
    })?;
    let opts = opts.clone().database(DATABASE);
    let results = Batch::new(opts.clone())?
        .connections_per_core(per_core)
        .stop_on_error(true)
        .run(
            rt,
            names.to_vec(),
            async move |cnx: &mut Connection, name: String| table_statements(k, cnx, &name).await,
        );
    for r in results {
        r?;
    }
    rt.run_on(0, move |_| async move {
        let mut cnx = connect(opts).await?;
        let n = show_tables(&mut cnx).await?;
        cnx.close().await?;
        Ok(n)
    })
}

/// The database of shard `s` (its own name, so two shards may share a server).
fn shard_db(s: usize) -> String {
    format!("{DATABASE}_S{s}")
}

/// Creates (or drops) every table over the shards: table `i` on shard
/// `i % shards.len()`, `per_core` connections per core to each shard.
/// Returns the tables `SHOW TABLES` counts, all shards added up.
fn main_shards(
    rt: &Runtime,
    shards: &[Opts],
    k: Kernel,
    names: &[String],
    per_core: usize,
) -> Result<usize> {
    let with_db: Vec<Opts> = shards
        .iter()
        .enumerate()
        .map(|(s, o)| o.clone().database(shard_db(s)))
        .collect();
    for (s, o) in shards.iter().enumerate() {
        let admin = o.clone();
        rt.run_on(0, move |_| async move {
            let mut cnx = connect(admin).await?;
            cnx.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {}", shard_db(s)))
                .await?;
            cnx.close().await
        })?;
    }
    let n = shards.len();
    let items: Vec<(usize, String)> = names.iter().cloned().enumerate().collect();
    let results = Batch::sharded(with_db.clone())?
        .connections_per_core(per_core)
        .stop_on_error(true)
        .run_sharded(
            rt,
            items,
            move |(i, _)| i % n,
            async move |cnx: &mut Connection, (_, name): (usize, String)| {
                table_statements(k, cnx, &name).await
            },
        );
    for r in results {
        r?;
    }
    let mut total = 0;
    for o in with_db {
        total += rt.run_on(0, move |_| async move {
            let mut cnx = connect(o).await?;
            let n = show_tables(&mut cnx).await?;
            cnx.close().await?;
            Ok(n)
        })?;
    }
    Ok(total)
}

/// CPU time (user + system) of this process so far, all threads; the private
/// server is a separate process and not counted.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

struct Args {
    tables: usize,
    jobs: Vec<usize>,
    cores: Vec<usize>,
    pin: bool,
    mode: String,
    batch: bool,
    print_seq: bool,
    shards: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        tables: 511,
        jobs: vec![3, 12],
        cores: vec![std::thread::available_parallelism().map_or(1, |n| n.get())],
        pin: false,
        mode: "all".into(),
        batch: false,
        print_seq: false,
        shards: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--tables" => a.tables = val("--tables").parse().expect("--tables takes a number"),
            "--jobs" => {
                a.jobs = val("--jobs")
                    .split(',')
                    .map(|j| j.parse().expect("--jobs takes numbers like 3,12"))
                    .collect();
                assert!(a.jobs.iter().all(|&j| j > 0), "--jobs must be at least 1");
            }
            "--cores" => {
                a.cores = val("--cores")
                    .split(',')
                    .map(|c| c.parse().expect("--cores takes numbers like 1,2"))
                    .collect();
                assert!(a.cores.iter().all(|&c| c > 0), "--cores must be at least 1");
            }
            "--pin" => a.pin = true,
            "--mode" => a.mode = val("--mode"),
            "--batch" => a.batch = true,
            "--shards" => {
                a.shards = val("--shards").split(',').map(str::to_string).collect();
                if a.mode == "all" {
                    a.mode = "shards".into();
                }
            }
            "--print-seq" => a.print_seq = true,
            "--help" | "-h" => {
                println!(
                    "usage: table_creator [--tables N] [--jobs N[,N...]] [--mode sync|jobs|cores|shards|all] \
                     [--batch] [--print-seq] [--cores C[,C...]] [--pin] [--shards URL,URL...]\n\
                     (in cores and shards modes --jobs is connections per core; MYSQL_URL or a private server)"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}; try --help"),
        }
    }
    assert!(
        ["sync", "jobs", "cores", "shards", "all"].contains(&a.mode.as_str()),
        "--mode is sync, jobs, cores, shards or all"
    );
    a
}

fn main() -> Result<()> {
    let a = args();
    // Your server, or else a private one started for this run.
    let url =
        std::env::var("MYSQL_URL").unwrap_or_else(|_| mysql_uring_testserver::server().root_url());
    run(&a, &url)
}

/// The servers of the shards mode: those given, or the one server twice
/// (two databases on it).
fn shard_urls(a: &Args, url: &str) -> Vec<String> {
    if a.shards.is_empty() {
        vec![url.to_string(), url.to_string()]
    } else {
        a.shards.clone()
    }
}

/// The databases this run works in, each with its server's URL.
fn databases(a: &Args, url: &str) -> Vec<(String, String)> {
    if a.mode == "shards" {
        shard_urls(a, url)
            .into_iter()
            .enumerate()
            .map(|(s, u)| (u, shard_db(s)))
            .collect()
    } else {
        vec![(url.to_string(), DATABASE.to_string())]
    }
}

/// Drops database `db` on the server of `url`; true if it was there.
fn drop_database(url: &str, db: &str) -> Result<bool> {
    mysql_uring::start(async {
        let mut cnx = connect(url).await?;
        let there = cnx
            .exec_first(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (db,),
            )
            .await?
            .is_some();
        if there {
            cnx.query_drop(&format!("DROP DATABASE IF EXISTS {db}"))
                .await?;
        }
        cnx.close().await?;
        Ok(there)
    })
}

/// The example, with its databases dropped afterwards however it ends (an
/// error, or a failed check), and first if an earlier run left them.
fn run(a: &Args, url: &str) -> Result<()> {
    let dbs = databases(a, url);
    for (u, db) in &dbs {
        if drop_database(u, db)? {
            println!("dropped database {db}, left over from an earlier run");
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| creator(a, url)));
    let mut cleanup = Ok(());
    for (u, db) in &dbs {
        match drop_database(u, db) {
            Ok(true) => println!("dropped database {db}: the server is as it was"),
            Ok(false) => {}
            Err(e) => {
                eprintln!("could not drop database {db}: {e}; drop it by hand");
                cleanup = Err(e);
            }
        }
    }
    match outcome {
        Ok(r) => r.and(cleanup),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Creates and drops the tables in every mode asked for, then prints the summary.
fn creator(a: &Args, url: &str) -> Result<()> {
    let opts = Opts::from_url(url)?;
    let mut summary = mysql_uring::start(async {
        let mut summary = Vec::new();
        if a.mode == "all" || a.mode == "sync" {
            let names: Vec<String> = (0..a.tables).map(|n| format!("table_sync_{n}")).collect();
            let (clock, cpu0) = (Instant::now(), cpu_secs());
            println!("-------------------- SYNC CREATOR --------------------");
            let (seq, n) = main_sync(&opts, Kernel::Create, &names).await?;
            assert_eq!(n, a.tables, "SHOW TABLES after creating");
            if a.print_seq {
                println!("{seq:?}");
            }
            println!("-------------------- SYNC DROPPER --------------------");
            let (seq, n) = main_sync(&opts, Kernel::Drop, &names).await?;
            assert_eq!(n, 0, "SHOW TABLES after dropping");
            if a.print_seq {
                println!("{seq:?}");
            }
            let t = clock.elapsed().as_secs_f64();
            println!("Elapsed time: {t:0.2}");
            summary.push((
                "sync (1 connection)".to_string(),
                t,
                cpu_secs() - cpu0,
                Some(25.86),
            ));
        }
        if a.mode == "all" || a.mode == "jobs" {
            let names = Rc::new(
                (0..a.tables)
                    .map(|n| format!("table_async_{n}"))
                    .collect::<Vec<_>>(),
            );
            for &jobs in &a.jobs {
                let (clock, cpu0) = (Instant::now(), cpu_secs());
                println!("-------------------- ASYNC CREATOR ({jobs} jobs) --------------------");
                let (seq, n) =
                    main_jobs(&opts, Kernel::Create, names.clone(), jobs, a.batch).await?;
                assert_eq!(n, a.tables, "SHOW TABLES after creating");
                if a.print_seq {
                    println!("{seq:?}");
                }
                println!("-------------------- ASYNC DROPPER ({jobs} jobs) --------------------");
                let (seq, n) = main_jobs(&opts, Kernel::Drop, names.clone(), jobs, a.batch).await?;
                assert_eq!(n, 0, "SHOW TABLES after dropping");
                if a.print_seq {
                    println!("{seq:?}");
                }
                let t = clock.elapsed().as_secs_f64();
                println!("Elapsed time: {t:0.2}");
                let docs = match jobs {
                    3 => Some(19.09),
                    12 => Some(13.15),
                    _ => None,
                };
                let how = if a.batch { "batches" } else { "pull" };
                summary.push((format!("{jobs} jobs ({how})"), t, cpu_secs() - cpu0, docs));
            }
        }
        Ok::<_, mysql_uring::Error>(summary)
    })?;
    if a.mode == "all" || a.mode == "cores" {
        let names: Vec<String> = (0..a.tables).map(|n| format!("table_cores_{n}")).collect();
        for &cores in &a.cores {
            let rt = Runtime::builder().cores(cores).pin(a.pin).build()?;
            println!(
                "{cores} cores, CPUs {:?}, io_uring setup {:?}",
                (0..cores).map(|i| rt.cpu(i)).collect::<Vec<_>>(),
                rt.ring_setup(0)
            );
            for &jobs in &a.jobs {
                let (clock, cpu0) = (Instant::now(), cpu_secs());
                let how = format!(
                    "{cores} cores x {jobs} jobs{}",
                    if a.pin { ", pinned" } else { "" }
                );
                println!("-------------------- SHARDED CREATOR ({how}) --------------------");
                let n = main_cores(&rt, &opts, Kernel::Create, &names, jobs)?;
                assert_eq!(n, a.tables, "SHOW TABLES after creating");
                println!("-------------------- SHARDED DROPPER ({how}) --------------------");
                let n = main_cores(&rt, &opts, Kernel::Drop, &names, jobs)?;
                assert_eq!(n, 0, "SHOW TABLES after dropping");
                let t = clock.elapsed().as_secs_f64();
                println!("Elapsed time: {t:0.2}");
                summary.push((
                    format!("{how} ({} connections)", cores * jobs),
                    t,
                    cpu_secs() - cpu0,
                    None,
                ));
            }
        }
    }
    if a.mode == "shards" {
        let shards = shard_urls(a, url)
            .iter()
            .map(|u| Opts::from_url(u))
            .collect::<Result<Vec<_>>>()?;
        let names: Vec<String> = (0..a.tables).map(|n| format!("table_shard_{n}")).collect();
        let rt = Runtime::builder().pin(a.pin).build()?;
        for &jobs in &a.jobs {
            let (clock, cpu0) = (Instant::now(), cpu_secs());
            let how = format!(
                "{} shards x {} cores x {jobs} jobs",
                shards.len(),
                rt.cores()
            );
            println!("-------------------- SHARDED OVER SERVERS ({how}) --------------------");
            let n = main_shards(&rt, &shards, Kernel::Create, &names, jobs)?;
            assert_eq!(n, a.tables, "SHOW TABLES after creating, all shards");
            let n = main_shards(&rt, &shards, Kernel::Drop, &names, jobs)?;
            assert_eq!(n, 0, "SHOW TABLES after dropping, all shards");
            let t = clock.elapsed().as_secs_f64();
            println!("Elapsed time: {t:0.2}");
            let conns = shards.len() * rt.cores() * jobs;
            summary.push((
                format!("{how} ({conns} connections)"),
                t,
                cpu_secs() - cpu0,
                None,
            ));
        }
    }
    println!("\n{} tables created and dropped", a.tables);
    println!("| run | elapsed (s) | client CPU (s) | Connector/Python docs, 511 tables (s) |");
    println!("|---|---|---|---|");
    for (name, t, cpu, docs) in summary.drain(..) {
        let d = docs.map_or("-".to_string(), |d| format!("{d:.2}"));
        println!("| {name} | {t:.2} | {cpu:.2} | {d} |");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exists(url: &str, db: &str) -> bool {
        mysql_uring::start(async {
            let mut cnx = connect(url).await?;
            let there = cnx
                .exec_first(
                    "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                    (db,),
                )
                .await?
                .is_some();
            cnx.close().await?;
            Ok::<_, mysql_uring::Error>(there)
        })
        .unwrap()
    }

    #[test]
    fn every_mode_leaves_nothing_behind_even_a_leftover_of_an_earlier_run() {
        let url = mysql_uring_testserver::test_url();
        // What a run stopped midway leaves: the database and some tables.
        mysql_uring::start(async {
            let mut cnx = connect(url.as_str()).await?;
            cnx.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DATABASE}"))
                .await?;
            cnx.query_drop(&format!(
                "CREATE TABLE IF NOT EXISTS {DATABASE}.table_sync_0 (id INT)"
            ))
            .await?;
            cnx.close().await
        })
        .unwrap();
        let small = |mode: &str| Args {
            tables: 5,
            jobs: vec![2],
            cores: vec![1],
            pin: false,
            mode: mode.into(),
            batch: false,
            print_seq: false,
            shards: Vec::new(),
        };
        for mode in ["all", "shards"] {
            run(&small(mode), &url).unwrap();
            for db in [DATABASE.to_string(), shard_db(0), shard_db(1)] {
                assert!(!exists(&url, &db), "{mode}: database {db} left behind");
            }
        }
    }
}
