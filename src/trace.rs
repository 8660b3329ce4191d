//! Spans and events for the `tracing` crate (feature `tracing`).
//!
//! Everything the rest of the crate calls for tracing lives here. Without
//! the feature the types are zero-sized, the functions empty and inlined,
//! and the macros expand to the plain code they wrap: nothing is left to
//! run. With it, a command first checks the current maximum level (one
//! atomic load); only when a subscriber may want the span is it made, and
//! only when one does want it are the statement (truncated by slicing, no
//! copy), the address and the rest looked at. A command nobody traces runs
//! exactly the code it runs without the feature; a traced one runs in a
//! future of its own on the heap, entering its span at each poll.
//!
//! What is recorded (see the README's "Tracing" section):
//! - a span per command (target `mysql_uring::command`, level INFO), named
//!   after the call: `mysql.query`, `mysql.execute`, `mysql.prepare`,
//!   `mysql.execute_many`, `mysql.pipeline`, `mysql.load_data`,
//!   `mysql.ping`, `mysql.reset`, `mysql.select_db`, `mysql.change_user`,
//!   `mysql.close_statement`, `mysql.reset_statement`. Fields after
//!   OpenTelemetry's database conventions: `db.system`, `db.namespace`,
//!   `db.statement` (the SQL text as given, at most [`STATEMENT_MAX`]
//!   bytes), `server.address`, `server.port`; on completion
//!   `db.response.returned_rows`, `mysql.affected_rows`,
//!   `mysql.last_insert_id`, `mysql.warnings`, or `error.type`,
//!   `db.response.status_code` and `mysql.sqlstate` with
//!   `otel.status_code = "ERROR"`.
//! - `mysql.connect` (target `mysql_uring::connect`): address, user, and
//!   once connected the server version, connection id, auth plugin, TLS
//!   and compression; a failure is also a WARN event with the error.
//! - `mysql.pool.wait` (target `mysql_uring::pool`) when `Pool::get` has to
//!   wait, with the time waited; DEBUG events when the pool opens, settles
//!   or closes a connection (with the reason), WARN when it cannot open one
//!   or a wait times out.
//!
//! Never recorded: parameter values (prepared statements send them apart
//! from the SQL; `query_with` records its `?` template, not the
//! interpolated text), passwords, and server error messages (they can quote
//! values, e.g. a duplicate key).
//!
//! A command made of other commands (`query` runs `cmd_query`) is one span:
//! while a command's span is being polled, the commands it runs make none
//! (except a prepare on a statement-cache miss, a child span of its execute).

use crate::statement::{AsStatement, StatementRef};

#[cfg(feature = "tracing")]
pub(crate) use on::*;

#[cfg(not(feature = "tracing"))]
pub(crate) use off::*;

/// The most bytes of a statement's text recorded in `db.statement` (cut on
/// a character boundary).
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub const STATEMENT_MAX: usize = 256;

/// `sql` cut to at most [`STATEMENT_MAX`] bytes, on a character boundary.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn truncate(sql: &str) -> &str {
    if sql.len() <= STATEMENT_MAX {
        return sql;
    }
    let mut end = STATEMENT_MAX;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    &sql[..end]
}

