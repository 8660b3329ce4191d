use super::*;

fn column(type_byte: u8, flags: u16, decimals: u8) -> Column {
    let mut p = crate::proto::column::encode_column_def("c", ColumnType::Long, flags, 45);
    let n = p.len();
    p[n - 6] = type_byte;
    p[n - 3] = decimals;
    let def = crate::proto::column::parse_column_def(&p).unwrap();
    Column::new(Bytes::from(p), def)
}

#[test]
fn binary_values_of_any_shape_never_panic() {
    let bytes: Vec<u8> = (0..16u32).map(|i| (i * 37) as u8).collect();
    for ty in 0..=255u8 {
        for flags in [0, crate::proto::consts::column_flags::UNSIGNED] {
            let col = column(ty, flags, 31);
            for len in 0..=bytes.len() {
                let v = Some(&bytes[..len]);
                let _ = Value::from_binary(v, &col);
                let _ = String::from_binary(v, &col);
                let _ = <i64>::from_binary(v, &col);
                let _ = <u8>::from_binary(v, &col);
                let _ = <f64>::from_binary(v, &col);
                let _ = <&str>::from_binary(v, &col);
                let _ = Date::from_binary(v, &col);
                let _ = Time::from_binary(v, &col);
                let _ = Value::from_text(v, &col);
            }
        }
    }
}

/// The conversions as they were before their one-dispatch fast paths:
/// always through [`Binary::decode`].
fn i64_via_decode(v: &[u8], c: &Column) -> Option<i64> {
    match Binary::decode(v, c).ok()? {
        Binary::Int(n) => Some(n),
        Binary::UInt(n) => i64::try_from(n).ok(),
        Binary::Float(x) => float_to_int(f64::from(x)).and_then(|n| i64::try_from(n).ok()),
        Binary::Double(x) => float_to_int(x).and_then(|n| i64::try_from(n).ok()),
        Binary::Bytes(_) => i64::from_text(Some(v), c).ok(),
        _ => None,
    }
}

fn u8_via_decode(v: &[u8], c: &Column) -> Option<u8> {
    match Binary::decode(v, c).ok()? {
        Binary::Int(n) => u8::try_from(n).ok(),
        Binary::UInt(n) => u8::try_from(n).ok(),
        Binary::Float(x) => float_to_int(f64::from(x)).and_then(|n| u8::try_from(n).ok()),
        Binary::Double(x) => float_to_int(x).and_then(|n| u8::try_from(n).ok()),
        Binary::Bytes(_) => u8::from_text(Some(v), c).ok(),
        _ => None,
    }
}

fn f32_via_decode(v: &[u8], c: &Column) -> Option<u32> {
    match Binary::decode(v, c).ok()? {
        Binary::Int(n) => Some(n as f32),
        Binary::UInt(n) => Some(n as f32),
        Binary::Float(x) => Some(x),
        Binary::Double(x) => Some(x as f32),
        Binary::Bytes(_) => f32::from_text(Some(v), c).ok(),
        _ => None,
    }
    .map(f32::to_bits)
}

fn f64_via_decode(v: &[u8], c: &Column) -> Option<u64> {
    match Binary::decode(v, c).ok()? {
        Binary::Int(n) => Some(n as f64),
        Binary::UInt(n) => Some(n as f64),
        Binary::Float(x) => Some(f64::from(x)),
        Binary::Double(x) => Some(x),
        Binary::Bytes(_) => f64::from_text(Some(v), c).ok(),
        _ => None,
    }
    .map(f64::to_bits)
}

fn datetime_via_decode(v: &[u8], c: &Column) -> Option<DateTime> {
    match Binary::decode(v, c).ok()? {
        Binary::DateTime(dt) => Some(dt),
        Binary::Bytes(_) => DateTime::from_text(Some(v), c).ok(),
        _ => None,
    }
}

