//! Customer equity from transactions: purchase summaries (RFM) per customer, the fitted
//! purchase and spend models, CLV over a horizon with a discount rate, value tiers with the
//! reason for each, and accounts as the sum of their customers. Pure: transactions in,
//! values out.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::clv::{self, BgNbd, ClvError, GammaGamma, ParetoNbd, Rfm, Spend};

const DAY_MS: i64 = 86_400_000;
/// Weeks per month, as lifetimes counts them.
pub const WEEKS_PER_MONTH: f64 = 4.345;

/// One purchase (refunds have negative amounts and are left out of the models).
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    pub customer: String,
    pub account: Option<String>,
    pub at_ms: i64,
    pub amount: f64,
}

/// How purchases are counted: by calendar day, or by week (Monday to Sunday, as pandas'
/// weekly periods count them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
}

/// A customer's summary: repeat periods with purchases, recency and age in weeks, the mean
/// value of the repeat purchases, and the account of their latest purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub customer: String,
    pub account: Option<String>,
    pub rfm: Rfm,
    pub monetary: f64,
    pub total_spend: f64,
    pub first_ms: i64,
    pub last_ms: i64,
}

fn period_of(at_ms: i64, p: Period) -> i64 {
    let day = at_ms.div_euclid(DAY_MS);
    match p {
        Period::Day => day,
        // 1970-01-01 was a Thursday: shift so weeks start on Monday
        Period::Week => (day + 3).div_euclid(7),
    }
}

/// Summarises transactions up to the period holding `end_ms` (later ones are ignored);
/// recency and age are in weeks.
pub fn summarize(txns: &[Txn], end_ms: i64, p: Period) -> Vec<Summary> {
    let per_week = match p {
        Period::Day => 1.0 / 7.0,
        Period::Week => 1.0,
    };
    // the period holding `end_ms` counts whole, as lifetimes counts it
    let end = period_of(end_ms, p);
    let mut by: BTreeMap<&str, Vec<&Txn>> = BTreeMap::new();
    for t in txns {
        if period_of(t.at_ms, p) <= end && t.amount.is_finite() && t.amount >= 0.0 {
            by.entry(t.customer.as_str()).or_default().push(t);
        }
    }
    by.into_iter()
        .map(|(customer, mut ts)| {
            ts.sort_by_key(|t| t.at_ms);
            // one purchase per period: amounts in the same period add up
            let mut periods: Vec<(i64, f64)> = vec![];
            for t in &ts {
                let k = period_of(t.at_ms, p);
                match periods.last_mut() {
                    Some((last, sum)) if *last == k => *sum += t.amount,
                    _ => periods.push((k, t.amount)),
                }
            }
            let first = periods[0].0;
            let last = periods[periods.len() - 1].0;
            let repeats = &periods[1..];
            let monetary = if repeats.is_empty() {
                0.0
            } else {
                repeats.iter().map(|r| r.1).sum::<f64>() / repeats.len() as f64
            };
            Summary {
                customer: customer.to_string(),
                account: ts.iter().rev().find_map(|t| t.account.clone()),
                rfm: Rfm {
                    x: repeats.len() as u32,
                    t_x: (last - first) as f64 * per_week,
                    t: ((end - first) as f64 * per_week).max(1e-9),
                },
                monetary,
                total_spend: ts.iter().map(|t| t.amount).sum(),
                first_ms: ts[0].at_ms,
                last_ms: ts[ts.len() - 1].at_ms,
            }
        })
        .collect()
}

/// Which purchase model predicts repeat purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    Bgnbd,
    Pareto,
}

/// A value tier: the top `share` of customers by CLV not claimed by an earlier tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierDef {
    pub name: String,
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquityConfig {
    #[serde(default = "bgnbd")]
    pub model: Model,
    #[serde(default = "twelve")]
    pub horizon_months: u32,
    /// Monthly discount rate (0.01 ≈ 12.7 % a year).
    #[serde(default = "one_percent")]
    pub monthly_discount: f64,
    /// From the most valuable down; shares add up to 1.
    #[serde(default = "default_tiers")]
    pub tiers: Vec<TierDef>,
}

