//! Signed communications over HTTP: tenants' Ed25519 keys (rotation, revocation, the public
//! key set at a well-known URL), signing a message (an agent's only with its disclosure),
//! the public verification API and page, and signed checkpoints of the audit chain.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use cxm_provenance::{self as prov, Check, Statement};
use cxm_store::{AuditCheckpoint, SignedMessage, SigningKeyRow, Store};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::{ApiJson, ApiQuery};
use crate::auth::Principal;
use crate::decisions::Asker;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::voc::blocking;
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/signing-keys", get(list_keys))
        .route("/api/v1/signing-keys/rotate", post(rotate))
        .route("/api/v1/signing-keys/{kid}/revoke", post(revoke))
        .route("/.well-known/cxm/{tenant}/jwks.json", get(jwks))
        .route("/api/v1/messages/sign", post(sign))
        .route("/api/v1/messages/verify", post(verify_api))
        .route("/api/v1/audit/checkpoint", post(checkpoint))
        .route("/verify", get(verify_page).post(verify_form))
        .route("/verify/{tenant}/{id}", get(verify_link))
        .route("/api/v1/assets/sign", post(sign_asset))
        .route("/api/v1/assets/verify", post(verify_asset))
}

// ---------------------------------------------------------------------------------------
// keys

/// A fresh Ed25519 signing key for a tenant.
pub fn new_key() -> SigningKeyRow {
    let (secret, public) = prov::generate_key();
    SigningKeyRow {
        kid: prov::key_id(&public),
        public_key: prov::encode_key(&public),
        secret_key: prov::encode_key(&secret),
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        retired_at_ms: None,
        revoked_at_ms: None,
        revoke_reason: None,
    }
}

/// The key that signs now; a tenant gets its first on first use.
pub fn active_key(store: &dyn Store, tenant: &str) -> ApiResult<SigningKeyRow> {
    if let Some(k) = store
        .signing_keys(tenant)?
        .into_iter()
        .find(|k| k.retired_at_ms.is_none() && k.revoked_at_ms.is_none())
    {
        return Ok(k);
    }
    let k = new_key();
    store.add_signing_key(tenant, &k, "cxm")?;
    Ok(k)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeyList {
    pub keys: Vec<SigningKeyRow>,
    /// Where verifiers fetch the public keys.
    pub jwks_url: String,
}

/// The tenant's signing keys (public halves and their state).
#[utoipa::path(get, path = "/api/v1/signing-keys", tag = "provenance",
    responses((status = 200, body = SigningKeyList)), security(("bearer" = [])))]
pub async fn list_keys(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<SigningKeyList>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    let keys = blocking(&st, move |s| {
        active_key(s, &t)?;
        Ok(s.signing_keys(&t)?)
    })
    .await?;
    Ok(Json(SigningKeyList {
        keys,
        jwks_url: format!("/.well-known/cxm/{}/jwks.json", p.tenant_id),
    }))
}

/// A new signing key; the previous one stops signing but its signatures still verify.
#[utoipa::path(post, path = "/api/v1/signing-keys/rotate", tag = "provenance",
    responses((status = 201, body = SigningKeyRow)), security(("bearer" = [])))]
pub async fn rotate(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<(StatusCode, Json<SigningKeyRow>)> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    let k = blocking(&st, move |s| {
        let k = new_key();
        s.add_signing_key(&t, &k, &p.actor)?;
        Ok(k)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(k)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    pub reason: String,
}

/// Revokes a key: messages it signed no longer verify (say why: it leaked, ...).
#[utoipa::path(post, path = "/api/v1/signing-keys/{kid}/revoke", tag = "provenance", params(("kid" = String, Path)), request_body = RevokeKey,
    responses((status = 200, body = SigningKeyList), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn revoke(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(kid): Path<String>,
    ApiJson(req): ApiJson<RevokeKey>,
) -> ApiResult<Json<SigningKeyList>> {
    p.require_admin()?;
    let reason = req.reason.trim().to_string();
    if reason.is_empty() || reason.len() > 500 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "say why the key is revoked (reason, up to 500 bytes)",
        ));
    }
    let t = p.tenant_id.clone();
    let keys = blocking(&st, move |s| {
        if !s.revoke_signing_key(&t, &kid, &reason, &p.actor)? {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no unrevoked signing key {kid:?}"),
            ));
        }
        Ok(s.signing_keys(&t)?)
    })
    .await?;
    Ok(Json(SigningKeyList {
        keys,
        jwks_url: format!("/.well-known/cxm/{}/jwks.json", p.tenant_id),
    }))
}

