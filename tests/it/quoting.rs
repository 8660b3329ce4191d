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
    let n = c.query("SELECT COUNT(*) FROM t").await?[0].get::<i64>(0)?;
    assert_eq!(
        n as usize,
        NASTY.len(),
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
