//! [`ServerVersion`]: the server's version string, parsed.

use std::fmt;

/// A server version: `major.minor.patch` and whether the server is MariaDB.
/// From [`Connection::server_version_info`](crate::Connection::server_version_info),
/// or [`ServerVersion::parse`] for a version string.
///
/// ```
/// use mysql_uring::ServerVersion;
/// let v = ServerVersion::parse("5.5.5-10.11.19-MariaDB-0+deb12u1").unwrap();
/// assert_eq!((v.major, v.minor, v.patch, v.is_mariadb), (10, 11, 19, true));
/// assert!(v.at_least(10, 5, 0) && !v.at_least(11, 0, 0));
/// let v = ServerVersion::parse("8.4.3").unwrap();
/// assert_eq!((v.major, v.minor, v.patch, v.is_mariadb), (8, 4, 3, false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerVersion {
    /// e.g. 10 for MariaDB 10.11.19.
    pub major: u16,
    /// e.g. 11 for MariaDB 10.11.19.
    pub minor: u16,
    /// e.g. 19 for MariaDB 10.11.19 (0 when the string has none).
    pub patch: u16,
    /// True for MariaDB.
    pub is_mariadb: bool,
}

impl ServerVersion {
    /// Parses a version string as servers send it: `8.4.3`, `8.0.36-log`,
    /// `10.11.19-MariaDB-0+deb12u1`, or MariaDB's `5.5.5-10.11.19-MariaDB`
    /// (whose `5.5.5-` prefix, sent for old clients, is skipped). A missing
    /// minor or patch is 0; `None` when the string does not start with a
    /// number. `is_mariadb` is true when the text says `MariaDB`.
    pub fn parse(version: &str) -> Option<ServerVersion> {
        let is_mariadb = version.to_ascii_lowercase().contains("mariadb");
        let v = without_compat_prefix(version);
        let mut parts = v.splitn(3, '.');
        let num = |p: Option<&str>| -> Option<u16> {
            let p = p?;
            let end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            p[..end].parse().ok()
        };
        let major = num(parts.next())?;
        let minor = num(parts.next()).unwrap_or(0);
        let patch = num(parts.next()).unwrap_or(0);
        Some(ServerVersion {
            major,
            minor,
            patch,
            is_mariadb,
        })
    }

    /// True when this version is `major.minor.patch` or later (whatever the vendor).
    pub fn at_least(&self, major: u16, minor: u16, patch: u16) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }
}

/// The version string as it should be shown: without the `5.5.5-` that
/// MariaDB puts before its real version in the handshake (for old clients
/// that expect a 5.x server). `5.5.5` itself, or `5.5.5-log` (a real MySQL
/// 5.5.5), is left alone: the prefix goes only when a version follows it.
pub(crate) fn without_compat_prefix(version: &str) -> &str {
    match version.strip_prefix("5.5.5-") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => version,
    }
}

/// `10.11.19 (MariaDB)` or `8.4.3`.
impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.is_mariadb {
            f.write_str(" (MariaDB)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_every_shape() {
        let p = |s| ServerVersion::parse(s).map(|v| (v.major, v.minor, v.patch, v.is_mariadb));
        assert_eq!(p("5.5.5-10.11.19-MariaDB"), Some((10, 11, 19, true)));
        assert_eq!(p("11.4.2-MariaDB-ubu2404"), Some((11, 4, 2, true)));
        assert_eq!(p("8.0.36-log"), Some((8, 0, 36, false)));
        assert_eq!(p("5.5.5"), Some((5, 5, 5, false)));
        assert_eq!(p("5.5.5-log"), Some((5, 5, 5, false)));
        assert_eq!(p("9.1"), Some((9, 1, 0, false)));
        assert_eq!(p("8"), Some((8, 0, 0, false)));
        assert_eq!(p(""), None);
        assert_eq!(p("MariaDB"), None);
        assert_eq!(p("99999999.1.1"), None);
        assert_eq!(
            ServerVersion::parse("10.6.1-MariaDB").unwrap().to_string(),
            "10.6.1 (MariaDB)"
        );
    }

    #[test]
    fn the_compat_prefix_goes_only_before_a_version() {
        assert_eq!(
            without_compat_prefix("5.5.5-10.11.19-MariaDB-0+deb12u1"),
            "10.11.19-MariaDB-0+deb12u1"
        );
        assert_eq!(without_compat_prefix("5.5.5-log"), "5.5.5-log");
        assert_eq!(without_compat_prefix("5.5.5"), "5.5.5");
        assert_eq!(without_compat_prefix("8.4.3"), "8.4.3");
        let v = ServerVersion::parse("5.5.5-10.11.19-MariaDB").unwrap();
        for shown in [v.to_string(), format!("{v:?}")] {
            assert!(!shown.contains("5.5.5"), "{shown}");
        }
    }
}
