//! Calls that may share a round trip ([`ClientBuilder::multiplex`](super::ClientBuilder::multiplex)):
//! a prepared execute whose statement and parameters the core's lane can
//! batch with the calls queued behind it.

use super::handoff::{LocalBoxFuture, Work};
use super::slot::{self, CommitMark, Sender};
use super::{Client, ClientCall, OwnedParams, panicked, until_canceled};
use crate::conn::{Connection, StageOutput};
use crate::error::{Error, Result};
use crate::io::uring::exec::CatchUnwind;

/// One prepared execute, with what its caller wants of the result.
struct StageCall<T> {
    /// Taken when the call joins a batch.
    stage: Option<(String, OwnedParams)>,
    tx: Sender<T>,
    map: fn(StageOutput) -> Result<T>,
    caller: crate::trace::Caller,
}

impl<T: Send + 'static> Work for StageCall<T> {
    fn canceled(&self) -> bool {
        self.tx.is_canceled()
    }

    fn fail(self: Box<Self>, e: Error) {
        self.tx.send(Err(e));
    }

    /// Alone (nothing to share the round trip with): runs as any call does,
    /// abandoned when its caller goes away.
    fn run<'c>(self: Box<Self>, conn: &'c mut Connection) -> LocalBoxFuture<'c, bool> {
        let StageCall {
            stage,
            tx,
            map,
            caller,
        } = *self;
        Box::pin(async move {
            let Some((sql, params)) = stage else {
                return false;
            };
            let fut = CatchUnwind(caller.run(conn.exec_stage(&sql, &params)));
            match until_canceled(&tx, fut).await {
                Some(Ok(r)) => {
                    tx.send(r.and_then(map));
                    true
                }
                Some(Err(p)) => {
                    tx.send(Err(panicked(&*p)));
                    false
                }
                None => false,
            }
        })
    }

    fn is_stage(&self) -> bool {
        self.stage.is_some()
    }

    fn take_stage(&mut self) -> Option<(String, OwnedParams, CommitMark)> {
        let (sql, params) = self.stage.take()?;
        Some((sql, params, self.tx.commit_mark()))
    }

    fn finish(self: Box<Self>, r: Result<StageOutput>) {
        let StageCall { tx, map, .. } = *self;
        tx.send(r.and_then(map));
    }
}

impl Client {
    /// True when prepared executes go as [`StageCall`]s.
    pub(super) fn multiplexing(&self) -> bool {
        self.0.route.multiplex > 1 && self.0.ryw.is_none()
    }

    /// Sends a prepared execute that may share a round trip.
    pub(super) fn submit_stage<T: Send + 'static>(
        &self,
        sql: String,
        params: OwnedParams,
        map: fn(StageOutput) -> Result<T>,
    ) -> ClientCall<T> {
        let core = match self.pick() {
            Ok(c) => c,
            Err(e) => return ClientCall::failed(e),
        };
        let (tx, rx) = slot::slot(core);
        let work = Box::new(StageCall {
            stage: Some((sql, params)),
            tx,
            map,
            caller: crate::trace::caller(),
        });
        self.push(core, work);
        ClientCall(super::Call::Slot(rx))
    }
}
