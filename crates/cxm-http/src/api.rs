//! The management API under `/api/v1`: customers and their context, the merge ledger and
//! unmerge, quarantine, overview, keys and the event taxonomy. Callers authenticate with a
//! secret key (`Authorization: Bearer`) or a dashboard session.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use cxm_domain::context::{self, RecentEvent};
use cxm_domain::taxonomy::{KnownEvent, KNOWN_EVENTS};
use cxm_domain::{Channel, EventCategory, Identifier};
use cxm_store::{
    ApiKey, KeyKind, LedgerEntry, Overview, Profile, ProfileSummary, QuarantineEntry, StoredEvent,
    TimelinePage,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::logsafe::Field;
use crate::AppState;

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
        let body = crate::ingest::read_body(&headers, req.into_body(), 1024 * 1024).await?;
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

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/events", post(crate::ingest::native))
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

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {}", uri.path()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindQuery {
    /// `type:value`, e.g. `email:ada@example.com`, `user_id:42`, `phone:+4420...`, `zendesk_id:981`.
    pub identifier: Option<String>,
    /// Free-text search over names and identifiers.
    pub q: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerList {
    pub customers: Vec<ProfileSummary>,
}

fn parse_identifier(s: &str) -> ApiResult<Identifier> {
    Identifier::parse_typed(s).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidParameter, format!("identifier {s:?} must be type:value with type user_id, anonymous_id, email, phone or an external id name, and a real value"))
    })
}

/// What a customer lookup answers: the profile, for `identifier=`, or a list, for `q=`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CustomerLookup {
    One(Profile),
    Many(CustomerList),
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

async fn load_profile(st: &AppState, tenant: &str, id: &str) -> ApiResult<Profile> {
    let (t, i) = (tenant.to_string(), id.to_string());
    st.store
        .run(move |s| s.profile(&t, &i))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no customer {id}")))
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContextQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub before: Option<String>,
    /// The channel of whoever reads, e.g. `voice` for an agent taking a call: the read is
    /// logged on the customer's timeline as a `Context Viewed` event, so a switch to that
    /// channel counts as context carried over rather than a re-explanation.
    pub channel: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SwitchContext {
    #[serde(flatten)]
    pub switch: context::ChannelSwitch,
    /// What happened on the previous channel, so nobody has to repeat their story.
    pub previous_channel_events: Vec<StoredEvent>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerContext {
    pub profile: Profile,
    /// One line for an agent picking up an escalation.
    pub summary: String,
    pub channel_switch: Option<SwitchContext>,
    /// Across every channel, newest first.
    pub timeline: Vec<StoredEvent>,
    pub next_cursor: Option<String>,
    /// Their value tier and why, when the value model has been computed.
    pub value: Option<crate::equity::ValueView>,
}

fn recent(e: &StoredEvent) -> RecentEvent {
    RecentEvent {
        name: e.name.clone(),
        event_type: e.event_type.clone(),
        category: serde_json::from_value(serde_json::Value::String(e.category.clone()))
            .unwrap_or(EventCategory::Uncategorized),
        channel: Channel::parse(&e.channel).unwrap_or(Channel::Other),
        timestamp: chrono::DateTime::from_timestamp_millis(e.timestamp_ms).unwrap_or_default(),
    }
}

pub fn parse_cursor(s: &str) -> ApiResult<(i64, i64)> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("cursor {s:?} is not one this api returned"),
        )
    };
    let (a, b) = s.split_once('_').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

