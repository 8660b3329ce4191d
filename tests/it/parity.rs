//! Connector/Python (`mysql.connector.aio`) parity and the correctness fixes
//! of issue 10, against the real server.

use mysql_uring::ErrorKind;

use crate::run;

#[test]
fn change_user_with_a_wrong_password_keeps_the_servers_code_and_sqlstate() {
    run(async {
        let mut c = crate::conn().await?;
        let user = crate::opts().get_user().to_string();
        let e = c
            .change_user(&user, "surely-not-the-password", None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert_eq!(e.code(), Some(1045), "{e:?}");
        let server = e.server_error().expect("the server's error is kept");
        assert_eq!(server.sql_state, "28000", "{e:?}");
        assert!(server.message.contains("Access denied"), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("1045") && text.contains("28000"), "{text}");
        assert!(text.contains("connection was closed"), "{text}");
        assert!(!text.contains("surely-not-the-password"), "{text}");
        assert!(e.is_fatal());
        assert!(c.is_broken());
        Ok(())
    })
}

#[test]
fn a_command_refused_before_sending_is_not_fatal_and_the_connection_runs_on() {
    use mysql_uring::Compression as Algorithm;
    run(async {
        let small = crate::opts().max_packet_size(4096);
        for (how, opts) in [
            ("plain", small.clone()),
            ("compressed", small.compression(Some(Algorithm::Zlib(6)))),
        ] {
            let mut c = mysql_uring::connect(opts).await?;
            let big = format!("SELECT '{}'", "y".repeat(10_000));

            let e = c.query_drop(&big).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TooLarge, "{how}: {e:?}");
            assert!(!e.is_fatal(), "{how}: nothing was sent: {e:?}");
            assert!(e.to_string().contains("not sent"), "{how}: {e}");
            assert!(!c.is_broken(), "{how}");
            assert_eq!(c.query("SELECT 1").await?[0].get::<i32>(0)?, 1, "{how}");

            // A pipeline whose third stage is refused sends nothing at all
            // (and, compressed, leaves no trace in how the next command is
            // split into compressed packets).
            let e = c
                .pipeline()
                .query("SELECT 2")
                .query("SELECT 22")
                .query(big.clone())
                .run()
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TooLarge, "{how}");
            assert!(!e.is_fatal(), "{how}: {e:?}");
            let r = c
                .query("SELECT 3 AS a_longer_query_than_the_stages")
                .await?;
            assert_eq!(r[0].get::<i32>(0)?, 3, "{how}");

            // A prepared execute whose parameters do not fit (each is below
            // the long-data size, together they exceed the packet limit).
            let v = "z".repeat(1000);
            let e = c
                .exec_drop(
                    "SELECT LENGTH(?), LENGTH(?), LENGTH(?), LENGTH(?), LENGTH(?)",
                    [&v, &v, &v, &v, &v],
                )
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TooLarge, "{how}: {e:?}");
            assert!(!e.is_fatal(), "{how}: {e:?}");
            let r = c.exec_first("SELECT ? + 1", (41,)).await?.unwrap();
            assert_eq!(r.get::<i64>(0)?, 42, "{how}");

            // A packet received over the limit is another matter: fatal.
            let e = c.query("SELECT REPEAT('x', 20000)").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TooLarge, "{how}");
            assert!(e.is_fatal(), "{how}: {e:?}");
            assert!(c.is_broken(), "{how}");
        }
        Ok(())
    })
}

