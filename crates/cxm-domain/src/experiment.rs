//! Experiments on journeys, surveys and automations: their definition (parsed, not
//! validated later), deterministic assignment, and the rollout state machine with guardrails.
//!
//! Assignment is a pure function of (experiment id, unit id): the same customer or account
//! always lands in the same arm, on every server, with no state to share. Whether a unit is
//! in the rollout at all uses a second, independent hash, so raising the rollout from 5 % to
//! 20 % keeps everyone who was already in and only adds people.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ExperimentError(pub String);

fn err(s: impl Into<String>) -> ExperimentError {
    ExperimentError(s.into())
}

/// What the experiment changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentKind {
    Journey,
    Survey,
    Automation,
    Policy,
}

/// Who is randomised: a customer, or a whole account (everyone in it sees the same arm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Customer,
    Account,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArmDef {
    pub key: String,
    /// Relative share of the traffic (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub description: String,
}

fn one() -> f64 {
    1.0
}

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Increase,
    Decrease,
}

/// What a metric counts for each exposed unit within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// The unit sent the event (conversion, churn notice, ...).
    #[default]
    Event,
    /// Of the units that answered a CSAT question, the share whose latest answer was 4 or 5.
    Csat,
    /// The unit sent the event (a contact, by default `Ticket Opened`) twice within 7 days.
    RepeatContact,
}

/// A metric read from the event log and the answers, per exposed unit, within the window
/// after its first exposure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    #[serde(default)]
    pub kind: MetricKind,
    /// The event (for `csat`, unused; for `repeat_contact`, the contact event).
    #[serde(default)]
    pub event: String,
    #[serde(default = "increase")]
    pub direction: Direction,
    /// Days after the first exposure that count (default 14).
    #[serde(default = "fourteen")]
    pub window_days: u32,
}

fn increase() -> Direction {
    Direction::Increase
}
fn fourteen() -> u32 {
    14
}

/// A metric that must not get worse: when the always-valid interval shows it worse by more
/// than `max_relative_change` (e.g. 0.1 = 10 % more churn notices), the rollout is rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailDef {
    #[serde(flatten)]
    pub metric: MetricDef,
    #[serde(default = "ten_percent")]
    pub max_relative_change: f64,
}

fn ten_percent() -> f64 {
    0.1
}

/// An experiment as written by its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentDef {
    /// Lowercase slug, unique in the tenant.
    pub id: String,
    pub name: String,
    pub owner: String,
    pub kind: ExperimentKind,
    #[serde(default)]
    pub hypothesis: String,
    /// What it changes: a journey id, survey id, rule or policy version.
    #[serde(default)]
    pub target: String,
    #[serde(default = "customer")]
    pub unit: Unit,
    /// The first arm is the control.
    pub arms: Vec<ArmDef>,
    pub metric: MetricDef,
    #[serde(default)]
    pub guardrails: Vec<GuardrailDef>,
    /// Smallest relative lift worth detecting, for the sample-size figure (default 0.1).
    #[serde(default = "ten_percent")]
    pub mde: f64,
    /// Two-sided significance level (default 0.05).
    #[serde(default = "five_percent")]
    pub alpha: f64,
}

fn customer() -> Unit {
    Unit::Customer
}
fn five_percent() -> f64 {
    0.05
}

pub fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
}

impl MetricDef {
    /// The event the metric reads, with the defaults filled in ("" for CSAT).
    pub fn event_name(&self) -> &str {
        match self.kind {
            MetricKind::Event => &self.event,
            MetricKind::Csat => "",
            MetricKind::RepeatContact if self.event.is_empty() => "Ticket Opened",
            MetricKind::RepeatContact => &self.event,
        }
    }

    /// A name for pages and warnings.
    pub fn label(&self) -> String {
        match self.kind {
            MetricKind::Event => self.event.clone(),
            MetricKind::Csat => "CSAT (top two box)".into(),
            MetricKind::RepeatContact => format!("repeat {} within 7 days", self.event_name()),
        }
    }
}

