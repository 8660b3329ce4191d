//! The connection's obligations state machine (src/session) fed arbitrary
//! action sequences: no panic, and its invariants hold after every step
//! (never Ready while a reply, kill or rollback is owed; Close is final;
//! settling terminates clean).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = mysql_uring::__fuzz_session(data) {
        panic!("session invariant broken: {e}");
    }
});
