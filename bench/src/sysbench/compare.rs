//! `--compare-sysbench[=ROUNDS]`: sysbench itself and this tool, run in
//! turn on the same server and tables with the same options, ROUNDS times
//! each (who goes first alternates), then a side-by-side table: queries/s,
//! the percentile latency, client CPU per query (sysbench's: its process's
//! CPU from "Threads started!" to its exit; ours: the process's over the
//! run) and, when the server's process can be read, server CPU per query.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::Target;
use super::opts::{IgnoreErrors, Opts};
use super::workload::Test;
use super::{report, run, tables};
use crate::BoxResult;
use crate::sys::pid_cpu;

/// One run of either tool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub qps: f64,
    pub tps: f64,
    /// The `--percentile` latency, ms.
    pub pct_ms: f64,
    /// Client CPU per query, µs.
    pub cpu_us: f64,
    /// Server CPU per query, µs (when known).
    pub server_us: Option<f64>,
    pub errors: u64,
}

/// sysbench's command line for the same test, server and options.
pub fn sysbench_args(o: &Opts, t: &Target) -> Vec<String> {
    let onoff = |b: bool| if b { "on" } else { "off" };
    let mut a = vec![o.test.name().to_string(), "run".into()];
    a.extend(t.sysbench_args());
    a.push(format!("--threads={}", o.threads));
    a.push(format!("--time={}", o.time));
    a.push(format!("--events={}", o.events));
    a.push(format!("--rate={}", o.rate));
    a.push(format!("--percentile={}", o.percentile));
    a.push(format!("--rand-type={}", o.rand.kind.name()));
    a.push(format!("--rand-spec-iter={}", o.rand.spec_iter));
    a.push(format!("--rand-spec-pct={}", o.rand.spec_pct));
    a.push(format!("--rand-spec-res={}", o.rand.spec_res));
    a.push(format!("--rand-pareto-h={}", o.rand.pareto_h));
    if o.rand_seed != 0 {
        a.push(format!("--rand-seed={}", o.rand_seed));
    }
    a.push(format!(
        "--db-ps-mode={}",
        if o.ps { "auto" } else { "disable" }
    ));
    a.push(format!(
        "--mysql-ignore-errors={}",
        match &o.ignore_errors {
            IgnoreErrors::All => "all".to_string(),
            IgnoreErrors::Codes(c) => c.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        }
    ));
    if o.test != Test::BulkInsert {
        for (k, v) in [
            ("tables", o.tables.to_string()),
            ("table-size", o.table_size.to_string()),
            ("range-size", o.range_size.to_string()),
            ("point-selects", o.point_selects.to_string()),
            ("simple-ranges", o.simple_ranges.to_string()),
            ("sum-ranges", o.sum_ranges.to_string()),
            ("order-ranges", o.order_ranges.to_string()),
            ("distinct-ranges", o.distinct_ranges.to_string()),
            ("index-updates", o.index_updates.to_string()),
            ("non-index-updates", o.non_index_updates.to_string()),
            ("delete-inserts", o.delete_inserts.to_string()),
            ("range-selects", onoff(o.range_selects).into()),
            ("skip-trx", onoff(o.skip_trx).into()),
            ("auto-inc", onoff(o.auto_inc).into()),
            ("secondary", onoff(o.secondary).into()),
            ("create-secondary", onoff(o.create_secondary).into()),
        ] {
            a.push(format!("--{k}={v}"));
        }
    }
    if o.test == Test::RandomPoints {
        a.push(format!("--random-points={}", o.random_points));
    }
    if o.test == Test::RandomRanges {
        a.push(format!("--number-of-ranges={}", o.number_of_ranges));
        a.push(format!("--delta={}", o.delta));
    }
    a
}

