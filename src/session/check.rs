//! The session machine driven by arbitrary bytes, with its invariants
//! checked after every step: the property test beside the machine and the
//! `session` fuzz target both run [`run`].
//!
//! Each input byte is one action: the low nibble picks what happens (a new
//! owed reply with some stake, a reply read, a lost connection, a
//! transaction opened, committing, dropped or closed, an unresumable
//! stretch, long data, a kill starting or ending, or settling as the
//! connection would); the high nibble is its argument.

use std::time::Instant;

use super::{Reply, Session, Stake, Step, Tx};
use crate::proto::result::ResultMachine;

/// Drives a fresh session with `data`; the first broken invariant, if any.
///
/// Whatever happens, the machine never says Ready while it owes a reply, a
/// kill or a rollback; a Close is final; the shared count always matches
/// the queue; settling always terminates in a clean state or a Close.
pub(crate) fn run(data: &[u8]) -> Result<(), String> {
    let mut s = Session::new();
    let t0 = Instant::now();
    let mut closed = false;
    for &b in data {
        let arg = b >> 4;
        match b & 0x0f {
            0 | 1 => {
                let stake = match arg & 3 {
                    0 => Stake::Nothing,
                    1 => Stake::Statement,
                    2 => Stake::Begin,
                    _ => Stake::Commit,
                };
                s.expect(Reply::result(ResultMachine::new(0), None), stake);
            }
            2 => {
                s.finish(arg & 1 == 0);
            }
            3 => {
                s.lost(u64::from(arg));
            }
            4 => s.tx_opened(),
            5 => s.tx_committing(),
            6 => s.tx_dropped(),
            7 => s.tx_closed(),
            8 => s.begin_unresumable("fuzz"),
            9 => s.end_unresumable(),
            10 => s.long_data_sent(u32::from(arg)),
            11 => s.long_data_consumed(),
            12 => s.shared().set_killing(arg & 1 == 1),
            13 => s.server_reset(),
            _ => {
                // Settle as the connection would, until Ready or Close.
                let mut done = false;
                for _ in 0..(4 * data.len() + 8) {
                    let step = s.next_step(t0);
                    match step {
                        Step::Ready => {
                            done = true;
                            break;
                        }
                        Step::Close(_) => {
                            closed = true;
                            done = true;
                            break;
                        }
                        Step::ReadOwed => {
                            if s.finish(true).is_none() {
                                return Err(format!("ReadOwed with nothing owed: {s:?}"));
                            }
                        }
                        Step::AwaitKill => s.shared().set_killing(false),
                        Step::ResetStatement(_) | Step::Rollback => s.settled(step),
                    }
                }
                if !done {
                    return Err(format!("settling did not terminate: {s:?}"));
                }
                if !closed && !s.is_clean() {
                    return Err(format!("settled but not clean: {s:?}"));
                }
            }
        }
        if s.shared().owed() != s.owed_len() {
            return Err(format!(
                "shared count {} but {} owed: {s:?}",
                s.shared().owed(),
                s.owed_len()
            ));
        }
        let step = s.next_step(t0);
        if closed && !matches!(step, Step::Close(_)) {
            return Err(format!("a closed connection came back: {step:?}"));
        }
        if step == Step::Ready && (s.owes() || s.shared().killing() || s.tx() == Tx::RollbackOwed) {
            return Err(format!("Ready while owing: {s:?}"));
        }
        if matches!(step, Step::Close(_)) {
            closed = true;
        }
    }
    Ok(())
}
