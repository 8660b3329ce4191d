//! Every column type through both protocols: values written with prepared
//! statement parameters, read back with a plain query (text rows) and with a
//! prepared statement (binary rows), compared with what was written and with
//! each other.

use std::fmt::Debug;

use mysql_uring::{Connection, Date, DateTime, ErrorKind, FromValue, Row, Time, Value};

use crate::run;

const TABLE: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
    mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
    bi BIGINT, bu BIGINT UNSIGNED,
    f FLOAT, d DOUBLE, de DECIMAL(40,9),
    da DATE, tm TIME(6), dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts TIMESTAMP(6) NULL, yr YEAR,
    bt BIT(10), en ENUM('a','bb'), st SET('x','y','z'),
    ch CHAR(5), vc VARCHAR(50), tx TEXT, bn BINARY(3), vb VARBINARY(10), bl BLOB, js JSON,
    geo GEOMETRY
) DEFAULT CHARSET = utf8mb4";

const COLUMNS: &str = "id, ti, tu, si, su, mi, mu, i, iu, bi, bu, f, d, de, da, tm, dt0, dt3, dt6, ts, yr, \
                       bt, en, st, ch, vc, tx, bn, vb, bl, js, ST_AsText(geo) AS geo_text, geo";

/// The text row and the binary row of `id`.
async fn both_rows(c: &mut Connection, id: i32) -> mysql_uring::Result<(Row, Row)> {
    let sql = format!("SELECT {COLUMNS} FROM t WHERE id = ");
    let text = c.query(&format!("{sql}{id}")).await?.remove(0);
    let bin = c.exec_first(format!("{sql}?"), (id,)).await?.unwrap();
    assert!(!text.is_binary() && bin.is_binary());
    Ok((text, bin))
}

/// Reads `col` as `T` from both rows and checks both give `want`.
#[track_caller]
fn check<T>(rows: &(Row, Row), col: &str, want: T)
where
    T: for<'a> FromValue<'a> + PartialEq + Debug,
{
    let t: T = rows
        .0
        .get(col)
        .unwrap_or_else(|e| panic!("text {col}: {e}"));
    let b: T = rows
        .1
        .get(col)
        .unwrap_or_else(|e| panic!("binary {col}: {e}"));
    assert_eq!(t, want, "text protocol, column {col}");
    assert_eq!(b, want, "binary protocol, column {col}");
}

/// Both protocols agree on the dynamic value and, except for floats, the text form.
#[track_caller]
fn agree(rows: &(Row, Row)) {
    for (i, col) in rows.0.columns().iter().enumerate() {
        let t: Value = rows.0.get(i).unwrap();
        let b: Value = rows.1.get(i).unwrap();
        assert_eq!(t, b, "Value of column {}", col.name());
        if !matches!(t, Value::Float(_) | Value::Double(_)) {
            let t: Option<Vec<u8>> = rows.0.get(i).unwrap();
            let b: Option<Vec<u8>> = rows.1.get(i).unwrap();
            assert_eq!(
                t.as_deref().map(String::from_utf8_lossy),
                b.as_deref().map(String::from_utf8_lossy),
                "text form of column {}",
                col.name()
            );
        }
    }
}

fn dt(s: &str) -> DateTime {
    s.parse().unwrap()
}

