//! [`BlockingClient`]: the [`Client`] calls as plain blocking functions,
//! for programs without an async runtime.

use std::future::Future;

use super::{Client, ClientCall};
use crate::conn::{Connection, Outcome};
use crate::error::{Error, Result};
use crate::params::Params;
use crate::row::Row;
use crate::transaction::{Transaction, TxOpts};

/// The blocking form of a [`Client`]; see [`Client::blocking`].
#[derive(Debug, Clone)]
pub struct BlockingClient(pub(super) Client);

impl BlockingClient {
    fn wait<T>(&self, call: ClientCall<T>) -> Result<T> {
        if self.0.0.rt.is_own_core() {
            return Err(Error::usage(
                "BlockingClient was called on one of its own cores, which would wait for \
                 itself; use the async Client methods there",
            ));
        }
        crate::runtime::block_on(call)
    }

    /// See [`Client::with_conn`].
    pub fn with_conn<F, T>(&self, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.with_conn(f))
    }

    /// See [`Client::transaction_with`].
    pub fn transaction_with<F, T>(&self, opts: TxOpts, f: F) -> Result<T>
    where
        F: for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.transaction_with(opts, f))
    }

    /// See [`Client::reads`].
    pub fn reads(&self) -> BlockingClient {
        BlockingClient(self.0.reads())
    }

    /// See [`Client::transaction_retry`].
    pub fn transaction_retry<F, T>(&self, attempts: u32, f: F) -> Result<T>
    where
        F: for<'c> AsyncFn(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.transaction_retry(attempts, f))
    }

    /// See [`Client::transaction`].
    pub fn transaction<F, T>(&self, f: F) -> Result<T>
    where
        F: for<'c> AsyncFnOnce(&mut Transaction<'c>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.wait(self.0.transaction(f))
    }

    /// See [`Client::query`].
    pub fn query(&self, sql: impl Into<String>) -> Result<Vec<Row>> {
        self.wait(self.0.query(sql))
    }

    /// See [`Client::query_one`].
    pub fn query_one(&self, sql: impl Into<String>) -> Result<Row> {
        self.wait(self.0.query_one(sql))
    }

    /// See [`Client::query_drop`].
    pub fn query_drop(&self, sql: impl Into<String>) -> Result<Outcome> {
        self.wait(self.0.query_drop(sql))
    }

    /// See [`Client::exec`].
    pub fn exec<P: Params>(&self, sql: impl Into<String>, params: P) -> Result<Vec<Row>> {
        self.wait(self.0.exec(sql, params))
    }

    /// See [`Client::exec_first`].
    pub fn exec_first<P: Params>(&self, sql: impl Into<String>, params: P) -> Result<Option<Row>> {
        self.wait(self.0.exec_first(sql, params))
    }

    /// See [`Client::exec_one`].
    pub fn exec_one<P: Params>(&self, sql: impl Into<String>, params: P) -> Result<Row> {
        self.wait(self.0.exec_one(sql, params))
    }

    /// See [`Client::exec_drop`].
    pub fn exec_drop<P: Params>(&self, sql: impl Into<String>, params: P) -> Result<Outcome> {
        self.wait(self.0.exec_drop(sql, params))
    }

    /// See [`Client::query_as`].
    pub fn query_as<T>(&self, sql: impl Into<String>) -> Result<Vec<T>>
    where
        T: for<'r> crate::FromRow<'r> + Send + 'static,
    {
        self.wait(self.0.query_as(sql))
    }

    /// See [`Client::exec_as`].
    pub fn exec_as<T, P: Params>(&self, sql: impl Into<String>, params: P) -> Result<Vec<T>>
    where
        T: for<'r> crate::FromRow<'r> + Send + 'static,
    {
        self.wait(self.0.exec_as(sql, params))
    }

    /// See [`Client::exec_first_as`].
    pub fn exec_first_as<T, P: Params>(
        &self,
        sql: impl Into<String>,
        params: P,
    ) -> Result<Option<T>>
    where
        T: for<'r> crate::FromRow<'r> + Send + 'static,
    {
        self.wait(self.0.exec_first_as(sql, params))
    }

    /// See [`Client::close`].
    pub fn close(&self) -> Result<()> {
        self.wait_any(self.0.close())
    }

    fn wait_any<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if self.0.0.rt.is_own_core() {
            return Err(Error::usage(
                "BlockingClient was called on one of its own cores, which would wait for \
                 itself; use the async Client methods there",
            ));
        }
        crate::runtime::block_on(fut)
    }
}
