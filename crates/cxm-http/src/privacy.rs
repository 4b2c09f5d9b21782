//! The customer's rights over HTTP: erasure (everything about a person removed, a tombstone
//! and an audit entry kept) and access (everything cxm holds about them, in one document).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_store::{
    DecisionQuery, Profile, RecentAnswer, Store, StoredDecision, StoredEvent, TimelinePage,
};
use serde::Serialize;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::voc::blocking;
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/customers/{id}/erase", post(erase))
        .route("/api/v1/customers/{id}/export", get(export))
}

/// The profile an id names: a profile id, or a typed identifier (`email:a@b.com`).
pub fn resolve(store: &dyn Store, tenant: &str, id: &str) -> ApiResult<Profile> {
    let by_identifier = cxm_domain::identity::Identifier::parse_typed(id)
        .map(|i| store.profile_for(tenant, &i))
        .transpose()?
        .flatten();
    let pid = by_identifier.unwrap_or_else(|| id.to_string());
    store.profile(tenant, &pid)?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no customer {id:?} in this tenant"),
        )
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// The tombstone: it names no one.
    pub erasure_id: String,
    /// Rows removed or redacted, by kind.
    pub removed: BTreeMap<String, u64>,
}

pub fn erase_customer(store: &dyn Store, tenant: &str, id: &str, actor: &str) -> ApiResult<Erased> {
    let profile = resolve(store, tenant, id)?;
    let erasure_id = format!("era_{}", uuid::Uuid::now_v7().simple());
    let removed = store
        .erase_customer(tenant, &profile.id, &erasure_id, actor)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no customer {id:?} in this tenant"),
            )
        })?;
    tracing::info!(tenant, erasure = %erasure_id, actor, "customer erased");
    Ok(Erased {
        erasure_id,
        removed,
    })
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub profile: Profile,
    /// Every event, newest first.
    pub events: Vec<StoredEvent>,
    pub answers: Vec<RecentAnswer>,
    pub decisions: Vec<StoredDecision>,
    pub exported_at: String,
}

const EXPORT_EVENTS: usize = 100_000;

pub fn export_customer(store: &dyn Store, tenant: &str, id: &str) -> ApiResult<Export> {
    let profile = resolve(store, tenant, id)?;
    let mut events = vec![];
    let mut before = None;
    loop {
        let page = store.timeline(
            tenant,
            &profile,
            &TimelinePage {
                before,
                limit: 1000,
            },
        )?;
        let Some(last) = page.last() else { break };
        before = Some((last.timestamp_ms, last.seq));
        let n = page.len();
        events.extend(page);
        if n < 1000 || events.len() >= EXPORT_EVENTS {
            break;
        }
    }
    let answers = store.recent_answers(tenant, &profile.id, 0, 100_000)?;
    let mut decisions = vec![];
    for i in &profile.identifiers {
        for name in [format!("{}:{}", i.kind, i.value), i.value.clone()] {
            decisions.extend(store.decisions(
                tenant,
                &DecisionQuery {
                    customer: Some(name),
                    limit: 10_000,
                    ..Default::default()
                },
            )?);
        }
    }
    decisions.sort_by_key(|d| (std::cmp::Reverse(d.record.at_ms), d.record.id.clone()));
    decisions.dedup_by(|a, b| a.record.id == b.record.id);
    Ok(Export {
        profile,
        events,
        answers,
        decisions,
        exported_at: chrono::Utc::now().to_rfc3339(),
    })
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
