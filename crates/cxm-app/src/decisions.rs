//! Governed agents over HTTP. An agent asks `POST /api/v1/decisions` before it acts; cxm
//! enriches the ask with what it knows about the customer (an agent cannot under-report a
//! legal threat the customer wrote down), evaluates the tenant's active Cedar policies, logs
//! the decision on the audit chain, and only then answers. L2 decisions wait for a human's
//! review after the fact, L3 ones before anything happens.

use std::time::Duration;

use cxm_domain::decision::{DecisionRecord, Review, ReviewVerdict};
use cxm_domain::identity::{Identifier, IdentifierKind};
use cxm_policy::{Ask, CustomerFacts, Facts, Level, Policies};
use cxm_store::{DecisionQuery, ReviewResult, Role, Store, StoredDecision};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::blocking;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::policies::policy_error;
use crate::App;

/// How long a human has to look: L2 reviews within a day, L3 escalations within the hour.
pub const REVIEW_SLA: Duration = Duration::from_secs(24 * 3600);
pub const ESCALATION_SLA: Duration = Duration::from_secs(3600);
/// How far back enrichment looks for answers and security events.
pub const LOOKBACK_DAYS: i64 = 30;

// ---------------------------------------------------------------------------------------
// who may ask

/// The caller of the decision API: an agent's own key (bound to that agent), or a secret
/// key / signed-in operator naming the agent it speaks for.
pub struct Asker {
    pub tenant_id: String,
    pub bound_agent: Option<String>,
    pub actor: String,
}

/// Reviewers and agent managers: agent operators, admins and owners.
pub fn require_operator(p: &Principal) -> AppResult<()> {
    if p.role.can_administer() || p.role == Role::AgentOperator {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::Forbidden,
            format!(
                "the {} role cannot do this; ask an agent operator, owner or admin",
                p.role.as_str()
            ),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// asking

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The agent acting; may be left out with an agent key (it must match when given).
    pub agent: Option<String>,
    /// One of the schema's actions (`refund`, `password_reset`, ...).
    pub action: String,
    /// The customer acted on: a typed identifier (`email:a@b.com`, `user_id:u1`) or a user id.
    pub customer: String,
    /// What is acted on (an order, a subscription), for the log.
    pub resource: Option<String>,
    /// What the agent knows: `amount` and `currency`, `reason` and `message` (the customer's
    /// words), `sentiment` (-1..1), `channel`, and cues it saw (`legal_threat`, `rage`,
    /// `churn_intent`, `account_takeover`, `human_requested`). Other keys are logged as sent.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DecisionAnswer {
    pub decision_id: String,
    /// `allow`, `review` (go ahead; a human reviews afterwards), `escalate` (stop; a human
    /// decides), or `deny`.
    pub decision: String,
    pub level: String,
    pub policy_ids: Vec<String>,
    pub reasons: Vec<String>,
    pub policy_version: i64,
    /// When a human will have looked (L2/L3).
    pub review_due_at_ms: Option<i64>,
    /// What cxm added to the agent's account of the stakes.
    #[schema(value_type = Object)]
    pub used: Value,
}

pub const MAX_TEXT: usize = 10_000;

/// The agent's context, checked field by field.
pub fn claims(ctx: &Map<String, Value>) -> AppResult<(Facts, Vec<String>)> {
    let bad = |field: &str, why: &str| {
        AppError::new(
            ErrorCode::InvalidParameter,
            format!("context.{field} {why}"),
        )
    };
    let mut f = Facts::default();
    let mut texts = vec![];
    for (k, v) in ctx {
        match k.as_str() {
            "amount" => {
                let a = v.as_f64().ok_or_else(|| bad(k, "must be a number"))?;
                if !(0.0..1e12).contains(&a) {
                    return Err(bad(k, "must be between 0 and 1e12"));
                }
                f.amount_cents = Some((a * 100.0).round() as i64);
            }
            "currency" => {
                let c = v.as_str().ok_or_else(|| bad(k, "must be a string"))?;
                if c.len() != 3 || !c.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad(k, "must be a three-letter ISO 4217 code"));
                }
                f.currency = Some(c.to_ascii_uppercase());
            }
            "channel" => {
                let c = v.as_str().ok_or_else(|| bad(k, "must be a string"))?;
                f.channel = Some(c.chars().take(40).collect());
            }
            "sentiment" => {
                let s = v.as_f64().ok_or_else(|| bad(k, "must be a number"))?;
                if !(-1.0..=1.0).contains(&s) {
                    return Err(bad(k, "must be between -1 and 1"));
                }
                f.sentiment = Some((s * 100.0).round() as i64);
            }
            "reason" | "message" => {
                let t = v.as_str().ok_or_else(|| bad(k, "must be a string"))?;
                if t.len() > MAX_TEXT {
                    return Err(bad(k, "is longer than 10000 bytes"));
                }
                texts.push(t.to_string());
            }
            "legal_threat" | "rage" | "churn_intent" | "account_takeover" | "human_requested" => {
                let b = v.as_bool().ok_or_else(|| bad(k, "must be true or false"))?;
                match k.as_str() {
                    "legal_threat" => f.legal_threat = b,
                    "rage" => f.rage = b,
                    "churn_intent" => f.churn_intent = b,
                    "account_takeover" => f.account_takeover = b,
                    _ => f.human_requested = b,
                }
            }
            "step_up" => {
                v.as_str()
                    .filter(|s| s.len() <= 100)
                    .ok_or_else(|| bad(k, "must be the id of a step-up verification"))?;
            }
            "step_up_verified" => {
                return Err(bad(
                    k,
                    "cannot be claimed; cxm records step-up verification itself",
                ))
            }
            _ => {}
        }
    }
    Ok((f, texts))
}