#[test]
fn binary_fast_paths_agree_with_decoding() {
    let bytes: Vec<u8> = [0xE8, 0x07, 2, 29, 1, 2, 3, 0x40, 0xE2, 0x01, 0, 0xFF, 0x80]
        .into_iter()
        .collect();
    for ty in 0..=255u8 {
        for flags in [0, crate::proto::consts::column_flags::UNSIGNED] {
            let col = column(ty, flags, 0);
            for len in 0..=bytes.len() {
                for v in [&bytes[..len], &bytes[bytes.len() - len..]] {
                    let at = format!("type {ty:#x} flags {flags} {v:?}");
                    assert_eq!(
                        i64::from_binary(Some(v), &col).ok(),
                        i64_via_decode(v, &col),
                        "{at}"
                    );
                    assert_eq!(
                        u8::from_binary(Some(v), &col).ok(),
                        u8_via_decode(v, &col),
                        "{at}"
                    );
                    assert_eq!(
                        f32::from_binary(Some(v), &col).ok().map(f32::to_bits),
                        f32_via_decode(v, &col),
                        "{at}"
                    );
                    assert_eq!(
                        f64::from_binary(Some(v), &col).ok().map(f64::to_bits),
                        f64_via_decode(v, &col),
                        "{at}"
                    );
                    assert_eq!(
                        DateTime::from_binary(Some(v), &col).ok(),
                        datetime_via_decode(v, &col),
                        "{at}"
                    );
                }
            }
        }
    }
    let time = column(ColumnType::Time as u8, 0, 0);
    assert!(
        DateTime::from_binary(Some(&[]), &time).is_err(),
        "a TIME is no DATETIME"
    );
}

#[test]
fn binary_decoding_by_column_type() {
    let tiny = column(ColumnType::Tiny as u8, 0, 0);
    let utiny = column(
        ColumnType::Tiny as u8,
        crate::proto::consts::column_flags::UNSIGNED,
        0,
    );
    assert_eq!(i8::from_binary(Some(&[0xFF]), &tiny), Ok(-1));
    assert_eq!(u8::from_binary(Some(&[0xFF]), &utiny), Ok(255));
    assert!(u8::from_binary(Some(&[0xFF]), &tiny).is_err());
    assert!(
        i64::from_binary(Some(&[0xFF, 0]), &tiny).is_err(),
        "wrong width"
    );
    let dt = column(ColumnType::DateTime as u8, 0, 3);
    let v = [0xE8, 0x07, 2, 29, 1, 2, 3, 0x40, 0xE2, 0x01, 0];
    assert_eq!(
        String::from_binary(Some(&v), &dt).unwrap(),
        "2024-02-29 01:02:03.123"
    );
    let time = column(ColumnType::Time as u8, 0, 0);
    let t = [1, 1, 0, 0, 0, 2, 3, 4];
    assert_eq!(String::from_binary(Some(&t), &time).unwrap(), "-26:03:04");
    let dbl = column(ColumnType::Double as u8, 0, 31);
    assert_eq!(i64::from_binary(Some(&2.0f64.to_le_bytes()), &dbl), Ok(2));
    assert!(i64::from_binary(Some(&2.5f64.to_le_bytes()), &dbl).is_err());
    let bit = column(ColumnType::Bit as u8, 0, 0);
    assert_eq!(u16::from_text(Some(&[0x01, 0x02]), &bit), Ok(0x0102));
    assert_eq!(u16::from_binary(Some(&[0x01, 0x02]), &bit), Ok(0x0102));
}

#[test]
fn integers_parse_in_place_with_range_checks() {
    assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_i64(b"9223372036854775808"), None);
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u64(b"18446744073709551616"), None);
    assert_eq!(parse_u64(b""), None);
    assert_eq!(parse_i64(b"-"), None);
    assert_eq!(parse_i64(b"12a"), None);
    assert_eq!(parse_i64(b"1.5"), None);
    assert_eq!(parse_u64(b"-1"), None);
    for len in 1..=20 {
        let digits: Vec<u8> = (0..len).map(|i| b'1' + (i % 9) as u8).collect();
        let want: u64 = std::str::from_utf8(&digits).unwrap().parse().unwrap();
        assert_eq!(parse_u64(&digits), Some(want), "{len}");
        for at in 0..len {
            // Bytes just outside '0'..='9', and ones that carry when 6 is added.
            for bad in [b'/', b':', b' ', 0xFA, 0xFF, 0x80, 0x3F] {
                let mut b = digits.clone();
                b[at] = bad;
                assert_eq!(parse_u64(&b), None, "{len} {at} {bad}");
            }
        }
    }
    assert_eq!(parse_u64(b"00000000000000000001"), Some(1));
    assert_eq!(parse_u64(b"09"), Some(9));
}