/// `cargo test --features decimal --test it parity`
#[cfg(feature = "decimal")]
#[test]
fn decimals_that_do_not_fit_rust_decimal_are_errors_naming_the_column() {
    use rust_decimal::Decimal;
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "parity_decimal").await?;
        c.query_drop("CREATE TABLE d (id INT PRIMARY KEY, wide DECIMAL(65,30), big DECIMAL(65,0))")
            .await?;
        c.query_drop(
            "INSERT INTO d VALUES
             (1, 0.123456789012345678901234567891, 1),
             (2, 1.5, 100000000000000000000000000000),
             (3, 0.1234567890123456789012345678, 79228162514264337593543950335),
             (4, -12345678901234567890.123456789012, 0)",
        )
        .await?;
        let sql = "SELECT wide, big FROM d WHERE id = ?";
        for id in 1..=4 {
            let text = c.query_with(sql, (id,)).await?.remove(0);
            let binary = c.exec_first(sql, (id,)).await?.expect("row");
            for (how, r) in [("text", &text), ("binary", &binary)] {
                let wide = r.get::<Decimal>("wide");
                let big = r.get::<Decimal>("big");
                match id {
                    1 | 4 => {
                        let e = wide.unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::Conversion, "{how} {id}: {e}");
                        let msg = e.to_string();
                        assert!(msg.contains("`wide`"), "names the column: {msg}");
                        assert!(msg.contains("not rounded"), "{msg}");
                        let exact: String = r.get("wide")?;
                        assert!(msg.contains(&exact), "shows the value: {msg}");
                    }
                    2 => {
                        // 30 places, the last 29 of them zeros: exact as 1.5.
                        assert_eq!(wide?, "1.5".parse::<Decimal>().unwrap(), "{how}");
                        let e = big.unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::Conversion, "{how}: {e}");
                        assert!(e.to_string().contains("`big`"), "{e}");
                    }
                    _ => {
                        let w = wide?;
                        assert_eq!(w.to_string(), "0.1234567890123456789012345678", "{how}");
                        assert_eq!(big?.to_string(), "79228162514264337593543950335", "{how}");
                    }
                }
            }
        }
        c.query_drop("DROP DATABASE it_parity_decimal").await?;
        c.close().await
    })
}

/// The ids in table `t`, in order.
async fn ids(c: &mut mysql_uring::Connection) -> mysql_uring::Result<Vec<i32>> {
    let rows = c.query("SELECT id FROM t ORDER BY id").await?;
    rows.iter().map(|r| r.get::<i32>(0)).collect()
}

#[test]
fn execute_many_after_a_failing_row_bulk_and_loop_modes() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "parity_many").await?;
        // Row 3 of 5 repeats row 1's key.
        let rows = vec![(1, 10), (2, 20), (1, 30), (4, 40), (5, 50)];
        let insert = "INSERT INTO t (id, v) VALUES (?, ?)";
        let bulk = c.supports_bulk_execute();
        for engine in ["InnoDB", "MyISAM"] {
            for mode in ["bulk", "loop"] {
                if mode == "bulk" && !bulk {
                    continue; // not MariaDB: always the loop
                }
                c.set_bulk_execute(mode == "bulk");
                c.query_drop("DROP TABLE IF EXISTS t").await?;
                c.query_drop(&format!(
                    "CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE={engine}"
                ))
                .await?;
                let e = c.execute_many(insert, &rows).await.unwrap_err();
                assert_eq!(e.code(), Some(1062), "{engine} {mode}: {e}");
                assert!(!e.is_fatal());
                let want: &[i32] = match (engine, mode) {
                    // One packet = one statement, rolled back as a whole.
                    ("InnoDB", "bulk") => &[],
                    // Each row before the failing one is its own statement.
                    _ => &[1, 2],
                };
                assert_eq!(ids(&mut c).await?, want, "{engine} {mode}");
                // The cursor's execute_many is the same call.
                c.query_drop("DELETE FROM t").await?;
                let mut cur = c.cursor();
                let e = cur.execute_many(insert, &rows).await.unwrap_err();
                assert_eq!(e.code(), Some(1062), "{engine} {mode}: {e}");
                cur.close().await?;
                assert_eq!(ids(&mut c).await?, want, "{engine} {mode}, cursor");

                // All or nothing: a transaction, rolled back on the error.
                if engine == "InnoDB" {
                    c.query_drop("DELETE FROM t").await?;
                    let mut tx = c.begin().await?;
                    assert!(tx.execute_many(insert, &rows).await.is_err());
                    tx.rollback().await?;
                    assert_eq!(ids(&mut c).await?, Vec::<i32>::new(), "{mode}, rolled back");
                }
            }
        }

        // Bulk rows go in packets of about 1 MiB, each its own statement:
        // the packets before the failing one stay.
        if bulk {
            c.set_bulk_execute(true);
            c.query_drop("DROP TABLE IF EXISTS t").await?;
            c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v LONGTEXT) ENGINE=InnoDB")
                .await?;
            let pad = "p".repeat(200_000);
            // 200 kB a row: rows 1-6 fill the first packet; row 8 fails.
            let mut big: Vec<(i32, &str)> = (1..=10).map(|i| (i, pad.as_str())).collect();
            big[7].0 = 7;
            let e = c.execute_many(insert, &big).await.unwrap_err();
            assert_eq!(e.code(), Some(1062), "{e}");
            assert_eq!(ids(&mut c).await?, vec![1, 2, 3, 4, 5, 6]);
        }
        c.query_drop("DROP DATABASE it_parity_many").await?;
        c.close().await
    })
}

