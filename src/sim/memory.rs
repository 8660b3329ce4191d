//! What the simulated kernel still references, and the allocator that
//! checks every free against it.
//!
//! Each range of memory an operation hands the simulated kernel (a send's
//! bytes, a read's target, a connect's address, a published provided
//! buffer) is recorded here until the operation's last completion. A test
//! binary that installs [`CheckingAllocator`] as its global allocator has
//! every deallocation checked against those ranges: freeing memory the
//! kernel may still read or write is recorded as a violation, and the block
//! is quarantined (never handed back), so nothing the simulation reads
//! afterwards is undefined. Every other freed block is poisoned first
//! (filled with `0xA5`), so a use after free reads garbage at once instead
//! of stale, plausible bytes: the "poisoning allocator" the test suite also
//! runs under.
//!
//! The registry is a fixed table behind a mutex: recording and checking
//! never allocate (the allocator calls into it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Ranges the table can hold at once (over every simulation in the process).
const CAP: usize = 16 * 1024;
/// Violations kept per process (further ones are counted, not kept).
const VCAP: usize = 256;

/// What a referenced range is, for the violation report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    Send,
    Read,
    Connect,
    ProvidedBuffer,
    BufRingSlots,
}

impl Use {
    fn name(self) -> &'static str {
        match self {
            Use::Send => "a send's bytes",
            Use::Read => "a read's target buffer",
            Use::Connect => "a connect's address",
            Use::ProvidedBuffer => "a provided buffer published to the kernel",
            Use::BufRingSlots => "the provided-buffer ring's slots",
        }
    }
}

#[derive(Clone, Copy)]
struct Range {
    start: usize,
    end: usize,
    sim: u32,
    op: u64,
    what: Use,
    live: bool,
}

const EMPTY: Range = Range {
    start: 0,
    end: 0,
    sim: 0,
    op: 0,
    what: Use::Send,
    live: false,
};

/// A free (or reallocation) of memory the simulated kernel referenced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Violation {
    pub(crate) sim: u32,
    pub(crate) op: u64,
    pub(crate) what: Use,
    pub(crate) freed: (usize, usize),
    pub(crate) referenced: (usize, usize),
}

impl Violation {
    pub(crate) fn describe(&self) -> String {
        format!(
            "memory freed while the kernel still referenced it: {} of operation #{} \
             ({} bytes at offset {} of the freed block of {} bytes)",
            self.what.name(),
            self.op,
            self.referenced.1 - self.referenced.0,
            self.referenced.0.saturating_sub(self.freed.0),
            self.freed.1 - self.freed.0,
        )
    }
}

struct Table {
    ranges: [Range; CAP],
    /// Highest slot in use + 1.
    top: usize,
    violations: [Option<Violation>; VCAP],
    nviolations: usize,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    ranges: [EMPTY; CAP],
    top: 0,
    violations: [None; VCAP],
    nviolations: 0,
});

/// Live ranges (a fast path for frees when no simulation runs).
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Set once a [`CheckingAllocator`] has freed anything: the checks are on.
static CHECKING: AtomicBool = AtomicBool::new(false);
static NEXT_SIM: AtomicUsize = AtomicUsize::new(1);

fn table() -> std::sync::MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new simulation's id.
pub(crate) fn new_sim() -> u32 {
    NEXT_SIM.fetch_add(1, Ordering::Relaxed) as u32
}

/// True when this process frees through [`CheckingAllocator`]: only then
/// can a free of referenced memory be seen.
pub fn checking() -> bool {
    CHECKING.load(Ordering::Relaxed)
}

/// Records that simulation `sim`'s operation `op` references `[start, start + len)`.
/// Returns the slot to pass to [`release`], or `None` when the table is full
/// (the range is then simply not checked).
pub(crate) fn reference(sim: u32, op: u64, what: Use, start: usize, len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let mut t = table();
    let slot = t.ranges[..t.top]
        .iter()
        .position(|r| !r.live)
        .or_else(|| (t.top < CAP).then_some(t.top))?;
    t.ranges[slot] = Range {
        start,
        end: start + len,
        sim,
        op,
        what,
        live: true,
    };
    if slot == t.top {
        t.top += 1;
    }
    LIVE.fetch_add(1, Ordering::Relaxed);
    Some(slot)
}

/// The kernel let go of the range in `slot`.
pub(crate) fn release(slot: Option<usize>) {
    let Some(slot) = slot else { return };
    let mut t = table();
    if t.ranges[slot].live {
        t.ranges[slot].live = false;
        LIVE.fetch_sub(1, Ordering::Relaxed);
        while t.top > 0 && !t.ranges[t.top - 1].live {
            t.top -= 1;
        }
    }
}

/// The violations recorded for simulation `sim` (taken: a second call
/// returns only newer ones).
pub(crate) fn take_violations(sim: u32) -> Vec<Violation> {
    // Copied out under the lock, collected after it: a Vec that grows
    // frees, and a free takes the lock.
    let mut mine = [None; VCAP];
    {
        let mut t = table();
        for (v, m) in t.violations.iter_mut().zip(mine.iter_mut()) {
            if v.is_some_and(|v| v.sim == sim) {
                *m = v.take();
            }
        }
    }
    mine.into_iter().flatten().collect()
}

/// Checks a free of `[ptr, ptr + size)`: true (and a violation recorded)
/// when a simulated kernel references any of it.
fn referenced(ptr: usize, size: usize) -> bool {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let end = ptr + size.max(1);
    let mut t = table();
    let top = t.top;
    let mut hit = None;
    for r in &t.ranges[..top] {
        if r.live && r.start < end && ptr < r.end {
            hit = Some(*r);
            break;
        }
    }
    let Some(r) = hit else { return false };
    let v = Violation {
        sim: r.sim,
        op: r.op,
        what: r.what,
        freed: (ptr, end),
        referenced: (r.start, r.end),
    };
    if let Some(free) = t.violations.iter_mut().find(|v| v.is_none()) {
        *free = Some(v);
    }
    t.nviolations += 1;
    true
}

/// A global allocator for test binaries: the system allocator, except that
/// a free of memory a simulated kernel still references is recorded (and
/// the block kept), and every other freed block is poisoned first.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: mysql_uring::sim::CheckingAllocator = mysql_uring::sim::CheckingAllocator;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckingAllocator;

// SAFETY: every call forwards to `System` with the caller's own arguments;
// a block that is quarantined is simply never freed.
unsafe impl GlobalAlloc for CheckingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !CHECKING.load(Ordering::Relaxed) {
            CHECKING.store(true, Ordering::Relaxed);
        }
        if referenced(ptr as usize, layout.size()) {
            return; // quarantined: the kernel may still use it
        }
        // SAFETY: the block is ours to free; poisoning writes inside it.
        unsafe {
            std::ptr::write_bytes(ptr, 0xA5, layout.size());
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the layout is valid (the caller's), so is the new one.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: forwarded.
        let new = unsafe { System.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and at least this long.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
