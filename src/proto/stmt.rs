//! Prepared statements: `COM_STMT_PREPARE` and its response, and the
//! encoders for `COM_STMT_EXECUTE`, `COM_STMT_SEND_LONG_DATA`,
//! `COM_STMT_RESET`, `COM_STMT_CLOSE` and MariaDB's `COM_STMT_BULK_EXECUTE`.
//!
//! The response to an execute is a result set like a text query's (read it
//! with [`super::result::ResultMachine`]) whose rows are binary
//! ([`super::binary::binary_row_fields`]).

use super::binary::ValueRef;
use super::codec::Reader;
use super::column::{ColumnDef, parse_column_def};
use super::consts::caps;
use super::error::{ProtoError, ProtoResult};
use super::framer::Framer;
use super::packets::{ErrPacket, parse_eof, parse_err};

/// `COM_STMT_SEND_LONG_DATA`.
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
/// `COM_STMT_RESET`.
pub const COM_STMT_RESET: u8 = 0x1A;
/// MariaDB's `COM_STMT_BULK_EXECUTE`.
pub const COM_STMT_BULK_EXECUTE: u8 = 0xFA;
/// Bulk flag: parameter types follow the header.
pub const BULK_SEND_TYPES: u16 = 128;
/// Bulk parameter indicator: a value follows.
pub const BULK_INDICATOR_NONE: u8 = 0;
/// Bulk parameter indicator: NULL.
pub const BULK_INDICATOR_NULL: u8 = 1;

/// The first packet of a successful prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    /// The server's id for the statement.
    pub statement_id: u32,
    /// Columns of the result set (0 for statements without rows).
    pub columns: u16,
    /// Number of `?` placeholders.
    pub params: u16,
    /// Warnings raised by preparing.
    pub warnings: u16,
}

/// Parses the `COM_STMT_PREPARE` OK packet.
pub fn parse_prepare_ok(payload: &[u8]) -> ProtoResult<PrepareOk> {
    let mut r = Reader::new(payload);
    if r.u8("prepare OK header")? != 0x00 {
        return Err(ProtoError::Unexpected {
            expected: "a prepare OK packet",
            first_byte: payload.first().copied(),
        });
    }
    let statement_id = r.u32("statement id")?;
    let columns = r.u16("prepared column count")?;
    let params = r.u16("prepared parameter count")?;
    // One reserved byte, then the warning count (absent in very old servers).
    let warnings = if r.remaining() >= 3 {
        r.skip(1, "prepare OK filler")?;
        r.u16("prepare warnings")?
    } else {
        0
    };
    // MariaDB may append metadata flags; ignore anything further.
    Ok(PrepareOk {
        statement_id,
        columns,
        params,
        warnings,
    })
}

