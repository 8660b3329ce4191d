//! Prepared statements on a [`Connection`]: prepare, execute (binary
//! protocol), the statement cache, close/reset, and bulk execution.

use std::sync::Arc;

use super::{Connection, Outcome, QueryResult};
use crate::column::Column;
use crate::error::{Error, ErrorKind, Result, ServerError};
use crate::params::{Params, ToValue};
use crate::proto::binary::ValueRef;
use crate::proto::result::ResultMachine;
use crate::proto::stmt::{
    PrepareEvent, PrepareMachine, begin_bulk, put_bulk_row, write_close, write_execute,
    write_long_data, write_prepare, write_reset,
};
use crate::row::Row;
use crate::session::{Owed, Reply, Stake};
use crate::statement::{AsStatement, Inner, Statement, StatementRef};
use crate::trace::traced;

/// String and byte parameters at least this long are sent ahead of the
/// execute with `COM_STMT_SEND_LONG_DATA`, in chunks of this size.
const LONG_DATA: usize = 1 << 20;
/// When the inline parameters would add up to more than this, parameters of
/// [`LONG_DATA_SMALL`] bytes or more go as long data too, so an execute
/// stays below the server's `max_allowed_packet` (16 MiB by default).
const INLINE_BUDGET: usize = 4 << 20;
/// See [`INLINE_BUDGET`].
const LONG_DATA_SMALL: usize = 8 << 10;
/// `ER_UNKNOWN_STMT_HANDLER`: the server does not know the statement id.
const UNKNOWN_STMT_HANDLER: u16 = 1243;
/// Bulk executes are split into packets of about this size.
const BULK_PACKET: usize = 1 << 20;

