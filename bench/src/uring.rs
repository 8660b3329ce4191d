//! mysql-uring under the [`Driver`] trait.

use std::future::Future;

use mysql_uring::Connection;

use crate::BoxResult;
use crate::driver::{Compression, Digest, Driver, Op, Rng, datetime_sum, point_sum};
use crate::setup::{
    DECODE_PREPARED_SQL, INSERT_ONE_SQL, POINT_SQL, insert_params, insert_sql, point_sql,
    uring_opts,
};

/// mysql-uring on one io_uring runtime per thread.
pub struct Uring;

async fn point(c: &mut Connection, id: u64) -> BoxResult<u64> {
    c.cmd_query(&point_sql(id)).await?;
    let mut sum = 0;
    while let Some(row) = c.next_row().await? {
        sum += point_sum(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
    }
    if sum == 0 {
        return Err(format!("point select: id {id} not found").into());
    }
    Ok(sum)
}

/// A point select through the statement cache: binary rows streamed by reference.
async fn point_prepared(c: &mut Connection, id: u64) -> BoxResult<u64> {
    c.cmd_execute(POINT_SQL, (id,)).await?;
    let mut sum = 0;
    while let Some(row) = c.next_row().await? {
        sum += point_sum(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
    }
    if sum == 0 {
        return Err(format!("prepared point select: id {id} not found").into());
    }
    Ok(sum)
}

impl Driver for Uring {
    type Conn = Connection;
    const NAME: &'static str = "mysql-uring";

    fn supports(_op: Op) -> bool {
        true
    }

    fn block_on<F: Future>(fut: F) -> F::Output {
        mysql_uring::start(fut)
    }

    fn spawn<F: Future + 'static>(
        fut: F,
    ) -> impl Future<Output = Result<F::Output, String>> + 'static
    where
        F::Output: 'static,
    {
        let h = mysql_uring::runtime::spawn(fut);
        async move { h.await.map_err(|e| e.to_string()) }
    }

    async fn connect(url: &str) -> BoxResult<Connection> {
        Ok(mysql_uring::connect(uring_opts(url)?).await?)
    }

    async fn connect_compressed(url: &str, c: Compression) -> BoxResult<Option<Connection>> {
        use mysql_uring::Compression as Algorithm;
        let alg = match c {
            Compression::Off => None,
            Compression::Zlib => Some(Algorithm::Zlib(6)),
            Compression::Zstd => Some(Algorithm::Zstd(3)),
        };
        let conn = mysql_uring::connect(uring_opts(url)?.compression(alg)).await?;
        if conn.is_compressed() != alg.is_some() {
            return Err(format!("mysql-uring: {} was not negotiated", c.label()).into());
        }
        Ok(Some(conn))
    }

    async fn session_status(c: &mut Connection, name: &str) -> BoxResult<String> {
        let rows = c
            .query(&format!("SHOW SESSION STATUS LIKE '{name}'"))
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| format!("the server has no session status {name}"))?;
        Ok(row.get::<String>(1)?)
    }

    async fn close(c: Connection) -> BoxResult<()> {
        Ok(c.close().await?)
    }

    async fn exec(c: &mut Connection, sql: &str) -> BoxResult<()> {
        c.query_drop(sql).await?;
        Ok(())
    }

    async fn op(c: &mut Connection, op: Op, rng: &mut Rng) -> BoxResult<u64> {
        match op {
            Op::PointText => {
                std::hint::black_box(point(c, rng.id()).await?);
                Ok(1)
            }
            Op::PointPrepared => {
                std::hint::black_box(point_prepared(c, rng.id()).await?);
                Ok(1)
            }
            Op::Pipeline(depth) => {
                let mut p = c.pipeline();
                for _ in 0..depth {
                    p.push(point_sql(rng.id()));
                }
                for stage in p.run().await? {
                    let out = stage?;
                    if out.rows.len() != 1 {
                        return Err("pipelined point select: id not found".into());
                    }
                    let r = &out.rows[0];
                    std::hint::black_box(point_sum(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
                }
                Ok(depth as u64)
            }
            Op::Sequential(depth) => {
                for _ in 0..depth {
                    std::hint::black_box(point(c, rng.id()).await?);
                }
                Ok(depth as u64)
            }
            Op::InsertText(rows) => {
                let o = c.query_drop(&insert_sql(rng.id(), rows)).await?;
                Ok(o.affected_rows)
            }
            Op::InsertBulk(rows) => {
                let params = insert_params(rng.id(), rows);
                let o = c.execute_many(INSERT_ONE_SQL, &params).await?;
                Ok(o.affected_rows)
            }
        }
    }

    fn supports_decode_prepared() -> bool {
        true
    }

    async fn decode_prepared(c: &mut Connection, rows: u64) -> BoxResult<Digest> {
        let mut d = Digest::default();
        c.cmd_execute(DECODE_PREPARED_SQL, (rows,)).await?;
        while let Some(row) = c.next_row().await? {
            let t: mysql_uring::DateTime = row.get(4)?;
            let created = datetime_sum(
                t.date.year.into(),
                t.date.month.into(),
                t.date.day.into(),
                t.hour.into(),
                t.minute.into(),
                t.second.into(),
                t.micros.into(),
            );
            d.add_typed(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                created,
                row.get(5)?,
                row.get(6)?,
            );
        }
        Ok(d)
    }

    async fn decode(c: &mut Connection, sql: &str) -> BoxResult<Digest> {
        let mut d = Digest::default();
        c.cmd_query(sql).await?;
        while let Some(row) = c.next_row().await? {
            d.add(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            );
        }
        Ok(d)
    }
}
