//! `mysql-uring-bench sysbench TEST prepare|run|cleanup [options]`: sysbench
//! 1.0's OLTP tests, options and report on mysql-uring, its connections
//! sharded over per-core io_uring rings, with HDR percentiles, client CPU
//! and system calls per query, JSON, an SVG plot, and interleaved runs of
//! sysbench itself for a side-by-side table.

mod compare;
mod opts;
mod plot;
mod rand;
mod report;
mod run;
mod stats;
mod tables;
mod workload;

use std::path::PathBuf;

use mysql_uring::{Connection, SslMode};
use mysql_uring_testserver as testserver;

use crate::BoxResult;
use opts::{Command, Opts, Parsed};

/// The `--help` text.
pub fn help() -> String {
    let tests: Vec<&str> = workload::Test::ALL.iter().map(|t| t.name()).collect();
    format!(
        "\
mysql-uring-bench sysbench: sysbench 1.0's database tests on mysql-uring

USAGE: mysql-uring-bench sysbench [options]... TEST COMMAND

TESTS: {}
COMMANDS: prepare, run, cleanup, prewarm (= warmup), help

Options are sysbench's, with its syntax (--name=value; a bare --flag means on;
- and _ alike) and its defaults:
  --threads=N            connections in total [1]
  --time=S               seconds to run, 0 for no limit [10]
  --events=N             events in total, 0 for no limit [0]
  --rate=N               events per second, 0 for as fast as possible [0]
  --report-interval=S    print an interval line every S seconds, 0 for none [0]
  --percentile=P         latency percentile to report, 0 for none [95]
  --histogram[=on|off]   print the latency histogram [off]
  --rand-type=T          uniform, gaussian, special, pareto [special]
  --rand-spec-iter=N --rand-spec-pct=P --rand-spec-res=P   special/gaussian [12, 1, 75]
  --rand-pareto-h=H      pareto's h [0.2]
  --rand-seed=N          0 seeds from the clock [0]
  --tables=N [1]  --table-size=N [10000]  --range-size=N [100]
  --point-selects=N [10]  --simple-ranges=N [1]  --sum-ranges=N [1]
  --order-ranges=N [1]  --distinct-ranges=N [1]  --index-updates=N [1]
  --non-index-updates=N [1]  --delete-inserts=N [1]  --range-selects [on]
  --skip-trx [off]  --auto-inc [on]  --secondary [off]  --create-secondary [on]
  --mysql-storage-engine=E [innodb]  --create-table-options=S []
  --random-points=N [10] (select_random_points)
  --number-of-ranges=N [10]  --delta=N [5] (select_random_ranges)
  --db-ps-mode=auto|disable   server-side prepared statements or SQL text [auto]
  --mysql-ignore-errors=LIST  error codes (or all) that restart the event
                         instead of ending the run [1213,1020,1205]
  --mysql-host=H[,H..] [localhost]  --mysql-port=P[,P..] [3306]
  --mysql-socket=PATH    --mysql-user=U [sbtest]  --mysql-password=P []
  --mysql-db=DB [sbtest]

THE SERVER
  With any --mysql-* option, sysbench's defaults fill in the rest (localhost
  means the server's Unix socket when one is at a standard place, as
  libmysqlclient does, else 127.0.0.1). With none: MYSQL_URL if it is set,
  else sysbench's defaults (sbtest@localhost, database sbtest) when that
  server lets the tool in, else a private mariadbd started for this run
  (mysql-uring-testserver, as the rest of the tool uses; database sbtest).
  The private server lives as long as the process, so `run` there prepares
  the tables first; the first line of output says which server is used.

BEYOND SYSBENCH
  --cores=N              ring threads the connections are sharded over
                         (connection i on ring i % N) [1]
  --json[=FILE]          the results as JSON as well (- or none: stdout)
  --plot=FILE.svg        queries/s and percentile latency per interval, and
                         the latency histogram, as an SVG picture
  --compare-sysbench[=R] run sysbench and this tool R times each,
                         interleaved, on the same tables (prepared first when
                         missing, and then cleaned up), and print the
                         side-by-side table [3]
  --sysbench=PATH        the sysbench binary [sysbench]
  The report adds HDR percentiles (p50/p90/p99/p99.9/max), client CPU per
  query (getrusage of the whole process over the run), system calls per query
  (a perf counter on the ring threads) and ring waits per query.

EXPERT (the ring's batched wait; defaults: the library's RingConfig)
  --ring-batch-per=N     wait for one completion per N waiting tasks (0: one)
  --ring-batch-max=N     at most N completions per wait
  --ring-min-wait-us=N   how long a batched wait may hold out for its count
",
        tests.join(", ")
    )
}

