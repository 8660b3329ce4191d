//! Stored procedures: [`Connection::callproc`], Connector/Python's
//! `callproc` and `stored_results`.

use std::sync::Arc;

use super::{Connection, Outcome, QueryResult};
use crate::column::Column;
use crate::error::{Error, Result};
use crate::params::Params;
use crate::proto::consts::status;
use crate::row::Row;

/// What [`Connection::callproc`] returns.
#[derive(Debug, Clone, Default)]
pub struct CallResult {
    /// The OUT and INOUT parameters after the call, one column per
    /// parameter named after it, in declaration order (read with
    /// `out.get::<T>("name")` or by position among the OUT/INOUT
    /// parameters). `None` when the procedure has none.
    pub out: Option<Row>,
    /// The result sets the procedure produced, in order (Connector/Python's
    /// `stored_results()`); the OUT parameters are not among them.
    pub results: Vec<StoredResult>,
    /// The `CALL`'s own outcome (affected rows of the procedure's last
    /// statement, warnings).
    pub outcome: Outcome,
}

/// One result set produced by a stored procedure.
#[derive(Debug, Clone)]
pub struct StoredResult {
    /// Its columns (Connector/Python's `description`).
    pub columns: Arc<[Column]>,
    /// Its rows.
    pub rows: Vec<Row>,
}

impl Connection {
    /// Calls the stored procedure `name` with `args`, one per parameter
    /// (IN, OUT and INOUT alike; pass anything, e.g. `None::<i32>`, for an
    /// OUT parameter), and returns the OUT/INOUT values and the result sets
    /// it produced, like Connector/Python's `callproc` + `stored_results()`.
    ///
    /// `name` is `proc` or `db.proc`; each part a plain identifier
    /// (letters, digits, `_`, `$`, non-ASCII) or one quoted in backticks. It
    /// is quoted again before use, so it can never inject SQL; anything else
    /// is an [`ErrorKind::Usage`](crate::ErrorKind::Usage) error and nothing
    /// is sent.
    ///
    /// How: `CALL name(?, …)` runs as a prepared statement (through the
    /// statement cache), and the server sends the OUT and INOUT parameters
    /// back as a last result set flagged `SERVER_PS_OUT_PARAMS` (MariaDB
    /// 10.x/11.x, MySQL 5.5.3+): one round trip, typed values, no user
    /// variables left in the session. (Connector/Python instead sets user
    /// variables, calls with them and selects them: three round trips.)
    /// Result sets are read whole; to stream a large one, run
    /// [`cmd_execute`](Connection::cmd_execute) with the same `CALL` and
    /// [`next_result`](Connection::next_result) yourself.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// // CREATE PROCEDURE add_tax(IN net DECIMAL(10,2), INOUT rate INT, OUT gross DECIMAL(10,2))
    /// let r = cnx.callproc("shop.add_tax", (100, 20, None::<i32>)).await?;
    /// let out = r.out.expect("OUT parameters");
    /// let gross: String = out.get("gross")?;
    /// for set in &r.results {
    ///     println!("{} columns, {} rows", set.columns.len(), set.rows.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn callproc(&mut self, name: &str, args: impl Params) -> Result<CallResult> {
        let sql = call_sql(name, args.len())?;
        timed!(self, "the procedure call", async {
            let mut call = CallResult::default();
            let mut next = Some(self.exec_start(&sql.as_str(), &args).await?);
            while let Some(result) = next {
                match result {
                    QueryResult::Rows(columns) => {
                        let mut rows = Vec::new();
                        while let Some(row) = self.read_row().await? {
                            rows.push(row);
                        }
                        if self.last.status & status::PS_OUT_PARAMS != 0 {
                            call.out = rows.pop();
                        } else {
                            call.results.push(StoredResult { columns, rows });
                        }
                    }
                    QueryResult::Done(outcome) => call.outcome = outcome,
                }
                next = if self.has_pending_response() {
                    self.last = Outcome::default();
                    Some(self.read_result_start().await?)
                } else {
                    None
                };
            }
            Ok(call)
        })
    }
}

