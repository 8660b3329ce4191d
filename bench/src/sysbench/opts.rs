//! The `sysbench` subcommand's command line: sysbench 1.0's option names,
//! syntax (`--name=value`, a bare `--flag` for on) and defaults, and the
//! options beyond sysbench.

use std::path::PathBuf;

use super::rand::{RandParams, RandType};
use super::workload::Test;

/// What to do with the test's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Create and fill the tables.
    Prepare,
    /// Run the workload and report.
    Run,
    /// Drop the tables.
    Cleanup,
    /// Read the tables into the server's cache (`prewarm`, `warmup`).
    Prewarm,
}

impl Command {
    fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "prepare" => Command::Prepare,
            "run" => Command::Run,
            "cleanup" => Command::Cleanup,
            "prewarm" | "warmup" => Command::Prewarm,
            _ => return None,
        })
    }
}

/// `--mysql-ignore-errors`: which server errors restart the event instead
/// of ending the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreErrors {
    /// `all`.
    All,
    /// These codes (default 1213, 1020, 1205: deadlock, record changed,
    /// lock wait timeout).
    Codes(Vec<u32>),
}

impl IgnoreErrors {
    /// Whether error `code` is ignored.
    pub fn ignores(&self, code: u32) -> bool {
        match self {
            IgnoreErrors::All => true,
            IgnoreErrors::Codes(c) => c.contains(&code),
        }
    }
}

/// The ring's batched-wait knobs (expert options; unset: the library's defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingKnobs {
    /// `--ring-batch-per`: wait for one completion per this many waiting tasks.
    pub batch_per: Option<usize>,
    /// `--ring-batch-max`: at most this many completions per wait.
    pub batch_max: Option<usize>,
    /// `--ring-min-wait-us`: the batched wait's minimum-wait bound.
    pub min_wait_us: Option<u64>,
}

/// Everything the command line says.
#[derive(Debug, Clone, PartialEq)]
pub struct Opts {
    pub test: Test,
    pub command: Command,
    /// `--mysql-host` (localhost; a list is used round robin).
    pub hosts: Vec<String>,
    /// `--mysql-port` (3306; a list is used round robin).
    pub ports: Vec<u16>,
    /// `--mysql-socket` (none; a list is used round robin).
    pub sockets: Vec<String>,
    /// `--mysql-user` (sbtest).
    pub user: String,
    /// `--mysql-password` (empty).
    pub password: String,
    /// `--mysql-db` (sbtest).
    pub db: String,
    /// Whether any `--mysql-*` connection option was given.
    pub mysql_given: bool,
    /// `--mysql-ignore-errors`.
    pub ignore_errors: IgnoreErrors,
    /// `--db-ps-mode=auto` (true) or `disable`.
    pub ps: bool,
    /// `--threads`: connections in total.
    pub threads: usize,
    /// `--events` (0: no limit).
    pub events: u64,
    /// `--time` in seconds (0: no limit).
    pub time: u64,
    /// `--rate` events per second (0: as fast as possible).
    pub rate: u64,
    /// `--report-interval` seconds (0: none).
    pub report_interval: u64,
    /// `--percentile` (95; 0 disables).
    pub percentile: u32,
    /// `--histogram`.
    pub histogram: bool,
    /// `--rand-type` and its parameters.
    pub rand: RandParams,
    /// `--rand-seed` (0: from the clock).
    pub rand_seed: u64,
    pub tables: u32,
    pub table_size: u32,
    pub range_size: u32,
    pub point_selects: u32,
    pub simple_ranges: u32,
    pub sum_ranges: u32,
    pub order_ranges: u32,
    pub distinct_ranges: u32,
    pub index_updates: u32,
    pub non_index_updates: u32,
    pub delete_inserts: u32,
    pub range_selects: bool,
    pub skip_trx: bool,
    pub auto_inc: bool,
    pub secondary: bool,
    pub create_secondary: bool,
    /// `--mysql-storage-engine` (innodb).
    pub storage_engine: String,
    /// `--create-table-options` (empty).
    pub create_table_options: String,
    /// select_random_points: `--random-points` (10).
    pub random_points: u32,
    /// select_random_ranges: `--number-of-ranges` (10).
    pub number_of_ranges: u32,
    /// select_random_ranges: `--delta` (5).
    pub delta: u32,
    /// `--cores`: rings the connections are sharded over (1).
    pub cores: usize,
    /// `--json=FILE`: the results as JSON too (`-`: stdout).
    pub json: Option<PathBuf>,
    /// `--plot=FILE.svg`.
    pub plot: Option<PathBuf>,
    /// `--compare-sysbench[=ROUNDS]`: rounds of sysbench and this tool, interleaved.
    pub compare: Option<u32>,
    /// `--sysbench=PATH`: the sysbench binary for `--compare-sysbench`.
    pub sysbench_bin: String,
    /// The ring's expert knobs.
    pub ring: RingKnobs,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Print this help and exit.
    Help(String),
    /// Do it.
    Opts(Box<Opts>),
}

