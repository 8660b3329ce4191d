//! TLS against the private server (test CA and certificates from mysql-uring-testserver).

use std::io::{Read, Write};

use mysql_uring::{Connection, ErrorKind, Opts, SslMode, connect};

use crate::{run, support};

/// The private server: the tests that use it are ignored when `MYSQL_URL`
/// is set (the cfg `external_server`, from build.rs).
fn private() -> &'static support::TestServer {
    support::server()
}

fn base(s: &support::TestServer, user: &str, password: &str) -> Opts {
    Opts::new()
        .port(s.port)
        .user(user)
        .password(password)
        .database("test")
}

async fn cipher(c: &mut Connection) -> mysql_uring::Result<String> {
    c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'").await?[0].get::<String>(1)
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn preferred_is_the_default_and_encrypts_when_offered() {
    let s = private();
    run(async {
        let mut c = connect(base(s, support::SSL_USER, support::SSL_PASSWORD)).await?;
        assert!(c.is_tls());
        assert!(!cipher(&mut c).await?.is_empty());
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn disabled_means_plain_text() {
    let s = private();
    run(async {
        let mut c = connect(base(s, "root", "").ssl_mode(SslMode::Disabled)).await?;
        assert!(!c.is_tls());
        assert_eq!(cipher(&mut c).await?, "");
        c.close().await?;
        // A user that requires TLS is refused without it.
        let e =
            connect(base(s, support::SSL_USER, support::SSL_PASSWORD).ssl_mode(SslMode::Disabled))
                .await
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        Ok(())
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn required_verifies_the_chain_and_the_host_name() {
    let s = private();
    run(async {
        for mode in [
            SslMode::Required,
            SslMode::VerifyIdentity,
            SslMode::VerifyCa,
        ] {
            let o = base(s, support::SSL_USER, support::SSL_PASSWORD)
                .ssl_mode(mode)
                .ssl_ca(&s.tls.ca);
            let mut c = connect(o).await?;
            assert!(c.is_tls(), "{mode:?}");
            assert!(!cipher(&mut c).await?.is_empty());
            c.close().await?;
        }
        Ok(())
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn an_untrusted_certificate_is_refused_with_a_clear_error() {
    let s = private();
    run(async {
        // System roots do not know the test CA.
        let e = connect(base(s, "root", "").ssl_mode(SslMode::Required))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Tls, "{e:?}");
        assert!(e.to_string().contains("trusted CA"), "{e}");
        // Nor does an unrelated CA.
        let e = connect(
            base(s, "root", "")
                .ssl_mode(SslMode::VerifyCa)
                .ssl_ca(&s.tls.wrong_ca),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Tls, "{e:?}");
        Ok(())
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn a_wrong_host_name_is_refused_unless_only_the_ca_is_checked() {
    let s = private();
    run(async {
        let o = base(s, "root", "")
            .ssl_ca(&s.tls.ca)
            .tls_server_name("db.example");
        let e = connect(o.clone().ssl_mode(SslMode::VerifyIdentity))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Tls, "{e:?}");
        assert!(e.to_string().contains("db.example"), "{e}");
        let c = connect(o.ssl_mode(SslMode::VerifyCa)).await?;
        assert!(c.is_tls());
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn client_certificates_are_presented_when_configured() {
    let s = private();
    run(async {
        let o = base(s, support::X509_USER, support::X509_PASSWORD)
            .ssl_mode(SslMode::VerifyIdentity)
            .ssl_ca(&s.tls.ca);
        let e = connect(o.clone()).await.unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::Auth,
            "without a client certificate: {e:?}"
        );
        let mut c = connect(o.ssl_client_cert(&s.tls.client_cert, &s.tls.client_key)).await?;
        let who: String = c.query("SELECT CURRENT_USER()").await?[0].get(0)?;
        assert!(who.starts_with(support::X509_USER), "{who}");
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn tls_carries_large_results_and_queries() {
    let s = private();
    run(async {
        let mut c = connect(
            base(s, "root", "")
                .ssl_mode(SslMode::VerifyIdentity)
                .ssl_ca(&s.tls.ca),
        )
        .await?;
        let n = 3 * 1024 * 1024;
        let rows = c
            .query(&format!("SELECT REPEAT('t', {n}), seq FROM seq_1_to_3"))
            .await?;
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter()
                .all(|r| r.get::<&str>(0).map(str::len).ok() == Some(n))
        );
        let big = "q".repeat(2 * 1024 * 1024);
        let len: u64 = c.query(&format!("SELECT LENGTH('{big}')")).await?[0].get(0)?;
        assert_eq!(len, big.len() as u64);
        let mut sum = 0u64;
        c.cmd_query("SELECT seq FROM seq_1_to_50000").await?;
        while let Some(r) = c.next_row().await? {
            sum += r.get::<u64>(0)?;
        }
        assert_eq!(sum, 50_000 * 50_001 / 2);
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's certificates (MYSQL_URL is set)"
)]
fn a_missing_ca_file_is_a_clear_error() {
    let s = private();
    run(async {
        let e = connect(
            base(s, "root", "")
                .ssl_mode(SslMode::Required)
                .ssl_ca("/nonexistent/ca.pem"),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Tls, "{e:?}");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        Ok(())
    })
}

#[test]
fn required_against_a_server_without_tls_is_refused() {
    // A scripted greeting that does not offer TLS.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let caps: u32 = !(1 << 11) & !(1 << 5); // everything but SSL and compression
        let mut p = vec![10];
        p.extend_from_slice(b"8.0.40\0");
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(255);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        let mut h = (p.len() as u32).to_le_bytes();
        h[3] = 0;
        s.write_all(&h).unwrap();
        s.write_all(&p).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        rest
    });
    run(async move {
        let e = connect(
            Opts::new()
                .port(port)
                .password("pw")
                .ssl_mode(SslMode::Required),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Tls, "{e:?}");
        assert!(e.to_string().contains("TLS"), "{e}");
        Ok(())
    });
    let sent = peer.join().unwrap();
    assert!(
        sent.is_empty(),
        "nothing, least of all the password, may be sent: {sent:?}"
    );
}

/// A TCP relay to `target` that clears `CLIENT_SSL` in the server's
/// greeting, as a server without TLS (or a proxy that strips it) sends it;
/// the rest passes through untouched. Returns the relay's port.
fn relay_without_tls(target: (String, u16)) -> u16 {
    use std::net::{TcpListener, TcpStream};

    fn pump(mut from: TcpStream, mut to: TcpStream) {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    }

    let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
    let port = listener.local_addr().expect("relay address").port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (Ok(mut client), Ok(mut server)) = (client, TcpStream::connect(&target)) else {
                continue;
            };
            // The greeting: 4-byte header, protocol version, NUL-terminated
            // version string, connection id (4), scramble (8), filler (1),
            // then the lower capability flags (CLIENT_SSL is 0x0800).
            let mut header = [0u8; 4];
            if server.read_exact(&mut header).is_err() {
                continue;
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            let mut hello = vec![0u8; len];
            if server.read_exact(&mut hello).is_err() {
                continue;
            }
            if let Some(nul) = hello[1..].iter().position(|&b| b == 0) {
                let caps = 1 + nul + 1 + 4 + 8 + 1;
                if caps + 1 < hello.len() {
                    hello[caps + 1] &= !0x08;
                }
            }
            if client.write_all(&header).is_err() || client.write_all(&hello).is_err() {
                continue;
            }
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            pump(client, server);
            pump(s2, c2);
        }
    });
    port
}

#[test]
fn tls_required_by_a_server_without_it_names_its_version_without_the_compat_prefix() {
    let o = crate::opts();
    let port = relay_without_tls((o.get_host().to_string(), o.get_port()));
    run(async move {
        // What the server calls itself, as the driver shows it.
        let c = crate::conn().await?;
        let version = c.server_version().to_string();
        c.close().await?;
        assert!(!version.starts_with("5.5.5-"), "{version}");
        // Through the relay the server offers no TLS: required TLS is refused.
        let o = Opts::new()
            .host("127.0.0.1")
            .port(port)
            .ssl_mode(SslMode::VerifyIdentity);
        let e = connect(o).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Tls, "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("does not offer it"), "{msg}");
        assert!(msg.contains(&format!("server ({version})")), "{msg}");
        assert!(!msg.contains("5.5.5-"), "{msg}");
        // The same server through the relay, without TLS, is fine.
        let o = crate::opts().host("127.0.0.1").port(port);
        if o.get_socket().is_none() {
            let mut c = connect(o.ssl_mode(SslMode::Disabled)).await?;
            assert_eq!(c.query("SELECT 1").await?[0].get::<i64>(0)?, 1);
            c.close().await?;
        }
        Ok(())
    })
}
