//! What a measured phase cost, latency histograms, and the report.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::sys::ThreadCost;

/// Latencies in nanoseconds, 1 µs .. 60 s at 3 significant digits.
pub type Hist = Histogram<u64>;

/// A new, empty latency histogram.
pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Records one latency, clamped into the histogram's range.
#[inline]
pub fn record(h: &mut Hist, d: Duration) {
    let ns = (d.as_nanos() as u64).clamp(1_000, 60_000_000_000);
    // Cannot fail: the value is within the bounds set in `new_hist`.
    let _ = h.record(ns);
}

/// One measured run of one driver on one workload.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Operations (queries, statements or round trips) completed.
    pub ops: u64,
    /// Units of the workload's rate (queries or rows) completed.
    pub units: u64,
    pub elapsed: Duration,
    /// What the client threads that ran the workload spent: user and system
    /// CPU, sleeps, system calls.
    pub client: ThreadCost,
    /// CPU time of the whole client process.
    pub process_cpu: Duration,
    pub server_cpu: Option<Duration>,
    /// CPU used by everything else on the machine: a noise gauge.
    pub other_cpu: Option<Duration>,
    /// Per-operation latency, when the workload has operations to time.
    pub latency: Option<Hist>,
    /// Bytes the server sent on the wire for the measured work (compress
    /// workload: its `Bytes_sent` status, compressed bytes when compressed).
    pub wire_bytes: Option<u64>,
}

impl Sample {
    /// Units per second.
    pub fn rate(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64()
    }

    /// Client CPU (user + system) of the client threads.
    pub fn client_cpu(&self) -> Duration {
        self.client.cpu()
    }

    /// `d` per unit, in `scale` (1e6: µs, 1e9: ns).
    fn per_unit(&self, d: Duration, scale: f64) -> f64 {
        d.as_secs_f64() * scale / self.units.max(1) as f64
    }

    /// A count per unit, times `scale` (1: per query, 1000: per 1k rows).
    fn count_per_unit(&self, n: u64, scale: f64) -> f64 {
        n as f64 * scale / self.units.max(1) as f64
    }

    fn server_per_unit(&self, scale: f64) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() * scale / self.units.max(1) as f64)
    }

    /// Share of one CPU used by other processes during the run.
    pub fn noise(&self) -> Option<f64> {
        Some(self.other_cpu?.as_secs_f64() / self.elapsed.as_secs_f64())
    }

    fn json(&self) -> Value {
        json!({
            "ops": self.ops,
            "units": self.units,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "client_cpu_s": self.client_cpu().as_secs_f64(),
            "client_user_s": self.client.user.as_secs_f64(),
            "client_sys_s": self.client.sys.as_secs_f64(),
            "client_sleeps": self.client.sleeps,
            "client_syscalls": self.client.syscalls,
            "process_cpu_s": self.process_cpu.as_secs_f64(),
            "server_cpu_s": self.server_cpu.map(|d| d.as_secs_f64()),
            "other_cpu_s": self.other_cpu.map(|d| d.as_secs_f64()),
            "latency_us": self.latency.as_ref().map(latency_json),
            "wire_bytes": self.wire_bytes,
        })
    }
}

fn latency_json(h: &Hist) -> Value {
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p99.9": q(0.999),
        "max": h.max() as f64 / 1000.0,
    })
}

/// The median of `samples` by `key` (NaN when there are none).
fn median(samples: &[Sample], key: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().map(key).collect::<Option<Vec<_>>>()?;
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// How a workload counts: what a unit is and how CPU per unit is shown.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Query,
    Row,
    /// A whole job (the tables workload): elapsed seconds and CPU share.
    Job,
}

/// Every driver's runs of one case; the first driver is mysql-uring, the
/// others are the comparisons (ratios are mysql-uring / other).
pub struct Case {
    pub name: String,
    pub unit: Unit,
    /// Per driver, in report order: its name, what it ran when that differs
    /// from the case (e.g. no pipelining: one by one), and its runs.
    pub runs: Vec<(&'static str, Option<&'static str>, Vec<Sample>)>,
}

/// One metric's median per driver, in [`Case::runs`] order.
type Metric = (String, Vec<Option<f64>>);

