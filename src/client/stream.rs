//! [`ClientStream`]: a result's rows from a core, as a `Send` stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use futures_core::stream::FusedStream;

use super::handoff::{LocalBoxFuture, Work};
use super::{Client, OwnedParams, panicked};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::from_row::FromRow;
use crate::io::uring::exec::CatchUnwind;
use crate::row::Row;

/// Rows per batch sent from the core.
const BATCH: usize = 64;
/// Batches the core may run ahead of the consumer before it stops reading.
const AHEAD: usize = 2;

struct State<T> {
    batches: VecDeque<Vec<Result<T>>>,
    /// The core has sent the last batch (an error is its last item).
    end: bool,
    /// The core's side went away before the end (the core stopped).
    producer_gone: bool,
    consumer_gone: bool,
    consumer: Option<Waker>,
    /// The core's task, while it waits for room or reads the network.
    producer: Option<Waker>,
}

struct Shared<T> {
    st: Mutex<State<T>>,
    core: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The rows of a query run through a [`Client`], as a `Send`
/// [`Stream`] of `Result<T>` ([`Row`] by default): from
/// [`Client::query_stream`], [`Client::exec_stream`] and their typed forms
/// [`Client::query_stream_as`] / [`Client::exec_stream_as`].
///
/// The statement runs on a core, on a pooled connection held for the
/// stream's life. Rows cross to the consumer in batches (up to 64 rows);
/// the core reads at most two batches ahead, then waits: a slow consumer
/// holds the server back instead of filling memory. An error (the statement
/// failing, the connection lost) is the last item; a row that does not
/// convert to `T` is an [`ErrorKind::Conversion`] item and the stream goes
/// on.
///
/// Dropped before its end, the stream abandons the statement: the core
/// stops reading, and the connection is settled (the statement
/// interrupted, the rest of its reply discarded) before the pool hands it
/// out again.
///
/// It is `Unpin` and fused, so `futures`' `StreamExt`/`TryStreamExt`
/// (`next`, `try_next`, `try_collect`, ...) and `tokio-stream` take it as
/// it is.
///
/// ```no_run
/// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// use futures_core::Stream;
///
/// let mut rows = client.exec_stream("SELECT id, name FROM users WHERE age > ?", (30,));
/// // With futures::StreamExt: `while let Some(row) = rows.next().await`.
/// while let Some(row) = poll_fn(|cx| Pin::new(&mut rows).poll_next(cx)).await {
///     let row = row?;
///     println!("{}: {}", row.get::<u64>(0)?, row.get::<&str>(1)?);
/// }
/// # Ok(()) }
/// ```
#[must_use = "streams do nothing unless polled; dropping one abandons its statement"]
pub struct ClientStream<T = Row> {
    shared: Option<Arc<Shared<T>>>,
    buf: VecDeque<Result<T>>,
    failed: Option<Error>,
}

impl<T> Unpin for ClientStream<T> {}

impl<T> std::fmt::Debug for ClientStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("core", &self.shared.as_ref().map(|s| s.core))
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<T> Stream for ClientStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        if let Some(item) = this.buf.pop_front() {
            return Poll::Ready(Some(item));
        }
        if let Some(e) = this.failed.take() {
            this.shared = None;
            return Poll::Ready(Some(Err(e)));
        }
        let Some(shared) = &this.shared else {
            return Poll::Ready(None);
        };
        let (batch, wake) = {
            let mut st = shared.lock();
            match st.batches.pop_front() {
                Some(b) => (b, st.producer.take()),
                None if st.end => {
                    drop(st);
                    this.shared = None;
                    return Poll::Ready(None);
                }
                None if st.producer_gone => {
                    let core = shared.core;
                    drop(st);
                    this.shared = None;
                    return Poll::Ready(Some(Err(Error::new(
                        ErrorKind::Stopped,
                        format!("core {core} stopped before the stream's rows ended"),
                    ))));
                }
                None => {
                    match &st.consumer {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => st.consumer = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
            }
        };
        // Room again: the core may read on.
        if let Some(w) = wake {
            w.wake();
        }
        this.buf = batch.into();
        match this.buf.pop_front() {
            Some(item) => Poll::Ready(Some(item)),
            // An empty batch is never sent; poll again to be safe.
            None => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl<T> FusedStream for ClientStream<T> {
    fn is_terminated(&self) -> bool {
        self.shared.is_none() && self.buf.is_empty() && self.failed.is_none()
    }
}

impl<T> Drop for ClientStream<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let wake = {
                let mut st = shared.lock();
                st.consumer_gone = true;
                st.batches.clear();
                st.producer.take()
            };
            if let Some(w) = wake {
                w.wake();
            }
        }
    }
}

/// What a stream runs.
pub(super) enum Query {
    Text(String),
    Exec(String, OwnedParams),
}

/// The core's side of a stream.
struct StreamWork<T> {
    query: Query,
    /// Dropped unrun (the core stopped first), it tells the consumer.
    producer: Producer<T>,
    caller: crate::trace::Caller,
}

/// Marks the producer gone when the core's side ends without the end
/// (dropped: the core stopped).
struct Producer<T>(Arc<Shared<T>>);

impl<T> Producer<T> {
    fn finish(&self, last: Option<Error>) {
        let wake = {
            let mut st = self.0.lock();
            if let Some(e) = last {
                if !st.consumer_gone {
                    st.batches.push_back(vec![Err(e)]);
                }
            }
            st.end = true;
            st.consumer.take()
        };
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Hands a batch over; false once the consumer is gone.
    fn publish(&self, batch: &mut Vec<Result<T>>) -> bool {
        let wake = {
            let mut st = self.0.lock();
            if st.consumer_gone {
                return false;
            }
            if !batch.is_empty() {
                st.batches.push_back(std::mem::take(batch));
            }
            st.consumer.take()
        };
        if let Some(w) = wake {
            w.wake();
        }
        true
    }

    /// Ready(true) while there is room for another batch, Ready(false) once
    /// the consumer is gone; Pending (woken when room is made) otherwise.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut st = self.0.lock();
        if st.consumer_gone {
            return Poll::Ready(false);
        }
        if st.batches.len() < AHEAD {
            return Poll::Ready(true);
        }
        st.producer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Registers the core's task to hear of the consumer going away while
    /// it waits for rows; false when it already has.
    fn watch(&self, cx: &mut Context<'_>) -> bool {
        let mut st = self.0.lock();
        if st.consumer_gone {
            return false;
        }
        st.producer = Some(cx.waker().clone());
        true
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let wake = {
            let mut st = self.0.lock();
            if st.end {
                return;
            }
            st.producer_gone = true;
            st.consumer.take()
        };
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl<T> Work for StreamWork<T>
where
    T: for<'r> FromRow<'r> + Send + 'static,
{
    fn canceled(&self) -> bool {
        self.producer.0.lock().consumer_gone
    }

    fn fail(self: Box<Self>, e: Error) {
        self.producer.finish(Some(e));
    }

    fn run<'c>(self: Box<Self>, conn: &'c mut Connection) -> LocalBoxFuture<'c, bool> {
        let StreamWork {
            query,
            producer,
            caller,
        } = *self;
        Box::pin(caller.run(async move {
            let r = CatchUnwind(produce(conn, query, &producer)).await;
            match r {
                Ok(Ok(finished)) => {
                    producer.finish(None);
                    finished
                }
                Ok(Err(e)) => {
                    producer.finish(Some(e));
                    true
                }
                Err(p) => {
                    producer.finish(Some(panicked(&*p)));
                    false
                }
            }
        }))
    }
}

/// Runs the query and sends its rows in batches; Ok(false) when the
/// consumer went away first (the statement is then abandoned).
async fn produce<T>(conn: &mut Connection, query: Query, producer: &Producer<T>) -> Result<bool>
where
    T: for<'r> FromRow<'r>,
{
    let mut rows = match &query {
        Query::Text(sql) => conn.stream_as::<T>(sql).await?,
        Query::Exec(sql, params) => conn.exec_stream_as::<T>(sql.as_str(), params).await?,
    };
    let mut batch: Vec<Result<T>> = Vec::new();
    std::future::poll_fn(|cx| {
        loop {
            match producer.poll_room(cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => return Poll::Ready(Ok(false)),
                Poll::Pending => return Poll::Pending,
            }
            match Pin::new(&mut rows).poll_next(cx) {
                Poll::Ready(Some(Ok(row))) => {
                    batch.push(Ok(row));
                    if batch.len() >= BATCH && !producer.publish(&mut batch) {
                        return Poll::Ready(Ok(false));
                    }
                }
                Poll::Ready(Some(Err(e))) if e.kind() == ErrorKind::Conversion => {
                    batch.push(Err(e));
                }
                Poll::Ready(Some(Err(e))) => {
                    if !producer.publish(&mut batch) {
                        return Poll::Ready(Ok(false));
                    }
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(Ok(producer.publish(&mut batch)));
                }
                Poll::Pending => {
                    // Waiting for the network: what was read goes now.
                    if !producer.publish(&mut batch) || !producer.watch(cx) {
                        return Poll::Ready(Ok(false));
                    }
                    return Poll::Pending;
                }
            }
        }
    })
    .await
}

impl Client {
    /// Runs a query (text protocol) on a core and returns its rows as a
    /// `Send` [`Stream`]; see [`ClientStream`] for batching, backpressure
    /// and what dropping it does. Errors, even the statement's own, come as
    /// the stream's last item.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// let rows = client.query_stream("SELECT id, payload FROM events");
    /// // futures::TryStreamExt::try_next(&mut rows).await? in a loop, or
    /// // tokio_stream::StreamExt::next(&mut rows).await
    /// # Ok(()) }
    /// ```
    pub fn query_stream(&self, sql: impl Into<String>) -> ClientStream<Row> {
        self.query_stream_as::<Row>(sql)
    }

