//! The compressed protocol (zlib) against the real server, on plain TCP and
//! TLS: small and large results, packets across the 16 MiB boundary both
//! ways, prepared statements, pipelines, LOAD DATA LOCAL and multi-results.
//!
//! The helpers are shared with the zstd variants (tests/common/compressed.rs).
//! zstd is MySQL 8.0.18+ only (MariaDB offers zlib alone), which only the
//! server can say, so those variants are a test binary of their own,
//! tests/zstd.rs, that reports them ignored, with the reason, when the
//! server or the build cannot run them. (Without a MySQL 8, zstd is tested
//! against golden packets in src/proto/compress.rs and a scripted peer in
//! tests/scripted_peer.rs.)

use mysql_uring::Compression as Algorithm;

use crate::run;

#[path = "../common/compressed.rs"]
mod compressed;

use compressed::{across_16_mib, load_data_and_multi_results, queries_results_and_statements};

const ZLIB: Algorithm = Algorithm::Zlib(6);

#[test]
fn queries_results_and_statements_round_trip_compressed() {
    run(queries_results_and_statements(ZLIB))
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs max_allowed_packet >= 40M (the private server has it)"
)]
fn packets_across_16_mib_round_trip_compressed() {
    run(across_16_mib(ZLIB))
}

#[test]
fn load_data_and_multi_results_continue_the_compressed_sequence() {
    run(load_data_and_multi_results(ZLIB, "compress_load"))
}
