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
