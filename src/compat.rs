//! Conversions for other crates' types, each behind a feature:
//! `chrono` (`NaiveDate`, `NaiveDateTime`, `NaiveTime`), `time` (`Date`,
//! `PrimitiveDateTime`, `Time`), `decimal` (`rust_decimal::Decimal`, read
//! without loss from DECIMAL's exact text) and `json` (`serde_json::Value`).
//!
//! Reads go through the driver's own [`Date`]/[`Time`]/[`DateTime`], so both
//! protocols work. Zero dates (`0000-00-00`) and times outside 0..24 h have no
//! equivalent in these types and give a conversion error that says so (read
//! them as `mysql_uring::Date`/`Time`). Decimals and JSON values are passed as
//! parameters in their text form (`d.to_string()`).

#[allow(unused_imports)]
use crate::column::Column;
#[allow(unused_imports)]
use crate::params::{ToValue, ValueRef};
#[allow(unused_imports)]
use crate::value::{ConvError, Date, DateTime, FromValue, Time};

/// A time of day from a TIME, refusing negative values and 24 h or more.
#[allow(dead_code)]
fn time_of_day(t: Time, target: &'static str) -> Result<(u8, u8, u8, u32), ConvError> {
    if t.negative || t.days > 0 {
        return Err(ConvError::new(
            target,
            format!("{t} is not a time of day; read it as mysql_uring::Time"),
        ));
    }
    Ok((t.hours, t.minutes, t.seconds, t.micros))
}

#[cfg(feature = "chrono")]
mod chrono_impls {
    use super::*;
    use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

    fn to_naive_date(d: Date) -> Result<NaiveDate, ConvError> {
        NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()).ok_or_else(|| {
            ConvError::new(
                "chrono::NaiveDate",
                format!("{d} is not a calendar date (a zero date?); read it as mysql_uring::Date"),
            )
        })
    }

    fn from_naive_date(d: &NaiveDate) -> Date {
        Date {
            year: d.year().clamp(0, 9999) as u16,
            month: d.month() as u8,
            day: d.day() as u8,
        }
    }

    fn to_naive_time(t: (u8, u8, u8, u32)) -> Result<NaiveTime, ConvError> {
        NaiveTime::from_hms_micro_opt(t.0.into(), t.1.into(), t.2.into(), t.3)
            .ok_or_else(|| ConvError::new("chrono::NaiveTime", "not a valid time of day"))
    }

    fn from_naive_time(t: &NaiveTime) -> (u8, u8, u8, u32) {
        (
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            (t.nanosecond() / 1000).min(999_999),
        )
    }

    impl<'a> FromValue<'a> for NaiveDate {
        fn from_text(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_naive_date(Date::from_text(v, c)?)
        }
        fn from_binary(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_naive_date(Date::from_binary(v, c)?)
        }
    }

    fn to_naive_datetime(dt: DateTime) -> Result<NaiveDateTime, ConvError> {
        let t = to_naive_time((dt.hour, dt.minute, dt.second, dt.micros))?;
        Ok(to_naive_date(dt.date)
            .map_err(|e| ConvError::new("chrono::NaiveDateTime", e.reason))?
            .and_time(t))
    }

    impl<'a> FromValue<'a> for NaiveDateTime {
        fn from_text(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_naive_datetime(DateTime::from_text(v, c)?)
        }
        fn from_binary(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_naive_datetime(DateTime::from_binary(v, c)?)
        }
    }

    impl<'a> FromValue<'a> for NaiveTime {
        fn from_text(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_naive_time(time_of_day(Time::from_text(v, c)?, "chrono::NaiveTime")?)
        }
        fn from_binary(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_naive_time(time_of_day(Time::from_binary(v, c)?, "chrono::NaiveTime")?)
        }
    }

    impl ToValue for NaiveDate {
        fn to_value(&self) -> ValueRef<'_> {
            ValueRef::Date(from_naive_date(self))
        }
    }

    impl ToValue for NaiveDateTime {
        fn to_value(&self) -> ValueRef<'_> {
            let (hour, minute, second, micros) = from_naive_time(&self.time());
            ValueRef::DateTime(DateTime {
                date: from_naive_date(&self.date()),
                hour,
                minute,
                second,
                micros,
            })
        }
    }

    impl ToValue for NaiveTime {
        fn to_value(&self) -> ValueRef<'_> {
            let (hours, minutes, seconds, micros) = from_naive_time(self);
            ValueRef::Time(Time {
                negative: false,
                days: 0,
                hours,
                minutes,
                seconds,
                micros,
            })
        }
    }
}

#[cfg(feature = "time")]
mod time_impls {
    use super::*;

    fn to_date(d: Date) -> Result<time::Date, ConvError> {
        let month = time::Month::try_from(d.month).ok();
        month
            .and_then(|m| time::Date::from_calendar_date(d.year.into(), m, d.day).ok())
            .ok_or_else(|| {
                ConvError::new(
                    "time::Date",
                    format!(
                        "{d} is not a calendar date (a zero date?); read it as mysql_uring::Date"
                    ),
                )
            })
    }

    fn from_date(d: &time::Date) -> Date {
        Date {
            year: d.year().clamp(0, 9999) as u16,
            month: u8::from(d.month()),
            day: d.day(),
        }
    }

    fn to_time(t: (u8, u8, u8, u32)) -> Result<time::Time, ConvError> {
        time::Time::from_hms_micro(t.0, t.1, t.2, t.3)
            .map_err(|e| ConvError::new("time::Time", e.to_string()))
    }

