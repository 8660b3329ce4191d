//! The `Send` front door: `Client` from tokio's multi-threaded runtime, from
//! plain threads, and the rough edges at the door (no runtime, cancel from
//! anywhere, dropped calls).

use std::time::{Duration, Instant};

use mysql_uring::{Client, ErrorKind, Row};

fn client() -> Client {
    Client::builder()
        .cores(2)
        .max_connections(8)
        .build(crate::opts())
        .expect("client")
}

use crate::tokio_rt;

#[test]
fn handles_and_futures_are_send() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync_clone::<Client>();
    let c = client();
    let call = c.query("SELECT 1");
    send(&call);
    let call = c.with_conn(async |c| c.query("SELECT 1").await);
    send(&call);
    send(&c.exec("SELECT ?", (1,)));
}

#[test]
fn tokio_tasks_query_through_the_client() {
    let c = client();
    tokio_rt().block_on(async {
        let mut tasks: Vec<tokio::task::JoinHandle<mysql_uring::Result<(i64, i64)>>> = Vec::new();
        for i in 0..60i64 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let row: Row = c.exec_first("SELECT ? + 1", (i,)).await?.unwrap();
                let v: i64 = row.get(0)?;
                Ok((i, v))
            }));
        }
        for t in tasks {
            let (i, v) = t.await.unwrap().unwrap();
            assert_eq!(v, i + 1);
        }
        // Rows, outcomes and a closure on the core next to its connection.
        assert_eq!(
            c.query("SELECT 3").await.unwrap()[0].get::<i64>(0).unwrap(),
            3
        );
        let o = c.query_drop("DO 1").await.unwrap();
        assert_eq!(o.affected_rows, 0);
        let (id, again) = c
            .with_conn(async |conn| {
                let id = conn.connection_id();
                let again: u32 = conn.query("SELECT CONNECTION_ID()").await?[0].get(0)?;
                Ok((id, again))
            })
            .await
            .unwrap();
        assert_eq!(id, again);
        let m = c.pool_metrics();
        // A core keeps a connection for the next call while calls wait: fewer
        // pool gets than calls.
        assert!(m.gets >= 1 && m.created >= 1 && m.open <= 8, "{m:?}");
    });
}

#[test]
fn transactions_commit_on_ok_and_roll_back_on_err() {
    let c = client();
    tokio_rt().block_on(async {
        c.with_conn(async |conn| {
            crate::scratch_db(conn, "client_tx").await?;
            conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
                .await?;
            Ok(())
        })
        .await
        .unwrap();
        c.transaction(async |tx| {
            tx.query_drop("INSERT INTO it_client_tx.t VALUES (1)")
                .await?;
            Ok(())
        })
        .await
        .unwrap();
        let e = c
            .transaction(async |tx| -> mysql_uring::Result<()> {
                tx.query_drop("INSERT INTO it_client_tx.t VALUES (2)")
                    .await?;
                Err(mysql_uring::Error::other("changed my mind"))
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("changed my mind"), "{e}");
        let ids: Vec<i64> = c
            .query("SELECT id FROM it_client_tx.t ORDER BY id")
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0).unwrap())
            .collect();
        assert_eq!(ids, vec![1], "the failed transaction was rolled back");
        c.query_drop("DROP DATABASE it_client_tx").await.unwrap();
    });
}

#[test]
fn plain_threads_use_the_blocking_form() {
    let c = client();
    let threads: Vec<_> = (0..4)
        .map(|i: i64| {
            let b = c.blocking();
            std::thread::spawn(move || {
                let r = b.exec_first("SELECT ? * 2", (i,)).unwrap().unwrap();
                let typed: Option<(i64,)> = b.exec_first_as("SELECT ? * 2", (i,)).unwrap();
                assert_eq!(typed, Some((r.get::<i64>(0).unwrap(),)));
                r.get::<i64>(0).unwrap()
            })
        })
        .collect();
    let got: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(got, vec![0, 2, 4, 6]);
}

