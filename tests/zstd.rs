//! The compressed protocol with zstd against the real server: the zlib
//! tests of tests/it/compress.rs (the same helpers,
//! tests/common/compressed.rs) with zstd.
//!
//! zstd is MySQL 8.0.18+ only: MariaDB offers zlib alone. Whether these can
//! run is known only once the server answers (and it needs the crate's
//! `zstd` feature), and a `#[test]` cannot report itself ignored at run
//! time, so this binary has its own harness (libtest-mimic, `harness =
//! false`): each test asks the server first and, when it cannot run, is
//! reported `ignored` with the reason, counted as such in the summary line,
//! never as passed.
//!
//! Run them against a MySQL 8:
//! `MYSQL_URL=mysql://root@host:3306/test cargo test --features zstd --test zstd`.

use std::sync::Mutex;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use mysql_uring::Compression as Algorithm;
use mysql_uring::{Connection, Opts};
use mysql_uring_testserver as support;

#[path = "common/compressed.rs"]
mod compressed;

const ZSTD: Algorithm = Algorithm::Zstd(5);

/// Options for the test server as root.
fn opts() -> Opts {
    Opts::from_url(&support::test_url()).expect("test URL parses")
}

/// The scratch databases made, dropped when the tests are done.
static SCRATCH: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A database name unique to this test, created empty and selected.
async fn scratch_db(c: &mut Connection, name: &str) -> mysql_uring::Result<String> {
    let db = format!("it_{name}");
    c.query_drop(&format!("DROP DATABASE IF EXISTS {db}"))
        .await?;
    c.query_drop(&format!("CREATE DATABASE {db}")).await?;
    c.select_db(&db).await?;
    SCRATCH
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(db.clone());
    Ok(db)
}

/// Why zstd cannot be tested here, or `None` when it can: asks the server
/// (never started for this: without `MYSQL_URL` the server is the private
/// MariaDB).
async fn zstd_unavailable() -> mysql_uring::Result<Option<String>> {
    if !support::external() {
        return Ok(Some(
            "zstd protocol compression is MySQL 8.0.18+ only, and the private server is \
             MariaDB, which offers zlib alone (tested by the zlib variants in tests/it); \
             point MYSQL_URL at a MySQL 8.0.18+ and build with --features zstd"
                .into(),
        ));
    }
    if cfg!(not(feature = "zstd")) {
        return Ok(Some(
            "built without the zstd feature (cargo test --features zstd --test zstd)".into(),
        ));
    }
    let mut c = mysql_uring::connect(opts()).await?;
    let why = if c.is_mariadb() {
        Some(format!(
            "zstd protocol compression is MySQL 8.0.18+ only; the server ({}) is MariaDB, \
             which offers zlib alone (tested by the zlib variants in tests/it)",
            c.server_version()
        ))
    } else {
        let algs = match c.query("SELECT @@protocol_compression_algorithms").await {
            Ok(r) => r[0].get::<Option<String>>(0)?.unwrap_or_default(),
            Err(_) => String::new(),
        };
        (!algs.to_ascii_lowercase().contains("zstd")).then(|| {
            format!(
                "the server ({}) does not offer zstd (protocol_compression_algorithms = \
                 '{algs}'; zstd is MySQL 8.0.18+)",
                c.server_version()
            )
        })
    };
    c.close().await?;
    Ok(why)
}

/// Why the 16 MiB test cannot run on the server, or `None`.
async fn too_small_for_16_mib() -> mysql_uring::Result<Option<String>> {
    let mut c = mysql_uring::connect(opts()).await?;
    let max: u64 = c.query("SELECT @@max_allowed_packet").await?[0].get(0)?;
    c.close().await?;
    Ok((max < 40 << 20).then(|| format!("needs max_allowed_packet >= 40M; the server has {max}")))
}

/// A trial that asks the server first: ignored with the reason when zstd
/// (or what `also` checks) is not there, else `body`.
fn trial<B, C>(name: &str, also: C, body: B) -> Trial
where
    B: AsyncFnOnce() -> mysql_uring::Result<()> + Send + 'static,
    C: AsyncFnOnce() -> mysql_uring::Result<Option<String>> + Send + 'static,
{
    Trial::ignorable_test(name, move || {
        mysql_uring::start(async move {
            if let Some(why) = zstd_unavailable().await? {
                return Ok(Completion::ignored_with(why));
            }
            if let Some(why) = also().await? {
                return Ok(Completion::ignored_with(why));
            }
            body().await.map(|()| Completion::Completed)
        })
        .map_err(|e| Failed::from(format!("{e}\n{e:?}")))
    })
}

async fn nothing_else() -> mysql_uring::Result<Option<String>> {
    Ok(None)
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![
        trial(
            "zstd_queries_results_and_statements_round_trip_on_mysql_8",
            nothing_else,
            async || compressed::queries_results_and_statements(ZSTD).await,
        ),
        trial(
            "zstd_packets_across_16_mib_round_trip_on_mysql_8",
            too_small_for_16_mib,
            async || compressed::across_16_mib(ZSTD).await,
        ),
        trial(
            "zstd_load_data_and_multi_results_continue_the_compressed_sequence_on_mysql_8",
            nothing_else,
            async || compressed::load_data_and_multi_results(ZSTD, "compress_load_zstd").await,
        ),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    let made = std::mem::take(&mut *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()));
    if !made.is_empty() {
        let dropped = mysql_uring::start(async move {
            let mut c = mysql_uring::connect(opts()).await?;
            for db in &made {
                c.query_drop(&format!("DROP DATABASE IF EXISTS {db}"))
                    .await?;
            }
            c.close().await
        });
        if let Err(e) = dropped {
            eprintln!("could not drop this run's scratch databases: {e}");
        }
    }
    conclusion.exit()
}