/// Whether the customer's words ask for a person. Honoured: the `human-requested` policy
/// escalates, and the decision log keeps the words that asked.
pub fn asks_for_human(text: &str) -> bool {
    const ASKS: &[&str] = &[
        "talk to a human",
        "speak to a human",
        "speak with a human",
        "talk to a person",
        "speak to a person",
        "speak with a person",
        "real person",
        "human agent",
        "a real human",
        "talk to someone",
        "speak to someone",
        "speak with someone",
        "talk to an agent",
        "speak to an agent",
        "representative",
        "not a bot",
        "no bots",
        "stop the bot",
    ];
    let t = text.to_lowercase();
    ASKS.iter().any(|a| t.contains(a))
}

/// Security events that, close together, suggest someone else has the account.
pub const TAKEOVER_EVENTS: &[&str] = &[
    "Login Failed",
    "Password Reset Requested",
    "Email Changed",
    "Phone Changed",
    "Two Factor Disabled",
];

/// What cxm knows about the customer, merged into the agent's claims (only ever raising
/// the stakes), with the sources recorded.
pub fn enrich(
    store: &dyn Store,
    analyzer: &cxm_analytics::Analyzer,
    tenant: &str,
    customer: &str,
    claimed: &Facts,
    texts: &[String],
    now_ms: i64,
) -> AppResult<(Facts, CustomerFacts, Value)> {
    let mut f = claimed.clone();
    let mut c = CustomerFacts::default();
    let mut used = Map::new();
    used.insert("claims".into(), json!(claimed));
    // the customer's own words in the ask
    for t in texts {
        let s = analyzer.analyze(t);
        let cues = &s.cues;
        let wants_human = asks_for_human(t);
        f.human_requested |= wants_human;
        f.legal_threat |= cues.legal_threat;
        f.churn_intent |= cues.churn_intent;
        f.rage |= cues.rage >= 0.5;
        // the CX-corrected score: "third time I'm asking" is not a neutral ask
        if let Some(c) = s.cx_compound {
            let compound = (c * 100.0).round() as i64;
            f.sentiment = Some(f.sentiment.map_or(compound, |x| x.min(compound)));
        }
        used.insert(
            "text".into(),
            json!({"compound": s.compound, "cx_compound": s.cx_compound, "legal_threat": cues.legal_threat, "churn_intent": cues.churn_intent, "rage": cues.rage, "matched": cues.matched, "human_requested": wants_human}),
        );
    }
    let identifier = Identifier::parse_typed(customer)
        .or_else(|| Identifier::parse(IdentifierKind::UserId, customer));
    let profile_id = match &identifier {
        Some(i) => store.profile_for(tenant, i)?,
        None => None,
    };
    let Some(pid) = profile_id else {
        used.insert("profile".into(), Value::Null);
        used.insert(
            "note".into(),
            json!("the customer is not known to cxm; only the agent's account was used"),
        );
        return Ok((f, c, Value::Object(used)));
    };
    used.insert("profile".into(), json!(pid));
    let since = now_ms - LOOKBACK_DAYS * 86_400_000;
    if let Some(profile) = store.profile(tenant, &pid)? {
        let trait_str = |k: &str| {
            profile
                .traits
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if let Some(t) = trait_str("tier").or_else(|| trait_str("plan")) {
            c.tier = t;
        }
        if let Some(acct) = profile.accounts.first() {
            if let Some(h) = store.account_health_one(tenant, acct)? {
                c.arr = h.arr.round() as i64;
                used.insert(
                    "account".into(),
                    json!({"id": acct, "arr": h.arr, "health": h.score, "band": h.band}),
                );
            }
        }
        let recent = store.timeline(
            tenant,
            &profile,
            &cxm_store::TimelinePage {
                before: None,
                limit: 100,
            },
        )?;
        let mut opened = 0i64;
        let mut security = vec![];
        for e in recent.iter().filter(|e| e.timestamp_ms >= since) {
            match e.name.as_deref().unwrap_or_default() {
                "Ticket Opened" | "Ticket Created" | "Ticket Reopened" => opened += 1,
                "Ticket Resolved" => opened -= 1,
                n if TAKEOVER_EVENTS.contains(&n) && now_ms - e.timestamp_ms < 86_400_000 => {
                    security.push(n.to_string())
                }
                _ => {}
            }
        }
        c.open_tickets = opened.max(0);
        if security.len() >= 2 {
            f.account_takeover = true;
        }
        used.insert(
            "timeline".into(),
            json!({"events_read": recent.len(), "open_tickets": c.open_tickets, "security_events_24h": security}),
        );
    }
    let answers = store.recent_answers(tenant, &pid, since, 50)?;
    let mut low = None::<i64>;
    for a in &answers {
        if let Some(s) = a.sentiment {
            let s = (s * 100.0).round() as i64;
            low = Some(low.map_or(s, |x| x.min(s)));
        }
        if let Some(cues) = &a.cues {
            f.legal_threat |= cues.get("legal_threat").and_then(Value::as_bool) == Some(true);
            f.churn_intent |= cues.get("churn_intent").and_then(Value::as_bool) == Some(true);
            f.rage |= cues.get("rage").and_then(Value::as_f64).unwrap_or(0.0) >= 0.5;
        }
    }
    if let Some(l) = low {
        f.sentiment = Some(f.sentiment.map_or(l, |x| x.min(l)));
    }
    used.insert(
        "answers".into(),
        json!({"read": answers.len(), "lowest_sentiment": low.map(|l| l as f64 / 100.0)}),
    );
    used.insert("customer_facts".into(), json!(c));
    Ok((f, c, Value::Object(used)))
}

pub fn check_name(what: &str, s: &str) -> AppResult<()> {
    if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            format!("{what} must be 1 to 200 characters without control characters"),
        ));
    }
    Ok(())
}

