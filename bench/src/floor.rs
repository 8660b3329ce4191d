//! The floor: the least a client can do for the same queries on the same
//! server, so the report shows how far each driver is from the limit.
//!
//! A minimal client of its own, not a driver: it logs in over a blocking
//! `TcpStream` (mysql_native_password only), then runs N connections on one
//! io_uring per client thread, set up as well as this kernel allows:
//!
//! - `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` (falling back to less on
//!   older kernels, said once on stderr), the ring fd registered and the
//!   sockets as fixed files;
//! - one multishot recv per connection into a provided-buffer ring, re-armed
//!   only when the kernel ends it;
//! - sends with `IOSQE_CQE_SKIP_SUCCESS` (no completion unless they fail);
//! - one `io_uring_enter` per loop turn that submits everything queued and
//!   waits for several completions (an eighth of the queries in flight, 1 to
//!   8; a row stream waits for 8 or 1 ms).
//!
//! Replies are parsed only far enough to find their end: packet headers and
//! the reply's state (column count, definitions, rows, OK/ERR). The point
//! selects send COM_QUERY with the id in the SQL text, or COM_STMT_EXECUTE of
//! a statement prepared at login (MariaDB metadata caching when the server
//! offers it, so the replies carry no column definitions). The decode reads
//! walk every row's fields too: length-encoded ones in text rows, and in
//! binary rows the NULL bitmap and each column type's width. Like the
//! drivers, the floor times every query into the same latency histogram, so
//! the harness's own cost is on both sides of the ratio.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Once};
use std::time::Instant;

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use sha1::{Digest as _, Sha1};

use crate::BoxResult;
use crate::driver::{Op, Rng};
use crate::harness::{DecodeKind, Meter, Plan, SendError, ThreadOut, collect_timed};
use crate::setup::{DECODE_PREPARED_SQL, POINT_SQL, decode_sql};
use crate::stats::{Hist, Sample, new_hist, record};
use crate::sys::{ThreadMeter, pin};

/// The floor's column in the report.
pub const NAME: &str = "floor (raw io_uring)";

/// Whether the floor runs `op`: the point selects only.
pub fn supports(op: Op) -> bool {
    matches!(op, Op::PointText | Op::PointPrepared)
}

// ------------------------------------------------------------------ login

/// Client capability flags the floor asks for (never `CLIENT_MYSQL`, bit 0,
/// so MariaDB reads the extended flags).
mod caps {
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const DEPRECATE_EOF: u32 = 1 << 24;
    /// MariaDB's extended flag (bit 36, i.e. bit 4 of the upper half):
    /// execute replies skip column definitions the client already has.
    pub const MARIADB_CACHE_METADATA: u32 = 1 << 4;
}

/// Where and as whom to log in, from the tool's URL.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    user: String,
    password: String,
    db: String,
}

impl Target {
    fn from_url(url: &str) -> BoxResult<Target> {
        let u = url::Url::parse(url)?;
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| format!("floor: bad percent-encoding in `{s}`"))
        };
        Ok(Target {
            host: u.host_str().unwrap_or("127.0.0.1").to_string(),
            port: u.port().unwrap_or(3306),
            user: decode(u.username())?,
            password: decode(u.password().unwrap_or(""))?,
            db: decode(u.path().trim_start_matches('/'))?,
        })
    }
}

/// `%XX` escapes decoded (the URL crate leaves user and password encoded).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads one packet: (sequence id, payload).
fn read_packet(s: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h)?;
    let mut p = vec![0; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
    s.read_exact(&mut p)?;
    Ok((h[3], p))
}

/// Writes one packet (payloads under 16 MiB).
fn write_packet(s: &mut TcpStream, seq: u8, payload: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    out.push(seq);
    out.extend_from_slice(payload);
    s.write_all(&out)
}

fn protocol(what: &str) -> io::Error {
    io::Error::other(format!("floor: {what}"))
}

/// An ERR packet's code and message.
fn server_error(p: &[u8]) -> io::Error {
    let code = p.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    // Protocol 4.1: `#` and a 5-byte SQLSTATE before the message.
    let msg = match p.get(3) {
        Some(b'#') => p.get(9..).unwrap_or_default(),
        _ => p.get(3..).unwrap_or_default(),
    };
    io::Error::other(format!(
        "server error {code}: {}",
        String::from_utf8_lossy(msg)
    ))
}

/// A bounds-checked reader over a packet.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| protocol("packet too short"))?;
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> io::Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> io::Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Up to the next NUL (consumed), or to the end.
    fn cstr(&mut self) -> &'a [u8] {
        let rest = &self.b[self.at.min(self.b.len())..];
        let n = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        self.at += (n + 1).min(rest.len());
        &rest[..n]
    }

    fn lenenc(&mut self) -> io::Result<u64> {
        let (v, used) = lenenc(&self.b[self.at.min(self.b.len())..])
            .ok_or_else(|| protocol("bad length-encoded integer"))?;
        self.at += used;
        Ok(v)
    }

    fn lenenc_bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.lenenc()? as usize;
        self.take(n)
    }
}

