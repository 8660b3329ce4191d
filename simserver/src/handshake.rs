//! The connection phase: the v10 greeting, the client's HandshakeResponse41,
//! COM_CHANGE_USER's payload, the auth switch request, and
//! `mysql_native_password` verification.

use sha1::{Digest, Sha1};

use crate::proto::caps;
use crate::wire::{Reader, Short};

/// The only authentication plugin of this server.
pub const NATIVE: &[u8] = b"mysql_native_password";

/// The 20-byte challenge of connection `id`: deterministic, printable, no NUL.
pub fn scramble_for(id: u32) -> [u8; 20] {
    let mut x = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut s = [0u8; 20];
    for b in &mut s {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = 33 + (x % 94) as u8;
    }
    s
}

/// The greeting (Initial Handshake Packet v10) payload.
pub fn greeting(version: &str, id: u32, scramble: &[u8; 20], ext_caps: u32) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(version.as_bytes());
    p.push(0);
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    p.extend_from_slice(&(caps::SERVER as u16).to_le_bytes());
    p.push(45); // utf8mb4_general_ci
    p.extend_from_slice(&crate::proto::status::AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&((caps::SERVER >> 16) as u16).to_le_bytes());
    p.push(21); // auth data length: 20 + NUL
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&ext_caps.to_le_bytes());
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(NATIVE);
    p.push(0);
    p
}

/// The AuthSwitchRequest payload (to `mysql_native_password`).
pub fn auth_switch(scramble: &[u8; 20]) -> Vec<u8> {
    let mut p = vec![0xFE];
    p.extend_from_slice(NATIVE);
    p.push(0);
    p.extend_from_slice(scramble);
    p.push(0);
    p
}

/// What the client said in its handshake response or COM_CHANGE_USER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Client capability flags (lower 32 bits).
    pub caps: u32,
    /// MariaDB extended capabilities (0 when the client set `CLIENT_MYSQL`).
    pub ext_caps: u32,
    /// User name.
    pub user: String,
    /// The auth response.
    pub auth: Vec<u8>,
    /// Database, if given.
    pub db: Option<String>,
    /// The client's plugin (`mysql_native_password` when not given).
    pub plugin: Vec<u8>,
    /// Connection attributes.
    pub attrs: Attrs,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Connection attributes: (key, value) pairs.
pub type Attrs = Vec<(Vec<u8>, Vec<u8>)>;

fn attrs(r: &mut Reader<'_>) -> Result<Attrs, Short> {
    let block = r.lenenc_bytes("connect attributes")?;
    let mut a = Reader::new(block);
    let mut out = Vec::new();
    while !a.is_empty() {
        let k = a.lenenc_bytes("attribute key")?.to_vec();
        let v = a.lenenc_bytes("attribute value")?.to_vec();
        out.push((k, v));
    }
    Ok(out)
}

/// Parses a HandshakeResponse41 (the server offered `caps::SERVER`).
pub fn parse_response(payload: &[u8]) -> Result<Login, Short> {
    let mut r = Reader::new(payload);
    let client = r.u32("client capabilities")?;
    r.u32("max packet size")?;
    r.u8("charset")?;
    r.take(19, "filler")?;
    let ext = r.u32("MariaDB capabilities")?;
    let ext_caps = if client & caps::CLIENT_MYSQL == 0 {
        ext
    } else {
        0
    };
    let both = client & caps::SERVER;
    let user = text(r.nul_str("user")?);
    let auth = if both & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        r.lenenc_bytes("auth response")?.to_vec()
    } else if both & caps::SECURE_CONNECTION != 0 {
        let n = r.u8("auth response length")?;
        r.take(n.into(), "auth response")?.to_vec()
    } else {
        r.nul_str("auth response")?.to_vec()
    };
    let db = if both & caps::CONNECT_WITH_DB != 0 && !r.is_empty() {
        Some(text(r.nul_str("database")?)).filter(|d| !d.is_empty())
    } else {
        None
    };
    let plugin = if both & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
        r.nul_str("plugin")?.to_vec()
    } else {
        NATIVE.to_vec()
    };
    let attrs = if both & caps::CONNECT_ATTRS != 0 && !r.is_empty() {
        attrs(&mut r)?
    } else {
        Vec::new()
    };
    Ok(Login {
        caps: client,
        ext_caps,
        user,
        auth,
        db,
        plugin,
        attrs,
    })
}

