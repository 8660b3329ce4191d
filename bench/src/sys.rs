//! CPU accounting and pinning: `getrusage`, `/proc`, `sched_setaffinity`.

use std::time::Duration;

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time of the whole process (all its threads, io_uring workers included).
pub fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
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
    // checked above, and sched_setaffinity validates the rest.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Pins every thread of process `pid` to `cpu`; threads it creates later
/// inherit the affinity of their creator.
pub fn pin_process(pid: u32, cpu: usize) -> std::io::Result<()> {
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = t?.file_name().to_str().and_then(|s| s.parse().ok()) {
            pin(tid, cpu)?;
        }
    }
    Ok(())
}
