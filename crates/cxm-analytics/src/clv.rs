//! Customer lifetime value models fitted by maximum likelihood. This first model is BG/NBD
//! (Fader, Hardie & Lee 2005): purchases while "alive" follow a Poisson process whose rate is
//! gamma(r, α) across customers; after each purchase a customer drops out with probability p,
//! beta(a, b) across customers. Pure: summaries in, parameters out.

use serde::Serialize;

/// One customer's purchase summary over the calibration period: repeat purchases `x`, the
/// time of the last one `t_x`, and the length of observation `t` (same unit throughout).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rfm {
    pub x: u32,
    pub t_x: f64,
    pub t: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClvError {
    #[error("too little data to fit: {0}")]
    TooLittle(String),
    #[error("customer {0}: {1}")]
    Invalid(usize, String),
    #[error("the fit did not converge after {0} evaluations")]
    NoConvergence(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    pub log_likelihood: f64,
    pub evaluations: usize,
}

/// Checks the summaries: counts and times must be finite, 0 ≤ t_x ≤ t, t > 0, and t_x = 0 when
/// x = 0.
pub fn validate(data: &[Rfm]) -> Result<(), ClvError> {
    for (i, c) in data.iter().enumerate() {
        if !(c.t_x.is_finite() && c.t.is_finite()) || c.t <= 0.0 || c.t_x < 0.0 || c.t_x > c.t {
            return Err(ClvError::Invalid(
                i + 1,
                format!(
                    "needs 0 <= recency <= T and T > 0 (recency {}, T {})",
                    c.t_x, c.t
                ),
            ));
        }
        if c.x == 0 && c.t_x != 0.0 {
            return Err(ClvError::Invalid(
                i + 1,
                "recency must be 0 without repeat purchases".into(),
            ));
        }
    }
    let repeaters = data.iter().filter(|c| c.x > 0).count();
    if data.len() < 10 || repeaters < 5 {
        return Err(ClvError::TooLittle(format!(
            "{} customers, {} with repeat purchases; at least 10 and 5 are needed",
            data.len(),
            repeaters
        )));
    }
    Ok(())
}

/// The BG/NBD log-likelihood of all customers. Terms that depend only on x are summed as
/// logs of rising factorials (x is a count), once per distinct x.
pub fn bgnbd_ll(data: &[Rfm], r: f64, alpha: f64, a: f64, b: f64) -> f64 {
    bgnbd_ll_weighted(&distinct(data), r, alpha, a, b)
}

/// Customers with identical summaries, once each with their count: many share x = 0 and
/// the same T (they joined the same day), and the likelihood need not see them twice.
fn distinct(data: &[Rfm]) -> Vec<(Rfm, f64)> {
    let mut seen: std::collections::HashMap<(u32, u64, u64), usize> =
        std::collections::HashMap::new();
    let mut out: Vec<(Rfm, f64)> = Vec::new();
    for c in data {
        let key = (c.x, c.t_x.to_bits(), c.t.to_bits());
        match seen.get(&key) {
            Some(&i) => out[i].1 += 1.0,
            None => {
                seen.insert(key, out.len());
                out.push((*c, 1.0));
            }
        }
    }
    out
}

fn bgnbd_ll_weighted(data: &[(Rfm, f64)], r: f64, alpha: f64, a: f64, b: f64) -> f64 {
    let max_x = data.iter().map(|c| c.0.x).max().unwrap_or(0) as usize;
    // per x: ln Γ(r+x)/Γ(r) + ln Γ(b+x)/Γ(b) − ln Γ(a+b+x)/Γ(a+b)
    // and ln a − ln(b + x − 1), the constant part of the dropout term
    let mut by_x = Vec::with_capacity(max_x + 1);
    let mut drop_x = Vec::with_capacity(max_x + 1);
    let mut acc = 0.0;
    by_x.push(0.0);
    drop_x.push(0.0);
    let ln_a = a.ln();
    for k in 0..max_x {
        let k = k as f64;
        acc += (r + k).ln() + (b + k).ln() - (a + b + k).ln();
        by_x.push(acc);
        drop_x.push(ln_a - (b + k).ln());
    }
    let base = r * alpha.ln();
    let mut ll = 0.0;
    for (c, w) in data {
        let x = f64::from(c.x);
        let a3 = -(r + x) * (alpha + c.t).ln();
        let term = if c.x > 0 {
            let a4 = drop_x[c.x as usize] - (r + x) * (alpha + c.t_x).ln();
            // log(exp(a3) + exp(a4)) without overflow
            a3.max(a4) + (-(a3 - a4).abs()).exp().ln_1p()
        } else {
            a3
        };
        ll += w * (by_x[c.x as usize] + base + term);
    }
    ll
}

/// −LL of BG/NBD and its gradient with respect to the logs of (r, α, a, b).
fn bgnbd_neg_ll_grad(data: &[(Rfm, f64)], lp: &[f64; 4]) -> (f64, [f64; 4]) {
    let [r, alpha, a, b] = lp.map(f64::exp);
    let max_x = data.iter().map(|c| c.0.x).max().unwrap_or(0) as usize;
    // per x: the count-only terms and their derivatives in r, a, b (cumulative over k < x)
    let mut by_x = vec![(0.0, 0.0, 0.0, 0.0); max_x + 1];
    for k in 0..max_x {
        let kf = k as f64;
        let (v, dr, da, db) = by_x[k];
        by_x[k + 1] = (
            v + (r + kf).ln() + (b + kf).ln() - (a + b + kf).ln(),
            dr + 1.0 / (r + kf),
            da - 1.0 / (a + b + kf),
            db + 1.0 / (b + kf) - 1.0 / (a + b + kf),
        );
    }
    let ln_alpha = alpha.ln();
    let ln_a = a.ln();
    let (mut ll, mut g) = (0.0, [0.0f64; 4]);
    for (c, w) in data {
        let x = f64::from(c.x);
        let (v, dr_x, da_x, db_x) = by_x[c.x as usize];
        let l_t = (alpha + c.t).ln();
        let a3 = -(r + x) * l_t;
        // d a3 / d(r, α)
        let (a3_r, a3_al) = (-l_t, -(r + x) / (alpha + c.t));
        let (term, dr, dal, da, db) = if c.x > 0 {
            let l_tx = (alpha + c.t_x).ln();
            let a4 = ln_a - (b + x - 1.0).ln() - (r + x) * l_tx;
            let m = a3.max(a4);
            let (e3, e4) = ((a3 - m).exp(), (a4 - m).exp());
            let (w3, w4) = (e3 / (e3 + e4), e4 / (e3 + e4));
            (
                m + (e3 + e4).ln(),
                w3 * a3_r + w4 * -l_tx,
                w3 * a3_al + w4 * (-(r + x) / (alpha + c.t_x)),
                w4 / a,
                w4 * (-1.0 / (b + x - 1.0)),
            )
        } else {
            (a3, a3_r, a3_al, 0.0, 0.0)
        };
        ll += w * (v + r * ln_alpha + term);
        g[0] += w * (dr_x + ln_alpha + dr);
        g[1] += w * (r / alpha + dal);
        g[2] += w * (da_x + da);
        g[3] += w * (db_x + db);
    }
    // chain rule to log-parameters, and the sign for minimising
    let scale = [r, alpha, a, b];
    (-ll, std::array::from_fn(|i| -g[i] * scale[i]))
}

/// BFGS with a backtracking line search; None when it does not converge (the caller falls
/// back to Nelder-Mead). Returns the point and the function evaluations used.
// four coordinates read best with indices
#[allow(clippy::needless_range_loop)]
fn bfgs(f: impl Fn(&[f64; 4]) -> (f64, [f64; 4]), start: [f64; 4]) -> Option<([f64; 4], usize)> {
    const N: usize = 4;
    let dot = |u: &[f64; N], v: &[f64; N]| (0..N).map(|i| u[i] * v[i]).sum::<f64>();
    let mut x = start;
    let (mut fx, mut g) = f(&x);
    let mut evals = 1;
    if !fx.is_finite() {
        return None;
    }
    // the first step is about one unit long whatever the gradient's scale
    let norm = dot(&g, &g).sqrt().max(1e-12);
    let mut h = [[0.0; N]; N];
    for i in 0..N {
        h[i][i] = 1.0 / norm;
    }
    for _ in 0..500 {
        let mut d = [0.0; N];
        for i in 0..N {
            d[i] = -(0..N).map(|j| h[i][j] * g[j]).sum::<f64>();
        }
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // lost descent: restart from the gradient
            h = [[0.0; N]; N];
            for i in 0..N {
                h[i][i] = 1.0 / norm;
                d[i] = -g[i] / norm;
            }
            slope = dot(&g, &d);
        }
        let mut t = 1.0;
        let (mut xn, mut fxn, mut gn);
        loop {
            xn = std::array::from_fn(|i| x[i] + t * d[i]);
            (fxn, gn) = f(&xn);
            evals += 1;
            if fxn.is_finite() && fxn <= fx + 1e-4 * t * slope {
                break;
            }
            t *= 0.5;
            if t < 1e-20 {
                return None;
            }
        }
        let s: [f64; N] = std::array::from_fn(|i| xn[i] - x[i]);
        let y: [f64; N] = std::array::from_fn(|i| gn[i] - g[i]);
        let done =
            (fx - fxn).abs() <= 1e-14 * fx.abs().max(1.0) && gn.iter().all(|v| v.abs() < 1e-5);
        x = xn;
        fx = fxn;
        g = gn;
        if done || g.iter().all(|v| v.abs() < 1e-8) {
            return Some((x, evals));
        }
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            let rho = 1.0 / sy;
            let hy: [f64; N] = std::array::from_fn(|i| (0..N).map(|j| h[i][j] * y[j]).sum());
            let yhy = dot(&y, &hy);
            for i in 0..N {
                for j in 0..N {
                    h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
    }
    None
}

/// ln of the mean observation length, the natural scale of the rate parameters.
fn time_scale(data: &[Rfm]) -> f64 {
    let mean = data.iter().map(|c| c.t).sum::<f64>() / data.len().max(1) as f64;
    mean.max(1e-6).ln()
}

/// Fits BG/NBD by maximum likelihood (Nelder-Mead over the logs of the parameters).
pub fn fit_bgnbd(data: &[Rfm]) -> Result<BgNbd, ClvError> {
    validate(data)?;
    let groups = distinct(data);
    let f = |p: &[f64; 4]| {
        let v = -bgnbd_ll_weighted(&groups, p[0].exp(), p[1].exp(), p[2].exp(), p[3].exp());
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    // α (and β) are time scales: starting them at the data's own scale makes the search
    // independent of the unit (days or weeks) and shorter
    let scale = time_scale(data);
    let start = [0.0, scale, 0.0, 0.0];
    // BFGS on the analytic gradient first; Nelder-Mead when that fails to converge
    let (best, evaluations) = match bfgs(|p| bgnbd_neg_ll_grad(&groups, p), start) {
        Some(found) => found,
        None => nelder_mead(f, start, 1e-12, 20_000).ok_or(ClvError::NoConvergence(20_000))?,
    };
    let [r, alpha, a, b] = best.map(f64::exp);
    Ok(BgNbd {
        r,
        alpha,
        a,
        b,
        log_likelihood: bgnbd_ll(data, r, alpha, a, b),
        evaluations,
    })
}

impl BgNbd {
    /// Expected repeat purchases in the next `t` periods for a customer with this history.
    pub fn expected_purchases(&self, c: &Rfm, t: f64) -> f64 {
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let x = f64::from(c.x);
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + c.t + t));
        let first = (a + b + x - 1.0) / (a - 1.0)
            * (1.0 - ((alpha + c.t) / (alpha + c.t + t)).powf(r + x) * hyp);
        let denom = 1.0
            + if c.x > 0 {
                a / (b + x - 1.0) * ((alpha + c.t) / (alpha + c.t_x)).powf(r + x)
            } else {
                0.0
            };
        first / denom
    }

    /// The probability the customer is still active at the end of observation.
    pub fn p_alive(&self, c: &Rfm) -> f64 {
        if c.x == 0 {
            return 1.0;
        }
        let x = f64::from(c.x);
        1.0 / (1.0
            + self.a / (self.b + x - 1.0)
                * ((self.alpha + c.t) / (self.alpha + c.t_x)).powf(self.r + x))
    }
}

/// Pareto/NBD (Schmittlein, Morrison & Colombo 1987): purchases while alive are Poisson with
/// rate gamma(r, α) across customers, lifetimes are exponential with rate gamma(s, β). Unlike
/// BG/NBD a customer can drop out at any moment, not only right after a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParetoNbd {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
    pub log_likelihood: f64,
    pub evaluations: usize,
}

