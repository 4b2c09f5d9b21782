//! The records the store keeps for experiments.

use super::*;

/// An experiment as stored: its definition (JSON), where the rollout stands, and the steps
/// taken (a JSON array of `{at_ms, actor, action, detail}`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredExperiment {
    pub id: String,
    pub definition: String,
    pub status: String,
    pub rollout_percent: f64,
    pub shipped_arm: Option<String>,
    pub history: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub started_at_ms: Option<i64>,
}

/// A customer's first exposure to an experiment; `unit` is the customer itself or their
/// account.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Exposure {
    pub experiment_id: String,
    pub unit: String,
    pub customer: String,
    pub profile_id: Option<String>,
    pub arm: String,
    pub first_at_ms: i64,
}

/// An `Experiment Viewed` event (the Segment and GrowthBook convention): who saw which
/// variation of an experiment, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewEvent {
    pub seq: i64,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub profile_id: Option<String>,
    pub ts_ms: i64,
    pub variation: Option<String>,
}
