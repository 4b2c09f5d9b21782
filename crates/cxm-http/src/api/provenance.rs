//! The provenance API: signing keys, the JWK set, signing messages and assets, and the
//! public verification API and page.

use cxm_app::provenance::{
    active_key, checkpoint_now, content_key, has_disclosure, hex_sha256, new_key, verify_message,
    AssetQuery, RevokeKey, SignRequest, SignedOut, SigningKeyList, Verification, VerifyRequest,
    MAX_MESSAGE,
};
use cxm_app::AppError;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use cxm_provenance::{self as prov, Statement};
use cxm_store::{AuditCheckpoint, SignedMessage, SigningKeyRow};
use minijinja::context;
use serde_json::{json, Value};

use crate::api::decisions::Asker;
use crate::api::ApiJson;
use crate::api::ApiQuery;
use crate::auth::Principal;
use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

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
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    let keys = blocking(&st, move |s| {
        if !s.revoke_signing_key(&t, &kid, &reason, &actor)? {
            return Err(AppError::new(
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
            return Err(AppError::new(ErrorCode::NotFound, "no such issuer"));
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
                    return Err(AppError::new(
                        ErrorCode::UnknownAgent,
                        format!("no active agent {name:?}"),
                    ));
                };
                if !has_disclosure(&req.text, &agent.disclosure) {
                    return Err(AppError::new(
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
    cxm_app::decisions::require_operator(&p)?;
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
    let report = cxm_app::provenance::read_asset(mime, bytes).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}

#[derive(serde::Deserialize)]
struct VerifyForm {
    signature: String,
    #[serde(default)]
    text: String,
}
