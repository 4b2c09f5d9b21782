//! The home page's brief: what a CX leader decides on first. Revenue at risk and growth
//! potential in money, the scores with their n, the alerts, tickets and reviews waiting,
//! the themes growing fastest, and, for a tenant with no data yet, where to start. Every
//! figure comes from the same use case its own page uses, so the numbers agree.

use std::sync::Arc;

use cxm_store::{AccountHealthRow, Alert, Ticket};
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
    /// The tenant's maturity stage and the KPIs that stage steers by.
    pub north_star: NorthStar,
    /// The last seven days against the seven before.
    pub week: WeekChange,
    /// Journeys whose JPS over the last 30 days differs from the 30 before, most moved first.
    pub journey_moves: Vec<JourneyMove>,
    /// At-risk accounts, the largest ARR first (at most 8): a success manager's list.
    #[schema(value_type = Vec<Object>)]
    pub at_risk_accounts: Vec<AccountHealthRow>,
    /// Remediation tickets closed on a passing check in the last 30 days, and the median
    /// hours from opening to that close.
    pub verified_fixes_30d: u64,
    pub median_hours_to_verified_fix: Option<f64>,
}

/// What a maturity stage steers by: its North Star, and those KPIs' values now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NorthStar {
    /// repair, elevate, optimize or differentiate.
    #[schema(value_type = String)]
    pub stage: cxm_domain::maturity::Stage,
    pub also_called: &'static str,
    /// `assessment` (the tenant's self-assessment) or `evidence` (what its data shows).
    pub basis: &'static str,
    pub north_star: &'static str,
    pub kpis: Vec<Kpi>,
}

/// One KPI figure; `unit` says how to show it (money, percent, hours, nps, ces, jps).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Kpi {
    pub key: &'static str,
    pub label: &'static str,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub detail: String,
    /// The dashboard page that explains it.
    pub href: &'static str,
}

/// Counts over the last seven days and the seven before.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WeekChange {
    /// NPS over the last seven days against the seven before, with both n.
    #[schema(value_type = Object)]
    pub nps: MetricReport,
    pub alerts_raised: usize,
    pub alerts_raised_before: usize,
    pub tickets_opened: usize,
    pub tickets_opened_before: usize,
    pub tickets_closed: usize,
    pub tickets_closed_before: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JourneyMove {
    pub journey_id: String,
    pub name: String,
    pub jps: Option<f64>,
    pub jps_before: Option<f64>,
    pub delta: f64,
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
    // the figures that need the equity fit or the metric reports first, then one blocking
    // pass over the store for the rest
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
    let nrr = equity.report.nrr;
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
    let today = chrono::Utc::now().date_naive();
    let week_q = MetricQuery {
        from: Some(
            (today - chrono::Duration::days(6))
                .format("%Y-%m-%d")
                .to_string(),
        ),
        to: Some(today.format("%Y-%m-%d").to_string()),
        interval: Some("day".into()),
        by: None,
    };
    let week_nps = crate::feedback::report(&st.store, &p.tenant_id, "nps", &week_q).await?;

    let t = p.tenant_id.clone();
    let me = p.actor.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let app = st.clone();
    blocking(st, move |s| {
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
        let day = 86_400_000;
        let in_week = |at: i64, weeks_back: i64| {
            let end = now - weeks_back * 7 * day;
            at > end - 7 * day && at <= end
        };
        let mut raised = (0, 0);
        for a in s.list_alerts(&t, None, 100_000)? {
            raised.0 += usize::from(in_week(a.created_at_ms, 0));
            raised.1 += usize::from(in_week(a.created_at_ms, 1));
        }
        let all_tickets = s.list_tickets(&t, None, 100_000)?;
        let count = |f: &dyn Fn(&Ticket) -> Option<i64>, back: i64| {
            all_tickets
                .iter()
                .filter(|k| f(k).is_some_and(|at| in_week(at, back)))
                .count()
        };
        let opened = |k: &Ticket| Some(k.created_at_ms);
        let closed = |k: &Ticket| k.closed_at_ms;
        let week = WeekChange {
            nps: week_nps,
            alerts_raised: raised.0,
            alerts_raised_before: raised.1,
            tickets_opened: count(&opened, 0),
            tickets_opened_before: count(&opened, 1),
            tickets_closed: count(&closed, 0),
            tickets_closed_before: count(&closed, 1),
        };
        let fixes = crate::tickets::obstacle_removal(&all_tickets, now);
        let tickets: Vec<Ticket> = all_tickets
            .into_iter()
            .filter(|k| k.closed_at_ms.is_none())
            .collect();
        let open_tickets = tickets.len();
        let soon = now + DUE_SOON_HOURS * 3_600_000;
        let tickets_overdue = tickets.iter().filter(|k| k.due_at_ms < now).count();
        let mut due: Vec<Ticket> = tickets.into_iter().filter(|k| k.due_at_ms < soon).collect();
        due.sort_by_key(|k| k.due_at_ms);
        due.truncate(10);
        let mut at_risk_accounts = s.account_health(&t, Some("at_risk"), 1000, 0)?;
        at_risk_accounts.sort_by(|a, b| b.arr.total_cmp(&a.arr));
        at_risk_accounts.truncate(8);
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
        let figures = Figures {
            ces: scores
                .iter()
                .find(|r| r.metric == "ces")
                .and_then(|r| r.overall.as_ref())
                .map(|c| (c.value, c.n)),
            themes: themes.iter().map(|t| t.name.clone()).collect(),
            median_fix: fixes.median_hours_to_verified_fix,
            fixes: fixes.verified_fixes_30d,
            nrr,
            revenue_at_risk,
            accounts_at_risk,
        };
        Ok(Brief {
            revenue_at_risk,
            accounts_at_risk,
            growth_potential,
            expanding_accounts,
            expansion,
            scores,
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
            north_star: north_star(&app, s, &t, now, &figures)?,
            week,
            journey_moves: journey_moves(s, &t)?,
            at_risk_accounts,
            verified_fixes_30d: fixes.verified_fixes_30d,
            median_hours_to_verified_fix: fixes.median_hours_to_verified_fix,
        })
    })
    .await
}

