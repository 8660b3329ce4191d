//! Basic usage: connect, open a cursor, run a query, fetch all rows, close.
//! (Connector/Python's first asyncio example.)
//!
//! Run: `cargo run --example basic` (uses `MYSQL_URL`, or starts a private server).

#[path = "../tests/support/mod.rs"]
mod support;

fn main() -> mysql_uring::Result<()> {
    let url = support::test_url();
    mysql_uring::start(async {
        // Connect to a MySQL server and get a cursor.
        let mut cnx = mysql_uring::connect(url.as_str()).await?;
        let mut cur = cnx.cursor();
        // Execute a query.
        cur.execute("SELECT version()").await?;
        // Retrieve the results of the query.
        let results = cur.fetch_all().await?;
        println!("{results:?}");
        // Close cursor and connection.
        cur.close().await?;
        cnx.close().await
    })
}
