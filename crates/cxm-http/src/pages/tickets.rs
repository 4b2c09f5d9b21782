//! Dashboard pages for remediation tickets: the board (one column per state), the ticket page
//! (source, impact, check and its latest verdict, SLA, timeline, actions), and opening a
//! ticket from an alert.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use cxm_domain::ticket::Severity;
use minijinja::context;
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::pages::fmt_ms;
use crate::pages::form_post;
use crate::pages::session;
use crate::pages::user_ctx;
use crate::AppState;
use cxm_app::blocking;
use cxm_app::tickets::CloseRequest;
use cxm_app::tickets::FromAlert;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/tickets", get(board))
        .route("/tickets.csv", get(board_csv))
        .route("/tickets/{id}", get(ticket_page))
        .route("/tickets/{id}/action", post(action))
        .route("/alerts/{id}/ticket", post(from_alert))
}

const COLUMNS: [&str; 6] = [
    "open",
    "in_progress",
    "fix_shipped",
    "verifying",
    "reopened",
    "closed",
];

/// What the board and its CSV show: a word in the title, one owner, one severity, or the
/// tickets whose SLA is missed or at risk.
#[derive(Deserialize, Default)]
struct BoardFilter {
    q: Option<String>,
    owner: Option<String>,
    severity: Option<String>,
    /// `missed`, `at_risk`, `active` or `hit`.
    sla: Option<String>,
}

impl BoardFilter {
    fn set(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    fn keeps(&self, t: &cxm_store::Ticket, now: i64) -> bool {
        let sla = cxm_domain::ticket::sla_status(t.created_at_ms, t.due_at_ms, t.closed_at_ms, now);
        Self::set(&self.q).is_none_or(|q| t.title.to_lowercase().contains(&q.to_lowercase()))
            && Self::set(&self.owner).is_none_or(|o| t.owner == o)
            && Self::set(&self.severity).is_none_or(|s| t.severity == s)
            && Self::set(&self.sla).is_none_or(|s| sla == s)
    }
}

/// The tenant's tickets that pass the filter, soonest due first.
async fn filtered(
    st: &AppState,
    tenant: &str,
    f: &BoardFilter,
    now: i64,
) -> Result<(Vec<cxm_store::Ticket>, Vec<String>), Response> {
    let t = tenant.to_string();
    let all = st
        .store
        .run(move |s| s.list_tickets(&t, None, 1000))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let mut owners: Vec<String> = all.iter().map(|t| t.owner.clone()).collect();
    owners.sort();
    owners.dedup();
    let mut kept: Vec<cxm_store::Ticket> = all.into_iter().filter(|t| f.keeps(t, now)).collect();
    kept.sort_by_key(|t| (t.due_at_ms, t.id));
    Ok((kept, owners))
}

async fn board_csv(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(f): Query<BoardFilter>,
) -> Response {
    let p = match session(&st, &headers, "/tickets").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let (all, _) = match filtered(&st, &p.tenant_id, &f, now).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.title.clone(),
                t.state.clone(),
                t.owner.clone(),
                t.severity.clone(),
                cxm_domain::ticket::sla_status(t.created_at_ms, t.due_at_ms, t.closed_at_ms, now)
                    .to_string(),
                fmt_ms(t.due_at_ms),
                t.verdict
                    .as_ref()
                    .and_then(|v| v["passed"].as_bool())
                    .map_or(String::new(), |p| p.to_string()),
                t.impact["arr"]
                    .as_f64()
                    .map_or(String::new(), |a| a.to_string()),
                fmt_ms(t.created_at_ms),
            ]
        })
        .collect();
    crate::pages::csv::download(
        "tickets",
        &[
            "ticket_id",
            "title",
            "state",
            "owner",
            "severity",
            "sla",
            "due_utc",
            "check_passed",
            "arr",
            "opened_utc",
        ],
        &rows,
    )
}

async fn board(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(f): Query<BoardFilter>,
) -> Response {
    let p = match session(&st, &headers, "/tickets").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let (all, owners) = match filtered(&st, &p.tenant_id, &f, now).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let columns: Vec<serde_json::Value> = COLUMNS
        .iter()
        .map(|c| {
            let cards: Vec<serde_json::Value> = all
                .iter()
                .filter(|t| t.state == *c)
                .map(|t| {
                    serde_json::json!({"id": t.id, "title": t.title, "owner": t.owner, "severity": t.severity, "due_ms": t.due_at_ms,
                        "sla": cxm_domain::ticket::sla_status(t.created_at_ms, t.due_at_ms, t.closed_at_ms, now),
                        "passed": t.verdict.as_ref().and_then(|v| v["passed"].as_bool()), "arr": t.impact["arr"]})
                })
                .collect();
            serde_json::json!({"state": c, "cards": cards})
        })
        .collect();
    let removal = cxm_app::tickets::obstacle_removal(&all, now);
    let filter =
        serde_json::json!({"q": f.q, "owner": f.owner, "severity": f.severity, "sla": f.sla});
    // the same filter for the CSV link
    let query = crate::pages::filter_query(&[
        ("q", &f.q),
        ("owner", &f.owner),
        ("severity", &f.severity),
        ("sla", &f.sla),
    ]);
    st.pages.render("tickets.html", context! { title => "Remediation", page => "tickets", user => user_ctx(&p), columns => columns, removal => removal,
        filter => filter, owners => owners, shown => all.len(), query => query })
}

