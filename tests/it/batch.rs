//! The sharded batch runner against the real server.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_uring::runtime::{Runtime, current_core};
use mysql_uring::{Batch, Connection, ErrorKind, Progress, Result};

fn batch() -> Batch {
    Batch::new(crate::opts()).expect("test options")
}

async fn conn_id(c: &mut Connection) -> Result<u64> {
    c.query("SELECT CONNECTION_ID()").await?[0].get(0)
}

#[test]
fn results_come_back_in_input_order() {
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    let items: Vec<u64> = (0..200).collect();
    let results =
        batch()
            .connections_per_core(3)
            .run(&rt, items, async |c: &mut Connection, i: u64| {
                let doubled: u64 = c.query(&format!("SELECT {i} * 2")).await?[0].get(0)?;
                Ok((doubled, conn_id(c).await?))
            });
    assert_eq!(results.len(), 200);
    let mut conns = HashSet::new();
    for (i, r) in results.into_iter().enumerate() {
        let (doubled, id) = r.expect("item ran");
        assert_eq!(doubled, 2 * i as u64, "item {i}");
        conns.insert(id);
    }
    assert!(
        conns.len() <= 6,
        "at most 2 cores x 3 connections: {conns:?}"
    );
}

/// Item 0 waits until every other item is done: with no batch barrier, the
/// other connection (on the other core) runs them all meanwhile.
#[test]
fn free_connections_pull_the_next_item_across_cores() {
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    const N: usize = 40;
    let others_done = Arc::new(AtomicUsize::new(0));
    let counter = others_done.clone();
    let results = batch().connections_per_core(1).run(
        &rt,
        (0..N).collect(),
        async move |c: &mut Connection, i: usize| {
            if i == 0 {
                for _ in 0..3000 {
                    if counter.load(Ordering::SeqCst) == N - 1 {
                        break;
                    }
                    mysql_uring::runtime::sleep(Duration::from_millis(10)).await;
                }
            }
            c.query_drop("DO 1").await?;
            if i != 0 {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(current_core())
        },
    );
    assert_eq!(others_done.load(Ordering::SeqCst), N - 1);
    let cores: Vec<usize> = results
        .into_iter()
        .map(|r| r.expect("ran").expect("on a core"))
        .collect();
    let first = cores[0];
    assert!(
        cores[1..].iter().all(|&c| c != first),
        "items 1.. ran on the other core while item 0 waited: {cores:?}"
    );
}

#[test]
fn errors_are_per_item_and_progress_is_reported() {
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let log = seen.clone();
    let results = batch()
        .connections_per_core(2)
        .on_progress(move |p| log.lock().unwrap().push(p))
        .run(
            &rt,
            (0..20).collect(),
            async |c: &mut Connection, i: u32| {
                if i % 5 == 3 {
                    c.query_drop("SELECT * FROM no_such_table_for_batch")
                        .await?;
                }
                Ok(i)
            },
        );
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v as usize, i),
            Err(e) => {
                assert_eq!(i % 5, 3, "only these fail: {e}");
                assert_eq!(e.code(), Some(1146));
            }
        }
    }
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 4);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 20, "one call per item");
    let last = seen.iter().max_by_key(|p| p.done).unwrap();
    assert_eq!(
        *last,
        Progress {
            done: 20,
            failed: 4,
            total: 20
        }
    );
}

#[test]
fn stop_on_error_leaves_the_rest_not_run() {
    let rt = Runtime::builder().cores(1).build().expect("runtime");
    let results = batch().stop_on_error(true).run(
        &rt,
        (0..10).collect(),
        async |c: &mut Connection, i: u32| {
            if i == 3 {
                c.query_drop("SELECT * FROM no_such_table_for_batch")
                    .await?;
            }
            c.query_drop("DO 1").await?;
            Ok(i)
        },
    );
    for r in &results[..3] {
        assert!(r.is_ok());
    }
    assert_eq!(results[3].as_ref().unwrap_err().code(), Some(1146));
    for (i, r) in results.iter().enumerate().skip(4) {
        let e = r.as_ref().expect_err("not run");
        assert_eq!(e.kind(), ErrorKind::NotRun);
        let msg = e.to_string();
        assert!(msg.contains(&format!("item {i} was not run")), "{msg}");
        assert!(msg.contains("item 3 failed"), "{msg}");
    }
}

