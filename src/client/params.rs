//! Parameters taken on the caller's thread: whatever the caller passed
//! (borrowed or not) is copied into one owned value before the call leaves,
//! so a [`Client`](crate::Client) call borrows nothing and the core only
//! encodes bytes it owns.

use smallvec::SmallVec;

use crate::params::{Params, ValueRef};
use crate::proto::temporal::{Date, DateTime, Time};

/// One parameter; text and bytes are ranges of [`OwnedParams::bytes`].
#[derive(Debug, Clone, Copy)]
enum Slot {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    Text(u32, u32),
    Bytes(u32, u32),
    Date(Date),
    Time(Time),
    DateTime(DateTime),
}

/// Owned copies of a call's parameters, kinds kept (text stays text, bytes
/// stay bytes). Up to 4 values and 64 bytes of text live inline: a point
/// select's parameters allocate nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedParams {
    slots: SmallVec<[Slot; 4]>,
    bytes: SmallVec<[u8; 64]>,
}

impl OwnedParams {
    /// Copies `p`'s values.
    pub(crate) fn new(p: &(impl Params + ?Sized)) -> OwnedParams {
        let n = p.len();
        let mut o = OwnedParams {
            slots: SmallVec::with_capacity(n),
            bytes: SmallVec::new(),
        };
        for i in 0..n {
            let s = match p.value(i) {
                ValueRef::Null => Slot::Null,
                ValueRef::Int(v) => Slot::Int(v),
                ValueRef::UInt(v) => Slot::UInt(v),
                ValueRef::Float(v) => Slot::Float(v),
                ValueRef::Double(v) => Slot::Double(v),
                ValueRef::Text(t) => {
                    let (a, b) = o.push(t.as_bytes());
                    Slot::Text(a, b)
                }
                ValueRef::Bytes(t) => {
                    let (a, b) = o.push(t);
                    Slot::Bytes(a, b)
                }
                ValueRef::Date(d) => Slot::Date(d),
                ValueRef::Time(t) => Slot::Time(t),
                ValueRef::DateTime(t) => Slot::DateTime(t),
            };
            o.slots.push(s);
        }
        o
    }

    fn push(&mut self, b: &[u8]) -> (u32, u32) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        // Parameters beyond 4 GiB cannot be sent anyway (the server's
        // max_allowed_packet is at most 1 GiB); saturate, and the server
        // refuses the statement.
        (
            u32::try_from(start).unwrap_or(u32::MAX),
            u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
        )
    }

    fn range(&self, a: u32, b: u32) -> &[u8] {
        self.bytes.get(a as usize..b as usize).unwrap_or_default()
    }
}

impl Params for OwnedParams {
    fn len(&self) -> usize {
        self.slots.len()
    }

    fn value(&self, i: usize) -> ValueRef<'_> {
        match self.slots.get(i) {
            None | Some(Slot::Null) => ValueRef::Null,
            Some(Slot::Int(v)) => ValueRef::Int(*v),
            Some(Slot::UInt(v)) => ValueRef::UInt(*v),
            Some(Slot::Float(v)) => ValueRef::Float(*v),
            Some(Slot::Double(v)) => ValueRef::Double(*v),
            Some(Slot::Text(a, b)) => {
                let t = self.range(*a, *b);
                // Copied from a `&str` in `new`; checked again rather than
                // trusted, at the cost of one pass over the text.
                match std::str::from_utf8(t) {
                    Ok(s) => ValueRef::Text(s),
                    Err(_) => ValueRef::Bytes(t),
                }
            }
            Some(Slot::Bytes(a, b)) => ValueRef::Bytes(self.range(*a, *b)),
            Some(Slot::Date(d)) => ValueRef::Date(*d),
            Some(Slot::Time(t)) => ValueRef::Time(*t),
            Some(Slot::DateTime(t)) => ValueRef::DateTime(*t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_bytes_survive_the_copy() {
        let name = String::from("ada");
        let blob = vec![0u8, 0xFF, 7];
        let p = OwnedParams::new(&(
            name.as_str(),
            &blob[..],
            7u64,
            -3i32,
            None::<i8>,
            2.5f64,
            "",
        ));
        drop((name, blob));
        assert_eq!(p.len(), 7);
        assert_eq!(p.value(0), ValueRef::Text("ada"));
        assert_eq!(p.value(1), ValueRef::Bytes(&[0, 0xFF, 7]));
        assert_eq!(p.value(2), ValueRef::UInt(7));
        assert_eq!(p.value(3), ValueRef::Int(-3));
        assert_eq!(p.value(4), ValueRef::Null);
        assert_eq!(p.value(5), ValueRef::Double(2.5));
        assert_eq!(p.value(6), ValueRef::Text(""));
        assert_eq!(p.value(7), ValueRef::Null);
        let long = "x".repeat(1000);
        let p = OwnedParams::new(&[long.as_str(), "y"]);
        assert_eq!(p.value(0), ValueRef::Text(long.as_str()));
        assert_eq!(p.value(1), ValueRef::Text("y"));
    }
}
