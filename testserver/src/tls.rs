//! The private server's TLS material: a test CA, a server and a client
//! certificate it signed, and an unrelated CA, made with the `openssl`
//! command-line tool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::datadir::create_dir;

/// How long the test certificates are valid: they are made once per template,
/// which lives as long as the installed MariaDB.
const TLS_DAYS: &str = "3650";

/// The TLS material of the private server: PEM files in
/// `target/mysql-uring-test/<pid>/tls/`, made with the `openssl` command-line
/// tool (RSA 2048-bit keys in PKCS#8, SHA-256 signatures, X.509 v3, valid for
/// ten years from when the data directory template was made).
///
/// To test a server name mismatch, connect to `127.0.0.1` while expecting a
/// name the server certificate does not carry, such as `db.example`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The test CA's certificate (`ca.pem`, CN `mysql-uring test CA`): it
    /// signed [`server_cert`](Self::server_cert) and
    /// [`client_cert`](Self::client_cert), and the server trusts it for
    /// client certificates. Use it as the client's root to verify the server.
    pub ca: PathBuf,
    /// The server's certificate (`server-cert.pem`): CN `localhost`,
    /// subjectAltName `IP:127.0.0.1` and `DNS:localhost`, extended key usage
    /// serverAuth, signed by [`ca`](Self::ca).
    pub server_cert: PathBuf,
    /// The private key of [`server_cert`](Self::server_cert)
    /// (`server-key.pem`, PKCS#8).
    pub server_key: PathBuf,
    /// A client certificate (`client-cert.pem`): CN `mu_x509`, extended key
    /// usage clientAuth, signed by [`ca`](Self::ca). Required by
    /// [`X509_USER`](crate::X509_USER); accepted for any user.
    pub client_cert: PathBuf,
    /// The private key of [`client_cert`](Self::client_cert)
    /// (`client-key.pem`, PKCS#8).
    pub client_key: PathBuf,
    /// An unrelated CA's certificate (`wrong-ca.pem`, CN `mysql-uring wrong
    /// CA`) that signed nothing the server presents: verifying the server
    /// against it must fail.
    pub wrong_ca: PathBuf,
}

impl TlsFiles {
    /// The files in `dir`, under their fixed names.
    pub(crate) fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server-cert.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client-cert.pem"),
            client_key: dir.join("client-key.pem"),
            wrong_ca: dir.join("wrong-ca.pem"),
        }
    }

    /// Whether all the files exist.
    pub(crate) fn complete(&self) -> bool {
        [
            &self.ca,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
            &self.wrong_ca,
        ]
        .iter()
        .all(|p| p.is_file())
    }
}

/// The `openssl` configuration [`make_tls`] uses instead of the system's:
/// the certificates' extensions.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = mysql-uring

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes the [`TlsFiles`] in `tls_dir` with the `openssl` tool: a test CA, a
/// server and a client certificate it signed, and an unrelated CA.
pub(crate) fn make_tls(openssl: &Path, tls_dir: &Path) {
    create_dir(tls_dir);
    let cnf = tls_dir.join("openssl.cnf");
    fs::write(&cnf, OPENSSL_CNF).unwrap_or_else(|e| {
        panic!(
            "mysql-uring-testserver: cannot write {}: {e}",
            cnf.display()
        )
    });
    // `fixed` holds no spaces inside an argument; `more` may.
    let run = |fixed: &str, more: &[&str]| {
        let args: Vec<&str> = fixed
            .split_whitespace()
            .chain(more.iter().copied())
            .collect();
        let out = Command::new(openssl)
            .args(&args)
            .current_dir(tls_dir)
            // Our configuration, not the system's.
            .env("OPENSSL_CONF", &cnf)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "mysql-uring-testserver: cannot run {}: {e}",
                    openssl.display()
                )
            });
        if !out.status.success() {
            panic!(
                "mysql-uring-testserver: `openssl {}` failed ({}) in {}:\n{}",
                args.join(" "),
                out.status,
                tls_dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let key = |file: &str| {
        run(
            "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
            &["-out", file],
        )
    };
    let self_signed = |key_file: &str, subject: &str, out: &str| {
        run(
            &format!(
                "req -config openssl.cnf -new -x509 -sha256 -days {TLS_DAYS} -extensions ca_ext"
            ),
            &["-key", key_file, "-subj", subject, "-out", out],
        )
    };
    let signed = |key_file: &str, subject: &str, ext: &str, serial: &str, out: &str| {
        run(
            "req -config openssl.cnf -new -sha256 -out req.csr",
            &["-key", key_file, "-subj", subject],
        );
        run(
            &format!(
                "x509 -req -sha256 -in req.csr -CA ca.pem -CAkey ca-key.pem -days {TLS_DAYS} \
                 -extfile openssl.cnf"
            ),
            &["-extensions", ext, "-set_serial", serial, "-out", out],
        );
    };
    key("ca-key.pem");
    self_signed("ca-key.pem", "/CN=mysql-uring test CA", "ca.pem");
    key("server-key.pem");
    signed(
        "server-key.pem",
        "/CN=localhost",
        "server_ext",
        "2",
        "server-cert.pem",
    );
    key("client-key.pem");
    signed(
        "client-key.pem",
        "/CN=mu_x509",
        "client_ext",
        "3",
        "client-cert.pem",
    );
    key("wrong-ca-key.pem");
    self_signed(
        "wrong-ca-key.pem",
        "/CN=mysql-uring wrong CA",
        "wrong-ca.pem",
    );
    for f in ["openssl.cnf", "req.csr", "ca-key.pem", "wrong-ca-key.pem"] {
        let _ = fs::remove_file(tls_dir.join(f));
    }
    // mariadbd runs as this user (`--user=root` when root): owner-only keys.
    use std::os::unix::fs::PermissionsExt;
    for f in ["server-key.pem", "client-key.pem"] {
        let _ = fs::set_permissions(tls_dir.join(f), fs::Permissions::from_mode(0o600));
    }
}