/// The tenant's public keys (RFC 8037 JWKs), revoked ones left out. Public.
pub async fn jwks(State(st): State<Arc<AppState>>, Path(tenant): Path<String>) -> Response {
    let t = tenant.clone();
    let keys = blocking(&st, move |s| {
        if s.tenant(&t)?.is_none() {
            return Err(ApiError::new(ErrorCode::NotFound, "no such issuer"));
        }
        Ok(s.signing_keys(&t)?)
    })
    .await;
    match keys {
        Ok(keys) => {
            let jwks: Vec<Value> = keys
                .iter()
                .filter(|k| k.revoked_at_ms.is_none())
                .filter_map(|k| {
                    prov::decode_key(&k.public_key)
                        .ok()
                        .map(|p| prov::jwk(&k.kid, &p))
                })
                .collect();
            (
                [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
                Json(json!({ "keys": jwks })),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// signing

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The message exactly as it will be sent.
    pub text: String,
    /// The agent sending it (implied by an agent key); its disclosure must be in the text.
    pub agent: Option<String>,
    /// The customer it goes to.
    pub customer: Option<String>,
    pub channel: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedOut {
    pub message_id: String,
    pub text: String,
    /// JWS compact (EdDSA) over the message's statement; the text is detached.
    pub signature: String,
    pub kid: String,
    /// Where the customer can check it.
    pub verify_url: String,
    pub disclosure_shown: Option<String>,
}

const MAX_MESSAGE: usize = 64 * 1024;

fn has_disclosure(text: &str, disclosure: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(text).contains(&norm(disclosure))
}

/// Signs a message the company is about to send. An agent's message must carry the agent's
/// disclosure (422 `disclosure_missing` otherwise); that it was shown is recorded.
#[utoipa::path(post, path = "/api/v1/messages/sign", tag = "provenance", request_body = SignRequest,
    responses((status = 200, body = SignedOut), (status = 422, body = crate::error::Problem, description = "disclosure_missing or unknown_agent")),
    security(("bearer" = [])))]
pub async fn sign(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    ApiJson(req): ApiJson<SignRequest>,
) -> ApiResult<Json<SignedOut>> {
    if req.text.trim().is_empty() || req.text.len() > MAX_MESSAGE {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "text must be 1 byte to 64 KiB",
        ));
    }
    for (what, v) in [("customer", &req.customer), ("channel", &req.channel)] {
        if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 200) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("{what} must be 1 to 200 bytes"),
            ));
        }
    }
    let agent_name = match (&caller.bound_agent, &req.agent) {
        (Some(b), Some(n)) if b != n => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this key belongs to agent {b:?}; it cannot sign for {n:?}"),
            ))
        }
        (Some(b), _) => Some(b.clone()),
        (None, n) => n.clone(),
    };
    let t = caller.tenant_id.clone();
    let actor = caller.actor.clone();
    let out = blocking(&st, move |s| {
        let (sender, sender_kind, disclosure) = match &agent_name {
            Some(name) => {
                let Some(agent) = s.agent(&t, name)?.filter(|a| a.disabled_at_ms.is_none()) else {
                    return Err(ApiError::new(
                        ErrorCode::UnknownAgent,
                        format!("no active agent {name:?}"),
                    ));
                };
                if !has_disclosure(&req.text, &agent.disclosure) {
                    return Err(ApiError::new(
                        ErrorCode::DisclosureMissing,
                        format!(
                            "messages from agent {name} must tell the customer they are automated: include {:?}",
                            agent.disclosure
                        ),
                    ));
                }
                (agent.name, "agent", Some(agent.disclosure))
            }
            None => (actor.clone(), if actor.starts_with("key:") { "system" } else { "user" }, None),
        };
        let org = s.tenant(&t)?.map(|x| x.name).unwrap_or_default();
        let key = active_key(s, &t)?;
        let secret = prov::decode_key(&key.secret_key)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let now = chrono::Utc::now();
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let statement = Statement {
            iss: t.clone(),
            org,
            jti: id.clone(),
            sender: sender.clone(),
            sender_kind: sender_kind.into(),
            sub: req.customer.clone(),
            channel: req.channel.clone(),
            iat: now.timestamp(),
            sha256: prov::sha256_hex(&req.text),
            disclosure: disclosure.clone(),
        };
        let jws = prov::sign(&secret, &key.kid, &statement)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        s.save_signed_message(
            &t,
            &SignedMessage {
                id: id.clone(),
                kid: key.kid.clone(),
                sender,
                sender_kind: sender_kind.into(),
                customer: req.customer.clone(),
                channel: req.channel.clone(),
                sha256: statement.sha256.clone(),
                disclosure: disclosure.clone(),
                jws: jws.clone(),
                created_at_ms: now.timestamp_millis(),
            },
            &actor,
        )?;
        Ok(SignedOut {
            verify_url: format!("/verify/{t}/{id}"),
            message_id: id,
            text: req.text,
            signature: jws,
            kid: key.kid,
            disclosure_shown: disclosure,
        })
    })
    .await?;
    Ok(Json(out))
}

