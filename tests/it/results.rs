//! Multiple result sets: multi-statement queries and stored procedures, through
//! the cursor (`next_set`) and through `cmd_query` + `get_rows` + `next_result`.

use mysql_uring::{ErrorKind, QueryResult};

use crate::run;

#[test]
fn multi_statement_sets_are_walked_in_order_with_their_outcomes() {
    run(async {
        let mut c = mysql_uring::connect(crate::opts().multi_statements(true)).await?;
        crate::scratch_db(&mut c, "multi_sets").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
            .await?;
        let mut cur = c.cursor();
        cur.execute(
            "SELECT 1 AS a; INSERT INTO t VALUES (1, 10), (2, 20); SELECT id, v FROM t ORDER BY id; DO 0",
        )
        .await?;
        assert_eq!(cur.column_names(), ["a"]);
        assert_eq!(cur.fetch_all().await?[0].get::<i32>(0)?, 1);

        assert!(cur.next_set().await?, "the INSERT's outcome");
        assert!(cur.description().is_empty());
        assert_eq!(cur.rowcount(), 2);

        assert!(cur.next_set().await?, "the second SELECT");
        assert_eq!(cur.column_names(), ["id", "v"]);
        // Leave its rows unread: next_set discards them.
        assert_eq!(cur.fetch_one().await?.expect("row").get::<i32>("v")?, 10);

        assert!(cur.next_set().await?, "the DO's outcome");
        assert!(cur.description().is_empty());
        assert!(!cur.next_set().await?, "no more sets");
        assert!(!cur.next_set().await?, "still none");
        cur.close().await?;
        assert!(!c.has_pending_response());
        assert_eq!(
            c.query("SELECT COUNT(*) FROM t").await?[0].get::<i64>(0)?,
            2
        );
        c.query_drop("DROP DATABASE it_multi_sets").await?;
        c.close().await
    })
}

#[test]
fn an_error_in_the_middle_of_the_sets_is_reported_and_the_connection_stays_usable() {
    run(async {
        let mut c = mysql_uring::connect(crate::opts().multi_statements(true)).await?;
        let mut cur = c.cursor();
        cur.execute("SELECT 1; SELECT * FROM no_such_db.no_such_table; SELECT 3")
            .await?;
        assert_eq!(cur.fetch_all().await?.len(), 1);
        let e = cur.next_set().await.expect_err("the failing statement");
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.code(), Some(1146), "{e}");
        // The server stops at the failing statement: SELECT 3 never ran.
        assert!(
            cur.next_set().await.is_err(),
            "no set after a failed one: execute() first"
        );
        cur.close().await?;
        assert!(!c.has_pending_response());
        assert_eq!(
            c.query("SELECT 'usable'").await?[0].get::<&str>(0)?,
            "usable"
        );
        c.close().await
    })
}

#[test]
fn stored_procedure_sets_and_out_parameters() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "proc_sets").await?;
        c.query_drop(
            "CREATE PROCEDURE p(IN x INT, OUT y INT)
             BEGIN SELECT x AS x; SELECT x * 2 AS d, 'two' AS s; SET y = x * 3; END",
        )
        .await?;

        // The cmd_query + get_rows layer.
        let QueryResult::Rows(cols) = c.cmd_query("CALL p(5, @y)").await? else {
            panic!("the first set has rows");
        };
        assert_eq!(cols[0].name(), "x");
        assert_eq!(c.get_rows().await?[0].get::<i32>(0)?, 5);
        let Some(QueryResult::Rows(cols)) = c.next_result().await? else {
            panic!("the second set has rows");
        };
        assert_eq!(cols.len(), 2);
        let rows = c.get_rows().await?;
        assert_eq!(
            (rows[0].get::<i32>(0)?, rows[0].get::<&str>(1)?),
            (10, "two")
        );
        let Some(QueryResult::Done(_)) = c.next_result().await? else {
            panic!("the CALL's own outcome ends the response");
        };
        assert!(c.next_result().await?.is_none());
        assert_eq!(c.query("SELECT @y").await?[0].get::<i64>(0)?, 15);

        // The cursor layer, reading nothing: next_set skips the rows.
        let mut cur = c.cursor();
        cur.execute("CALL p(7, @y)").await?;
        let mut sets = 1;
        while cur.next_set().await? {
            sets += 1;
        }
        assert_eq!(sets, 3);
        cur.close().await?;
        assert_eq!(c.query("SELECT @y").await?[0].get::<i64>(0)?, 21);
        c.query_drop("DROP DATABASE it_proc_sets").await?;
        c.close().await
    })
}