#[test]
fn a_dropped_call_is_cancelled_on_the_core() {
    let c = Client::builder()
        .cores(1)
        .max_connections(1)
        .build(crate::opts())
        .unwrap();
    tokio_rt().block_on(async {
        let slow = c.query_drop("SELECT SLEEP(30)");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), slow)
                .await
                .is_err()
        );
        // The one pooled connection is settled (the abandoned SLEEP is
        // interrupted) and serves the next call.
        let t0 = Instant::now();
        let one: i64 = c.query("SELECT 1").await.unwrap()[0].get(0).unwrap();
        assert_eq!(one, 1);
        assert!(t0.elapsed() < Duration::from_secs(25), "{:?}", t0.elapsed());
    });
}

#[test]
fn outside_a_runtime_connect_is_a_usage_error_that_names_the_fix() {
    let e = tokio_rt()
        .block_on(mysql_uring::connect(crate::opts()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    assert!(e.to_string().contains("Client"), "{e}");
    let e = tokio_rt()
        .block_on(
            mysql_uring::Pool::new(crate::opts(), Default::default())
                .unwrap()
                .get(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
}

#[test]
fn cancel_handles_work_from_tokio_and_plain_threads() {
    let c = client();
    let (tx, rx) = std::sync::mpsc::channel();
    let slow = c.with_conn(async move |conn| {
        tx.send(conn.cancel_handle()).unwrap();
        conn.query_drop("SELECT SLEEP(30)").await
    });
    let rt = tokio_rt();
    let handle = rx.recv().unwrap();
    rt.block_on(async {
        let killer = tokio::spawn(async move {
            // Wait until the sleep runs, then cancel from a tokio task.
            tokio::time::sleep(Duration::from_millis(300)).await;
            handle.cancel().await
        });
        let t0 = std::time::Instant::now();
        // An interrupted SLEEP either fails the statement with 1317 or, when
        // the kill lands inside SLEEP itself, returns 1 without an error
        // (the server's documented behaviour): either way it ends early.
        if let Err(e) = slow.await {
            assert_eq!(e.code(), Some(1317), "{e}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the cancelled SLEEP(30) ran for {:?}",
            t0.elapsed()
        );
        killer.await.unwrap().unwrap();
    });
}

// ---------------------------------------------------------------- the tokio front door, issue A / B

use std::future::poll_fn;
use std::pin::Pin;

use futures_core::Stream;
use mysql_uring::runtime::Runtime;
use mysql_uring::{ClientStream, Opts};

/// The next item of a stream (no futures::StreamExt in the tests).
async fn next<T>(s: &mut ClientStream<T>) -> Option<mysql_uring::Result<T>> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// Runs `sql` as root on a connection of its own (setup and checks).
fn root_sql(sql: &str) -> Vec<Row> {
    let sql = sql.to_string();
    mysql_uring::start(async move {
        let mut c = crate::conn().await?;
        let rows = c.query(&sql).await?;
        c.close().await?;
        Ok::<_, mysql_uring::Error>(rows)
    })
    .unwrap()
}

/// A user of its own, so that its connections can be counted.
fn user(name: &str, max_conns: u32) -> Opts {
    root_sql(&format!("DROP USER IF EXISTS '{name}'@'%'"));
    root_sql(&format!(
        "CREATE USER '{name}'@'%' IDENTIFIED BY 'pw' WITH MAX_USER_CONNECTIONS {max_conns}"
    ));
    root_sql(&format!("GRANT ALL ON *.* TO '{name}'@'%'"));
    crate::opts().user(name).password("pw")
}

fn connections_of(name: &str) -> i64 {
    root_sql(&format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{name}'"
    ))[0]
        .get(0)
        .unwrap()
}

/// Polls until `name` has `want` connections (up to 5 s); the last count.
fn wait_connections(name: &str, want: i64) -> i64 {
    let mut n = connections_of(name);
    for _ in 0..100 {
        if n == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        n = connections_of(name);
    }
    n
}

#[test]
fn request_scoped_borrowed_parameters() {
    let c = client();
    tokio_rt().block_on(async {
        // What a handler has: borrowed pieces of its request.
        let name = String::from("ada");
        let blob: Vec<u8> = vec![0, 1, 0xFF];
        let (n, b): (String, Vec<u8>) = c
            .exec_one_as("SELECT ?, ?", (name.as_str(), &blob[..]))
            .await
            .unwrap();
        assert_eq!((n.as_str(), &b[..]), (name.as_str(), &blob[..]));
        // The call does not borrow them once made: it can outlive them.
        let call = {
            let local = format!("{name}!");
            c.exec_first("SELECT CONCAT(?, ?)", (local.as_str(), "?"))
        };
        let row = call.await.unwrap().unwrap();
        assert_eq!(row.get::<&str>(0).unwrap(), "ada!?");
        // A text parameter stays text, bytes stay bytes.
        let row = c
            .exec_one("SELECT CHARSET(?), CHARSET(?)", (name.as_str(), &blob[..]))
            .await
            .unwrap();
        assert_ne!(row.get::<&str>(0).unwrap(), "binary");
        assert_eq!(row.get::<&str>(1).unwrap(), "binary");
    });
}

#[test]
fn exec_one_and_query_one_fail_on_zero_rows() {
    let c = client();
    tokio_rt().block_on(async {
        let e = c
            .exec_one("SELECT 1 FROM DUAL WHERE ? = 2", (1,))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RowNotFound, "{e}");
        assert!(!e.is_fatal());
        let e = c
            .query_one("SELECT 1 FROM DUAL WHERE 1 = 0")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RowNotFound, "{e}");
        let e = c
            .query_one_as::<(i64,)>("SELECT 1 FROM DUAL WHERE 1 = 0")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RowNotFound, "{e}");
        let one: i64 = c.query_one("SELECT 1").await.unwrap().get(0).unwrap();
        assert_eq!(one, 1);
        let (two,): (i64,) = c.exec_one_as("SELECT ? + 1", (1,)).await.unwrap();
        assert_eq!(two, 2);
    });
}

#[test]
fn streams_from_the_client() {
    let c = Client::builder()
        .cores(1)
        .max_connections(1)
        .build(crate::opts())
        .unwrap();
    tokio_rt().block_on(async {
        // Every row, in order, across many batches.
        let mut s = c.exec_stream("SELECT seq FROM seq_1_to_10000 WHERE seq > ?", (0,));
        let mut want = 1u64;
        while let Some(row) = next(&mut s).await {
            assert_eq!(row.unwrap().get::<u64>(0).unwrap(), want);
            want += 1;
        }
        assert_eq!(want, 10_001);
        // Typed, text protocol; a stream is Send (it crosses tasks).
        let mut s =
            c.query_stream_as::<(u64, String)>("SELECT seq, CONCAT('r', seq) FROM seq_1_to_3");
        let got = tokio::spawn(async move {
            let mut v = Vec::new();
            while let Some(r) = next(&mut s).await {
                v.push(r.unwrap());
            }
            v
        })
        .await
        .unwrap();
        assert_eq!(
            got,
            vec![(1, "r1".into()), (2, "r2".into()), (3, "r3".into())]
        );
        // The statement's error is the last item.
        let mut s = c.query_stream("SELECT * FROM no_such_table_here");
        let e = next(&mut s).await.unwrap().unwrap_err();
        assert_eq!(e.code(), Some(1146), "{e}");
        assert!(next(&mut s).await.is_none());
        // Dropped early on a huge result: the statement is abandoned and
        // the one connection serves the next call promptly.
        let mut s = c.query_stream("SELECT a.seq FROM seq_1_to_100000 a, seq_1_to_1000 b");
        for _ in 0..10 {
            next(&mut s).await.unwrap().unwrap();
        }
        drop(s);
        let t0 = Instant::now();
        let one: i64 = c.query_one("SELECT 1").await.unwrap().get(0).unwrap();
        assert_eq!(one, 1);
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    });
}

#[test]
fn a_slow_consumer_holds_the_stream_back() {
    let c = Client::builder()
        .cores(1)
        .max_connections(1)
        .build(crate::opts())
        .unwrap();
    tokio_rt().block_on(async {
        // 100 million rows: unbounded buffering would take the memory of
        // the machine; with backpressure the core reads a few batches ahead,
        // the socket fills and the server stops producing.
        let sql = "SELECT a.seq FROM seq_1_to_100000 a, seq_1_to_1000 b";
        let mut s = c.query_stream(sql);
        next(&mut s).await.unwrap().unwrap();
        // Without it, the core would read on at millions of rows a second
        // into memory while the consumer sleeps.
        let rss = || -> u64 {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            statm.split(' ').nth(1).unwrap().parse::<u64>().unwrap() * 4096
        };
        let before = rss();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let grew = rss().saturating_sub(before);
        assert!(
            grew < 64 << 20,
            "{} MiB buffered while the consumer slept",
            grew >> 20
        );
        let m = c.pool_metrics();
        assert_eq!(m.open, 1, "{m:?}");
        // Still readable after the pause, then dropped.
        for _ in 0..1000 {
            next(&mut s).await.unwrap().unwrap();
        }
    });
}

#[test]
fn guard_transactions_commit_roll_back_and_roll_back_on_drop() {
    let c = Client::builder()
        .cores(2)
        .max_connections(2)
        .build(crate::opts())
        .unwrap();
    tokio_rt().block_on(async {
        c.with_conn(async |conn| {
            crate::scratch_db(conn, "client_guard_tx").await?;
            conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, who VARCHAR(20))")
                .await?;
            Ok(())
        })
        .await
        .unwrap();
        let who = String::from("handler");
        let tx = c.begin().await.unwrap();
        tx.exec_drop(
            "INSERT INTO it_client_guard_tx.t VALUES (?, ?)",
            (1, who.as_str()),
        )
        .await
        .unwrap();
        let n: i64 = tx
            .query_one("SELECT COUNT(*) FROM it_client_guard_tx.t")
            .await
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(n, 1);
        // Send: held across a tokio task boundary.
        let tx = tokio::spawn(async move { tx }).await.unwrap();
        tx.commit().await.unwrap();

        let tx = c.begin().await.unwrap();
        tx.exec_drop(
            "INSERT INTO it_client_guard_tx.t VALUES (2, 'rolled back')",
            (),
        )
        .await
        .unwrap();
        tx.rollback().await.unwrap();

        {
            let tx = c.begin().await.unwrap();
            tx.exec_drop("INSERT INTO it_client_guard_tx.t VALUES (3, 'dropped')", ())
                .await
                .unwrap();
            // Dropped without commit, like a handler that returns early.
        }
        // Every connection is reused after the drop: none sees row 3.
        for _ in 0..6 {
            let ids: Vec<(i64,)> = c
                .query_as("SELECT id FROM it_client_guard_tx.t ORDER BY id")
                .await
                .unwrap();
            assert_eq!(ids, vec![(1,)]);
        }
        c.query_drop("DROP DATABASE it_client_guard_tx")
            .await
            .unwrap();
    });
}

