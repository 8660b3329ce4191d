//! `mysql-uring-bench sysbench` against the private mariadbd: prepare, a
//! short run of oltp_read_write and of oltp_point_select (counted and
//! reported as sysbench does, JSON and plot written), and cleanup.

use std::process::Command;

use mysql_uring_testserver as testserver;

/// The tool with the private server's coordinates.
fn bench(args: &[&str]) -> (String, String) {
    let s = testserver::server();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mysql-uring-bench"));
    cmd.arg("sysbench")
        .args(args)
        .arg(format!("--mysql-host={}", s.host))
        .arg(format!("--mysql-port={}", s.port))
        .arg(format!("--mysql-user={}", testserver::NATIVE_USER))
        .arg(format!("--mysql-password={}", testserver::NATIVE_PASSWORD))
        .arg("--mysql-db=sbtest_it");
    let out = cmd.output().expect("the bench binary runs");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?} failed:\n{so}\n{se}");
    (so, se)
}

/// One number from the server, through its `mariadb` client.
fn scalar(sql: &str) -> u64 {
    let out = testserver::server().sql(sql).expect("the server answers");
    out.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("`{sql}` gave `{out}`"))
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "MYSQL_URL is set (this test needs the private server)"
)]
fn prepare_run_cleanup() {
    testserver::server()
        .sql("CREATE DATABASE IF NOT EXISTS sbtest_it")
        .unwrap();
    let common = ["--tables=2", "--table-size=500"];

    let (out, _) = bench(&[&["oltp_read_write", "prepare"][..], &common].concat());
    assert!(out.contains("Creating table 'sbtest2'..."), "{out}");
    assert!(
        out.contains("Inserting 500 records into 'sbtest1'"),
        "{out}"
    );
    for t in ["sbtest1", "sbtest2"] {
        assert_eq!(scalar(&format!("SELECT COUNT(*) FROM sbtest_it.{t}")), 500);
        assert_eq!(
            scalar(&format!(
                "SELECT COUNT(*) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = 'sbtest_it' AND TABLE_NAME = '{t}' AND INDEX_NAME = 'k_{}'",
                &t[6..]
            )),
            1
        );
    }
    assert_eq!(
        scalar("SELECT COUNT(*) FROM sbtest_it.sbtest1 WHERE LENGTH(c) = 119 AND LENGTH(pad) = 59"),
        500
    );

    let dir = std::env::temp_dir().join(format!("sysbench-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("rw.json");
    let svg = dir.join("rw.svg");
    let (out, _) = bench(
        &[
            &[
                "oltp_read_write",
                "run",
                "--threads=4",
                "--cores=2",
                "--events=200",
                "--time=0",
                "--report-interval=1",
                "--histogram",
            ][..],
            &common,
            &[
                &format!("--json={}", json.display()),
                &format!("--plot={}", svg.display()),
            ],
        ]
        .concat(),
    );
    assert!(out.contains("SQL statistics:"), "{out}");
    assert!(
        out.contains("Latency histogram (values are in milliseconds)"),
        "{out}"
    );
    assert!(
        out.contains("    total number of events:              200\n"),
        "{out}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["events"], 200);
    // Every transaction: 14 reads, BEGIN and COMMIT (other), and 4 writes
    // (an UPDATE of no row would count as other: tolerate a few).
    let (r, w, o) = (
        j["queries"]["read"].as_u64().unwrap(),
        j["queries"]["write"].as_u64().unwrap(),
        j["queries"]["other"].as_u64().unwrap(),
    );
    let errors = j["ignored_errors"].as_u64().unwrap();
    assert!(r >= 200 * 14 && r <= (200 + errors) * 14, "reads {r}");
    assert!(w > 0 && w + o >= 200 * 6, "writes {w} other {o}");
    assert!(j["client"]["cpu_per_query_us"].as_f64().unwrap() > 0.0);
    assert!(j["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let pic = std::fs::read_to_string(&svg).unwrap();
    assert!(pic.starts_with("<svg") && pic.contains("<polyline"));
    // The rows deleted and inserted again: still 500 per table.
    assert_eq!(scalar("SELECT COUNT(*) FROM sbtest_it.sbtest1"), 500);

    let (out, _) = bench(
        &[
            &["oltp_point_select", "run", "--threads=8", "--time=1"][..],
            &common,
        ]
        .concat(),
    );
    assert!(
        out.contains("    queries performed:\n        read:"),
        "{out}"
    );
    let reads: u64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("read:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(reads > 100, "{out}");
    assert!(out.contains("        write:                           0\n"));

    let (out, _) = bench(&[&["oltp_read_write", "cleanup"][..], &common].concat());
    assert!(out.contains("Dropping table 'sbtest2'..."), "{out}");
    assert_eq!(
        scalar(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest_it' \
             AND TABLE_NAME LIKE 'sbtest%'"
        ),
        0
    );
    let _ = std::fs::remove_dir_all(dir);
}
