//! NPS, CSAT and CES exactly as the design defines them, each with n and a 95% interval,
//! and tests of change between two periods. Everything works from a histogram of answers
//! (score -> count), which is what the store's rollups keep.

use serde::Serialize;

const Z95: f64 = 1.959_963_984_540_054;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    pub n: u64,
    /// NPS in [-100, 100]; CSAT in % of top-two-box; CES the mean on 1–7.
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Variance of `value`'s estimator, for comparisons.
    #[serde(skip)]
    pub variance: f64,
    /// NPS: % promoters; CSAT: % satisfied; CES: % easy (5–7).
    pub share: f64,
}

fn total(h: &[(i64, u64)]) -> u64 {
    h.iter().map(|(_, c)| c).sum()
}

/// NPS = %promoters (9–10) − %detractors (0–6). The interval treats each answer as +1, 0 or
/// −1 and uses the variance of that mean.
pub fn nps(h: &[(i64, u64)]) -> Option<Score> {
    let n = total(h);
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let p = h
        .iter()
        .filter(|(v, _)| *v >= 9)
        .map(|(_, c)| *c)
        .sum::<u64>() as f64
        / nf;
    let d = h
        .iter()
        .filter(|(v, _)| *v <= 6)
        .map(|(_, c)| *c)
        .sum::<u64>() as f64
        / nf;
    let value = (p - d) * 100.0;
    let var = (p + d - (p - d).powi(2)) / nf * 10_000.0;
    let half = Z95 * var.sqrt();
    Some(Score {
        n,
        value,
        ci_low: (value - half).max(-100.0),
        ci_high: (value + half).min(100.0),
        variance: var,
        share: p * 100.0,
    })
}

/// Wilson score interval for a proportion, in percent.
fn wilson(k: f64, n: f64) -> (f64, f64) {
    let p = k / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half) * 100.0, (centre + half) * 100.0)
}

/// CSAT = share of top-two-box answers (4–5 on 1–5), with a Wilson interval.
pub fn csat(h: &[(i64, u64)]) -> Option<Score> {
    let n = total(h);
    if n == 0 {
        return None;
    }
    let k = h
        .iter()
        .filter(|(v, _)| *v >= 4)
        .map(|(_, c)| *c)
        .sum::<u64>() as f64;
    let nf = n as f64;
    let p = k / nf;
    let (lo, hi) = wilson(k, nf);
    Some(Score {
        n,
        value: p * 100.0,
        ci_low: lo,
        ci_high: hi,
        variance: p * (1.0 - p) / nf * 10_000.0,
        share: p * 100.0,
    })
}

/// CES = mean on the 1–7 ease scale (normal interval), plus % easy (5–7).
pub fn ces(h: &[(i64, u64)]) -> Option<Score> {
    let n = total(h);
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = h.iter().map(|(v, c)| *v as f64 * *c as f64).sum::<f64>() / nf;
    let ss = h
        .iter()
        .map(|(v, c)| (*v as f64 - mean).powi(2) * *c as f64)
        .sum::<f64>();
    let sample_var = if n > 1 { ss / (nf - 1.0) } else { 0.0 };
    let var = sample_var / nf;
    let half = Z95 * var.sqrt();
    let easy = h
        .iter()
        .filter(|(v, _)| *v >= 5)
        .map(|(_, c)| *c)
        .sum::<u64>() as f64
        / nf
        * 100.0;
    Some(Score {
        n,
        value: mean,
        ci_low: mean - half,
        ci_high: mean + half,
        variance: var,
        share: easy,
    })
}

/// Fewer answers than this in either period make a change between them no evidence: the
/// z test's normal approximation does not hold, and one answer moves NPS by several points.
pub const MIN_ANSWERS_TO_COMPARE: u64 = 30;

