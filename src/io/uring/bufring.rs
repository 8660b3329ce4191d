//! A provided buffer ring (`IORING_REGISTER_PBUF_RING`): buffers the kernel
//! picks from for multishot receives, handed back one by one once their bytes
//! have been copied out.
//!
//! One ring per core, shared by every socket on it. A receive completion
//! names the buffer it used; the loop copies the bytes into the socket's
//! inbox and recycles the buffer, so a buffer is out of the ring only
//! between a completion and the reader taking its bytes. The tail is
//! published once per turn, not once per buffer.
//!
//! The buffers' memory is one raw allocation that the kernel writes into:
//! Rust never holds a reference into a buffer the kernel owns. A slice is
//! made only of a buffer the kernel handed back (its completion arrived and
//! it was not recycled since), and every buffer id is tracked, so one can
//! never be published twice or read while the kernel holds it.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::kernel::Kernel;

/// The buffer group id of the (only) buffer ring of a ring.
pub(crate) const BGID: u16 = 0;

pub(crate) struct BufRing {
    /// `entries` ring slots, page aligned, shared with the kernel.
    slots: *mut BufRingEntry,
    slots_layout: Layout,
    /// The buffers themselves, `entries * size` bytes, written by the kernel.
    mem: *mut u8,
    mem_layout: Layout,
    entries: u16,
    size: usize,
    /// Per buffer id: true while we hold it (the kernel gave it to a
    /// completion and it was not recycled since).
    ours: Vec<bool>,
    /// Our copy of the tail; the kernel sees it once [`BufRing::publish`] runs.
    tail: u16,
    published: u16,
}

impl BufRing {
    /// Allocates `entries` buffers of `size` bytes (entries a power of two,
    /// at most 32768) and registers them with the kernel as group [`BGID`].
    pub(crate) fn new(kernel: &mut Kernel, entries: u16, size: usize) -> io::Result<BufRing> {
        if !entries.is_power_of_two() || entries > 32768 || size == 0 || size > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer ring: entries must be a power of two up to 32768 and size in 1..4 GiB",
            ));
        }
        let slots_layout =
            Layout::from_size_align(entries as usize * std::mem::size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        let mem_layout =
            Layout::from_size_align(entries as usize * size, 64).map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size.
        let slots = unsafe { alloc_zeroed(slots_layout) }.cast::<BufRingEntry>();
        let mem = unsafe { alloc(mem_layout) };
        if slots.is_null() || mem.is_null() {
            // SAFETY: each pointer is freed only if it was allocated, with its layout.
            unsafe {
                if !slots.is_null() {
                    dealloc(slots.cast(), slots_layout);
                }
                if !mem.is_null() {
                    dealloc(mem, mem_layout);
                }
            }
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut ring = BufRing {
            slots,
            slots_layout,
            mem,
            mem_layout,
            entries,
            size,
            ours: vec![true; entries as usize],
            tail: 0,
            published: 0,
        };
        // SAFETY: `slots` is page aligned, `entries` long and lives until
        // Drop, which the reactor runs only once the kernel is done with it
        // (or never: then it is leaked); the buffers in `mem` live as long.
        unsafe { kernel.register_buf_ring(slots as u64, entries, BGID)? };
        for bid in 0..entries {
            ring.recycle(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The first `len` bytes of buffer `bid`, which a completion just
    /// handed us (empty if we do not hold it: a kernel bug, never trusted).
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        if !self.ours.get(bid as usize).copied().unwrap_or(false) {
            return &[];
        }
        let len = len.min(self.size);
        // SAFETY: bid < entries (checked by `ours`), so the range is inside
        // `mem`; the kernel is not writing this buffer (we hold it), and it
        // stays unwritten while the slice lives (recycling needs `&mut self`).
        unsafe { std::slice::from_raw_parts(self.mem.add(bid as usize * self.size), len) }
    }

    /// Marks buffer `bid` as ours: a completion handed it to us.
    pub(crate) fn taken(&mut self, bid: u16) {
        if let Some(o) = self.ours.get_mut(bid as usize) {
            *o = true;
        }
    }

    /// Gives buffer `bid` back to the kernel (visible after
    /// [`publish`](Self::publish)). A buffer we do not hold is ignored: it
    /// must never be in the ring twice.
    pub(crate) fn recycle(&mut self, bid: u16) {
        match self.ours.get_mut(bid as usize) {
            Some(o) if *o => *o = false,
            _ => return,
        }
        let mask = self.entries - 1;
        let idx = (self.tail & mask) as usize;
        let addr = self.mem as u64 + bid as u64 * self.size as u64;
        // SAFETY: idx < entries; the kernel reads an entry only between the
        // published head and tail, and this one is beyond the published tail.
        // Written through the raw pointer, never through a reference the
        // kernel could race.
        unsafe {
            let entry = self.slots.add(idx);
            (*entry).set_addr(addr);
            (*entry).set_len(self.size as u32);
            (*entry).set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the recycled buffers to the kernel.
    pub(crate) fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        // SAFETY: the tail field shares the first slot's reserved bytes (the
        // kernel's layout); it is written atomically with release ordering so
        // the kernel sees the entries written before it.
        unsafe {
            let tail = BufRingEntry::tail(self.slots) as *mut u16;
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the reactor drops
        // the ring only after the kernel let go of it (else it leaks it).
        unsafe {
            dealloc(self.slots.cast(), self.slots_layout);
            dealloc(self.mem, self.mem_layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> (super::super::kernel::Kernel, BufRing) {
        let r = io_uring::IoUring::new(8).expect("io_uring");
        let mut k = super::super::kernel::Kernel::Ring(r);
        let b = BufRing::new(&mut k, 4, 64).expect("buffer ring");
        (k, b)
    }

    #[test]
    fn a_buffer_is_in_the_ring_at_most_once() {
        let (_k, mut b) = ring();
        let tail = b.tail;
        // Every buffer is the kernel's: recycling one again is refused.
        b.recycle(2);
        assert_eq!(
            b.tail, tail,
            "a buffer the kernel holds was published again"
        );
        // Handed to us by a completion, it goes back once.
        b.taken(2);
        b.recycle(2);
        b.recycle(2);
        assert_eq!(b.tail, tail.wrapping_add(1));
        assert!(b.ours.iter().all(|o| !o));
    }

    #[test]
    fn a_buffer_the_kernel_holds_is_never_read() {
        let (_k, mut b) = ring();
        assert!(b.get(1, 10).is_empty(), "read while the kernel holds it");
        b.taken(1);
        assert_eq!(b.get(1, 10).len(), 10);
        assert_eq!(b.get(1, 1000).len(), 64, "never past the buffer");
        assert!(b.get(99, 10).is_empty(), "no such buffer");
    }
}
