//! Pipelining: many queries in one write, replies read in order.

use mysql_uring::{ErrorKind, connect};

use crate::run;

#[test]
fn stages_come_back_in_order_and_a_failing_stage_stands_alone() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "pipeline").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
            .await?;
        let mut p = c.pipeline();
        for i in 0..16 {
            p.push(format!("SELECT {i} AS n, REPEAT('x', {i} * 100) AS pad"));
        }
        p.push("SELECT * FROM it_pipeline.no_such_table");
        p.push("INSERT INTO t (v) VALUES (1), (2)");
        p.push("SELECT COUNT(*) FROM t");
        let results = p.run().await?;
        assert_eq!(results.len(), 19);
        for (i, r) in results[..16].iter().enumerate() {
            let stage = r.as_ref().map_err(|e| e.to_string()).unwrap();
            assert_eq!(stage.rows.len(), 1);
            assert_eq!(stage.rows[0].get::<u32>("n")? as usize, i);
            assert_eq!(stage.rows[0].get::<&str>("pad")?.len(), i * 100);
        }
        let e = results[16].as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.code(), Some(1146));
        let insert = results[17].as_ref().map_err(|e| e.to_string()).unwrap();
        assert_eq!(insert.outcome.affected_rows, 2);
        assert_eq!(insert.outcome.last_insert_id, 1);
        let count = results[18].as_ref().map_err(|e| e.to_string()).unwrap();
        assert_eq!(count.rows[0].get::<i64>(0)?, 2);
        // The connection is in sync afterwards.
        assert_eq!(c.query("SELECT 'after'").await?[0].get::<&str>(0)?, "after");
        c.query_drop("DROP DATABASE it_pipeline").await?;
        c.close().await
    })
}

#[test]
fn an_oversize_stage_means_nothing_is_sent() {
    run(async {
        let mut c = connect(crate::opts().max_packet_size(4096)).await?;
        let e = c
            .pipeline()
            .query("SELECT 1")
            .query(format!("SELECT '{}'", "z".repeat(10_000)))
            .run()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(
            c.query("SELECT 2").await?[0].get::<i32>(0)?,
            2,
            "the first stage was not sent either"
        );
        assert!(c.pipeline().run().await?.is_empty());
        c.close().await
    })
}

/// 100 INSERTs of 80 KB pipelined in one write (8 MB): every stage's
/// reply arrives while the kernel is still sending later stages, and the
/// table must hold exactly the bytes sent. (The write buffer used to be
/// freed or reused as soon as the first reply arrived: over plain TCP and
/// Unix sockets the server then got freed heap bytes.)
async fn large_pipeline_stores_what_was_sent(
    o: mysql_uring::Opts,
    db: &str,
) -> mysql_uring::Result<()> {
    let mut c = connect(o).await?;
    crate::scratch_db(&mut c, db).await?;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v MEDIUMBLOB)")
        .await?;
    let row = |i: usize| -> Vec<u8> {
        (0..80_000)
            .map(|j| b'a' + ((i * 7 + j * 13) % 26) as u8)
            .collect()
    };
    let mut p = c.pipeline();
    for i in 0..100 {
        let v = String::from_utf8(row(i)).expect("ascii");
        p.push(format!("INSERT INTO t VALUES ({i}, '{v}')"));
    }
    // Bounded: the old failure was a hang as often as a wrong row.
    let results = mysql_uring::runtime::timeout(std::time::Duration::from_secs(60), p.run())
        .await
        .expect("the pipeline finished within 60 s")?;
    for (i, r) in results.iter().enumerate() {
        let out = r.as_ref().map_err(|e| format!("stage {i}: {e}")).unwrap();
        assert_eq!(out.outcome.affected_rows, 1, "stage {i}");
    }
    let rows = c.query("SELECT id, v FROM t ORDER BY id").await?;
    assert_eq!(rows.len(), 100);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.get::<i64>(0)?, i as i64);
        assert!(r.get::<&[u8]>(1)? == row(i).as_slice(), "row {i} differs");
    }
    c.query_drop(&format!("DROP DATABASE it_{db}")).await?;
    c.close().await
}

#[test]
fn a_100_stage_pipeline_of_80kb_inserts_over_plain_tcp_stores_exactly_what_was_sent() {
    run(large_pipeline_stores_what_was_sent(
        crate::opts().ssl_mode(mysql_uring::SslMode::Disabled),
        "bigpipe_tcp",
    ))
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's Unix socket (MYSQL_URL is set)"
)]
fn a_100_stage_pipeline_of_80kb_inserts_over_a_unix_socket_stores_exactly_what_was_sent() {
    let s = crate::support::server();
    run(large_pipeline_stores_what_was_sent(
        crate::opts().socket(&s.socket),
        "bigpipe_unix",
    ))
}
