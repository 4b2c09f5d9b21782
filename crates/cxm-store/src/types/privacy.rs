//! The records the store keeps for privacy.

use super::*;

/// Data classes with a retention period.
pub const DATA_CLASSES: &[&str] = &["events", "feedback_text", "transcripts", "quarantine"];
/// Classes kept for a set period unless a tenant says otherwise: rejected events are for
/// fixing an integration, not a second archive.
pub const DEFAULT_RETENTION: &[(&str, i64)] = &[("quarantine", 30)];

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Purged {
    /// Events older than the `events` period, deleted.
    pub events: u64,
    /// Free-text answers older than the `feedback_text` period, blanked (scores stay).
    pub feedback_texts: u64,
    /// Conversation events older than the `transcripts` period whose transcript or message
    /// properties were removed.
    pub transcripts: u64,
    /// Quarantined events older than the `quarantine` period, deleted.
    pub quarantined: u64,
}