#[test]
fn max_connections_is_a_hard_total() {
    for (total, name) in [(1usize, "it_cap1"), (5, "it_cap5")] {
        let opts = user(name, total as u32);
        let url_opts = opts.clone();
        // Both ways of saying it: the builder and the URL's pool_max.
        let by_builder = Client::builder()
            .cores(2)
            .max_connections(total)
            .build(opts)
            .unwrap();
        let url = match url_opts.get_socket() {
            // MYSQL_TEST_TRANSPORT=unix: the same socket in the URL.
            Some(p) => format!(
                "mysql://{name}:pw@localhost/?pool_max={total}&socket={}",
                p.display()
            ),
            None => format!("mysql://{name}:pw@{}/?pool_max={total}", url_opts.address()),
        };
        let by_url = Client::builder().cores(2).build(url.as_str()).unwrap();
        for c in [by_builder, by_url] {
            let counted = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
            tokio_rt().block_on(async {
                let mut calls = Vec::new();
                for _ in 0..24 {
                    let c = c.clone();
                    calls.push(tokio::spawn(async move {
                        c.query_drop("SELECT SLEEP(0.05)").await
                    }));
                }
                // Whatever the server thinks while they run.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let during = tokio::task::spawn_blocking({
                    let name = name.to_string();
                    move || connections_of(&name)
                })
                .await
                .unwrap();
                counted.store(during, std::sync::atomic::Ordering::Relaxed);
                for call in calls {
                    // Over the limit, the server would refuse (1226).
                    call.await.unwrap().unwrap();
                }
            });
            let m = c.pool_metrics();
            assert!(m.created as usize <= total, "{total}: {m:?}");
            let during = counted.load(std::sync::atomic::Ordering::Relaxed);
            assert!(during <= total as i64, "{total}: {during} connections");
            drop(c);
            assert_eq!(wait_connections(name, 0), 0);
        }
        root_sql(&format!("DROP USER '{name}'@'%'"));
    }
}