    impl<'a> FromValue<'a> for time::Date {
        fn from_text(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_date(Date::from_text(v, c)?)
        }
        fn from_binary(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_date(Date::from_binary(v, c)?)
        }
    }

    fn to_primitive(dt: DateTime) -> Result<time::PrimitiveDateTime, ConvError> {
        let t = to_time((dt.hour, dt.minute, dt.second, dt.micros))?;
        Ok(time::PrimitiveDateTime::new(
            to_date(dt.date).map_err(|e| ConvError::new("time::PrimitiveDateTime", e.reason))?,
            t,
        ))
    }

    impl<'a> FromValue<'a> for time::PrimitiveDateTime {
        fn from_text(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_primitive(DateTime::from_text(v, c)?)
        }
        fn from_binary(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_primitive(DateTime::from_binary(v, c)?)
        }
    }

    impl<'a> FromValue<'a> for time::Time {
        fn from_text(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_time(time_of_day(Time::from_text(v, c)?, "time::Time")?)
        }
        fn from_binary(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
            to_time(time_of_day(Time::from_binary(v, c)?, "time::Time")?)
        }
    }

    impl ToValue for time::Date {
        fn to_value(&self) -> ValueRef<'_> {
            ValueRef::Date(from_date(self))
        }
    }

    impl ToValue for time::PrimitiveDateTime {
        fn to_value(&self) -> ValueRef<'_> {
            let t = self.time();
            ValueRef::DateTime(DateTime {
                date: from_date(&self.date()),
                hour: t.hour(),
                minute: t.minute(),
                second: t.second(),
                micros: t.microsecond(),
            })
        }
    }

    impl ToValue for time::Time {
        fn to_value(&self) -> ValueRef<'_> {
            ValueRef::Time(Time {
                negative: false,
                days: 0,
                hours: self.hour(),
                minutes: self.minute(),
                seconds: self.second(),
                micros: self.microsecond(),
            })
        }
    }
}

#[cfg(feature = "decimal")]
impl<'a> FromValue<'a> for rust_decimal::Decimal {
    /// DECIMAL arrives as exact text in both protocols; so do integers read
    /// through the text protocol. Floats are refused rather than rounded.
    ///
    /// Exact or an error, never rounded: `Decimal` holds 96 bits of digits
    /// and at most 28 after the point, while DECIMAL(65,30) holds more. Zeros
    /// at the end of the fraction are dropped first (`1.5000…0` with 30
    /// places is 1.5 exactly); a value that still has too many digits, or
    /// is out of range, is a conversion error naming the column.
    fn from_text(v: Option<&'a [u8]>, c: &Column) -> Result<Self, ConvError> {
        let s = <&str>::from_text(v, c)
            .map_err(|e| ConvError::new("rust_decimal::Decimal", e.reason))?;
        let digits = match s.find('.') {
            // Exact: zeros after the last significant fractional digit.
            Some(dot) => s[dot..].trim_end_matches('0').len() + dot,
            None => s.len(),
        };
        let exact = s[..digits].strip_suffix('.').unwrap_or(&s[..digits]);
        rust_decimal::Decimal::from_str_exact(exact).map_err(|e| {
            ConvError::new(
                "rust_decimal::Decimal",
                format!(
                    "'{s}' does not fit rust_decimal::Decimal exactly (96 bits, at most 28 \
                     digits after the point) and is not rounded ({e}); read it as String"
                ),
            )
        })
    }
}

#[cfg(feature = "json")]
impl<'a> FromValue<'a> for serde_json::Value {
    /// A JSON column (or any text holding JSON), parsed.
    fn from_text(v: Option<&'a [u8]>, _c: &Column) -> Result<Self, ConvError> {
        let Some(v) = v else {
            return Err(ConvError::new(
                "serde_json::Value",
                "the value is NULL; request Option<_> to accept NULL",
            ));
        };
        serde_json::from_slice(v)
            .map_err(|e| ConvError::new("serde_json::Value", format!("not valid JSON: {e}")))
    }
}

#[cfg(all(test, feature = "decimal"))]
mod decimal_tests {
    use super::*;
    use rust_decimal::Decimal;

    fn read(text: &str) -> Result<Decimal, ConvError> {
        let p = crate::proto::column::encode_column_def(
            "d",
            crate::column::ColumnType::NewDecimal,
            0,
            63,
        );
        let def = crate::proto::column::parse_column_def(&p).unwrap();
        let col = Column::new(bytes::Bytes::from(p), def);
        Decimal::from_text(Some(text.as_bytes()), &col)
    }

    #[test]
    fn decimals_are_exact_or_refused_never_rounded() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(read("1.500000000000000000000000000000").unwrap(), d("1.5"));
        assert_eq!(read("-0.000000000000000000000000000000").unwrap(), d("0"));
        assert_eq!(read("100").unwrap(), d("100"));
        assert_eq!(read("100.00").unwrap(), d("100"));
        let max28 = "0.1234567890123456789012345678";
        assert_eq!(read(max28).unwrap().to_string(), max28);
        let max = "79228162514264337593543950335";
        assert_eq!(read(max).unwrap().to_string(), max);
        for bad in [
            "0.123456789012345678901234567891",
            "0.00000000000000000000000000001",
            "79228162514264337593543950336",
            "1000000000000000000000000000000",
            "12345678901234567890.123456789012",
        ] {
            let e = read(bad).unwrap_err();
            assert!(e.reason.contains("not rounded"), "{bad}: {}", e.reason);
        }
    }
}
