//! Row streams: `Connection::stream` / `exec_stream` and their typed forms
//! as `futures_core::Stream`s, with `futures` combinators, errors as items,
//! and streams dropped before their end.

use futures::{StreamExt, TryStreamExt};
use mysql_uring::{ErrorKind, FromRow, Row};

use crate::run;

#[test]
fn a_stream_yields_owned_rows_in_order() {
    run(async {
        let mut c = crate::conn().await?;
        let mut s = c
            .stream("SELECT seq AS n, CONCAT('r', seq) AS r FROM seq_1_to_100")
            .await?;
        assert_eq!(s.columns().len(), 2);
        assert_eq!(s.columns()[1].name(), "r");
        let mut kept: Vec<Row> = Vec::new();
        let mut n = 0u64;
        while let Some(row) = s.next().await {
            let row = row?;
            n += 1;
            assert_eq!(row.get::<u64>("n")?, n);
            kept.push(row);
        }
        // Fused: it stays ended.
        assert!(s.next().await.is_none());
        drop(s);
        assert_eq!(n, 100);
        // The rows own their bytes: still readable after more reads.
        c.query_drop("SELECT seq FROM seq_1_to_1000").await?;
        assert_eq!(kept[41].get::<&str>("r")?, "r42");
        assert!(!c.has_pending_response());
        c.close().await
    })
}

#[test]
fn dropping_a_stream_mid_result_leaves_the_rest_to_the_next_command() {
    run(async {
        let mut c = crate::conn().await?;
        let mut s = c.stream("SELECT seq FROM seq_1_to_10000").await?;
        for want in 1..=3u64 {
            let row = s.next().await.expect("a row")?;
            assert_eq!(row.get::<u64>(0)?, want);
        }
        drop(s);
        assert!(c.has_pending_response(), "9997 rows are still unread");
        assert_eq!(
            c.query_as::<(String,)>("SELECT 'mine'").await?,
            [("mine".to_string(),)]
        );
        assert!(!c.has_pending_response());

        // The same through a prepared statement, and typed.
        let mut s = c
            .exec_stream_as::<(u64,)>("SELECT seq FROM seq_1_to_10000 WHERE seq > ?", (5,))
            .await?;
        assert_eq!(s.try_next().await?, Some((6,)));
        drop(s);
        assert!(c.has_pending_response());
        assert_eq!(
            c.exec_first_as::<(i64,)>("SELECT ?", (99,)).await?,
            Some((99,))
        );

        // Dropped while a row is awaited: a slow result cut short by a timeout.
        let r = mysql_uring::runtime::timeout(std::time::Duration::from_millis(100), async {
            let mut s = c.stream("SELECT seq, SLEEP(0.02) FROM seq_1_to_30").await?;
            while s.try_next().await?.is_some() {}
            Ok::<(), mysql_uring::Error>(())
        })
        .await;
        assert!(r.is_err(), "cut short");
        assert!(c.has_pending_response());
        assert_eq!(c.query_as::<(i64,)>("SELECT 7").await?, [(7,)]);
        c.close().await
    })
}

#[test]
fn streams_work_with_futures_combinators() {
    run(async {
        let mut c = crate::conn().await?;
        let evens: Vec<u64> = c
            .stream_as::<(u64,)>("SELECT seq FROM seq_1_to_100")
            .await?
            .map_ok(|(n,)| n)
            .try_filter(|n| std::future::ready(n % 2 == 0))
            .take(5)
            .try_collect()
            .await?;
        assert_eq!(evens, [2, 4, 6, 8, 10]);
        assert!(c.has_pending_response(), "take(5) stopped early");

        let sum = c
            .exec_stream_as::<(u64, f64)>(
                "SELECT seq, seq / 2 FROM seq_1_to_10 WHERE seq > ?",
                (0,),
            )
            .await?
            .try_fold(0.0, |acc, (_, half)| async move { Ok(acc + half) })
            .await?;
        assert_eq!(sum, 27.5);
        assert!(!c.has_pending_response());

        #[derive(FromRow)]
        struct Word {
            w: String,
        }
        let words: Vec<String> = c
            .stream_as::<Word>("SELECT CONCAT('w', seq) AS w FROM seq_1_to_3")
            .await?
            .map(|r| r.map(|word| word.w))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<mysql_uring::Result<_>>()?;
        assert_eq!(words, ["w1", "w2", "w3"]);

        let count = c
            .exec_stream("SELECT seq FROM seq_1_to_500 WHERE seq % ? = 0", (7,))
            .await?
            .count()
            .await;
        assert_eq!(count, 71);
        c.close().await
    })
}

