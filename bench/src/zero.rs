//! zero-mysql (tokio flavour) under the [`Driver`] trait: a current-thread
//! tokio runtime per thread, like mysql_async.
//!
//! zero-mysql runs every workload it has an API for: text queries
//! (`Conn::query` with a result-set handler), prepared statements
//! (`exec_first`, `exec` with a handler), MariaDB bulk execute, and
//! `query_drop`. Its text-protocol handler receives each row as raw bytes
//! and leaves conversion to the caller, so for text rows this driver splits
//! the length-encoded fields and parses them with the standard library (the
//! conversion a zero-mysql user writes). It has no pipelining: the pipeline
//! case runs its queries one by one, and the report says so.

use std::future::Future;

use zero_mysql::PreparedStatement;
use zero_mysql::error::Error as ZeroError;
use zero_mysql::protocol::command::ColumnDefinition;
use zero_mysql::protocol::response::OkPayloadBytes;
use zero_mysql::protocol::r#trait::{BinaryResultSetHandler, TextResultSetHandler};
use zero_mysql::protocol::{BinaryRowPayload, TextRowPayload};
use zero_mysql::raw::FromRow;
use zero_mysql::tokio::Conn;
use zero_mysql::value::Value;

use crate::BoxResult;
use crate::driver::{Digest, Driver, Op, Rng, datetime_sum, point_sum};
use crate::setup::{
    DECODE_PREPARED_SQL, INSERT_ONE_SQL, POINT_SQL, insert_params, insert_sql, point_sql,
};

/// zero-mysql, the io_uring-capable comparison (run here on tokio).
pub struct Zero;

/// A connection and its prepared statements.
pub struct ZeroConn {
    conn: Conn,
    point: Option<PreparedStatement>,
    insert: Option<PreparedStatement>,
    decode: Option<PreparedStatement>,
}

fn url_over_tcp(url: &str) -> BoxResult<String> {
    let mut u = url::Url::parse(url)?;
    // Like the others, TCP against TCP.
    u.query_pairs_mut()
        .append_pair("upgrade_to_unix_socket", "false");
    Ok(u.to_string())
}

fn bad(what: &str) -> ZeroError {
    ZeroError::BadUsageError(format!("bench: {what}"))
}

/// Splits a text row into its `N` length-encoded fields (`None`: NULL).
fn text_fields<const N: usize>(row: &[u8]) -> Result<[Option<&[u8]>; N], ZeroError> {
    let mut out = [None; N];
    let mut i = 0;
    for f in out.iter_mut() {
        let b = *row.get(i).ok_or_else(|| bad("short text row"))?;
        let (len, used) = match b {
            0xFB => {
                i += 1;
                continue;
            }
            0..=0xFA => (b as usize, 1),
            0xFC..=0xFE => {
                let k = match b {
                    0xFC => 2,
                    0xFD => 3,
                    _ => 8,
                };
                let mut v = [0u8; 8];
                v[..k].copy_from_slice(row.get(i + 1..i + 1 + k).ok_or_else(|| bad("short"))?);
                (u64::from_le_bytes(v) as usize, 1 + k)
            }
            _ => return Err(bad("bad length in a text row")),
        };
        *f = Some(
            row.get(i + used..i + used + len)
                .ok_or_else(|| bad("short text row"))?,
        );
        i += used + len;
    }
    Ok(out)
}

/// A text field as `&str`.
fn text(f: Option<&[u8]>) -> Result<&str, ZeroError> {
    std::str::from_utf8(f.ok_or_else(|| bad("unexpected NULL"))?).map_err(|_| bad("not UTF-8"))
}

/// A text field parsed as `T`.
fn num<T: std::str::FromStr>(f: Option<&[u8]>) -> Result<T, ZeroError> {
    text(f)?.parse().map_err(|_| bad("not a number"))
}

/// Reads text-protocol point-select rows into typed values.
#[derive(Default)]
struct PointText {
    sum: u64,
}

impl TextResultSetHandler for PointText {
    fn no_result_set(&mut self, _ok: OkPayloadBytes) -> zero_mysql::error::Result<()> {
        Ok(())
    }

