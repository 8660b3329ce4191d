//! The batch runner's throughput and client CPU per item: N point selects
//! (one `SELECT` by primary key per item) over C cores x K connections.
//!
//! ```text
//! cargo bench --bench batch                              # 1 and 2 cores x 1, 8, 32
//! cargo bench --bench batch -- --items 200000 --pin
//! ```
//! Uses `MYSQL_URL`, or the private server from mysql-uring-testserver. Plain TCP.

use mysql_uring_testserver as support;

use std::time::Instant;

use mysql_uring::runtime::Runtime;
use mysql_uring::{Batch, Connection, Opts, SslMode, connect};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

/// User + system CPU of this process (all threads; the server is another process).
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`; only runs under `cargo bench`
    }
    let items = arg("--items", 100_000) as usize;
    let pin = std::env::args().any(|a| a == "--pin");
    let opts = Opts::from_url(&support::test_url())
        .expect("URL")
        .ssl_mode(SslMode::Disabled);
    let setup = opts.clone();
    mysql_uring::start(async move {
        let mut c = connect(setup).await?;
        c.query_drop("CREATE DATABASE IF NOT EXISTS bench").await?;
        c.query_drop("CREATE TABLE IF NOT EXISTS bench.batch (id INT PRIMARY KEY, v VARCHAR(20))")
            .await?;
        c.query_drop(
            "INSERT IGNORE INTO bench.batch SELECT seq, CONCAT('v', seq) FROM seq_0_to_999",
        )
        .await?;
        c.close().await
    })
    .expect("bench table");
    println!(
        "{items} point selects per run{}",
        if pin { ", cores pinned" } else { "" }
    );
    println!("| cores x connections | items/s | client CPU µs/item |");
    println!("|---|---:|---:|");
    for cores in [1usize, 2] {
        let rt = Runtime::builder()
            .cores(cores)
            .pin(pin)
            .build()
            .expect("runtime");
        for per_core in [1usize, 8, 32] {
            let batch = Batch::new(opts.clone())
                .expect("opts")
                .connections_per_core(per_core);
            let (t, cpu) = (Instant::now(), cpu_secs());
            let results = batch.run(
                &rt,
                (0..items).collect(),
                async |c: &mut Connection, i: usize| {
                    let rows = c
                        .query(&format!(
                            "SELECT v FROM bench.batch WHERE id = {}",
                            i % 1000
                        ))
                        .await?;
                    Ok(rows.len())
                },
            );
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
            let ok = results.iter().filter(|r| matches!(r, Ok(1))).count();
            assert_eq!(ok, items, "every item found its row");
            println!(
                "| {cores} x {per_core} | {:.0} | {:.1} |",
                items as f64 / secs,
                cpu * 1e6 / items as f64
            );
        }
    }
}
