//! Tests that skip themselves (they need this crate's private server, and
//! `MYSQL_URL` points elsewhere; or they need a server of another kind, such
//! as MySQL 8 for zstd compression) say so, and the count is printed when the
//! test binary exits, so a run never looks complete when it was not.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records that the calling test skips itself, and why (printed now, and
/// counted in the summary at exit).
///
/// ```no_run
/// if mysql_uring_testserver::external() {
///     mysql_uring_testserver::skip("needs the private server's users");
///     return;
/// }
/// ```
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    eprintln!("skipped {test}: {why}");
    SKIPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!("{test} ({why})"));
    static HOOKED: AtomicBool = AtomicBool::new(false);
    if !HOOKED.swap(true, Ordering::SeqCst) {
        // SAFETY: a plain extern "C" function that never unwinds.
        unsafe { libc::atexit(summary) };
    }
}

/// How many tests of this process skipped themselves so far.
pub fn skipped() -> usize {
    SKIPPED.lock().unwrap_or_else(|e| e.into_inner()).len()
}

extern "C" fn summary() {
    let list = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if list.is_empty() {
        return;
    }
    eprintln!(
        "\nmysql-uring-testserver: {} test(s) of this binary SKIPPED, each for the reason \
         given (those needing the private server run without MYSQL_URL):",
        list.len()
    );
    for t in list.iter() {
        eprintln!("  - {t}");
    }
}
