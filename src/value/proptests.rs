use super::*;
use proptest::prelude::*;

proptest! {
    /// Any double printed the way the server prints it (shortest
    /// round-trip) or with 17 significant digits reads back exactly.
    #[test]
    fn doubles_round_trip(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
        prop_assert_eq!(parse_float::<f64>(x.to_string().as_bytes()).map(f64::to_bits), Some(x.to_bits()));
        prop_assert_eq!(parse_float::<f64>(format!("{x:.16e}").as_bytes()).map(f64::to_bits), Some(x.to_bits()));
        let f = x as f32;
        if f.is_finite() {
            prop_assert_eq!(parse_float::<f32>(f.to_string().as_bytes()).map(f32::to_bits), Some(f.to_bits()));
        }
    }

    /// On strings of number-like characters, the result is std's: the
    /// same value, or rejected by both.
    #[test]
    fn floats_agree_with_std(s in "[-+0-9.eE]{0,30}") {
        let std = s.parse::<f64>().ok().map(f64::to_bits);
        prop_assert_eq!(parse_float::<f64>(s.as_bytes()).map(f64::to_bits), std);
    }

    /// The UTF-8 check agrees with std on any bytes, mostly ASCII.
    #[test]
    fn utf8_agrees_with_std(v in prop::collection::vec(prop_oneof![9 => 0u8..0x80, 1 => any::<u8>()], 0..200)) {
        prop_assert_eq!(utf8(&v).ok(), std::str::from_utf8(&v).ok());
    }

    /// Any string of up to 21 digits, with at most one non-digit
    /// anywhere, parses as the digit-by-digit reference does.
    #[test]
    fn integers_agree_with_a_digit_loop(digits in "[0-9]{0,21}", at in any::<prop::sample::Index>(), c in any::<u8>()) {
        let mut b = digits.into_bytes();
        if !b.is_empty() && c % 2 == 0 {
            let i = at.index(b.len());
            b[i] = c;
        }
        let want = (!b.is_empty() && b.len() <= 20)
            .then(|| b.iter().try_fold(0u64, |n, &c| {
                c.is_ascii_digit().then_some(())?;
                n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            }))
            .flatten();
        prop_assert_eq!(parse_u64(&b), want);
    }

    /// Integers read back exactly, and out-of-range text is refused.
    #[test]
    fn integers_round_trip(n in any::<i64>(), u in any::<u64>()) {
        prop_assert_eq!(parse_i64(n.to_string().as_bytes()), Some(n));
        prop_assert_eq!(parse_u64(u.to_string().as_bytes()), Some(u));
        prop_assert_eq!(parse_u64(format!("{u}0").as_bytes()), u.checked_mul(10));
    }
}