/// What the North Star KPIs are read from (the brief's own figures, so they agree).
struct Figures {
    ces: Option<(f64, u64)>,
    themes: Vec<String>,
    median_fix: Option<f64>,
    fixes: u64,
    nrr: Option<f64>,
    revenue_at_risk: f64,
    accounts_at_risk: usize,
}

/// The stage from the self-assessment when there is one, else from the data, and the KPIs
/// its North Star names.
fn north_star(
    app: &App,
    s: &dyn cxm_store::Store,
    t: &str,
    now: i64,
    f: &Figures,
) -> AppResult<NorthStar> {
    use cxm_domain::maturity::Stage;
    let view = crate::maturity::view(app, s, t, now)?;
    let (a, basis) = match view.assessment {
        Some(a) => (a, "assessment"),
        None => (view.evidence, "evidence"),
    };
    let kpis = match a.stage {
        Stage::Repair => vec![
            Kpi {
                key: "ces",
                label: "Customer effort",
                value: f.ces.map(|c| c.0),
                unit: "ces",
                detail: f.ces.map_or("no effort answers yet".into(), |(_, n)| {
                    format!("{n} answers, last 90 days; lower is easier")
                }),
                href: "/voc",
            },
            Kpi {
                key: "failure_demand",
                label: "Top reasons to contact you",
                value: None,
                unit: "text",
                detail: if f.themes.is_empty() {
                    "no theme is growing this week".into()
                } else {
                    f.themes.join(", ")
                },
                href: "/themes",
            },
        ],
        Stage::Elevate => {
            let fcr = journey_fcr(s, t)?;
            vec![
                Kpi {
                    key: "fcr",
                    label: "First-contact resolution",
                    value: fcr.map(|(v, _)| v),
                    unit: "percent",
                    detail: fcr.map_or("no journey visit has ended yet".into(), |(_, n)| {
                        format!("of {n} ended journey visits, no repeat contact within 7 days")
                    }),
                    href: "/journeys",
                },
                Kpi {
                    key: "time_to_fix",
                    label: "Time to fix systemic issues",
                    value: f.median_fix,
                    unit: "hours",
                    detail: format!(
                        "median, opening to a verified close, over {} tickets in 30 days",
                        f.fixes
                    ),
                    href: "/tickets",
                },
            ]
        }
        Stage::Optimize => vec![
            Kpi {
                key: "nrr",
                label: "Net revenue retention",
                value: f.nrr,
                unit: "percent",
                detail: if f.nrr.is_some() {
                    "revenue kept and grown from the accounts of a year ago".into()
                } else {
                    "needs two years of payments by account".into()
                },
                href: "/equity",
            },
            Kpi {
                key: "revenue_at_risk",
                label: "Revenue at risk",
                value: Some(f.revenue_at_risk),
                unit: "money",
                detail: format!("{} accounts with an open alert", f.accounts_at_risk),
                href: "/alerts",
            },
        ],
        Stage::Differentiate => {
            let roi = crate::maturity::roi_view(app, s, t, now)?;
            let jps: Vec<f64> = crate::journeys::summaries(s, t, chrono::Utc::now())?
                .iter()
                .filter_map(|j| j.jps)
                .collect();
            vec![
                Kpi {
                    key: "rox",
                    label: "Return on experience",
                    value: Some(roi.result_with_data.total),
                    unit: "money",
                    detail: "a year, from the ROI model with your data put in".into(),
                    href: "/maturity",
                },
                Kpi {
                    key: "jps",
                    label: "Journey Performance Score",
                    value: (!jps.is_empty()).then(|| jps.iter().sum::<f64>() / jps.len() as f64),
                    unit: "jps",
                    detail: format!("mean over {} journeys", jps.len()),
                    href: "/journeys",
                },
            ]
        }
    };
    Ok(NorthStar {
        stage: a.stage,
        also_called: a.also_called,
        basis,
        north_star: a.north_star,
        kpis,
    })
}