impl ExperimentDef {
    /// Parses a definition from JSON, checking everything a result would depend on.
    pub fn parse(v: serde_json::Value) -> Result<ExperimentDef, ExperimentError> {
        let d: ExperimentDef = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<(), ExperimentError> {
        if !valid_slug(&self.id) {
            return Err(err(
                "id must be 1 to 64 lowercase letters, digits, '-' or '_'",
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(err("name must be 1 to 200 bytes"));
        }
        if self.owner.trim().is_empty() {
            return Err(err("every experiment needs an owner"));
        }
        if self.arms.len() < 2 || self.arms.len() > 10 {
            return Err(err(
                "an experiment needs 2 to 10 arms; the first is the control",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for a in &self.arms {
            if !valid_slug(&a.key) {
                return Err(err(format!(
                    "arm {:?}: keys are 1 to 64 lowercase letters, digits, '-' or '_'",
                    a.key
                )));
            }
            if !seen.insert(a.key.as_str()) {
                return Err(err(format!("arm {:?} appears twice", a.key)));
            }
            if !(a.weight.is_finite() && a.weight > 0.0) {
                return Err(err(format!("arm {:?}: weight must be above zero", a.key)));
            }
        }
        let metrics =
            std::iter::once(&self.metric).chain(self.guardrails.iter().map(|g| &g.metric));
        for m in metrics {
            let needs_event = m.kind == MetricKind::Event;
            if (needs_event && m.event.trim().is_empty()) || m.event.len() > 200 {
                return Err(err("metric events are named in 1 to 200 bytes"));
            }
            if m.window_days == 0 || m.window_days > 365 {
                return Err(err(format!(
                    "metric {:?}: window_days must be 1 to 365",
                    m.event
                )));
            }
        }
        for g in &self.guardrails {
            if !(g.max_relative_change.is_finite() && g.max_relative_change >= 0.0) {
                return Err(err(format!(
                    "guardrail {:?}: max_relative_change must be 0 or more",
                    g.metric.event
                )));
            }
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(err("alpha must be between 0 and 0.5"));
        }
        if !(self.mde.is_finite() && self.mde > 0.0 && self.mde < 10.0) {
            return Err(err("mde must be a relative lift above 0, e.g. 0.1"));
        }
        Ok(())
    }

    pub fn weights(&self) -> Vec<f64> {
        self.arms.iter().map(|a| a.weight).collect()
    }

    /// The arm a unit is in: the cumulative weights cut [0, 1) and the unit's hash picks.
    pub fn arm_for(&self, unit: &str) -> &ArmDef {
        let total: f64 = self.arms.iter().map(|a| a.weight).sum();
        let u = unit_hash(&self.id, "arm", unit);
        let mut acc = 0.0;
        for a in &self.arms {
            acc += a.weight / total;
            if u < acc {
                return a;
            }
        }
        // rounding can leave the last sliver unassigned
        &self.arms[self.arms.len() - 1]
    }
}

/// A number in [0, 1) from SHA-256 of the experiment, a purpose and the unit.
pub fn unit_hash(experiment: &str, purpose: &str, unit: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(experiment.as_bytes());
    h.update([0]);
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(unit.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    // 53 bits fill an f64 mantissa exactly
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a unit is inside a rollout of `percent` (0–100).
pub fn in_rollout(experiment: &str, unit: &str, percent: f64) -> bool {
    unit_hash(experiment, "rollout", unit) * 100.0 < percent
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Running,
    Paused,
    /// A guardrail was breached: everyone sees the control until someone overrides.
    RolledBack,
    /// Decided: `shipped_arm` is what everyone sees.
    Shipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::RolledBack => "rolled_back",
            Status::Shipped => "shipped",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "draft" => Status::Draft,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "rolled_back" => Status::RolledBack,
            "shipped" => Status::Shipped,
            _ => return None,
        })
    }

    /// Which moves a person may make (an automatic rollback is the system's, from running).
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Draft, Running)
                | (Running, Paused)
                | (Paused, Running)
                | (RolledBack, Running)
                | (Running | Paused | RolledBack, Shipped)
                | (Running, RolledBack)
                | (Paused, RolledBack)
        )
    }
}

/// Rollout steps a canary usually takes, for the page's buttons.
pub const ROLLOUT_STEPS: [f64; 5] = [1.0, 5.0, 20.0, 50.0, 100.0];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn def(weights: &[f64]) -> ExperimentDef {
        ExperimentDef::parse(json!({
            "id": "checkout-copy", "name": "Checkout copy", "owner": "ana", "kind": "journey",
            "arms": weights.iter().enumerate().map(|(i, w)| json!({"key": format!("arm{i}"), "weight": w})).collect::<Vec<_>>(),
            "metric": {"event": "Order Completed"},
        }))
        .unwrap()
    }

    #[test]
    fn refuses_broken_definitions() {
        let base = json!({"id": "x", "name": "X", "owner": "ana", "kind": "survey",
            "arms": [{"key": "a"}, {"key": "b"}], "metric": {"event": "Done"}});
        assert!(ExperimentDef::parse(base.clone()).is_ok());
        for (field, value, says) in [
            ("arms", json!([{"key": "a"}]), "2 to 10 arms"),
            ("arms", json!([{"key": "a"}, {"key": "a"}]), "twice"),
            (
                "arms",
                json!([{"key": "a"}, {"key": "b", "weight": 0}]),
                "weight",
            ),
            ("owner", json!(" "), "owner"),
            ("id", json!("Has Spaces"), "lowercase"),
            ("alpha", json!(0.9), "alpha"),
            (
                "metric",
                json!({"event": "Done", "window_days": 0}),
                "window_days",
            ),
            ("kind", json!("magic"), "unknown variant"),
        ] {
            let mut v = base.clone();
            v[field] = value;
            let e = ExperimentDef::parse(v).unwrap_err();
            assert!(e.0.contains(says), "{field}: {e}");
        }
    }

    #[test]
    fn status_moves() {
        assert!(Status::Draft.can_move_to(Status::Running));
        assert!(!Status::Shipped.can_move_to(Status::Running));
        assert!(!Status::Draft.can_move_to(Status::Shipped));
        assert!(Status::RolledBack.can_move_to(Status::Running));
    }

    #[test]
    fn split_follows_the_weights() {
        let d = def(&[1.0, 3.0]);
        let n = 20_000;
        let b = (0..n)
            .filter(|i| d.arm_for(&format!("user-{i}")).key == "arm1")
            .count();
        let share = b as f64 / f64::from(n);
        // binomial sd at n = 20,000 is 0.003
        assert!((share - 0.75).abs() < 0.015, "{share}");
    }

    proptest! {
        #[test]
        fn assignment_is_deterministic_and_rollouts_only_add(unit in "[a-z0-9@.]{1,30}", low in 0.0f64..100.0, extra in 0.0f64..50.0) {
            let d = def(&[1.0, 1.0, 2.0]);
            prop_assert_eq!(&d.arm_for(&unit).key, &d.arm_for(&unit).key);
            let h = unit_hash("e", "arm", &unit);
            prop_assert!((0.0..1.0).contains(&h));
            if in_rollout(&d.id, &unit, low) {
                prop_assert!(in_rollout(&d.id, &unit, (low + extra).min(100.0)));
            }
            prop_assert!(in_rollout(&d.id, &unit, 100.0));
            prop_assert!(!in_rollout(&d.id, &unit, 0.0));
        }
    }
}
