use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// One server: host name or IP literal, and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// Name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How the hosts of a URL are used.
///
/// Several servers behind one URL: host lists, how a host is chosen for a
/// new connection, and what the driver has learned about each host (a deny
/// list with backoff, connections open, read-only, replica lag).
///
/// `mysql://user:pw@h1:3306,h2:3307,[::1]:3308/db?hosts=MODE`:
///
/// | `hosts=` | a new connection goes to |
/// | --- | --- |
/// | `sequential` (default) | the first host in the list that answers |
/// | `random` | a random host that answers |
/// | `loadbalance` | the host with the fewest connections open from this process |
/// | `galera` | like `loadbalance`, skipping Galera nodes that are not ready (`wsrep_ready`, `wsrep_local_state` Synced) |
/// | `replication` | writes: the first host that is writable (the primary, normally the first); reads (`Client::reads`, read-only transactions): a replica, by load, within `max_replica_lag`, else the primary |
///
/// A host that refuses or drops a connection is denied for a while (1 s,
/// doubling up to 30 s) and tried last; when every host is denied they are
/// all tried anyway, so a recovered server is found. The state is shared by
/// every connection made from the same [`Opts`](crate::Opts) (clones
/// included), across cores and threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HostMode {
    /// The first host that answers (the default).
    #[default]
    Sequential,
    /// A random host that answers.
    Random,
    /// The host with the fewest connections open from this process.
    LoadBalance,
    /// Like `LoadBalance`, skipping Galera nodes that are not ready.
    Galera,
    /// A primary for writes and replicas for reads.
    Replication,
}

impl std::str::FromStr for HostMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<HostMode> {
        Ok(match s {
            "sequential" | "failover" => HostMode::Sequential,
            "random" => HostMode::Random,
            "loadbalance" | "load-balance" | "load_balance" => HostMode::LoadBalance,
            "galera" => HostMode::Galera,
            "replication" => HostMode::Replication,
            other => {
                return Err(Error::config(format!(
                    "invalid URL option hosts={other}: expected sequential, random, loadbalance, \
                     galera or replication"
                )));
            }
        })
    }
}

/// What a connection is for: writes may only go to a writable server;
/// reads may go to replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Writes, transactions, anything (the default).
    #[default]
    Write,
    /// Work marked read-only: replicas when there are some.
    Read,
}

/// Splits the host list of a URL's authority (`h1:3306,h2,[::1]:3307`)
/// into hosts, with `default_port` where none is given.
pub fn parse_host_list(list: &str, default_port: u16) -> Result<Vec<HostAddr>> {
    let mut hosts = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(Error::config(format!(
                "invalid connection URL: an empty host in the host list '{list}'"
            )));
        }
        let (host, port) = if let Some(rest) = part.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(Error::config(format!(
                    "invalid connection URL: '{part}' opens an IPv6 literal with '[' but never closes it"
                )));
            };
            let host = &rest[..end];
            let after = &rest[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => {
                    return Err(Error::config(format!(
                        "invalid connection URL: unexpected '{after}' after the IPv6 literal [{host}]"
                    )));
                }
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(Error::config(format!(
                    "invalid connection URL: '[{host}]' is not an IPv6 address"
                )));
            }
            (host.to_string(), port)
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
                Some(_) => {
                    return Err(Error::config(format!(
                        "invalid connection URL: write the IPv6 address in '{part}' in brackets, \
                         e.g. [::1]:3306"
                    )));
                }
                None => (part.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(Error::config(format!(
                "invalid connection URL: a port without a host in '{part}'"
            )));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(Error::config(format!(
                        "invalid connection URL: '{p}' in '{part}' is not a port (1-65535)"
                    )));
                }
                Ok(p) => p,
            },
        };
        hosts.push(HostAddr { host, port });
    }
    Ok(hosts)
}

/// The first denial lasts this long, doubling per failure up to [`MAX_DENY`].
const FIRST_DENY: Duration = Duration::from_secs(1);
/// The longest a host is denied.
const MAX_DENY: Duration = Duration::from_secs(30);

