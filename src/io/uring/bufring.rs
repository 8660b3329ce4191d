//! A provided buffer ring (`IORING_REGISTER_PBUF_RING`): buffers the kernel
//! picks from for multishot receives, handed back one by one once their bytes
//! have been copied out.
//!
//! One ring per core, shared by every socket on it. A receive completion
//! names the buffer it used; the loop copies the bytes into the socket's
//! inbox and recycles the buffer in the same turn, so a buffer is out of the
//! ring only between a completion and the end of its dispatch. The tail is
//! published once per turn, not once per buffer.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// The buffer group id of the (only) buffer ring of a ring.
pub(crate) const BGID: u16 = 0;

pub(crate) struct BufRing {
    /// `entries` ring slots, page aligned, shared with the kernel.
    slots: *mut BufRingEntry,
    layout: Layout,
    /// The buffers themselves, `entries * size` bytes.
    mem: Box<[u8]>,
    entries: u16,
    size: usize,
    /// Our copy of the tail; the kernel sees it once [`BufRing::publish`] runs.
    tail: u16,
    published: u16,
}

impl BufRing {
    /// Allocates `entries` buffers of `size` bytes (entries a power of two,
    /// at most 32768) and registers them with `submitter` as group [`BGID`].
    pub(crate) fn new(
        submitter: &io_uring::Submitter<'_>,
        entries: u16,
        size: usize,
    ) -> io::Result<BufRing> {
        if !entries.is_power_of_two() || entries > 32768 || size == 0 || size > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer ring: entries must be a power of two up to 32768 and size in 1..4 GiB",
            ));
        }
        let layout =
            Layout::from_size_align(entries as usize * std::mem::size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let slots = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if slots.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut ring = BufRing {
            slots,
            layout,
            mem: vec![0u8; entries as usize * size].into_boxed_slice(),
            entries,
            size,
            tail: 0,
            published: 0,
        };
        // SAFETY: `slots` is page aligned, `entries` long and lives until
        // Drop, which the owner runs only after unregistering (or after the
        // ring is gone); the buffers in `mem` live as long.
        unsafe { submitter.register_buf_ring_with_flags(slots as u64, entries, BGID, 0)? };
        for bid in 0..entries {
            ring.recycle(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The first `len` bytes of buffer `bid`, which the kernel filled.
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * self.size;
        let len = len.min(self.size);
        self.mem.get(start..start + len).unwrap_or(&[])
    }

    /// Gives buffer `bid` back to the kernel (visible after [`publish`](Self::publish)).
    pub(crate) fn recycle(&mut self, bid: u16) {
        if bid >= self.entries {
            return;
        }
        let mask = self.entries - 1;
        let idx = (self.tail & mask) as usize;
        // SAFETY: idx < entries; the kernel reads an entry only between the
        // published head and tail, and this one is beyond the published tail.
        let entry = unsafe { &mut *self.slots.add(idx) };
        let addr = self.mem.as_ptr() as u64 + bid as u64 * self.size as u64;
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
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
        // SAFETY: allocated in `new` with this layout; the owner unregistered
        // the ring (or dropped the io_uring) before dropping us.
        unsafe { dealloc(self.slots.cast(), self.layout) };
    }
}