/// First-contact resolution over every journey's stages, weighted by ended visits: the
/// share with no repeat contact within seven days, and how many visits ended.
fn journey_fcr(s: &dyn cxm_store::Store, t: &str) -> AppResult<Option<(f64, u64)>> {
    let (mut ok, mut n) = (0.0, 0u64);
    for j in s.list_journeys(t)? {
        let m = crate::journeys::metrics(s, t, &j, chrono::Utc::now())?;
        for st in &m.stages {
            let ended = st.converted + st.looped;
            if let Some(f) = st.fcr_pct {
                ok += f / 100.0 * ended as f64;
                n += ended;
            }
        }
    }
    Ok((n > 0).then(|| (ok / n as f64, n)))
}

/// JPS over the last 30 days against the 30 before, for journeys where it moved.
fn journey_moves(s: &dyn cxm_store::Store, t: &str) -> AppResult<Vec<JourneyMove>> {
    let journeys = s.list_journeys(t)?;
    if journeys.is_empty() || s.max_event_seq()? == 0 || !crate::journeys::scan_ready(s, t)? {
        return Ok(vec![]);
    }
    let now = chrono::Utc::now();
    let today = now.date_naive();
    let days = |d: i64| today - chrono::Duration::days(d);
    let last = crate::journeys::metrics_in(
        s,
        t,
        &journeys,
        crate::journeys::window_of_days(days(29), days(0)),
        now,
    )?;
    let before = crate::journeys::metrics_in(
        s,
        t,
        &journeys,
        crate::journeys::window_of_days(days(59), days(30)),
        now,
    )?;
    let mut moves: Vec<JourneyMove> = last
        .into_iter()
        .zip(before)
        .filter_map(|(a, b)| {
            let delta = a.score.jps? - b.score.jps?;
            (delta.abs() >= 0.5).then(|| JourneyMove {
                journey_id: a.journey_id,
                name: a.name,
                jps: a.score.jps,
                jps_before: b.score.jps,
                delta: (delta * 10.0).round() / 10.0,
            })
        })
        .collect();
    moves.sort_by(|a, b| b.delta.abs().total_cmp(&a.delta.abs()));
    moves.truncate(5);
    Ok(moves)
}
