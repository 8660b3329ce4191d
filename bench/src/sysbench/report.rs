//! The report: sysbench's format line for line (interval lines, the
//! histogram, SQL statistics, general statistics, latency, threads
//! fairness), then what sysbench does not show (HDR percentiles, client CPU,
//! system calls and ring waits per query), and the same as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::stats::{BUCKETS, Counts, bucket_value, percentile};

/// One interval of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Seconds since the start, at the interval's end.
    pub at: f64,
    /// The interval's length in seconds.
    pub secs: f64,
    /// Connections running.
    pub threads: u64,
    /// What was counted in it.
    pub counts: Counts,
    /// The `--percentile` latency of its events (ms).
    pub pct_ms: f64,
    /// `--rate`: events due and not started, and in progress, at its end.
    pub queue: u64,
    pub concurrency: u64,
}

/// `[ 1s ] thds: ...`: sysbench's interval line (and its `--rate` line).
pub fn interval_line(i: &Interval, pct: u32, rate: bool) -> String {
    let s = i.secs;
    let c = &i.counts;
    let mut line = format!(
        "[ {:.0}s ] thds: {} tps: {:4.2} qps: {:4.2} (r/w/o: {:4.2}/{:4.2}/{:4.2}) lat (ms,{}%): {:4.2} err/s: {:4.2} reconn/s: {:4.2}",
        i.at,
        i.threads,
        c.events as f64 / s,
        c.queries() as f64 / s,
        c.reads as f64 / s,
        c.writes as f64 / s,
        c.other as f64 / s,
        pct,
        // sysbench's value with percentiles off (the plot keeps its p95).
        if pct == 0 { 0.0 } else { i.pct_ms },
        c.errors as f64 / s,
        c.reconnects as f64 / s,
    );
    if rate {
        let _ = write!(
            line,
            "\n[ {:.0}s ] queue length: {}, concurrency: {}",
            i.at, i.queue, i.concurrency
        );
    }
    line
}

/// Latency percentiles from the HDR histogram, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hdr {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What the client spent over the measured phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    /// Process user and system CPU seconds (every thread of the tool).
    pub user: f64,
    pub sys: f64,
    /// The ring threads' own user + system CPU seconds (the process's less
    /// the main thread's and the kernel's io_uring workers').
    pub ring_threads: f64,
    /// System calls the ring threads entered (when a perf counter opens).
    pub syscalls: Option<u64>,
    /// Voluntary context switches of the ring threads.
    pub sleeps: u64,
    /// `io_uring_enter` calls, those that waited, and completions.
    pub enters: u64,
    pub waits: u64,
    pub completions: u64,
    /// The server's CPU seconds, when its process can be read.
    pub server: Option<f64>,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub test: String,
    pub threads: usize,
    pub cores: usize,
    /// Seconds from the start to the last event's end.
    pub time_total: f64,
    pub counts: Counts,
    /// Event latency min, avg, max and sum (ms).
    pub lat_min: f64,
    pub lat_avg: f64,
    pub lat_max: f64,
    pub lat_sum: f64,
    /// `--percentile` (0: off) and its value from sysbench's histogram (ms).
    pub percentile: u32,
    pub pct_ms: f64,
    /// sysbench's histogram of all events.
    pub buckets: Vec<u64>,
    /// Events per connection (avg, stddev) and busy time per connection (s).
    pub fairness: [f64; 4],
    pub hdr: Hdr,
    pub cpu: Cpu,
    pub intervals: Vec<Interval>,
}

impl Summary {
    /// Queries per second over the run.
    pub fn qps(&self) -> f64 {
        self.counts.queries() as f64 / self.time_total
    }

    /// Client CPU (user + system) per query, in µs.
    pub fn cpu_per_query_us(&self) -> f64 {
        (self.cpu.user + self.cpu.sys) * 1e6 / self.counts.queries().max(1) as f64
    }

    /// A count per query.
    fn per_query(&self, n: u64) -> f64 {
        n as f64 / self.counts.queries().max(1) as f64
    }
}

/// sysbench's histogram printout (empty when nothing was counted).
pub fn histogram_text(buckets: &[u64]) -> String {
    let max = buckets.iter().copied().max().unwrap_or(0);
    let mut s = String::new();
    if max == 0 {
        return s;
    }
    s.push_str("       value  ------------- distribution ------------- count\n");
    for (i, &n) in buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let width = (n as f64 * 40.0 / max as f64 + 0.5).floor() as usize;
        let _ = writeln!(s, "{:12.3} |{:<40} {n}", bucket_value(i), "*".repeat(width));
    }
    s
}

