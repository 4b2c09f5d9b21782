//! Experiments and staged rollouts: definitions, deterministic assignment with exposure
//! logging, results read from the event log (lifts with intervals, p-values, the always-valid
//! sequential interval, Bayesian chance to win, sample-ratio check, sample size), and
//! guardrails that roll a rollout back on their own. Every step lands in the experiment's
//! history and in the audit chain.

use std::collections::{BTreeMap, HashMap, HashSet};

use cxm_analytics::abtest::{self, Arm};
use cxm_domain::experiment::{
    self as exp, Direction, ExperimentDef, MetricDef, MetricKind, Status,
};
use cxm_domain::identity::{Identifier, IdentifierKind};
use cxm_store::{Exposure, Store, StoredExperiment};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{AppError, AppResult, ErrorCode};

/// An experiment with its parsed definition and history, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExperimentView {
    #[serde(flatten)]
    pub definition: ExperimentDef,
    pub status: Status,
    pub rollout_percent: f64,
    pub shipped_arm: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<Value>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub started_at_ms: Option<i64>,
}

pub fn view(e: &StoredExperiment) -> AppResult<ExperimentView> {
    let broken = |what: &str| {
        AppError::new(
            ErrorCode::Internal,
            format!("experiment {} has a broken stored {what}", e.id),
        )
    };
    let definition: ExperimentDef =
        serde_json::from_str(&e.definition).map_err(|_| broken("definition"))?;
    Ok(ExperimentView {
        definition,
        status: Status::parse(&e.status).ok_or_else(|| broken("status"))?,
        rollout_percent: e.rollout_percent,
        shipped_arm: e.shipped_arm.clone(),
        history: serde_json::from_str(&e.history).map_err(|_| broken("history"))?,
        created_by: e.created_by.clone(),
        created_at_ms: e.created_at_ms,
        updated_at_ms: e.updated_at_ms,
        started_at_ms: e.started_at_ms,
    })
}

pub fn not_found(id: &str) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        format!("no experiment {id:?} in this tenant"),
    )
}

pub fn load(store: &dyn Store, tenant: &str, id: &str) -> AppResult<ExperimentView> {
    let e = store.experiment(tenant, id)?.ok_or_else(|| not_found(id))?;
    view(&e)
}

/// Saves the experiment with one more step in its history and the same step in the audit
/// chain.
pub fn record(
    store: &dyn Store,
    tenant: &str,
    v: &mut ExperimentView,
    actor: &str,
    action: &str,
    detail: Value,
) -> AppResult<()> {
    let now = chrono::Utc::now().timestamp_millis();
    v.history
        .push(json!({"at_ms": now, "actor": actor, "action": action, "detail": detail}));
    v.updated_at_ms = now;
    store.save_experiment(
        tenant,
        &StoredExperiment {
            id: v.definition.id.clone(),
            definition: serde_json::to_string(&v.definition)
                .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?,
            status: v.status.as_str().into(),
            rollout_percent: v.rollout_percent,
            shipped_arm: v.shipped_arm.clone(),
            history: Value::from(v.history.clone()).to_string(),
            created_by: v.created_by.clone(),
            created_at_ms: v.created_at_ms,
            updated_at_ms: now,
            started_at_ms: v.started_at_ms,
        },
    )?;
    store.append_audit(
        tenant,
        &cxm_domain::audit::NewAuditEntry {
            actor: actor.to_string(),
            kind: format!("experiment.{action}"),
            subject: format!("experiment:{}", v.definition.id),
            body: cxm_domain::decision::canonical(&json!({
                "status": v.status.as_str(), "rollout_percent": v.rollout_percent, "detail": detail,
            })),
        },
    )?;
    Ok(())
}

pub fn parse_definition(body: Value) -> AppResult<ExperimentDef> {
    ExperimentDef::parse(body).map_err(|e| AppError::new(ErrorCode::InvalidDefinition, e.0))
}

