//! What a run counts, as sysbench counts it: events, reads, writes, other,
//! ignored errors and reconnects, and event latencies in sysbench's
//! histogram (1024 logarithmic buckets from 0.001 to 100,000 ms), from which
//! its percentiles and its printed histogram come.
//!
//! Every core's counters are atomics written by that core's thread alone
//! (plain load + store, no read-modify-write) and read by the reporting
//! thread for the interval lines.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets of the latency histogram.
pub const BUCKETS: usize = 1024;
/// The smallest latency the histogram tells apart, in ms.
const MIN_MS: f64 = 1e-3;
/// The largest, in ms.
const MAX_MS: f64 = 1e5;

/// `ln(MIN_MS)`: the first bucket's log value.
fn deduct() -> f64 {
    MIN_MS.ln()
}

/// Buckets per unit of `ln(ms)`.
fn mult() -> f64 {
    (BUCKETS - 1) as f64 / (MAX_MS.ln() - deduct())
}

/// The bucket of a latency of `ms` milliseconds (the nearest, clamped).
pub fn bucket(ms: f64) -> usize {
    let i = ((ms.max(f64::MIN_POSITIVE).ln() - deduct()) * mult() + 0.5).floor();
    if i < 0.0 {
        0
    } else {
        (i as usize).min(BUCKETS - 1)
    }
}

/// The latency (ms) bucket `i` stands for.
pub fn bucket_value(i: usize) -> f64 {
    (i as f64 / mult() + deduct()).exp()
}

/// The `pct` percentile (ms) of the latencies counted in `counts`, as
/// sysbench computes it: the value of the first bucket where the running
/// count reaches `round(n * pct / 100)`.
pub fn percentile(counts: &[u64], pct: f64) -> f64 {
    let n: u64 = counts.iter().sum();
    let nmax = (n as f64 * pct / 100.0 + 0.5).floor() as u64;
    let mut cur = 0;
    for (i, c) in counts.iter().enumerate() {
        cur += c;
        if cur >= nmax {
            return bucket_value(i);
        }
    }
    bucket_value(counts.len().saturating_sub(1))
}

/// sysbench's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    pub reads: u64,
    pub writes: u64,
    pub other: u64,
    pub errors: u64,
    pub reconnects: u64,
}

impl Counts {
    /// Queries: reads + writes + other.
    pub fn queries(&self) -> u64 {
        self.reads + self.writes + self.other
    }

    /// `self - earlier`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            events: self.events - earlier.events,
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            other: self.other - earlier.other,
            errors: self.errors - earlier.errors,
            reconnects: self.reconnects - earlier.reconnects,
        }
    }

    /// Adds `o`.
    pub fn add(&mut self, o: &Counts) {
        self.events += o.events;
        self.reads += o.reads;
        self.writes += o.writes;
        self.other += o.other;
        self.errors += o.errors;
        self.reconnects += o.reconnects;
    }
}

/// Which counter a query result goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Event = 0,
    /// A statement that returned a result set.
    Read = 1,
    /// One without a result set that changed rows.
    Write = 2,
    /// One that changed none (BEGIN, COMMIT, an UPDATE of no row).
    Other = 3,
    /// A failed statement (ignored or not).
    Error = 4,
    Reconnect = 5,
}

/// One core's live counters, latency buckets and gauges.
#[derive(Debug)]
pub struct CoreStats {
    counters: [AtomicU64; 6],
    buckets: Box<[AtomicU64]>,
    /// Connections still running events.
    pub live: AtomicU64,
    /// `--rate`: events due but not yet started.
    pub queue: AtomicU64,
    /// `--rate`: events in progress.
    pub running: AtomicU64,
}

impl Default for CoreStats {
    fn default() -> Self {
        CoreStats {
            counters: Default::default(),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            live: AtomicU64::new(0),
            queue: AtomicU64::new(0),
            running: AtomicU64::new(0),
        }
    }
}

/// Adds `n` to a counter only one thread writes.
#[inline]
fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl CoreStats {
    /// Counts one (on the core's own thread only).
    #[inline]
    pub fn count(&self, c: Counter) {
        bump(&self.counters[c as usize], 1);
    }

    /// Counts one event of `ms` milliseconds (on the core's own thread only).
    #[inline]
    pub fn event(&self, ms: f64) {
        bump(&self.buckets[bucket(ms)], 1);
        self.count(Counter::Event);
    }

    /// Sets a gauge (on the core's own thread only).
    #[inline]
    pub fn gauge(a: &AtomicU64, v: u64) {
        a.store(v, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        let c = |i: usize| self.counters[i].load(Ordering::Relaxed);
        Counts {
            events: c(0),
            reads: c(1),
            writes: c(2),
            other: c(3),
            errors: c(4),
            reconnects: c(5),
        }
    }

    /// Adds the latency buckets into `into`.
    pub fn add_buckets(&self, into: &mut [u64]) {
        for (o, b) in into.iter_mut().zip(self.buckets.iter()) {
            *o += b.load(Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_sysbenchs() {
        // 1024 buckets from 0.001 ms to 100000 ms, log-spaced.
        assert!((bucket_value(0) - 0.001).abs() < 1e-12);
        assert!((bucket_value(BUCKETS - 1) - 1e5).abs() < 1e-6);
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(1e9), BUCKETS - 1);
        // Each bucket is about 1.8% wider than the last.
        let step = bucket_value(501) / bucket_value(500);
        assert!((step - 1.01815).abs() < 1e-4, "{step}");
        // A value maps to the nearest bucket.
        for ms in [0.05, 0.5, 1.0, 2.5, 12.52, 250.0] {
            let v = bucket_value(bucket(ms));
            assert!((v / ms - 1.0).abs() < 0.01, "{ms} -> {v}");
        }
        // The values sysbench printed for this histogram in a real run.
        for printed in [1.996, 2.069, 12.524, 18.950] {
            assert!((bucket_value(bucket(printed)) - printed).abs() < 0.0005);
        }
    }

    #[test]
    fn percentile_rounds_as_sysbench() {
        let mut c = vec![0u64; BUCKETS];
        c[bucket(1.0)] = 94;
        c[bucket(2.0)] = 5;
        c[bucket(9.0)] = 1;
        assert!((percentile(&c, 95.0) - bucket_value(bucket(2.0))).abs() < 1e-9);
        assert!((percentile(&c, 94.0) - bucket_value(bucket(1.0))).abs() < 1e-9);
        assert!((percentile(&c, 100.0) - bucket_value(bucket(9.0))).abs() < 1e-9);
    }

    #[test]
    fn counters_add_up() {
        let s = CoreStats::default();
        s.count(Counter::Read);
        s.count(Counter::Read);
        s.count(Counter::Other);
        s.event(1.5);
        let c = s.counts();
        assert_eq!((c.events, c.reads, c.other, c.queries()), (1, 2, 1, 3));
        let mut b = vec![0; BUCKETS];
        s.add_buckets(&mut b);
        assert_eq!(b[bucket(1.5)], 1);
        assert_eq!(c.since(&Counts::default()), c);
    }
}
