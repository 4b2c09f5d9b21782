//! The records the store keeps for feedback.

use super::*;

/// An answer ready to store, with its enrichment.
#[derive(Debug, Clone)]
pub struct FeedbackRow {
    pub answer: cxm_domain::feedback::Answer,
    /// The CX-corrected sentiment (`cx_compound`) of the text, when there is English text.
    pub sentiment: Option<f64>,
    /// Cue flags as JSON, with VADER's uncorrected compound.
    pub cues: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeedbackOutcome {
    pub accepted: u32,
    pub duplicates: u32,
}

/// A dimension metrics can be sliced by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slice {
    Channel,
    Survey,
    Journey,
    Stage,
    Agent,
    /// The tier (or plan) of the answer's account.
    Tier,
}

impl Slice {
    pub fn parse(s: &str) -> Option<Slice> {
        Some(match s {
            "channel" => Slice::Channel,
            "survey" => Slice::Survey,
            "journey" => Slice::Journey,
            "stage" => Slice::Stage,
            "agent" => Slice::Agent,
            "tier" => Slice::Tier,
            _ => return None,
        })
    }
    /// The rollup's name for the dimension.
    pub(crate) fn dim(self) -> &'static str {
        match self {
            Slice::Channel => "channel",
            Slice::Survey => "survey",
            Slice::Journey => "journey",
            Slice::Stage => "stage",
            Slice::Agent => "agent",
            Slice::Tier => "tier",
        }
    }
}

/// Answers counted per day, slice value and score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramRow {
    pub day: String,
    /// The slice value ('' when not sliced or not set).
    pub group: String,
    pub score: i64,
    pub answers: u64,
}

/// A free-text answer with what its response scored, for theme analysis.
#[derive(Debug, Clone, Serialize)]
pub struct TextAnswer {
    /// The feedback row.
    pub id: i64,
    pub account: Option<String>,
    pub response_id: String,
    pub text: String,
    pub sentiment: Option<f64>,
    /// The NPS answer of the same response, if it has one.
    pub nps: Option<i64>,
    pub collected_at_ms: i64,
}

/// One answer of a customer's, as their page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProfileAnswer {
    pub response_id: String,
    pub question: String,
    pub field_type: String,
    pub score: Option<i64>,
    pub text: Option<String>,
    pub survey_id: String,
    pub channel: String,
    pub sentiment: Option<f64>,
    pub at_ms: i64,
}

/// What the responses list asks for: every filter optional, newest first, keyset paged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    /// nps, csat, ces, text, …
    pub field_type: Option<String>,
    pub survey_id: Option<String>,
    pub channel: Option<String>,
    /// Answers whose text contains this, ignoring ASCII case.
    pub text: Option<String>,
    /// Answers with a smaller id (the next page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// One answer in the responses list, with the customer and account it is linked to.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ListedAnswer {
    pub id: i64,
    pub response_id: String,
    pub question: String,
    pub field_type: String,
    pub score: Option<i64>,
    pub text: Option<String>,
    pub survey_id: String,
    pub channel: String,
    pub sentiment: Option<f64>,
    pub at_ms: i64,
    pub profile_id: Option<String>,
    pub account: Option<String>,
}

/// An answer a customer gave lately, as a decision's enrichment reads it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RecentAnswer {
    pub field_type: String,
    pub score: Option<i64>,
    pub sentiment: Option<f64>,
    /// The text cues stored with the answer (churn intent, legal threat, rage, ...).
    pub cues: Option<serde_json::Value>,
    pub at_ms: i64,
}