/// A length-encoded integer at the start of `b`: (value, bytes used).
#[inline(always)]
fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    let n = |k: usize| {
        let mut v = [0u8; 8];
        v[..k].copy_from_slice(b.get(1..1 + k)?);
        Some((u64::from_le_bytes(v), 1 + k))
    };
    match *b.first()? {
        x @ 0..=0xFA => Some((x as u64, 1)),
        0xFC => n(2),
        0xFD => n(3),
        0xFE => n(8),
        _ => None, // 0xFB is NULL, 0xFF an error: not integers
    }
}

/// mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))).
fn native_token(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(&nonce[..nonce.len().min(20)]);
    h.update(stage2);
    stage1
        .iter()
        .zip(h.finalize())
        .map(|(a, b)| a ^ b)
        .collect()
}

/// A column definition's type byte.
fn column_type(p: &[u8]) -> io::Result<u8> {
    let mut c = Cursor { b: p, at: 0 };
    for _ in 0..6 {
        c.lenenc_bytes()?; // catalog, schema, table, org_table, name, org_name
    }
    c.lenenc()?; // length of the fixed fields (0x0C)
    c.take(2 + 4)?; // charset, column length
    c.u8()
}

/// A logged-in connection, before the ring takes it over.
struct Session {
    stream: TcpStream,
    /// MariaDB metadata caching was negotiated.
    cache_metadata: bool,
    /// The prepared statement: its id and column types.
    stmt: Option<(u32, Vec<u8>)>,
}

impl Session {
    /// Connects (TCP_NODELAY) and logs in with mysql_native_password.
    fn connect(t: &Target) -> io::Result<Session> {
        let mut s = TcpStream::connect((t.host.as_str(), t.port))?;
        s.set_nodelay(true)?;
        let (_, hello) = read_packet(&mut s)?;
        if hello.first() == Some(&0xFF) {
            return Err(server_error(&hello));
        }
        let mut c = Cursor { b: &hello, at: 0 };
        if c.u8()? != 10 {
            return Err(protocol("not a protocol 10 greeting"));
        }
        c.cstr(); // server version
        c.u32()?; // connection id
        let mut nonce = c.take(8)?.to_vec();
        c.u8()?;
        let caps_low = c.u16()? as u32;
        c.u8()?; // charset
        c.u16()?; // status
        let server_caps = caps_low | (c.u16()? as u32) << 16;
        let nonce_len = c.u8()? as usize;
        c.take(6)?;
        // MariaDB puts its extended flags in the last 4 reserved bytes when
        // it does not claim CLIENT_MYSQL.
        let ext = c.u32()?;
        let ext = if server_caps & 1 == 0 { ext } else { 0 };
        nonce.extend_from_slice(c.take(nonce_len.saturating_sub(8).max(13))?);
        nonce.truncate(20);
        let need =
            caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH | caps::DEPRECATE_EOF;
        if server_caps & need != need {
            return Err(protocol(
                "the server lacks PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH or DEPRECATE_EOF",
            ));
        }
        let want = need
            | caps::LONG_FLAG
            | caps::CONNECT_WITH_DB
            | caps::TRANSACTIONS
            | caps::MULTI_RESULTS;
        let ext = ext & caps::MARIADB_CACHE_METADATA;
        let mut r = Vec::with_capacity(128);
        r.extend_from_slice(&(want & server_caps).to_le_bytes());
        r.extend_from_slice(&(16u32 << 20).to_le_bytes()); // max packet
        r.push(45); // utf8mb4_general_ci
        r.extend_from_slice(&[0; 19]);
        r.extend_from_slice(&ext.to_le_bytes());
        r.extend_from_slice(t.user.as_bytes());
        r.push(0);
        let token = native_token(t.password.as_bytes(), &nonce);
        r.push(token.len() as u8);
        r.extend_from_slice(&token);
        r.extend_from_slice(t.db.as_bytes());
        r.push(0);
        r.extend_from_slice(b"mysql_native_password\0");
        write_packet(&mut s, 1, &r)?;
        let (seq, reply) = read_packet(&mut s)?;
        match reply.first() {
            Some(0x00) => {}
            Some(0xFF) => return Err(server_error(&reply)),
            Some(0xFE) => {
                let mut c = Cursor { b: &reply, at: 1 };
                let plugin = c.cstr();
                if plugin != b"mysql_native_password" {
                    return Err(protocol(&format!(
                        "the server wants auth plugin {}; the floor speaks mysql_native_password only",
                        String::from_utf8_lossy(plugin)
                    )));
                }
                let nonce = c.cstr().to_vec();
                write_packet(
                    &mut s,
                    seq.wrapping_add(1),
                    &native_token(t.password.as_bytes(), &nonce),
                )?;
                let (_, ok) = read_packet(&mut s)?;
                if ok.first() != Some(&0x00) {
                    return Err(server_error(&ok));
                }
            }
            _ => return Err(protocol("unexpected reply to the login")),
        }
        Ok(Session {
            stream: s,
            cache_metadata: ext != 0,
            stmt: None,
        })
    }

