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
}
