//! Clear, typed errors for bad input, and a connection that survives server errors.

use mysql_uring::{ErrorKind, Opts, QueryResult, connect};

use crate::run;

#[test]
fn bad_url_is_a_config_error_before_any_io() {
    run(async {
        for url in [
            "mysql//nohost",
            "http://root@127.0.0.1/test",
            "mysql://root@127.0.0.1/test?timeout=3",
        ] {
            let e = connect(url).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e:?}");
        }
        Ok(())
    })
}

#[test]
fn connection_refused_is_an_io_error_that_says_so() {
    run(async {
        // Bind then drop a listener to find a port with nobody listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = connect(Opts::new().port(port)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e:?}");
        assert!(e.to_string().contains("refused"), "{e}");
        assert!(e.to_string().contains(&port.to_string()), "{e}");
        Ok(())
    })
}

#[test]
fn an_unknown_host_says_its_name_could_not_be_resolved() {
    run(async {
        let e = connect("mysql://root@no-such-host.invalid/test")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("host name 'no-such-host.invalid' could not be resolved"),
            "{msg}"
        );
        assert!(msg.contains("no-such-host.invalid:3306"), "{msg}");
        assert!(msg.contains("check the host name"), "{msg}");
        assert!(!msg.contains("socket error"), "{msg}");
        Ok(())
    })
}

#[test]
fn a_connect_timeout_names_the_address() {
    run(async {
        // A listener that never accepts: the kernel completes the TCP
        // handshake, and the greeting never comes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let e = connect(
            Opts::new()
                .port(port)
                .connect_timeout(Some(std::time::Duration::from_millis(200))),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        drop(silent);
        Ok(())
    })
}

#[test]
fn missing_socket_file_is_an_io_error() {
    run(async {
        let e = connect(Opts::new().socket("/nonexistent/mysql-uring.sock"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e:?}");
        assert!(
            e.to_string().contains("/nonexistent/mysql-uring.sock"),
            "{e}"
        );
        Ok(())
    })
}

#[test]
fn query_errors_keep_code_state_message_and_the_connection() {
    run(async {
        let mut c = crate::conn().await?;
        let e = c
            .query_drop("SELECT * FROM no_such_table_abc")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.code(), Some(1146));
        let se = e.server_error().unwrap();
        assert_eq!(se.sql_state, "42S02");
        assert!(se.message.contains("no_such_table_abc"));
        assert!(!e.is_fatal());

        let e = c.query_drop("SELEKT 1").await.unwrap_err();
        assert_eq!(e.code(), Some(1064));
        assert_eq!(e.server_error().unwrap().sql_state, "42000");

        // The connection is still in sync.
        assert_eq!(c.query("SELECT 7").await?[0].get::<i32>(0)?, 7);
        c.close().await
    })
}

#[test]
fn error_in_the_middle_of_rows_is_reported_and_connection_recovers() {
    run(async {
        let mut c = crate::conn().await?;
        // The error surfaces while rows stream: a huge value hits max_allowed_packet
        // on the server, or an error is raised by a function mid-result.
        c.query_drop("SET SESSION max_statement_time = 0").await?;
        let r = c
            .query("SELECT IF(seq = 3, (SELECT 1 UNION SELECT 2), seq) FROM seq_1_to_5")
            .await;
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{e:?}");
        assert_eq!(e.code(), Some(1242), "subquery returns more than 1 row");
        assert_eq!(c.query("SELECT 8").await?[0].get::<i32>(0)?, 8);
        c.close().await
    })
}

#[test]
fn conversion_errors_name_the_column_value_and_type() {
    run(async {
        let mut c = crate::conn().await?;
        let rows = c
            .query("SELECT 'abc' AS word, NULL AS nothing, 300 AS big")
            .await?;
        let e = rows[0].get::<i64>("word").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        let m = e.to_string();
        assert!(
            m.contains("word") && m.contains("abc") && m.contains("i64"),
            "{m}"
        );
        let e = rows[0].get::<i64>("nothing").unwrap_err();
        assert!(
            e.to_string().contains("NULL") && e.to_string().contains("Option"),
            "{e}"
        );
        let e = rows[0].get::<u8>("big").unwrap_err();
        assert!(e.to_string().contains("u8"), "{e}");
        let e = rows[0].get::<i64>("nope").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains("word, nothing, big"), "{e}");
        let e = rows[0].get::<i64>(3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        c.close().await
    })
}

