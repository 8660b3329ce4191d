//! [`Statement`]: a prepared statement, and the per-connection statement cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::column::Column;

/// A statement prepared on one connection (`COM_STMT_PREPARE`).
///
/// Cheap to clone. It is valid only on the connection that prepared it, until
/// [`Connection::close_statement`](crate::Connection::close_statement) or the
/// connection closes; using it elsewhere is refused.
///
/// ```no_run
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// let stmt = cnx.prepare("SELECT name FROM users WHERE id = ?").await?;
/// for id in 1..=3u64 {
///     if let Some(row) = cnx.exec_first(&stmt, (id,)).await? {
///         println!("{}", row.get::<&str>(0)?);
///     }
/// }
/// cnx.close_statement(&stmt).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Statement(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) id: u32,
    /// Which connection prepared it (a process-unique token, not the server's id).
    pub(crate) owner: u64,
    pub(crate) params: Arc<[Column]>,
    pub(crate) columns: Arc<[Column]>,
    /// The result columns the server sent last (at prepare or an execute):
    /// what MariaDB's metadata caching refers to when it skips them.
    pub(crate) last_columns: std::sync::Mutex<Arc<[Column]>>,
    pub(crate) sql: Box<str>,
}

impl Inner {
    pub(crate) fn last_columns(&self) -> Arc<[Column]> {
        self.last_columns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_last_columns(&self, columns: &Arc<[Column]>) {
        let mut last = self.last_columns.lock().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&last, columns) {
            *last = columns.clone();
        }
    }
}

impl Statement {
    /// The server's id of the statement.
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// The SQL text it was prepared from.
    pub fn sql(&self) -> &str {
        &self.0.sql
    }

    /// How many `?` parameters it takes.
    pub fn param_count(&self) -> usize {
        self.0.params.len()
    }

    /// The parameters' definitions as the server described them.
    pub fn params(&self) -> &[Column] {
        &self.0.params
    }

    /// The result columns known at prepare time (empty for statements without rows).
    pub fn columns(&self) -> &[Column] {
        &self.0.columns
    }
}

/// What the `exec*` methods run: SQL text (prepared once and kept in the
/// connection's statement cache) or a [`Statement`].
pub trait AsStatement {
    /// The SQL text or the prepared statement.
    fn as_statement(&self) -> StatementRef<'_>;
}

/// See [`AsStatement`].
#[derive(Debug, Clone, Copy)]
pub enum StatementRef<'a> {
    /// SQL text, looked up in (or added to) the statement cache.
    Sql(&'a str),
    /// A statement prepared on this connection.
    Prepared(&'a Statement),
}

impl AsStatement for str {
    fn as_statement(&self) -> StatementRef<'_> {
        StatementRef::Sql(self)
    }
}

impl AsStatement for String {
    fn as_statement(&self) -> StatementRef<'_> {
        StatementRef::Sql(self)
    }
}

impl AsStatement for Statement {
    fn as_statement(&self) -> StatementRef<'_> {
        StatementRef::Prepared(self)
    }
}

impl<T: AsStatement + ?Sized> AsStatement for &T {
    fn as_statement(&self) -> StatementRef<'_> {
        (**self).as_statement()
    }
}

/// A process-unique token per connection, so a statement from one connection
/// is never executed on another.
pub(crate) fn next_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Prepared statements by SQL text, least recently used evicted first.
#[derive(Debug)]
pub(crate) struct StmtCache {
    capacity: usize,
    tick: u64,
    map: HashMap<Box<str>, (Statement, u64)>,
    /// The statement used last, with its tick (the map's copy of that tick
    /// is brought up to date when another statement becomes the last): the
    /// usual next statement, found with one string compare, no hashing.
    last: Option<(Statement, u64)>,
    pub(crate) owner: u64,
    /// Ids of statements to close (`COM_STMT_CLOSE`, which has no reply)
    /// before the next statement command.
    pub(crate) to_close: Vec<u32>,
    /// Statements evicted from the cache while someone still held them (a
    /// caller's [`Statement`], an execute of a multiplexed batch not yet
    /// written): closed once nobody does, never before.
    held: Vec<Statement>,
}