/// Where the server is.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp(String, u16),
    Socket(PathBuf),
}

/// The server the run uses, and how to log in.
#[derive(Debug, Clone)]
pub struct Target {
    /// Connection `i` uses endpoint `i % len` (sysbench's host lists).
    pub endpoints: Vec<Endpoint>,
    pub user: String,
    pub password: String,
    pub db: String,
    /// For the output: `user@host:port/db`.
    pub label: String,
    /// The private mariadbd of this process.
    pub private: bool,
    /// The server's process, when it runs on this machine and says its pid.
    pub server_pid: Option<u32>,
}

/// Where libmysqlclient looks for the server's socket on `localhost`.
const DEFAULT_SOCKETS: [&str; 3] = [
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/tmp/mysql.sock",
];

impl Target {
    /// From the `--mysql-*` options (sysbench's defaults for the rest).
    fn from_opts(o: &Opts) -> Target {
        let endpoints = if !o.sockets.is_empty() {
            o.sockets
                .iter()
                .map(|s| Endpoint::Socket(s.into()))
                .collect()
        } else {
            let n = o.hosts.len().max(o.ports.len());
            (0..n)
                .map(|i| {
                    let host = &o.hosts[i % o.hosts.len()];
                    let port = o.ports[i % o.ports.len()];
                    match DEFAULT_SOCKETS
                        .iter()
                        .find(|p| std::path::Path::new(p).exists())
                    {
                        Some(s) if host == "localhost" => Endpoint::Socket(s.into()),
                        _ if host == "localhost" => Endpoint::Tcp("127.0.0.1".into(), port),
                        _ => Endpoint::Tcp(host.clone(), port),
                    }
                })
                .collect()
        };
        let mut t = Target {
            endpoints,
            user: o.user.clone(),
            password: o.password.clone(),
            db: o.db.clone(),
            label: String::new(),
            private: false,
            server_pid: None,
        };
        t.relabel();
        t
    }

    fn relabel(&mut self) {
        let at = match &self.endpoints[0] {
            Endpoint::Tcp(h, p) => format!("{h}:{p}"),
            Endpoint::Socket(s) => s.display().to_string(),
        };
        self.label = format!("{}@{at}/{}", self.user, self.db);
    }

    /// The driver's options for connection `i`.
    pub fn opts(&self, i: usize, o: &Opts) -> mysql_uring::Opts {
        let base = mysql_uring::Opts::new()
            .user(self.user.clone())
            .password(self.password.clone())
            .database(self.db.clone())
            .ssl_mode(SslMode::Disabled)
            .stmt_cache_size(run::cache_size(o));
        match &self.endpoints[i % self.endpoints.len()] {
            Endpoint::Tcp(h, p) => base.host(h.clone()).port(*p),
            Endpoint::Socket(s) => base.socket(s.clone()),
        }
    }

    /// Opens connection `i`.
    pub async fn connect(&self, i: usize, o: &Opts) -> mysql_uring::Result<Connection> {
        mysql_uring::connect(self.opts(i, o)).await
    }

    /// sysbench's options for the same server.
    pub fn sysbench_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        match &self.endpoints[0] {
            Endpoint::Tcp(h, p) => {
                a.push(format!("--mysql-host={h}"));
                a.push(format!("--mysql-port={p}"));
            }
            Endpoint::Socket(s) => a.push(format!("--mysql-socket={}", s.display())),
        }
        a.push(format!("--mysql-user={}", self.user));
        a.push(format!("--mysql-password={}", self.password));
        a.push(format!("--mysql-db={}", self.db));
        a
    }
}

/// `MYSQL_URL` as a target.
fn from_url(url: &str) -> BoxResult<Target> {
    let u = mysql_uring::Opts::from_url(url)?;
    let endpoint = match u.get_socket() {
        Some(s) => Endpoint::Socket(s.to_path_buf()),
        None => Endpoint::Tcp(u.get_host().to_string(), u.get_port()),
    };
    let parsed = url::Url::parse(url)?;
    let password = percent_decode(parsed.password().unwrap_or(""));
    let mut t = Target {
        endpoints: vec![endpoint],
        user: u.get_user().to_string(),
        password,
        db: u.get_database().unwrap_or("sbtest").to_string(),
        label: String::new(),
        private: false,
        server_pid: None,
    };
    t.relabel();
    Ok(t)
}

