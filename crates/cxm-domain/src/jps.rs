//! The Journey Performance Score: one number per stage and per journey, 0 to 100, that is
//! a weighted mean of terms a journey owner can check one by one. Every term says what it was
//! computed from, and a term without data is left out (the weights of the others are
//! renormalised) rather than guessed.
//!
//! Stage terms:
//! - completion = customers who moved on or finished ÷ visits settled (moved on, finished,
//!   went back, or dropped off: no progress past the SLA, or 30 days without one);
//! - time = share of finished visits within the stage's target time;
//! - effort = mean of first-contact resolution (visits with no repeat contact within 7 days)
//!   and, where CES answers exist, CES rescaled from 1–7 to 0–100;
//! - sentiment = loss-averse valence of answers given in the stage: 100 × (positive + ½
//!   neutral) ÷ (positive + neutral + 2 × negative): a bad moment weighs twice a good one.
//!
//! Journey terms: completion end to end (finishing the last stages ÷ entering the first);
//! time and effort as the stage terms' means weighted by their visits; sentiment by peak and
//! end: the mean of the worst stage's sentiment, the last stage's with answers, and the
//! moments of truth's, because a journey is remembered by its worst moment, its end and the
//! moments that decide it.

use serde::Serialize;

use crate::journey::JourneyDefinition;
use crate::journey_progress::StageStats;

/// Term weights, in the order completion, time, effort, sentiment.
pub const WEIGHTS: [(&str, f64); 4] = [
    ("completion", 0.4),
    ("time", 0.2),
    ("effort", 0.2),
    ("sentiment", 0.2),
];

/// The formula as shown next to every score.
pub const FORMULA: &str = "JPS = (0.4 × completion + 0.2 × time + 0.2 × effort + 0.2 × sentiment) ÷ (sum of the weights of the terms that have data); sentiment = 100 × (positive + ½ neutral) ÷ (positive + neutral + 2 × negative); the journey's sentiment is the mean of its worst stage, its last stage and its moments of truth";

/// A negative moment weighs this many positive ones.
pub const LOSS_AVERSION: f64 = 2.0;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Term {
    pub name: String,
    /// 0..=100
    pub value: f64,
    pub weight: f64,
    /// What the value was computed from, in words and counts.
    pub basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Score {
    /// None when no term has data yet.
    pub jps: Option<f64>,
    pub terms: Vec<Term>,
}

fn weight(name: &str) -> f64 {
    WEIGHTS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0.0, |(_, w)| *w)
}

