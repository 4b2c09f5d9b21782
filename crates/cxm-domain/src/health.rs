//! Account health: deterministic risk signals (each a threshold, a window and a weight),
//! a score that is their weighted combination (Σ wᵢ·sᵢ / Σ wᵢ, each sᵢ 100 when quiet and 0
//! when firing), bands, and the backtest that checks signals against accounts that really
//! churned. Everything here works on per-account daily facts the store keeps; nothing reads
//! events.

use std::collections::HashSet;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// What one account did on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDay {
    pub day: NaiveDate,
    /// Events of any kind.
    pub active: u32,
    pub tickets: u32,
    pub payment_failed: u32,
    /// Product usage events.
    pub usage: u32,
    /// Churn notices.
    pub churned: u32,
    /// Answers that were detractor NPS (0–6) or CSAT ≤ 2.
    pub low_scores: u32,
}

impl AccountDay {
    /// What one event adds to its account's day, by name and taxonomy category. Billing and
    /// churn events are things that happen to an account, not the account being active.
    pub fn of_event(day: NaiveDate, name: Option<&str>, category: &str) -> AccountDay {
        let name = name.unwrap_or("");
        AccountDay {
            day,
            active: u32::from(!matches!(category, "billing" | "churn")),
            tickets: u32::from(matches!(
                name,
                "Ticket Opened" | "Ticket Created" | "Ticket Reopened"
            )),
            payment_failed: u32::from(name == "Payment Failed"),
            usage: u32::from(category == "usage"),
            churned: u32::from(category == "churn"),
            low_scores: 0,
        }
    }

    /// Adds another day's counts (same day) to this one.
    pub fn add(&mut self, o: &AccountDay) {
        self.active += o.active;
        self.tickets += o.tickets;
        self.payment_failed += o.payment_failed;
        self.usage += o.usage;
        self.churned += o.churned;
        self.low_scores += o.low_scores;
    }

    pub fn is_empty(&self) -> bool {
        self.active
            + self.tickets
            + self.payment_failed
            + self.usage
            + self.churned
            + self.low_scores
            == 0
    }
}

/// Whether an answer counts against its account: a detractor NPS (0–6) or a CSAT of 1–2.
pub fn low_score(field_type: &str, score: Option<f64>) -> bool {
    match (field_type, score) {
        ("nps", Some(s)) => s <= 6.0,
        ("csat", Some(s)) => s <= 2.0,
        _ => false,
    }
}

/// What the signals look at for one account.
#[derive(Debug, Clone, Default)]
pub struct AccountFacts {
    /// Days with anything, oldest first.
    pub days: Vec<AccountDay>,
    pub renewal: Option<NaiveDate>,
    /// The first day `days` covers, when it does not go back to the account's beginning: no
    /// activity since then reads as inactive since then.
    pub since: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Days since the account was last active exceed `threshold`.
    InactiveDays,
    /// Tickets in the window rose more than `threshold` percent against the window before
    /// (and number at least two).
    TicketsUp,
    /// At least `threshold` failed payments in the window.
    PaymentFailed,
    /// At least `threshold` detractor NPS or CSAT ≤ 2 answers in the window.
    LowScore,
    /// Renewal within the window and usage down more than `threshold` percent week over week.
    RenewalUsageDrop,
}

impl SignalKind {
    /// Point-in-time signals alert on their own; the others feed the score.
    pub fn point_in_time(self) -> bool {
        matches!(self, SignalKind::PaymentFailed | SignalKind::LowScore)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub id: String,
    pub name: String,
    pub kind: SignalKind,
    pub threshold: f64,
    pub window_days: u32,
    pub weight: f64,
}

/// Score bands: below `at_risk_below` is at risk, below `concerning_below` concerning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub concerning_below: f64,
    pub at_risk_below: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalSet {
    pub signals: Vec<Signal>,
    pub bands: Bands,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Healthy,
    Concerning,
    AtRisk,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Healthy => "healthy",
            Band::Concerning => "concerning",
            Band::AtRisk => "at_risk",
        }
    }

    pub fn parse(s: &str) -> Option<Band> {
        Some(match s {
            "healthy" => Band::Healthy,
            "concerning" => Band::Concerning,
            "at_risk" => Band::AtRisk,
            _ => return None,
        })
    }
}

