//! Deterministic simulation (feature `sim`): the driver's real code — its
//! ring loop, connections, pools, pipelines — on a seeded simulated kernel,
//! against a simulated MariaDB, in virtual time.
//!
//! One seed decides everything: which faults are on (each schedule turns on
//! a random subset), the order in which operations complete, how sends and
//! receives are split, when connections reset. The same seed replays the
//! same run exactly. What the simulated kernel checks on every step: memory
//! handed to it is neither freed nor changed before the operation's last
//! completion (with [`CheckingAllocator`] installed), and no provided buffer
//! is published twice; the simulated server reports protocol violations;
//! a loop that can never wake again is reported as a hang.
//!
//! ```ignore
//! use mysql_uring::sim::{Sim, SimConfig};
//! let sim = Sim::new(&SimConfig::from_seed(42))?;
//! let opts = sim.opts();
//! sim.block_on(async move {
//!     let mut c = mysql_uring::connect(opts).await?;
//!     c.query("SELECT 7").await
//! })?;
//! assert!(sim.failures().is_empty());
//! ```

pub(crate) mod clock;
pub(crate) mod kernel;
mod memory;
pub(crate) mod world;

use std::cell::RefCell;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

pub use memory::{CheckingAllocator, checking};
pub use mysql_uring_simserver as server;

use crate::runtime::{LocalRuntime, RingConfig};
use kernel::{Addr, SimKernel};
use world::{Rng, World};

/// The TCP address of the simulated server.
pub const SERVER_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 3306);
/// The Unix socket path of the simulated server.
pub const SERVER_SOCKET: &str = "/nonexistent/mysql-uring-sim/mysqld.sock";

/// How often each fault happens (probabilities per chance to happen).
#[derive(Debug, Clone)]
pub struct Faults {
    /// An operation's completion is delayed (by up to `max_delay`).
    pub delay: f64,
    /// The longest such delay.
    pub max_delay: Duration,
    /// Network latency per segment, up to this.
    pub latency: Duration,
    /// A send moves only part of what the socket would take in one step.
    pub split_send: f64,
    /// A send completes short (fewer bytes than asked).
    pub short_send: f64,
    /// A receive delivers fewer bytes than are there (any split, down to one byte).
    pub split_recv: f64,
    /// A cancel loses the race against the operation's completion.
    pub cancel_race: f64,
    /// A wait returns early with nothing (EINTR).
    pub spurious_wake: f64,
    /// A wait's timeout fires late.
    pub late_timer: f64,
    /// A connection is reset (per network step and connection).
    pub reset: f64,
    /// The server drops a connection, maybe mid-packet (per step and connection).
    pub server_drop: f64,
    /// A connect is refused.
    pub refuse: f64,
}

impl Faults {
    /// The names of the fault knobs, for [`Faults::disable`].
    pub const KNOBS: [&'static str; 12] = [
        "delay",
        "latency",
        "split_send",
        "short_send",
        "split_recv",
        "cancel_race",
        "spurious_wake",
        "late_timer",
        "reset",
        "server_drop",
        "refuse",
        "small_buffers",
    ];

    /// Turns the fault `knob` off (one of [`Faults::KNOBS`]).
    pub fn disable(&mut self, knob: &str) {
        match knob {
            "delay" => self.delay = 0.0,
            "latency" => self.latency = Duration::ZERO,
            "split_send" => self.split_send = 0.0,
            "short_send" => self.short_send = 0.0,
            "split_recv" => self.split_recv = 0.0,
            "cancel_race" => self.cancel_race = 0.0,
            "spurious_wake" => self.spurious_wake = 0.0,
            "late_timer" => self.late_timer = 0.0,
            "reset" => self.reset = 0.0,
            "server_drop" => self.server_drop = 0.0,
            "refuse" => self.refuse = 0.0,
            _ => {}
        }
    }

    /// The sum of the fault probabilities (0: a run without faults).
    pub fn total_probability(&self) -> f64 {
        self.delay
            + self.split_send
            + self.short_send
            + self.split_recv
            + self.cancel_race
            + self.spurious_wake
            + self.late_timer
            + self.reset
            + self.server_drop
            + self.refuse
            + self.latency.as_secs_f64()
    }

    /// No faults at all: the kernel completes everything at once, in order.
    pub fn none() -> Faults {
        Faults {
            delay: 0.0,
            max_delay: Duration::ZERO,
            latency: Duration::ZERO,
            split_send: 0.0,
            short_send: 0.0,
            split_recv: 0.0,
            cancel_race: 0.0,
            spurious_wake: 0.0,
            late_timer: 0.0,
            reset: 0.0,
            server_drop: 0.0,
            refuse: 0.0,
        }
    }

