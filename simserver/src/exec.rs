//! Running commands when their time comes: statements (results, writes,
//! transactions, KILL), prepare, the session commands, LOAD DATA, and
//! row-lock waits.

use crate::conn::{Busy, BusyKind, Load, Phase, Work};
use crate::db::InsertOutcome;
use crate::eval::{as_f64, columns, err, resolve, to_blob, to_id};
use crate::handshake;
use crate::proto::{Column, Shape, SqlError, Value, ok_payload, ty};
use crate::sql::{self, Stmt};
use crate::stmt::{Bound, PVal, Prepared, encode_meta};
use crate::{ConnId, LOCK_WAIT_TIMEOUT_NS, Server};

impl Server {
    /// Completes (or times out) the command of `c` at `t`.
    pub(crate) fn finish(&mut self, c: ConnId, t: u64) {
        let Some(busy) = self.conn_mut(c).busy.take() else {
            return;
        };
        let mut seq = busy.seq;
        match busy.kind {
            BusyKind::Run(work) => self.run(c, work, seq, t),
            BusyKind::LockWait { .. } => {
                let e = err(
                    1205,
                    "HY000",
                    "Lock wait timeout exceeded; try restarting transaction",
                );
                self.conn_mut(c).send(&mut seq, &e.payload());
            }
            BusyKind::Load(_) => unreachable!("LOAD DATA has no deadline"),
        }
    }

    /// Drops the command in progress, without effects.
    pub(crate) fn abort_busy(&mut self, c: ConnId) {
        self.conn_mut(c).busy = None;
    }

    /// Rolls back the open transaction of `c`, if any.
    pub(crate) fn rollback(&mut self, c: ConnId) {
        if let Some(txn) = self.conn_mut(c).txn.take() {
            if self.db.rollback(txn) {
                self.wake_waiters(c);
            }
        }
    }

    /// With autocommit off, a statement that uses `t` opens a transaction.
    fn implicit_begin(&mut self, c: ConnId) {
        let conn = self.conn(c);
        if !conn.autocommit && conn.txn.is_none() {
            let txn = self.db.begin(false, false);
            self.conn_mut(c).txn = Some(txn);
        }
    }

    fn commit(&mut self, c: ConnId) {
        if let Some(txn) = self.conn_mut(c).txn.take() {
            if self.db.commit(c, txn) {
                self.wake_waiters(c);
            }
        }
    }

    /// Statements waiting for a lock `holder` released re-run now.
    fn wake_waiters(&mut self, holder: ConnId) {
        let now = self.now;
        for conn in &mut self.conns {
            let Some(b) = &mut conn.busy else { continue };
            if let BusyKind::LockWait { holder: h, .. } = &b.kind {
                if *h == holder {
                    let BusyKind::LockWait { work, .. } =
                        std::mem::replace(&mut b.kind, BusyKind::Run(Work::Ping))
                    else {
                        unreachable!();
                    };
                    b.kind = BusyKind::Run(work);
                    b.done_at = now;
                    self.dirty.push(conn.id);
                }
            }
        }
    }

    fn send_ok(&mut self, c: ConnId, seq: &mut u8, affected: u64) {
        let conn = self.conn_mut(c);
        let p = ok_payload(0, affected, conn.status());
        conn.send(seq, &p);
    }

    fn send_err(&mut self, c: ConnId, seq: &mut u8, e: &SqlError) {
        self.conn_mut(c).send(seq, &e.payload());
    }

