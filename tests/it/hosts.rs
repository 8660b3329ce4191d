//! Several hosts in one URL, against the one test server plus ports where
//! nothing listens: failover in order, errors that name every host, the deny
//! list, load balancing, the read route's fallback, and what a connection
//! lost inside a transaction returns. The real clusters (a replicated pair,
//! Galera) are tested in `tests/cluster.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mysql_uring::{Client, ErrorKind, HostMode, Opts, Role};

use crate::{run, support};

/// A TCP port on 127.0.0.1 where nothing listens (bound, then closed).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The test server's URL with `hosts` in place of the authority's host list
/// (and `query` in place of its options). Over TCP even when the tests run
/// over the private server's Unix socket (its URL names its TCP port too);
/// the tests that use it are ignored when `MYSQL_URL` names a socket (the
/// cfg `external_socket`, from build.rs).
fn with_hosts(hosts: &str, query: &str) -> String {
    let base = support::test_url();
    let u = url_parts(&base);
    format!("mysql://{}@{hosts}/{}?{query}", u.0, u.1)
}

/// `user[:password]` and the database of a one-host URL.
fn url_parts(url: &str) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
    let userinfo = auth.rsplit_once('@').map(|(u, _)| u).unwrap_or("root");
    let db = path.split('?').next().unwrap_or("");
    (userinfo.to_string(), db.to_string())
}

fn real() -> String {
    let o = crate::opts();
    format!("{}:{}", o.get_host(), o.get_port())
}

#[test]
#[cfg_attr(
    external_socket,
    ignore = "several hosts need the test server over TCP (MYSQL_URL names a Unix socket)"
)]
fn sequential_fails_over_in_order_and_denies_the_dead_host() {
    let dead = dead_port();
    let url = with_hosts(&format!("127.0.0.1:{dead},{}", real()), "hosts=sequential");
    run(async move {
        let opts = Opts::from_url(&url)?;
        let mut c = mysql_uring::connect(&opts).await?;
        assert_eq!(c.host_index(), Some(1), "the dead first host is skipped");
        assert_eq!(c.query("SELECT 1").await?[0].get::<i64>(0)?, 1);
        let st = opts.host_set().unwrap().status();
        assert_eq!(st[0].failures, 1);
        assert!(
            st[0].denied_for.is_some(),
            "the dead host is denied for a while"
        );
        assert!(
            st[0].why.as_deref().unwrap().contains("refused"),
            "{:?}",
            st[0].why
        );
        assert_eq!((st[1].failures, st[1].open), (0, 1));
        // Next time the live host is tried first (the dead one goes last).
        let c2 = mysql_uring::connect(&opts).await?;
        assert_eq!(c2.host_index(), Some(1));
        assert_eq!(
            opts.host_set().unwrap().status()[0].failures,
            1,
            "not tried again"
        );
        drop((c, c2));
        assert_eq!(
            opts.host_set().unwrap().status()[1].open,
            0,
            "closed connections are counted down"
        );
        Ok(())
    });
}

#[test]
fn when_every_host_fails_the_error_names_each() {
    let (a, b) = (dead_port(), dead_port());
    let url = with_hosts(&format!("127.0.0.1:{a},127.0.0.1:{b}"), "connect_timeout=2");
    run(async move {
        let e = mysql_uring::connect(&url).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("127.0.0.1:{a}")) && msg.contains(&format!("127.0.0.1:{b}")),
            "{msg}"
        );
        assert!(msg.contains("refused"), "{msg}");
        assert!(e.is_fatal() && !e.is_retryable());
        Ok(())
    });
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "wrong password over several hosts: needs the private server users"
)]
fn a_wrong_password_is_not_retried_on_other_hosts() {
    let dead = dead_port();
    let s = support::server();
    let url = format!(
        "mysql://{}:wrong@{},127.0.0.1:{dead}/",
        support::NATIVE_USER,
        real()
    );
    let _ = s;
    run(async move {
        let opts = Opts::from_url(&url)?;
        let e = mysql_uring::connect(&opts).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert_eq!(e.code(), Some(1045));
        let st = opts.host_set().unwrap().status();
        assert_eq!(st[1].failures, 0, "the second host was never tried");
        assert_eq!(
            st[0].failures, 0,
            "a wrong password says nothing about the host"
        );
        Ok(())
    });
}

