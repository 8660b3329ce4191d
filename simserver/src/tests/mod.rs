//! A tiny test-only client: builds client packets by hand and splits the
//! server's output into packets.

use crate::handshake::client_token;
use crate::proto::caps;
use crate::wire::{Reader, put_lenenc, put_lenenc_bytes, put_packet};
use crate::{Config, ConnId, Server};

mod early_meta;
mod flow;
mod session;

/// What the driver asks for: the base set plus DEPRECATE_EOF, CLIENT_MYSQL clear.
pub const CLIENT_CAPS: u32 = caps::LONG_FLAG
    | caps::PROTOCOL_41
    | caps::SECURE_CONNECTION
    | caps::PLUGIN_AUTH
    | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | caps::MULTI_RESULTS
    | caps::PS_MULTI_RESULTS
    | caps::DEPRECATE_EOF
    | caps::CONNECT_ATTRS
    | caps::LOCAL_FILES
    | caps::CONNECT_WITH_DB
    | (1 << 23); // SESSION_TRACK: not offered, so not negotiated

/// A framed command (sequence id 0).
pub fn cmd(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 0;
    put_packet(&mut out, &mut seq, payload);
    out
}

/// Frames `payload` at sequence id `seq`.
pub fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = seq;
    put_packet(&mut out, &mut s, payload);
    out
}

pub fn query(sql: &str) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(sql.as_bytes());
    cmd(&p)
}

pub fn prepare(sql: &str) -> Vec<u8> {
    let mut p = vec![0x16];
    p.extend_from_slice(sql.as_bytes());
    cmd(&p)
}

/// A parameter for [`execute`]: type byte, unsigned flag, encoded value (None: NULL).
pub type P<'a> = (u8, bool, Option<&'a [u8]>);

pub fn execute(id: u32, params: &[P<'_>], bind: bool) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&1u32.to_le_bytes());
    if !params.is_empty() {
        let mut bitmap = vec![0u8; params.len().div_ceil(8)];
        for (i, (_, _, v)) in params.iter().enumerate() {
            if v.is_none() {
                bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        p.extend_from_slice(&bitmap);
        p.push(u8::from(bind));
        if bind {
            for (t, u, _) in params {
                p.extend_from_slice(&[*t, if *u { 0x80 } else { 0 }]);
            }
        }
        for (_, _, v) in params {
            if let Some(v) = v {
                p.extend_from_slice(v);
            }
        }
    }
    cmd(&p)
}

pub fn lenenc_str(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_lenenc_bytes(&mut v, b);
    v
}

/// The HandshakeResponse41 payload.
pub fn response(caps: u32, ext: u32, user: &str, auth: &[u8], plugin: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 19]);
    p.extend_from_slice(&ext.to_le_bytes());
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    if caps & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        put_lenenc_bytes(&mut p, auth);
    } else {
        p.push(auth.len() as u8);
        p.extend_from_slice(auth);
    }
    if caps & caps::CONNECT_WITH_DB != 0 {
        p.extend_from_slice(b"test\0");
    }
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    let mut attrs = Vec::new();
    put_lenenc_bytes(&mut attrs, b"_client_name");
    put_lenenc_bytes(&mut attrs, b"simtest");
    put_lenenc(&mut p, attrs.len() as u64);
    p.extend_from_slice(&attrs);
    p
}

/// Splits bytes into (sequence id, payload) of logical packets.
pub fn packets(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(u8, Vec<u8>)> = None;
    while b.len() >= 4 {
        let len = u32::from_le_bytes([b[0], b[1], b[2], 0]) as usize;
        let seq = b[3];
        assert!(b.len() >= 4 + len, "truncated packet");
        let entry = cur.get_or_insert((seq, Vec::new()));
        entry.1.extend_from_slice(&b[4..4 + len]);
        b = &b[4 + len..];
        if len < 0xFF_FFFF {
            out.push(cur.take().expect("packet"));
        }
    }
    assert!(b.is_empty(), "partial header left");
    out
}

