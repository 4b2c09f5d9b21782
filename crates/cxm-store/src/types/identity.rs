//! The records the store keeps for identity.

use super::*;

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
