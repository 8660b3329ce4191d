//! `mysql://` URLs into [`Opts`]: the one table of URL options (names,
//! aliases, how each value is read) that the parser and its error share.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::{DEFAULT_PORT, Opts};
use crate::error::{Error, Result};
use crate::hosts::{HostAddr, HostMode, HostSet, parse_host_list};
use crate::proto::compress::Algorithm;

/// Parses a URL; see [`Opts::from_url`].
pub(super) fn from_url(url: &str) -> Result<Opts> {
    // `url` takes one host: a list (`h1:3306,h2`) is cut out and parsed here.
    let (url, host_list) = split_host_list(url)?;
    let url = url.as_ref();
    let parsed = url::Url::parse(url).map_err(|e| {
        Error::config(format!(
            "invalid connection URL: {e}; expected mysql://user:password@host:port/database"
        ))
    })?;
    if parsed.scheme() != "mysql" && parsed.scheme() != "mariadb" {
        return Err(Error::config(format!(
            "invalid connection URL: scheme '{}' is not supported; use mysql://",
            parsed.scheme()
        )));
    }
    let mut o = Opts::new();
    match parsed.host_str() {
        Some(h) if !h.is_empty() => {
            o.host = h.trim_start_matches('[').trim_end_matches(']').to_string();
        }
        _ => {}
    }
    if let Some(p) = parsed.port() {
        if p == 0 {
            return Err(Error::config("invalid connection URL: port 0"));
        }
        o.port = p;
    }
    if !parsed.username().is_empty() {
        o.user = decode(parsed.username(), "user name")?;
    }
    if let Some(p) = parsed.password() {
        o.password = Some(decode(p, "password")?);
    }
    let path = parsed.path().trim_start_matches('/');
    if !path.is_empty() {
        if path.contains('/') {
            return Err(Error::config(format!(
                "invalid connection URL: the path '/{path}' must be just a database name"
            )));
        }
        o.database = Some(decode(path, "database name")?);
    }
    let mut mode = None;
    for (k, v) in parsed.query_pairs() {
        let (k, v) = (k.as_ref(), v.as_ref());
        let Some(opt) = URL_OPTIONS.iter().find(|opt| opt.names.contains(&k)) else {
            return Err(unknown_option(k));
        };
        let mut p = Parsing {
            o: &mut o,
            mode: &mut mode,
        };
        (opt.apply)(&mut p, k, v)?;
    }
    if let (Some(min), Some(max)) = (o.pool_min, o.pool_max) {
        if min > max || max == 0 {
            return Err(Error::config(format!(
                "invalid URL options pool_min={min}, pool_max={max}: need pool_min <= pool_max and pool_max >= 1"
            )));
        }
    }
    if let Some(list) = host_list {
        let hosts = parse_host_list(&list, DEFAULT_PORT)?;
        o.host = hosts[0].host.clone();
        o.port = hosts[0].port;
        if hosts.len() > 1 || mode.is_some() {
            if o.socket.is_some() {
                return Err(Error::config(
                    "invalid connection URL: several hosts and a socket; a socket is one local server",
                ));
            }
            o.hosts = Some(HostSet::new(hosts, mode.unwrap_or_default())?);
        }
    } else if let Some(mode) = mode {
        o.hosts = Some(HostSet::new(
            vec![HostAddr {
                host: o.host.clone(),
                port: o.port,
            }],
            mode,
        )?);
    }
    Ok(o)
}

pub(super) struct Parsing<'a> {
    o: &'a mut Opts,
    mode: &'a mut Option<HostMode>,
}

/// One URL option: its names (the first is the usual one, the others are
/// aliases other drivers use) and what it sets from `(name, value)`.
pub(super) struct UrlOption {
    pub(super) names: &'static [&'static str],
    apply: fn(&mut Parsing<'_>, &str, &str) -> Result<()>,
}

