//! Step-up verification before high-stakes actions: cxm sends a one-time code to a channel the
//! customer is already known by (never one the agent names), and a decision whose ask names
//! a verified step-up for the same customer sees `step_up_verified`; until then contact and
//! payment changes stay at review.

use cxm_domain::identity::{Identifier, IdentifierKind};
use cxm_store::{StepUp, Store};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{AppError, AppResult, ErrorCode};

/// How long a code may be used, and how many wrong codes end it.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
pub const ATTEMPTS: i64 = 5;
/// How long a verification counts for a decision after it was completed.
pub const VERIFIED_FOR_MS: i64 = 15 * 60 * 1000;

/// Where the customer types the code themselves, so nobody in between sees it.
pub fn verify_path(tenant: &str, id: &str) -> String {
    format!("/step-up/{tenant}/{id}")
}

/// The outcome of one code attempt, whoever typed it.
pub enum Attempt {
    Verified(StepUp),
    Wrong(i64),
    Over,
    Unknown,
}

pub fn attempt(store: &dyn Store, tenant: &str, id: &str, code: &str) -> AppResult<Attempt> {
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

pub fn code_hash(tenant: &str, id: &str, code: &str) -> String {
    cxm_provenance::sha256_hex(&format!("{tenant}\n{id}\n{}", code.trim()))
}

pub fn mask(kind: &str, value: &str) -> String {
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
) -> AppResult<StartedStepUp> {
    let channel = req.channel.as_deref();
    if channel.is_some_and(|c| c != "email" && c != "phone") {
        return Err(AppError::new(
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
        return Err(AppError::new(
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
        return Err(AppError::new(
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
        return Err(AppError::new(
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

// ------------------------------------------------------------------ the customer's page

/// Whether a decision may treat the customer as verified: the step-up exists, was
/// completed for this same customer, and not too long ago.
pub fn verified_for(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    customer: &str,
    now_ms: i64,
) -> AppResult<Result<i64, String>> {
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
