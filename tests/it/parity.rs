//! Connector/Python (`mysql.connector.aio`) parity and the correctness fixes
//! of issue 10, against the real server.

use mysql_uring::ErrorKind;

use crate::run;

#[test]
fn change_user_with_a_wrong_password_keeps_the_servers_code_and_sqlstate() {
    run(async {
        let mut c = crate::conn().await?;
        let user = crate::opts().get_user().to_string();
        let e = c
            .change_user(&user, "surely-not-the-password", None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
        assert_eq!(e.code(), Some(1045), "{e:?}");
        let server = e.server_error().expect("the server's error is kept");
        assert_eq!(server.sql_state, "28000", "{e:?}");
        assert!(server.message.contains("Access denied"), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("1045") && text.contains("28000"), "{text}");
        assert!(text.contains("connection was closed"), "{text}");
        assert!(!text.contains("surely-not-the-password"), "{text}");
        assert!(e.is_fatal());
        assert!(c.is_broken());
        Ok(())
    })
}
