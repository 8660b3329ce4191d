//! The per-core pool against the real server: limits, broken and half-read
//! connections, waiting, idle reaping, session reset.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mysql_uring::{Connection, ErrorKind, Pool, PoolOpts, Result};

use crate::run;

fn pool(popts: PoolOpts) -> Pool {
    Pool::new(crate::opts(), popts).expect("valid pool options")
}

async fn id(c: &mut Connection) -> Result<u64> {
    c.query("SELECT CONNECTION_ID()").await?[0].get(0)
}

/// Is the connection with this id still known to the server? Polls until
/// the server agrees with `alive` (closing is asynchronous on its side).
async fn server_sees(c: &mut Connection, conn_id: u64, alive: bool) -> Result<bool> {
    crate::wait_for_processlist(c, &format!("ID = {conn_id}"), i64::from(alive)).await
}

#[test]
fn bad_pool_options_are_config_errors() {
    let e = Pool::new(
        crate::opts(),
        PoolOpts {
            max: 0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = Pool::new(
        crate::opts(),
        PoolOpts {
            min: 3,
            max: 2,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("min (3) exceeds"), "{e}");
    let e = Pool::new("mysql://h/db?no_such_option=1", PoolOpts::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[test]
fn a_returned_connection_is_reused() {
    run(async {
        let p = pool(PoolOpts::default());
        let first = {
            let mut c = p.get().await?;
            id(&mut c).await?
        };
        assert_eq!(p.status().idle, 1);
        let mut c = p.get().await?;
        assert_eq!(id(&mut c).await?, first);
        assert_eq!(p.status().idle, 0);
        assert_eq!(p.status().total, 1);
        Ok(())
    })
}

#[test]
fn max_is_respected_under_concurrency() {
    run(async {
        const MAX: usize = 3;
        let p = pool(PoolOpts {
            max: MAX,
            ..Default::default()
        });
        let in_use = Rc::new(Cell::new(0usize));
        let peak = Rc::new(Cell::new(0usize));
        let peak_waiting = Rc::new(Cell::new(0usize));
        let mut tasks = Vec::new();
        for i in 0..12u64 {
            let (p, in_use, peak, peak_waiting) = (
                p.clone(),
                in_use.clone(),
                peak.clone(),
                peak_waiting.clone(),
            );
            tasks.push(mysql_uring::runtime::spawn(async move {
                let mut ids = Vec::new();
                for j in 0..5u64 {
                    let mut c = p.get().await?;
                    in_use.set(in_use.get() + 1);
                    peak.set(peak.get().max(in_use.get()));
                    peak_waiting.set(peak_waiting.get().max(p.status().waiting));
                    assert!(p.status().total <= MAX, "{:?}", p.status());
                    let row = &c
                        .query(&format!("SELECT CONNECTION_ID(), {i} * 100 + {j}"))
                        .await?[0];
                    assert_eq!(row.get::<u64>(1)?, i * 100 + j);
                    ids.push(row.get::<u64>(0)?);
                    in_use.set(in_use.get() - 1);
                }
                Ok::<_, mysql_uring::Error>(ids)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task")?);
        }
        assert_eq!(all.len(), 60);
        all.sort();
        all.dedup();
        assert!(all.len() <= MAX, "{} distinct connections", all.len());
        assert_eq!(peak.get(), MAX, "all {MAX} were used at once");
        assert!(peak_waiting.get() > 0, "callers had to wait");
        assert_eq!(p.status().total, MAX);
        assert_eq!(p.status().waiting, 0);
        Ok(())
    })
}

#[test]
fn waiting_longer_than_wait_timeout_is_a_timeout_error() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            wait_timeout: Some(Duration::from_millis(50)),
            ..Default::default()
        });
        let mut held = p.get().await?;
        let e = p.get().await.expect_err("the only connection is in use");
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(
            e.to_string().contains("all 1 (PoolOpts::max) are in use"),
            "{e}"
        );
        assert_eq!(p.status().waiting, 0, "the waiter left the line");
        let held_id = id(&mut held).await?;
        drop(held);
        let mut again = p.get().await?;
        assert_eq!(id(&mut again).await?, held_id);
        Ok(())
    })
}

#[test]
fn a_waiter_gets_the_connection_returned() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            wait_timeout: None,
            ..Default::default()
        });
        let mut held = p.get().await?;
        let held_id = id(&mut held).await?;
        let p2 = p.clone();
        let waiter = mysql_uring::runtime::spawn(async move {
            let mut c = p2.get().await?;
            id(&mut c).await
        });
        // Let the waiter get in line, then return the connection.
        while p.status().waiting == 0 {
            mysql_uring::runtime::yield_now().await;
        }
        drop(held);
        assert_eq!(waiter.await.expect("task")?, held_id);
        Ok(())
    })
}

