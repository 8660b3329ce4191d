//! `DATE`, `TIME` and `DATETIME`/`TIMESTAMP` values: their text form (text
//! protocol, `Display`, [`FromStr`]) and their binary-protocol encoding.
//!
//! The types hold what the server can send, including zero dates
//! (`0000-00-00`), times beyond 24 hours and negative times; they check field
//! ranges but not calendars (MariaDB allows `2024-02-30` in some SQL modes).

use std::fmt;
use std::str::FromStr;

use super::error::{ProtoError, ProtoResult};

/// A `DATE`. `0000-00-00` (the zero date) and partial zero dates are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Date {
    /// 0..=9999.
    pub year: u16,
    /// 0..=12 (0 only in zero dates).
    pub month: u8,
    /// 0..=31 (0 only in zero dates).
    pub day: u8,
}

/// A `DATETIME` or `TIMESTAMP`, with microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DateTime {
    /// The date part.
    pub date: Date,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// 0..=999_999.
    pub micros: u32,
}

/// A `TIME`: a signed duration of up to 838:59:59.999999 (MySQL's range; the
/// type itself allows any number of days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Time {
    /// True for negative durations.
    pub negative: bool,
    /// Whole days.
    pub days: u32,
    /// 0..=23.
    pub hours: u8,
    /// 0..=59.
    pub minutes: u8,
    /// 0..=59.
    pub seconds: u8,
    /// 0..=999_999.
    pub micros: u32,
}

/// Why a date or time text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTemporalError {
    what: &'static str,
}

impl fmt::Display for ParseTemporalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a valid {}", self.what)
    }
}

impl std::error::Error for ParseTemporalError {}

impl Date {
    /// A date; `None` if a field is out of range (zero fields are allowed).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        (year <= 9999 && month <= 12 && day <= 31).then_some(Date { year, month, day })
    }

    /// True for `0000-00-00`.
    pub fn is_zero(&self) -> bool {
        *self == Date::default()
    }
}

impl DateTime {
    /// A date and time; `None` if a field is out of range.
    pub fn new(date: Date, hour: u8, minute: u8, second: u8, micros: u32) -> Option<DateTime> {
        (Date::new(date.year, date.month, date.day).is_some()
            && hour < 24
            && minute < 60
            && second < 60
            && micros < 1_000_000)
            .then_some(DateTime {
                date,
                hour,
                minute,
                second,
                micros,
            })
    }
}

impl Time {
    /// A time from its sign and total hours, minutes, seconds, microseconds;
    /// `None` if minutes, seconds or microseconds are out of range.
    pub fn new(negative: bool, hours: u32, minutes: u8, seconds: u8, micros: u32) -> Option<Time> {
        (minutes < 60 && seconds < 60 && micros < 1_000_000).then_some(Time {
            negative,
            days: hours / 24,
            hours: (hours % 24) as u8,
            minutes,
            seconds,
            micros,
        })
    }

    /// Hours including the days (`days * 24 + hours`).
    pub fn total_hours(&self) -> u64 {
        u64::from(self.days) * 24 + u64::from(self.hours)
    }

    /// The duration's magnitude in microseconds.
    pub fn abs_micros(&self) -> u128 {
        ((u128::from(self.total_hours()) * 60 + u128::from(self.minutes)) * 60
            + u128::from(self.seconds))
            * 1_000_000
            + u128::from(self.micros)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn write_micros(f: &mut fmt::Formatter<'_>, micros: u32) -> fmt::Result {
    if micros != 0 {
        write!(f, ".{micros:06}")?;
    }
    Ok(())
}

impl fmt::Display for DateTime {
    /// `YYYY-MM-DD HH:MM:SS`, with `.ffffff` when there are microseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )?;
        write_micros(f, self.micros)
    }
}

impl fmt::Display for Time {
    /// `[-]HH:MM:SS` (hours may exceed 24), with `.ffffff` when there are microseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        write!(
            f,
            "{:02}:{:02}:{:02}",
            self.total_hours(),
            self.minutes,
            self.seconds
        )?;
        write_micros(f, self.micros)
    }
}

/// Reads exactly `n` ASCII digits.
fn digits(s: &[u8], n: usize) -> Option<u32> {
    if s.len() != n {
        return None;
    }
    let mut v = 0u32;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
    }
    Some(v)
}

/// Parses `.f` .. `.ffffff` into microseconds.
fn fraction(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 6 {
        return None;
    }
    let v = digits(s, s.len())?;
    Some(v * 10u32.pow(6 - s.len() as u32))
}

fn parse_date(s: &[u8]) -> Option<Date> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    Date::new(
        digits(&s[..4], 4)? as u16,
        digits(&s[5..7], 2)? as u8,
        digits(&s[8..], 2)? as u8,
    )
}

