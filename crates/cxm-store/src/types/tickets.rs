//! The records the store keeps for tickets.

use super::*;

/// A remediation ticket.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub severity: String,
    pub state: String,
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    /// The verification check chosen when the ticket was opened.
    #[schema(value_type = Object)]
    pub check: serde_json::Value,
    /// Affected customers and accounts and their ARR.
    #[schema(value_type = Object)]
    pub impact: serde_json::Value,
    pub sla_hours: i64,
    pub due_at_ms: i64,
    /// The last verdict of the check.
    #[schema(value_type = Object)]
    pub verdict: Option<serde_json::Value>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub closed_at_ms: Option<i64>,
}

/// One entry of a ticket's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TicketEvent {
    /// The row's place in the store: not shown, as it counts every tenant's rows.
    #[serde(skip)]
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    /// created, state, verified, verification_failed, override, comment
    pub kind: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A change to a ticket and the timeline entry that records it.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketChange {
    /// The state the ticket must be in (the change is refused otherwise: someone else moved it).
    pub from_state: String,
    pub state: String,
    pub closed_at_ms: Option<i64>,
    pub verdict: Option<serde_json::Value>,
    pub actor: String,
    pub kind: String,
    pub detail: serde_json::Value,
}