#[test]
fn every_type_round_trips_through_both_protocols() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "types_all").await?;
        c.query_drop("SET SESSION sql_mode = '', time_zone = '+00:00'")
            .await?;
        c.query_drop(TABLE).await?;
        let insert = "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
                      ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ST_GeomFromText(?))";

        // Row 1: the minimum of every type.
        let geo = "POINT(1 2)";
        let v1: Vec<Value> = vec![
            Value::Int(1),
            Value::Int(-128),
            Value::UInt(0),
            Value::Int(-32768),
            Value::UInt(0),
            Value::Int(-8_388_608),
            Value::UInt(0),
            Value::Int(i32::MIN.into()),
            Value::UInt(0),
            Value::Int(i64::MIN),
            Value::UInt(0),
            Value::Float(-1.5e-3),
            Value::Double(-2.2250738585072014e-308),
            Value::Bytes(b"-1234567890123456789012345678901.123456789".to_vec()),
            Value::Date(Date::default()),
            Value::Time("-838:59:59.000000".parse().unwrap()),
            Value::DateTime(DateTime::default()),
            Value::DateTime(dt("1000-01-01 00:00:00.001")),
            Value::DateTime(dt("1000-01-01 00:00:00.000001")),
            Value::DateTime(dt("1970-01-01 00:00:01")),
            Value::UInt(1901),
            Value::Bytes(vec![0, 0]),
            Value::Bytes(b"a".to_vec()),
            Value::Bytes(b"".to_vec()),
            Value::Bytes(b"".to_vec()),
            Value::Bytes(b"".to_vec()),
            Value::Bytes(b"".to_vec()),
            Value::Bytes(vec![0, 0, 0]),
            Value::Bytes(vec![]),
            Value::Bytes(vec![]),
            Value::Bytes(b"[]".to_vec()),
            Value::Bytes(geo.as_bytes().to_vec()),
        ];
        c.exec_drop(insert, &v1).await?;
        let r = both_rows(&mut c, 1).await?;
        check(&r, "ti", -128i8);
        check(&r, "tu", 0u8);
        check(&r, "si", i16::MIN);
        check(&r, "su", 0u16);
        check(&r, "mi", -8_388_608i32);
        check(&r, "mu", 0u32);
        check(&r, "i", i32::MIN);
        check(&r, "iu", 0u32);
        check(&r, "bi", i64::MIN);
        check(&r, "bu", 0u64);
        check(&r, "f", -1.5e-3f32);
        check(&r, "d", -2.2250738585072014e-308f64);
        check(
            &r,
            "de",
            "-1234567890123456789012345678901.123456789".to_string(),
        );
        check(&r, "da", Date::default());
        check(&r, "da", dt("0000-00-00 00:00:00"));
        check(&r, "tm", "-838:59:59".parse::<Time>().unwrap());
        check(&r, "dt0", DateTime::default());
        check(&r, "dt3", dt("1000-01-01 00:00:00.001"));
        check(&r, "dt6", dt("1000-01-01 00:00:00.000001"));
        check(&r, "ts", dt("1970-01-01 00:00:01"));
        check(&r, "yr", 1901u16);
        check(&r, "bt", 0u16);
        check(&r, "en", "a".to_string());
        check(&r, "st", String::new());
        check(&r, "bn", vec![0u8, 0, 0]);
        check(&r, "js", "[]".to_string());
        check(&r, "geo_text", geo.to_string());
        agree(&r);

        // Row 2: the maximum of every type, fractions, multi-byte text, binary data.
        let blob: Vec<u8> = (0..=255).collect();
        let v2 = mysql_uring::params![
            2,
            127i8,
            255u8,
            i16::MAX,
            u16::MAX,
            8_388_607,
            16_777_215u32,
            i32::MAX,
            u32::MAX,
            i64::MAX,
            u64::MAX,
            1.5e38f32,
            1.7976931348623157e308f64,
            "9999999999999999999999999999999.999999999",
            Date::new(9999, 12, 31).unwrap(),
            "838:59:59.999999".parse::<Time>().unwrap(),
            dt("9999-12-31 23:59:59"),
            dt("2024-02-29 12:34:56.789"),
            dt("9999-12-31 23:59:59.999999"),
            dt("2038-01-19 03:14:07.999999"),
            2155u16,
            &[0x03u8, 0xFF][..],
            "bb",
            "x,y,z",
            "ab🦀",
            "héllo wörld",
            "ünïcødé ✓",
            &b"\xFF\x00\x01"[..],
            &b"\x00\xFF"[..],
            blob.clone(),
            r#"{"a": [1, 2.5, "x"], "b": null}"#,
            "LINESTRING(0 0,1 1,2 3)"
        ];
        c.exec_drop(insert, v2).await?;
        let r = both_rows(&mut c, 2).await?;
        check(&r, "ti", 127i8);
        check(&r, "tu", 255u8);
        check(&r, "si", i16::MAX);
        check(&r, "su", u16::MAX);
        check(&r, "mi", 8_388_607i32);
        check(&r, "mu", 16_777_215u32);
        check(&r, "i", i32::MAX);
        check(&r, "iu", u32::MAX);
        check(&r, "bi", i64::MAX);
        check(&r, "bu", u64::MAX);
        check(&r, "f", 1.5e38f32);
        check(&r, "d", f64::MAX);
        check(
            &r,
            "de",
            "9999999999999999999999999999999.999999999".to_string(),
        );
        check(&r, "da", Date::new(9999, 12, 31).unwrap());
        check(&r, "tm", "838:59:59.999999".parse::<Time>().unwrap());
        check(&r, "dt0", dt("9999-12-31 23:59:59"));
        check(&r, "dt3", dt("2024-02-29 12:34:56.789"));
        check(&r, "dt6", dt("9999-12-31 23:59:59.999999"));
        check(&r, "ts", dt("2038-01-19 03:14:07.999999"));
        check(&r, "yr", 2155u16);
        check(&r, "bt", 0x3FFu16);
        check(&r, "bt", vec![0x03u8, 0xFF]);
        check(&r, "en", "bb".to_string());
        check(&r, "st", "x,y,z".to_string());
        check(&r, "ch", "ab🦀".to_string());
        check(&r, "vc", "héllo wörld".to_string());
        check(&r, "tx", "ünïcødé ✓".to_string());
        check(&r, "bn", b"\xFF\x00\x01".to_vec());
        check(&r, "vb", b"\x00\xFF".to_vec());
        check(&r, "bl", blob.clone());
        check(&r, "geo_text", "LINESTRING(0 0,1 1,2 3)".to_string());
        let js: String = r.1.get("js")?;
        assert!(js.contains("\"a\"") && js.contains("2.5"), "{js}");
        let geo_bytes: Vec<u8> = r.1.get("geo")?;
        assert_eq!(geo_bytes, r.0.get::<Vec<u8>>("geo")?, "GEOMETRY bytes");
        assert_eq!(
            r.1.get::<&str>("vc")?,
            "héllo wörld",
            "binary strings borrow"
        );
        assert_eq!(r.1.get::<&[u8]>("bl")?, &blob[..]);
        agree(&r);

        // Row 3: NULL everywhere.
        let nulls: Vec<Option<i32>> = std::iter::once(Some(3))
            .chain(std::iter::repeat_n(None, 31))
            .collect();
        c.exec_drop(insert, &nulls).await?;
        let r = both_rows(&mut c, 3).await?;
        for col in [
            "ti", "bu", "f", "d", "de", "da", "tm", "dt6", "ts", "yr", "bt", "en", "js", "geo",
        ] {
            check(&r, col, None::<String>);
            check(&r, col, Value::Null);
            assert!(r.0.is_null(col) && r.1.is_null(col), "{col}");
        }
        check(&r, "i", None::<i64>);
        check(&r, "dt3", None::<DateTime>);
        agree(&r);
        c.close().await
    })
}

