//! The steady path allocates nothing per execute and nothing per row.
//!
//! A separate test binary, because it installs a counting global allocator;
//! the count is per thread, and the connection runs on the test's thread.

use mysql_uring_testserver as support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

const N: u64 = 2000;

#[test]
fn executes_and_binary_rows_allocate_nothing_in_the_steady_state() {
    let url = support::test_url();
    let r = mysql_uring::start(async move {
        let opts = mysql_uring::Opts::from_url(&url)?.ssl_mode(mysql_uring::SslMode::Disabled);
        let mut c = mysql_uring::connect(opts).await?;
        const SQL: &str = "SELECT ? + 1 AS n, CONCAT('name-', ?) AS s, 2.5e0 AS d";

        // Baseline: a round trip that the driver does with no allocation of its own.
        for _ in 0..50 {
            c.ping().await?;
        }
        let a = allocs();
        for _ in 0..N {
            c.ping().await?;
        }
        let ping = allocs() - a;

        // Point executes through the statement cache, rows streamed by reference.
        for i in 0..50u64 {
            c.cmd_execute(SQL, (i, i)).await?;
            while c.next_row().await?.is_some() {}
        }
        let a = allocs();
        let mut sum = 0u64;
        for i in 0..N {
            c.cmd_execute(SQL, (i, i)).await?;
            while let Some(row) = c.next_row().await? {
                let (n, s, d): (u64, &str, f64) = (row.get(0)?, row.get(1)?, row.get(2)?);
                sum += n + s.len() as u64 + d as u64;
            }
        }
        let exec = allocs() - a;

        // exec_first: an owned Row sharing the read buffer.
        let a = allocs();
        for i in 0..N {
            let row = c.exec_first(SQL, (i, i)).await?.expect("a row");
            sum += row.get::<u64>(0)?;
        }
        let first = allocs() - a;
        assert!(sum > 0);

        // exec_drop on a statement without rows.
        let a = allocs();
        for i in 0..N {
            c.exec_drop("DO ?", (i,)).await?;
        }
        let exec_drop = allocs() - a;

        // Many rows of one execute: nothing per row.
        let big = "SELECT seq, CONCAT('row ', seq), seq / 3 FROM seq_1_to_50000 WHERE seq > ?";
        c.cmd_execute(big, (0,)).await?;
        while c.next_row().await?.is_some() {}
        let a = allocs();
        c.cmd_execute(big, (0,)).await?;
        let mut rows = 0u64;
        while let Some(row) = c.next_row().await? {
            let (_, _, _): (u64, &str, &str) = (row.get(0)?, row.get(1)?, row.get(2)?);
            rows += 1;
        }
        let stream = allocs() - a;
        c.close().await?;
        Ok::<_, mysql_uring::Error>((ping, exec, first, exec_drop, stream, rows))
    });
    let (ping, exec, first, exec_drop, stream, rows) = r.expect("test body");
    eprintln!(
        "allocations: {ping} for {N} pings, {exec} for {N} executes with a row, \
         {first} for {N} exec_first, \
         {exec_drop} for {N} exec_drop, {stream} for one execute of {rows} rows"
    );
    assert_eq!(rows, 50_000);
    // The runtime may allocate for its own bookkeeping; the driver adds nothing per execute.
    assert!(
        exec <= ping + N / 100,
        "{exec} allocations for {N} executes (pings: {ping})"
    );
    assert!(
        exec_drop <= ping + N / 100,
        "{exec_drop} allocations for {N} exec_drop (pings: {ping})"
    );
    // Reads of a 50,000-row result: a few buffer growths at most, nothing per row.
    assert!(stream < 100, "{stream} allocations for {rows} rows");
}

#[test]
fn typed_reads_of_borrowed_and_copy_values_allocate_nothing_per_row() {
    #[derive(mysql_uring::FromRow)]
    struct Named<'a> {
        seq: u64,
        #[mysql(rename = "label")]
        name: &'a str,
    }
    let url = support::test_url();
    let r = mysql_uring::start(async move {
        use futures::TryStreamExt;
        let opts = mysql_uring::Opts::from_url(&url)?.ssl_mode(mysql_uring::SslMode::Disabled);
        let mut c = mysql_uring::connect(opts).await?;
        const ROWS: u64 = 50_000;
        let named = "SELECT seq, CONCAT('row ', seq) AS label FROM seq_1_to_50000 WHERE seq > ?";
        let pairs = "SELECT seq, seq * 2 FROM seq_1_to_50000 WHERE seq > ?";
        let text = "SELECT seq, seq * 2 FROM seq_1_to_50000";
        // Warm up: statements cached, buffers grown.
        c.exec_drop(named, (0,)).await?;
        c.exec_drop(pairs, (0,)).await?;
        c.query_drop(text).await?;
        let mut counts = Vec::new();

        // Borrowed values decoded from streamed rows: a tuple and a derived struct.
        let a = allocs();
        c.cmd_execute(named, (0,)).await?;
        let mut n = 0u64;
        while let Some(row) = c.next_row().await? {
            let (seq, label): (u64, &str) = row.decode()?;
            let s: Named = row.decode()?;
            assert_eq!((s.seq, s.name.len()), (seq, label.len()));
            n += 1;
        }
        assert_eq!(n, ROWS);
        counts.push(("decode", allocs() - a));

        // Copy values folded by the typed calls, both protocols.
        let a = allocs();
        let sum = c
            .exec_fold(pairs, (0,), 0u64, |acc, (x, y): (u64, u64)| acc + x + y)
            .await?;
        assert_eq!(sum, 3 * ROWS * (ROWS + 1) / 2);
        counts.push(("exec_fold", allocs() - a));
        let a = allocs();
        let sum = c
            .query_fold(text, 0u64, |acc, (x, y): (u64, u64)| acc + x + y)
            .await?;
        assert_eq!(sum, 3 * ROWS * (ROWS + 1) / 2);
        counts.push(("query_fold", allocs() - a));

        // A typed stream.
        let a = allocs();
        let sum = c
            .exec_stream_as::<(u64, u64)>(pairs, (0,))
            .await?
            .try_fold(0u64, |acc, (x, y)| std::future::ready(Ok(acc + x + y)))
            .await?;
        assert_eq!(sum, 3 * ROWS * (ROWS + 1) / 2);
        counts.push(("exec_stream_as", allocs() - a));
        c.close().await?;
        Ok::<_, mysql_uring::Error>(counts)
    });
    let counts = r.expect("test body");
    eprintln!("allocations for {} rows: {counts:?}", 50_000);
    for (what, n) in counts {
        // A few buffer growths at most, nothing per row.
        assert!(n < 100, "{what}: {n} allocations for 50000 rows");
    }
}