// ---------------------------------------------------------------------------------------
// verifying

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub signature: String,
    /// The message as received; without it only the signature is checked.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// True only when the signature is genuine, its key not revoked, and the text (when
    /// given) is exactly what was signed.
    pub valid: bool,
    /// `valid`, `altered`, `bad_signature`, `revoked_key`, `unknown_key`, `unknown_issuer`,
    /// `malformed`.
    pub status: String,
    pub detail: String,
    pub org: Option<String>,
    pub sender: Option<String>,
    pub sender_kind: Option<String>,
    pub customer: Option<String>,
    pub channel: Option<String>,
    pub sent_at: Option<String>,
    pub disclosure: Option<String>,
    pub message_id: Option<String>,
    pub kid: Option<String>,
    /// Whether the text was compared.
    pub text_checked: bool,
}

fn verdict(status: &str, detail: impl Into<String>) -> Verification {
    Verification {
        valid: false,
        status: status.into(),
        detail: detail.into(),
        org: None,
        sender: None,
        sender_kind: None,
        customer: None,
        channel: None,
        sent_at: None,
        disclosure: None,
        message_id: None,
        kid: None,
        text_checked: false,
    }
}

/// Checks a signature (and the text) against the issuer's keys.
pub fn verify_message(
    store: &dyn Store,
    signature: &str,
    text: Option<&str>,
) -> ApiResult<Verification> {
    let parsed = match prov::parse(signature) {
        Ok(p) => p,
        Err(e) => return Ok(verdict("malformed", e.to_string())),
    };
    let s = &parsed.statement;
    let mut v = verdict("", "");
    v.org = Some(s.org.clone());
    v.sender = Some(s.sender.clone());
    v.sender_kind = Some(s.sender_kind.clone());
    v.customer = s.sub.clone();
    v.channel = s.channel.clone();
    v.sent_at = chrono::DateTime::from_timestamp(s.iat, 0).map(|d| d.to_rfc3339());
    v.disclosure = s.disclosure.clone();
    v.message_id = Some(s.jti.clone());
    v.kid = Some(parsed.header.kid.clone());
    v.text_checked = text.is_some();
    let say = |mut v: Verification, status: &str, detail: String| {
        v.status = status.into();
        v.detail = detail;
        v.valid = status == "valid";
        v
    };
    if store.tenant(&s.iss)?.is_none() {
        return Ok(say(
            v,
            "unknown_issuer",
            "no organisation here issued this signature".into(),
        ));
    }
    let Some(key) = store
        .signing_keys(&s.iss)?
        .into_iter()
        .find(|k| k.kid == parsed.header.kid)
    else {
        return Ok(say(
            v,
            "unknown_key",
            format!("{} never had key {}", s.org, parsed.header.kid),
        ));
    };
    let public = prov::decode_key(&key.public_key)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let check = parsed
        .check(&public, text)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(match (check, key.revoked_at_ms) {
        (Check::BadSignature, _) => say(
            v,
            "bad_signature",
            "the signature does not match its contents: it was forged or edited".into(),
        ),
        (_, Some(_)) => say(
            v,
            "revoked_key",
            format!(
                "{} revoked the key that signed this ({}); do not trust it",
                s.org,
                key.revoke_reason.unwrap_or_default()
            ),
        ),
        (Check::Altered, None) => say(
            v,
            "altered",
            "the signature is genuine but the text is not the one that was sent".into(),
        ),
        (Check::Valid, None) => {
            let what = if text.is_some() {
                "and the text is exactly what was sent"
            } else {
                "(paste the text to check it was not altered)"
            };
            let detail = format!(
                "sent by {} ({}) for {} {what}",
                s.sender, s.sender_kind, s.org
            );
            say(v, "valid", detail)
        }
    })
}

