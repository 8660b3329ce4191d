//! A connection's obligations, as one sans-IO state machine: what every
//! command written still owes (its reply, in order), what must be settled
//! before the next command, what a lost reply means for the data, and
//! whether the connection can be handed to someone else.
//!
//! Like tokio-postgres' request queue, every command written puts one entry
//! in [`Session`]'s queue, and the reader takes replies off its front. When
//! a command's caller goes away (its future dropped, a timeout), its entries
//! simply stay: the next command, or the pool, reads them to their end and
//! drops them ([`Session::next_step`] says so), keeping what a reply teaches
//! (a prepared statement's new column definitions, a transaction's start).
//! Nothing else in the connection remembers what is in flight.
//!
//! No IO and no async here: the connection (`crate::conn`) is the shell
//! that obeys it, and the tests below drive it from plain calls.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::column::Column;
use crate::proto::result::ResultMachine;
use crate::proto::stmt::PrepareMachine;
use crate::statement::Statement;

#[cfg(any(test, feature = "internals"))]
pub(crate) mod check;
#[cfg(test)]
mod tests;

/// What is at stake if a command's reply never arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stake {
    /// Nothing in the data (a ping, a prepare, a reset, a select_db).
    Nothing,
    /// A statement that may change data: outside a transaction, a lost reply
    /// leaves its effect unknown.
    Statement,
    /// `START TRANSACTION`: abandoned, the transaction it opened must be
    /// rolled back before the connection is used again.
    Begin,
    /// `COMMIT`: a lost reply leaves the transaction's fate unknown.
    Commit,
}

/// A result's column definitions read so far. A reply may be read in
/// several sittings (its first reader cut mid-header, the next command
/// reading the rest for nobody): what was read stays here, with the reply.
#[derive(Debug, Default)]
pub(crate) struct Header {
    /// Earlier column lists the new one may equal byte for byte (the last
    /// result's, the executed statement's): reused instead of copied.
    pub(crate) cands: [Option<Arc<[Column]>>; 2],
    /// The new list, once it differs from every candidate.
    pub(crate) fresh: Option<Vec<Column>>,
    /// Column definitions read.
    pub(crate) read: usize,
}

/// The reply a command owes.
#[derive(Debug)]
pub(crate) enum Reply {
    /// OK, ERR or result sets. `stmt`: the executed statement, whose column
    /// definitions the reply may update (MariaDB's metadata cache then
    /// omits them from later replies: they must be kept, even when nobody
    /// waits for the reply any more).
    Result {
        machine: ResultMachine,
        stmt: Option<Statement>,
        header: Header,
    },
    /// A `COM_STMT_PREPARE` reply; `id` once its OK was seen (a prepare
    /// nobody waits for is closed on the server).
    Prepare {
        machine: PrepareMachine,
        id: Option<u32>,
    },
}

impl Reply {
    /// A result reply (an execute's when `stmt` is given).
    pub(crate) fn result(machine: ResultMachine, stmt: Option<Statement>) -> Reply {
        Reply::Result {
            machine,
            stmt,
            header: Header::default(),
        }
    }
}

/// One reply owed by the server, for a command already written.
#[derive(Debug)]
pub(crate) struct Owed {
    pub(crate) reply: Reply,
    pub(crate) stake: Stake,
    /// The order in which it was written (see [`Session::mark`]).
    seq: u64,
}

/// Where the session's transaction is, as far as the driver drove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tx {
    None,
    /// A `Transaction` is open.
    Open,
    /// Its `COMMIT` was written.
    Committing,
    /// A `Transaction` was dropped unfinished, or a `START TRANSACTION`
    /// was abandoned: `ROLLBACK` before the next command.
    RollbackOwed,
}

/// What the connection must do before its next command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing: the next command may go.
    Ready,
    /// The connection cannot be recovered (why): close it.
    Close(&'static str),
    /// Read the front reply to its end and drop it ([`Session::settled`]).
    ReadOwed,
    /// Wait for the `KILL QUERY` in flight to finish first.
    AwaitKill,
    /// `COM_STMT_RESET` this statement: its long data went out without the
    /// execute that consumes it.
    ResetStatement(u32),
    /// `ROLLBACK`.
    Rollback,
}

