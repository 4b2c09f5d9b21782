//! Step-up verification before high-stakes actions: cxm sends a one-time code to a channel the
//! customer is already known by (never one the agent names), and a decision whose ask names
//! a verified step-up for the same customer sees `step_up_verified`; until then contact and
//! payment changes stay at review.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_domain::identity::{Identifier, IdentifierKind};
use cxm_store::{StepUp, Store};
use minijinja::context;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::ApiJson;
use crate::decisions::Asker;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::voc::blocking;
use crate::AppState;

/// How long a code may be used, and how many wrong codes end it.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
pub const ATTEMPTS: i64 = 5;
/// How long a verification counts for a decision after it was completed.
pub const VERIFIED_FOR_MS: i64 = 15 * 60 * 1000;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/step-ups", post(start))
        .route("/api/v1/step-ups/{id}/verify", post(verify))
        .route("/step-up/{tenant}/{id}", get(code_page).post(code_form))
}

/// Where the customer types the code themselves, so nobody in between sees it.
pub fn verify_path(tenant: &str, id: &str) -> String {
    format!("/step-up/{tenant}/{id}")
}

/// The outcome of one code attempt, whoever typed it.
enum Attempt {
    Verified(StepUp),
    Wrong(i64),
    Over,
    Unknown,
}

fn attempt(store: &dyn Store, tenant: &str, id: &str, code: &str) -> ApiResult<Attempt> {
    let now = chrono::Utc::now().timestamp_millis();
    let hash = code_hash(tenant, id, code);
    let Some(s) = store.attempt_step_up(tenant, id, &hash, now)? else {
        return Ok(Attempt::Unknown);
    };
    Ok(if s.verified_at_ms.is_some() {
        Attempt::Verified(s)
    } else if s.expires_at_ms <= now || s.attempts_left <= 0 {
        Attempt::Over
    } else {
        Attempt::Wrong(s.attempts_left)
    })
}

fn code_hash(tenant: &str, id: &str, code: &str) -> String {
    cxm_provenance::sha256_hex(&format!("{tenant}\n{id}\n{}", code.trim()))
}

fn mask(kind: &str, value: &str) -> String {
    match (kind, value.split_once('@')) {
        ("email", Some((user, domain))) => {
            format!("{}***@{domain}", user.chars().next().unwrap_or('*'))
        }
        _ => {
            let tail: String = value
                .chars()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("***{tail}")
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartStepUp {
    /// The customer, as a typed identifier or a user id.
    pub customer: String,
    /// `email` or `phone` (default: whichever the customer has, email first).
    pub channel: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StartedStepUp {
    pub step_up_id: String,
    pub channel: String,
    pub sent_to: String,
    pub expires_at_ms: i64,
}

pub fn begin(
    store: &dyn Store,
    tenant: &str,
    actor: &str,
    req: &StartStepUp,
) -> ApiResult<StartedStepUp> {
    let channel = req.channel.as_deref();
    if channel.is_some_and(|c| c != "email" && c != "phone") {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "channel must be email or phone",
        ));
    }
    let identifier = Identifier::parse_typed(&req.customer)
        .or_else(|| Identifier::parse(IdentifierKind::UserId, &req.customer));
    let profile = match identifier {
        Some(i) => match store.profile_for(tenant, &i)? {
            Some(pid) => store.profile(tenant, &pid)?,
            None => None,
        },
        None => None,
    };
    let Some(profile) = profile else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no customer {:?}; a code can only go to a customer cxm knows",
                req.customer
            ),
        ));
    };
    let wanted: Vec<&str> = match channel {
        Some(c) => vec![c],
        None => vec!["email", "phone"],
    };
    let Some(dest) = wanted
        .iter()
        .find_map(|k| profile.identifiers.iter().find(|i| i.kind == *k))
    else {
        return Err(ApiError::new(
            ErrorCode::NoKnownChannel,
            format!(
                "the customer has no {} on file to send a code to",
                wanted.join(" or ")
            ),
        ));
    };
    if !store
        .webhooks(tenant)?
        .iter()
        .any(|e| e.active && e.events.iter().any(|t| t == "step_up.code"))
    {
        return Err(ApiError::new(
            ErrorCode::NoKnownChannel,
            "no webhook endpoint takes step_up.code events: register one that delivers the codes (it must name the event)",
        ));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let id = format!("stp_{}", uuid::Uuid::now_v7().simple());
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
    let s = StepUp {
        id: id.clone(),
        customer: req.customer.clone(),
        profile_id: profile.id.clone(),
        channel: dest.kind.clone(),
        sent_to: mask(&dest.kind, &dest.value),
        code_hash: code_hash(tenant, &id, &code),
        attempts_left: ATTEMPTS,
        expires_at_ms: now + CODE_TTL_MS,
        verified_at_ms: None,
        created_by: actor.to_string(),
        created_at_ms: now,
    };
    store.save_step_up(tenant, &s)?;
    // the code itself is kept sealed until it is sent and is gone once the delivery settles:
    // no log, no delivery list and no database dump shows it
    let payload = json!({"type": "step_up.code", "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {"step_up_id": id, "customer": req.customer, "channel": dest.kind, "to": dest.value,
            "verify_url": verify_path(tenant, &id), "expires_at_ms": s.expires_at_ms}});
    store.queue_webhook(
        tenant,
        "step_up.code",
        &payload,
        Some(&json!({ "code": code })),
        now,
    )?;
    Ok(StartedStepUp {
        step_up_id: id,
        channel: s.channel,
        sent_to: s.sent_to,
        expires_at_ms: s.expires_at_ms,
    })
}

