//! Agents as principals: registering them, their keys, and their KPIs (outcomes, escalation,
//! reversal, and the resolution rate with its 7-day repeat-contact window).

use std::collections::BTreeMap;

use cxm_domain::identity::{Identifier, IdentifierKind};
use cxm_store::{Agent, DecisionQuery, Store, StoredDecision};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub name: String,
    /// bot, voice, automation, ... (default bot)
    pub kind: Option<String>,
    #[serde(default)]
    pub description: String,
    /// What its messages to customers must say about it (default "I'm an automated assistant.").
    pub disclosure: Option<String>,
    /// Disable (true) or re-enable (false) the agent; a disabled agent's asks are refused.
    #[serde(default)]
    pub disabled: bool,
}

pub const DEFAULT_DISCLOSURE: &str = "I'm an automated assistant.";

pub fn valid_agent_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn register(store: &dyn Store, tenant: &str, actor: &str, a: &NewAgent) -> AppResult<Agent> {
    if !valid_agent_name(&a.name) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "agent names are 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let kind = a.kind.clone().unwrap_or_else(|| "bot".into());
    if !valid_agent_name(&kind) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "kind is 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let disclosure = a
        .disclosure
        .clone()
        .unwrap_or_else(|| DEFAULT_DISCLOSURE.into());
    if disclosure.trim().is_empty() || disclosure.len() > 500 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "disclosure must say, in 1 to 500 bytes, that the customer is talking to an automated agent",
        ));
    }
    if a.description.len() > 2000 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "description is longer than 2000 bytes",
        ));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let existing = store.agent(tenant, &a.name)?;
    let agent = Agent {
        name: a.name.clone(),
        kind,
        description: a.description.clone(),
        disclosure,
        created_by: existing
            .as_ref()
            .map(|e| e.created_by.clone())
            .unwrap_or_else(|| actor.to_string()),
        created_at_ms: existing.as_ref().map(|e| e.created_at_ms).unwrap_or(now),
        disabled_at_ms: a.disabled.then(|| {
            existing
                .as_ref()
                .and_then(|e| e.disabled_at_ms)
                .unwrap_or(now)
        }),
    };
    store.save_agent(tenant, &agent)?;
    store.append_audit(
        tenant,
        &cxm_domain::audit::NewAuditEntry {
            actor: actor.to_string(),
            kind: "agent.saved".into(),
            subject: format!("agent:{}", agent.name),
            body: json!({"name": agent.name, "kind": agent.kind, "disclosure": agent.disclosure, "disabled": a.disabled}).to_string(),
        },
    )?;
    Ok(agent)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentStats {
    pub agent: Agent,
    #[serde(flatten)]
    pub kpis: AgentKpis,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct AgentKpis {
    /// Over the most recent decisions (up to 500).
    pub decisions: usize,
    pub by_outcome: BTreeMap<String, usize>,
    /// Share of asks sent to a human before acting.
    pub escalation_rate: Option<f64>,
    /// Escalations counted by the policy that escalated them.
    pub escalations_by_reason: BTreeMap<String, usize>,
    pub reviewed: usize,
    pub reversed: usize,
    /// Reversed / reviewed: how often a human undid what the agent did.
    pub reversal_rate: Option<f64>,
    /// Per action: asks and the share allowed outright.
    pub by_action: BTreeMap<String, ActionKpi>,
    /// Share of asks the agent acted on without a human deciding first (allow or review).
    /// Shown for contrast: deflection alone is no win.
    pub deflection_rate: Option<f64>,
    /// Outcomes the agent reported.
    pub reported: usize,
    /// Reported resolved, acted on without a human (not reversed), and the customer did not
    /// contact again on a conversation or support channel within 7 days.
    pub resolved: usize,
    /// Reported unresolved, reversed by a human, or followed by a repeat contact.
    pub not_resolved: usize,
    /// Reported resolved, but the 7 days are not over yet.
    pub resolution_pending: usize,
    /// resolved / (resolved + not_resolved): the agent's KPI.
    pub resolution_rate: Option<f64>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ActionKpi {
    pub asks: usize,
    pub allowed: usize,
    pub escalated: usize,
    pub reversed: usize,
}

pub fn kpis(ds: &[StoredDecision]) -> AgentKpis {
    let mut k = AgentKpis {
        decisions: ds.len(),
        ..Default::default()
    };
    for d in ds {
        let r = &d.record;
        *k.by_outcome.entry(r.outcome.clone()).or_default() += 1;
        let a = k.by_action.entry(r.action.clone()).or_default();
        a.asks += 1;
        match r.outcome.as_str() {
            "allow" => a.allowed += 1,
            "escalate" => {
                a.escalated += 1;
                let why = r
                    .policy_ids
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "no policy".into());
                *k.escalations_by_reason.entry(why).or_default() += 1;
            }
            _ => {}
        }
        match d.review_status.as_deref() {
            Some("approved") => k.reviewed += 1,
            Some("reversed") => {
                k.reviewed += 1;
                k.reversed += 1;
                a.reversed += 1;
            }
            _ => {}
        }
    }
    let escalated = k.by_outcome.get("escalate").copied().unwrap_or(0);
    k.escalation_rate = (!ds.is_empty()).then(|| escalated as f64 / ds.len() as f64);
    k.reversal_rate = (k.reviewed > 0).then(|| k.reversed as f64 / k.reviewed as f64);
    let acted = ds
        .iter()
        .filter(|d| matches!(d.record.outcome.as_str(), "allow" | "review"))
        .count();
    k.deflection_rate = (!ds.is_empty()).then(|| acted as f64 / ds.len() as f64);
    k
}

/// How long after an agent's action a new contact counts as the same problem coming back.
pub const REPEAT_WINDOW_MS: i64 = 7 * 86_400_000;

/// Whether the customer came back on a conversation or support channel within the window
/// after `at_ms`: Some(true) they did, Some(false) the window closed without, None not yet known.
pub fn repeat_contact(
    store: &dyn Store,
    tenant: &str,
    customer: &str,
    at_ms: i64,
    now_ms: i64,
) -> AppResult<Option<bool>> {
    let until = at_ms + REPEAT_WINDOW_MS;
    let identifier = Identifier::parse_typed(customer)
        .or_else(|| Identifier::parse(IdentifierKind::UserId, customer));
    let profile = match identifier {
        Some(i) => match store.profile_for(tenant, &i)? {
            Some(p) => store.profile(tenant, &p)?,
            None => None,
        },
        None => None,
    };
    if let Some(p) = profile {
        let recent = store.timeline(
            tenant,
            &p,
            &cxm_store::TimelinePage {
                before: None,
                limit: 500,
            },
        )?;
        let came_back = recent.iter().any(|e| {
            e.timestamp_ms > at_ms
                && e.timestamp_ms <= until
                && matches!(e.category.as_str(), "conversation" | "support")
        });
        if came_back {
            return Ok(Some(true));
        }
    }
    Ok((now_ms > until).then_some(false))
}

/// Resolution, the agent's KPI: see [`AgentKpis::resolution_rate`].
pub fn resolution(
    store: &dyn Store,
    tenant: &str,
    ds: &[StoredDecision],
    k: &mut AgentKpis,
    now_ms: i64,
) -> AppResult<()> {
    for d in ds.iter().filter(|d| d.resolved.is_some()) {
        k.reported += 1;
        let acted_alone = matches!(d.record.outcome.as_str(), "allow" | "review")
            && d.review_status.as_deref() != Some("reversed");
        if d.resolved != Some(true) || !acted_alone {
            k.not_resolved += 1;
            continue;
        }
        match repeat_contact(store, tenant, &d.record.customer, d.record.at_ms, now_ms)? {
            Some(true) => k.not_resolved += 1,
            Some(false) => k.resolved += 1,
            None => k.resolution_pending += 1,
        }
    }
    let closed = k.resolved + k.not_resolved;
    k.resolution_rate = (closed > 0).then(|| k.resolved as f64 / closed as f64);
    Ok(())
}

pub fn agent_stats(store: &dyn Store, tenant: &str) -> AppResult<Vec<AgentStats>> {
    let mut out = vec![];
    let now = chrono::Utc::now().timestamp_millis();
    for agent in store.agents(tenant)? {
        let ds = store.decisions(
            tenant,
            &DecisionQuery {
                agent: Some(agent.name.clone()),
                limit: 500,
                ..Default::default()
            },
        )?;
        let mut k = kpis(&ds);
        resolution(store, tenant, &ds, &mut k, now)?;
        out.push(AgentStats { kpis: k, agent });
    }
    Ok(out)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentStats>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentKey {
    /// Shown once.
    pub key: String,
    pub record: cxm_store::ApiKey,
}