/// What a lost reply means for the caller's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Nothing that changes data was in flight.
    Harmless,
    /// A statement outside a transaction was written and its reply never
    /// came: its effect on the data is unknown.
    StatementUnknown,
    /// A `COMMIT` was written and its reply never came: the transaction may
    /// or may not have been committed.
    CommitUnknown,
    /// Inside a transaction: the server rolls the transaction back when the
    /// connection goes (only when the connection is lost, not on a timeout).
    RolledBack,
}

/// The part of a session a dropped command's guard and a background
/// `KILL QUERY` read without the connection (same thread).
#[derive(Default)]
pub(crate) struct Shared {
    /// Replies owed (the queue's length).
    owed: Cell<usize>,
    /// Replies finished since the session started.
    finished: Cell<u64>,
    /// A `KILL QUERY` for this session is in flight.
    killing: Cell<bool>,
    /// Woken when `owed` drops to zero or `killing` ends.
    watcher: Cell<Option<Waker>>,
    /// Who to kill, and how to reach the server: set once connected.
    target: RefCell<Option<(Arc<crate::opts::Opts>, u32)>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("owed", &self.owed.get())
            .field("finished", &self.finished.get())
            .field("killing", &self.killing.get())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Sets the session a `KILL QUERY` targets (its server id) and the
    /// options to reach its server.
    pub(crate) fn set_target(&self, opts: Arc<crate::opts::Opts>, id: u32) {
        *self.target.borrow_mut() = Some((opts, id));
    }

    /// See [`Shared::set_target`].
    pub(crate) fn target(&self) -> Option<(Arc<crate::opts::Opts>, u32)> {
        self.target.borrow().clone()
    }

    /// Registers `w` to be woken when no reply is owed any more or a kill
    /// in flight ends.
    pub(crate) fn watch(&self, w: &Waker) {
        self.watcher.set(Some(w.clone()));
    }

    fn notify(&self) {
        if let Some(w) = self.watcher.take() {
            w.wake();
        }
    }

    /// Replies owed right now.
    pub(crate) fn owed(&self) -> usize {
        self.owed.get()
    }

    /// Replies finished so far (a kill decided on a stale view must not run).
    pub(crate) fn finished(&self) -> u64 {
        self.finished.get()
    }

    /// True while a `KILL QUERY` for this session is in flight.
    pub(crate) fn killing(&self) -> bool {
        self.killing.get()
    }

    /// Marks a `KILL QUERY` in flight (true) or done (false).
    pub(crate) fn set_killing(&self, on: bool) {
        self.killing.set(on);
        if !on {
            self.notify();
        }
    }
}

/// One connection's obligations. See the module docs.
#[derive(Debug)]
pub(crate) struct Session {
    /// Replies owed, oldest first; the front one is being read.
    owed: VecDeque<Owed>,
    /// An exchange that cannot be resumed by anyone else is in progress
    /// (authentication in `change_user`, a `LOAD DATA LOCAL` file): if its
    /// caller goes away mid-way, the connection is lost.
    unresumable: Option<&'static str>,
    /// Set when an unresumable exchange was abandoned: why.
    poisoned: Option<&'static str>,
    /// Long data went out for this statement and its execute did not.
    long_data: Option<u32>,
    tx: Tx,
    /// When the abandoned replies were found owed (the grace before a
    /// `KILL QUERY` counts from here).
    abandoned_at: Option<Instant>,
    /// Commands written so far (each reply's `seq`).
    written: u64,
    shared: Rc<Shared>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    pub(crate) fn new() -> Session {
        Session {
            owed: VecDeque::new(),
            unresumable: None,
            poisoned: None,
            long_data: None,
            tx: Tx::None,
            abandoned_at: None,
            written: 0,
            shared: Rc::default(),
        }
    }

    /// What a guard or a background kill may read.
    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    fn publish(&self) {
        self.shared.owed.set(self.owed.len());
        if self.owed.is_empty() {
            self.shared.notify();
        }
    }

    /// Where the commands written from now on start: errors are classified
    /// by what those commands put at stake, not by replies owed from before
    /// (read on behalf of callers that went away).
    pub(crate) fn mark(&self) -> u64 {
        self.written
    }

    // ------------------------------------------------------------ commands

    /// A command was written whose reply is `reply`.
    pub(crate) fn expect(&mut self, reply: Reply, stake: Stake) {
        let seq = self.written;
        self.written += 1;
        self.owed.push_back(Owed { reply, stake, seq });
        self.publish();
    }