#[test]
fn a_killed_connection_is_replaced_after_a_failed_health_check() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            health_check_after: Some(Duration::ZERO),
            ..Default::default()
        });
        let victim = {
            let mut c = p.get().await?;
            id(&mut c).await?
        };
        let mut admin = crate::conn().await?;
        admin.query_drop(&format!("KILL {victim}")).await?;
        assert!(server_sees(&mut admin, victim, false).await?);
        // The idle connection fails its ping and is replaced.
        let mut c = p.get().await?;
        let fresh = id(&mut c).await?;
        assert_ne!(fresh, victim);
        assert_eq!(p.status().total, 1);
        admin.close().await
    })
}

#[test]
fn a_connection_broken_in_use_is_not_handed_out_again() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            health_check_after: None,
            ..Default::default()
        });
        let mut admin = crate::conn().await?;
        let victim = {
            let mut c = p.get().await?;
            let victim = id(&mut c).await?;
            admin.query_drop(&format!("KILL {victim}")).await?;
            assert!(server_sees(&mut admin, victim, false).await?);
            let e = c.query_drop("SELECT 1").await.expect_err("killed");
            assert!(e.is_fatal(), "{e:?}");
            assert!(c.is_broken());
            victim
        };
        assert_eq!(p.status().total, 0, "the broken connection was closed");
        let mut c = p.get().await?;
        assert_ne!(id(&mut c).await?, victim);
        admin.close().await
    })
}

#[test]
fn a_half_read_connection_is_drained_and_reused() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            ..Default::default()
        });
        let first = {
            let mut c = p.get().await?;
            let first = id(&mut c).await?;
            c.cmd_query("SELECT * FROM information_schema.COLLATIONS")
                .await?;
            assert!(c.get_row().await?.is_some());
            assert!(c.has_pending_response());
            first
        };
        // Cleaned in the background, then handed out again: the same session.
        let mut c = p.get().await?;
        assert!(!c.has_pending_response());
        assert_eq!(id(&mut c).await?, first);
        // It starts clean: the next reply is this query's.
        assert_eq!(c.query("SELECT 7").await?[0].get::<i64>(0)?, 7);
        Ok(())
    })
}

#[test]
fn idle_connections_are_reaped_down_to_min() {
    run(async {
        let p = pool(PoolOpts {
            min: 1,
            max: 3,
            idle_timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        });
        let (a, b, c) = (p.get().await?, p.get().await?, p.get().await?);
        let mut ids = Vec::new();
        for mut x in [a, b, c] {
            ids.push(id(&mut x).await?);
        }
        assert_eq!(p.status().idle, 3);
        mysql_uring::runtime::sleep(Duration::from_millis(250)).await;
        p.maintain().await?; // (the background pass may have done it already)
        assert_eq!(p.status().total, 1, "{:?}", p.status());
        let mut admin = crate::conn().await?;
        let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        assert!(crate::wait_for_processlist(&mut admin, &format!("ID IN ({list})"), 1).await?);
        admin.close().await
    })
}

#[test]
fn min_connections_are_opened_by_maintain() {
    run(async {
        let p = pool(PoolOpts {
            min: 2,
            max: 4,
            ..Default::default()
        });
        p.maintain().await?;
        assert_eq!(p.status().total, 2);
        assert_eq!(p.status().idle, 2);
        Ok(())
    })
}

