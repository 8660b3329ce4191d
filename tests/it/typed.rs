//! Rows into Rust types: `FromRow` tuples, `#[derive(FromRow)]` structs,
//! borrowed values from streamed rows, and the typed `Connection` and
//! `Client` calls (`query_as`, `exec_map`, `query_fold`, ...).

use mysql_uring::{Client, ErrorKind, FromRow, Row, RowRef};

use crate::run;

#[derive(Debug, PartialEq, FromRow)]
struct Item {
    id: u64,
    name: String,
    #[mysql(rename = "unit_price")]
    price: f64,
    note: Option<String>,
}

/// The items table of a scratch database: two rows, one with a NULL note.
async fn items(c: &mut mysql_uring::Connection, db: &str) -> mysql_uring::Result<()> {
    crate::scratch_db(c, db).await?;
    c.query_drop(
        "CREATE TABLE items (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(20) NOT NULL, \
         unit_price DOUBLE NOT NULL, note TEXT NULL)",
    )
    .await?;
    c.query_drop("INSERT INTO items VALUES (1, 'soup', 2.5, 'hot'), (2, 'bread', 1.25, NULL)")
        .await?;
    Ok(())
}

fn soup_and_bread() -> Vec<Item> {
    vec![
        Item {
            id: 1,
            name: "soup".into(),
            price: 2.5,
            note: Some("hot".into()),
        },
        Item {
            id: 2,
            name: "bread".into(),
            price: 1.25,
            note: None,
        },
    ]
}

#[test]
fn tuples_read_by_position_through_both_protocols() {
    run(async {
        let mut c = crate::conn().await?;
        let sql = "SELECT 7, 'seven', NULL, 2.5e0";
        let text: Vec<(u64, String, Option<i32>, f64)> = c.query_as(sql).await?;
        assert_eq!(text, [(7, "seven".to_string(), None, 2.5)]);
        let binary = c
            .exec_as::<(u64, String, Option<i32>, f64)>(
                "SELECT ?, ?, ?, 2.5e0",
                (7, "seven", None::<i32>),
            )
            .await?;
        assert_eq!(binary, text);
        // Sixteen values, the largest tuple.
        let sixteen = "SELECT 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16";
        type T16 = (
            u8,
            u16,
            u32,
            u64,
            i8,
            i16,
            i32,
            i64,
            u8,
            u8,
            u8,
            u8,
            u8,
            u8,
            u8,
            String,
        );
        let row: T16 = c.query_first_as(sixteen).await?.expect("a row");
        assert_eq!((row.0, row.7, row.15.as_str()), (1, 8, "16"));
        // A single value is a 1-tuple.
        assert_eq!(c.query_first_as::<(i64,)>("SELECT 42").await?, Some((42,)));
        assert_eq!(
            c.query_first_as::<(i64,)>("SELECT 1 FROM DUAL WHERE 0")
                .await?,
            None
        );
        c.close().await
    })
}

#[test]
fn a_tuple_of_the_wrong_size_or_type_is_a_conversion_error() {
    run(async {
        let mut c = crate::conn().await?;
        let e = c
            .query_as::<(u64, u64)>("SELECT 1 AS a, 2 AS b, 3 AS c")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("expected 2 columns, got 3"), "{msg}");
        assert!(msg.contains("`a`, `b`, `c`"), "{msg}");
        assert!(!e.is_fatal());

        let e = c
            .exec_as::<(u64, i32)>("SELECT ?, 2.5e0 AS price", (1,))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        let msg = e.to_string();
        assert!(
            msg.contains("column 1 (`price`, DOUBLE) cannot be read as i32"),
            "{msg}"
        );

        // The connection goes on with a command of its own.
        assert_eq!(c.query_as::<(i64,)>("SELECT 5").await?, [(5,)]);
        c.close().await
    })
}

