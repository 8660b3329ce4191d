//! Text-row decoding on canned bytes: no database server.
//!
//! The rows look like `SELECT id, name, price, qty, note, created` from a
//! typical table: BIGINT, VARCHAR(~20), DOUBLE, INT, TEXT (NULL in every other
//! row), DATETIME, all in the text protocol. Every benchmark reports its
//! throughput in rows.
//!
//! - `locate`: [`text_row_fields`] finding the 6 values of each row.
//! - `locate_std_parse`: locating, then parsing each value with the standard
//!   library (`str::from_utf8`, `str::parse`). The driver's own conversions
//!   ([`mysql_uring::FromValue::from_text`]) need a [`mysql_uring::Column`],
//!   which cannot be built outside the crate, so this is an approximation of
//!   the conversion cost, not the driver's code.
//! - `framer`: [`Framer::decode`] splitting a 64 KiB read buffer of
//!   back-to-back row packets.
//! - `packet_path`: everything the connection does per row apart from IO:
//!   framer, [`ResultMachine::on_packet`] classifying the packet, and
//!   [`text_row_fields`].
//! - `e2e_canned_peer`: the whole public client path, typed values included
//!   (`Connection::cmd_query` + `next_row` + `RowRef::get::<u64/f64/i32/&str/
//!   Option<&str>>`), against an in-process fake server on loopback TCP that
//!   answers every query with the same pre-encoded result of 10,000 rows. The
//!   fake server only copies bytes into its socket, so this measures the client.
//!   The same bytes read by mysql_async: `cargo bench -p mysql-uring-bench
//!   --bench canned_decode` (this crate does not depend on mysql_async).
//! - `e2e_canned_peer/bench_tool_*`: the `mysql-uring-bench` decode workload's
//!   7 columns (BIGINT UNSIGNED, INT, DOUBLE, VARCHAR, DATETIME, DECIMAL,
//!   TEXT NULL in every tenth row, same values) read the way its decode loop
//!   reads them: as text rows (`cmd_query`) by position and by name, and as
//!   binary rows (`cmd_execute`, DATETIME as [`mysql_uring::DateTime`]).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::thread;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mysql_uring::proto::codec::{put_lenenc_bytes, put_lenenc_int};
use mysql_uring::proto::consts::caps;
use mysql_uring::proto::framer::{Frame, Framer, HEADER_LEN};
use mysql_uring::proto::result::{ResultEvent, ResultMachine};
use mysql_uring::proto::row::{FieldRange, text_row_fields};

/// Columns per row.
const COLS: usize = 6;
/// Rows per query in the canned-peer benchmark.
const PEER_ROWS: usize = 10_000;
/// Size of the simulated read buffer.
const READ_BUF: usize = 64 * 1024;

/// The payload of row `i`.
fn row_payload(i: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(128);
    let id = 1_000_000 + i as u64;
    put_lenenc_bytes(&mut p, id.to_string().as_bytes());
    put_lenenc_bytes(
        &mut p,
        format!("widget-{:07}-{}", i, ["abcde", "xyzzy", "qwert"][i % 3]).as_bytes(),
    );
    // What the server sends for a DOUBLE: shortest round-trip text.
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

/// Back-to-back framed row packets filling at most `READ_BUF` bytes, with the
/// sequence ids a fresh framer expects; and the payloads on their own.
fn read_buffer() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut framer = Framer::new(1 << 30);
    let mut buf = Vec::with_capacity(READ_BUF);
    let mut payloads = Vec::new();
    for i in 0.. {
        let p = row_payload(i);
        if buf.len() + HEADER_LEN + p.len() > READ_BUF {
            break;
        }
        framer.encode(&p, &mut buf).unwrap();
        payloads.push(p);
    }
    (buf, payloads)
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
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p
}

/// The column definitions of the canned result: BIGINT UNSIGNED, VARCHAR,
/// DOUBLE, INT, TEXT, DATETIME.
fn column_defs() -> Vec<Vec<u8>> {
    const NOT_NULL: u16 = 1;
    const UNSIGNED: u16 = 32;
    vec![
        column_def("id", 0x08, NOT_NULL | UNSIGNED, 63),
        column_def("name", 0xFD, NOT_NULL, 45),
        column_def("price", 0x05, NOT_NULL, 63),
        column_def("qty", 0x03, NOT_NULL, 63),
        column_def("note", 0xFC, 0, 45),
        column_def("created", 0x0C, NOT_NULL, 63),
    ]
}