#[test]
fn utf8_agrees_with_std_at_every_length_and_position() {
    for len in 0..140 {
        let ascii: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(utf8(&ascii).ok(), std::str::from_utf8(&ascii).ok(), "{len}");
        for at in 0..len {
            // A stray continuation byte, a truncated 2-byte sequence, and
            // a valid 2-byte sequence (when it fits), at every position.
            for (bad, valid) in [
                (&[0x80u8][..], false),
                (&[0xC3][..], false),
                (&[0xC3, 0xA9][..], true),
            ] {
                let mut v = ascii.clone();
                v.truncate(at);
                v.extend_from_slice(bad);
                v.extend_from_slice(&ascii[at.min(ascii.len())..]);
                v.truncate(len.max(bad.len()));
                let want = std::str::from_utf8(&v);
                assert_eq!(utf8(&v).ok(), want.ok(), "len {len} at {at}");
                if valid && v.ends_with(&[0xC3, 0xA9]) {
                    assert!(utf8(&v).is_ok());
                }
            }
        }
    }
    let e = utf8(b"ab\xffcd").unwrap_err();
    assert_eq!(e.valid_up_to(), 2, "errors carry std's detail");
}

#[test]
fn numeric_reads_do_not_need_utf8_text() {
    let dbl = column(ColumnType::Double as u8, 0, 31);
    let long = column(ColumnType::Long as u8, 0, 0);
    assert_eq!(f64::from_text(Some(b"1.5"), &dbl), Ok(1.5));
    assert!(f64::from_text(Some(b"1.5\xff"), &dbl).is_err());
    assert_eq!(i32::from_text(Some(b"-50000"), &long), Ok(-50000));
    assert!(<&str>::from_text(Some(b"\xff"), &long).is_err());
}

#[test]
fn floats_parse_exactly_as_std_does() {
    let cases = [
        "0",
        "-0",
        "1",
        "+1",
        "1.",
        ".5",
        "-.5",
        "1e5",
        "1E+5",
        "1e-5",
        "2.5e-324",
        "1e-400",
        "1.7976931348623157e308",
        "1.8e308",
        "4.9e-324",
        "142857.14285714287",
        "0.1",
        "9007199254740993",
        "123456789012345678901234567890",
        "3.14159265358979323846264338327950288",
        "inf",
        "-inf",
        "+inf",
        "Infinity",
        "INF",
        "infinity",
        "NaN",
        "nan",
        "-nan",
        "",
        ".",
        "-",
        "+",
        "e5",
        "1e",
        "1e+",
        "1.5.5",
        " 1",
        "1 ",
        "0x10",
        "1,5",
        "1_0",
        "--1",
        "+-1",
        "1e5e5",
        "infinit",
        "nana",
        "00000000000000000000000000001.5",
        "1.00000000000000011102230246251565404236316680908203125",
    ];
    for c in cases {
        let std64 = c.parse::<f64>().ok();
        let got64 = parse_float::<f64>(c.as_bytes());
        assert_eq!(got64.map(|x| x.is_nan()), std64.map(|x| x.is_nan()), "{c}");
        if !std64.is_some_and(f64::is_nan) {
            assert_eq!(got64.map(f64::to_bits), std64.map(f64::to_bits), "{c}");
        }
        let std32 = c.parse::<f32>().ok();
        let got32 = parse_float::<f32>(c.as_bytes());
        if !std32.is_some_and(f32::is_nan) {
            assert_eq!(
                got32.map(f32::to_bits),
                std32.map(f32::to_bits),
                "{c} as f32"
            );
        }
    }
}
