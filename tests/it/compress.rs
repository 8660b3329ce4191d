//! The compressed protocol (zlib) against the real server, on plain TCP and
//! TLS: small and large results, packets across the 16 MiB boundary both
//! ways, prepared statements, pipelines, LOAD DATA LOCAL and multi-results.

use mysql_uring::proto::compress::Algorithm;
use mysql_uring::{Connection, Opts, SslMode};

use crate::run;

fn transports() -> [(&'static str, Opts); 2] {
    let z = Some(Algorithm::Zlib(6));
    [
        (
            "plain",
            crate::opts().ssl_mode(SslMode::Disabled).compression(z),
        ),
        ("TLS if offered", crate::opts().compression(z)),
    ]
}

async fn compressed(opts: Opts) -> mysql_uring::Result<Connection> {
    let mut c = mysql_uring::connect(opts).await?;
    assert!(c.is_compressed());
    let on: String = c.query("SHOW SESSION STATUS LIKE 'Compression'").await?[0].get(1)?;
    assert_eq!(on, "ON", "the server agrees the session is compressed");
    Ok(c)
}

#[test]
fn queries_results_and_statements_round_trip_compressed() {
    run(async {
        for (how, opts) in transports() {
            let mut c = compressed(opts).await?;
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
    })
}

#[test]
fn packets_across_16_mib_round_trip_compressed() {
    if crate::support::external() {
        crate::support::skip("needs max_allowed_packet >= 40M (the private server has it)");
        return;
    }
    run(async {
        let mut c = compressed(transports()[0].1.clone()).await?;
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
    })
}

#[test]
fn load_data_and_multi_results_continue_the_compressed_sequence() {
    run(async {
        let opts = transports()[0]
            .1
            .clone()
            .local_infile_reader(true)
            .multi_statements(true);
        let mut c = compressed(opts).await?;
        crate::scratch_db(&mut c, "compress_load").await?;
        c.query_drop("CREATE TABLE t (id INT, name VARCHAR(20))")
            .await?;
        // The file request and the data continue the command's sequence.
        let csv: String = (0..5000).map(|i| format!("{i},name{i}\n")).collect();
        let o = c
            .load_local_data(
                "LOAD DATA LOCAL INFILE 'x' INTO TABLE t FIELDS TERMINATED BY ','",
                csv.as_bytes(),
            )
            .await?;
        assert_eq!(o.affected_rows, 5000);
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
    })
}