impl StmtCache {
    pub(crate) fn new(capacity: usize) -> Self {
        StmtCache {
            capacity,
            tick: 0,
            map: HashMap::new(),
            last: None,
            owner: next_owner(),
            to_close: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Closes `stmt` (with a later statement command) once nobody holds it.
    pub(crate) fn close_later(&mut self, stmt: Statement) {
        self.held.push(stmt);
    }

    /// Moves the statements nobody holds any more to [`StmtCache::to_close`].
    pub(crate) fn release_unheld(&mut self) {
        let to_close = &mut self.to_close;
        self.held.retain(|s| {
            let unheld = Arc::strong_count(&s.0) == 1;
            if unheld {
                to_close.push(s.id());
            }
            !unheld
        });
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The cached statement for `sql`, marked as just used.
    #[inline]
    pub(crate) fn get(&mut self, sql: &str) -> Option<&Statement> {
        self.tick += 1;
        let tick = self.tick;
        if let Some((s, t)) = &mut self.last {
            if s.sql() == sql {
                *t = tick;
                return self.last.as_ref().map(|(s, _)| s);
            }
        }
        let s = {
            let (s, t) = self.map.get_mut(sql)?;
            *t = tick;
            s.clone()
        };
        self.set_last(s, tick);
        self.last.as_ref().map(|(s, _)| s)
    }

    /// Makes `s` the last used statement, writing the previous one's tick
    /// back to the map.
    fn set_last(&mut self, s: Statement, tick: u64) {
        if let Some((prev, t)) = self.last.replace((s, tick)) {
            if let Some((_, mt)) = self.map.get_mut(prev.sql()) {
                *mt = t;
            }
        }
    }

    /// Adds a statement; returns the one evicted to make room, if any.
    pub(crate) fn insert(&mut self, stmt: Statement) -> Option<Statement> {
        if self.capacity == 0 {
            return Some(stmt);
        }
        if let Some((last, t)) = &self.last {
            if let Some((_, mt)) = self.map.get_mut(last.sql()) {
                *mt = *t;
            }
        }
        let mut evicted = None;
        if self.map.len() >= self.capacity && !self.map.contains_key(stmt.sql()) {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                evicted = self.map.remove(&k).map(|(s, _)| s);
            }
        }
        self.tick += 1;
        if let Some((old, _)) = self
            .map
            .insert(stmt.sql().into(), (stmt.clone(), self.tick))
        {
            if old.id() != stmt.id() {
                evicted = Some(old);
            }
        }
        if let (Some(e), Some((last, _))) = (&evicted, &self.last) {
            if e.id() == last.id() {
                self.last = None;
            }
        }
        if self
            .last
            .as_ref()
            .is_some_and(|(l, _)| l.sql() == stmt.sql())
        {
            self.last = None;
        }
        evicted
    }

    /// Forgets the statement with this id (it was closed).
    pub(crate) fn remove_id(&mut self, id: u32) {
        self.map.retain(|_, (s, _)| s.id() != id);
        if self.last.as_ref().is_some_and(|(s, _)| s.id() == id) {
            self.last = None;
        }
    }

    /// Forgets every statement after the server freed them all
    /// (`COM_CHANGE_USER`); statements handed out earlier are refused from now on.
    pub(crate) fn forget_all(&mut self) {
        self.map.clear();
        self.last = None;
        self.to_close.clear();
        self.held.clear();
        self.owner = next_owner();
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(id: u32, sql: &str) -> Statement {
        Statement(Arc::new(Inner {
            id,
            owner: 1,
            params: Arc::from(Vec::new()),
            columns: Arc::from(Vec::new()),
            last_columns: std::sync::Mutex::new(Arc::from(Vec::new())),
            sql: sql.into(),
        }))
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let mut c = StmtCache::new(2);
        assert!(c.insert(stmt(1, "a")).is_none());
        assert!(c.insert(stmt(2, "b")).is_none());
        assert_eq!(c.get("a").unwrap().id(), 1);
        let out = c.insert(stmt(3, "c")).unwrap();
        assert_eq!(out.id(), 2, "b was used least recently");
        assert!(c.get("b").is_none());
        assert_eq!(c.len(), 2);
        c.remove_id(1);
        assert!(c.get("a").is_none());
    }

    #[test]
    fn the_last_statement_is_found_without_the_map_and_stays_most_recent() {
        let mut c = StmtCache::new(2);
        c.insert(stmt(1, "a"));
        c.insert(stmt(2, "b"));
        assert_eq!(c.get("b").unwrap().id(), 2);
        assert_eq!(c.get("a").unwrap().id(), 1);
        for _ in 0..5 {
            assert_eq!(c.get("a").unwrap().id(), 1, "served by the memo");
        }
        // "a" was used last (its map tick is stale until synced): "b" goes.
        assert_eq!(c.insert(stmt(3, "c")).unwrap().id(), 2);
        assert_eq!(c.get("a").unwrap().id(), 1);
        c.remove_id(1);
        assert!(
            c.get("a").is_none(),
            "a removed statement is not served by the memo"
        );
        c.forget_all();
        assert!(c.get("c").is_none());
        // Capacity 1: the last statement itself is evicted.
        let mut c = StmtCache::new(1);
        c.insert(stmt(1, "a"));
        assert!(c.get("a").is_some());
        assert_eq!(c.insert(stmt(2, "b")).unwrap().id(), 1);
        assert!(c.get("a").is_none());
        assert_eq!(c.get("b").unwrap().id(), 2);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut c = StmtCache::new(0);
        assert_eq!(c.insert(stmt(1, "a")).unwrap().id(), 1);
        assert!(c.get("a").is_none());
    }
}
