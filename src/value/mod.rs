use bytes::Bytes;

use crate::column::{Column, ColumnType};
use crate::proto::binary::{BinaryLayout, layout};
pub use crate::proto::temporal::{Date, DateTime, ParseTemporalError, Time};
use crate::proto::temporal::{datetime_from_wire, decode_time};

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
            Some(_) if layout(column.type_byte()) != BinaryLayout::LenEnc => {
                Err(not_text_error::<Self>(column))
            }
            _ => Self::from_text(value, column),
        }
    }
}

/// The error of [`FromValue::from_binary`]'s default for a value that is not
/// text or bytes.
#[cold]
#[inline(never)]
fn not_text_error<T>(column: &Column) -> ConvError {
    ConvError::new(
        std::any::type_name::<T>(),
        format!(
            "a prepared statement's {:?} value is not text or bytes; request String, \
             a number or a date/time type",
            column.column_type()
        ),
    )
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
    #[inline(always)]
    pub fn decode(v: &'a [u8], column: &Column) -> Result<Binary<'a>, ConvError> {
        use ColumnType as T;
        let unsigned = column.is_unsigned();
        let int = |n: i64, u: u64| {
            if unsigned {
                Binary::UInt(u)
            } else {
                Binary::Int(n)
            }
        };
        let b = match column.column_type() {
            Some(T::Tiny) => <[u8; 1]>::try_from(v)
                .ok()
                .map(|b| int(i64::from(b[0] as i8), u64::from(b[0]))),
            Some(T::Short | T::Year) => <[u8; 2]>::try_from(v).ok().map(|b| {
                int(
                    i64::from(i16::from_le_bytes(b)),
                    u64::from(u16::from_le_bytes(b)),
                )
            }),
            Some(T::Long | T::Int24) => <[u8; 4]>::try_from(v).ok().map(|b| {
                int(
                    i64::from(i32::from_le_bytes(b)),
                    u64::from(u32::from_le_bytes(b)),
                )
            }),
            Some(T::LongLong) => <[u8; 8]>::try_from(v)
                .ok()
                .map(|b| int(i64::from_le_bytes(b), u64::from_le_bytes(b))),
            Some(T::Float) => v
                .try_into()
                .ok()
                .map(|b| Binary::Float(f32::from_le_bytes(b))),
            Some(T::Double) => v
                .try_into()
                .ok()
                .map(|b| Binary::Double(f64::from_le_bytes(b))),
            Some(
                T::Date | T::NewDate | T::DateTime | T::DateTime2 | T::Timestamp | T::Timestamp2,
            ) => datetime_from_wire(v).map(Binary::DateTime),
            Some(T::Time | T::Time2) => decode_time(v).ok().map(Binary::Time),
            _ => Some(Binary::Bytes(v)),
        };
        match b {
            Some(b) => Ok(b),
            None => Err(binary_error(v, column)),
        }
    }
}

#[cold]
#[inline(never)]
fn binary_error(v: &[u8], column: &Column) -> ConvError {
    ConvError::new(
        "a binary value",
        format!(
            "{} bytes do not form a {:?} value",
            v.len(),
            column.column_type()
        ),
    )
}

/// The value of a BIT column (big-endian bytes) as a number.
fn bit_value(v: &[u8]) -> Option<u64> {
    (v.len() <= 8).then(|| v.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
}

#[inline(always)]
fn is_bit(column: &Column) -> bool {
    column.type_byte() == ColumnType::Bit as u8
}

/// True when every byte is ASCII, 8 bytes at a time (the last word overlaps
/// the one before rather than falling back to a byte loop).
#[inline(always)]
fn is_ascii_short(v: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = v.len();
    let word = |i: usize| {
        v.get(i..i + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(HIGH, u64::from_le_bytes)
    };
    if n < 8 {
        return v.iter().fold(0u8, |a, &b| a | b) < 0x80;
    }
    let mut acc = word(n - 8);
    let mut i = 0;
    while i + 8 < n {
        acc |= word(i);
        i += 8;
    }
    acc & HIGH == 0
}

/// Validates `v` as UTF-8 once, for `&str`/`String` reads.
///
/// Row values are mostly short ASCII: under 64 bytes an 8-bytes-at-a-time
/// ASCII check settles it in about a third of the instructions of
/// `std::str::from_utf8` (which goes byte by byte until the data is aligned);
/// simdutf8 itself hands inputs under 64 bytes to std. From 64 bytes on,
/// simdutf8's SIMD validation is used. `std::str::from_utf8` runs only for
/// short non-ASCII text, and to describe an invalid value.
#[inline(always)]
pub(crate) fn utf8(v: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if v.len() < 64 {
        if is_ascii_short(v) {
            // SAFETY: every byte is ASCII (checked just above), and ASCII is UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(v) });
        }
        return std::str::from_utf8(v);
    }
    utf8_long(v)
}

/// [`utf8`] from 64 bytes on: simdutf8, and std for the error's detail.
#[inline(never)]
fn utf8_long(v: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(v) {
        Ok(s) => Ok(s),
        Err(_) => std::str::from_utf8(v),
    }
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
        Binary::Bytes(v) => utf8(v).map_err(|e| utf8_error("String", e))?.to_owned(),
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

#[inline(always)]
fn not_null<'a>(v: Option<&'a [u8]>, target: &'static str) -> Result<&'a [u8], ConvError> {
    match v {
        Some(v) => Ok(v),
        None => Err(null_error(target)),
    }
}

#[cold]
#[inline(never)]
fn null_error(target: &'static str) -> ConvError {
    ConvError::new(
        target,
        "the value is NULL; request Option<_> to accept NULL",
    )
}

#[cold]
#[inline(never)]
fn utf8_error(target: &'static str, e: std::str::Utf8Error) -> ConvError {
    ConvError::new(
        target,
        format!("the value is not valid UTF-8 ({e}); request Vec<u8> or &[u8] for binary data"),
    )
}

#[cold]
#[inline(never)]
fn int_error(v: &[u8], target: &'static str) -> ConvError {
    ConvError::new(
        target,
        format!("{} is not an integer in the range of {target}", shown(v)),
    )
}

#[cold]
#[inline(never)]
fn float_error(v: &[u8], target: &'static str) -> ConvError {
    ConvError::new(target, format!("{} is not a number", shown(v)))
}

fn shown(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned();
    if v.len() > 40 {
        format!("\"{s}…\"")
    } else {
        format!("\"{s}\"")
    }
}

/// Parses an unsigned decimal integer without allocating: 8 and then 4
/// digits at a time (SWAR), the last up to 3 one by one.
#[inline(always)]
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return parse_u64_checked(b);
    }
    // At most 19 digits: below 10^19 < 2^64, so no overflow checks.
    let mut n: u64 = 0;
    let mut rest = b;
    while let Some((eight, tail)) = rest.split_first_chunk::<8>() {
        n = n * 100_000_000 + digits8(*eight)?;
        rest = tail;
    }
    if let Some((four, tail)) = rest.split_first_chunk::<4>() {
        n = n * 10_000 + u64::from(digits4(*four)?);
        rest = tail;
    }
    for &c in rest {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

/// The value of 4 ASCII digits (most significant first), or `None` unless
/// all 4 are digits.
#[inline(always)]
fn digits4(b: [u8; 4]) -> Option<u32> {
    let x = u32::from_le_bytes(b);
    // Each byte is a digit iff its high nibble is 3 and stays 3 after adding 6.
    let hi = (x & 0xF0F0_F0F0) | ((x.wrapping_add(0x0606_0606) & 0xF0F0_F0F0) >> 4);
    if hi != 0x3333_3333 {
        return None;
    }
    let d = x & 0x0F0F_0F0F;
    let d = (d * 10 + (d >> 8)) & 0x00FF_00FF; // two 2-digit numbers
    Some((d * 100 + (d >> 16)) & 0xFFFF)
}

/// The value of 8 ASCII digits (most significant first), or `None` unless
/// all 8 are digits.
#[inline(always)]
fn digits8(b: [u8; 8]) -> Option<u64> {
    let x = u64::from_le_bytes(b);
    let hi = (x & 0xF0F0_F0F0_F0F0_F0F0)
        | ((x.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4);
    if hi != 0x3333_3333_3333_3333 {
        return None;
    }
    let d = x & 0x0F0F_0F0F_0F0F_0F0F;
    let d = (d * 10 + (d >> 8)) & 0x00FF_00FF_00FF_00FF; // four 2-digit numbers
    let d = (d * 100 + (d >> 16)) & 0x0000_FFFF_0000_FFFF; // two 4-digit numbers
    Some((d * 10_000 + (d >> 32)) & 0xFFFF_FFFF)
}

/// [`parse_u64`] for 20 digits (only some fit) and the empty string.
#[cold]
#[inline(never)]
fn parse_u64_checked(b: &[u8]) -> Option<u64> {
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
#[inline(always)]
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
            #[inline(always)]
            fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                if is_bit(column) {
                    return bit_value(v)
                        .and_then(|n| <$t>::try_from(n).ok())
                        .ok_or_else(|| ConvError::new(stringify!($t), format!("BIT value {:?} is out of the range of {}", v, stringify!($t))));
                }
                match $parse(v).and_then(|n| <$t>::try_from(n).ok()) {
                    Some(n) => Ok(n),
                    None => Err(int_error(v, stringify!($t))),
                }
            }

            #[inline(always)]
            fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                if let Some(n) = binary_int(v, column) {
                    return match <$t>::try_from(n) {
                        Ok(n) => Ok(n),
                        Err(_) => Err(range_error(&n, stringify!($t))),
                    };
                }
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

/// The value of an integer column (of its own width, signed or not as the
/// column says): the common case of [`Binary::decode`], without the second
/// dispatch on the decoded variant. `None` for any other column or width.
#[inline(always)]
fn binary_int(v: &[u8], column: &Column) -> Option<i128> {
    use ColumnType as T;
    let unsigned = column.is_unsigned();
    let t = column.type_byte();
    Some(if t == T::Tiny as u8 {
        let [b] = <[u8; 1]>::try_from(v).ok()?;
        if unsigned {
            i128::from(b)
        } else {
            i128::from(b as i8)
        }
    } else if t == T::Short as u8 || t == T::Year as u8 {
        let b = <[u8; 2]>::try_from(v).ok()?;
        if unsigned {
            i128::from(u16::from_le_bytes(b))
        } else {
            i128::from(i16::from_le_bytes(b))
        }
    } else if t == T::Long as u8 || t == T::Int24 as u8 {
        let b = <[u8; 4]>::try_from(v).ok()?;
        if unsigned {
            i128::from(u32::from_le_bytes(b))
        } else {
            i128::from(i32::from_le_bytes(b))
        }
    } else if t == T::LongLong as u8 {
        let b = <[u8; 8]>::try_from(v).ok()?;
        if unsigned {
            i128::from(u64::from_le_bytes(b))
        } else {
            i128::from(i64::from_le_bytes(b))
        }
    } else {
        return None;
    })
}

#[cold]
#[inline(never)]
fn range_error(n: &dyn std::fmt::Display, target: &'static str) -> ConvError {
    ConvError::new(target, format!("{n} is out of the range of {target}"))
}

/// A float that holds an integer exactly (what the text protocol would print without a point).
fn float_to_int(x: f64) -> Option<i128> {
    (x.fract() == 0.0 && x.abs() < 1.8e19).then_some(x as i128)
}
int_impl!(i8 => parse_i64, i16 => parse_i64, i32 => parse_i64, i64 => parse_i64,
          u8 => parse_u64, u16 => parse_u64, u32 => parse_u64, u64 => parse_u64);

/// Parses a float from its text form, correctly rounded, straight from the
/// bytes: no UTF-8 pass, and fast_float2's Eisel-Lemire parser (the same
/// algorithm as std's, which needs a `&str`) with SWAR digit parsing. What it
/// does not take goes to std's parser, so every string std accepts still is
/// (the tests check both agree).
#[inline(never)]
fn parse_float<F: fast_float2::FastFloat + std::str::FromStr>(v: &[u8]) -> Option<F> {
    match fast_float2::parse::<F, _>(v) {
        Ok(x) => Some(x),
        Err(_) => parse_float_std(v),
    }
}

#[cold]
#[inline(never)]
fn parse_float_std<F: std::str::FromStr>(v: &[u8]) -> Option<F> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

macro_rules! float_impl {
    ($($t:ty),*) => {$(
        impl<'a> FromValue<'a> for $t {
            #[inline]
            fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                match parse_float::<$t>(v) {
                    Some(x) => Ok(x),
                    None => Err(float_error(v, stringify!($t))),
                }
            }

            #[inline(always)]
            fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                // The column's own type first: one check, no second dispatch.
                if column.type_byte() == ColumnType::Double as u8 {
                    if let Ok(b) = v.try_into() {
                        return Ok(f64::from_le_bytes(b) as $t);
                    }
                } else if column.type_byte() == ColumnType::Float as u8 {
                    if let Ok(b) = v.try_into() {
                        return Ok(f32::from_le_bytes(b) as $t);
                    }
                }
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
    #[inline(always)]
    fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "&str")?;
        match utf8(v) {
            Ok(s) => Ok(s),
            Err(e) => Err(utf8_error("&str", e)),
        }
    }

    /// Strings and blobs (length-encoded values) only, as the text protocol sends them.
    #[inline(always)]
    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        match value {
            Some(_) if layout(column.type_byte()) != BinaryLayout::LenEnc => {
                Err(not_text_error::<Self>(column))
            }
            _ => Self::from_text(value, column),
        }
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
    #[inline(always)]
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        match value {
            None => Ok(None),
            Some(_) => T::from_text(value, column).map(Some),
        }
    }

    #[inline(always)]
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

    #[inline]
    fn from_binary(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "DateTime")?;
        // The column's own type first: one check, no second dispatch.
        use ColumnType as T;
        if let Some(
            T::Date | T::NewDate | T::DateTime | T::DateTime2 | T::Timestamp | T::Timestamp2,
        ) = column.column_type()
        {
            if let Some(dt) = datetime_from_wire(v) {
                return Ok(dt);
            }
        }
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
///
/// Conversion of column values to Rust types.
///
/// [`FromValue`] turns one value, borrowed from the row packet, into a Rust
/// type: numbers are parsed in place, `&str` and `&[u8]` borrow, `Option<T>`
/// maps SQL NULL to `None`.
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
mod tests;

#[cfg(test)]
mod proptests;
