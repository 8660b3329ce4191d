//! The SQL subset: a lexer and a parser of the statements this server knows.
//! Keywords are case-insensitive; whitespace and comments are free.

use crate::lex::{ParseError, Tok, Token, lex};

/// An argument of a statement: a literal or a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// The n-th placeholder (0-based).
    Param(usize),
    /// An integer literal.
    Int(i64),
    /// A literal with a '.' or an exponent.
    Double(f64),
    /// A string or X'hex' literal.
    Bytes(Vec<u8>),
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `SELECT <int>`.
    SelectInt {
        /// The value.
        value: i64,
        /// The column name (the literal's text).
        name: String,
    },
    /// `SELECT <a> + <add>, SLEEP(<sleep>)`.
    PlusSleep {
        /// The first operand.
        a: Arg,
        /// The integer added.
        add: i64,
        /// Seconds to sleep.
        sleep: Arg,
        /// Column names (the expressions' text).
        names: [String; 2],
    },
    /// `SELECT SLEEP(<secs>)`.
    Sleep {
        /// Seconds to sleep.
        sleep: Arg,
        /// The column name.
        name: String,
    },
    /// `INSERT INTO t [(id, v)] VALUES (<id>, <v>)[, ...]`.
    Insert {
        /// (id, v) per row.
        rows: Vec<(Arg, Arg)>,
    },
    /// `SELECT v FROM t WHERE id = <id>`.
    SelectV {
        /// The key.
        id: Arg,
    },
    /// `SELECT id, v FROM t ORDER BY id`.
    SelectAll,
    /// `SELECT seq FROM seq_1_to_<n>`.
    Seq {
        /// Row count.
        n: u64,
    },
    /// `BEGIN` / `START TRANSACTION [WITH CONSISTENT SNAPSHOT] [, READ ONLY | READ WRITE]`.
    Begin {
        /// `WITH CONSISTENT SNAPSHOT`: the snapshot is taken at once.
        snapshot: bool,
        /// `READ ONLY`: writes are refused.
        read_only: bool,
    },
    /// `SET [SESSION] autocommit = 0 | 1` (also `@@autocommit`, ON/OFF).
    Autocommit(bool),
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `KILL [QUERY | CONNECTION] <id>`.
    Kill {
        /// `KILL QUERY` (else the connection).
        query: bool,
        /// The target connection id.
        id: u64,
    },
    /// `SET ...` or `DO ...`: accepted and ignored.
    Ignored,
    /// `LOAD DATA LOCAL INFILE '<file>' INTO TABLE t [FIELDS TERMINATED BY ..] [LINES TERMINATED BY ..]`.
    LoadData {
        /// The file name sent back to the client.
        file: Vec<u8>,
        /// Field terminator (default tab, as the server's).
        fields: Vec<u8>,
        /// Line terminator (default newline).
        lines: Vec<u8>,
    },
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    src: &'a [u8],
    allow_params: bool,
    params: usize,
}

