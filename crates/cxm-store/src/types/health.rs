//! The records the store keeps for health.

use super::*;

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
