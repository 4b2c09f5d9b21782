//! Customer equity in the product: transactions read from the event log (order and payment
//! events with an amount), the fitted CLV models, value tiers with their reasons, accounts,
//! revenue cohorts and NRR, revenue at risk, expansion signals, and what service contacts
//! do to spend. Computed per tenant and kept warm for a few minutes, so agents see a
//! customer's tier with their context without waiting for a fit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cxm_analytics::clv::GammaGamma;
use cxm_analytics::equity::{
    self, AccountValue, Cohort, CustomerValue, EquityConfig, Fitted, TierSummary, Txn,
};
use cxm_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Principal;
use crate::blocking;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

pub const DAY_MS: i64 = 86_400_000;
/// How long a computed equity stays fresh.
pub const FRESH: Duration = Duration::from_secs(600);

/// Which events are purchases, and how value is modelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EquitySettings {
    /// Events whose `revenue`, `total`, `amount` or `value` property is a purchase amount.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// bgnbd or pareto, horizon_months, monthly_discount, tiers [{name, share}].
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: EquityConfig,
}

pub fn default_events() -> Vec<String> {
    ["Order Completed", "Payment Succeeded", "Invoice Paid"]
        .map(String::from)
        .to_vec()
}

impl Default for EquitySettings {
    fn default() -> Self {
        EquitySettings {
            events: default_events(),
            config: EquityConfig::default(),
        }
    }
}

pub fn settings(store: &dyn Store, tenant: &str) -> AppResult<EquitySettings> {
    Ok(match store.document(tenant, "equity")? {
        Some(d) => serde_json::from_str(&d.body).map_err(|e| {
            AppError::new(ErrorCode::Internal, format!("stored equity settings: {e}"))
        })?,
        None => EquitySettings::default(),
    })
}

/// Checks and saves the settings (with an audit entry) and drops the cached computation.
pub async fn save_settings(
    st: &Arc<App>,
    p: &Principal,
    body: EquitySettings,
) -> AppResult<EquitySettings> {
    p.require_analyst()?;
    if body.events.is_empty()
        || body.events.len() > 20
        || body
            .events
            .iter()
            .any(|e| e.trim().is_empty() || e.len() > 200)
    {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "events: 1 to 20 event names of 1 to 200 bytes",
        ));
    }
    body.config
        .check()
        .map_err(|e| AppError::new(ErrorCode::InvalidParameter, e))?;
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    let saved = body.clone();
    blocking(st, move |s| {
        let text = serde_json::to_string(&body)
            .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
        s.save_document(&t, "equity", &text, &actor)?;
        s.append_audit(
            &t,
            &cxm_domain::audit::NewAuditEntry {
                actor: actor.clone(),
                kind: "equity.settings".into(),
                subject: "equity".into(),
                body: cxm_domain::decision::canonical(
                    &serde_json::to_value(&body).unwrap_or_default(),
                ),
            },
        )?;
        Ok(())
    })
    .await?;
    st.equity.forget(&p.tenant_id);
    Ok(saved)
}

/// Purchases read from the event log, with what had to be left out.
pub struct Transactions {
    pub txns: Vec<Txn>,
    pub missing_amounts: usize,
    pub unattributed: usize,
}

