//! The binary protocol's values: locating them in binary result rows, and
//! encoding statement parameters.
//!
//! A binary row is `0x00`, a NULL bitmap of `(columns + 9) / 8` bytes whose
//! first two bits are unused, then every non-NULL value in the column's wire
//! form: fixed-width little-endian integers and floats, length-prefixed
//! date/time structs, and length-encoded strings for everything else.

use super::codec::{Reader, put_lenenc_bytes};
use super::consts::ColumnType;
use super::error::{ProtoError, ProtoResult};
use super::row::FieldRange;
use super::temporal::{Date, DateTime, Time, encode_date, encode_datetime, encode_time};

/// How a column's value is laid out in a binary row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryLayout {
    /// A fixed number of bytes (integers, floats; 0 for the NULL type).
    Fixed(usize),
    /// A length byte then that many bytes (dates, times).
    Temporal,
    /// A length-encoded string (strings, blobs, DECIMAL, BIT, JSON, ...).
    LenEnc,
}

/// The binary layout of a column type byte. Unknown types are length-encoded,
/// which is what servers use for every type they add.
pub fn layout(type_byte: u8) -> BinaryLayout {
    use ColumnType::*;
    match ColumnType::from_u8(type_byte) {
        Some(Tiny) => BinaryLayout::Fixed(1),
        Some(Short | Year) => BinaryLayout::Fixed(2),
        Some(Long | Int24 | Float) => BinaryLayout::Fixed(4),
        Some(LongLong | Double) => BinaryLayout::Fixed(8),
        Some(Null) => BinaryLayout::Fixed(0),
        Some(Date | DateTime | Timestamp | NewDate | Time | Timestamp2 | DateTime2 | Time2) => {
            BinaryLayout::Temporal
        }
        _ => BinaryLayout::LenEnc,
    }
}

/// Locates the values of a binary row whose columns have the given type
/// bytes, appending one range per column (NULL for NULL values). The range
/// of a date/time value excludes its length byte; that of a string excludes
/// its length prefix. Fails unless the row is exactly that long.
pub fn binary_row_fields(
    payload: &[u8],
    types: impl ExactSizeIterator<Item = u8>,
    out: &mut impl Extend<FieldRange>,
) -> ProtoResult<()> {
    if payload.len() >= u32::MAX as usize {
        return Err(ProtoError::Invalid {
            what: "binary row",
            detail: "longer than 4 GiB".into(),
        });
    }
    let columns = types.len();
    let mut r = Reader::new(payload);
    if r.u8("binary row header")? != 0x00 {
        return Err(ProtoError::Invalid {
            what: "binary row",
            detail: "header is not 0x00".into(),
        });
    }
    let bitmap = r.take((columns + 9) / 8, "binary row NULL bitmap")?;
    for (i, ty) in types.enumerate() {
        let bit = i + 2;
        if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
            out.extend(Some(FieldRange::NULL));
            continue;
        }
        let v = match layout(ty) {
            BinaryLayout::Fixed(n) => r.take(n, "binary row value")?,
            BinaryLayout::Temporal => {
                let n = r.u8("binary date/time length")?;
                r.take(usize::from(n), "binary date/time value")?
            }
            BinaryLayout::LenEnc => r.lenenc_bytes("binary row value")?,
        };
        let start = (r.pos() - v.len()) as u32;
        out.extend(Some(FieldRange::new(start, v.len() as u32)));
    }
    r.finish("binary row")
}

