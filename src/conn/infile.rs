//! `LOAD DATA LOCAL INFILE`: the file the server asks for, read through the
//! ring from an allowed directory, or the caller's reader.

use super::{Connection, Outcome, QueryResult};
use crate::error::{Error, ErrorKind, Result};
use crate::opts::Opts;
use crate::session::Stake;
use crate::trace::traced;

impl Connection {
    /// Streams a local file for `LOAD DATA LOCAL INFILE` (io_uring file reads),
    /// then the empty packet that ends it.
    pub(super) async fn send_local_file(&mut self, path: &std::path::Path) -> Result<()> {
        const CHUNK: usize = 64 * 1024;
        let file = std::fs::File::open(path).map_err(|e| {
            Error::io(
                &format!("opening {} for LOAD DATA LOCAL INFILE", path.display()),
                e,
            )
        })?;
        let mut pos = 0u64;
        let mut file = file;
        let mut buf = Vec::with_capacity(CHUNK);
        loop {
            buf.clear();
            // The read owns the file and the buffer while the kernel may use
            // them; they come back with its result.
            let (r, back) = crate::io::uring::socket::read_at(file, buf, pos).await;
            let n = match (r, back) {
                (Ok(n), Some((f, b))) => {
                    (file, buf) = (f, b);
                    n
                }
                (r, _) => {
                    let e = r
                        .err()
                        .unwrap_or_else(|| std::io::Error::other("the ring stopped"));
                    return Err(self.abort_local_infile(&path.display().to_string(), e));
                }
            };
            if n == 0 {
                break;
            }
            pos += n as u64;
            self.chan.push_packet(&buf[..n])?;
            self.chan.flush().await?;
        }
        drop(file);
        self.chan.push_packet(&[])
    }

    /// A read failed half way through `LOAD DATA LOCAL INFILE` data. Ending the
    /// data normally would make the server commit a partial load, so the
    /// connection is closed instead: the server then rolls the statement back.
    fn abort_local_infile(&mut self, what: &str, e: std::io::Error) -> Error {
        let msg = format!(
            "reading {what} for LOAD DATA LOCAL INFILE failed ({e}); the connection was closed \
             so the server discards the partial load"
        );
        self.chan.mark_broken(msg.clone());
        // The server rolls the partial statement back when the connection
        // closes: nothing of it is applied.
        self.session.lost(u64::MAX);
        Error::new(ErrorKind::Io, msg).with_source(e)
    }

    /// Streams `reader` for `LOAD DATA LOCAL INFILE`, then the empty packet
    /// that ends the data.
    pub(super) async fn send_local_reader(&mut self, reader: &mut dyn std::io::Read) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.abort_local_infile("the data", e)),
            };
            self.chan.push_packet(&buf[..n])?;
            self.chan.flush().await?;
        }
        self.chan.push_packet(&[])
    }

    /// Runs a `LOAD DATA LOCAL INFILE` statement with the data read from
    /// `reader` (whatever file name the statement gives). Needs
    /// [`Opts::local_infile_reader`]. The reader is read on this thread: pass
    /// in-memory data or a small file; for large files allow their directory
    /// with [`Opts::local_infile_dir`], which reads them through io_uring.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// let csv = b"1,soup\n2,bread\n";
    /// let outcome = cnx
    ///     .load_local_data(
    ///         "LOAD DATA LOCAL INFILE 'dishes' INTO TABLE dishes FIELDS TERMINATED BY ','",
    ///         &csv[..],
    ///     )
    ///     .await?;
    /// assert_eq!(outcome.affected_rows, 2);
    /// # Ok(()) }
    /// ```
    pub async fn load_local_data(
        &mut self,
        sql: &str,
        mut reader: impl std::io::Read,
    ) -> Result<Outcome> {
        if !self.opts.local_infile_reader {
            return Err(Error::usage(
                "load_local_data needs Opts::local_infile_reader(true) (URL: local_infile_reader=true)",
            ));
        }
        let op = crate::trace::Op::LoadData(sql);
        timed!(self, "LOAD DATA LOCAL INFILE", traced_outcome(op), async {
            self.settle().await?;
            self.last = Outcome::default();
            self.write_query_expect(sql, Stake::Statement)?;
            let r = self.read_result_start_with(Some(&mut reader)).await?;
            self.consume(true).await?;
            match r {
                QueryResult::Done(o) => Ok(o),
                QueryResult::Rows(_) => Err(Error::usage(
                    "load_local_data ran a statement that returned rows; they were discarded",
                )),
            }
        })
    }
}

/// Decides whether the server may read `name` for LOAD DATA LOCAL INFILE:
/// only files under a directory the user allowed.
pub(super) fn local_file(
    opts: &Opts,
    name: &str,
) -> std::result::Result<std::path::PathBuf, String> {
    if opts.local_infile_dirs.is_empty() {
        return Err(format!(
            "the server asked for the local file '{name}' (LOAD DATA LOCAL INFILE), which is disabled; \
             nothing was sent (allow directories with Opts::local_infile_dir or local_infile_dir=DIR)"
        ));
    }
    let path = std::fs::canonicalize(name)
        .map_err(|e| format!("local file '{name}' cannot be read: {e}; nothing was sent"))?;
    let allowed = opts
        .local_infile_dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|d| path.starts_with(d));
    if allowed && path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the server asked for the local file '{name}', which is not a file under an allowed \
             local_infile_dir; nothing was sent"
        ))
    }
}