#[test]
fn reset_on_return_clears_the_session() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            reset_on_return: true,
            ..Default::default()
        });
        let first = {
            let mut c = p.get().await?;
            c.query_drop("SET @pool_var = 42").await?;
            c.query_drop("CREATE TEMPORARY TABLE pool_tmp (x INT)")
                .await?;
            id(&mut c).await?
        };
        let mut c = p.get().await?;
        assert_eq!(id(&mut c).await?, first, "same connection, reset");
        assert_eq!(
            c.query("SELECT @pool_var").await?[0].get::<Option<i64>>(0)?,
            None
        );
        let e = c.query_drop("SELECT * FROM pool_tmp").await.unwrap_err();
        assert_eq!(e.code(), Some(1146), "the temporary table is gone");
        Ok(())
    })
}

#[test]
fn without_reset_the_session_is_kept_but_a_transaction_is_rolled_back() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            ..Default::default()
        });
        {
            let mut c = p.get().await?;
            crate::scratch_db(&mut c, "pool_rollback").await?;
            c.query_drop("CREATE TABLE t (x INT) ENGINE=InnoDB").await?;
            c.query_drop("SET @kept = 5").await?;
            c.query_drop("BEGIN").await?;
            c.query_drop("INSERT INTO t VALUES (1)").await?;
            assert!(c.in_transaction());
        }
        let mut c = p.get().await?;
        assert!(!c.in_transaction());
        assert_eq!(c.query("SELECT @kept").await?[0].get::<i64>(0)?, 5);
        assert_eq!(
            c.query("SELECT COUNT(*) FROM it_pool_rollback.t").await?[0].get::<i64>(0)?,
            0,
            "the uncommitted insert was rolled back"
        );
        c.query_drop("DROP DATABASE it_pool_rollback").await?;
        Ok(())
    })
}

#[test]
fn a_detached_connection_leaves_the_pool() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            ..Default::default()
        });
        let c = p.get().await?.detach();
        assert_eq!(p.status().total, 0);
        let _other = p.get().await?; // capacity is free again
        c.close().await
    })
}

#[test]
fn connect_errors_come_back_and_free_the_capacity() {
    run(async {
        // A port nothing listens on: take one from the OS and close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let p = Pool::new(
            format!("mysql://root@127.0.0.1:{port}/test"),
            PoolOpts {
                max: 1,
                ..Default::default()
            },
        )?;
        for _ in 0..2 {
            let e = p.get().await.expect_err("nothing listens");
            assert_eq!(e.kind(), ErrorKind::Io);
        }
        assert_eq!(p.status().total, 0);
        Ok(())
    })
}

#[test]
fn a_per_core_pool_keeps_one_pool_per_core_across_runs() {
    use mysql_uring::PerCorePool;
    use mysql_uring::runtime::Runtime;

    let rt = Runtime::builder().cores(2).build().expect("runtime");
    let pools = PerCorePool::new(
        crate::opts(),
        PoolOpts {
            max: 1,
            ..Default::default()
        },
    )
    .expect("valid options");
    let run = || {
        let pools = pools.clone();
        rt.run_on_all(move |_| async move {
            let mut c = pools.get().await?;
            id(&mut c).await
        })
        .into_iter()
        .collect::<Result<Vec<u64>>>()
        .expect("both cores")
    };
    let first = run();
    assert_ne!(first[0], first[1], "each core has its own pool");
    assert_eq!(run(), first, "and keeps its connection between runs");
    assert!(
        PerCorePool::new(
            crate::opts(),
            PoolOpts {
                max: 0,
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn a_waiter_gets_a_new_connection_when_the_held_one_was_broken() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            wait_timeout: None,
            ..Default::default()
        });
        let mut held = p.get().await?;
        let held_id = id(&mut held).await?;
        let p2 = p.clone();
        let waiter = mysql_uring::runtime::spawn(async move {
            let mut c = p2.get().await?;
            id(&mut c).await
        });
        while p.status().waiting == 0 {
            mysql_uring::runtime::yield_now().await;
        }
        let mut admin = crate::conn().await?;
        admin.query_drop(&format!("KILL {held_id}")).await?;
        assert!(server_sees(&mut admin, held_id, false).await?);
        assert!(held.query_drop("DO 1").await.is_err());
        drop(held); // closed; its place goes to the waiter, who connects anew
        let got = waiter.await.expect("task")?;
        assert_ne!(got, held_id);
        assert_eq!(p.status().total, 1);
        admin.close().await
    })
}

