//! The distributions the experiment statistics need, to about 14 significant digits: the
//! normal (cdf, survival, quantile), Student's t with real degrees of freedom (cdf, survival,
//! quantile), the non-central t (for power), and the chi-square survival (for sample-ratio
//! checks). Upper tails are computed directly, never as `1 - cdf`, so tiny p-values keep their
//! digits.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use crate::clv::ln_gamma;

/// Φ(x).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// 1 − Φ(x), without cancellation.
pub fn norm_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x * FRAC_1_SQRT_2)
}

pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// Φ⁻¹(p): Acklam's rational approximation (relative error 1e-9) polished by Newton steps on
/// the exact cdf, which takes it to the precision of `erfc`.
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    // the upper half by symmetry keeps the target probability small and exact
    if p > 0.5 {
        return -norm_ppf_lower(1.0 - p);
    }
    norm_ppf_lower(p)
}

/// Φ⁻¹(p) for p ≤ ½.
fn norm_ppf_lower(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let mut x = if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley steps on Φ(x) − p; two are enough from 1e-9, the third is a guard
    for _ in 0..3 {
        let e = norm_cdf(x) - p;
        let u = e / norm_pdf(x);
        let step = u / (1.0 + 0.5 * x * u);
        x -= step;
        if step.abs() <= 1e-16 * x.abs().max(1e-300) {
            break;
        }
    }
    x
}

/// ln B(a, b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The regularised incomplete beta Iₓ(a, b), given both x and y = 1 − x so that callers
/// which know y exactly (as t-tests do) lose nothing forming it.
pub fn beta_inc(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let front = (a * x.ln() + b * y.ln() - ln_beta(a, b)).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, y) / b
    }
}

/// The continued fraction for the incomplete beta (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..100_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// P(T > t) for Student's t with `df` degrees of freedom (df > 0, not necessarily whole).
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if df.is_infinite() {
        return norm_sf(t);
    }
    let t2 = t * t;
    // P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2)
    let two_tail = beta_inc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2));
    if t > 0.0 {
        0.5 * two_tail
    } else {
        1.0 - 0.5 * two_tail
    }
}

pub fn t_cdf(t: f64, df: f64) -> f64 {
    t_sf(-t, df)
}

fn t_pdf(t: f64, df: f64) -> f64 {
    (ln_gamma(0.5 * (df + 1.0))
        - ln_gamma(0.5 * df)
        - 0.5 * (df * PI).ln()
        - 0.5 * (df + 1.0) * (t * t / df).ln_1p())
    .exp()
}

/// The t quantile: Newton on the cdf from the normal quantile, then bisection as a guard
/// for very small df where Newton can overshoot.
pub fn t_ppf(p: f64, df: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        return -t_ppf(1.0 - p, df);
    }
    if df.is_infinite() {
        return norm_ppf(p);
    }
    // lower half: solve P(T ≤ x) = p for x ≤ 0 as the upper tail P(T > −x) = p
    let target = p;
    let mut x = -norm_ppf(p).abs();
    // Cornish-Fisher start
    let z = x;
    x = z
        + (z.powi(3) + z) / (4.0 * df)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * df * df);
    let (mut lo, mut hi) = (f64::NEG_INFINITY, 0.0f64);
    for _ in 0..200 {
        let f = t_cdf(x, df) - target;
        if f > 0.0 {
            hi = hi.min(x);
        } else {
            lo = lo.max(x);
        }
        let mut next = x - f / t_pdf(x, df);
        if !next.is_finite() || next >= hi || next <= lo {
            next = if lo.is_finite() {
                0.5 * (lo + hi)
            } else {
                2.0 * x - 1.0
            };
        }
        if (next - x).abs() <= 1e-15 * x.abs() {
            return next;
        }
        x = next;
    }
    x
}

/// The chi-square survival P(X > x) with `k` degrees of freedom.
pub fn chi2_sf(x: f64, k: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(0.5 * k, 0.5 * x)
}

/// The regularised upper incomplete gamma Q(a, x).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // series for P
        let (mut ap, mut del) = (a, 1.0 / a);
        let mut sum = del;
        for _ in 0..100_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * front
    } else {
        // continued fraction for Q (Lentz)
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let i = f64::from(i);
            let an = -i * (i - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        front * h
    }
}