impl Opts {
    /// sysbench's defaults for `test command`.
    pub fn defaults(test: Test, command: Command) -> Opts {
        Opts {
            test,
            command,
            hosts: vec!["localhost".into()],
            ports: vec![3306],
            sockets: Vec::new(),
            user: "sbtest".into(),
            password: String::new(),
            db: "sbtest".into(),
            mysql_given: false,
            ignore_errors: IgnoreErrors::Codes(vec![1213, 1020, 1205]),
            ps: true,
            threads: 1,
            events: 0,
            time: 10,
            rate: 0,
            report_interval: 0,
            percentile: 95,
            histogram: false,
            rand: RandParams::default(),
            rand_seed: 0,
            tables: 1,
            table_size: 10_000,
            range_size: 100,
            point_selects: 10,
            simple_ranges: 1,
            sum_ranges: 1,
            order_ranges: 1,
            distinct_ranges: 1,
            index_updates: 1,
            non_index_updates: 1,
            delete_inserts: 1,
            range_selects: true,
            skip_trx: false,
            auto_inc: true,
            secondary: false,
            create_secondary: true,
            storage_engine: "innodb".into(),
            create_table_options: String::new(),
            random_points: 10,
            number_of_ranges: 10,
            delta: 5,
            cores: 1,
            json: None,
            plot: None,
            compare: None,
            sysbench_bin: "sysbench".into(),
            ring: RingKnobs::default(),
        }
    }
}

/// sysbench's boolean spellings.
fn boolean(name: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None => Ok(true),
        Some("on" | "true" | "yes" | "1") => Ok(true),
        Some("off" | "false" | "no" | "0") => Ok(false),
        Some(x) => Err(format!("invalid value for --{name}: '{x}' (on or off)")),
    }
}

/// A number option's value.
fn num<T: std::str::FromStr>(name: &str, v: Option<&str>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("--{name} needs a value: --{name}=N"))?;
    v.trim()
        .parse()
        .map_err(|_| format!("invalid value for --{name}: '{v}'"))
}

/// A string option's value (empty when given bare).
fn text(v: Option<&str>) -> String {
    v.unwrap_or("").to_string()
}

