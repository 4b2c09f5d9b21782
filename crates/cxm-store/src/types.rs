//! Records the store reads and writes.

use cxm_domain::NormalizedEvent;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Ingest only.
    Write,
    /// Management API.
    Secret,
    /// One agent's credential: asks for decisions as that agent (the key's name) and nothing else.
    Agent,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Write => "write",
            KeyKind::Secret => "secret",
            KeyKind::Agent => "agent",
        }
    }
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "write" => Some(KeyKind::Write),
            "secret" => Some(KeyKind::Secret),
            "agent" => Some(KeyKind::Agent),
            _ => None,
        }
    }
}

/// An api key as stored: only the sha-256 of the secret, never the secret.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub kind: KeyKind,
    pub name: String,
    /// The first characters of the key, shown so people can tell keys apart.
    pub prefix: String,
    #[serde(skip)]
    pub hash: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("prefix", &self.prefix)
            .field("hash", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Owner,
    Admin,
    Analyst,
    AgentOperator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Analyst,
        Role::AgentOperator,
        Role::Viewer,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::AgentOperator => "agent-operator",
            Role::Viewer => "viewer",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
    /// Roles that may change data (unmerge, keys); viewers and analysts only read.
    pub fn can_administer(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub created_at_ms: i64,
    /// Set when the user was offboarded: they cannot sign in and have no sessions.
    pub disabled_at_ms: Option<i64>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

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
pub struct IdentifierRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub id: String,
    pub traits: Value,
    pub identifiers: Vec<IdentifierRecord>,
    pub accounts: Vec<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub event_count: i64,
    pub merge_count: i64,
}

impl Profile {
    pub(crate) fn ids_of(&self, kind: &str) -> Vec<String> {
        self.identifiers
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| i.value.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProfileSummary {
    pub id: String,
    pub display: String,
    pub last_seen_ms: i64,
    pub event_count: i64,
}

/// Newest first; `before` is the cursor `(timestamp_ms, seq)` of the last row seen.
#[derive(Debug, Clone, Default)]
pub struct TimelinePage {
    pub before: Option<(i64, i64)>,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub seq: i64,
    pub message_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub name: Option<String>,
    pub channel: String,
    pub category: String,
    pub timestamp_ms: i64,
    pub received_at_ms: i64,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub payload: Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    /// The row's place in the store: not shown, as it counts every tenant's rows.
    #[serde(skip)]
    pub id: i64,
    /// merge, drop, block
    pub action: String,
    pub profile_id: String,
    pub other_profile_id: Option<String>,
    pub identifier: Option<IdentifierRecord>,
    pub event_seq: Option<i64>,
    pub message_id: Option<String>,
    pub reason: Option<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct RebuildStats {
    pub tenants: u32,
    pub events: u64,
    pub profiles: u64,
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

/// The name a person is shown under: name, else email, else nothing.
pub fn display_name(traits: &serde_json::Map<String, Value>) -> String {
    let s = |k: &str| traits.get(k).and_then(Value::as_str).map(str::to_string);
    s("name")
        .or_else(|| {
            match (
                s("first_name").or(s("firstName")),
                s("last_name").or(s("lastName")),
            ) {
                (Some(f), Some(l)) => Some(format!("{f} {l}")),
                (Some(f), None) => Some(f),
                _ => None,
            }
        })
        .or_else(|| s("email"))
        .unwrap_or_default()
}

/// An answer ready to store, with its enrichment.
#[derive(Debug, Clone)]
pub struct FeedbackRow {
    pub answer: cxm_domain::feedback::Answer,
    /// VADER compound of the text, when there is English text.
    pub sentiment: Option<f64>,
    /// Cue flags as JSON.
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

/// The rollup's dimensions and the feedback column each reads ('' is the overall count).
pub(crate) const ROLLUP_COLUMNS: [(&str, &str); 7] = [
    ("", "''"),
    ("channel", "channel"),
    ("survey", "survey_id"),
    ("journey", "journey"),
    ("stage", "stage"),
    ("agent", "agent"),
    ("tier", "tier"),
];

/// Answers counted per day, slice value and score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramRow {
    pub day: String,
    /// The slice value ('' when not sliced or not set).
    pub group: String,
    pub score: i64,
    pub answers: u64,
}

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

/// The theme registry as stored: the last discovery's vocabulary and one JSON document per
/// theme. The store does not look inside the documents.
#[derive(Debug, Clone, Default)]
pub struct ThemeState {
    /// Bumped by every discovery; 0 before the first.
    pub version: i64,
    pub vocabulary: String,
    pub noise_below: f64,
    pub discovered_at_ms: i64,
    pub themes: Vec<String>,
}

/// A change to the registry, saved in one transaction.
#[derive(Debug, Clone, Default)]
pub struct ThemeSave {
    /// A new discovery's vocabulary and noise threshold.
    pub discovery: Option<(String, f64)>,
    /// (theme id, document) to insert or replace.
    pub themes: Vec<(String, String)>,
    /// The analyst edit this save records, if any.
    pub edit: Option<ThemeEdit>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThemeEdit {
    pub theme_id: String,
    /// rename, merge or split
    pub kind: String,
    pub detail: String,
    pub actor: String,
    #[serde(default)]
    pub created_at_ms: i64,
}

/// The theme of one text answer, with what per-theme figures need.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeAssignment {
    pub feedback_id: i64,
    pub theme_id: String,
    pub day: String,
    pub response_id: String,
    pub sentiment: Option<f64>,
    pub account: Option<String>,
}

/// Answers of a theme on a day, with their summed sentiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeDay {
    pub theme_id: String,
    pub day: String,
    pub answers: u64,
    pub sentiment_sum: f64,
    pub sentiment_n: u64,
}

/// Distinct responses mentioning a theme, by NPS category: `score` is 10 for promoters,
/// 7 for passives and 0 for detractors (all an NPS needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeNps {
    pub theme_id: String,
    pub score: i64,
    pub responses: u64,
}

/// The rollup's promoter/passive/detractor increments for a response's NPS score.
pub(crate) fn nps_category(score: Option<i64>) -> [i64; 3] {
    match score {
        Some(s) if s >= 9 => [1, 0, 0],
        Some(s) if s >= 7 => [0, 1, 0],
        Some(_) => [0, 0, 1],
        None => [0, 0, 0],
    }
}

/// Category sums per theme as [`ThemeNps`] rows (empty categories left out).
pub(crate) fn nps_rows(rows: Vec<(String, [i64; 3])>) -> Vec<ThemeNps> {
    rows.into_iter()
        .flat_map(|(theme, c)| {
            [(10, c[0]), (7, c[1]), (0, c[2])]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(move |(score, n)| ThemeNps {
                    theme_id: theme.clone(),
                    score,
                    responses: n as u64,
                })
        })
        .collect()
}

/// An account whose answers mention a theme, with the account's traits (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeAccount {
    pub theme_id: String,
    pub account: String,
    pub traits: String,
}

/// An account's tier as its traits state it (`tier`, else `plan`).
pub fn tier_of(traits: &serde_json::Value) -> Option<String> {
    ["tier", "plan"]
        .iter()
        .find_map(|k| traits.get(*k).and_then(serde_json::Value::as_str))
        .map(|s| s.chars().take(64).collect())
}

/// An account's ARR as its traits state it (`arr`, `ARR` or `annual_revenue`; number or numeric string).
pub fn arr_of(traits: &serde_json::Value) -> Option<f64> {
    ["arr", "ARR", "annual_revenue"].iter().find_map(|k| {
        let v = traits.get(*k)?;
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
    })
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

/// An event as account health reads it, with the account it belongs to (its `groupId`, else
/// the account of the customer who sent it).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthEventRow {
    pub seq: i64,
    pub account: Option<String>,
    pub name: Option<String>,
    pub category: String,
    pub ts_ms: i64,
}

/// A scored answer with its account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountAnswer {
    pub id: i64,
    pub account: Option<String>,
    pub field_type: String,
    pub score: Option<f64>,
    pub collected_at_ms: i64,
}

/// How far account health has read the event log and the answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct HealthCursor {
    pub event_seq: i64,
    pub feedback_id: i64,
}

