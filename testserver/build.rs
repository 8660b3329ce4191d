// The test cfgs `external_server` and `external_socket` (MYSQL_URL is set;
// it names a Unix socket), for this package's tests: the root package's
// build script, shared so the two cannot differ (see ../build.rs).
include!("../build.rs");
