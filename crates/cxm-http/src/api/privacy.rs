//! The privacy API: erasure, the access export, consent and retention.

use cxm_app::privacy::{
    consent_view, erase_customer, export_customer, resolve, set_retention, ConsentView, Erased,
    Export, NewConsent, Retention,
};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_domain::consent::{self, ConsentRecord};

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/customers/{id}/erase", post(erase))
        .route("/api/v1/customers/{id}/export", get(export))
        .route(
            "/api/v1/customers/{id}/consent",
            get(get_consent).post(add_consent),
        )
        .route("/api/v1/retention", get(get_retention).put(put_retention))
        .route("/api/v1/retention/purge", post(purge_now))
}

/// Erases a customer everywhere: events, identifiers, answers and the theme quotes taken from
/// them, survey links, journeys, decisions (their audit entries keep only their hashes),
/// signed-message records, step-ups, webhook deliveries and ticket notes naming them.
#[utoipa::path(post, path = "/api/v1/customers/{id}/erase", tag = "customers", params(("id" = String, Path, description = "profile id or typed identifier")),
    responses((status = 200, body = Erased), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn erase(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Erased>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| erase_customer(s, &t, &id, &p.actor)).await?,
    ))
}

/// Everything cxm holds about a customer (a data subject access request).
#[utoipa::path(get, path = "/api/v1/customers/{id}/export", tag = "customers", params(("id" = String, Path, description = "profile id or typed identifier")),
    responses((status = 200, body = Export), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn export(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Export>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| export_customer(s, &t, &id)).await?,
    ))
}

/// The customer's consent: per purpose now, and the full history.
#[utoipa::path(get, path = "/api/v1/customers/{id}/consent", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = ConsentView), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_consent(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ConsentView>> {
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| {
            let profile = resolve(s, &t, &id)?;
            consent_view(s, &t, &profile)
        })
        .await?,
    ))
}

/// Records what the customer said (granted, denied or revoked) for a purpose and channel;
/// surveys, close-the-loop messages and marketing honour it from then on.
#[utoipa::path(post, path = "/api/v1/customers/{id}/consent", tag = "customers", params(("id" = String, Path)), request_body = NewConsent,
    responses((status = 201, body = ConsentView), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn add_consent(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewConsent>,
) -> ApiResult<(StatusCode, Json<ConsentView>)> {
    if p.role == cxm_store::Role::Viewer {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the viewer role cannot record consent",
        ));
    }
    if !consent::PURPOSES.contains(&req.purpose.as_str()) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("purpose must be one of {}", consent::PURPOSES.join(", ")),
        ));
    }
    let channel = req.channel.clone().unwrap_or_else(|| "*".into());
    if !consent::CHANNELS.contains(&channel.as_str()) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("channel must be one of {}", consent::CHANNELS.join(", ")),
        ));
    }
    let source = req.source.clone().unwrap_or_else(|| "api".into());
    if source.is_empty() || source.len() > 100 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "source is 1 to 100 bytes",
        ));
    }
    let t = p.tenant_id.clone();
    let view = blocking(&st, move |s| {
        let profile = resolve(s, &t, &id)?;
        let r = ConsentRecord {
            purpose: req.purpose,
            channel,
            status: req.status,
            source,
            actor: p.actor.clone(),
            at_ms: chrono::Utc::now().timestamp_millis(),
        };
        s.add_consent(&t, &profile.id, &r)?;
        consent_view(s, &t, &profile)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// How long each class of data is kept.
#[utoipa::path(get, path = "/api/v1/retention", tag = "customers",
    responses((status = 200, body = Retention)), security(("bearer" = [])))]
pub async fn get_retention(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<Retention>> {
    let t = p.tenant_id.clone();
    let periods = blocking(&st, move |s| {
        Ok(cxm_store::effective_retention(s.retention(&t)?))
    })
    .await?;
    Ok(Json(Retention {
        periods,
        classes: cxm_store::DATA_CLASSES.to_vec(),
    }))
}

#[utoipa::path(put, path = "/api/v1/retention", tag = "customers", request_body = Object,
    responses((status = 200, body = Retention), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn put_retention(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(periods): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<Retention>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    let periods = blocking(&st, move |s| set_retention(s, &t, &p.actor, &periods)).await?;
    Ok(Json(Retention {
        periods,
        classes: cxm_store::DATA_CLASSES.to_vec(),
    }))
}

/// Purges what is past its period now (the server also does it every hour).
#[utoipa::path(post, path = "/api/v1/retention/purge", tag = "customers",
    responses((status = 200, body = cxm_store::Purged)), security(("bearer" = [])))]
pub async fn purge_now(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<cxm_store::Purged>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(blocking(&st, move |s| Ok(s.purge(&t, now)?)).await?))
}
