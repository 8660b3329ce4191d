//! Transactions, autocommit, statement outcomes and warnings.

use mysql_uring::{ErrorKind, IsolationLevel, TxOpts};

use crate::run;

async fn count(c: &mut mysql_uring::Connection) -> mysql_uring::Result<i64> {
    c.query("SELECT COUNT(*) FROM t").await?[0].get::<i64>(0)
}

#[test]
fn commit_keeps_rollback_discards_and_a_dropped_transaction_rolls_back() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "tx").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
            .await?;

        let mut tx = c.begin().await?;
        assert!(tx.in_transaction());
        tx.query_drop("INSERT INTO t VALUES (1)").await?;
        tx.commit().await?;
        assert!(!c.in_transaction());
        assert_eq!(count(&mut c).await?, 1);

        let mut tx = c.begin().await?;
        tx.query_drop("INSERT INTO t VALUES (2)").await?;
        assert_eq!(count(&mut tx).await?, 2, "visible inside the transaction");
        tx.rollback().await?;
        assert_eq!(count(&mut c).await?, 1);

        {
            let mut tx = c.begin().await?;
            tx.query_drop("INSERT INTO t VALUES (3)").await?;
            // Dropped here without commit, as after an early `?` return.
        }
        assert!(!c.in_transaction(), "a rollback is due");
        assert_eq!(
            count(&mut c).await?,
            1,
            "rolled back before the next command"
        );
        // Another connection never saw the uncommitted rows either.
        let mut other = crate::conn().await?;
        other.select_db("it_tx").await?;
        assert_eq!(count(&mut other).await?, 1);
        other.close().await?;

        let tx = c.begin().await?;
        drop(tx);
        let tx = c.begin().await?;
        tx.commit().await?;
        c.query_drop("DROP DATABASE it_tx").await?;
        c.close().await
    })
}

#[test]
fn a_second_begin_is_refused_and_options_take_effect() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "tx_opts").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
            .await?;
        c.query_drop("START TRANSACTION").await?;
        let e = c.begin().await.expect_err("already in a transaction");
        assert_eq!(e.kind(), ErrorKind::Usage);
        c.query_drop("ROLLBACK").await?;

        let mut tx = c
            .begin_with(TxOpts::default().isolation(IsolationLevel::Serializable))
            .await?;
        assert_eq!(count(&mut tx).await?, 0);
        let level = tx
            .query(
                "SELECT trx_isolation_level FROM information_schema.INNODB_TRX \
                 WHERE trx_mysql_thread_id = CONNECTION_ID()",
            )
            .await?;
        assert_eq!(level[0].get::<&str>(0)?, "SERIALIZABLE");
        tx.commit().await?;

        let mut tx = c.begin_with(TxOpts::default().read_only(true)).await?;
        let e = tx
            .query_drop("INSERT INTO t VALUES (1)")
            .await
            .expect_err("read-only transaction");
        assert_eq!(e.code(), Some(1792), "{e}");
        tx.rollback().await?;
        assert_eq!(count(&mut c).await?, 0);
        c.query_drop("DROP DATABASE it_tx_opts").await?;
        c.close().await
    })
}

#[test]
fn autocommit_outcomes_and_warnings() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "tx_auto").await?;
        c.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v TINYINT) ENGINE=InnoDB")
            .await?;
        assert!(c.autocommit());
        c.set_autocommit(false).await?;
        assert!(!c.autocommit());
        c.query_drop("INSERT INTO t (v) VALUES (1), (2), (3)")
            .await?;
        assert!(c.in_transaction(), "autocommit off: the INSERT opened one");
        assert_eq!(c.affected_rows(), 3);
        assert_eq!(c.last_insert_id(), 1);
        assert_eq!(c.info(), "Records: 3  Duplicates: 0  Warnings: 0");
        c.query_drop("ROLLBACK").await?;
        c.set_autocommit(true).await?;
        assert_eq!(count(&mut c).await?, 0);

        let rows = c.query("SELECT CAST('12abc' AS SIGNED)").await?;
        assert_eq!(rows[0].get::<i64>(0)?, 12);
        assert_eq!(c.warning_count(), 1, "counted at the end of the rows");
        let w = c.warnings().await?;
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].level.as_str(), w[0].code), ("Warning", 1292), "{w:?}");
        assert!(w[0].message.contains("12abc"), "{w:?}");
        c.query_drop("DROP DATABASE it_tx_auto").await?;
        c.close().await
    })
}
