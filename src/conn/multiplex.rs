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

/// Where one stage of a multiplexed batch stands.
enum Stage {
    /// Not written yet.
    Waiting,
    /// Written: its reply is owed.
    Sent(Statement),
    /// Runs alone after the batch (long data, or a stale cached statement).
    Alone,
    /// Running alone: its execute may have been written.
    RunningAlone,
    /// Has its result.
    Done,
}

/// The stages' states and the caller's delivery: every stage is delivered
/// exactly once.
struct Batch<'d> {
    state: Vec<Stage>,
    deliver: &'d mut dyn FnMut(usize, Result<StageOutput>),
    sent: &'d mut dyn FnMut(usize),
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
    /// `sent(i)` is called as stage `i`'s execute is written (from then on
    /// its outcome is unknown until its reply is read).
    pub(crate) async fn exec_multiplexed<P: Params>(
        &mut self,
        stages: &[(&str, &P)],
        deliver: &mut dyn FnMut(usize, Result<StageOutput>),
        sent: &mut dyn FnMut(usize),
    ) {
        let mut batch = Batch {
            state: stages.iter().map(|_| Stage::Waiting).collect(),
            deliver,
            sent,
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
                    Stage::Sent(_) | Stage::RunningAlone if !one.is_commit_unknown() => {
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
        // 1. The statements, prepared where the cache has none. Held in
        // `stmts` until their executes are written, none of them is closed
        // before (a statement the cache evicts meanwhile waits for its
        // last holder, see `StmtCache::close_later`).
        let mut stmts: Vec<Option<Statement>> = Vec::with_capacity(stages.len());
        for (i, &(sql, params)) in stages.iter().enumerate() {
            match self.resolve(&sql).await {
                Ok((stmt, temporary)) => {
                    if temporary {
                        self.stmts.close_later(stmt.clone());
                    }
                    match self.check_params(&stmt, params) {
                        Ok(()) => stmts.push(Some(stmt)),
                        Err(e) => {
                            batch.deliver(i, Err(e));
                            stmts.push(None);
                        }
                    }
                }
                Err(e) if self.chan.is_broken() => return Err(e),
                Err(e) => {
                    batch.deliver(i, Err(e));
                    stmts.push(None);
                }
            }
        }
        // 2. Every execute that needs no long data, written in one go.
        // Statements nobody holds any more are closed first (none of this
        // batch's: `stmts` holds them).
        self.write_pending_closes()?;
        let long: Vec<usize> = stages
            .iter()
            .map(|&(_, params)| self.long_data_threshold(params))
            .collect();
        {
            let (framer, out) = self.chan.encoder()?;
            for (i, stmt) in stmts.iter().enumerate() {
                let Some(stmt) = stmt else { continue };
                let params = stages[i].1;
                let n = params.len();
                if (0..n).any(|k| params.value(k).is_long(long[i])) {
                    batch.state[i] = Stage::Alone;
                    continue;
                }
                let start = out.len();
                match write_execute(framer, out, stmt.id(), n, |k| params.value(k), long[i]) {
                    Ok(()) => {
                        batch.state[i] = Stage::Sent(stmt.clone());
                        (batch.sent)(i);
                    }
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
            batch.state[i] = Stage::RunningAlone;
            (batch.sent)(i);
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

    /// One stage's reply of a pipeline or a multiplexed batch: its rows
    /// and outcome.
    pub(super) async fn read_stage(&mut self) -> Result<StageOutput> {
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