impl Default for SignalSet {
    /// The five defaults: inactivity, a ticket surge, a failed payment, an unhappy answer,
    /// and a renewal coming up while usage falls.
    fn default() -> Self {
        let s = |id: &str, name: &str, kind, threshold, window_days, weight| Signal {
            id: id.into(),
            name: name.into(),
            kind,
            threshold,
            window_days,
            weight,
        };
        SignalSet {
            signals: vec![
                s(
                    "inactive",
                    "Inactive for more than 14 days",
                    SignalKind::InactiveDays,
                    14.0,
                    14,
                    3.0,
                ),
                s(
                    "tickets_up",
                    "Support tickets up more than 50% (30 days vs the 30 before)",
                    SignalKind::TicketsUp,
                    50.0,
                    30,
                    2.0,
                ),
                s(
                    "payment_failed",
                    "Payment failed in the last 14 days",
                    SignalKind::PaymentFailed,
                    1.0,
                    14,
                    3.0,
                ),
                s(
                    "unhappy",
                    "Detractor NPS or CSAT ≤ 2 in the last 30 days",
                    SignalKind::LowScore,
                    1.0,
                    30,
                    2.0,
                ),
                s(
                    "renewal_usage_drop",
                    "Renewal within 60 days and usage down more than 20% week over week",
                    SignalKind::RenewalUsageDrop,
                    20.0,
                    60,
                    3.0,
                ),
            ],
            bands: Bands {
                concerning_below: 75.0,
                at_risk_below: 50.0,
            },
        }
    }
}

impl SignalSet {
    /// Names the first impossible setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.signals.is_empty() || self.signals.len() > 50 {
            return Err("a signal set has 1 to 50 signals".into());
        }
        let mut ids = HashSet::new();
        for (i, s) in self.signals.iter().enumerate() {
            let at = format!("signals[{i}]");
            let id_ok = !s.id.is_empty()
                && s.id.len() <= 64
                && s.id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !id_ok || !ids.insert(s.id.as_str()) {
                return Err(format!(
                    "{at}.id {:?} must be 1 to 64 letters, digits, - or _, and unique",
                    s.id
                ));
            }
            if s.name.trim().is_empty() || s.name.chars().count() > 200 {
                return Err(format!("{at}.name must be 1 to 200 characters"));
            }
            if !(1..=365).contains(&s.window_days) {
                return Err(format!("{at}.window_days must be 1 to 365"));
            }
            if !(s.weight > 0.0 && s.weight <= 100.0) {
                return Err(format!("{at}.weight must be more than 0 and at most 100"));
            }
            let t = s.threshold;
            let problem = match s.kind {
                SignalKind::InactiveDays if !(1.0..=365.0).contains(&t) => {
                    Some("days inactive must be 1 to 365")
                }
                SignalKind::TicketsUp if !(t > 0.0 && t <= 10_000.0) => {
                    Some("a rise in percent must be more than 0 and at most 10000")
                }
                SignalKind::PaymentFailed | SignalKind::LowScore
                    if !((1.0..=1000.0).contains(&t) && t.fract() == 0.0) =>
                {
                    Some("a count must be a whole number from 1 to 1000")
                }
                SignalKind::RenewalUsageDrop if !(t > 0.0 && t <= 100.0) => {
                    Some("a drop in percent must be more than 0 and at most 100")
                }
                _ => None,
            };
            if let Some(p) = problem {
                return Err(format!("{at}.threshold {t}: {p}"));
            }
        }
        let b = self.bands;
        if !(b.at_risk_below > 0.0
            && b.at_risk_below < b.concerning_below
            && b.concerning_below <= 100.0)
        {
            return Err("bands: need 0 < at_risk_below < concerning_below ≤ 100".into());
        }
        Ok(())
    }
}

/// One signal's reading for one account.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reading {
    pub signal: String,
    pub kind: SignalKind,
    pub fired: bool,
    /// What was measured (days, percent, count).
    pub value: f64,
    pub weight: f64,
    /// Score points this signal costs the account (0 when quiet).
    pub points: f64,
    pub detail: String,
}

fn sum(
    facts: &AccountFacts,
    from_excl: NaiveDate,
    to_incl: NaiveDate,
    f: impl Fn(&AccountDay) -> u32,
) -> u32 {
    // days are in order: find the window by binary search (the backtest reads every
    // account at every checkpoint)
    let lo = facts.days.partition_point(|d| d.day <= from_excl);
    let hi = facts.days.partition_point(|d| d.day <= to_incl);
    facts.days[lo..hi.max(lo)].iter().map(f).sum()
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn minus(d: NaiveDate, days: u32) -> NaiveDate {
    d.checked_sub_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MIN)
}

