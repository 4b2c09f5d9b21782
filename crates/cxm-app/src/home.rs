//! The home page's brief: what a CX leader decides on first. Revenue at risk and growth
//! potential in money, the scores with their n, the alerts, tickets and reviews waiting,
//! the themes growing fastest, and, for a tenant with no data yet, where to start. Every
//! figure comes from the same use case its own page uses, so the numbers agree.

use std::sync::Arc;

use cxm_store::{Alert, Ticket};
use serde::Serialize;

use crate::auth::Principal;
use crate::blocking;
use crate::equity::ExpansionSignal;
use crate::error::AppResult;
use crate::feedback::{MetricQuery, MetricReport};
use crate::themes::ThemeSummary;
use crate::App;

/// Tickets whose SLA ends within this many hours count as about to miss it.
pub const DUE_SOON_HOURS: i64 = 24;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Brief {
    /// ARR of the distinct accounts with an unresolved alert (as the Alerts page counts it).
    pub revenue_at_risk: f64,
    pub accounts_at_risk: usize,
    /// Annualised spend growth of accounts whose spend grew over the last 90 days against
    /// the 90 before (the equity page's expansion signals): what keeping them growing is worth.
    pub growth_potential: f64,
    pub expanding_accounts: usize,
    #[schema(value_type = Vec<Object>)]
    pub expansion: Vec<ExpansionSignal>,
    /// NPS, CSAT and CES over the last 90 days with the 90 before.
    #[schema(value_type = Vec<Object>)]
    pub scores: Vec<MetricReport>,
    /// Unresolved alerts, the largest ARR first (at most 5), and how many there are.
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<Alert>,
    pub open_alerts: usize,
    /// Of those, the ones the signed-in person owns.
    pub my_alerts: usize,
    /// Open tickets past their SLA or within a day of it, the soonest first (at most 5).
    #[schema(value_type = Vec<Object>)]
    pub tickets_due: Vec<Ticket>,
    pub tickets_overdue: usize,
    pub open_tickets: usize,
    /// Decisions waiting for a person, and when the oldest was asked.
    pub reviews_waiting: usize,
    pub reviews_overdue: usize,
    pub oldest_review_ms: Option<i64>,
    /// Themes whose last week grew most against the week before (at most 3).
    #[schema(value_type = Vec<Object>)]
    pub growing_themes: Vec<ThemeSummary>,
    /// Share of agents' reported outcomes that stayed resolved, over all agents.
    pub agent_resolution_rate: Option<f64>,
    /// Set while the tenant has not done the first things yet.
    pub start: Option<StartHere>,
}

/// The first steps, and which are done.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StartHere {
    pub events: bool,
    pub survey: bool,
    pub journey: bool,
    pub teammate: bool,
    /// The prefix of a write key to send events with, when the tenant has one.
    pub write_key_prefix: Option<String>,
}

pub async fn brief(st: &Arc<App>, p: &Principal) -> AppResult<Brief> {
    let t = p.tenant_id.clone();
    let me = p.actor.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let mut brief = blocking(st, move |s| {
        let (revenue_at_risk, accounts_at_risk) = crate::health::revenue_at_risk(s, &t)?;
        let mut open: Vec<Alert> = s.list_alerts(&t, Some("open"), 10_000)?;
        open.extend(s.list_alerts(&t, Some("acknowledged"), 10_000)?);
        let open_alerts = open.len();
        let my_alerts = open.iter().filter(|a| a.owner == me).count();
        open.sort_by(|a, b| {
            b.arr
                .total_cmp(&a.arr)
                .then(b.created_at_ms.cmp(&a.created_at_ms))
        });
        open.truncate(5);
        let tickets: Vec<Ticket> = s
            .list_tickets(&t, None, 1000)?
            .into_iter()
            .filter(|k| k.closed_at_ms.is_none())
            .collect();
        let open_tickets = tickets.len();
        let soon = now + DUE_SOON_HOURS * 3_600_000;
        let tickets_overdue = tickets.iter().filter(|k| k.due_at_ms < now).count();
        let mut due: Vec<Ticket> = tickets.into_iter().filter(|k| k.due_at_ms < soon).collect();
        due.sort_by_key(|k| k.due_at_ms);
        due.truncate(5);
        let queue = crate::decisions::review_queue(s, &t, now)?;
        let oldest_review_ms = queue.items.iter().map(|i| i.decision.record.at_ms).min();
        let mut themes = crate::themes::list(s, &t, 90, false)?.themes;
        themes.retain(|th| th.status == "active" && th.week_change.is_some_and(|c| c > 0.0));
        themes.sort_by(|a, b| {
            b.week_change
                .unwrap_or(0.0)
                .total_cmp(&a.week_change.unwrap_or(0.0))
        });
        themes.truncate(3);
        let agents = crate::agents::agent_stats(s, &t)?;
        let (resolved, not) = agents.iter().fold((0, 0), |(r, n), a| {
            (r + a.kpis.resolved, n + a.kpis.not_resolved)
        });
        let agent_resolution_rate =
            (resolved + not > 0).then(|| resolved as f64 / (resolved + not) as f64);
        let overview = s.overview(&t, 1, now)?;
        let start = {
            let survey = !s.list_surveys(&t)?.is_empty();
            let journey = !s.list_journeys(&t)?.is_empty();
            let teammate = s.list_users(&t)?.len() > 1;
            let events = overview.total_events > 0;
            let write_key_prefix = s
                .list_keys(&t)?
                .into_iter()
                .find(|k| k.kind == cxm_store::KeyKind::Write && k.revoked_at_ms.is_none())
                .map(|k| k.prefix);
            (!(events && survey && journey && teammate)).then_some(StartHere {
                events,
                survey,
                journey,
                teammate,
                write_key_prefix,
            })
        };
        // the figures that need the equity fit and the metric reports are filled in below
        Ok(Brief {
            revenue_at_risk,
            accounts_at_risk,
            growth_potential: 0.0,
            expanding_accounts: 0,
            expansion: vec![],
            scores: vec![],
            alerts: open,
            open_alerts,
            my_alerts,
            tickets_due: due,
            tickets_overdue,
            open_tickets,
            reviews_waiting: queue.items.len(),
            reviews_overdue: queue.overdue,
            oldest_review_ms,
            growing_themes: themes,
            agent_resolution_rate,
            start,
        })
    })
    .await?;
    let equity = crate::equity::current(st, &p.tenant_id).await?;
    let mut expansion: Vec<ExpansionSignal> = equity.report.expansion.clone();
    let growth_potential: f64 = expansion
        .iter()
        .map(|e| ((e.spend_last_90_days - e.spend_prior_90_days) * 365.0 / 90.0).max(0.0))
        .sum();
    let expanding_accounts = expansion.len();
    expansion.sort_by(|a, b| {
        (b.spend_last_90_days - b.spend_prior_90_days)
            .total_cmp(&(a.spend_last_90_days - a.spend_prior_90_days))
    });
    expansion.truncate(5);
    let mut scores = vec![];
    for metric in ["nps", "csat", "ces"] {
        let q = MetricQuery {
            from: None,
            to: None,
            interval: Some("week".into()),
            by: None,
        };
        scores.push(crate::feedback::report(&st.store, &p.tenant_id, metric, &q).await?);
    }
    brief.growth_potential = growth_potential;
    brief.expanding_accounts = expanding_accounts;
    brief.expansion = expansion;
    brief.scores = scores;
    Ok(brief)
}
