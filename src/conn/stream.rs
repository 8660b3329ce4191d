//! [`RowStream`]: a result's rows as a [`futures_core::Stream`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_core::stream::FusedStream;

use super::{Connection, QueryResult};
use crate::column::Column;
use crate::error::{ErrorKind, Result};
use crate::from_row::FromRow;
use crate::io::channel::ReadState;
use crate::params::Params;
use crate::row::Row;
use crate::runtime::Sleep;
use crate::statement::AsStatement;

/// The rows of one result set as a [`Stream`] of owned `T` ([`Row`] by
/// default): from [`Connection::stream`], [`Connection::exec_stream`] and
/// their typed forms [`Connection::stream_as`] / [`Connection::exec_stream_as`].
///
/// Each item is one row, read when the stream is polled (nothing is
/// collected ahead). It borrows the connection mutably until dropped.
///
/// - A row that does not convert to `T` is an `Err` item of
///   [`ErrorKind::Conversion`](crate::ErrorKind::Conversion), and the stream
///   goes on with the next row; any other error is the stream's last item.
/// - Each row must arrive within the connection's query timeout, if one is
///   set ([`ErrorKind::Timeout`](crate::ErrorKind::Timeout), then the end).
/// - Dropped before its end, the stream leaves the unread rows recorded on
///   the connection: the next command reads and discards them first.
///
/// It is `Unpin` and fused, so `futures`' `StreamExt`/`TryStreamExt`
/// combinators (`next`, `try_next`, `map`, `take`, `try_collect`, ...) take
/// it as it is.
///
/// ```no_run
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// use futures_core::Stream;
///
/// let mut rows = cnx.stream("SELECT id, name FROM users").await?;
/// // With futures::StreamExt: `while let Some(row) = rows.next().await`.
/// while let Some(row) = poll_fn(|cx| Pin::new(&mut rows).poll_next(cx)).await {
///     let row = row?;
///     println!("{}: {}", row.get::<u64>(0)?, row.get::<&str>(1)?);
/// }
/// # Ok(()) }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct RowStream<'c, T = Row> {
    /// `None` once the stream has ended.
    conn: Option<&'c mut Connection>,
    columns: Arc<[Column]>,
    /// The read of the next row.
    st: ReadState,
    /// The query timeout of the next row, from its first wait on.
    deadline: Option<Sleep>,
    /// At the end of the rows, read the rest of the reply (further results,
    /// a `CALL`'s outcome) and report its errors, as `exec` does.
    finish: bool,
    /// That read, once the rows have ended (boxed: rare, and it holds the connection).
    tail: Option<Pin<Box<dyn Future<Output = Result<()>> + 'c>>>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for RowStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("columns", &self.columns)
            .field("ended", &(self.conn.is_none() && self.tail.is_none()))
            .finish_non_exhaustive()
    }
}

impl<'c, T> RowStream<'c, T> {
    fn new(conn: &'c mut Connection, columns: Arc<[Column]>, finish: bool) -> Self {
        RowStream {
            conn: Some(conn),
            columns,
            st: ReadState::default(),
            deadline: None,
            finish,
            tail: None,
            _t: PhantomData,
        }
    }

    /// The result set's columns (empty for a statement without rows).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The rows have ended: hands the rest of the reply to the tail, if
    /// this stream reads it.
    fn end(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let Some(conn) = self.conn.take() else {
            return Poll::Ready(None);
        };
        if self.finish && conn.has_pending_response() {
            self.tail = Some(Box::pin(async move {
                timed!(conn, "reading further results", conn.consume(true))
            }));
            return self.poll_tail(cx);
        }
        Poll::Ready(None)
    }

    fn poll_tail(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let Some(tail) = self.tail.as_mut() else {
            return Poll::Ready(None);
        };
        let r = std::task::ready!(tail.as_mut().poll(cx));
        self.tail = None;
        Poll::Ready(r.err().map(Err))
    }
}