#[test]
fn derived_structs_read_fields_by_name_with_rename_and_null() {
    run(async {
        let mut c = crate::conn().await?;
        items(&mut c, "typed_derive").await?;
        // Columns in another order than the fields: matched by name.
        let sql = "SELECT note, unit_price, name, id FROM items ORDER BY id";
        let text: Vec<Item> = c.query_as(sql).await?;
        assert_eq!(text, soup_and_bread());
        let binary: Vec<Item> = c
            .exec_as(
                "SELECT note, unit_price, name, id FROM items WHERE id >= ? ORDER BY id",
                (1,),
            )
            .await?;
        assert_eq!(binary, soup_and_bread());
        // A tuple struct reads by position.
        #[derive(Debug, PartialEq, FromRow)]
        struct Pair(u64, String);
        let pairs: Vec<Pair> = c.query_as("SELECT id, name FROM items ORDER BY id").await?;
        assert_eq!(pairs, [Pair(1, "soup".into()), Pair(2, "bread".into())]);
        // A generic struct.
        #[derive(Debug, PartialEq, FromRow)]
        struct Wrapped<T> {
            id: T,
        }
        let w: Option<Wrapped<i16>> = c
            .exec_first_as("SELECT id FROM items WHERE id = ?", (2,))
            .await?;
        assert_eq!(w, Some(Wrapped { id: 2 }));
        c.query_drop("DROP DATABASE it_typed_derive").await?;
        c.close().await
    })
}

#[test]
fn derive_errors_name_the_column_and_the_field() {
    run(async {
        let mut c = crate::conn().await?;
        items(&mut c, "typed_errors").await?;

        #[derive(Debug, FromRow)]
        #[allow(dead_code)]
        struct WrongType {
            id: u64,
            #[mysql(rename = "unit_price")]
            price: i32,
        }
        let e = c
            .query_as::<WrongType>("SELECT id, unit_price FROM items WHERE id = 1")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        let msg = e.to_string();
        assert!(
            msg.contains(
                "column `unit_price` (DOUBLE) cannot be read as i32 for field `WrongType::price`"
            ),
            "{msg}"
        );

        #[derive(Debug, FromRow)]
        #[allow(dead_code)]
        struct NoNull {
            id: u64,
            note: String,
        }
        let e = c
            .exec_as::<NoNull>("SELECT id, note FROM items WHERE id > ? ORDER BY id", (0,))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        let msg = e.to_string();
        assert!(msg.contains("column `note` (TEXT)"), "{msg}");
        assert!(msg.contains("for field `NoNull::note`"), "{msg}");
        assert!(msg.contains("NULL"), "{msg}");

        #[derive(Debug, FromRow)]
        #[allow(dead_code)]
        struct Missing {
            id: u64,
            price: f64, // the column is unit_price
        }
        let e = c
            .query_as::<Missing>("SELECT id, unit_price FROM items")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        let msg = e.to_string();
        assert!(
            msg.contains("no column `price` for field `Missing::price`"),
            "{msg}"
        );
        assert!(msg.contains("`id`, `unit_price`"), "{msg}");

        // Names are case-sensitive, as row.get("name") is.
        #[derive(Debug, FromRow)]
        #[allow(dead_code)]
        struct Upper {
            id: u64,
        }
        let e = c.query_as::<Upper>("SELECT 1 AS ID").await.unwrap_err();
        assert!(e.to_string().contains("no column `id`"), "{e}");

        // A failed conversion leaves the rest of the result to the next
        // command, which returns its own rows.
        assert!(c.has_pending_response());
        let ids: Vec<(u64,)> = c.query_as("SELECT id FROM items ORDER BY id").await?;
        assert_eq!(ids, [(1,), (2,)]);
        c.query_drop("DROP DATABASE it_typed_errors").await?;
        c.close().await
    })
}

