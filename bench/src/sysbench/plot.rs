//! `--plot FILE.svg`: queries/s and the percentile latency per interval over
//! the run, and the latency histogram, as one SVG picture written by hand
//! (three panels of lines, dots and bars: no plotting crate needed).

use std::fmt::Write as _;

use super::report::Summary;
use super::stats::bucket_value;

const W: f64 = 900.0;
const PANEL_H: f64 = 200.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 64.0;
const GAP: f64 = 70.0;

/// Round tick steps covering `0..max` in about 5 steps.
fn ticks(max: f64) -> Vec<f64> {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let n = (max / step).ceil() as usize;
    (0..=n.max(1)).map(|i| i as f64 * step).collect()
}

/// A number for an axis label.
fn label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        let t = format!("{v:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// XML-escaped text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One panel's frame, grid and labels; returns the y of its top.
fn frame(
    s: &mut String,
    i: usize,
    title: &str,
    xs: &[(f64, String)],
    ys: &[f64],
    ymax: f64,
) -> f64 {
    let top = TOP + i as f64 * (PANEL_H + GAP);
    let (x0, x1, y1) = (LEFT, W - RIGHT, top + PANEL_H);
    let _ = writeln!(
        s,
        r##"<text x="{x0}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"##,
        top - 10.0,
        esc(title)
    );
    for &y in ys {
        let py = y1 - y / ymax * PANEL_H;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            py + 4.0,
            label(y)
        );
    }
    for (px, l) in xs {
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{y1}" x2="{px:.1}" y2="{:.1}" stroke="#888"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            y1 + 4.0,
            y1 + 17.0,
            esc(l)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{top}" width="{:.1}" height="{PANEL_H}" fill="none" stroke="#444"/>"##,
        x1 - x0
    );
    top
}

/// A line with dots through `pts` (x in data units `0..xmax`, y in `0..ymax`).
fn line(s: &mut String, top: f64, pts: &[(f64, f64)], xmax: f64, ymax: f64, color: &str) {
    let (x0, x1, y1) = (LEFT, W - RIGHT, top + PANEL_H);
    let px = |x: f64| x0 + x / xmax * (x1 - x0);
    let py = |y: f64| y1 - y / ymax * PANEL_H;
    let path: Vec<String> = pts
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"##,
        path.join(" ")
    );
    for &(x, y) in pts {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"##,
            px(x),
            py(y)
        );
    }
}

