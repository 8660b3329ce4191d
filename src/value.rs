//! Conversion of column values to Rust types.
//!
//! [`FromValue`] turns one value, borrowed from the row packet, into a Rust
//! type: numbers are parsed in place, `&str` and `&[u8]` borrow, `Option<T>`
//! maps SQL NULL to `None`.

use bytes::Bytes;

use crate::column::{Column, ColumnType};
use crate::proto::binary::{BinaryLayout, layout};
pub use crate::proto::temporal::{Date, DateTime, ParseTemporalError, Time};
use crate::proto::temporal::{decode_datetime, decode_time};

/// Why a value could not be converted. [`crate::Row::get`] turns it into an
/// [`Error`](crate::Error) that names the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvError {
    /// The Rust type requested.
    pub target: &'static str,
    /// What was wrong.
    pub reason: String,
}

impl ConvError {
    /// A conversion error for `target` (the requested Rust type).
    pub fn new(target: &'static str, reason: impl Into<String>) -> Self {
        ConvError {
            target,
            reason: reason.into(),
        }
    }
}

/// A Rust type that a column value converts to, from either protocol.
///
/// Text-protocol values (plain queries) are the server's text form; binary
/// ones (prepared statements) are the column type's wire form, decoded with
/// [`Binary::decode`]. The built-in types give the same result for the same
/// value in both protocols.
pub trait FromValue<'a>: Sized {
    /// Converts a text-protocol value; `None` is SQL NULL.
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError>;

    /// Converts a binary-protocol value; `None` is SQL NULL. The default
    /// handles string-like columns (whose binary form is their text) with
    /// [`FromValue::from_text`] and refuses others.
    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        match value {
            Some(_) if layout(column.type_byte()) != BinaryLayout::LenEnc => Err(ConvError::new(
                std::any::type_name::<Self>(),
                format!(
                    "a prepared statement's {:?} value is not text or bytes; request String, \
                     a number or a date/time type",
                    column.column_type()
                ),
            )),
            _ => Self::from_text(value, column),
        }
    }
}

/// A binary-protocol value decoded according to its column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Binary<'a> {
    /// A signed integer column.
    Int(i64),
    /// An unsigned integer column (or YEAR).
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// Strings, blobs, DECIMAL, BIT, ENUM, SET, JSON, GEOMETRY: the bytes.
    Bytes(&'a [u8]),
    /// DATE, DATETIME, TIMESTAMP.
    DateTime(DateTime),
    /// TIME.
    Time(Time),
}

