//! Everything outside the driver in a simulation: virtual time, the seeded
//! generator behind every choice, the network between the simulated
//! sockets and the simulated server, the faults, and the trace.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mysql_uring_simserver::{ConnId, Server};

use super::kernel::Addr;
use super::{Faults, SimStats};
use crate::io::uring::kernel::Submission;

/// A small, fast, seedable generator (splitmix64).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// What the trace records (read through its `Debug` form).
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum Event {
    Submit(u64, Submission),
    Complete(u64, i32, u32),
}

struct SimSock {
    conn: ConnId,
    /// Client bytes on their way to the server (arrival time), not yet
    /// taken by it.
    up: VecDeque<(Instant, Vec<u8>)>,
    up_bytes: usize,
    /// Server bytes on their way to the client.
    down: VecDeque<(Instant, Vec<u8>)>,
    down_bytes: usize,
    /// Bytes arrived at the client, not yet received.
    inbox: VecDeque<u8>,
    /// The client shut the socket down.
    shut: bool,
    /// The connection was reset.
    reset: bool,
    /// The server closed its end: once `down` is empty the client sees EOF.
    server_gone: bool,
}

/// The simulation's world (one per simulated core).
pub(crate) struct World {
    pub(crate) now: Instant,
    base: Instant,
    rng: Rng,
    faults: Faults,
    pub(crate) server: Server,
    addrs: Vec<Addr>,
    socks: Vec<SimSock>,
    by_fd: BTreeMap<RawFd, usize>,
    sndbuf: usize,
    rcvbuf: usize,
    trace: Option<Vec<String>>,
    /// The server's host vanished: nothing reaches it or comes back, no
    /// FIN, no reset; connects never complete.
    vanished: bool,
    pub(crate) failures: Vec<String>,
    pub(crate) stats: SimStats,
}

impl World {
    pub(crate) fn new(
        seed: u64,
        faults: Faults,
        server: Server,
        addrs: Vec<Addr>,
        sndbuf: usize,
        rcvbuf: usize,
        trace: bool,
    ) -> World {
        let base = Instant::now();
        World {
            now: base,
            base,
            rng: Rng::new(seed),
            faults,
            server,
            addrs,
            socks: Vec::new(),
            by_fd: BTreeMap::new(),
            sndbuf: sndbuf.max(1),
            rcvbuf: rcvbuf.max(1),
            trace: trace.then(Vec::new),
            vanished: false,
            failures: Vec::new(),
            stats: SimStats::default(),
        }
    }

    /// Nanoseconds of virtual time since the start (the server's clock).
    pub(crate) fn ns(&self) -> u64 {
        self.now.duration_since(self.base).as_nanos() as u64
    }

    pub(crate) fn advance(&mut self, to: Instant) {
        if to > self.now {
            self.now = to;
            super::clock::set(Some(to));
        }
    }

    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    pub(crate) fn event(&mut self, e: Event) {
        let ns = self.ns();
        if let Some(t) = &mut self.trace {
            if t.len() < 200_000 {
                t.push(format!("{:>12.6} ms  {e:?}", ns as f64 / 1e6));
            }
        }
    }

