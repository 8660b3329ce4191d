//! Statements that sleep send their result's metadata when they start, and
//! their rows (or an error: KILL QUERY, an overflow) when they complete.

use super::*;
use crate::proto::ty;

const MS: u64 = 1_000_000;

/// Asserts that the packets' sequence ids run on from `first`; returns the
/// sequence id after them.
fn seqs_from(r: &[(u8, Vec<u8>)], first: u8) -> u8 {
    for (i, (s, _)) in r.iter().enumerate() {
        assert_eq!(*s, first.wrapping_add(i as u8), "packet {i} of {r:?}");
    }
    first.wrapping_add(r.len() as u8)
}

/// Moves the clock to `t`, runs what is due, and takes the output.
fn at(sim: &mut Sim, c: ConnId, t: u64) -> Vec<(u8, Vec<u8>)> {
    sim.now = t;
    sim.srv.advance(t);
    sim.recv(c)
}

/// The end of a result: OK with header 0xFE (7 bytes here) under
/// DEPRECATE_EOF, else a classic EOF (5 bytes).
fn assert_end(p: &[u8], deprecate_eof: bool) {
    assert_eq!(p[0], 0xFE, "{p:?}");
    assert_eq!(p.len(), if deprecate_eof { 7 } else { 5 }, "{p:?}");
}

fn caps_for(deprecate_eof: bool) -> u32 {
    if deprecate_eof {
        CLIENT_CAPS
    } else {
        CLIENT_CAPS & !caps::DEPRECATE_EOF
    }
}

fn text_sleep(deprecate_eof: bool) {
    let mut sim = Sim::default_();
    let c = sim.login_with(caps_for(deprecate_eof), caps::EXT_CACHE_METADATA);
    let eof = usize::from(!deprecate_eof);
    // Pipelined: the second sleep starts when the first completes, at 5 ms.
    let mut b = query("SELECT SLEEP(0.005)");
    b.extend_from_slice(&query("SELECT SLEEP(0.01)"));
    sim.send(c, &b);
    let r = sim.recv(c);
    assert_eq!(r.len(), 2 + eof, "the first sleep's metadata: {r:?}");
    let next = seqs_from(&r, 1);
    assert!(at(&mut sim, c, 5 * MS - 1).is_empty());

    let start = 5 * MS;
    let r = at(&mut sim, c, start);
    // The first's row and end, then the second's metadata (and no row).
    assert_eq!(r.len(), 2 + 2 + eof, "{r:?}");
    seqs_from(&r[..2], next);
    assert_eq!(text_row(&r[0].1), [Some(b"0".to_vec())]);
    assert_end(&r[1].1, deprecate_eof);
    let meta = &r[2..];
    let next = seqs_from(meta, 1);
    assert_eq!(meta[0].1, [1, 1]);
    assert_eq!(col_of(&meta[1].1), ("SLEEP(0.01)".into(), ty::LONGLONG));
    if !deprecate_eof {
        assert_end(&meta[2].1, false);
    }
    assert_eq!(sim.srv.running_statements(), 1);
    assert_eq!(sim.srv.next_wake(), Some(start + 10 * MS));

    assert!(at(&mut sim, c, start + 10 * MS - 1).is_empty());
    let r = at(&mut sim, c, start + 10 * MS);
    assert_eq!(r.len(), 2, "row, end: {r:?}");
    seqs_from(&r, next);
    assert_eq!(text_row(&r[0].1), [Some(b"0".to_vec())]);
    assert_end(&r[1].1, deprecate_eof);
    assert_eq!(sim.srv.running_statements(), 0);
    assert_eq!(sim.srv.next_wake(), None);
    assert!(sim.srv.violations().is_empty());
}

#[test]
fn text_sleep_sends_metadata_at_start_and_row_at_end() {
    text_sleep(true);
    text_sleep(false);
}