#[test]
fn a_row_that_does_not_convert_is_an_error_item_and_the_stream_goes_on() {
    run(async {
        let mut c = crate::conn().await?;
        let items: Vec<mysql_uring::Result<(u8,)>> = c
            .stream_as::<(u8,)>("SELECT seq FROM seq_250_to_260")
            .await?
            .collect()
            .await;
        assert_eq!(items.len(), 11);
        assert!(items[..6].iter().all(|r| r.is_ok()));
        for e in &items[6..] {
            let e = e.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conversion, "{e}");
        }
        assert_eq!(*items[5].as_ref().unwrap(), (255,));
        // try_collect stops at the first error; the rest is discarded later.
        let e = c
            .exec_stream_as::<(u8,)>("SELECT seq FROM seq_250_to_1000 WHERE seq > ?", (0,))
            .await?
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("256"), "{e}");
        assert_eq!(c.query_as::<(i64,)>("SELECT 3").await?, [(3,)]);
        c.close().await
    })
}

#[test]
fn statements_without_rows_and_further_results() {
    run(async {
        let mut c = mysql_uring::connect(crate::opts().multi_statements(true)).await?;
        crate::scratch_db(&mut c, "stream_sets").await?;
        // No result set: an empty stream.
        let mut s = c.stream("DO 1").await?;
        assert!(s.columns().is_empty());
        assert!(s.next().await.is_none());
        drop(s);
        assert!(c.exec_stream("DO ?", (1,)).await?.next().await.is_none());

        // Text: further results stay for next_result.
        let first: Vec<(i64,)> = c
            .stream_as::<(i64,)>("SELECT 1; SELECT 2")
            .await?
            .try_collect()
            .await?;
        assert_eq!(first, [(1,)]);
        assert!(c.next_result().await?.is_some());
        assert_eq!(c.get_rows().await?[0].get::<i64>(0)?, 2);
        assert!(c.next_result().await?.is_none());

        // Prepared: the rest of a CALL's reply is read when the rows end, and
        // its error is the stream's last item.
        c.query_drop(
            "CREATE PROCEDURE p(IN fail INT) BEGIN SELECT seq FROM seq_1_to_3; \
             IF fail THEN SELECT * FROM no_such_table; END IF; END",
        )
        .await?;
        let items: Vec<mysql_uring::Result<(u64,)>> = c
            .exec_stream_as::<(u64,)>("CALL p(?)", (0,))
            .await?
            .collect()
            .await;
        assert_eq!(items.len(), 3);
        assert!(!c.has_pending_response(), "the CALL's outcome was read");
        let items: Vec<mysql_uring::Result<(u64,)>> = c
            .exec_stream_as::<(u64,)>("CALL p(?)", (1,))
            .await?
            .collect()
            .await;
        assert_eq!(items.len(), 4);
        let e = items[3].as_ref().unwrap_err();
        assert_eq!(e.code(), Some(1146), "{e}");
        assert!(!c.has_pending_response());
        assert_eq!(
            c.exec_first_as::<(i64,)>("SELECT ?", (4,)).await?,
            Some((4,))
        );
        c.query_drop("DROP DATABASE it_stream_sets").await?;
        c.close().await
    })
}