/// What a command span describes.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) enum Op<'a> {
    Query(&'a str),
    Execute(&'a str),
    Prepare(&'a str),
    ExecuteMany(&'a str),
    Pipeline(&'a [String]),
    LoadData(&'a str),
    ChangeUser {
        user: &'a str,
        database: Option<&'a str>,
    },
    Ping,
    Reset,
    SelectDb(&'a str),
    CloseStatement(&'a str),
    ResetStatement(&'a str),
}

impl<'a> Op<'a> {
    /// An execute of SQL text or of a prepared statement (its SQL).
    #[inline(always)]
    pub(crate) fn execute(stmt: &'a impl AsStatement) -> Op<'a> {
        Op::Execute(sql_of(stmt))
    }

    /// `execute_many` of SQL text or of a prepared statement.
    #[inline(always)]
    pub(crate) fn execute_many(stmt: &'a impl AsStatement) -> Op<'a> {
        Op::ExecuteMany(sql_of(stmt))
    }
}

#[inline(always)]
fn sql_of(stmt: &impl AsStatement) -> &str {
    match stmt.as_statement() {
        StatementRef::Sql(sql) => sql,
        StatementRef::Prepared(s) => s.sql(),
    }
}

#[cfg(feature = "tracing")]
mod on {
    use std::cell::Cell;
    use std::future::Future;
    use std::time::Instant;

    pub(crate) use tracing::Span;
    use tracing::field::Empty;

    use super::{Op, truncate};
    use crate::conn::{Connection, Outcome};
    use crate::error::{Error, Result};
    use crate::opts::Opts;

    /// Target of the command spans.
    pub(crate) const COMMAND: &str = "mysql_uring::command";
    /// Target of the connect span and its events.
    pub(crate) const CONNECT: &str = "mysql_uring::connect";
    /// Target of the pool's span and events.
    pub(crate) const POOL: &str = "mysql_uring::pool";

    /// Rows read on a connection, to report how many a command returned.
    #[derive(Debug, Default)]
    pub(crate) struct RowCount(u64);

    impl RowCount {
        #[inline(always)]
        pub(crate) fn bump(&mut self) {
            self.0 = self.0.wrapping_add(1);
        }

        #[inline(always)]
        pub(crate) fn get(&self) -> u64 {
            self.0
        }
    }

    thread_local! {
        /// How many command spans are being polled on this thread: the
        /// commands they run make no span of their own.
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    struct Nested;

    impl Nested {
        fn enter() -> Nested {
            DEPTH.with(|d| d.set(d.get() + 1));
            Nested
        }
    }

    impl Drop for Nested {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get() - 1));
        }
    }

    fn nested() -> bool {
        DEPTH.with(|d| d.get() > 0)
    }

    /// `host` or the socket path, and the port (none for a socket).
    fn server(opts: &Opts) -> (&str, Option<u16>) {
        match &opts.socket {
            Some(p) => (p.to_str().unwrap_or("(socket)"), None),
            None => (opts.host.as_str(), Some(opts.port)),
        }
    }

    fn system(mariadb: bool) -> &'static str {
        if mariadb { "mariadb" } else { "mysql" }
    }

    /// Whether any subscriber may want a command span at all (INFO, under
    /// the static and the current maximum level): one atomic load, inlined,
    /// before anything else is looked at.
    #[inline(always)]
    pub(crate) fn may_trace() -> bool {
        use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
        tracing::Level::INFO <= STATIC_MAX_LEVEL && tracing::Level::INFO <= LevelFilter::current()
    }

    /// `span`, unless it is disabled.
    #[inline(always)]
    pub(crate) fn enabled(span: Span) -> Option<Span> {
        (!span.is_disabled()).then_some(span)
    }

    /// A traced command's future, on the heap (see `traced!`).
    #[cold]
    #[inline(never)]
    pub(crate) fn boxed<F: Future>(fut: F) -> std::pin::Pin<Box<F>> {
        Box::pin(fut)
    }

    /// The span of a command on a connection, or a disabled one (nobody
    /// listens, or the command runs inside another command's span).
    pub(crate) fn command(op: Op<'_>, mariadb: bool, opts: &Opts, connection_id: u32) -> Span {
        if nested() {
            return Span::none();
        }
        child_command(op, mariadb, opts, connection_id)
    }

    /// The span of a command run by another command (a child of its span).
    pub(crate) fn child_command(
        op: Op<'_>,
        mariadb: bool,
        opts: &Opts,
        connection_id: u32,
    ) -> Span {
        // One callsite per name (span names are static). Field values are
        // only evaluated when a subscriber wants the span.
        macro_rules! span {
            ($name:literal, $statement:expr) => {
                span!($name, $statement, opts.database.as_deref())
            };
            ($name:literal, $statement:expr, $db:expr) => {
                tracing::info_span!(
                    target: COMMAND,
                    $name,
                    otel.kind = "client",
                    db.system = system(mariadb),
                    db.namespace = $db,
                    db.statement = $statement,
                    server.address = server(opts).0,
                    server.port = server(opts).1,
                    mysql.connection_id = connection_id,
                    db.user = Empty,
                    db.operation.batch.size = Empty,
                    db.response.returned_rows = Empty,
                    mysql.affected_rows = Empty,
                    mysql.last_insert_id = Empty,
                    mysql.warnings = Empty,
                    error.type = Empty,
                    db.response.status_code = Empty,
                    mysql.sqlstate = Empty,
                    otel.status_code = Empty,
                )
            };
        }
        let none: Option<&str> = None;
        match op {
            Op::Query(sql) => span!("mysql.query", truncate(sql)),
            Op::Execute(sql) => span!("mysql.execute", truncate(sql)),
            Op::Prepare(sql) => span!("mysql.prepare", truncate(sql)),
            Op::ExecuteMany(sql) => span!("mysql.execute_many", truncate(sql)),
            Op::LoadData(sql) => span!("mysql.load_data", truncate(sql)),
            Op::CloseStatement(sql) => span!("mysql.close_statement", truncate(sql)),
            Op::ResetStatement(sql) => span!("mysql.reset_statement", truncate(sql)),
            Op::Pipeline(sqls) => {
                let span = span!("mysql.pipeline", tracing::field::display(Joined(sqls)));
                span.record("db.operation.batch.size", sqls.len());
                span
            }
            Op::Ping => span!("mysql.ping", none),
            Op::Reset => span!("mysql.reset", none),
            Op::SelectDb(db) => span!("mysql.select_db", none, Some(db)),
            Op::ChangeUser { user, database } => {
                let span = span!("mysql.change_user", none, database);
                span.record("db.user", user);
                span
            }
        }
    }

    /// A pipeline's statements joined with `"; "`, cut like one statement.
    struct Joined<'a>(&'a [String]);

    impl std::fmt::Display for Joined<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let mut left = super::STATEMENT_MAX;
            for (i, sql) in self.0.iter().enumerate() {
                let sep = if i == 0 { "" } else { "; " };
                if left < sep.len() {
                    break;
                }
                f.write_str(sep)?;
                left -= sep.len();
                let mut end = sql.len().min(left);
                while !sql.is_char_boundary(end) {
                    end -= 1;
                }
                f.write_str(&sql[..end])?;
                left -= end;
                if end < sql.len() {
                    break;
                }
            }
            Ok(())
        }
    }

    /// A future polled inside a span (entered for each poll). A command's
    /// future also marks the commands it runs as nested: they make no span
    /// of their own.
    ///
    /// A plain struct, not an `async fn`: a command's future is large, and
    /// this one holds it once and moves it no more than awaiting it does.
    pub(crate) struct Within<'a, F> {
        span: &'a Span,
        command: bool,
        fut: F,
    }

    impl<'a, F: Future> Within<'a, F> {
        /// `fut` as a command, inside `span`.
        pub(crate) fn command(span: &'a Span, fut: F) -> Self {
            Within {
                span,
                command: true,
                fut,
            }
        }

        /// `fut` inside `span`; the commands it runs get spans of their
        /// own, as its children.
        fn inside(span: &'a Span, fut: F) -> Self {
            Within {
                span,
                command: false,
                fut,
            }
        }
    }

    impl<F: Future> Future for Within<'_, F> {
        type Output = F::Output;

        fn poll(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<F::Output> {
            // SAFETY: `fut` is structurally pinned: it is never moved out of
            // `self` or otherwise moved, `Within` has no `Drop`, and it is
            // `Unpin` only when `F` is.
            let this = unsafe { self.get_unchecked_mut() };
            let _entered = this.span.enter();
            let _nested = this.command.then(Nested::enter);
            // SAFETY: see above; `this.fut` stays where it is.
            unsafe { std::pin::Pin::new_unchecked(&mut this.fut) }.poll(cx)
        }
    }

    /// Runs `fut` with the commands in it making no span, even when the
    /// caller's own span is disabled: `query_with` runs `query` on text
    /// that holds parameter values, which must never be recorded.
    pub(crate) async fn quiet<F: Future>(fut: F) -> F::Output {
        let none = Span::none();
        Within::command(&none, fut).await
    }

    /// Records how a command ended: its outcome and the rows it read, or
    /// its error (kind, code, SQLSTATE; never the message, which can quote
    /// values).
    pub(crate) fn finish<T>(span: &Span, r: &Result<T>, outcome: &Outcome, rows: u64) {
        match r {
            Ok(_) => {
                span.record("db.response.returned_rows", rows);
                span.record("mysql.affected_rows", outcome.affected_rows);
                if outcome.last_insert_id != 0 {
                    span.record("mysql.last_insert_id", outcome.last_insert_id);
                }
                span.record("mysql.warnings", outcome.warnings);
            }
            Err(e) => record_error(span, e),
        }
    }

    /// The outcome to record: the command's own when it returns one.
    pub(crate) fn outcome_of<'a>(r: &'a Result<Outcome>, last: &'a Outcome) -> &'a Outcome {
        r.as_ref().unwrap_or(last)
    }

    fn record_error(span: &Span, e: &Error) {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", tracing::field::debug(e.kind()));
        if let Some(code) = e.code() {
            span.record("db.response.status_code", code);
        }
        if let Some(se) = e.server_error() {
            span.record("mysql.sqlstate", se.sql_state.as_str());
        }
    }

    /// Connects inside a `mysql.connect` span; a failure is also a WARN event.
    pub(crate) async fn connect<F>(opts: &Opts, fut: F) -> Result<Connection>
    where
        F: Future<Output = Result<Connection>>,
    {
        let span = tracing::info_span!(
            target: CONNECT,
            "mysql.connect",
            otel.kind = "client",
            server.address = server(opts).0,
            server.port = server(opts).1,
            db.user = opts.user.as_str(),
            db.namespace = opts.database.as_deref(),
            db.system = Empty,
            mysql.server_version = Empty,
            mysql.connection_id = Empty,
            mysql.auth_plugin = Empty,
            mysql.tls = Empty,
            mysql.compression = Empty,
            error.type = Empty,
            db.response.status_code = Empty,
            mysql.sqlstate = Empty,
            otel.status_code = Empty,
        );
        let r = Within::inside(&span, fut).await;
        match &r {
            Ok(c) if !span.is_disabled() => {
                span.record("db.system", system(c.is_mariadb()));
                span.record("mysql.server_version", c.server_version());
                span.record("mysql.connection_id", c.connection_id());
                span.record("mysql.auth_plugin", c.auth_plugin());
                span.record("mysql.tls", c.is_tls());
                span.record("mysql.compression", c.is_compressed());
            }
            Ok(_) => {}
            Err(e) => {
                record_error(&span, e);
                let (address, port) = server(opts);
                tracing::warn!(
                    target: CONNECT,
                    parent: &span,
                    {
                        server.address = address,
                        server.port = port,
                        db.user = opts.user.as_str(),
                        error.type = ?e.kind(),
                        error = %e,
                    },
                    "connecting failed"
                );
            }
        }
        r
    }

    /// The caller's current span, taken along with work sent to a core:
    /// the spans made there are its children.
    pub(crate) struct Caller(Span);

    pub(crate) fn caller() -> Caller {
        Caller(Span::current())
    }

    impl Caller {
        /// Runs `fut` (on the core) inside the caller's span.
        pub(crate) fn run<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
            tracing::Instrument::instrument(fut, self.0)
        }
    }

    /// `Pool::get` waits for capacity: a `mysql.pool.wait` span over the
    /// wait, and an event with the time waited.
    pub(crate) async fn pool_wait<F, T>(max: usize, waiting: usize, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let span = tracing::info_span!(
            target: POOL,
            "mysql.pool.wait",
            db.client.connection.pool.max = max,
            mysql.pool.waiting = waiting,
            mysql.pool.wait_us = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        let t0 = Instant::now();
        let r = Within::inside(&span, fut).await;
        let waited = t0.elapsed();
        let us = waited.as_micros() as u64;
        span.record("mysql.pool.wait_us", us);
        match &r {
            Ok(_) => tracing::debug!(
                target: POOL,
                parent: &span,
                { mysql.pool.wait_us = us },
                "waited for a pooled connection"
            ),
            Err(e) => {
                span.record("error.type", tracing::field::debug(e.kind()));
                span.record("otel.status_code", "ERROR");
                tracing::warn!(
                    target: POOL,
                    parent: &span,
                    {
                        mysql.pool.wait_us = us,
                        db.client.connection.pool.max = max,
                        error = %e,
                    },
                    "gave up waiting for a pooled connection"
                );
            }
        }
        r
    }

    /// The pool opened a connection.
    pub(crate) fn pool_opened(c: &Connection) {
        tracing::debug!(
            target: POOL,
            { mysql.connection_id = c.connection_id() },
            "pool opened a connection"
        );
    }

    /// The pool could not open a connection.
    pub(crate) fn pool_connect_failed(e: &Error) {
        tracing::warn!(
            target: POOL,
            { error.type = ?e.kind(), error = %e },
            "pool could not open a connection"
        );
    }

    /// The pool closed (or dropped) a connection, and why.
    pub(crate) fn pool_closed(c: &Connection, reason: &'static str) {
        tracing::debug!(
            target: POOL,
            { mysql.connection_id = c.connection_id(), reason },
            "pool closed a connection"
        );
    }

    /// A returned connection was settled (drained, rolled back, reset) for reuse.
    pub(crate) fn pool_cleaned(c: &Connection) {
        tracing::debug!(
            target: POOL,
            { mysql.connection_id = c.connection_id() },
            "pool settled a returned connection"
        );
    }

    /// A connection was taken out of the pool for good.
    pub(crate) fn pool_detached(c: &Connection) {
        tracing::debug!(
            target: POOL,
            { mysql.connection_id = c.connection_id() },
            "connection detached from its pool"
        );
    }

    /// Runs a command in its span and records how it ended.
    /// `traced!(conn, op, body)`: `body` is the command's code (it may
    /// await and use `?`), run inside the span; `traced!(conn, op, body,
    /// outcome)` when its output is the `Outcome` to record (else the
    /// connection's last outcome is).
    /// `traced!(child conn, op, body)`: a command run by another command
    /// that still gets its own span, as a child (a prepare on a statement
    /// cache miss).
    macro_rules! traced {
        (@ $make:ident, $conn:ident, $op:expr, $body:expr, $outcome:expr) => {{
            let span = if $crate::trace::may_trace() {
                $crate::trace::enabled($crate::trace::$make(
                    $op,
                    $conn.mariadb,
                    &$conn.opts,
                    $conn.connection_id,
                ))
            } else {
                None
            };
            match span {
                // Nobody listens: the command exactly as without the feature.
                None => $body,
                // Someone does: the command in its span, in a future of its
                // own on the heap, so that the one above stays as small as
                // without the feature.
                Some(span) => {
                    $crate::trace::boxed(async {
                        let rows = $conn.trace_rows.get();
                        let r = $crate::trace::Within::command(&span, async { $body }).await;
                        let read = $conn.trace_rows.get().wrapping_sub(rows);
                        $crate::trace::finish(&span, &r, ($outcome)(&r, &$conn.last), read);
                        r
                    })
                    .await
                }
            }
        }};
        (child $conn:ident, $op:expr, $body:expr) => {
            $crate::trace::traced!(@ child_command, $conn, $op, $body, |_r, last| last)
        };
        ($conn:ident, $op:expr, $body:expr) => {
            $crate::trace::traced!(@ command, $conn, $op, $body, |_r, last| last)
        };
        ($conn:ident, $op:expr, $body:expr, outcome) => {
            $crate::trace::traced!(@ command, $conn, $op, $body, $crate::trace::outcome_of)
        };
    }
    pub(crate) use traced;
}

#[cfg(not(feature = "tracing"))]
mod off {
    use std::future::Future;

    use crate::conn::Connection;
    use crate::error::{Error, Result};

    /// Zero-sized without the feature.
    #[derive(Debug, Default)]
    pub(crate) struct RowCount;

    impl RowCount {
        #[inline(always)]
        pub(crate) fn bump(&mut self) {}
    }

    #[inline(always)]
    pub(crate) fn connect<F>(_: &crate::opts::Opts, fut: F) -> F {
        fut
    }

    /// Zero-sized without the feature.
    pub(crate) struct Caller;

    #[inline(always)]
    pub(crate) fn caller() -> Caller {
        Caller
    }

    impl Caller {
        #[inline(always)]
        pub(crate) fn run<F: Future>(self, fut: F) -> F {
            fut
        }
    }

    #[inline(always)]
    pub(crate) fn pool_wait<F, T>(_: usize, _: usize, fut: F) -> F
    where
        F: Future<Output = Result<T>>,
    {
        fut
    }

    #[inline(always)]
    pub(crate) fn quiet<F: Future>(fut: F) -> F {
        fut
    }

    #[inline(always)]
    pub(crate) fn pool_opened(_: &Connection) {}

    #[inline(always)]
    pub(crate) fn pool_connect_failed(_: &Error) {}

    #[inline(always)]
    pub(crate) fn pool_closed(_: &Connection, _: &'static str) {}

    #[inline(always)]
    pub(crate) fn pool_cleaned(_: &Connection) {}

    #[inline(always)]
    pub(crate) fn pool_detached(_: &Connection) {}

    /// Without the feature: just the command's code.
    macro_rules! traced {
        (child $conn:ident, $op:expr, $body:expr) => {{
            let _ = $op;
            $body
        }};
        ($conn:ident, $op:expr, $body:expr $(, outcome)?) => {{
            let _ = $op;
            $body
        }};
    }
    pub(crate) use traced;
}
