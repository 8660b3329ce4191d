//! CPU accounting and pinning: `getrusage`, `/proc`, a `perf_event_open`
//! system-call counter, `sched_setaffinity`, and putting the server's
//! affinity back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

pub fn getrusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage fills the zeroed struct it is given.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    }
}

pub fn tv(t: libc::timeval) -> Duration {
    Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000)
}

fn rusage(who: libc::c_int) -> Duration {
    let ru = getrusage(who);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of the whole process (all its threads, io_uring workers included).
pub fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// What a client thread spent over a measured phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCost {
    /// User CPU time. The kernel splits a thread's time between user and
    /// system at the scheduler tick, so the split is coarse on short phases
    /// (the sum is exact).
    pub user: Duration,
    /// System (kernel) CPU time.
    pub sys: Duration,
    /// Voluntary context switches: how often the thread went to sleep.
    pub sleeps: u64,
    /// System calls the thread entered, when they can be counted.
    pub syscalls: Option<u64>,
}

impl ThreadCost {
    /// User plus system time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }

    /// Adds another thread's cost (system calls only if both have them).
    pub fn add(&mut self, o: &ThreadCost) {
        self.user += o.user;
        self.sys += o.sys;
        self.sleeps += o.sleeps;
        self.syscalls = self.syscalls.zip(o.syscalls).map(|(a, b)| a + b);
    }
}

/// Measures the calling thread between [`ThreadMeter::start`] and
/// [`ThreadMeter::stop`] (which must run on the same thread).
pub struct ThreadMeter {
    ru: libc::rusage,
    counter: Option<SyscallCounter>,
    syscalls0: u64,
}

impl ThreadMeter {
    /// Starts measuring the calling thread.
    pub fn start() -> ThreadMeter {
        let counter = SyscallCounter::open();
        let syscalls0 = counter.as_ref().map_or(0, SyscallCounter::read);
        ThreadMeter {
            ru: getrusage(libc::RUSAGE_THREAD),
            counter,
            syscalls0,
        }
    }

    /// What the thread spent since [`ThreadMeter::start`].
    pub fn stop(self) -> ThreadCost {
        let syscalls = self.counter.as_ref().map(|c| c.read() - self.syscalls0);
        let ru = getrusage(libc::RUSAGE_THREAD);
        ThreadCost {
            user: tv(ru.ru_utime).saturating_sub(tv(self.ru.ru_utime)),
            sys: tv(ru.ru_stime).saturating_sub(tv(self.ru.ru_stime)),
            sleeps: (ru.ru_nvcsw - self.ru.ru_nvcsw) as u64,
            syscalls,
        }
    }
}

/// The kernel's `struct perf_event_attr` up to `config2` (`PERF_ATTR_SIZE_VER1`).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
}

/// `perf_event_attr.type` of a tracepoint (`config` is its id). All flags
/// stay clear: counting starts at once, kernel events included.
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `perf_event_open` flag: the fd is close-on-exec.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// Where the `raw_syscalls:sys_enter` tracepoint's id can be read.
const TRACEPOINT_IDS: [&str; 2] = [
    "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
    "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
];

/// The tracepoint id, or why system calls cannot be counted.
fn tracepoint_id() -> &'static Result<u64, String> {
    static ID: OnceLock<Result<u64, String>> = OnceLock::new();
    ID.get_or_init(|| {
        for p in TRACEPOINT_IDS {
            if let Ok(s) = std::fs::read_to_string(p) {
                return s
                    .trim()
                    .parse()
                    .map_err(|_| format!("{p} holds `{}`, not a number", s.trim()));
            }
        }
        Err(format!(
            "the raw_syscalls:sys_enter tracepoint id is not readable at {} (tracefs not \
             mounted? as root: mount -t tracefs nodev /sys/kernel/tracing)",
            TRACEPOINT_IDS.join(" or ")
        ))
    })
}

/// Says once, on stderr, why system calls are not counted.
fn explain_once(why: &str) {
    static SAID: Once = Once::new();
    SAID.call_once(|| eprintln!("syscalls/query shows `–`: {why}"));
}

/// Why system calls cannot be counted, if they cannot (tried on the
/// calling thread; the reason is said once on stderr).
pub fn syscall_counting() -> Option<String> {
    match SyscallCounter::open_inner() {
        Ok(_) => None,
        Err(why) => {
            explain_once(&why);
            Some(why)
        }
    }
}

/// Counts the system calls the calling thread enters: a `perf_event_open`
/// counter on the `raw_syscalls:sys_enter` tracepoint, for this thread only
/// (not inherited by threads it starts), on whatever CPU it runs.
struct SyscallCounter {
    fd: libc::c_int,
}

impl SyscallCounter {
    /// A counter for the calling thread, or `None` (said once on stderr).
    fn open() -> Option<SyscallCounter> {
        static FAILED: AtomicBool = AtomicBool::new(false);
        if FAILED.load(Ordering::Relaxed) {
            return None;
        }
        match Self::open_inner() {
            Ok(c) => Some(c),
            Err(why) => {
                FAILED.store(true, Ordering::Relaxed);
                explain_once(&why);
                None
            }
        }
    }

