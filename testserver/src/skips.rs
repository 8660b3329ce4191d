//! Tests that skip themselves: deprecated. A test that calls [`skip`] and
//! returns early is still counted as *passed* by libtest, whatever this
//! module prints at exit. Instead:
//!
//! - when the condition is known at build time (`MYSQL_URL` set, or naming a
//!   Unix socket), mark the test
//!   `#[cfg_attr(external_server, ignore = "why")]` (or `external_socket`):
//!   the build scripts of the workspace's packages set those cfgs, and
//!   `cargo test` then reports the test `ignored, why`;
//! - when only the server can tell (MySQL 8 for zstd compression), give the
//!   tests a harness of their own that reports them ignored at run time, as
//!   `tests/zstd.rs` does with libtest-mimic.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records that the calling test skips itself, and why (printed now, and
/// counted in the summary at exit). The test still counts as passed: see
/// the module's documentation for what to do instead:
///
/// ```text
/// #[test]
/// #[cfg_attr(external_server, ignore = "needs the private server's users")]
/// fn native_password_user() {
///     let s = mysql_uring_testserver::server();
///     // ...
/// }
/// ```
#[deprecated(note = "a test that returns early counts as passed: mark it \
            #[cfg_attr(external_server, ignore = \"why\")] (cfgs from build.rs), \
            or decide at run time in a libtest-mimic harness as tests/zstd.rs does")]
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
#[deprecated(note = "see skip: skipped tests are reported by libtest as ignored")]
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
