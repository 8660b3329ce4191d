//! sysbench 1.0's random numbers: its generator (xoroshiro128+), its
//! distributions (`--rand-type` uniform, gaussian, special, pareto, with
//! `--rand-spec-iter`, `--rand-spec-pct`, `--rand-spec-res` and
//! `--rand-pareto-h`), its random strings (`#` a digit, `@` a letter), its
//! unique sequence (`sysbench.rand.unique()`) and the exponential gaps of
//! `--rate`.
//!
//! The formulas follow sysbench's `sb_rand.c` step by step, conversions
//! included (C's `uint32_t` arithmetic, then `double`, then truncation back to
//! `uint32_t`), so the same parameters give the same distribution of ids.

use std::sync::atomic::{AtomicU32, Ordering};

/// Which distribution `sysbench.rand.default()` draws from (`--rand-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandType {
    /// Every value in `[a, b]` equally likely.
    Uniform,
    /// The mean of `--rand-spec-iter` uniform draws: a bell around the middle.
    Gaussian,
    /// sysbench's default: `--rand-spec-res` percent of the values from the
    /// middle `--rand-spec-pct` percent of the range, the rest gaussian.
    Special,
    /// `a + (b - a + 1) * u^(ln h / ln (1 - h))`: with `h = 0.2`, 80% of the
    /// draws in the lowest 20% of the range.
    Pareto,
}

impl RandType {
    /// Parses sysbench's names.
    pub fn parse(s: &str) -> Option<RandType> {
        Some(match s {
            "uniform" => RandType::Uniform,
            "gaussian" => RandType::Gaussian,
            "special" => RandType::Special,
            "pareto" => RandType::Pareto,
            _ => return None,
        })
    }

    /// sysbench's name.
    pub fn name(self) -> &'static str {
        match self {
            RandType::Uniform => "uniform",
            RandType::Gaussian => "gaussian",
            RandType::Special => "special",
            RandType::Pareto => "pareto",
        }
    }
}

/// The distribution parameters, with sysbench's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandParams {
    /// `--rand-type` (default special).
    pub kind: RandType,
    /// `--rand-spec-iter` (12): uniform draws per gaussian value.
    pub spec_iter: u32,
    /// `--rand-spec-pct` (1): the share of the range that is "special".
    pub spec_pct: u32,
    /// `--rand-spec-res` (75): the share of the draws that hit it.
    pub spec_res: u32,
    /// `--rand-pareto-h` (0.2).
    pub pareto_h: f64,
}

impl Default for RandParams {
    fn default() -> Self {
        RandParams {
            kind: RandType::Special,
            spec_iter: 12,
            spec_pct: 1,
            spec_res: 75,
            pareto_h: 0.2,
        }
    }
}

/// One connection's generator: xoroshiro128+ as sysbench uses it, with the
/// distribution parameters.
#[derive(Debug, Clone)]
pub struct Rand {
    s: [u64; 2],
    p: RandParams,
    /// `ln h / ln (1 - h)`, precomputed as sysbench does.
    pareto_power: f64,
}

