//! The JSON API: one module per capability, each an adapter over its use cases in
//! `cxm_app`, plus what they share here: the extractors that parse a request into typed
//! input (`ApiJson`, `ApiPath`, `ApiQuery`, refusing what is not an object or carries NUL),
//! the customers endpoints, and the routes of the whole API.

pub mod agents;
pub mod audit;
pub mod cluster;
pub mod decisions;
pub mod equity;
pub mod experiments;
pub mod feedback;
pub mod health;
pub mod home;
pub mod ingest;
pub mod journeys;
pub mod maturity;
pub mod ops;
pub mod policies;
pub mod privacy;
pub mod provenance;
pub mod step_up;
pub mod surveys;
pub mod tickets;
pub mod users;
pub mod webhooks;
use cxm_app::customers::{
    build_context, do_unmerge, has_nul, load_profile, log_context_view, parse_cursor,
    parse_identifier, quarantine_list, ContextQuery, CreatedKey, CustomerContext, CustomerList,
    CustomerLookup, DaysQuery, FindQuery, KeyList, LimitQuery, MergeHistory, NewKey,
    QuarantineList, Taxonomy, UnmergeRequest, UnmergeResult,
};
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use cxm_domain::taxonomy::KNOWN_EVENTS;
use cxm_domain::Channel;
use cxm_store::{KeyKind, Overview, Profile};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::AppState;
use cxm_app::logsafe::Field;

/// `Query` whose rejection is problem+json.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_from(q).map(ApiQuery)
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(q: &str) -> ApiResult<T> {
    axum::extract::Query::<T>::try_from_uri(
        &Uri::builder()
            .path_and_query(format!("/?{q}"))
            .build()
            .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.to_string()))?,
    )
    .map(|axum::extract::Query(t)| t)
    .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.body_text()))
}

/// `Path` whose rejection is problem+json (`/tickets/abc` where an integer id belongs).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| ApiPath(t))
            .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.body_text()))
    }
}

/// `Json` whose rejection is problem+json.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let body = crate::api::ingest::read_body(&headers, req.into_body(), 1024 * 1024).await?;
        let _ = state;
        // every body of this API is an object; serde would also fill a struct from an array
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                "invalid request body: it must be a JSON object",
            ));
        }
        // no text column can hold a NUL character; say so instead of failing in the store
        if body.windows(6).any(|w| w == b"\\u0000") {
            let v: Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::new(ErrorCode::InvalidJson, format!("invalid request body: {e}"))
            })?;
            if has_nul(&v) {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    "invalid request body: a string holds a NUL character (\\u0000)",
                ));
            }
        }
        serde_json::from_slice(&body).map(ApiJson).map_err(|e| {
            let code = if e.is_data() {
                ErrorCode::InvalidParameter
            } else {
                ErrorCode::InvalidJson
            };
            ApiError::new(code, format!("invalid request body: {e}"))
        })
    }
}

/// Every API route: the tracking API (and its copy under the path prefix), the management
/// API of each capability, health, readiness and metrics.
pub fn routes(prefix: &str) -> Router<Arc<AppState>> {
    let mut app = Router::new()
        .merge(ingest::tracking_routes())
        .merge(customer_routes())
        .merge(feedback::routes())
        .merge(surveys::routes())
        .merge(journeys::routes())
        .merge(health::routes())
        .merge(tickets::routes())
        .merge(decisions::routes())
        .merge(policies::routes())
        .merge(agents::routes())
        .merge(audit::routes())
        .merge(provenance::routes())
        .merge(step_up::routes())
        .merge(privacy::routes())
        .merge(experiments::routes())
        .merge(equity::routes())
        .merge(home::routes())
        .merge(maturity::routes())
        .merge(webhooks::routes())
        .merge(users::routes())
        .merge(cluster::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    if !prefix.is_empty() && prefix.starts_with('/') {
        app = app.nest(prefix, ingest::tracking_routes());
    }
    app
}

/// Customers, their context and merges, quarantine, the overview, keys and the taxonomy.
fn customer_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/events", post(crate::api::ingest::native))
        .route("/api/v1/customers", get(find_customers))
        .route("/api/v1/customers/{id}", get(get_customer))
        .route("/api/v1/customers/{id}/context", get(customer_context))
        .route("/api/v1/customers/{id}/merges", get(customer_merges))
        .route("/api/v1/customers/{id}/unmerge", post(unmerge))
        .route("/api/v1/quarantine", get(quarantine))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/keys", get(list_keys).post(create_key))
        .route("/api/v1/keys/{id}", delete(revoke_key))
        .route("/api/v1/taxonomy", get(taxonomy))
}

