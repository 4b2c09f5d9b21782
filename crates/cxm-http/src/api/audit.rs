//! The audit API: verifying the tenant's chain end to end.

use cxm_app::audit::{verify_chain, AuditReport};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/audit/verify", get(verify_audit))
}

/// Verifies the tenant's audit chain (decisions, reviews, policy and admin actions).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "agents",
    responses((status = 200, body = AuditReport)), security(("bearer" = [])))]
pub async fn verify_audit(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<AuditReport>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| verify_chain(s, &t)).await?))
}