    /// The reply being read, if any.
    #[inline]
    pub(crate) fn front(&mut self) -> Option<&mut Owed> {
        self.owed.front_mut()
    }

    /// The order of the reply being read (see [`Session::mark`]).
    #[inline]
    pub(crate) fn front_seq(&self) -> Option<u64> {
        self.owed.front().map(|o| o.seq)
    }

    /// The result machine of the reply being read, if it is a result.
    #[inline]
    pub(crate) fn result(&mut self) -> Option<&mut ResultMachine> {
        match self.owed.front_mut() {
            Some(Owed {
                reply: Reply::Result { machine, .. },
                ..
            }) => Some(machine),
            _ => None,
        }
    }

    /// The result being read (not yet finished) is binary (an execute's).
    #[inline]
    pub(crate) fn binary_rows(&self) -> bool {
        matches!(self.owed.front(), Some(Owed { reply: Reply::Result { machine, .. }, .. }) if machine.is_binary())
    }

    /// Rows of a result set remain unread.
    #[inline]
    pub(crate) fn in_rows(&self) -> bool {
        matches!(self.owed.front(), Some(Owed { reply: Reply::Result { machine, .. }, .. }) if machine.in_rows())
    }

    /// Anything owed at all (rows, further result sets, abandoned replies).
    #[inline]
    pub(crate) fn owes(&self) -> bool {
        !self.owed.is_empty()
    }

