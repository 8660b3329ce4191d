//! Evaluation helpers: resolving arguments and parameters, the result
//! columns of each statement, conversions to the table's column types,
//! SLEEP durations, and the parsing of LOAD DATA files.

use crate::proto::{Column, SqlError, format_double, ty};
use crate::sql::{Arg, Stmt};
use crate::stmt::{Bound, PVal};

pub(crate) fn err(code: u16, state: &'static str, msg: impl Into<String>) -> SqlError {
    SqlError::new(code, state, msg)
}

/// An argument's value, with parameters resolved.
pub(crate) fn resolve(arg: &Arg, params: &[Bound]) -> (u8, PVal) {
    match arg {
        Arg::Int(i) => (ty::LONGLONG, PVal::Int(*i)),
        Arg::Double(d) => (ty::DOUBLE, PVal::Double(*d)),
        Arg::Bytes(b) => (ty::VAR_STRING, PVal::Bytes(b.clone())),
        Arg::Param(i) => params
            .get(*i)
            .map_or((ty::NULL, PVal::Null), |b| (b.ty, b.val.clone())),
    }
}

/// The numeric prefix of a string, as the server converts strings to numbers.
fn str_to_f64(b: &[u8]) -> f64 {
    // Only a prefix can be a number; bound the work for long strings.
    let s: String = String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned();
    let s = s.trim();
    (1..=s.len())
        .rev()
        .find_map(|n| s.get(..n).and_then(|p| p.parse::<f64>().ok()))
        .unwrap_or(0.0)
}

pub(crate) fn as_f64(v: &PVal) -> f64 {
    match v {
        PVal::Null => 0.0,
        PVal::Int(i) => *i as f64,
        PVal::UInt(u) => *u as f64,
        PVal::Double(d) => *d,
        PVal::Bytes(b) => str_to_f64(b),
    }
}

/// How long a statement sleeps, in nanoseconds.
pub(crate) fn sleep_ns(stmt: &Stmt, params: &[Bound]) -> u64 {
    let arg = match stmt {
        Stmt::PlusSleep { sleep, .. } | Stmt::Sleep { sleep, .. } => sleep,
        _ => return 0,
    };
    let secs = as_f64(&resolve(arg, params).1);
    if secs > 0.0 {
        (secs * 1e9).round().min(1e18) as u64
    } else {
        0
    }
}

/// True for the types whose `? + 1` is an integer.
fn integer_type(t: u8) -> bool {
    matches!(
        t,
        ty::TINY | ty::SHORT | ty::LONG | ty::LONGLONG | ty::INT24 | ty::YEAR | ty::NULL
    )
}

/// The result columns of `stmt`, with `params` bound (None: at prepare).
pub(crate) fn columns(stmt: &Stmt, params: Option<&[Bound]>) -> Vec<Column> {
    match stmt {
        Stmt::SelectInt { name, .. } => vec![Column::expr(name, ty::LONGLONG, true)],
        Stmt::PlusSleep { a, names, .. } => {
            let t = match (a, params) {
                (Arg::Param(_), None) => ty::LONGLONG,
                _ => resolve(a, params.unwrap_or(&[])).0,
            };
            let t = if integer_type(t) {
                ty::LONGLONG
            } else {
                ty::DOUBLE
            };
            let not_null = !matches!(a, Arg::Param(_));
            vec![
                Column::expr(&names[0], t, not_null),
                Column::expr(&names[1], ty::LONGLONG, true),
            ]
        }
        Stmt::Sleep { name, .. } => vec![Column::expr(name, ty::LONGLONG, true)],
        Stmt::SelectV { .. } => vec![Column::table_col("v")],
        Stmt::SelectAll => vec![Column::table_col("id"), Column::table_col("v")],
        Stmt::Seq { .. } => vec![Column {
            schema: "",
            table: "seq_1_to_n",
            name: "seq".into(),
            org_name: "seq".into(),
            flags: crate::proto::flags::NOT_NULL | crate::proto::flags::PRI_KEY | 32,
            length: 20,
            ..Column::expr("seq", ty::LONGLONG, true)
        }],
        _ => Vec::new(),
    }
}

pub(crate) fn to_id(v: PVal, row: usize) -> Result<i64, SqlError> {
    let range = || {
        err(
            1264,
            "22003",
            format!("Out of range value for column 'id' at row {row}"),
        )
    };
    match v {
        PVal::Int(i) => Ok(i),
        PVal::UInt(_) => Err(range()),
        PVal::Double(d)
            if d.round() >= -9.223_372_036_854_776e18 && d.round() < 9.223_372_036_854_776e18 =>
        {
            Ok(d.round() as i64)
        }
        PVal::Double(_) => Err(range()),
        PVal::Null => Err(err(1048, "23000", "Column 'id' cannot be null")),
        PVal::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                let s = String::from_utf8_lossy(&b);
                err(
                    1366,
                    "22007",
                    format!(
                        "Incorrect integer value: '{s}' for column `test`.`t`.`id` at row {row}"
                    ),
                )
            }),
    }
}

