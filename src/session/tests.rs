//! The session machine from plain calls: every transition, and random
//! sequences checked against a model of what must hold.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn result() -> Reply {
    Reply::result(ResultMachine::new(0), None)
}

#[test]
fn a_fresh_session_is_clean_and_ready() {
    let mut s = Session::new();
    assert!(s.is_clean());
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
    assert_eq!(s.loss_if_lost(0), Loss::Harmless);
}

#[test]
fn an_abandoned_reply_is_read_before_the_next_command() {
    let mut s = Session::new();
    let t0 = Instant::now();
    s.expect(result(), Stake::Statement);
    assert_eq!(s.shared().owed(), 1);
    // The caller went away: the next command must read it first.
    assert_eq!(s.next_step(t0), Step::ReadOwed);
    assert_eq!(
        s.abandoned_for(t0 + Duration::from_millis(30)),
        Duration::from_millis(30)
    );
    assert!(s.finish(true).is_some());
    assert_eq!(s.shared().owed(), 0);
    assert_eq!(s.shared().finished(), 1);
    assert_eq!(s.next_step(t0), Step::Ready);
    assert_eq!(s.abandoned_for(t0), Duration::ZERO);
}

#[test]
fn pipelined_replies_come_off_in_order() {
    let mut s = Session::new();
    s.expect(result(), Stake::Statement);
    s.expect(
        Reply::Prepare {
            machine: PrepareMachine::new(0),
            id: None,
        },
        Stake::Nothing,
    );
    assert_eq!(s.owed_len(), 2);
    assert!(matches!(
        s.finish(true).unwrap().reply,
        Reply::Result { .. }
    ));
    assert!(matches!(
        s.finish(true).unwrap().reply,
        Reply::Prepare { .. }
    ));
    assert!(s.finish(true).is_none());
}

#[test]
fn a_lost_statement_outside_a_transaction_has_an_unknown_outcome() {
    let mut s = Session::new();
    s.expect(result(), Stake::Statement);
    assert_eq!(s.loss_if_cut(0), Loss::StatementUnknown);
    assert_eq!(s.lost(0), Loss::StatementUnknown);
    assert!(!s.owes());
}

#[test]
fn only_the_commands_written_since_the_mark_count() {
    let mut s = Session::new();
    s.expect(result(), Stake::Statement); // abandoned earlier: its caller is gone
    let mark = s.mark();
    s.expect(result(), Stake::Nothing); // this command's: a ping
    assert_eq!(
        s.loss_if_lost(mark),
        Loss::Harmless,
        "the ping's caller lost nothing"
    );
    assert_eq!(s.loss_if_lost(0), Loss::StatementUnknown);
}

#[test]
fn a_commit_reply_ends_the_transaction() {
    let mut s = Session::new();
    s.tx_opened();
    s.tx_committing();
    s.expect(result(), Stake::Commit);
    s.next_step(Instant::now()); // cut: read by the next command
    s.finish(true);
    assert_eq!(s.tx(), Tx::None);
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
}

#[test]
fn a_refused_commit_owes_a_rollback() {
    // A COMMIT cut short and then refused (KILL QUERY caught it): the
    // transaction may still be open on the server. Without a ROLLBACK the
    // next autocommit writes would join it and be lost with it (found by
    // the simulation, seed 36405 of the 40,000).
    let mut s = Session::new();
    s.tx_opened();
    s.tx_committing();
    s.expect(result(), Stake::Commit);
    s.next_step(Instant::now()); // cut: read by the next command
    s.finish(false);
    assert_eq!(s.tx(), Tx::RollbackOwed);
    assert_eq!(s.next_step(Instant::now()), Step::Rollback);
}

#[test]
fn a_lost_read_only_command_is_harmless() {
    let mut s = Session::new();
    s.expect(result(), Stake::Nothing);
    assert_eq!(s.lost(0), Loss::Harmless);
}

#[test]
fn inside_a_transaction_a_loss_rolls_back_and_a_cut_leaves_it_open() {
    let mut s = Session::new();
    s.tx_opened();
    s.expect(result(), Stake::Statement);
    assert_eq!(s.loss_if_cut(0), Loss::Harmless, "nothing is committed yet");
    assert_eq!(s.loss_if_lost(0), Loss::RolledBack);
}

#[test]
fn a_commit_whose_reply_never_comes_is_unknown_whatever_ended_it() {
    let mut s = Session::new();
    s.tx_opened();
    s.tx_committing();
    s.expect(result(), Stake::Commit);
    assert_eq!(s.loss_if_cut(0), Loss::CommitUnknown, "a timeout");
    assert_eq!(s.loss_if_lost(0), Loss::CommitUnknown, "a lost connection");
}

#[test]
fn a_dropped_transaction_is_rolled_back_before_the_next_command() {
    let mut s = Session::new();
    s.tx_opened();
    s.tx_dropped();
    assert!(!s.is_clean());
    assert_eq!(s.next_step(Instant::now()), Step::Rollback);
    s.settled(Step::Rollback);
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
    assert!(s.is_clean());
}

#[test]
fn an_abandoned_begin_that_succeeded_leaves_a_rollback_owed() {
    let mut s = Session::new();
    s.expect(result(), Stake::Begin);
    assert_eq!(s.next_step(Instant::now()), Step::ReadOwed);
    s.finish(true);
    assert_eq!(s.next_step(Instant::now()), Step::Rollback);
}

#[test]
fn a_begin_read_by_its_caller_leaves_nothing() {
    let mut s = Session::new();
    s.expect(result(), Stake::Begin);
    s.finish(true);
    s.tx_opened();
    assert_eq!(s.tx(), Tx::Open);
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
}

