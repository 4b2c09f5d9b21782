//! The webhook endpoints API and the delivery log (owners and admins).

use cxm_app::webhooks::{CreatedEndpoint, DeliveryLog, EndpointList, NewEndpoint, EVENT_TYPES};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use cxm_store::WebhookEndpoint;

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/webhooks", get(list).post(create))
        .route("/api/v1/webhooks/{id}", axum::routing::delete(remove))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewEndpoint,
    responses((status = 201, body = CreatedEndpoint), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem, description = "the url is not one cxm may call: not http(s), no host, or an address on a private network")),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    p.require_admin()?;
    let url = st
        .outbound
        .check_url(&body.url)
        .await
        .map_err(|why| ApiError::new(ErrorCode::RefusedUrl, why))?;
    if let Some(bad) = body
        .events
        .iter()
        .find(|e| !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("no event type {bad:?}; known: {}", EVENT_TYPES.join(", ")),
        ));
    }
    let key: [u8; 24] = rand::random();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let endpoint = WebhookEndpoint {
        id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
        url: url.to_string(),
        secret: secret.clone(),
        events: body.events,
        active: true,
        created_at_ms: Utc::now().timestamp_millis(),
    };
    let (t, e) = (p.0.tenant_id, endpoint.clone());
    st.store.run(move |s| s.add_webhook(&t, &e)).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint, secret }),
    ))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", responses((status = 200, body = EndpointList)), security(("bearer" = [])))]
pub async fn list(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<EndpointList>> {
    let t = p.0.tenant_id;
    let webhooks = st.store.run(move |s| s.webhooks(&t)).await?;
    Ok(Json(EndpointList {
        webhooks,
        event_types: EVENT_TYPES.iter().map(|s| s.to_string()).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn remove(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require_admin()?;
    let (t, i) = (p.0.tenant_id, id.clone());
    if st.store.run(move |s| s.remove_webhook(&t, &i)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no webhook {id}"),
        ))
    }
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = DeliveryLog), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn deliveries(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryLog>> {
    // what was sent to customers' channels is for the people who set the endpoints up
    p.require_admin()?;
    let (t, i) = (p.0.tenant_id, id.clone());
    let log = st
        .store
        .run(move |s| {
            if s.webhook(&t, &i)?.is_none() {
                return Ok(None);
            }
            s.webhook_deliveries(&t, &i, 500).map(Some)
        })
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no webhook {id}")))?;
    Ok(Json(DeliveryLog { deliveries: log }))
}
