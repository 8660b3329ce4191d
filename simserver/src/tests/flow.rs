//! Time, back-pressure, transactions, KILL, closes, LOAD DATA, framing faults.

use super::*;

const SEC: u64 = 1_000_000_000;

fn insert(id: i64, v: &str) -> Vec<u8> {
    query(&format!("INSERT INTO t (id, v) VALUES ({id}, '{v}')"))
}

#[test]
fn transactions_and_commit_log() {
    let mut sim = Sim::default_();
    let (a, b) = (sim.login(), sim.login());
    let r = sim.roundtrip(a, &query("BEGIN"));
    assert_eq!(ok_of(&r[0].1), (0, 3));
    let r = sim.roundtrip(a, &insert(1, "one"));
    assert_eq!(ok_of(&r[0].1), (1, 3));
    sim.roundtrip(a, &insert(2, "two"));
    // b sees nothing yet; a sees its own rows.
    let r = sim.roundtrip(b, &query("SELECT id, v FROM t ORDER BY id"));
    assert_eq!(r.len(), 4); // count, id, v, end
    let r = sim.roundtrip(a, &query("SELECT v FROM t WHERE id = 2"));
    assert_eq!(text_row(&r[2].1), [Some(b"two".to_vec())]);
    // b's autocommit insert commits at once.
    let r = sim.roundtrip(b, &insert(3, "three"));
    assert_eq!(ok_of(&r[0].1), (1, 2));
    // ...but a's snapshot (taken at its first read) does not show it.
    let r = sim.roundtrip(a, &query("SELECT v FROM t WHERE id = 3"));
    assert_eq!(r.len(), 3);
    let r = sim.roundtrip(a, &query("COMMIT"));
    assert_eq!(ok_of(&r[0].1), (0, 2));
    assert_eq!(sim.srv.commit_log(), [(b, 3), (a, 1), (a, 2)]);
    let r = sim.roundtrip(b, &query("SELECT id, v FROM t ORDER BY id"));
    assert_eq!(r.len(), 3 + 3 + 1);
    assert_eq!(
        text_row(&r[5].1),
        [Some(b"3".to_vec()), Some(b"three".to_vec())]
    );
    // Duplicate key.
    let r = sim.roundtrip(b, &insert(1, "again"));
    let (code, state, msg) = err_of(&r[0].1);
    assert_eq!(
        (code, state.as_str(), msg.as_str()),
        (1062, "23000", "Duplicate entry '1' for key 'PRIMARY'")
    );
    // ROLLBACK discards.
    sim.roundtrip(a, &query("START TRANSACTION"));
    sim.roundtrip(a, &insert(9, "nine"));
    let r = sim.roundtrip(a, &query("ROLLBACK"));
    assert_eq!(ok_of(&r[0].1), (0, 2));
    assert!(!sim.srv.committed().contains_key(&9));
    assert_eq!(sim.srv.commit_log().len(), 3);
}

#[test]
fn client_closed_rolls_back() {
    let mut sim = Sim::default_();
    let c = sim.login();
    sim.roundtrip(c, &query("BEGIN"));
    sim.roundtrip(c, &insert(1, "x"));
    sim.srv.client_closed(c, 0);
    assert!(sim.srv.server_closed(c));
    assert!(sim.srv.committed().is_empty());
    // The lock is gone: another connection may insert the key.
    let d = sim.login();
    let r = sim.roundtrip(d, &insert(1, "y"));
    assert_eq!(ok_of(&r[0].1).0, 1);
}

