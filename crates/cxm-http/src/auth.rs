//! Keys, passwords and sessions. Keys are 32 random bytes shown once; only their sha-256 is
//! stored (they are random, so a slow hash buys nothing). Passwords use argon2id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use cxm_store::{ApiKey, KeyKind, Role, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

pub const SESSION_COOKIE: &str = "cxm_session";

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Makes a new key; returns the plaintext (show it once) and the record to store.
pub fn generate_key(tenant_id: &str, kind: KeyKind, name: &str) -> (String, ApiKey) {
    let tag = match kind {
        KeyKind::Write => "wk",
        KeyKind::Secret => "sk",
        KeyKind::Agent => "ak",
    };
    let plain = format!("cxm_{tag}_{}", random_token());
    let key = ApiKey {
        id: format!("key_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: tenant_id.to_string(),
        kind,
        name: name.to_string(),
        prefix: plain.chars().take(12).collect(),
        hash: sha256_hex(&plain),
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        revoked_at_ms: None,
    };
    (plain, key)
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

pub fn new_session_token() -> (String, String) {
    let t = random_token();
    let h = sha256_hex(&t);
    (t, h)
}

/// Keys looked up in the last few seconds. Ingest checks a key on every request; the cache
/// keeps that off the store. A revocation through this server applies at once; one made by
/// another process (the CLI) applies within the TTL.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Option<ApiKey>, Instant)>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn invalidate_all(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub async fn lookup(&self, state: &AppState, plain: &str) -> Result<ApiKey, ApiError> {
        let hash = sha256_hex(plain.trim());
        let cached = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .and_then(|(k, at)| (at.elapsed() < self.ttl).then(|| k.clone()));
        let key = match cached {
            Some(k) => k,
            None => {
                let h = hash.clone();
                let k = state.store.run(move |s| s.key_by_hash(&h)).await?;
                let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                if entries.len() > 10_000 {
                    entries.clear();
                }
                entries.insert(hash, (k.clone(), Instant::now()));
                k
            }
        };
        match key {
            Some(k) if k.revoked_at_ms.is_none() => Ok(k),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "this key was revoked",
            )),
            None => Err(ApiError::new(ErrorCode::InvalidCredentials, "unknown key")),
        }
    }
}

/// The credential in the Authorization header: Basic (key as username, with or without the
/// colon) or Bearer.
pub fn header_credential(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string()).filter(|s| !s.is_empty());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let s = String::from_utf8(decoded).ok()?;
        let user = s.split_once(':').map(|(u, _)| u.to_string()).unwrap_or(s);
        return Some(user).filter(|s| !s.is_empty());
    }
    None
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// Who is calling the management API: a secret key or a signed-in user.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub role: Role,
    /// For the audit trail: `key:<id>` or the user's email.
    pub actor: String,
    pub user: Option<User>,
}

impl Principal {
    /// Analysts (and admins) curate analysis: theme discovery, renames, merges, splits.
    pub fn require_analyst(&self) -> Result<(), ApiError> {
        if self.role.can_administer() || self.role == Role::Analyst {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "the {} role cannot do this; ask an analyst, owner or admin",
                    self.role.as_str()
                ),
            ))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role.can_administer() {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "the {} role cannot do this; ask an owner or admin",
                    self.role.as_str()
                ),
            ))
        }
    }
}

pub async fn session_principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let h = sha256_hex(&token);
    let now = chrono::Utc::now().timestamp_millis();
    let user = state.store.run(move |s| s.session_user(&h, now)).await?;
    Ok(user.map(|u| Principal {
        tenant_id: u.tenant_id.clone(),
        role: u.role,
        actor: u.email.clone(),
        user: Some(u),
    }))
}

impl FromRequestParts<std::sync::Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = header_credential(&parts.headers) {
            let key = state.keys.lookup(state, &token).await?;
            if key.kind != KeyKind::Secret {
                return Err(ApiError::new(
                    ErrorCode::WrongKeyKind,
                    "write keys only ingest; use a secret key for the management api",
                ));
            }
            return Ok(Principal {
                tenant_id: key.tenant_id,
                role: Role::Admin,
                actor: format!("key:{}", key.id),
                user: None,
            });
        }
        match session_principal(state, &parts.headers).await? {
            // viewers read: refused here, before any body is parsed, on every method but GET
            Some(p)
                if p.role == Role::Viewer
                    && !matches!(
                        parts.method,
                        axum::http::Method::GET | axum::http::Method::HEAD
                    ) =>
            {
                Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "the viewer role only reads; ask an analyst, agent operator, owner or admin",
                ))
            }
            Some(p) => Ok(p),
            None => Err(ApiError::new(
                ErrorCode::MissingCredentials,
                "send Authorization: Bearer <secret key>",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn basic_with_and_without_colon_and_bearer() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            header_credential(&h(&format!("Basic {}", b64("wk:")))).as_deref(),
            Some("wk")
        );
        assert_eq!(
            header_credential(&h(&format!("Basic {}", b64("wk")))).as_deref(),
            Some("wk")
        );
        assert_eq!(header_credential(&h("Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(header_credential(&h("Basic !!!")), None);
        assert_eq!(header_credential(&h("Digest x")), None);
    }

    #[test]
    fn keys_are_random_and_hashed() {
        let (p1, k1) = generate_key("t", KeyKind::Write, "a");
        let (p2, _) = generate_key("t", KeyKind::Write, "a");
        assert_ne!(p1, p2);
        assert!(p1.starts_with("cxm_wk_"));
        assert_eq!(k1.hash, sha256_hex(&p1));
        assert!(!format!("{k1:?}").contains(&k1.hash));
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
