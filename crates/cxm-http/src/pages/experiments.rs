//! Dashboard pages for experiments: the list (with a definition editor) and the result page
//! (rates with intervals, the lift as a forest plot, guardrails, the rollout controls and the
//! history).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::pages::form_post;
use crate::pages::session;
use crate::pages::user_ctx;
use crate::AppState;
use cxm_app::blocking;
use cxm_app::experiments::ExperimentResults;
use cxm_app::experiments::RolloutChange;
use cxm_app::experiments::StatusChange;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/experiments", get(list_page).post(create))
        .route("/experiments/{id}", get(result_page))
        .route("/experiments/{id}/status", post(status))
        .route("/experiments/{id}/rollout", post(rollout))
}

const EXAMPLE: &str = r#"{
  "id": "shorter-billing-replies",
  "name": "Shorter billing replies from the bot",
  "owner": "support-lead",
  "kind": "automation",
  "hypothesis": "Shorter answers resolve billing questions without a second contact",
  "arms": [{"key": "control"}, {"key": "short"}],
  "metric": {"event": "Ticket Resolved", "window_days": 7},
  "guardrails": [{"event": "Ticket Escalated", "direction": "decrease", "max_relative_change": 0.1}],
  "mde": 0.1
}"#;

async fn list_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/experiments").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let rows = match blocking(&st, move |s| cxm_app::experiments::list_rows(s, &t)).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["created"] = r.experiment.created_at_ms.into();
            v
        })
        .collect();
    st.pages.render(
        "experiments.html",
        context! { title => "Experiments", page => "experiments", user => user_ctx(&p), rows => rows,
            example => EXAMPLE, can_edit => p.require_analyst().is_ok() },
    )
}

#[derive(Deserialize)]
struct CreateForm {
    definition: String,
}

async fn create(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<CreateForm>(&st, req, "/experiments", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let body: Value = match serde_json::from_str(&form.definition) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::new(
                ErrorCode::InvalidJson,
                format!("the definition is not valid JSON: {e}"),
            )
            .into_response()
        }
    };
    let t = p.tenant_id.clone();
    match blocking(&st, move |s| {
        cxm_app::experiments::create_experiment(s, &t, &p.actor, body)
    })
    .await
    {
        Ok(v) => Redirect::to(&format!("/experiments/{}", v.definition.id)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Bars for each arm's rate with its interval, on a shared scale (SVG user units).
fn rate_bars(r: &ExperimentResults) -> Vec<Value> {
    let mut arms: Vec<(String, f64, [f64; 2], u64)> = vec![];
    if let Some(first) = r.primary.comparisons.first() {
        if let Some(s) = &first.stats {
            arms.push((
                r.arms[0].arm.clone(),
                s.control.mean,
                s.control.ci,
                s.control.n,
            ));
        }
    }
    for c in &r.primary.comparisons {
        if let Some(s) = &c.stats {
            arms.push((
                c.arm.clone(),
                s.treatment.mean,
                s.treatment.ci,
                s.treatment.n,
            ));
        }
    }
    let top = arms.iter().map(|a| a.2[1]).fold(0.0f64, f64::max).max(1e-9);
    let scale = 500.0 / top;
    arms.iter()
        .enumerate()
        .map(|(i, (arm, rate, ci, n))| {
            json!({"arm": arm, "y": 10 + i * 34, "w": rate * scale, "lo": ci[0].max(0.0) * scale, "hi": ci[1] * scale,
                "label": format!("{:.2} % of {n}", rate * 100.0)})
        })
        .collect()
}

/// The relative lift per treatment arm as a forest plot: the fixed-horizon and the
/// always-valid intervals around the estimate, zero marked.
fn forest(r: &ExperimentResults) -> (Vec<Value>, f64) {
    let stats: Vec<(&str, &cxm_analytics::abtest::Summary)> = r
        .primary
        .comparisons
        .iter()
        .filter_map(|c| c.stats.as_ref().map(|s| (c.arm.as_str(), s)))
        .collect();
    let reach = stats
        .iter()
        .flat_map(|(_, s)| [s.sequential.ci[0].abs(), s.sequential.ci[1].abs()])
        .filter(|v| v.is_finite())
        .fold(0.05f64, f64::max);
    let x = |v: f64| 300.0 + v.clamp(-reach, reach) / reach * 280.0;
    let rows = stats
        .iter()
        .enumerate()
        .map(|(i, (arm, s))| {
            json!({"arm": arm, "y": 20 + i * 34, "est": x(s.relative.expected),
                "lo": x(s.relative.ci[0]), "hi": x(s.relative.ci[1]),
                "slo": x(s.sequential.ci[0]), "shi": x(s.sequential.ci[1]),
                "label": format!("{:+.1} %", s.relative.expected * 100.0)})
        })
        .collect();
    (rows, reach)
}

async fn result_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let p = match session(&st, &headers, &format!("/experiments/{id}")).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let r = match blocking(&st, move |s| {
        cxm_app::experiments::compute_results(s, &t, &id, now)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let bars = rate_bars(&r);
    let (forest_rows, reach) = forest(&r);
    let history: Vec<Value> = r
        .experiment
        .history
        .iter()
        .map(|h| {
            let mut v = h.clone();
            v["when"] = h["at_ms"].as_i64().unwrap_or(0).into();
            v["detail_text"] = h["detail"].to_string().into();
            v
        })
        .collect();
    let status = r.experiment.status.as_str();
    st.pages.render(
        "experiment.html",
        context! { title => r.experiment.definition.name.clone(), page => "experiments", user => user_ctx(&p),
            r => r, status => status, bars => bars, forest => forest_rows, reach_pct => format!("{:.0}", reach * 100.0),
            history => history, steps => cxm_domain::experiment::ROLLOUT_STEPS, can_edit => p.require_analyst().is_ok() },
    )
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    #[serde(default)]
    arm: String,
    #[serde(default)]
    reason: String,
}

async fn status(State(st): State<Arc<AppState>>, Path(id): Path<String>, req: Request) -> Response {
    let here = format!("/experiments/{id}");
    let (p, f) = match form_post::<StatusForm>(&st, req, &here, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let t = p.tenant_id.clone();
    let c = StatusChange {
        status: f.status,
        arm: (!f.arm.is_empty()).then_some(f.arm),
        reason: f.reason,
    };
    match blocking(&st, move |s| {
        cxm_app::experiments::change_status(s, &t, &p.actor, &id, &c)
    })
    .await
    {
        Ok(_) => Redirect::to(&here).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct RolloutForm {
    percent: f64,
    #[serde(default)]
    reason: String,
}

async fn rollout(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let here = format!("/experiments/{id}");
    let (p, f) = match form_post::<RolloutForm>(&st, req, &here, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let t = p.tenant_id.clone();
    let c = RolloutChange {
        percent: f.percent,
        reason: f.reason,
    };
    match blocking(&st, move |s| {
        cxm_app::experiments::change_rollout(s, &t, &p.actor, &id, &c)
    })
    .await
    {
        Ok(_) => Redirect::to(&here).into_response(),
        Err(e) => e.into_response(),
    }
}
