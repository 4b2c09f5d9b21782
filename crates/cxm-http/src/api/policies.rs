//! The agent policies API: versions, activation, the replay test and canary rollouts.

use cxm_app::policies::{
    policy_error, policy_view, replay, save_policies, PolicyTest, PolicyView, SavePolicies,
    SavedPolicies, TestPolicies,
};
use cxm_app::AppError;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_policy::Policies;

use crate::api::ApiJson;
use crate::api::ApiPath;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/policies", get(get_policies).put(put_policies))
        .route("/api/v1/policies/test", post(test_policies))
        .route("/api/v1/policies/{version}/activate", post(activate))
}

/// The active policies as an authority matrix, with the version history.
#[utoipa::path(get, path = "/api/v1/policies", tag = "agents",
    responses((status = 200, body = PolicyView)), security(("bearer" = [])))]
pub async fn get_policies(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<PolicyView>> {
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| policy_view(s, &t)).await?))
}

/// Saves a new version of the policies (422 `invalid_policy` naming each problem).
#[utoipa::path(put, path = "/api/v1/policies", tag = "agents", request_body = SavePolicies,
    responses((status = 200, body = SavedPolicies), (status = 422, body = crate::error::Problem, description = "invalid_policy")),
    security(("bearer" = [])))]
pub async fn put_policies(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(req): ApiJson<SavePolicies>,
) -> ApiResult<Json<SavedPolicies>> {
    p.require_admin()?;
    let tenant = p.tenant_id.clone();
    let t = tenant.clone();
    let saved = blocking(&st, move |s| save_policies(s, &t, &p.actor, &req)).await?;
    st.policies.invalidate(&tenant);
    Ok(Json(saved))
}

/// Makes a saved version the active one.
#[utoipa::path(post, path = "/api/v1/policies/{version}/activate", tag = "agents", params(("version" = i64, Path)),
    responses((status = 200, body = SavedPolicies), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn activate(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(version): ApiPath<i64>,
) -> ApiResult<Json<SavedPolicies>> {
    p.require_admin()?;
    let tenant = p.tenant_id.clone();
    let t = tenant.clone();
    let saved = blocking(&st, move |s| {
        let Some(row) = s
            .policy_sets(&t)?
            .into_iter()
            .find(|r| r.version == version)
        else {
            return Err(AppError::new(
                ErrorCode::NotFound,
                format!("no policy version {version}"),
            ));
        };
        let compiled = Policies::compile(&row.text).map_err(policy_error)?;
        s.activate_policy_set(&t, version, &p.actor)?;
        Ok(SavedPolicies {
            version,
            active: true,
            warnings: compiled.lint(),
        })
    })
    .await?;
    st.policies.invalidate(&tenant);
    Ok(Json(saved))
}

/// Which recorded decisions a candidate policy set would change, before it is activated.
#[utoipa::path(post, path = "/api/v1/policies/test", tag = "agents", request_body = TestPolicies,
    responses((status = 200, body = PolicyTest), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn test_policies(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(req): ApiJson<TestPolicies>,
) -> ApiResult<Json<PolicyTest>> {
    let limit = req.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "limit must be between 1 and 10000",
        ));
    }
    let candidate = Policies::compile(&req.text).map_err(policy_error)?;
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| replay(s, &t, &candidate, limit)).await?,
    ))
}
