//! The records the store keeps for themes.

use super::*;

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