/// One classified packet of a prepare response.
#[derive(Debug, PartialEq, Eq)]
pub enum PrepareEvent<'a> {
    /// The statement was prepared; definitions follow unless both counts are 0.
    Ok(PrepareOk),
    /// The server refused the statement; the response is over.
    Err(ErrPacket<'a>),
    /// The definition of one parameter.
    Param(ColumnDef),
    /// The definition of one result column.
    Column(ColumnDef),
    /// An EOF after a block of definitions (without `CLIENT_DEPRECATE_EOF`).
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PState {
    Start,
    Params { left: u16 },
    ParamsEof,
    Columns { left: u16 },
    ColumnsEof,
    Done,
}

/// Tracks a `COM_STMT_PREPARE` response.
#[derive(Debug, Clone)]
pub struct PrepareMachine {
    capabilities: u32,
    state: PState,
    columns: u16,
}

impl PrepareMachine {
    /// A machine for a prepare on a connection with these capabilities.
    pub fn new(capabilities: u32) -> Self {
        PrepareMachine {
            capabilities,
            state: PState::Start,
            columns: 0,
        }
    }

    /// True once the whole response has been read.
    pub fn is_done(&self) -> bool {
        self.state == PState::Done
    }

    fn eof_follows(&self) -> bool {
        self.capabilities & caps::DEPRECATE_EOF == 0
    }

    fn after_params(&self) -> PState {
        if self.columns > 0 {
            PState::Columns { left: self.columns }
        } else {
            PState::Done
        }
    }

    /// Classifies the next packet.
    pub fn on_packet<'a>(&mut self, payload: &'a [u8]) -> ProtoResult<PrepareEvent<'a>> {
        match self.state {
            PState::Start => {
                if payload.first() == Some(&0xFF) {
                    self.state = PState::Done;
                    return Ok(PrepareEvent::Err(parse_err(payload)?));
                }
                let ok = parse_prepare_ok(payload)?;
                self.columns = ok.columns;
                self.state = if ok.params > 0 {
                    PState::Params { left: ok.params }
                } else {
                    self.after_params()
                };
                Ok(PrepareEvent::Ok(ok))
            }
            PState::Params { left } => {
                let def = parse_column_def(payload)?;
                self.state = if left > 1 {
                    PState::Params { left: left - 1 }
                } else if self.eof_follows() {
                    PState::ParamsEof
                } else {
                    self.after_params()
                };
                Ok(PrepareEvent::Param(def))
            }
            PState::Columns { left } => {
                let def = parse_column_def(payload)?;
                self.state = if left > 1 {
                    PState::Columns { left: left - 1 }
                } else if self.eof_follows() {
                    PState::ColumnsEof
                } else {
                    PState::Done
                };
                Ok(PrepareEvent::Column(def))
            }
            PState::ParamsEof | PState::ColumnsEof => {
                parse_eof(payload)?;
                self.state = if self.state == PState::ParamsEof {
                    self.after_params()
                } else {
                    PState::Done
                };
                Ok(PrepareEvent::Eof)
            }
            PState::Done => Err(ProtoError::Unexpected {
                expected: "nothing (the prepare response is complete)",
                first_byte: payload.first().copied(),
            }),
        }
    }
}

fn command(
    framer: &mut Framer,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>),
) -> ProtoResult<()> {
    framer.reset();
    let start = Framer::begin(out);
    body(out);
    framer.finish(out, start)
}

/// `COM_STMT_PREPARE`.
pub fn write_prepare(framer: &mut Framer, out: &mut Vec<u8>, sql: &[u8]) -> ProtoResult<()> {
    command(framer, out, |out| {
        out.push(super::consts::com::STMT_PREPARE);
        out.extend_from_slice(sql);
    })
}

/// `COM_STMT_CLOSE` (the server sends no reply).
pub fn write_close(framer: &mut Framer, out: &mut Vec<u8>, id: u32) -> ProtoResult<()> {
    command(framer, out, |out| {
        out.push(super::consts::com::STMT_CLOSE);
        out.extend_from_slice(&id.to_le_bytes());
    })
}

/// `COM_STMT_RESET` (the server replies OK or ERR).
pub fn write_reset(framer: &mut Framer, out: &mut Vec<u8>, id: u32) -> ProtoResult<()> {
    command(framer, out, |out| {
        out.push(COM_STMT_RESET);
        out.extend_from_slice(&id.to_le_bytes());
    })
}

/// `COM_STMT_SEND_LONG_DATA`: a chunk of parameter `param` (no reply).
pub fn write_long_data(
    framer: &mut Framer,
    out: &mut Vec<u8>,
    id: u32,
    param: u16,
    chunk: &[u8],
) -> ProtoResult<()> {
    command(framer, out, |out| {
        out.push(COM_STMT_SEND_LONG_DATA);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&param.to_le_bytes());
        out.extend_from_slice(chunk);
    })
}

