//! The private test server starts, can be killed, and restarts on the same port.

mod support;

use std::io::Read;
use std::net::TcpStream;

fn greeting(port: u16) -> std::io::Result<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    let mut h = [0u8; 5];
    s.read_exact(&mut h)?;
    Ok(h[4])
}

#[test]
fn start_kill_restart() {
    if support::external() {
        eprintln!("skipped: MYSQL_URL is set");
        return;
    }
    let s = support::server();
    assert_eq!(greeting(s.port).unwrap(), 10, "protocol v10 greeting");
    assert!(s.is_running());
    s.kill();
    assert!(!s.is_running());
    assert!(greeting(s.port).is_err(), "nothing listens after kill");
    s.restart();
    assert_eq!(greeting(s.port).unwrap(), 10);
    assert!(
        s.root_url()
            .starts_with(&format!("mysql://root@127.0.0.1:{}/test", s.port))
    );
}