/// A comma-separated list.
fn list(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The test named on the command line: a name, or a script path as
/// sysbench takes it (`/usr/share/sysbench/oltp_read_only.lua`).
fn test_name(s: &str) -> Option<Test> {
    let base = s.rsplit('/').next().unwrap_or(s);
    Test::parse(base.strip_suffix(".lua").unwrap_or(base))
}

/// Parses the arguments after `sysbench`.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut positional = Vec::new();
    let mut flags = Vec::new();
    for a in args {
        match a.strip_prefix("--") {
            Some(f) => flags.push(f),
            None if a == "-h" => return Ok(Parsed::Help(super::help())),
            None => positional.push(a.as_str()),
        }
    }
    if flags.contains(&"help") || positional.is_empty() {
        return Ok(Parsed::Help(super::help()));
    }
    let test = test_name(positional[0]).ok_or_else(|| {
        format!(
            "unknown test '{}' (one of: {})",
            positional[0],
            Test::ALL.map(|t| t.name()).join(", ")
        )
    })?;
    let command = match positional.get(1) {
        None => {
            return Err(format!(
                "{} needs a command: prepare, run or cleanup",
                test.name()
            ));
        }
        Some(&"help") => return Ok(Parsed::Help(super::help())),
        Some(c) => Command::parse(c).ok_or_else(|| {
            format!("unknown command '{c}' (prepare, prewarm, run, cleanup or help)")
        })?,
    };
    if let Some(extra) = positional.get(2) {
        return Err(format!("Unrecognized command line argument: {extra}"));
    }
    let mut o = Opts::defaults(test, command);
    for f in flags {
        let (name, v) = match f.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (f, None),
        };
        let name = name.replace('_', "-");
        let n = name.as_str();
        match n {
            "mysql-host" => o.hosts = list(v),
            "mysql-port" => {
                o.ports = list(v)
                    .iter()
                    .map(|p| num(n, Some(p)))
                    .collect::<Result<_, _>>()?
            }
            "mysql-socket" => o.sockets = list(v),
            "mysql-user" => o.user = text(v),
            "mysql-password" => o.password = text(v),
            "mysql-db" => o.db = text(v),
            "mysql-ignore-errors" => {
                let l = list(v);
                o.ignore_errors = if l.iter().any(|x| x == "all") {
                    IgnoreErrors::All
                } else {
                    IgnoreErrors::Codes(
                        l.iter()
                            .map(|c| num(n, Some(c)))
                            .collect::<Result<_, _>>()?,
                    )
                };
            }
            "mysql-storage-engine" => o.storage_engine = text(v),
            "create-table-options" => o.create_table_options = text(v),
            "db-ps-mode" => {
                o.ps = match v {
                    Some("auto") => true,
                    Some("disable") => false,
                    x => {
                        return Err(format!(
                            "Invalid value for db-ps-mode: {} (auto or disable)",
                            x.unwrap_or("")
                        ));
                    }
                }
            }
            "db-driver" => {
                if v != Some("mysql") {
                    return Err("only --db-driver=mysql is supported".into());
                }
            }
            "threads" | "num-threads" => o.threads = num(n, v)?,
            "events" | "max-requests" => o.events = num(n, v)?,
            "time" | "max-time" => o.time = num(n, v)?,
            "rate" | "tx-rate" => o.rate = num(n, v)?,
            "report-interval" => o.report_interval = num(n, v)?,
            "percentile" => o.percentile = num(n, v)?,
            "histogram" => o.histogram = boolean(n, v)?,
            "rand-type" => {
                let s = text(v);
                o.rand.kind = RandType::parse(&s)
                    .ok_or_else(|| format!("Invalid random numbers distribution: {s}."))?;
            }
            "rand-spec-iter" => o.rand.spec_iter = num(n, v)?,
            "rand-spec-pct" => o.rand.spec_pct = num(n, v)?,
            "rand-spec-res" => o.rand.spec_res = num(n, v)?,
            "rand-pareto-h" => o.rand.pareto_h = num(n, v)?,
            "rand-seed" => o.rand_seed = num(n, v)?,
            "tables" => o.tables = num(n, v)?,
            "table-size" => o.table_size = num(n, v)?,
            "range-size" => o.range_size = num(n, v)?,
            "point-selects" => o.point_selects = num(n, v)?,
            "simple-ranges" => o.simple_ranges = num(n, v)?,
            "sum-ranges" => o.sum_ranges = num(n, v)?,
            "order-ranges" => o.order_ranges = num(n, v)?,
            "distinct-ranges" => o.distinct_ranges = num(n, v)?,
            "index-updates" => o.index_updates = num(n, v)?,
            "non-index-updates" => o.non_index_updates = num(n, v)?,
            "delete-inserts" => o.delete_inserts = num(n, v)?,
            "range-selects" => o.range_selects = boolean(n, v)?,
            "skip-trx" => o.skip_trx = boolean(n, v)?,
            "auto-inc" => o.auto_inc = boolean(n, v)?,
            "secondary" => o.secondary = boolean(n, v)?,
            "create-secondary" => o.create_secondary = boolean(n, v)?,
            "random-points" => o.random_points = num(n, v)?,
            "number-of-ranges" => o.number_of_ranges = num(n, v)?,
            "delta" => o.delta = num(n, v)?,
            // Accepted for command-line compatibility, without effect here.
            "forced-shutdown" | "thread-stack-size" | "verbosity" | "mysql-ssl"
            | "mysql-compression" | "mysql-debug" | "db-debug" => {}
            "cores" => o.cores = num(n, v)?,
            "json" => o.json = Some(PathBuf::from(v.unwrap_or("-"))),
            "plot" => {
                o.plot = Some(PathBuf::from(
                    v.ok_or("--plot needs a file: --plot=FILE.svg")?,
                ))
            }
            "compare-sysbench" => o.compare = Some(v.map_or(Ok(3), |r| num(n, Some(r)))?),
            "sysbench" => o.sysbench_bin = text(v),
            "ring-batch-per" => o.ring.batch_per = Some(num(n, v)?),
            "ring-batch-max" => o.ring.batch_max = Some(num(n, v)?),
            "ring-min-wait-us" => o.ring.min_wait_us = Some(num(n, v)?),
            _ => return Err(format!("invalid option: --{f}")),
        }
        if n.starts_with("mysql-")
            && matches!(
                n,
                "mysql-host"
                    | "mysql-port"
                    | "mysql-socket"
                    | "mysql-user"
                    | "mysql-password"
                    | "mysql-db"
            )
        {
            o.mysql_given = true;
        }
    }
    check(&o)?;
    Ok(Parsed::Opts(Box::new(o)))
}

