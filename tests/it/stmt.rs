//! Prepared statements against the real server: prepare, execute, the
//! statement cache, long data, close/reset, bulk execution, cursors.

use mysql_uring::{ErrorKind, QueryResult, Value, params};

use crate::run;

async fn session_status(c: &mut mysql_uring::Connection, name: &str) -> mysql_uring::Result<u64> {
    let rows = c
        .query(&format!("SHOW SESSION STATUS LIKE '{name}'"))
        .await?;
    rows[0].get::<u64>(1)
}

#[test]
fn prepare_execute_and_read_binary_rows() {
    run(async {
        let mut c = crate::conn().await?;
        let stmt = c.prepare("SELECT ? + 1 AS n, ? AS s, ? AS nothing").await?;
        assert_eq!(stmt.param_count(), 3);
        assert_eq!(stmt.columns().len(), 3);
        assert_eq!(stmt.columns()[0].name(), "n");
        let row = c
            .exec_first(&stmt, (41, "héllo", None::<i32>))
            .await?
            .expect("one row");
        assert!(row.is_binary());
        assert_eq!(row.get::<i64>("n")?, 42);
        assert_eq!(row.get::<&str>("s")?, "héllo");
        assert_eq!(row.get::<Option<i64>>(2)?, None);
        assert!(row.get::<i64>(2).is_err(), "NULL needs Option");
        // Executed again with other types: the result's metadata changes with them.
        let rows = c.exec(&stmt, params![1.5, 7u64, "x"]).await?;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<f64>(0)?, 2.5);
        assert_eq!(rows[0].get::<u64>(1)?, 7);
        assert_eq!(rows[0].get::<String>(2)?, "x");
        c.close_statement(&stmt).await?;
        let e = c.exec_drop(&stmt, (1, 2, 3)).await.unwrap_err();
        assert_eq!(e.code(), Some(1243), "unknown prepared statement: {e}");
        c.ping().await?;
        c.close().await
    })
}

#[test]
fn statements_without_rows_report_their_outcome() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "stmt_outcome").await?;
        c.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))")
            .await?;
        let o = c
            .exec_drop("INSERT INTO t (v) VALUES (?), (?)", ("a", "b"))
            .await?;
        assert_eq!(o.affected_rows, 2);
        assert_eq!(o.last_insert_id, 1);
        let o = c
            .exec_drop("UPDATE t SET v = ? WHERE id > ?", ("z", 0))
            .await?;
        assert_eq!(o.affected_rows, 2);
        assert_eq!(c.exec("DELETE FROM t WHERE id = ?", (1,)).await?.len(), 0);
        assert_eq!(c.last_outcome().affected_rows, 1);
        let rows = c.exec("SELECT v FROM t WHERE id = ?", (2,)).await?;
        assert_eq!(rows[0].get::<&str>(0)?, "z");
        c.close().await
    })
}