/// The report after the run: sysbench's, then ours.
pub fn text(r: &Summary, histogram: bool) -> String {
    let mut s = String::new();
    if histogram {
        s.push_str("Latency histogram (values are in milliseconds)\n");
        s.push_str(&histogram_text(&r.buckets));
        s.push_str(" \n");
    }
    let t = r.time_total;
    let c = &r.counts;
    let q = c.queries();
    let _ = writeln!(s, "SQL statistics:");
    let _ = writeln!(s, "    queries performed:");
    let _ = writeln!(s, "        read:                            {}", c.reads);
    let _ = writeln!(s, "        write:                           {}", c.writes);
    let _ = writeln!(s, "        other:                           {}", c.other);
    let _ = writeln!(s, "        total:                           {q}");
    let per = |n: u64| format!("{n:<6} ({:.2} per sec.)", n as f64 / t);
    let _ = writeln!(
        s,
        "    transactions:                        {}",
        per(c.events)
    );
    let _ = writeln!(s, "    queries:                             {}", per(q));
    let _ = writeln!(
        s,
        "    ignored errors:                      {}",
        per(c.errors)
    );
    let _ = writeln!(
        s,
        "    reconnects:                          {}",
        per(c.reconnects)
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "General statistics:");
    let _ = writeln!(s, "    total time:                          {t:.4}s");
    let _ = writeln!(s, "    total number of events:              {}", c.events);
    let _ = writeln!(s);
    let _ = writeln!(s, "Latency (ms):");
    let _ = writeln!(s, "         min: {:39.2}", r.lat_min);
    let _ = writeln!(s, "         avg: {:39.2}", r.lat_avg);
    let _ = writeln!(s, "         max: {:39.2}", r.lat_max);
    if r.percentile > 0 {
        let _ = writeln!(
            s,
            "        {:3}th percentile: {:27.2}",
            r.percentile, r.pct_ms
        );
    } else {
        let _ = writeln!(s, "         percentile stats:               disabled");
    }
    let _ = writeln!(s, "         sum: {:39.2}", r.lat_sum);
    let _ = writeln!(s);
    let f = r.fairness;
    let _ = writeln!(s, "Threads fairness:");
    let _ = writeln!(
        s,
        "    events (avg/stddev):           {:.4}/{:3.2}",
        f[0], f[1]
    );
    let _ = writeln!(
        s,
        "    execution time (avg/stddev):   {:.4}/{:3.2}",
        f[2], f[3]
    );
    let _ = writeln!(s);
    let h = &r.hdr;
    let cpu = &r.cpu;
    let _ = writeln!(s, "mysql-uring (beyond sysbench):");
    let _ = writeln!(
        s,
        "    connections x rings:                 {} over {} ring thread(s)",
        r.threads, r.cores
    );
    let _ = writeln!(
        s,
        "    latency (ms, HDR) p50/p90/p99/p99.9/max: {:.3}/{:.3}/{:.3}/{:.3}/{:.3}",
        h.p50, h.p90, h.p99, h.p999, h.max
    );
    let _ = writeln!(
        s,
        "    client CPU per query:                {:.2} us (user {:.2}, sys {:.2}; ring threads {:.2})",
        r.cpu_per_query_us(),
        cpu.user * 1e6 / q.max(1) as f64,
        cpu.sys * 1e6 / q.max(1) as f64,
        cpu.ring_threads * 1e6 / q.max(1) as f64
    );
    let _ = writeln!(
        s,
        "    system calls per query:              {}",
        cpu.syscalls
            .map_or("- (no perf counter)".into(), |n| format!(
                "{:.3}",
                r.per_query(n)
            ))
    );
    let _ = writeln!(
        s,
        "    ring waits per query:                {:.3} (io_uring_enter {:.3}, sleeps {:.3})",
        r.per_query(cpu.waits),
        r.per_query(cpu.enters),
        r.per_query(cpu.sleeps)
    );
    if let Some(srv) = cpu.server {
        let _ = writeln!(
            s,
            "    server CPU per query:                {:.2} us ({:.2} of a CPU)",
            srv * 1e6 / q.max(1) as f64,
            srv / t
        );
    }
    s
}

/// The run as JSON.
pub fn json(r: &Summary) -> Value {
    let c = &r.counts;
    json!({
        "tool": "mysql-uring-bench sysbench",
        "test": r.test,
        "threads": r.threads,
        "cores": r.cores,
        "time_total_s": r.time_total,
        "events": c.events,
        "queries": {"read": c.reads, "write": c.writes, "other": c.other, "total": c.queries()},
        "ignored_errors": c.errors,
        "reconnects": c.reconnects,
        "tps": c.events as f64 / r.time_total,
        "qps": r.qps(),
        "latency_ms": {
            "min": r.lat_min, "avg": r.lat_avg, "max": r.lat_max, "sum": r.lat_sum,
            "percentile": r.percentile, "percentile_value": r.pct_ms,
            "p50": r.hdr.p50, "p90": r.hdr.p90, "p99": r.hdr.p99, "p99.9": r.hdr.p999,
            "hdr_max": r.hdr.max,
        },
        "fairness": {
            "events_avg": r.fairness[0], "events_stddev": r.fairness[1],
            "time_avg_s": r.fairness[2], "time_stddev_s": r.fairness[3],
        },
        "client": {
            "cpu_user_s": r.cpu.user, "cpu_sys_s": r.cpu.sys,
            "cpu_per_query_us": r.cpu_per_query_us(),
            "ring_threads_cpu_s": r.cpu.ring_threads,
            "syscalls": r.cpu.syscalls,
            "syscalls_per_query": r.cpu.syscalls.map(|n| r.per_query(n)),
            "sleeps": r.cpu.sleeps,
            "ring_enters": r.cpu.enters, "ring_waits": r.cpu.waits,
            "ring_completions": r.cpu.completions,
        },
        "server_cpu_s": r.cpu.server,
        "intervals": r.intervals.iter().map(|i| json!({
            "at_s": i.at, "secs": i.secs, "threads": i.threads,
            "events": i.counts.events, "reads": i.counts.reads, "writes": i.counts.writes,
            "other": i.counts.other, "errors": i.counts.errors, "reconnects": i.counts.reconnects,
            "tps": i.counts.events as f64 / i.secs, "qps": i.counts.queries() as f64 / i.secs,
            "latency_pct_ms": i.pct_ms,
        })).collect::<Vec<_>>(),
        "histogram_ms": r.buckets.iter().enumerate().filter(|(_, n)| **n > 0)
            .map(|(i, n)| json!([bucket_value(i), n])).collect::<Vec<_>>(),
    })
}

