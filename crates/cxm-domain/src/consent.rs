//! Consent and preferences per customer, purpose and channel. Records are kept as a history;
//! the newest record for a purpose on the channel (or on every channel, `*`) decides.
//! Without any record, service purposes (surveys, service updates) are allowed and
//! marketing is not: it needs a grant.

use serde::{Deserialize, Serialize};

pub const PURPOSES: &[&str] = &["surveys", "service_updates", "marketing", "profiling"];
pub const CHANNELS: &[&str] = &[
    "*",
    "email",
    "sms",
    "chat",
    "voice",
    "in_product",
    "web",
    "push",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsentStatus {
    Granted,
    Denied,
    Revoked,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Granted => "granted",
            ConsentStatus::Denied => "denied",
            ConsentStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<ConsentStatus> {
        match s {
            "granted" => Some(ConsentStatus::Granted),
            "denied" => Some(ConsentStatus::Denied),
            "revoked" => Some(ConsentStatus::Revoked),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub purpose: String,
    /// A channel, or `*` for all of them.
    pub channel: String,
    pub status: ConsentStatus,
    /// Where it was given: `preference_center`, `support_call`, `api`, ...
    pub source: String,
    pub actor: String,
    pub at_ms: i64,
}

/// Whether `purpose` on `channel` is allowed, and the record that decided (None: the default).
pub fn allowed<'a>(
    records: &'a [ConsentRecord],
    purpose: &str,
    channel: &str,
) -> (bool, Option<&'a ConsentRecord>) {
    let decisive = records
        .iter()
        .filter(|r| r.purpose == purpose && (r.channel == channel || r.channel == "*"))
        .max_by_key(|r| (r.at_ms, r.channel != "*"));
    match decisive {
        Some(r) => (r.status == ConsentStatus::Granted, Some(r)),
        None => (purpose != "marketing" && purpose != "profiling", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(purpose: &str, channel: &str, status: ConsentStatus, at_ms: i64) -> ConsentRecord {
        ConsentRecord {
            purpose: purpose.into(),
            channel: channel.into(),
            status,
            source: "api".into(),
            actor: "t".into(),
            at_ms,
        }
    }

    #[test]
    fn the_newest_matching_record_decides() {
        assert!(allowed(&[], "surveys", "email").0);
        assert!(!allowed(&[], "marketing", "email").0);
        let h = vec![
            rec("surveys", "*", ConsentStatus::Denied, 1),
            rec("surveys", "email", ConsentStatus::Granted, 2),
            rec("marketing", "email", ConsentStatus::Granted, 3),
            rec("marketing", "email", ConsentStatus::Revoked, 4),
        ];
        assert!(allowed(&h, "surveys", "email").0, "a later grant on email");
        assert!(
            !allowed(&h, "surveys", "sms").0,
            "the denial on every channel"
        );
        let (ok, by) = allowed(&h, "marketing", "email");
        assert!(!ok);
        assert_eq!(by.unwrap().status, ConsentStatus::Revoked);
    }
}