#[test]
fn usage_and_server_errors_keep_the_connection() {
    run(async {
        let mut c = crate::conn().await?;
        let e = c.prepare("SELEC 1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.code(), Some(1064));
        let e = c.exec_drop("SELECT ?", (1, 2)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(
            e.to_string().contains("takes 1 parameters, 2 were given"),
            "{e}"
        );
        let mut other = crate::conn().await?;
        let s = other.prepare("SELECT 1").await?;
        let e = c.exec_drop(&s, ()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        // A server error during execution.
        let e = c
            .exec_drop("SELECT * FROM no_such_db.t WHERE a = ?", (1,))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        let e = c
            .exec_first("SELECT CAST(? AS UNSIGNED) DIV 0 + ~0 + 1", ("5",))
            .await;
        assert!(e.is_ok() || e.unwrap_err().kind() == ErrorKind::Server);
        assert_eq!(
            c.exec_first("SELECT ?", (5,))
                .await?
                .unwrap()
                .get::<i32>(0)?,
            5
        );
        other.close().await?;
        c.close().await
    })
}

#[test]
fn statement_cache_prepares_once_and_evicts_least_recently_used() {
    run(async {
        let mut c = mysql_uring::connect(crate::opts().stmt_cache_size(2)).await?;
        let prepared = session_status(&mut c, "Com_stmt_prepare").await?;
        for i in 0..5 {
            let r = c.exec_first("SELECT ?", (i,)).await?.unwrap();
            assert_eq!(r.get::<i32>(0)?, i);
        }
        assert_eq!(
            session_status(&mut c, "Com_stmt_prepare").await?,
            prepared + 1
        );
        assert_eq!(c.cached_statements(), 1);
        c.exec_drop("SELECT ? + 1", (1,)).await?;
        c.exec_drop("SELECT ?", (1,)).await?; // most recent: "SELECT ?"
        let closed = session_status(&mut c, "Com_stmt_close").await?;
        c.exec_drop("SELECT ? + 2", (1,)).await?; // evicts "SELECT ? + 1"
        c.exec_drop("SELECT ?", (1,)).await?; // the close goes out with this one
        assert_eq!(c.cached_statements(), 2);
        assert_eq!(session_status(&mut c, "Com_stmt_close").await?, closed + 1);
        assert_eq!(
            session_status(&mut c, "Com_stmt_prepare").await?,
            prepared + 3
        );
        // Prepared_stmt_count is global; this session holds exactly the cached two.
        c.close().await?;

        // Cache disabled: prepared and closed per call.
        let mut c = mysql_uring::connect(crate::opts().stmt_cache_size(0)).await?;
        let prepared = session_status(&mut c, "Com_stmt_prepare").await?;
        let closed = session_status(&mut c, "Com_stmt_close").await?;
        for _ in 0..3 {
            c.exec_drop("SELECT ?", (1,)).await?;
        }
        c.exec_drop("SELECT 1", ()).await?;
        assert_eq!(c.cached_statements(), 0);
        assert_eq!(
            session_status(&mut c, "Com_stmt_prepare").await?,
            prepared + 4
        );
        assert_eq!(session_status(&mut c, "Com_stmt_close").await?, closed + 3);
        c.close().await
    })
}

#[test]
fn stmt_cache_size_url_option() {
    let o = mysql_uring::Opts::from_url("mysql://u@h/db?stmt_cache_size=3");
    assert!(o.is_ok());
    let e = mysql_uring::Opts::from_url("mysql://u@h/db?stmt_cache_size=lots").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("stmt_cache_size"), "{e}");
}

#[test]
fn long_parameters_go_as_long_data() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "stmt_long").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, b LONGBLOB, s LONGTEXT)")
            .await?;
        let big: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i * 7 % 251) as u8).collect();
        let text = "ü".repeat(600_000); // 1.2 MB of UTF-8
        c.exec_drop("INSERT INTO t VALUES (?, ?, ?)", params![1, big, text])
            .await?;
        let row = c
            .exec_first("SELECT b, s, LENGTH(b) FROM t WHERE id = ?", (1,))
            .await?
            .unwrap();
        assert_eq!(row.get::<i64>(2)?, big.len() as i64);
        assert!(row.get::<&[u8]>(0)? == &big[..]);
        assert_eq!(row.get::<&str>(1)?, text);
        // Twenty 900 kB values (18 MB, above the default max_allowed_packet of
        // 16 MiB) go as long data too.
        let piece = vec![b'p'; 900_000];
        let many: Vec<&[u8]> = vec![&piece[..]; 20];
        let sum = vec!["LENGTH(?)"; 20].join(" + ");
        let sent = session_status(&mut c, "Com_stmt_send_long_data").await?;
        let r = c.exec_first(format!("SELECT {sum}"), &many).await?.unwrap();
        assert_eq!(r.get::<u64>(0)?, 18_000_000);
        assert!(session_status(&mut c, "Com_stmt_send_long_data").await? >= sent + 20);
        // Small values stay inline.
        let sent = session_status(&mut c, "Com_stmt_send_long_data").await?;
        c.exec_first("SELECT LENGTH(?)", (&piece[..1000],)).await?;
        assert_eq!(
            session_status(&mut c, "Com_stmt_send_long_data").await?,
            sent
        );
        // Reset discards long data; the statement stays usable.
        let s = c.prepare("SELECT LENGTH(?)").await?;
        c.reset_statement(&s).await?;
        let r = c.exec_first(&s, (&big[..],)).await?.unwrap();
        assert_eq!(r.get::<u64>(0)?, big.len() as u64);
        c.close().await
    })
}

