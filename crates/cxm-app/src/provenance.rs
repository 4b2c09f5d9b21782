//! Signed communications over HTTP: tenants' Ed25519 keys (rotation, revocation, the public
//! key set at a well-known URL), signing a message (an agent's only with its disclosure),
//! the public verification API and page, and signed checkpoints of the audit chain.

use cxm_provenance::{self as prov, Check};
use cxm_store::{AuditCheckpoint, SigningKeyRow, Store};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, ErrorCode};

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
pub fn active_key(store: &dyn Store, tenant: &str) -> AppResult<SigningKeyRow> {
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    pub reason: String,
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

pub const MAX_MESSAGE: usize = 64 * 1024;

pub fn has_disclosure(text: &str, disclosure: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(text).contains(&norm(disclosure))
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

pub fn verdict(status: &str, detail: impl Into<String>) -> Verification {
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
) -> AppResult<Verification> {
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
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
    let check = parsed
        .check(&public, text)
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
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

// ---------------------------------------------------------------------------------------
// audit checkpoints

/// Signs the audit chain's head (a no-op when it has not moved since the last checkpoint).
pub fn checkpoint_now(store: &dyn Store, tenant: &str) -> AppResult<Option<AuditCheckpoint>> {
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
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
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
) -> AppResult<Option<cxm_domain::audit::Broken>> {
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
            .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
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

// ---------------------------------------------------------------------------------------
// content credentials (C2PA) for images and PDFs

/// The tenant's C2PA credentials; made on first use.
pub fn content_key(store: &dyn Store, tenant: &str) -> AppResult<prov::content::ContentKey> {
    if store.content_key(tenant)?.is_none() {
        let org = store
            .tenant(tenant)?
            .map(|t| t.name)
            .unwrap_or_else(|| tenant.to_string());
        let k = prov::content::new_content_key(&org)
            .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
        store.save_content_key(tenant, &k.cert_chain_pem, &k.key_pem)?;
    }
    let (chain, key) = store
        .content_key(tenant)?
        .ok_or_else(|| AppError::new(ErrorCode::Internal, "the content key was not saved"))?;
    Ok(prov::content::ContentKey {
        cert_chain_pem: chain,
        key_pem: key,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssetQuery {
    /// The asset's title in its credentials (default: "asset").
    pub title: Option<String>,
}

pub fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Reads an asset's content credentials as any C2PA reader would, off the async workers
/// (parsing and hashing a 20 MB file is CPU work).
pub async fn read_asset(mime: String, bytes: Vec<u8>) -> AppResult<prov::content::AssetReport> {
    tokio::task::spawn_blocking(move || prov::content::read_asset(&mime, &bytes, None))
        .await
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))
}