/// A result machine that has seen the column count and definitions, i.e.
/// expects rows.
fn machine_in_rows() -> ResultMachine {
    let mut m = ResultMachine::new(caps::PROTOCOL_41 | caps::DEPRECATE_EOF);
    assert_eq!(
        m.on_packet(&[COLS as u8]).unwrap(),
        ResultEvent::ColumnCount(COLS)
    );
    for c in column_defs() {
        assert!(matches!(m.on_packet(&c).unwrap(), ResultEvent::Column(_)));
    }
    assert!(m.in_rows());
    m
}

fn bench_locate(c: &mut Criterion) {
    let (_, payloads) = read_buffer();
    let rows = payloads.len();
    let mut g = c.benchmark_group("text_row");
    g.throughput(Throughput::Elements(rows as u64));

    // The connection keeps one Vec<FieldRange> and clears it per row.
    let mut fields: Vec<FieldRange> = Vec::with_capacity(16);
    g.bench_function(format!("locate/{rows}_rows"), |b| {
        b.iter(|| {
            let mut nulls = 0usize;
            for p in &payloads {
                fields.clear();
                text_row_fields(black_box(p), COLS, &mut fields).unwrap();
                nulls += usize::from(fields[4].is_null());
            }
            nulls
        })
    });

    g.bench_function(format!("locate_std_parse/{rows}_rows"), |b| {
        b.iter(|| {
            let mut acc = 0u64;
            let mut bytes = 0usize;
            for p in &payloads {
                fields.clear();
                let p = black_box(p.as_slice());
                text_row_fields(p, COLS, &mut fields).unwrap();
                let s = |i: usize| std::str::from_utf8(fields[i].get(p).unwrap()).unwrap();
                let id: u64 = s(0).parse().unwrap();
                let name: &str = s(1);
                let price: f64 = s(2).parse().unwrap();
                let qty: i32 = s(3).parse().unwrap();
                let note: Option<&str> = fields[4].get(p).map(|v| std::str::from_utf8(v).unwrap());
                let created: &str = s(5);
                acc = acc
                    .wrapping_add(id)
                    .wrapping_add(price as u64)
                    .wrapping_add(qty as u64);
                bytes += name.len() + note.map_or(0, str::len) + created.len();
            }
            (acc, bytes)
        })
    });
    g.finish();
}

fn bench_framer(c: &mut Criterion) {
    let (buf, payloads) = read_buffer();
    let rows = payloads.len();
    let mut g = c.benchmark_group("framer");
    g.throughput(Throughput::Elements(rows as u64));

    let mut work = buf.clone();
    g.bench_function(format!("decode_64KiB/{rows}_rows"), |b| {
        b.iter(|| {
            let mut f = Framer::new(1 << 30);
            let mut pos = 0usize;
            let mut n = 0usize;
            while pos < work.len() {
                match f.decode(black_box(&mut work[pos..])).unwrap() {
                    Frame::Packet { consumed, .. } => {
                        pos += consumed;
                        n += 1;
                    }
                    Frame::Incomplete { .. } => break,
                }
            }
            assert_eq!(n, rows);
            n
        })
    });

    let start = machine_in_rows();
    let mut fields: Vec<FieldRange> = Vec::with_capacity(16);
    g.bench_function(format!("packet_path_64KiB/{rows}_rows"), |b| {
        b.iter(|| {
            let mut f = Framer::new(1 << 30);
            let mut m = start.clone();
            let mut pos = 0usize;
            let mut nulls = 0usize;
            while pos < work.len() {
                let (payload, consumed): (Range<usize>, usize) =
                    match f.decode(black_box(&mut work[pos..])).unwrap() {
                        Frame::Packet { payload, consumed } => (payload, consumed),
                        Frame::Incomplete { .. } => break,
                    };
                let p = &work[pos..][payload];
                assert!(matches!(m.on_packet(p).unwrap(), ResultEvent::Row));
                fields.clear();
                text_row_fields(p, COLS, &mut fields).unwrap();
                nulls += usize::from(fields[4].is_null());
                pos += consumed;
            }
            nulls
        })
    });
    g.finish();
}

/// Frames `payload` with sequence id `*seq` (then incremented) onto `out`.
fn frame_into(out: &mut Vec<u8>, seq: &mut u8, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes()[..3]);
    out.push(*seq);
    *seq = seq.wrapping_add(1);
    out.extend_from_slice(payload);
}

