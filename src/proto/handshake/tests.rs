use super::*;

/// A MariaDB-like greeting announcing `plugin`.
pub(crate) fn hello_packet(plugin: &str, scramble: &[u8; 20], mariadb: bool) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"5.5.5-10.11.19-MariaDB\0");
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    let mut caps_all: u32 = !caps::COMPRESS & !caps::SSL;
    if mariadb {
        caps_all &= !caps::LONG_PASSWORD;
    }
    p.extend_from_slice(&(caps_all as u16).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps_all >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&(if mariadb { 0x1Fu32 } else { 0 }).to_le_bytes());
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p
}

pub(crate) fn opts(user: &str, password: &str) -> HandshakeOpts {
    HandshakeOpts {
        user: user.into(),
        password: password.as_bytes().to_vec(),
        database: Some("test".into()),
        max_packet: 1 << 24,
        extra_capabilities: 0,
        secure_transport: false,
        allow_cleartext_password: false,
        attributes: vec![("program_name".into(), "unit".into())],
        compression: None,
        tls: TlsMode::Disabled,
        server_public_key: None,
        allow_public_key_retrieval: false,
    }
}

const SCRAMBLE: [u8; 20] = *b"abcdefghijklmnopqrst";

/// Pulls the user, auth response, database and plugin back out of a response.
fn parse_response(p: &[u8]) -> (u32, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut r = Reader::new(p);
    let c = r.u32("caps").unwrap();
    r.skip(4 + 1 + 23, "fixed").unwrap();
    let user = r.null_terminated("user").unwrap().to_vec();
    let auth = r.lenenc_bytes("auth").unwrap().to_vec();
    let db = r.null_terminated("db").unwrap().to_vec();
    let plugin = r.null_terminated("plugin").unwrap().to_vec();
    let attrs = r.lenenc_bytes("attrs").unwrap();
    let mut a = Reader::new(attrs);
    let mut keys = Vec::new();
    while !a.is_empty() {
        keys.push(a.lenenc_bytes("k").unwrap().to_vec());
        a.lenenc_bytes("v").unwrap();
    }
    assert!(keys.contains(&b"_client_name".to_vec()));
    assert!(keys.contains(&b"program_name".to_vec()));
    r.finish("response").unwrap();
    (c, user, auth, db, plugin)
}

/// A handshake for bob/pw that has read a greeting offering `plugin`:
/// the handshake, what it wrote, and its step.
fn greeted(plugin: &str, with_db: bool) -> (Handshake, Vec<u8>, Step) {
    let mut hs = Handshake::new(opts("bob", "pw"));
    let mut out = Vec::new();
    let step = hs
        .on_packet(&hello_packet(plugin, &SCRAMBLE, with_db), &mut out)
        .unwrap();
    (hs, out, step)
}

/// The server's final OK ends the handshake.
fn assert_done(hs: &mut Handshake) {
    let mut out = Vec::new();
    assert_eq!(
        hs.on_packet(&[0, 0, 0, 2, 0, 0, 0], &mut out).unwrap(),
        Step::Done
    );
}

#[test]
fn parses_mariadb_hello() {
    let h = parse_hello(&hello_packet("mysql_native_password", &SCRAMBLE, true)).unwrap();
    assert_eq!(h.scramble, SCRAMBLE);
    assert_eq!(h.connection_id, 42);
    assert!(h.is_mariadb());
    assert_eq!(h.version(), "10.11.19-MariaDB");
    assert_eq!(h.mariadb_capabilities, 0x1F);
    assert_eq!(h.auth_plugin, b"mysql_native_password");
}

#[test]
fn truncated_hello_never_panics() {
    let p = hello_packet("mysql_native_password", &SCRAMBLE, false);
    for cut in 0..p.len() {
        let _ = parse_hello(&p[..cut]);
    }
    assert!(parse_hello(&[9, b'x', 0]).is_err());
}

#[test]
fn native_password_flow() {
    let (mut hs, out, step) = greeted("mysql_native_password", true);
    assert_eq!(step, Step::Send);
    let (c, user, auth, db, plugin) = parse_response(&out);
    assert_eq!(user, b"bob");
    assert_eq!(auth, auth::scramble_native(b"pw", &SCRAMBLE));
    assert_eq!(db, b"test");
    assert_eq!(plugin, b"mysql_native_password");
    assert_eq!(
        c & caps::LONG_PASSWORD,
        0,
        "CLIENT_MYSQL must be clear for MariaDB"
    );
    assert_ne!(c & caps::DEPRECATE_EOF, 0);
    assert_done(&mut hs);
}