/// `database()` and `charset()` against what the server says they are.
async fn check_session(c: &mut mysql_uring::Connection, when: &str) -> mysql_uring::Result<()> {
    let r = c
        .query("SELECT DATABASE(), @@character_set_client")
        .await?
        .remove(0);
    assert_eq!(c.database(), r.get::<Option<&str>>(0)?, "database {when}");
    assert_eq!(c.charset(), r.get::<&str>(1)?, "charset {when}");
    Ok(())
}

#[test]
fn database_charset_collation_and_version_follow_the_session() {
    run(async {
        let mut c = crate::conn().await?;
        check_session(&mut c, "after connect").await?;
        assert_eq!(c.database(), crate::opts().get_database());
        assert_eq!(c.charset(), "utf8mb4");

        let db = crate::scratch_db(&mut c, "parity_session").await?;
        check_session(&mut c, "after select_db").await?;
        assert_eq!(c.database(), Some(db.as_str()));
        crate::scratch_db(&mut c, "parity_session2").await?;
        // USE as SQL: reported by the server's session tracking.
        c.query_drop(&format!("USE {db}")).await?;
        assert_eq!(c.database(), Some(db.as_str()));
        check_session(&mut c, "after USE").await?;
        // A failing USE changes nothing.
        assert!(c.query_drop("USE it_no_such_db_here").await.is_err());
        assert_eq!(c.database(), Some(db.as_str()));
        // Dropping the current database leaves none selected.
        c.query_drop("USE it_parity_session2").await?;
        c.query_drop("DROP DATABASE it_parity_session2").await?;
        check_session(&mut c, "after dropping it").await?;
        assert_eq!(c.database(), None);

        // SET NAMES as SQL: tracked, and quoting follows it.
        assert!(!c.quoting().multibyte_hazard);
        c.query_drop("SET NAMES latin1").await?;
        assert_eq!(c.charset(), "latin1");
        check_session(&mut c, "after SET NAMES").await?;
        c.query_drop("SET NAMES gbk").await?;
        assert_eq!(c.charset(), "gbk");
        assert!(c.quoting().multibyte_hazard, "quoting knows about gbk now");
        c.query_drop("SET NAMES utf8mb4 COLLATE utf8mb4_bin")
            .await?;
        assert_eq!(c.charset(), "utf8mb4");
        assert_eq!(c.collation().await?, "utf8mb4_bin");

        // reset keeps the database; the charset is checked against the server.
        c.select_db(&db).await?;
        c.query_drop("SET NAMES latin1").await?;
        c.reset().await?;
        check_session(&mut c, "after reset").await?;
        assert_eq!(c.database(), Some(db.as_str()));

        // The server version, parsed.
        let v = c.server_version_info();
        let text: String = c.query("SELECT VERSION()").await?[0].get(0)?;
        let want = mysql_uring::ServerVersion::parse(&text).expect("VERSION() parses");
        assert_eq!(
            (v.major, v.minor, v.patch),
            (want.major, want.minor, want.patch)
        );
        assert_eq!(v.is_mariadb, c.is_mariadb());
        assert_eq!(v.is_mariadb, text.contains("MariaDB"), "{text}");
        assert!(v.major >= 5, "{v}");
        c.query_drop(&format!("DROP DATABASE {db}")).await?;
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn change_user_sets_the_database_it_was_given() {
    let _ = private();
    run(async {
        let mut c = crate::conn().await?;
        c.query_drop("SET NAMES latin1").await?;
        c.change_user(
            crate::support::NATIVE_USER,
            crate::support::NATIVE_PASSWORD,
            Some("mysql"),
        )
        .await?;
        assert_eq!(c.database(), Some("mysql"));
        check_session(&mut c, "after change_user").await?;
        c.change_user(
            crate::support::NATIVE_USER,
            crate::support::NATIVE_PASSWORD,
            None,
        )
        .await?;
        assert_eq!(c.database(), None);
        check_session(&mut c, "after change_user without a database").await?;
        c.close().await
    })
}

/// The private server: the tests that use it are ignored when `MYSQL_URL`
/// is set (the cfg `external_server`, from build.rs).
fn private() -> &'static crate::support::TestServer {
    crate::support::server()
}

#[test]
fn is_connected_and_reconnect_with_the_same_options() {
    run(async {
        let opts = crate::opts()
            .charset("latin1")?
            .init("SET @parity_init = 7");
        let mut c = mysql_uring::connect(opts).await?;
        assert!(c.is_connected().await);
        let first = c.connection_id();

        // The server ends the session: not connected, and no error.
        let mut admin = crate::conn().await?;
        admin.query_drop(&format!("KILL {first}")).await?;
        assert!(!c.is_connected().await);
        assert!(!c.is_connected().await, "asking again is still just false");

        c.reconnect(2, std::time::Duration::from_millis(10)).await?;
        assert!(c.is_connected().await);
        assert_ne!(c.connection_id(), first, "a new session");
        let r = c
            .query("SELECT @parity_init, @@character_set_client")
            .await?
            .remove(0);
        assert_eq!(r.get::<i64>(0)?, 7, "init ran again");
        assert_eq!(r.get::<&str>(1)?, "latin1", "charset set again");
        assert_eq!(c.charset(), "latin1");

        // A healthy connection can be reconnected too: the old session ends.
        let second = c.connection_id();
        c.reconnect(1, std::time::Duration::ZERO).await?;
        assert_ne!(c.connection_id(), second);
        assert!(
            crate::wait_for_processlist(&mut admin, &format!("ID = {second}"), 0).await?,
            "the old session was closed"
        );
        c.close().await?;
        admin.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn reconnect_that_keeps_failing_names_its_attempts_and_keeps_the_servers_error() {
    let server = private();
    run(async {
        let mut admin = crate::conn().await?;
        admin
            .query_drop("CREATE OR REPLACE USER 'mu_parity_gone'@'%' IDENTIFIED BY 'gone-pass'")
            .await?;
        admin
            .query_drop(
                "CREATE OR REPLACE USER 'mu_parity_gone'@'localhost' IDENTIFIED BY 'gone-pass'",
            )
            .await?;
        let url = server.url("mu_parity_gone", "gone-pass", None);
        let mut c = mysql_uring::connect(url.as_str()).await?;
        admin.query_drop("DROP USER 'mu_parity_gone'@'%'").await?;
        admin
            .query_drop("DROP USER 'mu_parity_gone'@'localhost'")
            .await?;

        let delay = std::time::Duration::from_millis(50);
        let t = std::time::Instant::now();
        let e = c.reconnect(3, delay).await.unwrap_err();
        assert!(t.elapsed() >= 2 * delay, "waited between the attempts");
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert_eq!(e.code(), Some(1045), "{e:?}");
        assert!(e.to_string().contains("after 3 attempts"), "{e}");
        assert!(c.is_broken(), "the old session is closed");
        assert!(!c.is_connected().await);
        let e = c.query("SELECT 1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Broken, "{e:?}");
        admin.close().await
    })
}

#[test]
fn get_rows_upto_reads_at_most_count_rows_and_leaves_the_rest() {
    use mysql_uring::QueryResult;
    run(async {
        let mut c = crate::conn().await?;
        let sql = "SELECT seq FROM seq_1_to_10";
        for binary in [false, true] {
            let first = if binary {
                c.cmd_execute(sql, ()).await?
            } else {
                c.cmd_query(sql).await?
            };
            assert!(matches!(first, QueryResult::Rows(_)));
            assert!(c.get_rows_upto(0).await?.is_empty());
            let mut seen = Vec::new();
            let mut sizes = Vec::new();
            while c.has_pending_rows() {
                let batch = c.get_rows_upto(4).await?;
                sizes.push(batch.len());
                for r in &batch {
                    seen.push(r.get::<i64>(0)?);
                }
            }
            assert_eq!(sizes, [4, 4, 2], "binary: {binary}");
            assert_eq!(seen, (1..=10).collect::<Vec<i64>>());
            assert!(c.get_rows_upto(5).await?.is_empty(), "after the end");
        }
        // Rows left unread are discarded by the next command.
        c.cmd_query(sql).await?;
        assert_eq!(c.get_rows_upto(3).await?.len(), 3);
        assert_eq!(c.query("SELECT 11").await?[0].get::<i64>(0)?, 11);
        c.close().await
    })
}

#[test]
fn rows_as_ordered_maps_of_name_to_value() {
    use mysql_uring::Value;
    run(async {
        let mut c = crate::conn().await?;
        let sql = "SELECT CAST(? AS SIGNED) AS id, ? AS name, NULL AS nothing, 2.5e0 AS x, \
                   DATE'2024-02-29' AS d, 1 AS id";
        let text = c.query_with(sql, (7, "ada")).await?.remove(0);
        let binary = c.exec_first(sql, (7, "ada")).await?.expect("row");
        for (how, row) in [("text", &text), ("binary", &binary)] {
            let map = row.to_map()?;
            assert_eq!(map.len(), 6, "{how}");
            assert_eq!(
                map.keys().collect::<Vec<_>>(),
                ["id", "name", "nothing", "x", "d", "id"],
                "column order, duplicates kept ({how})"
            );
            assert_eq!(map["id"], Value::Int(7), "the first `id` ({how})");
            assert_eq!(map.values()[5], Value::Int(1), "{how}");
            assert_eq!(
                map.get("name"),
                Some(&Value::Bytes(b"ada".to_vec())),
                "{how}"
            );
            assert_eq!(map["nothing"], Value::Null, "{how}");
            assert_eq!(map["x"], Value::Double(2.5), "{how}");
            assert_eq!(
                map["d"],
                Value::Date(mysql_uring::Date {
                    year: 2024,
                    month: 2,
                    day: 29
                }),
                "{how}"
            );
            assert!(map.get("missing").is_none() && !map.contains_key("missing"));
            assert_eq!(map.iter().count(), 6);
            let dbg = format!("{map:?}");
            assert!(dbg.starts_with("{\"id\": Int(7), \"name\""), "{dbg}");
        }
        assert_eq!(text.to_map()?, binary.to_map()?, "both protocols agree");
        c.close().await
    })
}

#[test]
fn callproc_returns_out_and_inout_values_and_the_result_sets() {
    run(async {
        let mut c = crate::conn().await?;
        let db = crate::scratch_db(&mut c, "parity_call").await?;
        c.query_drop(
            "CREATE PROCEDURE add_tax(IN net DECIMAL(10,2), INOUT rate INT, OUT gross DECIMAL(10,2),
                                      INOUT note VARCHAR(40))
             BEGIN
               SELECT net AS net, rate AS rate_in;
               SELECT seq AS n FROM seq_1_to_3;
               SET gross = net * (100 + rate) / 100;
               SET rate = rate + 1;
               SET note = CONCAT(note, ' taxed');
             END",
        )
        .await?;
        c.query_drop("CREATE PROCEDURE `odd name`(OUT x INT) SET x = 42")
            .await?;
        c.query_drop("CREATE PROCEDURE just_rows() SELECT 'a' AS s UNION ALL SELECT 'b'")
            .await?;
        c.query_drop("CREATE PROCEDURE nothing() DO 1").await?;
        c.query_drop(
            "CREATE PROCEDURE fails() BEGIN SELECT 1 AS one; \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no thanks'; END",
        )
        .await?;

        for name in [
            "add_tax",
            &format!("{db}.add_tax"),
            &format!("`{db}`.`add_tax`"),
        ] {
            let r = c
                .callproc(name, mysql_uring::params![100, 20, None::<i32>, "order 7"])
                .await?;
            let out = r.out.expect("OUT parameters");
            assert_eq!(out.len(), 3, "OUT and INOUT only: rate, gross, note");
            assert_eq!(out.get::<i32>("rate")?, 21, "{name}");
            assert_eq!(out.get::<String>("gross")?, "120.00", "{name}");
            assert_eq!(out.get::<&str>("note")?, "order 7 taxed", "{name}");
            assert_eq!(out.get::<i32>(0)?, 21, "by position among the OUT ones");
            assert_eq!(r.results.len(), 2, "{name}");
            let first = &r.results[0];
            assert_eq!(
                first.columns.iter().map(|c| c.name()).collect::<Vec<_>>(),
                ["net", "rate_in"]
            );
            assert_eq!(first.rows[0].get::<String>("net")?, "100.00");
            assert_eq!(first.rows[0].get::<i32>("rate_in")?, 20);
            let ns: Vec<i64> = r.results[1]
                .rows
                .iter()
                .map(|r| r.get(0))
                .collect::<mysql_uring::Result<_>>()?;
            assert_eq!(ns, [1, 2, 3]);
        }

        let r = c.callproc("`odd name`", (None::<i32>,)).await?;
        assert_eq!(r.out.expect("x").get::<i32>("x")?, 42);
        assert!(r.results.is_empty());

        let r = c.callproc("just_rows", ()).await?;
        assert!(r.out.is_none(), "no OUT parameters");
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].rows.len(), 2);
        assert_eq!(r.results[0].rows[1].get::<&str>("s")?, "b");

        let r = c.callproc("nothing", ()).await?;
        assert!(r.out.is_none() && r.results.is_empty());

        // Errors: the server's, and the connection goes on.
        let e = c.callproc("no_such_proc", ()).await.unwrap_err();
        assert_eq!(e.code(), Some(1305), "{e}");
        let e = c.callproc("add_tax", (1,)).await.unwrap_err();
        assert_eq!(e.code(), Some(1318), "wrong argument count: {e}");
        let e = c.callproc("fails", ()).await.unwrap_err();
        assert_eq!(
            e.server_error().map(|s| s.sql_state.as_str()),
            Some("45000"),
            "{e}"
        );
        assert!(e.to_string().contains("no thanks"), "{e}");
        assert_eq!(c.query("SELECT 5").await?[0].get::<i32>(0)?, 5);

        // Through the cursor, with stored_results().
        let mut cur = c.cursor();
        let out = cur
            .callproc("add_tax", mysql_uring::params![50, 10, None::<i32>, ""])
            .await?
            .expect("OUT parameters");
        assert_eq!(out.get::<String>("gross")?, "55.00");
        assert_eq!(cur.stored_results().len(), 2);
        assert_eq!(cur.stored_results()[1].rows.len(), 3);
        cur.execute("SELECT 1").await?;
        assert!(
            cur.stored_results().is_empty(),
            "cleared by the next execute"
        );
        cur.close().await?;

        c.query_drop(&format!("DROP DATABASE {db}")).await?;
        c.close().await
    })
}

#[test]
fn callproc_refuses_names_that_are_not_procedure_names_and_sends_nothing() {
    run(async {
        let mut c = crate::conn().await?;
        let db = crate::scratch_db(&mut c, "parity_inject").await?;
        c.query_drop("CREATE TABLE keep (id INT)").await?;
        c.query_drop("CREATE PROCEDURE p() DO 1").await?;
        let before = c
            .query("SHOW SESSION STATUS LIKE 'Com_call_procedure'")
            .await?[0]
            .get::<u64>(1)?;
        for name in [
            "p(); DROP TABLE keep; CALL p",
            "p`; DROP TABLE keep; --",
            "`p`; DROP TABLE keep",
            "p -- ",
            "p/**/",
            "it_parity_inject.p.x",
            "",
            "`unclosed",
        ] {
            let e = c.callproc(name, ()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage, "{name:?}: {e:?}");
            assert!(!e.is_fatal());
            assert!(e.to_string().contains("not a procedure name"), "{e}");
        }
        let after = c
            .query("SHOW SESSION STATUS LIKE 'Com_call_procedure'")
            .await?[0]
            .get::<u64>(1)?;
        assert_eq!(after, before, "no CALL reached the server");
        // A quoted name is only ever a name: this one does not exist.
        let e = c.callproc("`p; DROP TABLE keep`", ()).await.unwrap_err();
        assert_eq!(e.code(), Some(1305), "{e}");
        assert_eq!(
            c.query("SELECT COUNT(*) FROM keep").await?[0].get::<i64>(0)?,
            0
        );
        c.callproc("p", ()).await?;
        c.query_drop(&format!("DROP DATABASE {db}")).await?;
        c.close().await
    })
}
