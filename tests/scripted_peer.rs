//! MySQL-only behaviour and malformed servers, against a scripted peer.
//!
//! MySQL 8 cannot be installed on the development machines, so its
//! `caching_sha2_password` exchange is checked here against a peer that speaks
//! the documented protocol and verifies the scramble independently (with the
//! `sha2` crate, not the driver's code). The same flows run against a real
//! MySQL when `MYSQL_URL` points at one (see tests/it). So is zstd protocol
//! compression (`mod zstd_peer`, with the `zstd` feature:
//! `cargo test --features zstd --test scripted_peer`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use mysql_uring::{ErrorKind, Opts, connect};
use sha2::{Digest, Sha256};

const SCRAMBLE: [u8; 20] = *b"0123456789abcdefghij";

/// A blocking peer on one accepted socket.
struct Peer {
    s: TcpStream,
    seq: u8,
}

impl Peer {
    fn send(&mut self, payload: &[u8]) {
        let mut p = (payload.len() as u32).to_le_bytes();
        p[3] = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.s.write_all(&p).unwrap();
        self.s.write_all(payload).unwrap();
    }

    /// Reads one packet; `None` when the client closed the socket.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut h = [0u8; 4];
        self.s.read_exact(&mut h).ok()?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        assert_eq!(h[3], self.seq, "client sequence id");
        self.seq = h[3].wrapping_add(1);
        let mut p = vec![0; len];
        self.s.read_exact(&mut p).ok()?;
        Some(p)
    }

    fn ok(&mut self) {
        self.send(&[0x00, 0, 0, 0x02, 0, 0, 0]);
    }
}

/// MySQL 8 greeting announcing caching_sha2_password.
fn mysql8_hello() -> Vec<u8> {
    hello_with(0xFFFF_F7FF & !(1 << 5) & !(1 << 11)) // no zlib compression, no TLS
}

/// A MySQL 8 greeting with these capability flags.
fn hello_with(caps: u32) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"8.4.3\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(&SCRAMBLE[..8]);
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(255);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&SCRAMBLE[8..]);
    p.push(0);
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

/// Spawns a peer on a free port running `script`, returning the port.
fn spawn_peer(script: impl FnOnce(Peer) + Send + 'static) -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        script(Peer { s, seq: 0 });
    });
    (port, h)
}

/// Splits a handshake response into (user, auth response, plugin).
fn parse_response(p: &[u8]) -> (String, Vec<u8>, String) {
    let mut i = 4 + 4 + 1 + 23;
    let end = i + p[i..].iter().position(|&b| b == 0).unwrap();
    let user = String::from_utf8(p[i..end].to_vec()).unwrap();
    i = end + 1;
    let n = p[i] as usize; // short responses: one-byte length
    let auth = p[i + 1..i + 1 + n].to_vec();
    i += 1 + n;
    let caps = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    if caps & (1 << 3) != 0 {
        i += p[i..].iter().position(|&b| b == 0).unwrap() + 1;
    }
    let end = i + p[i..].iter().position(|&b| b == 0).unwrap();
    let plugin = String::from_utf8(p[i..end].to_vec()).unwrap();
    (user, auth, plugin)
}

fn expected_sha2_scramble(password: &[u8]) -> Vec<u8> {
    let d1 = Sha256::digest(password);
    let d2 = Sha256::digest(d1);
    let mut h = Sha256::new();
    h.update(d2);
    h.update(SCRAMBLE);
    let d3 = h.finalize();
    d1.iter().zip(d3.iter()).map(|(a, b)| a ^ b).collect()
}

fn run<F: std::future::Future<Output = mysql_uring::Result<()>>>(f: F) {
    if let Err(e) = mysql_uring::start(f) {
        panic!("{e}\n{e:?}");
    }
}

