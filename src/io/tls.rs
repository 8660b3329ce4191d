//! TLS with rustls, driven over in-memory buffers.
//!
//! A ring has no `AsyncRead`/`AsyncWrite`, so the TLS state machine is fed
//! by hand: ciphertext received on the socket goes into
//! `rustls::ClientConnection::read_tls`, plaintext comes out of its reader;
//! plaintext writes go into its writer and the resulting records are sent in
//! one operation. Every buffer stays in this struct across awaits, so a read
//! or write dropped midway loses nothing.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

use super::stream::{Stream, Transport};
use crate::error::{Error, ErrorKind, Result};

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The chain must lead to a trusted CA and the certificate must name the host.
    Identity,
    /// The chain must lead to a trusted CA; the host name is not checked.
    CaOnly,
    /// Nothing is checked but the handshake signatures (opportunistic TLS,
    /// `ssl_mode=preferred`): protects against eavesdropping, not impersonation.
    Nothing,
}

/// What a TLS connection needs: trust anchors, optional client certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles<'a> {
    /// PEM file of CA certificates to trust instead of the system's.
    pub ca: Option<&'a Path>,
    /// PEM client certificate chain.
    pub cert: Option<&'a Path>,
    /// PEM private key of the client certificate.
    pub key: Option<&'a Path>,
}

fn tls_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Tls, msg)
}

fn system_roots() -> Result<Arc<RootCertStore>> {
    static ROOTS: OnceLock<std::result::Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                Err("no usable CA certificates in the system store (install ca-certificates, or set ssl_ca)".into())
            } else {
                Ok(Arc::new(store))
            }
        })
        .clone()
        .map_err(tls_err)
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(format!("cannot read {what} file {}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| {
        tls_err(format!(
            "{what} file {} is not valid PEM: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(tls_err(format!(
            "{what} file {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The cryptography under TLS: the process-wide default when the program
/// installed one ([`CryptoProvider::install_default`]: FIPS, or one provider
/// for everything in the program), else aws-lc-rs, rustls' own default. It
/// offers the post-quantum hybrid key exchange X25519MLKEM768 first (with an
/// X25519 share beside it, so servers without it cost no extra round trip);
/// ring, the provider used before, has none, and rustls deprecated it for that.
fn provider() -> Arc<CryptoProvider> {
    static OURS: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    match CryptoProvider::get_default() {
        Some(installed) => installed.clone(),
        None => OURS
            .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .clone(),
    }
}

/// Builds a rustls client configuration (TLS 1.2 and 1.3) on aws-lc-rs, or on
/// the provider the program installed process-wide.
pub fn client_config(files: &TlsFiles<'_>, verify: Verify) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    if verify == Verify::Nothing {
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(format!("TLS setup failed: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerifier(provider)));
        return with_client_cert(builder, files);
    }
    let roots = match files.ca {
        Some(ca) => {
            let mut store = RootCertStore::empty();
            for c in load_certs(ca, "ssl_ca")? {
                store.add(c).map_err(|e| {
                    tls_err(format!(
                        "ssl_ca file {}: unusable CA certificate: {e}",
                        ca.display()
                    ))
                })?;
            }
            Arc::new(store)
        }
        None => system_roots()?,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(format!("TLS setup failed: {e}")))?;
    let builder = match verify {
        Verify::Identity | Verify::Nothing => builder.with_root_certificates(roots),
        Verify::CaOnly => {
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| tls_err(format!("TLS setup failed: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(CaOnlyVerifier(inner)))
        }
    };
    with_client_cert(builder, files)
}

fn with_client_cert(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    files: &TlsFiles<'_>,
) -> Result<Arc<ClientConfig>> {
    let config = match (files.cert, files.key) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert, "ssl_cert")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                tls_err(format!(
                    "ssl_key file {}: cannot read a private key: {e}",
                    key.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                tls_err(format!(
                    "ssl_cert/ssl_key do not form a usable client certificate: {e}"
                ))
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(Error::config("ssl_cert and ssl_key must be given together")),
    };
    Ok(Arc::new(config))
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerifier(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain but accepts a certificate for another host name (`verify_ca`).
#[derive(Debug)]
struct CaOnlyVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS session over a plain stream.
pub struct TlsStream {
    inner: Stream,
    conn: ClientConnection,
    /// Ciphertext received but not yet fed to rustls.
    raw: BytesMut,
    /// Records to write.
    out: Vec<u8>,
    /// Records were handed to the socket and their send has not completed.
    sending: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("inner", &self.inner)
            .field("protocol", &self.conn.protocol_version())
            .finish()
    }
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// Runs the TLS handshake over `inner`.
    pub async fn connect(
        inner: Stream,
        config: Arc<ClientConfig>,
        host: &str,
    ) -> Result<TlsStream> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| tls_err(format!("'{host}' is not a valid TLS server name")))?;
        let conn = ClientConnection::new(config, name)
            .map_err(|e| tls_err(format!("TLS setup failed: {e}")))?;
        let mut s = TlsStream {
            inner,
            conn,
            raw: BytesMut::with_capacity(16 * 1024),
            out: Vec::with_capacity(16 * 1024),
            sending: false,
        };
        while s.conn.is_handshaking() {
            let r = if s.conn.wants_write() {
                s.flush_records().await
            } else {
                Step(&mut s, TlsStream::poll_read_records).await
            };
            if let Err(e) = r {
                return Err(handshake_error(host, e));
            }
        }
        s.flush_records()
            .await
            .map_err(|e| handshake_error(host, e))?;
        Ok(s)
    }

    /// The socket TLS runs on.
    pub(crate) fn socket(&mut self) -> &mut super::uring::Socket {
        self.inner.socket()
    }

    async fn flush_records(&mut self) -> io::Result<()> {
        Step(self, TlsStream::poll_flush_records).await
    }

    /// Hands every record rustls wants to write to the socket, one send at
    /// a time, until all are sent.
    fn poll_flush_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.sending {
                ready!(self.inner.socket().poll_sent(cx))?;
                self.sending = false;
            }
            if !self.conn.wants_write() {
                return Poll::Ready(Ok(()));
            }
            self.out.clear();
            self.conn.write_tls(&mut self.out)?;
            self.inner.socket().start_send(&mut self.out)?;
            self.sending = true;
        }
    }

    /// Feeds buffered ciphertext to rustls, receiving more when none is
    /// left. Stops early when rustls's plaintext buffer is full: the rest
    /// stays in `raw` until the plaintext has been read.
    fn poll_read_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.raw.is_empty() {
            let n = ready!(self.inner.socket().poll_recv(cx, &mut self.raw))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::UnexpectedEof)));
            }
        }
        while !self.raw.is_empty() && self.conn.wants_read() {
            let n = self.conn.read_tls(&mut &self.raw[..])?;
            self.raw.advance(n);
            self.conn.process_new_packets().map_err(invalid)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads decrypted bytes into `buf`'s spare room: what rustls holds, or
    /// after sending what it wants to send and receiving more records.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        loop {
            let start = buf.len();
            if buf.capacity() - start < 4096 {
                buf.reserve(16 * 1024);
            }
            buf.resize(buf.capacity(), 0);
            let r = self.conn.reader().read(&mut buf[start..]);
            match r {
                Ok(n) => {
                    buf.truncate(start + n);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => buf.truncate(start),
                Err(e) => {
                    buf.truncate(start);
                    return Poll::Ready(Err(e));
                }
            }
            ready!(self.poll_flush_records(cx))?;
            match ready!(self.poll_read_records(cx)) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                r => r?,
            }
        }
    }
}

