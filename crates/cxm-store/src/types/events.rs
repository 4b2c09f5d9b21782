//! The records the store keeps for events.

use super::*;

/// One ingest request: what a single HTTP call or import chunk carries.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub tenant_id: String,
    /// Dedup scope: the same messageId from another write key is another message.
    pub write_key_id: String,
    pub events: Vec<NormalizedEvent>,
    /// The rejected events: counted by reason, a bounded sample kept whole.
    pub quarantined: cxm_domain::Quarantine,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AppendOutcome {
    pub accepted: u32,
    pub duplicates: u32,
    pub quarantined: u32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuarantineEntry {
    /// The row's place in the store: not shown, as it counts every tenant's rows.
    #[serde(skip)]
    pub id: i64,
    pub code: String,
    pub detail: String,
    pub payload: Value,
    pub received_at_ms: i64,
}

/// A tenant's quarantine on one UTC day: every rejected event is counted; rows are kept
/// only up to the day's caps (and a bounded sample per request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuarantineDay {
    pub day: String,
    /// Events rejected.
    pub events: i64,
    /// Rows kept (samples and per-request summaries).
    pub rows_kept: i64,
    pub bytes_kept: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DayChannelCount {
    pub day: String,
    pub channel: String,
    pub events: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub total_events: i64,
    pub profiles: i64,
    pub quarantined: i64,
    pub by_day_channel: Vec<DayChannelCount>,
}