impl Case {
    fn metrics(&self) -> Vec<Metric> {
        let all = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<Option<f64>> {
            self.runs.iter().map(|(_, _, v)| median(v, f)).collect()
        };
        let mut out = Vec::new();
        match self.unit {
            Unit::Query | Unit::Row => {
                let (rate, cpu, scale, per, count_scale) = match self.unit {
                    Unit::Query => ("queries/s", "µs/query", 1e6, "query", 1.0),
                    _ => ("rows/s", "ns/row", 1e9, "1k rows", 1000.0),
                };
                out.push((rate.to_string(), all(&|s| Some(s.rate()))));
                let wire = all(&|s| Some(s.wire_bytes? as f64 / s.units.max(1) as f64));
                if wire.iter().any(Option::is_some) {
                    let one = if per == "query" { "query" } else { "row" };
                    out.push((format!("wire bytes/{one} (server sent)"), wire));
                }
                out.push((
                    format!("client CPU {cpu}"),
                    all(&|s| Some(s.per_unit(s.client_cpu(), scale))),
                ));
                out.push((
                    format!("client user {cpu}"),
                    all(&|s| Some(s.per_unit(s.client.user, scale))),
                ));
                out.push((
                    format!("client sys {cpu}"),
                    all(&|s| Some(s.per_unit(s.client.sys, scale))),
                ));
                out.push((
                    format!("syscalls/{per}"),
                    all(&|s| Some(s.count_per_unit(s.client.syscalls?, count_scale))),
                ));
                out.push((
                    format!("sleeps/{per}"),
                    all(&|s| Some(s.count_per_unit(s.client.sleeps, count_scale))),
                ));
                let server = all(&|s| s.server_per_unit(scale));
                if server.iter().any(Option::is_some) {
                    out.push((format!("server CPU {cpu}"), server));
                }
            }
            Unit::Job => {
                out.push((
                    "elapsed s".to_string(),
                    all(&|s| Some(s.elapsed.as_secs_f64())),
                ));
                out.push((
                    "client CPU % of one core".to_string(),
                    all(&|s| Some(100.0 * s.client_cpu().as_secs_f64() / s.elapsed.as_secs_f64())),
                ));
            }
        }
        for (label, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
            let v = all(&|s| Some(s.latency.as_ref()?.value_at_quantile(p) as f64 / 1000.0));
            if v.iter().any(Option::is_some) {
                out.push((format!("latency {label} µs"), v));
            }
        }
        out
    }

    /// The case as JSON: medians, ratios and every sample.
    pub fn json(&self) -> Value {
        let metrics: Vec<Value> = self
            .metrics()
            .into_iter()
            .map(|(m, v)| {
                let mut o = serde_json::Map::new();
                o.insert("metric".into(), json!(m));
                for ((name, _, _), x) in self.runs.iter().zip(&v) {
                    o.insert((*name).into(), json!(x));
                }
                for ((name, _, _), x) in self.runs.iter().zip(&v).skip(1) {
                    o.insert(format!("ratio_vs_{name}"), json!(ratio(v[0], *x)));
                }
                Value::Object(o)
            })
            .collect();
        let samples: serde_json::Map<String, Value> = self
            .runs
            .iter()
            .map(|(name, _, v)| {
                (
                    (*name).to_string(),
                    json!(v.iter().map(Sample::json).collect::<Vec<_>>()),
                )
            })
            .collect();
        let ran: serde_json::Map<String, Value> = self
            .runs
            .iter()
            .filter_map(|(name, ran, _)| Some(((*name).to_string(), json!((*ran)?))))
            .collect();
        json!({
            "case": self.name,
            "statistic": "median",
            "metrics": metrics,
            "samples": samples,
            "ran_as": ran,
        })
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let r = a? / b?;
    r.is_finite().then_some(r)
}

/// `1234567.8` as `1,234,568`; small values with a few decimals.
pub fn fmt_num(v: Option<f64>) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return "–".into();
    };
    if v >= 1000.0 {
        let s = format!("{v:.0}");
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The markdown table of every case, with ratios mysql-uring / each other driver.
pub fn table(cases: &[Case]) -> String {
    let Some(first) = cases.first() else {
        return String::new();
    };
    let names: Vec<&str> = first.runs.iter().map(|(n, _, _)| *n).collect();
    let mut t = String::from("| case | metric |");
    let mut rule = String::from("|---|---|");
    for (i, n) in names.iter().enumerate() {
        if i == 0 {
            let _ = write!(t, " {n} |");
            rule.push_str("---:|");
        } else {
            let _ = write!(t, " {n} | ratio |");
            rule.push_str("---:|---:|");
        }
    }
    let _ = writeln!(t, "\n{rule}");
    for c in cases {
        // Say in the case's own cell what a driver ran instead, when it could
        // not run the case as named (e.g. one by one instead of pipelined).
        let mut name = c.name.clone();
        for (_, ran, v) in &c.runs {
            if let (Some(ran), false) = (ran, v.is_empty()) {
                let _ = write!(name, " [{ran}]");
            }
        }
        for (m, v) in c.metrics() {
            let _ = write!(t, "| {name} | {m} |");
            for (i, x) in v.iter().enumerate() {
                if i == 0 {
                    let _ = write!(t, " {} |", fmt_num(*x));
                } else {
                    let r = ratio(v[0], *x).map_or("–".into(), |r| format!("{r:.2}"));
                    let _ = write!(t, " {} | {r} |", fmt_num(*x));
                }
            }
            t.push('\n');
        }
    }
    // On a shared 2-core machine another build or test run skews everything:
    // say how busy the rest of the machine was next to the numbers.
    let worst = |v: &[Sample]| {
        v.iter()
            .filter_map(Sample::noise)
            .max_by(|a, b| a.total_cmp(b))
            .map_or("?".into(), |x| format!("{:.0}%", x * 100.0))
    };
    let parts: Vec<String> = cases
        .iter()
        .map(|c| {
            let w: Vec<String> = c.runs.iter().map(|(_, _, v)| worst(v)).collect();
            format!("{}: {}", c.name, w.join(" / "))
        })
        .collect();
    let _ = writeln!(
        t,
        "\nCPU used by other processes during the runs (% of one CPU, worst run, {}): {}",
        names.join(" / "),
        parts.join("; ")
    );
    t
}