#[test]
fn execute_many_uses_bulk_and_counts_rows() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "stmt_bulk").await?;
        c.query_drop(
            "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40), score DOUBLE, note TEXT)",
        )
        .await?;
        assert!(c.supports_bulk_execute(), "MariaDB offers bulk execution");
        let rows: Vec<(i32, String, Option<f64>, Option<&str>)> = (0..5000)
            .map(|i| {
                (
                    i,
                    format!("name {i}"),
                    (i % 3 != 0).then_some(i as f64 / 2.0),
                    (i % 2 == 0).then_some("even"),
                )
            })
            .collect();
        let executes = session_status(&mut c, "Com_stmt_execute").await?;
        let o = c
            .execute_many("INSERT INTO t VALUES (?, ?, ?, ?)", &rows)
            .await?;
        assert_eq!(o.affected_rows, 5000);
        let after = session_status(&mut c, "Com_stmt_execute").await?;
        assert!(
            after - executes < 500,
            "bulk packets, not 5000 executes: {}",
            after - executes
        );
        let r = &c
            .query("SELECT COUNT(*), SUM(score IS NULL), SUM(note = 'even'), MAX(name) FROM t")
            .await?[0];
        assert_eq!(r.get::<i64>(0)?, 5000);
        assert_eq!(r.get::<i64>(1)?, 1667);
        assert_eq!(r.get::<i64>(2)?, 2500);
        assert_eq!(r.get::<&str>(3)?, "name 999");
        // Types that change between rows (NULL first, then int, then text) split the batches.
        let mixed = vec![
            vec![Value::Int(10_001), Value::Null],
            vec![Value::Int(10_002), Value::Int(5)],
            vec![Value::Int(10_003), Value::Bytes(b"txt".to_vec())],
        ];
        let o = c
            .execute_many("INSERT INTO t (id, name) VALUES (?, ?)", &mixed)
            .await?;
        assert_eq!(o.affected_rows, 3);
        let names = c
            .query("SELECT name FROM t WHERE id > 10000 ORDER BY id")
            .await?;
        assert_eq!(names[0].get::<Option<&str>>(0)?, None);
        assert_eq!(names[1].get::<&str>(0)?, "5");
        assert_eq!(names[2].get::<&str>(0)?, "txt");
        // UPDATE counts changed rows, as a loop of executes would.
        let o = c
            .execute_many(
                "UPDATE t SET score = ? WHERE id < ?",
                [(100.0, 10), (200.0, 5)],
            )
            .await?;
        assert_eq!(o.affected_rows, 15);
        // A duplicate key fails the call with the server's error; the connection stays usable.
        let e = c
            .execute_many("INSERT INTO t (id) VALUES (?)", [[20_000], [20_000]])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(1062));
        // Wrong arity is refused before anything is sent.
        let e = c
            .execute_many("INSERT INTO t (id) VALUES (?)", [vec![1, 2]])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert_eq!(
            c.exec_first("SELECT ?", (1,))
                .await?
                .unwrap()
                .get::<i32>(0)?,
            1
        );
        // Nothing to insert.
        let none: Vec<(i32,)> = Vec::new();
        assert_eq!(
            c.execute_many("INSERT INTO t (id) VALUES (?)", &none)
                .await?
                .affected_rows,
            0
        );
        c.close().await
    })
}

#[test]
fn execute_many_without_bulk_loops() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "stmt_loop").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
            .await?;
        c.set_bulk_execute(false);
        assert!(!c.supports_bulk_execute());
        let executes = session_status(&mut c, "Com_stmt_execute").await?;
        let o = c
            .execute_many("INSERT INTO t VALUES (?, ?)", (0..100).map(|i| (i, i * 2)))
            .await?;
        assert_eq!(o.affected_rows, 100);
        assert_eq!(
            session_status(&mut c, "Com_stmt_execute").await?,
            executes + 100
        );
        let o = c
            .execute_many("UPDATE t SET v = v + ? WHERE id < ?", [(1, 10), (1, 20)])
            .await?;
        assert_eq!(o.affected_rows, 30);
        let mut cur = c.cursor();
        cur.execute_many("DELETE FROM t WHERE id = ?", [[1], [2], [500]])
            .await?;
        assert_eq!(cur.rowcount(), 2);
        c.close().await
    })
}