/// Sends a one-time code to a channel the customer is known by (through the webhook
/// endpoints that take `step_up.code`).
#[utoipa::path(post, path = "/api/v1/step-ups", tag = "agents", request_body = StartStepUp,
    responses((status = 201, body = StartedStepUp), (status = 422, body = crate::error::Problem, description = "no_known_channel"),
        (status = 404, body = crate::error::Problem, description = "cxm knows no such customer")),
    security(("bearer" = [])))]
pub async fn start(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    ApiJson(req): ApiJson<StartStepUp>,
) -> ApiResult<(StatusCode, Json<StartedStepUp>)> {
    let t = caller.tenant_id.clone();
    let out = blocking(&st, move |s| begin(s, &t, &caller.actor, &req)).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeAttempt {
    pub code: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepUpState {
    pub step_up_id: String,
    pub verified: bool,
    pub attempts_left: i64,
}

/// Checks the code the customer gave. Five wrong codes, or ten minutes, end the step-up.
#[utoipa::path(post, path = "/api/v1/step-ups/{id}/verify", tag = "agents", params(("id" = String, Path)), request_body = CodeAttempt,
    responses((status = 200, body = StepUpState), (status = 422, body = crate::error::Problem, description = "invalid_code"),
        (status = 409, body = crate::error::Problem, description = "step_up_expired")), security(("bearer" = [])))]
pub async fn verify(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CodeAttempt>,
) -> ApiResult<Json<StepUpState>> {
    if req.code.len() > 20 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "code is at most 20 characters",
        ));
    }
    let t = caller.tenant_id.clone();
    let out = blocking(&st, move |s| {
        // whoever asked for the code must not be the one who proves it arrived: an agent
        // that could read or guess its own code would vouch for itself
        match s.step_up(&t, &id)? {
            None => Ok(Attempt::Unknown),
            Some(started) if started.created_by == caller.actor => Err(ApiError::new(
                ErrorCode::Forbidden,
                "the code must be entered by someone other than who asked for it: the customer, at the link sent with the code, or another operator",
            )),
            Some(_) => attempt(s, &t, &id, &req.code),
        }
    })
    .await?;
    match out {
        Attempt::Verified(s) => Ok(Json(StepUpState {
            step_up_id: s.id,
            verified: true,
            attempts_left: s.attempts_left,
        })),
        Attempt::Over => Err(ApiError::new(
            ErrorCode::StepUpExpired,
            "this step-up is over (expired or too many wrong codes); start a new one",
        )),
        Attempt::Wrong(left) => Err(ApiError::new(
            ErrorCode::InvalidCode,
            format!("wrong code; {left} attempts left"),
        )),
        Attempt::Unknown => Err(ApiError::new(
            ErrorCode::NotFound,
            "no such step-up".to_string(),
        )),
    }
}

// ------------------------------------------------------------------ the customer's page

async fn code_page(
    Path((tenant, id)): Path<(String, String)>,
    State(st): State<Arc<AppState>>,
) -> Response {
    let known = blocking(&st, move |s| Ok(s.step_up(&tenant, &id)?)).await;
    match known {
        Ok(Some(s)) => st.pages.render(
            "step_up.html",
            context! { title => "Confirm it is you", sent_to => s.sent_to, done => s.verified_at_ms.is_some(), error => None::<String> },
        ),
        Ok(None) => not_found_page(&st),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn code_form(
    Path((tenant, id)): Path<(String, String)>,
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
) -> Response {
    let code = match axum::Form::<CodeForm>::from_request(req, &()).await {
        Ok(axum::Form(f)) if f.code.len() <= 20 => f.code,
        _ => String::new(),
    };
    let (t, i) = (tenant.clone(), id.clone());
    let out = blocking(&st, move |s| {
        let sent_to = s.step_up(&t, &i)?.map(|s| s.sent_to);
        Ok((attempt(s, &t, &i, &code)?, sent_to))
    })
    .await;
    let page = |done: bool, error: Option<String>, sent_to: String, status: StatusCode| {
        let mut r = st.pages.render(
            "step_up.html",
            context! { title => "Confirm it is you", sent_to => sent_to, done => done, error => error },
        );
        *r.status_mut() = status;
        r
    };
    match out {
        Ok((Attempt::Verified(_), to)) => page(true, None, to.unwrap_or_default(), StatusCode::OK),
        Ok((Attempt::Wrong(left), to)) => page(
            false,
            Some(format!("That code is not right. {left} tries left.")),
            to.unwrap_or_default(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Ok((Attempt::Over, to)) => page(
            false,
            Some("This code has expired or was tried too often. Ask for a new one.".into()),
            to.unwrap_or_default(),
            StatusCode::CONFLICT,
        ),
        Ok((Attempt::Unknown, _)) => not_found_page(&st),
        Err(e) => e.into_response(),
    }
}

fn not_found_page(st: &AppState) -> Response {
    let mut r = st.pages.render(
        "step_up.html",
        context! { title => "Confirm it is you", missing => true },
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// Whether a decision may treat the customer as verified: the step-up exists, was
/// completed for this same customer, and not too long ago.
pub fn verified_for(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    customer: &str,
    now_ms: i64,
) -> ApiResult<Result<i64, String>> {
    Ok(match store.step_up(tenant, id)? {
        None => Err(format!("no step-up {id}")),
        Some(s) if s.customer != customer => Err(format!("step-up {id} verified another customer")),
        Some(s) => match s.verified_at_ms {
            None => Err(format!("step-up {id} is not completed")),
            Some(at) if now_ms - at > VERIFIED_FOR_MS => Err(format!(
                "step-up {id} was completed more than 15 minutes ago"
            )),
            Some(at) => Ok(at),
        },
    })
}