/// The non-central t cdf P(T′ ≤ t) with `df` degrees of freedom and non-centrality `delta`
/// (Lenth 1989, algorithm AS 243), to an error bound of 1e-13.
pub fn nct_cdf(t: f64, df: f64, delta: f64) -> f64 {
    let (tt, del, negdel) = if t < 0.0 {
        (-t, -delta, true)
    } else {
        (t, delta, false)
    };
    let x = tt * tt / (tt * tt + df);
    let mut tnc = 0.0;
    if x > 0.0 {
        let lambda = del * del;
        let mut p = 0.5 * (-0.5 * lambda).exp();
        let mut q = (2.0 / PI).sqrt() * p * del;
        let mut s = 0.5 - p;
        let mut a = 0.5;
        let b = 0.5 * df;
        let y = df / (tt * tt + df);
        let rxb = y.powf(b);
        let albeta = 0.5 * PI.ln() + ln_gamma(b) - ln_gamma(0.5 + b);
        let mut xodd = beta_inc(a, b, x, y);
        let mut godd = 2.0 * rxb * (a * x.ln() - albeta).exp();
        let mut xeven = 1.0 - rxb;
        let mut geven = b * x * rxb;
        tnc = p * xodd + q * xeven;
        let mut en = 1.0;
        loop {
            a += 1.0;
            xodd -= godd;
            xeven -= geven;
            godd *= x * (a + b - 1.0) / a;
            geven *= x * (a + b - 0.5) / (a + 0.5);
            p *= lambda / (2.0 * en);
            q *= lambda / (2.0 * en + 1.0);
            s -= p;
            en += 1.0;
            tnc += p * xodd + q * xeven;
            let errbd = 2.0 * s * (xodd - godd);
            if errbd.abs() <= 1e-13 || en > 10_000.0 {
                break;
            }
        }
    }
    tnc += norm_sf(del);
    if negdel {
        1.0 - tnc
    } else {
        tnc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn normal_known_values() {
        assert!(close(norm_ppf(0.975), 1.959_963_984_540_054, 1e-15));
        assert!(close(norm_ppf(0.8), 0.841_621_233_572_914_3, 1e-15));
        assert!(close(norm_ppf(1e-10), -6.361_340_902_404_056, 1e-14));
        assert!(close(norm_sf(5.0), 2.866_515_718_791_939e-7, 1e-13));
        for p in [1e-300, 1e-20, 0.001, 0.3, 0.5, 0.77, 0.999_999] {
            assert!(close(norm_cdf(norm_ppf(p)), p, 1e-13), "{p}");
        }
    }

    #[test]
    fn t_matches_closed_forms() {
        // df = 1 is Cauchy, df = 2 has a closed form
        for t in [-30.0f64, -2.5, -0.3, 0.0, 0.7, 4.0, 100.0] {
            let cauchy = 0.5 + t.atan() / PI;
            assert!(close(t_cdf(t, 1.0), cauchy, 1e-13), "{t}");
            let two = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert!(close(t_cdf(t, 2.0), two, 1e-13), "{t}");
        }
        assert!(close(t_ppf(0.975, 10.0), 2.228_138_851_986_273_5, 1e-14));
        assert!(close(t_ppf(0.975, 1.0), 12.706_204_736_174_7, 1e-13));
        for (p, df) in [(0.01, 3.5), (0.4, 1000.0), (0.999, 7.0), (1e-8, 30.0)] {
            assert!(close(t_cdf(t_ppf(p, df), df), p, 1e-12), "{p} {df}");
        }
    }

    #[test]
    fn chi_square_and_noncentral_t() {
        // k = 2: exp(−x/2)
        assert!(close(chi2_sf(3.0, 2.0), (-1.5f64).exp(), 1e-14));
        // k = 1: 2·Φ(−√x)
        assert!(close(chi2_sf(6.25, 1.0), 2.0 * norm_sf(2.5), 1e-12));
        // δ = 0 is the central t
        for t in [-3.0, -0.5, 0.4, 2.2] {
            assert!(close(nct_cdf(t, 12.0, 0.0), t_cdf(t, 12.0), 1e-12), "{t}");
        }
        // large df approaches Φ(t − δ)
        assert!((nct_cdf(1.0, 1e7, 2.0) - norm_cdf(-1.0)).abs() < 1e-6);
    }
}