pub(crate) fn to_blob(v: PVal) -> Result<Vec<u8>, SqlError> {
    match v {
        PVal::Null => Err(err(1048, "23000", "Column 'v' cannot be null")),
        PVal::Int(i) => Ok(i.to_string().into_bytes()),
        PVal::UInt(u) => Ok(u.to_string().into_bytes()),
        PVal::Double(d) => Ok(format_double(d).into_bytes()),
        PVal::Bytes(b) => Ok(b),
    }
}

/// Splits a LOAD DATA file into (id, v) rows (`\` escapes, `\N` is NULL).
pub(crate) fn parse_file(
    data: &[u8],
    fields: &[u8],
    lines: &[u8],
) -> Result<Vec<(i64, Vec<u8>)>, SqlError> {
    let mut rows: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
    let mut row: Vec<Option<Vec<u8>>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut null = false;
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\\' && i + 1 < data.len() {
            match data[i + 1] {
                b'N' if cur.is_empty() => null = true,
                b'n' => cur.push(b'\n'),
                b't' => cur.push(b'\t'),
                b'r' => cur.push(b'\r'),
                b'0' => cur.push(0),
                b'Z' => cur.push(26),
                b => cur.push(b),
            }
            i += 2;
        } else if data[i..].starts_with(lines) {
            row.push((!null).then(|| std::mem::take(&mut cur)));
            rows.push(std::mem::take(&mut row));
            (cur, null) = (Vec::new(), false);
            i += lines.len();
        } else if data[i..].starts_with(fields) {
            row.push((!null).then(|| std::mem::take(&mut cur)));
            (cur, null) = (Vec::new(), false);
            i += fields.len();
        } else {
            cur.push(data[i]);
            i += 1;
        }
    }
    if !cur.is_empty() || null || !row.is_empty() {
        row.push((!null).then_some(cur));
        rows.push(row);
    }
    let mut out = Vec::with_capacity(rows.len());
    for (n, r) in rows.into_iter().enumerate() {
        let n = n + 1;
        if r.len() < 2 {
            return Err(err(
                1261,
                "01000",
                format!("Row {n} doesn't contain data for all columns"),
            ));
        }
        if r.len() > 2 {
            return Err(err(
                1262,
                "01000",
                format!(
                    "Row {n} was truncated; it contained more data than there were input columns"
                ),
            ));
        }
        let mut it = r.into_iter();
        let id = to_id(it.next().flatten().map_or(PVal::Null, PVal::Bytes), n)?;
        let v = to_blob(it.next().flatten().map_or(PVal::Null, PVal::Bytes))?;
        out.push((id, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_data_files() {
        let rows = parse_file(b"1,a\n2,b\\,c\n3,\\N", b",", b"\n");
        assert!(matches!(rows, Err(e) if e.code == 1048));
        let rows = parse_file(b"1,a\n-2,b\\,c\\\n\n", b",", b"\n").unwrap();
        assert_eq!(rows, [(1, b"a".to_vec()), (-2, b"b,c\n".to_vec())]);
        assert!(parse_file(b"", b",", b"\n").unwrap().is_empty());
        assert_eq!(parse_file(b"1", b",", b"\n").unwrap_err().code, 1261);
        assert_eq!(parse_file(b"1,2,3", b",", b"\n").unwrap_err().code, 1262);
        assert_eq!(parse_file(b"x,2", b",", b"\n").unwrap_err().code, 1366);
        let rows = parse_file(b"7||v;;8||w", b"||", b";;").unwrap();
        assert_eq!(rows, [(7, b"v".to_vec()), (8, b"w".to_vec())]);
    }

    #[test]
    fn conversions() {
        assert_eq!(str_to_f64(b" 2.5abc"), 2.5);
        assert_eq!(str_to_f64(b"abc"), 0.0);
        assert_eq!(to_id(PVal::Bytes(b" 12 ".to_vec()), 1).unwrap(), 12);
        assert_eq!(to_id(PVal::Double(2.6), 1).unwrap(), 3);
        assert_eq!(to_id(PVal::UInt(u64::MAX), 1).unwrap_err().code, 1264);
        assert_eq!(to_blob(PVal::Int(-4)).unwrap(), b"-4");
        let p = [Bound {
            ty: ty::DOUBLE,
            val: PVal::Double(0.25),
        }];
        let s = Stmt::Sleep {
            sleep: Arg::Param(0),
            name: String::new(),
        };
        assert_eq!(sleep_ns(&s, &p), 250_000_000);
        let s = Stmt::Sleep {
            sleep: Arg::Int(-1),
            name: String::new(),
        };
        assert_eq!(sleep_ns(&s, &[]), 0);
    }
}