/// A policy experiment's target is the candidate version, and it must exist.
pub fn check_target(store: &dyn Store, tenant: &str, d: &ExperimentDef) -> AppResult<()> {
    if d.kind != exp::ExperimentKind::Policy {
        return Ok(());
    }
    let bad = |why: String| AppError::new(ErrorCode::InvalidDefinition, why);
    let v: i64 = d.target.trim().parse().map_err(|_| {
        bad("a policy experiment names the candidate policy version in target, e.g. \"2\"".into())
    })?;
    if !store.policy_sets(tenant)?.iter().any(|p| p.version == v) {
        return Err(bad(format!(
            "there is no policy version {v}; save it first (PUT /api/v1/policies with activate false)"
        )));
    }
    if d.unit != exp::Unit::Customer {
        return Err(bad(
            "policy rollouts randomise customers: unit must be customer".into(),
        ));
    }
    Ok(())
}

/// Creates a draft experiment (rollout 100 % of the split once started).
pub fn create_experiment(
    store: &dyn Store,
    tenant: &str,
    actor: &str,
    body: Value,
) -> AppResult<ExperimentView> {
    let d = parse_definition(body)?;
    check_target(store, tenant, &d)?;
    if store.experiment(tenant, &d.id)?.is_some() {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!(
                "experiment {:?} already exists; PUT it to change a draft",
                d.id
            ),
        ));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut v = ExperimentView {
        definition: d,
        status: Status::Draft,
        rollout_percent: 100.0,
        shipped_arm: None,
        history: vec![],
        created_by: actor.to_string(),
        created_at_ms: now,
        updated_at_ms: now,
        started_at_ms: None,
    };
    let arms: Vec<&str> = v.definition.arms.iter().map(|a| a.key.as_str()).collect();
    let detail = json!({"arms": arms, "metric": v.definition.metric.label()});
    record(store, tenant, &mut v, actor, "created", detail)?;
    Ok(v)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentRow {
    #[serde(flatten)]
    pub experiment: ExperimentView,
    pub exposures: usize,
}

pub fn list_rows(store: &dyn Store, tenant: &str) -> AppResult<Vec<ExperimentRow>> {
    store
        .experiments(tenant)?
        .iter()
        .map(|e| {
            Ok(ExperimentRow {
                experiment: view(e)?,
                exposures: store.exposures(tenant, &e.id)?.len(),
            })
        })
        .collect()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// running, paused, shipped or rolled_back
    pub status: String,
    /// The arm everyone gets when shipping.
    pub arm: Option<String>,
    #[serde(default)]
    pub reason: String,
}

pub fn change_status(
    store: &dyn Store,
    tenant: &str,
    actor: &str,
    id: &str,
    c: &StatusChange,
) -> AppResult<ExperimentView> {
    let mut v = load(store, tenant, id)?;
    let to = Status::parse(&c.status).ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidParameter,
            "status must be running, paused, shipped or rolled_back",
        )
    })?;
    if !v.status.can_move_to(to) {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!(
                "experiment {id:?} cannot go from {} to {}",
                v.status.as_str(),
                to.as_str()
            ),
        ));
    }
    if c.reason.len() > 2000 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "reason is longer than 2000 bytes",
        ));
    }
    // resuming after an automatic rollback overrides a guardrail: say why
    if v.status == Status::RolledBack && c.reason.trim().is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "resuming a rolled-back experiment overrides its guardrail; give a reason",
        ));
    }
    let mut detail = json!({"from": v.status.as_str(), "reason": c.reason});
    match to {
        Status::Shipped => {
            let arm = c.arm.clone().ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidParameter,
                    "shipping needs the arm everyone will get",
                )
            })?;
            if !v.definition.arms.iter().any(|a| a.key == arm) {
                return Err(AppError::new(
                    ErrorCode::InvalidParameter,
                    format!("experiment {id:?} has no arm {arm:?}"),
                ));
            }
            detail["arm"] = json!(arm);
            v.shipped_arm = Some(arm);
        }
        Status::RolledBack => {
            v.rollout_percent = 0.0;
        }
        Status::Running => {
            if v.started_at_ms.is_none() {
                v.started_at_ms = Some(chrono::Utc::now().timestamp_millis());
            }
            if v.rollout_percent == 0.0 {
                // an override restarts at the smallest canary, not at everyone
                v.rollout_percent = exp::ROLLOUT_STEPS[0];
            }
        }
        Status::Draft | Status::Paused => {}
    }
    v.status = to;
    let action = match to {
        Status::Running => "started",
        Status::Paused => "paused",
        Status::Shipped => "shipped",
        Status::RolledBack => "rolled_back",
        Status::Draft => "draft",
    };
    record(store, tenant, &mut v, actor, action, detail)?;
    Ok(v)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutChange {
    /// Share of units in the experiment, 0 to 100 (the rest see the control).
    pub percent: f64,
    #[serde(default)]
    pub reason: String,
}