    pub(crate) fn note(&mut self, what: impl FnOnce() -> String) {
        let ns = self.ns();
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>12.6} ms  {}", ns as f64 / 1e6, what()));
        }
    }

    pub(crate) fn take_trace(&mut self) -> Vec<String> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub(crate) fn fail(&mut self, msg: String) {
        self.note(|| format!("FAILURE: {msg}"));
        self.failures.push(msg);
    }

    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.rng.below(i + 1);
            v.swap(i, j);
        }
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }

    // ------------------------------------------------------------ faults

    pub(crate) fn op_delay(&mut self) -> Duration {
        if self.rng.chance(self.faults.delay) {
            self.stats.delays += 1;
            let max = self.faults.max_delay.as_nanos().max(1) as usize;
            Duration::from_nanos(self.rng.below(max) as u64)
        } else {
            Duration::ZERO
        }
    }

    pub(crate) fn cancel_race(&mut self) -> bool {
        let hit = self.rng.chance(self.faults.cancel_race);
        self.stats.cancel_races += hit as u64;
        hit
    }

    pub(crate) fn chunk_send(&mut self) -> bool {
        let hit = self.rng.chance(self.faults.split_send);
        self.stats.split_sends += hit as u64;
        hit
    }

    pub(crate) fn short_send(&mut self) -> bool {
        let hit = self.rng.chance(self.faults.short_send);
        self.stats.short_sends += hit as u64;
        hit
    }

    pub(crate) fn split_recv(&mut self) -> bool {
        let hit = self.rng.chance(self.faults.split_recv);
        self.stats.split_recvs += hit as u64;
        hit
    }

    pub(crate) fn spurious_wake(&mut self) -> bool {
        let hit = self.rng.chance(self.faults.spurious_wake);
        self.stats.spurious_wakes += hit as u64;
        hit
    }

    pub(crate) fn timer_lateness(&mut self) -> Duration {
        if self.rng.chance(self.faults.late_timer) {
            self.stats.late_timers += 1;
            Duration::from_nanos(self.rng.below(2_000_000) as u64)
        } else {
            Duration::ZERO
        }
    }

    pub(crate) fn count_enobufs(&mut self) {
        self.stats.enobufs += 1;
    }

    fn latency(&mut self) -> Duration {
        let max = self.faults.latency.as_nanos() as usize;
        Duration::from_nanos(self.rng.below(max + 1) as u64)
    }

    // ------------------------------------------------------------ sockets

    pub(crate) fn sock_of(&self, fd: RawFd) -> Option<usize> {
        self.by_fd.get(&fd).copied()
    }

    /// The server's host vanishes (see [`crate::sim::Sim::vanish`]).
    pub(crate) fn vanish(&mut self) {
        self.vanished = true;
        self.note(|| "fault: the server's host vanished".to_string());
    }

    /// True once the host vanished: connects hang.
    pub(crate) fn vanished(&self) -> bool {
        self.vanished
    }

    /// A connect from descriptor `fd` to `to`: 0, or a negative errno.
    pub(crate) fn connect(&mut self, fd: RawFd, to: Addr) -> i32 {
        if !self.addrs.contains(&to) {
            return -libc::ECONNREFUSED;
        }
        if self.rng.chance(self.faults.refuse) {
            self.stats.refused += 1;
            return -libc::ECONNREFUSED;
        }
        let ns = self.ns();
        let conn = self.server.connect(ns);
        self.socks.push(SimSock {
            conn,
            up: VecDeque::new(),
            up_bytes: 0,
            down: VecDeque::new(),
            down_bytes: 0,
            inbox: VecDeque::new(),
            shut: false,
            reset: false,
            server_gone: false,
        });
        self.by_fd.insert(fd, self.socks.len() - 1);
        self.note(|| format!("connect fd {fd} -> server connection {conn}"));
        0
    }

    pub(crate) fn send_error(&self, sock: usize) -> Result<(), i32> {
        let s = &self.socks[sock];
        if s.reset {
            Err(libc::ECONNRESET)
        } else if s.shut || s.server_gone {
            Err(libc::EPIPE)
        } else {
            Ok(())
        }
    }

    pub(crate) fn send_space(&self, sock: usize) -> usize {
        self.sndbuf.saturating_sub(self.socks[sock].up_bytes)
    }

    pub(crate) fn send(&mut self, sock: usize, bytes: &[u8]) {
        let at = self.now + self.latency();
        let s = &mut self.socks[sock];
        s.up_bytes += bytes.len();
        s.up.push_back((at, bytes.to_vec()));
    }

    pub(crate) fn recv_available(&self, sock: usize) -> usize {
        let s = &self.socks[sock];
        if s.reset || s.shut { 0 } else { s.inbox.len() }
    }

    /// How a receive ends when no bytes are left: EOF (0), a reset, or
    /// `None` while more may come.
    pub(crate) fn recv_end(&self, sock: usize) -> Option<i32> {
        let s = &self.socks[sock];
        if s.reset {
            Some(-libc::ECONNRESET)
        } else if s.shut || (s.server_gone && s.down.is_empty() && s.inbox.is_empty()) {
            Some(0)
        } else {
            None
        }
    }

    pub(crate) fn recv(&mut self, sock: usize, n: usize) -> Vec<u8> {
        self.socks[sock].inbox.drain(..n).collect()
    }

    pub(crate) fn shutdown(&mut self, fd: RawFd) {
        let Some(&i) = self.by_fd.get(&fd) else {
            return;
        };
        let ns = self.ns();
        let s = &mut self.socks[i];
        if !s.shut {
            s.shut = true;
            let conn = s.conn;
            self.server.client_closed(conn, ns);
            self.note(|| format!("client shut down fd {fd} (server connection {conn})"));
        }
    }

    /// Moves bytes between the sockets and the server, runs the server,
    /// and injects resets and server-side drops. True when anything moved.
    pub(crate) fn pump_network(&mut self) -> bool {
        if self.vanished {
            return false;
        }
        let ns = self.ns();
        self.server.advance(ns);
        let now = self.now;
        let mut moved = false;
        for i in 0..self.socks.len() {
            if self.socks[i].shut || self.socks[i].reset {
                continue;
            }
            let conn = self.socks[i].conn;
            // Faults: the connection is reset, or the server drops it (the
            // client sees what was sent so far, maybe half a packet, then EOF).
            if !self.socks[i].server_gone && self.rng.chance(self.faults.reset) {
                self.stats.resets += 1;
                self.server.drop_connection(conn, ns);
                self.socks[i].reset = true;
                self.note(|| format!("fault: connection {conn} reset"));
                moved = true;
                continue;
            }
            if !self.socks[i].server_gone && self.rng.chance(self.faults.server_drop) {
                self.stats.server_drops += 1;
                self.server.drop_connection(conn, ns);
                let s = &mut self.socks[i];
                if let Some((_, last)) = s.down.back_mut() {
                    let keep = self.rng.below(last.len() + 1);
                    s.down_bytes -= last.len() - keep;
                    last.truncate(keep);
                }
                self.note(|| format!("fault: server dropped connection {conn}"));
                moved = true;
            }
            // Client -> server, as the server's window allows.
            while let Some((at, _)) = self.socks[i].up.front() {
                if *at > now {
                    break;
                }
                let s = &mut self.socks[i];
                let (_, bytes) = s.up.front_mut().expect("checked");
                let took = self.server.input(conn, bytes, ns);
                if took == 0 {
                    break;
                }
                moved = true;
                s.up_bytes -= took;
                if took == bytes.len() {
                    s.up.pop_front();
                } else {
                    bytes.drain(..took);
                    break;
                }
            }
            // Server -> client, as the client's receive buffer allows.
            let s = &self.socks[i];
            let room = self.rcvbuf.saturating_sub(s.inbox.len() + s.down_bytes);
            if room > 0 && self.server.pending_output(conn) > 0 {
                let bytes = self.server.output(conn, room, ns);
                if !bytes.is_empty() {
                    let at = now + self.latency();
                    let s = &mut self.socks[i];
                    s.down_bytes += bytes.len();
                    s.down.push_back((at, bytes));
                    moved = true;
                }
            }
            let s = &mut self.socks[i];
            while s.down.front().is_some_and(|(at, _)| *at <= now) {
                let (_, bytes) = s.down.pop_front().expect("checked");
                s.down_bytes -= bytes.len();
                s.inbox.extend(bytes);
                moved = true;
            }
            if !s.server_gone
                && self.server.server_closed(conn)
                && self.server.pending_output(conn) == 0
            {
                s.server_gone = true;
                moved = true;
            }
        }
        moved
    }

    /// The earliest future time the network or the server has something to do.
    pub(crate) fn next_event(&self) -> Option<Instant> {
        if self.vanished {
            return None;
        }
        let now = self.now;
        let mut t = self
            .server
            .next_wake()
            .map(|ns| self.base + Duration::from_nanos(ns))
            .filter(|t| *t > now);
        for s in &self.socks {
            if s.shut || s.reset {
                continue;
            }
            for (at, _) in s.up.iter().take(1).chain(s.down.iter().take(1)) {
                if *at > now {
                    t = Some(t.map_or(*at, |t| t.min(*at)));
                }
            }
        }
        t
    }
}