#[test]
fn literal_values_agree_between_protocols() {
    run(async {
        let mut c = crate::conn().await?;
        let exprs = [
            "1",
            "-1",
            "18446744073709551615",
            "-9223372036854775808",
            "CAST(0.1 AS FLOAT)",
            "0.1e0",
            "1.5e300",
            "12345678901234567890.123456789",
            "CAST('2024-02-29' AS DATE)",
            "CAST('2024-02-29 23:59:58.5' AS DATETIME(1))",
            "CAST('2024-02-29 23:59:58.123456' AS DATETIME(6))",
            "CAST('-00:00:01.25' AS TIME(2))",
            "CAST('100:00:00' AS TIME)",
            "CAST('-838:59:59' AS TIME)",
            "TIMESTAMP'2001-02-03 04:05:06'",
            "b'101'",
            "'text'",
            "_binary 'a\\0b'",
            "JSON_OBJECT('k', 1)",
            "NULL",
            "YEAR('2024-01-01')",
            "ST_GeomFromText('POINT(3 4)')",
        ];
        for e in exprs {
            let sql = format!("SELECT {e}");
            let text = c.query(&sql).await?.remove(0);
            let bin = c.exec_first(sql.as_str(), ()).await?.unwrap();
            agree(&(text, bin));
        }
        // Typed reads of the same values, binary side.
        let r = c
            .exec_first(
                "SELECT CAST('-00:00:01.25' AS TIME(2)), CAST('100:00:00' AS TIME), b'101', \
                 CAST('2024-02-29 23:59:58.5' AS DATETIME(1)), 1 = 1",
                (),
            )
            .await?
            .unwrap();
        let t: Time = r.get(0)?;
        assert!(t.negative && t.seconds == 1 && t.micros == 250_000);
        assert_eq!(r.get::<String>(0)?, "-00:00:01.25");
        assert_eq!(r.get::<Time>(1)?.total_hours(), 100);
        assert_eq!(r.get::<String>(1)?, "100:00:00");
        assert_eq!(r.get::<Vec<u8>>(2)?, [5], "b'101' is a binary string");
        assert_eq!(r.get::<String>(3)?, "2024-02-29 23:59:58.5");
        assert!(r.get::<bool>(4)?);
        c.close().await
    })
}