impl<T: for<'r> FromRow<'r>> Stream for RowStream<'_, T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        if this.tail.is_some() {
            return this.poll_tail(cx);
        }
        let Some(conn) = this.conn.as_deref_mut() else {
            return Poll::Ready(None);
        };
        if !conn.has_pending_rows() {
            return this.end(cx);
        }
        let r = std::task::ready!(conn.poll_row::<T>(cx, &mut this.st, &mut this.deadline));
        this.st = ReadState::default();
        this.deadline = None;
        match r {
            Ok(Some(t)) => Poll::Ready(Some(Ok(t))),
            Ok(None) => this.end(cx),
            Err(e) => {
                if e.kind() != ErrorKind::Conversion {
                    // The result (or the connection) is over: so is the stream.
                    this.conn = None;
                }
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl<T: for<'r> FromRow<'r>> FusedStream for RowStream<'_, T> {
    fn is_terminated(&self) -> bool {
        self.conn.is_none() && self.tail.is_none()
    }
}

impl<T> Drop for RowStream<'_, T> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A row read in progress: its unread rest stays with the
            // connection, which reads it before the next command.
            conn.chan.abandon_read(&self.st);
        }
    }
}

impl Connection {
    /// Runs a query (text protocol) and returns its rows as a [`Stream`] of
    /// owned [`Row`]s, read as the stream is polled; see [`RowStream`]. A
    /// statement without a result set gives an empty stream. Further result
    /// sets (multi-statement queries) stay for [`Connection::next_result`]
    /// once the stream is dropped.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let mut rows = cnx.stream("SELECT id FROM big_table").await?;
    /// // futures::StreamExt::next / TryStreamExt::try_next on it, e.g.
    /// // while let Some(row) = rows.try_next().await? { ... }
    /// # Ok(()) }
    /// ```
    pub async fn stream(&mut self, sql: &str) -> Result<RowStream<'_>> {
        self.stream_as::<Row>(sql).await
    }

    /// [`Connection::stream`] with each row converted to `T` as it arrives
    /// (a tuple, a derived struct: any `T: for<'r> FromRow<'r>`). Rows are
    /// converted straight from the read buffer: a stream of `Copy` values
    /// allocates nothing per row.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let mut ids = cnx.stream_as::<(u64, f64)>("SELECT id, score FROM results").await?;
    /// # Ok(()) }
    /// ```
    pub async fn stream_as<T>(&mut self, sql: &str) -> Result<RowStream<'_, T>>
    where
        T: for<'r> FromRow<'r>,
    {
        let columns = match self.cmd_query(sql).await? {
            QueryResult::Rows(columns) => columns,
            QueryResult::Done(_) => Arc::from(Vec::new()),
        };
        Ok(RowStream::new(self, columns, false))
    }

    /// Executes a prepared statement and returns its rows as a [`Stream`] of
    /// owned [`Row`]s; see [`RowStream`]. Like [`Connection::exec`], the
    /// rest of the reply (e.g. a `CALL`'s outcome) is read when the rows end,
    /// and its error, if any, is the stream's last item.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let rows = cnx.exec_stream("SELECT id, name FROM users WHERE age > ?", (30,)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn exec_stream(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
    ) -> Result<RowStream<'_>> {
        self.exec_stream_as::<Row>(stmt, params).await
    }

    /// [`Connection::exec_stream`] with each row converted to `T` as it arrives.
    pub async fn exec_stream_as<T>(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
    ) -> Result<RowStream<'_, T>>
    where
        T: for<'r> FromRow<'r>,
    {
        let columns = match self.cmd_execute(stmt, params).await? {
            QueryResult::Rows(columns) => columns,
            QueryResult::Done(_) => {
                timed!(self, "reading further results", self.consume(true))?;
                Arc::from(Vec::new())
            }
        };
        Ok(RowStream::new(self, columns, true))
    }

    /// The poll behind [`RowStream`], as [`NextRow`](super::NextRow) polls:
    /// the next row of the current result set converted to `T`, `None` at
    /// its end. `st` carries the read between polls (the caller abandons it
    /// if dropped while pending, and starts a new one after each row);
    /// `deadline` is the row's query timeout.
    fn poll_row<T: for<'r> FromRow<'r>>(
        &mut self,
        cx: &mut Context<'_>,
        st: &mut ReadState,
        deadline: &mut Option<Sleep>,
    ) -> Poll<Result<Option<T>>> {
        let p = match self.chan.poll_packet(cx, st) {
            Poll::Ready(Ok(p)) => p,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some(limit) = self.query_timeout {
                    let sleep = deadline.get_or_insert_with(|| crate::runtime::sleep(limit));
                    if Pin::new(sleep).poll(cx).is_ready() {
                        self.chan.abandon_read(st);
                        return Poll::Ready(Err(self.timed_out(
                            "reading a row",
                            limit,
                            self.session.mark(),
                        )));
                    }
                }
                return Poll::Pending;
            }
        };
        Poll::Ready(match self.on_row_packet(p) {
            Ok(Some(p)) => self.convert_row::<T>(p).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        })
    }
}