    /// A random subset of faults at random rates ("swarm testing": each
    /// schedule stresses different things).
    fn swarm(rng: &mut Rng) -> Faults {
        let mut p = |on: f64, max: f64| {
            if rng.chance(on) {
                (rng.next() % 1000) as f64 / 1000.0 * max
            } else {
                0.0
            }
        };
        let f = Faults {
            delay: p(0.5, 0.5),
            max_delay: Duration::ZERO,
            latency: Duration::ZERO,
            split_send: p(0.5, 0.9),
            short_send: p(0.3, 0.3),
            split_recv: p(0.6, 0.9),
            cancel_race: p(0.4, 0.8),
            spurious_wake: p(0.3, 0.1),
            late_timer: p(0.3, 0.5),
            reset: p(0.15, 0.002),
            server_drop: p(0.15, 0.002),
            refuse: p(0.1, 0.1),
        };
        Faults {
            max_delay: Duration::from_micros(rng.next() % 3000),
            latency: Duration::from_micros(if rng.chance(0.5) {
                rng.next() % 2000
            } else {
                0
            }),
            ..f
        }
    }
}

/// Counts of the faults a run injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    pub delays: u64,
    pub split_sends: u64,
    pub short_sends: u64,
    pub split_recvs: u64,
    pub cancel_races: u64,
    pub spurious_wakes: u64,
    pub late_timers: u64,
    pub resets: u64,
    pub server_drops: u64,
    pub refused: u64,
    pub enobufs: u64,
}

impl SimStats {
    /// Every fault injected.
    pub fn total(&self) -> u64 {
        self.delays
            + self.split_sends
            + self.short_sends
            + self.split_recvs
            + self.cancel_races
            + self.spurious_wakes
            + self.late_timers
            + self.resets
            + self.server_drops
            + self.refused
            + self.enobufs
    }

    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &SimStats) {
        self.delays += o.delays;
        self.split_sends += o.split_sends;
        self.short_sends += o.short_sends;
        self.split_recvs += o.split_recvs;
        self.cancel_races += o.cancel_races;
        self.spurious_wakes += o.spurious_wakes;
        self.late_timers += o.late_timers;
        self.resets += o.resets;
        self.server_drops += o.server_drops;
        self.refused += o.refused;
        self.enobufs += o.enobufs;
    }
}

/// Everything a simulation run is made of; [`SimConfig::from_seed`] draws
/// it all from one seed.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed of every choice the kernel makes.
    pub seed: u64,
    pub faults: Faults,
    /// The driver's ring, as small as it gets: few, small provided buffers
    /// and a tiny submission queue force the rare paths.
    pub ring: RingConfig,
    /// Socket buffer sizes (client send, client receive).
    pub sndbuf: usize,
    pub rcvbuf: usize,
    pub server: server::Config,
    /// Record every submission and completion (for a replay).
    pub trace: bool,
    /// How long (real time) a core with nothing else to do waits for a
    /// wake-up from another thread before the run counts as a hang: zero
    /// when the run has no other threads.
    pub remote_grace: Duration,
    /// File reads never complete once they run (storage that stopped
    /// answering), and cannot be cancelled.
    pub hang_file_reads: bool,
}

impl SimConfig {
    /// A configuration drawn from `seed`: a random subset of faults, a
    /// random ring shape and socket buffer sizes.
    pub fn from_seed(seed: u64) -> SimConfig {
        let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
        let faults = Faults::swarm(&mut rng);
        let pick = |rng: &mut Rng, v: &[usize]| v[rng.below(v.len())];
        let ring = RingConfig {
            entries: pick(&mut rng, &[4, 16, 256]) as u32,
            buffers: pick(&mut rng, &[2, 8, 64]) as u16,
            buffer_size: pick(&mut rng, &[64, 1024, 16 * 1024]),
            inbox_limit: pick(&mut rng, &[4 * 1024, 64 * 1024, 4 << 20]),
            fixed_files: pick(&mut rng, &[0, 4, 1024]) as u32,
            batch_per: pick(&mut rng, &[0, 2]),
            ..RingConfig::default()
        };
        let sndbuf = pick(&mut rng, &[512, 16 * 1024, 256 * 1024]);
        let rcvbuf = pick(&mut rng, &[512, 16 * 1024, 256 * 1024]);
        let server = server::Config {
            latency_ns: pick(&mut rng, &[0, 20_000, 500_000]) as u64,
            recv_window: pick(&mut rng, &[4 * 1024, 256 * 1024]),
            out_window: pick(&mut rng, &[4 * 1024, 256 * 1024]),
            ..server::Config::default()
        };
        SimConfig {
            seed,
            faults,
            ring,
            sndbuf,
            rcvbuf,
            server,
            trace: false,
            remote_grace: Duration::ZERO,
            hang_file_reads: false,
        }
    }

    /// No faults, a default ring: the happy path in virtual time.
    pub fn calm(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            faults: Faults::none(),
            ring: RingConfig::default(),
            sndbuf: 256 * 1024,
            rcvbuf: 256 * 1024,
            server: server::Config::default(),
            trace: false,
            remote_grace: Duration::ZERO,
            hang_file_reads: false,
        }
    }
}

/// A simulated core on this thread: a [`LocalRuntime`] whose ring is the
/// simulated kernel, with the simulated server behind it.
pub struct Sim {
    /// Declared first: dropped (closing its sockets) before the world.
    rt: Option<LocalRuntime>,
    world: Rc<RefCell<World>>,
    id: u32,
    user: String,
    password: String,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("id", &self.id).finish()
    }
}

