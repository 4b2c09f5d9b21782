//! The records the store keeps for agents.

use super::*;

/// A principal that acts for the company (bot, voice agent, automation) and asks before acting.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub name: String,
    /// `bot`, `voice`, `automation`, ...; the policies can tell them apart.
    pub kind: String,
    pub description: String,
    /// The words its outbound messages must carry ("I'm an automated assistant").
    pub disclosure: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

/// One version of a tenant's policies.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PolicySetRow {
    pub version: i64,
    pub text: String,
    pub note: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub activated_at_ms: Option<i64>,
}

/// A decision with where it stands in the review queue.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredDecision {
    #[serde(flatten)]
    pub record: cxm_domain::decision::DecisionRecord,
    pub audit_seq: i64,
    /// `pending` while a human has to look; then `approved` or `reversed`; None for L1.
    pub review_status: Option<String>,
    pub review_due_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub reviewed_at_ms: Option<i64>,
    /// What the agent reported afterwards: the customer's intent resolved or not.
    pub resolved: Option<bool>,
    pub intent: Option<String>,
    pub reported_at_ms: Option<i64>,
}

/// A decision to log: the record, who asked, and (for L2/L3) when its review is due.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    pub tenant_id: String,
    pub actor: String,
    pub record: cxm_domain::decision::DecisionRecord,
    pub review_due_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecisionQuery {
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub review_status: Option<String>,
    pub customer: Option<String>,
    /// Newest first, before this time.
    pub before_ms: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReviewResult {
    NotFound,
    /// Already reviewed, or never needed one.
    NotPending(StoredDecision),
    Done(StoredDecision),
}

/// A one-time code sent to a customer before a high-stakes action.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepUp {
    pub id: String,
    pub customer: String,
    pub profile_id: String,
    /// `email` or `phone`.
    pub channel: String,
    /// Masked destination (`a***@example.com`).
    pub sent_to: String,
    #[serde(skip)]
    pub code_hash: String,
    pub attempts_left: i64,
    pub expires_at_ms: i64,
    pub verified_at_ms: Option<i64>,
    pub created_by: String,
    pub created_at_ms: i64,
}
