//! `ClientBuilder::multiplex`: prepared executes of independent calls
//! sharing one connection's round trip. Each call must still get its own
//! result or error, whatever its neighbours in the batch did.

use std::sync::Arc;
use std::time::Duration;

use mysql_uring::runtime::{Runtime, stats};
use mysql_uring::{Client, ErrorKind, Opts};

/// A client on one core with one connection: every call queued behind a
/// running one can join its batch.
fn client(opts: Opts, depth: usize) -> (Client, Arc<Runtime>) {
    let rt = Arc::new(Runtime::builder().cores(1).build().expect("runtime"));
    let c = Client::builder()
        .runtime(rt.clone())
        .max_connections(1)
        .multiplex(depth)
        .build(opts)
        .expect("client");
    (c, rt)
}

use crate::tokio_rt;

/// A scratch database `it_<name>` with table `t` made by `create`.
fn scratch_table(name: &str, create: &str) {
    let (name, create) = (name.to_string(), create.to_string());
    mysql_uring::start(async move {
        let mut k = crate::conn().await?;
        crate::scratch_db(&mut k, &name).await?;
        k.query_drop(&create).await?;
        k.close().await
    })
    .unwrap();
}

/// The server id of the client's one connection.
async fn connection_id(c: &Client) -> u64 {
    c.exec_one("SELECT CONNECTION_ID() + ?", (0,))
        .await
        .unwrap()
        .get::<u64>(0)
        .unwrap()
}

/// Kills connection `id` from a connection of its own after `ms`.
async fn kill_after(id: u64, ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    tokio::task::spawn_blocking(move || {
        mysql_uring::start(async move {
            let mut k = crate::conn().await?;
            k.query_drop(&format!("KILL {id}")).await?;
            k.close().await
        })
    })
    .await
    .unwrap()
    .unwrap();
}

/// The core's ring submissions so far.
fn submissions(rt: &Runtime) -> u64 {
    rt.run_on(0, |_| async { Ok(stats().expect("on a core").submissions) })
        .unwrap()
}