    /// COM_STMT_PREPARE: keeps the statement id and its column types.
    fn prepare(&mut self, sql: &str) -> io::Result<()> {
        let mut p = vec![0x16];
        p.extend_from_slice(sql.as_bytes());
        write_packet(&mut self.stream, 0, &p)?;
        let (_, ok) = read_packet(&mut self.stream)?;
        if ok.first() != Some(&0x00) {
            return Err(server_error(&ok));
        }
        let mut c = Cursor { b: &ok, at: 1 };
        let id = c.u32()?;
        let cols = c.u16()? as usize;
        let params = c.u16()? as usize;
        // Parameter, then column definitions; no EOFs (DEPRECATE_EOF).
        for _ in 0..params {
            read_packet(&mut self.stream)?;
        }
        let mut types = Vec::with_capacity(cols);
        for _ in 0..cols {
            types.push(column_type(&read_packet(&mut self.stream)?.1)?);
        }
        self.stmt = Some((id, types));
        Ok(())
    }

    /// Says goodbye (COM_QUIT) once the ring has let go of the socket.
    fn quit(mut self) {
        let _ = write_packet(&mut self.stream, 0, &[0x01]);
    }
}

// ------------------------------------------------------------------ requests

/// Writes the framed request into `out` (cleared first): COM_QUERY of
/// `text` followed by `id` in decimal, or (with a statement id)
/// COM_STMT_EXECUTE with `id` as its one BIGINT UNSIGNED parameter.
fn encode(out: &mut Vec<u8>, text: &[u8], stmt: Option<u32>, id: u64) {
    out.clear();
    out.extend_from_slice(&[0, 0, 0, 0]);
    match stmt {
        None => {
            out.push(0x03);
            out.extend_from_slice(text);
            let mut digits = [0u8; 20];
            let (mut n, mut i) = (id, digits.len());
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[i..]);
        }
        Some(stmt) => {
            out.push(0x17);
            out.extend_from_slice(&stmt.to_le_bytes());
            out.push(0); // no cursor
            out.extend_from_slice(&1u32.to_le_bytes()); // iterations
            out.push(0); // NULL bitmap
            out.push(1); // types follow
            out.extend_from_slice(&[0x08, 0x80]); // BIGINT UNSIGNED
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    let len = (out.len() - 4) as u32;
    out[..3].copy_from_slice(&len.to_le_bytes()[..3]);
}

/// Writes the framed COM_QUERY of `sql` into `out` (cleared first).
fn encode_query(out: &mut Vec<u8>, sql: &str) {
    out.clear();
    out.extend_from_slice(&((sql.len() + 1) as u32).to_le_bytes()[..3]);
    out.extend_from_slice(&[0, 0x03]);
    out.extend_from_slice(sql.as_bytes());
}

// ------------------------------------------------------------------ replies

/// Where a reply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting OK, ERR or a column count.
    Start,
    /// Column definitions still to come.
    Columns(u64),
    /// Rows, until the OK (in place of EOF) that ends them.
    Rows,
}

/// Finds where replies end, packet by packet, reassembling only a packet
/// that straddles two receive buffers.
struct Scan {
    state: State,
    /// Binary rows (execute replies).
    binary: bool,
    /// Walk every field of every row (the decode reads), not just packets.
    fields: bool,
    cache_metadata: bool,
    /// Column types: the prepared statement's, or those of the current
    /// reply's definitions.
    types: Vec<u8>,
    cols: usize,
    /// A packet cut by the end of a receive buffer.
    pending: Vec<u8>,
    /// Rows seen, and a checksum of what was walked.
    rows: u64,
    sum: u64,
}

impl Scan {
    fn new(binary: bool, fields: bool, cache_metadata: bool, types: Vec<u8>) -> Scan {
        Scan {
            state: State::Start,
            binary,
            fields,
            cache_metadata,
            cols: types.len(),
            types,
            pending: Vec::with_capacity(256),
            rows: 0,
            sum: 0,
        }
    }

