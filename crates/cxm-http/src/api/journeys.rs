//! The journeys API: definitions, metrics, reviews and synthetic check runs.

use cxm_app::journeys::{
    definition_of, find, mark_reviewed, metrics, metrics_in, save, summaries, summaries_in,
    CheckReport, CheckRuns, JourneyDetail, JourneyList, JourneyMetrics, Saved, WindowQuery,
};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use cxm_domain::journey::JourneyDefinition;

use crate::api::{ApiJson, ApiQuery};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/journeys", get(list).post(create))
        .route("/api/v1/journeys/{id}", get(get_one).put(replace))
        .route("/api/v1/journeys/{id}/metrics", get(get_metrics))
        .route("/api/v1/journeys/{id}/review", post(reviewed))
        .route(
            "/api/v1/journey-checks",
            get(list_checks).post(record_check),
        )
}

/// Every journey with its JPS and flags; with `from`/`to`, the JPS of that window.
#[utoipa::path(get, path = "/api/v1/journeys", tag = "journeys", params(WindowQuery),
    responses((status = 200, body = JourneyList), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<Json<JourneyList>> {
    let window = q.window()?;
    let t = p.0.tenant_id;
    let journeys = blocking(&st, move |s| match window {
        Some(w) => summaries_in(s, &t, w, Utc::now()),
        None => summaries(s, &t, Utc::now()),
    })
    .await?;
    Ok(Json(JourneyList { journeys }))
}

/// Creates a journey, or a new version of it (same `id`); an identical definition saves nothing.
#[utoipa::path(post, path = "/api/v1/journeys", tag = "journeys", request_body = JourneyDefinition,
    responses((status = 201, body = Saved), (status = 200, body = Saved, description = "unchanged"),
        (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(def): ApiJson<JourneyDefinition>,
) -> ApiResult<(StatusCode, Json<Saved>)> {
    p.require_analyst()?;
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    let saved = blocking(&st, move |s| save(s, &t, &def, &actor)).await?;
    let code = if saved.unchanged {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(saved)))
}

/// Saves a new version of the journey named in the path.
#[utoipa::path(put, path = "/api/v1/journeys/{id}", tag = "journeys", params(("id" = String, Path)),
    request_body = JourneyDefinition,
    responses((status = 201, body = Saved), (status = 200, body = Saved, description = "unchanged"),
        (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn replace(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(mut def): ApiJson<JourneyDefinition>,
) -> ApiResult<(StatusCode, Json<Saved>)> {
    if def.id.as_ref().is_some_and(|d| *d != id) {
        return Err(ApiError::new(
            ErrorCode::InvalidDefinition,
            format!(
                "the body's id {:?} differs from the path's {id:?}",
                def.id.unwrap_or_default()
            ),
        ));
    }
    def.id = Some(id);
    create(State(st), p, ApiJson(def)).await
}

#[utoipa::path(get, path = "/api/v1/journeys/{id}", tag = "journeys", params(("id" = String, Path)),
    responses((status = 200, body = JourneyDetail), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<JourneyDetail>> {
    let j = find(&st, &p.tenant_id, &id).await?;
    let t = p.tenant_id.clone();
    let history = st.store.run(move |s| s.journey_history(&t, &id)).await?;
    Ok(Json(JourneyDetail {
        definition: definition_of(&j)?,
        journey_id: j.journey_id,
        version: j.version,
        history,
    }))
}

/// Stages with entries, conversion, drop-off, loops, time in stage, FCR and feedback, and
/// the JPS with its terms: all time from the tallies, or with `from`/`to` the visits that
/// began in that window and the answers collected in it (one walk of the log).
#[utoipa::path(get, path = "/api/v1/journeys/{id}/metrics", tag = "journeys", params(("id" = String, Path), WindowQuery),
    responses((status = 200, body = JourneyMetrics), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_metrics(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<Json<JourneyMetrics>> {
    let window = q.window()?;
    let j = find(&st, &p.tenant_id, &id).await?;
    let t = p.0.tenant_id;
    Ok(Json(
        blocking(&st, move |s| match window {
            Some(w) => Ok(metrics_in(s, &t, std::slice::from_ref(&j), w, Utc::now())?.remove(0)),
            None => metrics(s, &t, &j, Utc::now()),
        })
        .await?,
    ))
}

/// Records that the journey was reviewed: the next review moves `every_days` from today.
#[utoipa::path(post, path = "/api/v1/journeys/{id}/review", tag = "journeys", params(("id" = String, Path)),
    responses((status = 201, body = Saved), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn reviewed(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Saved>)> {
    p.require_analyst()?;
    let j = find(&st, &p.tenant_id, &id).await?;
    let saved = blocking(&st, move |s| {
        mark_reviewed(s, &p.tenant_id, &j, &p.actor, Utc::now())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Records a run of a synthetic journey check (the runner is `cxm journey check`).
#[utoipa::path(post, path = "/api/v1/journey-checks", tag = "journeys", request_body = CheckReport,
    responses((status = 201, body = cxm_store::JourneyCheckRun), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn record_check(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<CheckReport>,
) -> ApiResult<(StatusCode, Json<cxm_store::JourneyCheckRun>)> {
    p.require_analyst()?;
    let name = body.name.trim().to_string();
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "name must be 1 to 100 letters, digits, - or _",
        ));
    }
    if body.detail.to_string().len() > 64 * 1024 {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "detail is limited to 64 KB",
        ));
    }
    let t = p.0.tenant_id;
    let run = st
        .store
        .run(move |s| {
            let id = s.record_journey_check(&t, &name, body.passed, &body.detail)?;
            Ok(s.journey_check_runs(&t, Some(&name), 1)?
                .into_iter()
                .find(|r| r.id == id))
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                "the recorded run could not be read back",
            )
        })?;
    Ok((StatusCode::CREATED, Json(run)))
}

#[utoipa::path(get, path = "/api/v1/journey-checks", tag = "journeys", responses((status = 200, body = CheckRuns)), security(("bearer" = [])))]
pub async fn list_checks(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<CheckRuns>> {
    let t = p.0.tenant_id;
    let runs = st
        .store
        .run(move |s| s.journey_check_runs(&t, None, 100))
        .await?;
    Ok(Json(CheckRuns { runs }))
}
