//! `cxm stats ab|size` and `cxm eval ab`: experiment statistics from the shell, and their
//! check against statsmodels and GrowthBook's engine.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;
use cxm_analytics::abtest::{self, Arm};
use serde_json::{json, Value};

#[derive(Subcommand, Debug)]
pub enum StatsCmd {
    /// Compare two arms of a conversion experiment: lifts with intervals, p-values, the
    /// sequential (safe to peek) interval, the Bayesian chance to win, z-tests.
    Ab {
        /// Control as EXPOSURES/CONVERSIONS, e.g. 1000/100.
        #[arg(long)]
        a: String,
        /// Treatment as EXPOSURES/CONVERSIONS.
        #[arg(long)]
        b: String,
        /// Significance level, e.g. 0.05.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// Total sample size the sequential interval is tuned for.
        #[arg(long, default_value_t = 5000.0)]
        tuning: f64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Exposures per arm needed to detect a relative lift on a conversion rate.
    Size {
        /// Baseline conversion rate, e.g. 0.10.
        #[arg(long)]
        baseline: f64,
        /// Smallest relative lift worth detecting, e.g. 0.2 for +20 %.
        #[arg(long)]
        mde: f64,
        /// Significance level, e.g. 0.05.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// Power wanted, e.g. 0.8.
        #[arg(long, default_value_t = 0.8)]
        power: f64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `EXPOSURES/CONVERSIONS`.
pub fn parse_arm(s: &str) -> anyhow::Result<Arm> {
    let (n, x) = s
        .split_once('/')
        .with_context(|| format!("{s:?} is not EXPOSURES/CONVERSIONS, e.g. 1000/100"))?;
    let n: u64 = n
        .trim()
        .parse()
        .with_context(|| format!("exposures {n:?} is not a whole number"))?;
    let x: u64 = x
        .trim()
        .parse()
        .with_context(|| format!("conversions {x:?} is not a whole number"))?;
    Ok(Arm::conversions(n, x)?)
}

pub fn run(cmd: &StatsCmd) -> anyhow::Result<()> {
    match cmd {
        StatsCmd::Ab {
            a,
            b,
            alpha,
            tuning,
            json,
        } => {
            let (a, b) = (parse_arm(a)?, parse_arm(b)?);
            anyhow::ensure!(*tuning >= 1.0, "--tuning must be at least 1");
            let s = abtest::summarize(&a, &b, *alpha, *tuning)?;
            let srm = abtest::srm_p_value(&[a.n, b.n], &[1.0, 1.0])?;
            if *json {
                let mut v = serde_json::to_value(&s)?;
                v["srm_p_value"] = json!(srm);
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let pct = |v: f64| format!("{:+.2} %", v * 100.0);
            let level = format!("{:.0}", (1.0 - alpha) * 100.0);
            println!(
                "control    {:>9} exposures  {:.4} ({:.4} to {:.4})",
                s.control.n, s.control.mean, s.control.ci[0], s.control.ci[1]
            );
            println!(
                "treatment  {:>9} exposures  {:.4} ({:.4} to {:.4})",
                s.treatment.n, s.treatment.mean, s.treatment.ci[0], s.treatment.ci[1]
            );
            println!(
                "relative lift   {}  {level}% CI {} to {}  p = {:.4}",
                pct(s.relative.expected),
                pct(s.relative.ci[0]),
                pct(s.relative.ci[1]),
                s.relative.p_value
            );
            println!(
                "absolute lift   {:+.5}  {level}% CI {:+.5} to {:+.5}  p = {:.4}",
                s.absolute.expected, s.absolute.ci[0], s.absolute.ci[1], s.absolute.p_value
            );
            println!(
                "sequential      {} to {}  p = {:.4}  (valid however often you look)",
                pct(s.sequential.ci[0]),
                pct(s.sequential.ci[1]),
                s.sequential.p_value
            );
            println!(
                "bayesian        chance to win {:.1} %, risk {:.5} (keep control) / {:.5} (ship)",
                s.bayesian.chance_to_win * 100.0,
                s.bayesian.risk[0],
                s.bayesian.risk[1]
            );
            println!(
                "sample ratio    p = {srm:.4}{}",
                if srm < 0.001 {
                    "  MISMATCH: the split is not what it should be; do not trust these results"
                } else {
                    ""
                }
            );
            Ok(())
        }
        StatsCmd::Size {
            baseline,
            mde,
            alpha,
            power,
            json,
        } => {
            let n = abtest::sample_size(*baseline, *mde, *alpha, *power)?;
            let per_arm = n.ceil() as u64;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "baseline": baseline, "mde": mde, "alpha": alpha, "power": power,
                        "n_per_arm": n, "exposures_per_arm": per_arm, "total": per_arm * 2,
                    }))?
                );
            } else {
                println!(
                    "{per_arm} exposures per arm ({} in all) to detect {:+.1} % on {:.2} % with {:.0} % power at alpha {alpha}",
                    per_arm * 2,
                    mde * 100.0,
                    baseline * 100.0,
                    power * 100.0
                );
            }
            Ok(())
        }
    }
}

