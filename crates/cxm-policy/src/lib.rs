//! Authority for agents. Before an agent acts it asks "may I?"; the answer comes from a set
//! of Cedar policies in which every `permit` names the level it grants (`@level("L1")`):
//! L1 the agent acts alone, L2 it acts and a human reviews afterwards, L3 a human decides
//! first. The highest matching level wins, a matching `forbid` denies, and when nothing
//! matches — or a policy fails to evaluate — the ask is escalated: there is no silent allow.
//!
//! Pure: no I/O. The caller enriches the ask with what it knows about the customer.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::OnceLock;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Effect, Entities, Entity, EntityId,
    EntityTypeName, EntityUid, PolicyId, PolicySet, Request, RestrictedExpression, Schema,
    ValidationMode, Validator,
};
use serde::{Deserialize, Serialize};

/// The Cedar schema every policy set is validated against.
pub const SCHEMA: &str = include_str!("schema.cedarschema");
/// The authority matrix a tenant starts with.
pub const DEFAULT_POLICIES: &str = include_str!("default.cedar");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    L1,
    L2,
    L3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::L1 => "L1",
            Level::L2 => "L2",
            Level::L3 => "L3",
        }
    }

    /// What the level means for the agent.
    pub fn outcome(self) -> Outcome {
        match self {
            Level::L1 => Outcome::Allow,
            Level::L2 => Outcome::Review,
            Level::L3 => Outcome::Escalate,
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "L1" => Ok(Level::L1),
            "L2" => Ok(Level::L2),
            "L3" => Ok(Level::L3),
            _ => Err(format!("level must be L1, L2 or L3, not {s:?}")),
        }
    }
}

/// The answer an agent acts on: `allow` go ahead; `review` go ahead, a human will review;
/// `escalate` stop, a human decides; `deny` do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Review,
    Escalate,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Review => "review",
            Outcome::Escalate => "escalate",
            Outcome::Deny => "deny",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Outcome, String> {
        match s {
            "allow" => Ok(Outcome::Allow),
            "review" => Ok(Outcome::Review),
            "escalate" => Ok(Outcome::Escalate),
            "deny" => Ok(Outcome::Deny),
            _ => Err(format!("unknown outcome {s:?}")),
        }
    }
}

/// What the policies may test, after enrichment: the agent's claims merged with what cxm
/// knows (an agent cannot under-report a legal threat the customer wrote down).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Recent compound sentiment, -100..100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<i64>,
    #[serde(default)]
    pub legal_threat: bool,
    #[serde(default)]
    pub rage: bool,
    #[serde(default)]
    pub churn_intent: bool,
    #[serde(default)]
    pub account_takeover: bool,
    #[serde(default)]
    pub human_requested: bool,
    #[serde(default)]
    pub step_up_verified: bool,
}

/// The customer as the policies see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerFacts {
    pub tier: String,
    pub arr: i64,
    pub open_tickets: i64,
}

impl Default for CustomerFacts {
    fn default() -> Self {
        CustomerFacts {
            tier: "unknown".into(),
            arr: 0,
            open_tickets: 0,
        }
    }
}

/// One "may I?".
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub agent: &'a str,
    pub agent_kind: &'a str,
    pub action: &'a str,
    pub customer: &'a str,
    pub customer_facts: &'a CustomerFacts,
    pub facts: &'a Facts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub level: Level,
    pub policy_ids: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policies do not parse: {0}")]
    Parse(String),
    #[error("the policies are not valid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("unknown action {action:?}; known actions: {}", .known.join(", "))]
    UnknownAction { action: String, known: Vec<String> },
    #[error("the ask cannot be evaluated: {0}")]
    Ask(String),
}

/// One policy as the authority matrix shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: String,
    pub effect: &'static str,
    /// None for `forbid`.
    pub level: Option<Level>,
    pub reason: String,
    /// The actions it names; empty when it applies to every action.
    pub actions: Vec<String>,
    pub text: String,
}

struct Known {
    schema: Schema,
    actions: BTreeSet<String>,
}

fn known() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| {
        // the schema is ours and fixed; a test proves it parses
        let (schema, _) = Schema::from_cedarschema_str(SCHEMA).expect("built-in schema parses");
        let actions = schema
            .actions()
            .map(|a| a.id().unescaped().to_string())
            .collect();
        Known { schema, actions }
    })
}

/// Every action an agent may ask about.
pub fn actions() -> Vec<String> {
    known().actions.iter().cloned().collect()
}

