//! Cluster membership and partition leases, as the shared database keeps them.

use serde::Serialize;

/// A node with a fresh heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClusterNode {
    pub node_id: String,
    pub started_at_ms: i64,
    pub heartbeat_at_ms: i64,
    pub expires_at_ms: i64,
}

/// One virtual partition's lease.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Lease {
    pub partition: i32,
    pub owner: String,
    pub epoch: i64,
    pub acquired_at_ms: i64,
    pub renewed_at_ms: i64,
    pub expires_at_ms: i64,
    /// Whether it had expired when read (the database's clock).
    pub expired: bool,
    pub applied_seq: i64,
    /// When its owner last applied a batch from the ingest log.
    pub applied_at_ms: Option<i64>,
}

/// The lease a partition owner writes under: every fenced write names it, and the database
/// refuses it once the lease has moved on or run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub partition: i32,
    pub node: String,
    pub epoch: i64,
}

/// One event as the ingest log carries it to its partition's owner: its position in the
/// partition's stream and the request it came in with.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub seq: i64,
    pub tenant_id: String,
    pub write_key_id: String,
    pub event: cxm_domain::NormalizedEvent,
}

/// What one fenced apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events already applied (a redelivery, or an SDK's resent event), found by the
    /// tenant's dedup window.
    pub skipped: usize,
    pub outcome: crate::AppendOutcome,
    /// The highest stream position applied so far (progress, for lag and operators).
    pub applied_seq: i64,
}

/// One batch an owner applied (the `cluster_applies` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyRecord {
    pub partition: i32,
    pub epoch: i64,
    pub owner: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: i32,
}