/// Every option [`Opts::from_url`] accepts, with its aliases: the parser
/// looks names up here, and the error for an unknown one lists them from
/// here, so the two cannot disagree.
pub(super) const URL_OPTIONS: &[UrlOption] = &[
    UrlOption {
        names: &["socket"],
        apply: |p, _, v| {
            p.o.socket = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["connect_timeout"],
        apply: |p, k, v| {
            p.o.connect_timeout = Some(seconds(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["query_timeout", "read_timeout"],
        apply: |p, k, v| {
            p.o.query_timeout = Some(seconds(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["drain_timeout"],
        apply: |p, k, v| {
            p.o.drain_timeout = seconds(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["kill_grace", "kill_grace_ms"],
        apply: |p, k, v| {
            p.o.kill_grace = Duration::from_millis(count(k, v)? as u64);
            Ok(())
        },
    },
    UrlOption {
        names: &["max_packet_size"],
        apply: |p, _, v| {
            p.o.max_packet_size = v.parse().map_err(|_| {
                Error::config(format!(
                    "invalid URL option max_packet_size={v}: expected bytes"
                ))
            })?;
            p.o.check_packet_size()
        },
    },
    UrlOption {
        names: &["tcp_nodelay"],
        apply: |p, k, v| {
            p.o.tcp_nodelay = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        // mysql_async's unit: milliseconds; 0 turns it off.
        names: &["tcp_keepalive", "tcp_keepalive_ms"],
        apply: |p, k, v| {
            let ms = count(k, v)?;
            p.o.tcp_keepalive = (ms > 0).then(|| Duration::from_millis(ms as u64));
            Ok(())
        },
    },
    UrlOption {
        names: &["compress", "compression"],
        apply: |p, k, v| {
            p.o.compression = compression(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["allow_cleartext_password"],
        apply: |p, k, v| {
            p.o.allow_cleartext_password = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["program_name"],
        apply: |p, _, v| {
            p.o.attributes.push(("program_name".into(), v.to_string()));
            Ok(())
        },
    },
    UrlOption {
        names: &["init"],
        apply: |p, _, v| {
            p.o.init.push(v.to_string());
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_mode", "ssl-mode", "sslmode"],
        apply: |p, _, v| {
            p.o.ssl_mode = v.parse()?;
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_ca", "ssl-ca"],
        apply: |p, _, v| {
            p.o.ssl_ca = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_cert", "ssl-cert"],
        apply: |p, _, v| {
            p.o.ssl_cert = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["ssl_key", "ssl-key"],
        apply: |p, _, v| {
            p.o.ssl_key = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["tls_server_name"],
        apply: |p, _, v| {
            p.o.tls_server_name = Some(v.to_string());
            Ok(())
        },
    },
    UrlOption {
        names: &["server_public_key", "server-public-key-path"],
        apply: |p, _, v| {
            p.o.server_public_key = Some(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["allow_public_key_retrieval", "allowPublicKeyRetrieval"],
        apply: |p, k, v| {
            p.o.allow_public_key_retrieval = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["multi_statements"],
        apply: |p, k, v| {
            p.o.multi_statements = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["charset"],
        apply: |p, _, v| {
            let o = std::mem::take(p.o);
            *p.o = o.charset(v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["local_infile_dir"],
        apply: |p, _, v| {
            p.o.local_infile_dirs.push(PathBuf::from(v));
            Ok(())
        },
    },
    UrlOption {
        names: &["local_infile_reader"],
        apply: |p, k, v| {
            p.o.local_infile_reader = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &[
            "stmt_cache_size",
            "statement-cache-capacity",
            "statement_cache_capacity",
        ],
        apply: |p, _, v| {
            p.o.stmt_cache_size = v.parse().map_err(|_| {
                Error::config(format!(
                    "stmt_cache_size must be a number of statements (0 disables the cache), got '{v}'"
                ))
            })?;
            Ok(())
        },
    },
    UrlOption {
        names: &["pool_min", "min_connections"],
        apply: |p, k, v| {
            p.o.pool_min = Some(count(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["pool_max", "max_connections"],
        apply: |p, k, v| {
            p.o.pool_max = Some(count(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["prefer_socket"],
        apply: |p, k, v| {
            p.o.prefer_socket = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["hosts", "host_mode"],
        apply: |p, _, v| {
            *p.mode = Some(v.parse::<HostMode>()?);
            Ok(())
        },
    },
    UrlOption {
        names: &["max_replica_lag"],
        apply: |p, k, v| {
            p.o.max_replica_lag = Some(seconds(k, v)?);
            Ok(())
        },
    },
    UrlOption {
        names: &["replica_check_interval"],
        apply: |p, k, v| {
            p.o.replica_check_interval = seconds(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["read_fallback"],
        apply: |p, k, v| {
            p.o.read_fallback = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["read_your_writes"],
        apply: |p, k, v| {
            p.o.read_your_writes = boolean(k, v)?;
            Ok(())
        },
    },
    UrlOption {
        names: &["read_your_writes_timeout"],
        apply: |p, k, v| {
            p.o.read_your_writes_timeout = seconds(k, v)?;
            Ok(())
        },
    },
];

/// The error for a URL option not in [`URL_OPTIONS`]: the closest known name
/// when one is close enough to be a typo, and every name accepted.
pub(super) fn unknown_option(name: &str) -> Error {
    let known: Vec<String> = URL_OPTIONS
        .iter()
        .map(|opt| match opt.names {
            [one] => one.to_string(),
            [first, aliases @ ..] => format!("{first} (or {})", aliases.join(", ")),
            [] => String::new(),
        })
        .collect();
    let suggestion = closest_option(name)
        .map(|n| format!("; did you mean '{n}'?"))
        .unwrap_or_default();
    Error::config(format!(
        "unknown URL option '{name}'{suggestion} (known: {})",
        known.join(", ")
    ))
}

/// The accepted option name nearest to `name` (case, `-` and `_` aside, by
/// edit distance), when it is within a typo's reach.
pub(super) fn closest_option(name: &str) -> Option<&'static str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let wanted = norm(name);
    URL_OPTIONS
        .iter()
        .flat_map(|opt| opt.names.iter().copied())
        .map(|n| (edit_distance(&wanted, &norm(n)), n))
        .filter(|&(d, n)| d <= (n.len() / 4).clamp(1, 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// Levenshtein distance between two short ASCII-ish strings.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Cuts the host list out of a URL's authority when it names several hosts
/// (or an IPv6 literal among others), leaving a one-host URL for `url`.
pub(super) fn split_host_list(url: &str) -> Result<(std::borrow::Cow<'_, str>, Option<String>)> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return Ok((url.into(), None));
    };
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let at = authority.rfind('@').map_or(0, |i| i + 1);
    let list = &authority[at..];
    if !list.contains(',') {
        return Ok((url.into(), None));
    }
    let mut one = String::with_capacity(url.len());
    one.push_str(&url[..start + at]);
    one.push_str("placeholder");
    one.push_str(&rest[end..]);
    Ok((one.into(), Some(list.to_string())))
}

pub(super) fn compression(key: &str, v: &str) -> Result<Option<Algorithm>> {
    let bad = || {
        Error::config(format!(
            "invalid URL option {key}={v}: expected zlib, zstd, zlib:LEVEL (0-9), zstd:LEVEL (1-22) or off"
        ))
    };
    let (name, level) = match v.split_once(':') {
        Some((n, l)) => (n, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (v, None),
    };
    Ok(Some(match name {
        "off" | "none" | "false" | "0" if level.is_none() => return Ok(None),
        // mysql_async's spellings: fast, best, or a zlib level.
        "fast" => Algorithm::Zlib(1),
        "best" => Algorithm::Zlib(9),
        "true" | "on" => Algorithm::Zlib(6),
        "zlib" => {
            let l = level.unwrap_or(6);
            if l > 9 {
                return Err(bad());
            }
            Algorithm::Zlib(l)
        }
        "zstd" => {
            let l = level.unwrap_or(3);
            if !(1..=22).contains(&l) {
                return Err(bad());
            }
            #[cfg(not(feature = "zstd"))]
            return Err(Error::config(format!(
                "URL option {key}={v}: zstd needs the crate's `zstd` feature (mysql-uring = {{ features = [\"zstd\"] }})"
            )));
            #[cfg(feature = "zstd")]
            Algorithm::Zstd(l)
        }
        n if level.is_none() && n.len() == 1 && n.as_bytes()[0].is_ascii_digit() => {
            Algorithm::Zlib(n.as_bytes()[0] - b'0')
        }
        _ => return Err(bad()),
    }))
}

pub(super) fn count(key: &str, v: &str) -> Result<usize> {
    v.parse().map_err(|_| {
        Error::config(format!(
            "invalid URL option {key}={v}: expected a whole number"
        ))
    })
}

pub(super) fn decode(s: &str, what: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            Error::config(format!(
                "invalid connection URL: the {what} is not valid UTF-8 once percent-decoded"
            ))
        })
}

pub(super) fn seconds(key: &str, v: &str) -> Result<Duration> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::config(format!(
                "invalid URL option {key}={v}: expected a positive number of seconds"
            ))
        })
}

pub(super) fn boolean(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::config(format!(
            "invalid URL option {key}={v}: expected true or false"
        ))),
    }
}
