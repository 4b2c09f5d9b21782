//! Two-arm experiment statistics. The definitions follow the two references teams compare
//! against, so results can be checked number for number:
//! - GrowthBook's engine (gbstats): Welch t-tests on the absolute or relative (delta-method)
//!   difference, the always-valid sequential interval (Howard et al., mixture tuned by N*), and
//!   the Bayesian effect model with a flat prior (chance to win, risk).
//! - statsmodels: pooled and unpooled two-proportion z-tests, Wald and Newcombe intervals for
//!   the difference, Wilson intervals per arm, the Welch t-test, and power by Cohen's h / d.
//!
//! Pure: counts and sums in, numbers out. Arm A is the control, B the treatment.

use serde::Serialize;

use crate::dist::{chi2_sf, nct_cdf, norm_cdf, norm_pdf, norm_ppf, norm_sf, t_ppf, t_sf};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AbError {
    #[error("{0}")]
    Invalid(String),
    #[error("no exposures in {0}")]
    Empty(&'static str),
}

/// One arm's sufficient statistics: exposures `n`, and the sum and sum of squares of the
/// metric per exposure (for a conversion metric both are the number of conversions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Arm {
    pub n: u64,
    pub sum: f64,
    pub sum_squares: f64,
    /// whether the metric is a 0/1 conversion (variance p(1 − p)) or a mean (sample variance)
    pub binary: bool,
}

impl Arm {
    pub fn conversions(n: u64, conversions: u64) -> Result<Arm, AbError> {
        if conversions > n {
            return Err(AbError::Invalid(format!(
                "{conversions} conversions out of {n} exposures: conversions cannot exceed exposures"
            )));
        }
        Ok(Arm {
            n,
            sum: conversions as f64,
            sum_squares: conversions as f64,
            binary: true,
        })
    }

    pub fn moments(n: u64, sum: f64, sum_squares: f64) -> Result<Arm, AbError> {
        if !(sum.is_finite() && sum_squares.is_finite()) || sum_squares < 0.0 {
            return Err(AbError::Invalid(
                "sums must be finite and the sum of squares non-negative".into(),
            ));
        }
        Ok(Arm {
            n,
            sum,
            sum_squares,
            binary: false,
        })
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }

    /// gbstats' variance: p(1 − p) for proportions, the unbiased sample variance otherwise.
    pub fn variance(&self) -> f64 {
        let n = self.n as f64;
        if self.binary {
            let p = self.mean();
            p * (1.0 - p)
        } else {
            (self.sum_squares - self.sum * self.sum / n) / (n - 1.0)
        }
    }
}