    /// Feeds one received chunk; true when a reply ended (it must end the
    /// chunk: one request is in flight at a time).
    fn feed(&mut self, chunk: &[u8]) -> Result<bool, String> {
        let mut off = 0;
        if !self.pending.is_empty() {
            // Complete the header, then the packet.
            let need_hdr = 4usize.saturating_sub(self.pending.len()).min(chunk.len());
            self.pending.extend_from_slice(&chunk[..need_hdr]);
            off = need_hdr;
            if self.pending.len() < 4 {
                return Ok(false);
            }
            let p = &self.pending;
            let total = 4 + u32::from_le_bytes([p[0], p[1], p[2], 0]) as usize;
            let take = (total - self.pending.len()).min(chunk.len() - off);
            self.pending.extend_from_slice(&chunk[off..off + take]);
            off += take;
            if self.pending.len() < total {
                return Ok(false);
            }
            let pending = std::mem::take(&mut self.pending);
            let done = self.packet(&pending[4..]);
            self.pending = pending;
            self.pending.clear();
            if done? {
                return self.ended(chunk.len() - off);
            }
        }
        let b = &chunk[off..];
        let mut at = 0;
        while b.len() - at >= 4 {
            let len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], 0]) as usize;
            if at + 4 + len > b.len() {
                break;
            }
            let done = self.packet(&b[at + 4..at + 4 + len])?;
            at += 4 + len;
            if done {
                return self.ended(b.len() - at);
            }
        }
        self.pending.extend_from_slice(&b[at..]);
        Ok(false)
    }

    fn ended(&self, left: usize) -> Result<bool, String> {
        if left != 0 {
            return Err(format!("floor: {left} bytes after the end of a reply"));
        }
        Ok(true)
    }

    /// One packet; true when it ends the reply.
    #[inline(always)]
    fn packet(&mut self, p: &[u8]) -> Result<bool, String> {
        if p.len() >= 0xFF_FFFF {
            return Err("floor: packets of 16 MiB and more are not handled".into());
        }
        let first = *p.first().ok_or("floor: empty packet")?;
        match self.state {
            State::Rows => {
                match first {
                    // OK in place of EOF (DEPRECATE_EOF): the end of the rows.
                    0xFE => {
                        self.state = State::Start;
                        return Ok(true);
                    }
                    0xFF => return Err(server_error(p).to_string()),
                    _ => {}
                }
                self.rows += 1;
                if !self.fields {
                    self.sum = self.sum.wrapping_add(p.len() as u64);
                } else if self.binary {
                    self.walk_binary(p)?;
                } else {
                    self.walk_text(p)?;
                }
                Ok(false)
            }
            State::Columns(left) => {
                if self.binary {
                    self.types.push(column_type(p).map_err(|e| e.to_string())?);
                }
                self.state = if left > 1 {
                    State::Columns(left - 1)
                } else {
                    State::Rows
                };
                Ok(false)
            }
            State::Start => match first {
                0x00 => Ok(true), // OK: no rows
                0xFF => Err(server_error(p).to_string()),
                0xFB => Err("floor: LOCAL INFILE request".into()),
                _ => {
                    let (n, used) = lenenc(p).ok_or("floor: bad column count")?;
                    self.cols = n as usize;
                    if self.cache_metadata && p.get(used) == Some(&0) {
                        // Metadata skipped: the prepared statement's types hold.
                        if self.binary && self.types.len() != self.cols {
                            return Err("floor: metadata skipped but not known".into());
                        }
                        self.state = State::Rows;
                    } else {
                        if self.binary {
                            self.types.clear();
                        }
                        self.state = if n == 0 {
                            State::Rows
                        } else {
                            State::Columns(n)
                        };
                    }
                    Ok(false)
                }
            },
        }
    }

    /// Splits a text row into its length-encoded fields.
    #[inline(always)]
    fn walk_text(&mut self, p: &[u8]) -> Result<(), String> {
        let mut i = 0;
        for _ in 0..self.cols {
            if p.get(i) == Some(&0xFB) {
                i += 1; // NULL
                continue;
            }
            let (n, used) = lenenc(p.get(i..).unwrap_or_default()).ok_or("floor: bad text row")?;
            i += used + n as usize;
            self.sum = self.sum.wrapping_add(n);
        }
        if i != p.len() {
            return Err("floor: text row of the wrong length".into());
        }
        Ok(())
    }

    /// Splits a binary row into its fields: NULL bitmap, then each non-NULL
    /// value by its column type's width.
    #[inline(always)]
    fn walk_binary(&mut self, p: &[u8]) -> Result<(), String> {
        let bitmap_len = (self.cols + 9) / 8;
        let bitmap = p.get(1..1 + bitmap_len).ok_or("floor: short binary row")?;
        let mut i = 1 + bitmap_len;
        for (c, &t) in self.types.iter().enumerate() {
            let bit = c + 2;
            if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
                continue;
            }
            let n = match t {
                0x01 => 1,               // TINY
                0x02 | 0x0D => 2,        // SHORT, YEAR
                0x03 | 0x09 | 0x04 => 4, // LONG, INT24, FLOAT
                0x08 | 0x05 => 8,        // LONGLONG, DOUBLE
                0x06 => 0,               // NULL
                // DATE, TIMESTAMP, DATETIME, TIME: a length byte, then that many.
                0x07 | 0x0A | 0x0B | 0x0C => {
                    1 + *p.get(i).ok_or("floor: short binary row")? as usize
                }
                // Strings, DECIMAL, BLOBs, JSON, BIT, ENUM, SET, GEOMETRY.
                _ => {
                    let (n, used) =
                        lenenc(p.get(i..).unwrap_or_default()).ok_or("floor: bad binary row")?;
                    used + n as usize
                }
            };
            i += n;
            self.sum = self.sum.wrapping_add(n as u64);
        }
        if i != p.len() {
            return Err("floor: binary row of the wrong length".into());
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ the ring

/// `user_data` bit of a send (its low 32 bits are the connection).
const SEND: u64 = 1 << 32;
/// The provided-buffer group.
const BGID: u16 = 1;

/// A provided-buffer ring: `n` buffers of `size` bytes the kernel picks
/// from for multishot receives.
struct BufRing {
    /// The ring of entries, shared with the kernel (page-aligned mapping).
    entries: *mut types::BufRingEntry,
    mem: Vec<u8>,
    n: u16,
    size: usize,
    tail: u16,
}

impl BufRing {
    fn new(sub: &io_uring::Submitter<'_>, n: u16, size: usize) -> io::Result<BufRing> {
        assert!(n.is_power_of_two());
        let bytes = n as usize * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: a fresh private anonymous mapping; checked below.
        let entries = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if entries == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut r = BufRing {
            entries: entries.cast(),
            mem: vec![0; n as usize * size],
            n,
            size,
            tail: 0,
        };
        // SAFETY: the mapping holds `n` entries and lives until `Drop`, after
        // the buffer ring is unregistered.
        unsafe { sub.register_buf_ring_with_flags(entries as u64, n, BGID, 0)? };
        for bid in 0..n {
            r.give(bid);
        }
        r.publish();
        Ok(r)
    }

    /// The first `len` bytes of buffer `bid`.
    fn chunk(&self, bid: u16, len: usize) -> &[u8] {
        let at = bid as usize * self.size;
        &self.mem[at..at + len]
    }

    /// Hands buffer `bid` back; the kernel sees it after [`BufRing::publish`].
    fn give(&mut self, bid: u16) {
        // SAFETY: the index is masked into the ring; entries past the
        // published tail belong to us.
        unsafe {
            let e = &mut *self.entries.add((self.tail & (self.n - 1)) as usize);
            e.set_addr(self.mem.as_ptr().add(bid as usize * self.size) as u64);
            e.set_len(self.size as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry, shared with the kernel.
        unsafe {
            let t = types::BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*t).store(self.tail, Ordering::Release);
        }
    }

    /// Unregisters and unmaps (the ring must still be alive).
    fn release(self, sub: &io_uring::Submitter<'_>) {
        let _ = sub.unregister_buf_ring(BGID);
        // SAFETY: the mapping made in `new`, no longer known to the kernel.
        unsafe {
            libc::munmap(
                self.entries.cast(),
                self.n as usize * std::mem::size_of::<types::BufRingEntry>(),
            )
        };
    }
}

/// Builds the ring with the most capable setup the kernel takes; says once
/// on stderr when it had to fall back.
fn build_ring(entries: u32) -> io::Result<(IoUring, &'static str)> {
    type Setup = (&'static str, fn(&mut io_uring::Builder));
    let setups: [Setup; 4] = [
        ("SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN", |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_coop_taskrun();
        }),
        ("SINGLE_ISSUER|COOP_TASKRUN|TASKRUN_FLAG", |b| {
            b.setup_single_issuer()
                .setup_coop_taskrun()
                .setup_taskrun_flag();
        }),
        ("COOP_TASKRUN", |b| {
            b.setup_coop_taskrun();
        }),
        ("plain", |_| {}),
    ];
    let mut last = None;
    for (i, (name, f)) in setups.iter().enumerate() {
        let mut b = IoUring::builder();
        b.setup_submit_all();
        f(&mut b);
        match b.build(entries) {
            Ok(r) => {
                if i > 0 {
                    static SAID: Once = Once::new();
                    SAID.call_once(|| eprintln!("floor: io_uring setup falls back to {name}"));
                }
                return Ok((r, name));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no io_uring setup")))
}

/// One connection on the ring.
struct Conn {
    scan: Scan,
    out: Vec<u8>,
    rng: Rng,
    stmt: Option<u32>,
    sent: Instant,
}

/// The ring and its connections, for a client thread's life.
struct Looper<'r> {
    sub: io_uring::Submitter<'r>,
    sq: io_uring::SubmissionQueue<'r>,
    cq: io_uring::CompletionQueue<'r>,
    bufs: BufRing,
    conns: Vec<Conn>,
    /// The COM_QUERY text before the id (text point selects).
    text: &'static [u8],
    /// Connections whose multishot receive ended (reused, not reallocated).
    rearm: Vec<usize>,
}

impl<'r> Looper<'r> {
    fn new(ring: &'r mut IoUring, sessions: &[Session], bufs: (u16, usize)) -> io::Result<Self> {
        if !ring.params().is_feature_skip_cqe_on_success() {
            return Err(io::Error::other(
                "floor: the kernel lacks IOSQE_CQE_SKIP_SUCCESS (5.17+)",
            ));
        }
        let (mut sub, sq, cq) = ring.split();
        let fds: Vec<i32> = sessions.iter().map(|s| s.stream.as_raw_fd()).collect();
        sub.register_files(&fds)?;
        sub.register_ring_fd()?;
        let bufs = BufRing::new(&sub, bufs.0, bufs.1)?;
        Ok(Looper {
            sub,
            sq,
            cq,
            bufs,
            conns: Vec::new(),
            text: POINT_SQL
                .strip_suffix('?')
                .expect("POINT_SQL ends with its parameter")
                .as_bytes(),
            rearm: Vec::with_capacity(sessions.len()),
        })
    }

    fn push(&mut self, e: &squeue::Entry) -> Result<(), String> {
        // SAFETY: every buffer an entry points at (a connection's `out`)
        // outlives the operation: it is rewritten only after the reply to
        // the request it holds has arrived.
        unsafe { self.sq.push(e) }.map_err(|_| "floor: submission queue full".to_string())
    }

    fn arm_recv(&mut self, i: usize) -> Result<(), String> {
        let e = opcode::RecvMulti::new(types::Fixed(i as u32), BGID)
            .build()
            .user_data(i as u64);
        self.push(&e)
    }

    /// Queues connection `i`'s next request (`id` drawn from its generator).
    fn send(&mut self, i: usize) -> Result<(), String> {
        let c = &mut self.conns[i];
        let id = c.rng.id();
        encode(&mut c.out, self.text, c.stmt, id);
        self.send_out(i)
    }

    /// Queues connection `i`'s `out` buffer as is.
    fn send_out(&mut self, i: usize) -> Result<(), String> {
        let c = &mut self.conns[i];
        c.sent = Instant::now();
        let e = opcode::Send::new(types::Fixed(i as u32), c.out.as_ptr(), c.out.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(SEND | i as u64);
        self.push(&e)
    }

    /// Submits what is queued and waits for `want` completions (or `timeout`).
    fn enter(&mut self, want: usize, timeout: Option<&types::Timespec>) -> Result<(), String> {
        self.sq.sync();
        // Publish the consumed completions first, or the kernel counts them
        // towards `want` and returns at once.
        self.cq.sync();
        let r = match timeout {
            None => self.sub.submit_and_wait(want),
            Some(ts) => self
                .sub
                .submit_with_args(want, &types::SubmitArgs::new().timespec(ts)),
        };
        match r {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ETIME)) => {}
            Err(e) => return Err(format!("floor: io_uring_enter: {e}")),
        }
        self.cq.sync();
        Ok(())
    }

    /// Handles the completions at hand; returns the connections whose reply
    /// ended, through `done`.
    fn reap(&mut self, done: &mut Vec<usize>) -> Result<(), String> {
        let mut rearm = std::mem::take(&mut self.rearm);
        rearm.clear();
        for cqe in self.cq.by_ref() {
            let ud = cqe.user_data();
            let i = (ud & 0xFFFF_FFFF) as usize;
            let res = cqe.result();
            if ud & SEND != 0 {
                // Only failures post (IOSQE_CQE_SKIP_SUCCESS), and short sends.
                let want = self.conns[i].out.len() as i32;
                if res != want {
                    return Err(format!("floor: send on connection {i}: {res} of {want}"));
                }
                continue;
            }
            if res == -libc::ENOBUFS {
                // The buffer ring ran dry and ended the multishot receive.
                rearm.push(i);
                continue;
            }
            if res <= 0 {
                return Err(match res {
                    0 => format!("floor: the server closed connection {i}"),
                    e => format!(
                        "floor: recv on connection {i}: {}",
                        io::Error::from_raw_os_error(-e)
                    ),
                });
            }
            let bid = cqueue::buffer_select(cqe.flags()).ok_or("floor: recv without a buffer")?;
            let ended = self.conns[i].scan.feed(self.bufs.chunk(bid, res as usize));
            self.bufs.give(bid);
            if !cqueue::more(cqe.flags()) {
                rearm.push(i);
            }
            if ended? {
                done.push(i);
            }
        }
        self.bufs.publish();
        for &i in &rearm {
            self.arm_recv(i)?;
        }
        self.rearm = rearm;
        Ok(())
    }

    /// Point selects on every connection, one in flight on each, until
    /// `deadline`; then the replies still owed are read. Returns the queries
    /// done.
    fn points(
        &mut self,
        deadline: Instant,
        mut hist: Option<&mut Hist>,
        progress: Option<&AtomicU64>,
    ) -> Result<u64, String> {
        for i in 0..self.conns.len() {
            self.send(i)?;
        }
        let (mut in_flight, mut queries, mut unreported) = (self.conns.len(), 0u64, 0u64);
        let mut running = true;
        let mut done = Vec::with_capacity(self.conns.len());
        while in_flight > 0 {
            // Several completions per wait: an eighth of those owed, 1 to 8.
            self.enter((in_flight / 8).clamp(1, 8), None)?;
            done.clear();
            self.reap(&mut done)?;
            let now = Instant::now();
            running = running && now < deadline;
            for &i in &done {
                queries += 1;
                if let Some(h) = hist.as_deref_mut() {
                    record(h, now - self.conns[i].sent);
                }
                if running {
                    self.send(i)?;
                } else {
                    in_flight -= 1;
                }
            }
            unreported += done.len() as u64;
            if unreported >= 64 {
                if let Some(p) = progress {
                    p.fetch_add(unreported, Ordering::Relaxed);
                }
                unreported = 0;
            }
        }
        Ok(queries)
    }

    /// Sends `out` on connection 0 and reads the one reply (a row stream).
    fn stream(&mut self) -> Result<(), String> {
        self.send_out(0)?;
        let ts = types::Timespec::new().nsec(1_000_000);
        let mut done = Vec::with_capacity(1);
        while done.is_empty() {
            // Wait for 8 chunks, or 1 ms at the end of the stream.
            self.enter(8, Some(&ts))?;
            self.reap(&mut done)?;
        }
        Ok(())
    }

    fn release(self) {
        self.bufs.release(&self.sub);
    }
}

/// Passes the remaining barrier waits when dropped, so the main thread is
/// not left waiting when a client thread fails half way.
struct Steps<'a> {
    barrier: &'a Barrier,
    left: usize,
}

impl Steps<'_> {
    fn next(&mut self) {
        if self.left > 0 {
            self.left -= 1;
            self.barrier.wait();
        }
    }
}

impl Drop for Steps<'_> {
    fn drop(&mut self) {
        while self.left > 0 {
            self.next();
        }
    }
}

