//! The customer's rights over HTTP: erasure (everything about a person removed, a tombstone
//! and an audit entry kept) and access (everything cxm holds about them, in one document).

use std::collections::BTreeMap;

use cxm_domain::consent::{self, ConsentRecord, ConsentStatus};
use cxm_store::{
    DecisionQuery, Profile, RecentAnswer, Store, StoredDecision, StoredEvent, TimelinePage,
};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::logsafe::Field;

/// The profile an id names: a profile id, or a typed identifier (`email:a@b.com`).
pub fn resolve(store: &dyn Store, tenant: &str, id: &str) -> AppResult<Profile> {
    let by_identifier = cxm_domain::identity::Identifier::parse_typed(id)
        .map(|i| store.profile_for(tenant, &i))
        .transpose()?
        .flatten();
    let pid = by_identifier.unwrap_or_else(|| id.to_string());
    store.profile(tenant, &pid)?.ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            format!("no customer {id:?} in this tenant"),
        )
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// The tombstone: it names no one.
    pub erasure_id: String,
    /// Rows removed or redacted, by kind.
    pub removed: BTreeMap<String, u64>,
}

pub fn erase_customer(store: &dyn Store, tenant: &str, id: &str, actor: &str) -> AppResult<Erased> {
    let profile = resolve(store, tenant, id)?;
    let erasure_id = format!("era_{}", uuid::Uuid::now_v7().simple());
    let removed = store
        .erase_customer(tenant, &profile.id, &erasure_id, actor)?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("no customer {id:?} in this tenant"),
            )
        })?;
    tracing::info!(tenant, erasure = %erasure_id, actor = %Field(actor), "customer erased");
    Ok(Erased {
        erasure_id,
        removed,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub profile: Profile,
    /// Every event, newest first.
    pub events: Vec<StoredEvent>,
    pub answers: Vec<RecentAnswer>,
    pub decisions: Vec<StoredDecision>,
    /// Every row cxm holds that names or describes them, as stored, under the kinds an
    /// erasure counts (events, answers, consents, step-ups, tickets and notes naming them,
    /// survey links and invitations, ledger entries, quarantined events, webhook
    /// deliveries, ...): exactly what an erasure would remove.
    #[schema(value_type = Object)]
    pub held: BTreeMap<String, Vec<serde_json::Value>>,
    pub exported_at: String,
}

pub const EXPORT_EVENTS: usize = 100_000;

pub fn export_customer(store: &dyn Store, tenant: &str, id: &str) -> AppResult<Export> {
    let profile = resolve(store, tenant, id)?;
    let mut events = vec![];
    let mut before = None;
    loop {
        let page = store.timeline(
            tenant,
            &profile,
            &TimelinePage {
                before,
                limit: 1000,
            },
        )?;
        let Some(last) = page.last() else { break };
        before = Some((last.timestamp_ms, last.seq));
        let n = page.len();
        events.extend(page);
        if n < 1000 || events.len() >= EXPORT_EVENTS {
            break;
        }
    }
    let answers = store.recent_answers(tenant, &profile.id, 0, 100_000)?;
    let mut decisions = vec![];
    for i in &profile.identifiers {
        for name in [format!("{}:{}", i.kind, i.value), i.value.clone()] {
            decisions.extend(store.decisions(
                tenant,
                &DecisionQuery {
                    customer: Some(name),
                    limit: 10_000,
                    ..Default::default()
                },
            )?);
        }
    }
    decisions.sort_by_key(|d| (std::cmp::Reverse(d.record.at_ms), d.record.id.clone()));
    decisions.dedup_by(|a, b| a.record.id == b.record.id);
    let (held, _) = store
        .customer_holdings(tenant, &profile.id)?
        .unwrap_or_default();
    Ok(Export {
        profile,
        events,
        answers,
        decisions,
        held,
        exported_at: chrono::Utc::now().to_rfc3339(),
    })
}

/// Why the customer named by a typed identifier may not be contacted for `purpose` on
/// `channel`, or None when they may (or cxm does not know them).
pub fn declined(
    store: &dyn Store,
    tenant: &str,
    identifier: &str,
    purpose: &str,
    channel: &str,
) -> cxm_store::Result<Option<String>> {
    let Some(i) = cxm_domain::identity::Identifier::parse_typed(identifier) else {
        return Ok(None);
    };
    let Some(pid) = store.profile_for(tenant, &i)? else {
        return Ok(None);
    };
    let records = store.consents(tenant, &pid)?;
    Ok(match consent::allowed(&records, purpose, channel) {
        (true, _) => None,
        (false, Some(r)) => Some(format!(
            "the customer {} {purpose} on {} ({} via {})",
            r.status.as_str(),
            if r.channel == "*" {
                "every channel"
            } else {
                r.channel.as_str()
            },
            chrono::DateTime::from_timestamp_millis(r.at_ms)
                .map(|d| d.date_naive().to_string())
                .unwrap_or_default(),
            r.source
        )),
        (false, None) => Some(format!(
            "{purpose} needs the customer's consent, which was never given"
        )),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsent {
    /// surveys, service_updates, marketing or profiling.
    pub purpose: String,
    /// A channel, or `*` (default) for every channel.
    pub channel: Option<String>,
    pub status: ConsentStatus,
    /// Where the customer said it (default `api`).
    pub source: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub profile_id: String,
    /// For each purpose: allowed on every channel now, and the record that decided.
    pub current: Vec<PurposeState>,
    /// Newest first.
    pub history: Vec<ConsentRecord>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeState {
    pub purpose: String,
    /// `*` (every channel), or a channel with a record of its own.
    pub channel: String,
    pub allowed: bool,
    pub decided_by: Option<ConsentRecord>,
}

pub fn consent_view(store: &dyn Store, tenant: &str, profile: &Profile) -> AppResult<ConsentView> {
    let history = store.consents(tenant, &profile.id)?;
    let mut current = vec![];
    for p in consent::PURPOSES {
        let mut channels: Vec<&str> = vec!["*"];
        for r in history
            .iter()
            .filter(|r| r.purpose == *p && r.channel != "*")
        {
            if !channels.contains(&r.channel.as_str()) {
                channels.push(&r.channel);
            }
        }
        for ch in channels {
            let (allowed, by) = consent::allowed(&history, p, ch);
            current.push(PurposeState {
                purpose: p.to_string(),
                channel: ch.to_string(),
                allowed,
                decided_by: by.cloned(),
            });
        }
    }
    Ok(ConsentView {
        profile_id: profile.id.clone(),
        current,
        history,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Retention {
    /// Days kept, by data class; a class without a period is kept until erased.
    pub periods: BTreeMap<String, i64>,
    pub classes: Vec<&'static str>,
}

/// Sets retention periods: `{"events": 365, "feedback_text": 730, "transcripts": 90,
/// "quarantine": 14}`; `null` returns a class to its default (kept until erased; quarantine
/// 30 days). Each change is on the audit chain.
pub fn set_retention(
    store: &dyn Store,
    tenant: &str,
    actor: &str,
    periods: &serde_json::Map<String, serde_json::Value>,
) -> AppResult<BTreeMap<String, i64>> {
    let mut changes = vec![];
    for (class, v) in periods {
        if !cxm_store::DATA_CLASSES.contains(&class.as_str()) {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "no data class {class:?}; known: {}",
                    cxm_store::DATA_CLASSES.join(", ")
                ),
            ));
        }
        let days = match v {
            serde_json::Value::Null => None,
            v => match v.as_i64().filter(|d| (1..=36_500).contains(d)) {
                Some(d) => Some(d),
                None => {
                    return Err(AppError::new(
                        ErrorCode::InvalidParameter,
                        format!("{class} must be a whole number of days from 1 to 36500, or null"),
                    ))
                }
            },
        };
        changes.push((class.clone(), days));
    }
    for (class, days) in changes {
        store.set_retention(tenant, &class, days, actor)?;
    }
    Ok(cxm_store::effective_retention(store.retention(tenant)?))
}
