//! A small order book: the rest of the API in one program.
//!
//! - bulk insert of parameter rows (`execute_many`: one MariaDB bulk command),
//! - prepared lookups with positional and named parameters,
//! - a transaction committed, and one rolled back because it was dropped,
//! - a per-core pool and the sharded batch runner over all cores.
//!
//! Run: `cargo run --example orders` (uses `MYSQL_URL`, or starts a private server).
//! It works in its own database, `orders_example`, and drops it when done,
//! also after an error (and first, if an earlier run left it behind).

use mysql_uring::runtime::Runtime;
use mysql_uring::{Batch, Connection, Date, named_params};

/// The example's own database: created here, dropped at the end.
const DB: &str = "orders_example";

const SETUP: [&str; 2] = [
    "CREATE DATABASE orders_example",
    "CREATE TABLE orders_example.orders (
        id INT PRIMARY KEY, customer VARCHAR(40) NOT NULL,
        amount DECIMAL(10,2) NOT NULL, placed DATE NOT NULL, paid BOOL NOT NULL DEFAULT 0)",
];

fn main() -> mysql_uring::Result<()> {
    // Your server, or else a private one started for this run.
    let url =
        std::env::var("MYSQL_URL").unwrap_or_else(|_| mysql_uring_testserver::server().root_url());
    run(&url)
}

/// The example, with its database dropped afterwards however it ends (an
/// error, or a failed check), and first if an earlier run left it.
fn run(url: &str) -> mysql_uring::Result<()> {
    if drop_database(url)? {
        println!("dropped database {DB}, left over from an earlier run");
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| orders(url)));
    let dropped = drop_database(url);
    match &dropped {
        Ok(true) => println!("dropped database {DB}: the server is as it was"),
        Ok(false) => {}
        Err(e) => eprintln!("could not drop database {DB}: {e}; drop it by hand"),
    }
    match outcome {
        Ok(r) => r.and(dropped.map(|_| ())),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Drops the example's database; true if it was there.
fn drop_database(url: &str) -> mysql_uring::Result<bool> {
    mysql_uring::start(async {
        let mut cnx = mysql_uring::connect(url).await?;
        let there = cnx
            .exec_first(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (DB,),
            )
            .await?
            .is_some();
        if there {
            cnx.query_drop(&format!("DROP DATABASE IF EXISTS {DB}"))
                .await?;
        }
        cnx.close().await?;
        Ok(there)
    })
}

fn orders(url: &str) -> mysql_uring::Result<()> {
    mysql_uring::start(async {
        let mut cnx = mysql_uring::connect(url).await?;
        for sql in SETUP {
            cnx.query_drop(sql).await?;
        }
        cnx.select_db(DB).await?;

        // 1,000 orders in one call: parameters are sent in binary, never
        // spliced into SQL text.
        let customers = ["ada", "bob", "chen", "dana"];
        let rows: Vec<(u32, &str, String, Date)> = (1..=1000)
            .map(|i| {
                let placed = Date {
                    year: 2026,
                    month: 11,
                    day: (i % 28 + 1) as u8,
                };
                (
                    i,
                    customers[i as usize % 4],
                    format!("{}.{:02}", i % 90 + 10, i % 100),
                    placed,
                )
            })
            .collect();
        let done = cnx
            .execute_many(
                "INSERT INTO orders (id, customer, amount, placed) VALUES (?, ?, ?, ?)",
                &rows,
            )
            .await?;
        println!("inserted {} orders", done.affected_rows);

        // Prepared lookups: the statement is prepared once and cached.
        let row = cnx
            .exec_first(
                "SELECT customer, amount, placed FROM orders WHERE id = ?",
                (42,),
            )
            .await?
            .expect("order 42 exists");
        let (who, amount, placed): (&str, &str, Date) = (row.get(0)?, row.get(1)?, row.get(2)?);
        println!("order 42: {who} owes {amount}, placed {placed}");
        let totals = cnx
            .exec_named(
                "SELECT COUNT(*), SUM(amount) FROM orders WHERE customer = :who AND placed >= :since",
                named_params! { "who" => "ada", "since" => Date { year: 2026, month: 11, day: 15 } },
            )
            .await?;
        println!(
            "ada since Nov 15: {} orders, {} in total",
            totals[0].get::<i64>(0)?,
            totals[0].get::<&str>(1)?
        );

        // A transaction that commits, and one that is dropped: rolled back.
        let mut tx = cnx.begin().await?;
        tx.exec_drop("UPDATE orders SET paid = 1 WHERE customer = ?", ("bob",))
            .await?;
        tx.commit().await?;
        {
            let mut tx = cnx.begin().await?;
            tx.query_drop("DELETE FROM orders").await?;
            // An early return or error here drops `tx`: nothing is deleted.
        }
        let paid: i64 = cnx.query("SELECT SUM(paid) FROM orders").await?[0].get(0)?;
        let left: i64 = cnx.query("SELECT COUNT(*) FROM orders").await?[0].get(0)?;
        println!("{paid} orders paid; {left} orders still there after the dropped transaction");
        assert_eq!(
            (paid, left),
            (250, 1000),
            "the commit stayed, the dropped transaction did not"
        );
        cnx.close().await
    })?;

    // Every core its own io_uring and connections: mark each order shipped,
    // one item per order, pulled by whichever connection is free.
    let rt = Runtime::builder().build()?;
    let opts = mysql_uring::Opts::from_url(url)?.database(DB);
    let results = Batch::new(opts)?.connections_per_core(4).run(
        &rt,
        (1..=1000).collect(),
        async |cnx: &mut Connection, id: u32| {
            let r = cnx
                .exec_drop("UPDATE orders SET amount = amount + 1 WHERE id = ?", (id,))
                .await?;
            Ok(r.affected_rows)
        },
    );
    let updated: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    println!("{updated} orders updated over {} cores", rt.cores());
    assert_eq!(updated, 1000, "every item ran once");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_nothing_behind_even_a_leftover_of_an_earlier_run() {
        let url = mysql_uring_testserver::test_url();
        // What a run stopped midway leaves: the database, half set up.
        mysql_uring::start(async {
            let mut cnx = mysql_uring::connect(url.as_str()).await?;
            cnx.query_drop("CREATE DATABASE IF NOT EXISTS orders_example")
                .await?;
            cnx.query_drop("CREATE TABLE IF NOT EXISTS orders_example.leftover (id INT)")
                .await?;
            cnx.close().await
        })
        .unwrap();
        run(&url).unwrap();
        assert!(
            !drop_database(&url).unwrap(),
            "the example left database {DB} on the server"
        );
    }
}