/// The checks sysbench (or its scripts) make, and ours.
fn check(o: &Opts) -> Result<(), String> {
    if o.threads == 0 {
        return Err("Invalid value for --threads: 0.".into());
    }
    if o.cores == 0 || o.cores > o.threads {
        return Err(format!(
            "--cores must be between 1 and --threads ({}), not {}",
            o.threads, o.cores
        ));
    }
    if o.percentile > 100 {
        return Err("Invalid value for --percentile: it must be 0..100.".into());
    }
    if o.hosts.is_empty() || o.ports.is_empty() {
        return Err("--mysql-host and --mysql-port need at least one value".into());
    }
    if o.tables == 0 && o.test != Test::BulkInsert {
        return Err("--tables must be at least 1".into());
    }
    if matches!(o.test, Test::RandomPoints | Test::RandomRanges) && o.tables != 1 {
        return Err("this benchmark does not support --tables > 1".into());
    }
    if o.test == Test::RandomPoints && o.random_points == 0
        || o.test == Test::RandomRanges && o.number_of_ranges == 0
    {
        return Err("--random-points and --number-of-ranges must be at least 1".into());
    }
    if !(o.rand.pareto_h > 0.0 && o.rand.pareto_h < 1.0) {
        return Err("--rand-pareto-h must be between 0 and 1".into());
    }
    if o.rand.spec_iter == 0 || o.rand.spec_res >= 100 || o.rand.spec_pct > 100 {
        return Err(
            "--rand-spec-iter must be at least 1, --rand-spec-res below 100, --rand-spec-pct at most 100"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &str) -> Result<Opts, String> {
        let v: Vec<String> = args.split_whitespace().map(String::from).collect();
        match parse(&v)? {
            Parsed::Opts(o) => Ok(*o),
            Parsed::Help(_) => Err("help".into()),
        }
    }

    #[test]
    fn defaults_are_sysbench_1_0s() {
        let o = p("oltp_read_write run").unwrap();
        assert_eq!(o, Opts::defaults(Test::ReadWrite, Command::Run));
        assert_eq!(
            (
                o.hosts[0].as_str(),
                o.ports[0],
                o.user.as_str(),
                o.db.as_str()
            ),
            ("localhost", 3306, "sbtest", "sbtest")
        );
        assert_eq!((o.threads, o.time, o.events, o.percentile), (1, 10, 0, 95));
        assert_eq!((o.tables, o.table_size, o.range_size), (1, 10_000, 100));
        assert_eq!(o.point_selects, 10);
        assert_eq!(o.rand.kind, RandType::Special);
        assert_eq!(
            (o.rand.spec_iter, o.rand.spec_pct, o.rand.spec_res),
            (12, 1, 75)
        );
        assert_eq!(o.ignore_errors, IgnoreErrors::Codes(vec![1213, 1020, 1205]));
        assert!(o.ps && o.range_selects && o.auto_inc && o.create_secondary);
        assert!(!o.skip_trx && !o.secondary && !o.histogram && !o.mysql_given);
    }

    #[test]
    fn sysbench_syntax_is_accepted() {
        let o = p(
            "--threads=64 --time=8 --rand-type=uniform --mysql-host=127.0.0.1 \
                   --mysql-user=root --mysql-db=test oltp_point_select run --histogram \
                   --skip_trx=on --range-selects=off --percentile=99 --report-interval=1 \
                   --mysql-ignore-errors=all --db-ps-mode=disable --rand-pareto-h=0.3",
        )
        .unwrap();
        assert_eq!((o.test, o.command), (Test::PointSelect, Command::Run));
        assert_eq!(
            (o.threads, o.time, o.percentile, o.report_interval),
            (64, 8, 99, 1)
        );
        assert_eq!(o.rand.kind, RandType::Uniform);
        assert_eq!(o.rand.pareto_h, 0.3);
        assert!(o.histogram && o.skip_trx && !o.range_selects && !o.ps);
        assert!(o.mysql_given);
        assert_eq!(o.ignore_errors, IgnoreErrors::All);
        assert_eq!(
            (o.hosts[0].as_str(), o.user.as_str()),
            ("127.0.0.1", "root")
        );
    }

    #[test]
    fn script_paths_and_beyond_options() {
        let o = p(
            "/usr/share/sysbench/oltp_read_only.lua run --threads=8 --cores=2 \
                   --json=out.json --plot=p.svg --compare-sysbench --ring-batch-per=0 \
                   --ring-min-wait-us=50 --mysql-ignore-errors=1213,1205",
        )
        .unwrap();
        assert_eq!(o.test, Test::ReadOnly);
        assert_eq!(o.cores, 2);
        assert_eq!(o.json, Some(PathBuf::from("out.json")));
        assert_eq!(o.plot, Some(PathBuf::from("p.svg")));
        assert_eq!(o.compare, Some(3));
        assert_eq!(o.ring.batch_per, Some(0));
        assert_eq!(o.ring.min_wait_us, Some(50));
        assert_eq!(o.ring.batch_max, None);
        assert!(o.ignore_errors.ignores(1205) && !o.ignore_errors.ignores(1020));
        assert_eq!(
            p("oltp_insert run --compare-sysbench=5").unwrap().compare,
            Some(5)
        );
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(p("oltp_nope run").unwrap_err().contains("unknown test"));
        assert!(p("oltp_read_only").unwrap_err().contains("needs a command"));
        assert!(
            p("oltp_read_only run --bogus=1")
                .unwrap_err()
                .contains("invalid option")
        );
        assert!(
            p("oltp_read_only run --threads=x")
                .unwrap_err()
                .contains("--threads")
        );
        assert!(p("oltp_read_only run --rand-type=zipf").is_err());
        assert!(p("oltp_read_only run --threads=2 --cores=3").is_err());
        assert!(p("select_random_points run --tables=2").is_err());
        assert!(p("oltp_read_only run --skip-trx=maybe").is_err());
        assert!(p("oltp_read_only run extra").is_err());
        assert_eq!(p("--help").unwrap_err(), "help");
        assert_eq!(p("oltp_read_only help").unwrap_err(), "help");
    }
}
