//! Handshake, text queries, prepared statements and the metadata cache.

use super::*;
use crate::proto::ty;

#[test]
fn login_with_right_and_wrong_password() {
    let mut sim = Sim::default_();
    let c = sim.login();
    assert_eq!(c, 1);
    assert!(!sim.srv.server_closed(c));

    let c2 = sim.srv.connect(0);
    assert_eq!(c2, 2);
    let g = sim.recv(c2);
    let s = greeting_scramble(&g[0].1);
    let tok = client_token("wrong", &s);
    sim.send(
        c2,
        &pkt(
            1,
            &response(CLIENT_CAPS, 0, "sim", &tok, "mysql_native_password"),
        ),
    );
    let r = sim.recv(c2);
    let (code, state, msg) = err_of(&r[0].1);
    assert_eq!((code, state.as_str(), r[0].0), (1045, "28000", 2));
    assert!(
        msg.starts_with("Access denied for user 'sim'@'localhost'"),
        "{msg}"
    );
    assert!(sim.srv.server_closed(c2));
    assert_eq!(sim.srv.pending_output(c2), 0);
    // Wrong user, right password.
    let c3 = sim.srv.connect(0);
    let s = greeting_scramble(&sim.recv(c3)[0].1);
    let tok = client_token("simpass", &s);
    sim.send(
        c3,
        &pkt(
            1,
            &response(CLIENT_CAPS, 0, "root", &tok, "mysql_native_password"),
        ),
    );
    assert_eq!(err_of(&sim.recv(c3)[0].1).0, 1045);
    assert!(sim.srv.violations().is_empty());
}

#[test]
fn auth_switch_from_another_plugin() {
    let mut sim = Sim::default_();
    let c = sim.srv.connect(0);
    let s = greeting_scramble(&sim.recv(c)[0].1);
    sim.send(
        c,
        &pkt(
            1,
            &response(CLIENT_CAPS, 0, "sim", &[1, 2, 3], "client_ed25519"),
        ),
    );
    let r = sim.recv(c);
    assert_eq!(r[0].0, 2);
    assert_eq!(r[0].1[0], 0xFE);
    assert!(r[0].1.starts_with(b"\xFEmysql_native_password\0"));
    assert_eq!(&r[0].1[23..43], &s[..]);
    sim.send(c, &pkt(3, &client_token("simpass", &s)));
    let r = sim.recv(c);
    assert_eq!((r[0].0, r[0].1[0]), (4, 0));
    let r = sim.roundtrip(c, &query("SELECT 5"));
    assert_eq!(r.len(), 4);
}

#[test]
fn greeting_offers_mariadb_caps() {
    let mut sim = Sim::default_();
    let c = sim.srv.connect(0);
    let g = &sim.recv(c)[0].1;
    assert!(g.starts_with(b"\x0a5.5.5-10.11.99-MariaDB-sim\0\x01\0\0\0"));
    let mut sim = Sim::new(Config {
        cache_metadata: false,
        ..Config::default()
    });
    let c = sim.srv.connect(0);
    let g = &sim.recv(c)[0].1;
    let off = g.len() - 22 - 13 - 4;
    assert_eq!(&g[off..off + 4], &[0, 0, 0, 0]);
}

#[test]
fn query_echo_and_errors() {
    let mut sim = Sim::default_();
    let c = sim.login();
    let r = sim.roundtrip(c, &query("SELECT 42"));
    // Column count with the metadata-follows byte, one column, one row, OK-as-EOF.
    assert_eq!(r.len(), 4);
    assert_eq!(r[0], (1, vec![1, 1]));
    assert_eq!(col_of(&r[1].1), ("42".into(), ty::LONGLONG));
    assert_eq!(text_row(&r[2].1), [Some(b"42".to_vec())]);
    assert_eq!(r[3].1[0], 0xFE);
    assert_eq!(ok_of(&r[3].1).1, 2);
    assert_eq!(r.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3, 4]);

    let r = sim.roundtrip(c, &query("SELECT 1; SELECT 2"));
    let (code, state, msg) = err_of(&r[0].1);
    assert_eq!((code, state.as_str()), (1064, "42000"));
    assert!(msg.ends_with("near 'SELECT 2' at line 1"), "{msg}");
    let r = sim.roundtrip(c, &query("SET NAMES utf8mb4"));
    assert_eq!(ok_of(&r[0].1), (0, 2));
    assert!(sim.srv.violations().is_empty());
    // Garbage is a syntax error and a violation.
    let r = sim.roundtrip(c, &cmd(b"\x03SELECT \xDE\xAD"));
    assert_eq!(err_of(&r[0].1).0, 1064);
    assert_eq!(sim.srv.violations().len(), 1);
    // Unknown command.
    let r = sim.roundtrip(c, &cmd(b"\x42"));
    assert_eq!(err_of(&r[0].1).0, 1047);
    assert_eq!(sim.srv.violations().len(), 2);
    let r = sim.roundtrip(c, &cmd(b"\x0E"));
    assert_eq!(ok_of(&r[0].1), (0, 2));
}

