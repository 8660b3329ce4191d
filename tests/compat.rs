//! The optional conversions (features chrono, time, decimal, json) through
//! both protocols against the real server:
//! `cargo test --features chrono,time,decimal,json --test compat`.
#![cfg(all(
    feature = "chrono",
    feature = "time",
    feature = "decimal",
    feature = "json"
))]

use mysql_uring_testserver as support;

use mysql_uring::{Connection, ErrorKind, Opts, Result, Row};

fn run<F: std::future::Future<Output = Result<()>>>(f: F) {
    if let Err(e) = mysql_uring::start(f) {
        panic!("test failed: {e}\n{e:?}");
    }
}

async fn conn() -> Result<Connection> {
    mysql_uring::connect(Opts::from_url(&support::test_url())?).await
}

/// The row with `id` through the text protocol and through a prepared statement.
async fn both(c: &mut Connection, id: i32) -> Result<[Row; 2]> {
    let sql = "SELECT d, dt, t, dec_v, j FROM compat_t WHERE id = ?";
    let text = c.query_with(sql, (id,)).await?.remove(0);
    let binary = c.exec_first(sql, (id,)).await?.expect("row");
    Ok([text, binary])
}

#[test]
fn chrono_time_decimal_and_json_round_trip_through_both_protocols() {
    run(async {
        let mut c = conn().await?;
        c.query_drop("CREATE DATABASE IF NOT EXISTS it_compat")
            .await?;
        c.select_db("it_compat").await?;
        c.query_drop("DROP TABLE IF EXISTS compat_t").await?;
        c.query_drop(
            "CREATE TABLE compat_t (id INT PRIMARY KEY, d DATE, dt DATETIME(6), t TIME(6),
             dec_v DECIMAL(30,10), j JSON)",
        )
        .await?;

        let nd = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let ndt = nd.and_hms_micro_opt(23, 59, 58, 123_456).unwrap();
        let nt = chrono::NaiveTime::from_hms_micro_opt(7, 8, 9, 10).unwrap();
        let dec: rust_decimal::Decimal = "12345678901234567890.0123456789".parse().unwrap();
        c.exec_drop(
            "INSERT INTO compat_t VALUES (1, ?, ?, ?, ?, ?)",
            mysql_uring::params![nd, ndt, nt, dec.to_string(), r#"{"a": [1, 2.5, "x"]}"#],
        )
        .await?;
        let td = time::Date::from_calendar_date(1999, time::Month::December, 31).unwrap();
        let tt = time::Time::from_hms_micro(1, 2, 3, 4).unwrap();
        let tdt = time::PrimitiveDateTime::new(td, tt);
        c.exec_drop(
            "INSERT INTO compat_t VALUES (2, ?, ?, ?, NULL, NULL)",
            mysql_uring::params![td, tdt, tt],
        )
        .await?;

        for r in both(&mut c, 1).await? {
            assert_eq!(r.get::<chrono::NaiveDate>(0)?, nd);
            assert_eq!(r.get::<chrono::NaiveDateTime>(1)?, ndt);
            assert_eq!(r.get::<chrono::NaiveTime>(2)?, nt);
            assert_eq!(r.get::<rust_decimal::Decimal>(3)?, dec, "no precision lost");
            let j: serde_json::Value = r.get(4)?;
            assert_eq!(j["a"][1], serde_json::json!(2.5));
        }
        for r in both(&mut c, 2).await? {
            assert_eq!(r.get::<time::Date>(0)?, td);
            assert_eq!(r.get::<time::PrimitiveDateTime>(1)?, tdt);
            assert_eq!(r.get::<time::Time>(2)?, tt);
            assert_eq!(r.get::<Option<rust_decimal::Decimal>>(3)?, None);
            assert_eq!(r.get::<Option<serde_json::Value>>(4)?, None);
        }

        // Values these types cannot hold are errors that say what to use instead.
        c.query_drop("SET SESSION sql_mode = ''").await?;
        c.query_drop(
            "INSERT INTO compat_t VALUES (3, '0000-00-00', NULL, '-01:00:00', NULL, NULL)",
        )
        .await?;
        for r in both(&mut c, 3).await? {
            let e = r.get::<chrono::NaiveDate>(0).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conversion);
            assert!(e.to_string().contains("mysql_uring::Date"), "{e}");
            assert!(r.get::<time::Date>(0).is_err());
            let e = r.get::<chrono::NaiveTime>(2).unwrap_err();
            assert!(e.to_string().contains("mysql_uring::Time"), "{e}");
            assert_eq!(
                r.get::<mysql_uring::Date>(0)?.year,
                0,
                "the driver's own type reads it"
            );
        }
        let e = c.query("SELECT 'not json'").await?[0]
            .get::<serde_json::Value>(0)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        c.query_drop("DROP DATABASE it_compat").await?;
        c.close().await
    })
}
