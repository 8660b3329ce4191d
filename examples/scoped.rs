//! Scoped usage: Connector/Python's `async with` becomes a Rust scope.
//!
//! A `Cursor` borrows its connection, so it cannot outlive it; `close()`
//! ends the session politely (COM_QUIT). A connection that is simply dropped
//! closes its socket too.
//!
//! Run: `cargo run --example scoped` (uses `MYSQL_URL`, or starts a private server).

use mysql_uring::{Result, connect};

fn main() -> Result<()> {
    // Your server, or else a private one started for this run.
    let url =
        std::env::var("MYSQL_URL").unwrap_or_else(|_| mysql_uring_testserver::server().root_url());
    mysql_uring::start(async {
        let results = {
            // `async with await connect(...) as cnx:`
            let mut cnx = connect(url.as_str()).await?;
            let results = {
                // `async with await cnx.cursor() as cur:`
                let mut cur = cnx.cursor();
                cur.execute("SELECT version()").await?;
                let rows = cur.fetch_all().await?;
                cur.close().await?;
                rows
            }; // the cursor's borrow of the connection ends here
            cnx.close().await?;
            results
        };
        // Rows own their bytes: they stay valid after the connection is gone.
        println!("{results:?}");
        Ok(())
    })
}