impl<'a> Binary<'a> {
    /// Decodes `v` (located by the binary row decoder) as a value of `column`.
    #[inline]
    pub fn decode(v: &'a [u8], column: &Column) -> Result<Binary<'a>, ConvError> {
        use ColumnType as T;
        let unsigned = column.is_unsigned();
        let bad = || {
            ConvError::new(
                "a binary value",
                format!(
                    "{} bytes do not form a {:?} value",
                    v.len(),
                    column.column_type()
                ),
            )
        };
        let int = |n: i64, u: u64| {
            if unsigned {
                Binary::UInt(u)
            } else {
                Binary::Int(n)
            }
        };
        Ok(match column.column_type() {
            Some(T::Tiny) => {
                let b: [u8; 1] = v.try_into().map_err(|_| bad())?;
                int(i64::from(b[0] as i8), u64::from(b[0]))
            }
            Some(T::Short | T::Year) => {
                let b: [u8; 2] = v.try_into().map_err(|_| bad())?;
                int(
                    i64::from(i16::from_le_bytes(b)),
                    u64::from(u16::from_le_bytes(b)),
                )
            }
            Some(T::Long | T::Int24) => {
                let b: [u8; 4] = v.try_into().map_err(|_| bad())?;
                int(
                    i64::from(i32::from_le_bytes(b)),
                    u64::from(u32::from_le_bytes(b)),
                )
            }
            Some(T::LongLong) => {
                let b: [u8; 8] = v.try_into().map_err(|_| bad())?;
                int(i64::from_le_bytes(b), u64::from_le_bytes(b))
            }
            Some(T::Float) => Binary::Float(f32::from_le_bytes(v.try_into().map_err(|_| bad())?)),
            Some(T::Double) => Binary::Double(f64::from_le_bytes(v.try_into().map_err(|_| bad())?)),
            Some(
                T::Date | T::NewDate | T::DateTime | T::DateTime2 | T::Timestamp | T::Timestamp2,
            ) => Binary::DateTime(decode_datetime(v).map_err(|_| bad())?),
            Some(T::Time | T::Time2) => Binary::Time(decode_time(v).map_err(|_| bad())?),
            _ => Binary::Bytes(v),
        })
    }
}

/// The value of a BIT column (big-endian bytes) as a number.
fn bit_value(v: &[u8]) -> Option<u64> {
    (v.len() <= 8).then(|| v.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
}

fn is_bit(column: &Column) -> bool {
    column.column_type() == Some(ColumnType::Bit)
}

/// Formats a binary value the way the server writes it in the text protocol
/// (fractional seconds to the column's precision).
fn binary_text(b: Binary<'_>, column: &Column) -> Result<String, ConvError> {
    use std::fmt::Write;
    let frac = |s: &mut String, micros: u32| {
        let digits = match column.decimals() {
            d @ 1..=6 => usize::from(d),
            0 => 0,
            _ if micros != 0 => 6,
            _ => 0,
        };
        if digits > 0 {
            let f = format!("{micros:06}");
            s.push('.');
            s.push_str(&f[..digits]);
        }
    };
    Ok(match b {
        Binary::Int(n) => n.to_string(),
        Binary::UInt(n) => n.to_string(),
        Binary::Float(x) => x.to_string(),
        Binary::Double(x) => x.to_string(),
        Binary::Bytes(v) => std::str::from_utf8(v)
            .map_err(|e| {
                ConvError::new(
                    "String",
                    format!("the value is not valid UTF-8 ({e}); request Vec<u8> or &[u8] for binary data"),
                )
            })?
            .to_owned(),
        Binary::DateTime(dt) => match column.column_type() {
            Some(ColumnType::Date | ColumnType::NewDate) => dt.date.to_string(),
            _ => {
                let mut s = String::with_capacity(26);
                let _ = write!(
                    s,
                    "{} {:02}:{:02}:{:02}",
                    dt.date, dt.hour, dt.minute, dt.second
                );
                frac(&mut s, dt.micros);
                s
            }
        },
        Binary::Time(t) => {
            let mut s = String::with_capacity(18);
            let _ = write!(
                s,
                "{}{:02}:{:02}:{:02}",
                if t.negative { "-" } else { "" },
                t.total_hours(),
                t.minutes,
                t.seconds
            );
            frac(&mut s, t.micros);
            s
        }
    })
}

#[inline]
fn not_null<'a>(v: Option<&'a [u8]>, target: &'static str) -> Result<&'a [u8], ConvError> {
    v.ok_or_else(|| {
        ConvError::new(
            target,
            "the value is NULL; request Option<_> to accept NULL",
        )
    })
}

fn shown(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned();
    if v.len() > 40 {
        format!("\"{s}…\"")
    } else {
        format!("\"{s}\"")
    }
}

/// Parses an unsigned decimal integer without allocating.
#[inline]
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Parses a signed decimal integer without allocating.
#[inline]
fn parse_i64(b: &[u8]) -> Option<i64> {
    match b.first()? {
        b'-' => {
            let m = parse_u64(&b[1..])?;
            if m <= i64::MAX as u64 {
                Some(-(m as i64))
            } else if m == i64::MAX as u64 + 1 {
                Some(i64::MIN)
            } else {
                None
            }
        }
        b'+' => parse_u64(&b[1..]).and_then(|m| i64::try_from(m).ok()),
        _ => parse_u64(b).and_then(|m| i64::try_from(m).ok()),
    }
}

macro_rules! int_impl {
    ($($t:ty => $parse:ident),*) => {$(
        impl<'a> FromValue<'a> for $t {
            #[inline]
            fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                if is_bit(column) {
                    return bit_value(v)
                        .and_then(|n| <$t>::try_from(n).ok())
                        .ok_or_else(|| ConvError::new(stringify!($t), format!("BIT value {:?} is out of the range of {}", v, stringify!($t))));
                }
                $parse(v)
                    .and_then(|n| <$t>::try_from(n).ok())
                    .ok_or_else(|| ConvError::new(stringify!($t), format!("{} is not an integer in the range of {}", shown(v), stringify!($t))))
            }

            #[inline]
            fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                let range = |n: &dyn std::fmt::Display| ConvError::new(stringify!($t), format!("{} is out of the range of {}", n, stringify!($t)));
                match Binary::decode(v, column)? {
                    Binary::Int(n) => <$t>::try_from(n).map_err(|_| range(&n)),
                    Binary::UInt(n) => <$t>::try_from(n).map_err(|_| range(&n)),
                    Binary::Float(x) => float_to_int(f64::from(x)).and_then(|n| <$t>::try_from(n).ok()).ok_or_else(|| range(&x)),
                    Binary::Double(x) => float_to_int(x).and_then(|n| <$t>::try_from(n).ok()).ok_or_else(|| range(&x)),
                    Binary::Bytes(_) => Self::from_text(value, column),
                    other => Err(ConvError::new(stringify!($t), format!("{other:?} is not an integer"))),
                }
            }
        }
    )*};
}