/// Verifies a signed message. Public: customers (and their tools) call it without a key.
#[utoipa::path(post, path = "/api/v1/messages/verify", tag = "provenance", request_body = VerifyRequest,
    responses((status = 200, body = Verification)))]
pub async fn verify_api(
    State(st): State<Arc<AppState>>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult<Json<Verification>> {
    if req.text.as_ref().is_some_and(|t| t.len() > MAX_MESSAGE) {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "text is longer than 64 KiB",
        ));
    }
    Ok(Json(
        blocking(&st, move |s| {
            verify_message(s, &req.signature, req.text.as_deref())
        })
        .await?,
    ))
}

async fn verify_page(State(st): State<Arc<AppState>>) -> Response {
    st.pages
        .render("verify.html", context! { title => "Verify a message" })
}

#[derive(Deserialize)]
struct VerifyForm {
    signature: String,
    #[serde(default)]
    text: String,
}

async fn verify_form(State(st): State<Arc<AppState>>, Form(f): Form<VerifyForm>) -> Response {
    if f.text.len() > MAX_MESSAGE || f.signature.len() > 16 * 1024 {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the message or signature is too long",
        )
        .into_response();
    }
    // browsers send newlines as CRLF; the signed text had whatever the sender wrote
    let text = f.text.replace("\r\n", "\n");
    let (sig, t2) = (f.signature.clone(), text.clone());
    let result = blocking(&st, move |s| {
        verify_message(s, &sig, (!t2.trim().is_empty()).then_some(t2.as_str()))
    })
    .await;
    match result {
        Ok(v) => st.pages.render(
            "verify.html",
            context! { title => "Verify a message", result => v, signature => f.signature, text => text },
        ),
        Err(e) => e.into_response(),
    }
}

