//! The SQL lexer: words, numbers, quoted strings (with backslash escapes),
//! X'hex' literals, `?` placeholders and punctuation; comments and
//! whitespace are skipped. Bytes that are not printable ASCII outside a
//! string literal are an error of their own (garbage, not SQL).

use crate::proto::SqlError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Word(String),
    Num(String),
    Str(Vec<u8>),
    Param,
    Punct(u8),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Why a text is not a statement: the byte offset where parsing failed, and
/// whether it held bytes that cannot be SQL (not printable ASCII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the error is.
    pub at: usize,
    /// The text holds no statement at all (ERR 1065).
    pub empty: bool,
    /// True when the text has non-printable bytes outside string literals.
    pub garbage: bool,
}

impl ParseError {
    /// The server's ERR 1064 (1065 for an empty text) for this error in `sql`.
    pub fn to_sql_error(&self, sql: &[u8]) -> SqlError {
        if self.empty {
            return SqlError::new(1065, "42000", "Query was empty");
        }
        let near: String = String::from_utf8_lossy(&sql[self.at.min(sql.len())..])
            .chars()
            .take(40)
            .collect();
        SqlError::new(
            1064,
            "42000",
            format!(
                "You have an error in your SQL syntax; check the manual that corresponds to your \
                 MariaDB server version for the right syntax to use near '{near}' at line 1"
            ),
        )
    }
}

pub(crate) fn lex(s: &[u8]) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at| ParseError {
        at,
        garbage: false,
        empty: false,
    };
    while i < s.len() {
        let c = s[i];
        let start = i;
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
            i += 1;
            continue;
        }
        if !(0x20..0x7F).contains(&c) {
            return Err(ParseError {
                at: i,
                garbage: true,
                empty: false,
            });
        }
        if c == b'/' && s.get(i + 1) == Some(&b'*') {
            let end = s[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .ok_or(err(i))?;
            i += 2 + end + 2;
            continue;
        }
        if c == b'#' || (c == b'-' && s.get(i + 1) == Some(&b'-') && s.get(i + 2) == Some(&b' ')) {
            while i < s.len() && s[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let tok = if (c == b'x' || c == b'X') && s.get(i + 1) == Some(&b'\'') {
            let end = s[i + 2..].iter().position(|&b| b == b'\'').ok_or(err(i))?;
            let hex = &s[i + 2..i + 2 + end];
            if hex.len() % 2 != 0 || !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(err(i));
            }
            i += 2 + end + 1;
            let val = |b: u8| (b as char).to_digit(16).expect("hex digit") as u8;
            Tok::Str(hex.chunks(2).map(|p| val(p[0]) << 4 | val(p[1])).collect())
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_' || s[i] == b'$') {
                i += 1;
            }
            Tok::Word(String::from_utf8_lossy(&s[start..i]).into_owned())
        } else if c == b'`' {
            let end = s[i + 1..].iter().position(|&b| b == b'`').ok_or(err(i))?;
            i += 1 + end + 1;
            Tok::Word(String::from_utf8_lossy(&s[start + 1..i - 1]).into_owned())
        } else if c.is_ascii_digit() || (c == b'.' && s.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
            if s.get(i) == Some(&b'.') {
                i += 1;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if matches!(s.get(i), Some(b'e' | b'E')) {
                let mut j = i + 1;
                if matches!(s.get(j), Some(b'+' | b'-')) {
                    j += 1;
                }
                if s.get(j).is_some_and(u8::is_ascii_digit) {
                    i = j;
                    while i < s.len() && s[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            if s.get(i)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            {
                return Err(err(start));
            }
            Tok::Num(String::from_utf8_lossy(&s[start..i]).into_owned())
        } else if c == b'\'' || c == b'"' {
            let (v, next) = lex_string(s, i).ok_or(err(i))?;
            i = next;
            Tok::Str(v)
        } else if c == b'?' {
            i += 1;
            Tok::Param
        } else {
            i += 1;
            Tok::Punct(c)
        };
        out.push(Token { tok, start, end: i });
    }
    Ok(out)
}

/// A quoted string starting at `s[i]` (the quote): its value and the offset after it.
fn lex_string(s: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let q = s[i];
    i += 1;
    let mut v = Vec::new();
    loop {
        let c = *s.get(i)?;
        i += 1;
        if c == q {
            if s.get(i) == Some(&q) {
                v.push(q);
                i += 1;
                continue;
            }
            return Some((v, i));
        }
        if c != b'\\' {
            v.push(c);
            continue;
        }
        let e = *s.get(i)?;
        i += 1;
        match e {
            b'0' => v.push(0),
            b'b' => v.push(8),
            b'n' => v.push(b'\n'),
            b'r' => v.push(b'\r'),
            b't' => v.push(b'\t'),
            b'Z' => v.push(26),
            b'%' | b'_' => v.extend_from_slice(&[b'\\', e]),
            _ => v.push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_comments() {
        let t = lex(b"SELECT /* x */ `v`, 1.5e3 -- c\n ? # d").unwrap();
        let toks: Vec<Tok> = t.into_iter().map(|t| t.tok).collect();
        assert_eq!(
            toks,
            [
                Tok::Word("SELECT".into()),
                Tok::Word("v".into()),
                Tok::Punct(b','),
                Tok::Num("1.5e3".into()),
                Tok::Param,
            ]
        );
        assert!(lex(b"'open").is_err());
        assert!(lex(b"X'0g'").is_err());
        assert_eq!(lex(b"x'0A'").unwrap()[0].tok, Tok::Str(vec![10]));
        assert_eq!(
            lex(b"'a\\nb\\Z'").unwrap()[0].tok,
            Tok::Str(b"a\nb\x1a".to_vec())
        );
        let e = lex(b"SELECT\x7f").unwrap_err();
        assert!(e.garbage);
        // Tabs and newlines are whitespace, not garbage.
        assert_eq!(lex(b"\tSELECT\r\n1").unwrap().len(), 2);
    }
}