fn int(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn dbl(v: f64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The early part of an execute of `SELECT ? + 1, SLEEP(?)`: the column
/// count with its metadata-follows byte, the definitions when it is 1 (their
/// first column's type is returned), the EOF without DEPRECATE_EOF.
fn early(r: &[(u8, Vec<u8>)], deprecate_eof: bool) -> (u8, Option<u8>) {
    let eof = usize::from(!deprecate_eof);
    seqs_from(r, 1);
    assert_eq!(r[0].1[0], 2, "two columns: {r:?}");
    let follows = r[0].1[1];
    let ty = if follows == 1 {
        assert_eq!(r.len(), 3 + eof, "{r:?}");
        assert_eq!(col_of(&r[2].1), ("SLEEP(?)".into(), ty::LONGLONG));
        Some(col_of(&r[1].1).1)
    } else {
        assert_eq!(r.len(), 1 + eof, "{r:?}");
        None
    };
    if !deprecate_eof {
        assert_end(&r[r.len() - 1].1, false);
    }
    (follows, ty)
}

fn prepared_sleep(deprecate_eof: bool) {
    let mut sim = Sim::default_();
    let c = sim.login_with(caps_for(deprecate_eof), caps::EXT_CACHE_METADATA);
    let killer = sim.login();
    let r = sim.roundtrip(c, &prepare("SELECT ? + 1, SLEEP(?)"));
    let id = u32::from_le_bytes(r[0].1[1..5].try_into().unwrap());
    let (five, half, ten_ms, zero) = (int(5), dbl(2.5), dbl(0.01), int(0));
    let ints: [P<'_>; 2] = [
        (ty::LONGLONG, false, Some(&five)),
        (ty::DOUBLE, false, Some(&ten_ms)),
    ];
    let doubles: [P<'_>; 2] = [
        (ty::DOUBLE, false, Some(&half)),
        (ty::DOUBLE, false, Some(&ten_ms)),
    ];

    // Runs an execute that sleeps 10 ms: checks that only the metadata comes
    // at once and the row and end at the end; returns the early part's
    // (metadata-follows byte, first column type) and the row.
    let run = |sim: &mut Sim, body: Vec<u8>| {
        sim.send(c, &body);
        let start = sim.now;
        let r = sim.recv(c);
        let got = early(&r, deprecate_eof);
        let next = seqs_from(&r, 1);
        assert_eq!(sim.srv.next_wake(), Some(start + 10 * MS));
        assert!(at(sim, c, start + 10 * MS - 1).is_empty());
        let r = at(sim, c, start + 10 * MS);
        assert_eq!(r.len(), 2, "row, end: {r:?}");
        seqs_from(&r, next);
        assert_end(&r[1].1, deprecate_eof);
        (got, r[0].1.clone())
    };

    // Same types as at prepare: the definitions are left out of the early part.
    let (got, row) = run(&mut sim, execute(id, &ints, true));
    assert_eq!(got, (0, None));
    assert_eq!(row[..2], [0, 0]);
    assert_eq!(row[2..10], int(6));
    // A DOUBLE first parameter: the definitions come again, early.
    let (got, row) = run(&mut sim, execute(id, &doubles, true));
    assert_eq!(got, (1, Some(ty::DOUBLE)));
    assert_eq!(row[2..10], 3.5f64.to_le_bytes());
    // The same types, not re-bound: left out again.
    let (got, _) = run(&mut sim, execute(id, &doubles, false));
    assert_eq!(got, (0, None));
    let (got, _) = run(&mut sim, execute(id, &ints, true));
    assert_eq!(got, (1, Some(ty::LONGLONG)));

    // Killed while sleeping: the metadata (already out), then ERR 1317 with
    // the next sequence id. The definitions did reach the client, so they
    // are remembered.
    sim.send(c, &execute(id, &doubles, true));
    let r = sim.recv(c);
    assert_eq!(early(&r, deprecate_eof), (1, Some(ty::DOUBLE)));
    let next = seqs_from(&r, 1);
    sim.now += MS;
    let k = sim.roundtrip(killer, &query(&format!("KILL QUERY {c}")));
    assert_eq!(ok_of(&k[0].1).0, 0);
    let r = sim.recv(c);
    assert_eq!(r.len(), 1, "{r:?}");
    let (code, state, msg) = err_of(&r[0].1);
    assert_eq!(
        (code, state.as_str(), msg.as_str(), r[0].0),
        (1317, "70100", "Query execution was interrupted", next)
    );
    assert_eq!(sim.srv.running_statements(), 0);
    let (got, _) = run(&mut sim, execute(id, &doubles, true));
    assert_eq!(got, (0, None));

    // An execute that does not sleep is sent all at once, as before, and
    // shares the statement's tracking.
    let no_sleep: [P<'_>; 2] = [
        (ty::LONGLONG, false, Some(&five)),
        (ty::LONGLONG, false, Some(&zero)),
    ];
    let r = sim.roundtrip(c, &execute(id, &no_sleep, true));
    assert_eq!(r.len(), 5 + usize::from(!deprecate_eof), "{r:?}");
    seqs_from(&r, 1);
    assert_eq!(r[0].1, [2, 1]);
    let (got, _) = run(&mut sim, execute(id, &ints, true));
    assert_eq!(got, (0, None));
    assert!(sim.srv.violations().is_empty());
}

#[test]
fn prepared_sleep_sends_metadata_at_start_with_the_cache() {
    prepared_sleep(true);
    prepared_sleep(false);
}

fn kill_text_sleep(deprecate_eof: bool) {
    let mut sim = Sim::default_();
    let c = sim.login_with(caps_for(deprecate_eof), caps::EXT_CACHE_METADATA);
    let killer = sim.login();
    sim.send(c, &query("SELECT 1 + 1, SLEEP(100)"));
    let meta = sim.recv(c);
    assert_eq!(meta.len(), 3 + usize::from(!deprecate_eof), "{meta:?}");
    assert_eq!(meta[0].1, [2, 1]);
    let next = seqs_from(&meta, 1);
    sim.now = 3 * MS;
    sim.roundtrip(killer, &query(&format!("KILL QUERY {c}")));
    let r = sim.recv(c);
    assert_eq!(r.len(), 1, "{r:?}");
    let (code, state, _) = err_of(&r[0].1);
    assert_eq!((code, state.as_str(), r[0].0), (1317, "70100", next));
    assert_eq!(sim.srv.running_statements(), 0);
    assert_eq!(sim.srv.next_wake(), None);
    // The connection serves the next command normally.
    let r = sim.roundtrip(c, &query("SELECT 5"));
    seqs_from(&r, 1);
    assert_eq!(r.len(), 4 + usize::from(!deprecate_eof));
    assert_eq!(text_row(&r[r.len() - 2].1), [Some(b"5".to_vec())]);
    assert!(!sim.srv.server_closed(c));
    assert!(sim.srv.violations().is_empty());
}

#[test]
fn kill_query_after_the_metadata_continues_the_sequence() {
    kill_text_sleep(true);
    kill_text_sleep(false);
}

#[test]
fn an_error_in_the_row_comes_after_the_metadata() {
    let mut sim = Sim::default_();
    let c = sim.login();
    // Sleeping: metadata at start, then the overflow in place of the row.
    sim.send(c, &query("SELECT 9223372036854775807 + 1, SLEEP(0.01)"));
    let meta = sim.recv(c);
    assert_eq!(meta.len(), 3);
    let next = seqs_from(&meta, 1);
    let r = at(&mut sim, c, 10 * MS);
    assert_eq!(r.len(), 1);
    assert_eq!((err_of(&r[0].1).0, r[0].0), (1690, next));
    // Not sleeping: as before, the error alone.
    let r = sim.roundtrip(c, &query("SELECT 9223372036854775807 + 1, SLEEP(0)"));
    assert_eq!(r.len(), 1);
    assert_eq!((err_of(&r[0].1).0, r[0].0), (1690, 1));
}

#[test]
fn a_closed_client_gets_nothing_more() {
    let mut sim = Sim::default_();
    let c = sim.login();
    sim.send(c, &query("SELECT SLEEP(0.01)"));
    assert!(sim.srv.pending_output(c) > 0, "the metadata");
    sim.srv.client_closed(c, MS);
    assert_eq!(sim.srv.pending_output(c), 0);
    assert_eq!(sim.srv.running_statements(), 1);
    sim.wake();
    assert_eq!(sim.now, 10 * MS);
    assert_eq!(sim.srv.pending_output(c), 0);
    assert!(sim.srv.server_closed(c));
}