async fn render_ticket(
    st: &Arc<AppState>,
    p: &Principal,
    id: i64,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = p.tenant_id.clone();
    let d = match blocking(st, move |s| cxm_app::tickets::detail(s, &t, id)).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let timeline: Vec<serde_json::Value> = d
        .timeline
        .iter()
        .map(|e| serde_json::json!({"when": e.at_ms, "actor": e.actor, "kind": e.kind, "detail": e.detail}))
        .collect();
    let due = d.ticket.ticket.due_at_ms;
    let verdict_at = d
        .timeline
        .iter()
        .rev()
        .find(|e| {
            e.kind.contains("verif") || e.kind.contains("check") || e.kind.contains("refused")
        })
        .map(|e| e.at_ms);
    let mut r = st.pages.render(
        "ticket.html",
        context! { title => d.ticket.ticket.title.clone(), page => "tickets", user => user_ctx(p), t => d.ticket, timeline => timeline,
            due => due, verdict_at => verdict_at, error => error, can_act => p.role != cxm_store::Role::Viewer, is_admin => p.role.can_administer() },
    );
    *r.status_mut() = status;
    r
}

async fn ticket_page(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    match session(&st, &headers, &format!("/tickets/{id}")).await {
        Ok(p) => render_ticket(&st, &p, id, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ActionForm {
    /// a state to move to, `verify` or `close`
    action: String,
    #[serde(default)]
    override_reason: Option<String>,
}

async fn action(State(st): State<Arc<AppState>>, Path(id): Path<i64>, req: Request) -> Response {
    let (p, form) = match form_post::<ActionForm>(&st, req, &format!("/tickets/{id}"), false).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    if p.role == cxm_store::Role::Viewer {
        return ApiError::new(
            ErrorCode::Forbidden,
            "the viewer role cannot change tickets",
        )
        .into_response();
    }
    let (t, p2) = (p.tenant_id.clone(), p.clone());
    let done = blocking(&st, move |s| match form.action.as_str() {
        "verify" => cxm_app::tickets::verify_now(s, &t, id, &p2.actor).map(|_| ()),
        "close" => {
            let req = CloseRequest {
                override_reason: form.override_reason.filter(|r| !r.trim().is_empty()),
            };
            cxm_app::tickets::close_ticket(s, &t, id, &p2, &req).map(|_| ())
        }
        state => cxm_app::tickets::change_state(s, &t, id, state, None, &p2.actor).map(|_| ()),
    })
    .await;
    match done {
        Ok(()) => Redirect::to(&format!("/tickets/{id}")).into_response(),
        // the page again, saying why: a failing check, a move that is not allowed
        Err(e)
            if matches!(
                e.code,
                ErrorCode::VerificationFailed
                    | ErrorCode::InvalidTransition
                    | ErrorCode::InvalidParameter
                    | ErrorCode::Forbidden
            ) =>
        {
            let status = crate::error::status_of(e.code);
            render_ticket(&st, &p, id, Some(format!("Not done: {}", e.detail)), status).await
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct AlertTicketForm {
    owner: String,
    #[serde(default)]
    severity: Option<Severity>,
}

async fn from_alert(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    let (p, form) = match form_post::<AlertTicketForm>(&st, req, "/alerts", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if p.role == cxm_store::Role::Viewer {
        return ApiError::new(ErrorCode::Forbidden, "the viewer role cannot open tickets")
            .into_response();
    }
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    let value = st.equity.peek(&t);
    let body = FromAlert {
        owner: form.owner,
        severity: form.severity,
        target_score: None,
    };
    match blocking(&st, move |s| {
        cxm_app::tickets::ticket_from_alert(s, &t, id, &body, &actor, value.as_deref())
    })
    .await
    {
        Ok(ticket) => Redirect::to(&format!("/tickets/{}", ticket.id)).into_response(),
        Err(e) => e.into_response(),
    }
}