/// The complete response to one query: column count, definitions, rows,
/// end-of-rows OK (CLIENT_DEPRECATE_EOF).
fn canned_response(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    let mut count = Vec::new();
    put_lenenc_int(&mut count, COLS as u64);
    frame_into(&mut out, &mut seq, &count);
    for c in column_defs() {
        frame_into(&mut out, &mut seq, &c);
    }
    for i in 0..rows {
        frame_into(&mut out, &mut seq, &row_payload(i));
    }
    frame_into(&mut out, &mut seq, &[0xFE, 0, 0, 0x02, 0, 0, 0]);
    out
}

/// A MySQL 5.7-style greeting offering mysql_native_password, without TLS or
/// compression.
fn hello() -> Vec<u8> {
    let caps_all: u32 = !caps::COMPRESS & !caps::SSL & !caps::SESSION_TRACK;
    let scramble = *b"0123456789abcdefghij";
    let mut p = vec![10];
    p.extend_from_slice(b"5.7.99-canned\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    p.extend_from_slice(&(caps_all as u16).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps_all >> 16) as u16).to_le_bytes());
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
    let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
    let mut p = vec![0; len];
    s.read_exact(&mut p).ok()?;
    Some(p)
}

/// Starts the fake server; returns its port. It serves one connection:
/// accepts any credentials, then answers every COM_QUERY with `response`.
fn spawn_canned_peer(response: Vec<u8>) -> u16 {
    spawn_peer(response, Vec::new(), Vec::new())
}

/// [`spawn_canned_peer`] that also answers every COM_STMT_PREPARE with
/// `prepare` and every COM_STMT_EXECUTE with `execute`.
fn spawn_peer(response: Vec<u8>, prepare: Vec<u8>, execute: Vec<u8>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut out = Vec::new();
        let mut seq = 0u8;
        frame_into(&mut out, &mut seq, &hello());
        s.write_all(&out).unwrap();
        recv(&mut s).expect("handshake response");
        out.clear();
        seq = 2;
        frame_into(&mut out, &mut seq, &[0x00, 0, 0, 0x02, 0, 0, 0]);
        s.write_all(&out).unwrap();
        while let Some(cmd) = recv(&mut s) {
            let answer = match cmd.first() {
                Some(0x03) => &response,
                Some(0x16) if !prepare.is_empty() => &prepare,
                Some(0x17) if !execute.is_empty() => &execute,
                _ => break, // COM_QUIT or anything else: hang up.
            };
            if s.write_all(answer).is_err() {
                break;
            }
        }
    });
    port
}

fn bench_e2e_canned_peer(c: &mut Criterion) {
    let port = spawn_canned_peer(canned_response(PEER_ROWS));
    let rt = mysql_uring::runtime::LocalRuntime::new().expect("io_uring runtime");
    let mut cnx = rt
        .block_on(mysql_uring::connect(
            format!("mysql://root@127.0.0.1:{port}/").as_str(),
        ))
        .expect("io_uring runtime")
        .expect("connect to the canned peer");

    let mut g = c.benchmark_group("e2e_canned_peer");
    g.throughput(Throughput::Elements(PEER_ROWS as u64));
    g.bench_function(format!("typed_next_row/{PEER_ROWS}_rows"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = std::time::Instant::now();
                for _ in 0..iters {
                    cnx.cmd_query("SELECT id, name, price, qty, note, created FROM t")
                        .await
                        .unwrap();
                    let mut n = 0usize;
                    let mut acc = 0u64;
                    while let Some(row) = cnx.next_row().await.unwrap() {
                        let id: u64 = row.get(0).unwrap();
                        let name: &str = row.get(1).unwrap();
                        let price: f64 = row.get(2).unwrap();
                        let qty: i32 = row.get(3).unwrap();
                        let note: Option<&str> = row.get(4).unwrap();
                        let created: &str = row.get(5).unwrap();
                        acc = acc
                            .wrapping_add(id)
                            .wrapping_add(price as u64)
                            .wrapping_add(qty as u64)
                            .wrapping_add((name.len() + created.len()) as u64)
                            .wrapping_add(note.map_or(0, str::len) as u64);
                        n += 1;
                    }
                    assert_eq!(n, PEER_ROWS);
                    black_box(acc);
                }
                t.elapsed()
            })
            .expect("io_uring runtime")
        })
    });
    let _ = rt.block_on(async { cnx.close().await.ok() });

    g.finish();
}