type PResult<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn err<T>(&self) -> PResult<T> {
        let at = self.toks.get(self.pos).map_or(self.src.len(), |t| t.start);
        Err(ParseError {
            at,
            garbage: false,
            empty: false,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        self.pos += usize::from(yes);
        yes
    }

    fn kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) { Ok(()) } else { self.err() }
    }

    fn eat_punct(&mut self, c: u8) -> bool {
        let yes = self.peek() == Some(&Tok::Punct(c));
        self.pos += usize::from(yes);
        yes
    }

    fn punct(&mut self, c: u8) -> PResult<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.err()
        }
    }

    fn end(&mut self) -> PResult<()> {
        self.eat_punct(b';');
        if self.pos == self.toks.len() {
            Ok(())
        } else {
            self.err()
        }
    }

    /// Source text from token `from` to the last token taken.
    fn text_since(&self, from: usize) -> String {
        let (a, b) = (self.toks[from].start, self.toks[self.pos - 1].end);
        String::from_utf8_lossy(&self.src[a..b]).into_owned()
    }

    /// A number literal, optionally signed, or (when allowed) a placeholder.
    fn number(&mut self) -> PResult<Arg> {
        if self.peek() == Some(&Tok::Param) && self.allow_params {
            self.pos += 1;
            self.params += 1;
            return Ok(Arg::Param(self.params - 1));
        }
        let neg = self.eat_punct(b'-');
        if !neg {
            self.eat_punct(b'+');
        }
        let Some(Tok::Num(n)) = self.peek().cloned() else {
            return self.err();
        };
        let text = if neg { format!("-{n}") } else { n.clone() };
        let arg = if n.contains(['.', 'e', 'E']) {
            Arg::Double(text.parse().or_else(|_| self.err())?)
        } else {
            Arg::Int(text.parse().or_else(|_| self.err())?)
        };
        self.pos += 1;
        Ok(arg)
    }

    fn int(&mut self) -> PResult<i64> {
        match self.number()? {
            Arg::Int(i) => Ok(i),
            _ => {
                self.pos -= 1;
                self.err()
            }
        }
    }

    /// A value for column v: a string, a number, or a placeholder.
    fn value(&mut self) -> PResult<Arg> {
        if let Some(Tok::Str(b)) = self.peek().cloned() {
            self.pos += 1;
            return Ok(Arg::Bytes(b));
        }
        self.number()
    }

    fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek().cloned() {
            Some(Tok::Str(b)) => {
                self.pos += 1;
                Ok(b)
            }
            _ => self.err(),
        }
    }

    fn sleep_call(&mut self) -> PResult<(Arg, String)> {
        let from = self.pos;
        self.kw("SLEEP")?;
        self.punct(b'(')?;
        let a = self.number()?;
        self.punct(b')')?;
        Ok((a, self.text_since(from)))
    }

    fn select(&mut self) -> PResult<Stmt> {
        if self.is_kw("SLEEP") {
            let (sleep, name) = self.sleep_call()?;
            self.end()?;
            return Ok(Stmt::Sleep { sleep, name });
        }
        if self.eat_kw("v") {
            self.kw("FROM")?;
            self.kw("t")?;
            self.kw("WHERE")?;
            self.kw("id")?;
            self.punct(b'=')?;
            let id = self.number()?;
            self.end()?;
            return Ok(Stmt::SelectV { id });
        }
        if self.eat_kw("id") {
            self.punct(b',')?;
            self.kw("v")?;
            self.kw("FROM")?;
            self.kw("t")?;
            self.kw("ORDER")?;
            self.kw("BY")?;
            self.kw("id")?;
            self.end()?;
            return Ok(Stmt::SelectAll);
        }
        if self.eat_kw("seq") {
            self.kw("FROM")?;
            let n = match self.peek() {
                Some(Tok::Word(w)) => w
                    .strip_prefix("seq_1_to_")
                    .and_then(|n| n.parse::<u64>().ok()),
                _ => None,
            };
            let Some(n) = n else { return self.err() };
            self.pos += 1;
            self.end()?;
            return Ok(Stmt::Seq { n });
        }
        let from = self.pos;
        let a = self.number()?;
        if self.pos == self.toks.len() || self.peek() == Some(&Tok::Punct(b';')) {
            let Arg::Int(value) = a else {
                return self.err();
            };
            let name = self.text_since(from);
            self.end()?;
            return Ok(Stmt::SelectInt { value, name });
        }
        self.punct(b'+')?;
        let add = self.int()?;
        let first = self.text_since(from);
        self.punct(b',')?;
        let (sleep, second) = self.sleep_call()?;
        self.end()?;
        Ok(Stmt::PlusSleep {
            a,
            add,
            sleep,
            names: [first, second],
        })
    }

    fn insert(&mut self) -> PResult<Stmt> {
        self.kw("INTO")?;
        self.kw("t")?;
        if self.eat_punct(b'(') {
            self.kw("id")?;
            self.punct(b',')?;
            self.kw("v")?;
            self.punct(b')')?;
        }
        if !self.eat_kw("VALUES") {
            self.kw("VALUE")?;
        }
        let mut rows = Vec::new();
        loop {
            self.punct(b'(')?;
            let id = self.number()?;
            self.punct(b',')?;
            let v = self.value()?;
            self.punct(b')')?;
            rows.push((id, v));
            if !self.eat_punct(b',') {
                break;
            }
        }
        self.end()?;
        Ok(Stmt::Insert { rows })
    }

    fn load_data(&mut self) -> PResult<Stmt> {
        self.kw("DATA")?;
        self.kw("LOCAL")?;
        self.kw("INFILE")?;
        let file = self.string()?;
        self.kw("INTO")?;
        self.kw("TABLE")?;
        self.kw("t")?;
        let (mut fields, mut lines) = (b"\t".to_vec(), b"\n".to_vec());
        if self.eat_kw("FIELDS") || self.eat_kw("COLUMNS") {
            self.kw("TERMINATED")?;
            self.kw("BY")?;
            fields = self.string()?;
        }
        if self.eat_kw("LINES") {
            self.kw("TERMINATED")?;
            self.kw("BY")?;
            lines = self.string()?;
        }
        if fields.is_empty() || lines.is_empty() {
            return self.err();
        }
        self.end()?;
        Ok(Stmt::LoadData {
            file,
            fields,
            lines,
        })
    }

    /// `SET [SESSION | LOCAL] [@@[session.]]autocommit = <value>` as the
    /// whole statement; leaves the position alone when it is not.
    fn autocommit(&mut self) -> Option<bool> {
        let save = self.pos;
        let r = (|| {
            self.kw("SET").ok()?;
            if !self.eat_kw("SESSION") {
                self.eat_kw("LOCAL");
            }
            if self.eat_punct(b'@') {
                self.punct(b'@').ok()?;
                if self.eat_kw("session") {
                    self.punct(b'.').ok()?;
                }
            }
            self.kw("autocommit").ok()?;
            self.punct(b'=').ok()?;
            let on = match self.peek()? {
                Tok::Num(n) if n == "1" => true,
                Tok::Num(n) if n == "0" => false,
                Tok::Word(w) if w.eq_ignore_ascii_case("ON") || w.eq_ignore_ascii_case("TRUE") => {
                    true
                }
                Tok::Word(w)
                    if w.eq_ignore_ascii_case("OFF") || w.eq_ignore_ascii_case("FALSE") =>
                {
                    false
                }
                _ => return None,
            };
            self.pos += 1;
            self.end().ok()?;
            Some(on)
        })();
        if r.is_none() {
            self.pos = save;
        }
        r
    }

    fn statement(&mut self) -> PResult<Stmt> {
        if self.eat_kw("SELECT") {
            return self.select();
        }
        if self.eat_kw("INSERT") {
            return self.insert();
        }
        if self.eat_kw("BEGIN") {
            self.eat_kw("WORK");
            self.end()?;
            return Ok(Stmt::Begin {
                snapshot: false,
                read_only: false,
            });
        }
        if self.eat_kw("START") {
            self.kw("TRANSACTION")?;
            let (mut snapshot, mut read_only) = (false, false);
            loop {
                if self.eat_kw("WITH") {
                    self.kw("CONSISTENT")?;
                    self.kw("SNAPSHOT")?;
                    snapshot = true;
                } else if self.eat_kw("READ") {
                    read_only = self.eat_kw("ONLY");
                    if !read_only {
                        self.kw("WRITE")?;
                    }
                } else {
                    break;
                }
                if !self.eat_punct(b',') {
                    break;
                }
            }
            self.end()?;
            return Ok(Stmt::Begin {
                snapshot,
                read_only,
            });
        }
        if self.eat_kw("COMMIT") {
            self.eat_kw("WORK");
            self.end()?;
            return Ok(Stmt::Commit);
        }
        if self.eat_kw("ROLLBACK") {
            self.eat_kw("WORK");
            self.end()?;
            return Ok(Stmt::Rollback);
        }
        if self.eat_kw("KILL") {
            let query = self.eat_kw("QUERY");
            if !query {
                self.eat_kw("CONNECTION");
            }
            let id = self.int()?;
            let Ok(id) = u64::try_from(id) else {
                return self.err();
            };
            self.end()?;
            return Ok(Stmt::Kill { query, id });
        }
        if self.is_kw("SET") {
            if let Some(on) = self.autocommit() {
                return Ok(Stmt::Autocommit(on));
            }
        }
        if (self.eat_kw("SET") || self.eat_kw("DO")) && self.pos < self.toks.len() {
            if !self.allow_params && self.toks.iter().any(|t| t.tok == Tok::Param) {
                let at = self.toks.iter().position(|t| t.tok == Tok::Param);
                self.pos = at.unwrap_or(0);
                return self.err();
            }
            self.params = self.toks.iter().filter(|t| t.tok == Tok::Param).count();
            return Ok(Stmt::Ignored);
        }
        if self.eat_kw("LOAD") {
            return self.load_data();
        }
        self.err()
    }
}

