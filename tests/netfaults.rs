//! Real network faults, made with iptables inside a network namespace this
//! test creates (loopback only; the machine's own network is untouched).
//!
//! Each test re-runs this binary under `unshare --net` with only itself
//! selected; inside, loopback is brought up, a private mariadbd starts on
//! it, and iptables rules drop or reset the server's packets while the
//! driver works:
//! - replies lost after a write reached the server: the write is applied
//!   and the driver reports commit-unknown, never a plain retryable error;
//! - the server vanishes (every packet dropped): a pool checkout ends at its
//!   one deadline with a typed error instead of pinging idle connections in
//!   turn;
//! - the connection is reset: a typed error (commit-unknown, as the command
//!   was sent), and a pool of one replaces the dead connection.
//!
//! Needs root (network namespaces) and iptables (`scripts/install-mariadb.sh
//! --netfaults` installs it); without them the tests are reported ignored,
//! with the reason. Its own harness (libtest-mimic), since only running
//! can tell.

use libtest_mimic::{Arguments, Completion, Trial};
use mysql_uring_testserver as support;

use std::process::Command;
use std::time::{Duration, Instant};

use mysql_uring::{ErrorKind, Opts, Pool, PoolOpts, connect};

/// Set in the re-run inside the namespace.
const INSIDE: &str = "MYSQL_URING_NETNS";

/// Runs `body` inside a fresh network namespace: re-runs this test binary
/// there with only `test` selected and fails if that run fails.
fn in_netns(test: &str, body: impl FnOnce(&support::TestServer)) {
    if std::env::var_os(INSIDE).is_some() {
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(
            matches!(up, Ok(s) if s.success()),
            "ip link set lo up: {up:?}"
        );
        body(support::server());
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        // The namespace reaches no outside server: always the private one.
        .env_remove("MYSQL_URL")
        .env_remove("MYSQL_TEST_TRANSPORT")
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{test} inside a network namespace failed:\n{text}"
    );
}

/// Why this machine cannot run the tests, if it cannot.
fn missing_tools() -> Option<String> {
    for tool in ["unshare", "ip", "iptables"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "needs {tool} (scripts/install-mariadb.sh installs iptables)"
            ));
        }
    }
    let probe = Command::new("unshare")
        .args(["--net", "--", "iptables", "-L", "-n"])
        .output();
    match probe {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "needs root for network namespaces and iptables: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("unshare: {e}")),
    }
}

/// Adds (`-A`) or deletes (`-D`) an iptables rule in this namespace.
fn iptables(op: &str, rule: &str) {
    let mut args = vec![op];
    args.extend(rule.split_whitespace());
    let st = Command::new("iptables").args(&args).status();
    assert!(
        matches!(st, Ok(s) if s.success()),
        "iptables {args:?}: {st:?}"
    );
}

/// A rule that stays in place until dropped.
struct Rule(String);

impl Rule {
    fn add(rule: String) -> Rule {
        iptables("-A", &rule);
        Rule(rule)
    }
}

impl Drop for Rule {
    fn drop(&mut self) {
        iptables("-D", &self.0);
    }
}

/// Plain TCP to the private server (the faults are on its TCP port).
fn opts(s: &support::TestServer) -> Opts {
    Opts::from_url(&format!("{}?ssl_mode=disabled", s.root_url())).unwrap()
}

fn a_write_whose_reply_is_lost_is_commit_unknown_and_was_applied() {
    in_netns(
        "a_write_whose_reply_is_lost_is_commit_unknown_and_was_applied",
        |s| {
            let port = s.port;
            let r: mysql_uring::Result<()> = mysql_uring::start(async {
                let base = opts(s);
                let mut admin = connect(base.clone()).await?;
                admin
                    .query_drop("CREATE DATABASE IF NOT EXISTS netfaults")
                    .await?;
                admin
                    .query_drop("CREATE OR REPLACE TABLE netfaults.w (id INT PRIMARY KEY)")
                    .await?;
                let mut c = connect(base.query_timeout(Some(Duration::from_millis(500)))).await?;
                c.query_drop("SELECT 1").await?;
                // From here every packet from the server is dropped: the
                // INSERT reaches the server, its OK never comes back.
                let rule = Rule::add(format!("INPUT -p tcp --sport {port} -j DROP"));
                let e = c
                    .query_drop("INSERT INTO netfaults.w VALUES (1)")
                    .await
                    .expect_err("the reply was dropped");
                drop(rule);
                eprintln!("reply lost: {e}");
                assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
                assert!(
                    e.is_commit_unknown(),
                    "a sent write without its reply must be commit-unknown: {e}"
                );
                // And it was applied: retrying blindly would have duplicated it.
                let mut check = connect(opts(s)).await?;
                let (n,): (i64,) = check
                    .query_first_as("SELECT COUNT(*) FROM netfaults.w WHERE id = 1")
                    .await?
                    .unwrap();
                assert_eq!(n, 1);
                check.query_drop("DROP DATABASE netfaults").await?;
                Ok(())
            });
            r.unwrap();
        },
    );
}