/// Logs `n` sessions in (preparing `prepare`, if any).
fn open(t: &Target, n: usize, prepare: Option<&str>) -> io::Result<Vec<Session>> {
    (0..n)
        .map(|_| {
            let mut s = Session::connect(t)?;
            if let Some(sql) = prepare {
                s.prepare(sql)?;
            }
            Ok(s)
        })
        .collect()
}

/// One client thread of a timed run: `plan.conns` connections on one ring.
fn timed_thread(
    t: &Target,
    plan: &Plan,
    prepared: bool,
    core: usize,
    barrier: &Barrier,
    units: &AtomicU64,
) -> Result<ThreadOut, SendError> {
    let mut steps = Steps { barrier, left: 3 };
    if let Some(&cpu) = plan.pins.get(core % plan.pins.len().max(1)) {
        pin(0, cpu).map_err(|e| format!("pinning to CPU {cpu}: {e}"))?;
    }
    let sessions = open(t, plan.conns, prepared.then_some(POINT_SQL))?;
    let entries = (4 * plan.conns as u32).next_power_of_two().max(64);
    let (mut ring, _setup) = build_ring(entries)?;
    let mut lp = Looper::new(&mut ring, &sessions, (256, 4096))?;
    lp.conns = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| Conn {
            scan: Scan::new(
                prepared,
                false,
                s.cache_metadata,
                s.stmt.as_ref().map(|(_, t)| t.clone()).unwrap_or_default(),
            ),
            out: Vec::with_capacity(128),
            rng: Rng::new(core as u64 * 1_000_003 + i as u64),
            stmt: s.stmt.as_ref().map(|(id, _)| *id),
            sent: Instant::now(),
        })
        .collect();
    for i in 0..lp.conns.len() {
        lp.arm_recv(i)?;
    }
    steps.next(); // connected
    let warmup = lp.points(Instant::now() + plan.warmup, None, None)?;
    steps.next(); // warmed up
    let mut hist = new_hist();
    let meter = ThreadMeter::start();
    let queries = lp.points(Instant::now() + plan.secs, Some(&mut hist), Some(units))?;
    let cost = meter.stop();
    steps.next(); // measured phase over
    let rows: u64 = lp.conns.iter().map(|c| c.scan.rows).sum();
    lp.release();
    drop(ring);
    for s in sessions {
        s.quit();
    }
    // Every point select finds its row (ids 1..=POINT_ROWS), as the drivers check.
    if rows != warmup + queries {
        return Err(format!(
            "floor: {} point selects found {rows} rows",
            warmup + queries
        )
        .into());
    }
    Ok(ThreadOut {
        ops: queries,
        units: queries,
        cost,
        hist,
    })
}

