//! Text-protocol rows: locating each value inside the row packet.

use super::codec::Reader;
use super::error::{ProtoError, ProtoResult};

/// Where one value lies in a row packet; `NULL` has no range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRange {
    start: u32,
    len: u32,
}

impl FieldRange {
    /// The SQL NULL marker.
    pub const NULL: FieldRange = FieldRange {
        start: u32::MAX,
        len: 0,
    };

    /// A value of `len` bytes at `start` (callers check both fit in the packet).
    pub(crate) fn new(start: u32, len: u32) -> FieldRange {
        FieldRange { start, len }
    }

    /// True for NULL.
    pub fn is_null(self) -> bool {
        self.start == u32::MAX
    }

    /// The value's bytes within `packet`, or `None` for NULL.
    #[inline]
    pub fn get(self, packet: &[u8]) -> Option<&[u8]> {
        if self.is_null() {
            None
        } else {
            packet.get(self.start as usize..self.start as usize + self.len as usize)
        }
    }
}

/// Locates the `columns` values of a text row, appending one range per value.
///
/// A value is a length-encoded string or `0xFB` for NULL. Strings whose length
/// prefix is `0xFC`, `0xFD` or `0xFE` are ordinary values here: only the
/// result-set state machine decides what is a terminator. Fails unless the row
/// holds exactly `columns` values.
pub fn text_row_fields(
    payload: &[u8],
    columns: usize,
    out: &mut impl Extend<FieldRange>,
) -> ProtoResult<()> {
    if payload.len() >= u32::MAX as usize {
        return Err(ProtoError::Invalid {
            what: "row",
            detail: "longer than 4 GiB".into(),
        });
    }
    let mut r = Reader::new(payload);
    for _ in 0..columns {
        if r.peek() == Some(0xFB) {
            r.skip(1, "row NULL")?;
            out.extend(Some(FieldRange::NULL));
            continue;
        }
        let v = r.lenenc_bytes("row value")?;
        let start = (r.pos() - v.len()) as u32;
        out.extend(Some(FieldRange {
            start,
            len: v.len() as u32,
        }));
    }
    r.finish("row")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::codec::put_lenenc_bytes;

    #[test]
    fn values_and_nulls() {
        let mut p = Vec::new();
        put_lenenc_bytes(&mut p, b"42");
        p.push(0xFB);
        put_lenenc_bytes(&mut p, b"");
        let mut f = Vec::new();
        text_row_fields(&p, 3, &mut f).unwrap();
        assert_eq!(f[0].get(&p), Some(&b"42"[..]));
        assert_eq!(f[1].get(&p), None);
        assert_eq!(f[2].get(&p), Some(&b""[..]));
    }

    #[test]
    fn long_strings_with_marker_like_prefixes() {
        // 300 bytes: prefix 0xFC; 70000 bytes: prefix 0xFD.
        let a = vec![b'a'; 300];
        let b = vec![b'b'; 70000];
        let mut p = Vec::new();
        put_lenenc_bytes(&mut p, &a);
        put_lenenc_bytes(&mut p, &b);
        assert_eq!(p[0], 0xFC);
        assert_eq!(p[303], 0xFD);
        let mut f = Vec::new();
        text_row_fields(&p, 2, &mut f).unwrap();
        assert_eq!(f[0].get(&p).unwrap(), &a[..]);
        assert_eq!(f[1].get(&p).unwrap(), &b[..]);
    }

    #[test]
    fn wrong_column_count_is_an_error() {
        let mut p = Vec::new();
        put_lenenc_bytes(&mut p, b"1");
        put_lenenc_bytes(&mut p, b"2");
        let mut f = Vec::new();
        assert!(text_row_fields(&p, 1, &mut f).is_err());
        f.clear();
        assert!(text_row_fields(&p, 3, &mut f).is_err());
        f.clear();
        assert!(text_row_fields(&[0xFF], 1, &mut f).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::proto::codec::put_lenenc_bytes;
    use proptest::prelude::*;

    proptest! {
        /// Encoding values (None = NULL) as a text row and locating them gives the values back.
        #[test]
        fn text_row_round_trip(values in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..300)), 1..20)) {
            let mut p = Vec::new();
            for v in &values {
                match v {
                    None => p.push(0xFB),
                    Some(b) => put_lenenc_bytes(&mut p, b),
                }
            }
            let mut f = Vec::new();
            text_row_fields(&p, values.len(), &mut f).unwrap();
            let got: Vec<Option<Vec<u8>>> = f.iter().map(|r| r.get(&p).map(<[u8]>::to_vec)).collect();
            prop_assert_eq!(got, values);
        }
    }
}
