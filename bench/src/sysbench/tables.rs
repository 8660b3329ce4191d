//! `prepare`, `cleanup` and `prewarm`: the test's tables, made, dropped and
//! read the way sysbench's scripts do it (tables spread over up to
//! `--threads` connections).

use std::sync::Arc;

use mysql_uring::Connection;

use super::Target;
use super::opts::Opts;
use super::rand::Rand;
use super::run::seed_of;
use super::workload::{Bulk, Test, create_bulk_table_sql, create_table_sql, prepare_row};
use crate::BoxResult;

/// The tables the command works on: `sbtest1..N` (`--tables`, or
/// `--threads` for bulk_insert).
fn table_count(o: &Opts) -> u32 {
    if o.test == Test::BulkInsert {
        o.threads as u32
    } else {
        o.tables
    }
}

/// Runs `f(connection, table)` for every table, the tables dealt round robin
/// over `min(--threads, tables)` connections on one ring.
fn per_table<F>(o: &Opts, target: &Target, f: F) -> BoxResult<()>
where
    F: AsyncFn(&mut Connection, u32) -> mysql_uring::Result<()> + Clone + 'static,
{
    let o = Arc::new(o.clone());
    let target = Arc::new(target.clone());
    let tables = table_count(&o);
    let workers = (o.threads as u32).min(tables).max(1);
    mysql_uring::runtime::try_start(async move {
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let (o, target, f) = (o.clone(), target.clone(), f.clone());
                mysql_uring::runtime::spawn(async move {
                    let mut c = target.connect(w as usize, &o).await?;
                    for t in (w + 1..=tables).step_by(workers as usize) {
                        f(&mut c, t).await?;
                    }
                    c.close().await
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}

/// Runs `sql`, discarding what it returns.
async fn q(c: &mut Connection, sql: &str) -> mysql_uring::Result<()> {
    c.query_drop(sql).await.map(drop)
}

/// `prepare`: creates and fills the tables.
pub fn prepare(o: &Opts, target: &Target) -> BoxResult<()> {
    let oo = Arc::new(o.clone());
    let seed = seed_of(o);
    per_table(o, target, async move |c: &mut Connection, n: u32| {
        let o = oo.clone();
        {
            if o.test == Test::BulkInsert {
                println!("Creating table 'sbtest{n}'...");
                return q(c, &create_bulk_table_sql(n as usize)).await;
            }
            println!("Creating table 'sbtest{n}'...");
            q(c, &create_table_sql(&o, n)).await?;
            // oltp_insert without AUTO_INCREMENT starts from empty tables:
            // prepared ids could collide with its unique ones.
            let size = if o.test == Test::Insert && !o.auto_inc {
                0
            } else {
                o.table_size
            };
            if size > 0 {
                println!("Inserting {size} records into 'sbtest{n}'");
            }
            let head = if o.auto_inc {
                format!("INSERT INTO sbtest{n}(k, c, pad) VALUES")
            } else {
                format!("INSERT INTO sbtest{n}(id, k, c, pad) VALUES")
            };
            let mut bulk = Bulk::new(&head);
            let mut rng = Rand::new(o.rand, seed, u64::from(n));
            let mut row = String::new();
            for id in 1..=size {
                prepare_row(&o, &mut rng, id, &mut row);
                if let Some(sql) = bulk.push(&row) {
                    q(c, &sql).await?;
                }
            }
            if let Some(sql) = bulk.take() {
                q(c, &sql).await?;
            }
            if o.create_secondary {
                println!("Creating a secondary index on 'sbtest{n}'...");
                q(c, &format!("CREATE INDEX k_{n} ON sbtest{n}(k)")).await?;
            }
            Ok(())
        }
    })
}

/// `cleanup`: drops the tables.
pub fn cleanup(o: &Opts, target: &Target) -> BoxResult<()> {
    let mut one = o.clone();
    // sysbench drops them one by one on one connection.
    one.threads = 1;
    per_table(&one, target, async |c: &mut Connection, n: u32| {
        println!("Dropping table 'sbtest{n}'...");
        q(c, &format!("DROP TABLE IF EXISTS sbtest{n}")).await
    })
}

/// `prewarm`: reads every table and its secondary index into the server's cache.
pub fn prewarm(o: &Opts, target: &Target) -> BoxResult<()> {
    let size = o.table_size;
    per_table(o, target, async move |c: &mut Connection, n: u32| {
        println!("Preloading table sbtest{n}");
        q(c, "SET tmp_table_size=2*1024*1024*1024").await?;
        q(c, "SET max_heap_table_size=2*1024*1024*1024").await?;
        q(c, &format!("ANALYZE TABLE sbtest{n}")).await?;
        q(
            c,
            &format!(
                "SELECT AVG(id) FROM (SELECT * FROM sbtest{n} FORCE KEY (PRIMARY) LIMIT {size}) t"
            ),
        )
        .await?;
        q(
            c,
            &format!(
                "SELECT COUNT(*) FROM (SELECT * FROM sbtest{n} WHERE k LIKE '%0%' LIMIT {size}) t"
            ),
        )
        .await
    })
}

/// Whether `sbtest1` exists in the target's database (for the private
/// server and `--compare-sysbench`, which prepare when it does not).
pub fn exists(o: &Opts, target: &Target) -> BoxResult<bool> {
    let (o, target) = (o.clone(), target.clone());
    let n = mysql_uring::runtime::try_start(async move {
        let mut c = target.connect(0, &o).await?;
        let rows = c
            .query(
                "SELECT COUNT(*) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sbtest1'",
            )
            .await?;
        let n: u64 = rows.first().map_or(Ok(0), |r| r.get(0))?;
        c.close().await?;
        Ok::<_, mysql_uring::Error>(n)
    })??;
    Ok(n > 0)
}
