//! The agents API: registering agents, issuing their keys, their KPIs and resolution rate.

use cxm_app::agents::{agent_stats, register, AgentKey, AgentList, AgentStats, NewAgent};
use cxm_app::AppError;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_store::{Agent, KeyKind};
use serde_json::json;

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;
use cxm_app::decisions::require_operator;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/agents", get(list_agents).post(save_agent))
        .route("/api/v1/agents/{name}", get(get_agent))
        .route("/api/v1/agents/{name}/keys", post(agent_key))
}

/// Registers an agent (or changes its kind, disclosure, or disables it).
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = NewAgent,
    responses((status = 201, body = Agent), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn save_agent(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(a): ApiJson<NewAgent>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    require_operator(&p)?;
    let t = p.tenant_id.clone();
    let agent = blocking(&st, move |s| register(s, &t, &p.actor, &a)).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Agents with their KPIs: outcomes, escalation rate by reason, review reversal rate.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = AgentList)), security(("bearer" = [])))]
pub async fn list_agents(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<AgentList>> {
    let t = p.tenant_id.clone();
    Ok(Json(AgentList {
        agents: blocking(&st, move |s| agent_stats(s, &t)).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/agents/{name}", tag = "agents", params(("name" = String, Path)),
    responses((status = 200, body = AgentStats), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_agent(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<AgentStats>> {
    let t = p.tenant_id.clone();
    blocking(&st, move |s| agent_stats(s, &t))
        .await?
        .into_iter()
        .find(|a| a.agent.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no agent {name:?}")))
}

/// A key bound to one agent: it can ask for that agent's decisions and nothing else.
#[utoipa::path(post, path = "/api/v1/agents/{name}/keys", tag = "agents", params(("name" = String, Path)),
    responses((status = 201, body = AgentKey), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn agent_key(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<AgentKey>)> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    let out = blocking(&st, move |s| {
        if s.agent(&t, &name)?.is_none() {
            return Err(AppError::new(
                ErrorCode::NotFound,
                format!("no agent {name:?}"),
            ));
        }
        let (plain, record) = cxm_app::auth::generate_key(&t, KeyKind::Agent, &name);
        s.insert_key(&record)?;
        s.append_audit(
            &t,
            &cxm_domain::audit::NewAuditEntry {
                actor: p.actor.clone(),
                kind: "agent.key_created".into(),
                subject: format!("agent:{name}"),
                body: json!({"key_id": record.id, "prefix": record.prefix}).to_string(),
            },
        )?;
        Ok(AgentKey { key: plain, record })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(out)))
}