async fn verify_link(
    State(st): State<Arc<AppState>>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    let (t, i) = (tenant.clone(), id.clone());
    let found = blocking(&st, move |s| Ok(s.signed_message(&t, &i)?)).await;
    match found {
        Ok(Some(m)) => {
            let (sig, st2) = (m.jws.clone(), st.clone());
            let v = blocking(&st2, move |s| verify_message(s, &sig, None)).await;
            match v {
                Ok(v) => st.pages.render(
                    "verify.html",
                    context! { title => "Verify a message", result => v, signature => m.jws, from_link => true },
                ),
                Err(e) => e.into_response(),
            }
        }
        Ok(None) => ApiError::new(ErrorCode::NotFound, "no such signed message").into_response(),
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// audit checkpoints

/// Signs the audit chain's head (a no-op when it has not moved since the last checkpoint).
pub fn checkpoint_now(store: &dyn Store, tenant: &str) -> ApiResult<Option<AuditCheckpoint>> {
    let last = store
        .checkpoints(tenant)?
        .last()
        .map(|c| c.seq)
        .unwrap_or(0);
    let mut head = None;
    let mut after = last;
    loop {
        let page = store.audit_entries(tenant, after, 10_000)?;
        match page.last() {
            Some(e) => {
                after = e.seq;
                head = Some(e.clone());
            }
            None => break,
        }
    }
    let Some(head) = head else { return Ok(None) };
    let key = active_key(store, tenant)?;
    let secret = prov::decode_key(&key.secret_key)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let cp = AuditCheckpoint {
        seq: head.seq,
        hash: head.hash.clone(),
        kid: key.kid,
        signature: prov::sign_bytes(
            &secret,
            checkpoint_bytes(tenant, head.seq, &head.hash).as_bytes(),
        ),
        at_ms: chrono::Utc::now().timestamp_millis(),
    };
    store.save_checkpoint(tenant, &cp)?;
    Ok(Some(cp))
}

pub fn checkpoint_bytes(tenant: &str, seq: i64, hash: &str) -> String {
    format!("cxm-audit-checkpoint\n{tenant}\n{seq}\n{hash}")
}

/// Checks the signed checkpoints against the chain that was walked: each must be signed by
/// the tenant's key and name an entry the chain still has, with the same hash.
pub fn check_checkpoints(
    store: &dyn Store,
    tenant: &str,
    last_seq: i64,
) -> ApiResult<Option<cxm_domain::audit::Broken>> {
    let keys = store.signing_keys(tenant)?;
    for cp in store.checkpoints(tenant)? {
        let broken = |problem: String| {
            Ok(Some(cxm_domain::audit::Broken {
                seq: cp.seq,
                problem,
            }))
        };
        let Some(k) = keys.iter().find(|k| k.kid == cp.kid) else {
            return broken(format!(
                "checkpoint at entry {} names an unknown key {}",
                cp.seq, cp.kid
            ));
        };
        let public = prov::decode_key(&k.public_key)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        if !prov::verify_bytes(
            &public,
            checkpoint_bytes(tenant, cp.seq, &cp.hash).as_bytes(),
            &cp.signature,
        ) {
            return broken(format!(
                "checkpoint at entry {} is not signed by key {}",
                cp.seq, cp.kid
            ));
        }
        if cp.seq > last_seq {
            return broken(format!(
                "the chain was cut short: entry {} was signed at a checkpoint, the chain now ends at {}",
                cp.seq, last_seq
            ));
        }
        match store.audit_entries(tenant, cp.seq - 1, 1)?.first() {
            Some(e) if e.seq == cp.seq && e.hash == cp.hash => {}
            _ => {
                return broken(format!(
                    "entry {} is not the one signed at its checkpoint: the chain was rewritten",
                    cp.seq
                ))
            }
        }
    }
    Ok(None)
}

#[utoipa::path(post, path = "/api/v1/audit/checkpoint", tag = "provenance",
    responses((status = 200, body = Option<AuditCheckpoint>)), security(("bearer" = [])))]
pub async fn checkpoint(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<Option<AuditCheckpoint>>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| checkpoint_now(s, &t)).await?))
}

/// Signs every tenant's chain head every ten minutes (when it moved), so cutting the tail
/// off the log or rewriting it wholesale no longer goes unnoticed.
pub async fn checkpoint_worker(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(Duration::from_secs(600)).await;
        let r = blocking(&state, |s| {
            for t in s.list_tenants()? {
                checkpoint_now(s, &t.id)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e.detail, "audit checkpoint failed");
        }
    }
}

// ---------------------------------------------------------------------------------------
// content credentials (C2PA) for images and PDFs

