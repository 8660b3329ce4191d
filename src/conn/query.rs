//! Queries in the text protocol, and reading any result: its start
//! (columns or outcome), its rows, further result sets.

use std::ops::Range;
use std::sync::Arc;

use super::{Connection, NextRow, Outcome, QueryResult, row_fields};
use crate::column::Column;
use crate::error::{Error, ErrorKind, Result, ServerError};
use crate::proto::result::ResultEvent;
use crate::row::{Fields, Row, RowRef};
use crate::session::{Header, Owed, Reply, Stake};
use crate::trace::traced;

impl Connection {
    /// Sends a query and reads the start of its response, like Connector/Python's
    /// `cmd_query`: a result set's columns (then read rows with
    /// [`get_rows`](Connection::get_rows) or [`get_row`](Connection::get_row)),
    /// or the outcome of a statement without rows.
    ///
    /// Rows left unread from an earlier query are read and discarded first.
    pub async fn cmd_query(&mut self, sql: &str) -> Result<QueryResult> {
        let op = crate::trace::Op::Query(sql);
        timed!(self, "the query", traced(op), self.cmd_query_inner(sql))
    }

    pub(super) async fn cmd_query_inner(&mut self, sql: &str) -> Result<QueryResult> {
        self.run_query(sql, Stake::Statement).await
    }

    /// Settles the connection, writes `sql` and reads the start of its
    /// reply. `stake`: what a lost reply would mean (see [`Stake`]).
    pub(crate) async fn run_query(&mut self, sql: &str, stake: Stake) -> Result<QueryResult> {
        self.settle().await?;
        self.last = Outcome::default();
        // The query is written together with the read of its reply.
        self.write_query_expect(sql, stake)?;
        self.read_result_start().await
    }

    /// Runs a statement and discards any rows; returns its outcome.
    pub async fn query_drop(&mut self, sql: &str) -> Result<Outcome> {
        let op = crate::trace::Op::Query(sql);
        // Inline, not a helper: another future layer would cost a copy of
        // it on every call, feature or not.
        traced!(
            self,
            op,
            match self.cmd_query(sql).await? {
                QueryResult::Done(o) => {
                    timed!(self, "reading further results", self.consume(true))?;
                    Ok(o)
                }
                QueryResult::Rows(_) => {
                    timed!(self, "reading the result", self.consume(true))?;
                    Ok(self.last.clone())
                }
            },
            outcome
        )
    }

    /// Runs `sql` with `stake` (a transaction's `START TRANSACTION`,
    /// `COMMIT`, `ROLLBACK`), discarding rows; returns its outcome.
    pub(crate) async fn query_drop_as(&mut self, sql: &str, stake: Stake) -> Result<Outcome> {
        let op = crate::trace::Op::Query(sql);
        timed!(self, "the query", traced_outcome(op), async {
            let first = self.run_query(sql, stake).await?;
            self.consume(true).await?;
            Ok(match first {
                QueryResult::Done(o) => o,
                QueryResult::Rows(_) => self.last.clone(),
            })
        })
    }

