//! mysql-uring and mysql_async reading the same canned 10,000-row result from
//! an in-process fake server on loopback TCP: the client's decode path with
//! the server taken out.
//!
//! `cargo bench -p mysql-uring-bench --bench canned_decode`
//!
//! The bytes are those of the library's `benches/decode.rs`
//! (`e2e_canned_peer`): `SELECT id, name, price, qty, note, created` as
//! BIGINT UNSIGNED, VARCHAR, DOUBLE, INT, TEXT (NULL in every other row),
//! DATETIME, text protocol. The comparison lives here because only this crate
//! depends on mysql_async.
//!
//! - `typed_next_row`: mysql-uring's `cmd_query` + `next_row` +
//!   `RowRef::get::<u64/&str/f64/i32/Option<&str>>` (borrowed values).
//! - `mysql_async_from_row`: mysql_async's `query_iter` + `for_each` +
//!   `from_row` into owned values (its fastest typed path; it has no
//!   borrowed `&str`), on a current-thread tokio runtime.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Rows per query.
const ROWS: usize = 10_000;
/// The query; the peer ignores its text.
const SQL: &str = "SELECT id, name, price, qty, note, created FROM t";

/// Appends a length-encoded integer.
fn put_lenenc_int(out: &mut Vec<u8>, n: u64) {
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
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
fn put_lenenc_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_lenenc_int(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The payload of row `i` (as `benches/decode.rs` makes it).
fn row_payload(i: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(128);
    put_lenenc_bytes(&mut p, (1_000_000 + i as u64).to_string().as_bytes());
    put_lenenc_bytes(
        &mut p,
        format!("widget-{:07}-{}", i, ["abcde", "xyzzy", "qwert"][i % 3]).as_bytes(),
    );
    let price = (i % 10_000) as f64 * 1.25 / 7.0 + 0.01;
    put_lenenc_bytes(&mut p, price.to_string().as_bytes());
    put_lenenc_bytes(&mut p, ((i * 37) % 5000).to_string().as_bytes());
    if i % 2 == 0 {
        p.push(0xFB); // NULL
    } else {
        put_lenenc_bytes(
            &mut p,
            format!("free-text note for row {i}: shipped, paid, nothing to report").as_bytes(),
        );
    }
    put_lenenc_bytes(
        &mut p,
        format!(
            "2024-{:02}-{:02} {:02}:{:02}:{:02}",
            i % 12 + 1,
            i % 28 + 1,
            i % 24,
            i % 60,
            (i * 7) % 60
        )
        .as_bytes(),
    );
    p
}

/// A column definition packet (protocol 4.1).
fn column_def(name: &str, type_byte: u8, flags: u16, charset: u16) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", "bench", "t", "t", name, name] {
        put_lenenc_bytes(&mut p, s.as_bytes());
    }
    p.push(0x0C);
    p.extend_from_slice(&charset.to_le_bytes());
    p.extend_from_slice(&255u32.to_le_bytes());
    p.push(type_byte);
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    p
}

/// Frames `payload` with sequence id `*seq` (then incremented) onto `out`.
fn frame_into(out: &mut Vec<u8>, seq: &mut u8, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    out.push(*seq);
    *seq = seq.wrapping_add(1);
    out.extend_from_slice(payload);
}

/// The whole response to one query: column count, definitions, rows, and the
/// OK that ends the rows (CLIENT_DEPRECATE_EOF).
fn canned_response() -> Vec<u8> {
    const NOT_NULL: u16 = 1;
    const UNSIGNED: u16 = 32;
    let defs = [
        column_def("id", 0x08, NOT_NULL | UNSIGNED, 63),
        column_def("name", 0xFD, NOT_NULL, 45),
        column_def("price", 0x05, NOT_NULL, 63),
        column_def("qty", 0x03, NOT_NULL, 63),
        column_def("note", 0xFC, 0, 45),
        column_def("created", 0x0C, NOT_NULL, 63),
    ];
    let (mut out, mut seq) = (Vec::new(), 1u8);
    let mut count = Vec::new();
    put_lenenc_int(&mut count, defs.len() as u64);
    frame_into(&mut out, &mut seq, &count);
    for d in &defs {
        frame_into(&mut out, &mut seq, d);
    }
    for i in 0..ROWS {
        frame_into(&mut out, &mut seq, &row_payload(i));
    }
    frame_into(&mut out, &mut seq, &[0xFE, 0, 0, 0x02, 0, 0, 0]);
    out
}

