//! Dashboard pages for journeys: the list with an editor for new ones, and the journey page
//! (JPS with its terms, funnel, stage table with owners and SLAs, flags, editor, history).

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::pages::form_post;
use crate::pages::range::{Range, RangeQuery};
use crate::pages::session;
use crate::pages::signed_post;
use crate::pages::user_ctx;
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/journeys", get(list_page).post(save_form))
        .route("/journeys/{id}", get(journey_page))
        .route("/journeys/{id}/review", post(review))
}

/// What the editor starts from for a new journey.
const EXAMPLE: &str = "id: onboarding
name: Onboarding
owner: you@example.com
stages:
  - id: signup
    name: Sign-up
    owner: growth
    entry: [Signed Up]
    target_hours: 24
    sla_hours: 72
  - id: activate
    name: Activation
    owner: success
    entry: [Feature Used]
    moment_of_truth: true
  - id: pay
    name: First payment
    owner: billing
    entry: [Payment Succeeded]
review:
  every_days: 30
  next: 2027-01-04
";

/// The standard event names, for the visual editor's suggestions (a JSON array).
fn known_events() -> String {
    let names: Vec<&str> = cxm_domain::taxonomy::KNOWN_EVENTS
        .iter()
        .map(|e| e.name)
        .collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

async fn render_list(
    st: &Arc<AppState>,
    p: &Principal,
    range: Option<Range>,
    draft: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = p.tenant_id.clone();
    let window = range.map(|r| r.window());
    let found = blocking(st, move |s| {
        let now = chrono::Utc::now();
        let list = match window {
            Some(w) => cxm_app::journeys::summaries_in(s, &t, w, now)?,
            None => cxm_app::journeys::summaries(s, &t, now)?,
        };
        Ok((list, s.journey_check_runs(&t, None, 10)?))
    })
    .await;
    let (list, runs) = match found {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| serde_json::json!({"name": r.name, "passed": r.passed, "when": r.ran_at_ms, "failures": r.detail["failures"]}))
        .collect();
    let mut r = st.pages.render(
        "journeys.html",
        context! { title => "Journeys", page => "journeys", user => user_ctx(p), journeys => list, runs => runs,
            can_edit => p.require_analyst().is_ok(), draft => draft.unwrap_or_else(|| EXAMPLE.to_string()), error => error,
            known_events => known_events(), range => Range::ctx_or_all(range.as_ref()) },
    );
    *r.status_mut() = status;
    r
}

async fn list_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(rq): Query<RangeQuery>,
) -> Response {
    let p = match session(&st, &headers, "/journeys").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match rq.range_or_all() {
        Ok(range) => render_list(&st, &p, range, None, None, StatusCode::OK).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct JourneyForm {
    definition: String,
    /// The journey page's editor posts here too, and wants its page back on a mistake.
    #[serde(default)]
    from: Option<String>,
}

async fn save_form(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<JourneyForm>(&st, req, "/journeys", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let def = match cxm_app::journeys::parse_definition(&form.definition) {
        Ok(d) => d,
        Err(e) => return mistake(&st, &p, form, e).await,
    };
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    match blocking(&st, move |s| cxm_app::journeys::save(s, &t, &def, &actor)).await {
        Ok(saved) => Redirect::to(&format!("/journeys/{}", saved.journey_id)).into_response(),
        Err(e) if e.code == ErrorCode::InvalidDefinition => mistake(&st, &p, form, e.detail).await,
        Err(e) => e.into_response(),
    }
}

/// The editor again, with the text as typed and what is wrong with it.
async fn mistake(st: &Arc<AppState>, p: &Principal, form: JourneyForm, error: String) -> Response {
    let error = format!("The journey was not saved: {error}");
    match form.from.filter(|f| !f.is_empty()) {
        Some(id) => {
            render_journey(
                st,
                p,
                &id,
                None,
                Some(form.definition),
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        None => {
            render_list(
                st,
                p,
                None,
                Some(form.definition),
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn render_journey(
    st: &Arc<AppState>,
    p: &Principal,
    id: &str,
    range: Option<Range>,
    draft: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (t, i) = (p.tenant_id.clone(), id.to_string());
    let window = range.map(|r| r.window());
    let found = blocking(st, move |s| {
        let Some(j) = s.journey(&t, &i, None)? else {
            return Ok(None);
        };
        let now = chrono::Utc::now();
        let m = match window {
            Some(w) => {
                cxm_app::journeys::metrics_in(s, &t, std::slice::from_ref(&j), w, now)?.remove(0)
            }
            None => cxm_app::journeys::metrics(s, &t, &j, now)?,
        };
        let history = s.journey_history(&t, &i)?;
        Ok(Some((j, m, history)))
    })
    .await;
    let (j, m, history) = match found {
        Ok(Some(x)) => x,
        Ok(None) => {
            return ApiError::new(ErrorCode::NotFound, format!("no journey {id}")).into_response()
        }
        Err(e) => return e.into_response(),
    };
    let yaml = draft.unwrap_or_else(|| {
        serde_json::from_str::<cxm_domain::journey::JourneyDefinition>(&j.definition)
            .ok()
            .and_then(|d| serde_norway::to_string(&d).ok())
            .unwrap_or_default()
    });
    let widest = m.stages.iter().map(|s| s.entries).max().unwrap_or(0).max(1) as f64;
    let funnel: Vec<serde_json::Value> = m
        .stages
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id, "name": s.name, "entries": s.entries,
                "width": (s.entries as f64 / widest * 100.0).round(),
                "done": if s.entries > 0 { (s.converted as f64 / s.entries as f64 * 100.0).round().min(100.0) } else { 0.0 },
                "conversion": s.conversion_pct, "drop_off": s.drop_off_pct,
            })
        })
        .collect();
    let history: Vec<serde_json::Value> = history
        .iter()
        .map(|h| serde_json::json!({"version": h.version, "name": h.name, "owner": h.owner, "by": h.created_by, "when": h.created_at_ms}))
        .collect();
    let mut r = st.pages.render(
        "journey.html",
        context! { title => m.name.clone(), page => "journeys", user => user_ctx(p), m => m, funnel => funnel,
            history => history, yaml => yaml, error => error, can_edit => p.require_analyst().is_ok(),
            known_events => known_events(), range => Range::ctx_or_all(range.as_ref()) },
    );
    *r.status_mut() = status;
    r
}

async fn journey_page(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(rq): Query<RangeQuery>,
) -> Response {
    let p = match session(&st, &headers, &format!("/journeys/{id}")).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match rq.range_or_all() {
        Ok(range) => render_journey(&st, &p, &id, range, None, None, StatusCode::OK).await,
        Err(e) => e.into_response(),
    }
}

async fn review(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let p = match signed_post(&st, &headers, &format!("/journeys/{id}"), false).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let (t, i, actor) = (p.tenant_id.clone(), id.clone(), p.actor.clone());
    let done = blocking(&st, move |s| {
        let j = s
            .journey(&t, &i, None)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no journey {i}")))?;
        cxm_app::journeys::mark_reviewed(s, &t, &j, &actor, chrono::Utc::now())
    })
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/journeys/{id}")).into_response(),
        Err(e) if e.code == ErrorCode::InvalidDefinition => {
            render_journey(
                &st,
                &p,
                &id,
                None,
                None,
                Some(e.detail),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}