pub async fn build_context(
    st: &AppState,
    tenant: &str,
    id: &str,
    limit: u32,
    before: Option<(i64, i64)>,
) -> ApiResult<CustomerContext> {
    let profile = load_profile(st, tenant, id).await?;
    let (t, p2) = (tenant.to_string(), profile.clone());
    let (timeline, latest) = st
        .store
        .run(move |s| {
            let page = s.timeline(&t, &p2, &TimelinePage { before, limit })?;
            let latest = if before.is_none() && limit >= 100 {
                page.iter().take(100).cloned().collect()
            } else {
                s.timeline(
                    &t,
                    &p2,
                    &TimelinePage {
                        before: None,
                        limit: 100,
                    },
                )?
            };
            Ok((page, latest))
        })
        .await?;
    let recents: Vec<RecentEvent> = latest.iter().map(recent).collect();
    let summary = context::summary(&recents, chrono::Utc::now());
    let channel_switch = context::channel_switch(&recents).map(|sw| {
        let from = sw.from.as_str();
        let previous_channel_events = latest
            .iter()
            .filter(|e| e.channel == from)
            .take(5)
            .cloned()
            .collect();
        SwitchContext {
            switch: sw,
            previous_channel_events,
        }
    });
    let next_cursor = (timeline.len() as u32 == limit)
        .then(|| {
            timeline
                .last()
                .map(|e| format!("{}_{}", e.timestamp_ms, e.seq))
        })
        .flatten();
    let value = st
        .equity
        .peek(tenant)
        .and_then(|c| crate::equity::value_of(&c, &profile.id));
    Ok(CustomerContext {
        profile,
        summary,
        channel_switch,
        timeline,
        next_cursor,
        value,
    })
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

/// Who reads a customer's context: an agent's key (bound to it), a secret key (a support
/// tool), or a signed-in user. `serves` says whether the read is someone serving the
/// customer (agents, support tools, agent operators, owners and admins), which is what a
/// `Context Viewed` event records; analysts and viewers read without leaving a trace on
/// the customer's journey.
pub struct ContextReader {
    pub tenant_id: String,
    pub actor: String,
    pub serves: bool,
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
                cxm_store::KeyKind::Agent => Ok(ContextReader {
                    tenant_id: key.tenant_id,
                    actor: format!("agent:{}", key.name),
                    serves: true,
                }),
                cxm_store::KeyKind::Secret => Ok(ContextReader {
                    tenant_id: key.tenant_id,
                    actor: format!("key:{}", key.id),
                    serves: true,
                }),
                cxm_store::KeyKind::Write => Err(ApiError::new(
                    ErrorCode::WrongKeyKind,
                    "write keys only ingest; read context with an agent key or a secret key",
                )),
            };
        }
        let p = Principal::from_request_parts(parts, state).await?;
        Ok(ContextReader {
            serves: p.role.can_administer() || p.role == cxm_store::Role::AgentOperator,
            tenant_id: p.tenant_id,
            actor: p.actor,
        })
    }
}

/// Puts a `Context Viewed` event on the customer's timeline: who read their context, for
/// which channel. A customer known by neither a user nor an anonymous id has no timeline
/// to put it on; the read is then not logged.
async fn log_context_view(
    st: &AppState,
    p: &ContextReader,
    profile: &Profile,
    channel: cxm_domain::taxonomy::Channel,
) -> ApiResult<()> {
    let id_of = |kind: &str| {
        profile
            .identifiers
            .iter()
            .find(|i| i.kind == kind)
            .map(|i| i.value.clone())
    };
    let now = chrono::Utc::now();
    let mut msg = serde_json::json!({"type": "track", "event": cxm_domain::journey_progress::CONTEXT_VIEWED,
        "messageId": format!("ctx-{}", uuid::Uuid::new_v4().simple()), "timestamp": now.to_rfc3339(),
        "context": {"channel": channel.as_str()}, "properties": {"viewer": p.actor}});
    match (id_of("user_id"), id_of("anonymous_id")) {
        (Some(u), _) => msg["userId"] = u.into(),
        (None, Some(a)) => msg["anonymousId"] = a.into(),
        (None, None) => return Ok(()),
    }
    let clock = cxm_domain::Clock {
        received_at: now,
        batch_sent_at: None,
    };
    let opts = cxm_domain::IngestOptions {
        trust_timestamps: true,
        ..Default::default()
    };
    let event = cxm_domain::normalize(&msg, 0, &clock, &opts)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("context view: {e:?}")))?;
    let tenant = p.tenant_id.clone();
    st.store
        .run(move |s| {
            s.append(&[cxm_store::AppendRequest {
                tenant_id: tenant,
                write_key_id: "cxm-context".into(),
                events: vec![event],
                quarantined: Default::default(),
            }])
        })
        .await?;
    Ok(())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MergeHistory {
    pub profile_id: String,
    pub entries: Vec<LedgerEntry>,
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UnmergeRequest {
    /// The identifier to block, `type:value`; it must belong to this customer.
    pub identifier: String,
    pub reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UnmergeResult {
    pub blocked: String,
    pub events_replayed: u64,
    /// Where the customer's remaining identifiers live now.
    pub profile: Option<Profile>,
}

pub async fn do_unmerge(
    st: &AppState,
    p: &Principal,
    id: &str,
    identifier: &str,
    reason: &str,
) -> ApiResult<UnmergeResult> {
    p.require_admin()?;
    let ident = parse_identifier(identifier)?;
    let profile = load_profile(st, &p.tenant_id, id).await?;
    let kind = ident.kind_str();
    if !profile
        .identifiers
        .iter()
        .any(|i| i.kind == kind && i.value == ident.value)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("{identifier} does not belong to customer {}", profile.id),
        ));
    }
    let keep = profile
        .identifiers
        .iter()
        .find(|i| !(i.kind == kind && i.value == ident.value))
        .map(|i| format!("{}:{}", i.kind, i.value));
    let (t, actor, reason) = (p.tenant_id.clone(), p.actor.clone(), reason.to_string());
    let stats = st
        .store
        .run(move |s| {
            let stats = s.block_identifier(&t, &ident, &reason, &actor)?;
            crate::audit::audit_action(
                s,
                &t,
                &actor,
                "identity.unmerged",
                // the identifier goes in the body, which an erasure can redact
                "identity",
                serde_json::json!({"identifier": format!("{}:{}", ident.kind_str(), ident.value), "reason": reason, "events_replayed": stats.events}),
            )
            .map_err(|e| cxm_store::StoreError::Backend(e.detail))?;
            let profile = match keep.as_deref().and_then(Identifier::parse_typed) {
                Some(k) => match s.profile_for(&t, &k)? {
                    Some(pid) => s.profile(&t, &pid)?,
                    None => None,
                },
                None => None,
            };
            Ok((stats, profile))
        })
        .await?;
    tracing::info!(tenant = %p.tenant_id, actor = %Field(&p.actor), identifier = %Field(identifier), "identifier blocked and identity rebuilt");
    Ok(UnmergeResult {
        blocked: identifier.to_string(),
        events_replayed: stats.0.events,
        profile: stats.1,
    })
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuarantineList {
    pub entries: Vec<QuarantineEntry>,
    /// The last 14 days: events rejected and rows kept. A request keeps a sample of its
    /// rejected events (and a summary row for the rest); a day keeps rows up to its caps.
    pub days: Vec<cxm_store::QuarantineDay>,
}