/// The scramble of a greeting payload.
pub fn greeting_scramble(g: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(g);
    r.u8("protocol").unwrap();
    r.nul_str("version").unwrap();
    r.u32("id").unwrap();
    let mut s = r.take(8, "s1").unwrap().to_vec();
    r.take(1 + 2 + 1 + 2 + 2 + 1 + 6 + 4, "fixed").unwrap();
    s.extend_from_slice(r.take(12, "s2").unwrap());
    s
}

/// A test harness: one server, a virtual clock.
pub struct Sim {
    pub srv: Server,
    pub now: u64,
}

impl Sim {
    pub fn new(cfg: Config) -> Sim {
        Sim {
            srv: Server::new(cfg),
            now: 0,
        }
    }

    pub fn default_() -> Sim {
        Sim::new(Config::default())
    }

    /// Feeds all of `bytes` (asserting it is accepted at once).
    pub fn send(&mut self, c: ConnId, bytes: &[u8]) {
        let n = self.srv.input(c, bytes, self.now);
        assert_eq!(n, bytes.len(), "input not fully accepted");
    }

    /// Takes all output as packets.
    pub fn recv(&mut self, c: ConnId) -> Vec<(u8, Vec<u8>)> {
        let b = self.srv.output(c, usize::MAX, self.now);
        packets(&b)
    }

    /// Advances the clock to the next wake-up.
    pub fn wake(&mut self) {
        let t = self.srv.next_wake().expect("something pending");
        assert!(t >= self.now);
        self.now = t;
        self.srv.advance(t);
    }

    /// Connects and logs in with the driver's capabilities; returns the id.
    pub fn login(&mut self) -> ConnId {
        self.login_with(CLIENT_CAPS, caps::EXT_CACHE_METADATA)
    }

    pub fn login_with(&mut self, caps: u32, ext: u32) -> ConnId {
        let c = self.srv.connect(self.now);
        let g = self.recv(c);
        assert_eq!(g.len(), 1);
        let s = greeting_scramble(&g[0].1);
        let tok = client_token("simpass", &s);
        self.send(
            c,
            &pkt(
                1,
                &response(caps, ext, "sim", &tok, "mysql_native_password"),
            ),
        );
        let r = self.recv(c);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, 2);
        assert_eq!(r[0].1[0], 0, "login OK: {:?}", r[0].1);
        c
    }

    /// Sends a command and returns its reply packets (after zero latency).
    pub fn roundtrip(&mut self, c: ConnId, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.send(c, bytes);
        self.recv(c)
    }
}

/// The (code, sqlstate, message) of an ERR payload.
pub fn err_of(p: &[u8]) -> (u16, String, String) {
    assert_eq!(p[0], 0xFF, "not an ERR: {p:?}");
    (
        u16::from_le_bytes([p[1], p[2]]),
        String::from_utf8_lossy(&p[4..9]).into_owned(),
        String::from_utf8_lossy(&p[9..]).into_owned(),
    )
}

/// (affected rows, status) of an OK payload.
pub fn ok_of(p: &[u8]) -> (u64, u16) {
    assert!(p[0] == 0 || p[0] == 0xFE, "not an OK: {p:?}");
    let mut r = Reader::new(&p[1..]);
    let a = r.lenenc("affected").unwrap();
    r.lenenc("insert id").unwrap();
    (a, r.u16("status").unwrap())
}

/// (name, type) of a column definition payload.
pub fn col_of(p: &[u8]) -> (String, u8) {
    let mut r = Reader::new(p);
    for _ in 0..4 {
        r.lenenc_bytes("x").unwrap();
    }
    let name = String::from_utf8_lossy(r.lenenc_bytes("name").unwrap()).into_owned();
    r.lenenc_bytes("org").unwrap();
    r.u8("0c").unwrap();
    r.u16("cs").unwrap();
    r.u32("len").unwrap();
    (name, r.u8("type").unwrap())
}

/// The text values of a text row.
pub fn text_row(p: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut r = Reader::new(p);
    let mut out = Vec::new();
    while !r.is_empty() {
        if p[p.len() - r.remaining()] == 0xFB {
            r.u8("null").unwrap();
            out.push(None);
        } else {
            out.push(Some(r.lenenc_bytes("v").unwrap().to_vec()));
        }
    }
    out
}
