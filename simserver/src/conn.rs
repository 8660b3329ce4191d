//! One connection's state, and its pump: reading packets (handshake, auth
//! switch, commands, LOAD DATA file contents) and starting commands.

use std::collections::BTreeMap;

use crate::db::Txn;
use crate::handshake::{self, Login};
use crate::proto::{SqlError, caps, status};
use crate::sql::{self, Stmt};
use crate::stmt::{Bound, Prepared, decode_execute};
use crate::wire::{AsmError, Assembler, ByteQueue, Reader, put_packet};
use crate::{ConnId, Server};

/// Where a connection is.
#[derive(Debug)]
pub enum Phase {
    /// Greeting sent; awaiting the HandshakeResponse41 (sequence id 1).
    Greeting,
    /// AuthSwitchRequest sent; awaiting the client's answer.
    AuthSwitch {
        /// The sequence id the answer carries.
        seq: u8,
        /// The login being authenticated.
        login: Login,
        /// True for COM_CHANGE_USER (else the initial handshake).
        change_user: bool,
    },
    /// Authenticated: commands.
    Ready,
    /// Closed by the server.
    Closed,
}

/// A command that produces a reply, run when its time comes.
#[derive(Debug)]
pub enum Work {
    /// A statement (COM_QUERY, or COM_STMT_EXECUTE of statement `exec`).
    Stmt {
        /// The statement.
        stmt: Stmt,
        /// Bound parameters (empty for text).
        params: Vec<Bound>,
        /// The prepared statement's id, for COM_STMT_EXECUTE.
        exec: Option<u32>,
        /// The result's metadata went out when the statement started (it
        /// sleeps): only its rows and end (or an error) remain.
        meta_sent: bool,
    },
    /// COM_STMT_PREPARE.
    Prepare(Vec<u8>),
    /// COM_PING.
    Ping,
    /// COM_INIT_DB.
    InitDb(String),
    /// COM_RESET_CONNECTION.
    Reset,
    /// COM_STMT_RESET.
    StmtReset(u32),
    /// COM_CHANGE_USER.
    ChangeUser(Login),
    /// The rows of a LOAD DATA whose file was received.
    LoadApply(Result<Vec<(i64, Vec<u8>)>, SqlError>),
    /// A precomputed error reply.
    Fail(SqlError),
}

/// A LOAD DATA LOCAL receiving its file.
#[derive(Debug)]
pub struct Load {
    /// The sequence id of the next data packet.
    pub next_seq: u8,
    /// File contents so far.
    pub data: Vec<u8>,
    /// Field terminator.
    pub fields: Vec<u8>,
    /// Line terminator.
    pub lines: Vec<u8>,
    /// Killed (KILL QUERY) while receiving: the rest is read and dropped.
    pub killed: bool,
}

/// What a busy connection is doing.
#[derive(Debug)]
pub enum BusyKind {
    /// Completes at `done_at`.
    Run(Work),
    /// Waits for a row lock held by `holder`'s transaction; times out at `done_at`.
    LockWait {
        /// The command, re-run when the lock is released.
        work: Work,
        /// The connection holding the lock.
        holder: ConnId,
    },
    /// Receiving a LOAD DATA file.
    Load(Load),
}

/// A command in progress.
#[derive(Debug)]
pub struct Busy {
    /// When it completes (or times out).
    pub done_at: u64,
    /// The sequence id of the reply's next packet (the first, unless a
    /// sleeping statement's metadata went out when it started).
    pub seq: u8,
    /// What it is.
    pub kind: BusyKind,
}

/// One connection.
pub struct Conn {
    pub id: ConnId,
    pub phase: Phase,
    pub inbuf: ByteQueue,
    pub asm: Assembler,
    pub out: ByteQueue,
    pub busy: Option<Busy>,
    /// Negotiated capabilities.
    pub caps: u32,
    /// Negotiated MariaDB extended capabilities.
    pub ext: u32,
    pub user: String,
    pub db: Option<String>,
    pub scramble: [u8; 20],
    pub txn: Option<Txn>,
    pub stmts: BTreeMap<u32, Prepared>,
    pub next_stmt: u32,
    /// `SET autocommit`; on by default.
    pub autocommit: bool,
    /// The client closed the connection.
    pub client_gone: bool,
    /// Closed by COM_QUIT.
    pub quit: bool,
}

