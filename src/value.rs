//! Conversion of column values to Rust types.
//!
//! [`FromValue`] turns one value, borrowed from the row packet, into a Rust
//! type: numbers are parsed in place, `&str` and `&[u8]` borrow, `Option<T>`
//! maps SQL NULL to `None`.

use bytes::Bytes;

use crate::column::Column;

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
    fn new(target: &'static str, reason: impl Into<String>) -> Self {
        ConvError {
            target,
            reason: reason.into(),
        }
    }
}

/// A Rust type that a column value converts to.
pub trait FromValue<'a>: Sized {
    /// Converts a text-protocol value; `None` is SQL NULL.
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError>;
}

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
            fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
                let v = not_null(value, stringify!($t))?;
                $parse(v)
                    .and_then(|n| <$t>::try_from(n).ok())
                    .ok_or_else(|| ConvError::new(stringify!($t), format!("{} is not an integer in the range of {}", shown(v), stringify!($t))))
            }
        }
    )*};
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
        }
    )*};
}
float_impl!(f32, f64);

impl<'a> FromValue<'a> for bool {
    fn from_text(value: Option<&'a [u8]>, _column: &Column) -> Result<Self, ConvError> {
        let v = not_null(value, "bool")?;
        match parse_i64(v) {
            Some(n) => Ok(n != 0),
            None => Err(ConvError::new(
                "bool",
                format!("{} is not 0 or 1", shown(v)),
            )),
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
}

impl<'a, T: FromValue<'a>> FromValue<'a> for Option<T> {
    #[inline]
    fn from_text(value: Option<&'a [u8]>, column: &Column) -> Result<Self, ConvError> {
        match value {
            None => Ok(None),
            Some(_) => T::from_text(value, column).map(Some),
        }
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
