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

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

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
        assert!(m.gets >= 63 && m.created >= 1 && m.open <= 8, "{m:?}");
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
        let e = slow.await.unwrap_err();
        assert_eq!(e.code(), Some(1317), "{e}");
        killer.await.unwrap().unwrap();
    });
}
