//! The remediation tickets API: opening, moves, checks, notes and rules.

use cxm_app::tickets::{
    change_state, close_ticket, detail, not_viewer, obstacle_removal, open, raise_for_value, rules,
    ticket_from_alert, verify_now, view, CloseRequest, FromAlert, NewTicket, StateChange,
    TicketDetail, TicketList, TicketQuery, TicketView,
};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use cxm_domain::ticket::{TicketRules, TicketState};

use crate::api::ApiJson;
use crate::api::ApiPath;
use crate::api::ApiQuery;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/tickets", get(list).post(create))
        .route("/api/v1/tickets/{id}", get(get_one))
        .route("/api/v1/tickets/{id}/state", post(move_state))
        .route("/api/v1/tickets/{id}/verify", post(verify))
        .route("/api/v1/tickets/{id}/close", post(close))
        .route("/api/v1/alerts/{id}/ticket", post(from_alert))
        .route("/api/v1/ticket-rules", get(get_rules).put(put_rules))
}

#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", request_body = NewTicket,
    responses((status = 201, body = TicketView), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<NewTicket>,
) -> ApiResult<(StatusCode, Json<TicketView>)> {
    not_viewer(&p)?;
    let value = st.equity.peek(&p.tenant_id);
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    let row = blocking(&st, move |s| {
        let mut body = body;
        raise_for_value(s, &t, value.as_deref(), &mut body)?;
        open(s, &t, &body, &actor)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(TicketQuery),
    responses((status = 200, body = TicketList), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<TicketQuery>,
) -> ApiResult<Json<TicketList>> {
    if let Some(s) = q.state.as_deref() {
        TicketState::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("no ticket state {s:?}"),
            )
        })?;
    }
    let t = p.0.tenant_id;
    let (rows, all) = st
        .store
        .run(move |s| {
            let limit = q.limit.unwrap_or(200).clamp(1, 1000);
            Ok((
                s.list_tickets(&t, q.state.as_deref(), limit)?,
                s.list_tickets(&t, None, 10_000)?,
            ))
        })
        .await?;
    Ok(Json(TicketList {
        obstacle_removal: obstacle_removal(&all, Utc::now().timestamp_millis()),
        tickets: rows.into_iter().map(view).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = i64, Path)),
    responses((status = 200, body = TicketDetail), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TicketDetail>> {
    let t = p.0.tenant_id;
    Ok(Json(blocking(&st, move |s| detail(s, &t, id)).await?))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/state", tag = "tickets", params(("id" = i64, Path)), request_body = StateChange,
    responses((status = 200, body = TicketDetail), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn move_state(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<StateChange>,
) -> ApiResult<Json<TicketDetail>> {
    not_viewer(&p)?;
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    Ok(Json(
        blocking(&st, move |s| {
            change_state(s, &t, id, &body.state, body.note.as_deref(), &actor)
        })
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/verify", tag = "tickets", params(("id" = i64, Path)),
    responses((status = 200, body = TicketDetail), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn verify(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TicketDetail>> {
    not_viewer(&p)?;
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    Ok(Json(
        blocking(&st, move |s| verify_now(s, &t, id, &actor))
            .await?
            .1,
    ))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/close", tag = "tickets", params(("id" = i64, Path)), request_body = CloseRequest,
    responses((status = 200, body = TicketDetail), (status = 409, body = crate::error::Problem, description = "verification_failed while the check fails")),
    security(("bearer" = [])))]
pub async fn close(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TicketDetail>> {
    not_viewer(&p)?;
    // the body is optional: only an override needs one
    let req: CloseRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CloseRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(ErrorCode::InvalidJson, format!("not a close request: {e}"))
        })?
    };
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| close_ticket(s, &t, id, &p, &req)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/ticket-rules", tag = "tickets", responses((status = 200, body = TicketRules)), security(("bearer" = [])))]
pub async fn get_rules(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<TicketRules>> {
    let t = p.0.tenant_id;
    Ok(Json(blocking(&st, move |s| rules(s, &t)).await?))
}

/// Replaces the rules; they apply from the next rescoring (within seconds of new events,
/// at most ten minutes).
#[utoipa::path(put, path = "/api/v1/ticket-rules", tag = "tickets", request_body = TicketRules,
    responses((status = 200, body = TicketRules), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem, description = "invalid_definition: a rule without an owner, or out of range")),
    security(("bearer" = [])))]
pub async fn put_rules(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<TicketRules>,
) -> ApiResult<Json<TicketRules>> {
    p.require_analyst()?;
    body.validate()
        .map_err(|e| ApiError::new(ErrorCode::InvalidDefinition, e))?;
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    let def = serde_json::to_string(&body)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    st.store
        .run(move |s| s.save_ticket_rules(&t, &def, &actor))
        .await?;
    Ok(Json(body))
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/ticket", tag = "tickets", params(("id" = i64, Path)), request_body = FromAlert,
    responses((status = 201, body = TicketView), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn from_alert(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<FromAlert>,
) -> ApiResult<(StatusCode, Json<TicketView>)> {
    not_viewer(&p)?;
    let value = st.equity.peek(&p.tenant_id);
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    let row = blocking(&st, move |s| {
        ticket_from_alert(s, &t, id, &body, &actor, value.as_deref())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}
