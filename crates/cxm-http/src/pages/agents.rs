//! Dashboard pages for governed agents: agents with their KPIs and the authority matrix
//! (with the policy editor), the decision log, and the review queue.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::pages::fmt_ms;
use crate::pages::form_post;
use crate::pages::session;
use crate::pages::user_ctx;
use crate::AppState;
use cxm_app::blocking;
use cxm_app::decisions::DecisionFilter;
use cxm_app::decisions::ReviewRequest;
use cxm_app::policies::SavePolicies;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/agents", get(agents_page))
        .route("/agents/policies", post(save_policies))
        .route("/decisions", get(decisions_page))
        .route("/decisions.csv", get(decisions_csv))
        .route("/reviews", get(reviews_page))
        .route("/reviews/{id}", post(settle))
}

async fn agents_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/agents").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let data = blocking(&st, move |s| {
        Ok((
            cxm_app::agents::agent_stats(s, &t)?,
            cxm_app::policies::policy_view(s, &t)?,
        ))
    })
    .await;
    let (agents, policies) = match data {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let levels: Vec<(&str, &str, Vec<&cxm_policy::Rule>)> = [
        ("L1", "the agent acts on its own"),
        ("L2", "the agent acts; a human reviews afterwards"),
        ("L3", "a human decides first"),
    ]
    .into_iter()
    .map(|(l, what)| {
        (
            l,
            what,
            policies
                .rules
                .iter()
                .filter(|r| r.level.map(|x| x.as_str()) == Some(l))
                .collect(),
        )
    })
    .collect();
    let forbids: Vec<&cxm_policy::Rule> = policies
        .rules
        .iter()
        .filter(|r| r.effect == "forbid")
        .collect();
    let versions: Vec<serde_json::Value> = policies
        .versions
        .iter()
        .map(|v| {
            let mut j = serde_json::to_value(v).unwrap_or_default();
            j["activated"] = v.activated_at_ms.into();
            j["created"] = v.created_at_ms.into();
            j
        })
        .collect();
    st.pages.render(
        "agents.html",
        context! { title => "Agents", page => "agents", user => user_ctx(&p), agents => agents, policies => policies,
            levels => levels, forbids => forbids, versions => versions, can_edit => p.role.can_administer() },
    )
}

#[derive(Deserialize)]
struct PolicyForm {
    text: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    activate: Option<String>,
}

