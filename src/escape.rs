//! Quoting values into SQL text, for the rare statement that cannot use
//! prepared-statement parameters.
//!
//! Two server settings decide how a string literal must be written:
//! - `NO_BACKSLASH_ESCAPES` in `sql_mode` (the server reports it in every OK
//!   packet's status flags): a backslash is then an ordinary character and
//!   only `'` needs doubling;
//! - the connection character set: in GBK, Big5, SJIS, CP932 and GB18030 the
//!   byte `0x5C` (`\`) can be the second byte of a two-byte character, so an
//!   escaping backslash could be swallowed by the character before it and the
//!   quote after it would end the literal (CVE-2006-2753). For those charsets
//!   strings with any byte that could take part in that are sent as a
//!   hex literal with a `_utf8mb4` introducer, which has no quote to break out
//!   of.

use std::fmt::Write as _;

use crate::params::{Params, ValueRef};

/// How string literals are written for one connection's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoting {
    /// The session has `NO_BACKSLASH_ESCAPES` on.
    pub no_backslash_escapes: bool,
    /// The connection charset can hide `\` inside a multi-byte character.
    pub multibyte_hazard: bool,
}

impl Quoting {
    /// The default session: backslash escapes on, utf8mb4.
    pub const DEFAULT: Quoting = Quoting {
        no_backslash_escapes: false,
        multibyte_hazard: false,
    };

    /// Appends `s` to `out` as a string literal that reads back as `s`.
    pub fn quote_str_into(self, out: &mut String, s: &str) {
        if self.multibyte_hazard && !s.bytes().all(|b| b.is_ascii() && b != b'\\' && b != b'\'') {
            out.push_str("_utf8mb4 ");
            hex_literal_into(out, s.as_bytes());
            return;
        }
        out.reserve(s.len() + 2);
        out.push('\'');
        if self.no_backslash_escapes {
            for ch in s.chars() {
                if ch == '\'' {
                    out.push('\'');
                }
                out.push(ch);
            }
        } else {
            for ch in s.chars() {
                match ch {
                    '\0' => out.push_str("\\0"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '\x1a' => out.push_str("\\Z"),
                    c => out.push(c),
                }
            }
        }
        out.push('\'');
    }

    /// `s` as a string literal; see [`Quoting::quote_str_into`].
    pub fn quote_str(self, s: &str) -> String {
        let mut out = String::new();
        self.quote_str_into(&mut out, s);
        out
    }
}

/// A placeholder in SQL text: `?`, or `:name` with its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placeholder<'a> {
    start: usize,
    end: usize,
    name: Option<&'a str>,
}