/// A compiled, validated policy set.
#[derive(Debug, Clone)]
pub struct Policies {
    set: PolicySet,
    rules: Vec<Rule>,
    by_id: HashMap<String, usize>,
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, PolicyError> {
    let t = EntityTypeName::from_str(kind).map_err(|e| PolicyError::Ask(e.to_string()))?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn actions_named(c: ActionConstraint) -> Vec<String> {
    let name = |u: &EntityUid| u.id().unescaped().to_string();
    match c {
        ActionConstraint::Any => vec![],
        ActionConstraint::Eq(u) => vec![name(&u)],
        ActionConstraint::In(us) => us.iter().map(name).collect(),
    }
}

impl Policies {
    /// Parses, validates against the schema (strict), and checks that every policy has a
    /// unique `@id` and every permit a `@level`.
    pub fn compile(text: &str) -> Result<Policies, PolicyError> {
        let parsed = PolicySet::from_str(text).map_err(|e| PolicyError::Parse(render(&e)))?;
        let mut problems = vec![];
        let mut set = PolicySet::new();
        let mut rules = vec![];
        let mut by_id = HashMap::new();
        if parsed.templates().next().is_some() {
            problems.push("templates are not supported; write whole policies".to_string());
        }
        for (n, p) in parsed.policies().enumerate() {
            let Some(id) = p.annotation("id").map(str::to_string) else {
                problems.push(format!(
                    "policy {} has no @id(\"...\") annotation; every policy needs one so decisions can name it",
                    n + 1
                ));
                continue;
            };
            if by_id.contains_key(&id) {
                problems.push(format!("two policies have @id({id:?})"));
                continue;
            }
            let effect = p.effect();
            let level = match (effect, p.annotation("level")) {
                (Effect::Permit, Some(l)) => match l.parse::<Level>() {
                    Ok(l) => Some(l),
                    Err(e) => {
                        problems.push(format!("policy {id:?}: {e}"));
                        continue;
                    }
                },
                (Effect::Permit, None) => {
                    problems.push(format!(
                        "permit {id:?} has no @level(\"L1\"|\"L2\"|\"L3\"); a permit must say what authority it grants"
                    ));
                    continue;
                }
                (Effect::Forbid, _) => None,
            };
            let text = p.to_string();
            rules.push(Rule {
                id: id.clone(),
                effect: match effect {
                    Effect::Permit => "permit",
                    Effect::Forbid => "forbid",
                },
                level,
                reason: p
                    .annotation("reason")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("policy {id}")),
                actions: actions_named(p.action_constraint()),
                text,
            });
            by_id.insert(id.clone(), rules.len() - 1);
            if let Err(e) = set.add(p.new_id(PolicyId::new(&id))) {
                problems.push(format!("policy {id:?}: {e}"));
            }
        }
        let result = Validator::new(known().schema.clone()).validate(&set, ValidationMode::Strict);
        problems.extend(result.validation_errors().map(|e| render(e)));
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        Ok(Policies { set, rules, by_id })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The decision for one ask. Fails only on an unknown action or an ask the schema
    /// refuses; everything else is a verdict.
    pub fn authorize(&self, ask: &Ask) -> Result<Verdict, PolicyError> {
        let k = known();
        if !k.actions.contains(ask.action) {
            return Err(PolicyError::UnknownAction {
                action: ask.action.to_string(),
                known: actions(),
            });
        }
        let principal = uid("Cxm::Agent", ask.agent)?;
        let action = uid("Cxm::Action", ask.action)?;
        let resource = uid("Cxm::Customer", ask.customer)?;
        let f = ask.facts;
        let mut pairs = vec![
            (
                "legal_threat",
                RestrictedExpression::new_bool(f.legal_threat),
            ),
            ("rage", RestrictedExpression::new_bool(f.rage)),
            (
                "churn_intent",
                RestrictedExpression::new_bool(f.churn_intent),
            ),
            (
                "account_takeover",
                RestrictedExpression::new_bool(f.account_takeover),
            ),
            (
                "human_requested",
                RestrictedExpression::new_bool(f.human_requested),
            ),
            (
                "step_up_verified",
                RestrictedExpression::new_bool(f.step_up_verified),
            ),
        ];
        if let Some(a) = f.amount_cents {
            pairs.push(("amount_cents", RestrictedExpression::new_long(a)));
        }
        if let Some(c) = &f.currency {
            pairs.push(("currency", RestrictedExpression::new_string(c.clone())));
        }
        if let Some(c) = &f.channel {
            pairs.push(("channel", RestrictedExpression::new_string(c.clone())));
        }
        if let Some(s) = f.sentiment {
            pairs.push(("sentiment", RestrictedExpression::new_long(s)));
        }
        let context = Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
            .map_err(|e| PolicyError::Ask(render(&e)))?;
        let c = ask.customer_facts;
        let agent = Entity::new(
            principal.clone(),
            HashMap::from([(
                "kind".to_string(),
                RestrictedExpression::new_string(ask.agent_kind.to_string()),
            )]),
            HashSet::new(),
        )
        .map_err(|e| PolicyError::Ask(render(&e)))?;
        let customer = Entity::new(
            resource.clone(),
            HashMap::from([
                (
                    "tier".to_string(),
                    RestrictedExpression::new_string(c.tier.clone()),
                ),
                ("arr".to_string(), RestrictedExpression::new_long(c.arr)),
                (
                    "open_tickets".to_string(),
                    RestrictedExpression::new_long(c.open_tickets),
                ),
            ]),
            HashSet::new(),
        )
        .map_err(|e| PolicyError::Ask(render(&e)))?;
        let entities = Entities::from_entities([agent, customer], Some(&k.schema))
            .map_err(|e| PolicyError::Ask(render(&e)))?;
        let request = Request::new(principal, action, resource, context, Some(&k.schema))
            .map_err(|e| PolicyError::Ask(render(&e)))?;
        let response = Authorizer::new().is_authorized(&request, &self.set, &entities);
        let mut matched: Vec<&Rule> = response
            .diagnostics()
            .reason()
            .filter_map(|id| {
                self.by_id
                    .get(id.to_string().as_str())
                    .map(|&i| &self.rules[i])
            })
            .collect();
        matched.sort_by(|a, b| b.level.cmp(&a.level).then(a.id.cmp(&b.id)));
        let errors: Vec<String> = response.diagnostics().errors().map(|e| render(e)).collect();
        let ids = |rules: &[&Rule]| rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let reasons = |rules: &[&Rule]| rules.iter().map(|r| r.reason.clone()).collect::<Vec<_>>();
        // a policy that errors is skipped by Cedar; a skipped forbid must not become an allow
        if !errors.is_empty() {
            let mut r = reasons(&matched);
            r.extend(
                errors
                    .iter()
                    .map(|e| format!("a policy failed to evaluate, so a human decides: {e}")),
            );
            return Ok(Verdict {
                outcome: Outcome::Escalate,
                level: Level::L3,
                policy_ids: ids(&matched),
                reasons: r,
            });
        }
        Ok(match response.decision() {
            Decision::Deny if matched.is_empty() => Verdict {
                outcome: Outcome::Escalate,
                level: Level::L3,
                policy_ids: vec![],
                reasons: vec![format!(
                    "no policy grants {} authority over {}, so a human decides",
                    ask.agent, ask.action
                )],
            },
            Decision::Deny => Verdict {
                outcome: Outcome::Deny,
                level: Level::L3,
                policy_ids: ids(&matched),
                reasons: reasons(&matched),
            },
            Decision::Allow => {
                let level = matched
                    .iter()
                    .filter_map(|r| r.level)
                    .max()
                    .unwrap_or(Level::L3);
                // the reasons lead with what set the level
                Verdict {
                    outcome: level.outcome(),
                    level,
                    policy_ids: ids(&matched),
                    reasons: reasons(&matched),
                }
            }
        })
    }

    /// Warnings for a set that hands out too much: for every action, the worst ask we can
    /// imagine (ten million, a legal threat, rage, account takeover, a human asked for)
    /// must not be allowed outright. Catches `permit(principal, action, resource)` at L1
    /// and its subtler cousins.
    pub fn lint(&self) -> Vec<String> {
        let worst = Facts {
            amount_cents: Some(1_000_000_000),
            currency: Some("USD".into()),
            channel: Some("chat".into()),
            sentiment: Some(-100),
            legal_threat: true,
            rage: true,
            churn_intent: true,
            account_takeover: true,
            human_requested: true,
            step_up_verified: false,
        };
        let customer = CustomerFacts {
            tier: "enterprise".into(),
            arr: 10_000_000,
            open_tickets: 10,
        };
        let mut out = vec![];
        for action in actions() {
            let ask = Ask {
                agent: "any-agent",
                agent_kind: "bot",
                action: &action,
                customer: "any-customer",
                customer_facts: &customer,
                facts: &worst,
            };
            if let Ok(v) = self.authorize(&ask) {
                if matches!(v.outcome, Outcome::Allow | Outcome::Review) {
                    out.push(format!(
                        "agents may {action} without a human deciding first even for 10,000,000 with a legal threat, rage and account takeover signs (decided by {}); add a condition or a forbid",
                        v.policy_ids.join(", ")
                    ));
                }
            }
        }
        out
    }
}

/// Cedar errors carry their detail in the diagnostic's help; one line says it all.
fn render(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