/// ln A₀ of Fader & Hardie's Pareto/NBD note, or −∞ when t_x = T (the term vanishes). The
/// hypergeometric argument is taken against the larger of α and β so that it stays in [0, 1).
fn paretonbd_ln_a0(r: f64, alpha: f64, s: f64, beta: f64, c: &Rfm) -> f64 {
    let x = f64::from(c.x);
    let rsx = r + s + x;
    let ln_f = |u: f64| {
        if alpha >= beta {
            hyp2f1(rsx, s + 1.0, rsx + 1.0, (alpha - beta) / (alpha + u)).ln()
                - rsx * (alpha + u).ln()
        } else {
            hyp2f1(rsx, r + x, rsx + 1.0, (beta - alpha) / (beta + u)).ln() - rsx * (beta + u).ln()
        }
    };
    let (at_tx, at_t) = (ln_f(c.t_x), ln_f(c.t));
    let gap = at_t - at_tx;
    if gap >= 0.0 {
        return f64::NEG_INFINITY;
    }
    at_tx + (-gap.exp()).ln_1p()
}

/// One customer's Pareto/NBD log-likelihood less the terms shared by everyone.
fn paretonbd_ll_one(r: f64, alpha: f64, s: f64, beta: f64, c: &Rfm) -> f64 {
    let x = f64::from(c.x);
    let first = -(r + x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
    let second = (s / (r + s + x)).ln() + paretonbd_ln_a0(r, alpha, s, beta, c);
    let m = first.max(second);
    m + ((first - m).exp() + (second - m).exp()).ln()
}

pub fn paretonbd_ll(data: &[Rfm], r: f64, alpha: f64, s: f64, beta: f64) -> f64 {
    paretonbd_ll_weighted(&distinct(data), r, alpha, s, beta)
}

fn paretonbd_ll_weighted(data: &[(Rfm, f64)], r: f64, alpha: f64, s: f64, beta: f64) -> f64 {
    let ln_gamma_r = ln_gamma(r);
    let base = r * alpha.ln() + s * beta.ln();
    data.iter()
        .map(|(c, w)| {
            w * (ln_gamma(r + f64::from(c.x)) - ln_gamma_r
                + base
                + paretonbd_ll_one(r, alpha, s, beta, c))
        })
        .sum()
}

/// Fits Pareto/NBD by maximum likelihood (Nelder-Mead over the logs of the parameters).
pub fn fit_paretonbd(data: &[Rfm]) -> Result<ParetoNbd, ClvError> {
    validate(data)?;
    let groups = distinct(data);
    let f = |p: &[f64; 4]| {
        let v = -paretonbd_ll_weighted(&groups, p[0].exp(), p[1].exp(), p[2].exp(), p[3].exp());
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let scale = time_scale(data);
    let (best, evaluations) = nelder_mead(f, [0.0, scale, 0.0, scale], 1e-12, 20_000)
        .ok_or(ClvError::NoConvergence(20_000))?;
    let [r, alpha, s, beta] = best.map(f64::exp);
    Ok(ParetoNbd {
        r,
        alpha,
        s,
        beta,
        log_likelihood: paretonbd_ll(data, r, alpha, s, beta),
        evaluations,
    })
}

impl ParetoNbd {
    /// P(alive at T | x, t_x, T).
    pub fn p_alive(&self, c: &Rfm) -> f64 {
        let (r, alpha, s, beta) = (self.r, self.alpha, self.s, self.beta);
        let x = f64::from(c.x);
        let ln_ratio = (s / (r + s + x)).ln()
            + (r + x) * (alpha + c.t).ln()
            + s * (beta + c.t).ln()
            + paretonbd_ln_a0(r, alpha, s, beta, c);
        1.0 / (1.0 + ln_ratio.exp())
    }

    /// Expected purchases in the next `t` periods for a customer with this history.
    pub fn expected_purchases(&self, c: &Rfm, t: f64) -> f64 {
        let (r, alpha, s, beta) = (self.r, self.alpha, self.s, self.beta);
        let x = f64::from(c.x);
        (r + x) * (beta + c.t) / ((alpha + c.t) * (s - 1.0))
            * (1.0 - ((beta + c.t) / (beta + c.t + t)).powf(s - 1.0))
            * self.p_alive(c)
    }
}

/// Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Hardie's note 025): a customer's
/// transaction values are gamma(p, ν) with ν gamma(q, γ) across customers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
    pub log_likelihood: f64,
    pub evaluations: usize,
}

/// One repeat buyer's spend: `x` repeat transactions with mean value `mean`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    pub x: u32,
    pub mean: f64,
}

