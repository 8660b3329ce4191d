use super::parse::*;
use super::*;
use crate::ErrorKind;
use crate::proto::compress::Algorithm;

#[test]
fn full_url() {
    let o = Opts::from_url(
        "mysql://us%40er:p%3Ass%2Fw@db.example:3307/shop?connect_timeout=2.5&query_timeout=1&program_name=x&init=SET%20a%3D1",
    )
    .unwrap();
    assert_eq!(o.user, "us@er");
    assert_eq!(o.password.as_deref(), Some("p:ss/w"));
    assert_eq!(o.host, "db.example");
    assert_eq!(o.port, 3307);
    assert_eq!(o.database.as_deref(), Some("shop"));
    assert_eq!(o.connect_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(o.query_timeout, Some(Duration::from_secs(1)));
    assert_eq!(o.init, ["SET a=1"]);
    assert_eq!(
        o.attributes,
        [("program_name".to_string(), "x".to_string())]
    );
}

#[test]
fn minimal_and_ipv6_and_socket() {
    let o = Opts::from_url("mysql://localhost").unwrap();
    assert_eq!(
        (o.host.as_str(), o.port, o.user.as_str()),
        ("localhost", 3306, "root")
    );
    assert!(o.password.is_none() && o.database.is_none());
    let o = Opts::from_url("mariadb://u@[::1]:3310/").unwrap();
    assert_eq!(o.host, "::1");
    assert_eq!(o.address(), "[::1]:3310");
    let o = Opts::from_url("mysql://u@localhost/db?socket=%2Ftmp%2Fm.sock").unwrap();
    assert_eq!(o.get_socket().unwrap().to_str(), Some("/tmp/m.sock"));
}

#[test]
fn bad_urls_are_config_errors_that_say_why() {
    for (url, needle) in [
        ("postgres://u@h/db", "scheme"),
        ("mysql://u@h:99999/db", "invalid connection URL"),
        ("not a url", "invalid connection URL"),
        ("mysql://u@h/db/extra", "just a database name"),
        (
            "mysql://u@h/db?conect_timeout=1",
            "unknown URL option 'conect_timeout'",
        ),
        ("mysql://u@h/db?connect_timeout=-1", "positive number"),
        ("mysql://u@h/db?tcp_nodelay=maybe", "true or false"),
        ("mysql://u@h/db?max_packet_size=1", "out of range"),
        ("mysql://u:%FF@h/db", "UTF-8"),
        ("mysql://u@h/db?ssl_mode=sometimes", "invalid ssl_mode"),
    ] {
        let e = Opts::from_url(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{url}");
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
}

#[test]
fn an_unknown_option_lists_every_accepted_name_and_suggests_the_closest() {
    let e = Opts::from_url("mysql://u@h/db?bogus=1").unwrap_err();
    let msg = e.to_string();
    // Every name the parser accepts, aliases included, is in the list.
    for opt in URL_OPTIONS {
        for name in opt.names {
            assert!(msg.contains(name), "'{name}' missing from: {msg}");
        }
    }
    for alias in [
        "statement-cache-capacity",
        "compression",
        "read_timeout",
        "ssl-mode",
    ] {
        assert!(msg.contains(alias), "{alias}: {msg}");
    }
    assert!(!msg.contains("did you mean"), "{msg}");
    // Typos get a suggestion.
    for (typo, want) in [
        ("conect_timeout", "connect_timeout"),
        ("ssl_mod", "ssl_mode"),
        ("SSL-CA", "ssl_ca"),
        ("stmt_cache_sise", "stmt_cache_size"),
        ("read_timeot", "read_timeout"),
    ] {
        let e = Opts::from_url(&format!("mysql://u@h/db?{typo}=1")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.to_string().contains(&format!(
                "unknown URL option '{typo}'; did you mean '{want}'?"
            )),
            "{typo}: {e}"
        );
    }
}

#[test]
fn every_name_in_the_option_table_is_accepted() {
    // A value each option takes (the table is what the parser uses, so
    // this checks no entry is a dead name).
    for opt in URL_OPTIONS {
        let value = match opt.names[0] {
            "socket" | "ssl_ca" | "ssl_cert" | "ssl_key" | "server_public_key"
            | "local_infile_dir" => "/tmp/x",
            "compress" => "zlib",
            "ssl_mode" => "disabled",
            "hosts" => "sequential",
            "charset" => "latin1",
            "program_name" | "init" | "tls_server_name" => "x",
            "max_packet_size" => "4096",
            "tcp_nodelay"
            | "allow_cleartext_password"
            | "allow_public_key_retrieval"
            | "multi_statements"
            | "local_infile_reader"
            | "prefer_socket"
            | "read_fallback"
            | "read_your_writes" => "true",
            _ => "2",
        };
        for name in opt.names {
            Opts::from_url(&format!("mysql://u@h/db?{name}={value}"))
                .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        }
    }
    let o = Opts::from_url("mysql://h/?read_timeout=3&compression=zlib&ssl-mode=required").unwrap();
    assert_eq!(o.query_timeout, Some(Duration::from_secs(3)));
    assert_eq!(o.compression, Some(Algorithm::Zlib(6)));
    assert_eq!(o.ssl_mode, SslMode::Required);
}

#[test]
fn tls_options() {
    let o = Opts::from_url("mysql://u@h/db?ssl-mode=VERIFY_CA&ssl-ca=%2Fca.pem&ssl_cert=c.pem&ssl_key=k.pem&allow_public_key_retrieval=true").unwrap();
    assert_eq!(o.ssl_mode, SslMode::VerifyCa);
    assert_eq!(o.ssl_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
    assert!(o.ssl_cert.is_some() && o.ssl_key.is_some());
    assert!(o.allow_public_key_retrieval);
    assert_eq!(Opts::new().ssl_mode, SslMode::Preferred);
    assert_eq!("disabled".parse::<SslMode>().unwrap(), SslMode::Disabled);
}

#[test]
fn several_hosts_and_modes() {
    let o = Opts::from_url(
        "mysql://u:pw@h1:3306,h2:3307,[::1]:3308,h4/db?hosts=replication&max_replica_lag=5",
    )
    .unwrap();
    let hosts: Vec<String> = o.get_hosts().iter().map(|h| h.to_string()).collect();
    assert_eq!(hosts, ["h1:3306", "h2:3307", "[::1]:3308", "h4:3306"]);
    assert_eq!(o.host_set().unwrap().mode(), HostMode::Replication);
    assert_eq!((o.user.as_str(), o.password.as_deref()), ("u", Some("pw")));
    assert_eq!(o.database.as_deref(), Some("db"));
    assert_eq!(o.max_replica_lag, Some(Duration::from_secs(5)));
    // No mode: in order. One host: no host set.
    let o = Opts::from_url("mysql://h1,h2").unwrap();
    assert_eq!(o.host_set().unwrap().mode(), HostMode::Sequential);
    assert!(
        Opts::from_url("mysql://h1/db")
            .unwrap()
            .host_set()
            .is_none()
    );
    // Clones share what is learned about the hosts.
    let a = Opts::from_url("mysql://h1,h2/?hosts=loadbalance").unwrap();
    let b = a.clone();
    assert!(Arc::ptr_eq(a.host_set().unwrap(), b.host_set().unwrap()));
    for (url, needle) in [
        ("mysql://h1,,h2/db", "empty host"),
        ("mysql://h1,h2/db?hosts=roundrobin", "sequential, random"),
        ("mysql://h1,h2:0/db", "not a port"),
        ("mysql://h1,::1/db", "brackets"),
        ("mysql://h1,h2/db?socket=%2Ftmp%2Fs", "socket"),
    ] {
        let e = Opts::from_url(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{url}");
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
}

#[test]
fn options_other_drivers_use() {
    let o = Opts::from_url(
        "mysql://h/db?pool_min=2&pool_max=20&tcp_keepalive=10000&prefer_socket=true&statement-cache-capacity=7",
    )
    .unwrap();
    assert_eq!((o.pool_min, o.pool_max), (Some(2), Some(20)));
    assert_eq!(o.tcp_keepalive, Some(Duration::from_secs(10)));
    assert!(o.prefer_socket);
    assert_eq!(o.stmt_cache_size, 7);
    assert_eq!(
        Opts::from_url("mysql://h/?tcp_keepalive=0")
            .unwrap()
            .tcp_keepalive,
        None
    );
    let e = Opts::from_url("mysql://h/?pool_min=5&pool_max=2").unwrap_err();
    assert!(e.to_string().contains("pool_min <= pool_max"), "{e}");
}

#[test]
fn compression_options() {
    let c = |v: &str| Opts::from_url(&format!("mysql://h/?compress={v}")).map(|o| o.compression);
    assert_eq!(c("zlib").unwrap(), Some(Algorithm::Zlib(6)));
    assert_eq!(c("zlib:9").unwrap(), Some(Algorithm::Zlib(9)));
    assert_eq!(c("fast").unwrap(), Some(Algorithm::Zlib(1)));
    assert_eq!(c("off").unwrap(), None);
    #[cfg(feature = "zstd")]
    assert_eq!(c("zstd:19").unwrap(), Some(Algorithm::Zstd(19)));
    #[cfg(not(feature = "zstd"))]
    assert!(c("zstd").unwrap_err().to_string().contains("feature"));
    for bad in ["zlib:10", "zstd:0", "lz4", "zlib:x"] {
        let e = c(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        assert!(e.to_string().contains("expected zlib"), "{bad}: {e}");
    }
}

#[test]
fn password_is_redacted_in_debug() {
    let o = Opts::new().password("hunter2");
    let d = format!("{o:?}");
    assert!(!d.contains("hunter2"), "{d}");
    assert!(d.contains("<redacted>"));
    let e = Opts::from_url("mysql://u:hunter2@h/db?bogus=1").unwrap_err();
    assert!(!e.to_string().contains("hunter2"));
}