    /// Runs a query and returns all its rows.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Row>> {
        let op = crate::trace::Op::Query(sql);
        traced!(
            self,
            op,
            match self.cmd_query(sql).await? {
                QueryResult::Rows(_) => self.get_rows().await,
                QueryResult::Done(_) => Ok(Vec::new()),
            }
        )
    }

    /// Reads the next row of the current result set, or `None` at its end.
    pub async fn get_row(&mut self) -> Result<Option<Row>> {
        timed!(self, "reading a row", self.read_row())
    }

    /// Reads the remaining rows of the current result set (Connector/Python's `get_rows`).
    pub async fn get_rows(&mut self) -> Result<Vec<Row>> {
        timed!(self, "reading rows", async {
            let mut rows = Vec::new();
            while let Some(r) = self.read_row().await? {
                rows.push(r);
            }
            Ok(rows)
        })
    }

    /// Reads at most `count` further rows of the current result set
    /// (Connector/Python's `get_rows(count)`): fewer at its end, none when
    /// `count` is 0. The rest stay readable with the next call;
    /// [`has_pending_rows`](Connection::has_pending_rows) tells whether any remain.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// cnx.cmd_query("SELECT id FROM big_table").await?;
    /// while cnx.has_pending_rows() {
    ///     let batch = cnx.get_rows_upto(1000).await?;
    ///     println!("{} rows", batch.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_rows_upto(&mut self, count: usize) -> Result<Vec<Row>> {
        timed!(self, "reading rows", async {
            let mut rows = Vec::with_capacity(count.min(1024));
            while rows.len() < count {
                match self.read_row().await? {
                    Some(r) => rows.push(r),
                    None => break,
                }
            }
            Ok(rows)
        })
    }

    /// Moves to the next result set of the current command: the next
    /// statement of a multi-statement query, or the next set of a `CALL`
    /// (whose last result is the `CALL`'s own outcome, without rows). Unread
    /// rows of the current set are discarded. `Ok(None)` when there are no
    /// more. When a statement in the middle fails, its server error is
    /// returned here, the server runs none after it, and the connection stays
    /// usable.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// use mysql_uring::QueryResult;
    /// let mut set = Some(cnx.cmd_query("CALL report()").await?);
    /// while let Some(result) = set {
    ///     if let QueryResult::Rows(columns) = result {
    ///         println!("{} columns, {} rows", columns.len(), cnx.get_rows().await?.len());
    ///     }
    ///     set = cnx.next_result().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_result(&mut self) -> Result<Option<QueryResult>> {
        timed!(self, "reading the next result", async {
            while self.has_pending_rows() {
                self.next_row_packet().await?;
            }
            if !self.has_pending_response() {
                return Ok(None);
            }
            self.last = Outcome::default();
            self.read_result_start().await.map(Some)
        })
    }

    /// Reads packets until a result set's columns are known or the
    /// statement's outcome arrives (the front reply's start).
    pub(crate) async fn read_result_start(&mut self) -> Result<QueryResult> {
        self.read_result_start_with(None).await
    }

    /// Records an OK that ends a statement's response (or one result of
    /// several) and returns its outcome.
    pub(crate) fn finish_ok(&mut self, outcome: Outcome, done: bool) -> Outcome {
        self.status = outcome.status;
        self.last = outcome;
        if done {
            self.reply_finished(true);
        }
        self.last.clone()
    }

    /// An ERR ends the response: the error to return.
    pub(crate) fn finish_err(&mut self, e: ServerError) -> Error {
        self.reply_finished(false);
        Error::server(ErrorKind::Server, e)
    }

    /// [`Connection::read_result_start`], answering a `LOAD DATA LOCAL
    /// INFILE` request from `reader` when one is given.
    ///
    /// Column definitions equal (byte for byte) to the last result's or the
    /// executed statement's are not kept again: the steady state allocates
    /// nothing here. An execute's new definitions are stored on its
    /// statement, whoever reads the reply (its caller, or the next command
    /// reading it for nobody): MariaDB's metadata cache omits them from
    /// later replies, which then decode with the statement's.
    pub(crate) async fn read_result_start_with(
        &mut self,
        mut reader: Option<&mut dyn std::io::Read>,
    ) -> Result<QueryResult> {
        let mut infile_refused: Option<String> = None;
        loop {
            let p = self.chan.read_packet().await?;
            let Some(Owed {
                reply:
                    Reply::Result {
                        machine,
                        stmt,
                        header: h,
                    },
                ..
            }) = self.session.front()
            else {
                return Err(Error::usage("no command is waiting for a result"));
            };
            let event = match machine.on_packet(&self.chan.buf()[p.clone()]) {
                Ok(ev) => ev,
                Err(e) => return Err(self.protocol_error(e)),
            };
            let done = machine.is_done();
            let in_rows = machine.in_rows();
            match event {
                ResultEvent::Ok(ok) => {
                    self.track.on_ok(&ok);
                    let outcome = self.finish_ok(Outcome::from_ok(&ok), done);
                    if let Some(why) = infile_refused {
                        return Err(Error::new(ErrorKind::Usage, why));
                    }
                    return Ok(QueryResult::Done(outcome));
                }
                ResultEvent::Err(e) => {
                    let err = self.finish_err(ServerError::from_packet(&e));
                    return Err(match infile_refused {
                        Some(why) => Error::new(
                            ErrorKind::Usage,
                            format!("{why}; the server then said: {err}"),
                        ),
                        None => err,
                    });
                }
                ResultEvent::ColumnCount(n) => {
                    let last = stmt.as_ref().map(|s| s.0.last_columns());
                    if in_rows {
                        // MariaDB skipped unchanged metadata: the columns are
                        // the ones it last sent for this statement.
                        let cols = last.unwrap_or_else(|| self.columns.clone());
                        if cols.len() != n {
                            return Err(self.protocol_error(crate::proto::ProtoError::Invalid {
                                what: "column count",
                                detail: format!(
                                    "{n} columns without metadata, but the statement's last result had {}",
                                    cols.len()
                                ),
                            }));
                        }
                        self.columns = cols;
                        return Ok(QueryResult::Rows(self.columns.clone()));
                    }
                    *h = Header::default();
                    if self.columns.len() == n {
                        h.cands[0] = Some(self.columns.clone());
                    }
                    if let Some(last) = last.filter(|l| l.len() == n) {
                        h.cands[1] = Some(last);
                    }
                    if h.cands.iter().all(Option::is_none) {
                        h.fresh = Some(Vec::with_capacity(n));
                    }
                }
                ResultEvent::Column(def) => {
                    let i = h.read;
                    if let Some(cols) = h.fresh.as_mut() {
                        cols.push(Column::new(self.chan.take_packet(p), def));
                    } else {
                        let raw = &self.chan.buf()[p.clone()];
                        let same = |c: &Option<Arc<[Column]>>| {
                            c.as_ref()
                                .is_some_and(|c| c.get(i).map(Column::raw) == Some(raw))
                        };
                        if h.cands.iter().any(same) {
                            for c in &mut h.cands {
                                if !same(c) {
                                    *c = None;
                                }
                            }
                        } else {
                            let mut cols = Vec::with_capacity(i + 1);
                            if let Some(b) = h.cands.iter().flatten().next() {
                                cols.extend_from_slice(&b[..i]);
                            }
                            cols.push(Column::new(self.chan.take_packet(p), def));
                            h.fresh = Some(cols);
                        }
                    }
                    h.read += 1;
                    if in_rows {
                        break;
                    }
                }
                ResultEvent::ColumnsEnd => break,
                ResultEvent::Row | ResultEvent::End(_) => {
                    return Err(self.protocol_error(crate::proto::ProtoError::Unexpected {
                        expected: "column definitions",
                        first_byte: self.chan.buf().get(p.start).copied(),
                    }));
                }
                ResultEvent::LocalInfile(name) => {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let allowed = if self.session.settling() {
                        // The command was abandoned: send no data at all.
                        Err(format!(
                            "the statement asking for '{name}' was abandoned; no data was sent"
                        ))
                    } else if let Some(r) = reader.take() {
                        // Once data flows it must be finished (or the
                        // connection closed): no one else can resume it.
                        self.session
                            .begin_unresumable("LOAD DATA LOCAL INFILE was interrupted mid-file");
                        self.send_local_reader(r).await?;
                        self.session.end_unresumable();
                        continue;
                    } else {
                        super::infile::local_file(&self.opts, &name)
                    };
                    match allowed {
                        Ok(path) => {
                            self.session.begin_unresumable(
                                "LOAD DATA LOCAL INFILE was interrupted mid-file",
                            );
                            self.send_local_file(&path).await?;
                            self.session.end_unresumable();
                        }
                        Err(why) => {
                            // Refuse: an empty packet means "no data"; the server answers OK/ERR.
                            infile_refused = Some(why);
                            self.chan.push_packet(&[])?;
                        }
                    }
                }
            }
        }
        if let Some(Owed {
            reply: Reply::Result { stmt, header, .. },
            ..
        }) = self.session.front()
        {
            let Header { cands, fresh, .. } = std::mem::take(header);
            let [a, b] = cands;
            self.columns = match fresh {
                Some(cols) => Arc::from(cols),
                None => a.or(b).unwrap_or_else(|| Arc::from(Vec::new())),
            };
            if let Some(stmt) = stmt {
                stmt.0.set_last_columns(&self.columns);
            }
        }
        Ok(QueryResult::Rows(self.columns.clone()))
    }

    /// Reads the next row packet; `Ok(None)` at the end of the result set.
    pub(crate) async fn next_row_packet(&mut self) -> Result<Option<Range<usize>>> {
        if !self.has_pending_rows() {
            return Ok(None);
        }
        let p = self.chan.read_packet().await?;
        self.on_row_packet(p)
    }

    /// Classifies packet `p`, read where a row may come: `Some(p)` for a row,
    /// `None` at the end of the result set (the outcome is recorded).
    #[inline]
    pub(crate) fn on_row_packet(&mut self, p: Range<usize>) -> Result<Option<Range<usize>>> {
        let Some(machine) = self.session.result() else {
            return Err(Error::usage("no result is being read"));
        };
        match machine.on_packet(&self.chan.buf()[p.clone()]) {
            Ok(ResultEvent::Row) => {
                self.trace_rows.bump();
                Ok(Some(p))
            }
            Ok(ResultEvent::End(ok)) => {
                let done = machine.is_done();
                self.track.on_ok(&ok);
                self.last.warnings = ok.warnings;
                self.last.status = ok.status;
                self.status = ok.status;
                if done {
                    self.reply_finished(true);
                }
                Ok(None)
            }
            Ok(ResultEvent::Err(e)) => Err(self.finish_err(ServerError::from_packet(&e))),
            Ok(_) => Err(self.protocol_error(crate::proto::ProtoError::Unexpected {
                expected: "a row",
                first_byte: self.chan.buf().get(p.start).copied(),
            })),
            Err(e) => Err(self.protocol_error(e)),
        }
    }

    /// Reads the next row as an owned [`Row`] sharing the read buffer.
    pub(crate) async fn read_row(&mut self) -> Result<Option<Row>> {
        let Some(p) = self.next_row_packet().await? else {
            return Ok(None);
        };
        let mut fields = Fields::new();
        let binary = self.binary_rows();
        if let Err(e) = row_fields(
            &self.chan.buf()[p.clone()],
            &self.columns,
            binary,
            &mut fields,
        ) {
            return Err(self.protocol_error(e));
        }
        let packet = self.chan.take_packet(p);
        Ok(Some(
            Row::new(packet, fields, self.columns.clone()).with_protocol(binary),
        ))
    }

    pub(crate) fn row_ref_at(&mut self, p: Range<usize>) -> Result<RowRef<'_>> {
        self.fields.clear();
        let binary = self.binary_rows();
        if let Err(e) = row_fields(
            &self.chan.buf()[p.clone()],
            &self.columns,
            binary,
            &mut self.fields,
        ) {
            return Err(self.protocol_error(e));
        }
        Ok(RowRef::new(&self.chan.buf()[p], &self.fields, &self.columns).with_protocol(binary))
    }

    /// Streams the next row of the current result set without copying or
    /// allocating: the row borrows the connection's read buffer and is valid
    /// until the next call. `Ok(None)` at the end.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// cnx.cmd_query("SELECT id, name FROM big_table").await?;
    /// let mut total = 0u64;
    /// while let Some(row) = cnx.next_row().await? {
    ///     total += row.get::<u64>(0)?;
    /// }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn next_row(&mut self) -> NextRow<'_> {
        NextRow {
            conn: Some(self),
            st: crate::io::channel::ReadState::default(),
            begun: false,
            deadline: None,
        }
    }
    /// Reads the rest of the current response (the front reply only: a
    /// pipeline's later stages stay). With `report`, the first server error
    /// (e.g. a statement killed mid-result, or a failing statement of a
    /// multi-statement query) is returned after the response is fully read.
    ///
    /// Only for a command that wrote one reply (the front one is its own);
    /// a pipeline's stages use [`Connection::consume_reply`].
    pub(crate) async fn consume(&mut self, report: bool) -> Result<()> {
        match self.session.front_seq() {
            Some(seq) => self.consume_reply(seq, report).await,
            None => Ok(()),
        }
    }

    /// Reads the rest of reply `seq` (see [`crate::session::Session::mark`]),
    /// if it is still the one being read.
    pub(crate) async fn consume_reply(&mut self, seq: u64, report: bool) -> Result<()> {
        self.chan.check()?;
        let mut first_err = None;
        while self.session.front_seq() == Some(seq) {
            let Some(machine) = self.session.result() else {
                break;
            };
            let r = if machine.in_rows() {
                self.next_row_packet().await.map(|_| ())
            } else {
                self.read_result_start().await.map(|_| ())
            };
            match r {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Server | ErrorKind::Usage) => {
                    if report && first_err.is_none() {
                        first_err = Some(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