/// Find a customer by identifier (returns the profile) or search (returns a list).
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(FindQuery),
    responses((status = 200, description = "the profile (with identifier=) or a list (with q=)", body = CustomerLookup),
              (status = 404, body = Problem), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn find_customers(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<FindQuery>,
) -> ApiResult<Response> {
    if let Some(raw) = q.identifier {
        let id = parse_identifier(&raw)?;
        let t = p.tenant_id.clone();
        let profile = st
            .store
            .run(move |s| match s.profile_for(&t, &id)? {
                Some(pid) => s.profile(&t, &pid),
                None => Ok(None),
            })
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no customer has {raw}")))?;
        return Ok(Json(profile).into_response());
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let query = q.q.unwrap_or_default();
    let t = p.tenant_id.clone();
    let customers = st
        .store
        .run(move |s| s.search_profiles(&t, &query, limit))
        .await?;
    Ok(Json(CustomerList { customers }).into_response())
}

#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Profile), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_customer(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(load_profile(&st, &p.tenant_id, &id).await?))
}

/// Profile, identifiers, traits, the cross-channel timeline and the escalation summary.
#[utoipa::path(get, path = "/api/v1/customers/{id}/context", tag = "customers", params(("id" = String, Path), ContextQuery),
    responses((status = 200, body = CustomerContext), (status = 404, body = Problem), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn customer_context(
    State(st): State<Arc<AppState>>,
    p: ContextReader,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ContextQuery>,
) -> ApiResult<Json<CustomerContext>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "limit must be between 1 and 500",
        ));
    }
    let before = q.before.as_deref().map(parse_cursor).transpose()?;
    let channel = q
        .channel
        .as_deref()
        .map(|c| {
            cxm_domain::taxonomy::Channel::parse(c).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("channel {c:?} is not a channel cxm knows"),
                )
            })
        })
        .transpose()?;
    let ctx = build_context(&st, &p.tenant_id, &id, limit, before).await?;
    // a read counts as carried context only when someone who serves customers made it
    if let (Some(channel), true) = (channel, p.serves) {
        log_context_view(&st, &p, &ctx.profile, channel).await?;
    }
    Ok(Json(ctx))
}

/// The caller as the HTTP layer learns it; the use cases take the inner value.
pub struct ContextReader(pub cxm_app::customers::ContextReader);

impl std::ops::Deref for ContextReader {
    type Target = cxm_app::customers::ContextReader;
    fn deref(&self) -> &cxm_app::customers::ContextReader {
        &self.0
    }
}

impl axum::extract::FromRequestParts<Arc<AppState>> for ContextReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = crate::auth::header_credential(&parts.headers) {
            let key = state.keys.lookup(state, &token).await?;
            return match key.kind {
                cxm_store::KeyKind::Agent => Ok(ContextReader(cxm_app::customers::ContextReader {
                    tenant_id: key.tenant_id,
                    actor: format!("agent:{}", key.name),
                    serves: true,
                })),
                cxm_store::KeyKind::Secret => {
                    Ok(ContextReader(cxm_app::customers::ContextReader {
                        tenant_id: key.tenant_id,
                        actor: format!("key:{}", key.id),
                        serves: true,
                    }))
                }
                cxm_store::KeyKind::Write => Err(ApiError::new(
                    ErrorCode::WrongKeyKind,
                    "write keys only ingest; read context with an agent key or a secret key",
                )),
            };
        }
        let p = Principal::from_request_parts(parts, state).await?;
        Ok(ContextReader(cxm_app::customers::ContextReader {
            serves: p.role.can_administer() || p.role == cxm_store::Role::AgentOperator,
            tenant_id: p.0.tenant_id,
            actor: p.0.actor,
        }))
    }
}