/// Parses one statement. With `allow_params` (prepare), `?` placeholders
/// are allowed where values go; returns the statement and the placeholder count.
pub fn parse(sql: &[u8], allow_params: bool) -> Result<(Stmt, usize), ParseError> {
    let toks = lex(sql)?;
    if toks.is_empty() {
        return Err(ParseError {
            at: 0,
            garbage: false,
            empty: true,
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        src: sql,
        allow_params,
        params: 0,
    };
    let stmt = p.statement()?;
    Ok((stmt, p.params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Stmt {
        parse(s.as_bytes(), true).unwrap().0
    }

    #[test]
    fn selects() {
        assert_eq!(
            ok("select  42"),
            Stmt::SelectInt {
                value: 42,
                name: "42".into()
            }
        );
        assert_eq!(
            ok("SELECT -7;"),
            Stmt::SelectInt {
                value: -7,
                name: "-7".into()
            }
        );
        let (s, n) = parse(b"SELECT ? + 1,  SLEEP(?)", true).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            s,
            Stmt::PlusSleep {
                a: Arg::Param(0),
                add: 1,
                sleep: Arg::Param(1),
                names: ["? + 1".into(), "SLEEP(?)".into()]
            }
        );
        assert!(matches!(
            ok("SELECT 2.5+1, sleep(0.25)"),
            Stmt::PlusSleep { a: Arg::Double(a), sleep: Arg::Double(s), .. } if a == 2.5 && s == 0.25
        ));
        assert!(
            matches!(ok("SELECT SLEEP(1)"), Stmt::Sleep { sleep: Arg::Int(1), name } if name == "SLEEP(1)")
        );
        assert_eq!(
            ok("select v from t where id = ?"),
            Stmt::SelectV { id: Arg::Param(0) }
        );
        assert_eq!(ok("SELECT id,v FROM t ORDER BY id"), Stmt::SelectAll);
        assert_eq!(ok("SELECT seq FROM seq_1_to_1000"), Stmt::Seq { n: 1000 });
    }

    #[test]
    fn inserts_and_escapes() {
        assert_eq!(
            ok(r"INSERT INTO t (id, v) VALUES (5, 'a\'b\\c''d')"),
            Stmt::Insert {
                rows: vec![(Arg::Int(5), Arg::Bytes(b"a'b\\c'd".to_vec()))]
            }
        );
        assert_eq!(
            ok("insert into t(id,v) values(?,?),(-1, X'00fF')"),
            Stmt::Insert {
                rows: vec![
                    (Arg::Param(0), Arg::Param(1)),
                    (Arg::Int(-1), Arg::Bytes(vec![0, 255]))
                ]
            }
        );
        // Any byte inside a string literal.
        let mut q = b"INSERT INTO t (id, v) VALUES (1, '".to_vec();
        q.extend_from_slice(&[0, 1, 0xFF, 0x80]);
        q.extend_from_slice(b"')");
        assert!(parse(&q, false).is_ok());
    }

    #[test]
    fn other_statements() {
        let plain = Stmt::Begin {
            snapshot: false,
            read_only: false,
        };
        assert_eq!(ok("begin"), plain);
        assert_eq!(ok("START  TRANSACTION"), plain);
        assert_eq!(
            ok("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"),
            Stmt::Begin {
                snapshot: true,
                read_only: true
            }
        );
        assert_eq!(ok("START TRANSACTION READ WRITE"), plain);
        assert_eq!(ok("SET autocommit = 0"), Stmt::Autocommit(false));
        assert_eq!(ok("set @@session.autocommit=ON"), Stmt::Autocommit(true));
        assert_eq!(ok("SET SESSION autocommit = 1;"), Stmt::Autocommit(true));
        assert_eq!(ok("SET autocommit = 0, NAMES utf8"), Stmt::Ignored);
        assert_eq!(ok("commit"), Stmt::Commit);
        assert_eq!(ok("ROLLBACK"), Stmt::Rollback);
        assert_eq!(ok("KILL QUERY 3"), Stmt::Kill { query: true, id: 3 });
        assert_eq!(
            ok("kill connection 4"),
            Stmt::Kill {
                query: false,
                id: 4
            }
        );
        assert_eq!(
            ok("KILL 4"),
            Stmt::Kill {
                query: false,
                id: 4
            }
        );
        assert_eq!(ok("SET NAMES utf8mb4"), Stmt::Ignored);
        assert_eq!(ok("DO 1"), Stmt::Ignored);
        assert_eq!(
            ok("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE t FIELDS TERMINATED BY ','"),
            Stmt::LoadData {
                file: b"f.csv".to_vec(),
                fields: b",".to_vec(),
                lines: b"\n".to_vec()
            }
        );
    }

    #[test]
    fn errors() {
        let e = parse(b"SELECT 1; SELECT 2", false).unwrap_err();
        assert_eq!(e.at, 10);
        assert!(
            e.to_sql_error(b"SELECT 1; SELECT 2")
                .msg
                .contains("near 'SELECT 2' at line 1")
        );
        assert!(parse(b"SELECT ?", false).is_err());
        assert!(parse(b"SELECT ? + 1, SLEEP(1)", false).is_err());
        assert!(parse(b"UPDATE t SET v = 1", false).is_err());
        assert!(parse(b" /* c */ ", false).unwrap_err().empty);
        let e = parse(b"SEL\x01ECT 1", false).unwrap_err();
        assert!(e.garbage);
        assert_eq!(e.at, 3);
        assert!(parse(b"SELECT 99999999999999999999", false).is_err());
        assert!(parse(b"SELECT 1abc", false).is_err());
    }
}