/// An estimate with its two-sided interval and p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub expected: f64,
    pub ci: [f64; 2],
    pub p_value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bayesian {
    pub expected: f64,
    pub ci: [f64; 2],
    pub chance_to_win: f64,
    /// expected loss of shipping control, of shipping the treatment
    pub risk: [f64; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ZTest {
    pub z: f64,
    pub p_value: f64,
}

fn check(a: &Arm, b: &Arm) -> Result<(), AbError> {
    if a.n < 2 {
        return Err(AbError::Empty("control"));
    }
    if b.n < 2 {
        return Err(AbError::Empty("treatment"));
    }
    Ok(())
}

/// The difference B − A, absolute or relative to A's mean.
fn diff(a: &Arm, b: &Arm, relative: bool) -> f64 {
    if relative {
        (b.mean() - a.mean()) / a.mean()
    } else {
        b.mean() - a.mean()
    }
}

/// The variance of that difference (delta method for the ratio).
fn diff_variance(a: &Arm, b: &Arm, relative: bool) -> f64 {
    let (va, vb) = (a.variance() / a.n as f64, b.variance() / b.n as f64);
    if relative {
        let (ma, mb) = (a.mean(), b.mean());
        vb / (ma * ma) + va * mb * mb / ma.powi(4)
    } else {
        va + vb
    }
}

/// Welch–Satterthwaite degrees of freedom.
fn welch_df(a: &Arm, b: &Arm) -> f64 {
    let (na, nb) = (a.n as f64, b.n as f64);
    let (va, vb) = (a.variance(), b.variance());
    (vb / nb + va / na).powi(2)
        / (vb * vb / (nb * nb * (nb - 1.0)) + va * va / (na * na * (na - 1.0)))
}

fn relative_ok(a: &Arm) -> Result<(), AbError> {
    if a.mean() <= 0.0 {
        return Err(AbError::Invalid(
            "a relative lift needs a control mean above zero".into(),
        ));
    }
    Ok(())
}

/// gbstats' two-sided t-test (frequentist engine).
pub fn t_test(a: &Arm, b: &Arm, relative: bool, alpha: f64) -> Result<Estimate, AbError> {
    check(a, b)?;
    if relative {
        relative_ok(a)?;
    }
    let expected = diff(a, b, relative);
    let se = diff_variance(a, b, relative).sqrt();
    let df = welch_df(a, b);
    let width = t_ppf(1.0 - alpha / 2.0, df) * se;
    Ok(Estimate {
        expected,
        ci: [expected - width, expected + width],
        p_value: 2.0 * t_sf((expected / se).abs(), df),
    })
}

/// gbstats' sequential two-sided test: an always-valid interval and p-value, so results can
/// be read every day without inflating false positives. `tuning` is the expected total sample
/// size the mixture is tuned for (gbstats' default 5,000).
pub fn sequential(
    a: &Arm,
    b: &Arm,
    relative: bool,
    alpha: f64,
    tuning: f64,
) -> Result<Estimate, AbError> {
    check(a, b)?;
    if relative {
        relative_ok(a)?;
    }
    let expected = diff(a, b, relative);
    let variance = diff_variance(a, b, relative);
    let n = (a.n + b.n) as f64;
    let rho = ((-2.0 * alpha.ln() + (-2.0 * alpha.ln() + 1.0).ln()) / tuning).sqrt();
    let rho2 = rho * rho;
    let s2 = variance * n;
    let width = s2.sqrt()
        * ((2.0 * (n * rho2 + 1.0)) * ((n * rho2 + 1.0).sqrt() / alpha).ln() / (n * rho).powi(2))
            .sqrt();
    let st2 = expected * expected * n / variance;
    let tr2p1 = n * rho2 + 1.0;
    let evalue = (rho2 * st2 / (2.0 * tr2p1)).exp() / tr2p1.sqrt();
    Ok(Estimate {
        expected,
        ci: [expected - width, expected + width],
        p_value: (1.0 / evalue).min(1.0),
    })
}

/// gbstats' Bayesian effect test with its default flat prior: the posterior of the lift is
/// normal around the estimate.
pub fn bayesian(a: &Arm, b: &Arm, relative: bool, alpha: f64) -> Result<Bayesian, AbError> {
    check(a, b)?;
    if relative {
        relative_ok(a)?;
    }
    let mu = diff(a, b, relative);
    let sigma = diff_variance(a, b, relative).sqrt();
    let z = norm_ppf(1.0 - alpha / 2.0);
    let k = mu / sigma;
    // E[max(X, 0)] and E[max(−X, 0)] for X ~ N(mu, sigma²)
    let risk_control = mu * norm_cdf(k) + sigma * norm_pdf(k);
    let risk_treatment = sigma * norm_pdf(k) - mu * norm_sf(k);
    Ok(Bayesian {
        expected: mu,
        ci: [mu - z * sigma, mu + z * sigma],
        chance_to_win: norm_cdf(k),
        risk: [risk_control, risk_treatment],
    })
}

/// statsmodels' `proportions_ztest` (pooled standard error), two-sided.
pub fn z_test_pooled(a: &Arm, b: &Arm) -> Result<ZTest, AbError> {
    check(a, b)?;
    let (na, nb) = (a.n as f64, b.n as f64);
    let p = (a.sum + b.sum) / (na + nb);
    let z = (b.mean() - a.mean()) / (p * (1.0 - p) * (1.0 / na + 1.0 / nb)).sqrt();
    Ok(ZTest {
        z,
        p_value: 2.0 * norm_sf(z.abs()),
    })
}

/// statsmodels' `test_proportions_2indep(method="wald")`: unpooled standard error.
pub fn z_test_unpooled(a: &Arm, b: &Arm) -> Result<ZTest, AbError> {
    check(a, b)?;
    let z = (b.mean() - a.mean()) / diff_variance(a, b, false).sqrt();
    Ok(ZTest {
        z,
        p_value: 2.0 * norm_sf(z.abs()),
    })
}

/// The Wald interval for the difference of proportions B − A.
pub fn diff_ci_wald(a: &Arm, b: &Arm, alpha: f64) -> [f64; 2] {
    let d = b.mean() - a.mean();
    let w = norm_ppf(1.0 - alpha / 2.0) * diff_variance(a, b, false).sqrt();
    [d - w, d + w]
}

/// The Wilson score interval of one proportion.
pub fn wilson(x: f64, n: f64, alpha: f64) -> [f64; 2] {
    let crit = norm_ppf(1.0 - alpha / 2.0);
    let crit2 = crit * crit;
    let q = x / n;
    let denom = 1.0 + crit2 / n;
    let center = (q + crit2 / (2.0 * n)) / denom;
    let dist = crit * (q * (1.0 - q) / n + crit2 / (4.0 * n * n)).sqrt() / denom;
    [center - dist, center + dist]
}

/// Newcombe's hybrid score interval for B − A (statsmodels `method="newcomb"`).
pub fn diff_ci_newcombe(a: &Arm, b: &Arm, alpha: f64) -> [f64; 2] {
    let (p1, p2) = (b.mean(), a.mean());
    let [l1, u1] = wilson(b.sum, b.n as f64, alpha);
    let [l2, u2] = wilson(a.sum, a.n as f64, alpha);
    let d = p1 - p2;
    [
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    ]
}

/// statsmodels' Welch t-test (`ttest_ind(usevar="unequal")`): t, two-sided p, df.
pub fn welch(a: &Arm, b: &Arm) -> Result<(f64, f64, f64), AbError> {
    check(a, b)?;
    let t = (b.mean() - a.mean()) / diff_variance(a, b, false).sqrt();
    let df = welch_df(a, b);
    Ok((t, 2.0 * t_sf(t.abs(), df), df))
}

/// The sample-ratio-mismatch check: a chi-square goodness-of-fit of the exposures against
/// the intended split. A p-value under 0.001 means assignment or logging is broken and the
/// results should not be trusted.
pub fn srm_p_value(counts: &[u64], weights: &[f64]) -> Result<f64, AbError> {
    if counts.len() != weights.len() || counts.len() < 2 {
        return Err(AbError::Invalid(
            "the split needs one weight per arm and at least two arms".into(),
        ));
    }
    if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(AbError::Invalid("every weight must be above zero".into()));
    }
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Err(AbError::Empty("any arm"));
    }
    let wsum: f64 = weights.iter().sum();
    let stat: f64 = counts
        .iter()
        .zip(weights)
        .map(|(&c, w)| {
            let e = total as f64 * w / wsum;
            (c as f64 - e).powi(2) / e
        })
        .sum();
    Ok(chi2_sf(stat, (counts.len() - 1) as f64))
}