fn bgnbd() -> Model {
    Model::Bgnbd
}
fn twelve() -> u32 {
    12
}
fn one_percent() -> f64 {
    0.01
}
pub fn default_tiers() -> Vec<TierDef> {
    vec![
        TierDef {
            name: "top".into(),
            share: 0.1,
        },
        TierDef {
            name: "growth".into(),
            share: 0.3,
        },
        TierDef {
            name: "base".into(),
            share: 0.6,
        },
    ]
}

impl Default for EquityConfig {
    fn default() -> Self {
        EquityConfig {
            model: Model::Bgnbd,
            horizon_months: 12,
            monthly_discount: 0.01,
            tiers: default_tiers(),
        }
    }
}

impl EquityConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.horizon_months == 0 || self.horizon_months > 120 {
            return Err("horizon_months must be 1 to 120".into());
        }
        if !(self.monthly_discount.is_finite() && (0.0..1.0).contains(&self.monthly_discount)) {
            return Err("monthly_discount must be at least 0 and below 1".into());
        }
        if self.tiers.is_empty() || self.tiers.len() > 10 {
            return Err("give 1 to 10 tiers".into());
        }
        for t in &self.tiers {
            if t.name.trim().is_empty() || t.name.len() > 40 {
                return Err("tier names are 1 to 40 bytes".into());
            }
            if !(t.share.is_finite() && t.share > 0.0) {
                return Err(format!("tier {:?}: share must be above 0", t.name));
            }
        }
        let total: f64 = self.tiers.iter().map(|t| t.share).sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(format!("tier shares add up to {total}, not 1"));
        }
        Ok(())
    }
}

/// The fitted purchase model, either kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum Fitted {
    Bgnbd(BgNbd),
    Pareto(ParetoNbd),
}

impl Fitted {
    pub fn expected_purchases(&self, c: &Rfm, t: f64) -> f64 {
        match self {
            Fitted::Bgnbd(m) => m.expected_purchases(c, t),
            Fitted::Pareto(m) => m.expected_purchases(c, t),
        }
    }
    pub fn p_alive(&self, c: &Rfm) -> f64 {
        match self {
            Fitted::Bgnbd(m) => m.p_alive(c),
            Fitted::Pareto(m) => m.p_alive(c),
        }
    }
}

/// CLV as lifetimes computes it: month by month, the expected purchases in that month times
/// the expected spend per purchase, discounted. Models here count time in weeks.
pub fn clv(model: &Fitted, c: &Rfm, spend: f64, months: u32, monthly_discount: f64) -> f64 {
    clv_with(model, c, spend, months, monthly_discount, WEEKS_PER_MONTH)
}