/// The tenant's C2PA credentials; made on first use.
fn content_key(store: &dyn Store, tenant: &str) -> ApiResult<prov::content::ContentKey> {
    if store.content_key(tenant)?.is_none() {
        let org = store
            .tenant(tenant)?
            .map(|t| t.name)
            .unwrap_or_else(|| tenant.to_string());
        let k = prov::content::new_content_key(&org)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        store.save_content_key(tenant, &k.cert_chain_pem, &k.key_pem)?;
    }
    let (chain, key) = store
        .content_key(tenant)?
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the content key was not saved"))?;
    Ok(prov::content::ContentKey {
        cert_chain_pem: chain,
        key_pem: key,
    })
}

fn mime_of(headers: &axum::http::HeaderMap) -> ApiResult<String> {
    let m = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if m.is_empty() || !m.contains('/') || m.len() > 100 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "send the asset as the body with its Content-Type (image/png, image/jpeg, application/pdf, ...)",
        ));
    }
    Ok(m)
}

async fn asset_body(st: &AppState, body: axum::body::Body) -> ApiResult<Vec<u8>> {
    let limit = st.config.max_request_bytes;
    let b = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("assets are limited to {limit} bytes"),
        )
    })?;
    if b.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "the body is empty: send the asset",
        ));
    }
    Ok(b.to_vec())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssetQuery {
    /// The asset's title in its credentials (default: "asset").
    pub title: Option<String>,
}

/// Adds C2PA content credentials naming the organisation. Images (JPEG, PNG, WebP, GIF, TIFF)
/// and PDFs come back with the manifest embedded; other formats get the manifest alone as a
/// sidecar (`application/c2pa`, saved next to the file as `NAME.c2pa`).
#[utoipa::path(post, path = "/api/v1/assets/sign", tag = "provenance", params(AssetQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "the signed asset, or the sidecar manifest"), (status = 400, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn sign_asset(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<AssetQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    // the same people who may sign messages as the organisation: agent operators, owners,
    // admins and secret keys
    crate::decisions::require_operator(&p)?;
    let mime = mime_of(&headers)?;
    let bytes = asset_body(&st, body).await?;
    let title = q.title.unwrap_or_else(|| "asset".into());
    if title.is_empty() || title.len() > 200 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "title is 1 to 200 bytes",
        ));
    }
    let t = p.tenant_id.clone();
    let m2 = mime.clone();
    let signed = blocking(&st, move |s| {
        let key = content_key(s, &t)?;
        let org = s.tenant(&t)?.map(|x| x.name).unwrap_or_default();
        let signed = prov::content::sign_asset(&key, &m2, &bytes, &title, &org).map_err(|e| {
            ApiError::new(ErrorCode::InvalidParameter, format!("the asset could not be signed as {m2}: {e}"))
        })?;
        s.append_audit(
            &t,
            &cxm_domain::audit::NewAuditEntry {
                actor: p.actor.clone(),
                kind: "asset.signed".into(),
                subject: title.clone(),
                body: json!({"title": title, "mime": m2, "sha256": hex_sha256(&signed.asset), "embedded": signed.embedded}).to_string(),
            },
        )?;
        Ok(signed)
    })
    .await?;
    let (ct, bytes) = if signed.embedded {
        (mime, signed.asset)
    } else {
        ("application/c2pa".to_string(), signed.manifest)
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, ct),
            (
                axum::http::HeaderName::from_static("x-c2pa-embedded"),
                signed.embedded.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Reads an asset's content credentials as any C2PA reader would. Public.
#[utoipa::path(post, path = "/api/v1/assets/verify", tag = "provenance",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "state (valid, invalid, none), title, issuer, problems")))]
pub async fn verify_asset(
    State(st): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json<Value>> {
    let mime = mime_of(&headers)?;
    let bytes = asset_body(&st, body).await?;
    let report =
        tokio::task::spawn_blocking(move || prov::content::read_asset(&mime, &bytes, None))
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}
