//! mysql_async under the [`Driver`] trait: a current-thread tokio runtime per
//! thread, tasks on a `LocalSet`.

use std::future::Future;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::BoxResult;
use crate::driver::{Compression, Digest, Driver, Op, Rng, datetime_sum, point_sum};
use crate::setup::{
    DECODE_PREPARED_SQL, INSERT_ONE_SQL, POINT_SQL, insert_params, insert_sql, point_sql,
};

/// mysql_async, the comparison.
pub struct Async;

type PointRow = (u64, String, f64, i32);
type DecodeRow = (u64, i32, f64, String, String, String, Option<String>);
/// Binary rows: the DATETIME is a `Value::Date`, DECIMAL still text.
type PreparedDecodeRow = (
    u64,
    i32,
    f64,
    String,
    mysql_async::Value,
    String,
    Option<String>,
);

fn opts(url: &str) -> BoxResult<mysql_async::Opts> {
    let opts = mysql_async::Opts::from_url(url)?;
    // By default mysql_async switches to the Unix socket when the host is
    // local; the comparison is TCP against TCP.
    Ok(mysql_async::OptsBuilder::from_opts(opts)
        .prefer_socket(false)
        .tcp_nodelay(true)
        .into())
}

fn sum(row: Option<PointRow>, id: u64) -> BoxResult<u64> {
    let (rid, name, price, qty) = row.ok_or_else(|| format!("point select: id {id} not found"))?;
    Ok(point_sum(rid, &name, price, qty))
}

impl Driver for Async {
    type Conn = Conn;
    const NAME: &'static str = "mysql_async";

    fn block_on<F: Future>(fut: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime");
        tokio::task::LocalSet::new().block_on(&rt, fut)
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

    async fn connect(url: &str) -> BoxResult<Conn> {
        Ok(Conn::new(opts(url)?).await?)
    }

    async fn connect_compressed(url: &str, c: Compression) -> BoxResult<Option<Conn>> {
        let level = match c {
            Compression::Off => None,
            // mysql_async's compression is zlib (flate2) only.
            Compression::Zlib => Some(mysql_async::Compression::new(6)),
            Compression::Zstd => return Ok(None),
        };
        let opts = mysql_async::OptsBuilder::from_opts(opts(url)?).compression(level);
        Ok(Some(Conn::new(opts).await?))
    }

    async fn session_status(c: &mut Conn, name: &str) -> BoxResult<String> {
        let row: Option<(String, String)> = c
            .query_first(format!("SHOW SESSION STATUS LIKE '{name}'"))
            .await?;
        Ok(row
            .ok_or_else(|| format!("the server has no session status {name}"))?
            .1)
    }

    async fn close(c: Conn) -> BoxResult<()> {
        Ok(c.disconnect().await?)
    }

    async fn exec(c: &mut Conn, sql: &str) -> BoxResult<()> {
        Ok(c.query_drop(sql).await?)
    }

    async fn op(c: &mut Conn, op: Op, rng: &mut Rng) -> BoxResult<u64> {
        match op {
            Op::PointText => {
                let id = rng.id();
                let row = c.query_first::<PointRow, _>(point_sql(id)).await?;
                std::hint::black_box(sum(row, id)?);
                Ok(1)
            }
            Op::PointPrepared => {
                let id = rng.id();
                let row = c.exec_first::<PointRow, _, _>(POINT_SQL, (id,)).await?;
                std::hint::black_box(sum(row, id)?);
                Ok(1)
            }
            // mysql_async cannot pipeline: the same queries one by one.
            Op::Pipeline(depth) | Op::Sequential(depth) => {
                for _ in 0..depth {
                    let id = rng.id();
                    let row = c.query_first::<PointRow, _>(point_sql(id)).await?;
                    std::hint::black_box(sum(row, id)?);
                }
                Ok(depth as u64)
            }
            Op::InsertBulk(rows) => {
                let params = insert_params(rng.id(), rows);
                c.exec_batch(
                    INSERT_ONE_SQL,
                    params.iter().map(|(k, n, p)| (*k, n.as_str(), *p)),
                )
                .await?;
                Ok(rows as u64)
            }
            Op::InsertText(rows) => {
                c.query_drop(insert_sql(rng.id(), rows)).await?;
                Ok(c.affected_rows())
            }
        }
    }

    fn supports_decode_prepared() -> bool {
        true
    }

    async fn decode_prepared(c: &mut Conn, rows: u64) -> BoxResult<Digest> {
        let mut d = Digest::default();
        let mut result = c.exec_iter(DECODE_PREPARED_SQL, (rows,)).await?;
        let mut bad = None;
        result
            .for_each(|row| {
                let (id, qty, price, name, created, amount, note): PreparedDecodeRow =
                    mysql_async::from_row(row);
                let created = match created {
                    mysql_async::Value::Date(y, mo, dd, h, mi, s, us) => datetime_sum(
                        y.into(),
                        mo.into(),
                        dd.into(),
                        h.into(),
                        mi.into(),
                        s.into(),
                        us.into(),
                    ),
                    other => {
                        bad = Some(format!("DATETIME came as {other:?}"));
                        0
                    }
                };
                d.add_typed(id, qty, price, &name, created, &amount, note.as_deref());
            })
            .await?;
        match bad {
            Some(e) => Err(e.into()),
            None => Ok(d),
        }
    }

    async fn decode(c: &mut Conn, sql: &str) -> BoxResult<Digest> {
        let mut d = Digest::default();
        let mut result = c.query_iter(sql).await?;
        result
            .for_each(|row| {
                let (id, qty, price, name, created, amount, note): DecodeRow =
                    mysql_async::from_row(row);
                d.add(id, qty, price, &name, &created, &amount, note.as_deref());
            })
            .await?;
        Ok(d)
    }
}
