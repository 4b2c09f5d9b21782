//! The home brief and the tenant's locale (currency and time zone).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use cxm_app::home::{brief, Brief};
use cxm_app::locale::{locale, save, Locale};

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/home", get(get_brief))
        .route("/api/v1/settings/locale", get(get_locale).put(put_locale))
}

/// What a CX leader decides on first: revenue at risk, growth potential, scores with their
/// n, open alerts, tickets near their SLA, the review queue and growing themes.
#[utoipa::path(get, path = "/api/v1/home", tag = "home",
    responses((status = 200, body = Brief)), security(("bearer" = [])))]
pub async fn get_brief(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<Brief>> {
    Ok(Json(brief(&st.app, &p).await?))
}

/// The tenant's currency and time zone, which every dashboard page formats with.
#[utoipa::path(get, path = "/api/v1/settings/locale", tag = "home",
    responses((status = 200, body = Locale)), security(("bearer" = [])))]
pub async fn get_locale(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<Locale>> {
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| locale(s, &t)).await?))
}

/// Sets the tenant's currency (ISO 4217) and time zone (IANA name); owners and admins only.
#[utoipa::path(put, path = "/api/v1/settings/locale", tag = "home", request_body = Locale,
    responses((status = 200, body = Locale), (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn put_locale(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<Locale>,
) -> ApiResult<Json<Locale>> {
    let l = save(&st.app, &p, body).await?;
    st.pages.forget_locale(&p.tenant_id);
    Ok(Json(l))
}
