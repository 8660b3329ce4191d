//! Typed reads on a [`Connection`]: rows converted to [`FromRow`] types as
//! they arrive (`query_as`, `exec_map`, `query_fold`, ...), with no
//! intermediate `Vec<Row>`.
//!
//! Each row is converted while it is still in the read buffer, then the
//! buffer moves on: `T` must borrow nothing from the row (`T: for<'r>
//! FromRow<'r>`: tuples of owned or `Copy` values, derived structs without a
//! lifetime, [`Row`]). To borrow (`(u64, &str)`), read rows one at a time
//! with [`Connection::next_row`] and [`RowRef::decode`](crate::RowRef::decode).
//!
//! Like every command, these leave the connection consistent when their
//! future is dropped or a row fails to convert: unread rows stay recorded on
//! the connection and the next command reads and discards them.

use std::ops::Range;

use super::{Connection, QueryResult, row_fields};
use crate::error::Result;
use crate::from_row::FromRow;
use crate::params::Params;
use crate::row::{Fields, Row};
use crate::statement::AsStatement;
use crate::trace::traced;

impl Connection {
    /// Runs a query (text protocol) and converts every row of its result to `T`.
    ///
    /// Rows are converted as they are read. Like [`Connection::query`], it
    /// reads the first result set; a statement without one gives an empty
    /// `Vec`. A row that does not convert fails the call with
    /// [`ErrorKind::Conversion`](crate::ErrorKind::Conversion) (the rest of
    /// the result is discarded by the next command).
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let users: Vec<(u64, String, Option<u32>)> =
    ///     cnx.query_as("SELECT id, name, age FROM users").await?;
    /// # Ok(()) }
    /// ```
    pub async fn query_as<T>(&mut self, sql: &str) -> Result<Vec<T>>
    where
        T: for<'r> FromRow<'r>,
    {
        self.query_fold(sql, Vec::new(), push).await
    }

    /// Runs a query and converts its first row to `T` (`None` without rows);
    /// the other rows of the result set are read and discarded.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let (n,): (i64,) = cnx.query_first_as("SELECT COUNT(*) FROM users").await?.unwrap_or((0,));
    /// # Ok(()) }
    /// ```
    pub async fn query_first_as<T>(&mut self, sql: &str) -> Result<Option<T>>
    where
        T: for<'r> FromRow<'r>,
    {
        let op = crate::trace::Op::Query(sql);
        timed!(self, "the query", traced(op), async {
            match self.cmd_query_inner(sql).await? {
                QueryResult::Done(_) => Ok(None),
                QueryResult::Rows(_) => {
                    let first = self.first_row::<T>().await?;
                    while self.next_row_packet().await?.is_some() {}
                    Ok(first)
                }
            }
        })
    }

    /// Runs a query and maps every row, converted to `T`, through `f`.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let labels: Vec<String> = cnx
    ///     .query_map("SELECT id, name FROM users", |(id, name): (u64, String)| format!("{id}: {name}"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn query_map<T, U, F>(&mut self, sql: &str, mut f: F) -> Result<Vec<U>>
    where
        T: for<'r> FromRow<'r>,
        F: FnMut(T) -> U,
    {
        self.query_fold(sql, Vec::new(), |mut v, t| {
            v.push(f(t));
            v
        })
        .await
    }

    /// Runs a query and folds its rows, converted to `T`, into `init` with
    /// `f`: nothing is collected, so any number of rows fits.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let total: f64 = cnx
    ///     .query_fold("SELECT price, qty FROM lines", 0.0, |sum, (price, qty): (f64, u32)| {
    ///         sum + price * f64::from(qty)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn query_fold<T, A, F>(&mut self, sql: &str, init: A, f: F) -> Result<A>
    where
        T: for<'r> FromRow<'r>,
        F: FnMut(A, T) -> A,
    {
        let op = crate::trace::Op::Query(sql);
        timed!(self, "the query", traced(op), async {
            match self.cmd_query_inner(sql).await? {
                QueryResult::Done(_) => Ok(init),
                QueryResult::Rows(_) => self.fold_rows(init, f).await,
            }
        })
    }

