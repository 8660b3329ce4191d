//! Basic usage: connect, open a cursor, run a query, fetch all rows, close.
//! (Connector/Python's first asyncio example.)
//!
//! Run: `cargo run --example basic` (uses `MYSQL_URL`, or starts a private server).

fn main() -> mysql_uring::Result<()> {
    // Your server, or else a private one started for this run.
    let url =
        std::env::var("MYSQL_URL").unwrap_or_else(|_| mysql_uring_testserver::server().root_url());
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
