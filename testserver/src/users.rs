//! The users the private server creates at every start, and their passwords.
//!
//! Each user exists for host `%` (TCP) and `localhost` (the Unix socket).

/// The database every test user can use; [`TestServer::root_url`](crate::TestServer::root_url) selects it.
pub const TEST_DB: &str = "test";

/// The administrator: all privileges, empty password, from any host.
pub const ROOT_USER: &str = "root";

/// A user with all privileges that authenticates with `mysql_native_password`.
pub const NATIVE_USER: &str = "mu_native";

/// [`NATIVE_USER`]'s password.
pub const NATIVE_PASSWORD: &str = "native-pass";

/// A user with all privileges that authenticates with MariaDB's `ed25519` plugin.
pub const ED25519_USER: &str = "mu_ed25519";

/// [`ED25519_USER`]'s password.
pub const ED25519_PASSWORD: &str = "ed-pass";

/// A user with all privileges and an empty password.
pub const NOPASS_USER: &str = "mu_nopass";

/// A user who may only `SELECT` in the `test` database.
pub const LIMITED_USER: &str = "mu_limited";

/// [`LIMITED_USER`]'s password.
pub const LIMITED_PASSWORD: &str = "limited-pass";

/// A user with all privileges who may only connect over TLS (`REQUIRE SSL`).
pub const SSL_USER: &str = "mu_ssl";

/// [`SSL_USER`]'s password.
pub const SSL_PASSWORD: &str = "ssl-pass";

/// A user with all privileges who must present a client certificate signed by
/// the test CA (`REQUIRE X509`): [`TlsFiles::client_cert`](crate::TlsFiles::client_cert) and
/// [`TlsFiles::client_key`](crate::TlsFiles::client_key).
pub const X509_USER: &str = "mu_x509";

/// [`X509_USER`]'s password.
pub const X509_PASSWORD: &str = "x509-pass";

/// Runs at every server start (`--init-file`), so every statement is
/// idempotent. Each user exists for host `%` (TCP) and `localhost` (the Unix
/// socket, where an anonymous or host-specific entry would otherwise win).
pub(crate) const INIT_SQL: &str = "\
CREATE DATABASE IF NOT EXISTS test;
CREATE OR REPLACE USER 'root'@'%' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE OR REPLACE USER 'mu_native'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('native-pass');
CREATE OR REPLACE USER 'mu_native'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('native-pass');
CREATE OR REPLACE USER 'mu_ed25519'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pass');
CREATE OR REPLACE USER 'mu_ed25519'@'localhost' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pass');
CREATE OR REPLACE USER 'mu_nopass'@'%' IDENTIFIED BY '';
CREATE OR REPLACE USER 'mu_nopass'@'localhost' IDENTIFIED BY '';
CREATE OR REPLACE USER 'mu_limited'@'%' IDENTIFIED BY 'limited-pass';
CREATE OR REPLACE USER 'mu_limited'@'localhost' IDENTIFIED BY 'limited-pass';
GRANT ALL PRIVILEGES ON *.* TO 'mu_native'@'%', 'mu_native'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO 'mu_ed25519'@'%', 'mu_ed25519'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO 'mu_nopass'@'%', 'mu_nopass'@'localhost';
GRANT SELECT ON test.* TO 'mu_limited'@'%', 'mu_limited'@'localhost';
CREATE OR REPLACE USER 'mu_ssl'@'%' IDENTIFIED BY 'ssl-pass' REQUIRE SSL;
CREATE OR REPLACE USER 'mu_ssl'@'localhost' IDENTIFIED BY 'ssl-pass' REQUIRE SSL;
CREATE OR REPLACE USER 'mu_x509'@'%' IDENTIFIED BY 'x509-pass' REQUIRE X509;
CREATE OR REPLACE USER 'mu_x509'@'localhost' IDENTIFIED BY 'x509-pass' REQUIRE X509;
GRANT ALL PRIVILEGES ON *.* TO 'mu_ssl'@'%', 'mu_ssl'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO 'mu_x509'@'%', 'mu_x509'@'localhost';
";