#[test]
fn cursor_execute_params_and_streaming() {
    run(async {
        let mut c = crate::conn().await?;
        {
            let mut cur = c.cursor();
            cur.execute_params(
                "SELECT seq, seq * ? FROM seq_1_to_1000 WHERE seq > ?",
                (3, 10),
            )
            .await?;
            assert_eq!(cur.description().len(), 2);
            let first = cur.fetch_one().await?.unwrap();
            assert_eq!((first.get::<u64>(0)?, first.get::<u64>(1)?), (11, 33));
            let some = cur.fetch_many(9).await?;
            assert_eq!(some.len(), 9);
            let mut n = 0;
            while let Some(r) = cur.next_row().await? {
                assert!(r.is_binary());
                n += 1;
                assert_eq!(r.get::<u64>(1)?, r.get::<u64>(0)? * 3);
            }
            assert_eq!(n, 980);
            assert_eq!(cur.rowcount(), 990);
            cur.execute_params("DO ?", (1,)).await?;
            assert_eq!(cur.rowcount(), 0);
            cur.close().await?;
        }
        // Abandoned rows are discarded before the next command.
        c.cmd_execute("SELECT seq FROM seq_1_to_100000 WHERE seq > ?", (0,))
            .await?;
        assert!(c.get_row().await?.is_some());
        assert_eq!(
            c.exec_first("SELECT ?", ("ok",))
                .await?
                .unwrap()
                .get::<&str>(0)?,
            "ok"
        );
        match c.cmd_execute("DO ?", (1,)).await? {
            QueryResult::Done(o) => assert_eq!(o.affected_rows, 0),
            QueryResult::Rows(_) => panic!("DO has no rows"),
        }
        c.close().await
    })
}

#[test]
fn procedures_return_several_binary_results() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "stmt_proc").await?;
        c.query_drop(
            "CREATE PROCEDURE p(IN x INT) BEGIN SELECT x AS a; SELECT x * 2 AS b, 'two' AS c; END",
        )
        .await?;
        let rows = c.exec("CALL p(?)", (21,)).await?;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<i64>("a")?, 21);
        // The second result set and the final OK were read too.
        assert!(!c.has_pending_response());
        match c.cmd_execute("CALL p(?)", (5,)).await? {
            QueryResult::Rows(cols) => assert_eq!(cols[0].name(), "a"),
            QueryResult::Done(_) => panic!("rows expected"),
        }
        assert_eq!(c.get_rows().await?[0].get::<i64>(0)?, 5);
        c.close().await
    })
}

#[test]
fn result_metadata_changes_are_followed() {
    // With MariaDB's metadata caching the server skips unchanged metadata;
    // the client must use the statement's last columns, and new ones when
    // the types or the table change.
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "stmt_meta").await?;
        c.query_drop("CREATE TABLE t (a INT, b VARCHAR(10))")
            .await?;
        c.query_drop("INSERT INTO t VALUES (1, 'x')").await?;
        let sql = "SELECT * FROM t WHERE a = ?";
        for _ in 0..3 {
            let r = c.exec_first(sql, (1,)).await?.unwrap();
            assert_eq!((r.get::<i32>(0)?, r.get::<&str>(1)?), (1, "x"));
        }
        // Another statement in between: its columns are not mistaken for ours.
        c.exec_first("SELECT 'other' AS a, 2.5e0 AS b", ()).await?;
        let r = c.exec_first(sql, (1,)).await?.unwrap();
        assert_eq!(r.columns()[0].name(), "a");
        assert_eq!(r.get::<&str>("b")?, "x");
        c.query_drop("ALTER TABLE t MODIFY a BIGINT, ADD c DOUBLE DEFAULT 2.5")
            .await?;
        let r = c.exec_first(sql, (1,)).await?.unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r.get::<i64>("a")?, 1);
        assert_eq!(r.get::<f64>("c")?, 2.5);
        // The type of `SELECT ?` follows its parameter.
        let s = c.prepare("SELECT ? AS v").await?;
        for (i, p) in ["1", "x", "x", "2", "2"].iter().enumerate() {
            let r = if let Ok(n) = p.parse::<i64>() {
                c.exec_first(&s, (n,)).await?.unwrap()
            } else {
                c.exec_first(&s, (*p,)).await?.unwrap()
            };
            assert_eq!(r.get::<String>(0)?, *p, "execution {i}");
        }
        c.close().await
    })
}