    fn resultset_start(&mut self, _cols: &[ColumnDefinition<'_>]) -> zero_mysql::error::Result<()> {
        Ok(())
    }

    fn row(
        &mut self,
        _cols: &[ColumnDefinition<'_>],
        row: TextRowPayload<'_>,
    ) -> zero_mysql::error::Result<()> {
        let [id, name, price, qty] = text_fields::<4>(row.0)?;
        self.sum += point_sum(num(id)?, text(name)?, num(price)?, num(qty)?);
        Ok(())
    }

    fn resultset_end(&mut self, _eof: OkPayloadBytes) -> zero_mysql::error::Result<()> {
        Ok(())
    }
}

/// Reads text-protocol `bench_decode` rows into typed values.
#[derive(Default)]
struct DecodeText {
    d: Digest,
}

impl TextResultSetHandler for DecodeText {
    fn no_result_set(&mut self, _ok: OkPayloadBytes) -> zero_mysql::error::Result<()> {
        Ok(())
    }

    fn resultset_start(&mut self, _cols: &[ColumnDefinition<'_>]) -> zero_mysql::error::Result<()> {
        Ok(())
    }

    fn row(
        &mut self,
        _cols: &[ColumnDefinition<'_>],
        row: TextRowPayload<'_>,
    ) -> zero_mysql::error::Result<()> {
        let [id, qty, price, name, created, amount, note] = text_fields::<7>(row.0)?;
        let note = match note {
            Some(n) => Some(text(Some(n))?),
            None => None,
        };
        self.d.add(
            num(id)?,
            num(qty)?,
            num(price)?,
            text(name)?,
            text(created)?,
            text(amount)?,
            note,
        );
        Ok(())
    }

    fn resultset_end(&mut self, _eof: OkPayloadBytes) -> zero_mysql::error::Result<()> {
        Ok(())
    }
}

/// Binary `bench_decode` rows: DATETIME as a timestamp, DECIMAL as its text.
type PreparedDecodeRow<'a> = (
    u64,
    i32,
    f64,
    &'a str,
    Value<'a>,
    Value<'a>,
    Option<&'a str>,
);

/// Reads binary-protocol `bench_decode` rows into typed values.
#[derive(Default)]
struct DecodeBinary {
    d: Digest,
}

impl BinaryResultSetHandler for DecodeBinary {
    fn no_result_set(&mut self, _ok: OkPayloadBytes) -> zero_mysql::error::Result<()> {
        Ok(())
    }

    fn resultset_start(&mut self, _cols: &[ColumnDefinition<'_>]) -> zero_mysql::error::Result<()> {
        Ok(())
    }

    fn row(
        &mut self,
        cols: &[ColumnDefinition<'_>],
        row: BinaryRowPayload<'_>,
    ) -> zero_mysql::error::Result<()> {
        let (id, qty, price, name, created, amount, note) =
            <PreparedDecodeRow<'_> as FromRow<'_>>::from_row(cols, row)?;
        let created = match created {
            Value::Datetime0 => 0,
            Value::Datetime4(t) => {
                datetime_sum(t.year().into(), t.month.into(), t.day.into(), 0, 0, 0, 0)
            }
            Value::Datetime7(t) => datetime_sum(
                t.year().into(),
                t.month.into(),
                t.day.into(),
                t.hour.into(),
                t.minute.into(),
                t.second.into(),
                0,
            ),
            Value::Datetime11(t) => datetime_sum(
                t.year().into(),
                t.month.into(),
                t.day.into(),
                t.hour.into(),
                t.minute.into(),
                t.second.into(),
                t.microsecond.get().into(),
            ),
            other => return Err(bad(&format!("DATETIME came as {other:?}"))),
        };
        let amount = match amount {
            Value::Byte(b) => std::str::from_utf8(b).map_err(|_| bad("DECIMAL not UTF-8"))?,
            other => return Err(bad(&format!("DECIMAL came as {other:?}"))),
        };
        self.d
            .add_typed(id, qty, price, name, created, amount, note);
        Ok(())
    }

    fn resultset_end(&mut self, _eof: OkPayloadBytes) -> zero_mysql::error::Result<()> {
        Ok(())
    }
}

/// A text-protocol point select.
async fn point(c: &mut ZeroConn, id: u64) -> BoxResult<u64> {
    let mut h = PointText::default();
    c.conn.query(&point_sql(id), &mut h).await?;
    if h.sum == 0 {
        return Err(format!("point select: id {id} not found").into());
    }
    Ok(h.sum)
}

impl Driver for Zero {
    type Conn = ZeroConn;
    const NAME: &'static str = "zero-mysql";

    fn supports(_op: Op) -> bool {
        true
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
            decode: None,
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
            Op::PointText => {
                std::hint::black_box(point(c, rng.id()).await?);
                Ok(1)
            }
            // zero-mysql cannot pipeline: the same queries one by one.
            Op::Pipeline(depth) | Op::Sequential(depth) => {
                for _ in 0..depth {
                    std::hint::black_box(point(c, rng.id()).await?);
                }
                Ok(depth as u64)
            }
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
        }
    }

    async fn decode(c: &mut ZeroConn, sql: &str) -> BoxResult<Digest> {
        let mut h = DecodeText::default();
        c.conn.query(sql, &mut h).await?;
        Ok(h.d)
    }

    fn supports_decode_prepared() -> bool {
        true
    }

    async fn decode_prepared(c: &mut ZeroConn, rows: u64) -> BoxResult<Digest> {
        if c.decode.is_none() {
            c.decode = Some(c.conn.prepare(DECODE_PREPARED_SQL).await?);
        }
        let stmt = c.decode.as_mut().expect("prepared above");
        let mut h = DecodeBinary::default();
        c.conn.exec(stmt, (rows,), &mut h).await?;
        Ok(h.d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_split_nulls_and_long_lengths() {
        let long = vec![b'x'; 300];
        let mut row = vec![2, b'4', b'2', 0xFB, 0xFC, 44, 1];
        row.extend_from_slice(&long);
        let [a, b, c] = text_fields::<3>(&row).unwrap();
        assert_eq!(a, Some(&b"42"[..]));
        assert_eq!(b, None);
        assert_eq!(c, Some(&long[..]));
        assert!(text_fields::<4>(&row).is_err());
    }
}
