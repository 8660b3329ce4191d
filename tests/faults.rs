//! The server going away: killed mid-query, down at connect time, restarted.
//!
//! A separate test binary, so killing its private server cannot disturb the
//! other tests. Tests here run one at a time (they share one server).

use mysql_uring_testserver as support;

use std::sync::Mutex;
use std::time::Duration;

use mysql_uring::{ErrorKind, Opts, connect};

static SERIAL: Mutex<()> = Mutex::new(());

/// The private server: the tests that use it are ignored when `MYSQL_URL`
/// is set (the cfg `external_server`, from build.rs).
fn private() -> &'static support::TestServer {
    support::server()
}

fn opts(s: &support::TestServer) -> Opts {
    Opts::from_url(&s.root_url()).unwrap()
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "kills and restarts the private server (MYSQL_URL is set)"
)]
fn server_killed_mid_query_gives_an_io_error_and_recovery_works() {
    let s = private();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = mysql_uring::start(async {
        let mut c = connect(opts(s)).await?;
        let mut watcher = connect(opts(s)).await?;
        let id = c.connection_id();
        let q = mysql_uring::runtime::spawn(async move {
            let r = c.query_drop("SELECT SLEEP(30)").await;
            (r, c)
        });
        // Wait until the query is running on the server, then kill the server.
        for _ in 0..200 {
            let n: i64 = watcher
                .query(&format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id} AND INFO LIKE 'SELECT SLEEP%'"))
                .await?[0]
                .get(0)?;
            if n == 1 {
                break;
            }
            mysql_uring::runtime::sleep(Duration::from_millis(10)).await;
        }
        s.kill();
        let (r, mut c) = q.await.unwrap();
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e:?}");
        assert!(e.to_string().contains("closed the connection"), "{e}");
        assert!(c.is_broken());
        assert_eq!(c.ping().await.unwrap_err().kind(), ErrorKind::Broken);
        assert_eq!(watcher.ping().await.unwrap_err().kind(), ErrorKind::Io);

        // Down: connecting is refused, with the address in the message.
        let e = connect(opts(s)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e:?}");
        assert!(e.to_string().contains(&s.port.to_string()), "{e}");

        s.restart();
        let mut fresh = connect(opts(s)).await?;
        assert_eq!(fresh.query("SELECT 5").await?[0].get::<i32>(0)?, 5);
        fresh.close().await
    });
    if !s.is_running() {
        s.restart();
    }
    r.unwrap();
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "kills and restarts the private server (MYSQL_URL is set)"
)]
fn server_killed_while_idle_is_noticed_on_next_use() {
    let s = private();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = mysql_uring::start(async {
        let mut c = connect(opts(s)).await?;
        c.ping().await?;
        s.kill();
        let e = c.query("SELECT 1").await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Io), "{e:?}");
        s.restart();
        let mut c = connect(opts(s)).await?;
        c.ping().await?;
        c.close().await
    });
    if !s.is_running() {
        s.restart();
    }
    r.unwrap();
}

/// After a fast restart, a pool's idle connections are all dead (the server
/// closed them); the ring saw each close, so none is handed out: every call
/// after the restart succeeds, and none needs a ping to find out. (It used
/// to hand them out: 64 of the next 1,000 calls failed with Io.)
#[test]
#[cfg_attr(
    external_server,
    ignore = "kills and restarts the private server (MYSQL_URL is set)"
)]
fn a_pool_never_hands_out_a_connection_the_server_closed() {
    let s = private();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = mysql_uring::start(async {
        let popts = mysql_uring::PoolOpts {
            max: 8,
            // No ping: only what the ring saw can keep a dead one out.
            health_check_after: None,
            ..Default::default()
        };
        let pool = mysql_uring::Pool::new(opts(s), popts)?;
        // Eight idle connections.
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(pool.get().await?);
        }
        drop(held);
        assert_eq!(pool.status().idle, 8);
        s.kill();
        s.restart();
        // Let the loop see the closes (the restart itself takes longer).
        mysql_uring::runtime::sleep(Duration::from_millis(50)).await;
        let mut failed = 0;
        for i in 0..200 {
            let mut c = pool.get().await?;
            if c.query(&format!("SELECT {i}")).await.is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 0, "calls after the restart failed");
        assert!(pool.metrics().closed >= 8, "{:?}", pool.metrics());
        Ok::<_, mysql_uring::Error>(())
    });
    if !s.is_running() {
        s.restart();
    }
    r.unwrap();
}
