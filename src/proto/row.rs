//! Text-protocol rows: locating each value inside the row packet.

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
    #[inline]
    pub(crate) fn new(start: u32, len: u32) -> FieldRange {
        FieldRange { start, len }
    }

    /// True for NULL.
    #[inline]
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

/// Reads the length-encoded length of the value at `pos`: the value's start
/// and length. The length is not checked against the packet's end.
#[inline]
pub(crate) fn lenenc_len(
    payload: &[u8],
    pos: usize,
    what: &'static str,
) -> ProtoResult<(usize, usize)> {
    match payload.get(pos) {
        Some(&b @ 0..=0xFA) => Ok((pos + 1, usize::from(b))),
        b => lenenc_len_long(payload, pos, b.copied(), what),
    }
}

/// [`lenenc_len`] for the 2-, 3- and 8-byte forms, and errors.
#[cold]
fn lenenc_len_long(
    payload: &[u8],
    pos: usize,
    b: Option<u8>,
    what: &'static str,
) -> ProtoResult<(usize, usize)> {
    let width = match b {
        None => return Err(ProtoError::Truncated { what }),
        Some(0xFC) => 2,
        Some(0xFD) => 3,
        Some(0xFE) => 8,
        Some(b) => {
            return Err(ProtoError::Invalid {
                what,
                detail: format!("0x{b:02x} is not a length-encoded integer prefix"),
            });
        }
    };
    let bytes = payload
        .get(pos + 1..pos + 1 + width)
        .ok_or(ProtoError::Truncated { what })?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(bytes);
    // A length beyond the packet (under 4 GiB) is caught by the caller.
    let len = usize::try_from(u64::from_le_bytes(le)).unwrap_or(usize::MAX);
    Ok((pos + 1 + width, len))
}

/// How many ranges the row decoders collect on the stack before handing
/// them to the output in one `extend` (a row of up to this many columns
/// costs one `extend`: no capacity check per value).
pub(crate) const BATCH: usize = 16;
// The binary decoder reads a batch's NULL bits from one u32 at any bit offset.
const _: () = assert!(BATCH <= 24);

/// Locates the `columns` values of a text row, appending one range per value.
///
/// A value is a length-encoded string or `0xFB` for NULL. Strings whose length
/// prefix is `0xFC`, `0xFD` or `0xFE` are ordinary values here: only the
/// result-set state machine decides what is a terminator. Fails unless the row
/// holds exactly `columns` values; then `out` may hold some of the ranges.
///
/// One pass over the length prefixes into a stack buffer, appended to `out`
/// with one [`Extend::extend`] per 16 values.
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
    let mut pos = 0;
    let mut left = columns;
    let mut buf = [FieldRange::NULL; BATCH];
    while left > 0 {
        let n = left.min(BATCH);
        for slot in &mut buf[..n] {
            if payload.get(pos) == Some(&0xFB) {
                pos += 1;
                *slot = FieldRange::NULL;
                continue;
            }
            let (start, len) = lenenc_len(payload, pos, "row value")?;
            // `start` is within the packet: the prefix bytes were there.
            if len > payload.len() - start {
                return Err(ProtoError::Truncated { what: "row value" });
            }
            pos = start + len;
            // Both fit in u32: the packet is under 4 GiB.
            *slot = FieldRange::new(start as u32, len as u32);
        }
        out.extend(buf[..n].iter().copied());
        left -= n;
    }
    if pos != payload.len() {
        return Err(ProtoError::TrailingBytes {
            what: "row",
            extra: payload.len() - pos,
        });
    }
    Ok(())
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
    fn every_truncation_is_an_error() {
        let mut p = Vec::new();
        put_lenenc_bytes(&mut p, b"x");
        p.push(0xFB);
        put_lenenc_bytes(&mut p, &[7; 300]);
        put_lenenc_bytes(&mut p, &[8; 70_000]);
        let mut f = Vec::new();
        text_row_fields(&p, 4, &mut f).unwrap();
        for cut in 0..p.len() {
            f.clear();
            assert!(text_row_fields(&p[..cut], 4, &mut f).is_err(), "{cut}");
        }
    }

    #[test]
    fn huge_and_invalid_lengths_are_errors() {
        let mut f = Vec::new();
        let mut p = vec![0xFE];
        p.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(text_row_fields(&p, 1, &mut f).is_err());
        assert!(text_row_fields(&[0xFF, 0, 0], 1, &mut f).is_err());
        assert!(text_row_fields(&[0xFC, 1], 1, &mut f).is_err());
    }

    #[test]
    fn fills_a_smallvec_past_its_inline_capacity() {
        let mut p = Vec::new();
        for i in 0..20u8 {
            put_lenenc_bytes(&mut p, &[i; 3]);
        }
        let mut f = crate::row::Fields::new();
        text_row_fields(&p, 20, &mut f).unwrap();
        assert_eq!(f.len(), 20);
        assert_eq!(f[19].get(&p), Some(&[19u8; 3][..]));
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
    use crate::proto::codec::{Reader, put_lenenc_bytes};
    use proptest::prelude::*;

    /// The straightforward decoder (one `Reader` call per value) that the
    /// single-pass one replaced: the reference the proptests compare with.
    fn reference(payload: &[u8], columns: usize) -> Option<Vec<FieldRange>> {
        let mut r = Reader::new(payload);
        let mut out = Vec::new();
        for _ in 0..columns {
            if r.peek() == Some(0xFB) {
                r.skip(1, "").ok()?;
                out.push(FieldRange::NULL);
                continue;
            }
            let v = r.lenenc_bytes("").ok()?;
            out.push(FieldRange::new((r.pos() - v.len()) as u32, v.len() as u32));
        }
        r.finish("").ok()?;
        Some(out)
    }

    proptest! {
        /// On any bytes, the single-pass decoder agrees with the reference:
        /// the same ranges, or an error for both, and never a panic.
        #[test]
        fn agrees_with_reference(p in prop::collection::vec(prop_oneof![any::<u8>(), 0xFAu8..], 0..80), columns in 0usize..10) {
            let mut f = Vec::new();
            let got = text_row_fields(&p, columns, &mut f).ok().map(|()| f);
            prop_assert_eq!(got, reference(&p, columns));
        }

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