/// The `mysql-uring-bench` decode table's columns: id BIGINT UNSIGNED, qty
/// INT, price DOUBLE, name VARCHAR(32), created DATETIME, amount
/// DECIMAL(10,2), note TEXT NULL.
fn bench_tool_column_defs() -> Vec<Vec<u8>> {
    const NOT_NULL: u16 = 1;
    const UNSIGNED: u16 = 32;
    vec![
        column_def("id", 0x08, NOT_NULL | UNSIGNED, 63),
        column_def("qty", 0x03, NOT_NULL, 63),
        column_def("price", 0x05, NOT_NULL, 63),
        column_def("name", 0xFD, NOT_NULL, 45),
        column_def("created", 0x0C, NOT_NULL, 63),
        column_def("amount", 0xF6, NOT_NULL, 63),
        column_def("note", 0xFC, 0, 45),
    ]
}

/// Row `seq` (from 1) of the bench tool's decode table, as its fill query
/// makes it: (id, qty, price, name, (date, h, m, s), amount, note).
#[allow(clippy::type_complexity)]
fn bench_tool_values(
    seq: u64,
) -> (
    u64,
    i32,
    f64,
    String,
    ((u16, u8, u8), u8, u8, u8),
    String,
    Option<String>,
) {
    // A stand-in for MD5's hex digits: same length, same alphabet.
    let hex = |n: u64| {
        format!(
            "{:016x}{:016x}",
            n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            n ^ 0xDEAD_BEEF
        )
    };
    let secs = seq; // TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND
    let (day, rem) = (secs / 86_400, secs % 86_400);
    (
        seq,
        (seq % 100_000) as i32 - 50_000,
        seq as f64 / 7.0,
        format!("name-{seq}-{}", &hex(seq)[..10]),
        (
            (2024, 1, 1 + day as u8),
            (rem / 3600) as u8,
            (rem / 60 % 60) as u8,
            (rem % 60) as u8,
        ),
        format!("{}.{:02}", seq % 100_000 / 100, seq % 100),
        (seq % 10 != 0).then(|| format!("note for row {seq}: {}", hex(seq))),
    )
}

fn bench_tool_text_row(seq: u64) -> Vec<u8> {
    let (id, qty, price, name, ((y, mo, d), h, mi, s), amount, note) = bench_tool_values(seq);
    let mut p = Vec::with_capacity(160);
    put_lenenc_bytes(&mut p, id.to_string().as_bytes());
    put_lenenc_bytes(&mut p, qty.to_string().as_bytes());
    put_lenenc_bytes(&mut p, price.to_string().as_bytes());
    put_lenenc_bytes(&mut p, name.as_bytes());
    put_lenenc_bytes(
        &mut p,
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}").as_bytes(),
    );
    put_lenenc_bytes(&mut p, amount.as_bytes());
    match note {
        Some(n) => put_lenenc_bytes(&mut p, n.as_bytes()),
        None => p.push(0xFB),
    }
    p
}

fn bench_tool_binary_row(seq: u64) -> Vec<u8> {
    let (id, qty, price, name, ((y, mo, d), h, mi, s), amount, note) = bench_tool_values(seq);
    // Header, then the NULL bitmap ((7 + 9) / 8 bytes; note is column 6: bit 8).
    let mut p = vec![0x00, 0, u8::from(note.is_none())];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&qty.to_le_bytes());
    p.extend_from_slice(&price.to_le_bytes());
    put_lenenc_bytes(&mut p, name.as_bytes());
    p.push(7);
    p.extend_from_slice(&y.to_le_bytes());
    p.extend_from_slice(&[mo, d, h, mi, s]);
    put_lenenc_bytes(&mut p, amount.as_bytes());
    if let Some(n) = note {
        put_lenenc_bytes(&mut p, n.as_bytes());
    }
    p
}

/// A result set of the bench tool's 7 columns: column count, definitions,
/// `rows` rows made by `row`, end-of-rows OK.
fn bench_tool_response(rows: usize, row: fn(u64) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    frame_into(&mut out, &mut seq, &[7]);
    for c in bench_tool_column_defs() {
        frame_into(&mut out, &mut seq, &c);
    }
    for i in 0..rows {
        frame_into(&mut out, &mut seq, &row(i as u64 + 1));
    }
    frame_into(&mut out, &mut seq, &[0xFE, 0, 0, 0x02, 0, 0, 0]);
    out
}

/// The prepare response for the bench tool's statement: OK (id 1, 7
/// columns, no parameters) and the column definitions (no EOF packets:
/// CLIENT_DEPRECATE_EOF).
fn bench_tool_prepare_response() -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    frame_into(&mut out, &mut seq, &[0x00, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0]);
    for c in bench_tool_column_defs() {
        frame_into(&mut out, &mut seq, &c);
    }
    out
}