impl Conn {
    /// A new connection (greeting not yet queued).
    pub fn new(id: ConnId) -> Conn {
        Conn {
            id,
            phase: Phase::Greeting,
            inbuf: ByteQueue::default(),
            asm: Assembler::default(),
            out: ByteQueue::default(),
            busy: None,
            caps: 0,
            ext: 0,
            user: String::new(),
            db: None,
            scramble: handshake::scramble_for(id),
            txn: None,
            stmts: BTreeMap::new(),
            next_stmt: 1,
            autocommit: true,
            client_gone: false,
            quit: false,
        }
    }

    /// True once closed by the server.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// When the command in progress completes or times out by itself.
    pub fn due_at(&self) -> Option<u64> {
        match &self.busy {
            Some(Busy {
                done_at,
                kind: BusyKind::Run(_) | BusyKind::LockWait { .. },
                ..
            }) if !self.is_closed() => Some(*done_at),
            _ => None,
        }
    }

    /// A statement id as sent: MariaDB's `0xFFFFFFFF` names the statement
    /// this connection prepared last.
    pub fn stmt_id(&self, raw: u32) -> u32 {
        if raw == u32::MAX && self.next_stmt > 1 {
            self.next_stmt - 1
        } else {
            raw
        }
    }

    /// Status flags for OK/EOF packets.
    pub fn status(&self) -> u16 {
        let ac = if self.autocommit {
            status::AUTOCOMMIT
        } else {
            0
        };
        ac | if self.txn.is_some() {
            status::IN_TRANS
        } else {
            0
        }
    }

    /// `CLIENT_DEPRECATE_EOF` negotiated.
    pub fn deprecate_eof(&self) -> bool {
        self.caps & caps::DEPRECATE_EOF != 0
    }

    /// `MARIADB_CLIENT_CACHE_METADATA` negotiated.
    pub fn cache_metadata(&self) -> bool {
        self.ext & caps::EXT_CACHE_METADATA != 0
    }

    /// Queues framed packets (dropped when the client is gone).
    pub fn send(&mut self, seq: &mut u8, payload: &[u8]) {
        let mut b = Vec::with_capacity(payload.len() + 4);
        put_packet(&mut b, seq, payload);
        if !self.client_gone {
            self.out.push(&b);
        }
    }

    /// Queues already framed bytes (dropped when the client is gone).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if !self.client_gone {
            self.out.push(bytes);
        }
    }
}

fn err(code: u16, state: &'static str, msg: impl Into<String>) -> SqlError {
    SqlError::new(code, state, msg)
}

impl Server {
    /// Does everything connection `c` can do at time `t`.
    pub(crate) fn pump(&mut self, c: ConnId, t: u64) {
        loop {
            let window = self.cfg.out_window;
            let max = self.cfg.max_allowed_packet;
            let conn = self.conn_mut(c);
            if conn.is_closed() {
                return;
            }
            let expect = match (&conn.busy, &conn.phase) {
                (Some(b), _) => match &b.kind {
                    BusyKind::Run(_) | BusyKind::LockWait { .. } if b.done_at <= t => {
                        self.finish(c, t);
                        continue;
                    }
                    BusyKind::Load(l) if !conn.client_gone => l.next_seq,
                    BusyKind::Load(_) => {
                        // The client went away mid-file: nothing is applied.
                        conn.busy = None;
                        continue;
                    }
                    _ => return,
                },
                (None, _) if conn.client_gone => {
                    self.close(c);
                    return;
                }
                (None, Phase::Greeting) => 1,
                (None, Phase::AuthSwitch { seq, .. }) => *seq,
                (None, _) => {
                    if !conn.asm.in_progress() && conn.out.len() > window {
                        return;
                    }
                    0
                }
            };
            let got = conn.asm.pull(&mut conn.inbuf, expect, max);
            match got {
                Ok(None) => return,
                Ok(Some((payload, next))) => self.on_packet(c, payload, next, t),
                Err(AsmError::OutOfOrder { expected, got }) => {
                    self.violation(
                        c,
                        format!("packet out of order: sequence id {got}, expected {expected}"),
                    );
                    let mut seq = got.wrapping_add(1);
                    let e = err(1156, "08S01", "Got packets out of order");
                    self.conn_mut(c).send(&mut seq, &e.payload());
                    self.abort_busy(c);
                    self.close(c);
                    return;
                }
                Err(AsmError::TooBig) => {
                    let mut seq = expect.wrapping_add(1);
                    let e = err(
                        1153,
                        "08S01",
                        "Got a packet bigger than 'max_allowed_packet' bytes",
                    );
                    self.conn_mut(c).send(&mut seq, &e.payload());
                    self.abort_busy(c);
                    self.close(c);
                    return;
                }
            }
        }
    }