/// Says once why the floor does not run, and leaves its column empty.
fn unavailable(why: &str) -> BoxResult<Option<Sample>> {
    static SAID: Once = Once::new();
    SAID.call_once(|| eprintln!("the floor does not run: {why}"));
    Ok(None)
}

/// Whether the floor can log in to `url` (mysql_native_password, DEPRECATE_EOF).
fn check(t: &Target) -> Result<(), String> {
    let sessions = open(t, 1, None).map_err(|e| e.to_string())?;
    sessions.into_iter().for_each(Session::quit);
    Ok(())
}

/// Runs the point select `op` per [`Plan`] on the floor; `None` when the
/// floor cannot log in to this server (said once).
pub fn timed(url: &str, plan: &Plan, op: Op) -> BoxResult<Option<Sample>> {
    let prepared = match op {
        Op::PointText => false,
        Op::PointPrepared => true,
        other => return Err(format!("the floor does not run {other:?}").into()),
    };
    let t = Target::from_url(url)?;
    if let Err(why) = check(&t) {
        return unavailable(&why);
    }
    let barrier = Barrier::new(plan.cores + 1);
    let units = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..plan.cores)
            .map(|core| {
                let (t, barrier, units) = (&t, &barrier, &units);
                s.spawn(move || timed_thread(t, plan, prepared, core, barrier, units))
            })
            .collect();
        collect_timed(NAME, plan, &barrier, units.clone(), handles).map(Some)
    })
}

