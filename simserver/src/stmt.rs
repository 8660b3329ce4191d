//! Prepared statements: the per-statement state (bound types, long data, the
//! column definitions last sent for MariaDB's metadata cache) and the
//! decoding of COM_STMT_EXECUTE parameters.

use crate::proto::{Column, ty};
use crate::sql::Stmt;
use crate::wire::Reader;

/// A prepared statement of one connection.
#[derive(Debug)]
pub struct Prepared {
    /// The statement.
    pub stmt: Stmt,
    /// Number of `?` placeholders.
    pub params: usize,
    /// Parameter types (type byte, unsigned) bound by the last execute that
    /// sent them.
    pub types: Option<Vec<(u8, bool)>>,
    /// Long data received per parameter since the last execute or reset.
    pub long: Vec<Option<Vec<u8>>>,
    /// A COM_STMT_SEND_LONG_DATA named a parameter that does not exist: the
    /// next execute fails.
    pub long_error: bool,
    /// The column definitions this connection last received for this
    /// statement (at prepare or at an execute), encoded.
    pub last_meta: Option<Vec<Vec<u8>>>,
}

impl Prepared {
    /// A freshly prepared statement.
    pub fn new(stmt: Stmt, params: usize) -> Prepared {
        Prepared {
            stmt,
            params,
            types: None,
            long: vec![None; params],
            long_error: false,
            last_meta: None,
        }
    }
}

/// A parameter value as received.
#[derive(Debug, Clone, PartialEq)]
pub enum PVal {
    /// NULL.
    Null,
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// FLOAT or DOUBLE.
    Double(f64),
    /// A string, blob, decimal or temporal value, as sent.
    Bytes(Vec<u8>),
}

/// A bound parameter: its declared type and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The declared type byte.
    pub ty: u8,
    /// The value.
    pub val: PVal,
}

/// The execute's parameters, or why the packet is malformed.
pub fn decode_execute(body: &[u8], p: &mut Prepared) -> Result<Vec<Bound>, String> {
    let mut r = Reader::new(body);
    let short = |e: crate::wire::Short| format!("COM_STMT_EXECUTE truncated at {}", e.0);
    r.u32("statement id").map_err(short)?;
    let flags = r.u8("flags").map_err(short)?;
    if flags & !0x08 != 0 {
        return Err(format!(
            "COM_STMT_EXECUTE asks for cursor flags {flags:#x}, which this server does not offer"
        ));
    }
    r.u32("iteration count").map_err(short)?;
    if p.long_error {
        return Err(
            "an earlier COM_STMT_SEND_LONG_DATA named a parameter that does not exist".into(),
        );
    }
    let n = p.params;
    let long = std::mem::replace(&mut p.long, vec![None; n]);
    if n == 0 {
        if !r.is_empty() {
            return Err(format!(
                "{} bytes after a parameterless execute",
                r.remaining()
            ));
        }
        return Ok(Vec::new());
    }
    let bitmap = r
        .take(n.div_ceil(8), "null bitmap")
        .map_err(short)?
        .to_vec();
    let bound = r.u8("new-params-bound flag").map_err(short)?;
    match bound {
        1 => {
            let mut types = Vec::with_capacity(n);
            for _ in 0..n {
                let t = r.u8("parameter type").map_err(short)?;
                let f = r.u8("parameter flag").map_err(short)?;
                types.push((t, f & 0x80 != 0));
            }
            p.types = Some(types);
        }
        0 if p.types.is_some() => {}
        0 => return Err("new-params-bound is 0 but no types were ever bound".into()),
        b => return Err(format!("new-params-bound flag is {b}")),
    }
    let types = p.types.clone().expect("types bound");
    let mut out = Vec::with_capacity(n);
    for (i, (t, unsigned)) in types.into_iter().enumerate() {
        let val = if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            PVal::Null
        } else if let Some(data) = &long[i] {
            PVal::Bytes(data.clone())
        } else {
            decode_value(&mut r, t, unsigned)
                .map_err(|e| format!("parameter {i} (type {t:#04x}): {e}"))?
        };
        out.push(Bound { ty: t, val });
    }
    if !r.is_empty() {
        return Err(format!(
            "{} bytes after the parameter values",
            r.remaining()
        ));
    }
    Ok(out)
}

