//! Running multiple tasks asynchronously (Connector/Python's `asyncio.gather`
//! example): a blocking IO job on a blocking thread, a MySQL job, and a sleep
//! job. Run concurrently, the elapsed time is about the longest job (5 s);
//! awaited one after another, it is the sum (10 s).
//!
//! Run: `cargo run --example multiple_tasks` (`-- --scale 0.2` to shorten every job 5x).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mysql_uring::{Result, connect};

/// Prints each job's start/end, indented by its position like the docs' output.
#[derive(Clone, Default)]
struct Indent(Rc<Cell<usize>>);

impl Indent {
    fn next(&self) -> String {
        let n = self.0.get();
        self.0.set(n + 1);
        "\t".repeat(n)
    }
}

/// A generic job: takes a nap.
async fn job_sleep(ind: Indent, secs: f64) -> String {
    let offset = ind.next();
    println!("{offset}START_SLEEP");
    mysql_uring::runtime::sleep(Duration::from_secs_f64(secs)).await;
    println!("{offset}END_SLEEP");
    format!("I slept for {secs} seconds")
}

/// Connects to the server and runs a query.
async fn job_mysql(ind: Indent, url: String, secs: f64) -> Result<String> {
    let offset = ind.next();
    println!("{offset}START_MYSQL_OPS");
    let mut cnx = connect(url.as_str()).await?;
    let mut cur = cnx.cursor();
    cur.execute("SELECT @@version").await?;
    let res: String = cur.fetch_one().await?.expect("one row").get(0)?;
    cur.close().await?;
    cnx.close().await?;
    // Stands for work on the result; unlike the docs' `time.sleep`, it does not block the other jobs.
    mysql_uring::runtime::sleep(Duration::from_secs_f64(secs)).await;
    println!("{offset}END_MYSQL_OPS");
    Ok(res)
}

/// A blocking IO operation, run on tokio's blocking thread pool (`asyncio.to_thread`).
async fn job_io(ind: Indent, secs: f64) -> String {
    let offset = ind.next();
    println!("{offset}START_IO");
    mysql_uring::runtime::spawn_blocking(move || std::thread::sleep(Duration::from_secs_f64(secs)))
        .await
        .expect("blocking job");
    println!("{offset}END_IO");
    "I am an IO operation".to_string()
}

fn main() -> Result<()> {
    let scale: f64 = std::env::args()
        .skip_while(|a| a != "--scale")
        .nth(1)
        .map(|s| s.parse().expect("--scale takes a number"))
        .unwrap_or(1.0);
    // Your server, or else a private one started for this run.
    let url =
        std::env::var("MYSQL_URL").unwrap_or_else(|_| mysql_uring_testserver::server().root_url());
    mysql_uring::start(async {
        println!("-------------------- ASYNCHRONOUS --------------------");
        let ind = Indent::default();
        let clock = Instant::now();
        // Spawned tasks run concurrently on this thread's io_uring (`asyncio.gather`).
        let io = mysql_uring::runtime::spawn(job_io(ind.clone(), 5.0 * scale));
        let my = mysql_uring::runtime::spawn(job_mysql(ind.clone(), url.clone(), 1.0 * scale));
        let sl = mysql_uring::runtime::spawn(job_sleep(ind.clone(), 4.0 * scale));
        let concurrent = (io.await.unwrap(), my.await.unwrap()?, sl.await.unwrap());
        let async_elapsed = clock.elapsed().as_secs_f64();
        println!("Elapsed time: {async_elapsed:0.2}");
        println!("{concurrent:?}\n");

        println!("------------------- NON-ASYNCHRONOUS -------------------");
        let ind = Indent::default();
        let clock = Instant::now();
        // Awaiting one after another does not run them concurrently.
        let sequential = (
            job_io(ind.clone(), 5.0 * scale).await,
            job_mysql(ind.clone(), url.clone(), 1.0 * scale).await?,
            job_sleep(ind.clone(), 4.0 * scale).await,
        );
        let sync_elapsed = clock.elapsed().as_secs_f64();
        println!("Elapsed time: {sync_elapsed:0.2}");
        println!("{sequential:?}");

        assert_eq!(concurrent, sequential);
        println!(
            "\nconcurrent {async_elapsed:0.2} s (longest job: {:0.2} s), sequential {sync_elapsed:0.2} s (sum: {:0.2} s)",
            5.0 * scale,
            10.0 * scale
        );
        Ok(())
    })
}