/// A bench tool decode row's checksum, as its `Digest::add_typed` sums it.
#[inline]
#[allow(clippy::too_many_arguments)]
fn digest(
    id: u64,
    qty: i32,
    price: f64,
    name: &str,
    created: u64,
    amount: &str,
    note: Option<&str>,
) -> u64 {
    id.wrapping_add(qty as u64)
        .wrapping_add(price as u64)
        .wrapping_add(name.len() as u64)
        .wrapping_add(created)
        .wrapping_add(amount.len() as u64)
        .wrapping_add(note.map_or(7, |s| s.len() as u64))
}

fn bench_bench_tool_rows(c: &mut Criterion) {
    const SQL: &str = "SELECT * FROM bench_decode";
    let port = spawn_peer(
        bench_tool_response(PEER_ROWS, bench_tool_text_row),
        bench_tool_prepare_response(),
        bench_tool_response(PEER_ROWS, bench_tool_binary_row),
    );
    let rt = mysql_uring::runtime::LocalRuntime::new().expect("io_uring runtime");
    let mut cnx = rt
        .block_on(mysql_uring::connect(
            format!("mysql://root@127.0.0.1:{port}/").as_str(),
        ))
        .expect("io_uring runtime")
        .expect("connect to the canned peer");

    let mut g = c.benchmark_group("e2e_canned_peer");
    g.throughput(Throughput::Elements(PEER_ROWS as u64));
    g.bench_function(
        format!("bench_tool_text_by_position/{PEER_ROWS}_rows"),
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = std::time::Instant::now();
                    for _ in 0..iters {
                        cnx.cmd_query(SQL).await.unwrap();
                        let (mut n, mut acc) = (0usize, 0u64);
                        while let Some(row) = cnx.next_row().await.unwrap() {
                            let created: &str = row.get(4).unwrap();
                            acc = acc.wrapping_add(digest(
                                row.get(0).unwrap(),
                                row.get(1).unwrap(),
                                row.get(2).unwrap(),
                                row.get(3).unwrap(),
                                created.len() as u64,
                                row.get(5).unwrap(),
                                row.get(6).unwrap(),
                            ));
                            n += 1;
                        }
                        assert_eq!(n, PEER_ROWS);
                        black_box(acc);
                    }
                    t.elapsed()
                })
                .expect("io_uring runtime")
            })
        },
    );
    g.bench_function(format!("bench_tool_text_by_name/{PEER_ROWS}_rows"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = std::time::Instant::now();
                for _ in 0..iters {
                    cnx.cmd_query(SQL).await.unwrap();
                    let (mut n, mut acc) = (0usize, 0u64);
                    while let Some(row) = cnx.next_row().await.unwrap() {
                        let created: &str = row.get("created").unwrap();
                        acc = acc.wrapping_add(digest(
                            row.get("id").unwrap(),
                            row.get("qty").unwrap(),
                            row.get("price").unwrap(),
                            row.get("name").unwrap(),
                            created.len() as u64,
                            row.get("amount").unwrap(),
                            row.get("note").unwrap(),
                        ));
                        n += 1;
                    }
                    assert_eq!(n, PEER_ROWS);
                    black_box(acc);
                }
                t.elapsed()
            })
            .expect("io_uring runtime")
        })
    });
    g.bench_function(
        format!("bench_tool_binary_by_position/{PEER_ROWS}_rows"),
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = std::time::Instant::now();
                    for _ in 0..iters {
                        cnx.cmd_execute(SQL, ()).await.unwrap();
                        let (mut n, mut acc) = (0usize, 0u64);
                        while let Some(row) = cnx.next_row().await.unwrap() {
                            let t: mysql_uring::DateTime = row.get(4).unwrap();
                            let created = u64::from(t.date.year)
                                + u64::from(t.date.month)
                                + u64::from(t.date.day)
                                + u64::from(t.hour)
                                + u64::from(t.minute)
                                + u64::from(t.second)
                                + u64::from(t.micros);
                            acc = acc.wrapping_add(digest(
                                row.get(0).unwrap(),
                                row.get(1).unwrap(),
                                row.get(2).unwrap(),
                                row.get(3).unwrap(),
                                created,
                                row.get(5).unwrap(),
                                row.get(6).unwrap(),
                            ));
                            n += 1;
                        }
                        assert_eq!(n, PEER_ROWS);
                        black_box(acc);
                    }
                    t.elapsed()
                })
                .expect("io_uring runtime")
            })
        },
    );
    g.finish();
    let _ = rt.block_on(async { cnx.close().await.ok() });
}

criterion_group!(
    benches,
    bench_locate,
    bench_framer,
    bench_e2e_canned_peer,
    bench_bench_tool_rows
);
criterion_main!(benches);