    fn open_inner() -> Result<SyscallCounter, String> {
        let id = tracepoint_id().clone()?;
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            ..Default::default()
        };
        // SAFETY: perf_event_open reads `size` bytes of a valid attr; pid 0 and
        // cpu -1: the calling thread on any CPU; no group, no flags.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "perf_event_open on the raw_syscalls:sys_enter tracepoint failed: {e} \
                 (needs root or kernel.perf_event_paranoid <= -1)"
            ));
        }
        Ok(SyscallCounter {
            fd: fd as libc::c_int,
        })
    }

    /// The count so far (the read itself included).
    fn read(&self) -> u64 {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into `v` from our own perf fd.
        let n = unsafe { libc::read(self.fd, (&mut v as *mut u64).cast(), 8) };
        if n == 8 { v } else { 0 }
    }
}

impl Drop for SyscallCounter {
    fn drop(&mut self) {
        // SAFETY: our own fd, closed once.
        unsafe { libc::close(self.fd) };
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64
}

/// CPU time of another process, from /proc (clock-tick resolution).
pub fn pid_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks()))
}

/// Busy time of all CPUs together, from /proc/stat (clock-tick resolution).
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    Some(Duration::from_nanos(busy * 1_000_000_000 / clock_ticks()))
}

/// Restricts thread `tid` (0: the calling thread) to `cpu`.
pub fn pin(tid: libc::pid_t, cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::other(format!("CPU {cpu} is out of range")));
    }
    // SAFETY: a zeroed cpu_set_t is an empty set; cpu < CPU_SETSIZE was
    // checked above.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    };
    set_affinity(tid, &set)
}

fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: a valid cpu_set_t of the size given; the kernel validates the rest.
    if unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn get_affinity(tid: libc::pid_t) -> std::io::Result<libc::cpu_set_t> {
    // SAFETY: the kernel fills the zeroed set of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(set)
    }
}

/// The thread ids of process `pid`.
fn threads(pid: u32) -> std::io::Result<Vec<libc::pid_t>> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = t?.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(tid);
        }
    }
    Ok(out)
}

/// A server process's CPU affinity before `--pin-server` changed it.
struct SavedAffinity {
    pid: u32,
    /// Each thread's mask when it was pinned.
    threads: Vec<(libc::pid_t, libc::cpu_set_t)>,
    /// The main thread's mask: for threads started after the pinning.
    process: libc::cpu_set_t,
}

/// What [`restore_server_affinity`] puts back (taken at most once).
static SAVED: Mutex<Option<SavedAffinity>> = Mutex::new(None);

/// Pins every thread of process `pid` to `cpu` (threads it starts later
/// inherit the affinity of their creator), after saving the affinity each
/// had; [`restore_server_affinity`] puts it back, and so does Ctrl-C or
/// SIGTERM while the tool runs.
pub fn pin_process(pid: u32, cpu: usize) -> std::io::Result<()> {
    let process = get_affinity(pid as libc::pid_t)?;
    let mut saved = Vec::new();
    for tid in threads(pid)? {
        // A thread may exit between the listing and here: skip it.
        if let Ok(set) = get_affinity(tid) {
            saved.push((tid, set));
        }
    }
    *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(SavedAffinity {
        pid,
        threads: saved,
        process,
    });
    restore_on_signal();
    for tid in threads(pid)? {
        match pin(tid, cpu) {
            Ok(()) => {}
            // Exited in between.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Puts back the affinity [`pin_process`] changed: each thread's own mask,
/// and the process's for threads started since. Once; later calls do
/// nothing. Returns how many threads were restored.
pub fn restore_server_affinity() -> std::io::Result<usize> {
    let Some(saved) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Ok(0);
    };
    let mut n = 0;
    for tid in threads(saved.pid)? {
        let set = saved
            .threads
            .iter()
            .find(|(t, _)| *t == tid)
            .map_or(&saved.process, |(_, s)| s);
        if set_affinity(tid, set).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// The write end of the pipe the signal handler writes to.
static SIGNAL_PIPE: OnceLock<libc::c_int> = OnceLock::new();

extern "C" fn on_signal(sig: libc::c_int) {
    if let Some(&fd) = SIGNAL_PIPE.get() {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; one byte from the stack.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// On SIGINT or SIGTERM: restore the server's affinity, then exit (130 or
/// 143). The handler only writes the signal number to a pipe; a thread
/// waiting on the pipe does the work outside signal context.
fn restore_on_signal() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two fds.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        let _ = SIGNAL_PIPE.set(fds[1]);
        let read_fd = fds[0];
        let waiter = std::thread::Builder::new()
            .name("restore-affinity".into())
            .spawn(move || {
                let mut b = 0u8;
                // SAFETY: reads one byte from our own pipe.
                let n = unsafe { libc::read(read_fd, (&mut b as *mut u8).cast(), 1) };
                if n != 1 {
                    return;
                }
                match restore_server_affinity() {
                    Ok(n) if n > 0 => {
                        eprintln!(
                            "\nmysql-uring-bench: restored the server's CPU affinity ({n} threads)"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!(
                        "\nmysql-uring-bench: could not restore the server's CPU affinity: {e}"
                    ),
                }
                std::process::exit(128 + b as i32);
            });
        if waiter.is_err() {
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: installs a handler that only calls write(2); the
            // sigaction struct is fully initialised.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}
