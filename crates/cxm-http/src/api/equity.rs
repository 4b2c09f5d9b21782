//! The customer equity API: the value model's settings, tiers, cohorts and accounts.

use cxm_app::equity::{
    current, save_settings, settings, value_of, EquityReport, EquitySettings, ValueView,
};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/equity", get(get_equity))
        .route(
            "/api/v1/equity/settings",
            get(get_settings).put(put_settings),
        )
        .route("/api/v1/customers/{id}/value", get(customer_value))
}

/// The customer value model's settings.
#[utoipa::path(get, path = "/api/v1/equity/settings", tag = "equity",
    responses((status = 200, body = EquitySettings)), security(("bearer" = [])))]
pub async fn get_settings(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<EquitySettings>> {
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| settings(s, &t)).await?))
}

/// Changes which events are purchases, the model, horizon, discount rate and tiers.
#[utoipa::path(put, path = "/api/v1/equity/settings", tag = "equity", request_body = EquitySettings,
    responses((status = 200, body = EquitySettings), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn put_settings(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<EquitySettings>,
) -> ApiResult<Json<EquitySettings>> {
    Ok(Json(save_settings(&st.app, &p, body).await?))
}

/// Customer equity: the models, CLV, tiers, accounts, cohorts and NRR, revenue at risk,
/// expansion signals and the value of service contacts.
#[utoipa::path(get, path = "/api/v1/equity", tag = "equity",
    responses((status = 200, body = EquityReport)), security(("bearer" = [])))]
pub async fn get_equity(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<EquityReport>> {
    Ok(Json(current(&st.app, &p.tenant_id).await?.report.clone()))
}

/// One customer's predicted value, tier and the reason for it.
#[utoipa::path(get, path = "/api/v1/customers/{id}/value", tag = "equity", params(("id" = String, Path)),
    responses((status = 200, body = ValueView), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn customer_value(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ValueView>> {
    let t = p.tenant_id.clone();
    let idc = id.clone();
    let profile = blocking(&st, move |s| cxm_app::privacy::resolve(s, &t, &idc)).await?;
    let c = current(&st.app, &p.tenant_id).await?;
    if !c.report.fitted {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            c.report
                .message
                .clone()
                .unwrap_or_else(|| "no value model yet".into()),
        ));
    }
    value_of(&c, &profile.id).map(Json).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("customer {id:?} has no purchases, so no predicted value"),
        )
    })
}