/// A statement parameter as it goes on the wire; borrowed, so encoding one
/// copies its bytes only into the command buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A signed integer (sent as `BIGINT`).
    Int(i64),
    /// An unsigned integer (sent as `BIGINT UNSIGNED`).
    UInt(u64),
    /// A `FLOAT`.
    Float(f32),
    /// A `DOUBLE`.
    Double(f64),
    /// Text in the connection's character set (sent as `VARCHAR`).
    Text(&'a str),
    /// Binary data (sent as `BLOB`: the server converts no character set).
    Bytes(&'a [u8]),
    /// A `DATE`.
    Date(Date),
    /// A `TIME`.
    Time(Time),
    /// A `DATETIME`.
    DateTime(DateTime),
}

/// The parameter type flag for unsigned integers.
pub const PARAM_UNSIGNED: u8 = 0x80;

impl ValueRef<'_> {
    /// The (type byte, flag byte) pair announcing this parameter.
    pub fn param_type(&self) -> (u8, u8) {
        let t = match self {
            ValueRef::Null => ColumnType::Null,
            ValueRef::Int(_) => ColumnType::LongLong,
            ValueRef::UInt(_) => return (ColumnType::LongLong as u8, PARAM_UNSIGNED),
            ValueRef::Float(_) => ColumnType::Float,
            ValueRef::Double(_) => ColumnType::Double,
            ValueRef::Text(_) => ColumnType::VarString,
            ValueRef::Bytes(_) => ColumnType::Blob,
            ValueRef::Date(_) => ColumnType::Date,
            ValueRef::Time(_) => ColumnType::Time,
            ValueRef::DateTime(_) => ColumnType::DateTime,
        };
        (t as u8, 0)
    }

    /// The string or bytes of a `Text`/`Bytes` value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            ValueRef::Text(s) => Some(s.as_bytes()),
            ValueRef::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// True for a string or byte value of at least `threshold` bytes: such a
    /// parameter is sent beforehand with `COM_STMT_SEND_LONG_DATA` and left
    /// out of `COM_STMT_EXECUTE`.
    pub fn is_long(&self, threshold: usize) -> bool {
        self.as_bytes().is_some_and(|b| b.len() >= threshold)
    }

    /// Appends the value in its binary form (nothing for NULL).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ValueRef::Null => {}
            ValueRef::Int(v) => out.extend_from_slice(&v.to_le_bytes()),
            ValueRef::UInt(v) => out.extend_from_slice(&v.to_le_bytes()),
            ValueRef::Float(v) => out.extend_from_slice(&v.to_le_bytes()),
            ValueRef::Double(v) => out.extend_from_slice(&v.to_le_bytes()),
            ValueRef::Text(s) => put_lenenc_bytes(out, s.as_bytes()),
            ValueRef::Bytes(b) => put_lenenc_bytes(out, b),
            ValueRef::Date(d) => encode_date(out, d),
            ValueRef::Time(t) => encode_time(out, t),
            ValueRef::DateTime(dt) => encode_datetime(out, dt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::codec::put_lenenc_bytes;

    fn row(types: &[u8], p: &[u8]) -> ProtoResult<Vec<Option<Vec<u8>>>> {
        let mut f = Vec::new();
        binary_row_fields(p, types.iter().copied(), &mut f)?;
        Ok(f.iter().map(|r| r.get(p).map(<[u8]>::to_vec)).collect())
    }

    #[test]
    fn values_of_every_layout_and_nulls() {
        use ColumnType::*;
        let types = [
            Tiny as u8,
            LongLong as u8,
            VarString as u8,
            DateTime as u8,
            Double as u8,
            Time as u8,
            NewDecimal as u8,
        ];
        // Column 4 (Double) is NULL: bit 4 + 2 = 6 of the bitmap.
        let mut p = vec![0x00, 1 << 6, 0x00];
        p.push(0xFF);
        p.extend_from_slice(&(-2i64).to_le_bytes());
        put_lenenc_bytes(&mut p, b"hi");
        p.extend_from_slice(&[4, 0xE8, 0x07, 2, 29]);
        p.extend_from_slice(&[0]);
        put_lenenc_bytes(&mut p, b"1.50");
        let got = row(&types, &p).unwrap();
        assert_eq!(got[0].as_deref(), Some(&[0xFF][..]));
        assert_eq!(got[1].as_deref(), Some(&(-2i64).to_le_bytes()[..]));
        assert_eq!(got[2].as_deref(), Some(&b"hi"[..]));
        assert_eq!(got[3].as_deref(), Some(&[0xE8, 0x07, 2, 29][..]));
        assert_eq!(got[4], None);
        assert_eq!(got[5].as_deref(), Some(&[][..]));
        assert_eq!(got[6].as_deref(), Some(&b"1.50"[..]));
    }

    #[test]
    fn malformed_rows_are_errors() {
        let t = [ColumnType::Long as u8];
        assert!(row(&t, &[]).is_err());
        assert!(row(&t, &[1, 0, 1, 2, 3, 4]).is_err(), "header");
        assert!(row(&t, &[0, 0, 1, 2, 3]).is_err(), "short int");
        assert!(row(&t, &[0, 0, 1, 2, 3, 4, 5]).is_err(), "trailing");
        assert!(row(&t, &[0, 0b100]).is_ok(), "NULL");
        let d = [ColumnType::Date as u8];
        assert!(row(&d, &[0, 0, 4, 1, 2]).is_err(), "short date");
        let s = [ColumnType::Blob as u8];
        assert!(row(&s, &[0, 0, 0xFE, 1]).is_err(), "huge length");
        assert!(row(&s, &[0, 0, 0xFB]).is_err(), "0xFB is no length");
        // Every truncation of a valid row fails without panicking.
        let mut p = vec![0, 0];
        put_lenenc_bytes(&mut p, &[7; 300]);
        for cut in 0..p.len() {
            assert!(row(&s, &p[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn parameter_types_and_values() {
        assert_eq!(ValueRef::UInt(1).param_type(), (0x08, 0x80));
        assert_eq!(ValueRef::Int(-1).param_type(), (0x08, 0));
        assert_eq!(ValueRef::Text("x").param_type(), (0xFD, 0));
        assert_eq!(ValueRef::Bytes(b"x").param_type(), (0xFC, 0));
        assert_eq!(ValueRef::Null.param_type(), (0x06, 0));
        let mut out = Vec::new();
        ValueRef::Int(-1).encode(&mut out);
        ValueRef::Text("ab").encode(&mut out);
        ValueRef::Null.encode(&mut out);
        ValueRef::Float(1.0).encode(&mut out);
        assert_eq!(
            out,
            [
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, b'a', b'b', 0, 0, 0x80, 0x3F
            ]
        );
        assert!(ValueRef::Bytes(&[0; 10]).is_long(10));
        assert!(!ValueRef::Int(1).is_long(0));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes against any column types: an error or ranges inside the packet, never a panic.
        #[test]
        fn never_panics(types in prop::collection::vec(any::<u8>(), 0..12), p in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut f = Vec::new();
            if binary_row_fields(&p, types.iter().copied(), &mut f).is_ok() {
                prop_assert_eq!(f.len(), types.len());
                for r in f {
                    if !r.is_null() {
                        prop_assert!(r.get(&p).is_some());
                    }
                }
            }
        }

        /// Encoded integer and string parameters laid out as a row decode back.
        #[test]
        fn encoded_values_decode(a in any::<i64>(), s in ".{0,300}", null in any::<bool>()) {
            let mut p = vec![0x00, if null { 1 << 3 } else { 0 }];
            ValueRef::Int(a).encode(&mut p);
            if !null {
                ValueRef::Text(&s).encode(&mut p);
            }
            let mut f = Vec::new();
            binary_row_fields(&p, [ColumnType::LongLong as u8, ColumnType::VarString as u8].into_iter(), &mut f).unwrap();
            prop_assert_eq!(f[0].get(&p).unwrap(), &a.to_le_bytes()[..]);
            prop_assert_eq!(f[1].get(&p), if null { None } else { Some(s.as_bytes()) });
        }
    }
}