/// An account with what health needs: its name, ARR, renewal date and daily facts.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub group_id: String,
    pub name: String,
    pub arr: f64,
    /// Who answers for the account (trait `owner`, `csm` or `account_owner`).
    pub owner: String,
    pub renewal: Option<chrono::NaiveDate>,
    pub days: Vec<cxm_domain::health::AccountDay>,
}

/// An account's latest health.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccountHealthRow {
    pub group_id: String,
    pub name: String,
    pub score: f64,
    pub band: String,
    /// Each signal's reading (value, fired, points, detail).
    #[schema(value_type = Vec<Object>)]
    pub readings: serde_json::Value,
    pub arr: f64,
    pub computed_at_ms: i64,
}

/// An alert about an account.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: i64,
    pub group_id: String,
    /// `at_risk` (the account crossed into the band) or `signal` (a point-in-time signal fired).
    pub kind: String,
    pub signal: String,
    /// open, acknowledged or resolved
    pub status: String,
    pub title: String,
    /// The readings that caused it.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub arr: f64,
    /// The account's owner, who the alert is routed to ('' when the account names none).
    pub owner: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// An alert to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub group_id: String,
    pub kind: String,
    pub signal: String,
    pub title: String,
    pub detail: serde_json::Value,
    pub arr: f64,
    pub owner: String,
}