impl Connection {
    /// Prepares `sql` on the server (`COM_STMT_PREPARE`). The statement is not
    /// cached: close it with [`Connection::close_statement`] when done (or let
    /// the connection's end free it). The `exec*` methods also take SQL text
    /// directly and prepare it once through the statement cache.
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let op = crate::trace::Op::Prepare(sql);
        timed!(self, "prepare", traced(op), self.prepare_inner(sql))
    }

    async fn prepare_inner(&mut self, sql: &str) -> Result<Statement> {
        self.settle().await?;
        self.write_pending_closes()?;
        {
            let (framer, out) = self.chan.encoder()?;
            write_prepare(framer, out, sql.as_bytes())?;
        }
        // Kept in the session, not here: abandoned midway, the rest of the
        // reply is read before the next command and the statement closed.
        self.session.expect(
            Reply::Prepare {
                machine: PrepareMachine::new(self.capabilities),
                id: None,
            },
            Stake::Nothing,
        );
        let mut id = 0;
        let mut params = Vec::new();
        let mut columns = Vec::new();
        loop {
            let p = self.chan.read_packet().await?;
            let Some(Owed {
                reply: Reply::Prepare { machine, id: known },
                ..
            }) = self.session.front()
            else {
                return Err(Error::usage("no prepare is waiting for a response"));
            };
            let event = match machine.on_packet(&self.chan.buf()[p.clone()]) {
                Ok(ev) => ev,
                Err(e) => return Err(self.protocol_error(e)),
            };
            let done = machine.is_done();
            match event {
                PrepareEvent::Ok(ok) => {
                    id = ok.statement_id;
                    *known = Some(id);
                    params.reserve_exact(ok.params.into());
                    columns.reserve_exact(ok.columns.into());
                }
                PrepareEvent::Err(e) => {
                    let e = ServerError::from_packet(&e);
                    self.reply_finished(false);
                    return Err(Error::server(ErrorKind::Server, e));
                }
                PrepareEvent::Param(def) => params.push(Column::new(self.chan.take_packet(p), def)),
                PrepareEvent::Column(def) => {
                    columns.push(Column::new(self.chan.take_packet(p), def))
                }
                PrepareEvent::Eof => {}
            }
            if done {
                self.reply_finished(true);
                break;
            }
        }
        let columns: Arc<[Column]> = Arc::from(columns);
        Ok(Statement(Arc::new(Inner {
            id,
            owner: self.stmts.owner,
            params: Arc::from(params),
            last_columns: std::sync::Mutex::new(columns.clone()),
            columns,
            sql: sql.into(),
        })))
    }

    /// Closes a prepared statement on the server (`COM_STMT_CLOSE`) and drops
    /// it from the statement cache.
    pub async fn close_statement(&mut self, stmt: &Statement) -> Result<()> {
        self.check_owner(stmt)?;
        self.stmts.remove_id(stmt.id());
        let op = crate::trace::Op::CloseStatement(stmt.sql());
        timed!(self, "closing a statement", traced(op), async {
            self.settle().await?;
            self.write_pending_closes()?;
            let (framer, out) = self.chan.encoder()?;
            write_close(framer, out, stmt.id())?;
            self.chan.flush().await
        })
    }

    /// Resets a prepared statement on the server (`COM_STMT_RESET`): discards
    /// long data sent for it and closes a cursor it may have open.
    pub async fn reset_statement(&mut self, stmt: &Statement) -> Result<()> {
        self.check_owner(stmt)?;
        let op = crate::trace::Op::ResetStatement(stmt.sql());
        timed!(self, "resetting a statement", traced(op), async {
            self.settle().await?;
            self.write_pending_closes()?;
            self.reset_inner(stmt.id()).await?;
            self.session.long_data_consumed();
            Ok(())
        })
    }

    pub(super) async fn reset_inner(&mut self, id: u32) -> Result<()> {
        {
            let (framer, out) = self.chan.encoder()?;
            write_reset(framer, out, id)?;
        }
        let machine = self.result_machine();
        self.session
            .expect(Reply::result(machine, None), Stake::Nothing);
        match self.read_result_start().await? {
            QueryResult::Done(_) => Ok(()),
            QueryResult::Rows(_) => {
                Err(self.protocol_error(crate::proto::ProtoError::Unexpected {
                    expected: "OK after COM_STMT_RESET",
                    first_byte: None,
                }))
            }
        }
    }

    /// Executes a statement with parameters and reads the start of its
    /// response, like [`Connection::cmd_query`] for the binary protocol: the
    /// result's columns (read the rows with [`Connection::get_rows`],
    /// [`Connection::get_row`] or [`Connection::next_row`]) or the outcome.
    ///
    /// `stmt` is SQL text (prepared once and kept in the statement cache) or a
    /// [`Statement`]; `params` a tuple, array, slice or [`params!`](macro@crate::params).
    pub async fn cmd_execute(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
    ) -> Result<QueryResult> {
        let op = crate::trace::Op::execute(&stmt);
        timed!(
            self,
            "the statement",
            traced(op),
            self.exec_start(&stmt, &params)
        )
    }

    /// Executes a statement and returns all its rows (empty for statements
    /// without a result set).
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let rows = cnx.exec("SELECT id, name FROM users WHERE age > ?", (30,)).await?;
    /// for row in &rows {
    ///     println!("{} {}", row.get::<u64>(0)?, row.get::<&str>(1)?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn exec(&mut self, stmt: impl AsStatement, params: impl Params) -> Result<Vec<Row>> {
        let op = crate::trace::Op::execute(&stmt);
        timed!(self, "the statement", traced(op), async {
            match self.exec_start(&stmt, &params).await? {
                QueryResult::Done(_) => {
                    self.consume(true).await?;
                    Ok(Vec::new())
                }
                QueryResult::Rows(_) => {
                    let mut rows = Vec::new();
                    while let Some(r) = self.read_row().await? {
                        rows.push(r);
                    }
                    self.consume(true).await?;
                    Ok(rows)
                }
            }
        })
    }

    /// Executes a statement and returns its first row, discarding the others.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let row = cnx.exec_first("SELECT name FROM users WHERE id = ?", (7,)).await?;
    /// let name: Option<String> = row.map(|r| r.get(0)).transpose()?;
    /// # Ok(()) }
    /// ```
    pub async fn exec_first(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
    ) -> Result<Option<Row>> {
        let op = crate::trace::Op::execute(&stmt);
        timed!(self, "the statement", traced(op), async {
            let first = match self.exec_start(&stmt, &params).await? {
                QueryResult::Done(_) => None,
                QueryResult::Rows(_) => self.read_row().await?,
            };
            self.consume(true).await?;
            Ok(first)
        })
    }

    /// Executes a statement, discards any rows and returns its outcome
    /// (affected rows, last insert id, warnings).
    pub async fn exec_drop(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
    ) -> Result<Outcome> {
        let op = crate::trace::Op::execute(&stmt);
        timed!(self, "the statement", traced_outcome(op), async {
            let done = match self.exec_start(&stmt, &params).await? {
                QueryResult::Done(o) => Some(o),
                QueryResult::Rows(_) => None,
            };
            self.consume(true).await?;
            Ok(done.unwrap_or_else(|| self.last.clone()))
        })
    }

    /// Executes `sql` with `:name` placeholders as a prepared statement:
    /// the names are rewritten to `?` (outside literals and comments) and
    /// the values sent in that order, so a name may appear more than once.
    /// Every placeholder needs a value and every value a placeholder.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// use mysql_uring::named_params;
    /// let rows = cnx
    ///     .exec_named(
    ///         "SELECT id FROM users WHERE name = :name OR nick = :name AND age > :age",
    ///         named_params! { "name" => "ada", "age" => 30 },
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn exec_named(
        &mut self,
        sql: &str,
        params: &[(&str, &dyn ToValue)],
    ) -> Result<Vec<Row>> {
        let (sql, values) = self.bind_named(sql, params)?;
        self.exec(sql.as_str(), values).await
    }

    /// Like [`Connection::exec_named`], discarding rows; returns the outcome.
    pub async fn exec_drop_named(
        &mut self,
        sql: &str,
        params: &[(&str, &dyn ToValue)],
    ) -> Result<Outcome> {
        let (sql, values) = self.bind_named(sql, params)?;
        self.exec_drop(sql.as_str(), values).await
    }

    /// The `?` form of `sql` and its values in placeholder order.
    fn bind_named<'p>(
        &self,
        sql: &str,
        params: &'p [(&str, &'p dyn ToValue)],
    ) -> Result<(String, Vec<&'p dyn ToValue>)> {
        let (rewritten, names) =
            crate::escape::rewrite_named(sql, self.quoting().no_backslash_escapes)
                .map_err(Error::usage)?;
        let mut values = Vec::with_capacity(names.len());
        for name in &names {
            match params.iter().find(|(n, _)| n == name) {
                Some((_, v)) => values.push(*v),
                None => {
                    return Err(Error::usage(format!(
                        "the statement uses :{name} but no value was given for it"
                    )));
                }
            }
        }
        if let Some((unused, _)) = params.iter().find(|(n, _)| !names.contains(n)) {
            return Err(Error::usage(format!(
                "a value was given for :{unused}, which the statement does not use"
            )));
        }
        Ok((rewritten, values))
    }

    /// Executes a statement once per parameter row and returns the combined
    /// outcome: the sum of affected rows, the first last-insert id, the sum of
    /// warnings.
    ///
    /// On MariaDB (with `MARIADB_CLIENT_STMT_BULK_OPERATIONS`) the rows go in
    /// `COM_STMT_BULK_EXECUTE` packets of about 1 MiB, one round trip each;
    /// elsewhere (or after [`set_bulk_execute(false)`](Connection::set_bulk_execute),
    /// or for a statement without parameters) one execute per row.
    /// Statements that return rows are refused by bulk execution.
    ///
    /// **When a row fails** (say a duplicate key at row 3 of 5), the server's
    /// error is returned, no later row runs, and the connection stays usable.
    /// Which earlier rows stay applied depends on the mode:
    ///
    /// - **bulk**: the server runs each packet as one statement. On a
    ///   transactional engine (InnoDB) the failing packet is rolled back as a
    ///   whole, so none of its rows stay, not even those before the failing
    ///   one (5 small rows: none); rows of packets sent before it stay.
    /// - **one execute per row**: every row before the failing one stays
    ///   (rows 1 and 2 of the example).
    /// - Non-transactional engines (MyISAM, Aria) keep the rows before the
    ///   failing one in both modes.
    ///
    /// The error does not say how many rows were applied. For all or
    /// nothing, run it in a transaction ([`Connection::begin`]) and roll
    /// back on error; `tests/it/parity.rs` checks each case against the server.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let rows = vec![(1, "ada"), (2, "bob")];
    /// let done = cnx.execute_many("INSERT INTO users (id, name) VALUES (?, ?)", &rows).await?;
    /// assert_eq!(done.affected_rows, 2);
    /// # Ok(()) }
    /// ```
    pub async fn execute_many<I>(&mut self, stmt: impl AsStatement, rows: I) -> Result<Outcome>
    where
        I: IntoIterator,
        I::Item: Params,
    {
        let op = crate::trace::Op::execute_many(&stmt);
        timed!(
            self,
            "execute_many",
            traced_outcome(op),
            self.execute_many_inner(&stmt, rows)
        )
    }

    /// The machine for a command's response on this connection.
    pub(super) fn result_machine(&self) -> ResultMachine {
        ResultMachine::new(self.capabilities).with_cache_metadata(self.cache_metadata())
    }

    /// True when MariaDB skips unchanged result metadata of executes.
    pub(super) fn cache_metadata(&self) -> bool {
        self.mariadb_caps & (crate::proto::consts::caps::MARIADB_CLIENT_CACHE_METADATA >> 32) as u32
            != 0
    }

    /// How many statements the statement cache holds.
    pub fn cached_statements(&self) -> usize {
        self.stmts.len()
    }

    /// Turns bulk execution off for this connection (`on = true` restores it
    /// only if the server offered it): [`Connection::execute_many`] then runs
    /// one execute per row.
    pub fn set_bulk_execute(&mut self, on: bool) {
        self.bulk_off = !on;
    }

    /// True when the server takes `COM_STMT_BULK_EXECUTE` (and it was not turned off).
    pub fn supports_bulk_execute(&self) -> bool {
        !self.bulk_off
            && self.mariadb_caps
                & (crate::proto::consts::caps::MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32) as u32
                != 0
    }

    async fn execute_many_inner<I>(&mut self, stmt: &impl AsStatement, rows: I) -> Result<Outcome>
    where
        I: IntoIterator,
        I::Item: Params,
    {
        let (stmt, temporary) = self.resolve(stmt).await?;
        let r = if self.supports_bulk_execute() && stmt.param_count() > 0 {
            self.bulk(&stmt, rows).await
        } else {
            let mut total = Outcome::default();
            let mut first = true;
            for p in rows {
                let o = match self.exec_on(&stmt, &p).await? {
                    QueryResult::Done(o) => o,
                    QueryResult::Rows(_) => {
                        self.consume(true).await?;
                        self.last.clone()
                    }
                };
                self.consume(true).await?;
                add(&mut total, &o, first);
                first = false;
            }
            Ok(total)
        };
        if temporary {
            self.stmts.to_close.push(stmt.id());
        }
        r
    }

    async fn bulk<I>(&mut self, stmt: &Statement, rows: I) -> Result<Outcome>
    where
        I: IntoIterator,
        I::Item: Params,
    {
        self.settle().await?;
        self.write_pending_closes()?;
        let n = stmt.param_count();
        let mut types: Vec<(u8, u8)> = Vec::with_capacity(n);
        let mut total = Outcome::default();
        let mut first = true;
        // Where the open bulk packet starts in the write buffer, if one is open.
        let mut open: Option<usize> = None;
        for p in rows {
            if let Err(e) = self.check_params(stmt, &p) {
                if let Some(start) = open {
                    self.chan.encoder()?.1.truncate(start);
                }
                return Err(e);
            }
            let fits = |types: &[(u8, u8)]| {
                (0..n).all(|i| {
                    let v = p.value(i);
                    v == ValueRef::Null || v.param_type() == types[i]
                })
            };
            if let Some(start) = open {
                let len = self.chan.encoder()?.1.len() - start;
                if len >= BULK_PACKET || !fits(&types) {
                    open = None;
                    self.bulk_send(start, &mut total, &mut first).await?;
                }
            }
            let (framer, out) = self.chan.encoder()?;
            if open.is_none() {
                types.clear();
                types.extend((0..n).map(|i| p.value(i).param_type()));
                let start = begin_bulk(framer, out, stmt.id(), types.iter().copied());
                open = Some(start);
            }
            put_bulk_row(out, (0..n).map(|i| p.value(i)));
        }
        if let Some(start) = open {
            self.bulk_send(start, &mut total, &mut first).await?;
        }
        Ok(total)
    }

    /// Finishes the bulk packet begun at `start`, sends it and adds its outcome.
    async fn bulk_send(
        &mut self,
        start: usize,
        total: &mut Outcome,
        first: &mut bool,
    ) -> Result<()> {
        {
            let (framer, out) = self.chan.encoder()?;
            framer.finish(out, start)?;
        }
        self.last = Outcome::default();
        let machine = self.result_machine();
        self.session
            .expect(Reply::result(machine, None), Stake::Statement);
        match self.read_result_start().await? {
            QueryResult::Done(o) => {
                add(total, &o, *first);
                *first = false;
                Ok(())
            }
            QueryResult::Rows(_) => {
                self.consume(false).await?;
                Err(Error::usage(
                    "execute_many cannot run a statement that returns rows",
                ))
            }
        }
    }

    /// Looks up or prepares the statement, then executes it.
    ///
    /// A cached statement the server no longer knows (error 1243, e.g. after
    /// a session reset) is dropped from the cache, prepared again and run
    /// once more: nothing ran the first time.
    pub(crate) async fn exec_start(
        &mut self,
        arg: &impl AsStatement,
        params: &impl Params,
    ) -> Result<QueryResult> {
        let (stmt, temporary) = self.resolve(arg).await?;
        let r = self.exec_on(&stmt, params).await;
        if temporary {
            // Closed before the next statement command, once this result is read.
            self.stmts.to_close.push(stmt.id());
        }
        match r {
            Err(e)
                if e.code() == Some(UNKNOWN_STMT_HANDLER)
                    && !temporary
                    && matches!(arg.as_statement(), StatementRef::Sql(_)) =>
            {
                self.stmts.remove_id(stmt.id());
                let (stmt, temporary) = self.resolve(arg).await?;
                let r = self.exec_on(&stmt, params).await;
                if temporary {
                    self.stmts.to_close.push(stmt.id());
                }
                r
            }
            r => r,
        }
    }

    /// The statement to run, and whether it must be closed after this use
    /// (SQL text with the cache disabled).
    pub(super) async fn resolve(&mut self, stmt: &impl AsStatement) -> Result<(Statement, bool)> {
        match stmt.as_statement() {
            StatementRef::Prepared(s) => {
                self.check_owner(s)?;
                Ok((s.clone(), false))
            }
            StatementRef::Sql(sql) => {
                if let Some(s) = self.stmts.get(sql) {
                    return Ok((s.clone(), false));
                }
                let op = crate::trace::Op::Prepare(sql);
                let s = traced!(child self, op, self.prepare_inner(sql).await)?;
                if self.stmts.capacity() == 0 {
                    return Ok((s, true));
                }
                if let Some(old) = self.stmts.insert(s.clone()) {
                    self.stmts.close_later(old);
                }
                Ok((s, false))
            }
        }
    }

    fn check_owner(&self, stmt: &Statement) -> Result<()> {
        if stmt.0.owner == self.stmts.owner {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "statement {} (`{}`) was prepared on another connection, or before change_user \
                 freed the session's statements",
                stmt.id(),
                short(stmt.sql())
            )))
        }
    }

    pub(super) fn check_params(&self, stmt: &Statement, params: &impl Params) -> Result<()> {
        if params.len() == stmt.param_count() {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "the statement `{}` takes {} parameters, {} were given",
                short(stmt.sql()),
                stmt.param_count(),
                params.len()
            )))
        }
    }

    /// Queues `COM_STMT_CLOSE` for statements evicted from the cache (no
    /// reply; they go out with the next command).
    pub(super) fn write_pending_closes(&mut self) -> Result<()> {
        self.stmts.release_unheld();
        if self.stmts.to_close.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.stmts.to_close);
        let (framer, out) = self.chan.encoder()?;
        for &id in &ids {
            write_close(framer, out, id)?;
        }
        let mut ids = ids;
        ids.clear();
        self.stmts.to_close = ids;
        Ok(())
    }

    /// The size from which string and byte parameters go as long data: 1 MiB,
    /// less when the inline ones would add up to more than [`INLINE_BUDGET`]
    /// or when `max_packet_size` is small.
    pub(super) fn long_data_threshold(&mut self, params: &impl Params) -> usize {
        let inline: usize = (0..params.len())
            .filter_map(|i| params.value(i).as_bytes().map(<[u8]>::len))
            .filter(|&len| len < LONG_DATA)
            .sum();
        let t = if inline > INLINE_BUDGET {
            LONG_DATA_SMALL
        } else {
            LONG_DATA
        };
        t.min(self.chan.framer().max_packet() / 4).max(1)
    }

    /// Sends `COM_STMT_EXECUTE` (after any long data) and reads up to the rows.
    async fn exec_on(&mut self, stmt: &Statement, params: &impl Params) -> Result<QueryResult> {
        self.settle().await?;
        self.check_params(stmt, params)?;
        self.last = Outcome::default();
        self.write_pending_closes()?;
        let n = params.len();
        let long = self.long_data_threshold(params);
        let mut sent_long = false;
        for i in 0..n {
            let v = params.value(i);
            if !v.is_long(long) {
                continue;
            }
            // Abandoned before the execute goes out, the server would keep
            // this data for the statement's next execute: reset it first.
            self.session.long_data_sent(stmt.id());
            let bytes = v.as_bytes().unwrap_or(&[]);
            let chunk = (self.chan.framer().max_packet() / 2).clamp(1, LONG_DATA);
            for chunk in bytes.chunks(chunk) {
                let (framer, out) = self.chan.encoder()?;
                write_long_data(framer, out, stmt.id(), i as u16, chunk)?;
                self.chan.flush().await?;
                sent_long = true;
            }
        }
        let written = {
            let (framer, out) = self.chan.encoder()?;
            write_execute(framer, out, stmt.id(), n, |i| params.value(i), long)
        };
        if written.is_ok() {
            // The execute consumes the long data (it goes out with the read below).
            self.session.long_data_consumed();
        }
        if let Err(e) = written {
            if sent_long {
                // The server keeps long data until an execute or a reset: a
                // later execute must not pick up this one's values.
                self.reset_inner(stmt.id()).await?;
                self.session.long_data_consumed();
            }
            return Err(e.into());
        }
        let machine =
            ResultMachine::binary(self.capabilities).with_cache_metadata(self.cache_metadata());
        self.session
            .expect(Reply::result(machine, Some(stmt.clone())), Stake::Statement);
        self.read_result_start().await
    }

    /// Reads the rest of a prepare's reply nobody waits for; its statement
    /// (if the server made one) is closed with the next statement command.
    pub(super) async fn read_prepare_rest(&mut self) -> Result<()> {
        loop {
            let Some(Owed {
                reply: Reply::Prepare { machine, id },
                ..
            }) = self.session.front()
            else {
                return Ok(());
            };
            if machine.is_done() {
                if let Some(id) = id.take() {
                    self.stmts.to_close.push(id);
                }
                self.reply_finished(true);
                return Ok(());
            }
            let p = self.chan.read_packet().await?;
            let Some(Owed {
                reply: Reply::Prepare { machine, id },
                ..
            }) = self.session.front()
            else {
                return Ok(());
            };
            match machine.on_packet(&self.chan.buf()[p]) {
                Ok(PrepareEvent::Ok(ok)) => *id = Some(ok.statement_id),
                Ok(PrepareEvent::Err(_)) => {
                    self.reply_finished(false);
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => return Err(self.protocol_error(e)),
            }
        }
    }
}

fn add(total: &mut Outcome, o: &Outcome, first: bool) {
    total.affected_rows += o.affected_rows;
    total.warnings = total.warnings.saturating_add(o.warnings);
    total.status = o.status;
    if first {
        total.last_insert_id = o.last_insert_id;
    }
    if !o.info.is_empty() {
        total.info = o.info.clone();
    }
}

fn short(sql: &str) -> &str {
    match sql.char_indices().nth(60) {
        Some((i, _)) => &sql[..i],
        None => sql,
    }
}
