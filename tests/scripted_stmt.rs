//! Prepared statements against a scripted MySQL 8 peer: the exchange the
//! real MariaDB server cannot show (no MariaDB capabilities, so no bulk
//! execution nor metadata caching; with and without CLIENT_DEPRECATE_EOF).
//! The peer checks the client's packets byte for byte.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use mysql_uring::{Opts, connect};

struct Peer {
    s: TcpStream,
    seq: u8,
    deprecate_eof: bool,
}

impl Peer {
    fn send(&mut self, payload: &[u8]) {
        let mut h = (payload.len() as u32).to_le_bytes();
        h[3] = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.s.write_all(&h).unwrap();
        self.s.write_all(payload).unwrap();
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut h = [0u8; 4];
        self.s.read_exact(&mut h).unwrap();
        let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        assert_eq!(h[3], self.seq, "client sequence id");
        self.seq = h[3].wrapping_add(1);
        let mut p = vec![0; len];
        self.s.read_exact(&mut p).unwrap();
        p
    }

    /// Reads the next command (sequence 0).
    fn command(&mut self) -> Vec<u8> {
        self.seq = 0;
        self.recv()
    }

    fn ok(&mut self, affected: u8) {
        self.send(&[0x00, affected, 0, 0x02, 0, 0, 0]);
    }

    /// The end of a block of definitions, if this session has EOF packets.
    fn defs_end(&mut self) {
        if !self.deprecate_eof {
            self.send(&[0xFE, 0, 0, 0x02, 0]);
        }
    }

    /// The end of the rows.
    fn rows_end(&mut self) {
        if self.deprecate_eof {
            self.send(&[0xFE, 0, 0, 0x02, 0, 0, 0]);
        } else {
            self.send(&[0xFE, 0, 0, 0x02, 0]);
        }
    }
}

