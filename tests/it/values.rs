//! Text-protocol values converted to Rust types, against real server output.

use crate::run;

#[test]
fn integers_at_their_limits() {
    run(async {
        let mut c = crate::conn().await?;
        let r = &c
            .query(
                "SELECT CAST(-128 AS SIGNED), 255, -32768, 65535, -2147483648, 4294967295, \
                 -9223372036854775808, 9223372036854775807, CAST(18446744073709551615 AS UNSIGNED)",
            )
            .await?[0];
        assert_eq!(r.get::<i8>(0)?, -128);
        assert_eq!(r.get::<u8>(1)?, 255);
        assert_eq!(r.get::<i16>(2)?, i16::MIN);
        assert_eq!(r.get::<u16>(3)?, u16::MAX);
        assert_eq!(r.get::<i32>(4)?, i32::MIN);
        assert_eq!(r.get::<u32>(5)?, u32::MAX);
        assert_eq!(r.get::<i64>(6)?, i64::MIN);
        assert_eq!(r.get::<i64>(7)?, i64::MAX);
        assert_eq!(r.get::<u64>(8)?, u64::MAX);
        assert!(r.get::<i64>(8).is_err(), "u64::MAX does not fit i64");
        assert!(r.get::<u64>(6).is_err(), "negative does not fit u64");
        c.close().await
    })
}

#[test]
fn floats_bools_and_decimals() {
    run(async {
        let mut c = crate::conn().await?;
        let r = &c
            .query("SELECT 1.5e300, CAST(0.25 AS FLOAT), TRUE, FALSE, CAST('12345678901234567890.123456789' AS DECIMAL(40,9))")
            .await?[0];
        assert_eq!(r.get::<f64>(0)?, 1.5e300);
        assert_eq!(r.get::<f32>(1)?, 0.25);
        assert!(r.get::<bool>(2)?);
        assert!(!r.get::<bool>(3)?);
        // DECIMAL keeps every digit as text.
        assert_eq!(r.get::<&str>(4)?, "12345678901234567890.123456789");
        c.close().await
    })
}

#[test]
fn strings_bytes_and_nulls() {
    run(async {
        let mut c = crate::conn().await?;
        let r = &c
            .query("SELECT 'héllo wörld 🦀', '', NULL, X'00FF10', CAST(NULL AS SIGNED), _binary 'a\\0b'")
            .await?[0];
        assert_eq!(r.get::<&str>(0)?, "héllo wörld 🦀");
        assert_eq!(r.get::<String>(0)?, "héllo wörld 🦀");
        assert_eq!(r.get::<&str>(1)?, "");
        assert!(!r.is_null(1), "empty string is not NULL");
        assert!(r.is_null(2));
        assert_eq!(r.get::<Option<&str>>(2)?, None);
        assert_eq!(r.get::<Option<i64>>(4)?, None);
        assert_eq!(r.get::<&[u8]>(3)?, &[0x00, 0xFF, 0x10]);
        assert_eq!(r.get::<Vec<u8>>(5)?, b"a\0b");
        assert!(r.get::<&str>(3).is_err(), "invalid UTF-8 is not a &str");
        let shared = r.get_bytes(0)?.unwrap();
        assert_eq!(&shared[..], "héllo wörld 🦀".as_bytes());
        c.close().await
    })
}

#[test]
fn dates_and_times_come_back_as_text() {
    // Typed date/time values arrive with the full-SQL-surface issue; text is exact meanwhile.
    run(async {
        let mut c = crate::conn().await?;
        let r = &c
            .query("SELECT CAST('2024-02-29 23:59:58.123456' AS DATETIME(6)), CAST('-838:59:59' AS TIME), CAST('0000-00-00' AS DATE)")
            .await?[0];
        assert_eq!(r.get::<&str>(0)?, "2024-02-29 23:59:58.123456");
        assert_eq!(r.get::<&str>(1)?, "-838:59:59");
        assert_eq!(r.get::<Option<&str>>(2)?.is_none(), r.is_null(2));
        c.close().await
    })
}