/// The decision for one ask, not yet logged: the agent must be registered and active, the
/// ask is enriched with what cxm knows, and the policies answer. Returns the record and when
/// its review is due (L2/L3 that may still happen).
#[allow(clippy::too_many_arguments)]
pub fn decide(
    s: &dyn Store,
    analyzer: &cxm_analytics::Analyzer,
    tenant: &str,
    agent_name: &str,
    req: &AskRequest,
    policies: &Policies,
    version: i64,
    now_ms: i64,
) -> AppResult<(DecisionRecord, Option<i64>)> {
    let (claimed, texts) = claims(&req.context)?;
    let step_up = req.context.get("step_up").and_then(Value::as_str);
    let Some(agent) = s
        .agent(tenant, agent_name)?
        .filter(|a| a.disabled_at_ms.is_none())
    else {
        return Err(AppError::new(
            ErrorCode::UnknownAgent,
            format!("no active agent {agent_name:?}; register it with POST /api/v1/agents"),
        ));
    };
    let customer = &req.customer;
    let (mut facts, customer_facts, mut used) =
        enrich(s, analyzer, tenant, customer, &claimed, &texts, now_ms)?;
    if let Some(id) = step_up {
        let verdict = crate::step_up::verified_for(s, tenant, id, customer, now_ms)?;
        facts.step_up_verified = verdict.is_ok();
        if let Value::Object(m) = &mut used {
            m.insert(
                "step_up".into(),
                match verdict {
                    Ok(at) => json!({"id": id, "verified_at_ms": at}),
                    Err(why) => json!({"id": id, "not_verified": why}),
                },
            );
        }
    }
    let verdict = policies
        .authorize(&Ask {
            agent: &agent.name,
            agent_kind: &agent.kind,
            action: &req.action,
            customer,
            customer_facts: &customer_facts,
            facts: &facts,
        })
        .map_err(policy_error)?;
    if let Value::Object(m) = &mut used {
        m.insert("agent_kind".into(), json!(agent.kind));
        m.insert("customer_facts".into(), json!(customer_facts));
    }
    let due = match verdict.level {
        Level::L1 => None,
        Level::L2 => Some(now_ms + REVIEW_SLA.as_millis() as i64),
        Level::L3 => Some(now_ms + ESCALATION_SLA.as_millis() as i64),
    };
    // a deny needs no human; everything above L1 that may still happen does
    let review_due = if verdict.outcome == cxm_policy::Outcome::Deny {
        None
    } else {
        due
    };
    let record = DecisionRecord {
        id: format!("dec_{}", uuid::Uuid::now_v7().simple()),
        agent: agent.name.clone(),
        action: req.action.clone(),
        customer: customer.clone(),
        resource: req.resource.clone(),
        request: Value::Object(req.context.clone()),
        facts: json!(facts),
        used,
        policy_version: version,
        outcome: verdict.outcome.as_str().into(),
        level: verdict.level.as_str().into(),
        policy_ids: verdict.policy_ids,
        reasons: verdict.reasons,
        at_ms: now_ms,
    };
    Ok((record, review_due))
}