/// The placeholders of `sql` (`?` and `:name`) outside string literals,
/// quoted identifiers and comments, in order.
fn placeholders(sql: &str, no_backslash_escapes: bool) -> Vec<Placeholder<'_>> {
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'?' => {
                found.push(Placeholder {
                    start: i,
                    end: i + 1,
                    name: None,
                });
                i += 1;
            }
            b':' if bytes
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                && (i == 0 || bytes[i - 1] != b':') =>
            {
                let len = bytes[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                found.push(Placeholder {
                    start: i,
                    end: i + 1 + len,
                    name: Some(&sql[i + 1..i + 1 + len]),
                });
                i += 1 + len;
            }
            q @ (b'\'' | b'"' | b'`') => {
                // Skip to the closing quote; a doubled quote, or (in strings
                // with backslash escapes on) a backslash, escapes the next byte.
                i += 1;
                while i < bytes.len() {
                    let b = bytes[i];
                    if b == b'\\' && q != b'`' && !no_backslash_escapes {
                        i += 2;
                    } else if b == q {
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                        } else {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'#' => i = line_end(bytes, i),
            b'-' if bytes.get(i + 1) == Some(&b'-')
                && bytes
                    .get(i + 2)
                    .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
            {
                i = line_end(bytes, i)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = match sql[i + 2..].find("*/") {
                    Some(end) => i + 2 + end + 2,
                    None => bytes.len(),
                };
            }
            _ => i += 1,
        }
    }
    found
}

/// Writes `sql` with each `?` placeholder replaced by the SQL literal of the
/// next parameter, quoted per `quoting`. Placeholders are recognised outside
/// string literals, quoted identifiers and comments only. Fails (with what
/// to fix) when the counts differ or a float is not finite, which SQL cannot
/// express.
pub fn interpolate(
    sql: &str,
    params: &(impl Params + ?Sized),
    quoting: Quoting,
) -> Result<String, String> {
    let marks: Vec<_> = placeholders(sql, quoting.no_backslash_escapes)
        .into_iter()
        .filter(|p| p.name.is_none())
        .collect();
    if marks.len() != params.len() {
        return Err(format!(
            "the statement has {} `?` placeholder(s) but {} parameter(s) were given",
            marks.len(),
            params.len()
        ));
    }
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let mut copied = 0usize;
    for (i, m) in marks.iter().enumerate() {
        out.push_str(&sql[copied..m.start]);
        literal_into(&mut out, params.value(i), quoting)?;
        copied = m.end;
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// Rewrites `:name` placeholders to `?` for the server, returning the new
/// SQL and the names in the order their values must be sent. Fails when the
/// statement mixes `?` and `:name`.
pub fn rewrite_named(sql: &str, no_backslash_escapes: bool) -> Result<(String, Vec<&str>), String> {
    let marks = placeholders(sql, no_backslash_escapes);
    if marks.iter().any(|m| m.name.is_none()) && marks.iter().any(|m| m.name.is_some()) {
        return Err("the statement mixes `?` and `:name` placeholders; use one kind".into());
    }
    let mut out = String::with_capacity(sql.len());
    let mut names = Vec::with_capacity(marks.len());
    let mut copied = 0usize;
    for m in marks.iter().filter(|m| m.name.is_some()) {
        out.push_str(&sql[copied..m.start]);
        out.push('?');
        names.extend(m.name);
        copied = m.end;
    }
    out.push_str(&sql[copied..]);
    Ok((out, names))
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p + 1)
}

/// Appends one parameter as an SQL literal.
fn literal_into(out: &mut String, v: ValueRef<'_>, quoting: Quoting) -> Result<(), String> {
    match v {
        ValueRef::Null => out.push_str("NULL"),
        ValueRef::Int(n) => {
            let _ = write!(out, "{n}");
        }
        ValueRef::UInt(n) => {
            let _ = write!(out, "{n}");
        }
        // Scientific notation: a DOUBLE literal with the shortest digits that
        // read back as the same value (plain notation could be a DECIMAL
        // literal of hundreds of digits).
        ValueRef::Float(x) if x.is_finite() => {
            let _ = write!(out, "{x:e}");
        }
        ValueRef::Double(x) if x.is_finite() => {
            let _ = write!(out, "{x:e}");
        }
        ValueRef::Float(x) => return Err(format!("{x} cannot be written in SQL")),
        ValueRef::Double(x) => return Err(format!("{x} cannot be written in SQL")),
        ValueRef::Text(s) => quoting.quote_str_into(out, s),
        ValueRef::Bytes(b) => hex_literal_into(out, b),
        ValueRef::Date(d) => {
            let _ = write!(out, "'{d}'");
        }
        ValueRef::Time(t) => {
            let _ = write!(out, "'{t}'");
        }
        ValueRef::DateTime(dt) => {
            let _ = write!(out, "'{dt}'");
        }
    }
    Ok(())
}

/// Appends `bytes` as a hex literal `X'…'`, which is safe under every
/// `sql_mode` and charset.
pub fn hex_literal_into(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2 + 3);
    out.push_str("X'");
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out.push('\'');
}

/// True for charsets where `0x5C` can be the second byte of a character.
pub fn charset_has_multibyte_hazard(charset: &str) -> bool {
    let cs = charset.to_ascii_lowercase();
    ["big5", "cp932", "gbk", "gb18030", "sjis"]
        .iter()
        .any(|h| cs == *h || cs.starts_with(&format!("{h}_")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_mode_escapes_specials() {
        let q = Quoting::DEFAULT;
        assert_eq!(q.quote_str("plain"), "'plain'");
        assert_eq!(q.quote_str("it's"), "'it\\'s'");
        assert_eq!(q.quote_str("a\\b"), "'a\\\\b'");
        assert_eq!(q.quote_str("\0\n\r\"\x1a"), "'\\0\\n\\r\\\"\\Z'");
        assert_eq!(q.quote_str("é中"), "'é中'");
    }

    #[test]
    fn no_backslash_escapes_only_doubles_quotes() {
        let q = Quoting {
            no_backslash_escapes: true,
            multibyte_hazard: false,
        };
        assert_eq!(q.quote_str("it's"), "'it''s'");
        assert_eq!(q.quote_str("a\\'b"), "'a\\''b'");
    }

    #[test]
    fn hazardous_charsets_get_hex_for_anything_non_trivial() {
        let q = Quoting {
            no_backslash_escapes: false,
            multibyte_hazard: true,
        };
        assert_eq!(q.quote_str("abc"), "'abc'");
        assert_eq!(q.quote_str("中\\'"), "_utf8mb4 X'E4B8AD5C27'");
        assert!(charset_has_multibyte_hazard("GBK"));
        assert!(charset_has_multibyte_hazard("sjis_japanese_ci"));
        assert!(!charset_has_multibyte_hazard("utf8mb4"));
        assert!(!charset_has_multibyte_hazard("latin1"));
    }

    #[test]
    fn placeholders_outside_literals_and_comments_are_replaced() {
        let q = Quoting::DEFAULT;
        let sql = "SELECT ?, '?', \"?\", `?`, 'it''s ?', 'a\\'?' -- ?\n, ? # ?\n, /* ? */ ?";
        let got = interpolate(sql, &(1, "x'y", 2.5f64), q).unwrap();
        assert_eq!(
            got,
            "SELECT 1, '?', \"?\", `?`, 'it''s ?', 'a\\'?' -- ?\n, 'x\\'y' # ?\n, /* ? */ 2.5e0"
        );
        assert!(
            interpolate("SELECT ?", &(1, 2), q)
                .unwrap_err()
                .contains("1 `?` placeholder")
        );
        assert!(
            interpolate("SELECT ?, ?", &(1,), q)
                .unwrap_err()
                .contains("2 `?` placeholder(s) but 1")
        );
        assert!(interpolate("SELECT ?", &(f64::NAN,), q).is_err());
        let v = interpolate(
            "SELECT ?, ?, ?, ?",
            &crate::params![None::<i32>, u64::MAX, &b"\x00'"[..], 1e300],
            q,
        )
        .unwrap();
        assert_eq!(v, "SELECT NULL, 18446744073709551615, X'0027', 1e300");
        // Without backslash escapes a backslash does not escape the quote.
        let nb = Quoting {
            no_backslash_escapes: true,
            multibyte_hazard: false,
        };
        assert_eq!(
            interpolate("SELECT 'a\\', ?", &(1,), nb).unwrap(),
            "SELECT 'a\\', 1"
        );
    }

    #[test]
    fn named_placeholders_become_question_marks_in_order() {
        let (sql, names) = rewrite_named(
            "SELECT :a, ':b', `:c` -- :d\n, :a_2 + :a /* :e */, @x := 1, t::x",
            false,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT ?, ':b', `:c` -- :d\n, ? + ? /* :e */, @x := 1, t::x"
        );
        assert_eq!(names, ["a", "a_2", "a"]);
        assert!(rewrite_named("SELECT ?, :a", false).is_err());
        // `?` statements pass through untouched.
        assert_eq!(
            rewrite_named("SELECT ?", false).unwrap(),
            ("SELECT ?".to_string(), vec![])
        );
    }

    #[test]
    fn hex_literal() {
        let mut s = String::new();
        hex_literal_into(&mut s, &[0, 0xff, b'\'']);
        assert_eq!(s, "X'00FF27'");
    }
}
