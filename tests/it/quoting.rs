//! Quoting strings into SQL text: injection strings must read back unchanged
//! under the default mode, NO_BACKSLASH_ESCAPES and a GBK connection.

use mysql_uring::Connection;

use crate::run;

const NASTY: &[&str] = &[
    "plain",
    "'; DROP TABLE t; -- ",
    "\\'; DROP TABLE t; -- ",
    "' OR '1'='1",
    "\\",
    "\\\\'",
    "''",
    "\"",
    "a\0b",
    "\x1a\r\n",
    "中\\' OR 1=1 -- ",
    "\u{bf}\\' OR 1=1 -- ",
    "縷\\'",
    "😀 emoji",
];

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// Each string round-trips through a literal, and an INSERT of it adds one row
/// and drops nothing.
async fn check(c: &mut Connection, what: &str) -> mysql_uring::Result<()> {
    for s in NASTY {
        let lit = c.quote(s);
        let got = c
            .query(&format!("SELECT HEX(CONVERT({lit} USING utf8mb4))"))
            .await?;
        assert_eq!(
            got[0].get::<&str>(0)?,
            hex(s),
            "{what}: {s:?} quoted as {lit}"
        );
        c.query_drop(&format!(
            "INSERT INTO t (v) VALUES (CONVERT({lit} USING utf8mb4))"
        ))
        .await?;
    }
    // The same strings as text-protocol parameters.
    for s in NASTY {
        let got = c
            .query_with("SELECT HEX(CONVERT(? USING utf8mb4)), '?'", (*s,))
            .await?;
        assert_eq!(got[0].get::<&str>(0)?, hex(s), "{what}: parameter {s:?}");
        assert_eq!(got[0].get::<&str>(1)?, "?", "a ? inside a literal stays");
        let o = c
            .query_drop_with("INSERT INTO t (v) VALUES (CONVERT(? USING utf8mb4))", [*s])
            .await?;
        assert_eq!(o.affected_rows, 1);
    }
    let n = c.query("SELECT COUNT(*) FROM t").await?[0].get::<i64>(0)?;
    assert_eq!(
        n as usize,
        2 * NASTY.len(),
        "{what}: one row per string, table intact"
    );
    c.query_drop("DELETE FROM t").await?;
    Ok(())
}

#[test]
fn injection_strings_round_trip_in_every_quoting_mode() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "quoting").await?;
        c.query_drop("CREATE TABLE t (v VARCHAR(100) CHARACTER SET utf8mb4)")
            .await?;
        assert!(!c.quoting().no_backslash_escapes);
        check(&mut c, "default sql_mode").await?;

        c.query_drop("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            .await?;
        assert!(c.quoting().no_backslash_escapes, "taken from the OK packet");
        check(&mut c, "NO_BACKSLASH_ESCAPES").await?;
        c.close().await?;

        let mut g = mysql_uring::connect(crate::opts().charset("gbk")?).await?;
        g.select_db("it_quoting").await?;
        assert!(g.quoting().multibyte_hazard);
        check(&mut g, "GBK connection").await?;
        g.query_drop("DROP DATABASE it_quoting").await?;
        g.close().await
    })
}

#[test]
fn text_parameters_of_every_kind_and_count_errors() {
    run(async {
        let mut c = crate::conn().await?;
        let d = mysql_uring::Date {
            year: 2024,
            month: 2,
            day: 29,
        };
        let rows = c
            .query_with(
                "SELECT ?, ?, ?, ?, ?, HEX(?), ? /* ? */ -- ?\n",
                mysql_uring::params![
                    None::<i32>,
                    -5i64,
                    u64::MAX,
                    0.1f64,
                    1e300f64,
                    &b"\x00\xff'"[..],
                    d
                ],
            )
            .await?;
        let r = &rows[0];
        assert_eq!(r.get::<Option<i32>>(0)?, None);
        assert_eq!(r.get::<i64>(1)?, -5);
        assert_eq!(r.get::<u64>(2)?, u64::MAX);
        assert_eq!(r.get::<f64>(3)?, 0.1);
        assert_eq!(r.get::<f64>(4)?, 1e300);
        assert_eq!(r.get::<&str>(5)?, "00FF27");
        assert_eq!(r.get::<&str>(6)?, "2024-02-29");

        let e = c.query_with("SELECT ?, ?", (1,)).await.unwrap_err();
        assert_eq!(e.kind(), mysql_uring::ErrorKind::Usage, "{e}");
        let e = c.query_drop_with("SELECT ?", (1, 2)).await.unwrap_err();
        assert_eq!(e.kind(), mysql_uring::ErrorKind::Usage, "{e}");
        let e = c
            .query_with("SELECT ?", (f64::INFINITY,))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), mysql_uring::ErrorKind::Usage, "{e}");
        assert_eq!(
            c.query("SELECT 'usable'").await?[0].get::<&str>(0)?,
            "usable"
        );
        c.close().await
    })
}