#[test]
fn dropping_a_client_closes_its_idle_connections() {
    let opts = user("it_dropped", 20);
    // A runtime that outlives the client (shared by several clients).
    let rt = std::sync::Arc::new(Runtime::builder().cores(2).build().unwrap());
    let c = Client::builder()
        .runtime(rt.clone())
        .max_connections(4)
        .build(opts)
        .unwrap();
    tokio_rt().block_on(async {
        let calls: Vec<_> = (0..8).map(|_| c.query_drop("SELECT SLEEP(0.05)")).collect();
        for call in calls {
            call.await.unwrap();
        }
    });
    assert_eq!(connections_of("it_dropped"), 4);
    drop(c);
    assert_eq!(
        wait_connections("it_dropped", 0),
        0,
        "idle connections outlived the client"
    );
    drop(rt);
    root_sql("DROP USER 'it_dropped'@'%'");
}

#[test]
fn close_finishes_calls_then_closes_everything() {
    let opts = user("it_closed", 20);
    let c = Client::builder()
        .cores(2)
        .max_connections(4)
        .build(opts)
        .unwrap();
    tokio_rt().block_on(async {
        let slow = c.query_drop("SELECT SLEEP(0.3)");
        let slow = tokio::spawn(slow);
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.close().await.unwrap();
        // The call made before the close finished normally.
        slow.await.unwrap().unwrap();
        let e = c.query("SELECT 1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Stopped, "{e}");
        let e = c.reads().query("SELECT 1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Stopped, "{e}");
    });
    assert_eq!(wait_connections("it_closed", 0), 0);
    // The cores it started have ended.
    assert!(!c.runtime().is_alive(0) && !c.runtime().is_alive(1));
    root_sql("DROP USER 'it_closed'@'%'");
}

#[test]
fn dropping_the_last_client_does_not_block_the_dropping_thread() {
    let c = Client::builder().cores(1).build(crate::opts()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // The core is busy for a while (a blocking closure: never do this).
        let busy = c.with_conn(async |_| {
            std::thread::sleep(Duration::from_millis(800));
            Ok(())
        });
        let busy = tokio::spawn(busy);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        drop(c); // the last handle
        assert!(
            t0.elapsed() < Duration::from_millis(200),
            "dropping the client blocked the tokio thread for {:?}",
            t0.elapsed()
        );
        // The call in flight ends as the core stops.
        let r = busy.await.unwrap();
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::Stopped, "{e}");
        }
    });
}