pub fn change_rollout(
    store: &dyn Store,
    tenant: &str,
    actor: &str,
    id: &str,
    c: &RolloutChange,
) -> AppResult<ExperimentView> {
    if !(c.percent.is_finite() && (0.0..=100.0).contains(&c.percent)) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "percent must be between 0 and 100",
        ));
    }
    let mut v = load(store, tenant, id)?;
    if matches!(v.status, Status::Shipped | Status::RolledBack) {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!(
                "experiment {id:?} is {}; set its status to running first",
                v.status.as_str()
            ),
        ));
    }
    let from = v.rollout_percent;
    v.rollout_percent = c.percent;
    record(
        store,
        tenant,
        &mut v,
        actor,
        "rollout",
        json!({"from": from, "to": c.percent, "reason": c.reason}),
    )?;
    Ok(v)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// The customer: `type:value` (e.g. `email:ana@example.com`) or a user id.
    pub customer: String,
    /// Their account; required when the experiment randomises accounts.
    pub account: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub experiment: String,
    /// What to show: the unit's arm, or the control when not enrolled.
    pub arm: String,
    /// Whether this counts as an exposure (running and inside the rollout).
    pub enrolled: bool,
    pub reason: String,
}

pub fn assign_unit(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    r: &AssignRequest,
    now_ms: i64,
) -> AppResult<Assignment> {
    let v = load(store, tenant, id)?;
    let d = &v.definition;
    if r.customer.len() > 512 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "customer is longer than 512 bytes",
        ));
    }
    // one spelling per person, so `u-1` and `user_id:u-1` are the same unit
    let identifier = Identifier::parse_typed(r.customer.trim())
        .or_else(|| Identifier::parse(IdentifierKind::UserId, r.customer.trim()))
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "customer {:?} is not an identifier (a user id or type:value such as email:ana@example.com)",
                    r.customer
                ),
            )
        })?;
    let customer = format!("{}:{}", identifier.kind.as_string(), identifier.value);
    let unit = match d.unit {
        exp::Unit::Customer => customer.clone(),
        exp::Unit::Account => match r.account.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() && a.len() <= 512 => a.to_string(),
            _ => {
                return Err(AppError::new(
                    ErrorCode::InvalidParameter,
                    format!("experiment {id:?} randomises accounts: send the customer's account"),
                ))
            }
        },
    };
    let control = d.arms[0].key.clone();
    let answer = |arm: String, enrolled: bool, reason: &str| Assignment {
        experiment: d.id.clone(),
        arm,
        enrolled,
        reason: reason.into(),
    };
    match v.status {
        Status::Shipped => {
            return Ok(answer(
                v.shipped_arm.clone().unwrap_or(control),
                false,
                "shipped: everyone gets the chosen arm",
            ))
        }
        Status::RolledBack => {
            return Ok(answer(
                control,
                false,
                "rolled back: a guardrail was breached",
            ))
        }
        Status::Draft | Status::Paused => {
            return Ok(answer(control, false, "not running"));
        }
        Status::Running => {}
    }
    if !exp::in_rollout(&d.id, &unit, v.rollout_percent) {
        return Ok(answer(
            control,
            false,
            "outside the rollout percentage: sees the control, not counted",
        ));
    }
    let arm = d.arm_for(&unit).key.clone();
    let profile_id = store.profile_for(tenant, &identifier)?;
    let first = store.expose(
        tenant,
        &Exposure {
            experiment_id: d.id.clone(),
            unit,
            customer,
            profile_id,
            arm,
            first_at_ms: now_ms,
        },
    )?;
    Ok(answer(first, true, "in the experiment"))
}