/// Parses `HH:MM:SS[.ffffff]` (hours of any width) into (hours, min, sec, micros).
fn parse_clock(s: &[u8]) -> Option<(u32, u8, u8, u32)> {
    let (main, micros) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], fraction(&s[i + 1..])?),
        None => (s, 0),
    };
    let mut parts = main.split(|&c| c == b':');
    let h = parts.next()?;
    let m = parts.next()?;
    let sec = parts.next()?;
    if parts.next().is_some() || h.is_empty() || h.len() > 9 {
        return None;
    }
    let h = digits(h, h.len())?;
    let m = digits(m, 2)?;
    let sec = digits(sec, 2)?;
    (m < 60 && sec < 60).then_some((h, m as u8, sec as u8, micros))
}

impl Date {
    /// Parses the text form `YYYY-MM-DD`.
    pub fn parse(s: &[u8]) -> Option<Date> {
        parse_date(s)
    }
}

impl DateTime {
    /// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD HH:MM:SS.ffffff`
    /// (also with `T` as the separator).
    pub fn parse(s: &[u8]) -> Option<DateTime> {
        let date = parse_date(s.get(..10)?)?;
        if s.len() == 10 {
            return Some(DateTime {
                date,
                ..DateTime::default()
            });
        }
        if s[10] != b' ' && s[10] != b'T' {
            return None;
        }
        let (h, m, sec, micros) = parse_clock(&s[11..])?;
        if s.len() < 19 || h > 23 {
            return None;
        }
        DateTime::new(date, h as u8, m, sec, micros)
    }
}

impl Time {
    /// Parses `[-]H..H:MM:SS[.ffffff]`.
    pub fn parse(s: &[u8]) -> Option<Time> {
        let (negative, rest) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            _ => (false, s),
        };
        let (h, m, sec, micros) = parse_clock(rest)?;
        Time::new(negative, h, m, sec, micros)
    }
}

macro_rules! from_str {
    ($($t:ty => $what:expr),*) => {$(
        impl FromStr for $t {
            type Err = ParseTemporalError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::parse(s.as_bytes()).ok_or(ParseTemporalError { what: $what })
            }
        }
    )*};
}
from_str!(Date => "date (YYYY-MM-DD)", DateTime => "datetime (YYYY-MM-DD HH:MM:SS[.ffffff])",
          Time => "time ([-]HH:MM:SS[.ffffff])");

#[cold]
#[inline(never)]
fn bad(what: &'static str, len: usize) -> ProtoError {
    ProtoError::Invalid {
        what,
        detail: format!("{len} bytes"),
    }
}

/// Decodes a binary-protocol `DATE`/`DATETIME`/`TIMESTAMP` value (the bytes
/// after its length byte: 0, 4, 7 or 11 of them).
#[inline]
pub fn decode_datetime(b: &[u8]) -> ProtoResult<DateTime> {
    match datetime_from_wire(b) {
        Some(dt) => Ok(dt),
        None => Err(datetime_error(b)),
    }
}

/// [`decode_datetime`] without the error's detail.
#[inline]
pub(crate) fn datetime_from_wire(b: &[u8]) -> Option<DateTime> {
    let mut dt = DateTime::default();
    if !matches!(b.len(), 0 | 4 | 7 | 11) {
        return None;
    }
    if b.len() >= 4 {
        dt.date = Date::new(u16::from_le_bytes([b[0], b[1]]), b[2], b[3])?;
    }
    if b.len() >= 7 {
        dt.hour = b[4];
        dt.minute = b[5];
        dt.second = b[6];
    }
    if b.len() == 11 {
        dt.micros = u32::from_le_bytes([b[7], b[8], b[9], b[10]]);
    }
    DateTime::new(dt.date, dt.hour, dt.minute, dt.second, dt.micros)
}

/// Why [`datetime_from_wire`] refused `b`.
#[cold]
#[inline(never)]
fn datetime_error(b: &[u8]) -> ProtoError {
    if !matches!(b.len(), 0 | 4 | 7 | 11) {
        bad("binary DATETIME", b.len())
    } else if b.len() >= 4 && Date::new(u16::from_le_bytes([b[0], b[1]]), b[2], b[3]).is_none() {
        bad("binary DATE fields", b.len())
    } else {
        bad("binary DATETIME fields", b.len())
    }
}

/// Decodes a binary-protocol `TIME` value (0, 8 or 12 bytes after its length byte).
pub fn decode_time(b: &[u8]) -> ProtoResult<Time> {
    match b.len() {
        0 => Ok(Time::default()),
        8 | 12 => {
            let t = Time {
                negative: b[0] == 1,
                days: u32::from_le_bytes([b[1], b[2], b[3], b[4]]),
                hours: b[5],
                minutes: b[6],
                seconds: b[7],
                micros: if b.len() == 12 {
                    u32::from_le_bytes([b[8], b[9], b[10], b[11]])
                } else {
                    0
                },
            };
            if b[0] > 1 || t.hours > 23 || t.minutes > 59 || t.seconds > 59 || t.micros > 999_999 {
                return Err(bad("binary TIME fields", b.len()));
            }
            Ok(t)
        }
        n => Err(bad("binary TIME", n)),
    }
}