/// The number after `label` on a line of sysbench's report, and the one in
/// parentheses after it (its per-second rate), if any.
fn field(out: &str, label: &str) -> Option<(f64, Option<f64>)> {
    let line = out.lines().find(|l| l.trim_start().starts_with(label))?;
    let rest = line.trim_start()[label.len()..].trim();
    let first = rest.split_whitespace().next()?.trim_end_matches('s');
    let rate = rest
        .split_once('(')
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok());
    Some((first.parse().ok()?, rate))
}

/// sysbench's report read into a row (the CPU fields left for the caller).
pub fn parse_sysbench(out: &str, pct: u32) -> Option<Row> {
    let (_, qps) = field(out, "queries:")?;
    let (_, tps) = field(out, "transactions:")?;
    let (errors, _) = field(out, "ignored errors:")?;
    let pct_ms = if pct > 0 {
        field(out, &format!("{pct}th percentile:"))?.0
    } else {
        0.0
    };
    let (queries, _) = field(out, "total:")?;
    Some(Row {
        qps: qps?,
        tps: tps?,
        pct_ms,
        cpu_us: queries,
        server_us: None,
        errors: errors as u64,
    })
}

/// A process's user + system CPU from `/proc/PID/stat`, in seconds.
fn proc_cpu(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// Runs sysbench once; its report and row.
fn sysbench_once(o: &Opts, t: &Target) -> BoxResult<(String, Row)> {
    let args = sysbench_args(o, t);
    let mut child = Command::new(&o.sysbench_bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", o.sysbench_bin))?;
    let pid = child.id();
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (mut out, mut cpu0, mut server0) = (String::new(), None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.starts_with("Threads started!") {
            cpu0 = proc_cpu(pid);
            server0 = t.server_pid.and_then(pid_cpu);
        }
        out.push_str(&line);
        out.push('\n');
    }
    let server1 = t.server_pid.and_then(pid_cpu);
    let mut status = 0;
    // SAFETY: wait4 on our own child fills the zeroed rusage.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) < 0 {
            return Err(
                format!("waiting for sysbench: {}", std::io::Error::last_os_error()).into(),
            );
        }
        ru
    };
    let err = err_reader.join().unwrap_or_default();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("sysbench failed:\n{out}{err}").into());
    }
    let total = (crate::sys::tv(ru.ru_utime) + crate::sys::tv(ru.ru_stime)).as_secs_f64();
    let mut row = parse_sysbench(&out, o.percentile)
        .ok_or_else(|| format!("could not read sysbench's report:\n{out}"))?;
    let queries = row.cpu_us.max(1.0);
    row.cpu_us = (total - cpu0.unwrap_or(0.0)) * 1e6 / queries;
    row.server_us = match (server0, server1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64() * 1e6 / queries),
        _ => None,
    };
    Ok((out, row))
}

/// A run of ours as a row.
fn row_of(s: &report::Summary) -> Row {
    let q = s.counts.queries().max(1) as f64;
    Row {
        qps: s.qps(),
        tps: s.counts.events as f64 / s.time_total,
        pct_ms: s.pct_ms,
        cpu_us: s.cpu_per_query_us(),
        server_us: s.cpu.server.map(|c| c * 1e6 / q),
        errors: s.counts.errors,
    }
}

