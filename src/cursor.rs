//! [`Cursor`]: execute a statement and fetch its rows, as in Connector/Python.

use std::sync::Arc;

use crate::column::Column;
use crate::conn::{Connection, QueryResult};
use crate::error::{Error, Result};
use crate::row::{Row, RowRef};

/// Executes statements on a connection and fetches their rows.
///
/// Rows are read from the socket as they are fetched (an unbuffered cursor):
/// `fetch_one` reads one row, `fetch_all` reads the rest. Executing another
/// statement, closing the cursor, or running any command on the connection
/// first discards rows left unread.
///
/// ```no_run
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// let mut cur = cnx.cursor();
/// cur.execute("SELECT id, name FROM users ORDER BY id").await?;
/// while let Some(row) = cur.fetch_one().await? {
///     let (id, name): (u64, &str) = (row.get(0)?, row.get(1)?);
///     println!("{id} {name}");
/// }
/// cur.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Cursor<'c> {
    conn: &'c mut Connection,
    columns: Arc<[Column]>,
    executed: bool,
    rows_read: u64,
    affected_rows: Option<u64>,
    last_insert_id: u64,
    warnings: u16,
    /// The result sets of the last `callproc`.
    stored: Vec<crate::conn::StoredResult>,
}

impl<'c> Cursor<'c> {
    pub(crate) fn new(conn: &'c mut Connection) -> Self {
        Cursor {
            conn,
            columns: Arc::from(Vec::new()),
            executed: false,
            rows_read: 0,
            affected_rows: None,
            last_insert_id: 0,
            warnings: 0,
            stored: Vec::new(),
        }
    }

