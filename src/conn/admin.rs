//! Session commands: change_user, ping, reconnect, reset, select_db, close.

use std::sync::Arc;
use std::time::Duration;

use super::{Connection, Outcome, QueryResult, SessionTrack, connect::handshake_error};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::command::{write_init_db, write_simple};
use crate::proto::consts::com;
use crate::proto::handshake::Step;
use crate::session::{Reply, Stake};
use crate::trace::traced;

impl Connection {
    /// Re-authenticates as another user on this connection
    /// (`COM_CHANGE_USER`), with any auth plugin the handshake supports. The
    /// server resets the session as for a new connection (variables,
    /// temporary tables, open transaction); the charset and `init` statements
    /// of the options are applied again. If the server refuses, the
    /// connection is closed (its session state is then unknown) and the error
    /// says why.
    pub async fn change_user(
        &mut self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<()> {
        let op = crate::trace::Op::ChangeUser { user, database };
        traced!(
            self,
            op,
            self.change_user_untraced(user, password, database).await
        )
    }

    async fn change_user_untraced(
        &mut self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<()> {
        timed!(
            self,
            "change_user",
            self.change_user_inner(user, password, database)
        )?;
        self.apply_session_setup().await
    }

    async fn change_user_inner(
        &mut self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<()> {
        self.settle().await?;
        // The server frees the session's prepared statements.
        self.stmts.forget_all();
        let mut opts = (*self.opts).clone();
        opts.user = user.to_string();
        opts.password = Some(password.to_string());
        opts.database = database.map(str::to_string);
        let mut out = Vec::new();
        self.handshake
            .change_user(user, password.as_bytes(), database, &mut out)
            .map_err(|e| handshake_error(e, &opts))?;
        {
            let (framer, buf) = self.chan.encoder()?;
            crate::proto::command::write_payload(framer, buf, &out)?;
        }
        // An authentication exchange cannot be resumed by someone else.
        self.session
            .begin_unresumable("change_user was interrupted during authentication");
        let result: Result<()> = async {
            loop {
                let p = self.chan.read_packet().await?;
                let packet = &self.chan.buf()[p];
                if packet.first() == Some(&0x00) {
                    if let Ok(ok) = crate::proto::packets::parse_ok(packet, self.capabilities) {
                        self.status = ok.status;
                        self.track.on_ok(&ok);
                    }
                }
                match self
                    .handshake
                    .on_packet(packet, &mut out)
                    .map_err(|e| handshake_error(e, &opts))?
                {
                    Step::Send => self.chan.push_packet(&out)?,
                    Step::Read => {}
                    Step::Done => return Ok(()),
                    Step::StartTls => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            "the server asked for TLS in the middle of change_user",
                        ));
                    }
                }
            }
        }
        .await;
        self.session.end_unresumable();
        match result {
            Ok(()) => {
                // The server resets the session: the charset of the
                // handshake, the database asked for.
                self.track = SessionTrack::new(database);
                self.opts = Arc::new(opts);
                self.session
                    .shared()
                    .set_target(self.opts.clone(), self.connection_id);
                self.session.server_reset();
                self.last = Outcome::default();
                Ok(())
            }
            Err(e) => {
                self.chan
                    .mark_broken(format!("change_user as '{user}' failed: {e}"));
                // The server's code and SQLSTATE (e.g. 1045, 28000) stay in the error.
                Err(e.note(
                    "the connection was closed (its session state is unknown after a failed change_user)",
                ))
            }
        }
    }

    /// Checks the server is alive (`COM_PING`).
    pub async fn ping(&mut self) -> Result<()> {
        let op = crate::trace::Op::Ping;
        timed!(
            self,
            "ping",
            traced(op),
            self.simple_command(com::PING, &[])
        )
    }

    /// True when the connection is usable and the server answers a ping
    /// (Connector/Python's `is_connected()`); any failure is `false`, never
    /// an error. Like every command it first settles what an earlier one
    /// left (unread rows are discarded). On `false`, [`reconnect`](Connection::reconnect).
    pub async fn is_connected(&mut self) -> bool {
        !self.chan.is_broken() && self.ping().await.is_ok()
    }