#[test]
fn a_panicking_job_fails_its_item_only() {
    let rt = Runtime::builder().cores(1).build().expect("runtime");
    let results = batch().connections_per_core(2).run(
        &rt,
        (0..12).collect(),
        async |c: &mut Connection, i: u32| {
            c.query_drop("DO 1").await?;
            if i == 2 {
                panic!("job {i} panics on purpose");
            }
            Ok(i)
        },
    );
    for (i, r) in results.iter().enumerate() {
        if i == 2 {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage);
            assert!(e.to_string().contains("item 2 panicked"), "{e}");
            assert!(e.to_string().contains("on purpose"), "{e}");
        } else {
            assert_eq!(*r.as_ref().expect("ran"), i as u32);
        }
    }
}

#[test]
fn a_broken_connection_is_replaced_for_the_next_item() {
    let rt = Runtime::builder().cores(1).build().expect("runtime");
    let results = batch().run(&rt, (0..4).collect(), async |c: &mut Connection, i: u32| {
        let id = conn_id(c).await?;
        if i == 1 {
            let _ = c.query_drop("KILL CONNECTION_ID()").await;
            c.query_drop("DO 1").await?; // the session is gone
        }
        Ok(id)
    });
    let id0 = *results[0].as_ref().unwrap();
    assert!(results[1].as_ref().unwrap_err().is_fatal());
    let id2 = *results[2].as_ref().unwrap();
    assert_eq!(*results[3].as_ref().unwrap(), id2);
    assert_ne!(id0, id2, "a new connection after the broken one");
}

#[test]
fn no_connection_means_every_item_is_not_run() {
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let results = Batch::new(format!("mysql://root@127.0.0.1:{port}/test"))
        .unwrap()
        .connections_per_core(2)
        .run(&rt, vec![(); 5], async |_c: &mut Connection, ()| Ok(()));
    assert_eq!(results.len(), 5);
    for r in results {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotRun);
        assert!(
            e.to_string().contains("no connection could be opened"),
            "{e}"
        );
    }
}

#[test]
fn an_empty_batch_runs_nothing() {
    let rt = Runtime::builder().cores(1).build().expect("runtime");
    let results = batch().run(&rt, Vec::<u8>::new(), async |_c: &mut Connection, _| Ok(()));
    assert!(results.is_empty());
}

#[test]
fn sharded_items_run_on_their_shard_and_a_dead_shard_leaves_only_its_own() {
    // Two "shards" on the test server (two databases), and one nobody listens on.
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    crate::run(async {
        let mut c = crate::conn().await?;
        for db in ["it_shard0", "it_shard1"] {
            c.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
                .await?;
        }
        Ok(())
    });
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let shards = vec![
        crate::opts().database("it_shard0"),
        crate::opts().database("it_shard1"),
        // Over TCP whatever transport the suite runs on: nobody listens there.
        mysql_uring::Opts::from_url(&format!("mysql://root@127.0.0.1:{dead}/test")).unwrap(),
    ];
    let items: Vec<u32> = (0..120).collect();
    let results = Batch::sharded(shards)
        .unwrap()
        .connections_per_core(2)
        .run_sharded(
            &rt,
            items,
            |i| if *i == 7 { 9 } else { (*i % 3) as usize },
            async |c: &mut Connection, i: u32| {
                let db: String = c.query("SELECT DATABASE()").await?[0].get(0)?;
                Ok((i, db))
            },
        );
    assert_eq!(results.len(), 120);
    for (i, r) in results.into_iter().enumerate() {
        match (i, i % 3) {
            (7, _) => {
                let e = r.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Usage);
                assert!(e.to_string().contains("3 shard(s)"), "{e}");
            }
            (_, 2) => {
                let e = r.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::NotRun, "{e}");
                assert!(e.to_string().contains("shard 2"), "{e}");
            }
            (_, s) => {
                let (got, db) = r.expect("ran on a live shard");
                assert_eq!(got as usize, i);
                assert_eq!(db, format!("it_shard{s}"), "item {i} ran on its shard");
            }
        }
    }
    crate::run(async {
        let mut c = crate::conn().await?;
        c.query_drop("DROP DATABASE it_shard0").await?;
        c.query_drop("DROP DATABASE it_shard1").await.map(|_| ())
    });
}