    /// Closes `c` on the server side: rolls back, frees statements.
    pub(crate) fn close(&mut self, c: ConnId) {
        let conn = self.conn_mut(c);
        conn.phase = Phase::Closed;
        conn.busy = None;
        conn.inbuf.clear();
        conn.asm.reset();
        conn.stmts.clear();
        self.rollback(c);
    }

    fn on_packet(&mut self, c: ConnId, payload: Vec<u8>, next: u8, t: u64) {
        let conn = self.conn_mut(c);
        if let Some(Busy {
            kind: BusyKind::Load(_),
            ..
        }) = conn.busy
        {
            self.on_file_data(c, payload, next, t);
            return;
        }
        match std::mem::replace(&mut conn.phase, Phase::Ready) {
            Phase::Greeting => self.on_handshake_response(c, &payload, next),
            Phase::AuthSwitch {
                login, change_user, ..
            } => self.finish_login(c, login, &payload, next, change_user),
            _ => self.on_command(c, payload, next, t),
        }
    }

    fn on_handshake_response(&mut self, c: ConnId, payload: &[u8], next: u8) {
        let bad = match handshake::parse_response(payload) {
            Err(e) => Some(format!("malformed handshake response ({})", e.0)),
            Ok(l) if l.caps & caps::PROTOCOL_41 == 0 => {
                Some("client without CLIENT_PROTOCOL_41".into())
            }
            Ok(l) if l.caps & caps::SSL != 0 => {
                Some("client asks for SSL, which was not offered".into())
            }
            Ok(login) => {
                let ext = if self.cfg.cache_metadata {
                    caps::EXT_CACHE_METADATA
                } else {
                    0
                };
                let conn = self.conn_mut(c);
                conn.caps = login.caps & caps::SERVER;
                conn.ext = login.ext_caps & ext;
                if login.plugin != handshake::NATIVE {
                    let mut seq = next;
                    let p = handshake::auth_switch(&conn.scramble);
                    conn.send(&mut seq, &p);
                    conn.phase = Phase::AuthSwitch {
                        seq,
                        login,
                        change_user: false,
                    };
                } else {
                    let auth = login.auth.clone();
                    self.finish_login(c, login, &auth, next, false);
                }
                None
            }
        };
        if let Some(what) = bad {
            self.violation(c, &what);
            let mut seq = next;
            let e = err(1043, "08S01", "Bad handshake");
            self.conn_mut(c).send(&mut seq, &e.payload());
            self.close(c);
        }
    }

    /// Checks the password; OK (ready) or ERR 1045 (closed).
    pub(crate) fn finish_login(
        &mut self,
        c: ConnId,
        login: Login,
        auth: &[u8],
        next: u8,
        change_user: bool,
    ) {
        let good = login.user == self.cfg.user
            && handshake::verify_native(&self.cfg.password, &self.conn(c).scramble, auth);
        let mut seq = next;
        if !good {
            let e = err(
                1045,
                "28000",
                format!(
                    "Access denied for user '{}'@'localhost' (using password: {})",
                    login.user,
                    if auth.is_empty() { "NO" } else { "YES" }
                ),
            );
            self.conn_mut(c).send(&mut seq, &e.payload());
            self.close(c);
            return;
        }
        if change_user {
            self.rollback(c);
            let conn = self.conn_mut(c);
            conn.stmts.clear();
            conn.autocommit = true;
        }
        let conn = self.conn_mut(c);
        conn.user = login.user;
        conn.db = login.db;
        conn.phase = Phase::Ready;
        let ok = crate::proto::ok_payload(0, 0, conn.status());
        conn.send(&mut seq, &ok);
    }