    /// Replaces this session with a new one opened with the same options
    /// (Connector/Python's `reconnect(attempts, delay)`): the old one is
    /// closed first (`COM_QUIT` when it is still usable), then up to
    /// `attempts` connects are tried (at least one), `delay` apart. The new
    /// session gets the options' `charset` and `init` statements again; its
    /// user and database are the options' (those of the last
    /// [`change_user`](Connection::change_user)), not one chosen later with
    /// `USE`; prepared [`Statement`](crate::Statement)s of the old session
    /// are refused. When every attempt fails, the last attempt's error
    /// (kind, server code) is returned, noting how many attempts were made,
    /// and the connection stays closed.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// if !cnx.is_connected().await {
    ///     cnx.reconnect(3, std::time::Duration::from_secs(1)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn reconnect(&mut self, attempts: u32, delay: Duration) -> Result<()> {
        let attempts = attempts.max(1);
        if !self.chan.is_broken() && !self.needs_settle() {
            let quit = match self.chan.encoder() {
                Ok((framer, out)) => write_simple(framer, out, com::QUIT).is_ok(),
                Err(_) => false,
            };
            if quit {
                let _ = crate::io::uring::timeout(self.opts.drain_timeout, self.chan.flush()).await;
            }
        }
        self.chan.mark_broken("closed by reconnect");
        let opts = (*self.opts).clone();
        let mut last = None;
        for i in 0..attempts {
            if i > 0 && !delay.is_zero() {
                crate::io::uring::sleep(delay).await;
            }
            match Connection::connect(opts.clone()).await {
                Ok(new) => {
                    *self = new;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| Error::broken("reconnect made no attempt"));
        Err(e.note(format!(
            "reconnect gave up after {attempts} attempt{} ({delay:?} apart)",
            if attempts == 1 { "" } else { "s" }
        )))
    }

    /// Resets the session without reconnecting (`COM_RESET_CONNECTION`): rolls
    /// back an open transaction, drops temporary tables, releases locks and
    /// clears user variables and session settings, then re-applies the
    /// options' `charset` and `init` statements so the session is as after
    /// [`connect`](crate::connect). The server also frees the session's prepared statements:
    /// the statement cache is emptied, and [`crate::Statement`]s prepared
    /// before the reset are refused with a clear error. Needs MariaDB 10.2.4+
    /// or MySQL 5.7.3+.
    pub async fn reset(&mut self) -> Result<()> {
        let op = crate::trace::Op::Reset;
        traced!(self, op, self.reset_untraced().await)
    }

    async fn reset_untraced(&mut self) -> Result<()> {
        timed!(
            self,
            "reset",
            self.simple_command(com::RESET_CONNECTION, &[])
        )?;
        self.stmts.forget_all();
        // The default database stays; the charset is the handshake's again.
        self.session.server_reset();
        self.track = SessionTrack::new(self.track.database.as_deref());
        self.apply_session_setup().await
    }

    /// Changes the default database (`COM_INIT_DB`, like `USE db`);
    /// [`Connection::database`] then returns it.
    pub async fn select_db(&mut self, db: &str) -> Result<()> {
        let op = crate::trace::Op::SelectDb(db);
        timed!(
            self,
            "select_db",
            traced(op),
            self.simple_command(com::INIT_DB, db.as_bytes())
        )?;
        self.track.database = Some(db.to_string());
        Ok(())
    }

    /// Ends the session politely (`COM_QUIT`) and closes the socket. A
    /// connection with an abandoned command still in progress is just closed
    /// (the server ends that session when it sees the socket close).
    pub async fn close(mut self) -> Result<()> {
        if self.chan.is_broken() || self.needs_settle() {
            self.chan.shutdown();
            return Ok(());
        }
        let r = async {
            let (framer, out) = self.chan.encoder()?;
            write_simple(framer, out, com::QUIT)?;
            self.chan.flush().await
        }
        .await;
        self.chan.shutdown();
        r
    }

    async fn simple_command(&mut self, command: u8, arg: &[u8]) -> Result<()> {
        self.settle().await?;
        {
            let (framer, out) = self.chan.encoder()?;
            if command == com::INIT_DB {
                write_init_db(framer, out, arg)?;
            } else {
                write_simple(framer, out, command)?;
            }
        }
        let machine = self.result_machine();
        self.session
            .expect(Reply::result(machine, None), Stake::Nothing);
        match self.read_result_start().await? {
            QueryResult::Done(_) => Ok(()),
            QueryResult::Rows(_) => {
                self.chan.mark_broken("unexpected result set");
                Err(Error::new(
                    ErrorKind::Protocol,
                    "the server answered a command with a result set",
                ))
            }
        }
    }
}
