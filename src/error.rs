use std::fmt;
use std::io;

use crate::proto::ProtoError;

/// What went wrong, broadly. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered a command with an error (syntax error, unknown table, ...).
    /// [`Error::server_error`] has the details. The connection is still usable.
    Server,
    /// Authentication failed: wrong user or password, or a plugin that cannot be used safely.
    Auth,
    /// The options or URL are invalid.
    Config,
    /// A socket error: refused, reset, closed by the server; or a host name
    /// that could not be resolved (the message names the host).
    Io,
    /// TLS could not be set up: the server does not offer it, its certificate
    /// was rejected, or the TLS files are unusable. The connection is closed.
    Tls,
    /// The server sent bytes that break the protocol; the connection is closed.
    Protocol,
    /// A packet or result exceeded the configured size limit.
    TooLarge,
    /// An operation did not finish within its timeout. A command that timed
    /// out leaves its connection usable: the statement is interrupted on the
    /// server and the rest of its reply discarded before the next command.
    Timeout,
    /// The connection cannot be used any more (closed, broken by an earlier
    /// error, or an interrupted exchange that cannot be resumed). Open a new one.
    Broken,
    /// A value could not be converted to the requested Rust type.
    Conversion,
    /// The caller used the API in a way that cannot work (e.g. fetching with no query).
    Usage,
    /// A batch item was never run: the batch stopped at an earlier error, or
    /// no connection could be opened for it (the message says which).
    NotRun,
    /// An error of the application's own, returned from code the driver runs
    /// for it ([`Client::with_conn`](crate::Client::with_conn) and
    /// transaction closures, [`Batch`](crate::Batch) jobs); see [`Error::other`].
    Other,
    /// The connection was lost inside a transaction. The server rolls an
    /// unfinished transaction back, so none of it was committed, unless the
    /// connection was lost during `COMMIT` itself, when the outcome is unknown
    /// ([`Error::is_commit_unknown`]). Nothing is replayed for you: re-run the
    /// whole transaction (e.g. with
    /// [`Client::transaction_retry`](crate::Client::transaction_retry)).
    TransactionLost,
    /// The transaction lost a conflict with another one and was rolled back:
    /// a deadlock (1213), or on Galera a certification failure at `COMMIT`
    /// (also 1213). Retrying the whole transaction is the fix;
    /// [`Error::server_error`] has the server's text.
    Conflict,
    /// No server could be used: every host of the options was tried and
    /// failed or was unsuitable (down, not ready, read-only for a write,
    /// lagging for a read); the message names each host and why.
    Unavailable,
    /// The core a [`Client`](crate::Client) call was sent to stopped before
    /// the call finished or could start: the client was closed or dropped,
    /// its runtime shut down, or the core's thread panicked (later calls go
    /// to the other cores). A statement already sent may have run;
    /// [`Error::is_commit_unknown`] says when a `COMMIT` was on its way.
    Stopped,
    /// A call that needs a row ([`Client::exec_one`](crate::Client::exec_one),
    /// [`Client::query_one`](crate::Client::query_one)) got none: sqlx's
    /// `RowNotFound`. The connection is fine.
    RowNotFound,
}

/// An error reported by the server in an ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The server's error code, e.g. `1146` (table doesn't exist).
    pub code: u16,
    /// The five-character SQLSTATE, e.g. `42S02`.
    pub sql_state: String,
    /// The server's message.
    pub message: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code, self.sql_state, self.message
        )
    }
}

impl ServerError {
    pub(crate) fn from_packet(p: &crate::proto::packets::ErrPacket<'_>) -> Self {
        ServerError {
            code: p.code,
            sql_state: String::from_utf8_lossy(&p.sql_state).into_owned(),
            message: String::from_utf8_lossy(p.message).into_owned(),
        }
    }
}

struct Inner {
    kind: ErrorKind,
    message: String,
    server: Option<ServerError>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// A command refused before anything of it was sent: the connection
    /// is still usable, whatever the kind says in general.
    unsent: bool,
    /// Lost during `COMMIT`: whether it committed is unknown.
    commit_unknown: bool,
}