/// Reads one signal as of a day (facts after it are ignored, so the backtest replays).
pub fn read(s: &Signal, facts: &AccountFacts, as_of: NaiveDate) -> (bool, f64, String) {
    let w = s.window_days;
    match s.kind {
        SignalKind::InactiveDays => {
            let upto = facts.days.partition_point(|d| d.day <= as_of);
            let last = facts.days[..upto].iter().rev().find(|d| d.active > 0);
            match last {
                Some(d) => {
                    let days = (as_of - d.day).num_days() as f64;
                    (
                        days > s.threshold,
                        days,
                        format!("last active {} ({days} days ago)", d.day),
                    )
                }
                None => match facts.since.filter(|s| *s <= as_of) {
                    Some(since) => {
                        let days = (as_of - since).num_days() as f64;
                        (
                            days > s.threshold,
                            days,
                            format!("no activity since {since} (at least {days} days)"),
                        )
                    }
                    None => (false, 0.0, "no activity recorded yet".into()),
                },
            }
        }
        SignalKind::TicketsUp => {
            let now = sum(facts, minus(as_of, w), as_of, |d| d.tickets);
            let before = sum(facts, minus(as_of, 2 * w), minus(as_of, w), |d| d.tickets);
            let rise = if before == 0 {
                if now > 0 {
                    100.0 * f64::from(now)
                } else {
                    0.0
                }
            } else {
                100.0 * (f64::from(now) - f64::from(before)) / f64::from(before)
            };
            (
                now >= 2 && rise > s.threshold,
                rise.round(),
                format!("{now} tickets in {w} days, {before} in the {w} before"),
            )
        }
        SignalKind::PaymentFailed => {
            let n = sum(facts, minus(as_of, w), as_of, |d| d.payment_failed);
            (
                f64::from(n) >= s.threshold,
                f64::from(n),
                format!("{n} failed payment{} in {w} days", plural(n)),
            )
        }
        SignalKind::LowScore => {
            let n = sum(facts, minus(as_of, w), as_of, |d| d.low_scores);
            (
                f64::from(n) >= s.threshold,
                f64::from(n),
                format!("{n} detractor or CSAT ≤ 2 answer{} in {w} days", plural(n)),
            )
        }
        SignalKind::RenewalUsageDrop => {
            let Some(renewal) = facts
                .renewal
                .filter(|r| *r >= as_of && (*r - as_of).num_days() <= i64::from(w))
            else {
                return (false, 0.0, "no renewal within the window".into());
            };
            let this_week = sum(facts, minus(as_of, 7), as_of, |d| d.usage);
            let last_week = sum(facts, minus(as_of, 14), minus(as_of, 7), |d| d.usage);
            if last_week == 0 {
                return (
                    false,
                    0.0,
                    format!("renews {renewal}; no usage the week before to compare"),
                );
            }
            let drop = 100.0 * (f64::from(last_week) - f64::from(this_week)) / f64::from(last_week);
            (
                drop > s.threshold,
                drop.round(),
                format!(
                    "renews {renewal}; usage {this_week} this week vs {last_week} the week before"
                ),
            )
        }
    }
}

/// An account's health as of a day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// 0..=100
    pub score: f64,
    pub band: Band,
    pub readings: Vec<Reading>,
}

pub fn assess(set: &SignalSet, facts: &AccountFacts, as_of: NaiveDate) -> Health {
    let total: f64 = set.signals.iter().map(|s| s.weight).sum();
    let readings: Vec<Reading> = set
        .signals
        .iter()
        .map(|s| {
            let (fired, value, detail) = read(s, facts, as_of);
            Reading {
                signal: s.id.clone(),
                kind: s.kind,
                fired,
                value,
                weight: s.weight,
                points: if fired {
                    (100.0 * s.weight / total * 10.0).round() / 10.0
                } else {
                    0.0
                },
                detail,
            }
        })
        .collect();
    let lost: f64 = readings.iter().filter(|r| r.fired).map(|r| r.weight).sum();
    let score = ((100.0 * (total - lost) / total) * 10.0).round() / 10.0;
    let band = if score < set.bands.at_risk_below {
        Band::AtRisk
    } else if score < set.bands.concerning_below {
        Band::Concerning
    } else {
        Band::Healthy
    };
    Health {
        score,
        band,
        readings,
    }
}