/// Why two periods' scores cannot be compared, or None when they can.
pub fn not_comparable(before: &Score, after: &Score) -> Option<String> {
    let few = |n: u64, which: &str| {
        (n < MIN_ANSWERS_TO_COMPARE).then(|| {
            format!(
                "the {which} period has {n} answer{}; a change is only tested with at least {MIN_ANSWERS_TO_COMPARE} in each",
                if n == 1 { "" } else { "s" }
            )
        })
    };
    few(before.n, "previous")
        .or_else(|| few(after.n, "current"))
        .or_else(|| {
            (before.variance + after.variance <= 0.0)
                .then(|| "every answer in both periods is the same score, so there is no spread to test against".to_string())
        })
}

/// Two-sided p-value of a difference between two independent estimates (z test).
pub fn change_p_value(before: &Score, after: &Score) -> Option<f64> {
    let se = (before.variance + after.variance).sqrt();
    if se <= 0.0 {
        return None;
    }
    let z = ((after.value - before.value) / se).abs();
    Some(2.0 * (1.0 - normal_cdf(z)))
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf; |error| < 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_periods_are_never_compared() {
        let few = nps(&[(10, 2)]).unwrap();
        let many = nps(&[(10, 20), (3, 20)]).unwrap();
        assert!(not_comparable(&few, &many)
            .unwrap()
            .contains("previous period has 2 answers"));
        assert!(not_comparable(&many, &few)
            .unwrap()
            .contains("current period has 2 answers"));
        assert_eq!(not_comparable(&many, &many), None);
    }

    #[test]
    fn nps_definition() {
        // 5 promoters, 3 passives, 2 detractors -> 50% - 20% = 30
        let s = nps(&[(10, 3), (9, 2), (8, 2), (7, 1), (6, 1), (0, 1)]).unwrap();
        assert_eq!(s.n, 10);
        assert!((s.value - 30.0).abs() < 1e-9);
        assert!(s.ci_low < 30.0 && s.ci_high > 30.0);
        assert!(nps(&[]).is_none());
        assert_eq!(nps(&[(10, 4)]).unwrap().value, 100.0);
    }

    #[test]
    fn csat_and_ces() {
        let c = csat(&[(5, 6), (4, 2), (3, 1), (1, 1)]).unwrap();
        assert!((c.value - 80.0).abs() < 1e-9);
        // Wilson 95% for 8/10: (0.4902, 0.9433)
        assert!(
            (c.ci_low - 49.02).abs() < 0.01 && (c.ci_high - 94.33).abs() < 0.01,
            "{:?}",
            c
        );
        let e = ces(&[(7, 2), (5, 1), (2, 1)]).unwrap();
        assert!((e.value - 5.25).abs() < 1e-9);
        assert!((e.share - 75.0).abs() < 1e-9);
    }

    #[test]
    fn change_test() {
        let a = nps(&[(10, 300), (7, 400), (3, 300)]).unwrap();
        let b = nps(&[(10, 450), (7, 350), (3, 200)]).unwrap();
        let p = change_p_value(&a, &b).unwrap();
        assert!(p < 0.001, "{p}");
        assert!(change_p_value(&a, &a).unwrap() > 0.99);
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn scores_stay_in_range(counts in proptest::collection::vec(0u64..50, 11)) {
            let h: Vec<(i64, u64)> = counts.iter().enumerate().map(|(v, c)| (v as i64, *c)).collect();
            if let Some(s) = nps(&h) {
                prop_assert!((-100.0..=100.0).contains(&s.value));
                prop_assert!(s.ci_low <= s.value && s.value <= s.ci_high);
            }
            let h5: Vec<(i64, u64)> = h.iter().filter(|(v, _)| (1..=5).contains(v)).copied().collect();
            if let Some(s) = csat(&h5) {
                prop_assert!((0.0..=100.0).contains(&s.value));
                prop_assert!(s.ci_low >= -1e-9 && s.ci_high <= 100.0 + 1e-9);
            }
        }
    }
}
