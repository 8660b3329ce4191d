//! Pipelining against one connection: 16 point selects per round trip versus
//! the same 16 queries one after another, on one io_uring thread.
//!
//! ```text
//! cargo bench --bench pipeline                 # 3 s per case
//! cargo bench --bench pipeline -- --secs 10 --depth 32
//! ```
//! Uses `MYSQL_URL`, or the private server from tests/support. Plain TCP
//! (`ssl_mode=disabled`) so the figure is the protocol's, not TLS's.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use mysql_uring::{Opts, SslMode, connect};

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
    let secs = arg("--secs", 3);
    let depth = arg("--depth", 16) as usize;
    let opts = Opts::from_url(&support::test_url())
        .expect("URL")
        .ssl_mode(SslMode::Disabled);
    let r: mysql_uring::Result<()> = mysql_uring::start(async move {
        let mut c = connect(opts).await?;
        c.query_drop("CREATE DATABASE IF NOT EXISTS bench").await?;
        c.query_drop("CREATE TABLE IF NOT EXISTS bench.pipe (id INT PRIMARY KEY, v VARCHAR(20))")
            .await?;
        c.query_drop(
            "INSERT IGNORE INTO bench.pipe SELECT seq, CONCAT('v', seq) FROM seq_1_to_1000",
        )
        .await?;
        let sql = |i: usize| format!("SELECT id, v FROM bench.pipe WHERE id = {}", i % 1000 + 1);
        let run = Duration::from_secs(secs);

        let t = Instant::now();
        let mut seq_q = 0usize;
        while t.elapsed() < run {
            for i in 0..depth {
                let rows = c.query(&sql(seq_q + i)).await?;
                assert_eq!(rows.len(), 1);
            }
            seq_q += depth;
        }
        let seq_rate = seq_q as f64 / t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut pipe_q = 0usize;
        while t.elapsed() < run {
            let mut p = c.pipeline();
            for i in 0..depth {
                p.push(sql(pipe_q + i));
            }
            for r in p.run().await? {
                assert_eq!(r?.rows.len(), 1);
            }
            pipe_q += depth;
        }
        let pipe_rate = pipe_q as f64 / t.elapsed().as_secs_f64();
        println!("| mode | queries/s |\n|---|---:|");
        println!("| one at a time | {seq_rate:.0} |");
        println!("| pipelined, {depth} per round trip | {pipe_rate:.0} |");
        println!(
            "ratio pipelined / one at a time: {:.2}x",
            pipe_rate / seq_rate
        );
        c.close().await
    });
    r.expect("pipeline bench");
}