/// The comparisons so far: what failed, the worst relative error, how many were made.
struct Check {
    failures: Vec<String>,
    worst: f64,
    compared: usize,
}

impl Check {
    fn cmp(&mut self, name: &str, got: f64, want: f64, rel: f64) {
        self.compared += 1;
        let err = if want == 0.0 {
            got.abs()
        } else {
            ((got - want) / want).abs()
        };
        self.worst = self.worst.max(err);
        if err.is_nan() || err > rel {
            self.failures.push(format!(
                "{name}: {got:e} against {want:e} (relative {err:.1e})"
            ));
        }
    }
    fn pair(&mut self, name: &str, got: [f64; 2], want: &Value, rel: f64) {
        for (i, g) in got.iter().enumerate() {
            self.cmp(
                &format!("{name}[{i}]"),
                *g,
                want[i].as_f64().unwrap_or(f64::NAN),
                rel,
            );
        }
    }
    fn estimate(&mut self, name: &str, got: &abtest::Estimate, want: &Value) {
        self.cmp(
            &format!("{name}.expected"),
            got.expected,
            num(&want["expected"]),
            1e-9,
        );
        self.pair(&format!("{name}.ci"), got.ci, &want["ci"], 1e-9);
        self.cmp(
            &format!("{name}.p_value"),
            got.p_value,
            num(&want["p_value"]),
            1e-8,
        );
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Every value of the statsmodels / gbstats reference file, recomputed.
pub fn eval(data: &Path, assert: bool) -> anyhow::Result<Value> {
    let path = data.join("ab_testing/reference_outputs_statsmodels_gbstats.json");
    if !path.exists() {
        eprintln!(
            "skipping a/b evaluation: {} not found (pass --data)",
            path.display()
        );
        return Ok(json!({"skipped": true}));
    }
    let reference: Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let mut c = Check {
        failures: vec![],
        worst: 0.0,
        compared: 0,
    };
    let alpha = 0.05;
    let cases = reference["cases"].as_array().context("no cases")?;
    for (i, case) in cases.iter().enumerate() {
        let get = |k: &str| {
            case[k]
                .as_u64()
                .with_context(|| format!("case {i}: no {k}"))
        };
        let a = Arm::conversions(get("nA")?, get("xA")?)?;
        let b = Arm::conversions(get("nB")?, get("xB")?)?;
        let tag = |s: &str| format!("case {} {s}", i + 1);
        let z = abtest::z_test_pooled(&a, &b)?;
        c.cmp(&tag("pooled z"), z.z, num(&case["sm_pooled_z"]), 1e-9);
        c.cmp(&tag("pooled p"), z.p_value, num(&case["sm_pooled_p"]), 1e-8);
        let z = abtest::z_test_unpooled(&a, &b)?;
        c.cmp(&tag("wald z"), z.z, num(&case["sm_wald_unpooled_z"]), 1e-9);
        c.cmp(
            &tag("wald p"),
            z.p_value,
            num(&case["sm_wald_unpooled_p"]),
            1e-8,
        );
        c.pair(
            &tag("wald ci"),
            abtest::diff_ci_wald(&a, &b, alpha),
            &case["sm_diff_ci95_wald"],
            1e-9,
        );
        c.pair(
            &tag("newcombe ci"),
            abtest::diff_ci_newcombe(&a, &b, alpha),
            &case["sm_diff_ci95_newcomb"],
            1e-9,
        );
        c.pair(
            &tag("wilson ci A"),
            abtest::wilson(a.sum, a.n as f64, alpha),
            &case["sm_wilson_ci_A"],
            1e-9,
        );
        c.estimate(
            &tag("gbstats relative"),
            &abtest::t_test(&a, &b, true, alpha)?,
            &case["gb_freq_rel"],
        );
        c.estimate(
            &tag("gbstats absolute"),
            &abtest::t_test(&a, &b, false, alpha)?,
            &case["gb_freq_abs"],
        );
        c.estimate(
            &tag("gbstats sequential"),
            &abtest::sequential(&a, &b, true, alpha, 5000.0)?,
            &case["gb_seq_rel"],
        );
        let bayes = abtest::bayesian(&a, &b, true, alpha)?;
        let want = &case["gb_bayes_rel"];
        c.cmp(
            &tag("bayes expected"),
            bayes.expected,
            num(&want["expected"]),
            1e-9,
        );
        c.pair(&tag("bayes ci"), bayes.ci, &want["ci"], 1e-9);
        c.cmp(
            &tag("bayes chance to win"),
            bayes.chance_to_win,
            num(&want["chance_to_win"]),
            1e-9,
        );
        c.pair(&tag("bayes risk"), bayes.risk, &want["risk"], 1e-9);
    }
    let cont = &reference["continuous"];
    let a = Arm::moments(5000, num(&cont["A_sum"]), num(&cont["A_sumsq"]))?;
    let b = Arm::moments(5000, num(&cont["B_sum"]), num(&cont["B_sumsq"]))?;
    c.estimate(
        "continuous gbstats relative",
        &abtest::t_test(&a, &b, true, alpha)?,
        &cont["gb_freq_rel"],
    );
    let (t, p, _) = abtest::welch(&a, &b)?;
    c.cmp("continuous welch t", t, num(&cont["sm_welch_t"]), 1e-9);
    c.cmp("continuous welch p", p, num(&cont["sm_welch_p"]), 1e-8);
    let power = &reference["power"];
    let h = abtest::cohens_h(0.12, 0.10);
    c.cmp("cohen's h", h, num(&power["cohens_h_0.12_vs_0.10"]), 1e-9);
    let n = abtest::solve_n(|n| abtest::normal_power(h, n, alpha), 0.8)?;
    c.cmp(
        "normal power n per arm",
        n,
        num(&power["n_per_arm_alpha0.05_power0.8"]),
        1e-9,
    );
    // statsmodels stops its root search for the t-test sample size early: at its answer the
    // power is 0.8 − 2.0e-9 (scipy's non-central t agrees with ours there to 1e-14), so the
    // reference n sits 5e-9 (relative) from the exact root. We solve to the root and hold
    // the comparison to 1e-8 instead, and check the power at both points.
    let worst_but_documented = c.worst;
    let n_t = abtest::solve_n(|n| abtest::t_power(0.2, n, alpha), 0.8)?;
    let their_n = num(&power["ttest_n_per_arm_d0.2"]);
    c.cmp("t-test power n per arm", n_t, their_n, 1e-8);
    let at_ours = abtest::t_power(0.2, n_t, alpha) - 0.8;
    let at_theirs = abtest::t_power(0.2, their_n, alpha) - 0.8;
    if at_ours.abs() > 1e-12 || at_theirs.abs() > 1e-8 {
        c.failures.push(format!(
            "t-test power: {at_ours:e} off 0.8 at our n, {at_theirs:e} at statsmodels' n"
        ));
    }
    let out = json!({
        "reference": "statsmodels 0.15.0 and gbstats 0.8.0",
        "values_compared": c.compared,
        "worst_relative_error": c.worst,
        "worst_relative_error_except_documented": worst_but_documented,
        "normal_n_per_arm": n,
        "t_n_per_arm": n_t,
        "differs_by_definition": {"ttest_n_per_arm_d0.2": {"ours": n_t, "statsmodels": their_n,
            "power_minus_target_at_ours": at_ours, "power_minus_target_at_statsmodels": at_theirs,
            "why": "statsmodels' root search stops within 2e-9 of the target power; we solve to the root"}},
        "failures": c.failures,
    });
    if assert && !c.failures.is_empty() {
        anyhow::bail!(
            "a/b statistics differ from the reference: {}",
            c.failures.join("; ")
        );
    }
    Ok(out)
}