/// The `--percentile` of `buckets`, or 0 when percentiles are off.
pub fn pct_of(buckets: &[u64], pct: u32) -> f64 {
    debug_assert_eq!(buckets.len(), BUCKETS);
    if pct == 0 {
        0.0
    } else {
        percentile(buckets, pct as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::stats::bucket;
    use super::*;

    fn summary() -> Summary {
        let mut buckets = vec![0; BUCKETS];
        buckets[bucket(2.0)] = 10;
        buckets[bucket(4.0)] = 5;
        Summary {
            test: "oltp_read_write".into(),
            threads: 4,
            cores: 1,
            time_total: 3.0053,
            counts: Counts {
                events: 1928,
                reads: 27202,
                writes: 7737,
                other: 3871,
                errors: 15,
                reconnects: 0,
            },
            lat_min: 2.0,
            lat_avg: 6.224,
            lat_max: 18.84,
            lat_sum: 11999.68,
            percentile: 99,
            pct_ms: 12.75,
            buckets,
            fairness: [482.0, 28.4, 2.9999, 0.0],
            hdr: Hdr::default(),
            cpu: Cpu::default(),
            intervals: Vec::new(),
        }
    }

    #[test]
    fn the_report_reads_as_sysbenchs() {
        let t = text(&summary(), false);
        let want = "\
SQL statistics:
    queries performed:
        read:                            27202
        write:                           7737
        other:                           3871
        total:                           38810
    transactions:                        1928   (641.53 per sec.)
    queries:                             38810  (12913.85 per sec.)
    ignored errors:                      15     (4.99 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          3.0053s
    total number of events:              1928

Latency (ms):
         min:                                    2.00
         avg:                                    6.22
         max:                                   18.84
         99th percentile:                       12.75
         sum:                                11999.68

Threads fairness:
    events (avg/stddev):           482.0000/28.40
    execution time (avg/stddev):   2.9999/0.00

mysql-uring (beyond sysbench):
";
        assert!(t.starts_with(want), "{t}");
        assert!(t.contains("client CPU per query:"));
        assert!(t.contains("p50/p90/p99/p99.9/max"));
    }

    #[test]
    fn percentile_off_and_histogram() {
        let mut r = summary();
        r.percentile = 0;
        let t = text(&r, true);
        assert!(t.contains("         percentile stats:               disabled\n"));
        assert!(t.starts_with(
            "Latency histogram (values are in milliseconds)\n       value  ------------- distribution ------------- count\n"
        ));
        let h = histogram_text(&r.buckets);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            format!(
                "{:12.3} |{:<40} 10",
                bucket_value(bucket(2.0)),
                "*".repeat(40)
            )
        );
        assert_eq!(
            lines[2],
            format!(
                "{:12.3} |{:<40} 5",
                bucket_value(bucket(4.0)),
                "*".repeat(20)
            )
        );
    }

    #[test]
    fn interval_lines() {
        let i = Interval {
            at: 1.0,
            secs: 1.0,
            threads: 4,
            counts: Counts {
                events: 660,
                reads: 9386,
                writes: 2657,
                other: 1331,
                errors: 7,
                reconnects: 0,
            },
            pct_ms: 12.52,
            queue: 3,
            concurrency: 2,
        };
        assert_eq!(
            interval_line(&i, 99, false),
            "[ 1s ] thds: 4 tps: 660.00 qps: 13374.00 (r/w/o: 9386.00/2657.00/1331.00) lat (ms,99%): 12.52 err/s: 7.00 reconn/s: 0.00"
        );
        assert!(interval_line(&i, 95, true).ends_with("\n[ 1s ] queue length: 3, concurrency: 2"));
    }

    #[test]
    fn json_has_the_numbers() {
        let j = json(&summary());
        assert_eq!(j["queries"]["total"], 38810);
        assert_eq!(j["events"], 1928);
        assert_eq!(j["latency_ms"]["percentile"], 99);
        assert_eq!(j["histogram_ms"].as_array().unwrap().len(), 2);
    }
}