#[test]
fn parameters_of_every_rust_type() {
    run(async {
        let mut c = crate::conn().await?;
        let r = c
            .exec_first(
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?",
                (
                    -5i8,
                    200u8,
                    -300i16,
                    60_000u16,
                    -70_000i32,
                    4_000_000_000u32,
                    i64::MIN,
                    u64::MAX,
                    0.5f32,
                    -0.25f64,
                    true,
                    "str",
                ),
            )
            .await?
            .unwrap();
        assert_eq!(r.get::<i8>(0)?, -5);
        assert_eq!(r.get::<u8>(1)?, 200);
        assert_eq!(r.get::<i16>(2)?, -300);
        assert_eq!(r.get::<u16>(3)?, 60_000);
        assert_eq!(r.get::<i32>(4)?, -70_000);
        assert_eq!(r.get::<u32>(5)?, 4_000_000_000);
        assert_eq!(r.get::<i64>(6)?, i64::MIN);
        assert_eq!(r.get::<u64>(7)?, u64::MAX);
        assert_eq!(r.get::<f32>(8)?, 0.5);
        assert_eq!(r.get::<f64>(9)?, -0.25);
        assert_eq!(r.get::<i64>(10)?, 1);
        assert_eq!(r.get::<&str>(11)?, "str");
        let now = dt("2026-11-25 10:11:12.131415");
        let r = c
            .exec_first(
                "SELECT ?, ?, ?, ?, ?, ?, ?",
                mysql_uring::params![
                    String::from("owned"),
                    vec![1u8, 2, 3],
                    Some(Date::new(2000, 1, 2).unwrap()),
                    None::<Time>,
                    "-12:00:00.5".parse::<Time>().unwrap(),
                    now,
                    Value::UInt(9)
                ],
            )
            .await?
            .unwrap();
        assert_eq!(r.get::<String>(0)?, "owned");
        assert_eq!(r.get::<Vec<u8>>(1)?, [1, 2, 3]);
        assert_eq!(r.get::<Date>(2)?, Date::new(2000, 1, 2).unwrap());
        assert_eq!(r.get::<Option<Time>>(3)?, None);
        assert_eq!(r.get::<Time>(4)?, "-12:00:00.5".parse::<Time>().unwrap());
        assert_eq!(r.get::<DateTime>(5)?, now);
        assert_eq!(r.get::<u64>(6)?, 9);
        c.close().await
    })
}

#[test]
fn conversion_errors_name_column_and_types() {
    run(async {
        let mut c = crate::conn().await?;
        let r = c
            .exec_first(
                "SELECT 'abc' AS word, 300 AS big, -1 AS neg, NOW() AS t",
                (),
            )
            .await?
            .unwrap();
        let e = r.get::<i32>("word").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        let s = e.to_string();
        assert!(s.contains("word") && s.contains("i32"), "{s}");
        let s = r.get::<u8>("big").unwrap_err().to_string();
        assert!(
            s.contains("big") && s.contains("u8") && s.contains("300"),
            "{s}"
        );
        assert!(r.get::<u64>("neg").is_err());
        let s = r.get::<&str>("big").unwrap_err().to_string();
        assert!(s.contains("String"), "hints at String: {s}");
        assert_eq!(r.get::<String>("big")?, "300");
        let s = r.get::<Time>("t").unwrap_err().to_string();
        assert!(s.contains("Time") && s.contains("`t`"), "{s}");
        let s = r.get::<Date>("t").unwrap_err().to_string();
        assert!(
            s.contains("DateTime"),
            "a date with a time asks for DateTime: {s}"
        );
        c.close().await
    })
}