/// A float that holds an integer exactly (what the text protocol would print without a point).
fn float_to_int(x: f64) -> Option<i128> {
    (x.fract() == 0.0 && x.abs() < 1.8e19).then_some(x as i128)
}
int_impl!(i8 => parse_i64, i16 => parse_i64, i32 => parse_i64, i64 => parse_i64,
          u8 => parse_u64, u16 => parse_u64, u32 => parse_u64, u64 => parse_u64);

macro_rules! float_impl {
    ($($t:ty),*) => {$(
        impl<'a> FromValue<'a> for $t {
            fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<$t>().ok())
                    .ok_or_else(|| ConvError::new(stringify!($t), format!("{} is not a number", shown(v))))
            }

            fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                match Binary::decode(v, column)? {
                    Binary::Int(n) => Ok(n as $t),
                    Binary::UInt(n) => Ok(n as $t),
                    Binary::Float(x) => Ok(x as $t),
                    Binary::Double(x) => Ok(x as $t),
                    Binary::Bytes(_) => Self::from_text(value, column),
                    other => Err(ConvError::new(stringify!($t), format!("{other:?} is not a number"))),
                }
            }
        }
    )*};
}
float_impl!(f32, f64);

impl<'a> FromValue<'a> for bool {
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "bool")?;
        match parse_i64(v).or_else(|| {
            is_bit(column)
                .then(|| bit_value(v))
                .flatten()
                .map(|n| n as i64)
        }) {
            Some(n) => Ok(n != 0),
            None => Err(ConvError::new(
                "bool",
                format!("{} is not 0 or 1", shown(v)),
            )),
        }
    }

    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "bool")?;
        match Binary::decode(v, column)? {
            Binary::Int(n) => Ok(n != 0),
            Binary::UInt(n) => Ok(n != 0),
            Binary::Bytes(_) => Self::from_text(value, column),
            other => Err(ConvError::new("bool", format!("{other:?} is not 0 or 1"))),
        }
    }
}

impl<'a> FromValue<'a> for &'a [u8] {
    #[inline]
    fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
        not_null(value, "&[u8]")
    }
}

impl<'a> FromValue<'a> for Vec<u8> {
    fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
        not_null(value, "Vec<u8>").map(<[u8]>::to_vec)
    }

    /// Strings and blobs as they are; numbers and dates in their text form.
    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "Vec<u8>")?;
        match Binary::decode(v, column)? {
            Binary::Bytes(b) => Ok(b.to_vec()),
            other => binary_text(other, column).map(String::into_bytes),
        }
    }
}

impl<'a> FromValue<'a> for &'a str {
    #[inline]
    fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "&str")?;
        std::str::from_utf8(v).map_err(|e| {
            ConvError::new(
                "&str",
                format!(
                    "the value is not valid UTF-8 ({e}); request Vec<u8> or &[u8] for binary data"
                ),
            )
        })
    }
}

impl<'a> FromValue<'a> for String {
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        <&str>::from_text(value, column)
            .map(str::to_owned)
            .map_err(|e| ConvError::new("String", e.reason))
    }

    /// Any value in the text form the server would have sent for it.
    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "String")?;
        binary_text(Binary::decode(v, column)?, column)
    }
}

