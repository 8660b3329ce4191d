//! Table `t (id BIGINT PRIMARY KEY, v BLOB)`: committed rows, the commit
//! log, row locks of open transactions, and per-connection transactions with
//! REPEATABLE READ snapshots.

use std::collections::BTreeMap;

use crate::ConnId;
use crate::proto::SqlError;

/// An open transaction's private state.
#[derive(Debug, Default)]
pub struct Txn {
    /// Rows inserted, not yet committed, in insertion order.
    writes: Vec<(i64, Vec<u8>)>,
    /// The commit-log length when the transaction first read (its snapshot).
    snapshot: Option<usize>,
    /// `START TRANSACTION READ ONLY`.
    pub read_only: bool,
}

impl Txn {
    fn has(&self, id: i64) -> bool {
        self.writes.iter().any(|(k, _)| *k == id)
    }
}

/// What an insert of a batch of rows did.
#[derive(Debug)]
pub enum InsertOutcome {
    /// Inserted (committed at once, or into the open transaction).
    Done(u64),
    /// A row's key is locked by another connection's open transaction.
    Wait(ConnId),
    /// Refused (duplicate key); nothing was applied.
    Err(SqlError),
}

/// The database.
#[derive(Debug, Default)]
pub struct Db {
    committed: BTreeMap<i64, Vec<u8>>,
    /// Commit-log position of each committed row (for snapshots).
    commit_pos: BTreeMap<i64, usize>,
    log: Vec<(ConnId, i64)>,
    /// Keys inserted by open transactions, and which connection holds them.
    locks: BTreeMap<i64, ConnId>,
}

/// The ERR 1062 for a duplicate key.
pub fn duplicate(id: i64) -> SqlError {
    SqlError::new(
        1062,
        "23000",
        format!("Duplicate entry '{id}' for key 'PRIMARY'"),
    )
}

impl Db {
    /// The committed rows.
    pub fn committed(&self) -> &BTreeMap<i64, Vec<u8>> {
        &self.committed
    }

    /// Every committed write, in commit order.
    pub fn log(&self) -> &[(ConnId, i64)] {
        &self.log
    }

    /// A new transaction; `WITH CONSISTENT SNAPSHOT` takes the snapshot now.
    pub fn begin(&self, snapshot: bool, read_only: bool) -> Txn {
        Txn {
            writes: Vec::new(),
            snapshot: snapshot.then_some(self.log.len()),
            read_only,
        }
    }

    /// Inserts `rows` for connection `c` (into `txn` when one is open),
    /// all or nothing.
    pub fn insert(
        &mut self,
        c: ConnId,
        txn: Option<&mut Txn>,
        rows: Vec<(i64, Vec<u8>)>,
    ) -> InsertOutcome {
        if txn.as_ref().is_some_and(|t| t.read_only) {
            let m = "Cannot execute statement in a READ ONLY transaction";
            return InsertOutcome::Err(SqlError::new(1792, "25006", m));
        }
        for (i, (id, _)) in rows.iter().enumerate() {
            let own = txn.as_ref().is_some_and(|t| t.has(*id));
            if self.committed.contains_key(id) || own || rows[..i].iter().any(|(k, _)| k == id) {
                return InsertOutcome::Err(duplicate(*id));
            }
            if let Some(&holder) = self.locks.get(id) {
                if holder != c {
                    return InsertOutcome::Wait(holder);
                }
            }
        }
        let n = rows.len() as u64;
        match txn {
            Some(t) => {
                for (id, v) in rows {
                    self.locks.insert(id, c);
                    t.writes.push((id, v));
                }
            }
            None => self.apply(c, rows),
        }
        InsertOutcome::Done(n)
    }

    fn apply(&mut self, c: ConnId, rows: Vec<(i64, Vec<u8>)>) {
        for (id, v) in rows {
            self.commit_pos.insert(id, self.log.len());
            self.log.push((c, id));
            self.committed.insert(id, v);
        }
    }

    /// Commits `txn`; returns whether any lock was released.
    pub fn commit(&mut self, c: ConnId, txn: Txn) -> bool {
        let released = self.release(&txn);
        self.apply(c, txn.writes);
        released
    }

    /// Rolls `txn` back; returns whether any lock was released.
    pub fn rollback(&mut self, txn: Txn) -> bool {
        self.release(&txn)
    }

    fn release(&mut self, txn: &Txn) -> bool {
        for (id, _) in &txn.writes {
            self.locks.remove(id);
        }
        !txn.writes.is_empty()
    }

    fn visible(&self, txn: Option<&mut Txn>, id: i64) -> Option<Vec<u8>> {
        let Some(t) = txn else {
            return self.committed.get(&id).cloned();
        };
        let snap = *t.snapshot.get_or_insert(self.log.len());
        if let Some((_, v)) = t.writes.iter().find(|(k, _)| *k == id) {
            return Some(v.clone());
        }
        match self.commit_pos.get(&id) {
            Some(&p) if p < snap => self.committed.get(&id).cloned(),
            _ => None,
        }
    }

    /// `SELECT v FROM t WHERE id = ?` as seen by the caller.
    pub fn get(&self, txn: Option<&mut Txn>, id: i64) -> Option<Vec<u8>> {
        self.visible(txn, id)
    }

    /// `SELECT id, v FROM t ORDER BY id` as seen by the caller.
    pub fn scan(&self, txn: Option<&mut Txn>) -> Vec<(i64, Vec<u8>)> {
        let Some(t) = txn else {
            return self
                .committed
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect();
        };
        let snap = *t.snapshot.get_or_insert(self.log.len());
        let mut rows: BTreeMap<i64, Vec<u8>> = self
            .committed
            .iter()
            .filter(|(k, _)| self.commit_pos[*k] < snap)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (k, v) in &t.writes {
            rows.insert(*k, v.clone());
        }
        rows.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocommit_and_transactions() {
        let mut db = Db::default();
        assert!(matches!(
            db.insert(1, None, vec![(1, b"a".to_vec())]),
            InsertOutcome::Done(1)
        ));
        assert!(matches!(
            db.insert(2, None, vec![(1, b"b".to_vec())]),
            InsertOutcome::Err(e) if e.code == 1062
        ));
        let mut t = Txn::default();
        // The snapshot starts at the first read.
        assert_eq!(db.scan(Some(&mut t)).len(), 1);
        db.insert(3, None, vec![(3, b"c".to_vec())]);
        assert!(matches!(
            db.insert(
                2,
                Some(&mut t),
                vec![(2, b"x".to_vec()), (4, b"y".to_vec())]
            ),
            InsertOutcome::Done(2)
        ));
        // Own writes seen, the later commit of 3 not.
        let ids: Vec<i64> = db.scan(Some(&mut t)).iter().map(|r| r.0).collect();
        assert_eq!(ids, [1, 2, 4]);
        assert_eq!(db.get(Some(&mut t), 3), None);
        assert_eq!(db.get(None, 2), None);
        // Another connection inserting a locked key waits.
        assert!(matches!(
            db.insert(9, None, vec![(4, vec![])]),
            InsertOutcome::Wait(2)
        ));
        assert!(db.commit(2, t));
        assert_eq!(db.log(), [(1, 1), (3, 3), (2, 2), (2, 4)]);
        assert!(matches!(
            db.insert(9, None, vec![(4, vec![])]),
            InsertOutcome::Err(_)
        ));
        // Duplicates inside one batch, and all-or-nothing.
        assert!(matches!(
            db.insert(9, None, vec![(7, vec![]), (7, vec![])]),
            InsertOutcome::Err(_)
        ));
        assert!(!db.committed().contains_key(&7));
    }
}