fn a_vanished_server_costs_a_pool_checkout_one_deadline() {
    in_netns(
        "a_vanished_server_costs_a_pool_checkout_one_deadline",
        |s| {
            let port = s.port;
            let r: mysql_uring::Result<()> = mysql_uring::start(async {
                let pool = Pool::new(
                    opts(s)
                        .connect_timeout(Some(Duration::from_millis(500)))
                        .query_timeout(Some(Duration::from_millis(500))),
                    PoolOpts {
                        max: 4,
                        wait_timeout: Some(Duration::from_secs(1)),
                        // Every idle connection is checked before use.
                        health_check_after: Some(Duration::ZERO),
                        ..Default::default()
                    },
                )?;
                // Four idle connections, all working.
                let held: Vec<_> = futures_all(&pool, 4).await?;
                drop(held);
                assert_eq!(pool.status().idle, 4);
                // The host vanishes: nothing in or out, no FIN, no RST.
                let _rule = Rule::add(format!("INPUT -p tcp --dport {port} -j DROP"));
                let t = Instant::now();
                let e = match pool.get().await {
                    Ok(mut c) => c.query_drop("SELECT 1").await.expect_err("no server"),
                    Err(e) => e,
                };
                let took = t.elapsed();
                eprintln!("checkout with the host gone: {took:?}: {e}");
                assert!(
                    matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Io),
                    "typed: {e}"
                );
                // One checkout deadline (1 s, with slack for a loaded
                // machine): not a health check per idle connection (4 x 500
                // ms), nor a connect timeout on top of them.
                assert!(
                    took < Duration::from_millis(1400),
                    "the checkout took {took:?}: {e}"
                );
                Ok(())
            });
            r.unwrap();
        },
    );
}

fn a_reset_connection_is_typed_and_the_pool_replaces_it() {
    in_netns(
        "a_reset_connection_is_typed_and_the_pool_replaces_it",
        |s| {
            let port = s.port;
            let r: mysql_uring::Result<()> = mysql_uring::start(async {
                let pool = Pool::new(
                    opts(s).connect_timeout(Some(Duration::from_secs(2))),
                    PoolOpts {
                        max: 1,
                        ..Default::default()
                    },
                )?;
                let mut c = pool.get().await?;
                c.query_drop("SELECT 1").await?;
                // The next packet the client sends is answered by a reset.
                let rule = Rule::add(format!(
                    "INPUT -p tcp --dport {port} -j REJECT --reject-with tcp-reset"
                ));
                let e = c
                    .query_drop("DO 1")
                    .await
                    .expect_err("the connection was reset");
                drop(rule);
                eprintln!("reset: {e}");
                assert_eq!(e.kind(), ErrorKind::Io, "{e}");
                assert!(e.is_commit_unknown(), "sent, then reset: {e}");
                // Back to a pool of one: the next checkout must not be the dead one.
                drop(c);
                let mut fresh = pool.get().await?;
                let (one,): (i64,) = fresh.query_first_as("SELECT 1").await?.unwrap();
                assert_eq!(one, 1);
                assert_eq!(pool.metrics().created, 2, "{:?}", pool.metrics());
                Ok(())
            });
            r.unwrap();
        },
    );
}

/// Checks out `n` connections at once.
async fn futures_all(pool: &Pool, n: usize) -> mysql_uring::Result<Vec<mysql_uring::PooledConn>> {
    let mut out = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let p = pool.clone();
        tasks.push(mysql_uring::runtime::spawn(async move { p.get().await }));
    }
    for t in tasks {
        out.push(t.await.expect("task")?);
    }
    Ok(out)
}

fn main() {
    let args = Arguments::from_args();
    // Inside the namespace the tools are there by construction.
    let missing = if std::env::var_os(INSIDE).is_some() {
        None
    } else {
        missing_tools()
    };
    let tests: [(&str, fn()); 3] = [
        (
            "a_write_whose_reply_is_lost_is_commit_unknown_and_was_applied",
            a_write_whose_reply_is_lost_is_commit_unknown_and_was_applied,
        ),
        (
            "a_vanished_server_costs_a_pool_checkout_one_deadline",
            a_vanished_server_costs_a_pool_checkout_one_deadline,
        ),
        (
            "a_reset_connection_is_typed_and_the_pool_replaces_it",
            a_reset_connection_is_typed_and_the_pool_replaces_it,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            let missing = missing.clone();
            Trial::ignorable_test(name, move || {
                if let Some(why) = missing {
                    return Ok(Completion::ignored_with(why));
                }
                std::panic::catch_unwind(f)
                    .map(|()| Completion::Completed)
                    .map_err(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "panicked".into())
                            .into()
                    })
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}
