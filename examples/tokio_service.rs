//! A small tokio service answering from MariaDB through `Client`.
//!
//! A multi-threaded tokio program (`#[tokio::main]`) with a `Client`: the
//! driver runs its own io_uring cores beside tokio's workers, and every call
//! is a `Send` future that `tokio::spawn` takes. The "service" handles a
//! burst of requests, each a task: place an order in a transaction, or look
//! one up; then one handler written the obvious way (borrowed parameters,
//! `begin`/`commit`, a stream of rows, a row that must exist); a slow
//! request is cut by a timeout without hurting the others.
//!
//! Run: `cargo run --example tokio_service` (uses `MYSQL_URL`, or starts a
//! private server). Its database, `tokio_service`, is dropped when the run
//! ends, also after an error (and first, if an earlier run left it behind).

use std::time::{Duration, Instant};

use futures::StreamExt;
use mysql_uring::{Client, Error, Result};

/// One request the service answers.
enum Request {
    Order {
        customer: u32,
        item: &'static str,
        qty: u32,
    },
    Lookup {
        customer: u32,
    },
}

/// Handles one request: what a handler of an HTTP endpoint would do.
async fn handle(db: Client, req: Request) -> Result<String> {
    match req {
        Request::Order {
            customer,
            item,
            qty,
        } => {
            // Runs on one of the driver's cores, next to its connection; only
            // the closure and its output cross threads.
            let id = db
                .transaction(async move |tx| {
                    let stock: Option<u32> = tx
                        .exec_first("SELECT stock FROM items WHERE name = ? FOR UPDATE", (item,))
                        .await?
                        .map(|r| r.get(0))
                        .transpose()?;
                    match stock {
                        Some(s) if s >= qty => {}
                        _ => return Err(Error::other(format!("not enough {item} in stock"))),
                    }
                    tx.exec_drop(
                        "UPDATE items SET stock = stock - ? WHERE name = ?",
                        (qty, item),
                    )
                    .await?;
                    let o = tx
                        .exec_drop(
                            "INSERT INTO orders (customer, item, qty) VALUES (?, ?, ?)",
                            (customer, item, qty),
                        )
                        .await?;
                    Ok(o.last_insert_id)
                })
                .await?;
            Ok(format!(
                "order {id}: {qty} x {item} for customer {customer}"
            ))
        }
        Request::Lookup { customer } => {
            let rows = db
                .exec(
                    "SELECT COUNT(*), COALESCE(SUM(qty), 0) FROM orders WHERE customer = ?",
                    (customer,),
                )
                .await?;
            let (n, total): (i64, i64) = (rows[0].get(0)?, rows[0].get(1)?);
            Ok(format!("customer {customer}: {n} orders, {total} items"))
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let url =
        std::env::var("MYSQL_URL").unwrap_or_else(|_| mysql_uring_testserver::server().root_url());
    run(&url).await
}

/// The service, with its database dropped afterwards however it ends (an
/// error, or a failed check), and first if an earlier run left it.
async fn run(url: &str) -> Result<()> {
    let admin = Client::builder().cores(1).build(url)?;
    if drop_database(&admin).await? {
        println!("dropped database tokio_service, left over from an earlier run");
    }
    // A panic in the service is a failed check: caught to clean up, then resumed.
    let outcome = tokio::spawn(service(url.to_string())).await;
    let dropped = drop_database(&admin).await;
    match &dropped {
        Ok(true) => println!("dropped database tokio_service: the server is as it was"),
        Ok(false) => {}
        Err(e) => eprintln!("could not drop database tokio_service: {e}; drop it by hand"),
    }
    admin.close().await?;
    match outcome {
        Ok(r) => r.and(dropped.map(|_| ())),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Drops the service's database; true if it was there.
async fn drop_database(admin: &Client) -> Result<bool> {
    admin
        .with_conn(async |c| {
            let there = !c
                .query(
                    "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'tokio_service'",
                )
                .await?
                .is_empty();
            if there {
                c.query_drop("DROP DATABASE IF EXISTS tokio_service")
                    .await?;
            }
            Ok(there)
        })
        .await
}

async fn service(url: String) -> Result<()> {
    // Set up the schema (a client with two io_uring cores beside tokio's workers).
    let setup = Client::builder().cores(1).build(url.as_str())?;
    setup
        .with_conn(async |c| {
            c.query_drop("CREATE DATABASE tokio_service").await?;
            c.select_db("tokio_service").await?;
            c.query_drop("CREATE TABLE items (name VARCHAR(20) PRIMARY KEY, stock INT UNSIGNED)")
                .await?;
            c.query_drop(
                "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT, \
             item VARCHAR(20), qty INT)",
            )
            .await?;
            c.query_drop("INSERT INTO items VALUES ('apple', 100), ('pear', 3)")
                .await?;
            Ok(())
        })
        .await?;
    // Every connection of the pool starts in the service's database.
    let db = Client::builder()
        .cores(2)
        .max_connections(16)
        .build(mysql_uring::Opts::from_url(&url)?.database("tokio_service"))?;

    // A burst of requests, each its own tokio task.
    let t0 = Instant::now();
    let mut handlers = Vec::new();
    for i in 0..40u32 {
        let req = match i % 4 {
            0 => Request::Order {
                customer: i % 5,
                item: "pear",
                qty: 1,
            },
            1 | 2 => Request::Order {
                customer: i % 5,
                item: "apple",
                qty: 2,
            },
            _ => Request::Lookup { customer: i % 5 },
        };
        handlers.push(tokio::spawn(handle(db.clone(), req)));
    }
    let (mut ok, mut refused) = (0, 0);
    for h in handlers {
        match h.await.expect("handler task") {
            Ok(answer) => {
                ok += 1;
                if ok <= 5 {
                    println!("{answer}");
                }
            }
            Err(e) => {
                refused += 1;
                if refused <= 2 {
                    println!("refused: {e}");
                }
            }
        }
    }
    println!(
        "{ok} requests answered, {refused} refused, in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );

    // A handler written the obvious way: borrowed parameters from its
    // request, a guard-style transaction, a stream of rows, and a row that
    // must exist.
    let who = String::from("customer 9");
    let tx = db.begin().await?;
    let stock: u32 = tx
        .exec_one(
            "SELECT stock FROM items WHERE name = ? FOR UPDATE",
            ("apple",),
        )
        .await?
        .get(0)?;
    tx.exec_drop(
        "INSERT INTO orders (customer, item, qty) VALUES (?, ?, ?)",
        (9, "apple", stock.min(1)),
    )
    .await?;
    tx.exec_drop(
        "UPDATE items SET stock = stock - ? WHERE name = ?",
        (stock.min(1), "apple"),
    )
    .await?;
    tx.commit().await?;
    println!("{who} took one apple in a transaction");
    let mut orders = db.exec_stream_as::<(u32, String, u32), _>(
        "SELECT customer, item, qty FROM orders WHERE qty >= ? ORDER BY id",
        (1,),
    );
    let mut n = 0;
    while let Some(order) = orders.next().await {
        let (_customer, _item, _qty) = order?;
        n += 1;
    }
    println!("{n} orders streamed");
    match db
        .exec_one("SELECT id FROM orders WHERE customer = ?", (99,))
        .await
    {
        Err(e) if e.kind() == mysql_uring::ErrorKind::RowNotFound => println!("no order of 99"),
        other => println!("unexpected: {:?}", other.map(|_| ())),
    }

    // A slow request is cut by the caller's timeout: the statement is
    // cancelled on its core and the connection settled for the next user.
    let slow = tokio::time::timeout(
        Duration::from_millis(100),
        db.query_drop("SELECT SLEEP(10)"),
    );
    assert!(slow.await.is_err());
    let stock = db
        .query("SELECT name, stock FROM items ORDER BY name")
        .await?;
    for row in &stock {
        println!("{} left: {}", row.get::<&str>(0)?, row.get::<u32>(1)?);
    }
    let pears: u32 = stock[1].get(1)?;
    assert_eq!(pears, 0, "exactly 3 pear orders succeeded");

    // Closes every connection and stops the client's cores, without
    // blocking this tokio thread.
    db.close().await?;
    setup.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leaves_nothing_behind_even_a_leftover_of_an_earlier_run() {
        let url = mysql_uring_testserver::test_url();
        let admin = Client::builder().cores(1).build(url.as_str()).unwrap();
        // What a run stopped midway leaves: the database, half set up.
        admin
            .with_conn(async |c| {
                c.query_drop("CREATE DATABASE IF NOT EXISTS tokio_service")
                    .await?;
                c.query_drop("CREATE TABLE IF NOT EXISTS tokio_service.items (name TEXT)")
                    .await
            })
            .await
            .unwrap();
        run(&url).await.unwrap();
        assert!(
            !drop_database(&admin).await.unwrap(),
            "the example left database tokio_service on the server"
        );
        admin.close().await.unwrap();
    }
}
