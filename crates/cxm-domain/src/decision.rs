//! A decision as the log keeps it: what the agent asked, what cxm added, which policy version
//! answered and how. Its canonical JSON is the body of its audit entry, so an edited row no
//! longer matches the chain.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::NewAuditEntry;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionRecord {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub customer: String,
    pub resource: Option<String>,
    /// The context the agent sent, as sent.
    pub request: Value,
    /// What the policies saw after enrichment.
    pub facts: Value,
    /// What cxm looked up to enrich it (sources and values).
    pub used: Value,
    pub policy_version: i64,
    pub outcome: String,
    pub level: String,
    pub policy_ids: Vec<String>,
    pub reasons: Vec<String>,
    pub at_ms: i64,
}

impl DecisionRecord {
    /// Canonical JSON: keys sorted at every depth, whatever order a map was built or read in.
    pub fn body(&self) -> String {
        serde_json::to_value(self)
            .map(|v| canonical(&v))
            .unwrap_or_default()
    }

    pub fn audit_entry(&self, actor: &str) -> NewAuditEntry {
        NewAuditEntry {
            actor: actor.to_string(),
            kind: "decision".into(),
            subject: self.id.clone(),
            body: self.body(),
        }
    }
}

/// A human's verdict on a decision in the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewVerdict {
    Approved,
    Reversed,
}

impl ReviewVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewVerdict::Approved => "approved",
            ReviewVerdict::Reversed => "reversed",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewVerdict> {
        match s {
            "approved" => Some(ReviewVerdict::Approved),
            "reversed" => Some(ReviewVerdict::Reversed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Review {
    pub decision_id: String,
    pub verdict: ReviewVerdict,
    pub by: String,
    pub reason: String,
    pub at_ms: i64,
}

impl Review {
    pub fn audit_entry(&self) -> NewAuditEntry {
        NewAuditEntry {
            actor: self.by.clone(),
            kind: "decision.reviewed".into(),
            subject: self.decision_id.clone(),
            body: serde_json::to_value(self)
                .map(|v| canonical(&v))
                .unwrap_or_default(),
        }
    }
}

/// JSON with object keys sorted at every depth.
pub fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_ignores_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": 2, "c": [ {"f": 1, "e": 2} ]}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a": {"c": [ {"e": 2, "f": 1} ], "d": 2}, "b": 1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), r#"{"a":{"c":[{"e":2,"f":1}],"d":2},"b":1}"#);
    }
}