/// Days of quarantine tallies the list and the page show.
pub const QUARANTINE_DAYS_SHOWN: i64 = 14;

pub fn quarantine_list(
    store: &dyn cxm_store::Store,
    tenant: &str,
    limit: u32,
) -> cxm_store::Result<QuarantineList> {
    let since = (chrono::Utc::now() - chrono::Duration::days(QUARANTINE_DAYS_SHOWN - 1))
        .format("%Y-%m-%d")
        .to_string();
    Ok(QuarantineList {
        entries: store.quarantine(tenant, limit)?,
        days: store.quarantine_days(tenant, &since)?,
    })
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
    let t = p.tenant_id;
    Ok(Json(
        st.store.run(move |s| quarantine_list(s, &t, limit)).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// Days of history, 1–365 (default 30).
    pub days: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/overview", tag = "ingest", params(DaysQuery),
    responses((status = 200, body = Overview)), security(("bearer" = [])))]
pub async fn overview(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> ApiResult<Json<Overview>> {
    let days = q.days.unwrap_or(30).clamp(1, 365);
    let t = p.tenant_id;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(
        st.store.run(move |s| s.overview(&t, days, now)).await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, body = KeyList)), security(("bearer" = [])))]
pub async fn list_keys(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<KeyList>> {
    let t = p.tenant_id;
    Ok(Json(KeyList {
        keys: st.store.run(move |s| s.list_keys(&t)).await?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewKey {
    /// `write` (ingest only) or `secret` (management api).
    pub kind: String,
    pub name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// Shown once; only its hash is stored.
    pub key: String,
    pub record: ApiKey,
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
    let (plain, record) = crate::auth::generate_key(&p.tenant_id, kind, &name);
    let r = record.clone();
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    st.store
        .run(move |s| {
            s.insert_key(&r)?;
            crate::audit::audit_action(
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
                crate::audit::audit_action(s, &t, &actor, "key.revoked", &i, serde_json::json!({}))
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct Taxonomy {
    pub events: Vec<KnownEvent>,
    pub channels: Vec<Channel>,
}

/// The standard cx event names with their category and implied channel.
#[utoipa::path(get, path = "/api/v1/taxonomy", tag = "ingest", responses((status = 200, body = Taxonomy)))]
pub async fn taxonomy() -> Json<Taxonomy> {
    Json(Taxonomy {
        events: KNOWN_EVENTS.to_vec(),
        channels: Channel::ALL.to_vec(),
    })
}