/// Accounts and ARR per band.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BandCount {
    pub band: String,
    pub accounts: i64,
    pub arr: f64,
}

/// An account's health inputs from its stored traits (name, ARR, `renewal_date`).
pub fn account_record(group_id: String, traits: &str) -> AccountRecord {
    let t: serde_json::Value = serde_json::from_str(traits).unwrap_or_default();
    AccountRecord {
        name: t
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or(&group_id)
            .chars()
            .take(200)
            .collect(),
        arr: arr_of(&t).unwrap_or(0.0),
        owner: ["owner", "csm", "account_owner"]
            .iter()
            .find_map(|k| t.get(*k)?.as_str())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect(),
        renewal: ["renewal_date", "renewal", "renews_at"]
            .iter()
            .find_map(|k| t.get(*k)?.as_str()?.get(..10)?.parse().ok()),
        days: vec![],
        group_id,
    }
}

/// A stored day of account facts, in column order.
pub fn account_day(day: chrono::NaiveDate, n: [u32; 6]) -> cxm_domain::health::AccountDay {
    cxm_domain::health::AccountDay {
        day,
        active: n[0],
        tickets: n[1],
        payment_failed: n[2],
        usage: n[3],
        churned: n[4],
        low_scores: n[5],
    }
}

/// A remediation ticket.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub severity: String,
    pub state: String,
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    /// The verification check chosen when the ticket was opened.
    #[schema(value_type = Object)]
    pub check: serde_json::Value,
    /// Affected customers and accounts and their ARR.
    #[schema(value_type = Object)]
    pub impact: serde_json::Value,
    pub sla_hours: i64,
    pub due_at_ms: i64,
    /// The last verdict of the check.
    #[schema(value_type = Object)]
    pub verdict: Option<serde_json::Value>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub closed_at_ms: Option<i64>,
}

/// One entry of a ticket's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TicketEvent {
    /// The row's place in the store: not shown, as it counts every tenant's rows.
    #[serde(skip)]
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    /// created, state, verified, verification_failed, override, comment
    pub kind: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A change to a ticket and the timeline entry that records it.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketChange {
    /// The state the ticket must be in (the change is refused otherwise: someone else moved it).
    pub from_state: String,
    pub state: String,
    pub closed_at_ms: Option<i64>,
    pub verdict: Option<serde_json::Value>,
    pub actor: String,
    pub kind: String,
    pub detail: serde_json::Value,
}

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