#[test]
#[cfg_attr(
    external_socket,
    ignore = "several hosts need the test server over TCP (MYSQL_URL names a Unix socket)"
)]
fn loadbalance_spreads_connections_by_load() {
    // Two names for the one server: two hosts as far as the driver knows.
    let o = crate::opts();
    let url = with_hosts(
        &format!("{},localhost:{}", real(), o.get_port()),
        "hosts=loadbalance",
    );
    run(async move {
        let opts = Opts::from_url(&url)?;
        let mut conns = Vec::new();
        for _ in 0..6 {
            conns.push(mysql_uring::connect(&opts).await?);
        }
        let st = opts.host_set().unwrap().status();
        assert_eq!((st[0].open, st[1].open), (3, 3), "{st:?}");
        conns.truncate(1);
        let st = opts.host_set().unwrap().status();
        assert_eq!(st[0].open + st[1].open, 1);
        Ok(())
    });
}

#[test]
#[cfg_attr(
    external_socket,
    ignore = "several hosts need the test server over TCP (MYSQL_URL names a Unix socket)"
)]
fn replication_mode_with_no_replica_reads_from_the_primary_unless_told_not_to() {
    let dead = dead_port();
    let url = with_hosts(&format!("{},127.0.0.1:{dead}", real()), "hosts=replication");
    run(async move {
        let opts = Opts::from_url(&url)?;
        let w = mysql_uring::connect(&opts).await?;
        assert_eq!(w.host_index(), Some(0), "the writable primary");
        // Reads: the only replica is down, so the primary serves them.
        let r = mysql_uring::connect(opts.clone().role(Role::Read)).await?;
        assert_eq!(r.host_index(), Some(0));
        // Told not to fall back: no server for reads, and the error says why.
        let strict = Opts::from_url(&format!("{url}&read_fallback=false"))?.role(Role::Read);
        let e = mysql_uring::connect(strict).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let msg = e.to_string();
        assert!(
            msg.contains("no server for reads") && msg.contains("not a replica"),
            "{msg}"
        );
        assert!(msg.contains(&format!("127.0.0.1:{dead}")), "{msg}");
        Ok(())
    });
}

#[test]
#[cfg_attr(
    external_socket,
    ignore = "several hosts need the test server over TCP (MYSQL_URL names a Unix socket)"
)]
fn galera_mode_takes_a_server_without_wsrep_as_ready() {
    let dead = dead_port();
    let url = with_hosts(&format!("127.0.0.1:{dead},{}", real()), "hosts=galera");
    run(async move {
        let mut c = mysql_uring::connect(&url).await?;
        assert_eq!(c.host_index(), Some(1));
        c.ping().await?;
        let o = Opts::new().hosts([("127.0.0.1", dead)], HostMode::Galera)?;
        let e = mysql_uring::connect(o).await.unwrap_err();
        assert!(e.to_string().contains("no ready Galera node"), "{e}");
        Ok(())
    });
}

#[test]
fn a_connection_lost_inside_a_transaction_is_a_typed_error() {
    run(async {
        let mut killer = crate::conn().await?;
        let mut c = crate::conn().await?;
        let db = crate::scratch_db(&mut c, "tx_lost").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY)").await?;
        // Outside a transaction: the plain I/O error.
        killer
            .query_drop(&format!("KILL {}", c.connection_id()))
            .await?;
        let e = c.query_drop("SELECT 1").await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Io | ErrorKind::Server),
            "{e:?}"
        );
        assert_ne!(e.kind(), ErrorKind::TransactionLost);

        let mut c = crate::conn().await?;
        c.select_db(&db).await?;
        let mut tx = c.begin().await?;
        tx.query_drop("INSERT INTO t VALUES (1)").await?;
        killer
            .query_drop(&format!("KILL {}", tx.connection_id()))
            .await?;
        let e = tx.query_drop("INSERT INTO t VALUES (2)").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TransactionLost, "{e:?}");
        assert!(e.is_retryable() && !e.is_commit_unknown() && e.is_fatal());
        assert!(e.to_string().contains("none of it was committed"), "{e}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the I/O cause is kept"
        );
        drop(tx);
        let n: i64 = killer
            .query(&format!("SELECT COUNT(*) FROM {db}.t"))
            .await?[0]
            .get(0)?;
        assert_eq!(n, 0, "the server rolled the transaction back");
        Ok(())
    });
}

