//! The one-shot result of a [`Client`](crate::Client) call: filled on a
//! core, awaited anywhere.
//!
//! Like a one-shot channel, plus what a call needs: the receiver's drop is
//! seen on the core (the work there is abandoned), a sender dropped without
//! a value is a [`ErrorKind::Stopped`] error, and a call whose `COMMIT` was
//! sent says so in that error ([`Error::is_commit_unknown`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, ErrorKind, Result};

struct State<T> {
    value: Option<Result<T>>,
    /// The caller's waker.
    rx_waker: Option<Waker>,
    /// The core task's waker, woken when the caller goes away.
    tx_waker: Option<Waker>,
    rx_gone: bool,
    tx_gone: bool,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    /// Set on the core when the call's `COMMIT` is about to be sent.
    commit_sent: AtomicBool,
    /// Which core, for the error when it stops.
    core: usize,
}

impl<T> Inner<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A call's result slot: the sending half (on the core) and the receiving
/// half (the caller's future).
pub(crate) fn slot<T>(core: usize) -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            value: None,
            rx_waker: None,
            tx_waker: None,
            rx_gone: false,
            tx_gone: false,
        }),
        commit_sent: AtomicBool::new(false),
        core,
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner: Some(inner) },
    )
}

/// The core's half: [`Sender::send`] once, or drop it (the caller then
/// gets a [`ErrorKind::Stopped`] error).
pub(crate) struct Sender<T> {
    inner: Option<Arc<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Delivers the result and wakes the caller.
    pub(crate) fn send(mut self, v: Result<T>) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let waker = {
            let mut st = inner.lock();
            st.value = Some(v);
            st.tx_gone = true;
            st.rx_waker.take()
        };
        if let Some(w) = waker {
            // With the other results of this loop turn.
            crate::io::uring::exec::defer_wake(w);
        }
    }

    /// True once the caller has gone away.
    pub(crate) fn is_canceled(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.lock().rx_gone)
    }

    /// Ready once the caller has gone away; registers `cx` to hear of it.
    pub(crate) fn poll_canceled(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = &self.inner else {
            return Poll::Ready(());
        };
        let mut st = inner.lock();
        if st.rx_gone {
            return Poll::Ready(());
        }
        match &st.tx_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.tx_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T: Send + 'static> Sender<T> {
    /// A handle that marks the call's `COMMIT` as sent.
    pub(crate) fn commit_mark(&self) -> CommitMark {
        CommitMark(self.inner.clone().map(|i| i as Arc<dyn Committed>))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let waker = {
            let mut st = inner.lock();
            st.tx_gone = true;
            st.rx_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

trait Committed: Send + Sync {
    fn set(&self);
}

impl<T: Send> Committed for Inner<T> {
    fn set(&self) {
        self.commit_sent.store(true, Ordering::Release);
    }
}

/// Marks a call's `COMMIT` as sent: from then on, a call ended without its
/// result (the core stopped, a timeout) reports the commit as unknown.
#[derive(Clone)]
pub(crate) struct CommitMark(Option<Arc<dyn Committed>>);

impl CommitMark {
    pub(crate) fn set(&self) {
        if let Some(c) = &self.0 {
            c.set();
        }
    }
}

/// The caller's half: a `Send` future of the result.
pub(crate) struct Receiver<T> {
    inner: Option<Arc<Inner<T>>>,
}

impl<T> Receiver<T> {
    /// The core this call was sent to.
    pub(crate) fn core(&self) -> Option<usize> {
        self.inner.as_ref().map(|i| i.core)
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let Some(inner) = &self.inner else {
            return Poll::Ready(Err(Error::usage(
                "a Client call was polled after it finished",
            )));
        };
        let r = {
            let mut st = inner.lock();
            match st.value.take() {
                Some(v) => v,
                None if st.tx_gone => {
                    let e = Error::new(
                        ErrorKind::Stopped,
                        format!(
                            "core {} stopped before the call sent to it finished (the Client was \
                             closed or dropped, its runtime shut down, or the core panicked)",
                            inner.core
                        ),
                    );
                    Err(e)
                }
                None => {
                    match &st.rx_waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => st.rx_waker = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
            }
        };
        let r = match r {
            Err(e)
                if inner.commit_sent.load(Ordering::Acquire)
                    && matches!(e.kind(), ErrorKind::Stopped | ErrorKind::Timeout) =>
            {
                Err(e.commit_unknown())
            }
            r => r,
        };
        // Finished: dropping the receiver later need not tell the core.
        self.inner = None;
        Poll::Ready(r)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let waker = {
            let mut st = inner.lock();
            st.rx_gone = true;
            st.value = None;
            st.tx_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}