/// What the driver knows about one host.
#[derive(Debug)]
struct Health {
    /// Consecutive failures (0: healthy).
    failures: u32,
    /// Tried last until then.
    denied_until: Option<Instant>,
    /// Refused writes (`@@read_only` or error 1290/1792) when last seen.
    read_only: bool,
    /// Why it was last denied.
    why: Option<String>,
    /// Seen to be a replica (`Some(true)`) or not (`Some(false)`).
    replica: Option<bool>,
}

struct HostState {
    addr: HostAddr,
    /// Connections open to it from this host set.
    open: AtomicUsize,
    health: Mutex<Health>,
    /// When its replica lag was last checked, as nanoseconds since `epoch`
    /// (0: never).
    lag_checked: AtomicU64,
}

/// The hosts of one URL and what is known of them; shared by every
/// connection made from the same options.
pub struct HostSet {
    hosts: Vec<HostState>,
    mode: HostMode,
    rng: AtomicU64,
    epoch: Instant,
}

impl fmt::Debug for HostSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSet")
            .field("mode", &self.mode)
            .field(
                "hosts",
                &self
                    .hosts
                    .iter()
                    .map(|h| h.addr.to_string())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A snapshot of one host's state, for [`HostSet::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    /// The host.
    pub addr: HostAddr,
    /// Connections open to it from these options.
    pub open: usize,
    /// Denied (tried last) for this much longer.
    pub denied_for: Option<Duration>,
    /// Consecutive failures.
    pub failures: u32,
    /// Seen refusing writes.
    pub read_only: bool,
    /// Why it was last denied.
    pub why: Option<String>,
}

impl HostSet {
    /// A host set; fails for an empty list.
    pub fn new(hosts: Vec<HostAddr>, mode: HostMode) -> Result<Arc<HostSet>> {
        if hosts.is_empty() {
            return Err(Error::config("a host list needs at least one host"));
        }
        let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
        Ok(Arc::new(HostSet {
            hosts: hosts
                .into_iter()
                .map(|addr| HostState {
                    addr,
                    open: AtomicUsize::new(0),
                    health: Mutex::new(Health {
                        failures: 0,
                        denied_until: None,
                        read_only: false,
                        why: None,
                        replica: None,
                    }),
                    lag_checked: AtomicU64::new(0),
                })
                .collect(),
            mode,
            rng: AtomicU64::new(seed | 1),
            epoch: Instant::now(),
        }))
    }