fn decode_value(r: &mut Reader<'_>, t: u8, unsigned: bool) -> Result<PVal, String> {
    let short = |e: crate::wire::Short| format!("truncated {}", e.0);
    let int = |v: i64, u: u64| {
        if unsigned {
            unsigned_val(u)
        } else {
            PVal::Int(v)
        }
    };
    Ok(match t {
        ty::NULL => PVal::Null,
        ty::TINY => {
            let b = r.u8("TINY").map_err(short)?;
            int(i64::from(b as i8), u64::from(b))
        }
        ty::SHORT | ty::YEAR => {
            let v = r.u16("SHORT").map_err(short)?;
            int(i64::from(v as i16), u64::from(v))
        }
        ty::LONG | ty::INT24 => {
            let v = r.u32("LONG").map_err(short)?;
            int(i64::from(v as i32), u64::from(v))
        }
        ty::LONGLONG => {
            let v = r.u64("LONGLONG").map_err(short)?;
            int(v as i64, v)
        }
        ty::FLOAT => {
            let v = r.u32("FLOAT").map_err(short)?;
            PVal::Double(f64::from(f32::from_bits(v)))
        }
        ty::DOUBLE => PVal::Double(f64::from_bits(r.u64("DOUBLE").map_err(short)?)),
        // DATE, TIME, DATETIME, TIMESTAMP: a length byte, then that many bytes.
        0x07 | 0x0A | 0x0B | 0x0C => {
            let n = r.u8("temporal length").map_err(short)?;
            PVal::Bytes(r.take(n.into(), "temporal value").map_err(short)?.to_vec())
        }
        // DECIMAL, VARCHAR, BIT, JSON, NEWDECIMAL, ENUM, SET, the BLOBs,
        // VAR_STRING, STRING, GEOMETRY: length-encoded.
        0x00 | 0x0F | 0x10 | 0xF5..=0xFF => {
            PVal::Bytes(r.lenenc_bytes("string value").map_err(short)?.to_vec())
        }
        _ => return Err("unknown parameter type".into()),
    })
}

fn unsigned_val(u: u64) -> PVal {
    match i64::try_from(u) {
        Ok(v) => PVal::Int(v),
        Err(_) => PVal::UInt(u),
    }
}

/// Encodes column definitions (to compare with what was last sent).
pub fn encode_meta(cols: &[Column]) -> Vec<Vec<u8>> {
    cols.iter().map(Column::encode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(params: &[(u8, u8)], nulls: u8, values: &[u8], bound: bool) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0, 0, 1, 0, 0, 0, nulls, u8::from(bound)];
        if bound {
            for (t, f) in params {
                b.extend_from_slice(&[*t, *f]);
            }
        }
        b.extend_from_slice(values);
        b
    }

    #[test]
    fn decodes_types_nulls_and_rebinding() {
        let mut p = Prepared::new(Stmt::SelectAll, 3);
        let mut vals = 5i64.to_le_bytes().to_vec();
        vals.extend_from_slice(&[2, b'h', b'i']);
        let body = exec(&[(8, 0), (0xFD, 0), (5, 0)], 0b100, &vals, true);
        let got = decode_execute(&body, &mut p).unwrap();
        assert_eq!(got[0].val, PVal::Int(5));
        assert_eq!(got[1].val, PVal::Bytes(b"hi".to_vec()));
        assert_eq!(
            got[2],
            Bound {
                ty: 5,
                val: PVal::Null
            }
        );
        // Types reused when not re-bound.
        let body = exec(&[], 0b110, &7i64.to_le_bytes(), false);
        assert_eq!(decode_execute(&body, &mut p).unwrap()[0].val, PVal::Int(7));
        // Truncated or with trailing bytes: malformed.
        let body = exec(&[], 0b110, &[1, 2], false);
        assert!(decode_execute(&body, &mut p).is_err());
        let body = exec(&[], 0b111, &[1], false);
        assert!(decode_execute(&body, &mut p).is_err());
        // Unsigned flag.
        let mut p = Prepared::new(Stmt::SelectAll, 1);
        let body = exec(&[(1, 0x80)], 0, &[200], true);
        assert_eq!(
            decode_execute(&body, &mut p).unwrap()[0].val,
            PVal::Int(200)
        );
        let body = exec(&[(1, 0)], 0, &[200], true);
        assert_eq!(
            decode_execute(&body, &mut p).unwrap()[0].val,
            PVal::Int(-56)
        );
    }

    #[test]
    fn first_execute_must_bind_types_and_long_data_is_used_once() {
        let mut p = Prepared::new(Stmt::SelectAll, 1);
        assert!(decode_execute(&exec(&[], 0, &[], false), &mut p).is_err());
        p.long[0] = Some(b"long".to_vec());
        let got = decode_execute(&exec(&[(0xFC, 0)], 0, &[], true), &mut p).unwrap();
        assert_eq!(got[0].val, PVal::Bytes(b"long".to_vec()));
        assert!(decode_execute(&exec(&[(0xFC, 0)], 0, &[], true), &mut p).is_err());
    }
}
