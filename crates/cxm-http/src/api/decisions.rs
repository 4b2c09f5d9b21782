//! The decision API: agents ask before acting (who may ask is learnt here), the review
//! queue, outcomes and redemption.

use cxm_app::decisions::{
    check_name, decide, find_for, require_operator, review_queue, settle, AskRequest,
    DecisionAnswer, DecisionFilter, DecisionList, OutcomeReport, Redeem, Redeemed, ReviewQueue,
    ReviewRequest, DECISION_TTL_MS,
};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_store::{KeyKind, NewDecision, StoredDecision};
use serde_json::Value;

use crate::api::ApiJson;
use crate::api::ApiQuery;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/decisions", post(ask).get(list))
        .route("/api/v1/decisions/{id}", get(get_one))
        .route("/api/v1/decisions/{id}/review", post(review))
        .route("/api/v1/decisions/{id}/outcome", post(report_outcome))
        .route("/api/v1/decisions/{id}/redeem", post(redeem))
        .route("/api/v1/reviews", get(queue))
}

/// The caller as the HTTP layer learns it; the use cases take the inner value.
pub struct Asker(pub cxm_app::decisions::Asker);

impl std::ops::Deref for Asker {
    type Target = cxm_app::decisions::Asker;
    fn deref(&self) -> &cxm_app::decisions::Asker {
        &self.0
    }
}

impl FromRequestParts<Arc<AppState>> for Asker {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = crate::auth::header_credential(&parts.headers) {
            let key = state.keys.lookup(state, &token).await?;
            return match key.kind {
                KeyKind::Agent => Ok(Asker(cxm_app::decisions::Asker {
                    tenant_id: key.tenant_id,
                    actor: format!("agent:{}", key.name),
                    bound_agent: Some(key.name),
                })),
                KeyKind::Secret => Ok(Asker(cxm_app::decisions::Asker {
                    tenant_id: key.tenant_id,
                    bound_agent: None,
                    actor: format!("key:{}", key.id),
                })),
                KeyKind::Write => Err(ApiError::new(
                    ErrorCode::WrongKeyKind,
                    "write keys only ingest; agents ask with their agent key or a secret key",
                )),
            };
        }
        let p = Principal::from_request_parts(parts, state).await?;
        require_operator(&p)?;
        Ok(Asker(cxm_app::decisions::Asker {
            tenant_id: p.0.tenant_id,
            bound_agent: None,
            actor: p.0.actor,
        }))
    }
}

/// Asks whether an agent may act. The answer is logged (and chained) before it is sent.
#[utoipa::path(post, path = "/api/v1/decisions", tag = "agents", request_body = AskRequest,
    responses((status = 200, body = DecisionAnswer), (status = 422, body = crate::error::Problem, description = "unknown_agent or unknown_action"),
        (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn ask(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    ApiJson(req): ApiJson<AskRequest>,
) -> ApiResult<Json<DecisionAnswer>> {
    let agent_name = match (&caller.bound_agent, &req.agent) {
        (Some(bound), Some(named)) if bound != named => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this key belongs to agent {bound:?}; it cannot ask for {named:?}"),
            ))
        }
        (Some(bound), _) => bound.clone(),
        (None, Some(named)) => named.clone(),
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "name the agent that will act (agent), or ask with that agent's key",
            ))
        }
    };
    check_name("customer", &req.customer)?;
    check_name("action", &req.action)?;
    if let Some(r) = &req.resource {
        check_name("resource", r)?;
    }
    let (version, policies, exposure) =
        cxm_app::policies::policies_for(&st, &caller.tenant_id, &req.customer).await?;
    let tenant = caller.tenant_id.clone();
    if let Some(x) = exposure {
        // the first exposure of this customer to the policy rollout, for its results
        let t = tenant.clone();
        blocking(&st, move |s| {
            let mut x = x;
            if let Some(id) = cxm_domain::identity::Identifier::parse_typed(&x.customer) {
                x.profile_id = s.profile_for(&t, &id)?;
            }
            s.expose(&t, &x)?;
            Ok(())
        })
        .await?;
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let st2 = st.clone();
    let (record, review_due) = {
        let (tenant, req) = (tenant.clone(), req.clone());
        blocking(&st, move |s| {
            decide(
                s,
                &st2.analyzer,
                &tenant,
                &agent_name,
                &req,
                &policies,
                version,
                now_ms,
            )
        })
        .await?
    };
    let used = record.used.clone();
    st.decision_log
        .record(NewDecision {
            tenant_id: tenant,
            actor: caller.0.actor,
            record: record.clone(),
            review_due_at_ms: review_due,
        })
        .await?;
    st.metrics
        .decisions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Json(DecisionAnswer {
        decision_id: record.id,
        decision: record.outcome,
        level: record.level,
        policy_ids: record.policy_ids,
        reasons: record.reasons,
        policy_version: version,
        review_due_at_ms: review_due,
        used,
    }))
}

