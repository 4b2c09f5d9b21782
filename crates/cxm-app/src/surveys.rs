//! Surveys: definitions and invitation links over the API, and the hosted survey page
//! `/s/{token}`, which works without JavaScript, records displays, stores one row per
//! answer and asks the engine's follow-up questions.

use std::collections::HashMap;

use cxm_domain::feedback::FieldType;
use cxm_domain::survey::{next_follow_up, AnswerSignal, SurveyDefinition};
use cxm_store::{SurveyLink, SurveySummary};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SaveSurvey {
    /// Stable id, e.g. `post-ticket`.
    pub survey_id: String,
    pub definition: SurveyDefinition,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SavedSurvey {
    pub survey_id: String,
    pub version: i64,
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SurveyList {
    pub surveys: Vec<SurveyStats>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SurveyStats {
    #[serde(flatten)]
    pub summary: SurveySummary,
    /// responses / displays, in percent (null before the first display).
    pub response_rate: Option<f64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextRequest {
    /// Answers so far, question id to value (scores as numbers or strings).
    #[serde(default)]
    pub answers: HashMap<String, Value>,
    /// Follow-up questions already asked in this conversation.
    #[serde(default)]
    pub follow_ups_asked: u8,
    /// The version being answered (default: the latest).
    pub version: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NextStep {
    pub version: i64,
    /// The next questions to ask (the next page's, with branching applied), if any.
    pub questions: Vec<cxm_domain::survey::Question>,
    /// When every question is answered: a follow-up to ask, if the answers call for one.
    pub follow_up: Option<cxm_domain::survey::FollowUp>,
    /// Nothing more to ask.
    pub done: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewLink {
    /// The customer, `type:value`; answers are attributed to them.
    pub identifier: Option<String>,
    /// Where the link is sent (default email).
    pub channel: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedLink {
    pub token: String,
    /// Relative to this server.
    pub url: String,
    pub version: i64,
}

/// Makes an invitation link to the survey's latest version, after the contact rules allow it.
pub async fn new_link(
    st: &App,
    tenant: &str,
    id: &str,
    identifier: Option<String>,
    channel: Option<String>,
) -> AppResult<CreatedLink> {
    let id = id.to_string();
    if let Some(i) = &identifier {
        if cxm_domain::Identifier::parse_typed(i).is_none() {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                format!("identifier {i:?} must be type:value"),
            ));
        }
    }
    let channel = channel.unwrap_or_else(|| "email".into());
    let channel = cxm_domain::Channel::parse(&channel).ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidParameter,
            format!("{channel:?} is not a known channel"),
        )
    })?;
    let (t, i) = (tenant.to_string(), id.clone());
    let (version, def) = st
        .store
        .run(move |s| s.survey(&t, &i, None))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no survey {id}")))?;
    if let Some(ident) = &identifier {
        let def: SurveyDefinition = serde_json::from_str(&def)
            .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
        contact_check(st, tenant, &id, &def, ident, channel.as_str()).await?;
    }
    let (token, hash) = crate::auth::new_session_token();
    let link = SurveyLink {
        tenant_id: tenant.to_string(),
        survey_id: id,
        version,
        identifier,
        channel: channel.as_str().into(),
        displayed_at_ms: None,
        responded_at_ms: None,
        follow_ups: 0,
    };
    st.store.run(move |s| s.create_link(&hash, &link)).await?;
    Ok(CreatedLink {
        url: format!("/s/{token}"),
        token,
        version,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// pending, delivered, held or failed (default: all).
    pub status: Option<String>,
    /// One survey's invitations.
    pub survey: Option<String>,
    /// At most this many, oldest first, 1-1000 (default 100).
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<cxm_store::Invitation>,
}

pub const INVITATION_STATUSES: [&str; 4] = ["pending", "delivered", "held", "failed"];

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationUpdate {
    /// delivered or failed.
    pub status: String,
    /// Why it failed, or the provider's message id.
    #[serde(default)]
    pub detail: String,
}

/// Whether the customer's consent and the contact rules let them be invited to this survey
/// now. The survey's own rules apply to its invitations; the tenant-wide rules to all of them.
pub async fn contact_check(
    st: &App,
    tenant: &str,
    survey_id: &str,
    def: &SurveyDefinition,
    identifier: &str,
    channel: &str,
) -> AppResult<()> {
    // the customer's own say comes first: a declined survey is never sent
    let (t, ident, ch) = (
        tenant.to_string(),
        identifier.to_string(),
        channel.to_string(),
    );
    let declined = st
        .store
        .run(move |s| crate::privacy::declined(s, &t, &ident, "surveys", &ch))
        .await?;
    if let Some(why) = declined {
        return Err(AppError::new(ErrorCode::ContactRule, why));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let (rules, scope) = match def.contact_rules {
        Some(r) => (r, Some(survey_id.to_string())),
        None => (st.config.contact_rules, None),
    };
    let since = now - i64::from(rules.period_days.max(rules.min_days_between)) * 86_400_000;
    let (t, ident) = (tenant.to_string(), identifier.to_string());
    let earlier = st
        .store
        .run(move |s| s.invitations(&t, &ident, scope.as_deref(), since))
        .await?;
    rules
        .check(&earlier, now)
        .map_err(|why| AppError::new(ErrorCode::ContactRule, why))
}

pub fn scale_of(kind: &str) -> Option<(Vec<i64>, &'static str, &'static str)> {
    match FieldType::parse(kind)? {
        FieldType::Nps => Some(((0..=10).collect(), "Not at all likely", "Extremely likely")),
        FieldType::Csat => Some(((1..=5).collect(), "Very dissatisfied", "Very satisfied")),
        FieldType::Ces => Some(((1..=7).collect(), "Very difficult", "Very easy")),
        FieldType::Rating => Some(((0..=10).collect(), "Poor", "Excellent")),
        _ => None,
    }
}

pub fn base_answer(
    link: &SurveyLink,
    hash: &str,
    question: &str,
    kind: &str,
    value: Value,
) -> Value {
    json!({"response_id": format!("s-{}", &hash[..16]), "question": question, "type": kind, "value": value, "channel": link.channel,
           "survey_id": link.survey_id, "survey_version": link.version, "identifier": link.identifier})
}

/// The prompt of the first open-text question answered, for wording a follow-up.
pub fn answered_text_prompt(def: &SurveyDefinition, raw: &HashMap<String, String>) -> String {
    def.questions
        .iter()
        .find(|q| q.kind == "text" && raw.contains_key(&q.id))
        .map_or(String::new(), |q| q.prompt.clone())
}

/// Whether the text is a topic the tenant's themes do not know (for the follow-up engine).
pub async fn new_topic(st: &App, tenant: &str, text: &str) -> bool {
    let (t, x) = (tenant.to_string(), text.to_string());
    crate::blocking(st, move |s| crate::themes::is_new_topic(s, &t, &x))
        .await
        .unwrap_or(false)
}

/// The engine's follow-up, in the words of the configured model when there is one and it
/// answers well and in time.
pub async fn worded_follow_up(
    st: &App,
    def: &SurveyDefinition,
    signal: &AnswerSignal<'_>,
    asked: u8,
    question: &str,
) -> Option<cxm_domain::survey::FollowUp> {
    let mut f = next_follow_up(def, signal, asked)?;
    if let Some(cfg) = &st.config.llm {
        if let Some(p) = crate::phrasing::phrase(
            &st.http_client,
            cfg,
            question,
            signal.text,
            &f,
            &def.avoid_topics,
        )
        .await
        {
            f.prompt = p;
        }
    }
    Some(f)
}