/// `CALL <quoted name>(?, …)` for `n` arguments, or a usage error for a bad name.
fn call_sql(name: &str, n: usize) -> Result<String> {
    let mut sql = String::with_capacity(name.len() + 12 + 3 * n);
    sql.push_str("CALL ");
    sql.push_str(&quote_routine_name(name)?);
    sql.push('(');
    for i in 0..n {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
    Ok(sql)
}

/// `name` or `db.name`, each part re-quoted in backticks; an error for
/// anything that is not such a name.
pub(crate) fn quote_routine_name(name: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::usage(format!(
            "callproc: {name:?} is not a procedure name ({why}); expected `name` or `db.name`, \
             each a plain identifier or one quoted in backticks"
        ))
    };
    let mut quoted = String::with_capacity(name.len() + 4);
    let mut rest = name;
    for part_no in 0..2 {
        let (part, after) = match rest.strip_prefix('`') {
            Some(inner) => {
                let mut part = String::new();
                let mut chars = inner.char_indices();
                let after = loop {
                    match chars.next() {
                        None => return Err(bad("a backtick quote is not closed")),
                        Some((i, '`')) => {
                            if inner[i + 1..].starts_with('`') {
                                chars.next();
                                part.push('`');
                            } else {
                                break &inner[i + 1..];
                            }
                        }
                        Some((_, c)) => part.push(c),
                    }
                };
                if part.ends_with(' ') {
                    return Err(bad("a name cannot end with a space"));
                }
                (part, after)
            }
            None => {
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| !plain_identifier_char(c))
                    .map_or(rest.len(), |(i, _)| i);
                let part = &rest[..end];
                if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("an unquoted name cannot be only digits"));
                }
                (part.to_string(), &rest[end..])
            }
        };
        if part.is_empty() {
            return Err(bad("a part is empty"));
        }
        if part.chars().count() > 64 {
            return Err(bad("a part is longer than 64 characters"));
        }
        if part.chars().any(|c| c == '\0' || c > '\u{FFFF}') {
            return Err(bad("NUL and characters beyond U+FFFF are not allowed"));
        }
        if part_no == 1 {
            quoted.push('.');
        }
        quoted.push('`');
        quoted.push_str(&part.replace('`', "``"));
        quoted.push('`');
        match after.strip_prefix('.') {
            None if after.is_empty() => return Ok(quoted),
            Some(next) if part_no == 0 => rest = next,
            _ => break,
        }
    }
    Err(bad("unexpected characters after the name"))
}

/// Characters of an unquoted identifier (MySQL and MariaDB).
fn plain_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || ('\u{80}'..='\u{FFFF}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_names_are_requoted_or_refused() {
        let q = |s: &str| quote_routine_name(s).map_err(|e| e.to_string());
        assert_eq!(q("p").unwrap(), "`p`");
        assert_eq!(q("shop.add_tax").unwrap(), "`shop`.`add_tax`");
        assert_eq!(q("$x_1").unwrap(), "`$x_1`");
        assert_eq!(q("1p").unwrap(), "`1p`");
        assert_eq!(q("prozedur_größe").unwrap(), "`prozedur_größe`");
        assert_eq!(q("`my proc`").unwrap(), "`my proc`");
        assert_eq!(q("`a``b`.`c.d`").unwrap(), "`a``b`.`c.d`");
        assert_eq!(q("db.`p`").unwrap(), "`db`.`p`");
        for bad in [
            "",
            ".",
            "p.",
            ".p",
            "a.b.c",
            "p()",
            "p; DROP TABLE t",
            "p`",
            "`p",
            "`p``",
            "p -- x",
            " p",
            "p ",
            "`p `",
            "123",
            "``",
            "a\0b",
            "`a\0b`",
            "`a`b",
            "p'",
            "p\"",
            "p/*",
        ] {
            let e = quote_routine_name(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Usage, "{bad:?}");
        }
        assert!(q(&"x".repeat(64)).is_ok());
        assert!(q(&"x".repeat(65)).is_err());
        assert!(q("\u{1F600}").is_err());
        assert_eq!(call_sql("p", 0).unwrap(), "CALL `p`()");
        assert_eq!(call_sql("d.p", 3).unwrap(), "CALL `d`.`p`(?, ?, ?)");
    }
}