impl<'a, T: FromValue<'a>> FromValue<'a> for Option<T> {
    #[inline]
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        match value {
            None => Ok(None),
            Some(_) => T::from_text(value, column).map(Some),
        }
    }

    #[inline]
    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        match value {
            None => Ok(None),
            Some(_) => T::from_binary(value, column).map(Some),
        }
    }
}

fn temporal_text<T>(
    value: Option<&[u8]>,
    target: &'static str,
    parse: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, ConvError> {
    let v = not_null(value, target)?;
    parse(v).ok_or_else(|| ConvError::new(target, format!("{} is not a {target}", shown(v))))
}

impl<'a> FromValue<'a> for DateTime {
    fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
        temporal_text(value, "DateTime", DateTime::parse)
    }

    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "DateTime")?;
        match Binary::decode(v, column)? {
            Binary::DateTime(dt) => Ok(dt),
            Binary::Bytes(_) => Self::from_text(value, column),
            other => Err(ConvError::new(
                "DateTime",
                format!("{other:?} is not a date and time"),
            )),
        }
    }
}

/// A date from a DATETIME whose time of day is midnight.
fn date_only(dt: DateTime) -> Result<Date, ConvError> {
    if (dt.hour, dt.minute, dt.second, dt.micros) == (0, 0, 0, 0) {
        Ok(dt.date)
    } else {
        Err(ConvError::new(
            "Date",
            format!("{dt} has a time of day; request DateTime"),
        ))
    }
}

impl<'a> FromValue<'a> for Date {
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        match Date::parse(not_null(value, "Date")?) {
            Some(d) => Ok(d),
            None => date_only(
                DateTime::from_text(value, column).map_err(|e| ConvError::new("Date", e.reason))?,
            ),
        }
    }

    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "Date")?;
        match Binary::decode(v, column)? {
            Binary::DateTime(dt) => date_only(dt),
            Binary::Bytes(_) => Self::from_text(value, column),
            other => Err(ConvError::new("Date", format!("{other:?} is not a date"))),
        }
    }
}

impl<'a> FromValue<'a> for Time {
    fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
        temporal_text(value, "Time", Time::parse)
    }

    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "Time")?;
        match Binary::decode(v, column)? {
            Binary::Time(t) => Ok(t),
            Binary::Bytes(_) => Self::from_text(value, column),
            other => Err(ConvError::new("Time", format!("{other:?} is not a time"))),
        }
    }
}

/// Any value, typed by its column: the dynamic form of a row's values.
///
/// Integers become `Int`/`UInt` (by the column's `UNSIGNED` flag), FLOAT and
/// DOUBLE `Float`/`Double`, DATE/DATETIME/TIMESTAMP/TIME the date/time
/// variants, and everything else (strings, blobs, DECIMAL, BIT, ENUM, SET,
/// JSON, GEOMETRY) `Bytes`. It is also a statement parameter.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// SQL NULL.
    #[default]
    Null,
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A FLOAT.
    Float(f32),
    /// A DOUBLE.
    Double(f64),
    /// Bytes: strings (UTF-8 in a utf8mb4 session), blobs, DECIMAL digits, ...
    Bytes(Vec<u8>),
    /// A DATE.
    Date(Date),
    /// A TIME.
    Time(Time),
    /// A DATETIME or TIMESTAMP.
    DateTime(DateTime),
}

impl<'a> FromValue<'a> for Value {
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        use ColumnType as T;
        let Some(v) = value else {
            return Ok(Value::Null);
        };
        let parsed = match column.column_type() {
            Some(T::Tiny | T::Short | T::Year | T::Long | T::Int24 | T::LongLong) => {
                if column.is_unsigned() {
                    parse_u64(v).map(Value::UInt)
                } else {
                    parse_i64(v).map(Value::Int)
                }
            }
            Some(T::Float) => f32::from_text(value, column).ok().map(Value::Float),
            Some(T::Double) => f64::from_text(value, column).ok().map(Value::Double),
            Some(T::Date | T::NewDate) => Date::parse(v).map(Value::Date),
            Some(T::DateTime | T::DateTime2 | T::Timestamp | T::Timestamp2) => {
                DateTime::parse(v).map(Value::DateTime)
            }
            Some(T::Time | T::Time2) => Time::parse(v).map(Value::Time),
            _ => None,
        };
        Ok(parsed.unwrap_or_else(|| Value::Bytes(v.to_vec())))
    }

    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let Some(v) = value else {
            return Ok(Value::Null);
        };
        Ok(match Binary::decode(v, column)? {
            Binary::Int(n) => Value::Int(n),
            Binary::UInt(n) => Value::UInt(n),
            Binary::Float(x) => Value::Float(x),
            Binary::Double(x) => Value::Double(x),
            Binary::Bytes(b) => Value::Bytes(b.to_vec()),
            Binary::DateTime(dt) => match column.column_type() {
                Some(ColumnType::Date | ColumnType::NewDate) => Value::Date(dt.date),
                _ => Value::DateTime(dt),
            },
            Binary::Time(t) => Value::Time(t),
        })
    }
}