/// The picture of a run.
pub fn svg(r: &Summary, title: &str) -> String {
    let h = TOP + 3.0 * PANEL_H + 2.0 * GAP + 50.0;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="16" font-weight="bold">{}</text>
"##,
        esc(title)
    );
    let xmax = r
        .intervals
        .last()
        .map_or(r.time_total, |i| i.at.max(r.time_total))
        .max(1.0);
    let xt: Vec<(f64, String)> = ticks(xmax)
        .into_iter()
        .filter(|t| *t <= xmax)
        .map(|t| {
            (
                LEFT + t / xmax * (W - RIGHT - LEFT),
                format!("{}s", label(t)),
            )
        })
        .collect();
    // 1: queries/s per interval.
    let qps: Vec<(f64, f64)> = r
        .intervals
        .iter()
        .map(|i| (i.at, i.counts.queries() as f64 / i.secs))
        .collect();
    let ymax = qps.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let yt = ticks(ymax);
    let ymax = *yt.last().unwrap_or(&1.0);
    let top = frame(
        &mut s,
        0,
        &format!("queries/s per interval (run: {:.0}/s)", r.qps()),
        &xt,
        &yt,
        ymax,
    );
    line(&mut s, top, &qps, xmax, ymax, "#1f77b4");
    // 2: latency percentile per interval.
    let pct = if r.percentile > 0 { r.percentile } else { 95 };
    let lat: Vec<(f64, f64)> = r.intervals.iter().map(|i| (i.at, i.pct_ms)).collect();
    let ymax = lat.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let yt = ticks(ymax);
    let ymax = *yt.last().unwrap_or(&1.0);
    let top = frame(
        &mut s,
        1,
        &format!("p{pct} latency per interval, ms (run: {:.2} ms)", r.pct_ms),
        &xt,
        &yt,
        ymax,
    );
    line(&mut s, top, &lat, xmax, ymax, "#d62728");
    // 3: the histogram, log latency axis over the buckets in use.
    let used: Vec<usize> = (0..r.buckets.len()).filter(|&i| r.buckets[i] > 0).collect();
    let (lo, hi) = match (used.first(), used.last()) {
        (Some(&a), Some(&b)) => (a.saturating_sub(2), b + 2),
        _ => (0, 1),
    };
    let (llo, lhi) = (bucket_value(lo).log10(), bucket_value(hi).log10());
    let span = (lhi - llo).max(1e-9);
    let px = |v: f64| LEFT + (v.log10() - llo) / span * (W - RIGHT - LEFT);
    let mut xt = Vec::new();
    let mut d = 10f64.powf(llo.floor());
    while d <= bucket_value(hi) * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = d * m;
            if v >= bucket_value(lo) && v <= bucket_value(hi) {
                xt.push((px(v), format!("{} ms", label(v))));
            }
        }
        d *= 10.0;
    }
    let cmax = r.buckets.iter().copied().max().unwrap_or(0) as f64 * 1.1;
    let yt = ticks(cmax);
    let ymax = *yt.last().unwrap_or(&1.0);
    let top = frame(
        &mut s,
        2,
        &format!(
            "latency histogram: events per bucket (p50 {:.2}, p99 {:.2}, max {:.2} ms)",
            r.hdr.p50, r.hdr.p99, r.hdr.max
        ),
        &xt,
        &yt,
        ymax,
    );
    let y1 = top + PANEL_H;
    let bw = ((W - RIGHT - LEFT) / (hi - lo).max(1) as f64).max(1.0);
    for &i in &used {
        let bh = r.buckets[i] as f64 / ymax * PANEL_H;
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{bw:.1}" height="{bh:.1}" fill="#2ca02c"/>"##,
            px(bucket_value(i)) - bw / 2.0,
            y1 - bh
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" font-size="11" fill="#555">{} queries in {:.1} s, {} connections on {} ring(s); client CPU {:.2} us/query</text>"##,
        h - 12.0,
        r.counts.queries(),
        r.time_total,
        r.threads,
        r.cores,
        r.cpu_per_query_us()
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::super::report::{Cpu, Hdr, Interval, Summary};
    use super::super::stats::{BUCKETS, Counts, bucket};
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(72_000.0).last(), Some(&80_000.0));
        assert_eq!(ticks(1.3), vec![0.0, 0.5, 1.0, 1.5]);
        assert_eq!(ticks(0.0), vec![0.0, 1.0]);
        assert_eq!(
            (label(0.5), label(0.02), label(2.5), label(25_000.0)),
            ("0.5".into(), "0.02".into(), "2.5".into(), "25k".into())
        );
    }

    #[test]
    fn a_run_draws_three_panels() {
        let mut buckets = vec![0; BUCKETS];
        buckets[bucket(0.8)] = 100;
        buckets[bucket(1.6)] = 10;
        let intervals = (1..=5)
            .map(|t| Interval {
                at: t as f64,
                secs: 1.0,
                threads: 64,
                counts: Counts {
                    events: 1000,
                    reads: 1000,
                    ..Counts::default()
                },
                pct_ms: 1.2,
                queue: 0,
                concurrency: 0,
            })
            .collect();
        let r = Summary {
            test: "oltp_point_select".into(),
            threads: 64,
            cores: 1,
            time_total: 5.0,
            counts: Counts {
                events: 5000,
                reads: 5000,
                ..Counts::default()
            },
            lat_min: 0.5,
            lat_avg: 0.9,
            lat_max: 2.0,
            lat_sum: 4500.0,
            percentile: 95,
            pct_ms: 1.2,
            buckets,
            fairness: [0.0; 4],
            hdr: Hdr::default(),
            cpu: Cpu::default(),
            intervals,
        };
        let svg = svg(&r, "a <test>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt;test&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("fill=\"#2ca02c\"").count(), 2);
        assert!(svg.contains("p95 latency per interval"));
    }
}
