//! Integration tests against a real server: the private mariadbd started by
//! `mysql-uring-testserver`, or the server `MYSQL_URL` points at.
//!
//! One test binary, so the server starts once. Fault tests that kill the
//! server live in `tests/faults.rs`, a separate process with its own server.

use mysql_uring_testserver as support;

mod auth;
mod batch;
mod cancel;
mod client;
mod compress;
mod concurrency;
mod cursor;
mod errors;
mod hosts;
mod multiplex;
mod packets;
mod parity;
mod pipeline;
mod pool;
mod quoting;
mod results;
mod runtime;
mod session;
mod stmt;
mod stream;
mod tls;
mod transactions;
mod typed;
mod types;
mod values;

use std::future::Future;

use mysql_uring::{Connection, Opts, Result};

/// Runs an async test body on an io_uring runtime and fails on error.
pub fn run<F: Future<Output = Result<()>>>(f: F) {
    if let Err(e) = mysql_uring::start(f) {
        panic!("test failed: {e}\n{e:?}");
    }
}

/// A multi-threaded tokio runtime with two workers (the `Client` tests).
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Options for the test server as root.
pub fn opts() -> Opts {
    Opts::from_url(&support::test_url()).expect("test URL parses")
}

/// A fresh connection to the test server.
pub async fn conn() -> Result<Connection> {
    mysql_uring::connect(opts()).await
}

/// A database name unique to this test, created empty. On a server of the
/// user's own (`MYSQL_URL`), every one is dropped when the test binary
/// exits, so a run leaves nothing behind (the private server goes away whole).
pub async fn scratch_db(c: &mut Connection, name: &str) -> Result<String> {
    let db = format!("it_{name}");
    c.query_drop(&format!("DROP DATABASE IF EXISTS {db}"))
        .await?;
    c.query_drop(&format!("CREATE DATABASE {db}")).await?;
    c.select_db(&db).await?;
    if support::external() {
        let mut made = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
        if made.is_empty() {
            // SAFETY: a plain extern "C" function that never unwinds.
            unsafe { libc::atexit(drop_scratch_dbs) };
        }
        if !made.contains(&db) {
            made.push(db.clone());
        }
    }
    Ok(db)
}

static SCRATCH: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// At exit: drops the scratch databases made on an external server, from a
/// thread of its own (a fresh io_uring loop, whatever state this one is in).
extern "C" fn drop_scratch_dbs() {
    let dbs = std::mem::take(&mut *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()));
    let r = std::thread::spawn(move || {
        mysql_uring::start(async move {
            let mut c = conn().await?;
            for db in &dbs {
                c.query_drop(&format!("DROP DATABASE IF EXISTS {db}"))
                    .await?;
            }
            c.close().await.map(|()| dbs.len())
        })
    })
    .join();
    match r {
        Ok(Ok(n)) => eprintln!("dropped the {n} scratch database(s) this run made on MYSQL_URL"),
        Ok(Err(e)) => eprintln!("could not drop this run's scratch databases on MYSQL_URL: {e}"),
        Err(_) => eprintln!("could not drop this run's scratch databases on MYSQL_URL (panic)"),
    }
}

/// Polls `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE {filter}`
/// until it returns `want` (up to ~4 s); true if it did.
pub async fn wait_for_processlist(c: &mut Connection, filter: &str, want: i64) -> Result<bool> {
    let sql = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE {filter}");
    for _ in 0..200 {
        if c.query(&sql).await?[0].get::<i64>(0)? == want {
            return Ok(true);
        }
        mysql_uring::runtime::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(false)
}