/// The decision log, newest first.
#[utoipa::path(get, path = "/api/v1/decisions", tag = "agents", params(DecisionFilter),
    responses((status = 200, body = DecisionList)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(f): ApiQuery<DecisionFilter>,
) -> ApiResult<Json<DecisionList>> {
    let q = f.query()?;
    let t = p.tenant_id.clone();
    let decisions = blocking(&st, move |s| Ok(s.decisions(&t, &q)?)).await?;
    Ok(Json(DecisionList { decisions }))
}

/// One decision as logged: the ask, what cxm added, the policies that decided, the review.
#[utoipa::path(get, path = "/api/v1/decisions/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = StoredDecision), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredDecision>> {
    let d = find_for(&st, &caller, &id).await?;
    Ok(Json(d))
}

/// Approves or reverses a decision waiting in the review queue; chained on the audit log.
#[utoipa::path(post, path = "/api/v1/decisions/{id}/review", tag = "agents", params(("id" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = StoredDecision), (status = 409, body = crate::error::Problem, description = "not_pending"),
        (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn review(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<Json<StoredDecision>> {
    require_operator(&p)?;
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| settle(s, &t, &id, &p.actor, &req)).await?,
    ))
}

/// What waits for a human: escalations first, then reviews by due time.
#[utoipa::path(get, path = "/api/v1/reviews", tag = "agents",
    responses((status = 200, body = ReviewQueue)), security(("bearer" = [])))]
pub async fn queue(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<ReviewQueue>> {
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(
        blocking(&st, move |s| review_queue(s, &t, now)).await?,
    ))
}

/// The agent says how it went; resolution counts it once the repeat-contact window closes.
#[utoipa::path(post, path = "/api/v1/decisions/{id}/outcome", tag = "agents", params(("id" = String, Path)), request_body = OutcomeReport,
    responses((status = 200, body = StoredDecision), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn report_outcome(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<OutcomeReport>,
) -> ApiResult<Json<StoredDecision>> {
    if req
        .intent
        .as_ref()
        .is_some_and(|i| i.is_empty() || i.len() > 100)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "intent is 1 to 100 bytes",
        ));
    }
    find_for(&st, &caller, &id).await?;
    let t = caller.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let d = blocking(&st, move |s| {
        Ok(s.report_outcome(
            &t,
            &id,
            req.resolved,
            req.intent.as_deref(),
            &caller.actor,
            now,
        )?)
    })
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the decision vanished"))?;
    Ok(Json(d))
}

/// For the system that carries the action out (the refund service, say): checks that the
/// decision allows this very action for this customer (and no more money), then marks it
/// used. Forged ids are 404; a second use is 409 `decision_used`.
#[utoipa::path(post, path = "/api/v1/decisions/{id}/redeem", tag = "agents", params(("id" = String, Path)), request_body = Redeem,
    responses((status = 200, body = Redeemed), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "decision_used, decision_mismatch or decision_not_allowed")),
    security(("bearer" = [])))]
pub async fn redeem(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Redeem>,
) -> ApiResult<Json<Redeemed>> {
    let d = find_for(&st, &caller, &id).await?;
    let r = &d.record;
    let now = chrono::Utc::now().timestamp_millis();
    let allowed = match r.outcome.as_str() {
        "allow" => true,
        "review" => d.review_status.as_deref() != Some("reversed"),
        "escalate" => d.review_status.as_deref() == Some("approved"),
        _ => false,
    };
    if !allowed {
        return Err(ApiError::new(
            ErrorCode::DecisionNotAllowed,
            format!(
                "decision {id} was {} ({}){}: nothing may be done on it",
                r.outcome,
                r.level,
                d.review_status
                    .as_deref()
                    .map(|s| format!(", review {s}"))
                    .unwrap_or_default()
            ),
        ));
    }
    if now - r.at_ms > DECISION_TTL_MS {
        return Err(ApiError::new(
            ErrorCode::DecisionNotAllowed,
            format!("decision {id} is older than 24 hours; ask again"),
        ));
    }
    if req.action != r.action || req.customer != r.customer {
        return Err(ApiError::new(
            ErrorCode::DecisionMismatch,
            format!(
                "decision {id} covers {} for {}, not {} for {}",
                r.action, r.customer, req.action, req.customer
            ),
        ));
    }
    if let Some(a) = req.amount {
        let decided = r.facts.get("amount_cents").and_then(Value::as_i64);
        let asked = (a * 100.0).round() as i64;
        if !a.is_finite() || decided.is_none_or(|d| asked > d) {
            return Err(ApiError::new(
                ErrorCode::DecisionMismatch,
                format!(
                    "decision {id} covers {}, not {a:.2}",
                    decided
                        .map(|d| format!("{:.2}", d as f64 / 100.0))
                        .unwrap_or_else(|| "no amount".into())
                ),
            ));
        }
    }
    let t = caller.tenant_id.clone();
    let (i2, actor) = (id.clone(), caller.actor.clone());
    if !blocking(&st, move |s| Ok(s.redeem_decision(&t, &i2, &actor, now)?)).await? {
        return Err(ApiError::new(
            ErrorCode::DecisionUsed,
            format!("decision {id} was already used; ask again for a new action"),
        ));
    }
    Ok(Json(Redeemed {
        decision_id: id,
        redeemed_at_ms: now,
    }))
}