/// `%XX` escapes decoded (URL passwords).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The private mariadbd, with database `sbtest` and its password user.
fn private_server(db: &str) -> BoxResult<Target> {
    let s = testserver::server();
    let root = s.root_url();
    let create = format!("CREATE DATABASE IF NOT EXISTS `{db}`");
    mysql_uring::runtime::try_start(async move {
        let mut c =
            mysql_uring::connect(mysql_uring::Opts::from_url(&root)?.ssl_mode(SslMode::Disabled))
                .await?;
        c.query_drop(&create).await?;
        c.close().await
    })??;
    let mut t = Target {
        endpoints: vec![Endpoint::Tcp(s.host.clone(), s.port)],
        user: testserver::NATIVE_USER.into(),
        password: testserver::NATIVE_PASSWORD.into(),
        db: db.into(),
        label: String::new(),
        private: true,
        server_pid: None,
    };
    t.relabel();
    t.label = format!("private mariadbd, {}", t.label);
    Ok(t)
}

/// The server's version and pid (when its pid file is readable here).
fn inspect(t: &Target, o: &Opts) -> mysql_uring::Result<(String, Option<u32>)> {
    let (t, o) = (t.clone(), o.clone());
    mysql_uring::runtime::try_start(async move {
        let mut c = t.connect(0, &o).await?;
        let version = c.server_version().to_string();
        let pid_file: Option<String> = c.query("SELECT @@pid_file").await.ok().and_then(|r| {
            r.first()
                .and_then(|r| r.get::<Option<String>>(0).ok().flatten())
        });
        c.close().await?;
        let pid = pid_file.and_then(|f| std::fs::read_to_string(f).ok()?.trim().parse().ok());
        Ok((version, pid))
    })?
}

/// Picks the server (see "THE SERVER" in the help) and says which.
pub fn resolve(o: &Opts) -> BoxResult<(Target, String)> {
    let mut t = if o.mysql_given {
        Target::from_opts(o)
    } else if let Some(url) = std::env::var("MYSQL_URL").ok().filter(|u| !u.is_empty()) {
        from_url(&url)?
    } else {
        let t = Target::from_opts(o);
        match inspect(&t, o) {
            Ok(_) => t,
            Err(e) => {
                eprintln!(
                    "note: no --mysql-* options, and sysbench's default server ({}) did not let \
                     the tool in ({e}): using a private mariadbd instead",
                    t.label
                );
                private_server(&o.db)?
            }
        }
    };
    let (version, pid) =
        inspect(&t, o).map_err(|e| format!("FATAL: unable to connect to {}: {e}", t.label))?;
    t.server_pid = pid;
    Ok((t, version))
}

/// The subcommand: returns the process's exit code.
pub fn main(args: &[String]) -> i32 {
    let o = match opts::parse(args) {
        Ok(Parsed::Help(h)) => {
            print!("{h}");
            return 0;
        }
        Ok(Parsed::Opts(o)) => o,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match dispatch(&o) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn dispatch(o: &Opts) -> BoxResult<()> {
    println!(
        "mysql-uring-bench {} sysbench mode (mysql-uring on io_uring, {} ring thread(s))\n",
        env!("CARGO_PKG_VERSION"),
        o.cores
    );
    let (target, version) = resolve(o)?;
    println!("Server: {} ({version})", target.label);
    if o.compare.is_some() {
        return compare::run(o, &target, &version);
    }
    match o.command {
        Command::Prepare => tables::prepare(o, &target),
        Command::Cleanup => tables::cleanup(o, &target),
        Command::Prewarm => tables::prewarm(o, &target),
        Command::Run => {
            if target.private && !tables::exists(o, &target)? {
                println!("(the private server is new: preparing the tables first)");
                tables::prepare(o, &target)?;
            }
            print_run_mode(o);
            let s = run::run(o, &target, false)?;
            print!("{}", report::text(&s, o.histogram));
            outputs(o, &s)
        }
    }
}

/// sysbench's lines before a run.
fn print_run_mode(o: &Opts) {
    println!("Running the test with following options:");
    println!("Number of threads: {}", o.threads);
    if o.rate > 0 {
        println!("Target transaction rate: {}/sec", o.rate);
    }
    if o.report_interval > 0 {
        println!(
            "Report intermediate results every {} second(s)",
            o.report_interval
        );
    }
    if o.rand_seed != 0 {
        println!(
            "Initializing random number generator from seed ({}).\n",
            o.rand_seed
        );
    } else {
        println!("Initializing random number generator from current time\n");
    }
    println!("\nInitializing worker threads...\n");
}

/// `--json` and `--plot`.
fn outputs(o: &Opts, s: &report::Summary) -> BoxResult<()> {
    if let Some(p) = &o.json {
        let text = serde_json::to_string_pretty(&report::json(s))?;
        if p.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
    }
    if let Some(p) = &o.plot {
        let title = format!(
            "{}, {} connections on {} ring(s)",
            s.test, s.threads, s.cores
        );
        std::fs::write(p, plot::svg(s, &title))
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}