    /// The mode.
    pub fn mode(&self) -> HostMode {
        self.mode
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Never true (a host set has at least one host).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Host `i`.
    pub fn addr(&self, i: usize) -> &HostAddr {
        &self.hosts[i].addr
    }

    /// What is known of every host now.
    pub fn status(&self) -> Vec<HostStatus> {
        let now = Instant::now();
        self.hosts
            .iter()
            .map(|h| {
                let hl = h.health.lock().unwrap_or_else(|e| e.into_inner());
                HostStatus {
                    addr: h.addr.clone(),
                    open: h.open.load(Relaxed),
                    denied_for: hl
                        .denied_until
                        .and_then(|t| t.checked_duration_since(now))
                        .filter(|d| !d.is_zero()),
                    failures: hl.failures,
                    read_only: hl.read_only,
                    why: hl.why.clone(),
                }
            })
            .collect()
    }

    fn denied(&self, i: usize, now: Instant) -> bool {
        let h = self.health(i);
        h.denied_until.is_some_and(|t| t > now)
    }

    fn health(&self, i: usize) -> std::sync::MutexGuard<'_, Health> {
        self.hosts[i]
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Host `i` was seen to be a replica, or not.
    pub(crate) fn set_replica(&self, i: usize, replica: bool) {
        self.health(i).replica = Some(replica);
    }

    fn read_only(&self, i: usize) -> bool {
        self.health(i).read_only
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: no need for more to spread connections.
        let mut x = self.rng.load(Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The hosts to try for a new connection for `role`, best first: hosts
    /// not denied (in the mode's order), then the denied ones (soonest
    /// allowed first), so a connect always tries every host.
    pub fn candidates(&self, role: Role) -> Vec<usize> {
        let now = Instant::now();
        let n = self.hosts.len();
        let mut order: Vec<usize> = (0..n).collect();
        let by_load = |order: &mut Vec<usize>| {
            // Ties go round robin, from a moving start.
            let start = (self.next_random() as usize) % n;
            order.sort_by_key(|&i| (self.hosts[i].open.load(Relaxed), (i + n - start) % n));
        };
        match (self.mode, role) {
            (HostMode::Sequential, _) => {}
            (HostMode::Random, _) => {
                for i in (1..n).rev() {
                    let j = (self.next_random() % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
            }
            (HostMode::LoadBalance | HostMode::Galera, _) => by_load(&mut order),
            (HostMode::Replication, Role::Write) => {
                // Hosts seen read-only go last: a promoted replica is found,
                // a demoted primary is not written to.
                order.sort_by_key(|&i| self.read_only(i));
            }
            (HostMode::Replication, Role::Read) => {
                // Known replicas by load, then hosts not yet seen, then the
                // primaries (the fallback).
                by_load(&mut order);
                order.sort_by_key(|&i| match self.health(i).replica {
                    Some(true) => 0,
                    None => 1,
                    Some(false) => 2,
                });
            }
        }
        // Allowed hosts first, keeping the mode's order; then the denied.
        let (mut allowed, mut denied): (Vec<usize>, Vec<usize>) =
            order.into_iter().partition(|&i| !self.denied(i, now));
        denied.sort_by_key(|&i| self.health(i).denied_until);
        allowed.append(&mut denied);
        allowed
    }

    /// A connection to host `i` succeeded: it is healthy again.
    pub(crate) fn succeeded(&self, i: usize) {
        let mut h = self.health(i);
        h.failures = 0;
        h.denied_until = None;
        h.why = None;
    }

    /// Host `i` failed (refused, dropped, not ready): denied for a while,
    /// longer each time in a row.
    pub(crate) fn failed(&self, i: usize, why: &str) {
        let mut h = self.health(i);
        h.failures = h.failures.saturating_add(1);
        let backoff = FIRST_DENY
            .saturating_mul(1 << (h.failures - 1).min(5))
            .min(MAX_DENY);
        h.denied_until = Some(Instant::now() + backoff);
        h.why = Some(why.to_string());
    }

    /// Host `i` refuses writes (or accepts them again).
    pub(crate) fn set_read_only(&self, i: usize, read_only: bool) {
        self.health(i).read_only = read_only;
    }

    /// True when host `i`'s replica lag was checked less than `every` ago;
    /// otherwise marks it checked now and returns false (one caller checks).
    pub(crate) fn lag_fresh(&self, i: usize, every: Duration) -> bool {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let last = self.hosts[i].lag_checked.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < every.as_nanos() as u64 {
            return true;
        }
        self.hosts[i]
            .lag_checked
            .compare_exchange(last, now.max(1), Relaxed, Relaxed)
            .is_err()
    }

    /// Counts a connection open to host `i` until the guard drops.
    pub(crate) fn open(self: &Arc<Self>, i: usize) -> HostLease {
        self.hosts[i].open.fetch_add(1, Relaxed);
        HostLease {
            set: self.clone(),
            index: i,
        }
    }
}

/// A connection's place in its host set: which host it is on (and counted
/// as open there until dropped).
pub(crate) struct HostLease {
    set: Arc<HostSet>,
    index: usize,
}

impl fmt::Debug for HostLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostLease({})", self.set.addr(self.index))
    }
}

impl HostLease {
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn set(&self) -> &Arc<HostSet> {
        &self.set
    }
}

impl Drop for HostLease {
    fn drop(&mut self) {
        self.set.hosts[self.index].open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(host: &str, port: u16) -> HostAddr {
        HostAddr {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn host_lists_parse_with_default_ports_and_ipv6_literals() {
        let l = parse_host_list("h1:3306,h2,[::1]:3308,[fe80::1],10.0.0.1:1", 3307).unwrap();
        assert_eq!(
            l,
            vec![
                h("h1", 3306),
                h("h2", 3307),
                h("::1", 3308),
                h("fe80::1", 3307),
                h("10.0.0.1", 1)
            ]
        );
        assert_eq!(l[2].to_string(), "[::1]:3308");
        for bad in [
            "h1,,h2", "h1:0", "h1:99999", "[::1", "[nope]:1", "::1:3306", ":3306", "[::1]x",
        ] {
            let e = parse_host_list(bad, 3306).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn modes_order_hosts_and_denied_hosts_go_last() {
        let s = HostSet::new(vec![h("a", 1), h("b", 2), h("c", 3)], HostMode::Sequential).unwrap();
        assert_eq!(s.candidates(Role::Write), vec![0, 1, 2]);
        s.failed(0, "refused");
        assert_eq!(
            s.candidates(Role::Write),
            vec![1, 2, 0],
            "a denied: tried last"
        );
        let st = s.status();
        assert_eq!(st[0].failures, 1);
        assert!(st[0].denied_for.is_some());
        assert_eq!(st[0].why.as_deref(), Some("refused"));
        s.succeeded(0);
        assert_eq!(s.candidates(Role::Write), vec![0, 1, 2]);

        let lb =
            HostSet::new(vec![h("a", 1), h("b", 2), h("c", 3)], HostMode::LoadBalance).unwrap();
        let _x = lb.open(0);
        let _y = lb.open(0);
        let _z = lb.open(2);
        assert_eq!(lb.candidates(Role::Write)[0], 1, "the least loaded first");
        drop((_x, _y));
        assert_eq!(lb.status()[0].open, 0, "leases count down when dropped");

        let r = HostSet::new(
            vec![h("p", 1), h("r1", 2), h("r2", 3)],
            HostMode::Replication,
        )
        .unwrap();
        assert_eq!(r.candidates(Role::Write), vec![0, 1, 2]);
        r.set_replica(0, false);
        let reads = r.candidates(Role::Read);
        assert_eq!(reads.last(), Some(&0), "the primary is the read fallback");
        assert!(reads[..2].contains(&1) && reads[..2].contains(&2));
        r.set_replica(1, true);
        assert_eq!(r.candidates(Role::Read)[0], 1, "known replicas first");
        r.set_read_only(0, true);
        assert_eq!(
            r.candidates(Role::Write)[0],
            1,
            "a read-only primary is not written to"
        );

        let rnd = HostSet::new((0..8).map(|i| h("x", i + 1)).collect(), HostMode::Random).unwrap();
        let firsts: std::collections::HashSet<usize> =
            (0..50).map(|_| rnd.candidates(Role::Write)[0]).collect();
        assert!(firsts.len() > 2, "random spreads: {firsts:?}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = HostSet::new(vec![h("a", 1)], HostMode::Sequential).unwrap();
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            s.failed(0, "x");
            let d = s.status()[0].denied_for.unwrap();
            assert!(
                d >= last.min(MAX_DENY - Duration::from_millis(50)),
                "{d:?} {last:?}"
            );
            assert!(d <= MAX_DENY);
            last = d;
        }
        assert!(last > Duration::from_secs(20));
        // Every host denied: still every host is a candidate.
        assert_eq!(s.candidates(Role::Write), vec![0]);
    }

    #[test]
    fn modes_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!(
            "loadbalance".parse::<HostMode>().unwrap(),
            HostMode::LoadBalance
        );
        assert_eq!(
            "replication".parse::<HostMode>().unwrap(),
            HostMode::Replication
        );
        let e = "roundrobin".parse::<HostMode>().unwrap_err();
        assert!(e.to_string().contains("sequential, random"), "{e}");
    }
}