#[test]
fn borrowed_values_come_from_the_read_buffer_of_streamed_rows() {
    run(async {
        let mut c = crate::conn().await?;
        #[derive(FromRow)]
        struct Named<'a> {
            id: u64,
            #[mysql(rename = "label")]
            name: &'a str,
            raw: Option<&'a [u8]>,
        }
        let sql = "SELECT seq AS id, CONCAT('row-', seq) AS label, IF(seq = 2, NULL, 'x') AS raw \
                   FROM seq_1_to_3";
        // Text rows.
        c.cmd_query(sql).await?;
        let mut seen = Vec::new();
        while let Some(row) = c.next_row().await? {
            let (id, label, _): (u64, &str, Option<&str>) = row.decode()?;
            let named: Named = row.decode()?;
            assert_eq!((named.id, named.name), (id, label));
            // The &str points into the row's own bytes: no copy.
            let raw = row.get_raw("label")?.expect("not NULL");
            assert_eq!(label.as_ptr(), raw.as_ptr());
            seen.push((id, label.to_string(), named.raw.is_none()));
        }
        assert_eq!(
            seen,
            [
                (1, "row-1".to_string(), false),
                (2, "row-2".to_string(), true),
                (3, "row-3".to_string(), false)
            ]
        );
        // Binary rows, through a function generic over the row's lifetime.
        fn decode_named<'a>(row: &RowRef<'a>) -> mysql_uring::Result<(u64, &'a str)> {
            let n: Named<'a> = row.decode()?;
            Ok((n.id, n.name))
        }
        c.cmd_execute(&*format!("{sql} WHERE seq > ?"), (1,))
            .await?;
        let mut ids = Vec::new();
        while let Some(row) = c.next_row().await? {
            assert!(row.is_binary());
            let (id, name) = decode_named(&row)?;
            assert_eq!(name, format!("row-{id}"));
            ids.push(id);
        }
        assert_eq!(ids, [2, 3]);
        // An owned Row lends its values the same way.
        let rows = c.query("SELECT 'kept' AS k").await?;
        let (k,): (&str,) = rows[0].decode()?;
        assert_eq!(k, "kept");
        c.close().await
    })
}

#[test]
fn map_and_fold_convert_rows_as_they_arrive() {
    run(async {
        let mut c = crate::conn().await?;
        let sql = "SELECT seq, seq * 2 FROM seq_1_to_1000";
        let sum = c
            .query_fold(sql, 0u64, |acc, (a, b): (u64, u64)| acc + a + b)
            .await?;
        assert_eq!(sum, 3 * 500_500);
        let doubled: Vec<u64> = c.query_map(sql, |(_, b): (u64, u64)| b).await?;
        assert_eq!(doubled.len(), 1000);
        assert_eq!((doubled[0], doubled[999]), (2, 2000));

        let psql = "SELECT seq, CONCAT('n', seq) FROM seq_1_to_1000 WHERE seq > ?";
        let (n, longest) = c
            .exec_fold(
                psql,
                (990,),
                (0, 0),
                |(n, longest), (_, s): (u64, String)| (n + 1, longest.max(s.len())),
            )
            .await?;
        assert_eq!((n, longest), (10, 5));
        let names = c
            .exec_map(psql, (997,), |(id, s): (u64, String)| format!("{s}/{id}"))
            .await?;
        assert_eq!(names, ["n998/998", "n999/999", "n1000/1000"]);
        // exec_first_as reads the rest of the reply; query_first_as the rest of its rows.
        let first: Option<(u64, String)> = c.exec_first_as(psql, (10,)).await?;
        assert_eq!(first, Some((11, "n11".to_string())));
        assert!(!c.has_pending_response());
        let first: Option<(u64,)> = c.query_first_as("SELECT seq FROM seq_5_to_9").await?;
        assert_eq!(first, Some((5,)));
        assert!(!c.has_pending_rows());
        // Statements without a result set.
        assert!(c.query_as::<(u64,)>("DO 1").await?.is_empty());
        assert_eq!(c.exec_fold("DO ?", (1,), 7, |n, _: (u64,)| n + 1).await?, 7);
        assert_eq!(c.exec_first_as::<(u64,)>("DO ?", (1,)).await?, None);
        c.close().await
    })
}