fn term(name: &str, value: f64, basis: String) -> Term {
    Term {
        name: name.to_string(),
        value: round1(value.clamp(0.0, 100.0)),
        weight: weight(name),
        basis,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn combine(terms: Vec<Term>) -> Score {
    let w: f64 = terms.iter().map(|t| t.weight).sum();
    let jps = (w > 0.0).then(|| round1(terms.iter().map(|t| t.value * t.weight).sum::<f64>() / w));
    Score { jps, terms }
}

fn pct(a: u64, b: u64) -> f64 {
    100.0 * a as f64 / b as f64
}

/// The loss-averse sentiment of a stage's answers, 0..=100, with its basis.
pub fn sentiment(st: &StageStats) -> Option<(f64, String)> {
    let f = &st.feedback;
    let (p, u, n) = (f.positive as f64, f.neutral as f64, f.negative as f64);
    let denom = p + u + LOSS_AVERSION * n;
    (denom > 0.0).then(|| {
        (
            100.0 * (p + 0.5 * u) / denom,
            format!(
                "{} positive, {} neutral, {} negative answers",
                f.positive, f.neutral, f.negative
            ),
        )
    })
}

fn effort(st: &StageStats) -> Option<(f64, String)> {
    let ended = st.ended();
    let mut parts = vec![];
    let mut basis = vec![];
    if ended > 0 {
        parts.push(pct(ended - st.repeat_visits.min(ended), ended));
        basis.push(format!(
            "{} of {} visits without a repeat contact",
            ended - st.repeat_visits.min(ended),
            ended
        ));
    }
    if st.feedback.ces_n > 0 {
        let mean = st.feedback.ces_sum / st.feedback.ces_n as f64;
        parts.push((mean - 1.0) / 6.0 * 100.0);
        basis.push(format!(
            "CES {mean:.2} of 7 ({} answers)",
            st.feedback.ces_n
        ));
    }
    (!parts.is_empty()).then(|| {
        (
            parts.iter().sum::<f64>() / parts.len() as f64,
            basis.join("; "),
        )
    })
}

/// A stage's score; `stalled` = its open visits past the SLA (or 30 days).
pub fn stage(def: &JourneyDefinition, i: usize, st: &StageStats, stalled: u64) -> Score {
    let s = &def.stages[i];
    let mut terms = vec![];
    let settled = st.ended() + stalled;
    if settled > 0 {
        terms.push(term(
            "completion",
            pct(st.converted(), settled),
            format!(
                "{} moved on or finished of {} settled ({} went back, {} dropped off)",
                st.converted(),
                settled,
                st.looped,
                stalled
            ),
        ));
    }
    if let (Some(t), timed) = (s.target_hours, st.timed()) {
        if timed > 0 {
            terms.push(term(
                "time",
                pct(st.within_target, timed),
                format!("{} of {} within the {t} h target", st.within_target, timed),
            ));
        }
    }
    if let Some((v, b)) = effort(st) {
        terms.push(term("effort", v, b));
    }
    if let Some((v, b)) = sentiment(st) {
        terms.push(term("sentiment", v, b));
    }
    combine(terms)
}

/// The journey's score from its stages' tallies, in definition order.
pub fn journey(def: &JourneyDefinition, rank: &[usize], stats: &[StageStats]) -> Score {
    let n = def.stages.len();
    let mut terms = vec![];
    let has_pred: Vec<bool> = (0..n)
        .map(|j| (0..n).any(|i| def.successors(i).contains(&j)))
        .collect();
    let started: u64 = (0..n)
        .filter(|i| !has_pred[*i])
        .map(|i| stats[i].entries - stats[i].came_back.min(stats[i].entries))
        .sum();
    // reaching a last stage finishes the journey, unless that stage has an exit to wait for
    let finished: u64 = (0..n)
        .filter(|i| def.successors(*i).is_empty())
        .map(|i| {
            if def.stages[i].exit.is_empty() {
                stats[i].entries - stats[i].came_back.min(stats[i].entries)
            } else {
                stats[i].completed
            }
        })
        .sum();
    if started > 0 {
        terms.push(term(
            "completion",
            pct(finished.min(started), started),
            format!("{finished} finished of {started} who started"),
        ));
    }
    let mut weighted = |f: &dyn Fn(usize) -> Option<(f64, u64)>, name: &str, what: &str| {
        let parts: Vec<(f64, u64)> = (0..n).filter_map(f).filter(|(_, w)| *w > 0).collect();
        let w: u64 = parts.iter().map(|p| p.1).sum();
        if w > 0 {
            let v = parts.iter().map(|(v, k)| v * *k as f64).sum::<f64>() / w as f64;
            terms.push(term(
                name,
                v,
                format!(
                    "{what} over {} stage{}, weighted by {w} visits",
                    parts.len(),
                    if parts.len() == 1 { "" } else { "s" }
                ),
            ));
        }
    };
    weighted(
        &|i| {
            let st = &stats[i];
            def.stages[i]
                .target_hours
                .map(|_| (pct(st.within_target, st.timed().max(1)), st.timed()))
        },
        "time",
        "share within target",
    );
    weighted(
        &|i| effort(&stats[i]).map(|(v, _)| (v, stats[i].ended().max(1))),
        "effort",
        "effort",
    );
    let felt: Vec<(usize, f64)> = (0..n)
        .filter_map(|i| sentiment(&stats[i]).map(|(v, _)| (i, v)))
        .collect();
    if !felt.is_empty() {
        let (worst_i, worst) = felt
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let (end_i, end) = felt
            .iter()
            .copied()
            .max_by_key(|(i, _)| rank[*i])
            .unwrap_or((0, 0.0));
        let mot: Vec<f64> = felt
            .iter()
            .filter(|(i, _)| def.stages[*i].moment_of_truth)
            .map(|(_, v)| *v)
            .collect();
        let mut parts = vec![worst, end];
        let mut basis = format!(
            "worst stage {} {:.0}, last stage {} {:.0}",
            def.stages[worst_i].id, worst, def.stages[end_i].id, end
        );
        if !mot.is_empty() {
            let m = mot.iter().sum::<f64>() / mot.len() as f64;
            parts.push(m);
            basis.push_str(&format!(", moments of truth {m:.0}"));
        }
        terms.push(term(
            "sentiment",
            parts.iter().sum::<f64>() / parts.len() as f64,
            basis,
        ));
    }
    combine(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey_progress::{Outcome, StageAnswer, Visit};

    fn def() -> JourneyDefinition {
        serde_json::from_value(serde_json::json!({
            "name": "Onboarding", "owner": "ada",
            "stages": [
                {"id": "signup", "name": "Sign-up", "owner": "growth", "entry": ["Signed Up"], "target_hours": 24},
                {"id": "activate", "name": "Activation", "owner": "success", "entry": ["Feature Used"], "moment_of_truth": true}
            ]
        }))
        .unwrap()
    }

    fn visits(st: &mut StageStats, n: u64, hours: i64, outcome: Outcome, target: Option<f64>) {
        for _ in 0..n {
            st.entries += 1;
            st.close(
                &Visit {
                    stage: 0,
                    entered_ms: 0,
                    left_ms: hours * 3_600_000,
                    outcome,
                    to: None,
                    repeats: 0,
                    switches: 0,
                },
                target,
                None,
            );
        }
    }

    #[test]
    fn terms_explain_the_number() {
        let d = def();
        let mut a = StageStats::default();
        visits(&mut a, 8, 2, Outcome::Advanced, Some(24.0));
        visits(&mut a, 2, 48, Outcome::Advanced, Some(24.0));
        let mut b = StageStats {
            entries: 7,
            ..StageStats::default()
        };
        for s in [10.0, 10.0, 2.0] {
            b.feedback.add(StageAnswer::Nps(s));
        }
        let s0 = stage(&d, 0, &a, 0);
        let names: Vec<&str> = s0.terms.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["completion", "time", "effort"]);
        assert_eq!(s0.terms[1].value, 80.0);
        // (0.4·100 + 0.2·80 + 0.2·100) / 0.8
        assert_eq!(s0.jps, Some(95.0));
        let s1 = stage(&d, 1, &b, 0);
        // 100 × 2 / (2 + 2·1)
        assert_eq!(s1.terms[0].value, 50.0);
        let j = journey(&d, &[0, 1], &[a, b]);
        assert_eq!(j.terms[0].value, 70.0, "7 of 10 reached the last stage");
        assert!(j
            .terms
            .iter()
            .any(|t| t.name == "sentiment" && t.basis.contains("moments of truth")));
    }

    #[test]
    fn no_data_no_number() {
        let d = def();
        let s = journey(&d, &[0, 1], &[StageStats::default(), StageStats::default()]);
        assert_eq!(s.jps, None);
        assert!(s.terms.is_empty());
    }

    proptest::proptest! {
        /// The score stays in 0..=100 and more completions never lower the completion term.
        #[test]
        fn bounded_and_monotone(adv in 0u64..50, looped in 0u64..50, stalled in 0u64..50, p in 0u64..20, n in 0u64..20) {
            let d = def();
            let mut st = StageStats::default();
            visits(&mut st, adv, 3, Outcome::Advanced, Some(24.0));
            visits(&mut st, looped, 3, Outcome::Looped, Some(24.0));
            st.feedback.positive = p;
            st.feedback.negative = n;
            let s = stage(&d, 0, &st, stalled);
            if let Some(v) = s.jps {
                proptest::prop_assert!((0.0..=100.0).contains(&v));
            }
            let mut more = st.clone();
            visits(&mut more, 1, 3, Outcome::Advanced, Some(24.0));
            let c = |s: &Score| s.terms.iter().find(|t| t.name == "completion").map(|t| t.value);
            proptest::prop_assert!(c(&stage(&d, 0, &more, stalled)) >= c(&s));
        }
    }
}