/// An error from mysql-uring. See [`ErrorKind`] for the categories.
///
/// The one error type of the crate.
///
/// [`Error`] is a boxed, cheap-to-move value. Match on [`Error::kind`] for the
/// category, and use [`Error::server_error`] for the server's code, SQLSTATE
/// and message when the server refused something.
pub struct Error(Box<Inner>);

/// `Result<T, mysql_uring::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            server: None,
            source: None,
            unsent: false,
            commit_unknown: false,
        }))
    }

    /// A copy of this error for another caller hit by the same event (the
    /// source, which cannot be cloned, is described in the message).
    pub(crate) fn duplicate(&self) -> Self {
        let mut message = self.0.message.clone();
        if let Some(src) = &self.0.source {
            message = format!("{message}: {src}");
        }
        Error(Box::new(Inner {
            kind: self.0.kind,
            message,
            server: self.0.server.clone(),
            source: None,
            unsent: self.0.unsent,
            commit_unknown: self.0.commit_unknown,
        }))
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// Adds `note` to the message (after `; `), keeping the kind, the
    /// server's error (code, SQLSTATE) and the source.
    pub(crate) fn note(mut self, note: impl AsRef<str>) -> Self {
        let m = &mut self.0.message;
        if !m.is_empty() {
            m.push_str("; ");
        }
        m.push_str(note.as_ref());
        self
    }

    pub(crate) fn server(kind: ErrorKind, err: ServerError) -> Self {
        let hint = hint_for(err.code);
        // A deadlock (or Galera's certification failure, reported as one)
        // rolled the whole transaction back: a conflict, not a bad command.
        let kind = if kind == ErrorKind::Server && err.code == 1213 {
            ErrorKind::Conflict
        } else {
            kind
        };
        let mut e = Error::new(kind, hint);
        e.0.server = Some(err);
        e
    }

    /// An application error ([`ErrorKind::Other`]) to return from a closure
    /// the driver runs (a transaction that decides to roll back, a job that
    /// fails): a message, or any error, which becomes the source.
    ///
    /// ```
    /// let e = mysql_uring::Error::other("the balance would go negative");
    /// assert_eq!(e.kind(), mysql_uring::ErrorKind::Other);
    /// assert!(!e.is_fatal());
    /// ```
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let source = error.into();
        let mut e = Error::new(ErrorKind::Other, source.to_string());
        e.0.source = Some(source);
        e
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    pub(crate) fn broken(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Broken, message)
    }

    pub(crate) fn io(context: &str, e: io::Error) -> Self {
        let what = match e.kind() {
            io::ErrorKind::ConnectionRefused => {
                "connection refused: is the server running and listening on this address?"
            }
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => "the server closed the connection",
            io::ErrorKind::UnexpectedEof => "the server closed the connection",
            io::ErrorKind::NotFound => {
                "no such socket file: is the server running, and is the path right?"
            }
            io::ErrorKind::PermissionDenied => "permission denied",
            _ => "socket error",
        };
        Error::new(ErrorKind::Io, format!("{context}: {what}")).with_source(e)
    }

    /// A host name that could not be resolved to an address (`e`: what the
    /// resolver said; `None` when it answered with no address).
    pub(crate) fn unresolved(host: &str, port: u16, e: Option<io::Error>) -> Self {
        let why = match &e {
            // std's text is "failed to lookup address information: <gai_strerror>".
            Some(e) => {
                let s = e.to_string();
                match s.split_once(": ") {
                    Some((_, gai)) => gai.to_string(),
                    None => s,
                }
            }
            None => "the resolver returned no address".to_string(),
        };
        let e2 = Error::new(
            ErrorKind::Io,
            format!(
                "cannot connect to {host}:{port}: the host name '{host}' could not be resolved \
                 ({why}); check the host name in the URL or options (or use an IP address), \
                 and that this machine's DNS works"
            ),
        );
        match e {
            Some(e) => e2.with_source(e),
            None => e2,
        }
    }

    /// The category of the error.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The server's error, when the server refused something.
    pub fn server_error(&self) -> Option<&ServerError> {
        self.0.server.as_ref()
    }

    /// The server's error code, when there is one.
    pub fn code(&self) -> Option<u16> {
        self.0.server.as_ref().map(|s| s.code)
    }

    /// True when re-running the whole transaction (or the statement, outside
    /// one) may well succeed: a [`Conflict`](ErrorKind::Conflict) (deadlock,
    /// Galera certification failure), a [`TransactionLost`](ErrorKind::TransactionLost)
    /// whose outcome is known (not lost during `COMMIT`), a Galera node not
    /// ready (1047), a lock wait timeout (1205), or a write refused by a
    /// read-only server (1290, 1792: the primary moved).
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ErrorKind::Conflict => true,
            ErrorKind::TransactionLost => !self.0.commit_unknown,
            ErrorKind::Server => matches!(self.code(), Some(1047 | 1205 | 1290 | 1792)),
            _ => false,
        }
    }

    /// True when a write's fate is unknown: the connection was lost, or the
    /// query timeout passed, after a `COMMIT` (or a statement outside a
    /// transaction) was sent and before its reply came. It may or may not
    /// have been applied: check before re-running it (a unique key makes a
    /// duplicate fail instead of doubling). A statement that only reads is
    /// reported the same way (the driver does not parse SQL), harmlessly.
    pub fn is_commit_unknown(&self) -> bool {
        self.0.commit_unknown
    }

    /// This error, as what it means inside a transaction: a lost connection
    /// becomes [`ErrorKind::TransactionLost`] (the cause kept as the source).
    pub(crate) fn in_transaction(self, address: &str, committing: bool) -> Self {
        if !matches!(
            self.0.kind,
            ErrorKind::Io | ErrorKind::Broken | ErrorKind::Protocol
        ) {
            return self;
        }
        let msg = if committing {
            format!(
                "the connection to {address} was lost during COMMIT: the transaction may or may \
                 not have been committed; check before re-running it"
            )
        } else {
            format!(
                "the connection to {address} was lost inside a transaction: the server rolls it \
                 back, so none of it was committed; re-run the whole transaction"
            )
        };
        let mut e = Error::new(ErrorKind::TransactionLost, msg).with_source(self);
        e.0.commit_unknown = committing;
        e
    }

    /// This error, for a statement sent outside a transaction whose reply
    /// never came (the connection was lost, or the query timeout passed
    /// while it ran): it may or may not have been applied, so
    /// [`is_commit_unknown`](Error::is_commit_unknown) is true. The kind
    /// stays (`Io`, `Broken`, `Timeout`, ...).
    pub(crate) fn outcome_unknown(mut self, address: &str) -> Self {
        self.0.commit_unknown = true;
        let note = format!(
            "the statement was sent to {address} and no reply came: it may or may not have been \
             applied (commit-unknown); check before re-running a write"
        );
        self.0.message = if self.0.message.is_empty() {
            note
        } else {
            format!("{}; {note}", self.0.message)
        };
        self
    }

    /// This error, when it ended a call whose `COMMIT` was already sent (a
    /// timeout, the core stopping): whether it committed is unknown.
    pub(crate) fn commit_unknown(mut self) -> Self {
        if !self.0.commit_unknown {
            self.0.commit_unknown = true;
            self = self.note(
                "COMMIT had been sent: the transaction may or may not have been committed; \
                 check before re-running it",
            );
        }
        self
    }

    /// True when the connection that returned this error can no longer be used.
    /// A timed-out command leaves its connection usable (the rest of its
    /// reply is discarded, and the statement interrupted, before the next
    /// command), so [`ErrorKind::Timeout`] is not fatal; a connection that
    /// could not be recovered fails with [`ErrorKind::Broken`].
    /// [`ErrorKind::TooLarge`] is fatal when it was a packet received (the
    /// connection is closed), not when a command was refused before sending.
    pub fn is_fatal(&self) -> bool {
        if self.0.unsent {
            return false;
        }
        !matches!(
            self.0.kind,
            ErrorKind::Server
                | ErrorKind::Conversion
                | ErrorKind::Usage
                | ErrorKind::Config
                | ErrorKind::NotRun
                | ErrorKind::Timeout
                | ErrorKind::Other
                | ErrorKind::Conflict
                | ErrorKind::RowNotFound
        )
    }
}

