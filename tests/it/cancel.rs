//! Cancellation keeps the connection: every command is cut at each of its
//! await points (its future dropped there), with the server's reply arriving
//! before, during or after the cut, and the connection must then run the
//! next command correctly: the abandoned reply is read and discarded, a
//! half-prepared statement is closed, abandoned long data is reset, an
//! abandoned `begin` is rolled back. Exchanges that cannot be resumed
//! (change_user's authentication, LOAD DATA's file data) close the
//! connection with a clear error instead.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use mysql_uring::Value;
use mysql_uring::runtime::sleep;
use mysql_uring::{Connection, ErrorKind, Opts, Pool, PoolOpts, Result, SslMode};

use crate::run;

/// Polls `fut` until it has waited `n` times, then drops it there. Returns
/// its output if it finished first.
async fn cut_after<F: Future>(fut: F, n: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut waits = 0;
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => {
            waits += 1;
            if waits >= n {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }
    })
    .await
}

/// When the next command starts relative to the abandoned reply.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// At once: the reply arrives while the next command waits for it.
    During,
    /// After a pause: the whole reply has arrived before the next command.
    Before,
}

/// The connection answers a fresh query with its own result.
async fn works(c: &mut Connection, marker: usize) -> Result<()> {
    let sql = format!("SELECT {marker}, 'marker'");
    let rows = c.query(&sql).await?;
    assert_eq!(rows.len(), 1, "{sql}");
    assert_eq!(rows[0].get::<u64>(0)? as usize, marker);
    assert!(!c.is_broken());
    assert!(!c.has_pending_response());
    Ok(())
}

/// Cuts `cmd` at every await point in turn (for both timings), checking the
/// connection after each cut; returns how many cut points there were.
async fn cut_everywhere<C>(c: &mut Connection, what: &str, mut cmd: C) -> Result<usize>
where
    C: for<'a> FnMut(&'a mut Connection, usize) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>,
{
    let mut marker = 1000;
    for then in [Then::During, Then::Before] {
        let mut n = 1;
        loop {
            marker += 1;
            let finished = cut_after(cmd(c, marker), n).await.is_some();
            if let Then::Before = then {
                sleep(Duration::from_millis(80)).await;
            }
            works(c, marker)
                .await
                .unwrap_or_else(|e| panic!("{what}: cut at wait {n} ({then:?}): {e}"));
            if finished {
                if then == Then::Before {
                    return Ok(n - 1);
                }
                break;
            }
            n += 1;
            assert!(n < 200, "{what}: never finished");
        }
    }
    unreachable!()
}

impl PartialEq for Then {
    fn eq(&self, o: &Then) -> bool {
        matches!(
            (self, o),
            (Then::During, Then::During) | (Then::Before, Then::Before)
        )
    }
}

/// A connection with a scratch table `t (id INT PRIMARY KEY, v INT)`.
async fn setup(name: &str) -> Result<Connection> {
    setup_with(name, crate::opts()).await
}