#[test]
fn caching_sha2_fast_path_then_a_query() {
    let (port, peer) = spawn_peer(|mut p| {
        p.send(&mysql8_hello());
        let resp = p.recv().unwrap();
        let (user, auth, plugin) = parse_response(&resp);
        assert_eq!(user, "app");
        assert_eq!(plugin, "caching_sha2_password");
        assert_eq!(
            auth,
            expected_sha2_scramble(b"sekrit"),
            "scramble must match the documented formula"
        );
        p.send(&[0x01, 0x03]); // fast auth success
        p.ok();
        // COM_QUERY "SELECT 1" -> one column, one row, OK-as-EOF (CLIENT_DEPRECATE_EOF).
        p.seq = 0;
        let q = p.recv().unwrap();
        assert_eq!(q, b"\x03SELECT 1");
        p.send(&[1]);
        let mut col = Vec::new();
        for s in ["def", "", "", "", "1", ""] {
            col.push(s.len() as u8);
            col.extend_from_slice(s.as_bytes());
        }
        col.extend_from_slice(&[0x0C, 63, 0, 1, 0, 0, 0, 0x08, 0x81, 0, 0, 0, 0]);
        p.send(&col);
        p.send(&[1, b'1']);
        p.send(&[0xFE, 0, 0, 0x02, 0, 0, 0]);
        p.seq = 0;
        assert_eq!(p.recv().unwrap(), [0x01], "COM_QUIT");
    });
    run(async move {
        let mut c = connect(Opts::new().port(port).user("app").password("sekrit")).await?;
        assert_eq!(c.server_version(), "8.4.3");
        assert!(!c.is_mariadb());
        assert_eq!(c.query("SELECT 1").await?[0].get::<i64>(0)?, 1);
        c.close().await
    });
    peer.join().unwrap();
}