    /// How many replies are owed.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn owed_len(&self) -> usize {
        self.owed.len()
    }

    /// The front reply ended: it is dropped from the queue and returned.
    /// A finished `START TRANSACTION` nobody waited for leaves a rollback
    /// owed; one that failed does not.
    pub(crate) fn finish(&mut self, ok: bool) -> Option<Owed> {
        let done = self.owed.pop_front()?;
        self.shared.finished.set(self.shared.finished.get() + 1);
        self.publish();
        // Read on behalf of nobody: the command that wrote it is gone.
        let abandoned = self.abandoned_at.is_some();
        if self.owed.is_empty() {
            self.abandoned_at = None;
        }
        match done.stake {
            Stake::Begin if ok && abandoned => self.tx = Tx::RollbackOwed,
            // Committed: the transaction is over. Refused (a killed or
            // failed COMMIT), it may still be open on the server: roll it
            // back before the next command, or later autocommit writes
            // would join it and be lost with it.
            Stake::Commit if self.tx == Tx::Committing => {
                self.tx = if ok { Tx::None } else { Tx::RollbackOwed };
            }
            _ => {}
        }
        Some(done)
    }

    /// True while the replies read are owed to nobody (their command was
    /// abandoned): a `LOAD DATA LOCAL` request in one is refused.
    pub(crate) fn settling(&self) -> bool {
        self.abandoned_at.is_some()
    }

    /// The connection failed mid-reply (IO or protocol): nothing more will
    /// be read, every owed reply is gone with it. Returns what that means
    /// for the commands written since `mark`.
    pub(crate) fn lost(&mut self, mark: u64) -> Loss {
        let loss = self.loss_if_lost(mark);
        self.owed.clear();
        self.publish();
        self.abandoned_at = None;
        self.unresumable = None;
        self.long_data = None;
        self.tx = Tx::None;
        loss
    }

    fn at_stake(&self, mark: u64, stake: Stake) -> bool {
        self.owed.iter().any(|o| o.seq >= mark && o.stake == stake)
    }

    /// What losing the connection now would mean for the commands written
    /// since `mark`.
    pub(crate) fn loss_if_lost(&self, mark: u64) -> Loss {
        if self.at_stake(mark, Stake::Commit) {
            return Loss::CommitUnknown;
        }
        if matches!(self.tx, Tx::Open | Tx::Committing) {
            return Loss::RolledBack;
        }
        if self.at_stake(mark, Stake::Statement) {
            Loss::StatementUnknown
        } else {
            Loss::Harmless
        }
    }

    /// What a command cut short (a timeout) while replies of the commands it
    /// wrote since `mark` are still owed means for the data: the statement
    /// may still run, and commit.
    pub(crate) fn loss_if_cut(&self, mark: u64) -> Loss {
        if self.at_stake(mark, Stake::Commit) {
            return Loss::CommitUnknown;
        }
        if matches!(self.tx, Tx::Open | Tx::Committing) {
            // Inside the transaction: nothing is committed yet, and the
            // transaction is still there to roll back.
            return Loss::Harmless;
        }
        if self.at_stake(mark, Stake::Statement) {
            Loss::StatementUnknown
        } else {
            Loss::Harmless
        }
    }

    // ------------------------------------------------------------ settling

    /// What must happen before the next command (called when one is about
    /// to start, or when a pool takes a connection back). `now` is when
    /// the abandonment was first seen; see [`Session::abandoned_for`].
    pub(crate) fn next_step(&mut self, now: Instant) -> Step {
        if let Some(why) = self.poisoned {
            return Step::Close(why);
        }
        if let Some(why) = self.unresumable.take() {
            // An exchange nobody else can resume was left midway: its
            // command was abandoned, and the connection with it.
            self.poisoned = Some(why);
            return Step::Close(why);
        }
        if !self.owed.is_empty() {
            self.abandoned_at.get_or_insert(now);
            return Step::ReadOwed;
        }
        if self.shared.killing() {
            return Step::AwaitKill;
        }
        if let Some(id) = self.long_data {
            return Step::ResetStatement(id);
        }
        if self.tx == Tx::RollbackOwed {
            return Step::Rollback;
        }
        Step::Ready
    }

    /// How long abandoned replies have been owed (zero when none are).
    pub(crate) fn abandoned_for(&self, now: Instant) -> Duration {
        self.abandoned_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    /// The abandoned replies were read (or the statement reset, or rolled
    /// back): the step is done. `step` is the one just carried out.
    pub(crate) fn settled(&mut self, step: Step) {
        match step {
            Step::ResetStatement(id) if self.long_data == Some(id) => self.long_data = None,
            Step::Rollback if self.tx == Tx::RollbackOwed => self.tx = Tx::None,
            _ => {}
        }
    }

    /// True when the connection may be handed to someone else without
    /// anything to settle.
    pub(crate) fn is_clean(&self) -> bool {
        self.owed.is_empty()
            && self.poisoned.is_none()
            && self.long_data.is_none()
            && self.unresumable.is_none()
            && !self.shared.killing()
            && self.tx != Tx::RollbackOwed
    }

    /// True when settling can make the connection clean again (false:
    /// close it).
    pub(crate) fn recoverable(&self) -> bool {
        self.poisoned.is_none() && self.unresumable.is_none()
    }

    // ------------------------------------------------------------ exchanges

    /// An exchange that cannot be resumed by someone else begins.
    pub(crate) fn begin_unresumable(&mut self, why: &'static str) {
        self.unresumable = Some(why);
    }

    /// The exchange ended.
    pub(crate) fn end_unresumable(&mut self) {
        self.unresumable = None;
    }

    /// Long data went out for statement `id` (its execute has not).
    pub(crate) fn long_data_sent(&mut self, id: u32) {
        self.long_data = Some(id);
    }

    /// The execute that consumes the long data was written (or the
    /// statement was reset).
    pub(crate) fn long_data_consumed(&mut self) {
        self.long_data = None;
    }

    // ------------------------------------------------------------ transactions

    pub(crate) fn tx(&self) -> Tx {
        self.tx
    }

    /// A `Transaction` is open.
    pub(crate) fn tx_opened(&mut self) {
        self.tx = Tx::Open;
    }

    /// Its `COMMIT` is being written.
    pub(crate) fn tx_committing(&mut self) {
        if self.tx == Tx::Open {
            self.tx = Tx::Committing;
        }
    }

    /// It ended (committed or rolled back, with a reply).
    pub(crate) fn tx_closed(&mut self) {
        self.tx = Tx::None;
    }

    /// It was dropped unfinished: roll back before the next command.
    pub(crate) fn tx_dropped(&mut self) {
        if matches!(self.tx, Tx::Open | Tx::Committing) {
            self.tx = Tx::RollbackOwed;
        }
    }

    /// The server reset the session (`COM_RESET_CONNECTION`,
    /// `COM_CHANGE_USER`): no transaction, no statement state.
    pub(crate) fn server_reset(&mut self) {
        self.tx = Tx::None;
        self.long_data = None;
    }
}