#[test]
fn rows_as_row_are_the_rows_query_returns() {
    run(async {
        let mut c = crate::conn().await?;
        let sql = "SELECT seq, CONCAT('v', seq) AS v FROM seq_1_to_50";
        let plain = c.query(sql).await?;
        let typed: Vec<Row> = c.query_as(sql).await?;
        assert_eq!(typed.len(), 50);
        for (a, b) in plain.iter().zip(&typed) {
            assert_eq!(a.get::<&str>("v")?, b.get::<&str>("v")?);
        }
        let bin: Vec<Row> = c.exec_as("SELECT ? AS n", (3,)).await?;
        assert!(bin[0].is_binary());
        assert_eq!(bin[0].get::<i64>("n")?, 3);
        // A RowRef converts to a copy.
        c.cmd_query("SELECT 'copy' AS c").await?;
        let copied: Row = c.next_row().await?.expect("a row").decode()?;
        assert_eq!(copied.get::<&str>(0)?, "copy");
        c.close().await
    })
}

#[test]
fn a_failed_or_dropped_typed_call_leaves_the_connection_consistent() {
    run(async {
        let mut c = crate::conn().await?;
        // Row 256 does not fit a u8: the call fails there, the rest of the
        // rows are discarded by the next command.
        let e = c
            .query_as::<(u8,)>("SELECT seq FROM seq_1_to_5000")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        assert!(e.to_string().contains("256"), "{e}");
        assert_eq!(c.query_as::<(i64,)>("SELECT 11").await?, [(11,)]);
        let e = c
            .exec_map(
                "SELECT seq FROM seq_1_to_5000 WHERE seq > ?",
                (0,),
                |(n,): (u8,)| n,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        assert_eq!(
            c.exec_first_as::<(i64,)>("SELECT ?", (12,)).await?,
            Some((12,))
        );

        // A typed call whose future is dropped mid-result.
        let slow = "SELECT seq, SLEEP(0.01) FROM seq_1_to_50";
        let r = mysql_uring::runtime::timeout(
            std::time::Duration::from_millis(100),
            c.query_as::<(u64, i32)>(slow),
        )
        .await;
        assert!(r.is_err(), "the call was cut short");
        assert!(
            c.has_pending_response(),
            "its reply is left to the next command"
        );
        assert_eq!(c.query_as::<(i64,)>("SELECT 13").await?, [(13,)]);
        assert!(!c.has_pending_response());
        c.close().await
    })
}

#[test]
fn client_typed_calls_from_tokio() {
    #[derive(Debug, PartialEq, FromRow)]
    struct Answer {
        n: i64,
        #[mysql(rename = "what")]
        label: String,
    }
    let client = Client::builder()
        .cores(1)
        .max_connections(2)
        .build(crate::opts())
        .expect("client");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client.clone();
        let task = tokio::spawn(async move {
            c.exec_as::<Answer, _>("SELECT ? + 1 AS n, 'answer' AS what", (41,))
                .await
        });
        let answers = task.await.unwrap().unwrap();
        assert_eq!(
            answers,
            [Answer {
                n: 42,
                label: "answer".into()
            }]
        );
        let rows: Vec<(u64, String)> = client
            .query_as("SELECT seq, CONCAT('s', seq) FROM seq_1_to_3")
            .await
            .unwrap();
        assert_eq!(rows[2], (3, "s3".to_string()));
        let first: Option<(String,)> = client
            .exec_first_as("SELECT CONCAT(?, '!')", ("hi".to_string(),))
            .await
            .unwrap();
        assert_eq!(first, Some(("hi!".to_string(),)));
        let none: Option<(i64,)> = client
            .exec_first_as("SELECT 1 FROM DUAL WHERE ? = 0", (1,))
            .await
            .unwrap();
        assert_eq!(none, None);
        let e = client.query_as::<(i64, i64)>("SELECT 1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
    });
}