impl Sim {
    /// A simulated core configured by `cfg`.
    pub fn new(cfg: &SimConfig) -> crate::Result<Sim> {
        let id = memory::new_sim();
        let addrs = vec![
            Addr::Inet(SERVER_ADDR),
            Addr::Unix(PathBuf::from(SERVER_SOCKET)),
        ];
        let world = World::new(
            cfg.seed,
            cfg.faults.clone(),
            server::Server::new(cfg.server.clone()),
            addrs,
            cfg.sndbuf,
            cfg.rcvbuf,
            cfg.trace,
        );
        clock::set(Some(world.now));
        let world = Rc::new(RefCell::new(world));
        let kernel = SimKernel::new(
            world.clone(),
            id,
            cfg.ring.entries as usize,
            cfg.remote_grace,
            cfg.hang_file_reads,
        );
        let rt = LocalRuntime::simulated(&cfg.ring, Box::new(kernel))?;
        Ok(Sim {
            rt: Some(rt),
            world,
            id,
            user: cfg.server.user.clone(),
            password: cfg.server.password.clone(),
        })
    }

    /// Runs `fut` (and the tasks it spawns) on the simulated core.
    pub fn block_on<F: Future>(&self, fut: F) -> crate::Result<F::Output> {
        self.runtime().block_on(fut)
    }

    /// The runtime, to spawn tasks on or run more futures.
    pub fn runtime(&self) -> &LocalRuntime {
        self.rt.as_ref().expect("the runtime lives until finish")
    }

    /// Drops the runtime (its tasks, connections and ring, as a dropped
    /// `LocalRuntime` does), then returns every failure, including frees
    /// of memory the kernel still referenced that happened while it went.
    pub fn finish(mut self) -> Vec<String> {
        drop(self.rt.take());
        self.failures()
    }

    /// Options for the simulated server over TCP (no TLS).
    pub fn opts(&self) -> crate::Opts {
        crate::Opts::new()
            .host(SERVER_ADDR.ip().to_string())
            .port(SERVER_ADDR.port())
            .user(&self.user)
            .password(&self.password)
            .ssl_mode(crate::opts::SslMode::Disabled)
    }

    /// Options for the simulated server over its Unix socket.
    pub fn unix_opts(&self) -> crate::Opts {
        self.opts().socket(SERVER_SOCKET)
    }

    /// Runs `f` on the simulated server (to read its state: the oracle).
    pub fn server<R>(&self, f: impl FnOnce(&mut server::Server) -> R) -> R {
        f(&mut self.world.borrow_mut().server)
    }

    /// The server's host vanishes: from now on nothing reaches it or comes
    /// back (no FIN, no reset) and connects never complete, as when a
    /// machine or its network goes away.
    pub fn vanish(&self) {
        self.world.borrow_mut().vanish();
    }

    /// Everything the simulation saw go wrong: memory freed or changed
    /// while the kernel referenced it, buffers published twice, protocol
    /// violations the server saw, a loop that could never wake.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = memory::take_violations(self.id)
            .iter()
            .map(memory::Violation::describe)
            .collect();
        let mut w = self.world.borrow_mut();
        out.append(&mut w.failures);
        out.extend(
            w.server
                .violations()
                .iter()
                .map(|v| format!("the server saw a protocol violation: {v}")),
        );
        out
    }

    /// The recorded steps (with [`SimConfig::trace`]).
    pub fn trace(&self) -> Vec<String> {
        self.world.borrow_mut().take_trace()
    }

    /// Adds a line to the trace (what the workload is doing).
    pub fn note(&self, line: impl FnOnce() -> String) {
        self.world.borrow_mut().note(line);
    }

    /// The faults injected so far.
    pub fn stats(&self) -> SimStats {
        self.world.borrow().stats
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        let w = self.world.borrow();
        Duration::from_nanos(w.ns())
    }

    /// A number from the simulation's generator (for workloads that want
    /// their choices in the same replayable stream).
    pub fn random(&self) -> u64 {
        self.world.borrow_mut().rng().next()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        clock::set(None);
    }
}

/// Runs `stages` on `conn` as one multiplexed round trip, the way a
/// [`Client`](crate::Client) core runs calls batched by
/// [`ClientBuilder::multiplex`](crate::ClientBuilder::multiplex): one result
/// per stage, in order. For the simulation's workload; not an API.
pub async fn exec_multiplexed(
    conn: &mut crate::Connection,
    stages: &[(&str, Vec<crate::Value>)],
) -> Vec<crate::Result<crate::StageOutput>> {
    let refs: Vec<(&str, &Vec<crate::Value>)> = stages.iter().map(|(s, p)| (*s, p)).collect();
    let mut out: Vec<Option<crate::Result<crate::StageOutput>>> =
        stages.iter().map(|_| None).collect();
    conn.exec_multiplexed(
        &refs,
        &mut |i, r| {
            assert!(out[i].is_none(), "stage {i} was delivered twice");
            out[i] = Some(r);
        },
        &mut |_| {},
    )
    .await;
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| panic!("stage {i} was never delivered")))
        .collect()
}
