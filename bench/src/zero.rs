//! zero-mysql (tokio flavour) under the [`Driver`] trait: a current-thread
//! tokio runtime per thread, like mysql_async. zero-mysql reads rows through
//! the binary protocol only (its text-protocol API hands out raw row bytes),
//! so it runs the prepared and write workloads, not the text-protocol reads.

use std::future::Future;

use zero_mysql::PreparedStatement;
use zero_mysql::tokio::Conn;

use crate::BoxResult;
use crate::driver::{Digest, Driver, Op, Rng, point_sum};
use crate::setup::{INSERT_ONE_SQL, POINT_SQL, insert_params, insert_sql};

/// zero-mysql, the io_uring-capable comparison (run here on tokio).
pub struct Zero;

/// A connection and its prepared statements.
pub struct ZeroConn {
    conn: Conn,
    point: Option<PreparedStatement>,
    insert: Option<PreparedStatement>,
}

fn url_over_tcp(url: &str) -> BoxResult<String> {
    let mut u = url::Url::parse(url)?;
    // Like the others, TCP against TCP.
    u.query_pairs_mut()
        .append_pair("upgrade_to_unix_socket", "false");
    Ok(u.to_string())
}

impl Driver for Zero {
    type Conn = ZeroConn;
    const NAME: &'static str = "zero-mysql";

    fn supports(op: Op) -> bool {
        matches!(
            op,
            Op::PointPrepared | Op::InsertText(_) | Op::InsertBulk(_)
        )
    }

    fn block_on<F: Future>(fut: F) -> F::Output {
        <crate::asyncd::Async as Driver>::block_on(fut)
    }

    fn spawn<F: Future + 'static>(
        fut: F,
    ) -> impl Future<Output = Result<F::Output, String>> + 'static
    where
        F::Output: 'static,
    {
        let h = tokio::task::spawn_local(fut);
        async move { h.await.map_err(|e| e.to_string()) }
    }

    async fn connect(url: &str) -> BoxResult<ZeroConn> {
        let url = url_over_tcp(url)?;
        let conn = Conn::new(url.as_str()).await?;
        Ok(ZeroConn {
            conn,
            point: None,
            insert: None,
        })
    }

    async fn close(_c: ZeroConn) -> BoxResult<()> {
        Ok(())
    }

    async fn exec(c: &mut ZeroConn, sql: &str) -> BoxResult<()> {
        Ok(c.conn.query_drop(sql).await?)
    }

    async fn op(c: &mut ZeroConn, op: Op, rng: &mut Rng) -> BoxResult<u64> {
        match op {
            Op::PointPrepared => {
                if c.point.is_none() {
                    c.point = Some(c.conn.prepare(POINT_SQL).await?);
                }
                let stmt = c.point.as_mut().expect("prepared above");
                let id = rng.id();
                let row: Option<(u64, String, f64, i32)> = c.conn.exec_first(stmt, (id,)).await?;
                let (rid, name, price, qty) =
                    row.ok_or_else(|| format!("point select: id {id} not found"))?;
                std::hint::black_box(point_sum(rid, &name, price, qty));
                Ok(1)
            }
            Op::InsertBulk(rows) => {
                if c.insert.is_none() {
                    c.insert = Some(c.conn.prepare(INSERT_ONE_SQL).await?);
                }
                let stmt = c.insert.as_mut().expect("prepared above");
                let params = insert_params(rng.id(), rows);
                let params: Vec<(i64, &str, f64)> = params
                    .iter()
                    .map(|(k, n, p)| (*k, n.as_str(), *p))
                    .collect();
                c.conn
                    .exec_bulk_insert_or_update(
                        stmt,
                        params.as_slice(),
                        zero_mysql::protocol::command::bulk_exec::BulkFlags::SEND_TYPES_TO_SERVER,
                        &mut zero_mysql::handler::DropHandler::default(),
                    )
                    .await?;
                Ok(rows as u64)
            }
            Op::InsertText(rows) => {
                c.conn.query_drop(&insert_sql(rng.id(), rows)).await?;
                Ok(rows as u64)
            }
            other => Err(format!("zero-mysql does not run {other:?} here").into()),
        }
    }

    async fn decode(_c: &mut ZeroConn, _sql: &str) -> BoxResult<Digest> {
        Err("zero-mysql does not run the text-protocol decode here".into())
    }
}