    fn run(&mut self, c: ConnId, work: Work, mut seq: u8, t: u64) {
        let s = &mut seq;
        match work {
            Work::Fail(e) => self.send_err(c, s, &e),
            Work::Ping => self.send_ok(c, s, 0),
            Work::InitDb(db) => {
                self.conn_mut(c).db = Some(db);
                self.send_ok(c, s, 0);
            }
            Work::Reset => {
                self.rollback(c);
                let conn = self.conn_mut(c);
                conn.stmts.clear();
                conn.autocommit = true;
                self.send_ok(c, s, 0);
            }
            Work::StmtReset(id) => match self.conn_mut(c).stmts.get_mut(&id) {
                Some(p) => {
                    p.long = vec![None; p.params];
                    p.long_error = false;
                    self.send_ok(c, s, 0);
                }
                None => {
                    let m = format!(
                        "Unknown prepared statement handler ({id}) given to mysqld_stmt_reset"
                    );
                    self.send_err(c, s, &err(1243, "HY000", m));
                }
            },
            Work::ChangeUser(login) => {
                if login.plugin != handshake::NATIVE {
                    let conn = self.conn_mut(c);
                    let p = handshake::auth_switch(&conn.scramble);
                    conn.send(s, &p);
                    conn.phase = Phase::AuthSwitch {
                        seq: *s,
                        login,
                        change_user: true,
                    };
                } else {
                    let auth = login.auth.clone();
                    self.finish_login(c, login, &auth, *s, true);
                }
            }
            Work::Prepare(sql) => self.prepare(c, &sql, s),
            Work::LoadApply(Err(e)) => self.send_err(c, s, &e),
            Work::LoadApply(Ok(rows)) => {
                self.implicit_begin(c);
                let again = Work::LoadApply(Ok(rows.clone()));
                self.insert(c, rows, again, seq, t);
            }
            Work::Stmt {
                stmt,
                params,
                exec,
                meta_sent,
            } => self.statement(c, stmt, params, exec, meta_sent, seq, t),
        }
    }