// ---------------------------------------------------------------------------------------
// the log and the review queue

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionFilter {
    pub agent: Option<String>,
    /// allow, review, escalate or deny.
    pub outcome: Option<String>,
    /// pending, approved or reversed.
    pub status: Option<String>,
    pub customer: Option<String>,
    /// Milliseconds since the epoch: decisions before it (paging).
    pub before: Option<i64>,
    /// 1–500, default 50.
    pub limit: Option<u32>,
}

impl DecisionFilter {
    pub fn query(&self) -> AppResult<DecisionQuery> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                "limit must be between 1 and 500",
            ));
        }
        if let Some(o) = &self.outcome {
            o.parse::<cxm_policy::Outcome>()
                .map_err(|e| AppError::new(ErrorCode::InvalidParameter, e))?;
        }
        if let Some(s) = &self.status {
            if !matches!(s.as_str(), "pending" | "approved" | "reversed") {
                return Err(AppError::new(
                    ErrorCode::InvalidParameter,
                    "status must be pending, approved or reversed",
                ));
            }
        }
        Ok(DecisionQuery {
            agent: self.agent.clone(),
            outcome: self.outcome.clone(),
            review_status: self.status.clone(),
            customer: self.customer.clone(),
            before_ms: self.before,
            limit,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionList {
    pub decisions: Vec<StoredDecision>,
}

pub async fn find(st: &App, tenant: &str, id: &str) -> AppResult<StoredDecision> {
    let (t, i) = (tenant.to_string(), id.to_string());
    blocking(st, move |s| Ok(s.decision(&t, &i)?))
        .await?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("no decision {id:?} in this tenant's log"),
            )
        })
}