#[test]
fn change_user_payload_and_flow() {
    let mut hs = Handshake::new(opts("bob", "pw"));
    let mut out = Vec::new();
    // Not before the session is established.
    assert!(hs.change_user("eve", b"x", None, &mut out).is_err());
    hs.on_packet(
        &hello_packet("mysql_native_password", &SCRAMBLE, true),
        &mut out,
    )
    .unwrap();
    hs.on_packet(&[0, 0, 0, 2, 0, 0, 0], &mut out).unwrap();
    assert!(hs.change_user("e\0ve", b"x", None, &mut out).is_err());

    hs.change_user("eve", b"secret", Some("db1"), &mut out)
        .unwrap();
    let scramble = auth::scramble_native(b"secret", &SCRAMBLE);
    let mut want = vec![crate::proto::consts::com::CHANGE_USER];
    want.extend_from_slice(b"eve\0");
    want.push(20);
    want.extend_from_slice(&scramble);
    want.extend_from_slice(b"db1\0");
    want.extend_from_slice(&[UTF8MB4_GENERAL_CI, 0]);
    want.extend_from_slice(b"mysql_native_password\0");
    assert_eq!(&out[..want.len()], &want[..]);
    // Then the usual authentication replies: a switch, then OK.
    let mut switch = vec![0xFE];
    switch.extend_from_slice(b"mysql_native_password\0");
    switch.extend_from_slice(&[7u8; 20]);
    switch.push(0);
    assert_eq!(hs.on_packet(&switch, &mut out).unwrap(), Step::Send);
    assert_eq!(out, auth::scramble_native(b"secret", &[7u8; 20]));
    assert_done(&mut hs);
    assert!(!format!("{hs:?}").contains("secret"));
}

#[test]
fn auth_switch_to_native() {
    let (mut hs, mut out, _) = greeted("caching_sha2_password", false);
    let new_scramble = *b"ABCDEFGHIJKLMNOPQRST";
    let mut switch = vec![0xFE];
    switch.extend_from_slice(b"mysql_native_password\0");
    switch.extend_from_slice(&new_scramble);
    switch.push(0);
    assert_eq!(hs.on_packet(&switch, &mut out).unwrap(), Step::Send);
    assert_eq!(out, auth::scramble_native(b"pw", &new_scramble));
    assert_done(&mut hs);
}

#[test]
fn caching_sha2_fast_path() {
    let (mut hs, mut out, _) = greeted("caching_sha2_password", false);
    let (_, _, auth, _, plugin) = parse_response(&out);
    assert_eq!(plugin, b"caching_sha2_password");
    assert_eq!(auth, auth::scramble_sha256(b"pw", &SCRAMBLE));
    assert_eq!(hs.on_packet(&[0x01, 0x03], &mut out).unwrap(), Step::Read);
    assert_done(&mut hs);
}

#[test]
fn caching_sha2_full_auth_needs_secure_transport() {
    let (mut hs, mut out, _) = greeted("caching_sha2_password", false);
    assert!(matches!(
        hs.on_packet(&[0x01, 0x04], &mut out),
        Err(HandshakeError::Auth(_))
    ));
    assert!(out.is_empty(), "the password must not be written");

    let mut o = opts("bob", "pw");
    o.secure_transport = true;
    let mut hs = Handshake::new(o);
    hs.on_packet(
        &hello_packet("caching_sha2_password", &SCRAMBLE, false),
        &mut out,
    )
    .unwrap();
    assert_eq!(hs.on_packet(&[0x01, 0x04], &mut out).unwrap(), Step::Send);
    assert_eq!(out, b"pw\0");
}

#[test]
fn clear_password_refused_over_plain_tcp() {
    let (mut hs, mut out, _) = greeted("mysql_native_password", false);
    let switch = b"\xFEmysql_clear_password\0";
    assert!(matches!(
        hs.on_packet(switch, &mut out),
        Err(HandshakeError::Auth(_))
    ));
}

#[test]
fn server_error_in_greeting_and_after_auth() {
    let mut hs = Handshake::new(opts("bob", "pw"));
    let mut out = Vec::new();
    let err = hs
        .on_packet(b"\xFF\x10\x04Too many connections", &mut out)
        .unwrap_err();
    assert!(matches!(err, HandshakeError::Server { code: 1040, .. }));

    let mut hs = Handshake::new(opts("bob", "bad"));
    hs.on_packet(
        &hello_packet("mysql_native_password", &SCRAMBLE, true),
        &mut out,
    )
    .unwrap();
    let err = hs
        .on_packet(b"\xFF\x15\x04#28000Access denied for user 'bob'", &mut out)
        .unwrap_err();
    match err {
        HandshakeError::Server {
            code,
            sql_state,
            message,
        } => {
            assert_eq!(code, 1045);
            assert_eq!(&sql_state, b"28000");
            assert!(message.contains("Access denied"));
        }
        other => panic!("{other:?}"),
    }
}