#[test]
fn fetch_before_execute_is_a_usage_error() {
    run(async {
        let mut c = crate::conn().await?;
        let mut cur = c.cursor();
        let e = cur.fetch_all().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains("execute"), "{e}");
        assert_eq!(cur.rowcount(), -1);
        cur.close().await?;
        c.close().await
    })
}

#[test]
fn oversize_result_is_refused_and_the_connection_closed() {
    run(async {
        let mut c = connect(crate::opts().max_packet_size(64 * 1024)).await?;
        let e = c.query("SELECT REPEAT('x', 200000)").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{e:?}");
        assert!(e.to_string().contains("65536"), "{e}");
        assert!(c.is_broken());
        assert_eq!(c.ping().await.unwrap_err().kind(), ErrorKind::Broken);
        // A new connection is fine.
        let mut c = crate::conn().await?;
        c.ping().await?;
        c.close().await
    })
}

#[test]
fn oversize_query_is_refused_before_sending() {
    run(async {
        let mut c = connect(crate::opts().max_packet_size(4096)).await?;
        let sql = format!("SELECT '{}'", "y".repeat(10_000));
        let e = c.query_drop(&sql).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{e:?}");
        // Nothing was sent, so the connection is still usable.
        c.ping().await?;
        c.close().await
    })
}

#[test]
fn query_timeout_interrupts_the_statement_and_the_connection_works_on() {
    run(async {
        let mut c =
            connect(crate::opts().query_timeout(Some(std::time::Duration::from_millis(300))))
                .await?;
        let id = c.connection_id();
        let e = c.query_drop("SELECT SLEEP(5)").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
        assert!(!e.is_fatal(), "the connection stays usable: {e:?}");
        c.ping().await?;
        assert_eq!(c.connection_id(), id);
        assert_eq!(c.query("SELECT 1").await?[0].get::<i32>(0)?, 1);
        c.close().await
    })
}

#[test]
fn a_dropped_command_future_leaves_the_connection_usable() {
    run(async {
        let mut c = crate::conn().await?;
        // Cancel a query mid-flight from outside the driver.
        let r = mysql_uring::runtime::timeout(
            std::time::Duration::from_millis(200),
            c.query_drop("SELECT SLEEP(1)"),
        )
        .await;
        assert!(r.is_err(), "the query should still have been running");
        assert!(!c.is_broken(), "nothing was lost: the reply is still owed");
        // The next command discards the abandoned reply first.
        let one: i32 = c.query("SELECT 1").await?[0].get(0)?;
        assert_eq!(one, 1);
        Ok(())
    })
}

#[test]
fn cmd_query_reports_outcome_or_columns() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "cmd_query").await?;
        match c
            .cmd_query("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            .await?
        {
            QueryResult::Done(o) => assert_eq!(o.affected_rows, 0),
            QueryResult::Rows(_) => panic!("DDL has no rows"),
        }
        match c
            .cmd_query("INSERT INTO t (v) VALUES (1), (2), (3)")
            .await?
        {
            QueryResult::Done(o) => {
                assert_eq!(o.affected_rows, 3);
                assert_eq!(o.last_insert_id, 1);
                assert!(o.info.contains("Records: 3"), "{:?}", o.info);
            }
            QueryResult::Rows(_) => panic!("INSERT has no rows"),
        }
        match c.cmd_query("SHOW TABLES").await? {
            QueryResult::Rows(cols) => {
                assert_eq!(cols.len(), 1);
                let rows = c.get_rows().await?;
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].get::<&str>(0)?, "t");
            }
            QueryResult::Done(_) => panic!("SHOW TABLES has rows"),
        }
        assert!(c.get_rows().await?.is_empty(), "no rows are left");
        c.query_drop("DROP DATABASE it_cmd_query").await?;
        c.close().await
    })
}