pub fn gamma_gamma_ll(data: &[Spend], p: f64, q: f64, gamma: f64) -> f64 {
    let base = -ln_gamma(q) + q * gamma.ln();
    data.iter()
        .map(|c| {
            let x = f64::from(c.x);
            let px = p * x;
            ln_gamma(px + q) - ln_gamma(px) + base + (px - 1.0) * c.mean.ln() + px * x.ln()
                - (px + q) * (gamma + c.mean * x).ln()
        })
        .sum()
}

/// Fits Gamma-Gamma to repeat buyers' mean spends (customers without repeats are left out).
pub fn fit_gamma_gamma(data: &[Spend]) -> Result<GammaGamma, ClvError> {
    for (i, c) in data.iter().enumerate() {
        if !(c.mean.is_finite() && c.mean > 0.0) {
            return Err(ClvError::Invalid(
                i + 1,
                format!("mean spend must be a positive amount, not {}", c.mean),
            ));
        }
    }
    let buyers: Vec<Spend> = data.iter().copied().filter(|c| c.x > 0).collect();
    if buyers.len() < 10 {
        return Err(ClvError::TooLittle(format!(
            "{} repeat buyers; at least 10 are needed",
            buyers.len()
        )));
    }
    let f = |v: &[f64; 4]| {
        let ll = -gamma_gamma_ll(&buyers, v[0].exp(), v[1].exp(), v[2].exp());
        if ll.is_finite() {
            ll
        } else {
            f64::INFINITY
        }
    };
    // the fourth coordinate is unused: one optimiser serves both models
    let (best, evaluations) = nelder_mead(f, [0.0, 0.0, 0.0, 0.0], 1e-12, 20_000)
        .ok_or(ClvError::NoConvergence(20_000))?;
    let (p, q, gamma) = (best[0].exp(), best[1].exp(), best[2].exp());
    Ok(GammaGamma {
        p,
        q,
        gamma,
        log_likelihood: gamma_gamma_ll(&buyers, p, q, gamma),
        evaluations,
    })
}