    /// [`Client::query_stream`] with each row converted to `T` on the core.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// let ids = client.query_stream_as::<(u64, String)>("SELECT id, name FROM users");
    /// # Ok(()) }
    /// ```
    pub fn query_stream_as<T>(&self, sql: impl Into<String>) -> ClientStream<T>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        self.stream(Query::Text(sql.into()))
    }

    /// Executes a prepared statement on a core and returns its rows as a
    /// `Send` [`Stream`]; see [`ClientStream`]. Parameters are copied
    /// before the call leaves, as for [`Client::exec`].
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client, owner: &str) -> mysql_uring::Result<()> {
    /// let rows = client.exec_stream("SELECT id FROM files WHERE owner = ?", (owner,));
    /// # Ok(()) }
    /// ```
    pub fn exec_stream<P: crate::Params>(
        &self,
        sql: impl Into<String>,
        params: P,
    ) -> ClientStream<Row> {
        self.exec_stream_as::<Row, P>(sql, params)
    }

    /// [`Client::exec_stream`] with each row converted to `T` on the core.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// let rows = client.exec_stream_as::<(u64, f64), _>("SELECT id, score FROM results WHERE run = ?", (3,));
    /// # Ok(()) }
    /// ```
    pub fn exec_stream_as<T, P: crate::Params>(
        &self,
        sql: impl Into<String>,
        params: P,
    ) -> ClientStream<T>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        self.stream(Query::Exec(sql.into(), OwnedParams::new(&params)))
    }

    fn stream<T>(&self, query: Query) -> ClientStream<T>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let core = match self.pick() {
            Ok(c) => c,
            Err(e) => {
                return ClientStream {
                    shared: None,
                    buf: VecDeque::new(),
                    failed: Some(e),
                };
            }
        };
        let shared = Arc::new(Shared {
            st: Mutex::new(State {
                batches: VecDeque::new(),
                end: false,
                producer_gone: false,
                consumer_gone: false,
                consumer: None,
                producer: None,
            }),
            core,
        });
        let work = Box::new(StreamWork {
            query,
            producer: Producer(shared.clone()),
            caller: crate::trace::caller(),
        });
        self.push(core, work);
        ClientStream {
            shared: Some(shared),
            buf: VecDeque::new(),
            failed: None,
        }
    }
}