#[test]
#[cfg_attr(external_server, ignore = "needs the private server's users")]
fn change_user_forgets_the_sessions_statements() {
    run(async {
        let mut c = crate::conn().await?;
        let explicit = c.prepare("SELECT ? + 1").await?;
        c.exec_drop("SELECT ?", (1,)).await?;
        assert_eq!(c.cached_statements(), 1);
        c.change_user(
            crate::support::NATIVE_USER,
            crate::support::NATIVE_PASSWORD,
            None,
        )
        .await?;
        // The server freed them: the cache starts over, old statements are refused.
        assert_eq!(c.cached_statements(), 0);
        let r = c.exec_first("SELECT ?", (5,)).await?.unwrap();
        assert_eq!(r.get::<i32>(0)?, 5);
        let e = c.exec_drop(&explicit, (1,)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
        c.close().await
    })
}

#[test]
fn a_timed_out_execute_is_interrupted_and_the_statement_runs_again() {
    run(async {
        let mut c = mysql_uring::connect(
            crate::opts().query_timeout(Some(std::time::Duration::from_millis(300))),
        )
        .await?;
        assert_eq!(
            c.exec_first("SELECT ?", (1,))
                .await?
                .unwrap()
                .get::<i32>(0)?,
            1
        );
        let e = c.exec_drop("SELECT SLEEP(?)", (5,)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(!c.is_broken());
        // The cached statements still work on the same session.
        assert_eq!(
            c.exec_first("SELECT ?", (2,))
                .await?
                .unwrap()
                .get::<i32>(0)?,
            2
        );
        c.exec_drop("SELECT SLEEP(?)", (0,)).await?;
        Ok(())
    })
}

#[test]
fn an_execute_refused_after_long_data_leaves_no_stale_values() {
    run(async {
        // 64 KiB packets: values of 16 KiB or more go as long data.
        let mut c = mysql_uring::connect(crate::opts().max_packet_size(64 << 10)).await?;
        let s = c
            .prepare("SELECT LENGTH(?), LENGTH(?), LENGTH(?), LENGTH(?), LENGTH(?), LENGTH(?)")
            .await?;
        let long = vec![b'L'; 100_000];
        let mid = "m".repeat(15_000);
        // The long value goes ahead; the five 15 kB ones do not fit one packet.
        let e = c
            .exec_first(&s, params![long, mid, mid, mid, mid, mid])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
        assert!(!c.is_broken(), "refused before sending the execute");
        let r = c
            .exec_first(&s, ("a", "bb", "", "", "", ""))
            .await?
            .unwrap();
        assert_eq!(r.get::<u64>(0)?, 1, "not the earlier long data");
        assert_eq!(r.get::<u64>(1)?, 2);
        c.close().await
    })
}

#[test]
fn reset_forgets_the_sessions_statements() {
    run(async {
        let mut c = crate::conn().await?;
        let explicit = c.prepare("SELECT ? + 1").await?;
        c.exec_drop("SELECT ?", (1,)).await?;
        assert_eq!(c.cached_statements(), 1);
        c.reset().await?;
        // COM_RESET_CONNECTION freed them on the server: the cache starts
        // over and an old statement gets a clear error, not the server's 1243.
        assert_eq!(c.cached_statements(), 0);
        let r = c.exec_first("SELECT ?", (7,)).await?.unwrap();
        assert_eq!(r.get::<i32>(0)?, 7);
        let e = c.exec_drop(&explicit, (1,)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
        c.close().await
    })
}

#[test]
fn named_parameters_bind_by_name_and_report_mistakes() {
    run(async {
        let mut c = crate::conn().await?;
        let rows = c
            .exec_named(
                "SELECT :a + :b, :a, ':a', CONCAT(:s, '') -- :ignored",
                mysql_uring::named_params! { "a" => 2, "b" => 40, "s" => "it's" },
            )
            .await?;
        assert_eq!(rows[0].get::<i64>(0)?, 42);
        assert_eq!(
            rows[0].get::<i64>(1)?,
            2,
            "a name used twice gets its value twice"
        );
        assert_eq!(rows[0].get::<&str>(2)?, ":a", "inside a literal it is text");
        assert_eq!(rows[0].get::<&str>(3)?, "it's");
        let o = c
            .exec_drop_named("DO :x", mysql_uring::named_params! { "x" => 1 })
            .await?;
        assert_eq!(o.affected_rows, 0);

        let e = c
            .exec_named("SELECT :a, :b", mysql_uring::named_params! { "a" => 1 })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains(":b"), "{e}");
        let e = c
            .exec_named(
                "SELECT :a",
                mysql_uring::named_params! { "a" => 1, "z" => 2 },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains(":z"), "{e}");
        let e = c
            .exec_named("SELECT ?, :a", mysql_uring::named_params! { "a" => 1 })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(!c.is_broken());
        c.close().await
    })
}