/// Parses COM_CHANGE_USER's payload (after the command byte), given the
/// connection's negotiated capabilities.
pub fn parse_change_user(body: &[u8], negotiated: u32, ext_caps: u32) -> Result<Login, Short> {
    let mut r = Reader::new(body);
    let user = text(r.nul_str("user")?);
    let auth = if negotiated & caps::SECURE_CONNECTION != 0 {
        let n = r.u8("auth response length")?;
        r.take(n.into(), "auth response")?.to_vec()
    } else {
        r.nul_str("auth response")?.to_vec()
    };
    let db = Some(text(r.nul_str("database")?)).filter(|d| !d.is_empty());
    if !r.is_empty() {
        r.u16("charset")?;
    }
    let plugin = if negotiated & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
        r.nul_str("plugin")?.to_vec()
    } else {
        NATIVE.to_vec()
    };
    let attrs = if negotiated & caps::CONNECT_ATTRS != 0 && !r.is_empty() {
        attrs(&mut r)?
    } else {
        Vec::new()
    };
    Ok(Login {
        caps: negotiated,
        ext_caps,
        user,
        auth,
        db,
        plugin,
        attrs,
    })
}

/// Checks a `mysql_native_password` response the way the server does, from
/// the stored `SHA1(SHA1(password))`: `SHA1(response XOR SHA1(scramble +
/// stored)) == stored`. An empty password expects an empty response.
pub fn verify_native(password: &str, scramble: &[u8], response: &[u8]) -> bool {
    if password.is_empty() {
        return response.is_empty();
    }
    if response.len() != 20 {
        return false;
    }
    let stored = Sha1::digest(Sha1::digest(password.as_bytes()));
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stored);
    let mask = h.finalize();
    let stage1: Vec<u8> = response
        .iter()
        .zip(mask.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    Sha1::digest(&stage1)[..] == stored[..]
}

#[cfg(test)]
pub(crate) fn client_token(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let s1 = Sha1::digest(password.as_bytes());
    let s2 = Sha1::digest(s1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(s2);
    let m = h.finalize();
    s1.iter().zip(m.iter()).map(|(a, b)| a ^ b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrambles_are_printable_and_differ() {
        let a = scramble_for(1);
        assert!(a.iter().all(|b| (33..127).contains(b)));
        assert_ne!(a, scramble_for(2));
        assert_eq!(a, scramble_for(1));
    }

    #[test]
    fn native_password() {
        let s = scramble_for(7);
        assert!(verify_native("simpass", &s, &client_token("simpass", &s)));
        assert!(!verify_native("simpass", &s, &client_token("other", &s)));
        assert!(!verify_native("simpass", &s, &[]));
        assert!(verify_native("", &s, &[]));
    }

    #[test]
    fn greeting_layout() {
        let s = scramble_for(3);
        let g = greeting("v", 3, &s, caps::EXT_CACHE_METADATA);
        assert_eq!(&g[..7], &[10, b'v', 0, 3, 0, 0, 0]);
        assert_eq!(&g[7..15], &s[..8]);
        let low = u16::from_le_bytes([g[16], g[17]]);
        assert_eq!(low & 1, 0, "CLIENT_MYSQL clear");
        assert_eq!(g[23], 21);
        assert_eq!(&g[30..34], &caps::EXT_CACHE_METADATA.to_le_bytes());
        assert_eq!(&g[34..46], &s[8..]);
        assert_eq!(&g[46..], b"\0mysql_native_password\0");
    }
}
