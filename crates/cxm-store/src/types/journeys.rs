//! The records the store keeps for journeys.

use super::*;

/// One version of a journey definition.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredJourney {
    pub journey_id: String,
    pub version: i64,
    pub name: String,
    pub owner: String,
    /// The definition as JSON.
    #[serde(skip)]
    pub definition: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// An event a journey reads, with the customer it belongs to resolved (None: nobody known).
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyEventRow {
    pub seq: i64,
    pub profile_id: Option<String>,
    pub name: String,
    pub channel: String,
    pub ts_ms: i64,
}

/// A scored or text answer, as a journey attributes it to a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyAnswer {
    pub id: i64,
    pub profile_id: Option<String>,
    pub field_type: String,
    pub score: Option<f64>,
    pub sentiment: Option<f64>,
    pub collected_at_ms: i64,
    /// The journey and stage the answer names itself, if any.
    pub journey: String,
    pub stage: String,
}

/// How far a journey version has read the event log and the answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct JourneyCursor {
    pub event_seq: i64,
    pub feedback_id: i64,
}

/// What one pass of the journey worker adds, saved in one transaction that also moves the
/// cursor from `from` to `to` (and does nothing if another server moved it first).
#[derive(Debug, Clone, Default)]
pub struct JourneyProgress {
    pub from: JourneyCursor,
    pub to: JourneyCursor,
    pub positions: Vec<(String, cxm_domain::journey_progress::Position)>,
    pub visits: Vec<(String, cxm_domain::journey_progress::Visit)>,
    /// Full new tallies of the stages that changed.
    pub stats: Vec<(usize, cxm_domain::journey_progress::StageStats)>,
}

/// How an ended visit is stored.
pub fn outcome_str(o: cxm_domain::journey_progress::Outcome) -> &'static str {
    use cxm_domain::journey_progress::Outcome;
    match o {
        Outcome::Advanced => "advanced",
        Outcome::Completed => "completed",
        Outcome::Looped => "looped",
    }
}

/// One run of a synthetic journey check.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JourneyCheckRun {
    /// The row's place in the store: not shown, as it counts every tenant's rows.
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub passed: bool,
    /// What the check reported, when it said more than pass or fail.
    #[schema(value_type = Option<Object>)]
    pub detail: serde_json::Value,
    pub ran_at_ms: i64,
}
