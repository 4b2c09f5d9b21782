//! The records the store keeps for surveys.

use super::*;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurveySummary {
    pub survey_id: String,
    /// The latest version.
    pub version: i64,
    pub name: String,
    pub links: i64,
    pub displays: i64,
    pub responses: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SurveyLink {
    pub tenant_id: String,
    pub survey_id: String,
    pub version: i64,
    pub identifier: Option<String>,
    pub channel: String,
    pub displayed_at_ms: Option<i64>,
    pub responded_at_ms: Option<i64>,
    pub follow_ups: i64,
}

/// What happened to a survey link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    Displayed,
    Responded,
    FollowUpAnswered,
}

/// An event that may trigger a survey invitation.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerEvent {
    pub seq: i64,
    pub name: String,
    pub channel: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub message_id: String,
    pub ts_ms: i64,
}

/// An invitation a survey's targeting made.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: i64,
    pub survey_id: String,
    pub version: i64,
    /// Who is invited, `type:value` (an email when the customer has one).
    pub identifier: String,
    /// Where it goes out (email, chat, sms, ...).
    pub channel: String,
    pub trigger_event: String,
    pub trigger_message_id: String,
    /// pending (to deliver), delivered, held (a contact rule held it back) or failed.
    pub status: String,
    pub detail: String,
    /// The survey link; only while pending or delivered.
    pub url: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
}