/// Appends a binary-protocol `DATETIME` (length byte, then the shortest form).
pub fn encode_datetime(out: &mut Vec<u8>, dt: &DateTime) {
    let len = if dt.micros != 0 {
        11
    } else if dt.hour != 0 || dt.minute != 0 || dt.second != 0 {
        7
    } else if !dt.date.is_zero() {
        4
    } else {
        0
    };
    out.push(len);
    if len >= 4 {
        out.extend_from_slice(&dt.date.year.to_le_bytes());
        out.push(dt.date.month);
        out.push(dt.date.day);
    }
    if len >= 7 {
        out.extend_from_slice(&[dt.hour, dt.minute, dt.second]);
    }
    if len == 11 {
        out.extend_from_slice(&dt.micros.to_le_bytes());
    }
}

/// Appends a binary-protocol `DATE`.
pub fn encode_date(out: &mut Vec<u8>, d: &Date) {
    encode_datetime(
        out,
        &DateTime {
            date: *d,
            ..DateTime::default()
        },
    );
}

/// Appends a binary-protocol `TIME`.
pub fn encode_time(out: &mut Vec<u8>, t: &Time) {
    let len = if t.micros != 0 {
        12
    } else if *t != Time::default() {
        8
    } else {
        0
    };
    out.push(len);
    if len >= 8 {
        out.push(u8::from(t.negative));
        out.extend_from_slice(&t.days.to_le_bytes());
        out.extend_from_slice(&[t.hours, t.minutes, t.seconds]);
    }
    if len == 12 {
        out.extend_from_slice(&t.micros.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_parse_and_display() {
        let d: DateTime = "2024-02-29 23:59:58.123456".parse().unwrap();
        assert_eq!(d.date, Date::new(2024, 2, 29).unwrap());
        assert_eq!(
            (d.hour, d.minute, d.second, d.micros),
            (23, 59, 58, 123_456)
        );
        assert_eq!(d.to_string(), "2024-02-29 23:59:58.123456");
        let d: DateTime = "2024-02-29 23:59:58.12".parse().unwrap();
        assert_eq!(d.micros, 120_000);
        assert_eq!("2024-02-29".parse::<DateTime>().unwrap().hour, 0);
        let z: Date = "0000-00-00".parse().unwrap();
        assert!(z.is_zero());
        assert_eq!(z.to_string(), "0000-00-00");
        let t: Time = "-838:59:59.5".parse().unwrap();
        assert!(t.negative);
        assert_eq!(t.total_hours(), 838);
        assert_eq!(t.micros, 500_000);
        assert_eq!(t.to_string(), "-838:59:59.500000");
        assert_eq!("00:00:00".parse::<Time>().unwrap(), Time::default());
        for bad in [
            "",
            "2024-2-29",
            "2024-13-01",
            "2024-01-01 24:00:00",
            "2024-01-01 1:00:00",
            "2024-01-01 10:00:00.1234567",
            "12:60:00",
            "x",
            "-",
            "1:2:3:4",
            "12:00",
        ] {
            assert!(
                bad.parse::<DateTime>().is_err() || bad.parse::<Time>().is_err(),
                "{bad}"
            );
        }
        assert!("2024-01-01 24:00:00".parse::<DateTime>().is_err());
        assert!("12:60:00".parse::<Time>().is_err());
        assert!("12:00".parse::<Time>().is_err());
    }

    #[test]
    fn binary_round_trips_every_length() {
        for s in [
            "0000-00-00 00:00:00",
            "2024-02-29 00:00:00",
            "2024-02-29 23:59:58",
            "2024-02-29 23:59:58.000001",
        ] {
            let dt: DateTime = s.parse().unwrap();
            let mut out = Vec::new();
            encode_datetime(&mut out, &dt);
            assert_eq!(out.len(), 1 + out[0] as usize);
            assert_eq!(decode_datetime(&out[1..]).unwrap(), dt, "{s}");
        }
        for s in [
            "00:00:00",
            "-00:00:01",
            "838:59:59",
            "-838:59:59.999999",
            "25:00:00",
        ] {
            let t: Time = s.parse().unwrap();
            let mut out = Vec::new();
            encode_time(&mut out, &t);
            assert_eq!(decode_time(&out[1..]).unwrap(), t, "{s}");
            assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn bad_binary_values_are_errors() {
        for n in [1, 2, 3, 5, 6, 8, 9, 10, 12] {
            assert!(decode_datetime(&vec![0; n]).is_err(), "{n}");
        }
        for n in [1, 4, 7, 9, 11, 13] {
            assert!(decode_time(&vec![0; n]).is_err(), "{n}");
        }
        assert!(decode_datetime(&[0xE8, 0x07, 13, 1]).is_err(), "month 13");
        assert!(
            decode_datetime(&[0xE8, 0x07, 1, 1, 24, 0, 0]).is_err(),
            "hour 24"
        );
        assert!(decode_time(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err(), "sign 2");
        assert!(
            decode_time(&[0, 0, 0, 0, 0, 1, 0, 0, 0x40, 0x42, 0x0F, 0]).is_err(),
            "1,000,000 µs"
        );
    }
}
