//! Who is calling, as HTTP carries it: a secret key in `Authorization` or the dashboard's
//! session cookie, checked before the handler runs (the `Principal` extractor).

use cxm_app::auth::Principal as AppPrincipal;
use cxm_app::auth::{sha256_hex, SESSION_COOKIE};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use cxm_store::{KeyKind, Role};

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

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
    Ok(user.map(|u| {
        Principal(AppPrincipal {
            tenant_id: u.tenant_id.clone(),
            role: u.role,
            actor: u.email.clone(),
            user: Some(u),
        })
    }))
}

/// Who is calling, as the HTTP layer learns it (a secret key or a session); the use cases
/// take the inner [`AppPrincipal`], which a `&Principal` derefs to.
#[derive(Debug, Clone)]
pub struct Principal(pub AppPrincipal);

impl std::ops::Deref for Principal {
    type Target = AppPrincipal;
    fn deref(&self) -> &AppPrincipal {
        &self.0
    }
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
            return Ok(Principal(AppPrincipal {
                tenant_id: key.tenant_id,
                role: Role::Admin,
                actor: format!("key:{}", key.id),
                user: None,
            }));
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
}