/// The median of `v` by `f`.
fn median(v: &[Row], f: impl Fn(&Row) -> Option<f64>) -> Option<f64> {
    let mut x: Vec<f64> = v.iter().filter_map(f).collect();
    if x.is_empty() {
        return None;
    }
    x.sort_by(f64::total_cmp);
    Some(if x.len() % 2 == 1 {
        x[x.len() / 2]
    } else {
        (x[x.len() / 2 - 1] + x[x.len() / 2]) / 2.0
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// The side-by-side table (Markdown).
pub fn table(o: &Opts, sb_name: &str, sb: &[Row], ours: &[Row]) -> String {
    let pct = if o.percentile > 0 { o.percentile } else { 95 };
    let mut s = format!(
        "| run | tool | queries/s | transactions/s | p{pct} ms | client CPU us/query | server CPU us/query | ignored errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    let line = |s: &mut String, run: &str, tool: &str, r: &Row| {
        s.push_str(&format!(
            "| {run} | {tool} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {} |\n",
            r.qps,
            r.tps,
            r.pct_ms,
            r.cpu_us,
            opt(r.server_us, 2),
            r.errors
        ))
    };
    for (i, (a, b)) in sb.iter().zip(ours).enumerate() {
        line(&mut s, &(i + 1).to_string(), sb_name, a);
        line(&mut s, &(i + 1).to_string(), "mysql-uring-bench", b);
    }
    let med = |v: &[Row]| -> [Option<f64>; 5] {
        [
            median(v, |r| Some(r.qps)),
            median(v, |r| Some(r.tps)),
            median(v, |r| Some(r.pct_ms)),
            median(v, |r| Some(r.cpu_us)),
            median(v, |r| r.server_us),
        ]
    };
    let (ms, mo) = (med(sb), med(ours));
    for (tool, m) in [(sb_name, &ms), ("mysql-uring-bench", &mo)] {
        s.push_str(&format!(
            "| median | {tool} | {} | {} | {} | {} | {} | |\n",
            opt(m[0], 0),
            opt(m[1], 0),
            opt(m[2], 2),
            opt(m[3], 2),
            opt(m[4], 2)
        ));
    }
    let ratio = |i: usize| match (mo[i], ms[i]) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    s.push_str(&format!(
        "| ratio | mysql-uring-bench / sysbench | {} | {} | {} | {} | {} | |\n",
        ratio(0),
        ratio(1),
        ratio(2),
        ratio(3),
        ratio(4)
    ));
    s
}

/// The interleaved rounds and the table.
pub fn run(o: &Opts, t: &Target, version: &str) -> BoxResult<()> {
    let rounds = o.compare.unwrap_or(3).max(1);
    let v = Command::new(&o.sysbench_bin)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "--compare-sysbench needs sysbench ({}: {e}); on Debian or Ubuntu: apt-get install sysbench",
                o.sysbench_bin
            )
        })?;
    let sb_name = String::from_utf8_lossy(&v.stdout).trim().to_string();
    let prepared_here = !tables::exists(o, t)?;
    if prepared_here {
        println!("(no sbtest1 yet: preparing the tables, and cleaning up at the end)");
        tables::prepare(o, t)?;
    }
    println!(
        "\n{sb_name} and mysql-uring-bench, {} rounds interleaved: {}, {} threads (mysql-uring: {} \
         connections on {} ring(s)), --time={} --rand-type={}",
        rounds,
        o.test.name(),
        o.threads,
        o.threads,
        o.cores,
        o.time,
        o.rand.kind.name()
    );
    println!(
        "sysbench command: {} {}",
        o.sysbench_bin,
        sysbench_args(o, t).join(" ")
    );
    let (mut sb, mut ours, mut last) = (Vec::new(), Vec::new(), None);
    for round in 0..rounds {
        for first in [round % 2 == 0, round % 2 == 1] {
            if first {
                let (_, r) = sysbench_once(o, t)?;
                eprintln!(
                    "round {}: {sb_name}: {:.0} queries/s, p{} {:.2} ms, {:.2} us CPU/query",
                    round + 1,
                    r.qps,
                    o.percentile,
                    r.pct_ms,
                    r.cpu_us
                );
                sb.push(r);
            } else {
                let s = run::run(o, t, true)?;
                let r = row_of(&s);
                eprintln!(
                    "round {}: mysql-uring-bench: {:.0} queries/s, p{} {:.2} ms, {:.2} us CPU/query",
                    round + 1,
                    r.qps,
                    o.percentile,
                    r.pct_ms,
                    r.cpu_us
                );
                ours.push(r);
                last = Some(s);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    println!("\nServer: {} ({version})\n", t.label);
    print!("{}", table(o, &sb_name, &sb, &ours));
    if let Some(p) = &o.json {
        let rows = |v: &[Row]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|r| {
                    json!({"qps": r.qps, "tps": r.tps, "latency_pct_ms": r.pct_ms,
                    "client_cpu_us_per_query": r.cpu_us, "server_cpu_us_per_query": r.server_us,
                    "ignored_errors": r.errors})
                })
                .collect()
        };
        let j = json!({
            "test": o.test.name(), "threads": o.threads, "cores": o.cores, "time_s": o.time,
            "percentile": o.percentile, "server": version, "sysbench": sb_name,
            "sysbench_args": sysbench_args(o, t),
            "sysbench_runs": rows(&sb), "mysql_uring_runs": rows(&ours),
            "last_mysql_uring_run": last.as_ref().map(report::json),
        });
        let text = serde_json::to_string_pretty(&j)?;
        if p.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
    }
    if let (Some(p), Some(s)) = (&o.plot, &last) {
        let title = format!(
            "mysql-uring-bench sysbench {}, {} connections on {} ring(s) (last round)",
            s.test, s.threads, s.cores
        );
        std::fs::write(p, super::plot::svg(s, &title))
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    if prepared_here {
        tables::cleanup(o, t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SB: &str = "\
SQL statistics:
    queries performed:
        read:                            27202
        write:                           7737
        other:                           3871
        total:                           38810
    transactions:                        1928   (641.42 per sec.)
    queries:                             38810  (12911.51 per sec.)
    ignored errors:                      15     (4.99 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          3.0053s
    total number of events:              1928

Latency (ms):
         min:                                    2.00
         avg:                                    6.22
         max:                                   18.84
         95th percentile:                       12.75
         sum:                                11999.68
";

    #[test]
    fn sysbench_reports_are_read() {
        let r = parse_sysbench(SB, 95).unwrap();
        assert_eq!(
            (r.qps, r.tps, r.pct_ms, r.errors),
            (12911.51, 641.42, 12.75, 15)
        );
        // cpu_us carries the query count until the CPU is known.
        assert_eq!(r.cpu_us, 38810.0);
        assert!(parse_sysbench(SB, 99).is_none());
        assert_eq!(parse_sysbench(SB, 0).unwrap().pct_ms, 0.0);
    }

    #[test]
    fn the_command_line_matches() {
        let o = match super::super::opts::parse(
            &"oltp_read_only run --threads=64 --time=8 --rand-type=uniform --skip-trx"
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
        .unwrap()
        {
            super::super::opts::Parsed::Opts(o) => o,
            _ => panic!(),
        };
        let t = Target::from_opts(&o);
        let a = sysbench_args(&o, &t);
        assert_eq!(&a[..2], ["oltp_read_only", "run"]);
        for want in [
            "--threads=64",
            "--time=8",
            "--rand-type=uniform",
            "--skip-trx=on",
            "--tables=1",
        ] {
            assert!(a.iter().any(|x| x == want), "{want} in {a:?}");
        }
        assert!(!a.iter().any(|x| x.starts_with("--random-points")));
    }

    #[test]
    fn the_table_has_medians_and_ratios() {
        let o = Opts::defaults(Test::PointSelect, super::super::opts::Command::Run);
        let row = |qps: f64, cpu: f64| Row {
            qps,
            tps: qps,
            pct_ms: 2.0,
            cpu_us: cpu,
            server_us: None,
            errors: 0,
        };
        let t = table(
            &o,
            "sysbench 1.0.20",
            &[row(100.0, 10.0), row(120.0, 12.0), row(110.0, 11.0)],
            &[row(150.0, 5.0), row(130.0, 4.0), row(140.0, 6.0)],
        );
        assert!(
            t.contains("| median | sysbench 1.0.20 | 110 | 110 | 2.00 | 11.00 | - | |"),
            "{t}"
        );
        assert!(
            t.contains(
                "| ratio | mysql-uring-bench / sysbench | 1.27x | 1.27x | 1.00x | 0.45x | - | |"
            ),
            "{t}"
        );
    }
}