/// A decision the caller may see: an agent's key sees its own agent's decisions only (to
/// check or use one), a secret key or operator every one of the tenant's.
pub async fn find_for(st: &App, caller: &Asker, id: &str) -> AppResult<StoredDecision> {
    let d = find(st, &caller.tenant_id, id).await?;
    if caller
        .bound_agent
        .as_ref()
        .is_some_and(|a| *a != d.record.agent)
    {
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!("no decision {id:?} in this tenant's log"),
        ));
    }
    Ok(d)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `approved` or `reversed`.
    pub verdict: ReviewVerdict,
    /// Why; required to reverse.
    #[serde(default)]
    pub reason: String,
}

pub fn settle(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    by: &str,
    req: &ReviewRequest,
) -> AppResult<StoredDecision> {
    let reason = req.reason.trim();
    if req.verdict == ReviewVerdict::Reversed && reason.is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "say why the decision is reversed (reason)",
        ));
    }
    if reason.len() > 2000 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "reason is longer than 2000 bytes",
        ));
    }
    let r = Review {
        decision_id: id.to_string(),
        verdict: req.verdict,
        by: by.to_string(),
        reason: reason.to_string(),
        at_ms: chrono::Utc::now().timestamp_millis(),
    };
    match store.review_decision(tenant, &r)? {
        ReviewResult::Done(d) => {
            crate::webhooks::emit(store, tenant, "decision.reviewed", &d);
            Ok(d)
        }
        ReviewResult::NotFound => Err(AppError::new(
            ErrorCode::NotFound,
            format!("no decision {id:?} in this tenant's log"),
        )),
        ReviewResult::NotPending(d) => Err(AppError::new(
            ErrorCode::NotPending,
            match d.review_status {
                Some(s) => format!(
                    "decision {id} was already {s} by {}",
                    d.reviewed_by.unwrap_or_default()
                ),
                None => format!(
                    "decision {id} was {} at {} and needs no review",
                    d.record.outcome, d.record.level
                ),
            },
        )),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueItem {
    #[serde(flatten)]
    pub decision: StoredDecision,
    /// `review` (L2, acted on already) or `escalation` (L3, waiting for a human).
    pub kind: &'static str,
    pub overdue: bool,
    /// One line for the reviewer.
    pub summary: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewQueue {
    pub items: Vec<QueueItem>,
    pub overdue: usize,
}

pub fn summary(d: &StoredDecision) -> String {
    let r = &d.record;
    let amount = r
        .facts
        .get("amount_cents")
        .and_then(Value::as_i64)
        .map(|c| {
            format!(
                " {:.2} {}",
                c as f64 / 100.0,
                r.facts
                    .get("currency")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )
        })
        .unwrap_or_default();
    format!(
        "{} wants to {}{} for {}: {}",
        r.agent,
        r.action.replace('_', " "),
        amount.trim_end(),
        r.customer,
        r.reasons
            .first()
            .map(String::as_str)
            .unwrap_or("no reason given")
    )
}

pub fn review_queue(store: &dyn Store, tenant: &str, now_ms: i64) -> AppResult<ReviewQueue> {
    let mut pending = store.decisions(
        tenant,
        &DecisionQuery {
            review_status: Some("pending".into()),
            limit: 500,
            ..Default::default()
        },
    )?;
    // escalations first (someone is waiting), then the soonest due
    pending.sort_by_key(|d| (d.record.level != "L3", d.review_due_at_ms));
    let items: Vec<QueueItem> = pending
        .into_iter()
        .map(|d| QueueItem {
            kind: if d.record.level == "L3" {
                "escalation"
            } else {
                "review"
            },
            overdue: d.review_due_at_ms.is_some_and(|due| due < now_ms),
            summary: summary(&d),
            decision: d,
        })
        .collect();
    let overdue = items.iter().filter(|i| i.overdue).count();
    Ok(ReviewQueue { items, overdue })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeReport {
    /// Whether the customer's intent was resolved.
    pub resolved: bool,
    /// What the customer wanted (`billing`, `delivery`, ...).
    pub intent: Option<String>,
}

/// How long an allowed decision may be acted on.
pub const DECISION_TTL_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// The action about to be carried out, and on whom; they must be the decision's.
    pub action: String,
    pub customer: String,
    /// The amount about to be paid, at most the one decided.
    pub amount: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redeemed {
    pub decision_id: String,
    pub redeemed_at_ms: i64,
}