/// A MySQL 5.7-style greeting offering mysql_native_password, without TLS,
/// compression or session tracking.
fn hello() -> Vec<u8> {
    const COMPRESS: u32 = 1 << 5;
    const SSL: u32 = 1 << 11;
    const SESSION_TRACK: u32 = 1 << 23;
    let caps = !COMPRESS & !SSL & !SESSION_TRACK;
    let scramble = *b"0123456789abcdefghij";
    let mut p = vec![10];
    p.extend_from_slice(b"5.7.99-canned\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(b"mysql_native_password\0");
    p
}

/// Reads one packet; `None` once the client is gone.
fn recv(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let mut p = vec![0; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
    s.read_exact(&mut p).ok()?;
    Some(p)
}

/// Starts the fake server for one connection: accepts any credentials, then
/// answers every COM_QUERY with the canned result. Returns its port.
fn spawn_canned_peer() -> u16 {
    let response = canned_response();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the canned peer");
    let port = l.local_addr().expect("its address").port();
    thread::spawn(move || {
        let (mut s, _) = l.accept().expect("the client connects");
        s.set_nodelay(true).expect("TCP_NODELAY");
        let (mut out, mut seq) = (Vec::new(), 0u8);
        frame_into(&mut out, &mut seq, &hello());
        s.write_all(&out).expect("greeting");
        recv(&mut s).expect("handshake response");
        out.clear();
        seq = 2;
        frame_into(&mut out, &mut seq, &[0x00, 0, 0, 0x02, 0, 0, 0]);
        s.write_all(&out).expect("auth OK");
        while let Some(cmd) = recv(&mut s) {
            // COM_QUERY gets the result; COM_QUIT or anything else: hang up.
            if cmd.first() != Some(&0x03) || s.write_all(&response).is_err() {
                break;
            }
        }
    });
    port
}

/// A checksum over one row's values, so nothing is optimised away.
fn acc(id: u64, name: &str, price: f64, qty: i32, note: Option<&str>, created: &str) -> u64 {
    id.wrapping_add(price as u64)
        .wrapping_add(qty as u64)
        .wrapping_add((name.len() + created.len()) as u64)
        .wrapping_add(note.map_or(0, str::len) as u64)
}

fn bench_canned(c: &mut Criterion) {
    let mut g = c.benchmark_group("canned_decode");
    g.throughput(Throughput::Elements(ROWS as u64));

    let port = spawn_canned_peer();
    let rt = mysql_uring::runtime::LocalRuntime::new().expect("io_uring runtime");
    let url = format!("mysql://root@127.0.0.1:{port}/");
    let mut cnx = rt
        .block_on(mysql_uring::connect(url.as_str()))
        .expect("io_uring runtime")
        .expect("mysql-uring connects to the canned peer");
    g.bench_function(format!("typed_next_row/{ROWS}_rows"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    cnx.cmd_query(SQL).await.expect("query");
                    let (mut n, mut sum) = (0usize, 0u64);
                    while let Some(row) = cnx.next_row().await.expect("row") {
                        let v = (
                            row.get::<u64>(0).expect("id"),
                            row.get::<&str>(1).expect("name"),
                            row.get::<f64>(2).expect("price"),
                            row.get::<i32>(3).expect("qty"),
                            row.get::<Option<&str>>(4).expect("note"),
                            row.get::<&str>(5).expect("created"),
                        );
                        sum = sum.wrapping_add(acc(v.0, v.1, v.2, v.3, v.4, v.5));
                        n += 1;
                    }
                    assert_eq!(n, ROWS);
                    black_box(sum);
                }
                t.elapsed()
            })
            .expect("io_uring runtime")
        })
    });
    let _ = rt.block_on(async { cnx.close().await.ok() });

    let port = spawn_canned_peer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .prefer_socket(false)
        // Known up front, so mysql_async does not query them after connecting
        // (the canned peer answers every query with the same result).
        .max_allowed_packet(Some(64 << 20))
        .wait_timeout(Some(28800));
    let mut conn = rt
        .block_on(mysql_async::Conn::new(opts))
        .expect("mysql_async connects to the canned peer");
    g.bench_function(format!("mysql_async_from_row/{ROWS}_rows"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                use mysql_async::prelude::Queryable;
                let t = Instant::now();
                for _ in 0..iters {
                    let (mut n, mut sum) = (0usize, 0u64);
                    let mut result = conn.query_iter(SQL).await.expect("query");
                    result
                        .for_each(|row| {
                            let (id, name, price, qty, note, created): (
                                u64,
                                String,
                                f64,
                                i32,
                                Option<String>,
                                String,
                            ) = mysql_async::from_row(row);
                            sum = sum.wrapping_add(acc(
                                id,
                                &name,
                                price,
                                qty,
                                note.as_deref(),
                                &created,
                            ));
                            n += 1;
                        })
                        .await
                        .expect("rows");
                    drop(result);
                    assert_eq!(n, ROWS);
                    black_box(sum);
                }
                t.elapsed()
            })
        })
    });
    rt.block_on(async { conn.disconnect().await.ok() });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench_canned
}
criterion_main!(benches);
