//! Encoders for client commands. Each writes one framed packet into `out`
//! and starts a new sequence (commands always begin at sequence id 0).

use super::consts::com;
use super::error::ProtoResult;
use super::framer::Framer;

/// `COM_QUERY`: run `sql` with the text protocol.
pub fn write_query(framer: &mut Framer, out: &mut Vec<u8>, sql: &[u8]) -> ProtoResult<()> {
    write_with_arg(framer, out, com::QUERY, sql)
}

/// `COM_INIT_DB`: change the default database.
pub fn write_init_db(framer: &mut Framer, out: &mut Vec<u8>, db: &[u8]) -> ProtoResult<()> {
    write_with_arg(framer, out, com::INIT_DB, db)
}

/// A command with no argument: `COM_PING`, `COM_QUIT`, `COM_RESET_CONNECTION`.
pub fn write_simple(framer: &mut Framer, out: &mut Vec<u8>, command: u8) -> ProtoResult<()> {
    write_with_arg(framer, out, command, &[])
}

/// A command whose payload (command byte first) was built elsewhere, e.g.
/// `COM_CHANGE_USER` by [`super::handshake::Handshake::change_user`].
pub fn write_payload(framer: &mut Framer, out: &mut Vec<u8>, payload: &[u8]) -> ProtoResult<()> {
    framer.reset();
    let start = Framer::begin(out);
    out.extend_from_slice(payload);
    framer.finish(out, start)
}

fn write_with_arg(
    framer: &mut Framer,
    out: &mut Vec<u8>,
    command: u8,
    arg: &[u8],
) -> ProtoResult<()> {
    framer.reset();
    let start = Framer::begin(out);
    out.push(command);
    out.extend_from_slice(arg);
    framer.finish(out, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_packet_bytes() {
        let mut f = Framer::new(1 << 20);
        let mut out = Vec::new();
        write_query(&mut f, &mut out, b"SELECT 1").unwrap();
        assert_eq!(out, b"\x09\x00\x00\x00\x03SELECT 1");
        assert_eq!(f.seq(), 1);
        out.clear();
        write_simple(&mut f, &mut out, com::PING).unwrap();
        assert_eq!(out, b"\x01\x00\x00\x00\x0E");
        out.clear();
        write_init_db(&mut f, &mut out, b"test").unwrap();
        assert_eq!(out, b"\x05\x00\x00\x00\x02test");
    }

    #[test]
    fn oversize_query_is_refused_before_sending() {
        let mut f = Framer::new(8);
        let mut out = Vec::new();
        assert!(write_query(&mut f, &mut out, b"SELECT 1234567").is_err());
        assert!(out.is_empty());
    }
}