#[test]
fn classic_eof_without_deprecate_eof() {
    let mut sim = Sim::default_();
    let c = sim.login_with(CLIENT_CAPS & !caps::DEPRECATE_EOF, caps::EXT_CACHE_METADATA);
    let r = sim.roundtrip(c, &query("SELECT seq FROM seq_1_to_3"));
    // count, def, EOF, 3 rows, EOF
    assert_eq!(r.len(), 7);
    assert_eq!(r[0].1, [1, 1]);
    assert_eq!(r[2].1, [0xFE, 0, 0, 2, 0]);
    assert_eq!(text_row(&r[5].1), [Some(b"3".to_vec())]);
    assert_eq!(r[6].1, [0xFE, 0, 0, 2, 0]);
    // Prepare: OK, param def, EOF, column def, EOF.
    let r = sim.roundtrip(c, &prepare("SELECT v FROM t WHERE id = ?"));
    assert_eq!(r.len(), 5);
    assert_eq!(r[2].1[0], 0xFE);
    assert_eq!(r[4].1[0], 0xFE);
}

fn int(v: &i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

#[test]
fn metadata_cache_tracks_what_was_last_sent() {
    let mut sim = Sim::default_();
    let c = sim.login();
    let r = sim.roundtrip(c, &prepare("SELECT ? + 1, SLEEP(?)"));
    assert_eq!(r[0].1[0], 0);
    let id = u32::from_le_bytes(r[0].1[1..5].try_into().unwrap());
    assert_eq!(id, 1);
    assert_eq!(u16::from_le_bytes([r[0].1[5], r[0].1[6]]), 2); // columns
    assert_eq!(u16::from_le_bytes([r[0].1[7], r[0].1[8]]), 2); // params
    assert_eq!(r.len(), 5); // OK, 2 params, 2 columns (no EOFs)
    assert_eq!(col_of(&r[3].1), ("? + 1".into(), ty::LONGLONG));
    assert_eq!(col_of(&r[4].1), ("SLEEP(?)".into(), ty::LONGLONG));

    let (five, zero) = (int(&5), int(&0));
    let ints: [P<'_>; 2] = [
        (ty::LONGLONG, false, Some(&five)),
        (ty::LONGLONG, false, Some(&zero)),
    ];
    // Same types as at prepare: metadata omitted.
    let r = sim.roundtrip(c, &execute(id, &ints, true));
    assert_eq!(r[0].1, [2, 0]);
    assert_eq!(r.len(), 3); // count, row, end
    assert_eq!(
        r[1].1,
        [0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    // A DOUBLE first parameter: the definitions come again, with the new type.
    let d = 2.5f64.to_le_bytes();
    let dbl: [P<'_>; 2] = [
        (ty::DOUBLE, false, Some(&d)),
        (ty::LONGLONG, false, Some(&zero)),
    ];
    let r = sim.roundtrip(c, &execute(id, &dbl, true));
    assert_eq!(r[0].1, [2, 1]);
    assert_eq!(r.len(), 5);
    assert_eq!(col_of(&r[1].1), ("? + 1".into(), ty::DOUBLE));
    assert_eq!(&r[3].1[2..10], &3.5f64.to_le_bytes());
    // Again DOUBLE, types not re-bound: omitted.
    let r = sim.roundtrip(c, &execute(id, &dbl, false));
    assert_eq!(r[0].1, [2, 0]);
    // Back to integers: sent again.
    let r = sim.roundtrip(c, &execute(id, &ints, true));
    assert_eq!(r[0].1, [2, 1]);
    assert_eq!(col_of(&r[1].1).1, ty::LONGLONG);
    let r = sim.roundtrip(c, &execute(id, &ints, true));
    assert_eq!(r[0].1, [2, 0]);
    // A NULL first parameter: NULL in the row (bit 2 of the bitmap).
    let null: [P<'_>; 2] = [
        (ty::LONGLONG, false, None),
        (ty::LONGLONG, false, Some(&zero)),
    ];
    let r = sim.roundtrip(c, &execute(id, &null, true));
    assert_eq!(r[0].1, [2, 0]); // same declared type: same definitions
    assert_eq!(r[1].1[..2], [0, 0b100]);
    // A NULL of type NULL is an integer expression too.
    let null: [P<'_>; 2] = [(ty::NULL, false, None), (ty::LONGLONG, false, Some(&zero))];
    let r = sim.roundtrip(c, &execute(id, &null, true));
    assert_eq!(r[0].1, [2, 0]);

    // A second statement has its own tracking.
    let r = sim.roundtrip(c, &prepare("SELECT ? + 1, SLEEP(?)"));
    let id2 = u32::from_le_bytes(r[0].1[1..5].try_into().unwrap());
    assert_eq!(id2, 2);
    let r = sim.roundtrip(c, &execute(id2, &dbl, true));
    assert_eq!(r[0].1, [2, 1]);
    // Statement 1 last sent LONGLONG: statement 2's DOUBLE does not matter.
    let r = sim.roundtrip(c, &execute(id, &ints, true));
    assert_eq!(r[0].1, [2, 0]);
    let r = sim.roundtrip(c, &execute(id2, &dbl, true));
    assert_eq!(r[0].1, [2, 0]);

    // COM_RESET_CONNECTION forgets statements.
    let r = sim.roundtrip(c, &cmd(&[0x1F]));
    assert_eq!(ok_of(&r[0].1).0, 0);
    let r = sim.roundtrip(c, &execute(id, &ints, true));
    let (code, state, _) = err_of(&r[0].1);
    assert_eq!((code, state.as_str()), (1243, "HY000"));
    assert!(sim.srv.violations().is_empty());
}

#[test]
fn without_cache_metadata_everything_is_sent() {
    let mut sim = Sim::default_();
    let c = sim.login_with(CLIENT_CAPS, 0);
    let r = sim.roundtrip(c, &query("SELECT 1"));
    assert_eq!(r[0].1, [1]);
    let r = sim.roundtrip(c, &prepare("SELECT SLEEP(?)"));
    let id = u32::from_le_bytes(r[0].1[1..5].try_into().unwrap());
    for _ in 0..2 {
        let z = int(&0);
        let r = sim.roundtrip(c, &execute(id, &[(ty::LONGLONG, false, Some(&z))], true));
        assert_eq!(r[0].1, [1]);
        assert_eq!(r.len(), 4);
    }
}

#[test]
fn long_data_and_stmt_reset() {
    let mut sim = Sim::default_();
    let c = sim.login();
    let r = sim.roundtrip(c, &prepare("INSERT INTO t (id, v) VALUES (?, ?)"));
    assert_eq!(r.len(), 3); // OK + 2 param defs
    let id = u32::from_le_bytes(r[0].1[1..5].try_into().unwrap());
    let long = |chunk: &[u8]| {
        let mut p = vec![0x18];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&1u16.to_le_bytes());
        p.extend_from_slice(chunk);
        cmd(&p)
    };
    // No reply to long data.
    assert!(sim.roundtrip(c, &long(b"hello ")).is_empty());
    assert!(sim.roundtrip(c, &long(b"world")).is_empty());
    let k = int(&7);
    let r = sim.roundtrip(
        c,
        &execute(
            id,
            &[(ty::LONGLONG, false, Some(&k)), (ty::BLOB, false, None)],
            true,
        ),
    );
    // A parameter flagged NULL is NULL even with long data (which is used up).
    assert_eq!(err_of(&r[0].1).0, 1048);
    assert!(sim.roundtrip(c, &long(b"hello world")).is_empty());
    // The long parameter's value is left out of the packet (an empty
    // encoding appends nothing).
    let p = execute(
        id,
        &[
            (ty::LONGLONG, false, Some(&k)),
            (ty::BLOB, false, Some(&[])),
        ],
        true,
    );
    let r = sim.roundtrip(c, &p);
    assert_eq!(ok_of(&r[0].1).0, 1);
    assert_eq!(sim.srv.committed()[&7], b"hello world");
    // Long data then COM_STMT_RESET: forgotten, so the value must be inline.
    assert!(sim.roundtrip(c, &long(b"dropped")).is_empty());
    let r = sim.roundtrip(c, &cmd(&[0x1A, id as u8, 0, 0, 0]));
    assert_eq!(ok_of(&r[0].1).0, 0);
    let k = int(&8);
    let v = lenenc_str(b"inline");
    let r = sim.roundtrip(
        c,
        &execute(
            id,
            &[(ty::LONGLONG, false, Some(&k)), (ty::BLOB, false, Some(&v))],
            true,
        ),
    );
    assert_eq!(ok_of(&r[0].1).0, 1);
    assert_eq!(sim.srv.committed()[&8], b"inline");
    // Reset of an unknown statement.
    let r = sim.roundtrip(c, &cmd(&[0x1A, 99, 0, 0, 0]));
    assert_eq!(err_of(&r[0].1).0, 1243);
    // COM_STMT_CLOSE: no reply; then the id is unknown.
    assert!(
        sim.roundtrip(c, &cmd(&[0x19, id as u8, 0, 0, 0]))
            .is_empty()
    );
    let r = sim.roundtrip(
        c,
        &execute(
            id,
            &[(ty::LONGLONG, false, Some(&k)), (ty::BLOB, false, Some(&v))],
            true,
        ),
    );
    assert_eq!(err_of(&r[0].1).0, 1243);
    assert!(
        sim.srv.violations().is_empty(),
        "{:?}",
        sim.srv.violations()
    );
}

#[test]
fn malformed_execute_is_a_violation() {
    let mut sim = Sim::default_();
    let c = sim.login();
    let r = sim.roundtrip(c, &prepare("SELECT v FROM t WHERE id = ?"));
    let id = u32::from_le_bytes(r[0].1[1..5].try_into().unwrap());
    // First execute without types.
    let k = int(&1);
    let r = sim.roundtrip(c, &execute(id, &[(ty::LONGLONG, false, Some(&k))], false));
    assert_eq!(err_of(&r[0].1).0, 1210);
    // Truncated value.
    let r = sim.roundtrip(
        c,
        &execute(id, &[(ty::LONGLONG, false, Some(&k[..3]))], true),
    );
    assert_eq!(err_of(&r[0].1).0, 1210);
    assert_eq!(sim.srv.violations().len(), 2);
    // The connection goes on.
    let r = sim.roundtrip(c, &execute(id, &[(ty::LONGLONG, false, Some(&k))], true));
    assert_eq!(r[0].1, [1, 0]); // same metadata as at prepare
    assert_eq!(r.len(), 2); // no row
}

#[test]
fn change_user() {
    let mut sim = Sim::default_();
    let c = sim.login();
    sim.roundtrip(c, &query("BEGIN"));
    sim.roundtrip(c, &query("INSERT INTO t VALUES (1, 'x')"));
    let g = crate::handshake::scramble_for(c);
    let mut p = vec![0x11];
    p.extend_from_slice(b"sim\0");
    let tok = client_token("simpass", &g);
    p.push(tok.len() as u8);
    p.extend_from_slice(&tok);
    p.extend_from_slice(b"db2\0");
    p.extend_from_slice(&45u16.to_le_bytes());
    p.extend_from_slice(b"mysql_native_password\0");
    p.push(0); // empty attributes
    let r = sim.roundtrip(c, &cmd(&p));
    assert_eq!(ok_of(&r[0].1), (0, 2), "rolled back: not IN_TRANS");
    assert!(sim.srv.committed().is_empty());
    // Wrong password: ERR 1045 and closed.
    let mut p = vec![0x11];
    p.extend_from_slice(b"sim\0\x14");
    p.extend_from_slice(&[7; 20]);
    p.extend_from_slice(b"\0");
    let r = sim.roundtrip(c, &cmd(&p));
    assert_eq!(err_of(&r[0].1).0, 1045);
    assert!(sim.srv.server_closed(c));
}

#[test]
fn statement_id_minus_one_is_the_last_prepared() {
    let mut sim = Sim::default_();
    let c = sim.login();
    // Prepare and execute pipelined, as MariaDB allows.
    let mut b = prepare("SELECT SLEEP(?)");
    let z = int(&0);
    b.extend_from_slice(&execute(u32::MAX, &[(ty::LONGLONG, false, Some(&z))], true));
    let r = sim.roundtrip(c, &b);
    assert_eq!(r.len(), 3 + 3);
    assert_eq!(r[3].1, [1, 0], "metadata as at prepare");
    // A failed prepare does not change "the last".
    let mut b = prepare("SELECT nothing");
    b.extend_from_slice(&execute(u32::MAX, &[(ty::LONGLONG, false, Some(&z))], true));
    let r = sim.roundtrip(c, &b);
    assert_eq!(err_of(&r[0].1).0, 1064);
    assert_eq!(r[1].1, [1, 0]);
    assert!(sim.srv.violations().is_empty());
}