/// Owned bytes that share the row's buffer: no copy. Only available through
/// [`crate::Row::get_bytes`], which knows the backing buffer.
pub(crate) fn share(packet: &Bytes, value: &[u8]) -> Bytes {
    packet.slice_ref(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(type_byte: u8, flags: u16, decimals: u8) -> Column {
        let mut p = crate::proto::column::encode_column_def("c", ColumnType::Long, flags, 45);
        let n = p.len();
        p[n - 6] = type_byte;
        p[n - 3] = decimals;
        let def = crate::proto::column::parse_column_def(&p).unwrap();
        Column::new(Bytes::from(p), def)
    }

    #[test]
    fn binary_values_of_any_shape_never_panic() {
        let bytes: Vec<u8> = (0..16u32).map(|i| (i * 37) as u8).collect();
        for ty in 0..=255u8 {
            for flags in [0, crate::proto::consts::column_flags::UNSIGNED] {
                let col = column(ty, flags, 31);
                for len in 0..=bytes.len() {
                    let v = Some(&bytes[..len]);
                    let _ = Value::from_binary(v, &col);
                    let _ = String::from_binary(v, &col);
                    let _ = <i64>::from_binary(v, &col);
                    let _ = <u8>::from_binary(v, &col);
                    let _ = <f64>::from_binary(v, &col);
                    let _ = <&str>::from_binary(v, &col);
                    let _ = Date::from_binary(v, &col);
                    let _ = Time::from_binary(v, &col);
                    let _ = Value::from_text(v, &col);
                }
            }
        }
    }

    #[test]
    fn binary_decoding_by_column_type() {
        let tiny = column(ColumnType::Tiny as u8, 0, 0);
        let utiny = column(
            ColumnType::Tiny as u8,
            crate::proto::consts::column_flags::UNSIGNED,
            0,
        );
        assert_eq!(i8::from_binary(Some(&[0xFF]), &tiny), Ok(-1));
        assert_eq!(u8::from_binary(Some(&[0xFF]), &utiny), Ok(255));
        assert!(u8::from_binary(Some(&[0xFF]), &tiny).is_err());
        assert!(
            i64::from_binary(Some(&[0xFF, 0]), &tiny).is_err(),
            "wrong width"
        );
        let dt = column(ColumnType::DateTime as u8, 0, 3);
        let v = [0xE8, 0x07, 2, 29, 1, 2, 3, 0x40, 0xE2, 0x01, 0];
        assert_eq!(
            String::from_binary(Some(&v), &dt).unwrap(),
            "2024-02-29 01:02:03.123"
        );
        let time = column(ColumnType::Time as u8, 0, 0);
        let t = [1, 1, 0, 0, 0, 2, 3, 4];
        assert_eq!(String::from_binary(Some(&t), &time).unwrap(), "-26:03:04");
        let dbl = column(ColumnType::Double as u8, 0, 31);
        assert_eq!(i64::from_binary(Some(&2.0f64.to_le_bytes()), &dbl), Ok(2));
        assert!(i64::from_binary(Some(&2.5f64.to_le_bytes()), &dbl).is_err());
        let bit = column(ColumnType::Bit as u8, 0, 0);
        assert_eq!(u16::from_text(Some(&[0x01, 0x02]), &bit), Ok(0x0102));
        assert_eq!(u16::from_binary(Some(&[0x01, 0x02]), &bit), Ok(0x0102));
    }

    #[test]
    fn integers_parse_in_place_with_range_checks() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"12a"), None);
        assert_eq!(parse_i64(b"1.5"), None);
        assert_eq!(parse_u64(b"-1"), None);
    }
}
