//! A private MariaDB server for mysql-uring's tests, examples, benchmarks and
//! benchmark tool: the one place any of them gets a server from.
//!
//! [`server()`] starts one `mariadbd` per process, the first time it is
//! called: a fresh data directory under the workspace's
//! `target/mysql-uring-test/<pid>/`, a free TCP port on 127.0.0.1, a Unix
//! socket, TLS with a private test CA ([`TestServer::tls`]), and the test
//! users of this crate's constants ([`NATIVE_USER`], …). The server is killed
//! when the process exits (`PR_SET_PDEATHSIG`), however it exits, and its
//! directory is removed at a normal exit (or by the next run when the process
//! was killed). Set `MYSQL_URING_KEEP_DATADIR=1` to keep it.
//!
//! When `MYSQL_URL` is set, [`test_url()`] returns it and no server is
//! started. Tests that need this server's users, or that kill and restart
//! it, are then ignored: the workspace's build scripts set the cfg
//! `external_server` when `MYSQL_URL` is set, and such tests carry
//! `#[cfg_attr(external_server, ignore = "why")]`, so `cargo test` reports
//! them as ignored, with the reason ([`external()`] tells code at run time).
//!
//! For tests of what a driver does with more than one server, two clusters,
//! each also started once per process at the first call and taken down with
//! it: [`replication()`], a primary and a read-only replica with GTID
//! replication (about a second to start), and [`galera()`], a three-node
//! Galera cluster (about three to five seconds). Their nodes are
//! [`TestServer`]s like the single server, with the same users and TLS
//! files, small buffer pools, and ports that stay theirs across restarts;
//! the clusters hand out each node's URL and a URL naming all of them
//! (`mysql://root@127.0.0.1:P1,127.0.0.1:P2/test`), kill, stop and restart
//! nodes, and wait for a replica to catch up or a Galera node to sync.
//!
//! The MariaDB server binaries, its client and the `openssl` tool come from
//! the system, and the Galera library for [`galera()`]; when they are
//! missing, the first call that needs them runs `scripts/install-mariadb.sh`
//! (apt-get; it asks first when run from a terminal outside CI).
//!
//! The crate does not depend on the driver: it starts processes and hands
//! out URLs and file paths, and runs the SQL that sets servers up or checks
//! them with the `mariadb` command-line client ([`TestServer::sql`]).
//!
//! ```no_run
//! let url = std::env::var("MYSQL_URL").unwrap_or_else(|_| mysql_uring_testserver::server().root_url());
//! # let _ = url;
//! ```
//!
//! Layout: `server` (the `mariadbd` processes: the process-wide server and
//! cluster nodes started with more configuration, start/kill/stop/restart,
//! SQL through the client, ports, the exit hook), `cluster` (the replication
//! pair and the Galera cluster, built from `server`'s nodes), `datadir` (data
//! directory templates under `target/`), `tls` (certificates), `users` (the
//! accounts made at every start), `tools` (finding or installing `mariadbd`,
//! the client, `openssl` and the Galera library), `skips` (the deprecated
//! self-skipping of tests, which libtest counted as passed).

mod cluster;
mod datadir;
mod server;
mod skips;
mod tls;
mod tools;
mod users;

pub use cluster::{
    GALERA_NODES, Galera, REPL_PASSWORD, REPL_USER, Replication, Role, galera, replication,
};
pub use server::{HOST, TestServer, external, server, test_url, transport};
#[allow(deprecated)]
pub use skips::{skip, skipped};
pub use tls::TlsFiles;
pub use users::{
    ED25519_PASSWORD, ED25519_USER, LIMITED_PASSWORD, LIMITED_USER, NATIVE_PASSWORD, NATIVE_USER,
    NOPASS_USER, ROOT_USER, SSL_PASSWORD, SSL_USER, TEST_DB, X509_PASSWORD, X509_USER,
};