    fn prepare(&mut self, c: ConnId, text: &[u8], s: &mut u8) {
        let (stmt, n) = match sql::parse(text, true) {
            Ok((Stmt::LoadData { .. }, _)) => {
                let m = "This command is not supported in the prepared statement protocol yet";
                return self.send_err(c, s, &err(1295, "HY000", m));
            }
            Ok(x) => x,
            Err(e) => {
                if e.garbage {
                    let at = e.at;
                    self.violation(
                        c,
                        format!("COM_STMT_PREPARE text with a non-printable byte at offset {at}"),
                    );
                }
                return self.send_err(c, s, &e.to_sql_error(text));
            }
        };
        if n > usize::from(u16::MAX) {
            let m = "Prepared statement contains too many placeholders";
            return self.send_err(c, s, &err(1390, "HY000", m));
        }
        let cols = columns(&stmt, None);
        let conn = self.conn_mut(c);
        let id = conn.next_stmt;
        conn.next_stmt += 1;
        let mut p = vec![0];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&(cols.len() as u16).to_le_bytes());
        p.extend_from_slice(&(n as u16).to_le_bytes());
        p.push(0);
        p.extend_from_slice(&0u16.to_le_bytes());
        conn.send(s, &p);
        let eof = (!conn.deprecate_eof()).then(|| crate::proto::eof_payload(conn.status()));
        for defs in [vec![Column::param(); n], cols.clone()] {
            for d in &defs {
                conn.send(s, &d.encode());
            }
            if let (false, Some(e)) = (defs.is_empty(), &eof) {
                conn.send(s, e);
            }
        }
        let mut prepared = Prepared::new(stmt, n);
        prepared.last_meta = (!cols.is_empty()).then(|| encode_meta(&cols));
        conn.stmts.insert(id, prepared);
    }

    /// How `c` writes a result (`exec`: binary rows of that statement).
    fn shape(&self, c: ConnId, exec: Option<u32>, send_metadata: bool) -> Shape {
        let conn = self.conn(c);
        Shape {
            deprecate_eof: conn.deprecate_eof(),
            cache_metadata: conn.cache_metadata(),
            send_metadata,
            binary: exec.is_some(),
            status: conn.status(),
        }
    }

    /// Sends the metadata of a result of `cols` from `*seq`: the column
    /// count, the definitions, the EOF without `DEPRECATE_EOF`. For an
    /// execute under the metadata cache the definitions are left out when
    /// they are those this connection last received for the statement, and
    /// what is sent is remembered.
    pub(crate) fn send_metadata(
        &mut self,
        c: ConnId,
        seq: &mut u8,
        cols: &[Column],
        exec: Option<u32>,
    ) {
        let conn = self.conn_mut(c);
        let cache = conn.cache_metadata();
        let mut send_metadata = true;
        if let Some(p) = exec.and_then(|id| conn.stmts.get_mut(&id)) {
            let meta = encode_meta(cols);
            send_metadata = !cache || p.last_meta.as_ref() != Some(&meta);
            if send_metadata {
                p.last_meta = Some(meta);
            }
        }
        let shape = self.shape(c, exec, send_metadata);
        let mut out = Vec::new();
        crate::proto::write_metadata(&mut out, seq, cols, shape);
        self.conn_mut(c).send_raw(&out);
    }

    /// Sends the rows and the end of a result from `*seq`.
    fn send_rows(&mut self, c: ConnId, seq: &mut u8, rows: &[Vec<Value>], exec: Option<u32>) {
        let shape = self.shape(c, exec, true);
        let mut out = Vec::new();
        crate::proto::write_rows(&mut out, seq, rows, shape);
        self.conn_mut(c).send_raw(&out);
    }

    // The fields of `Work::Stmt`, the reply's sequence id and the time.
    #[allow(clippy::too_many_arguments)]
    fn statement(
        &mut self,
        c: ConnId,
        stmt: Stmt,
        params: Vec<Bound>,
        exec: Option<u32>,
        meta_sent: bool,
        seq: u8,
        t: u64,
    ) {
        let mut s = seq;
        if matches!(
            stmt,
            Stmt::Insert { .. } | Stmt::SelectV { .. } | Stmt::SelectAll
        ) {
            self.implicit_begin(c);
        }
        let cols = columns(&stmt, Some(&params));
        let rows: Vec<Vec<Value>> = match &stmt {
            Stmt::SelectInt { value, .. } => vec![vec![Value::Int(*value)]],
            Stmt::PlusSleep { a, add, names, .. } => {
                let v = match resolve(a, &params).1 {
                    PVal::Null => Value::Null,
                    v if cols[0].ty == ty::DOUBLE => Value::Double(as_f64(&v) + *add as f64),
                    PVal::Int(i) => match i.checked_add(*add) {
                        Some(x) => Value::Int(x),
                        None => {
                            let m = format!("BIGINT value is out of range in '{}'", names[0]);
                            return self.send_err(c, &mut s, &err(1690, "22003", m));
                        }
                    },
                    _ => {
                        let m = format!("BIGINT UNSIGNED value is out of range in '{}'", names[0]);
                        return self.send_err(c, &mut s, &err(1690, "22003", m));
                    }
                };
                vec![vec![v, Value::Int(0)]]
            }
            Stmt::Sleep { .. } => vec![vec![Value::Int(0)]],
            Stmt::SelectV { id } => {
                let key = match resolve(id, &params).1 {
                    PVal::Int(i) => Some(i),
                    PVal::Double(d) if d.fract() == 0.0 && d.abs() < 9.2e18 => Some(d as i64),
                    PVal::Bytes(b) => std::str::from_utf8(&b)
                        .ok()
                        .and_then(|x| x.trim().parse().ok()),
                    _ => None,
                };
                let conn = &mut self.conns[c as usize - 1];
                let found = key.and_then(|k| self.db.get(conn.txn.as_mut(), k));
                found.map(|v| vec![Value::Bytes(v)]).into_iter().collect()
            }
            Stmt::SelectAll => {
                let conn = &mut self.conns[c as usize - 1];
                let rows = self.db.scan(conn.txn.as_mut());
                rows.into_iter()
                    .map(|(k, v)| vec![Value::Int(k), Value::Bytes(v)])
                    .collect()
            }
            Stmt::Seq { n } => (1..=*n as i64).map(|i| vec![Value::Int(i)]).collect(),
            Stmt::Insert { rows } => {
                let mut out = Vec::with_capacity(rows.len());
                for (n, (id, v)) in rows.iter().enumerate() {
                    let row = to_id(resolve(id, &params).1, n + 1)
                        .and_then(|id| Ok((id, to_blob(resolve(v, &params).1)?)));
                    match row {
                        Ok(r) => out.push(r),
                        Err(e) => return self.send_err(c, &mut s, &e),
                    }
                }
                let again = Work::Stmt {
                    stmt,
                    params,
                    exec,
                    meta_sent,
                };
                return self.insert(c, out, again, seq, t);
            }
            Stmt::Begin {
                snapshot,
                read_only,
            } => {
                self.commit(c);
                let txn = self.db.begin(*snapshot, *read_only);
                self.conn_mut(c).txn = Some(txn);
                return self.send_ok(c, &mut s, 0);
            }
            Stmt::Autocommit(on) => {
                if *on {
                    self.commit(c);
                }
                self.conn_mut(c).autocommit = *on;
                return self.send_ok(c, &mut s, 0);
            }
            Stmt::Commit => {
                self.commit(c);
                return self.send_ok(c, &mut s, 0);
            }
            Stmt::Rollback => {
                self.rollback(c);
                return self.send_ok(c, &mut s, 0);
            }
            Stmt::Ignored => return self.send_ok(c, &mut s, 0),
            Stmt::Kill { query, id } => return self.kill(c, *query, *id, seq),
            Stmt::LoadData {
                file,
                fields,
                lines,
            } => {
                let mut p = vec![0xFB];
                p.extend_from_slice(file);
                let conn = self.conn_mut(c);
                conn.send(&mut s, &p);
                conn.busy = Some(Busy {
                    done_at: u64::MAX,
                    seq: s,
                    kind: BusyKind::Load(Load {
                        next_seq: s,
                        data: Vec::new(),
                        fields: fields.clone(),
                        lines: lines.clone(),
                        killed: false,
                    }),
                });
                return;
            }
        };
        if !meta_sent {
            self.send_metadata(c, &mut s, &cols, exec);
        }
        self.send_rows(c, &mut s, &rows, exec);
    }

    /// Inserts rows for `c`: OK, ERR, or a lock wait that re-runs `again`.
    fn insert(&mut self, c: ConnId, rows: Vec<(i64, Vec<u8>)>, again: Work, seq: u8, t: u64) {
        let mut s = seq;
        let conn = &mut self.conns[c as usize - 1];
        match self.db.insert(c, conn.txn.as_mut(), rows) {
            InsertOutcome::Done(n) => self.send_ok(c, &mut s, n),
            InsertOutcome::Err(e) => self.send_err(c, &mut s, &e),
            InsertOutcome::Wait(holder) => {
                if self.waits_for(holder, c) {
                    let m = "Deadlock found when trying to get lock; try restarting transaction";
                    self.rollback(c);
                    return self.send_err(c, &mut s, &err(1213, "40001", m));
                }
                self.conn_mut(c).busy = Some(Busy {
                    done_at: t.saturating_add(LOCK_WAIT_TIMEOUT_NS),
                    seq,
                    kind: BusyKind::LockWait {
                        work: again,
                        holder,
                    },
                });
            }
        }
    }

    /// True when `from` (transitively) waits for a lock held by `target`.
    fn waits_for(&self, from: ConnId, target: ConnId) -> bool {
        let mut h = from;
        for _ in 0..=self.conns.len() {
            if h == target {
                return true;
            }
            match &self.conn(h).busy {
                Some(Busy {
                    kind: BusyKind::LockWait { holder, .. },
                    ..
                }) => h = *holder,
                _ => return false,
            }
        }
        false
    }

    fn kill(&mut self, c: ConnId, query: bool, id: u64, seq: u8) {
        let mut s = seq;
        let target = ConnId::try_from(id)
            .ok()
            .filter(|&t| t >= 1 && (t as usize) <= self.conns.len() && !self.conn(t).is_closed());
        let Some(target) = target else {
            return self.send_err(
                c,
                &mut s,
                &err(1094, "HY000", format!("Unknown thread id: {id}")),
            );
        };
        if target == c {
            if query {
                return self.send_err(
                    c,
                    &mut s,
                    &err(1317, "70100", "Query execution was interrupted"),
                );
            }
            self.send_err(c, &mut s, &err(1927, "70100", "Connection was killed"));
            return self.close(c);
        }
        let tconn = self.conn_mut(target);
        match tconn.busy.take() {
            Some(Busy {
                kind: BusyKind::Load(mut l),
                done_at,
                seq,
            }) if query => {
                l.killed = true;
                tconn.busy = Some(Busy {
                    done_at,
                    seq,
                    kind: BusyKind::Load(l),
                });
            }
            Some(b) => {
                let mut ts = b.seq;
                let e = if query {
                    err(1317, "70100", "Query execution was interrupted")
                } else {
                    err(1927, "70100", "Connection was killed")
                };
                tconn.send(&mut ts, &e.payload());
                if !query {
                    self.close(target);
                }
            }
            None if !query => self.close(target),
            None => {}
        }
        self.dirty.push(target);
        self.send_ok(c, &mut s, 0);
    }
}