#[test]
fn caching_sha2_full_auth_over_plain_tcp_is_refused_without_sending_the_password() {
    let (port, peer) = spawn_peer(|mut p| {
        p.send(&mysql8_hello());
        p.recv().unwrap();
        p.send(&[0x01, 0x04]); // perform full authentication
        // The client must hang up instead of sending the password in clear.
        let mut rest = Vec::new();
        let _ = p.s.read_to_end(&mut rest);
        assert!(
            !rest.windows(6).any(|w| w == b"sekrit"),
            "password sent in clear over TCP"
        );
    });
    run(async move {
        let e = connect(Opts::new().port(port).user("app").password("sekrit"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert!(e.to_string().contains("full authentication"), "{e}");
        assert!(
            e.to_string().contains("server_public_key"),
            "the error names the options: {e}"
        );
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn auth_switch_to_native_password() {
    let (port, peer) = spawn_peer(|mut p| {
        p.send(&mysql8_hello());
        p.recv().unwrap();
        let new = *b"ABCDEFGHIJKLMNOPQRST";
        let mut sw = vec![0xFE];
        sw.extend_from_slice(b"mysql_native_password\0");
        sw.extend_from_slice(&new);
        sw.push(0);
        p.send(&sw);
        let resp = p.recv().unwrap();
        // Independent check of SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
        use sha1::Sha1;
        let s1 = Sha1::digest(b"pw");
        let s2 = Sha1::digest(s1);
        let mut h = Sha1::new();
        h.update(new);
        h.update(s2);
        let x: Vec<u8> = s1
            .iter()
            .zip(h.finalize().iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(resp, x);
        p.ok();
    });
    run(async move {
        let c = connect(Opts::new().port(port).user("u").password("pw")).await?;
        drop(c);
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn a_server_that_never_answers_hits_the_connect_timeout() {
    let (port, peer) = spawn_peer(|p| {
        // Accept, say nothing, wait for the client to give up.
        let mut s = p.s;
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf);
    });
    run(async move {
        let o = Opts::new()
            .port(port)
            .connect_timeout(Some(Duration::from_millis(300)));
        let e = connect(o).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn a_peer_that_is_not_mysql_gives_a_protocol_error() {
    let (port, peer) = spawn_peer(|mut p| {
        p.s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
    });
    run(async move {
        let e = connect(Opts::new().port(port)).await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Protocol | ErrorKind::Io),
            "{e:?}"
        );
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn a_greeting_with_the_wrong_protocol_version_is_refused() {
    let (port, peer) = spawn_peer(|mut p| {
        p.send(b"\x09old server\0");
    });
    run(async move {
        let e = connect(Opts::new().port(port)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e:?}");
        assert!(e.to_string().contains("protocol version 9"), "{e}");
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn a_peer_that_hangs_up_mid_handshake_is_an_io_error() {
    let (port, peer) = spawn_peer(|mut p| {
        p.send(&mysql8_hello());
        p.recv();
        // drop: connection closed before the auth result
    });
    run(async move {
        let e = connect(Opts::new().port(port)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e:?}");
        assert!(e.to_string().contains("closed the connection"), "{e}");
        Ok(())
    });
    peer.join().unwrap();
}

/// Handshake, then answer the first query with `reply` packets.
fn query_peer(reply: Vec<Vec<u8>>) -> (u16, thread::JoinHandle<()>) {
    spawn_peer(move |mut p| {
        p.send(&mysql8_hello());
        p.recv().unwrap();
        p.send(&[0x01, 0x03]);
        p.ok();
        p.seq = 0;
        p.recv().unwrap();
        for r in reply {
            p.send(&r);
        }
        let mut rest = Vec::new();
        let _ = p.s.read_to_end(&mut rest);
    })
}

#[test]
fn a_malformed_column_definition_breaks_only_that_connection() {
    let (port, peer) = query_peer(vec![vec![1], b"\x03def\x01".to_vec()]);
    run(async move {
        let mut c = connect(Opts::new().port(port)).await?;
        let e = c.query("SELECT 1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e:?}");
        assert!(e.to_string().contains("malformed packet"), "{e}");
        assert!(c.is_broken());
        assert_eq!(c.ping().await.unwrap_err().kind(), ErrorKind::Broken);
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn a_row_with_the_wrong_number_of_values_is_a_protocol_error() {
    let mut col = Vec::new();
    for s in ["def", "", "", "", "a", ""] {
        col.push(s.len() as u8);
        col.extend_from_slice(s.as_bytes());
    }
    col.extend_from_slice(&[0x0C, 63, 0, 1, 0, 0, 0, 0x08, 0, 0, 0, 0, 0]);
    let (port, peer) = query_peer(vec![vec![1], col, vec![1, b'1', 1, b'2']]);
    run(async move {
        let mut c = connect(Opts::new().port(port)).await?;
        let e = c.query("SELECT a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e:?}");
        assert!(c.is_broken());
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn out_of_order_packets_are_detected() {
    let (port, peer) = spawn_peer(|mut p| {
        p.seq = 5;
        p.send(&mysql8_hello());
    });
    run(async move {
        let e = connect(Opts::new().port(port)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e:?}");
        assert!(e.to_string().contains("out of order"), "{e}");
        Ok(())
    });
    peer.join().unwrap();
}

/// Decrypts the client's RSA-OAEP message and checks it is (password + NUL) XOR scramble.
fn assert_rsa_password(key: &rsa::RsaPrivateKey, enc: &[u8]) {
    let dec = key.decrypt(rsa::Oaep::new::<sha1::Sha1>(), enc).unwrap();
    let plain: Vec<u8> = dec
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ SCRAMBLE[i % 20])
        .collect();
    assert_eq!(plain, b"sekrit\0", "RSA-OAEP(password + NUL XOR scramble)");
}

/// A peer that demands caching_sha2 full authentication, hands out its RSA
/// public key on request, and checks the decrypted password.
fn rsa_peer(
    plugin_hello: fn() -> Vec<u8>,
    key_request: u8,
    full_auth_first: bool,
) -> (u16, thread::JoinHandle<()>, String) {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let pem2 = pem.clone();
    let (port, h) = spawn_peer(move |mut p| {
        p.send(&plugin_hello());
        let first = p.recv().unwrap();
        if full_auth_first {
            p.send(&[0x01, 0x04]); // perform full authentication
            assert_eq!(p.recv().unwrap(), [key_request], "public key request");
        } else {
            let (_, auth, _) = parse_response(&first);
            assert_eq!(
                auth,
                [key_request],
                "public key request in the handshake response"
            );
        }
        let mut m = vec![0x01];
        m.extend_from_slice(pem2.as_bytes());
        p.send(&m);
        let enc = p.recv().unwrap();
        assert_rsa_password(&key, &enc);
        p.ok();
    });
    (port, h, pem)
}

#[test]
fn caching_sha2_full_auth_with_public_key_retrieval() {
    let (port, peer, _) = rsa_peer(mysql8_hello, 0x02, true);
    run(async move {
        let o = Opts::new()
            .port(port)
            .user("app")
            .password("sekrit")
            .allow_public_key_retrieval(true);
        drop(connect(o).await?);
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn caching_sha2_full_auth_with_a_public_key_file() {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let path = std::env::temp_dir().join(format!("mysql-uring-pubkey-{}.pem", std::process::id()));
    std::fs::write(&path, pem).unwrap();
    let (port, peer) = spawn_peer(move |mut p| {
        p.send(&mysql8_hello());
        p.recv().unwrap();
        p.send(&[0x01, 0x04]);
        // No key request: the client encrypts with the key it was given.
        let enc = p.recv().unwrap();
        assert_rsa_password(&key, &enc);
        p.ok();
    });
    let path2 = path.clone();
    run(async move {
        let o = Opts::new()
            .port(port)
            .user("app")
            .password("sekrit")
            .server_public_key_path(&path2);
        drop(connect(o).await?);
        Ok(())
    });
    peer.join().unwrap();
    let _ = std::fs::remove_file(path);
}

fn sha256_hello() -> Vec<u8> {
    let mut p = mysql8_hello();
    let at = p.len() - b"caching_sha2_password\0".len();
    p.truncate(at);
    p.extend_from_slice(b"sha256_password\0");
    p
}

#[test]
fn sha256_password_with_public_key_retrieval() {
    let (port, peer, _) = rsa_peer(sha256_hello, 0x01, false);
    run(async move {
        let o = Opts::new()
            .port(port)
            .user("app")
            .password("sekrit")
            .allow_public_key_retrieval(true);
        drop(connect(o).await?);
        Ok(())
    });
    peer.join().unwrap();
}

#[test]
fn sha256_password_over_plain_tcp_without_a_key_is_refused() {
    let (port, peer) = spawn_peer(|mut p| {
        p.send(&sha256_hello());
        let mut rest = Vec::new();
        let _ = p.s.read_to_end(&mut rest);
        assert!(!rest.windows(6).any(|w| w == b"sekrit"), "password leaked");
    });
    run(async move {
        let e = connect(Opts::new().port(port).user("app").password("sekrit"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert!(e.to_string().contains("allow_public_key_retrieval"), "{e}");
        Ok(())
    });
    peer.join().unwrap();
}

/// zstd protocol compression (`CLIENT_ZSTD_COMPRESSION_ALGORITHM`) is MySQL
/// 8.0.18+ only: MariaDB has none, so a scripted MySQL 8 peer stands in. The
/// peer packs and unpacks compressed packets itself (7-byte headers written
/// here, frames by the zstd crate's libzstd), not with the driver's code.
#[cfg(feature = "zstd")]
mod zstd_peer {
    use super::*;
    use mysql_uring::Compression as Algorithm;

    const COMPRESS: u32 = 1 << 5;
    const CONNECT_WITH_DB: u32 = 1 << 3;
    const CONNECT_ATTRS: u32 = 1 << 20;
    const ZSTD: u32 = 1 << 26;
    const MAX_PAYLOAD: usize = 0xFF_FFFF;

    /// Like MySQL 8: both zlib and zstd offered, no TLS.
    fn hello() -> Vec<u8> {
        hello_with(0xFFFF_F7FF)
    }

    /// The zstd level byte that ends a handshake response, checking on the
    /// way that it is the last thing in it.
    fn zstd_level(p: &[u8]) -> u8 {
        let caps = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        assert_ne!(caps & ZSTD, 0, "the client asks for zstd");
        assert_eq!(caps & COMPRESS, 0, "and not for zlib");
        let mut i = 32;
        let z = |i: usize| i + p[i..].iter().position(|&b| b == 0).unwrap() + 1;
        i = z(i); // user
        i += 1 + p[i] as usize; // auth response (short: one-byte length)
        if caps & CONNECT_WITH_DB != 0 {
            i = z(i);
        }
        i = z(i); // plugin
        assert_ne!(caps & CONNECT_ATTRS, 0);
        let n = match p[i] {
            0xFC => {
                i += 2;
                usize::from(p[i - 1]) | usize::from(p[i]) << 8
            }
            n => usize::from(n),
        };
        i += 1 + n; // attributes
        assert_eq!(p.len(), i + 1, "the level byte ends the response");
        p[i]
    }

    fn put_lenenc(out: &mut Vec<u8>, n: usize) {
        match n {
            0..=250 => out.push(n as u8),
            251..=0xFFFF => {
                out.push(0xFC);
                out.extend_from_slice(&(n as u16).to_le_bytes());
            }
            0x1_0000..=0xFF_FFFF => {
                out.push(0xFD);
                out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            }
            _ => {
                out.push(0xFE);
                out.extend_from_slice(&(n as u64).to_le_bytes());
            }
        }
    }

    /// Ordinary packets from `seq` on, split at 16 MiB - 1.
    fn packets(out: &mut Vec<u8>, seq: &mut u8, mut payload: &[u8]) {
        loop {
            let n = payload.len().min(MAX_PAYLOAD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            out.push(*seq);
            *seq = seq.wrapping_add(1);
            out.extend_from_slice(&payload[..n]);
            payload = &payload[n..];
            if n < MAX_PAYLOAD {
                return;
            }
        }
    }

    fn column(name: &str, typ: u8) -> Vec<u8> {
        let mut c = Vec::new();
        for s in ["def", "", "", "", name, ""] {
            c.push(s.len() as u8);
            c.extend_from_slice(s.as_bytes());
        }
        c.extend_from_slice(&[0x0C, 63, 0, 0xFF, 0xFF, 0xFF, 0xFF, typ, 0x80, 0, 0, 0, 0]);
        c
    }

    /// The value of row `id`'s second column.
    fn value(id: usize) -> Vec<u8> {
        let len = match id {
            1001 => 17 << 20, // a logical packet of more than 16 MiB
            1002 => 3 << 20,
            _ => 5 + id % 13,
        };
        (0..len).map(|j| b'a' + ((j * 7 + id) % 26) as u8).collect()
    }

    const ROWS: usize = 1002;

    /// The peer side of the compressed protocol.
    struct Compressed {
        s: TcpStream,
        /// The next compressed sequence id to send.
        seq: u8,
        /// Plain bytes unwrapped and not yet read as packets.
        plain: Vec<u8>,
        /// Headers of the compressed packets received: (seq, clen, ulen).
        got: Vec<(u8, usize, usize)>,
    }

    impl Compressed {
        fn recv_compressed(&mut self) {
            let mut h = [0u8; 7];
            self.s.read_exact(&mut h).unwrap();
            let clen = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
            let ulen = u32::from_le_bytes([h[4], h[5], h[6], 0]) as usize;
            let mut payload = vec![0; clen];
            self.s.read_exact(&mut payload).unwrap();
            self.got.push((h[3], clen, ulen));
            self.seq = h[3].wrapping_add(1);
            if ulen == 0 {
                self.plain.extend_from_slice(&payload);
            } else {
                assert_eq!(&payload[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
                let plain = zstd::bulk::decompress(&payload, ulen).unwrap();
                assert_eq!(plain.len(), ulen, "the header's uncompressed length");
                self.plain.extend_from_slice(&plain);
            }
        }

        /// The next logical packet from the client: its first sequence id
        /// and its payload (continuations joined).
        fn recv(&mut self) -> (u8, Vec<u8>) {
            let mut at = 0;
            let mut payload = Vec::new();
            let mut first = None;
            let mut parts = 0u8;
            loop {
                while self.plain.len() < at + 4 {
                    self.recv_compressed();
                }
                let h = &self.plain[at..at + 4];
                let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
                let seq = h[3];
                let want = first.map_or(seq, |f: u8| f.wrapping_add(parts));
                assert_eq!(seq, want, "inner sequence ids");
                parts = parts.wrapping_add(1);
                while self.plain.len() < at + 4 + len {
                    self.recv_compressed();
                }
                payload.extend_from_slice(&self.plain[at + 4..at + 4 + len]);
                first.get_or_insert(seq);
                at += 4 + len;
                if len < MAX_PAYLOAD {
                    self.plain.drain(..at);
                    return (first.unwrap(), payload);
                }
            }
        }

        /// Sends `plain` in compressed packets of the sizes `sizes` gives
        /// (cut anywhere, inner packets split and merged); under 50 bytes
        /// stored as is (uncompressed length 0), like the server does.
        fn send(&mut self, plain: &[u8], mut sizes: impl FnMut(usize) -> usize) -> usize {
            let mut at = 0;
            let mut sent = 0;
            while at < plain.len() {
                let n = sizes(at).min(MAX_PAYLOAD).min(plain.len() - at);
                let chunk = &plain[at..at + n];
                let (payload, ulen) = if n < 50 {
                    (chunk.to_vec(), 0)
                } else {
                    (zstd::bulk::compress(chunk, 3).unwrap(), n)
                };
                let mut h = (payload.len() as u32).to_le_bytes();
                h[3] = self.seq;
                self.s.write_all(&h).unwrap();
                self.s.write_all(&(ulen as u32).to_le_bytes()[..3]).unwrap();
                self.s.write_all(&payload).unwrap();
                self.seq = self.seq.wrapping_add(1);
                at += n;
                sent += 1;
            }
            sent
        }
    }

    #[test]
    fn zstd_handshake_level_then_compressed_queries_and_a_20_mib_result() {
        let (port, peer) = spawn_peer(|mut p| {
            p.send(&hello());
            let resp = p.recv().unwrap();
            assert_eq!(zstd_level(&resp), 7, "the level asked for");
            p.send(&[0x01, 0x03]); // fast auth success
            p.ok();
            // From here on, everything travels in compressed packets.
            let mut z = Compressed {
                s: p.s,
                seq: 0,
                plain: Vec::new(),
                got: Vec::new(),
            };
            let sql = format!(
                "SELECT id, v FROM t WHERE id <= {ROWS} /* {} */",
                "pad ".repeat(40)
            );
            let (seq, q) = z.recv();
            assert_eq!(seq, 0);
            assert_eq!(q, [b"\x03", sql.as_bytes()].concat());
            // One compressed packet, sequence id 0, compressed (long enough).
            assert_eq!(z.got, vec![(0, z.got[0].1, 4 + q.len())]);
            // The result: 2 columns, 1000 short rows, a 17 MiB row and a
            // 3 MiB one, OK-as-EOF. Many small compressed packets first
            // (the sequence wraps past 255), then large ones.
            let mut plain = Vec::new();
            let mut seq = 1;
            packets(&mut plain, &mut seq, &[2]);
            packets(&mut plain, &mut seq, &column("id", 0x08));
            packets(&mut plain, &mut seq, &column("v", 0xFC));
            let mut small_end = 0;
            for id in 1..=ROWS {
                let v = value(id);
                let mut row = Vec::new();
                let ids = id.to_string();
                put_lenenc(&mut row, ids.len());
                row.extend_from_slice(ids.as_bytes());
                put_lenenc(&mut row, v.len());
                row.extend_from_slice(&v);
                packets(&mut plain, &mut seq, &row);
                if id == 1000 {
                    small_end = plain.len();
                }
            }
            packets(&mut plain, &mut seq, &[0xFE, 0, 0, 0x02, 0, 0, 0]);
            let small = [13, 1, 200, 4, 57, 31, 3, 49, 50];
            let large = [MAX_PAYLOAD, 777_777, 5, 2_000_000];
            let mut i = 0;
            let sent = z.send(&plain, |at| {
                i += 1;
                if at < small_end {
                    small[i % small.len()].min(small_end - at)
                } else {
                    large[i % large.len()]
                }
            });
            assert!(
                sent > 300,
                "{sent} compressed packets: the sequence wrapped"
            );
            // A 17 MiB query: two ordinary packets, in two compressed
            // packets (16 MiB - 1 plain bytes, then the rest), sequence 0, 1.
            z.got.clear();
            let (seq, q) = z.recv();
            assert_eq!(seq, 0);
            assert_eq!(q.len(), 1 + (17 << 20));
            assert!(q.starts_with(b"\x03SELECT LENGTH('yyy") && q.ends_with(b"yyy')"));
            assert_eq!(z.got.len(), 2, "{:?}", z.got);
            assert_eq!((z.got[0].0, z.got[0].2), (0, MAX_PAYLOAD));
            assert_eq!((z.got[1].0, z.got[1].2), (1, 4 + q.len() + 4 - MAX_PAYLOAD));
            let mut ok = Vec::new();
            packets(&mut ok, &mut 1, &[0x00, 0, 0, 0x02, 0, 0, 0]);
            assert_eq!(z.seq, 2);
            z.send(&ok, |_| usize::MAX);
            // COM_QUIT: a new command, 5 bytes stored as is, sequence id 0.
            z.got.clear();
            assert_eq!(z.recv(), (0, vec![0x01]));
            assert_eq!(z.got, vec![(0, 5, 0)]);
        });
        run(async move {
            let o = Opts::new()
                .port(port)
                .user("app")
                .password("sekrit")
                .compression(Some(Algorithm::Zstd(7)));
            let mut c = connect(o).await?;
            assert!(c.is_compressed());
            let sql = format!(
                "SELECT id, v FROM t WHERE id <= {ROWS} /* {} */",
                "pad ".repeat(40)
            );
            let rows = c.query(&sql).await?;
            assert_eq!(rows.len(), ROWS);
            for (i, r) in rows.iter().enumerate() {
                assert_eq!(r.get::<u64>(0)?, i as u64 + 1);
                assert!(r.get::<&[u8]>(1)? == value(i + 1), "row {}", i + 1);
            }
            let q = format!("SELECT LENGTH('{}')", "y".repeat((17 << 20) - 17));
            c.query_drop(&q).await?;
            c.close().await
        });
        peer.join().unwrap();
    }

    #[test]
    fn zstd_from_a_server_without_it_is_refused_before_authenticating() {
        // MariaDB-like: zlib only.
        let (port, peer) = spawn_peer(|mut p| {
            p.send(&hello_with(0xFFFF_F7FF & !ZSTD));
            let mut rest = Vec::new();
            let _ = p.s.read_to_end(&mut rest);
            assert!(rest.is_empty(), "nothing sent: {rest:?}");
        });
        run(async move {
            let o = Opts::new().port(port).compression(Some(Algorithm::Zstd(3)));
            let e = connect(o).await.unwrap_err();
            assert!(e.to_string().contains("does not offer it"), "{e}");
            Ok(())
        });
        peer.join().unwrap();
    }
}