/// splitmix64: spreads a seed over the generator's 128 bits.
fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rand {
    /// A generator for stream `stream` of `seed` (each connection its own).
    pub fn new(p: RandParams, seed: u64, stream: u64) -> Rand {
        let mut x = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut s = [splitmix(&mut x), splitmix(&mut x)];
        if s == [0, 0] {
            s[0] = 1;
        }
        Rand {
            s,
            p,
            pareto_power: p.pareto_h.ln() / (1.0 - p.pareto_h).ln(),
        }
    }

    /// A generator with a given raw state (tests).
    #[cfg(test)]
    pub fn from_state(p: RandParams, s: [u64; 2]) -> Rand {
        let mut r = Rand::new(p, 0, 0);
        r.s = s;
        r
    }

    /// The next 64 random bits (xoroshiro128+).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s0 = self.s[0];
        let mut s1 = self.s[1];
        let result = s0.wrapping_add(s1);
        s1 ^= s0;
        self.s[0] = s0.rotate_left(55) ^ s1 ^ (s1 << 14);
        self.s[1] = s1.rotate_left(36);
        result
    }

    /// A double in `[0, 1)` from the top 52 bits: the bits put under the
    /// exponent of 1.0, minus 1.0 (as sysbench does).
    #[inline]
    pub fn uniform_double(&mut self) -> f64 {
        let x = self.next_u64();
        f64::from_bits((0x3FF << 52) | (x >> 12)) - 1.0
    }

    /// `sysbench.rand.default(a, b)`: the `--rand-type` distribution.
    #[inline]
    pub fn default(&mut self, a: u32, b: u32) -> u32 {
        match self.p.kind {
            RandType::Uniform => self.uniform(a, b),
            RandType::Gaussian => self.gaussian(a, b),
            RandType::Special => self.special(a, b),
            RandType::Pareto => self.pareto(a, b),
        }
    }

    /// `sysbench.rand.uniform(a, b)`.
    #[inline]
    pub fn uniform(&mut self, a: u32, b: u32) -> u32 {
        let n = b.wrapping_sub(a).wrapping_add(1);
        (a as f64 + self.uniform_double() * n as f64) as u32
    }

    /// `sysbench.rand.gaussian(a, b)`.
    pub fn gaussian(&mut self, a: u32, b: u32) -> u32 {
        let t = b.wrapping_sub(a).wrapping_add(1) as f64;
        let mut sum = 0.0;
        for _ in 0..self.p.spec_iter {
            sum += self.uniform_double() * t;
        }
        a.wrapping_add((sum * (1.0 / self.p.spec_iter as f64)) as u32)
    }

    /// `sysbench.rand.special(a, b)`.
    pub fn special(&mut self, a: u32, b: u32) -> u32 {
        let t = b.wrapping_sub(a) as f64;
        let range_size = t * (100.0 / (100.0 - self.p.spec_res as f64));
        let rnd = self.uniform_double();
        let res = rnd * range_size;
        if res < t {
            let mut sum = 0.0;
            for _ in 0..self.p.spec_iter {
                sum += self.uniform_double();
            }
            return (a as f64 + sum * t * (1.0 / self.p.spec_iter as f64)) as u32;
        }
        let d = t * (self.p.spec_pct as f64 / 100.0);
        let res = rnd * (d + 1.0) + t / 2.0 - t * (self.p.spec_pct as f64 / 200.0);
        a.wrapping_add(res as u32)
    }

    /// `sysbench.rand.pareto(a, b)`.
    pub fn pareto(&mut self, a: u32, b: u32) -> u32 {
        let n = b.wrapping_sub(a).wrapping_add(1) as f64;
        a.wrapping_add((n * self.uniform_double().powf(self.pareto_power)) as u32)
    }

    /// `sysbench.rand.string(template)` into `out`: `#` a digit, `@` a
    /// lower-case letter, anything else kept.
    pub fn string_into(&mut self, template: &str, out: &mut String) {
        out.reserve(template.len());
        for ch in template.chars() {
            match ch {
                '#' => out.push(self.uniform(b'0'.into(), b'9'.into()) as u8 as char),
                '@' => out.push(self.uniform(b'a'.into(), b'z'.into()) as u8 as char),
                c => out.push(c),
            }
        }
    }

    /// `sysbench.rand.string(template)`.
    pub fn string(&mut self, template: &str) -> String {
        let mut s = String::new();
        self.string_into(template, &mut s);
        s
    }

    /// An exponentially distributed gap with mean `mean` (the `--rate`
    /// event generator's inter-arrival time).
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform_double()).ln()
    }
}

/// The `c` column's template: 10 groups of 11 digits, 119 characters.
pub const C_TEMPLATE: &str = "###########-###########-###########-###########-###########-\
                              ###########-###########-###########-###########-###########";

/// The `pad` column's template: 5 groups of 11 digits, 59 characters.
pub const PAD_TEMPLATE: &str = "###########-###########-###########-###########-###########";

/// `sysbench.rand.unique()`: a sequence of distinct 32-bit values in random
/// order (a quadratic-residue permutation of a counter), shared by all
/// connections.
#[derive(Debug)]
pub struct Unique {
    index: AtomicU32,
    offset: u32,
}

/// The largest prime below 2^32: the permutation's modulus.
const PRIME: u32 = 4_294_967_291;

/// A permutation of the 32-bit integers (the 5 above [`PRIME`] map to themselves).
fn permute(x: u32) -> u32 {
    if x >= PRIME {
        return x;
    }
    let residue = ((x as u64 * x as u64) % PRIME as u64) as u32;
    if x <= PRIME / 2 {
        residue
    } else {
        PRIME - residue
    }
}

impl Unique {
    /// A sequence seeded with two random numbers.
    pub fn new(index: u32, offset: u32) -> Unique {
        Unique {
            index: AtomicU32::new(permute(permute(index).wrapping_add(0x682f_0161))),
            offset: permute(permute(offset).wrapping_add(0x4679_0905)),
        }
    }