#[test]
fn latency_and_sleep_take_virtual_time() {
    let mut sim = Sim::new(Config {
        latency_ns: 1000,
        ..Config::default()
    });
    let c = sim.login();
    sim.send(c, &query("SELECT 2.5 + 1, SLEEP(0.5)"));
    assert_eq!(sim.srv.running_statements(), 1);
    // A sleeping statement's metadata goes out when it starts (count, 2
    // definitions); the row only after the latency and the sleep.
    let meta = sim.recv(c);
    assert_eq!(meta.len(), 3);
    assert_eq!(
        col_of(&meta[1].1),
        ("2.5 + 1".into(), crate::proto::ty::DOUBLE)
    );
    assert_eq!(sim.srv.next_wake(), Some(SEC / 2 + 1000));
    sim.wake();
    let r = sim.recv(c);
    assert_eq!(r.len(), 2);
    assert_eq!(
        text_row(&r[0].1),
        [Some(b"3.5".to_vec()), Some(b"0".to_vec())]
    );
    assert_eq!(sim.srv.running_statements(), 0);
    assert_eq!(sim.srv.next_wake(), None);
    // Pipelined commands run one after the other.
    let mut b = query("SELECT SLEEP(1)");
    b.extend_from_slice(&query("SELECT 7"));
    sim.send(c, &b);
    sim.wake();
    assert_eq!(sim.now, SEC / 2 + 1000 + SEC + 1000);
    // The metadata (sent at the start) and the row and end, taken together.
    assert_eq!(sim.recv(c).len(), 4);
    sim.wake();
    assert_eq!(text_row(&sim.recv(c)[2].1), [Some(b"7".to_vec())]);
}

#[test]
fn kill_query_ends_a_sleep() {
    let mut sim = Sim::default_();
    let (a, b) = (sim.login(), sim.login());
    sim.send(a, &query("SELECT SLEEP(100)"));
    sim.send(a, &query("SELECT 5")); // queued behind the sleep
    sim.now = SEC;
    let r = sim.roundtrip(b, &query(&format!("KILL QUERY {a}")));
    assert_eq!(ok_of(&r[0].1).0, 0);
    // The sleep's metadata went out when it started (count, definition);
    // the ERR takes the place of the row, continuing the sequence.
    let r = sim.recv(a);
    assert_eq!(r[0], (1, vec![1, 1]));
    let (code, state, _) = err_of(&r[2].1);
    assert_eq!((code, state.as_str(), r[2].0), (1317, "70100", 3));
    // The next command ran at once.
    assert_eq!(text_row(&r[5].1), [Some(b"5".to_vec())]);
    assert_eq!(r.len(), 7);
    assert_eq!(sim.srv.running_statements(), 0);
    // Unknown thread.
    let r = sim.roundtrip(b, &query("KILL QUERY 77"));
    let (code, _, msg) = err_of(&r[0].1);
    assert_eq!((code, msg.as_str()), (1094, "Unknown thread id: 77"));
    // KILL CONNECTION of a sleeping connection: ERR 1927, closed.
    sim.send(a, &query("SELECT SLEEP(10)"));
    let r = sim.roundtrip(b, &query(&format!("KILL {a}")));
    assert_eq!(ok_of(&r[0].1).0, 0);
    let r = sim.recv(a);
    assert_eq!(r.len(), 3, "count, definition, ERR");
    assert_eq!((err_of(&r[2].1).0, r[2].0), (1927, 3));
    assert!(sim.srv.server_closed(a));
    // Killing oneself.
    let r = sim.roundtrip(b, &query(&format!("KILL CONNECTION {b}")));
    assert_eq!(err_of(&r[0].1).0, 1927);
    assert!(sim.srv.server_closed(b));
}

#[test]
fn a_statement_outlives_its_client() {
    let mut sim = Sim::default_();
    let c = sim.login();
    sim.send(c, &query("SELECT SLEEP(5)"));
    sim.send(c, &insert(1, "never")); // not started: discarded on close
    sim.now = SEC;
    sim.srv.client_closed(c, sim.now);
    assert_eq!(sim.srv.running_statements(), 1);
    assert!(!sim.srv.server_closed(c));
    sim.wake();
    assert_eq!(sim.now, 5 * SEC);
    assert_eq!(sim.srv.running_statements(), 0);
    assert!(sim.srv.server_closed(c));
    assert_eq!(sim.srv.pending_output(c), 0);
    assert!(sim.srv.committed().is_empty());
    // An autocommit write that completes after the client left commits.
    sim.srv.set_latency(100);
    let d = sim.login();
    sim.send(d, &insert(2, "late"));
    sim.srv.client_closed(d, sim.now);
    sim.wake();
    assert_eq!(sim.srv.commit_log(), [(d, 2)]);
}