impl GammaGamma {
    /// The expected mean transaction value of a customer with this history.
    pub fn expected_spend(&self, c: &Spend) -> f64 {
        let x = f64::from(c.x);
        (self.gamma + c.mean * x) * self.p / (self.p * x + self.q - 1.0)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms: about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Gauss's hypergeometric series, for |z| < 1.
fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 0..10_000 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

/// Nelder-Mead minimisation; returns the best point and the evaluations used, or None when
/// it did not converge within `max_evals`.
// vector arithmetic over four coordinates reads best with indices
#[allow(clippy::needless_range_loop)]
fn nelder_mead<F: Fn(&[f64; 4]) -> f64>(
    f: F,
    start: [f64; 4],
    tol: f64,
    max_evals: usize,
) -> Option<([f64; 4], usize)> {
    const N: usize = 4;
    let mut simplex: Vec<([f64; N], f64)> = Vec::with_capacity(N + 1);
    simplex.push((start, f(&start)));
    for i in 0..N {
        let mut p = start;
        p[i] += 0.5;
        simplex.push((p, f(&p)));
    }
    let mut evals = N + 1;
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[N].1);
        let spread = simplex
            .iter()
            .map(|s| {
                s.0.iter()
                    .zip(simplex[0].0.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
            })
            .fold(0.0, f64::max);
        if (worst - best).abs() <= tol * (1.0 + best.abs()) && spread < 1e-7 {
            return Some((simplex[0].0, evals));
        }
        let mut centroid = [0.0; N];
        for s in &simplex[..N] {
            for i in 0..N {
                centroid[i] += s.0[i] / N as f64;
            }
        }
        let along = |t: f64| {
            let mut p = [0.0; N];
            for i in 0..N {
                p[i] = centroid[i] + t * (simplex[N].0[i] - centroid[i]);
            }
            p
        };
        let reflected = along(-1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < simplex[0].1 {
            let expanded = along(-2.0);
            let fe = f(&expanded);
            evals += 1;
            simplex[N] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[N - 1].1 {
            simplex[N] = (reflected, fr);
        } else {
            let contracted = if fr < worst { along(-0.5) } else { along(0.5) };
            let fc = f(&contracted);
            evals += 1;
            if fc < worst.min(fr) {
                simplex[N] = (contracted, fc);
            } else {
                let b = simplex[0].0;
                for s in simplex.iter_mut().skip(1) {
                    for i in 0..N {
                        s.0[i] = b[i] + 0.5 * (s.0[i] - b[i]);
                    }
                    s.1 = f(&s.0);
                    evals += 1;
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgnbd_gradient_matches_finite_differences() {
        let data: Vec<(Rfm, f64)> = (0..40)
            .map(|i| {
                let x = i % 5;
                let t = 30.0 + f64::from(i % 7);
                let t_x = if x == 0 {
                    0.0
                } else {
                    t * f64::from(i % 9 + 1) / 10.0
                };
                (Rfm { x, t_x, t }, 1.0 + f64::from(i % 3))
            })
            .collect();
        let p = [-0.7, 1.4, -0.3, 0.8];
        let (f0, g) = bgnbd_neg_ll_grad(&data, &p);
        let [r, al, a, b] = p.map(f64::exp);
        assert!((f0 + bgnbd_ll_weighted(&data, r, al, a, b)).abs() < 1e-9);
        for i in 0..4 {
            let h = 1e-6;
            let mut up = p;
            up[i] += h;
            let mut down = p;
            down[i] -= h;
            let numeric =
                (bgnbd_neg_ll_grad(&data, &up).0 - bgnbd_neg_ll_grad(&data, &down).0) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() < 1e-5 * numeric.abs().max(1.0),
                "{i}: {numeric} {}",
                g[i]
            );
        }
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30 {
            f *= n as f64;
            assert!(
                (ln_gamma(n as f64 + 1.0) - f.ln()).abs() < 1e-10 * f.ln().max(1.0),
                "{n}"
            );
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn refuses_too_little_or_broken_data() {
        let one = [Rfm {
            x: 1,
            t_x: 1.0,
            t: 2.0,
        }];
        assert!(matches!(fit_bgnbd(&one), Err(ClvError::TooLittle(_))));
        let bad = vec![
            Rfm {
                x: 1,
                t_x: 3.0,
                t: 2.0
            };
            20
        ];
        assert!(matches!(fit_bgnbd(&bad), Err(ClvError::Invalid(1, _))));
    }

    #[test]
    fn recovers_parameters_from_its_own_likelihood() {
        // the fitted optimum beats nearby points
        let data: Vec<Rfm> = (0..200)
            .map(|i| {
                let x = (i * 7 % 5) as u32;
                let t = 30.0 + (i % 10) as f64;
                Rfm {
                    x,
                    t_x: if x == 0 {
                        0.0
                    } else {
                        t * ((i % 9) as f64 + 1.0) / 10.0
                    },
                    t,
                }
            })
            .collect();
        let m = fit_bgnbd(&data).unwrap();
        for (dr, da) in [(1.01, 1.0), (0.99, 1.0), (1.0, 1.01), (1.0, 0.99)] {
            assert!(bgnbd_ll(&data, m.r * dr, m.alpha * da, m.a, m.b) <= m.log_likelihood + 1e-9);
        }
    }
}