    /// Starts `work` at `t`; it completes after the latency plus `extra_ns`.
    fn start(&mut self, c: ConnId, work: Work, seq: u8, extra_ns: u64, t: u64) {
        let d = self.cfg.latency_ns.saturating_add(extra_ns);
        self.conn_mut(c).busy = Some(Busy {
            done_at: t.saturating_add(d),
            seq,
            kind: BusyKind::Run(work),
        });
    }

    /// Starts a COM_QUERY or COM_STMT_EXECUTE at `t`. A statement that
    /// sleeps sends its result's metadata now, as a real server does before
    /// it evaluates the row; the rows (or an error) follow at completion.
    fn start_statement(&mut self, c: ConnId, mut work: Work, next: u8, t: u64) {
        let sleep = work_sleep(&work);
        let mut seq = next;
        if let Work::Stmt {
            stmt,
            params,
            exec,
            meta_sent,
        } = &mut work
        {
            if sleep > 0 {
                let cols = crate::eval::columns(stmt, Some(params));
                self.send_metadata(c, &mut seq, &cols, *exec);
                *meta_sent = true;
            }
        }
        self.start(c, work, seq, sleep, t);
    }

    fn on_command(&mut self, c: ConnId, payload: Vec<u8>, next: u8, t: u64) {
        let Some((&cmd, body)) = payload.split_first() else {
            self.violation(c, "empty command packet");
            let e = err(1047, "08S01", "Unknown command");
            return self.start(c, Work::Fail(e), next, 0, t);
        };
        let conn = self.conn(c);
        let id_of = |body: &[u8]| {
            Reader::new(body)
                .u32("statement id")
                .ok()
                .map(|i| conn.stmt_id(i))
        };
        match cmd {
            0x01 => {
                let left = self.conn(c).inbuf.len();
                if left > 0 {
                    self.violation(c, format!("{left} bytes sent after COM_QUIT"));
                }
                self.conn_mut(c).quit = true;
                self.close(c);
            }
            0x02 => {
                let db = String::from_utf8_lossy(body).into_owned();
                self.start(c, Work::InitDb(db), next, 0, t);
            }
            0x03 => {
                let work = self.text_query(c, body);
                self.start_statement(c, work, next, t);
            }
            0x0E => self.start(c, Work::Ping, next, 0, t),
            0x11 => {
                let conn = self.conn(c);
                match handshake::parse_change_user(body, conn.caps, conn.ext) {
                    Ok(login) => self.start(c, Work::ChangeUser(login), next, 0, t),
                    Err(e) => {
                        self.violation(c, format!("malformed COM_CHANGE_USER ({})", e.0));
                        let mut seq = next;
                        let e = err(1043, "08S01", "Bad handshake");
                        self.conn_mut(c).send(&mut seq, &e.payload());
                        self.close(c);
                    }
                }
            }
            0x16 => self.start(c, Work::Prepare(body.to_vec()), next, 0, t),
            0x17 => {
                let work = self.execute(c, body);
                self.start_statement(c, work, next, t);
            }
            0x18 => {
                let mut r = Reader::new(body);
                let (Ok(id), Ok(param)) = (r.u32("id"), r.u16("param")) else {
                    return self.violation(c, "malformed COM_STMT_SEND_LONG_DATA");
                };
                let id = self.conn(c).stmt_id(id);
                let data = r.rest();
                let Some(p) = self.conn_mut(c).stmts.get_mut(&id) else {
                    return;
                };
                match p.long.get_mut(usize::from(param)) {
                    Some(slot) => slot.get_or_insert_with(Vec::new).extend_from_slice(data),
                    None => {
                        p.long_error = true;
                        let n = p.params;
                        self.violation(c, format!("COM_STMT_SEND_LONG_DATA for parameter {param} of statement {id}, which has {n}"));
                    }
                }
            }
            0x19 => match id_of(body) {
                Some(id) if body.len() == 4 => {
                    self.conn_mut(c).stmts.remove(&id);
                }
                _ => self.violation(c, "malformed COM_STMT_CLOSE"),
            },
            0x1A => match id_of(body) {
                Some(id) if body.len() == 4 => self.start(c, Work::StmtReset(id), next, 0, t),
                _ => {
                    self.violation(c, "malformed COM_STMT_RESET");
                    let e = err(1210, "HY000", "Incorrect arguments to mysqld_stmt_reset");
                    self.start(c, Work::Fail(e), next, 0, t);
                }
            },
            0x1F => self.start(c, Work::Reset, next, 0, t),
            _ => {
                self.violation(c, format!("unknown command {cmd:#04x}"));
                let e = err(1047, "08S01", "Unknown command");
                self.start(c, Work::Fail(e), next, 0, t);
            }
        }
    }