/// Cohen's h between two proportions.
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    2.0 * p1.sqrt().asin() - 2.0 * p2.sqrt().asin()
}

/// Power of a two-sided two-sample z-test with `n` per arm (statsmodels `NormalIndPower`).
pub fn normal_power(effect: f64, n: f64, alpha: f64) -> f64 {
    let crit = norm_ppf(1.0 - alpha / 2.0);
    let shift = effect * (n / 2.0).sqrt();
    norm_sf(crit - shift) + norm_cdf(-crit - shift)
}

/// Power of a two-sided two-sample t-test with `n` per arm (statsmodels `TTestIndPower`).
pub fn t_power(effect: f64, n: f64, alpha: f64) -> f64 {
    let df = 2.0 * n - 2.0;
    let crit = t_ppf(1.0 - alpha / 2.0, df);
    let nc = effect * (n / 2.0).sqrt();
    (1.0 - nct_cdf(crit, df, nc)) + nct_cdf(-crit, df, nc)
}

/// The sample size per arm at which `power_of(n)` reaches `power`, solved to full precision
/// by bisection (power is increasing in n).
pub fn solve_n(power_of: impl Fn(f64) -> f64, power: f64) -> Result<f64, AbError> {
    if !(power > 0.0 && power < 1.0) {
        return Err(AbError::Invalid("power must be between 0 and 1".into()));
    }
    let (mut lo, mut hi) = (2.0f64, 4.0f64);
    while power_of(hi) < power {
        lo = hi;
        hi *= 2.0;
        if hi > 1e12 {
            return Err(AbError::Invalid(
                "the effect is too small to detect with any sample".into(),
            ));
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if power_of(mid) < power {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

/// Exposures per arm needed to detect a relative lift `mde` on a `baseline` conversion rate
/// (two-sided, Cohen's h with the normal approximation, as statsmodels computes it).
pub fn sample_size(baseline: f64, mde: f64, alpha: f64, power: f64) -> Result<f64, AbError> {
    if !(baseline > 0.0 && baseline < 1.0) {
        return Err(AbError::Invalid(
            "the baseline rate must be between 0 and 1".into(),
        ));
    }
    let target = baseline * (1.0 + mde);
    if mde == 0.0 || !(target > 0.0 && target < 1.0) {
        return Err(AbError::Invalid(format!(
            "a lift of {mde} on {baseline} is not a rate between 0 and 1 other than the baseline"
        )));
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(AbError::Invalid("alpha must be between 0 and 1".into()));
    }
    let h = cohens_h(target, baseline).abs();
    solve_n(|n| normal_power(h, n, alpha), power)
}

/// Everything a result page shows for a conversion metric, in one value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub control: ArmView,
    pub treatment: ArmView,
    pub absolute: Estimate,
    pub relative: Estimate,
    pub sequential: Estimate,
    pub bayesian: Bayesian,
    pub z_pooled: Option<ZTest>,
    pub z_unpooled: Option<ZTest>,
    pub diff_ci_wald: Option<[f64; 2]>,
    pub diff_ci_newcombe: Option<[f64; 2]>,
    pub alpha: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmView {
    pub n: u64,
    pub mean: f64,
    pub ci: [f64; 2],
}

/// All the tests at once, as `cxm stats ab` and the experiment page show them.
pub fn summarize(a: &Arm, b: &Arm, alpha: f64, tuning: f64) -> Result<Summary, AbError> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(AbError::Invalid("alpha must be between 0 and 1".into()));
    }
    check(a, b)?;
    let view = |arm: &Arm| {
        let ci = if arm.binary {
            wilson(arm.sum, arm.n as f64, alpha)
        } else {
            let se = (arm.variance() / arm.n as f64).sqrt();
            let w = t_ppf(1.0 - alpha / 2.0, arm.n as f64 - 1.0) * se;
            [arm.mean() - w, arm.mean() + w]
        };
        ArmView {
            n: arm.n,
            mean: arm.mean(),
            ci,
        }
    };
    let binary = a.binary && b.binary;
    Ok(Summary {
        control: view(a),
        treatment: view(b),
        absolute: t_test(a, b, false, alpha)?,
        relative: t_test(a, b, true, alpha)?,
        sequential: sequential(a, b, true, alpha, tuning)?,
        bayesian: bayesian(a, b, true, alpha)?,
        z_pooled: binary.then(|| z_test_pooled(a, b)).transpose()?,
        z_unpooled: binary.then(|| z_test_unpooled(a, b)).transpose()?,
        diff_ci_wald: binary.then(|| diff_ci_wald(a, b, alpha)),
        diff_ci_newcombe: binary.then(|| diff_ci_newcombe(a, b, alpha)),
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_impossible_arms() {
        assert!(Arm::conversions(10, 11).is_err());
        let a = Arm::conversions(0, 0).unwrap();
        let b = Arm::conversions(100, 10).unwrap();
        assert_eq!(t_test(&a, &b, false, 0.05), Err(AbError::Empty("control")));
        let zero = Arm::conversions(100, 0).unwrap();
        assert!(matches!(
            t_test(&zero, &b, true, 0.05),
            Err(AbError::Invalid(_))
        ));
        assert!(sample_size(0.1, 0.0, 0.05, 0.8).is_err());
        assert!(sample_size(0.6, 1.0, 0.05, 0.8).is_err());
        assert!(srm_p_value(&[0, 0], &[1.0, 1.0]).is_err());
    }

    #[test]
    fn srm_flags_a_broken_split() {
        assert!(srm_p_value(&[5000, 5020], &[1.0, 1.0]).unwrap() > 0.5);
        assert!(srm_p_value(&[5000, 5600], &[1.0, 1.0]).unwrap() < 1e-6);
        // a 90/10 split judged against its own weights is fine
        assert!(srm_p_value(&[9000, 1010], &[0.9, 0.1]).unwrap() > 0.5);
    }

    proptest! {
        #[test]
        fn swapping_arms_mirrors_the_absolute_test(na in 50u64..5000, nb in 50u64..5000, fa in 0.05f64..0.95, fb in 0.05f64..0.95) {
            let a = Arm::conversions(na, (na as f64 * fa) as u64).unwrap();
            let b = Arm::conversions(nb, (nb as f64 * fb) as u64).unwrap();
            let ab = t_test(&a, &b, false, 0.05).unwrap();
            let ba = t_test(&b, &a, false, 0.05).unwrap();
            prop_assert!((ab.expected + ba.expected).abs() < 1e-12);
            prop_assert!((ab.p_value - ba.p_value).abs() < 1e-12);
            prop_assert!(ab.ci[0] <= ab.expected && ab.expected <= ab.ci[1]);
            // the always-valid interval is never narrower than the fixed-horizon one
            let s = sequential(&a, &b, false, 0.05, 5000.0).unwrap();
            prop_assert!(s.ci[1] - s.ci[0] >= ab.ci[1] - ab.ci[0] - 1e-12);
            let bayes = bayesian(&a, &b, false, 0.05).unwrap();
            prop_assert!((bayes.risk[0] - bayes.risk[1] - bayes.expected).abs() < 1e-12);
        }
    }
}