/// A short "what to do" for common server errors.
fn hint_for(code: u16) -> &'static str {
    match code {
        1045 | 1698 => {
            "access denied: check the user name and password (and the host the user may connect from)"
        }
        1044 => "access denied to the database: grant the user access or choose another database",
        1049 => "unknown database: create it first or fix the database name in the options/URL",
        1040 => "the server has too many connections: close some or raise max_connections",
        1153 => "packet larger than the server's max_allowed_packet",
        1317 => "query was interrupted (KILL QUERY or a timeout)",
        1213 => {
            "the transaction was rolled back by a conflict (deadlock, or a Galera certification failure): re-run it"
        }
        1290 | 1792 => {
            "the server is read-only (a replica, or a demoted primary): send writes to the primary"
        }
        1047 => "the Galera node is not ready (not synced with its cluster): use another node",
        _ => "",
    }
}

/// `{:?}` reads like the message, with the kind and the chain of causes (so
/// `fn main() -> Result<(), mysql_uring::Error>` prints something a person
/// can act on); `{:#?}` shows the fields.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            let mut d = f.debug_struct("Error");
            d.field("kind", &self.0.kind);
            if !self.0.message.is_empty() {
                d.field("message", &self.0.message);
            }
            if let Some(s) = &self.0.server {
                d.field("server", s);
            }
            if let Some(s) = &self.0.source {
                d.field("source", s);
            }
            return d.finish();
        }
        write!(f, "{self} [{:?}]", self.0.kind)?;
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            write!(f, "\n  caused by: {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// The message alone: the cause is [`std::error::Error::source`]'s, so
/// reporters that print the chain do not print it twice.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.server, self.0.message.is_empty()) {
            (Some(s), true) => write!(f, "{s}"),
            (Some(s), false) => write!(f, "{s} ({})", self.0.message),
            (None, _) => write!(f, "{}", self.0.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let src = self.0.source.as_deref()?;
        if self.0.kind == ErrorKind::Other {
            // The application's error is the message already: its causes follow.
            return src.source();
        }
        Some(src as &(dyn std::error::Error + 'static))
    }
}

impl From<ProtoError> for Error {
    fn from(e: ProtoError) -> Self {
        let (kind, unsent) = match e {
            ProtoError::PacketTooLarge { .. } => (ErrorKind::TooLarge, false),
            ProtoError::CommandTooLarge { .. } => (ErrorKind::TooLarge, true),
            _ => (ErrorKind::Protocol, false),
        };
        let mut err = Error::new(kind, e.to_string());
        err.0.unsent = unsent;
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_keep_code_state_and_message() {
        let e = Error::server(
            ErrorKind::Server,
            ServerError {
                code: 1146,
                sql_state: "42S02".into(),
                message: "Table 'test.nope' doesn't exist".into(),
            },
        );
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.code(), Some(1146));
        assert_eq!(e.server_error().unwrap().sql_state, "42S02");
        let s = e.to_string();
        assert!(
            s.contains("1146") && s.contains("42S02") && s.contains("doesn't exist"),
            "{s}"
        );
        assert!(!e.is_fatal());
    }

    #[test]
    fn io_errors_explain_themselves() {
        let e = Error::io(
            "connecting to 127.0.0.1:1",
            io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.to_string().contains("is the server running"));
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.is_fatal());
    }

    #[test]
    fn an_unresolved_host_says_so_and_names_the_host() {
        let e = Error::unresolved(
            "db.example",
            3307,
            Some(io::Error::other(
                "failed to lookup address information: Name or service not known",
            )),
        );
        assert_eq!(e.kind(), ErrorKind::Io);
        let s = e.to_string();
        assert!(s.contains("'db.example' could not be resolved"), "{s}");
        assert!(s.contains("db.example:3307"), "{s}");
        assert!(s.contains("(Name or service not known)"), "{s}");
        assert!(s.contains("check the host name"), "{s}");
        assert!(!s.contains("socket error"), "{s}");
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::unresolved("db.example", 3306, None);
        assert!(e.to_string().contains("no address"), "{e}");
    }

    #[test]
    fn error_is_small() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