    /// The next value.
    pub fn next(&self) -> u32 {
        let i = self.index.fetch_add(1, Ordering::Relaxed);
        permute(permute(i).wrapping_add(self.offset) ^ 0x5bf0_3635)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(kind: RandType) -> Rand {
        Rand::new(
            RandParams {
                kind,
                ..RandParams::default()
            },
            42,
            7,
        )
    }

    #[test]
    fn xoroshiro_steps_as_the_reference() {
        // s = [1, 2]: result s0 + s1; then s1 ^= s0 (3), s0' = rotl(1, 55) ^ 3 ^ (3 << 14),
        // s1' = rotl(3, 36).
        let mut r = Rand::from_state(RandParams::default(), [1, 2]);
        assert_eq!(r.next_u64(), 3);
        let s0 = (1u64 << 55) ^ 3 ^ (3 << 14);
        let s1 = 3u64 << 36;
        assert_eq!(r.s, [s0, s1]);
        assert_eq!(r.next_u64(), s0.wrapping_add(s1));
    }

    #[test]
    fn uniform_double_uses_the_top_52_bits() {
        // All ones: the largest double below 1.
        let mut r = Rand::from_state(RandParams::default(), [u64::MAX, 0]);
        assert_eq!(r.uniform_double(), 1.0 - f64::EPSILON);
        let mut r = Rand::from_state(RandParams::default(), [0, 0]);
        assert_eq!(r.uniform_double(), 0.0);
    }

    #[test]
    fn uniform_covers_the_range_evenly() {
        let mut r = rng(RandType::Uniform);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let v = r.uniform(1, 10);
            assert!((1..=10).contains(&v));
            counts[v as usize - 1] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn gaussian_has_the_mean_and_variance_of_the_formula() {
        // The mean of 12 uniforms over [0, n): mean n/2, variance n^2 / (12 * 12).
        let mut r = rng(RandType::Gaussian);
        let n = 10_000.0;
        let draws: Vec<f64> = (0..50_000).map(|_| r.default(1, 10_000) as f64).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((mean - (1.0 + n / 2.0)).abs() < 30.0, "mean {mean}");
        let want = n * n / 144.0;
        assert!((var / want - 1.0).abs() < 0.05, "var {var} want {want}");
    }

    #[test]
    fn special_puts_spec_res_percent_in_the_middle_spec_pct() {
        // Defaults 1% / 75%: 75% of the draws from the middle 1% of the range
        // (plus the gaussian share that lands there).
        let mut r = rng(RandType::Special);
        let (a, b) = (1u32, 100_000u32);
        let t = (b - a) as f64;
        let lo = a as f64 + t / 2.0 - t * 0.005;
        let hi = lo + t * 0.01 + 1.0;
        let n = 100_000;
        let hits = (0..n)
            .map(|_| r.default(a, b) as f64)
            .filter(|v| (lo..=hi).contains(v))
            .count() as f64
            / n as f64;
        // 0.75 special + 0.25 * P(gaussian within 0.06 sigma of the middle):
        // 0.75 + 0.25 * 0.048 = 0.762.
        assert!((0.752..0.772).contains(&hits), "{hits}");
        // Never outside the range.
        for _ in 0..10_000 {
            assert!((a..=b).contains(&r.default(a, b)));
        }
    }

    #[test]
    fn pareto_follows_the_80_20_rule_with_h_0_2() {
        // x/n = u^p: P(x/n <= y) = y^(1/p); h = 0.2 gives 80% below 20%.
        let mut r = rng(RandType::Pareto);
        let n = 100_000;
        let low = (0..n).filter(|_| r.default(1, 10_000) <= 2_000).count() as f64 / n as f64;
        assert!((low - 0.8).abs() < 0.01, "{low}");
    }

    #[test]
    fn strings_follow_the_templates() {
        let mut r = rng(RandType::Uniform);
        let c = r.string(C_TEMPLATE);
        let pad = r.string(PAD_TEMPLATE);
        assert_eq!((c.len(), pad.len()), (119, 59));
        for (s, groups) in [(&c, 10), (&pad, 5)] {
            let g: Vec<&str> = s.split('-').collect();
            assert_eq!(g.len(), groups);
            assert!(
                g.iter()
                    .all(|g| g.len() == 11 && g.bytes().all(|b| b.is_ascii_digit()))
            );
        }
        let letters = r.string("@@@@-##");
        assert!(letters[..4].bytes().all(|b| b.is_ascii_lowercase()));
        assert_eq!(&letters[4..5], "-");
    }

    #[test]
    fn unique_values_do_not_repeat() {
        let u = Unique::new(12345, 678);
        let mut seen: Vec<u32> = (0..100_000).map(|_| u.next()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100_000);
    }

    #[test]
    fn exp_has_the_given_mean() {
        let mut r = rng(RandType::Uniform);
        let n = 100_000;
        let mean = (0..n).map(|_| r.exp(1000.0)).sum::<f64>() / n as f64;
        assert!((mean / 1000.0 - 1.0).abs() < 0.02, "{mean}");
    }
}
