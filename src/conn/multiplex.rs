//! Multiplexed executes: the prepared statements of several independent
//! calls written to the server together, their replies read in order
//! (what [`ClientBuilder::multiplex`](crate::ClientBuilder::multiplex)
//! turns on). The server runs them one after another as usual; what is
//! saved is its wait for each next command.

use super::{Connection, Outcome, QueryResult, StageOutput};
use crate::error::{Error, Result};
use crate::params::Params;
use crate::proto::result::ResultMachine;
use crate::proto::stmt::write_execute;
use crate::session::{Reply, Stake};
use crate::statement::Statement;
use crate::trace::traced;

/// The server's "unknown prepared statement" error: a cached statement the
/// server no longer has (the execute did not run).
const UNKNOWN_STMT_HANDLER: u16 = 1243;

/// String and byte parameters from this size, or more than [`INLINE`] in
/// all, would go as long data, which a multiplexed stage does not send:
/// such a stage runs on its own after the others.
const LONG: usize = 1 << 16;
const INLINE: usize = 1 << 20;

/// Where one stage of a multiplexed batch stands.
enum Stage {
    /// Not written yet.
    Waiting,
    /// Written: its reply is owed.
    Sent(Statement),
    /// Runs alone after the batch (long data, or a stale cached statement).
    Alone,
    /// Has its result.
    Done,
}

/// The stages' states and the caller's delivery: every stage is delivered
/// exactly once.
struct Batch<'d> {
    state: Vec<Stage>,
    deliver: &'d mut dyn FnMut(usize, Result<StageOutput>),
}

impl Batch<'_> {
    fn deliver(&mut self, i: usize, r: Result<StageOutput>) {
        if !matches!(self.state[i], Stage::Done) {
            self.state[i] = Stage::Done;
            (self.deliver)(i, r);
        }
    }
}

impl Connection {
    /// Runs each `(sql, params)` of `stages` as a prepared execute, writing
    /// every execute before reading the first reply. `deliver(i, result)` is
    /// called exactly once for every stage, as soon as its result is known:
    /// a stage's failure is its own (the server runs each command on its
    /// own), and a stage that was sent but whose reply never came (query
    /// timeout, lost connection) gets an error of unknown outcome.
    pub(crate) async fn exec_multiplexed<P: Params>(
        &mut self,
        stages: &[(&str, &P)],
        deliver: &mut dyn FnMut(usize, Result<StageOutput>),
    ) {
        let mut batch = Batch {
            state: stages.iter().map(|_| Stage::Waiting).collect(),
            deliver,
        };
        let r = timed!(
            self,
            "the multiplexed statements",
            self.multiplexed_inner(stages, &mut batch)
        );
        if let Err(e) = r {
            let address = self.opts.address();
            for i in 0..stages.len() {
                let mut one = e.duplicate();
                match batch.state[i] {
                    Stage::Done => continue,
                    // Sent: it may still have run.
                    Stage::Sent(_) if !one.is_commit_unknown() => {
                        one = one.outcome_unknown(&address);
                    }
                    // Not sent: nothing of it ran. The kind stays (a
                    // timeout is a timeout to its caller too).
                    Stage::Waiting | Stage::Alone => {
                        one = Error::new(
                            e.kind(),
                            format!(
                                "not sent (nothing of it ran): the multiplexed statements \
                                 before it on its connection ended first: {e}"
                            ),
                        );
                    }
                    _ => {}
                }
                batch.deliver(i, Err(one));
            }
        }
    }