/// `COM_STMT_EXECUTE` without a cursor, with `count` parameters given by
/// `param(i)`. Types are always sent (new-params-bound = 1), so values of any
/// type can follow each other. String and byte parameters of at least
/// `long_threshold` bytes are left out: send them first with
/// [`write_long_data`].
pub fn write_execute<'v>(
    framer: &mut Framer,
    out: &mut Vec<u8>,
    id: u32,
    count: usize,
    param: impl Fn(usize) -> ValueRef<'v>,
    long_threshold: usize,
) -> ProtoResult<()> {
    command(framer, out, |out| {
        out.push(super::consts::com::STMT_EXECUTE);
        out.extend_from_slice(&id.to_le_bytes());
        out.push(0); // CURSOR_TYPE_NO_CURSOR
        out.extend_from_slice(&1u32.to_le_bytes()); // iteration count
        if count == 0 {
            return;
        }
        let bitmap = out.len();
        out.resize(bitmap + count.div_ceil(8), 0);
        out.push(1); // new-params-bound
        for i in 0..count {
            let v = param(i);
            if v == ValueRef::Null {
                out[bitmap + i / 8] |= 1 << (i % 8);
            }
            let (t, f) = v.param_type();
            out.extend_from_slice(&[t, f]);
        }
        for i in 0..count {
            let v = param(i);
            if !v.is_long(long_threshold) {
                v.encode(out);
            }
        }
    })
}

/// Starts a MariaDB `COM_STMT_BULK_EXECUTE` whose parameters have the given
/// (type, flag) pairs; append rows with [`put_bulk_row`], then call
/// [`Framer::finish`] with the returned offset.
pub fn begin_bulk(
    framer: &mut Framer,
    out: &mut Vec<u8>,
    id: u32,
    types: impl Iterator<Item = (u8, u8)>,
) -> usize {
    framer.reset();
    let start = Framer::begin(out);
    out.push(COM_STMT_BULK_EXECUTE);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&BULK_SEND_TYPES.to_le_bytes());
    for (t, f) in types {
        out.extend_from_slice(&[t, f]);
    }
    start
}