#[test]
fn a_cancelled_get_leaves_the_line_and_frees_nothing_it_did_not_take() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            wait_timeout: None,
            ..Default::default()
        });
        let held = p.get().await?;
        // A get abandoned while waiting (e.g. by a select! or the caller's own timeout).
        let r = mysql_uring::runtime::timeout(Duration::from_millis(20), p.get()).await;
        assert!(r.is_err(), "still waiting when abandoned");
        assert_eq!(p.status().waiting, 0);
        assert_eq!(p.status().total, 1);
        drop(held);
        assert_eq!(
            p.status().idle,
            1,
            "returned to the idle list, not to the gone waiter"
        );
        let _again = p.get().await?;
        Ok(())
    })
}

#[test]
fn the_background_task_reaps_idle_connections_by_itself() {
    run(async {
        let p = pool(PoolOpts {
            max: 2,
            idle_timeout: Some(Duration::from_millis(50)),
            ..Default::default()
        });
        let (a, b) = (p.get().await?, p.get().await?);
        drop((a, b));
        assert_eq!(p.status().idle, 2);
        // No call to maintain: wait (bounded) for the pool's own task.
        for _ in 0..500 {
            if p.status().total == 0 {
                break;
            }
            mysql_uring::runtime::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(p.status().total, 0, "{:?}", p.status());
        Ok(())
    })
}

/// A TCP relay to the private server whose older connections can be frozen:
/// their bytes are swallowed while both sockets stay open, like a peer that
/// vanished without a reset.
struct FreezingRelay {
    port: u16,
    /// Connections accepted before this many are frozen.
    frozen_below: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn freezing_relay(target: (&'static str, u16)) -> FreezingRelay {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pump(mut from: TcpStream, mut to: TcpStream, index: usize, frozen: Arc<AtomicUsize>) {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if index < frozen.load(Ordering::SeqCst) {
                    continue;
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }

    let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
    let port = listener.local_addr().expect("relay address").port();
    let frozen_below = Arc::new(AtomicUsize::new(0));
    let frozen = frozen_below.clone();
    std::thread::spawn(move || {
        for (index, client) in listener.incoming().enumerate() {
            let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else {
                continue;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            pump(client, server, index, frozen.clone());
            pump(s2, c2, index, frozen.clone());
        }
    });
    FreezingRelay { port, frozen_below }
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "relays to the private server (MYSQL_URL is set)"
)]
fn a_silent_peer_fails_the_health_check_within_the_connect_timeout() {
    let server = crate::support::server();
    let relay = freezing_relay(("127.0.0.1", server.port));
    run(async move {
        let url = format!(
            "mysql://root@127.0.0.1:{}/test?connect_timeout=1&ssl_mode=disabled",
            relay.port
        );
        let p = Pool::new(
            url.as_str(),
            PoolOpts {
                max: 1,
                health_check_after: Some(Duration::ZERO),
                ..Default::default()
            },
        )?;
        let first = {
            let mut c = p.get().await?;
            id(&mut c).await?
        };
        // The idle connection's peer goes silent; new connections still work.
        relay
            .frozen_below
            .store(1, std::sync::atomic::Ordering::SeqCst);
        let mut c = p.get().await?;
        assert_ne!(id(&mut c).await?, first, "the silent one was replaced");
        assert_eq!(p.status().total, 1);
        Ok(())
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "relays to the private server (MYSQL_URL is set)"
)]
fn a_silent_peer_during_the_reset_on_return_frees_its_place() {
    let server = crate::support::server();
    let relay = freezing_relay(("127.0.0.1", server.port));
    run(async move {
        let url = format!(
            "mysql://root@127.0.0.1:{}/test?connect_timeout=1&ssl_mode=disabled",
            relay.port
        );
        let p = Pool::new(
            url.as_str(),
            PoolOpts {
                max: 1,
                reset_on_return: true,
                wait_timeout: None,
                ..Default::default()
            },
        )?;
        let mut c = p.get().await?;
        let first = id(&mut c).await?;
        relay
            .frozen_below
            .store(1, std::sync::atomic::Ordering::SeqCst);
        drop(c); // its reset gets no answer
        let mut c = p.get().await?; // waits for the reset to give up
        assert_ne!(id(&mut c).await?, first);
        assert_eq!(p.status().total, 1);
        Ok(())
    })
}

#[test]
fn metrics_count_what_the_pool_did() {
    run(async {
        let p = pool(PoolOpts {
            max: 1,
            wait_timeout: Some(Duration::from_millis(50)),
            health_check_after: None,
            ..Default::default()
        });
        let m0 = p.metrics();
        assert_eq!(m0, mysql_uring::PoolMetrics::default());
        {
            let mut c = p.get().await?;
            let m = p.metrics();
            assert_eq!((m.open, m.idle, m.gets, m.created), (1, 0, 1, 1));
            // A second caller waits, then times out.
            let e = p.get().await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Timeout);
            let m = p.metrics();
            assert_eq!((m.waits, m.wait_timeouts, m.waiting), (1, 1, 0));
            assert!(m.wait_time >= Duration::from_millis(40), "{m:?}");
            // Left half-read: settled on return, then idle.
            c.cmd_query("SELECT * FROM information_schema.COLLATIONS")
                .await?;
        }
        let c = p.get().await?; // waits for the settling, then gets it
        let m = p.metrics();
        assert_eq!(
            (m.cleaned, m.gets, m.created, m.closed),
            (1, 2, 1, 0),
            "{m:?}"
        );
        drop(c);
        assert_eq!(p.metrics().idle, 1);
        // A broken one is closed.
        {
            let mut c = p.get().await?;
            let id = c.connection_id();
            let mut admin = crate::conn().await?;
            admin.query_drop(&format!("KILL {id}")).await?;
            let _ = c.query_drop("DO 1").await;
            assert!(c.is_broken());
        }
        let m = p.metrics();
        assert_eq!((m.closed, m.open, m.idle), (1, 0, 0), "{m:?}");
        Ok(())
    })
}

/// A server that refuses more connections (here a user limited to 3 with
/// `MAX_USER_CONNECTIONS`, error 1226; a full server gives 1040) while the
/// pool holds some open: callers wait for those instead of failing, and the
/// pool backs off its connects. (With 20 open and 64 allowed, 36,710 of
/// 40,633 calls failed in 10 s and the pool made 29k refused connects.)
#[test]
#[cfg_attr(
    external_server,
    ignore = "creates a user limited to 3 connections (MYSQL_URL is set)"
)]
fn refused_connects_wait_for_an_open_connection_and_back_off() {
    run(async {
        let mut admin = crate::conn().await?;
        // Both accounts: over TCP '%' matches, over the socket 'localhost'.
        for host in ["%", "localhost"] {
            admin
                .query_drop(&format!("DROP USER IF EXISTS 'mu_limited'@'{host}'"))
                .await?;
            admin
                .query_drop(&format!(
                    "CREATE USER 'mu_limited'@'{host}' IDENTIFIED BY 'limited' \
                     WITH MAX_USER_CONNECTIONS 3"
                ))
                .await?;
            admin
                .query_drop(&format!("GRANT SELECT ON *.* TO 'mu_limited'@'{host}'"))
                .await?;
        }
        let opts = crate::opts().user("mu_limited").password("limited");
        let p = Pool::new(
            opts,
            PoolOpts {
                max: 8,
                ..Default::default()
            },
        )?;
        let failed = Rc::new(Cell::new(0u32));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (p, failed) = (p.clone(), failed.clone());
            tasks.push(mysql_uring::runtime::spawn(async move {
                for i in 0..40 {
                    let r = async {
                        let mut c = p.get().await?;
                        c.query(&format!("SELECT {t} * 1000 + {i}, SLEEP(0.002)"))
                            .await
                    }
                    .await;
                    if r.is_err() {
                        failed.set(failed.get() + 1);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let m = p.metrics();
        assert_eq!(failed.get(), 0, "calls failed: {m:?}");
        assert!(m.created <= 3 + 2, "{m:?}");
        assert!(
            m.connect_errors < 20,
            "the pool kept connecting into a full server: {m:?}"
        );
        drop(p);
        for host in ["%", "localhost"] {
            admin
                .query_drop(&format!("DROP USER 'mu_limited'@'{host}'"))
                .await?;
        }
        Ok(())
    })
}