fn hello(deprecate_eof: bool) -> Vec<u8> {
    let mut caps: u32 = 0xFFFF_F7FF & !(1 << 5) & !(1 << 11); // no compression, no TLS
    if !deprecate_eof {
        caps &= !(1 << 24);
    }
    let mut p = vec![10];
    p.extend_from_slice(b"8.4.3\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"01234567");
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(255);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"89abcdefghij");
    p.push(0);
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

fn column(name: &str, type_byte: u8, flags: u16, charset: u16) -> Vec<u8> {
    let mut c = Vec::new();
    for s in ["def", "test", "t", "t", name, name] {
        c.push(s.len() as u8);
        c.extend_from_slice(s.as_bytes());
    }
    c.push(0x0C);
    c.extend_from_slice(&charset.to_le_bytes());
    c.extend_from_slice(&20u32.to_le_bytes());
    c.push(type_byte);
    c.extend_from_slice(&flags.to_le_bytes());
    c.extend_from_slice(&[0, 0, 0]);
    c
}

fn prepare_ok(id: u32, columns: u16, params: u16) -> Vec<u8> {
    let mut p = vec![0];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&columns.to_le_bytes());
    p.extend_from_slice(&params.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    p
}

fn script(mut p: Peer) {
    p.send(&hello(p.deprecate_eof));
    let resp = p.recv();
    let caps = u32::from_le_bytes([resp[0], resp[1], resp[2], resp[3]]);
    assert_eq!(
        caps & (1 << 24) != 0,
        p.deprecate_eof,
        "DEPRECATE_EOF as offered"
    );
    assert_eq!(
        &resp[28..32],
        &[0; 4],
        "no MariaDB capabilities asked of MySQL"
    );
    p.send(&[0x01, 0x03]); // caching_sha2 fast auth success
    p.ok(0);

    // exec_first("SELECT a, b FROM t WHERE id = ?", (7u64,))
    assert_eq!(p.command(), b"\x16SELECT a, b FROM t WHERE id = ?");
    p.send(&prepare_ok(1, 2, 1));
    p.send(&column("?", 0xFD, 0, 63));
    p.defs_end();
    p.send(&column("a", 0x08, 32 | 1, 63)); // BIGINT UNSIGNED NOT NULL
    p.send(&column("b", 0xFD, 0, 45));
    p.defs_end();
    let exec = p.command();
    assert_eq!(
        exec,
        [
            0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, // execute stmt 1, no cursor, 1 iteration
            0, 1, 0x08, 0x80, // no NULLs, types bound: BIGINT UNSIGNED
            7, 0, 0, 0, 0, 0, 0, 0,
        ]
    );
    p.send(&[2]);
    p.send(&column("a", 0x08, 32 | 1, 63));
    p.send(&column("b", 0xFD, 0, 45));
    p.defs_end();
    let mut row = vec![0x00, 0b1000]; // header; bitmap: column 1 (b) is NULL (bit 1 + 2)
    row.extend_from_slice(&u64::MAX.to_le_bytes());
    p.send(&row);
    p.rows_end();

    // execute_many: no bulk execution on MySQL, one execute per row.
    assert_eq!(p.command(), b"\x16INSERT INTO t (a, b) VALUES (?, ?)");
    p.send(&prepare_ok(2, 0, 2));
    p.send(&column("?", 0xFD, 0, 63));
    p.send(&column("?", 0xFD, 0, 63));
    p.defs_end();
    for (a, b) in [(1u8, &b"x"[..]), (2, b"yy")] {
        let exec = p.command();
        let mut want = vec![0x17, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0x08, 0, 0xFD, 0];
        want.extend_from_slice(&i64::from(a).to_le_bytes());
        want.push(b.len() as u8);
        want.extend_from_slice(b);
        assert_eq!(exec, want);
        p.ok(1);
    }
    assert_eq!(p.command(), [0x01], "COM_QUIT");
}

fn run_against(deprecate_eof: bool) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        script(Peer {
            s,
            seq: 0,
            deprecate_eof,
        });
    });
    let r = mysql_uring::start(async move {
        let mut c = connect(Opts::new().port(port).user("app")).await?;
        assert!(!c.is_mariadb());
        assert!(!c.supports_bulk_execute());
        let row = c
            .exec_first("SELECT a, b FROM t WHERE id = ?", (7u64,))
            .await?
            .expect("a row");
        assert_eq!(row.get::<u64>("a")?, u64::MAX);
        assert_eq!(row.get::<Option<&str>>("b")?, None);
        let o = c
            .execute_many("INSERT INTO t (a, b) VALUES (?, ?)", [(1, "x"), (2, "yy")])
            .await?;
        assert_eq!(o.affected_rows, 2);
        c.close().await
    });
    if let Err(e) = r {
        panic!("{e}\n{e:?}");
    }
    peer.join().unwrap();
}

#[test]
fn prepare_execute_and_execute_many_with_deprecate_eof() {
    run_against(true);
}

#[test]
fn prepare_execute_and_execute_many_with_classic_eof_packets() {
    run_against(false);
}

#[test]
fn a_cached_statement_the_server_forgot_is_prepared_again() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut p = Peer {
            s,
            seq: 0,
            deprecate_eof: true,
        };
        p.send(&hello(true));
        p.recv();
        p.send(&[0x01, 0x03]);
        p.ok(0);
        let answer = |p: &mut Peer, id: u32| {
            assert_eq!(p.command(), b"\x16DO ?");
            p.send(&prepare_ok(id, 0, 1));
            p.send(&column("?", 0xFD, 0, 63));
        };
        answer(&mut p, 1);
        assert_eq!(p.command()[..5], [0x17, 1, 0, 0, 0]);
        p.ok(0);
        // The session was reset behind the client's back: statement 1 is gone.
        assert_eq!(p.command()[..5], [0x17, 1, 0, 0, 0]);
        p.send(b"\xFF\xDB\x04#HY000Unknown prepared statement handler (1) given to mysqld_stmt_execute");
        answer(&mut p, 2);
        assert_eq!(p.command()[..5], [0x17, 2, 0, 0, 0]);
        p.ok(0);
        assert_eq!(p.command(), [0x01], "COM_QUIT");
    });
    let r = mysql_uring::start(async move {
        let mut c = connect(Opts::new().port(port).user("app")).await?;
        c.exec_drop("DO ?", (1,)).await?;
        c.exec_drop("DO ?", (2,)).await?;
        assert_eq!(c.cached_statements(), 1);
        c.close().await
    });
    if let Err(e) = r {
        panic!("{e}\n{e:?}");
    }
    peer.join().unwrap();
}