/// The merge ledger of a customer: merges (with the event and identifier that caused them),
/// links the rules refused, and blocks.
#[utoipa::path(get, path = "/api/v1/customers/{id}/merges", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = MergeHistory), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn customer_merges(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<MergeHistory>> {
    let profile = load_profile(&st, &p.tenant_id, &id).await?;
    let (t, pid) = (p.tenant_id.clone(), profile.id.clone());
    let entries = st.store.run(move |s| s.ledger(&t, &pid)).await?;
    Ok(Json(MergeHistory {
        profile_id: profile.id,
        entries,
    }))
}

/// Unmerge: block an identifier of this customer and rebuild the identity graph without it.
/// Stored events are never rewritten. Owners and admins only.
#[utoipa::path(post, path = "/api/v1/customers/{id}/unmerge", tag = "customers", params(("id" = String, Path)), request_body = UnmergeRequest,
    responses((status = 200, body = UnmergeResult), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn unmerge(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UnmergeRequest>,
) -> ApiResult<Json<UnmergeResult>> {
    let reason = body.reason.unwrap_or_else(|| "unmerged".into());
    Ok(Json(
        do_unmerge(&st, &p, &id, &body.identifier, &reason).await?,
    ))
}

/// Events set aside with the reason, newest first, and what each day took in.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "ingest", params(LimitQuery),
    responses((status = 200, body = QuarantineList)), security(("bearer" = [])))]
pub async fn quarantine(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<Json<QuarantineList>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let t = p.0.tenant_id;
    Ok(Json(
        st.store.run(move |s| quarantine_list(s, &t, limit)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/overview", tag = "ingest", params(DaysQuery),
    responses((status = 200, body = Overview)), security(("bearer" = [])))]
pub async fn overview(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> ApiResult<Json<Overview>> {
    let days = q.days.unwrap_or(30).clamp(1, 365);
    let t = p.0.tenant_id;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(
        st.store.run(move |s| s.overview(&t, days, now)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, body = KeyList)), security(("bearer" = [])))]
pub async fn list_keys(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<KeyList>> {
    let t = p.0.tenant_id;
    Ok(Json(KeyList {
        keys: st.store.run(move |s| s.list_keys(&t)).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = Problem), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn create_key(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    p.require_admin()?;
    let kind = KeyKind::parse(&body.kind)
        .filter(|k| *k != KeyKind::Agent)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                "kind must be write or secret (agent keys are made per agent: POST /api/v1/agents/{name}/keys)",
            )
        })?;
    let name = body.name.unwrap_or_else(|| kind.as_str().to_string());
    if name.len() > 100 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "name is longer than 100 characters",
        ));
    }
    let (plain, record) = cxm_app::auth::generate_key(&p.tenant_id, kind, &name);
    let r = record.clone();
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    st.store
        .run(move |s| {
            s.insert_key(&r)?;
            cxm_app::audit::audit_action(
                s,
                &t,
                &actor,
                "key.created",
                &r.id,
                serde_json::json!({"kind": r.kind.as_str(), "name": r.name, "prefix": r.prefix}),
            )
            .map_err(|e| cxm_store::StoreError::Backend(e.detail))
        })
        .await?;
    tracing::info!(tenant = %p.tenant_id, actor = %Field(&p.actor), key = %record.id, kind = kind.as_str(), "key created");
    Ok((StatusCode::CREATED, Json(CreatedKey { key: plain, record })))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn revoke_key(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require_admin()?;
    let (t, i, actor) = (p.tenant_id.clone(), id.clone(), p.actor.clone());
    let revoked = st
        .store
        .run(move |s| {
            let done = s.revoke_key(&t, &i)?;
            if done {
                cxm_app::audit::audit_action(
                    s,
                    &t,
                    &actor,
                    "key.revoked",
                    &i,
                    serde_json::json!({}),
                )
                .map_err(|e| cxm_store::StoreError::Backend(e.detail))?;
            }
            Ok(done)
        })
        .await?;
    if !revoked {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no active key {id}"),
        ));
    }
    st.keys.invalidate_all();
    tracing::info!(tenant = %p.tenant_id, actor = %Field(&p.actor), key = %Field(&id), "key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// The standard cx event names with their category and implied channel.
#[utoipa::path(get, path = "/api/v1/taxonomy", tag = "ingest", responses((status = 200, body = Taxonomy)))]
pub async fn taxonomy() -> Json<Taxonomy> {
    Json(Taxonomy {
        events: KNOWN_EVENTS.to_vec(),
        channels: Channel::ALL.to_vec(),
    })
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {}", uri.path()))
}