/// Appends one row of a bulk execute: an indicator per parameter, and the
/// value unless it is NULL.
pub fn put_bulk_row<'v>(out: &mut Vec<u8>, row: impl Iterator<Item = ValueRef<'v>>) {
    for v in row {
        if v == ValueRef::Null {
            out.push(BULK_INDICATOR_NULL);
        } else {
            out.push(BULK_INDICATOR_NONE);
            v.encode(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::column::encode_column_def;
    use crate::proto::consts::ColumnType;

    fn ok(id: u32, cols: u16, params: u16) -> Vec<u8> {
        let mut p = vec![0];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&cols.to_le_bytes());
        p.extend_from_slice(&params.to_le_bytes());
        p.extend_from_slice(&[0, 1, 0]);
        p
    }

    #[test]
    fn prepare_ok_fields_and_truncation() {
        let p = ok(7, 2, 3);
        assert_eq!(
            parse_prepare_ok(&p).unwrap(),
            PrepareOk {
                statement_id: 7,
                columns: 2,
                params: 3,
                warnings: 1
            }
        );
        assert_eq!(parse_prepare_ok(&p[..9]).unwrap().warnings, 0);
        for cut in 0..9 {
            assert!(parse_prepare_ok(&p[..cut]).is_err(), "{cut}");
        }
        assert!(parse_prepare_ok(&[0xFE, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn prepare_with_deprecate_eof() {
        let mut m = PrepareMachine::new(caps::DEPRECATE_EOF);
        assert!(matches!(
            m.on_packet(&ok(1, 1, 2)).unwrap(),
            PrepareEvent::Ok(_)
        ));
        let c = encode_column_def("a", ColumnType::Long, 0, 63);
        assert!(matches!(m.on_packet(&c).unwrap(), PrepareEvent::Param(_)));
        assert!(matches!(m.on_packet(&c).unwrap(), PrepareEvent::Param(_)));
        assert!(matches!(m.on_packet(&c).unwrap(), PrepareEvent::Column(_)));
        assert!(m.is_done());
        assert!(m.on_packet(&c).is_err());
    }

    #[test]
    fn prepare_with_classic_eofs() {
        let eof = [0xFE, 0, 0, 2, 0];
        let c = encode_column_def("a", ColumnType::Long, 0, 63);
        let mut m = PrepareMachine::new(0);
        m.on_packet(&ok(1, 1, 1)).unwrap();
        assert!(matches!(m.on_packet(&c).unwrap(), PrepareEvent::Param(_)));
        assert_eq!(m.on_packet(&eof).unwrap(), PrepareEvent::Eof);
        assert!(matches!(m.on_packet(&c).unwrap(), PrepareEvent::Column(_)));
        assert_eq!(m.on_packet(&eof).unwrap(), PrepareEvent::Eof);
        assert!(m.is_done());
        // No params, no columns: done at once.
        let mut m = PrepareMachine::new(0);
        m.on_packet(&ok(1, 0, 0)).unwrap();
        assert!(m.is_done());
        // A missing EOF is an error.
        let mut m = PrepareMachine::new(0);
        m.on_packet(&ok(1, 1, 1)).unwrap();
        m.on_packet(&c).unwrap();
        assert!(m.on_packet(&c).is_err());
    }

    #[test]
    fn prepare_error() {
        let mut m = PrepareMachine::new(caps::DEPRECATE_EOF);
        let e = m.on_packet(b"\xFF\x28\x04#42000You have an error").unwrap();
        assert!(matches!(e, PrepareEvent::Err(e) if e.code == 1064));
        assert!(m.is_done());
    }

    #[test]
    fn execute_packet_bytes() {
        let mut f = Framer::new(1 << 20);
        let mut out = Vec::new();
        let params = [ValueRef::Int(1), ValueRef::Null, ValueRef::Text("ab")];
        write_execute(&mut f, &mut out, 5, 3, |i| params[i], usize::MAX).unwrap();
        let payload = &out[4..];
        assert_eq!(
            payload,
            [
                0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0, // header, no cursor, 1 iteration
                0b010, 1, // NULL bitmap, new params bound
                0x08, 0, 0x06, 0, 0xFD, 0, // types
                1, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b',
            ]
        );
        assert_eq!(out[..3], [(payload.len()) as u8, 0, 0]);
        // Long values are left out.
        out.clear();
        write_execute(&mut f, &mut out, 5, 1, |_| ValueRef::Bytes(b"long"), 4).unwrap();
        assert_eq!(&out[4..], [0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0xFC, 0]);
        // No parameters: no bitmap.
        out.clear();
        write_execute(&mut f, &mut out, 5, 0, |_| ValueRef::Null, 4).unwrap();
        assert_eq!(out[4..].len(), 10);
    }

    #[test]
    fn small_commands() {
        let mut f = Framer::new(1 << 20);
        let mut out = Vec::new();
        write_close(&mut f, &mut out, 9).unwrap();
        assert_eq!(out, [5, 0, 0, 0, 0x19, 9, 0, 0, 0]);
        out.clear();
        write_reset(&mut f, &mut out, 9).unwrap();
        assert_eq!(out, [5, 0, 0, 0, 0x1A, 9, 0, 0, 0]);
        out.clear();
        write_long_data(&mut f, &mut out, 9, 2, b"xy").unwrap();
        assert_eq!(out, [9, 0, 0, 0, 0x18, 9, 0, 0, 0, 2, 0, b'x', b'y']);
        out.clear();
        write_prepare(&mut f, &mut out, b"SELECT ?").unwrap();
        assert_eq!(&out[4..], b"\x16SELECT ?");
        out.clear();
        let start = begin_bulk(&mut f, &mut out, 9, [(0x08, 0x80)].into_iter());
        put_bulk_row(&mut out, [ValueRef::UInt(3)].into_iter());
        put_bulk_row(&mut out, [ValueRef::Null].into_iter());
        f.finish(&mut out, start).unwrap();
        assert_eq!(
            &out[4..],
            [
                0xFA, 9, 0, 0, 0, 128, 0, 0x08, 0x80, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1
            ]
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes fed to a prepare machine give events or errors, never a panic.
        #[test]
        fn prepare_machine_never_panics(packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6), deprecate in any::<bool>()) {
            let mut m = PrepareMachine::new(if deprecate { caps::DEPRECATE_EOF } else { 0 });
            for p in &packets {
                if m.on_packet(p).is_err() {
                    break;
                }
            }
        }
    }
}
