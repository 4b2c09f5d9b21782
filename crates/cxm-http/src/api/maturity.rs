//! The maturity and ROI API: the assessment, its evidence and the ROI calculator.

use cxm_app::maturity::{
    roi_view, save_assessment, save_roi, view, AssessmentInput, MaturityView, RoiView,
};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use cxm_domain::maturity::RoiAssumptions;

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/maturity", get(get_maturity).put(put_assessment))
        .route("/api/v1/roi", get(get_roi).put(put_roi))
}

/// The readiness assessment, the evidence from the tenant's data, and where they differ.
#[utoipa::path(get, path = "/api/v1/maturity", tag = "maturity",
    responses((status = 200, body = MaturityView)), security(("bearer" = [])))]
pub async fn get_maturity(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<MaturityView>> {
    // the evidence reads the value model; make sure it is there
    let _ = cxm_app::equity::current(&st.app, &p.tenant_id).await?;
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let st2 = st.clone();
    Ok(Json(blocking(&st, move |s| view(&st2, s, &t, now)).await?))
}

/// Records the self-assessment (all five questions, 1 to 4 each).
#[utoipa::path(put, path = "/api/v1/maturity", tag = "maturity", request_body = AssessmentInput,
    responses((status = 200, body = MaturityView), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn put_assessment(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(input): ApiJson<AssessmentInput>,
) -> ApiResult<Json<MaturityView>> {
    Ok(Json(save_assessment(&st.app, &p, input).await?))
}

/// The ROI calculator: the stated assumptions and their result, and the same from the
/// tenant's own data where it can speak.
#[utoipa::path(get, path = "/api/v1/roi", tag = "maturity",
    responses((status = 200, body = RoiView)), security(("bearer" = [])))]
pub async fn get_roi(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<RoiView>> {
    let _ = cxm_app::equity::current(&st.app, &p.tenant_id).await?;
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let st2 = st.clone();
    Ok(Json(
        blocking(&st, move |s| roi_view(&st2, s, &t, now)).await?,
    ))
}

/// Saves the stated assumptions.
#[utoipa::path(put, path = "/api/v1/roi", tag = "maturity", request_body = RoiAssumptions,
    responses((status = 200, body = RoiView), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn put_roi(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(a): ApiJson<RoiAssumptions>,
) -> ApiResult<Json<RoiView>> {
    Ok(Json(save_roi(&st.app, &p, a).await?))
}
