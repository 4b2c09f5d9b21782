//! Keys and signing keys: creating (shown once), revoking and rotating.

use super::*;

pub(crate) async fn render_keys(st: &AppState, p: &Principal, created: Option<Value>) -> Response {
    let t = p.tenant_id.clone();
    let keys = match st.store.run(move |s| s.list_keys(&t)).await {
        Ok(k) => k,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let keys: Vec<Value> = keys
        .iter()
        .rev()
        .map(|k| serde_json::json!({"id": k.id, "name": k.name, "kind": k.kind.as_str(), "prefix": k.prefix, "created": k.created_at_ms, "status": if k.revoked_at_ms.is_some() { "revoked" } else { "active" }}))
        .collect();
    let t = p.tenant_id.clone();
    let signing: Vec<Value> = st
        .store
        .run(move |s| s.signing_keys(&t))
        .await
        .unwrap_or_default()
        .iter()
        .map(|k| {
            let status = match (k.revoked_at_ms, k.retired_at_ms) {
                (Some(_), _) => format!("revoked: {}", k.revoke_reason.clone().unwrap_or_default()),
                (None, Some(_)) => "retired (still verifies)".to_string(),
                (None, None) => "signing".to_string(),
            };
            serde_json::json!({"kid": k.kid, "created": k.created_at_ms, "status": status})
        })
        .collect();
    st.pages.render("keys.html", context! { title => "API keys", page => "keys", user => user_ctx(p), keys => keys, created => created,
        can_admin => p.role.can_administer(), signing => signing, tenant => p.tenant_id })
}

pub(crate) async fn keys_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&st, &headers, "/settings/keys").await {
        Ok(p) => render_keys(&st, &p, None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(crate) struct KeyForm {
    name: String,
    kind: String,
}

pub(crate) async fn create_key(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<KeyForm>(&st, req, "/settings/keys", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(kind) =
        cxm_store::KeyKind::parse(&form.kind).filter(|k| *k != cxm_store::KeyKind::Agent)
    else {
        return ApiError::new(ErrorCode::InvalidParameter, "kind must be write or secret")
            .into_response();
    };
    let name = form.name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return ApiError::new(
            ErrorCode::InvalidParameter,
            "name must be 1 to 100 characters",
        )
        .into_response();
    }
    let (plain, record) = cxm_app::auth::generate_key(&p.tenant_id, kind, &name);
    let r = record.clone();
    if let Err(e) = st.store.run(move |s| s.insert_key(&r)).await {
        return ApiError::from(e).into_response();
    }
    tracing::info!(tenant = %p.tenant_id, actor = %Field(&p.actor), key = %record.id, "key created in the dashboard");
    // shown once, on this response only; the page is not cached
    let mut r = render_keys(
        &st,
        &p,
        Some(serde_json::json!({"key": plain, "kind": kind.as_str()})),
    )
    .await;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) async fn revoke_key(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let p = match signed_post(&st, &headers, "/settings/keys", true).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let id2 = id.clone();
    match st.store.run(move |s| s.revoke_key(&t, &id2)).await {
        Ok(true) => {
            st.keys.invalidate_all();
            tracing::info!(tenant = %p.tenant_id, actor = %Field(&p.actor), key = %Field(&id), "key revoked in the dashboard");
            Redirect::to("/settings/keys").into_response()
        }
        Ok(false) => {
            ApiError::new(ErrorCode::NotFound, format!("no active key {id}")).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub(crate) async fn rotate_signing_key(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let p = match signed_post(&st, &headers, "/settings/keys", true).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    let made = cxm_app::blocking(&st, move |s| {
        s.add_signing_key(&t, &cxm_app::provenance::new_key(), &actor)?;
        Ok(())
    })
    .await;
    match made {
        Ok(()) => Redirect::to("/settings/keys").into_response(),
        Err(e) => e.into_response(),
    }
}