#[test]
fn deadlocks_are_conflicts_and_transaction_retry_reruns_the_whole_transaction() {
    let url = support::test_url();
    let client = Client::builder().cores(1).build(url.as_str()).unwrap();
    let bc = client.blocking();
    bc.with_conn(async |c| {
        crate::scratch_db(c, "tx_retry").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, n INT)")
            .await?;
        c.query_drop("INSERT INTO t VALUES (1, 0), (2, 0)").await?;
        Ok(())
    })
    .unwrap();

    // A real deadlock between two transactions on two connections.
    let e = bc
        .with_conn(async |_| {
            let mut a = mysql_uring::connect(crate::opts()).await?;
            let mut b = mysql_uring::connect(crate::opts()).await?;
            a.select_db("it_tx_retry").await?;
            b.select_db("it_tx_retry").await?;
            a.query_drop("BEGIN").await?;
            b.query_drop("BEGIN").await?;
            a.query_drop("UPDATE t SET n = n + 1 WHERE id = 1").await?;
            b.query_drop("UPDATE t SET n = n + 1 WHERE id = 2").await?;
            // a waits for b's row; b then asks for a's: one of them loses.
            let wait_a = mysql_uring::runtime::spawn(async move {
                let r = a
                    .query_drop("UPDATE t SET n = n + 1 WHERE id = 2")
                    .await
                    .map(|_| ());
                let _ = a.query_drop("ROLLBACK").await;
                r
            });
            mysql_uring::runtime::sleep(std::time::Duration::from_millis(200)).await;
            let rb = b
                .query_drop("UPDATE t SET n = n + 1 WHERE id = 1")
                .await
                .map(|_| ());
            let _ = b.query_drop("ROLLBACK").await;
            let ra = wait_a
                .await
                .map_err(|e| mysql_uring::Error::other(e.to_string()))?;
            Ok(ra.err().or(rb.err()).expect("one of them deadlocks"))
        })
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
    assert_eq!(e.code(), Some(1213));
    assert!(e.is_retryable() && !e.is_fatal());

    // transaction_retry: the first run loses its connection mid-transaction,
    // the second commits; the row is there once.
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let out = bc
        .transaction_retry(3, async move |tx| {
            let run = r.fetch_add(1, Ordering::SeqCst) + 1;
            tx.query_drop("INSERT INTO it_tx_retry.t VALUES (3, 0)")
                .await?;
            if run == 1 {
                let mut k = mysql_uring::connect(crate::opts()).await?;
                k.query_drop(&format!("KILL {}", tx.connection_id()))
                    .await?;
            }
            tx.query_drop("UPDATE it_tx_retry.t SET n = n + 1 WHERE id = 3")
                .await?;
            Ok(run)
        })
        .unwrap();
    assert_eq!(out, 2);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let n: i64 = bc
        .with_conn(async |c| {
            c.query("SELECT SUM(n) FROM it_tx_retry.t WHERE id = 3")
                .await?[0]
                .get(0)
        })
        .unwrap();
    assert_eq!(n, 1, "committed once");

    // Not retryable: the application's own error is returned at once.
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let e = bc
        .transaction_retry(5, async move |_tx| -> mysql_uring::Result<()> {
            r.fetch_add(1, Ordering::SeqCst);
            Err(mysql_uring::Error::other("no"))
        })
        .unwrap_err();
    assert_eq!(
        (e.kind(), runs.load(Ordering::SeqCst)),
        (ErrorKind::Other, 1)
    );
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "prefer_socket needs the private server on this machine"
)]
fn prefer_socket_moves_a_local_tcp_connection_to_the_socket() {
    run(async {
        let how = async |o: Opts| -> mysql_uring::Result<String> {
            let mut c = mysql_uring::connect(o).await?;
            c.query("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
                .await?[0]
                .get(0)
        };
        // Over TCP whatever transport the suite runs on.
        let over_tcp = Opts::from_url(&support::server().root_url())?;
        let tcp = how(over_tcp.clone()).await?;
        assert!(tcp.contains(':'), "over TCP the host has a port: {tcp}");
        let sock = how(over_tcp.prefer_socket(true)).await?;
        assert_eq!(sock, "localhost", "over the socket");
        Ok(())
    });
}

#[test]
fn url_pool_sizes_bound_a_client() {
    let url = format!(
        "{}{}pool_max=2",
        support::test_url(),
        if support::test_url().contains('?') {
            "&"
        } else {
            "?"
        }
    );
    let client = Client::builder().cores(1).build(url.as_str()).unwrap();
    let bc = client.blocking();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            client.with_conn(async |c| {
                c.query_drop("DO SLEEP(0.05)").await?;
                Ok(())
            })
        })
        .collect();
    for call in calls {
        futures::executor::block_on(call).unwrap();
    }
    let m = bc
        .with_conn(async |_| Ok(()))
        .map(|_| client.pool_metrics())
        .unwrap();
    assert!(m.created <= 2, "pool_max=2 from the URL: {m:?}");
    assert!(m.waits > 0, "calls waited for a connection: {m:?}");
}
