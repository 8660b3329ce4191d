//! Wire basics: byte queues, length-encoded integers and strings, a payload
//! reader, outgoing packet framing and incoming packet assembly (with
//! sequence-id and size checks).

/// Largest payload of one physical packet; a payload this long continues in
/// the next packet.
pub const MAX_CHUNK: usize = 0xFF_FFFF;

/// A FIFO of bytes: appended at the back, taken from the front.
#[derive(Debug, Default)]
pub struct ByteQueue {
    buf: Vec<u8>,
    pos: usize,
}

impl ByteQueue {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The held bytes, oldest first.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Appends bytes at the back.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Removes and returns up to `max` bytes from the front.
    pub fn take(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.len());
        let v = self.buf[self.pos..self.pos + n].to_vec();
        self.consume(n);
        v
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xFC);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 1 << 24 {
        out.push(0xFD);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xFE);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_lenenc(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reading a payload ran past its end or met an invalid encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short(pub &'static str);

/// A cursor over a payload.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Short> {
        if self.remaining() < n {
            return Err(Short(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Short> {
        Ok(self.take(1, what)?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Short> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// A little-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Short> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Short> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A length-encoded integer (0xFB, NULL, and 0xFF are invalid here).
    pub fn lenenc(&mut self, what: &'static str) -> Result<u64, Short> {
        match self.u8(what)? {
            b @ 0..=250 => Ok(u64::from(b)),
            0xFC => Ok(u64::from(self.u16(what)?)),
            0xFD => {
                let b = self.take(3, what)?;
                Ok(u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16)
            }
            0xFE => self.u64(what),
            _ => Err(Short(what)),
        }
    }

    /// A length-encoded string.
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], Short> {
        let n = self.lenenc(what)?;
        let n = usize::try_from(n).map_err(|_| Short(what))?;
        self.take(n, what)
    }

    /// A NUL-terminated string (without the NUL).
    pub fn nul_str(&mut self, what: &'static str) -> Result<&'a [u8], Short> {
        let rest = &self.buf[self.pos..];
        let end = rest.iter().position(|&b| b == 0).ok_or(Short(what))?;
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// Frames `payload` as packets starting at sequence id `*seq` (advanced past
/// the last packet written), splitting at [`MAX_CHUNK`]: a payload whose
/// length is a multiple of it ends with an empty packet.
pub fn put_packet(out: &mut Vec<u8>, seq: &mut u8, payload: &[u8]) {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_CHUNK);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        out.push(*seq);
        *seq = seq.wrapping_add(1);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if n < MAX_CHUNK {
            break;
        }
    }
}

/// Why an incoming packet was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsmError {
    /// A packet carried the wrong sequence id.
    OutOfOrder {
        /// The id expected.
        expected: u8,
        /// The id received.
        got: u8,
    },
    /// The logical packet is longer than `max_allowed_packet`.
    TooBig,
}

/// Assembles logical packets (payloads possibly spanning several physical
/// packets) from a byte stream, checking sequence ids.
#[derive(Debug, Default)]
pub struct Assembler {
    hdr: [u8; 4],
    hdr_len: usize,
    body_left: usize,
    last_len: usize,
    in_body: bool,
    started: bool,
    next_seq: u8,
    payload: Vec<u8>,
}

impl Assembler {
    /// True while a logical packet is partly read.
    pub fn in_progress(&self) -> bool {
        self.started || self.hdr_len > 0
    }

    /// Forgets a partly read packet.
    pub fn reset(&mut self) {
        *self = Assembler::default();
    }

    /// Moves bytes from `input` into the packet being assembled. Returns the
    /// payload and the sequence id that follows its last packet once complete.
    /// The first packet must carry `expect_seq`, continuations the ids after.
    pub fn pull(
        &mut self,
        input: &mut ByteQueue,
        expect_seq: u8,
        max_allowed: usize,
    ) -> Result<Option<(Vec<u8>, u8)>, AsmError> {
        loop {
            if !self.in_body {
                let need = 4 - self.hdr_len;
                let n = need.min(input.len());
                self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&input.as_slice()[..n]);
                input.consume(n);
                self.hdr_len += n;
                if self.hdr_len < 4 {
                    return Ok(None);
                }
                self.hdr_len = 0;
                let len = u32::from_le_bytes([self.hdr[0], self.hdr[1], self.hdr[2], 0]) as usize;
                let seq = self.hdr[3];
                let expected = if self.started {
                    self.next_seq
                } else {
                    expect_seq
                };
                if seq != expected {
                    return Err(AsmError::OutOfOrder { expected, got: seq });
                }
                if self.payload.len() + len > max_allowed {
                    return Err(AsmError::TooBig);
                }
                self.started = true;
                self.next_seq = seq.wrapping_add(1);
                self.in_body = true;
                self.body_left = len;
                self.last_len = len;
                self.payload.reserve(len);
            }
            let n = self.body_left.min(input.len());
            self.payload.extend_from_slice(&input.as_slice()[..n]);
            input.consume(n);
            self.body_left -= n;
            if self.body_left > 0 {
                return Ok(None);
            }
            self.in_body = false;
            if self.last_len == MAX_CHUNK {
                continue;
            }
            let next = self.next_seq;
            let payload = std::mem::take(&mut self.payload);
            self.reset();
            return Ok(Some((payload, next)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trip() {
        for v in [
            0u64,
            250,
            251,
            65535,
            65536,
            (1 << 24) - 1,
            1 << 24,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_lenenc(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.lenenc("x").unwrap(), v);
            assert!(r.is_empty());
            for cut in 0..b.len() {
                assert!(Reader::new(&b[..cut]).lenenc("x").is_err());
            }
        }
        assert!(Reader::new(&[0xFB]).lenenc("x").is_err());
    }

    #[test]
    fn framing_splits_and_reassembles() {
        for len in [0, 1, MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1, 2 * MAX_CHUNK] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            let mut seq = 0;
            put_packet(&mut out, &mut seq, &payload);
            assert_eq!(seq as usize, len / MAX_CHUNK + 1);
            let mut q = ByteQueue::default();
            q.push(&out);
            let mut a = Assembler::default();
            let (p, next) = a.pull(&mut q, 0, usize::MAX).unwrap().unwrap();
            assert_eq!(p.len(), payload.len());
            assert!(p == payload);
            assert_eq!(next, seq);
            assert_eq!(q.len(), 0);
        }
    }

    #[test]
    fn assembler_checks_seq_and_size() {
        let mut q = ByteQueue::default();
        q.push(&[1, 0, 0, 3, 0x0E]);
        let mut a = Assembler::default();
        assert_eq!(
            a.pull(&mut q, 0, 100),
            Err(AsmError::OutOfOrder {
                expected: 0,
                got: 3
            })
        );
        let mut q = ByteQueue::default();
        q.push(&[200, 0, 0, 0]);
        assert_eq!(
            Assembler::default().pull(&mut q, 0, 100),
            Err(AsmError::TooBig)
        );
    }

    #[test]
    fn assembler_byte_by_byte() {
        let mut out = Vec::new();
        let mut seq = 0;
        put_packet(&mut out, &mut seq, b"\x03SELECT 1");
        let mut a = Assembler::default();
        let mut q = ByteQueue::default();
        for (i, b) in out.iter().enumerate() {
            q.push(&[*b]);
            let r = a.pull(&mut q, 0, 100).unwrap();
            assert_eq!(r.is_some(), i == out.len() - 1);
            assert_eq!(a.in_progress(), i != out.len() - 1);
        }
    }
}