fn hello_with_ssl() -> Vec<u8> {
    let mut p = hello_packet("mysql_native_password", &SCRAMBLE, true);
    // Set CLIENT_SSL (bit 11) in the lower capability word (after version, id, 8+1 bytes).
    let at = 1 + "5.5.5-10.11.19-MariaDB\0".len() + 4 + 9;
    p[at + 1] |= (caps::SSL >> 8) as u8;
    p
}

#[test]
fn tls_preferred_sends_ssl_request_then_the_response() {
    let mut o = opts("bob", "pw");
    o.tls = TlsMode::Preferred;
    let mut hs = Handshake::new(o);
    let mut out = Vec::new();
    assert_eq!(
        hs.on_packet(&hello_with_ssl(), &mut out).unwrap(),
        Step::StartTls
    );
    assert_eq!(out.len(), 32, "SSLRequest is the fixed 32-byte prefix");
    let c = u32::from_le_bytes([out[0], out[1], out[2], out[3]]);
    assert_ne!(c & caps::SSL, 0);
    let ssl_request = out.clone();
    assert_eq!(hs.tls_established(&mut out).unwrap(), Step::Send);
    assert!(hs.is_tls());
    assert_eq!(
        &out[..32],
        &ssl_request[..],
        "the response repeats the same prefix"
    );
    let (_, user, ..) = parse_response(&out);
    assert_eq!(user, b"bob");
}

#[test]
fn tls_preferred_without_server_support_stays_plain() {
    let mut o = opts("bob", "pw");
    o.tls = TlsMode::Preferred;
    let mut hs = Handshake::new(o);
    let mut out = Vec::new();
    let hello = hello_packet("mysql_native_password", &SCRAMBLE, true);
    assert_eq!(hs.on_packet(&hello, &mut out).unwrap(), Step::Send);
    assert_eq!(hs.capabilities() & caps::SSL, 0);
    assert!(!hs.is_tls());
    assert!(
        hs.tls_established(&mut out).is_err(),
        "TLS was not requested"
    );
}

#[test]
fn tls_required_without_server_support_is_refused_before_sending_anything() {
    let mut o = opts("bob", "pw");
    o.tls = TlsMode::Required;
    let mut hs = Handshake::new(o);
    let mut out = Vec::new();
    let hello = hello_packet("mysql_native_password", &SCRAMBLE, true);
    let Err(HandshakeError::Tls(msg)) = hs.on_packet(&hello, &mut out) else {
        panic!("TLS required, not offered: refused");
    };
    assert!(out.is_empty());
    // The version as MariaDB means it, without its `5.5.5-` prefix.
    assert!(msg.contains("server (10.11.19-MariaDB)"), "{msg}");
    assert!(!msg.contains("5.5.5"), "{msg}");
}

#[test]
fn refusals_naming_the_server_show_its_version_without_the_compat_prefix() {
    let hello = hello_packet("mysql_native_password", &SCRAMBLE, true);
    let mut o = opts("bob", "pw");
    o.compression = Some(crate::proto::compress::Algorithm::Zlib(6));
    let e = Handshake::new(o).on_packet(&hello, &mut Vec::new());
    let Err(HandshakeError::Proto(e)) = e else {
        panic!("compression not offered: refused")
    };
    let msg = e.to_string();
    assert!(msg.contains("server (10.11.19-MariaDB)"), "{msg}");
    assert!(!msg.contains("5.5.5"), "{msg}");
    // Protocol 4.1 missing.
    let mut old = hello.clone();
    let at = 1 + "5.5.5-10.11.19-MariaDB\0".len() + 4 + 9;
    let caps = u16::from_le_bytes([old[at], old[at + 1]]) & !(caps::PROTOCOL_41 as u16);
    old[at..at + 2].copy_from_slice(&caps.to_le_bytes());
    let Err(HandshakeError::Proto(e)) =
        Handshake::new(opts("bob", "pw")).on_packet(&old, &mut Vec::new())
    else {
        panic!("no protocol 4.1: refused")
    };
    let msg = e.to_string();
    assert!(msg.contains("server 10.11.19-MariaDB does not"), "{msg}");
}

#[test]
fn password_is_not_in_debug_output() {
    let hs = Handshake::new(opts("bob", "hunter2-secret"));
    assert!(!format!("{hs:?}").contains("hunter2"));
}