    /// Calls a stored procedure ([`Connection::callproc`]) and returns its
    /// OUT and INOUT parameters (one column each, named after the parameter;
    /// `None` when it has none). Connector/Python returns all the arguments
    /// instead, with the OUT ones replaced. The result sets the procedure
    /// produced are then in [`stored_results`](Cursor::stored_results);
    /// `rowcount()` is the `CALL`'s affected rows.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let mut cur = cnx.cursor();
    /// let out = cur.callproc("count_orders", ("ada", None::<i64>)).await?;
    /// let n: i64 = out.expect("an OUT parameter").get(0)?;
    /// for set in cur.stored_results() {
    ///     println!("{:?}", set.rows);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn callproc(
        &mut self,
        name: &str,
        args: impl crate::params::Params,
    ) -> Result<Option<Row>> {
        self.executed = false;
        self.rows_read = 0;
        self.columns = Arc::from(Vec::new());
        self.stored.clear();
        let call = self.conn.callproc(name, args).await?;
        self.affected_rows = Some(call.outcome.affected_rows);
        self.last_insert_id = call.outcome.last_insert_id;
        self.warnings = call.outcome.warnings;
        self.stored = call.results;
        self.executed = true;
        Ok(call.out)
    }

    /// The result sets of the last [`callproc`](Cursor::callproc), in order
    /// (Connector/Python's `stored_results()`); empty after any other execute.
    pub fn stored_results(&self) -> &[crate::conn::StoredResult] {
        &self.stored
    }

    /// Runs `sql`. Rows, if any, are then read with the `fetch_*` methods.
    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        self.stored.clear();
        self.executed = false;
        self.rows_read = 0;
        self.affected_rows = None;
        self.last_insert_id = 0;
        self.columns = Arc::from(Vec::new());
        let r = self.conn.cmd_query(sql).await?;
        self.start_set(r);
        Ok(())
    }

    fn start_set(&mut self, r: QueryResult) {
        self.rows_read = 0;
        self.affected_rows = None;
        self.last_insert_id = 0;
        self.warnings = 0;
        match r {
            QueryResult::Rows(cols) => self.columns = cols,
            QueryResult::Done(o) => {
                self.columns = Arc::from(Vec::new());
                self.affected_rows = Some(o.affected_rows);
                self.last_insert_id = o.last_insert_id;
                self.warnings = o.warnings;
            }
        }
        self.executed = true;
    }

    /// Moves to the next result set (multi-statement queries, `CALL`),
    /// discarding unread rows of the current one; false when there are no
    /// more. Like Connector/Python's `nextset()`. A statement that failed
    /// among the sets is reported here as its server error; the connection
    /// stays usable.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let mut cur = cnx.cursor();
    /// cur.execute("CALL two_reports()").await?;
    /// loop {
    ///     for row in cur.fetch_all().await? {
    ///         println!("{:?}", row.get::<Option<&str>>(0)?);
    ///     }
    ///     if !cur.next_set().await? {
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_set(&mut self) -> Result<bool> {
        self.check()?;
        match self.conn.next_result().await {
            Ok(Some(r)) => {
                self.start_set(r);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                self.executed = false;
                self.columns = Arc::from(Vec::new());
                Err(e)
            }
        }
    }

    /// Runs `sql` as a prepared statement with `params` (binary protocol),
    /// through the connection's statement cache: the statement is prepared on
    /// first use and reused afterwards. Rows are then read with the `fetch_*`
    /// methods, as after [`Cursor::execute`].
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let mut cur = cnx.cursor();
    /// cur.execute_params("SELECT name FROM users WHERE id = ? AND active = ?", (7, true)).await?;
    /// let rows = cur.fetch_all().await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_params(
        &mut self,
        sql: &str,
        params: impl crate::params::Params,
    ) -> Result<()> {
        self.stored.clear();
        self.executed = false;
        self.rows_read = 0;
        self.affected_rows = None;
        self.last_insert_id = 0;
        self.columns = Arc::from(Vec::new());
        match self.conn.cmd_execute(sql, params).await? {
            QueryResult::Rows(cols) => self.columns = cols,
            QueryResult::Done(o) => {
                self.affected_rows = Some(o.affected_rows);
                self.last_insert_id = o.last_insert_id;
                self.warnings = o.warnings;
            }
        }
        self.executed = true;
        Ok(())
    }

    /// Runs `sql` once per row of parameters ([`Connection::execute_many`]:
    /// MariaDB bulk execution when available); `rowcount()` is then the total
    /// of affected rows.
    ///
    /// Stops at the first failing row. Rows before it stay applied when the
    /// rows run one execute each; in bulk mode on InnoDB the whole packet
    /// holding the failing row (up to ~1 MiB of rows) is rolled back, earlier
    /// packets stay. See [`Connection::execute_many`]; for all or nothing,
    /// use a transaction.
    pub async fn execute_many<I>(&mut self, sql: &str, rows: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: crate::params::Params,
    {
        self.stored.clear();
        self.executed = false;
        self.rows_read = 0;
        self.columns = Arc::from(Vec::new());
        let o = self.conn.execute_many(sql, rows).await?;
        self.affected_rows = Some(o.affected_rows);
        self.last_insert_id = o.last_insert_id;
        self.warnings = o.warnings;
        self.executed = true;
        Ok(())
    }

    fn check(&self) -> Result<()> {
        if self.executed {
            Ok(())
        } else {
            Err(Error::usage("nothing to fetch: call execute() first"))
        }
    }

    /// The next row, or `None` when there are no more.
    pub async fn fetch_one(&mut self) -> Result<Option<Row>> {
        self.check()?;
        if self.columns.is_empty() {
            return Ok(None);
        }
        let row = self.conn.get_row().await?;
        if row.is_some() {
            self.rows_read += 1;
        } else {
            self.warnings = self.conn.last_outcome().warnings;
        }
        Ok(row)
    }

    /// Up to `n` further rows (fewer at the end of the result).
    pub async fn fetch_many(&mut self, n: usize) -> Result<Vec<Row>> {
        let mut rows = Vec::with_capacity(n.min(1024));
        while rows.len() < n {
            match self.fetch_one().await? {
                Some(r) => rows.push(r),
                None => break,
            }
        }
        Ok(rows)
    }

    /// All remaining rows.
    pub async fn fetch_all(&mut self) -> Result<Vec<Row>> {
        self.check()?;
        if self.columns.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.conn.get_rows().await?;
        self.rows_read += rows.len() as u64;
        self.warnings = self.conn.last_outcome().warnings;
        Ok(rows)
    }

    /// Streams the next row without copying: it borrows the connection's read
    /// buffer until the next call. For results too large to hold in memory.
    pub async fn next_row(&mut self) -> Result<Option<RowRef<'_>>> {
        self.check()?;
        if self.columns.is_empty() {
            return Ok(None);
        }
        let row = self.conn.next_row().await?;
        if row.is_some() {
            self.rows_read += 1;
        }
        Ok(row)
    }

    /// For a statement without rows, the rows it changed; for a query, the
    /// rows fetched so far. `-1` before anything was executed.
    pub fn rowcount(&self) -> i64 {
        match (self.executed, self.affected_rows) {
            (false, _) => -1,
            (true, Some(n)) => n as i64,
            (true, None) => self.rows_read as i64,
        }
    }

    /// The AUTO_INCREMENT id generated by the last statement, if any.
    pub fn lastrowid(&self) -> Option<u64> {
        (self.last_insert_id != 0).then_some(self.last_insert_id)
    }

    /// Number of warnings of the last statement.
    pub fn warnings(&self) -> u16 {
        self.warnings
    }

    /// The columns of the current result (empty for statements without rows),
    /// like Connector/Python's `cursor.description`.
    pub fn description(&self) -> &[Column] {
        &self.columns
    }

    /// The column names of the current result.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(Column::name).collect()
    }

    /// Discards unread rows. The connection stays open.
    pub async fn close(self) -> Result<()> {
        if self.conn.has_pending_response() {
            self.conn.query_drop_pending().await?;
        }
        Ok(())
    }
}