/// A principal that acts for the company (bot, voice agent, automation) and asks before acting.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub name: String,
    /// `bot`, `voice`, `automation`, ...; the policies can tell them apart.
    pub kind: String,
    pub description: String,
    /// The words its outbound messages must carry ("I'm an automated assistant").
    pub disclosure: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

/// One version of a tenant's policies.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PolicySetRow {
    pub version: i64,
    pub text: String,
    pub note: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub activated_at_ms: Option<i64>,
}

/// A decision with where it stands in the review queue.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredDecision {
    #[serde(flatten)]
    pub record: cxm_domain::decision::DecisionRecord,
    pub audit_seq: i64,
    /// `pending` while a human has to look; then `approved` or `reversed`; None for L1.
    pub review_status: Option<String>,
    pub review_due_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub reviewed_at_ms: Option<i64>,
    /// What the agent reported afterwards: the customer's intent resolved or not.
    pub resolved: Option<bool>,
    pub intent: Option<String>,
    pub reported_at_ms: Option<i64>,
}

/// A decision to log: the record, who asked, and (for L2/L3) when its review is due.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    pub tenant_id: String,
    pub actor: String,
    pub record: cxm_domain::decision::DecisionRecord,
    pub review_due_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecisionQuery {
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub review_status: Option<String>,
    pub customer: Option<String>,
    /// Newest first, before this time.
    pub before_ms: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReviewResult {
    NotFound,
    /// Already reviewed, or never needed one.
    NotPending(StoredDecision),
    Done(StoredDecision),
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

/// One of a tenant's Ed25519 signing keys.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct SigningKeyRow {
    pub kid: String,
    /// base64url, 32 bytes.
    pub public_key: String,
    #[serde(skip)]
    pub secret_key: String,
    pub created_at_ms: i64,
    /// No longer signs; its signatures still verify.
    pub retired_at_ms: Option<i64>,
    /// Its signatures no longer verify.
    pub revoked_at_ms: Option<i64>,
    pub revoke_reason: Option<String>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("revoked_at_ms", &self.revoked_at_ms)
            .finish()
    }
}

/// A message the company signed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SignedMessage {
    pub id: String,
    pub kid: String,
    pub sender: String,
    pub sender_kind: String,
    pub customer: Option<String>,
    pub channel: Option<String>,
    pub sha256: String,
    pub disclosure: Option<String>,
    pub jws: String,
    pub created_at_ms: i64,
}

/// The audit chain's head at `seq`, signed with the tenant's key.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub kid: String,
    pub signature: String,
    pub at_ms: i64,
}

/// A one-time code sent to a customer before a high-stakes action.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepUp {
    pub id: String,
    pub customer: String,
    pub profile_id: String,
    /// `email` or `phone`.
    pub channel: String,
    /// Masked destination (`a***@example.com`).
    pub sent_to: String,
    #[serde(skip)]
    pub code_hash: String,
    pub attempts_left: i64,
    pub expires_at_ms: i64,
    pub verified_at_ms: Option<i64>,
    pub created_by: String,
    pub created_at_ms: i64,
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

/// A document a tenant edits as a whole (the readiness assessment, the ROI assumptions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantDocument {
    pub body: String,
    pub updated_by: String,
    pub updated_at_ms: i64,
}

/// An event carrying money: its customer, account and the amount its properties name
/// (`revenue`, `total`, `amount` or `value`, the first present), as text.
#[derive(Debug, Clone, PartialEq)]
pub struct AmountEvent {
    pub seq: i64,
    pub profile_id: Option<String>,
    pub group_id: Option<String>,
    pub ts_ms: i64,
    pub amount: Option<String>,
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