pub fn transactions(store: &dyn Store, tenant: &str, events: &[String]) -> AppResult<Transactions> {
    let upto = store.max_event_seq()?;
    let mut after = 0;
    let mut out = Transactions {
        txns: vec![],
        missing_amounts: 0,
        unattributed: 0,
    };
    loop {
        let page = store.amount_events(tenant, after, upto, events, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in page {
            let amount = e
                .amount
                .as_deref()
                .and_then(|a| a.trim().parse::<f64>().ok());
            match (e.profile_id, amount) {
                (_, None) => out.missing_amounts += 1,
                (None, Some(_)) => out.unattributed += 1,
                (Some(customer), Some(amount)) if amount.is_finite() => out.txns.push(Txn {
                    customer,
                    account: e.group_id,
                    at_ms: e.ts_ms,
                    amount,
                }),
                _ => out.missing_amounts += 1,
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExpansionSignal {
    pub account: String,
    pub spend_last_90_days: f64,
    pub spend_prior_90_days: f64,
    pub growth: f64,
    pub tier: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceValue {
    /// Customers with a resolved service contact who had bought before it.
    pub customers: usize,
    pub spend_90_days_before: f64,
    pub spend_90_days_after: f64,
    /// After over before, minus one.
    pub change: Option<f64>,
}

/// Everything the equity page and API show.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EquityReport {
    pub settings: EquitySettings,
    /// False when there was too little data to fit; `message` says what is missing.
    pub fitted: bool,
    pub message: Option<String>,
    pub transactions: usize,
    pub refunds_left_out: usize,
    pub missing_amounts: usize,
    pub unattributed: usize,
    #[schema(value_type = Option<Object>)]
    pub purchases: Option<Fitted>,
    #[schema(value_type = Option<Object>)]
    pub spend: Option<GammaGamma>,
    pub customers: usize,
    pub total_clv: f64,
    #[schema(value_type = Vec<Object>)]
    pub tiers: Vec<TierSummary>,
    /// The 50 most valuable customers, with names where known.
    #[schema(value_type = Vec<Object>)]
    pub top_customers: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub top_accounts: Vec<AccountValue>,
    pub nrr: Option<f64>,
    /// The last twelve monthly cohorts of accounts.
    #[schema(value_type = Vec<Object>)]
    pub cohorts: Vec<Cohort>,
    pub revenue_at_risk: f64,
    pub accounts_at_risk: usize,
    pub expansion: Vec<ExpansionSignal>,
    pub service_value: Option<ServiceValue>,
    /// What to keep in mind reading these numbers.
    pub notes: Vec<String>,
    pub computed_at_ms: i64,
}

/// A computed equity: the report and every customer's value, for lookups.
pub struct Computed {
    pub report: EquityReport,
    pub by_customer: HashMap<String, CustomerValue>,
    pub account_tier: HashMap<String, String>,
}

pub fn compute(store: &dyn Store, tenant: &str, now_ms: i64) -> AppResult<Computed> {
    let settings = settings(store, tenant)?;
    let t = transactions(store, tenant, &settings.events)?;
    let (revenue_at_risk, accounts_at_risk) = crate::health::revenue_at_risk(store, tenant)?;
    let mut report = EquityReport {
        settings: settings.clone(),
        fitted: false,
        message: None,
        transactions: t.txns.len(),
        refunds_left_out: 0,
        missing_amounts: t.missing_amounts,
        unattributed: t.unattributed,
        purchases: None,
        spend: None,
        customers: 0,
        total_clv: 0.0,
        tiers: vec![],
        top_customers: vec![],
        top_accounts: vec![],
        nrr: equity::nrr(&t.txns, now_ms),
        cohorts: {
            let mut c = equity::cohorts(&t.txns, true, now_ms);
            let keep = c.len().saturating_sub(12);
            c.drain(..keep);
            c
        },
        revenue_at_risk,
        accounts_at_risk,
        expansion: expansion(&t.txns, now_ms),
        service_value: service_value(store, tenant, &t.txns)?,
        notes: vec![],
        computed_at_ms: now_ms,
    };
    if report.nrr.is_none() {
        report.notes.push(
            "net revenue retention needs purchases from accounts in both of the last two years"
                .into(),
        );
    }
    if t.missing_amounts > 0 {
        report.notes.push(format!(
            "{} purchase events carried no readable amount and were left out",
            t.missing_amounts
        ));
    }
    let mut by_customer = HashMap::new();
    let mut account_tier = HashMap::new();
    match equity::compute(&t.txns, now_ms, &settings.config) {
        Ok(e) => {
            report.fitted = true;
            if let Fitted::Bgnbd(m) = &e.purchases {
                if m.a > 1e4 || m.b > 1e4 {
                    report.notes.push(format!(
                        "the purchases cannot tell the dropout parameters apart (a and b run to the boundary); only their ratio is identified: customers drop out after {:.1} % of purchases",
                        m.a / (m.a + m.b) * 100.0
                    ));
                }
            }
            if let Fitted::Pareto(m) = &e.purchases {
                if m.s > 1e4 || m.beta > 1e4 {
                    report.notes.push(
                        "the purchases cannot tell the lifetime parameters apart (s and β run to the boundary); P(alive) is close to 1 for everyone".into(),
                    );
                }
            }
            report.refunds_left_out = e.refunds_left_out;
            report.purchases = Some(e.purchases);
            report.spend = Some(e.spend);
            report.customers = e.customers.len();
            report.total_clv = e.total_clv;
            report.tiers = e.tiers.clone();
            report.top_accounts = e.accounts.iter().take(50).cloned().collect();
            for a in &e.accounts {
                account_tier.insert(a.account.clone(), a.tier.clone());
            }
            for x in &mut report.expansion {
                x.tier = account_tier.get(&x.account).cloned().unwrap_or_default();
            }
            report.top_customers = e
                .customers
                .iter()
                .take(50)
                .map(|c| {
                    let name = store
                        .profile(tenant, &c.customer)
                        .ok()
                        .flatten()
                        .and_then(|p| {
                            ["name", "email"]
                                .iter()
                                .find_map(|k| p.traits[k].as_str().map(String::from))
                        })
                        .unwrap_or_default();
                    let mut v = serde_json::to_value(c).unwrap_or_default();
                    v["name"] = json!(name);
                    v
                })
                .collect();
            for c in e.customers {
                by_customer.insert(c.customer.clone(), c);
            }
        }
        Err(err) => {
            report.message = Some(format!(
                "no value model yet: {err}. Purchases are events named {} with a revenue, total, amount or value property.",
                settings.events.join(", ")
            ));
        }
    }
    Ok(Computed {
        report,
        by_customer,
        account_tier,
    })
}

/// Accounts spending at least a quarter more in the last 90 days than the 90 before.
pub fn expansion(txns: &[Txn], now_ms: i64) -> Vec<ExpansionSignal> {
    let q = 90 * DAY_MS;
    let mut spend: HashMap<&str, (f64, f64)> = HashMap::new();
    for t in txns {
        let Some(a) = t.account.as_deref() else {
            continue;
        };
        let e = spend.entry(a).or_default();
        if t.at_ms > now_ms - q && t.at_ms <= now_ms {
            e.0 += t.amount;
        } else if t.at_ms > now_ms - 2 * q && t.at_ms <= now_ms - q {
            e.1 += t.amount;
        }
    }
    let mut out: Vec<ExpansionSignal> = spend
        .into_iter()
        .filter(|(_, (last, prior))| *prior > 0.0 && *last >= 1.25 * prior)
        .map(|(a, (last, prior))| ExpansionSignal {
            account: a.to_string(),
            spend_last_90_days: last,
            spend_prior_90_days: prior,
            growth: last / prior - 1.0,
            tier: String::new(),
        })
        .collect();
    out.sort_by(|a, b| {
        b.growth
            .total_cmp(&a.growth)
            .then_with(|| a.account.cmp(&b.account))
    });
    out.truncate(50);
    out
}

/// Spend in the 90 days after a customer's first resolved contact against the 90 before,
/// over the customers who had bought before it.
pub fn service_value(
    store: &dyn Store,
    tenant: &str,
    txns: &[Txn],
) -> AppResult<Option<ServiceValue>> {
    let times = crate::experiments::event_times(store, tenant, &["Ticket Resolved".to_string()])?;
    let q = 90 * DAY_MS;
    let mut by_customer: HashMap<&str, Vec<&Txn>> = HashMap::new();
    for t in txns {
        by_customer.entry(t.customer.as_str()).or_default().push(t);
    }
    let (mut n, mut before, mut after) = (0usize, 0.0, 0.0);
    for ((profile, _), ts) in &times {
        let Some(first) = ts.iter().min() else {
            continue;
        };
        let Some(bought) = by_customer.get(profile.as_str()) else {
            continue;
        };
        let b: f64 = bought
            .iter()
            .filter(|t| t.at_ms >= first - q && t.at_ms < *first)
            .map(|t| t.amount)
            .sum();
        if b <= 0.0 {
            continue;
        }
        n += 1;
        before += b;
        after += bought
            .iter()
            .filter(|t| t.at_ms >= *first && t.at_ms < first + q)
            .map(|t| t.amount)
            .sum::<f64>();
    }
    Ok((n > 0).then(|| ServiceValue {
        customers: n,
        spend_90_days_before: before,
        spend_90_days_after: after,
        change: (before > 0.0).then(|| after / before - 1.0),
    }))
}

/// Computed equity per tenant, fresh for ten minutes.
#[derive(Default)]
pub struct EquityCache(Mutex<HashMap<String, (Instant, Arc<Computed>)>>);

impl EquityCache {
    /// The fresh computation, if there is one (never computes).
    pub fn peek(&self, tenant: &str) -> Option<Arc<Computed>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(tenant)
            .filter(|(at, _)| at.elapsed() < FRESH)
            .map(|(_, c)| c.clone())
    }
    pub fn put(&self, tenant: &str, c: Arc<Computed>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.to_string(), (Instant::now(), c));
    }
    pub fn forget(&self, tenant: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
    }
}

/// The tenant's equity, from the cache or computed now.
pub async fn current(st: &Arc<App>, tenant: &str) -> AppResult<Arc<Computed>> {
    if let Some(c) = st.equity.peek(tenant) {
        return Ok(c);
    }
    let t = tenant.to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let c = Arc::new(blocking(st, move |s| compute(s, &t, now)).await?);
    st.equity.put(tenant, c.clone());
    Ok(c)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ValueView {
    pub profile_id: String,
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub value: CustomerValue,
    pub account_tier: Option<String>,
}

/// What one customer is worth, their tier and why; agents see the same.
pub fn value_of(c: &Computed, profile_id: &str) -> Option<ValueView> {
    c.by_customer.get(profile_id).map(|v| ValueView {
        profile_id: profile_id.to_string(),
        account_tier: v
            .account
            .as_ref()
            .and_then(|a| c.account_tier.get(a).cloned()),
        value: v.clone(),
    })
}
