//! The compressed protocol against the real server, shared by the zlib
//! tests (tests/it/compress.rs) and the zstd ones (tests/zstd.rs): each
//! helper takes the algorithm. Both test crates have `opts()` and
//! `scratch_db()` at their root.

use mysql_uring::Compression as Algorithm;
use mysql_uring::{Connection, Opts, SslMode};

pub(crate) fn transports(alg: Algorithm) -> [(&'static str, Opts); 2] {
    let z = Some(alg);
    [
        (
            "plain",
            crate::opts().ssl_mode(SslMode::Disabled).compression(z),
        ),
        ("TLS if offered", crate::opts().compression(z)),
    ]
}

pub(crate) async fn compressed(opts: Opts, alg: Algorithm) -> mysql_uring::Result<Connection> {
    let mut c = mysql_uring::connect(opts).await?;
    assert!(c.is_compressed());
    async fn status(c: &mut Connection, name: &str) -> mysql_uring::Result<String> {
        let rows = c
            .query(&format!("SHOW SESSION STATUS LIKE '{name}'"))
            .await?;
        rows[0].get::<String>(1)
    }
    let on = status(&mut c, "Compression").await?;
    assert_eq!(on, "ON", "the server agrees the session is compressed");
    if !c.is_mariadb() {
        // MySQL 8.0.18+ also says which algorithm and level.
        let (name, level) = match alg {
            Algorithm::Zlib(_) => ("zlib", None),
            Algorithm::Zstd(l) => ("zstd", Some(l)),
        };
        assert_eq!(status(&mut c, "Compression_algorithm").await?, name);
        if let Some(l) = level {
            assert_eq!(status(&mut c, "Compression_level").await?, l.to_string());
        }
    }
    Ok(c)
}

/// Queries, a result of many packets, prepared statements and a pipeline.
pub(crate) async fn queries_results_and_statements(alg: Algorithm) -> mysql_uring::Result<()> {
    for (how, opts) in transports(alg) {
        let mut c = compressed(opts, alg).await?;
        assert_eq!(c.query("SELECT 1").await?[0].get::<i64>(0)?, 1, "{how}");
        // A result of many packets, compressed in large chunks.
        let rows = c
            .query("SELECT a.ID, b.COLLATION_NAME FROM information_schema.COLLATIONS a, information_schema.COLLATIONS b LIMIT 30000")
            .await?;
        assert_eq!(rows.len(), 30000, "{how}");
        // Prepared statements, binary rows.
        let r = c
            .exec_first("SELECT ? + 1, REPEAT(?, 100)", (41, "ab"))
            .await?
            .unwrap();
        assert_eq!(r.get::<i64>(0)?, 42);
        assert_eq!(r.get::<&str>(1)?.len(), 200);
        // Several commands in one write: each its own compressed packets.
        let stages = c
            .pipeline()
            .query("SELECT 1")
            .query("SELECT REPEAT('x', 5000)")
            .query("SELECT 3")
            .run()
            .await?;
        assert_eq!(stages.len(), 3);
        for s in stages {
            assert_eq!(s?.rows.len(), 1);
        }
        c.close().await?;
    }
    Ok(())
}

/// 17 MiB up (a long-data parameter and a query) and down (one value).
pub(crate) async fn across_16_mib(alg: Algorithm) -> mysql_uring::Result<()> {
    let mut c = compressed(transports(alg)[0].1.clone(), alg).await?;
    let big: Vec<u8> = (0..(17u32 << 20)).map(|i| (i % 251) as u8).collect();
    // Up: a 17 MiB parameter (long data) and a 17 MiB query.
    let n: i64 = c
        .exec_first("SELECT LENGTH(?)", (big.clone(),))
        .await?
        .unwrap()
        .get(0)?;
    assert_eq!(n as usize, big.len());
    let q = format!("SELECT LENGTH('{}')", "y".repeat(17 << 20));
    assert_eq!(c.query(&q).await?[0].get::<i64>(0)?, 17 << 20);
    // Down: a 17 MiB value in one row.
    let v = c.query("SELECT REPEAT('z', 17 * 1024 * 1024)").await?;
    assert_eq!(v[0].get::<&[u8]>(0)?.len(), 17 << 20);
    assert!(v[0].get::<&[u8]>(0)?.iter().all(|&b| b == b'z'));
    c.close().await
}

/// LOAD DATA LOCAL (when `load` and the server allows it), then a
/// multi-statement query: both continue the compressed sequence.
pub(crate) async fn load_data_and_multi_results(
    alg: Algorithm,
    name: &str,
) -> mysql_uring::Result<()> {
    let opts = transports(alg)[0]
        .1
        .clone()
        .local_infile_reader(true)
        .multi_statements(true);
    let mut c = compressed(opts, alg).await?;
    crate::scratch_db(&mut c, name).await?;
    c.query_drop("CREATE TABLE t (id INT, name VARCHAR(20))")
        .await?;
    let local_infile: i64 = c.query("SELECT @@local_infile").await?[0].get(0)?;
    if local_infile == 1 {
        // The file request and the data continue the command's sequence.
        let csv: String = (0..5000).map(|i| format!("{i},name{i}\n")).collect();
        let o = c
            .load_local_data(
                "LOAD DATA LOCAL INFILE 'x' INTO TABLE t FIELDS TERMINATED BY ','",
                csv.as_bytes(),
            )
            .await?;
        assert_eq!(o.affected_rows, 5000);
    } else {
        // Not a skipped test: the multi-result part below still runs.
        eprintln!(
            "note: the LOAD DATA LOCAL part of this test did not run: the server ({}) has \
             local_infile=OFF (the multi-result part ran)",
            c.server_version()
        );
    }
    let mut set = Some(
        c.cmd_query("SELECT COUNT(*) FROM t; SELECT 2; DO 1")
            .await?,
    );
    let mut sets = 0;
    while let Some(r) = set {
        if let mysql_uring::QueryResult::Rows(_) = r {
            c.get_rows().await?;
        }
        sets += 1;
        set = c.next_result().await?;
    }
    assert_eq!(sets, 3);
    c.close().await
}
