//! The binary protocol's values: locating them in binary result rows, and
//! encoding statement parameters.
//!
//! A binary row is `0x00`, a NULL bitmap of `(columns + 9) / 8` bytes whose
//! first two bits are unused, then every non-NULL value in the column's wire
//! form: fixed-width little-endian integers and floats, length-prefixed
//! date/time structs, and length-encoded strings for everything else.

use super::codec::put_lenenc_bytes;
use super::consts::ColumnType;
use super::error::{ProtoError, ProtoResult};
use super::row::{BATCH, FieldRange, lenenc_len};
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
#[inline]
pub fn layout(type_byte: u8) -> BinaryLayout {
    match LAYOUTS[usize::from(type_byte)] {
        TEMPORAL => BinaryLayout::Temporal,
        LENENC => BinaryLayout::LenEnc,
        n => BinaryLayout::Fixed(usize::from(n)),
    }
}

/// [`LAYOUTS`] code of [`BinaryLayout::Temporal`]; codes 0..=8 are fixed widths.
const TEMPORAL: u8 = 0xFE;
/// [`LAYOUTS`] code of [`BinaryLayout::LenEnc`].
const LENENC: u8 = 0xFF;

/// The layout of every type byte as one byte, so a row pays one load per column.
static LAYOUTS: [u8; 256] = {
    let mut t = [LENENC; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match layout_of(b as u8) {
            BinaryLayout::Fixed(n) => n as u8,
            BinaryLayout::Temporal => TEMPORAL,
            BinaryLayout::LenEnc => LENENC,
        };
        b += 1;
    }
    t
};