#[test]
fn drop_connection_aborts() {
    let mut sim = Sim::new(Config {
        latency_ns: 10,
        ..Config::default()
    });
    let c = sim.login();
    sim.send(c, &insert(1, "x"));
    sim.srv.drop_connection(c, 5);
    assert!(sim.srv.server_closed(c));
    assert_eq!(sim.srv.running_statements(), 0);
    assert_eq!(sim.srv.next_wake(), None);
    assert_eq!(sim.srv.pending_output(c), 0);
    assert!(sim.srv.committed().is_empty());
}

#[test]
fn lock_waits_and_deadlocks() {
    let mut sim = Sim::default_();
    let (a, b) = (sim.login(), sim.login());
    sim.roundtrip(a, &query("BEGIN"));
    sim.roundtrip(a, &insert(1, "a"));
    // b blocks on a's uncommitted key...
    assert!(sim.roundtrip(b, &insert(1, "b")).is_empty());
    assert_eq!(sim.srv.running_statements(), 1);
    // ...until a commits: then it is a duplicate.
    sim.roundtrip(a, &query("COMMIT"));
    assert_eq!(err_of(&sim.recv(b)[0].1).0, 1062);
    // After a rollback the waiter succeeds.
    sim.roundtrip(a, &query("BEGIN"));
    sim.roundtrip(a, &insert(2, "a"));
    assert!(sim.roundtrip(b, &insert(2, "b")).is_empty());
    sim.roundtrip(a, &query("ROLLBACK"));
    assert_eq!(ok_of(&sim.recv(b)[0].1).0, 1);
    // Timeout.
    sim.roundtrip(a, &query("BEGIN"));
    sim.roundtrip(a, &insert(3, "a"));
    assert!(sim.roundtrip(b, &insert(3, "b")).is_empty());
    sim.wake();
    assert_eq!(sim.now, crate::LOCK_WAIT_TIMEOUT_NS);
    assert_eq!(err_of(&sim.recv(b)[0].1).0, 1205);
    // Deadlock: b holds 4, waits for 3 (a); a asks for 4.
    sim.roundtrip(b, &query("BEGIN"));
    sim.roundtrip(b, &insert(4, "b"));
    assert!(sim.roundtrip(b, &insert(3, "b")).is_empty());
    let r = sim.roundtrip(a, &insert(4, "a"));
    let (code, state, _) = err_of(&r[0].1);
    assert_eq!((code, state.as_str()), (1213, "40001"));
    assert_eq!(ok_of(&sim.recv(b)[0].1), (1, 3));
    sim.roundtrip(b, &query("COMMIT"));
    assert_eq!(
        sim.srv.committed().keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

#[test]
fn load_data_local() {
    let mut sim = Sim::default_();
    let c = sim.login();
    let r = sim.roundtrip(
        c,
        &query("LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t FIELDS TERMINATED BY ','"),
    );
    assert_eq!(r, [(1, b"\xFBrows.csv".to_vec())]);
    assert_eq!(sim.srv.running_statements(), 1);
    assert!(sim.roundtrip(c, &pkt(2, b"1,one\n2,t")).is_empty());
    assert!(sim.roundtrip(c, &pkt(3, b"wo\n3,a\\,b\n")).is_empty());
    let r = sim.roundtrip(c, &pkt(4, b""));
    assert_eq!(r[0].0, 5);
    assert_eq!(ok_of(&r[0].1).0, 3);
    assert_eq!(sim.srv.committed()[&2], b"two");
    assert_eq!(sim.srv.committed()[&3], b"a,b");
    // A duplicate: nothing applied.
    sim.roundtrip(
        c,
        &query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t FIELDS TERMINATED BY ','"),
    );
    sim.send(c, &pkt(2, b"10,x\n1,dup\n"));
    let r = sim.roundtrip(c, &pkt(3, b""));
    assert_eq!(err_of(&r[0].1).0, 1062);
    assert!(!sim.srv.committed().contains_key(&10));
    // Default field terminator is a tab.
    sim.roundtrip(c, &query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t"));
    sim.send(c, &pkt(2, b"11\televen"));
    let r = sim.roundtrip(c, &pkt(3, b""));
    assert_eq!(ok_of(&r[0].1).0, 1);
    // The client leaves mid-file: nothing applied.
    sim.roundtrip(
        c,
        &query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t FIELDS TERMINATED BY ','"),
    );
    sim.send(c, &pkt(2, b"20,x\n"));
    sim.srv.client_closed(c, 0);
    assert_eq!(sim.srv.running_statements(), 0);
    assert!(!sim.srv.committed().contains_key(&20));
    // Without CLIENT_LOCAL_FILES: refused.
    let d = sim.login_with(CLIENT_CAPS & !caps::LOCAL_FILES, 0);
    let r = sim.roundtrip(d, &query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t"));
    assert_eq!(err_of(&r[0].1).0, 1148);
    assert!(sim.srv.violations().is_empty());
}

#[test]
fn back_pressure_on_input_and_output() {
    let mut sim = Sim::default_();
    let c = sim.login();
    let v = "x".repeat(80 * 1024);
    let mut stream = Vec::new();
    for i in 0..50 {
        stream.extend_from_slice(&insert(i, &v));
    }
    let window = Config::default().recv_window;
    // The first offer: only the window is accepted, and the statements in it
    // are answered while the rest of the stream is still unsent.
    let mut sent = sim.srv.input(c, &stream, 0);
    assert_eq!(sent, window);
    let mut oks = sim.recv(c).len();
    assert!(oks >= 2, "{oks} replies");
    assert_eq!(sim.srv.committed().len(), oks);
    let mut rounds = 1;
    while sent < stream.len() {
        let n = sim.srv.input(c, &stream[sent..], sim.now);
        assert!(n <= window && n > 0);
        sent += n;
        oks += sim.recv(c).len();
        rounds += 1;
    }
    assert!(rounds >= 15, "{rounds} rounds");
    assert_eq!(oks, 50);
    assert_eq!(sim.srv.committed().len(), 50);

    // Output window: with the output untaken, commands stop starting.
    let mut sim = Sim::new(Config {
        out_window: 1000,
        ..Config::default()
    });
    let c = sim.login();
    let mut b = query("SELECT seq FROM seq_1_to_1000");
    b.extend_from_slice(&query("SELECT 9"));
    sim.send(c, &b);
    let big = sim.srv.pending_output(c);
    assert!(big > 1000);
    // While more than the window is unsent, the second query does not start.
    let mut all = sim.srv.output(c, big - 1500, 0);
    assert_eq!(all.len(), big - 1500);
    assert_eq!(sim.srv.pending_output(c), 1500);
    // Down to the window: it runs.
    all.extend(sim.srv.output(c, 500, 0));
    assert!(sim.srv.pending_output(c) > 1000);
    all.extend(sim.srv.output(c, usize::MAX, 0));
    let rest = packets(&all);
    assert_eq!(text_row(&rest[rest.len() - 2].1), [Some(b"9".to_vec())]);
    // The recv window: a sleeping connection accepts only the window.
    sim.send(c, &query("SELECT SLEEP(1)"));
    let junk = vec![0u8; 1 << 20];
    let n = sim.srv.input(c, &junk, 0);
    assert_eq!(n, Config::default().recv_window);
    assert_eq!(sim.srv.input(c, &junk, 0), 0);
    assert_eq!(sim.srv.recv_space(c), 0);
}

#[test]
fn packets_out_of_order_close_the_connection() {
    let mut sim = Sim::default_();
    let c = sim.login();
    let r = sim.roundtrip(c, &pkt(3, b"\x03SELECT 1"));
    let (code, state, msg) = err_of(&r[0].1);
    assert_eq!(
        (code, state.as_str(), msg.as_str()),
        (1156, "08S01", "Got packets out of order")
    );
    assert!(sim.srv.server_closed(c));
    assert_eq!(sim.srv.violations().len(), 1);
    // Bytes sent after the close are swallowed.
    assert_eq!(sim.srv.input(c, b"xyz", 0), 3);
}

#[test]
fn max_allowed_packet() {
    let mut sim = Sim::new(Config {
        max_allowed_packet: 1000,
        ..Config::default()
    });
    let c = sim.login();
    let r = sim.roundtrip(c, &insert(1, &"y".repeat(900)));
    assert_eq!(ok_of(&r[0].1).0, 1);
    let r = sim.roundtrip(c, &insert(2, &"y".repeat(1000)));
    let (code, state, _) = err_of(&r[0].1);
    assert_eq!((code, state.as_str()), (1153, "08S01"));
    assert!(sim.srv.server_closed(c));
}

#[test]
fn commands_over_16_mib_span_packets() {
    let mut sim = Sim::new(Config {
        max_allowed_packet: 64 << 20,
        recv_window: 1 << 20,
        ..Config::default()
    });
    let c = sim.login();
    let v = "z".repeat(0xFF_FFFF + 10);
    let bytes = insert(1, &v);
    let mut sent = 0;
    let mut replies = Vec::new();
    while sent < bytes.len() {
        sent += sim.srv.input(c, &bytes[sent..], 0);
        replies.extend(sim.recv(c));
    }
    // Two packets from the client (0, 1): the reply is sequence 2.
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 2);
    assert_eq!(sim.srv.committed()[&1].len(), v.len());
    let r = sim.roundtrip(c, &query("SELECT v FROM t WHERE id = 1"));
    // count, def, row (2 packets, reassembled), end
    assert_eq!(r.len(), 4);
    assert_eq!(r[2].1.len(), v.len() + 9);
}

/// One session's whole transcript, with the input split as `split` says.
fn transcript(split: &dyn Fn(&[u8]) -> Vec<Vec<u8>>) -> Vec<u8> {
    let mut sim = Sim::default_();
    let c = sim.srv.connect(0);
    let mut out = sim.srv.output(c, usize::MAX, 0);
    let s = greeting_scramble(&packets(&out)[0].1);
    let mut input = pkt(
        1,
        &response(
            CLIENT_CAPS,
            caps::EXT_CACHE_METADATA,
            "sim",
            &client_token("simpass", &s),
            "mysql_native_password",
        ),
    );
    input.extend_from_slice(&query("SELECT 12"));
    input.extend_from_slice(&prepare("SELECT ? + 1, SLEEP(?)"));
    let d = 0.5f64.to_le_bytes();
    let z = 0i64.to_le_bytes();
    input.extend_from_slice(&execute(
        1,
        &[(5, false, Some(&d)), (8, false, Some(&z))],
        true,
    ));
    input.extend_from_slice(&execute(
        1,
        &[(5, false, Some(&d)), (8, false, Some(&z))],
        false,
    ));
    input.extend_from_slice(&insert(300, "it\\'s"));
    input.extend_from_slice(&query("SELECT id, v FROM t ORDER BY id"));
    for chunk in split(&input) {
        assert_eq!(sim.srv.input(c, &chunk, 0), chunk.len());
        out.extend_from_slice(&sim.srv.output(c, usize::MAX, 0));
    }
    out
}

#[test]
fn any_split_of_the_input_gives_the_same_output() {
    let whole = transcript(&|b| vec![b.to_vec()]);
    assert_eq!(packets(&whole).len(), 1 + 1 + 4 + 5 + 5 + 3 + 1 + 5);
    let bytes = transcript(&|b| b.iter().map(|x| vec![*x]).collect());
    assert_eq!(bytes, whole);
    for cut in 1..200 {
        let two = transcript(&|b| {
            let k = cut.min(b.len());
            vec![b[..k].to_vec(), b[k..].to_vec()]
        });
        assert_eq!(two, whole, "cut at {cut}");
    }
}

#[test]
fn back_pressure_with_latency() {
    let mut sim = Sim::new(Config {
        latency_ns: 1000,
        ..Config::default()
    });
    let c = sim.login();
    let v = "x".repeat(80 * 1024);
    let stream: Vec<u8> = (0..10).flat_map(|i| insert(i, &v)).collect();
    let mut sent = sim.srv.input(c, &stream, 0);
    assert_eq!(sent, Config::default().recv_window);
    // The first INSERT runs; the rest of the window is held unread.
    assert_eq!(sim.srv.running_statements(), 1);
    assert!(sim.srv.recv_space(c) > 0, "the first command was read");
    let mut oks = 0;
    while oks < 10 {
        sim.wake();
        oks += sim.recv(c).len();
        if sent < stream.len() {
            sent += sim.srv.input(c, &stream[sent..], sim.now);
        }
    }
    assert_eq!(sim.now, 10 * 1000);
    assert_eq!(sim.srv.commit_log().len(), 10);
}

#[test]
fn autocommit_off_read_only_and_snapshots() {
    let mut sim = Sim::default_();
    let (a, b) = (sim.login(), sim.login());
    let r = sim.roundtrip(a, &query("SET autocommit = 0"));
    assert_eq!(ok_of(&r[0].1), (0, 0));
    let r = sim.roundtrip(a, &insert(1, "a"));
    assert_eq!(ok_of(&r[0].1), (1, 1), "IN_TRANS, no AUTOCOMMIT");
    assert!(sim.srv.committed().is_empty());
    let r = sim.roundtrip(a, &query("SET autocommit = 1"));
    assert_eq!(ok_of(&r[0].1), (0, 2));
    assert_eq!(sim.srv.commit_log(), [(a, 1)]);
    // READ ONLY refuses writes.
    sim.roundtrip(a, &query("START TRANSACTION READ ONLY"));
    let (code, state, _) = err_of(&sim.roundtrip(a, &insert(2, "a"))[0].1);
    assert_eq!((code, state.as_str()), (1792, "25006"));
    sim.roundtrip(a, &query("COMMIT"));
    // WITH CONSISTENT SNAPSHOT: the snapshot is taken at the start.
    sim.roundtrip(a, &query("START TRANSACTION WITH CONSISTENT SNAPSHOT"));
    sim.roundtrip(b, &insert(5, "b"));
    let r = sim.roundtrip(a, &query("SELECT id, v FROM t ORDER BY id"));
    assert_eq!(r.len(), 5, "only row 1");
    sim.roundtrip(a, &query("ROLLBACK"));
    // Empty query.
    let (code, _, msg) = err_of(&sim.roundtrip(a, &query("  "))[0].1);
    assert_eq!((code, msg.as_str()), (1065, "Query was empty"));
    // COM_RESET_CONNECTION turns autocommit back on.
    sim.roundtrip(a, &query("SET autocommit = 0"));
    let r = sim.roundtrip(a, &cmd(&[0x1F]));
    assert_eq!(ok_of(&r[0].1), (0, 2));
    assert!(sim.srv.violations().is_empty());
}

/// Random commands (well framed, random bodies) and random raw bytes: the
/// server answers or closes, and never panics.
#[test]
fn random_input_never_panics() {
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let cmds = [
        0x01u8, 0x02, 0x03, 0x0E, 0x11, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1F, 0x42,
    ];
    for round in 0..300 {
        let mut sim = Sim::new(Config {
            latency_ns: rnd(3) * 10,
            ..Config::default()
        });
        let c = sim.login();
        sim.roundtrip(c, &prepare("SELECT ? + 1, SLEEP(?)"));
        sim.roundtrip(c, &prepare("INSERT INTO t (id, v) VALUES (?, ?)"));
        for _ in 0..20 {
            let mut p = vec![cmds[rnd(cmds.len() as u64) as usize]];
            if p[0] >= 0x16 && p[0] <= 0x1A && rnd(2) == 0 {
                p.extend_from_slice(&[1 + rnd(2) as u8, 0, 0, 0]);
            }
            let len = rnd(24);
            p.extend((0..len).map(|_| rnd(256) as u8));
            let bytes = if round % 10 == 0 {
                (0..rnd(40)).map(|_| rnd(256) as u8).collect()
            } else {
                cmd(&p)
            };
            sim.srv.input(c, &bytes, sim.now);
            let _ = sim.srv.output(c, usize::MAX, sim.now);
            while let Some(t) = sim.srv.next_wake() {
                if t > sim.now + 10 * SEC {
                    break;
                }
                sim.now = t;
                sim.srv.advance(t);
            }
            if sim.srv.server_closed(c) {
                break;
            }
        }
        sim.srv.client_closed(c, sim.now);
    }
}
