//! Timers without a timer thread: each core keeps its deadlines in order, and
//! the loop's `io_uring_enter` waits no longer than the nearest one (the
//! kernel's own timeout argument). A timer that is cancelled before it fires
//! costs an insert and a remove, and no wake-up.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::Core;

/// The deadlines of one core.
#[derive(Default)]
pub(crate) struct Timers {
    map: BTreeMap<(Instant, u64), Waker>,
    next: u64,
}

impl Timers {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> u64 {
        self.next += 1;
        self.map.insert((deadline, self.next), waker);
        self.next
    }

    fn update(&mut self, key: (Instant, u64), waker: &Waker) {
        if let Some(w) = self.map.get_mut(&key) {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
        }
    }

    fn remove(&mut self, key: (Instant, u64)) {
        self.map.remove(&key);
    }

    /// The nearest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.keys().next().map(|k| k.0)
    }

    /// Removes the timers due at `now` and returns their wakers.
    pub(crate) fn expire(&mut self, now: Instant, into: &mut Vec<Waker>) {
        while let Some(entry) = self.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            into.push(entry.remove());
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Waits until a deadline; see [`sleep`](crate::runtime::sleep).
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The core and the timer's key once registered.
    reg: Option<(Rc<Core>, (Instant, u64))>,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Sleep {
    pub(crate) fn until(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            reg: None,
        }
    }

    /// When it fires.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (re-arms a fired sleep).
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        if let Some((core, key)) = self.reg.take() {
            core.timers.borrow_mut().remove(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if super::kernel::now() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        match &self.reg {
            Some((core, key)) => core.timers.borrow_mut().update(*key, cx.waker()),
            None => {
                let core = Core::current().unwrap_or_else(|e| panic!("{e}"));
                let seq = core
                    .timers
                    .borrow_mut()
                    .insert(self.deadline, cx.waker().clone());
                let deadline = self.deadline;
                self.reg = Some((core, (deadline, seq)));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The error of [`timeout`](crate::runtime::timeout): the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub(crate) Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline of {:?} elapsed", self.0)
    }
}

impl std::error::Error for Elapsed {}

/// A future with a deadline; see [`timeout`](crate::runtime::timeout).
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    fut: F,
    sleep: Sleep,
    limit: Duration,
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .finish()
    }
}

impl<F> Timeout<F> {
    pub(crate) fn new(fut: F, deadline: Instant, limit: Duration) -> Self {
        Timeout {
            fut,
            sleep: Sleep::until(deadline),
            limit,
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned (never moved out); `sleep` is Unpin.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(this.limit))),
            Poll::Pending => Poll::Pending,
        }
    }
}