/// The same on plain TCP and on TLS: the two send paths differ (plain sends
/// are fired without a completion, TLS sends are awaited).
fn transports() -> [(&'static str, Opts); 2] {
    [
        ("plain", crate::opts().ssl_mode(SslMode::Disabled)),
        ("TLS if offered", crate::opts()),
    ]
}

async fn setup_with(name: &str, opts: Opts) -> Result<Connection> {
    let mut c = mysql_uring::connect(opts).await?;
    crate::scratch_db(&mut c, name).await?;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await?;
    c.query_drop("INSERT INTO t VALUES (1, 10), (2, 20)")
        .await?;
    Ok(c)
}

#[test]
fn text_queries_cut_anywhere_leave_the_connection_usable() {
    run(async {
        for (how, opts) in transports() {
            eprintln!("{how}");
            let mut c = setup_with("cancel_text", opts).await?;
            let cuts = cut_everywhere(&mut c, "query_drop with a slow reply", |c, _| {
                Box::pin(async move {
                    let _ = c.query_drop("SELECT SLEEP(0.03)").await;
                })
            })
            .await?;
            assert!(cuts >= 1);
            cut_everywhere(&mut c, "query with a large result", |c, _| {
            Box::pin(async move {
                let rows = c
                    .query("SELECT a.ID, b.ID FROM information_schema.COLLATIONS a, information_schema.COLLATIONS b LIMIT 20000")
                    .await;
                if let Ok(rows) = rows {
                    assert_eq!(rows.len(), 20000);
                }
            })
        })
        .await?;
            cut_everywhere(
                &mut c,
                "cmd_query, a row, then next_row streaming",
                |c, _| {
                    Box::pin(async move {
                        if c.cmd_query("SELECT * FROM information_schema.COLLATIONS")
                            .await
                            .is_ok()
                        {
                            while let Ok(Some(row)) = c.next_row().await {
                                let _ = row.get_raw(0);
                            }
                        }
                    })
                },
            )
            .await?;
            cut_everywhere(&mut c, "a multi-statement-free pipeline", |c, _| {
                Box::pin(async move {
                    let r = c
                        .pipeline()
                        .query("SELECT SLEEP(0.01)")
                        .query("UPDATE t SET v = v + 1 WHERE id = 1")
                        .query("SELECT * FROM t")
                        .query("SELECT SLEEP(0.01)")
                        .run()
                        .await;
                    if let Ok(stages) = r {
                        assert_eq!(stages.len(), 4);
                    }
                })
            })
            .await?;
            cut_everywhere(&mut c, "ping", |c, _| {
                Box::pin(async move {
                    let _ = c.ping().await;
                })
            })
            .await?;
            cut_everywhere(&mut c, "select_db", |c, _| {
                Box::pin(async move {
                    let _ = c.select_db("it_cancel_text").await;
                })
            })
            .await?;
            cut_everywhere(&mut c, "reset", |c, _| {
                Box::pin(async move {
                    let _ = c.reset().await;
                })
            })
            .await?;
            c.select_db("it_cancel_text").await?;
            // Every UPDATE that ran, ran once: none was replayed by the drains.
            let v: i64 = c.query("SELECT v FROM t WHERE id = 1").await?[0].get(0)?;
            assert!(v >= 11, "{v}");
        }
        Ok(())
    })
}

#[test]
fn prepared_statements_cut_anywhere_leave_the_connection_usable() {
    run(async {
        for (how, opts) in transports() {
            eprintln!("{how}");
            let mut c = setup_with("cancel_stmt", opts).await?;
            // A new statement text each time: the cut can land inside the prepare.
            cut_everywhere(&mut c, "exec with its prepare", |c, m| {
                Box::pin(async move {
                    let sql = format!("SELECT v + ? FROM t WHERE id = 1 AND {m} = {m}");
                    if let Ok(rows) = c.exec(sql.as_str(), (1,)).await {
                        assert_eq!(rows[0].get::<i64>(0).unwrap(), 11);
                    }
                })
            })
            .await?;
            cut_everywhere(&mut c, "explicit prepare", |c, m| {
                Box::pin(async move {
                    let sql = format!("SELECT ? + {m}");
                    if let Ok(s) = c.prepare(&sql).await {
                        let _ = c.close_statement(&s).await;
                    }
                })
            })
            .await?;
            // The cached statement still runs, and the ones abandoned mid-prepare
            // were closed on the server (closes go out with the next statement).
            let one: Option<i64> = c
                .exec_first("SELECT ? + 0", (1,))
                .await?
                .map(|r| r.get(0).unwrap());
            assert_eq!(one, Some(1));
            let stats = c
            .query(
                "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')",
            )
            .await?;
            let count = |name: &str| -> i64 {
                stats
                    .iter()
                    .find(|r| r.get::<&str>(0).unwrap() == name)
                    .map(|r| r.get::<&str>(1).unwrap().parse().unwrap())
                    .unwrap()
            };
            let open = count("Com_stmt_prepare") - count("Com_stmt_close");
            assert!(
                open <= c.cached_statements() as i64 + 1,
                "{open} statements open on the server, {} cached",
                c.cached_statements()
            );
        }
        Ok(())
    })
}

#[test]
fn abandoned_long_data_is_reset_before_the_next_execute() {
    run(async {
        for (how, opts) in transports() {
            eprintln!("{how}");
            let mut c = setup_with("cancel_long", opts).await?;
            let big = vec![b'x'; 3 << 20]; // sent as long data, in chunks
            cut_everywhere(&mut c, "exec with long data", |c, _| {
                let big = big.clone();
                Box::pin(async move {
                    if let Ok(Some(r)) = c.exec_first("SELECT LENGTH(?)", (big,)).await {
                        assert_eq!(r.get::<i64>(0).unwrap(), 3 << 20);
                    }
                })
            })
            .await?;
            // The same statement with a small value: no leftover long data.
            let n: i64 = c
                .exec_first("SELECT LENGTH(?)", ("abc",))
                .await?
                .unwrap()
                .get(0)?;
            assert_eq!(n, 3);
        }
        Ok(())
    })
}

#[test]
fn bulk_inserts_and_transactions_cut_anywhere_stay_consistent() {
    run(async {
        for (how, opts) in transports() {
            eprintln!("{how}");
            let mut c = setup_with("cancel_bulk", opts).await?;
            c.query_drop("CREATE TABLE b (id INT PRIMARY KEY)").await?;
            cut_everywhere(&mut c, "execute_many", |c, m| {
                Box::pin(async move {
                    let base = m as i64 * 10_000;
                    let rows: Vec<(i64,)> = (0..3000).map(|i| (base + i,)).collect();
                    let _ = c.execute_many("INSERT INTO b (id) VALUES (?)", &rows).await;
                })
            })
            .await?;
            cut_everywhere(&mut c, "begin", |c, _| {
                Box::pin(async move {
                    if let Ok(tx) = c.begin().await {
                        let _ = tx.rollback().await;
                    }
                })
            })
            .await?;
            assert!(!c.in_transaction(), "an abandoned begin was rolled back");
            cut_everywhere(&mut c, "a transaction's update and commit", |c, m| {
                Box::pin(async move {
                    if let Ok(mut tx) = c.begin().await {
                        let ok = tx
                            .query_drop(&format!("UPDATE t SET v = {m} WHERE id = 2"))
                            .await
                            .is_ok();
                        if ok {
                            let _ = tx.commit().await;
                        }
                    }
                })
            })
            .await?;
            assert!(!c.in_transaction());
        }
        Ok(())
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn interrupted_exchanges_close_the_connection_with_a_clear_error() {
    run(async {
        let (user, pass) = (crate::support::NATIVE_USER, crate::support::NATIVE_PASSWORD);
        let mut n = 1;
        loop {
            let mut c = crate::conn().await?;
            let finished = cut_after(c.change_user(user, pass, None), n)
                .await
                .is_some();
            // Whoever holds the connection (a pool, a batch runner, a
            // program) can tell it is done for before using it again.
            let broken = c.is_broken();
            match c.query("SELECT 1").await {
                Ok(rows) => {
                    assert!(!broken, "is_broken() said unusable, yet it worked");
                    assert_eq!(rows[0].get::<i64>(0)?, 1)
                }
                Err(e) => {
                    assert!(broken, "is_broken() said usable, then: {e}");
                    assert_eq!(e.kind(), ErrorKind::Broken, "{e}");
                    assert!(e.to_string().contains("change_user was interrupted"), "{e}");
                }
            }
            if finished {
                break;
            }
            n += 1;
        }
        Ok(())
    })
}

#[test]
fn a_query_timeout_interrupts_the_statement_and_keeps_the_connection() {
    run(async {
        let opts = crate::opts().query_timeout(Some(Duration::from_millis(200)));
        let mut c = mysql_uring::connect(opts).await?;
        let t0 = Instant::now();
        let e = c.query_drop("SELECT SLEEP(30)").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.to_string().contains("stays usable"), "{e}");
        assert!(!c.is_broken());
        // The KILL QUERY ended the sleep: the next command does not wait 30 s.
        assert_eq!(c.query("SELECT 3").await?[0].get::<i64>(0)?, 3);
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
        Ok(())
    })
}

#[test]
fn an_abandoned_reply_that_does_not_end_is_interrupted_after_the_drain_timeout() {
    run(async {
        let opts: Opts = crate::opts().drain_timeout(Duration::from_millis(200));
        let mut c = mysql_uring::connect(opts).await?;
        // Dropped (no query timeout): nobody interrupts it until the drain does.
        assert!(
            cut_after(c.query_drop("SELECT SLEEP(30)"), 1)
                .await
                .is_none()
        );
        let t0 = Instant::now();
        assert_eq!(c.query("SELECT 4").await?[0].get::<i64>(0)?, 4);
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
        Ok(())
    })
}

#[test]
fn a_pooled_connection_with_an_abandoned_reply_is_cleaned_then_reused() {
    run(async {
        let p = Pool::new(
            crate::opts(),
            PoolOpts {
                max: 1,
                ..Default::default()
            },
        )?;
        let first = {
            let mut c = p.get().await?;
            let id = c.connection_id();
            assert!(
                cut_after(c.query_drop("SELECT SLEEP(0.05)"), 1)
                    .await
                    .is_none()
            );
            assert!(c.has_pending_response());
            id
        };
        let mut c = p.get().await?;
        assert_eq!(c.connection_id(), first, "reused, not replaced");
        works(&mut c, 7).await
    })
}

#[test]
fn a_dropped_transaction_on_a_pooled_connection_releases_its_locks_on_return() {
    run(async {
        let mut setup_c = setup("cancel_locks").await?;
        let p = Pool::new(
            crate::opts().database("it_cancel_locks"),
            PoolOpts {
                max: 1,
                ..Default::default()
            },
        )?;
        {
            let mut c = p.get().await?;
            let mut tx = c.begin().await?;
            tx.query_drop("UPDATE t SET v = 99 WHERE id = 1").await?;
            // Dropped without commit or rollback, then the connection returns.
        }
        // Once the pool hands the connection out again it has rolled back...
        let c = p.get().await?;
        assert!(!c.in_transaction());
        drop(c);
        // ...so another session takes the row lock at once.
        setup_c
            .query_drop("SET SESSION innodb_lock_wait_timeout = 1")
            .await?;
        setup_c
            .query_drop("UPDATE t SET v = 11 WHERE id = 1")
            .await?;
        let v: i64 = setup_c.query("SELECT v FROM t WHERE id = 1").await?[0].get(0)?;
        assert_eq!(v, 11, "the dropped transaction's update was rolled back");
        Ok(())
    })
}

/// An execute cut while its reply is on its way: the reply (with column
/// definitions the statement's last execute did not have) is read by the
/// next command, which must keep them, because MariaDB's metadata cache
/// then omits them. The next execute decodes with the right types. (It
/// used to decode a BIGINT 8 as the DOUBLE bits 4e-323, for good.)
#[test]
fn a_cut_execute_leaves_no_stale_column_types_behind() {
    run(async {
        for (how, opts) in transports() {
            let mut c = mysql_uring::connect(opts).await?;
            const SQL: &str = "SELECT ? + 1, SLEEP(?)";
            let rows = c.exec(SQL, (1.5f64, 0.0f64)).await?;
            assert_eq!(rows[0].get::<Value>(0)?, Value::Double(2.5), "{how}");
            // Integer parameter: the result column becomes BIGINT; cut
            // while the server sleeps.
            assert!(cut_after(c.exec(SQL, (5i64, 0.05f64)), 1).await.is_none());
            for x in [7i64, 8, 9] {
                let rows = c.exec(SQL, (x, 0.0f64)).await?;
                assert_eq!(rows[0].get::<Value>(0)?, Value::Int(x + 1), "{how}");
            }
        }
        Ok(())
    })
}

/// Six `SELECT SLEEP(5)` abandoned after 100 ms each, through a pool of one
/// connection: each is interrupted (KILL QUERY) within the kill grace, so
/// every next query answers in well under a second, and nothing abandoned
/// keeps running on the server. (Each used to cost the next user 4.9 s.)
#[test]
fn abandoned_statements_are_interrupted_at_once_through_a_pool_of_one() {
    run(async {
        let p = Pool::new(
            crate::opts(),
            PoolOpts {
                max: 1,
                ..Default::default()
            },
        )?;
        let mut watcher = crate::conn().await?;
        for i in 0..6 {
            let abandoned = mysql_uring::runtime::timeout(Duration::from_millis(100), async {
                let mut c = p.get().await?;
                c.query_drop("SELECT SLEEP(5)").await
            })
            .await;
            assert!(abandoned.is_err(), "round {i}: the sleep was not cut");
            let t0 = Instant::now();
            let mut c = p.get().await?;
            assert_eq!(c.query(&format!("SELECT {i}")).await?[0].get::<i64>(0)?, i);
            let took = t0.elapsed();
            assert!(
                took < Duration::from_secs(1),
                "round {i}: the next query took {took:?}"
            );
        }
        sleep(Duration::from_secs(1)).await;
        let running: i64 = watcher
            .query(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'SELECT SLEEP(5)%'",
            )
            .await?[0]
            .get(0)?;
        assert_eq!(running, 0, "abandoned statements still run on the server");
        Ok(())
    })
}
