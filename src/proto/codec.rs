//! Bounds-checked reading and writing of MySQL wire primitives.
//!
//! [`Reader`] borrows a packet and never panics: every read returns
//! [`ProtoError::Truncated`] when the packet is too short.

use super::error::{ProtoError, ProtoResult};

/// A cursor over a borrowed packet payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset from the start of the packet.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Looks at the next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> ProtoResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(ProtoError::Truncated { what })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(ProtoError::Truncated { what })?;
        self.pos = end;
        Ok(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> ProtoResult<()> {
        self.take(n, what).map(|_| ())
    }

    /// Reads everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        s
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> ProtoResult<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(ProtoError::Truncated { what })?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self, what: &'static str) -> ProtoResult<u16> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    /// Reads a little-endian 3-byte integer.
    pub fn u24(&mut self, what: &'static str) -> ProtoResult<u32> {
        let s = self.take(3, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], 0]))
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self, what: &'static str) -> ProtoResult<u32> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self, what: &'static str) -> ProtoResult<u64> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a length-encoded integer. `0xFB` (NULL) and `0xFF` are rejected here;
    /// callers that allow NULL check for it first.
    pub fn lenenc_int(&mut self, what: &'static str) -> ProtoResult<u64> {
        match self.u8(what)? {
            b @ 0..=0xFA => Ok(u64::from(b)),
            0xFC => self.u16(what).map(u64::from),
            0xFD => self.u24(what).map(u64::from),
            0xFE => self.u64(what),
            b => Err(ProtoError::Invalid {
                what,
                detail: format!("0x{b:02x} is not a length-encoded integer prefix"),
            }),
        }
    }

    /// Reads a length-encoded string.
    pub fn lenenc_bytes(&mut self, what: &'static str) -> ProtoResult<&'a [u8]> {
        let len = self.lenenc_int(what)?;
        let len = usize::try_from(len).map_err(|_| ProtoError::Truncated { what })?;
        self.take(len, what)
    }

    /// Reads a NUL-terminated string (without the NUL).
    pub fn null_terminated(&mut self, what: &'static str) -> ProtoResult<&'a [u8]> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(ProtoError::Truncated { what })?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    /// Fails with [`ProtoError::TrailingBytes`] unless every byte was read.
    pub fn finish(&self, what: &'static str) -> ProtoResult<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::TrailingBytes {
                what,
                extra: self.remaining(),
            })
        }
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    if v < 0xFB {
        out.push(v as u8);
    } else if v <= 0xFFFF {
        out.push(0xFC);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= 0xFF_FFFF {
        out.push(0xFD);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xFE);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, s: &[u8]) {
    put_lenenc_int(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends a NUL-terminated string. Interior NULs are the caller's concern:
/// use [`has_nul`] to reject them first.
pub fn put_null_terminated(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

/// True when `s` contains a NUL byte (which would truncate a NUL-terminated field).
pub fn has_nul(s: &[u8]) -> bool {
    s.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trip_at_every_boundary() {
        for v in [
            0u64,
            1,
            0xFA,
            0xFB,
            0xFC,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.lenenc_int("v").unwrap(), v, "value {v:#x}");
            r.finish("v").unwrap();
        }
    }

    #[test]
    fn lenenc_widths() {
        let mut out = Vec::new();
        put_lenenc_int(&mut out, 0xFA);
        assert_eq!(out, [0xFA]);
        out.clear();
        put_lenenc_int(&mut out, 0xFB);
        assert_eq!(out, [0xFC, 0xFB, 0x00]);
        out.clear();
        put_lenenc_int(&mut out, 0x10000);
        assert_eq!(out, [0xFD, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn truncated_reads_error_instead_of_panicking() {
        let mut r = Reader::new(&[0xFC, 0x01]);
        assert_eq!(r.lenenc_int("x"), Err(ProtoError::Truncated { what: "x" }));
        let mut r = Reader::new(&[0x05, b'a', b'b']);
        assert!(r.lenenc_bytes("s").is_err());
        let mut r = Reader::new(b"abc");
        assert!(r.null_terminated("s").is_err());
        let mut r = Reader::new(&[]);
        assert!(r.u8("b").is_err());
        // A huge announced length must not overflow.
        let mut r = Reader::new(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1]);
        assert!(r.lenenc_bytes("s").is_err());
    }

    #[test]
    fn invalid_prefixes_are_rejected() {
        assert!(Reader::new(&[0xFB]).lenenc_int("x").is_err());
        assert!(Reader::new(&[0xFF]).lenenc_int("x").is_err());
    }

    #[test]
    fn null_terminated_and_finish() {
        let mut r = Reader::new(b"root\0rest");
        assert_eq!(r.null_terminated("u").unwrap(), b"root");
        assert_eq!(
            r.finish("u"),
            Err(ProtoError::TrailingBytes {
                what: "u",
                extra: 4
            })
        );
        assert_eq!(r.rest(), b"rest");
        r.finish("u").unwrap();
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lenenc_int_round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, v);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.lenenc_int("v").unwrap(), v);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn lenenc_bytes_round_trip(s in prop::collection::vec(any::<u8>(), 0..70_000)) {
            let mut out = Vec::new();
            put_lenenc_bytes(&mut out, &s);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.lenenc_bytes("s").unwrap(), &s[..]);
            prop_assert!(r.is_empty());
        }
    }
}
