//! The experiments API: definitions, status moves, assignment and exposures, results,
//! rollouts and the A/B and sample-size calculators.

use cxm_app::experiments::{
    assign_unit, change_rollout, change_status, check_target, compute_results, create_experiment,
    list_rows, load, parse_definition, record, stats_error, AbInput, AssignRequest, Assignment,
    ExperimentResults, ExperimentRow, ExperimentView, RolloutChange, SizeQuery, StatusChange,
};
use cxm_app::AppError;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_analytics::abtest::{self, Arm};
use cxm_domain::experiment::{ExperimentDef, Status};
use serde_json::{json, Value};

use crate::api::ApiJson;
use crate::api::ApiQuery;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/experiments", get(list).post(create))
        .route("/api/v1/experiments/{id}", get(get_one).put(replace))
        .route("/api/v1/experiments/{id}/status", post(set_status))
        .route("/api/v1/experiments/{id}/rollout", post(set_rollout))
        .route("/api/v1/experiments/{id}/assign", post(assign))
        .route("/api/v1/experiments/{id}/results", get(results))
        .route("/api/v1/stats/ab", post(ab_calculator))
        .route("/api/v1/stats/sample-size", get(sample_size))
}

/// Creates an experiment as a draft.
#[utoipa::path(post, path = "/api/v1/experiments", tag = "experiments", request_body = ExperimentDef,
    responses((status = 201, body = ExperimentView), (status = 422, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<ExperimentView>)> {
    p.require_analyst()?;
    let t = p.tenant_id.clone();
    let v = blocking(&st, move |s| create_experiment(s, &t, &p.actor, body)).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Changes a draft (a running experiment's arms and metric are fixed: start a new one).
#[utoipa::path(put, path = "/api/v1/experiments/{id}", tag = "experiments", request_body = ExperimentDef,
    params(("id" = String, Path)),
    responses((status = 200, body = ExperimentView), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn replace(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<ExperimentView>> {
    p.require_analyst()?;
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| {
            let mut v = load(s, &t, &id)?;
            let d = parse_definition(body)?;
            check_target(s, &t, &d)?;
            if d.id != id {
                return Err(AppError::new(
                    ErrorCode::InvalidParameter,
                    format!("the body's id {:?} is not {id:?}", d.id),
                ));
            }
            if v.status != Status::Draft {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!(
                        "experiment {id:?} is {}; only drafts change (results would mix two designs)",
                        v.status.as_str()
                    ),
                ));
            }
            v.definition = d;
            record(s, &t, &mut v, &p.actor, "edited", json!({}))?;
            Ok(v)
        })
        .await?,
    ))
}

/// Experiments, newest first, with their exposure counts.
#[utoipa::path(get, path = "/api/v1/experiments", tag = "experiments",
    responses((status = 200, body = [ExperimentRow])), security(("bearer" = [])))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<Vec<ExperimentRow>>> {
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| list_rows(s, &t)).await?))
}

/// One experiment with its history.
#[utoipa::path(get, path = "/api/v1/experiments/{id}", tag = "experiments", params(("id" = String, Path)),
    responses((status = 200, body = ExperimentView), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ExperimentView>> {
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| load(s, &t, &id)).await?))
}

/// Starts, pauses, ships (with the winning arm) or rolls back an experiment.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/status", tag = "experiments", request_body = StatusChange,
    params(("id" = String, Path)),
    responses((status = 200, body = ExperimentView), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn set_status(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(c): ApiJson<StatusChange>,
) -> ApiResult<Json<ExperimentView>> {
    p.require_analyst()?;
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| change_status(s, &t, &p.actor, &id, &c)).await?,
    ))
}

/// Moves a staged rollout (canary) to a new percentage; every step is logged.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/rollout", tag = "experiments", request_body = RolloutChange,
    params(("id" = String, Path)),
    responses((status = 200, body = ExperimentView), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn set_rollout(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(c): ApiJson<RolloutChange>,
) -> ApiResult<Json<ExperimentView>> {
    p.require_analyst()?;
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| change_rollout(s, &t, &p.actor, &id, &c)).await?,
    ))
}

/// The arm a customer (or their account) sees; records their first exposure.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/assign", tag = "experiments", request_body = AssignRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = Assignment), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn assign(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AssignRequest>,
) -> ApiResult<Json<Assignment>> {
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(
        blocking(&st, move |s| assign_unit(s, &t, &id, &r, now)).await?,
    ))
}

/// Results from the event log; a breached guardrail rolls the rollout back here.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/results", tag = "experiments", params(("id" = String, Path)),
    responses((status = 200, body = ExperimentResults), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn results(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ExperimentResults>> {
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(
        blocking(&st, move |s| compute_results(s, &t, &id, now)).await?,
    ))
}

/// Compares two arms given their counts: the calculator behind `cxm stats ab`.
#[utoipa::path(post, path = "/api/v1/stats/ab", tag = "experiments", request_body = AbInput,
    responses((status = 200, body = Object), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn ab_calculator(_p: Principal, ApiJson(r): ApiJson<AbInput>) -> ApiResult<Json<Value>> {
    let a = Arm::conversions(r.control.exposures, r.control.conversions).map_err(stats_error)?;
    let b =
        Arm::conversions(r.treatment.exposures, r.treatment.conversions).map_err(stats_error)?;
    let s = abtest::summarize(&a, &b, r.alpha, 5000.0).map_err(stats_error)?;
    let srm = abtest::srm_p_value(&[a.n, b.n], &[1.0, 1.0]).map_err(stats_error)?;
    let mut v =
        serde_json::to_value(&s).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    v["srm_p_value"] = json!(srm);
    Ok(Json(v))
}

/// Units per arm needed to detect a relative lift on a conversion rate.
#[utoipa::path(get, path = "/api/v1/stats/sample-size", tag = "experiments", params(SizeQuery),
    responses((status = 200, body = Object), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn sample_size(
    _p: Principal,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> ApiResult<Json<Value>> {
    let (alpha, power) = (q.alpha.unwrap_or(0.05), q.power.unwrap_or(0.8));
    let n = abtest::sample_size(q.baseline, q.mde, alpha, power).map_err(stats_error)?;
    Ok(Json(json!({
        "baseline": q.baseline, "mde": q.mde, "alpha": alpha, "power": power,
        "n_per_arm": n, "units_per_arm": n.ceil() as u64,
    })))
}