/// [`clv`] with the number of model periods in a month given (lifetimes' default, `freq="D"`,
/// counts 30, whatever the model's unit).
pub fn clv_with(
    model: &Fitted,
    c: &Rfm,
    spend: f64,
    months: u32,
    monthly_discount: f64,
    periods_per_month: f64,
) -> f64 {
    let mut total = 0.0;
    let mut before = 0.0;
    for i in 1..=months {
        let t = f64::from(i) * periods_per_month;
        let upto = model.expected_purchases(c, t);
        total += spend * (upto - before) / (1.0 + monthly_discount).powi(i as i32);
        before = upto;
    }
    total
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerValue {
    pub customer: String,
    pub account: Option<String>,
    pub repeat_purchases: u32,
    pub recency_weeks: f64,
    pub age_weeks: f64,
    pub total_spend: f64,
    pub p_alive: f64,
    pub expected_purchases: f64,
    pub expected_spend: f64,
    pub clv: f64,
    pub tier: String,
    /// Why this tier, in words an agent can read to the customer's benefit.
    pub reason: String,
    pub last_purchase_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountValue {
    pub account: String,
    pub customers: usize,
    pub clv: f64,
    pub total_spend: f64,
    pub tier: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierSummary {
    pub name: String,
    pub share: f64,
    pub customers: usize,
    pub clv: f64,
    pub clv_share: f64,
    /// The lowest CLV in the tier.
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Equity {
    pub purchases: Fitted,
    pub spend: GammaGamma,
    pub config: EquityConfig,
    pub customers: Vec<CustomerValue>,
    pub accounts: Vec<AccountValue>,
    pub tiers: Vec<TierSummary>,
    pub total_clv: f64,
    pub transactions: usize,
    pub refunds_left_out: usize,
}

/// Fits the models to the transactions and values every customer. Customers are returned
/// most valuable first.
pub fn compute(txns: &[Txn], end_ms: i64, cfg: &EquityConfig) -> Result<Equity, ClvError> {
    cfg.check().map_err(|e| ClvError::Invalid(0, e))?;
    let refunds = txns
        .iter()
        .filter(|t| !(t.amount.is_finite() && t.amount >= 0.0))
        .count();
    let summaries = summarize(txns, end_ms, Period::Day);
    let rfm: Vec<Rfm> = summaries.iter().map(|s| s.rfm).collect();
    let purchases = match cfg.model {
        Model::Bgnbd => Fitted::Bgnbd(clv::fit_bgnbd(&rfm)?),
        Model::Pareto => Fitted::Pareto(clv::fit_paretonbd(&rfm)?),
    };
    let spend_data: Vec<Spend> = summaries
        .iter()
        .filter(|s| s.rfm.x > 0 && s.monetary > 0.0)
        .map(|s| Spend {
            x: s.rfm.x,
            mean: s.monetary,
        })
        .collect();
    let spend = clv::fit_gamma_gamma(&spend_data)?;
    let horizon = f64::from(cfg.horizon_months) * WEEKS_PER_MONTH;
    let mut customers: Vec<CustomerValue> = summaries
        .iter()
        .map(|s| {
            let expected_spend = spend.expected_spend(&Spend {
                x: s.rfm.x,
                mean: s.monetary,
            });
            CustomerValue {
                customer: s.customer.clone(),
                account: s.account.clone(),
                repeat_purchases: s.rfm.x,
                recency_weeks: s.rfm.t_x,
                age_weeks: s.rfm.t,
                total_spend: s.total_spend,
                p_alive: purchases.p_alive(&s.rfm),
                expected_purchases: purchases.expected_purchases(&s.rfm, horizon),
                expected_spend,
                clv: clv(
                    &purchases,
                    &s.rfm,
                    expected_spend,
                    cfg.horizon_months,
                    cfg.monthly_discount,
                ),
                tier: String::new(),
                reason: String::new(),
                last_purchase_ms: s.last_ms,
            }
        })
        .collect();
    customers.sort_by(|a, b| {
        b.clv
            .total_cmp(&a.clv)
            .then_with(|| a.customer.cmp(&b.customer))
    });
    let n = customers.len();
    let total_clv: f64 = customers.iter().map(|c| c.clv).sum();
    let mut tiers = vec![];
    let mut start = 0usize;
    let mut cum = 0.0;
    for (i, t) in cfg.tiers.iter().enumerate() {
        cum += t.share;
        let end = if i + 1 == cfg.tiers.len() {
            n
        } else {
            ((cum * n as f64).round() as usize).clamp(start, n)
        };
        let from_pct = ((cum - t.share) * 100.0).round();
        let to_pct = (cum * 100.0).round();
        for c in &mut customers[start..end] {
            c.tier = t.name.clone();
            c.reason = format!(
                "{} tier: in the {}{} % of customers by predicted {}-month value ({:.2}; {} repeat purchases, {:.0} % likely still active)",
                t.name,
                if from_pct == 0.0 { "top ".to_string() } else { format!("{from_pct:.0}–") },
                to_pct,
                cfg.horizon_months,
                c.clv,
                c.repeat_purchases,
                c.p_alive * 100.0
            );
        }
        let slice = &customers[start..end];
        let clv_sum: f64 = slice.iter().map(|c| c.clv).sum();
        tiers.push(TierSummary {
            name: t.name.clone(),
            share: t.share,
            customers: slice.len(),
            clv: clv_sum,
            clv_share: if total_clv > 0.0 {
                clv_sum / total_clv
            } else {
                0.0
            },
            threshold: slice.last().map(|c| c.clv).unwrap_or(0.0),
        });
        start = end;
    }
    // accounts: the sum of their customers, tiered by the same shares
    let mut by_account: HashMap<&str, AccountValue> = HashMap::new();
    for c in &customers {
        if let Some(a) = &c.account {
            let e = by_account
                .entry(a.as_str())
                .or_insert_with(|| AccountValue {
                    account: a.clone(),
                    customers: 0,
                    clv: 0.0,
                    total_spend: 0.0,
                    tier: String::new(),
                });
            e.customers += 1;
            e.clv += c.clv;
            e.total_spend += c.total_spend;
        }
    }
    let mut accounts: Vec<AccountValue> = by_account.into_values().collect();
    accounts.sort_by(|a, b| {
        b.clv
            .total_cmp(&a.clv)
            .then_with(|| a.account.cmp(&b.account))
    });
    let m = accounts.len();
    let (mut start, mut cum) = (0usize, 0.0);
    for (i, t) in cfg.tiers.iter().enumerate() {
        cum += t.share;
        let end = if i + 1 == cfg.tiers.len() {
            m
        } else {
            ((cum * m as f64).round() as usize).clamp(start, m)
        };
        for a in &mut accounts[start..end] {
            a.tier = t.name.clone();
        }
        start = end;
    }
    Ok(Equity {
        purchases,
        spend,
        config: cfg.clone(),
        customers,
        accounts,
        tiers,
        total_clv,
        transactions: txns.len() - refunds,
        refunds_left_out: refunds,
    })
}

/// Net revenue retention by cohort: for the customers (or accounts) whose first purchase fell
/// in a month, their revenue in each later month as a share of their first month's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohort {
    /// `YYYY-MM`
    pub cohort: String,
    pub members: usize,
    pub first_month_revenue: f64,
    /// Month 0 is 1.0; month k is revenue k months later over month 0's.
    pub retention: Vec<f64>,
}

fn month_of(at_ms: i64) -> (i32, u32) {
    let d = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    use chrono::Datelike;
    (d.year(), d.month())
}

fn month_index((y, m): (i32, u32)) -> i64 {
    i64::from(y) * 12 + i64::from(m) - 1
}

pub fn cohorts(txns: &[Txn], by_account: bool, end_ms: i64) -> Vec<Cohort> {
    let key = |t: &Txn| -> Option<String> {
        if by_account {
            t.account.clone()
        } else {
            Some(t.customer.clone())
        }
    };
    let mut first: HashMap<String, i64> = HashMap::new();
    for t in txns.iter().filter(|t| t.at_ms <= end_ms) {
        if let Some(k) = key(t) {
            let m = month_index(month_of(t.at_ms));
            first.entry(k).and_modify(|f| *f = (*f).min(m)).or_insert(m);
        }
    }
    let last = month_index(month_of(end_ms));
    let mut revenue: BTreeMap<i64, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut members: BTreeMap<i64, usize> = BTreeMap::new();
    for f in first.values() {
        *members.entry(*f).or_default() += 1;
    }
    for t in txns.iter().filter(|t| t.at_ms <= end_ms) {
        if let Some(k) = key(t) {
            let c = first[&k];
            let m = month_index(month_of(t.at_ms));
            *revenue.entry(c).or_default().entry(m - c).or_default() += t.amount;
        }
    }
    revenue
        .into_iter()
        .map(|(c, by_month)| {
            let base = by_month.get(&0).copied().unwrap_or(0.0);
            let span = (last - c).max(0);
            Cohort {
                cohort: format!("{:04}-{:02}", c.div_euclid(12), c.rem_euclid(12) + 1),
                members: members.get(&c).copied().unwrap_or(0),
                first_month_revenue: base,
                retention: (0..=span)
                    .map(|k| {
                        if base > 0.0 {
                            by_month.get(&k).copied().unwrap_or(0.0) / base
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Trailing twelve months' revenue from the accounts that bought in the twelve months
/// before, over what they spent then (expansion minus contraction and churn).
pub fn nrr(txns: &[Txn], end_ms: i64) -> Option<f64> {
    let year = 365 * DAY_MS;
    let mut before: HashMap<&str, f64> = HashMap::new();
    let mut after: HashMap<&str, f64> = HashMap::new();
    for t in txns {
        let Some(a) = t.account.as_deref() else {
            continue;
        };
        if t.at_ms > end_ms - 2 * year && t.at_ms <= end_ms - year {
            *before.entry(a).or_default() += t.amount;
        } else if t.at_ms > end_ms - year && t.at_ms <= end_ms {
            *after.entry(a).or_default() += t.amount;
        }
    }
    let base: f64 = before.values().sum();
    if base <= 0.0 {
        return None;
    }
    let kept: f64 = before
        .keys()
        .map(|a| after.get(a).copied().unwrap_or(0.0))
        .sum();
    Some(kept / base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: i64 = 7 * DAY_MS;

    fn txn(c: &str, a: &str, week: i64, amount: f64) -> Txn {
        Txn {
            customer: c.into(),
            account: Some(a.into()),
            // a Monday noon
            at_ms: 4 * DAY_MS + week * WEEK + DAY_MS / 2,
            amount,
        }
    }

    #[test]
    fn summaries_count_periods_not_purchases() {
        let t = vec![
            txn("a", "x", 0, 10.0),
            txn("a", "x", 0, 5.0),
            txn("a", "x", 3, 20.0),
            txn("a", "x", 5, 40.0),
            txn("b", "y", 2, 7.0),
            txn("b", "y", 9, -7.0),
        ];
        let s = summarize(&t, 4 * DAY_MS + 10 * WEEK, Period::Week);
        let a = &s[0];
        assert_eq!((a.rfm.x, a.rfm.t_x, a.rfm.t), (2, 5.0, 10.0));
        assert_eq!(a.monetary, 30.0);
        assert_eq!(a.total_spend, 75.0);
        let b = &s[1];
        assert_eq!((b.rfm.x, b.rfm.t_x, b.rfm.t), (0, 0.0, 8.0));
        assert_eq!(b.total_spend, 7.0, "the refund is not a purchase");
    }

    #[test]
    fn tiers_split_by_share_and_explain() {
        let mut t = vec![];
        for c in 0..200 {
            let name = format!("c{c:03}");
            let acct = format!("acct{}", c % 20);
            let repeats = c % 7;
            for k in 0..=repeats {
                t.push(txn(
                    &name,
                    &acct,
                    (k * 3 + c % 4) as i64,
                    10.0 + (c % 13) as f64,
                ));
            }
        }
        let e = compute(&t, 4 * DAY_MS + 40 * WEEK, &EquityConfig::default()).unwrap();
        assert_eq!(e.customers.len(), 200);
        let counts: Vec<usize> = e.tiers.iter().map(|t| t.customers).collect();
        assert_eq!(counts, [20, 60, 120]);
        assert!(e.customers.windows(2).all(|w| w[0].clv >= w[1].clv));
        assert!(
            e.customers[0]
                .reason
                .starts_with("top tier: in the top 10 %"),
            "{}",
            e.customers[0].reason
        );
        assert!(
            e.customers[30].reason.contains("10–40 %"),
            "{}",
            e.customers[30].reason
        );
        let sum: f64 = e.tiers.iter().map(|t| t.clv_share).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert_eq!(e.accounts.len(), 20);
        let bad = EquityConfig {
            tiers: vec![TierDef {
                name: "all".into(),
                share: 0.5,
            }],
            ..EquityConfig::default()
        };
        assert!(compute(&t, 0, &bad).is_err());
        // too little data is said, not fitted
        assert!(matches!(
            compute(&t[..3], 4 * DAY_MS + 40 * WEEK, &EquityConfig::default()),
            Err(ClvError::TooLittle(_))
        ));
    }

    #[test]
    fn cohorts_and_nrr() {
        let day = |d: i64| d * DAY_MS;
        let t = vec![
            Txn {
                customer: "a".into(),
                account: Some("x".into()),
                at_ms: day(0),
                amount: 100.0,
            },
            Txn {
                customer: "a".into(),
                account: Some("x".into()),
                at_ms: day(40),
                amount: 50.0,
            },
            Txn {
                customer: "b".into(),
                account: Some("y".into()),
                at_ms: day(10),
                amount: 100.0,
            },
            Txn {
                customer: "b".into(),
                account: Some("y".into()),
                at_ms: day(400),
                amount: 300.0,
            },
        ];
        let c = cohorts(&t, true, day(70));
        assert_eq!(c[0].cohort, "1970-01");
        assert_eq!(c[0].members, 2);
        assert_eq!(c[0].retention[..3], [1.0, 0.25, 0.0]);
        // x bought 150 in year one and nothing after; y 100 then 300
        let n = nrr(&t, day(40) + 365 * DAY_MS).unwrap();
        assert!((n - 300.0 / 250.0).abs() < 1e-12, "{n}");
    }
}
