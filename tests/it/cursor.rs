//! The cursor API: execute, fetch_one/many/all, rowcount, lastrowid, description.

use mysql_uring::ColumnType;

use crate::run;

#[test]
fn fetch_one_many_all_walk_the_result_in_order() {
    run(async {
        let mut c = crate::conn().await?;
        let mut cur = c.cursor();
        cur.execute("SELECT seq, CONCAT('row ', seq) AS label FROM seq_1_to_10")
            .await?;
        assert_eq!(cur.rowcount(), 0, "nothing fetched yet");
        assert_eq!(cur.column_names(), ["seq", "label"]);
        let first = cur.fetch_one().await?.expect("a row");
        assert_eq!(first.get::<u64>(0)?, 1);
        assert_eq!(first.get::<&str>("label")?, "row 1");
        let some = cur.fetch_many(3).await?;
        assert_eq!(
            some.iter()
                .map(|r| r.get::<u64>(0).unwrap())
                .collect::<Vec<_>>(),
            [2, 3, 4]
        );
        let rest = cur.fetch_all().await?;
        assert_eq!(rest.len(), 6);
        assert_eq!(rest[5].get::<u64>(0)?, 10);
        assert_eq!(cur.rowcount(), 10);
        assert!(cur.fetch_one().await?.is_none());
        assert!(cur.fetch_many(5).await?.is_empty());
        // Rows stay valid after the cursor moves on: they own their bytes.
        assert_eq!(first.get::<&str>(1)?, "row 1");
        cur.close().await?;
        c.close().await
    })
}

#[test]
fn unread_rows_are_discarded_by_the_next_execute_and_by_close() {
    run(async {
        let mut c = crate::conn().await?;
        {
            let mut cur = c.cursor();
            cur.execute("SELECT seq FROM seq_1_to_50000").await?;
            assert_eq!(cur.fetch_one().await?.unwrap().get::<u64>(0)?, 1);
            cur.execute("SELECT 'second'").await?;
            assert_eq!(cur.fetch_all().await?[0].get::<&str>(0)?, "second");
            cur.execute("SELECT seq FROM seq_1_to_50000").await?;
            cur.fetch_many(2).await?;
            cur.close().await?;
        }
        assert!(!c.has_pending_response());
        {
            // A cursor dropped without close leaves rows behind; the next command discards them.
            let mut cur = c.cursor();
            cur.execute("SELECT seq FROM seq_1_to_50000").await?;
            cur.fetch_one().await?;
        }
        assert!(c.has_pending_rows());
        assert_eq!(c.query("SELECT 'third'").await?[0].get::<&str>(0)?, "third");
        c.close().await
    })
}

#[test]
fn rowcount_and_lastrowid_for_statements_without_rows() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "cursor_counts").await?;
        let mut cur = c.cursor();
        cur.execute(
            "CREATE TABLE dishes (dish_id INT UNSIGNED AUTO_INCREMENT UNIQUE KEY, name TEXT)",
        )
        .await?;
        cur.execute("INSERT INTO dishes (name) VALUES ('soup'), ('bread')")
            .await?;
        assert_eq!(cur.rowcount(), 2);
        assert_eq!(cur.lastrowid(), Some(1));
        cur.execute("INSERT INTO dishes (name) VALUES ('cake')")
            .await?;
        assert_eq!(cur.lastrowid(), Some(3));
        cur.execute("UPDATE dishes SET name = UPPER(name) WHERE dish_id < 3")
            .await?;
        assert_eq!(cur.rowcount(), 2);
        assert_eq!(cur.lastrowid(), None);
        assert!(cur.description().is_empty());
        assert!(cur.fetch_all().await?.is_empty(), "no rows for UPDATE");
        cur.execute("SELECT dish_id, name FROM dishes ORDER BY dish_id")
            .await?;
        let d = cur.description();
        assert_eq!(d[0].name(), "dish_id");
        assert_eq!(d[0].column_type(), Some(ColumnType::Long));
        assert!(d[0].is_unsigned());
        assert!(!d[0].is_nullable());
        assert_eq!(d[0].table(), "dishes");
        assert_eq!(d[0].schema(), "it_cursor_counts");
        assert_eq!(d[1].column_type(), Some(ColumnType::Blob));
        let rows = cur.fetch_all().await?;
        assert_eq!(rows[1].get::<&str>("name")?, "BREAD");
        cur.execute("DROP DATABASE it_cursor_counts").await?;
        cur.close().await?;
        c.close().await
    })
}

#[test]
fn streaming_rows_borrow_the_read_buffer() {
    run(async {
        let mut c = crate::conn().await?;
        let mut cur = c.cursor();
        cur.execute("SELECT seq, REPEAT('z', seq % 300) FROM seq_1_to_100000")
            .await?;
        let (mut n, mut sum, mut bytes) = (0u64, 0u64, 0usize);
        while let Some(row) = cur.next_row().await? {
            n += 1;
            sum += row.get::<u64>(0)?;
            let s: &str = row.get(1)?;
            assert!(s.bytes().all(|b| b == b'z'));
            bytes += s.len();
        }
        assert_eq!(n, 100_000);
        assert_eq!(sum, 100_000 * 100_001 / 2);
        let expected: usize = (1..=100_000u64).map(|i| (i % 300) as usize).sum();
        assert_eq!(bytes, expected);
        assert_eq!(cur.rowcount(), 100_000);
        cur.close().await?;
        c.close().await
    })
}

#[test]
fn connection_next_row_and_get_row() {
    run(async {
        let mut c = crate::conn().await?;
        c.cmd_query("SELECT seq FROM seq_1_to_3").await?;
        assert_eq!(c.get_row().await?.unwrap().get::<u8>(0)?, 1);
        assert_eq!(c.next_row().await?.unwrap().get::<u8>(0)?, 2);
        let owned = c.next_row().await?.unwrap().to_row();
        assert!(c.next_row().await?.is_none());
        assert_eq!(owned.get::<u8>(0)?, 3);
        c.close().await
    })
}

#[test]
fn stored_procedure_results_are_drained_and_the_connection_stays_in_sync() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "procs").await?;
        c.query_drop("CREATE PROCEDURE two_sets() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END")
            .await?;
        let rows = c.query("CALL two_sets()").await?;
        assert_eq!(rows[0].get::<i32>("a")?, 1);
        assert!(
            c.has_pending_response(),
            "a second result set and the CALL's OK follow"
        );
        assert_eq!(c.query("SELECT 'next'").await?[0].get::<&str>(0)?, "next");
        c.query_drop("DROP DATABASE it_procs").await?;
        c.close().await
    })
}

#[test]
fn ping_select_db_and_close() {
    run(async {
        let mut c = crate::conn().await?;
        c.ping().await?;
        c.query_drop("CREATE DATABASE IF NOT EXISTS it_select_db")
            .await?;
        c.select_db("it_select_db").await?;
        let db: String = c.query("SELECT DATABASE()").await?[0].get(0)?;
        assert_eq!(db, "it_select_db");
        let e = c.select_db("it_no_such_db").await.unwrap_err();
        assert_eq!(e.code(), Some(1049));
        c.query_drop("DROP DATABASE it_select_db").await?;
        let id = c.connection_id();
        c.close().await?;
        // After COM_QUIT the server ends the session.
        let mut other = crate::conn().await?;
        let gone = crate::wait_for_processlist(&mut other, &format!("ID = {id}"), 0).await?;
        assert!(gone, "session {id} still open after close()");
        other.close().await
    })
}