const fn layout_of(type_byte: u8) -> BinaryLayout {
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

/// The NULL bits of columns `first..first + BATCH` (bit 0 = column `first`):
/// column `i` is bit `i + 2` of the bitmap; bits past its end read as 0.
#[inline]
fn null_bits(bitmap: &[u8], first: usize) -> u32 {
    let bit = first + 2;
    let byte = bit / 8;
    let mut w = [0u8; 4];
    for (k, b) in w.iter_mut().enumerate() {
        *b = bitmap.get(byte + k).copied().unwrap_or(0);
    }
    // BATCH is 16: 16 bits from any offset fit in these 32.
    (u32::from_le_bytes(w) >> (bit % 8)) & ((1 << BATCH) - 1)
}

/// Locates the values of a binary row whose columns have the given type
/// bytes, appending one range per column (NULL for NULL values). The range
/// of a date/time value excludes its length byte; that of a string excludes
/// its length prefix. Fails unless the row is exactly that long; then `out`
/// may hold some of the ranges.
///
/// One pass into a stack buffer, appended to `out` with one
/// [`Extend::extend`] per 16 values.
pub fn binary_row_fields(
    payload: &[u8],
    mut types: impl ExactSizeIterator<Item = u8>,
    out: &mut impl Extend<FieldRange>,
) -> ProtoResult<()> {
    if payload.len() >= u32::MAX as usize {
        return Err(ProtoError::Invalid {
            what: "binary row",
            detail: "longer than 4 GiB".into(),
        });
    }
    let columns = types.len();
    if payload.first() != Some(&0x00) {
        return Err(match payload.first() {
            None => ProtoError::Truncated {
                what: "binary row header",
            },
            Some(_) => ProtoError::Invalid {
                what: "binary row",
                detail: "header is not 0x00".into(),
            },
        });
    }
    // The NULL bitmap's first two bits are unused: bit `i + 2` is column `i`.
    let bitmap =
        payload
            .get(1..1 + columns.saturating_add(9) / 8)
            .ok_or(ProtoError::Truncated {
                what: "binary row NULL bitmap",
            })?;
    let mut pos = 1 + bitmap.len();
    let mut first = 0;
    let mut buf = [FieldRange::NULL; BATCH];
    let layouts = &LAYOUTS;
    while first < columns {
        let n = (columns - first).min(BATCH);
        let mut nulls = null_bits(bitmap, first);
        for slot in &mut buf[..n] {
            // An iterator shorter than it said it was reads as NULL columns.
            let ty = types.next();
            let null = nulls & 1 != 0 || ty.is_none();
            nulls >>= 1;
            if null {
                *slot = FieldRange::NULL;
                continue;
            }
            let (start, len) = match layouts[usize::from(ty.unwrap_or(0))] {
                TEMPORAL => match payload.get(pos) {
                    Some(&n) => (pos + 1, usize::from(n)),
                    None => {
                        return Err(ProtoError::Truncated {
                            what: "binary date/time length",
                        });
                    }
                },
                LENENC => lenenc_len(payload, pos, "binary row value")?,
                n => (pos, usize::from(n)),
            };
            // `start` is within the packet: any length prefix was there.
            if len > payload.len() - start {
                return Err(ProtoError::Truncated {
                    what: "binary row value",
                });
            }
            pos = start + len;
            // Both fit in u32: the packet is under 4 GiB.
            *slot = FieldRange::new(start as u32, len as u32);
        }
        out.extend(buf[..n].iter().copied());
        first += n;
    }
    if pos != payload.len() {
        return Err(ProtoError::TrailingBytes {
            what: "binary row",
            extra: payload.len() - pos,
        });
    }
    Ok(())
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
    use crate::proto::codec::Reader;
    use proptest::prelude::*;

    /// The straightforward decoder (one `Reader` call per value) that the
    /// single-pass one replaced: the reference the proptests compare with.
    fn reference(payload: &[u8], types: &[u8]) -> Option<Vec<FieldRange>> {
        let mut r = Reader::new(payload);
        if r.u8("").ok()? != 0 {
            return None;
        }
        let bitmap = r.take((types.len() + 9) / 8, "").ok()?;
        let mut out = Vec::new();
        for (i, &ty) in types.iter().enumerate() {
            let bit = i + 2;
            if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
                out.push(FieldRange::NULL);
                continue;
            }
            let v = match layout_of(ty) {
                BinaryLayout::Fixed(n) => r.take(n, "").ok()?,
                BinaryLayout::Temporal => {
                    let n = r.u8("").ok()?;
                    r.take(usize::from(n), "").ok()?
                }
                BinaryLayout::LenEnc => r.lenenc_bytes("").ok()?,
            };
            out.push(FieldRange::new((r.pos() - v.len()) as u32, v.len() as u32));
        }
        r.finish("").ok()?;
        Some(out)
    }

    /// Column type bytes of every layout, and some unknown ones.
    fn type_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            prop::sample::select(vec![
                0x01, 0x02, 0x03, 0x05, 0x06, 0x08, 0x0A, 0x0B, 0x0C, 0xF6, 0xFC, 0xFD
            ]),
            any::<u8>(),
        ]
    }

    proptest! {
        /// On any bytes and column types, the single-pass decoder agrees
        /// with the reference: the same ranges, or an error for both.
        #[test]
        fn agrees_with_reference(types in prop::collection::vec(type_byte(), 0..40), body in prop::collection::vec(prop_oneof![any::<u8>(), 0xFAu8..], 0..120), mask in any::<u64>()) {
            let mut p = vec![0x00];
            p.extend_from_slice(&(mask << 2).to_le_bytes()[..(types.len() + 9) / 8]);
            p.extend_from_slice(&body);
            let mut f = Vec::new();
            let got = binary_row_fields(&p, types.iter().copied(), &mut f).ok().map(|()| f);
            prop_assert_eq!(got, reference(&p, &types));
        }

        /// Rows encoded from values of every kind (NULLs by a mask) decode to
        /// the same values.
        #[test]
        fn round_trip(values in prop::collection::vec(prop_oneof![
            any::<i64>().prop_map(Value::I),
            any::<f64>().prop_map(Value::D),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::B),
            (0u16..10000, 1u8..13, 1u8..29, 0u8..24, 0u32..1_000_000).prop_map(|(y, m, d, h, us)| Value::T(y, m, d, h, us)),
        ], 0..33), mask in any::<u64>()) {
            let null = |i: usize| mask & (1 << i) != 0;
            let types: Vec<u8> = values.iter().map(Value::type_byte).collect();
            let mut p = vec![0x00];
            let mut bitmap = vec![0u8; (values.len() + 9) / 8];
            for i in (0..values.len()).filter(|&i| null(i)) {
                bitmap[(i + 2) / 8] |= 1 << ((i + 2) % 8);
            }
            p.extend_from_slice(&bitmap);
            let mut want = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if null(i) {
                    want.push(None);
                    continue;
                }
                let at = p.len();
                v.value_ref().encode(&mut p);
                // The range excludes a string's or a date's length prefix.
                let skip = match v { Value::B(b) => p.len() - at - b.len(), Value::T(..) => 1, _ => 0 };
                want.push(Some(p[at + skip..].to_vec()));
            }
            let mut f = Vec::new();
            binary_row_fields(&p, types.into_iter(), &mut f).unwrap();
            let got: Vec<Option<Vec<u8>>> = f.iter().map(|r| r.get(&p).map(<[u8]>::to_vec)).collect();
            prop_assert_eq!(got, want);
        }

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

#[cfg(test)]
#[derive(Debug, Clone)]
enum Value {
    I(i64),
    D(f64),
    B(Vec<u8>),
    T(u16, u8, u8, u8, u32),
}

#[cfg(test)]
impl Value {
    fn type_byte(&self) -> u8 {
        match self {
            Value::I(_) => ColumnType::LongLong as u8,
            Value::D(_) => ColumnType::Double as u8,
            Value::B(_) => ColumnType::Blob as u8,
            Value::T(..) => ColumnType::DateTime as u8,
        }
    }

    fn value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::I(n) => ValueRef::Int(*n),
            Value::D(x) => ValueRef::Double(*x),
            Value::B(b) => ValueRef::Bytes(b),
            Value::T(y, m, d, h, us) => ValueRef::DateTime(
                DateTime::new(Date::new(*y, *m, *d).unwrap(), *h, 1, 2, *us).unwrap(),
            ),
        }
    }
}