/// Backtest figures for one signal (or the at-risk band).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BacktestRow {
    pub signal: String,
    /// Account-checkpoints where it fired, and of those, accounts that churned within the horizon.
    pub fired: u64,
    pub true_positives: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    /// precision ÷ the base churn rate: how much likelier churn is when it fires.
    pub lift: Option<f64>,
    /// Median days from its first firing to the churn notice, over the churned accounts it caught.
    pub median_lead_days: Option<f64>,
    /// The threshold (of those tried) with the best F1, when it beats the current one.
    pub suggested_threshold: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Backtest {
    #[schema(value_type = String)]
    pub from: NaiveDate,
    #[schema(value_type = String)]
    pub to: NaiveDate,
    pub horizon_days: u32,
    pub checkpoints: u64,
    pub accounts: u64,
    pub churned_accounts: u64,
    pub base_rate: Option<f64>,
    pub rows: Vec<BacktestRow>,
}

struct Tally {
    fired: u64,
    tp: u64,
    caught: HashSet<usize>,
    first_fire: Vec<Option<NaiveDate>>,
}

/// Replays `[from, to]` weekly: at each checkpoint every account not yet churned is assessed
/// with only what was known then, and counts as churning if a churn notice follows within
/// `horizon_days`.
pub fn backtest(
    set: &SignalSet,
    accounts: &[AccountFacts],
    from: NaiveDate,
    to: NaiveDate,
    horizon_days: u32,
) -> Backtest {
    let churn_day: Vec<Option<NaiveDate>> = accounts
        .iter()
        .map(|a| a.days.iter().find(|d| d.churned > 0).map(|d| d.day))
        .collect();
    let mut checkpoints = vec![];
    let mut d = from;
    while d <= to {
        checkpoints.push(d);
        d = d + Days::new(7);
    }
    let names: Vec<String> = set
        .signals
        .iter()
        .map(|s| s.id.clone())
        .chain(["at_risk_band".to_string()])
        .collect();
    let mut tallies: Vec<Tally> = names
        .iter()
        .map(|_| Tally {
            fired: 0,
            tp: 0,
            caught: HashSet::new(),
            first_fire: vec![None; accounts.len()],
        })
        .collect();
    let (mut positives, mut total) = (0u64, 0u64);
    let mut churned_seen = HashSet::new();
    let mut active_accounts = HashSet::new();
    for &cp in &checkpoints {
        for (i, a) in accounts.iter().enumerate() {
            let started = a.days.first().is_some_and(|d| d.day <= cp);
            let gone = churn_day[i].is_some_and(|c| c <= cp);
            if !started || gone {
                continue;
            }
            active_accounts.insert(i);
            let churns =
                churn_day[i].is_some_and(|c| (c - cp).num_days() <= i64::from(horizon_days));
            total += 1;
            if churns {
                positives += 1;
                churned_seen.insert(i);
            }
            let h = assess(set, a, cp);
            let fired = h
                .readings
                .iter()
                .map(|r| r.fired)
                .chain([h.band == Band::AtRisk]);
            for (t, f) in tallies.iter_mut().zip(fired) {
                if !f {
                    continue;
                }
                t.fired += 1;
                t.first_fire[i].get_or_insert(cp);
                if churns {
                    t.tp += 1;
                    t.caught.insert(i);
                }
            }
        }
    }
    let base_rate = (total > 0).then(|| positives as f64 / total as f64);
    let rows = names
        .iter()
        .zip(&tallies)
        .enumerate()
        .map(|(k, (name, t))| {
            let precision = (t.fired > 0).then(|| t.tp as f64 / t.fired as f64);
            let recall = (positives > 0).then(|| t.tp as f64 / positives as f64);
            let mut leads: Vec<f64> = t
                .caught
                .iter()
                .filter_map(|i| Some((churn_day[*i]? - t.first_fire[*i]?).num_days() as f64))
                .collect();
            leads.sort_by(f64::total_cmp);
            let suggested = set
                .signals
                .get(k)
                .and_then(|s| suggest(set, s, accounts, &churn_day, &checkpoints, horizon_days));
            BacktestRow {
                signal: name.clone(),
                fired: t.fired,
                true_positives: t.tp,
                precision: precision.map(round3),
                recall: recall.map(round3),
                lift: precision
                    .zip(base_rate)
                    .filter(|(_, b)| *b > 0.0)
                    .map(|(p, b)| round3(p / b)),
                median_lead_days: (!leads.is_empty()).then(|| leads[leads.len() / 2]),
                suggested_threshold: suggested,
            }
        })
        .collect();
    Backtest {
        from,
        to,
        horizon_days,
        checkpoints: checkpoints.len() as u64,
        accounts: active_accounts.len() as u64,
        churned_accounts: churned_seen.len() as u64,
        base_rate: base_rate.map(round3),
        rows,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Tries thresholds around the current one and returns the best by F1 if it beats it.
fn suggest(
    set: &SignalSet,
    s: &Signal,
    accounts: &[AccountFacts],
    churn_day: &[Option<NaiveDate>],
    checkpoints: &[NaiveDate],
    horizon: u32,
) -> Option<f64> {
    let candidates: Vec<f64> = match s.kind {
        SignalKind::InactiveDays => vec![7.0, 10.0, 14.0, 21.0, 30.0, 45.0],
        SignalKind::TicketsUp => vec![25.0, 50.0, 100.0, 200.0],
        SignalKind::PaymentFailed | SignalKind::LowScore => vec![1.0, 2.0, 3.0],
        SignalKind::RenewalUsageDrop => vec![10.0, 20.0, 30.0, 50.0],
    };
    let f1 = |threshold: f64| {
        let probe = Signal {
            threshold,
            ..s.clone()
        };
        let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
        for &cp in checkpoints {
            for (i, a) in accounts.iter().enumerate() {
                if a.days.first().is_none_or(|d| d.day > cp)
                    || churn_day[i].is_some_and(|c| c <= cp)
                {
                    continue;
                }
                let churns =
                    churn_day[i].is_some_and(|c| (c - cp).num_days() <= i64::from(horizon));
                match (read(&probe, a, cp).0, churns) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fneg += 1,
                    _ => {}
                }
            }
        }
        let denom = 2 * tp + fp + fneg;
        if denom == 0 {
            0.0
        } else {
            2.0 * tp as f64 / denom as f64
        }
    };
    let _ = set;
    let current = f1(s.threshold);
    let (best_t, best) = candidates
        .iter()
        .map(|t| (*t, f1(*t)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (best > current + 1e-9 && best_t != s.threshold).then_some(best_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn facts(days: &[(&str, AccountDay)]) -> AccountFacts {
        AccountFacts {
            days: days
                .iter()
                .map(|(d, a)| AccountDay { day: day(d), ..*a })
                .collect(),
            renewal: None,
            since: None,
        }
    }

    fn active(n: u32) -> AccountDay {
        AccountDay {
            active: n,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_valid_and_mistakes_are_named() {
        assert_eq!(SignalSet::default().validate(), Ok(()));
        let bad = |f: &dyn Fn(&mut SignalSet)| {
            let mut s = SignalSet::default();
            f(&mut s);
            s.validate().unwrap_err()
        };
        assert!(bad(&|s| s.signals[0].threshold = 0.0).contains("days inactive"));
        assert!(bad(&|s| s.signals[2].threshold = 1.5).contains("whole number"));
        assert!(bad(&|s| s.signals[4].threshold = 120.0).contains("at most 100"));
        assert!(bad(&|s| s.signals[1].weight = -1.0).contains("weight"));
        assert!(bad(&|s| s.signals[1].id = "inactive".into()).contains("unique"));
        assert!(bad(&|s| s.bands.at_risk_below = 90.0).contains("bands"));
        assert!(bad(&|s| s.signals[0].window_days = 0).contains("window_days"));
    }

    #[test]
    fn signals_read_facts_as_of_a_day() {
        let set = SignalSet::default();
        let pay = AccountDay {
            active: 1,
            payment_failed: 1,
            ..Default::default()
        };
        let tix = AccountDay {
            active: 1,
            tickets: 3,
            ..Default::default()
        };
        let f = facts(&[
            ("2026-09-01", tix),
            ("2026-10-01", active(5)),
            ("2026-10-20", pay),
            ("2026-11-01", tix),
        ]);
        let h = assess(&set, &f, day("2026-11-20"));
        let fired: Vec<&str> = h
            .readings
            .iter()
            .filter(|r| r.fired)
            .map(|r| r.signal.as_str())
            .collect();
        assert_eq!(fired, ["inactive", "tickets_up"], "{h:?}");
        // 5 of 13 weight lost
        assert_eq!(h.score, 61.5);
        assert_eq!(h.band, Band::Concerning);
        assert_eq!(h.readings[0].value, 19.0);
        // as of Oct 25 the failed payment is within 14 days and nothing after is seen
        let then = assess(&set, &f, day("2026-10-25"));
        let fired: Vec<&str> = then
            .readings
            .iter()
            .filter(|r| r.fired)
            .map(|r| r.signal.as_str())
            .collect();
        assert_eq!(fired, ["payment_failed"]);
        let mut renewing = facts(&[
            (
                "2026-11-05",
                AccountDay {
                    active: 10,
                    usage: 10,
                    ..Default::default()
                },
            ),
            (
                "2026-11-15",
                AccountDay {
                    active: 2,
                    usage: 2,
                    ..Default::default()
                },
            ),
        ]);
        renewing.renewal = Some(day("2026-12-15"));
        // nothing within the facts kept: inactive since the first day they cover
        let quiet = AccountFacts {
            days: vec![],
            renewal: None,
            since: Some(day("2026-09-01")),
        };
        let r = read(&set.signals[0], &quiet, day("2026-11-01"));
        assert!(r.0 && r.1 == 61.0, "{r:?}");
        let r = read(&set.signals[4], &renewing, day("2026-11-18"));
        assert!(r.0 && r.1 == 80.0, "{r:?}");
    }

    #[test]
    fn backtest_finds_the_signal_that_precedes_churn() {
        // ten accounts: the three that stop using the product churn five weeks later
        let mut accounts = vec![];
        for i in 0..10 {
            let mut days = vec![];
            let quits = i < 3;
            let start = day("2026-01-01");
            for w in 0..30u64 {
                let d = start + Days::new(w * 7);
                if quits && w >= 10 {
                    if w == 15 {
                        days.push(AccountDay {
                            day: d,
                            churned: 1,
                            active: 1,
                            ..Default::default()
                        });
                    }
                    continue;
                }
                days.push(AccountDay {
                    day: d,
                    active: 3,
                    usage: 3,
                    ..Default::default()
                });
            }
            accounts.push(AccountFacts {
                days,
                renewal: None,
                since: None,
            });
        }
        let set = SignalSet::default();
        let bt = backtest(&set, &accounts, day("2026-02-01"), day("2026-07-01"), 90);
        assert_eq!(bt.churned_accounts, 3);
        let inactive = &bt.rows[0];
        assert_eq!(inactive.signal, "inactive");
        assert_eq!(inactive.precision, Some(1.0), "{bt:?}");
        // it cannot fire in the weeks before they stop, which are also within the horizon
        assert!(
            inactive.recall.unwrap() > 0.2 && inactive.recall.unwrap() < 1.0,
            "{bt:?}"
        );
        assert!(inactive.lift.unwrap() > 1.0);
        assert!(inactive.median_lead_days.unwrap() > 0.0);
        let paid = &bt.rows[2];
        assert_eq!((paid.fired, paid.precision), (0, None));
        assert_eq!(bt.rows.last().unwrap().signal, "at_risk_band");
    }

    proptest::proptest! {
        /// The score stays within 0..=100, and firing one more signal never raises it.
        #[test]
        fn score_is_bounded_and_monotone(tickets in 0u32..20, paid in 0u32..3, low in 0u32..3, gap in 0u64..60) {
            let set = SignalSet::default();
            let d = day("2026-11-01");
            let f = facts(&[("2026-10-01", AccountDay { active: 1, tickets, ..Default::default() }), ("2026-10-25", AccountDay { active: 1, tickets, payment_failed: paid, low_scores: low, ..Default::default() })]);
            let h = assess(&set, &f, d + Days::new(gap));
            proptest::prop_assert!((0.0..=100.0).contains(&h.score));
            let quiet = assess(&set, &f, d);
            if h.readings.iter().filter(|r| r.fired).count() > quiet.readings.iter().filter(|r| r.fired).count()
                && quiet.readings.iter().filter(|r| r.fired).all(|q| h.readings.iter().any(|r| r.signal == q.signal && r.fired)) {
                proptest::prop_assert!(h.score <= quiet.score);
            }
        }
    }
}