async fn save_policies(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<PolicyForm>(&st, req, "/agents", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let tenant = p.tenant_id.clone();
    let t = tenant.clone();
    let req = SavePolicies {
        text: form.text,
        note: form.note,
        activate: form.activate.is_some(),
    };
    match blocking(&st, move |s| {
        cxm_app::policies::save_policies(s, &t, &p.actor, &req)
    })
    .await
    {
        Ok(_) => {
            st.policies.invalidate(&tenant);
            Redirect::to("/agents").into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The decision log's filters as a form sends them: empty fields are no filter.
#[derive(Deserialize, Default)]
struct LogQuery {
    agent: Option<String>,
    outcome: Option<String>,
    status: Option<String>,
    customer: Option<String>,
    before: Option<i64>,
}

impl LogQuery {
    fn filter(&self, limit: u32) -> DecisionFilter {
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        DecisionFilter {
            agent: set(&self.agent),
            outcome: set(&self.outcome),
            status: set(&self.status),
            customer: set(&self.customer),
            before: self.before,
            limit: Some(limit),
        }
    }

    /// The filter (not the page) as a query string, for links that keep it.
    fn query(&self) -> String {
        let f = self.filter(1);
        crate::pages::filter_query(&[
            ("agent", &f.agent),
            ("outcome", &f.outcome),
            ("status", &f.status),
            ("customer", &f.customer),
        ])
    }
}

const LOG_PAGE: u32 = 50;
/// A CSV of the log holds at most this many decisions, newest first.
const LOG_CSV_CAP: usize = 5000;

async fn decisions_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(lq): Query<LogQuery>,
) -> Response {
    let p = match session(&st, &headers, "/decisions").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let f = lq.filter(LOG_PAGE);
    let q = match f.query() {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let t = p.tenant_id.clone();
    let list = match blocking(&st, move |s| Ok(s.decisions(&t, &q)?)).await {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or_default();
            v["summary"] = cxm_app::decisions::summary(d).into();
            v
        })
        .collect();
    // keyset paging: the next page is what came before the oldest row shown
    let older = (list.len() == LOG_PAGE as usize)
        .then(|| list.last().map(|d| d.record.at_ms))
        .flatten();
    st.pages.render(
        "decisions.html",
        context! { title => "Decision log", page => "decisions", user => user_ctx(&p), decisions => rows,
            outcome => f.outcome, agent => f.agent, status => f.status, customer => f.customer,
            query => lq.query(), older => older, paged => lq.before.is_some() },
    )
}

/// The decisions the log's filter shows, newest first, as CSV.
async fn decisions_csv(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(lq): Query<LogQuery>,
) -> Response {
    let p = match session(&st, &headers, "/decisions").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut f = lq.filter(500);
    f.before = None;
    if let Err(e) = f.query() {
        return e.into_response();
    }
    let t = p.tenant_id.clone();
    let all = match blocking(&st, move |s| {
        let mut all: Vec<cxm_store::StoredDecision> = vec![];
        loop {
            let page = s.decisions(&t, &f.query()?)?;
            let full = page.len() == 500;
            f.before = page.last().map(|d| d.record.at_ms);
            all.extend(page);
            if !full || all.len() >= LOG_CSV_CAP {
                break;
            }
        }
        all.truncate(LOG_CSV_CAP);
        Ok(all)
    })
    .await
    {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|d| {
            vec![
                d.record.id.clone(),
                fmt_ms(d.record.at_ms),
                d.record.agent.clone(),
                d.record.action.clone(),
                d.record.customer.clone(),
                d.record.outcome.clone(),
                d.record.level.clone(),
                d.record.policy_version.to_string(),
                d.record.policy_ids.join(" "),
                d.review_status.clone().unwrap_or_default(),
                d.reviewed_by.clone().unwrap_or_default(),
                d.resolved.map_or(String::new(), |r| r.to_string()),
            ]
        })
        .collect();
    crate::pages::csv::download(
        "decisions",
        &[
            "decision_id",
            "at_utc",
            "agent",
            "action",
            "customer",
            "outcome",
            "level",
            "policy_version",
            "policies",
            "review",
            "reviewed_by",
            "resolved",
        ],
        &rows,
    )
}

#[derive(Deserialize)]
struct ReviewsQuery {
    /// What was just settled, to confirm it: `approved` or `reversed`, and its summary.
    done: Option<String>,
    what: Option<String>,
}

async fn reviews_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Query(rq): axum::extract::Query<ReviewsQuery>,
) -> Response {
    let p = match session(&st, &headers, "/reviews").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let q = match blocking(&st, move |s| {
        let q = cxm_app::decisions::review_queue(s, &t, now)?;
        // the customer each ask is about, so the reviewer can open their page
        let profiles: Vec<Option<String>> = q
            .items
            .iter()
            .map(|i| {
                cxm_domain::Identifier::parse_typed(&i.decision.record.customer)
                    .map(|id| s.profile_for(&t, &id))
                    .transpose()
                    .map(Option::flatten)
            })
            .collect::<Result<_, _>>()?;
        Ok((q, profiles))
    })
    .await
    {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let (q, profiles) = q;
    let items: Vec<serde_json::Value> = q
        .items
        .iter()
        .zip(profiles)
        .map(|(i, profile)| {
            let mut v = serde_json::to_value(i).unwrap_or_default();
            v["when"] = i.decision.record.at_ms.into();
            v["due"] = i.decision.review_due_at_ms.into();
            v["profile"] = profile.into();
            v
        })
        .collect();
    let done = rq
        .done
        .filter(|d| d == "approved" || d == "reversed")
        .map(|d| {
            format!(
                "{}: {}",
                if d == "approved" {
                    "Approved"
                } else {
                    "Reversed"
                },
                rq.what.unwrap_or_default()
            )
        });
    let can_review = p.role.can_administer() || p.role == cxm_store::Role::AgentOperator;
    st.pages.render(
        "reviews.html",
        context! { title => "Review queue", page => "reviews", user => user_ctx(&p), items => items, overdue => q.overdue,
            can_review => can_review, done => done },
    )
}

#[derive(Deserialize)]
struct ReviewForm {
    verdict: String,
    #[serde(default)]
    reason: String,
}

async fn settle(State(st): State<Arc<AppState>>, Path(id): Path<String>, req: Request) -> Response {
    let (p, form) = match form_post::<ReviewForm>(&st, req, "/reviews", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !(p.role.can_administer() || p.role == cxm_store::Role::AgentOperator) {
        return ApiError::new(
            ErrorCode::Forbidden,
            "only agent operators, owners and admins review decisions",
        )
        .into_response();
    }
    let Some(verdict) = cxm_domain::decision::ReviewVerdict::parse(&form.verdict) else {
        return ApiError::new(
            ErrorCode::InvalidParameter,
            "verdict must be approved or reversed",
        )
        .into_response();
    };
    let t = p.tenant_id.clone();
    let req = ReviewRequest {
        verdict,
        reason: form.reason,
    };
    let verdict = form.verdict.clone();
    match blocking(&st, move |s| {
        let settled = cxm_app::decisions::settle(s, &t, &id, &p.actor, &req)?;
        let summary = s
            .decision(&t, &id)?
            .map(|d| cxm_app::decisions::summary(&d))
            .unwrap_or_default();
        Ok((settled, summary))
    })
    .await
    {
        // say what was done, on the queue the reviewer returns to
        Ok((_, summary)) => Redirect::to(&format!(
            "/reviews?done={verdict}&what={}",
            crate::pages::format::segment(&summary)
        ))
        .into_response(),
        Err(e) => e.into_response(),
    }
}