// ---------------------------------------------------------------------------------------
// results

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArmCount {
    pub arm: String,
    pub units: u64,
    pub expected_share: f64,
    pub share: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub arm: String,
    pub control_rate: f64,
    pub rate: f64,
    /// All the tests (absolute and relative lift, sequential, Bayesian, z-tests).
    #[schema(value_type = Object)]
    pub stats: Option<abtest::Summary>,
    pub verdict: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricResult {
    pub event: String,
    pub direction: Direction,
    pub window_days: u32,
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GuardrailResult {
    pub event: String,
    pub max_relative_change: f64,
    pub breached: bool,
    /// Per treatment arm: the always-valid interval of the relative change.
    #[schema(value_type = Object)]
    pub intervals: BTreeMap<String, [f64; 2]>,
    pub note: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentResults {
    pub experiment: ExperimentView,
    pub units: u64,
    pub arms: Vec<ArmCount>,
    pub srm_p_value: Option<f64>,
    pub sample_ratio_mismatch: bool,
    pub primary: MetricResult,
    pub guardrails: Vec<GuardrailResult>,
    /// Units per arm needed to see the experiment's minimum effect at the control's rate.
    pub needed_per_arm: Option<f64>,
    pub warnings: Vec<String>,
    /// Set when these results rolled the experiment back.
    pub rolled_back: bool,
}

/// Per unit: its arm, first exposure and the profiles that were exposed.
pub struct UnitRow {
    pub arm: String,
    pub first_at_ms: i64,
    pub profiles: Vec<String>,
}

/// Every customer's timestamps of the named events, from the event log.
pub fn event_times(
    store: &dyn Store,
    tenant: &str,
    names: &[String],
) -> AppResult<HashMap<(String, String), Vec<i64>>> {
    let upto = store.max_event_seq()?;
    let mut after = 0;
    let mut out: HashMap<(String, String), Vec<i64>> = HashMap::new();
    loop {
        let page = store.journey_events(tenant, after, upto, names, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in page {
            if let Some(p) = e.profile_id {
                out.entry((p, e.name)).or_default().push(e.ts_ms);
            }
        }
    }
    Ok(out)
}

/// What the metrics read: event times per (customer, event), CSAT answers per customer.
pub struct Observations {
    pub events: HashMap<(String, String), Vec<i64>>,
    pub csat: HashMap<String, Vec<(i64, f64)>>,
}

pub fn observe(store: &dyn Store, tenant: &str, metrics: &[&MetricDef]) -> AppResult<Observations> {
    let mut names: Vec<String> = metrics
        .iter()
        .filter(|m| m.kind != MetricKind::Csat)
        .map(|m| m.event_name().to_string())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    names.sort();
    let events = if names.is_empty() {
        HashMap::new()
    } else {
        event_times(store, tenant, &names)?
    };
    let mut csat: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
    if metrics.iter().any(|m| m.kind == MetricKind::Csat) {
        let mut after = 0;
        loop {
            let page = store.journey_answers(tenant, after, 10_000)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for a in page {
                if let (Some(p), Some(score), "csat") =
                    (a.profile_id, a.score, a.field_type.as_str())
                {
                    csat.entry(p).or_default().push((a.collected_at_ms, score));
                }
            }
        }
    }
    Ok(Observations { events, csat })
}

/// The unit's outcome on the metric within its window; None when it does not count (a CSAT
/// metric and a unit that gave no answer).
pub fn outcome(unit: &UnitRow, m: &MetricDef, o: &Observations) -> Option<bool> {
    let from = unit.first_at_ms;
    let until = from + i64::from(m.window_days) * 86_400_000;
    let in_window = |t: i64| t >= from && t <= until;
    let times_of = |p: &String| {
        o.events
            .get(&(p.clone(), m.event_name().to_string()))
            .map(|ts| {
                ts.iter()
                    .copied()
                    .filter(|t| in_window(*t))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    match m.kind {
        MetricKind::Event => Some(unit.profiles.iter().any(|p| !times_of(p).is_empty())),
        MetricKind::RepeatContact => Some(unit.profiles.iter().any(|p| {
            let mut ts = times_of(p);
            ts.sort_unstable();
            ts.windows(2).any(|w| w[1] - w[0] <= 7 * 86_400_000)
        })),
        MetricKind::Csat => unit
            .profiles
            .iter()
            .filter_map(|p| o.csat.get(p))
            .flatten()
            .filter(|(t, _)| in_window(*t))
            .max_by_key(|(t, _)| *t)
            .map(|(_, score)| *score >= 4.0),
    }
}

pub fn verdict(s: &abtest::Summary, direction: Direction, alpha: f64) -> String {
    let better = match direction {
        Direction::Increase => s.relative.expected > 0.0,
        Direction::Decrease => s.relative.expected < 0.0,
    };
    let lift = format!("{:+.1} %", s.relative.expected * 100.0);
    if s.sequential.p_value < alpha {
        format!(
            "{} ({lift}); significant even with continuous peeking",
            if better { "better" } else { "worse" }
        )
    } else if s.relative.p_value < alpha {
        format!(
            "{} ({lift}) at the planned horizon; not yet under continuous peeking",
            if better { "better" } else { "worse" }
        )
    } else {
        format!("inconclusive so far ({lift})")
    }
}

pub fn compare(
    units: &[UnitRow],
    arms: &[String],
    m: &MetricDef,
    o: &Observations,
    alpha: f64,
) -> MetricResult {
    let mut per_arm: HashMap<&str, (u64, u64)> = HashMap::new();
    for u in units {
        if let Some(hit) = outcome(u, m, o) {
            let e = per_arm.entry(u.arm.as_str()).or_default();
            e.0 += 1;
            e.1 += u64::from(hit);
        }
    }
    let get = |a: &str| per_arm.get(a).copied().unwrap_or((0, 0));
    let (cn, cx) = get(&arms[0]);
    let rate = |n: u64, x: u64| if n == 0 { 0.0 } else { x as f64 / n as f64 };
    let comparisons = arms[1..]
        .iter()
        .map(|a| {
            let (n, x) = get(a);
            let stats = Arm::conversions(cn, cx)
                .and_then(|c| Ok((c, Arm::conversions(n, x)?)))
                .and_then(|(c, t)| abtest::summarize(&c, &t, alpha, 5000.0));
            let (stats, verdict) = match stats {
                Ok(s) => {
                    let v = verdict(&s, m.direction, alpha);
                    (Some(s), v)
                }
                Err(e) => (None, format!("no result yet: {e}")),
            };
            Comparison {
                arm: a.clone(),
                control_rate: rate(cn, cx),
                rate: rate(n, x),
                stats,
                verdict,
            }
        })
        .collect();
    MetricResult {
        event: m.label(),
        direction: m.direction,
        window_days: m.window_days,
        comparisons,
    }
}

/// Computes the results; when a guardrail is breached on a running experiment, rolls it back
/// (status rolled_back, rollout 0, history and audit entry).
pub fn compute_results(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    now_ms: i64,
) -> AppResult<ExperimentResults> {
    let mut v = load(store, tenant, id)?;
    let d = v.definition.clone();
    let arms: Vec<String> = d.arms.iter().map(|a| a.key.clone()).collect();
    let mut by_unit: BTreeMap<String, UnitRow> = BTreeMap::new();
    for x in store.exposures(tenant, id)? {
        let profile = match x.profile_id {
            Some(p) => Some(p),
            // exposed before we had seen them: resolve now
            None => Identifier::parse_typed(&x.customer)
                .or_else(|| Identifier::parse(IdentifierKind::UserId, &x.customer))
                .map(|i| store.profile_for(tenant, &i))
                .transpose()?
                .flatten(),
        };
        let u = by_unit.entry(x.unit).or_insert(UnitRow {
            arm: x.arm,
            first_at_ms: x.first_at_ms,
            profiles: vec![],
        });
        u.first_at_ms = u.first_at_ms.min(x.first_at_ms);
        if let Some(p) = profile {
            u.profiles.push(p);
        }
    }
    // exposures sent as `Experiment Viewed` events by SDKs that assign on their own
    let mut warnings = vec![];
    let (mut unknown_variation, mut crossovers) = (0usize, 0usize);
    if d.unit == exp::Unit::Customer {
        let upto = store.max_event_seq()?;
        let mut after = 0;
        loop {
            let page = store.experiment_views(tenant, id, after, upto, 10_000)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for v in page {
                let Some(arm) = v.variation.filter(|a| arms.contains(a)) else {
                    unknown_variation += 1;
                    continue;
                };
                let who = match (&v.user_id, &v.anonymous_id) {
                    (Some(u), _) => Identifier::parse(IdentifierKind::UserId, u),
                    (None, Some(a)) => Identifier::parse(IdentifierKind::AnonymousId, a),
                    _ => None,
                };
                let Some(who) = who else { continue };
                let unit = format!("{}:{}", who.kind.as_string(), who.value);
                let u = by_unit.entry(unit).or_insert(UnitRow {
                    arm: arm.clone(),
                    first_at_ms: v.ts_ms,
                    profiles: vec![],
                });
                if u.arm != arm {
                    crossovers += 1;
                }
                u.first_at_ms = u.first_at_ms.min(v.ts_ms);
                if let Some(p) = v.profile_id {
                    if !u.profiles.contains(&p) {
                        u.profiles.push(p);
                    }
                }
            }
        }
    }
    if unknown_variation > 0 {
        warnings.push(format!(
            "{unknown_variation} Experiment Viewed events named a variation_id that is not an arm ({}); they were left out",
            arms.join(", ")
        ));
    }
    if crossovers > 0 {
        warnings.push(format!(
            "{crossovers} views showed a customer another arm than their first; each customer counts in their first arm"
        ));
    }
    let units: Vec<UnitRow> = by_unit.into_values().collect();
    let metrics: Vec<&MetricDef> = std::iter::once(&d.metric)
        .chain(d.guardrails.iter().map(|g| &g.metric))
        .collect();
    let mut names: Vec<&str> = metrics
        .iter()
        .filter(|m| m.kind != MetricKind::Csat)
        .map(|m| m.event_name())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    names.sort();
    for n in &names {
        if !store.event_name_seen(tenant, n)? {
            warnings.push(format!(
                "no event named {n:?} has been received: its rate is 0 in every arm"
            ));
        }
    }
    let times = observe(store, tenant, &metrics)?;
    let counts: Vec<u64> = arms
        .iter()
        .map(|a| units.iter().filter(|u| &u.arm == a).count() as u64)
        .collect();
    let total: u64 = counts.iter().sum();
    let wsum: f64 = d.weights().iter().sum();
    let arm_counts = arms
        .iter()
        .zip(&counts)
        .zip(d.weights())
        .map(|((a, &c), w)| ArmCount {
            arm: a.clone(),
            units: c,
            expected_share: w / wsum,
            share: if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            },
        })
        .collect();
    let srm = abtest::srm_p_value(&counts, &d.weights()).ok();
    let mismatch = srm.is_some_and(|p| p < 0.001);
    if total == 0 {
        warnings.push(
            "no exposures yet: assign customers with POST /api/v1/experiments/{id}/assign while it runs"
                .into(),
        );
    }
    if mismatch {
        warnings.push(format!(
            "sample ratio mismatch (p = {:.2e}): the arms did not get the intended split, so assignment or exposure logging is broken; do not trust these results",
            srm.unwrap_or(0.0)
        ));
    }
    let primary = compare(&units, &arms, &d.metric, &times, d.alpha);
    let control_rate = primary
        .comparisons
        .first()
        .map(|c| c.control_rate)
        .unwrap_or(0.0);
    let needed = abtest::sample_size(control_rate, d.mde, d.alpha, 0.8).ok();
    if let (Some(n), Some(&smallest)) = (needed, counts.iter().min()) {
        if (smallest as f64) < n {
            warnings.push(format!(
                "underpowered: {smallest} units in the smallest arm, {} needed to see a {:+.0} % change; the sequential interval stays valid while you wait",
                n.ceil(),
                d.mde * 100.0
            ));
        }
    }
    let mut guardrails = vec![];
    for g in &d.guardrails {
        let r = compare(&units, &arms, &g.metric, &times, d.alpha);
        let mut intervals = BTreeMap::new();
        let mut breached = false;
        for c in &r.comparisons {
            if let Some(s) = &c.stats {
                let ci = s.sequential.ci;
                intervals.insert(c.arm.clone(), ci);
                breached |= match g.metric.direction {
                    Direction::Decrease => ci[0] > g.max_relative_change,
                    Direction::Increase => ci[1] < -g.max_relative_change,
                };
            }
        }
        let note = if intervals.is_empty() {
            "not enough data in the control to judge yet".into()
        } else if breached {
            format!(
                "breached: {} is confidently worse by more than {:.0} %",
                g.metric.label(),
                g.max_relative_change * 100.0
            )
        } else {
            "holding".into()
        };
        guardrails.push(GuardrailResult {
            event: g.metric.label(),
            max_relative_change: g.max_relative_change,
            breached,
            intervals,
            note,
        });
    }
    let mut rolled_back = false;
    if v.status == Status::Running && guardrails.iter().any(|g| g.breached) && !mismatch {
        let which: Vec<&str> = guardrails
            .iter()
            .filter(|g| g.breached)
            .map(|g| g.event.as_str())
            .collect();
        let from = v.rollout_percent;
        v.status = Status::RolledBack;
        v.rollout_percent = 0.0;
        record(
            store,
            tenant,
            &mut v,
            "cxm:guardrail",
            "rolled_back",
            json!({"guardrails": which, "from_percent": from, "at_ms": now_ms}),
        )?;
        rolled_back = true;
        warnings.push(format!(
            "rolled back automatically: guardrail {} breached; everyone sees the control until someone overrides",
            which.join(", ")
        ));
    }
    Ok(ExperimentResults {
        experiment: v,
        units: total,
        arms: arm_counts,
        srm_p_value: srm,
        sample_ratio_mismatch: mismatch,
        primary,
        guardrails,
        needed_per_arm: needed,
        warnings,
        rolled_back,
    })
}

// ---------------------------------------------------------------------------------------
// calculators

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArmInput {
    pub exposures: u64,
    pub conversions: u64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbInput {
    pub control: ArmInput,
    pub treatment: ArmInput,
    #[serde(default = "five_percent")]
    pub alpha: f64,
}

pub fn five_percent() -> f64 {
    0.05
}

pub fn stats_error(e: abtest::AbError) -> AppError {
    AppError::new(ErrorCode::InvalidParameter, e.to_string())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SizeQuery {
    pub baseline: f64,
    pub mde: f64,
    pub alpha: Option<f64>,
    pub power: Option<f64>,
}
