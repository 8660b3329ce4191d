//! Typed calls on a [`Client`]: rows converted to owned [`FromRow`] types on
//! the core, next to the connection, so only the converted values cross
//! threads.

use crate::client::{Client, ClientCall, OwnedParams};
use crate::from_row::FromRow;
use crate::params::Params;

impl Client {
    /// Runs a query and converts every row to `T` (see
    /// [`Connection::query_as`](crate::Connection::query_as)). `T` is owned
    /// and `Send`: a tuple of owned values or a derived struct without a
    /// lifetime.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// #[derive(mysql_uring::FromRow)]
    /// struct User {
    ///     id: u64,
    ///     name: String,
    /// }
    /// let users: Vec<User> = client.query_as("SELECT id, name FROM users").await?;
    /// # Ok(()) }
    /// ```
    pub fn query_as<T>(&self, sql: impl Into<String>) -> ClientCall<Vec<T>>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let sql = sql.into();
        self.with_conn(async move |c| c.query_as::<T>(&sql).await)
    }

    /// Executes a prepared statement (cached per connection) and converts
    /// every row to `T` (see [`Connection::exec_as`](crate::Connection::exec_as)).
    /// Parameters are copied before the call leaves, as for [`Client::exec`].
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// let names = client.exec_as::<(u64, String), _>("SELECT id, name FROM users WHERE age > ?", (30,)).await?;
    /// # Ok(()) }
    /// ```
    pub fn exec_as<T, P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<Vec<T>>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| c.exec_as::<T>(sql.as_str(), &params).await)
    }

    /// Like [`Client::exec_as`], converting the first row only (the rest is
    /// discarded).
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// let name: Option<(String,)> = client.exec_first_as("SELECT name FROM users WHERE id = ?", (7,)).await?;
    /// # Ok(()) }
    /// ```
    pub fn exec_first_as<T, P: Params>(
        &self,
        sql: impl Into<String>,
        params: P,
    ) -> ClientCall<Option<T>>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| c.exec_first_as::<T>(sql.as_str(), &params).await)
    }

    /// Like [`Client::exec_first_as`], failing with
    /// [`ErrorKind::RowNotFound`](crate::ErrorKind::RowNotFound) when there
    /// is no row (sqlx's `fetch_one`).
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client, email: &str) -> mysql_uring::Result<()> {
    /// let (id, name): (u64, String) = client
    ///     .exec_one_as("SELECT id, name FROM users WHERE email = ?", (email,))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn exec_one_as<T, P: Params>(&self, sql: impl Into<String>, params: P) -> ClientCall<T>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let (sql, params) = (sql.into(), OwnedParams::new(&params));
        self.with_conn(async move |c| {
            c.exec_first_as::<T>(sql.as_str(), &params)
                .await?
                .ok_or_else(no_row)
        })
    }

    /// Runs a query and converts its first row to `T`, failing with
    /// [`ErrorKind::RowNotFound`](crate::ErrorKind::RowNotFound) when there
    /// is none.
    ///
    /// ```no_run
    /// # async fn f(client: &mysql_uring::Client) -> mysql_uring::Result<()> {
    /// let (n,): (i64,) = client.query_one_as("SELECT COUNT(*) FROM users").await?;
    /// # Ok(()) }
    /// ```
    pub fn query_one_as<T>(&self, sql: impl Into<String>) -> ClientCall<T>
    where
        T: for<'r> FromRow<'r> + Send + 'static,
    {
        let sql = sql.into();
        self.with_conn(async move |c| c.query_first_as::<T>(&sql).await?.ok_or_else(no_row))
    }
}

fn no_row() -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::RowNotFound,
        "the statement returned no row",
    )
}