/// Runs `n` concurrent point-style calls; each checks its own answer.
fn burst(c: &Client, n: i64) {
    tokio_rt().block_on(async {
        let mut tasks = Vec::new();
        for i in 0..n {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("n{i}");
                let row = c
                    .exec_first("SELECT ? + 1, CONCAT('x', ?)", (i, name.as_str()))
                    .await?
                    .expect("a row");
                assert_eq!(row.get::<i64>(0)?, i + 1, "call {i} got another call's row");
                assert_eq!(row.get::<String>(1)?, format!("xn{i}"));
                Ok::<_, mysql_uring::Error>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
}

#[test]
fn calls_share_round_trips_and_each_gets_its_own_row() {
    let (plain, rt_plain) = client(crate::opts(), 1);
    let (mux, rt_mux) = client(crate::opts(), 4);
    // Warm: connection open, statement prepared.
    burst(&plain, 4);
    burst(&mux, 4);
    let (p0, m0) = (submissions(&rt_plain), submissions(&rt_mux));
    burst(&plain, 200);
    burst(&mux, 200);
    let (p, m) = (submissions(&rt_plain) - p0, submissions(&rt_mux) - m0);
    // One send per execute without multiplexing; batches of up to four
    // share a send with it.
    assert!(p >= 200, "one connection, 200 executes: {p} submissions");
    assert!(
        m * 2 < p,
        "multiplexed executes should share sends: {m} submissions against {p} without"
    );
}

#[test]
fn every_kind_of_call_and_failure_stays_with_its_caller() {
    let (c, _rt) = client(crate::opts(), 8);
    scratch_table(
        "multiplex_kinds",
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) AS SELECT 1 AS id, 'one' AS v",
    );
    tokio_rt().block_on(async {
        let sql = |s: &str| s.replace("TBL", "it_multiplex_kinds.t");
        // All issued at once: on one connection they queue up and run in
        // batches of eight, successes and failures mixed.
        let dup = c.exec_drop(sql("INSERT INTO TBL VALUES (?, 'dup')"), (1,));
        let ins = c.exec_drop(sql("INSERT INTO TBL VALUES (?, ?)"), (2, "two"));
        let bad = c.exec_first("SELEKT ?", (1,));
        let arity = c.exec_first("SELECT ?, ?", (1,));
        let rows = c.exec("SELECT ? UNION ALL SELECT ? UNION ALL SELECT ?", (7, 8, 9));
        let none = c.exec_one(sql("SELECT v FROM TBL WHERE id = ?"), (99,));
        let one = c.exec_one(sql("SELECT v FROM TBL WHERE id = ?"), (1,));
        let big = "b".repeat(2_000_000);
        let long = c.exec_first("SELECT LENGTH(?)", (big.as_str(),));
        let (dup, ins, bad, arity, rows, none, one, long) =
            tokio::join!(dup, ins, bad, arity, rows, none, one, long);
        let e = dup.unwrap_err();
        assert_eq!(e.code(), Some(1062), "duplicate key: {e}");
        assert!(!e.is_commit_unknown(), "the server answered: {e}");
        assert_eq!(ins.unwrap().affected_rows, 1);
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::Server);
        assert_eq!(arity.unwrap_err().kind(), ErrorKind::Usage);
        let v: Vec<i64> = rows
            .unwrap()
            .iter()
            .map(|r| r.get::<i64>(0).unwrap())
            .collect();
        assert_eq!(v, [7, 8, 9]);
        assert_eq!(none.unwrap_err().kind(), ErrorKind::RowNotFound);
        assert_eq!(one.unwrap().get::<String>(0).unwrap(), "one");
        // Long data does not share the round trip; it still runs.
        assert_eq!(long.unwrap().unwrap().get::<i64>(0).unwrap(), 2_000_000);
        // The connection is clean after it all.
        let n = c
            .exec_one(sql("SELECT COUNT(*) FROM TBL WHERE id <= ?"), (2,))
            .await
            .unwrap();
        assert_eq!(n.get::<i64>(0).unwrap(), 2);
    });
}

#[test]
fn statements_evicted_within_a_batch_are_closed_only_after_it() {
    // A cache of one statement, eight different statements in one batch:
    // each prepare evicts the one before, whose execute is still to go.
    let (c, _rt) = client(crate::opts().stmt_cache_size(1), 8);
    tokio_rt().block_on(async {
        for round in 0..3 {
            let calls: Vec<_> = (0..8i64)
                .map(|i| {
                    let sql = format!("SELECT ? + {i}");
                    c.exec_one(sql, (round,))
                })
                .collect();
            for (i, r) in futures_join_all(calls).await.into_iter().enumerate() {
                let row = r.unwrap_or_else(|e| panic!("round {round}, statement {i}: {e}"));
                assert_eq!(row.get::<i64>(0).unwrap(), round + i as i64);
            }
        }
    });
}

#[test]
fn a_caller_that_goes_away_leaves_the_others_their_rows() {
    let (c, _rt) = client(crate::opts(), 4);
    tokio_rt().block_on(async {
        // The first call holds the connection; the four behind it go out
        // together once it is done (at 0.3 s) and run one after another
        // (0.2 s each); two of their callers stop waiting at 0.5 s, while
        // the batch is on the wire.
        let head = c.exec_first("SELECT SLEEP(?)", (0.3,));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut calls = (0..4i64).map(|i| c.exec_first("SELECT ?, SLEEP(0.2)", (i,)));
        let a = calls.next().unwrap();
        let gone1 = calls.next().unwrap();
        let b = calls.next().unwrap();
        let gone2 = calls.next().unwrap();
        let t = tokio::time::timeout(Duration::from_millis(450), async {
            tokio::join!(gone1, gone2)
        });
        let (head, a, b, t) = tokio::join!(head, a, b, t);
        assert!(t.is_err(), "the two dropped calls were still waiting");
        head.unwrap();
        assert_eq!(a.unwrap().unwrap().get::<i64>(0).unwrap(), 0);
        assert_eq!(b.unwrap().unwrap().get::<i64>(0).unwrap(), 2);
        // Their replies were read and dropped: the connection goes on.
        let r = c.exec_one("SELECT ? * 2", (21,)).await.unwrap();
        assert_eq!(r.get::<i64>(0).unwrap(), 42);
    });
}

#[test]
fn a_connection_lost_midway_makes_every_sent_call_outcome_unknown() {
    let (c, _rt) = client(crate::opts(), 8);
    scratch_table("multiplex_lost", "CREATE TABLE t (id INT PRIMARY KEY)");
    tokio_rt().block_on(async {
        let id = connection_id(&c).await;
        // While a first call holds the connection, a batch queues behind
        // it: a long call, then a write and a read.
        let first = c.exec_first("SELECT SLEEP(?)", (0.3,));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let head = c.exec_first("SELECT SLEEP(?)", (5,));
        let write = c.exec_drop("INSERT INTO it_multiplex_lost.t VALUES (?)", (1,));
        let read = c.exec_first("SELECT ?", (1,));
        let killer = kill_after(id, 800);
        let (first, head, write, read, ()) = tokio::join!(first, head, write, read, killer);
        first.unwrap();
        // The head's own reply may say it was killed; the calls behind it
        // were sent and never answered.
        if let Err(e) = &head {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Server | ErrorKind::Io | ErrorKind::Broken
                ),
                "{e}"
            );
        }
        for (what, e) in [("write", write.unwrap_err()), ("read", read.unwrap_err())] {
            assert!(
                e.is_commit_unknown(),
                "the {what} was sent and never answered: its outcome is unknown, got: {e}"
            );
        }
        // A new connection takes the lost one's place.
        let r = c.exec_one("SELECT ? + 1", (1,)).await.unwrap();
        assert_eq!(r.get::<i64>(0).unwrap(), 2);
    });
}

