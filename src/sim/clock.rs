//! Virtual time: on a thread that runs a simulation, the loop's clock is the
//! simulated kernel's, moved only by the simulation.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static NOW: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The virtual time of the simulation running on this thread, if any.
#[inline]
pub(crate) fn virtual_now() -> Option<Instant> {
    NOW.with(Cell::get)
}

/// Sets (or, with `None`, ends) this thread's virtual time.
pub(crate) fn set(now: Option<Instant>) {
    NOW.with(|c| c.set(now));
}
