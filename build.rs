// Test-only cfgs for this package's tests, and (through `include!`) for those
// of testserver/ and bench/. They are decided at build time because a
// libtest `#[test]` cannot report itself ignored once running: a test that
// cannot run in this setup carries `#[cfg_attr(CFG, ignore = "why")]`, so
// `cargo test` counts it as ignored and prints why, where an early `return`
// would have counted it as passed.
//
// - `external_server`: MYSQL_URL is set, so the tests use that server and
//   start no private one: tests that need the private server (its users,
//   certificates, Unix socket, settings, or killing it) are ignored.
// - `external_socket`: MYSQL_URL names a Unix socket (`socket=`): tests that
//   need the test server over TCP are ignored.
//
// What only the server can tell (zstd: MySQL 8.0.18+) is decided at run time
// by a harness of its own instead (tests/zstd.rs). The library's code does
// not look at these cfgs; they cost a rebuild of the package when MYSQL_URL
// changes, nothing more.
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=MYSQL_URL");
    println!("cargo::rustc-check-cfg=cfg(external_server)");
    println!("cargo::rustc-check-cfg=cfg(external_socket)");
    let url = std::env::var("MYSQL_URL").unwrap_or_default();
    if !url.is_empty() {
        println!("cargo::rustc-cfg=external_server");
        let query = url.split_once('?').map_or("", |(_, q)| q);
        if query.split('&').any(|kv| kv.starts_with("socket=")) {
            println!("cargo::rustc-cfg=external_socket");
        }
    }
}
