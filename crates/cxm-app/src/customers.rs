//! The management API under `/api/v1`: customers and their context, the merge ledger and
//! unmerge, quarantine, overview, keys and the event taxonomy. Callers authenticate with a
//! secret key (`Authorization: Bearer`) or a dashboard session.

use cxm_domain::context::{self, RecentEvent};
use cxm_domain::taxonomy::KnownEvent;
use cxm_domain::{Channel, EventCategory, Identifier};
use cxm_store::{
    ApiKey, LedgerEntry, Profile, ProfileSummary, QuarantineEntry, StoredEvent, TimelinePage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Principal;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::logsafe::Field;
use crate::App;

pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
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

pub fn parse_identifier(s: &str) -> AppResult<Identifier> {
    Identifier::parse_typed(s).ok_or_else(|| {
        AppError::new(ErrorCode::InvalidParameter, format!("identifier {s:?} must be type:value with type user_id, anonymous_id, email, phone or an external id name, and a real value"))
    })
}

/// What a customer lookup answers: the profile, for `identifier=`, or a list, for `q=`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CustomerLookup {
    One(Profile),
    Many(CustomerList),
}

pub async fn load_profile(st: &App, tenant: &str, id: &str) -> AppResult<Profile> {
    let (t, i) = (tenant.to_string(), id.to_string());
    st.store
        .run(move |s| s.profile(&t, &i))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no customer {id}")))
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

pub fn recent(e: &StoredEvent) -> RecentEvent {
    RecentEvent {
        name: e.name.clone(),
        event_type: e.event_type.clone(),
        category: serde_json::from_value(serde_json::Value::String(e.category.clone()))
            .unwrap_or(EventCategory::Uncategorized),
        channel: Channel::parse(&e.channel).unwrap_or(Channel::Other),
        timestamp: chrono::DateTime::from_timestamp_millis(e.timestamp_ms).unwrap_or_default(),
    }
}

pub fn parse_cursor(s: &str) -> AppResult<(i64, i64)> {
    let bad = || {
        AppError::new(
            ErrorCode::InvalidParameter,
            format!("cursor {s:?} is not one this api returned"),
        )
    };
    let (a, b) = s.split_once('_').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

pub async fn build_context(
    st: &App,
    tenant: &str,
    id: &str,
    limit: u32,
    before: Option<(i64, i64)>,
) -> AppResult<CustomerContext> {
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

/// Puts a `Context Viewed` event on the customer's timeline: who read their context, for
/// which channel. A customer known by neither a user nor an anonymous id has no timeline
/// to put it on; the read is then not logged.
pub async fn log_context_view(
    st: &App,
    p: &ContextReader,
    profile: &Profile,
    channel: cxm_domain::taxonomy::Channel,
) -> AppResult<()> {
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
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("context view: {e:?}")))?;
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
    st: &App,
    p: &Principal,
    id: &str,
    identifier: &str,
    reason: &str,
) -> AppResult<UnmergeResult> {
    p.require_admin()?;
    let ident = parse_identifier(identifier)?;
    let profile = load_profile(st, &p.tenant_id, id).await?;
    let kind = ident.kind_str();
    if !profile
        .identifiers
        .iter()
        .any(|i| i.kind == kind && i.value == ident.value)
    {
        return Err(AppError::new(
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// Days of history, 1–365 (default 30).
    pub days: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct Taxonomy {
    pub events: Vec<KnownEvent>,
    pub channels: Vec<Channel>,
}

/// One customer whole, beside their timeline: what they are worth, their accounts' health,
/// what they said (each score with its comment), and the alerts and tickets about them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Customer360 {
    #[schema(value_type = Option<Object>)]
    pub value: Option<crate::equity::ValueView>,
    #[schema(value_type = Vec<Object>)]
    pub accounts: Vec<cxm_store::AccountHealthRow>,
    /// Their answers, newest first (at most 100).
    #[schema(value_type = Vec<Object>)]
    pub answers: Vec<cxm_store::ProfileAnswer>,
    /// The latest NPS and CSAT answers, with the text given in the same response.
    #[schema(value_type = Option<Object>)]
    pub latest_nps: Option<cxm_store::ProfileAnswer>,
    #[schema(value_type = Option<Object>)]
    pub latest_csat: Option<cxm_store::ProfileAnswer>,
    pub comment: Option<String>,
    /// Unresolved alerts on their accounts.
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<cxm_store::Alert>,
    /// Open tickets that name them or one of their accounts.
    #[schema(value_type = Vec<Object>)]
    pub tickets: Vec<cxm_store::Ticket>,
}

pub async fn customer_360(
    st: &std::sync::Arc<App>,
    tenant: &str,
    profile: &Profile,
) -> AppResult<Customer360> {
    let (t, p) = (tenant.to_string(), profile.clone());
    let (accounts, answers, alerts, tickets) = crate::blocking(st, move |s| {
        let mut accounts = vec![];
        for g in &p.accounts {
            if let Some(h) = s.account_health_one(&t, g)? {
                accounts.push(h);
            }
        }
        let answers = s.profile_answers(&t, &p.id, 100)?;
        let mut alerts = s.list_alerts(&t, Some("open"), 10_000)?;
        alerts.extend(s.list_alerts(&t, Some("acknowledged"), 10_000)?);
        alerts.retain(|a| p.accounts.contains(&a.group_id));
        let typed: Vec<String> = p
            .identifiers
            .iter()
            .map(|i| format!("{}:{}", i.kind, i.value))
            .collect();
        let names = |k: &cxm_store::Ticket, key: &str, any: &[String]| {
            k.impact[key].as_array().is_some_and(|xs| {
                xs.iter()
                    .any(|x| x.as_str().is_some_and(|x| any.iter().any(|a| a == x)))
            })
        };
        let tickets = s
            .list_tickets(&t, None, 1000)?
            .into_iter()
            .filter(|k| k.closed_at_ms.is_none())
            .filter(|k| names(k, "identifiers", &typed) || names(k, "accounts", &p.accounts))
            .collect();
        Ok((accounts, answers, alerts, tickets))
    })
    .await?;
    let value = crate::equity::current(st, tenant)
        .await
        .ok()
        .and_then(|c| crate::equity::value_of(&c, &profile.id));
    let latest = |ty: &str| answers.iter().find(|a| a.field_type == ty).cloned();
    let (latest_nps, latest_csat) = (latest("nps"), latest("csat"));
    let comment = latest_nps
        .as_ref()
        .or(latest_csat.as_ref())
        .and_then(|scored| {
            answers
                .iter()
                .find(|a| a.response_id == scored.response_id && a.field_type == "text")
        })
        .and_then(|a| a.text.clone());
    Ok(Customer360 {
        value,
        accounts,
        answers,
        latest_nps,
        latest_csat,
        comment,
        alerts,
        tickets,
    })
}