/// Runs one of the TLS stream's poll steps as a future; dropped while
/// waiting, it takes its waker back from the socket.
struct Step<'a, F>(&'a mut TlsStream, F);

impl<F> std::future::Future for Step<'_, F>
where
    F: FnMut(&mut TlsStream, &mut Context<'_>) -> Poll<io::Result<()>> + Unpin,
{
    type Output = io::Result<()>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        (this.1)(this.0, cx)
    }
}

impl<F> Drop for Step<'_, F> {
    fn drop(&mut self) {
        let s = self.0.inner.socket();
        s.unwait_recv();
        s.unwait_send();
    }
}

fn handshake_error(host: &str, e: io::Error) -> Error {
    let detail = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(|r| match r {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                "the server's certificate is not signed by a trusted CA (set ssl_ca to the CA that signed it)".to_string()
            }
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server's certificate is not valid for the name '{host}' (connect with the name in the certificate, \
                 or use ssl_mode=verify_ca to check only the CA)"
            ),
            rustls::Error::InvalidCertificate(c) => format!("the server's certificate was rejected: {c:?}"),
            other => other.to_string(),
        });
    match detail {
        Some(d) => tls_err(format!("TLS handshake with '{host}' failed: {d}")),
        None => Error::io(&format!("TLS handshake with '{host}'"), e),
    }
}

impl Transport for TlsStream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        TlsStream::poll_read(self, cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> Poll<io::Result<()>> {
        // rustls buffers a bounded amount of plaintext: hand it over in
        // pieces, sending the records out in between. Abandoned midway, the
        // rest stays in `buf` and the records with the socket.
        loop {
            if !buf.is_empty() {
                let n = self.conn.writer().write(buf)?;
                buf.drain(..n);
            }
            ready!(self.poll_flush_records(cx))?;
            if buf.is_empty() {
                return Poll::Ready(Ok(()));
            }
        }
    }

    fn poll_start_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<()>> {
        Transport::poll_write(self, cx, buf)
    }

    fn peer_gone(&self) -> bool {
        self.inner.peer_gone()
    }

    fn unwait(&mut self) {
        let s = self.inner.socket();
        s.unwait_recv();
        s.unwait_send();
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn is_secure(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::NamedGroup;

    #[test]
    fn post_quantum_key_exchange_is_offered_first() {
        let groups: Vec<NamedGroup> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups.first(),
            Some(&NamedGroup::X25519MLKEM768),
            "X25519MLKEM768 preferred: {groups:?}"
        );
        // Classical groups stay for servers without it (OpenSSL < 3.5).
        assert!(groups.contains(&NamedGroup::X25519), "{groups:?}");
        let config = client_config(&TlsFiles::default(), Verify::Nothing).unwrap();
        let used: Vec<NamedGroup> = config
            .crypto_provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        assert_eq!(used, groups);
    }
}