    async fn multiplexed_inner<P: Params>(
        &mut self,
        stages: &[(&str, &P)],
        batch: &mut Batch<'_>,
    ) -> Result<()> {
        self.settle().await?;
        // 1. The statements, prepared where the cache has none. Statements
        // to close (evicted from the cache meanwhile, or not cached) are
        // closed with a later command, after these executes: a prepare
        // would otherwise close them first.
        let mut closes = std::mem::take(&mut self.stmts.to_close);
        let mut stmts: Vec<Option<Statement>> = Vec::with_capacity(stages.len());
        let mut failed = None;
        for (i, &(sql, params)) in stages.iter().enumerate() {
            let r = self.resolve(&sql).await;
            closes.append(&mut self.stmts.to_close);
            match r {
                Ok((stmt, temporary)) => {
                    if temporary {
                        closes.push(stmt.id());
                    }
                    match self.check_params(&stmt, params) {
                        Ok(()) => stmts.push(Some(stmt)),
                        Err(e) => {
                            batch.deliver(i, Err(e));
                            stmts.push(None);
                        }
                    }
                }
                Err(e) if self.chan.is_broken() => {
                    failed = Some(e);
                    break;
                }
                Err(e) => {
                    batch.deliver(i, Err(e));
                    stmts.push(None);
                }
            }
        }
        closes.append(&mut self.stmts.to_close);
        self.stmts.to_close = closes;
        if let Some(e) = failed {
            return Err(e);
        }
        // 2. Every execute that needs no long data, written in one go.
        {
            let (framer, out) = self.chan.encoder()?;
            for (i, stmt) in stmts.iter().enumerate() {
                let Some(stmt) = stmt else { continue };
                let params = stages[i].1;
                let n = params.len();
                let sizes = (0..n).filter_map(|k| params.value(k).as_bytes().map(<[u8]>::len));
                let (mut big, mut total) = (false, 0usize);
                for len in sizes {
                    big |= len >= LONG;
                    total += len;
                }
                if big || total > INLINE {
                    batch.state[i] = Stage::Alone;
                    continue;
                }
                let start = out.len();
                match write_execute(framer, out, stmt.id(), n, |k| params.value(k), usize::MAX) {
                    Ok(()) => batch.state[i] = Stage::Sent(stmt.clone()),
                    Err(e) => {
                        // This execute does not go out; the others do.
                        out.truncate(start);
                        framer.forget_starts_from(start);
                        batch.deliver(i, Err(e.into()));
                    }
                }
            }
        }
        for st in &batch.state {
            if let Stage::Sent(stmt) = st {
                let machine = ResultMachine::binary(self.capabilities)
                    .with_cache_metadata(self.cache_metadata());
                self.session
                    .expect(Reply::result(machine, Some(stmt.clone())), Stake::Statement);
            }
        }
        // 3. The replies, in order.
        for i in 0..stages.len() {
            let Stage::Sent(stmt) = &batch.state[i] else {
                continue;
            };
            let id = stmt.id();
            let seq = self.session.front_seq();
            let r = self.read_stage().await;
            let rest = match seq {
                Some(seq) => self.consume_reply(seq, true).await,
                None => Ok(()),
            };
            let r = match (r, rest) {
                (Ok(out), Ok(())) => Ok(out),
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            };
            if self.chan.is_broken() {
                // This reply and every later one are gone.
                return Err(r.err().unwrap_or_else(|| {
                    Error::broken("the connection was lost during multiplexed statements")
                }));
            }
            match r {
                Err(e) if e.code() == Some(UNKNOWN_STMT_HANDLER) => {
                    // A cached statement the server forgot: it did not run.
                    self.stmts.remove_id(id);
                    batch.state[i] = Stage::Alone;
                }
                r => batch.deliver(i, r),
            }
        }
        // 4. What could not share the round trip.
        for (i, &(sql, params)) in stages.iter().enumerate() {
            if !matches!(batch.state[i], Stage::Alone) {
                continue;
            }
            let r = self.exec_alone(sql, params).await;
            if self.chan.is_broken() {
                return Err(r.err().unwrap_or_else(|| {
                    Error::broken("the connection was lost during multiplexed statements")
                }));
            }
            batch.deliver(i, r);
        }
        Ok(())
    }

    /// One prepared execute run alone: its rows and outcome (a multiplexed
    /// call with nothing to share its round trip with).
    pub(crate) async fn exec_stage<P: Params>(
        &mut self,
        sql: &str,
        params: &P,
    ) -> Result<StageOutput> {
        let op = crate::trace::Op::execute(&sql);
        timed!(
            self,
            "the statement",
            traced(op),
            self.exec_alone(sql, params)
        )
    }

    /// One stage's reply: its rows and outcome.
    async fn read_stage(&mut self) -> Result<StageOutput> {
        self.last = Outcome::default();
        match self.read_result_start().await? {
            QueryResult::Done(outcome) => Ok(StageOutput {
                rows: Vec::new(),
                outcome,
            }),
            QueryResult::Rows(_) => {
                let mut rows = Vec::new();
                while let Some(r) = self.read_row().await? {
                    rows.push(r);
                }
                Ok(StageOutput {
                    rows,
                    outcome: self.last.clone(),
                })
            }
        }
    }

    /// A stage run on its own, as [`Connection::exec`] runs it.
    async fn exec_alone<P: Params>(&mut self, sql: &str, params: &P) -> Result<StageOutput> {
        let (rows, done) = match self.exec_start(&sql, params).await? {
            QueryResult::Done(outcome) => (Vec::new(), Some(outcome)),
            QueryResult::Rows(_) => {
                let mut rows = Vec::new();
                while let Some(r) = self.read_row().await? {
                    rows.push(r);
                }
                (rows, None)
            }
        };
        self.consume(true).await?;
        Ok(StageOutput {
            rows,
            outcome: done.unwrap_or_else(|| self.last.clone()),
        })
    }
}