#[test]
fn an_abandoned_begin_that_failed_leaves_no_rollback() {
    let mut s = Session::new();
    s.expect(result(), Stake::Begin);
    s.next_step(Instant::now());
    s.finish(false);
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
}

#[test]
fn an_abandoned_unresumable_exchange_poisons_the_connection() {
    let mut s = Session::new();
    s.begin_unresumable("LOAD DATA LOCAL INFILE was interrupted mid-file");
    assert!(!s.recoverable());
    let step = s.next_step(Instant::now());
    assert!(matches!(step, Step::Close(_)));
    // And it stays closed.
    assert!(matches!(s.next_step(Instant::now()), Step::Close(_)));
}

#[test]
fn an_unresumable_exchange_that_ended_leaves_nothing() {
    let mut s = Session::new();
    s.begin_unresumable("auth");
    s.end_unresumable();
    assert!(s.recoverable());
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
}

#[test]
fn long_data_without_its_execute_is_reset() {
    let mut s = Session::new();
    s.long_data_sent(7);
    assert_eq!(s.next_step(Instant::now()), Step::ResetStatement(7));
    s.settled(Step::ResetStatement(7));
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
    s.long_data_sent(8);
    s.long_data_consumed();
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
}

#[test]
fn a_kill_in_flight_is_awaited_before_anything_is_sent() {
    let mut s = Session::new();
    s.shared().set_killing(true);
    assert_eq!(s.next_step(Instant::now()), Step::AwaitKill);
    assert!(!s.is_clean());
    s.shared().set_killing(false);
    assert_eq!(s.next_step(Instant::now()), Step::Ready);
}

#[test]
fn owed_replies_are_read_before_waiting_for_a_kill() {
    // The kill interrupts the statement whose reply is owed: reading it is
    // what ends; only then may the next command wait for the kill.
    let mut s = Session::new();
    s.expect(result(), Stake::Statement);
    s.shared().set_killing(true);
    assert_eq!(s.next_step(Instant::now()), Step::ReadOwed);
    s.finish(true);
    assert_eq!(s.next_step(Instant::now()), Step::AwaitKill);
}

#[derive(Debug, Clone)]
enum Action {
    Expect(u8),
    Finish(bool),
    Lost,
    Open,
    Commit,
    Drop,
    Close,
    Unresumable,
    EndUnresumable,
    LongData(u32),
    Consumed,
    Kill(bool),
    Settle,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u8..4).prop_map(Action::Expect),
        any::<bool>().prop_map(Action::Finish),
        Just(Action::Lost),
        Just(Action::Open),
        Just(Action::Commit),
        Just(Action::Drop),
        Just(Action::Close),
        Just(Action::Unresumable),
        Just(Action::EndUnresumable),
        (1u32..4).prop_map(Action::LongData),
        Just(Action::Consumed),
        any::<bool>().prop_map(Action::Kill),
        Just(Action::Settle),
    ]
}

proptest! {
    /// Whatever happens, the machine never says Ready while it owes a
    /// reply, a kill, a reset or a rollback; a Close is final; the shared
    /// count always matches the queue; settling always terminates.
    #[test]
    fn random_sequences_keep_the_invariants(actions in proptest::collection::vec(action(), 0..60)) {
        let mut s = Session::new();
        let t0 = Instant::now();
        let mut closed = false;
        for a in actions {
            match a {
                Action::Expect(k) => s.expect(result(), match k {
                    0 => Stake::Nothing,
                    1 => Stake::Statement,
                    2 => Stake::Begin,
                    _ => Stake::Commit,
                }),
                Action::Finish(ok) => { s.finish(ok); }
                Action::Lost => { s.lost(0); }
                Action::Open => s.tx_opened(),
                Action::Commit => s.tx_committing(),
                Action::Drop => s.tx_dropped(),
                Action::Close => s.tx_closed(),
                Action::Unresumable => s.begin_unresumable("x"),
                Action::EndUnresumable => s.end_unresumable(),
                Action::LongData(id) => s.long_data_sent(id),
                Action::Consumed => s.long_data_consumed(),
                Action::Kill(on) => s.shared().set_killing(on),
                Action::Settle => {
                    // Settle as the connection would, until Ready or Close.
                    for _ in 0..200 {
                        let step = s.next_step(t0);
                        match step {
                            Step::Ready => break,
                            Step::Close(_) => { closed = true; break; }
                            Step::ReadOwed => { s.finish(true); }
                            Step::AwaitKill => s.shared().set_killing(false),
                            Step::ResetStatement(_) | Step::Rollback => s.settled(step),
                        }
                    }
                    if !closed {
                        prop_assert!(s.is_clean(), "settled but not clean: {s:?}");
                    }
                }
            }
            prop_assert_eq!(s.shared().owed(), s.owed_len());
            let step = s.next_step(t0);
            if closed {
                prop_assert!(matches!(step, Step::Close(_)), "a closed connection came back: {step:?}");
            }
            if step == Step::Ready {
                prop_assert!(!s.owes());
                prop_assert!(!s.shared().killing());
                prop_assert!(s.tx() != Tx::RollbackOwed);
            }
            if matches!(step, Step::Close(_)) {
                closed = true;
            }
        }
    }

    /// The same invariants from raw bytes, as the `session` fuzz target
    /// drives them (see `check.rs`).
    #[test]
    fn random_bytes_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert_eq!(super::check::run(&data), Ok(()));
    }
}
