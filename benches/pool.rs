//! What the per-core pool costs: `pool.get()` + drop of an idle connection,
//! against a plain `&mut Connection`, and a point query through each.
//!
//! ```text
//! cargo bench --bench pool
//! cargo bench --bench pool -- --iters 2000000 --queries 20000
//! ```
//! Uses `MYSQL_URL`, or the private server from mysql-uring-testserver.

use mysql_uring_testserver as support;

use std::time::Instant;

use mysql_uring::{Opts, Pool, PoolOpts, SslMode, connect};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`; only runs under `cargo bench`
    }
    let iters = arg("--iters", 1_000_000);
    let queries = arg("--queries", 10_000);
    let opts = Opts::from_url(&support::test_url())
        .expect("URL")
        .ssl_mode(SslMode::Disabled);
    let r: mysql_uring::Result<()> = mysql_uring::start(async move {
        // No health check or idle timeout: measure the hand-out and return alone.
        let pool = Pool::new(
            opts.clone(),
            PoolOpts {
                max: 1,
                health_check_after: None,
                idle_timeout: None,
                ..Default::default()
            },
        )?;
        drop(pool.get().await?);
        let t = Instant::now();
        for _ in 0..iters {
            let c = pool.get().await?;
            std::hint::black_box(&c);
        }
        let get_ns = t.elapsed().as_nanos() as f64 / iters as f64;

        let mut plain = connect(opts).await?;
        let t = Instant::now();
        for _ in 0..queries {
            plain.query_drop("DO 1").await?;
        }
        let plain_us = t.elapsed().as_secs_f64() * 1e6 / queries as f64;
        let t = Instant::now();
        for _ in 0..queries {
            pool.get().await?.query_drop("DO 1").await?;
        }
        let pooled_us = t.elapsed().as_secs_f64() * 1e6 / queries as f64;
        println!("| what | per operation |");
        println!("|---|---:|");
        println!("| pool.get() + drop (idle connection, no checks) | {get_ns:.0} ns |");
        println!("| `DO 1` on a plain connection | {plain_us:.1} µs |");
        println!("| pool.get() + `DO 1` + drop | {pooled_us:.1} µs |");
        plain.close().await
    });
    if let Err(e) = r {
        eprintln!("pool bench failed: {e}");
        std::process::exit(1);
    }
}