#[test]
fn a_call_run_on_its_own_after_the_batch_is_outcome_unknown_when_the_connection_dies() {
    // Long data does not share the round trip: such a call runs on its own
    // once the batch's replies are read. Its execute is written then, so
    // a connection lost while it runs leaves its outcome unknown.
    let (c, _rt) = client(crate::opts(), 4);
    scratch_table(
        "multiplex_alone",
        "CREATE TABLE t (id INT PRIMARY KEY, b LONGBLOB)",
    );
    tokio_rt().block_on(async {
        let id = connection_id(&c).await;
        let first = c.exec_first("SELECT SLEEP(?)", (0.3,));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let quick = c.exec_first("SELECT ? + 1", (1,));
        let blob = vec![7u8; 2_000_000];
        let alone = c.exec_drop(
            "INSERT INTO it_multiplex_alone.t SELECT ?, ? FROM DUAL WHERE SLEEP(3) = 0",
            (1, blob.as_slice()),
        );
        let killer = kill_after(id, 1300);
        let (first, quick, alone, ()) = tokio::join!(first, quick, alone, killer);
        first.unwrap();
        assert_eq!(quick.unwrap().unwrap().get::<i64>(0).unwrap(), 2);
        let e = alone.unwrap_err();
        assert!(
            e.is_commit_unknown(),
            "its execute was written and no reply came: outcome unknown, got: {e}"
        );
    });
}

#[test]
fn values_too_big_for_the_packet_limit_go_as_long_data_in_a_batch_too() {
    // With a 64 KiB packet limit two 40 KiB strings do not fit in one
    // execute: alone they go as long data, and so they must in a batch.
    let (c, _rt) = client(crate::opts().max_packet_size(64 * 1024), 4);
    tokio_rt().block_on(async {
        let first = c.exec_first("SELECT SLEEP(?)", (0.2,));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let a = "a".repeat(40_000);
        let b = "b".repeat(40_000);
        let big = c.exec_one("SELECT LENGTH(?) + LENGTH(?)", (a.as_str(), b.as_str()));
        let small = c.exec_one("SELECT ? * 3", (5,));
        let (first, big, small) = tokio::join!(first, big, small);
        first.unwrap();
        assert_eq!(big.unwrap().get::<i64>(0).unwrap(), 80_000);
        assert_eq!(small.unwrap().get::<i64>(0).unwrap(), 15);
    });
}

#[test]
fn a_timed_out_batch_tells_sent_calls_from_unsent_ones() {
    let opts = crate::opts().query_timeout(Some(Duration::from_millis(500)));
    let (c, _rt) = client(opts, 4);
    tokio_rt().block_on(async {
        let first = c.exec_first("SELECT SLEEP(?)", (0.2,));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Behind it, one batch: a slow call and a quick one written
        // together, and a call with long data that would run on its own
        // after them. The query timeout ends the batch during the slow one.
        let slow = c.exec_first("SELECT SLEEP(?)", (2,));
        let quick = c.exec_first("SELECT ? + 1", (1,));
        let blob = vec![1u8; 2_000_000];
        let unsent = c.exec_first("SELECT LENGTH(?)", (blob.as_slice(),));
        let (first, slow, quick, unsent) = tokio::join!(first, slow, quick, unsent);
        first.unwrap();
        for (what, r) in [("slow", slow), ("quick", quick)] {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Timeout, "{what}: {e}");
            assert!(e.is_commit_unknown(), "{what} was sent: {e}");
        }
        let e = unsent.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(!e.is_commit_unknown(), "nothing of it was sent: {e}");
        // The connection is usable again once the slow statement is killed.
        let r = c.exec_one("SELECT ? + 2", (1,)).await.unwrap();
        assert_eq!(r.get::<i64>(0).unwrap(), 3);
    });
}

/// Awaits every future, in order (no futures-util dependency here).
async fn futures_join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let handles: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await);
    }
    out
}