    fn text_query(&mut self, c: ConnId, sql: &[u8]) -> Work {
        match sql::parse(sql, false) {
            Err(e) => {
                if e.garbage {
                    let at = e.at;
                    self.violation(
                        c,
                        format!("COM_QUERY text with a non-printable byte at offset {at}"),
                    );
                }
                Work::Fail(e.to_sql_error(sql))
            }
            Ok((Stmt::LoadData { .. }, _)) if self.conn(c).caps & caps::LOCAL_FILES == 0 => {
                Work::Fail(err(
                    1148,
                    "42000",
                    "The used command is not allowed with this MariaDB version",
                ))
            }
            Ok((stmt, _)) => Work::Stmt {
                stmt,
                params: Vec::new(),
                exec: None,
                meta_sent: false,
            },
        }
    }

    fn execute(&mut self, c: ConnId, body: &[u8]) -> Work {
        let Ok(id) = Reader::new(body).u32("statement id") else {
            self.violation(c, "COM_STMT_EXECUTE without a statement id");
            return Work::Fail(err(
                1210,
                "HY000",
                "Incorrect arguments to mysqld_stmt_execute",
            ));
        };
        let id = self.conn(c).stmt_id(id);
        let Some(p) = self.conn_mut(c).stmts.get_mut(&id) else {
            return Work::Fail(err(
                1243,
                "HY000",
                format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_execute"),
            ));
        };
        match decode_execute(body, p) {
            Ok(params) => Work::Stmt {
                stmt: p.stmt.clone(),
                params,
                exec: Some(id),
                meta_sent: false,
            },
            Err(why) => {
                p.long_error = false;
                self.violation(
                    c,
                    format!("malformed COM_STMT_EXECUTE of statement {id}: {why}"),
                );
                Work::Fail(err(
                    1210,
                    "HY000",
                    "Incorrect arguments to mysqld_stmt_execute",
                ))
            }
        }
    }

    fn on_file_data(&mut self, c: ConnId, payload: Vec<u8>, next: u8, t: u64) {
        let conn = self.conn_mut(c);
        let Some(Busy {
            kind: BusyKind::Load(load),
            ..
        }) = &mut conn.busy
        else {
            unreachable!("file data outside LOAD DATA");
        };
        load.next_seq = next;
        if !payload.is_empty() {
            if !load.killed {
                load.data.extend_from_slice(&payload);
            }
            return;
        }
        let Some(Busy {
            kind: BusyKind::Load(load),
            ..
        }) = conn.busy.take()
        else {
            unreachable!();
        };
        let work = if load.killed {
            Work::Fail(err(1317, "70100", "Query execution was interrupted"))
        } else {
            Work::LoadApply(crate::eval::parse_file(
                &load.data,
                &load.fields,
                &load.lines,
            ))
        };
        // The file is in: the reply comes at once.
        conn.busy = Some(Busy {
            done_at: t,
            seq: next,
            kind: BusyKind::Run(work),
        });
    }
}

/// The SLEEP of a work, in nanoseconds.
fn work_sleep(w: &Work) -> u64 {
    match w {
        Work::Stmt { stmt, params, .. } => crate::eval::sleep_ns(stmt, params),
        _ => 0,
    }
}
