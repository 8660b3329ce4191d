//! Connecting and authenticating with each user kind of the private server.

use mysql_uring::{ErrorKind, Opts, connect};

use crate::{run, support};

/// The private server: the tests that use it are ignored when `MYSQL_URL`
/// is set (the cfg `external_server`, from build.rs).
fn private() -> &'static support::TestServer {
    support::server()
}

#[test]
fn root_connects_and_reports_the_server() {
    run(async {
        let mut c = crate::conn().await?;
        assert!(!c.server_version().is_empty());
        assert!(
            !c.server_version().starts_with("5.5.5-"),
            "compat prefix must be stripped"
        );
        let id: u32 = c.query("SELECT CONNECTION_ID()").await?[0].get(0)?;
        assert_eq!(id, c.connection_id());
        let v: String = c.query("SELECT VERSION()").await?[0].get(0)?;
        assert_eq!(v, c.server_version());
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn native_password_user() {
    let s = private();
    run(async {
        let mut c = connect(
            s.url(support::NATIVE_USER, support::NATIVE_PASSWORD, Some("test"))
                .as_str(),
        )
        .await?;
        let who: String = c.query("SELECT CURRENT_USER()").await?[0].get(0)?;
        assert!(who.starts_with(support::NATIVE_USER), "{who}");
        let db: Option<String> = c.query("SELECT DATABASE()").await?[0].get(0)?;
        assert_eq!(db.as_deref(), Some("test"));
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn user_without_password() {
    let s = private();
    run(async {
        let mut c = connect(s.url(support::NOPASS_USER, "", None).as_str()).await?;
        c.ping().await?;
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn wrong_password_is_an_auth_error_with_the_server_code() {
    let s = private();
    run(async {
        let e = connect(
            s.url(support::NATIVE_USER, "not-the-password", None)
                .as_str(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert_eq!(e.code(), Some(1045));
        assert_eq!(e.server_error().unwrap().sql_state, "28000");
        let msg = e.to_string();
        assert!(
            msg.contains("Access denied") && msg.contains("password"),
            "{msg}"
        );
        assert!(
            !msg.contains("not-the-password"),
            "the password must not leak: {msg}"
        );
        assert!(!format!("{e:?}").contains("not-the-password"));
        Ok(())
    })
}

#[test]
fn unknown_database_is_a_server_error() {
    run(async {
        let e = connect(crate::opts().database("no_such_db_xyz"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{e:?}");
        assert_eq!(e.code(), Some(1049));
        assert!(e.to_string().contains("no_such_db_xyz"), "{e}");
        Ok(())
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn ed25519_user_authenticates_and_a_wrong_password_is_refused() {
    let s = private();
    run(async {
        let mut c = connect(
            s.url(support::ED25519_USER, support::ED25519_PASSWORD, None)
                .as_str(),
        )
        .await?;
        let who: String = c.query("SELECT CURRENT_USER()").await?[0].get(0)?;
        assert!(who.starts_with(support::ED25519_USER), "{who}");
        // The key the driver derives from the password is the one the server stored.
        let stored: String = c
            .query(&format!(
                "SELECT JSON_VALUE(Priv, '$.authentication_string') FROM mysql.global_priv \
                 WHERE User = '{}' AND Host = '%'",
                support::ED25519_USER
            ))
            .await?[0]
            .get(0)?;
        let derived = {
            use sha2::Digest;
            let az: [u8; 64] = sha2::Sha512::digest(support::ED25519_PASSWORD.as_bytes()).into();
            let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from_bytes(&az);
            ed25519_dalek::VerifyingKey::from(&esk).to_bytes()
        };
        assert_eq!(stored, base64_no_pad(&derived));
        c.close().await?;

        let e = connect(s.url(support::ED25519_USER, "wrong", None).as_str())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert_eq!(e.code(), Some(1045));
        Ok(())
    })
}

/// MariaDB stores ed25519 keys as unpadded standard base64.
fn base64_no_pad(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn unix_socket_connection() {
    let s = private();
    run(async {
        let o = Opts::new()
            .socket(&s.socket)
            .user(support::NATIVE_USER)
            .password(support::NATIVE_PASSWORD);
        let mut c = connect(o).await?;
        let via: String = c.query("SELECT @@socket").await?[0].get(0)?;
        assert_eq!(std::path::Path::new(&via), s.socket.as_path());
        c.close().await
    })
}

#[test]
fn init_statements_and_attributes_apply() {
    run(async {
        let o = crate::opts()
            .init("SET @mu_init = 41 + 1")
            .init("SET time_zone = '+01:00'")
            .attribute("program_name", "it");
        let mut c = connect(o).await?;
        let rows = c.query("SELECT @mu_init, @@session.time_zone").await?;
        assert_eq!(rows[0].get::<i64>(0)?, 42);
        assert_eq!(rows[0].get::<&str>(1)?, "+01:00");
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn url_credentials_with_special_characters_are_percent_decoded() {
    let s = private();
    run(async {
        let mut root = crate::conn().await?;
        root.query_drop("CREATE OR REPLACE USER 'mu_spe:cial'@'%' IDENTIFIED BY 'p@ss:w/rd?#%'")
            .await?;
        let url = format!(
            "mysql://mu_spe%3Acial:p%40ss%3Aw%2Frd%3F%23%25@127.0.0.1:{}/",
            s.port
        );
        let mut c = connect(url.as_str()).await?;
        let who: String = c.query("SELECT CURRENT_USER()").await?[0].get(0)?;
        assert_eq!(who, "mu_spe:cial@%");
        c.close().await?;
        root.query_drop("DROP USER 'mu_spe:cial'@'%'").await?;
        root.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn change_user_switches_identity_plugin_and_resets_the_session() {
    let _ = private();
    run(async {
        let mut c = crate::conn().await?;
        c.query_drop("SET @before = 1").await?;
        c.query_drop("CREATE TEMPORARY TABLE tmp_cu (id INT)")
            .await?;

        c.change_user(support::NATIVE_USER, support::NATIVE_PASSWORD, Some("test"))
            .await?;
        let r = &c
            .query("SELECT CURRENT_USER(), DATABASE(), @before IS NULL")
            .await?[0];
        assert!(
            r.get::<&str>(0)?.starts_with("mu_native@"),
            "{:?}",
            r.get::<&str>(0)
        );
        assert_eq!(r.get::<&str>(1)?, "test");
        assert!(r.get::<bool>(2)?, "user variables are reset");
        let e = c.query("SELECT * FROM tmp_cu").await.unwrap_err();
        assert_eq!(e.code(), Some(1146), "temporary tables are dropped: {e}");

        // ed25519 needs a plugin switch from the connection's native plugin.
        c.change_user(support::ED25519_USER, support::ED25519_PASSWORD, None)
            .await?;
        let r = &c.query("SELECT CURRENT_USER(), DATABASE()").await?[0];
        assert!(r.get::<&str>(0)?.starts_with("mu_ed25519@"));
        assert_eq!(r.get::<Option<&str>>(1)?, None);
        c.ping().await?;
        c.close().await?;

        // A refused change closes the connection with an auth error.
        let mut c = crate::conn().await?;
        let e = c
            .change_user(support::NATIVE_USER, "not-the-password", None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert!(e.to_string().contains("mu_native"), "{e}");
        assert!(!e.to_string().contains("not-the-password"), "{e}");
        assert!(c.is_broken());
        assert_eq!(c.ping().await.unwrap_err().kind(), ErrorKind::Broken);
        Ok(())
    })
}
