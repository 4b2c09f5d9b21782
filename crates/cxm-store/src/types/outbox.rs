//! The records the store keeps for outbox.

use super::*;

/// Where a tenant's events are posted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    /// `whsec_...`; shown once, when the endpoint is created.
    #[serde(skip)]
    pub secret: String,
    /// Event types sent (empty: all).
    pub events: Vec<String>,
    pub active: bool,
    pub created_at_ms: i64,
}

/// One event for one endpoint, and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: String,
    /// The `webhook-id` header: the same on every retry, so receivers can deduplicate.
    pub message_id: String,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// pending, delivered or failed (gave up)
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
    /// Not serialised: the worker needs the tenant and the endpoint to send.
    #[serde(skip)]
    pub tenant_id: String,
    /// What is merged into `data` when sending (a one-time code); never serialised, and
    /// only read for deliveries that are due.
    #[serde(skip)]
    pub secret: Option<serde_json::Value>,
}

/// Event types an endpoint receives only when it names them: one-time codes must never reach
/// an endpoint that subscribed to "everything" for analytics.
pub const OPT_IN_EVENT_TYPES: &[&str] = &["step_up.code"];

impl WebhookEndpoint {
    /// Whether this endpoint takes events of this type (no list means all but the opt-in ones).
    pub fn wants(&self, event_type: &str) -> bool {
        if self.events.is_empty() {
            !OPT_IN_EVENT_TYPES.contains(&event_type)
        } else {
            self.events.iter().any(|t| t == event_type)
        }
    }
}

/// An email to a customer that is not a survey invitation (see `Store::queue_mail`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundMail {
    pub id: i64,
    /// Why it is sent, e.g. `loop_closed`.
    pub kind: String,
    /// What it is about, e.g. the ticket id.
    pub reference: String,
    pub profile_id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub detail: String,
    pub created_at_ms: i64,
}