#[test]
fn a_panicking_core_leaves_the_rotation() {
    let c = Client::builder()
        .cores(2)
        .max_connections(4)
        .build(crate::opts())
        .unwrap();
    tokio_rt().block_on(async {
        // A call in flight on core 1 when it dies gets a typed error.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut on_core1 = None;
        for _ in 0..2 {
            let tx = tx.clone();
            let call = c.with_conn(async move |conn| {
                tx.send(mysql_uring::runtime::current_core()).unwrap();
                conn.query_drop("SELECT SLEEP(2)").await.map(drop)
            });
            let core = rx.recv().unwrap();
            if core == Some(1) {
                on_core1 = Some(call);
            } else {
                drop(call);
            }
        }
        let on_core1 = on_core1.expect("round robin reaches core 1");
        c.runtime().__panic_core(1);
        let e = on_core1.await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Stopped, "{e}");
        // Every later call goes to the live core.
        for i in 0..20i64 {
            let v: i64 = c.exec_one("SELECT ?", (i,)).await.unwrap().get(0).unwrap();
            assert_eq!(v, i);
        }
    });
}

#[test]
fn commit_unknown_whatever_ends_a_commit() {
    let c = Client::builder()
        .cores(2)
        .max_connections(4)
        .build(crate::opts())
        .unwrap();
    let locker = Client::builder()
        .cores(1)
        .max_connections(1)
        .build(crate::opts())
        .unwrap();
    tokio_rt().block_on(async {
        c.with_conn(async |conn| {
            crate::scratch_db(conn, "client_commit_unknown").await?;
            conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
                .await?;
            Ok(())
        })
        .await
        .unwrap();
        // A global read lock taken after the insert holds COMMIT back; then
        // the core running the transaction dies.
        let tx = c.begin().await.unwrap();
        tx.exec_drop("INSERT INTO it_client_commit_unknown.t VALUES (1)", ())
            .await
            .unwrap();
        let core = tx_core(&tx);
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let lock = locker.with_conn(async move |conn| {
            conn.query_drop("FLUSH TABLES WITH READ LOCK").await?;
            locked_tx.send(()).unwrap();
            mysql_uring::runtime::sleep(Duration::from_secs(3)).await;
            conn.query_drop("UNLOCK TABLES").await.map(drop)
        });
        let lock = tokio::spawn(lock);
        locked_rx.recv().unwrap();
        let commit = tokio::spawn(tx.commit());
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.runtime().__panic_core(core);
        let e = commit.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Stopped, "{e}");
        assert!(e.is_commit_unknown(), "{e}");
        lock.await.unwrap().unwrap();
    });
    // A commit cut by the query timeout: unknown too (the closure form).
    let timed = Client::builder()
        .cores(1)
        .max_connections(1)
        .build(crate::opts().query_timeout(Some(Duration::from_millis(300))))
        .unwrap();
    tokio_rt().block_on(async {
        let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
        let run = timed.transaction(async move |tx| {
            tx.query_drop("INSERT INTO it_client_commit_unknown.t VALUES (2)")
                .await?;
            // Until the other side holds the lock.
            let _ = locked_rx.await;
            Ok(())
        });
        let run = tokio::spawn(run);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let lock = locker.with_conn(async move |conn| {
            conn.query_drop("FLUSH TABLES WITH READ LOCK").await?;
            let _ = locked_tx.send(());
            mysql_uring::runtime::sleep(Duration::from_secs(1)).await;
            conn.query_drop("UNLOCK TABLES").await.map(drop)
        });
        lock.await.unwrap();
        let e = run.await.unwrap().unwrap_err();
        assert!(e.is_commit_unknown(), "{e}");
        locker
            .query_drop("DROP DATABASE it_client_commit_unknown")
            .await
            .unwrap();
    });
}