    /// Executes a prepared statement (binary protocol, SQL text through the
    /// statement cache or a [`Statement`](crate::Statement)) and converts
    /// every row to `T`. Like [`Connection::exec`], the rest of the reply
    /// (e.g. a `CALL`'s outcome) is read before it returns.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let rows = cnx
    ///     .exec_as::<(u64, String)>("SELECT id, name FROM users WHERE age > ?", (30,))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn exec_as<T>(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
    ) -> Result<Vec<T>>
    where
        T: for<'r> FromRow<'r>,
    {
        self.exec_fold(stmt, params, Vec::new(), push).await
    }

    /// Executes a prepared statement and converts its first row to `T`
    /// (`None` without rows); the rest of the reply is discarded.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let name: Option<(String,)> = cnx.exec_first_as("SELECT name FROM users WHERE id = ?", (7,)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn exec_first_as<T>(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
    ) -> Result<Option<T>>
    where
        T: for<'r> FromRow<'r>,
    {
        let op = crate::trace::Op::execute(&stmt);
        timed!(self, "the statement", traced(op), async {
            let first = match self.exec_start(&stmt, &params).await? {
                QueryResult::Done(_) => None,
                QueryResult::Rows(_) => self.first_row::<T>().await?,
            };
            self.consume(true).await?;
            Ok(first)
        })
    }

    /// Executes a prepared statement and maps every row, converted to `T`,
    /// through `f`.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let ids: Vec<u64> = cnx
    ///     .exec_map("SELECT id FROM users WHERE age > ?", (30,), |(id,): (u64,)| id)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn exec_map<T, U, F>(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
        mut f: F,
    ) -> Result<Vec<U>>
    where
        T: for<'r> FromRow<'r>,
        F: FnMut(T) -> U,
    {
        self.exec_fold(stmt, params, Vec::new(), |mut v, t| {
            v.push(f(t));
            v
        })
        .await
    }

    /// Executes a prepared statement and folds its rows, converted to `T`,
    /// into `init` with `f`.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let (n, oldest) = cnx
    ///     .exec_fold("SELECT age FROM users WHERE team = ?", ("core",), (0, 0), |(n, max), (age,): (u32,)| {
    ///         (n + 1, max.max(age))
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn exec_fold<T, A, F>(
        &mut self,
        stmt: impl AsStatement,
        params: impl Params,
        init: A,
        f: F,
    ) -> Result<A>
    where
        T: for<'r> FromRow<'r>,
        F: FnMut(A, T) -> A,
    {
        let op = crate::trace::Op::execute(&stmt);
        timed!(self, "the statement", traced(op), async {
            let acc = match self.exec_start(&stmt, &params).await? {
                QueryResult::Done(_) => init,
                QueryResult::Rows(_) => self.fold_rows(init, f).await?,
            };
            self.consume(true).await?;
            Ok(acc)
        })
    }

    /// Folds the rest of the current result set's rows, each converted to
    /// `T` while it is in the read buffer.
    async fn fold_rows<T, A, F>(&mut self, mut acc: A, mut f: F) -> Result<A>
    where
        T: for<'r> FromRow<'r>,
        F: FnMut(A, T) -> A,
    {
        while let Some(p) = self.next_row_packet().await? {
            let t = self.convert_row::<T>(p)?;
            acc = f(acc, t);
        }
        Ok(acc)
    }

    /// The next row of the current result set as `T`, if any.
    async fn first_row<T: for<'r> FromRow<'r>>(&mut self) -> Result<Option<T>> {
        match self.next_row_packet().await? {
            Some(p) => self.convert_row::<T>(p).map(Some),
            None => Ok(None),
        }
    }

    /// Converts the row packet `p` (just read) to `T`: through a [`RowRef`]
    /// of the read buffer, or, for [`Row`], by taking the packet itself.
    ///
    /// [`RowRef`]: crate::RowRef
    #[inline]
    pub(super) fn convert_row<T: for<'r> FromRow<'r>>(&mut self, p: Range<usize>) -> Result<T> {
        if <T as FromRow<'static>>::__OWNED_ROW {
            T::__from_owned_row(self.take_row(p)?)
        } else {
            T::from_row(&self.row_ref_at(p)?)
        }
    }

    /// The row packet `p` (just read) as an owned [`Row`] sharing the read
    /// buffer, as [`Connection::read_row`] makes it.
    fn take_row(&mut self, p: Range<usize>) -> Result<Row> {
        let mut fields = Fields::new();
        let binary = self.binary_rows();
        if let Err(e) = row_fields(
            &self.chan.buf()[p.clone()],
            &self.columns,
            binary,
            &mut fields,
        ) {
            return Err(self.protocol_error(e));
        }
        let packet = self.chan.take_packet(p);
        Ok(Row::new(packet, fields, self.columns.clone()).with_protocol(binary))
    }
}

fn push<T>(mut v: Vec<T>, t: T) -> Vec<T> {
    v.push(t);
    v
}