/// Reads the decode query (`rows` rows) once on one connection, walking
/// every field. Returns the sample and the rows read; `None` when the floor
/// cannot log in to this server (said once).
pub fn decode(
    url: &str,
    plan: &Plan,
    kind: DecodeKind,
    rows: u64,
) -> BoxResult<Option<(Sample, u64)>> {
    let t = Target::from_url(url)?;
    if let Err(why) = check(&t) {
        return unavailable(&why).map(|_| None);
    }
    let pin_to = plan.pins.first().copied();
    let pid = plan.server_pid;
    let r = std::thread::spawn(move || -> Result<(Sample, u64), SendError> {
        if let Some(cpu) = pin_to {
            pin(0, cpu)?;
        }
        let prepared = kind == DecodeKind::Prepared;
        let mut sessions = open(&t, 1, prepared.then_some(DECODE_PREPARED_SQL))?;
        let (mut ring, _setup) = build_ring(64)?;
        let mut lp = Looper::new(&mut ring, &sessions, (64, 64 * 1024))?;
        let s = &mut sessions[0];
        let (stmt, types) = s.stmt.take().unzip();
        let mut out = Vec::new();
        match stmt {
            None => encode_query(&mut out, &decode_sql(rows)),
            Some(id) => encode(&mut out, b"", Some(id), rows),
        }
        lp.conns.push(Conn {
            scan: Scan::new(prepared, true, s.cache_metadata, types.unwrap_or_default()),
            out,
            rng: Rng::new(1),
            stmt,
            sent: Instant::now(),
        });
        lp.arm_recv(0)?;
        let meter = Meter::start(pid);
        let thread = ThreadMeter::start();
        lp.stream()?;
        let cost = thread.stop();
        let got = lp.conns[0].scan.rows;
        std::hint::black_box(lp.conns[0].scan.sum);
        let sample = meter.stop(1, got, cost, None);
        lp.release();
        drop(ring);
        for s in sessions {
            s.quit();
        }
        Ok((sample, got))
    })
    .join()
    .map_err(|_| "the floor's decode thread panicked")?;
    r.map(Some)
        .map_err(|e| format!("{NAME} decode ({kind:?}): {e}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_text_matches_the_drivers_sql() {
        let mut out = Vec::new();
        let text = POINT_SQL.strip_suffix('?').unwrap().as_bytes();
        encode(&mut out, text, None, 4711);
        assert_eq!(&out[5..], crate::setup::point_sql(4711).as_bytes());
        assert_eq!(out[4], 0x03);
        assert_eq!(
            u32::from_le_bytes([out[0], out[1], out[2], 0]) as usize,
            out.len() - 4
        );
    }

    /// Frames payloads with sequence ids from 1.
    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, p) in payloads.iter().enumerate() {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes()[..3]);
            out.push(seq as u8 + 1);
            out.extend_from_slice(p);
        }
        out
    }

    fn coldef(t: u8) -> Vec<u8> {
        let mut p = Vec::new();
        for s in ["def", "bench", "t", "t", "c", "c"] {
            p.push(s.len() as u8);
            p.extend_from_slice(s.as_bytes());
        }
        p.push(0x0C);
        p.extend_from_slice(&[45, 0, 255, 0, 0, 0, t, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn text_reply_ends_at_its_ok_in_any_split() {
        let def = coldef(0xFD);
        let reply = frames(&[
            &[2],
            &def,
            &def,
            b"\x0242\xfb",
            b"\x011\x03abc",
            &[0xFE, 0, 0, 2, 0, 0, 0],
        ]);
        for cut in 0..reply.len() {
            let mut s = Scan::new(false, true, false, Vec::new());
            let a = s.feed(&reply[..cut]).unwrap();
            let b = s.feed(&reply[cut..]).unwrap();
            assert!(!a && b, "cut at {cut}");
            assert_eq!((s.rows, s.sum), (2, 2 + 1 + 3));
        }
    }

    #[test]
    fn binary_reply_with_metadata_skipped_walks_fields() {
        // BIGINT, VARCHAR, DATETIME; the middle one NULL in the second row.
        let types = vec![0x08, 0xFD, 0x0C];
        let row1: Vec<u8> = [
            &[0u8, 0][..],
            &7u64.to_le_bytes(),
            b"\x02hi",
            b"\x04\xe8\x07\x01\x02",
        ]
        .concat();
        let row2: Vec<u8> = [&[0u8, 1 << 3][..], &8u64.to_le_bytes(), b"\x00"].concat();
        let reply = frames(&[&[3, 0], &row1, &row2, &[0xFE, 0, 0, 2, 0, 0, 0]]);
        let mut s = Scan::new(true, true, true, types);
        assert!(s.feed(&reply).unwrap());
        assert_eq!(s.rows, 2);
        assert_eq!(s.sum, 8 + 3 + 5 + 8 + 1);
    }

    #[test]
    fn error_reply_is_an_error() {
        let reply = frames(&[b"\xff\x7a\x04#42S02Table 'x' doesn't exist"]);
        let mut s = Scan::new(false, false, false, Vec::new());
        let e = s.feed(&reply).unwrap_err();
        assert!(e.contains("1146") && e.contains("doesn't exist"), "{e}");
    }

    #[test]
    fn native_token_matches_a_known_vector() {
        // mysql_native_password of "secret" with a nonce of 20 x 'a'.
        let token = native_token(b"secret", &[b'a'; 20]);
        assert_eq!(token.len(), 20);
        // Unscrambling with SHA1(nonce + SHA1(SHA1(pw))) gives SHA1(pw).
        let stage1 = Sha1::digest(b"secret");
        let mut h = Sha1::new();
        h.update([b'a'; 20]);
        h.update(Sha1::digest(stage1));
        let back: Vec<u8> = token.iter().zip(h.finalize()).map(|(a, b)| a ^ b).collect();
        assert_eq!(back, stage1.to_vec());
    }
}