/// The core a transaction runs on.
fn tx_core(tx: &mysql_uring::ClientTransaction) -> usize {
    let s = format!("{tx:?}");
    s.split("core: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the Debug form names the core")
}

/// Issue A's "done": a tokio handler written the obvious way.
#[test]
fn a_tokio_handler_written_the_obvious_way() {
    let c = client();
    async fn handler(db: &Client, user: &str) -> mysql_uring::Result<u64> {
        // Borrowed parameters.
        let (n,): (i64,) = db.exec_one_as("SELECT LENGTH(?)", (user,)).await?;
        // A stream.
        let mut rows =
            db.exec_stream_as::<(u64,), _>("SELECT seq FROM seq_1_to_100 WHERE seq <= ?", (n,));
        let mut sum = 0;
        while let Some(r) = next(&mut rows).await {
            sum += r?.0;
        }
        // begin / commit.
        let tx = db.begin().await?;
        tx.exec_drop("SET @who = ?", (user,)).await?;
        tx.commit().await?;
        // A tokio timeout around a slow query, then another query.
        let slow =
            tokio::time::timeout(Duration::from_millis(100), db.query_drop("SELECT SLEEP(5)"))
                .await;
        assert!(slow.is_err());
        let one: i64 = db.query_one("SELECT 1").await?.get(0)?;
        Ok(sum + one as u64)
    }
    tokio_rt().block_on(async {
        let user = String::from("abcd");
        let handlers: Vec<_> = (0..8)
            .map(|_| {
                let (c, user) = (c.clone(), user.clone());
                tokio::spawn(async move { handler(&c, &user).await })
            })
            .collect();
        for h in handlers {
            assert_eq!(h.await.unwrap().unwrap(), 1 + 2 + 3 + 4 + 1);
        }
    });
}
