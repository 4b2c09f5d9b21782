//! Agent policies: the compiled set per tenant (re-read every few seconds), the versions,
//! saving and activating them, and replaying recorded decisions through a candidate set.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cxm_policy::{Ask, CustomerFacts, Facts, Policies, PolicyError};
use cxm_store::{DecisionQuery, PolicySetRow, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::blocking;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

/// Compiled policies per tenant, re-read from the store every few seconds so a version
/// activated by another server (or the CLI) applies without a restart.
/// When it was read, the version, the compiled set.
pub type Compiled = (Instant, i64, Arc<Policies>);

#[derive(Default)]
pub struct PolicyCache {
    pub by_tenant: Mutex<HashMap<String, Compiled>>,
}

pub const POLICY_TTL: Duration = Duration::from_secs(2);

impl PolicyCache {
    pub fn invalidate(&self, tenant: &str) {
        self.by_tenant
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    fn fresh(&self, tenant: &str) -> Option<(i64, Arc<Policies>)> {
        let m = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        m.get(tenant)
            .filter(|(at, _, _)| at.elapsed() < POLICY_TTL)
            .map(|(_, v, p)| (*v, p.clone()))
    }
}

/// The tenant's active policies; a tenant without any starts on the default matrix, saved
/// as version 1 so every decision names a stored version.
pub fn active_policies(store: &dyn Store, tenant: &str) -> AppResult<(i64, Policies)> {
    let row = match store.active_policy_set(tenant)? {
        Some(r) => r,
        None => {
            store.save_policy_set(
                tenant,
                cxm_policy::DEFAULT_POLICIES,
                "the default authority matrix",
                "cxm",
                true,
            )?;
            store.active_policy_set(tenant)?.ok_or_else(|| {
                AppError::new(ErrorCode::Internal, "the default policies were not saved")
            })?
        }
    };
    let p = Policies::compile(&row.text).map_err(|e| {
        // stored versions were valid when saved; a failure here is ours, and fails closed
        AppError::new(
            ErrorCode::Internal,
            format!(
                "active policy version {} does not compile: {e}",
                row.version
            ),
        )
    })?;
    Ok((row.version, p))
}

pub async fn cached_policies(st: &App, tenant: &str) -> AppResult<(i64, Arc<Policies>)> {
    if let Some(hit) = st.policies.fresh(tenant) {
        return Ok(hit);
    }
    let t = tenant.to_string();
    let (v, p) = blocking(st, move |s| active_policies(s, &t)).await?;
    let p = Arc::new(p);
    st.policies
        .by_tenant
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(tenant.to_string(), (Instant::now(), v, p.clone()));
    Ok((v, p))
}

/// A policy change on a staged rollout: a running experiment of kind `policy` whose target
/// is a saved (not necessarily active) version. Customers inside the rollout and outside the
/// control arm are decided by the candidate; a guardrail breach or a manual rollback stops
/// the experiment, and everyone is back on the active version within the cache's two seconds.
pub struct Rollout {
    pub experiment: cxm_domain::experiment::ExperimentDef,
    pub percent: f64,
    pub version: i64,
    pub policies: Arc<Policies>,
}

#[derive(Default)]
pub struct RolloutCache(Mutex<HashMap<String, CachedRollout>>);

/// When it was looked up, and what was found.
pub type CachedRollout = (Instant, Option<Arc<Rollout>>);

/// The tenant's running policy rollout, if any (the newest when there are several).
pub fn running_rollout(store: &dyn Store, tenant: &str) -> AppResult<Option<Rollout>> {
    for e in store.experiments(tenant)? {
        if e.status != "running" || !e.definition.contains("\"kind\":\"policy\"") {
            continue;
        }
        let def: cxm_domain::experiment::ExperimentDef = match serde_json::from_str(&e.definition) {
            Ok(d) => d,
            Err(_) => continue,
        };
        let Ok(version) = def.target.trim().parse::<i64>() else {
            continue;
        };
        let Some(row) = store
            .policy_sets(tenant)?
            .into_iter()
            .find(|p| p.version == version)
        else {
            continue;
        };
        let Ok(policies) = Policies::compile(&row.text) else {
            continue;
        };
        return Ok(Some(Rollout {
            experiment: def,
            percent: e.rollout_percent,
            version,
            policies: Arc::new(policies),
        }));
    }
    Ok(None)
}

/// Which policies decide for this customer: the candidate of a running policy rollout when
/// they are in it (with the exposure to record), else the active version.
pub async fn policies_for(
    st: &App,
    tenant: &str,
    customer: &str,
) -> AppResult<(i64, Arc<Policies>, Option<cxm_store::Exposure>)> {
    let rollout = {
        let fresh = st
            .rollouts
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .filter(|(at, _)| at.elapsed() < POLICY_TTL)
            .map(|(_, r)| r.clone());
        match fresh {
            Some(r) => r,
            None => {
                let t = tenant.to_string();
                let r = blocking(st, move |s| running_rollout(s, &t))
                    .await?
                    .map(Arc::new);
                st.rollouts
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(tenant.to_string(), (Instant::now(), r.clone()));
                r
            }
        }
    };
    if let Some(r) = rollout {
        let id = cxm_domain::identity::Identifier::parse_typed(customer).or_else(|| {
            cxm_domain::identity::Identifier::parse(
                cxm_domain::identity::IdentifierKind::UserId,
                customer,
            )
        });
        if let Some(id) = id {
            let unit = format!("{}:{}", id.kind.as_string(), id.value);
            let d = &r.experiment;
            // account-randomised policy rollouts are not supported: customers are the unit
            if d.unit == cxm_domain::experiment::Unit::Customer
                && cxm_domain::experiment::in_rollout(&d.id, &unit, r.percent)
            {
                let arm = d.arm_for(&unit).key.clone();
                let exposure = cxm_store::Exposure {
                    experiment_id: d.id.clone(),
                    unit: unit.clone(),
                    customer: unit,
                    profile_id: None,
                    arm: arm.clone(),
                    first_at_ms: chrono::Utc::now().timestamp_millis(),
                };
                if arm != d.arms[0].key {
                    return Ok((r.version, r.policies.clone(), Some(exposure)));
                }
                let (v, p) = cached_policies(st, tenant).await?;
                return Ok((v, p, Some(exposure)));
            }
        }
    }
    let (v, p) = cached_policies(st, tenant).await?;
    Ok((v, p, None))
}

pub fn policy_error(e: PolicyError) -> AppError {
    match e {
        PolicyError::UnknownAction { .. } => AppError::new(ErrorCode::UnknownAction, e.to_string()),
        PolicyError::Ask(_) => AppError::new(ErrorCode::InvalidParameter, e.to_string()),
        PolicyError::Parse(_) | PolicyError::Invalid(_) => {
            AppError::new(ErrorCode::InvalidPolicy, e.to_string())
        }
    }
}

// ---------------------------------------------------------------------------------------
// policy versions

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub active_version: i64,
    pub text: String,
    /// The authority matrix: each policy with its level, reason and actions.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<cxm_policy::Rule>,
    pub actions: Vec<String>,
    pub warnings: Vec<String>,
    pub versions: Vec<PolicyVersion>,
    /// The Cedar schema policies are checked against.
    pub schema: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyVersion {
    pub version: i64,
    pub note: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub activated_at_ms: Option<i64>,
}

impl From<&PolicySetRow> for PolicyVersion {
    fn from(r: &PolicySetRow) -> Self {
        PolicyVersion {
            version: r.version,
            note: r.note.clone(),
            created_by: r.created_by.clone(),
            created_at_ms: r.created_at_ms,
            activated_at_ms: r.activated_at_ms,
        }
    }
}

pub fn policy_view(store: &dyn Store, tenant: &str) -> AppResult<PolicyView> {
    let (version, p) = active_policies(store, tenant)?;
    let versions = store.policy_sets(tenant)?;
    let text = versions
        .iter()
        .find(|v| v.version == version)
        .map(|v| v.text.clone())
        .unwrap_or_default();
    Ok(PolicyView {
        active_version: version,
        text,
        rules: p.rules().to_vec(),
        actions: cxm_policy::actions(),
        warnings: p.lint(),
        versions: versions.iter().map(PolicyVersion::from).collect(),
        schema: cxm_policy::SCHEMA,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavePolicies {
    /// Cedar policies; every permit carries `@id` and `@level`.
    pub text: String,
    #[serde(default)]
    pub note: String,
    /// Make it the active version now (default true); false saves a draft to test first.
    #[serde(default = "yes")]
    pub activate: bool,
}

pub fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SavedPolicies {
    pub version: i64,
    pub active: bool,
    /// From the analysis: sets that let agents act alone on the worst asks.
    pub warnings: Vec<String>,
}

pub const MAX_POLICY_BYTES: usize = 256 * 1024;

/// Compiles, saves and (optionally) activates a new version; on the audit chain.
pub fn save_policies(
    store: &dyn Store,
    tenant: &str,
    actor: &str,
    req: &SavePolicies,
) -> AppResult<SavedPolicies> {
    if req.text.len() > MAX_POLICY_BYTES {
        return Err(AppError::new(
            ErrorCode::PayloadTooLarge,
            "policies are limited to 256 KiB",
        ));
    }
    let p = Policies::compile(&req.text).map_err(policy_error)?;
    let version = store.save_policy_set(tenant, &req.text, req.note.trim(), actor, req.activate)?;
    Ok(SavedPolicies {
        version,
        active: req.activate,
        warnings: p.lint(),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPolicies {
    pub text: String,
    /// How many recent decisions to replay (1–10000, default 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Changed {
    pub decision_id: String,
    pub agent: String,
    pub action: String,
    pub customer: String,
    pub at_ms: i64,
    pub before: String,
    pub after: String,
    pub before_level: String,
    pub after_level: String,
    pub after_policy_ids: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyTest {
    pub replayed: usize,
    pub unchanged: usize,
    pub changed: Vec<Changed>,
    /// Changes counted as "allow → escalate" and so on.
    pub transitions: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

/// Replays recorded decisions (the facts they were decided on) through a candidate policy
/// set and lists each one whose outcome or level would change.
pub fn replay(
    store: &dyn Store,
    tenant: &str,
    candidate: &Policies,
    limit: u32,
) -> AppResult<PolicyTest> {
    let past = store.decisions(
        tenant,
        &DecisionQuery {
            limit,
            ..Default::default()
        },
    )?;
    let mut out = PolicyTest {
        replayed: 0,
        unchanged: 0,
        changed: vec![],
        transitions: BTreeMap::new(),
        warnings: candidate.lint(),
    };
    for d in past {
        let r = &d.record;
        let facts: Facts = serde_json::from_value(r.facts.clone()).unwrap_or_default();
        let customer: CustomerFacts = r
            .used
            .get("customer_facts")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        let kind = r
            .used
            .get("agent_kind")
            .and_then(Value::as_str)
            .unwrap_or("bot");
        let Ok(v) = candidate.authorize(&Ask {
            agent: &r.agent,
            agent_kind: kind,
            action: &r.action,
            customer: &r.customer,
            customer_facts: &customer,
            facts: &facts,
        }) else {
            continue;
        };
        out.replayed += 1;
        if v.outcome.as_str() == r.outcome && v.level.as_str() == r.level {
            out.unchanged += 1;
            continue;
        }
        *out.transitions
            .entry(format!("{} → {}", r.outcome, v.outcome.as_str()))
            .or_default() += 1;
        out.changed.push(Changed {
            decision_id: r.id.clone(),
            agent: r.agent.clone(),
            action: r.action.clone(),
            customer: r.customer.clone(),
            at_ms: r.at_ms,
            before: r.outcome.clone(),
            after: v.outcome.as_str().into(),
            before_level: r.level.clone(),
            after_level: v.level.as_str().into(),
            after_policy_ids: v.policy_ids,
        });
    }
    Ok(out)
}
