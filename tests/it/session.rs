//! Session set-up and control: cancellation, multi-statements, charset.

use mysql_uring::{ErrorKind, connect};

use crate::run;

#[test]
fn kill_query_interrupts_a_running_statement_and_the_connection_survives() {
    run(async {
        let mut c = crate::conn().await?;
        let mut watcher = crate::conn().await?;
        let cancel = c.cancel_handle();
        let id = c.connection_id();
        let killer = tokio_uring::spawn(async move {
            // Cancel once the statement is visibly running.
            let running = crate::wait_for_processlist(
                &mut watcher,
                &format!("ID = {id} AND COMMAND = 'Query'"),
                1,
            )
            .await?;
            cancel.cancel().await?;
            watcher.close().await?;
            Ok::<_, mysql_uring::Error>(running)
        });
        let e = c
            .query_drop(
                "SELECT COUNT(*) FROM seq_1_to_100000 a, seq_1_to_100000 b WHERE a.seq + b.seq = 3",
            )
            .await
            .unwrap_err();
        assert!(
            killer.await.expect("killer task")?,
            "the statement never showed up as running"
        );
        assert_eq!(e.kind(), ErrorKind::Server, "{e:?}");
        assert_eq!(e.code(), Some(1317), "{e}");
        assert!(e.to_string().contains("interrupted"), "{e}");
        assert_eq!(c.query("SELECT 3").await?[0].get::<i32>(0)?, 3);
        c.close().await
    })
}

#[test]
fn multi_statements_are_off_unless_enabled() {
    run(async {
        let mut c = crate::conn().await?;
        let e = c.query_drop("SELECT 1; SELECT 2").await.unwrap_err();
        assert_eq!(e.code(), Some(1064), "{e}");
        c.close().await?;

        let mut c = connect(crate::opts().multi_statements(true)).await?;
        let rows = c.query("SELECT 1 AS a; SELECT 2 AS b").await?;
        assert_eq!(rows[0].get::<i32>("a")?, 1);
        // The second result set is discarded before the next command.
        assert_eq!(c.query("SELECT 3").await?[0].get::<i32>(0)?, 3);
        // query_drop reads every result and reports a failing later statement.
        let e = c
            .query_drop("DO 1; SELECT * FROM it_no_such_table")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(1146), "{e}");
        assert_eq!(c.query("SELECT 4").await?[0].get::<i32>(0)?, 4);
        c.close().await
    })
}

#[test]
fn charset_option_sets_the_session_charset() {
    run(async {
        let mut c = connect(crate::opts().charset("latin1")?).await?;
        let cs: String = c.query("SELECT @@character_set_client").await?[0].get(0)?;
        assert_eq!(cs, "latin1");
        c.close().await?;
        let mut c = crate::conn().await?;
        let cs: String = c.query("SELECT @@character_set_client").await?[0].get(0)?;
        assert_eq!(cs, "utf8mb4", "utf8mb4 is the default");
        assert_eq!(
            crate::opts().charset("latin1; DROP").unwrap_err().kind(),
            ErrorKind::Config
        );
        c.close().await
    })
}
