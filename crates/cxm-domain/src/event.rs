//! Normalisation of one tracking message (Segment spec, with a PostHog shim) into the event
//! we append to the log, or a reason to quarantine it.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::identity::{self, Identifier};
use crate::taxonomy::{self, Channel, EventCategory};

/// Default cap on one event's serialised size.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub fn parse(s: &str) -> Option<EventType> {
        Some(match s {
            "identify" => EventType::Identify,
            "track" => EventType::Track,
            "page" => EventType::Page,
            "screen" => EventType::Screen,
            "group" => EventType::Group,
            "alias" => EventType::Alias,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }
}

/// Why a message was set aside instead of appended. The code is stable and documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct QuarantineReason {
    pub code: &'static str,
    pub detail: String,
}

impl QuarantineReason {
    fn new(code: &'static str, detail: impl Into<String>) -> Self {
        QuarantineReason {
            code,
            detail: detail.into(),
        }
    }
}

/// How the ingest path treats timestamps.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// Historical imports: take `timestamp`/`originalTimestamp` as given, no skew correction.
    pub trust_timestamps: bool,
    pub max_event_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            trust_timestamps: false,
            max_event_bytes: MAX_EVENT_BYTES,
        }
    }
}

/// The moments the server knows about a request.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub received_at: DateTime<Utc>,
    /// `sentAt` of the enclosing batch, used when the event has none of its own.
    pub batch_sent_at: Option<DateTime<Utc>>,
}

/// An event ready to append to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedEvent {
    pub message_id: String,
    pub event_type: EventType,
    /// Track event name, or page/screen name.
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub group_id: Option<String>,
    pub channel: Channel,
    pub category: EventCategory,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub identifiers: Vec<Identifier>,
    /// Traits the message asserts about the person (identify traits over context.traits).
    pub traits: Map<String, Value>,
    /// Traits of a `group` call, for the account.
    pub group_traits: Option<Map<String, Value>>,
    /// The message as received, minus credentials, as JSON text. Serialised here, on the
    /// request's thread, so the single writer only copies bytes.
    pub payload_json: String,
}

fn str_or_number(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses the timestamp formats real SDKs send: RFC 3339 with any offset, naive ISO 8601
/// (taken as UTC), and epoch milliseconds.
/// A timestamp value that is neither null, an ISO 8601 string nor epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTimestamp;

pub fn parse_timestamp(v: &Value) -> Result<Option<DateTime<Utc>>, BadTimestamp> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(Some(t.with_timezone(&Utc)));
            }
            for fmt in [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S",
            ] {
                if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
                    return Ok(Some(Utc.from_utc_datetime(&n)));
                }
            }
            if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return Ok(d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n)));
            }
            Err(BadTimestamp)
        }
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .map(Some)
            .ok_or(BadTimestamp),
        _ => Err(BadTimestamp),
    }
}

fn ts_field(msg: &Value, key: &str) -> Result<Option<DateTime<Utc>>, QuarantineReason> {
    match msg.get(key) {
        None => Ok(None),
        Some(v) => parse_timestamp(v).map_err(|BadTimestamp| {
            QuarantineReason::new(
                "invalid_timestamp",
                format!("{key} is not an iso 8601 timestamp"),
            )
        }),
    }
}

/// Earliest client time we accept; anything before is a broken clock or a unit mix-up.
fn earliest_plausible() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0).unwrap()
}

/// `timestamp = receivedAt − (sentAt − clientTime)`, where clientTime is the message's
/// `timestamp` (user-set, e.g. historical) or else `originalTimestamp`, and sentAt is the
/// event's own or else the batch's. The result is clamped to never lie in the future.
fn corrected_timestamp(
    msg: &Value,
    clock: &Clock,
    opts: &IngestOptions,
) -> Result<DateTime<Utc>, QuarantineReason> {
    let client_time = match ts_field(msg, "timestamp")? {
        Some(t) => Some(t),
        None => ts_field(msg, "originalTimestamp")?,
    };
    let Some(client_time) = client_time else {
        return Ok(clock.received_at);
    };
    if client_time < earliest_plausible() || client_time > clock.received_at + Duration::days(366) {
        return Err(QuarantineReason::new(
            "timestamp_out_of_range",
            format!("timestamp {client_time} is before 1990 or more than a year ahead"),
        ));
    }
    if opts.trust_timestamps {
        return Ok(client_time);
    }
    let sent_at = ts_field(msg, "sentAt")?.or(clock.batch_sent_at);
    let corrected = match sent_at {
        Some(sent) => clock.received_at - (sent - client_time),
        None => client_time,
    };
    Ok(corrected.clamp(earliest_plausible(), clock.received_at))
}

/// Translates a PostHog capture message into the Segment shape, so PostHog SDKs can send
/// to the same pipeline. Returns `None` when the message is not PostHog-shaped.
fn from_posthog(msg: &Value) -> Option<Value> {
    let distinct = msg
        .get("distinct_id")
        .or_else(|| msg.get("properties").and_then(|p| p.get("distinct_id")))?;
    if msg.get("type").is_some() {
        return None;
    }
    let event = msg.get("event").and_then(Value::as_str).unwrap_or("");
    let props = msg.get("properties").cloned().unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("userId".into(), distinct.clone());
    if let Some(id) = msg.get("uuid") {
        out.insert("messageId".into(), id.clone());
    }
    if let Some(t) = msg.get("timestamp") {
        out.insert("timestamp".into(), t.clone());
    }
    let set = props.get("$set").cloned();
    match event {
        "$identify" => {
            out.insert("type".into(), "identify".into());
            out.insert("traits".into(), set.unwrap_or(Value::Object(Map::new())));
        }
        "$create_alias" => {
            out.insert("type".into(), "alias".into());
            out.insert("previousId".into(), distinct.clone());
            if let Some(a) = props.get("alias") {
                out.insert("userId".into(), a.clone());
            }
        }
        _ => {
            out.insert("type".into(), "track".into());
            out.insert("event".into(), event.into());
            if let Some(set) = set {
                out.insert("context".into(), serde_json::json!({ "traits": set }));
            }
        }
    }
    out.insert("properties".into(), props);
    Some(Value::Object(out))
}

/// Where a NUL character sits in a message (a key or a string value), as a dotted path.
/// PostgreSQL's text type cannot hold one, so both backends refuse such events at the door
/// rather than letting one message fail the transaction it shares with others.
fn nul_path(v: &Value, at: &mut String) -> Option<String> {
    let here = |at: &str| {
        if at.is_empty() {
            "the event".to_string()
        } else {
            at.to_string()
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(here(at)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = at.len();
            at.push_str(&format!("[{i}]"));
            let found = nul_path(item, at);
            at.truncate(len);
            found
        }),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let len = at.len();
            if !at.is_empty() {
                at.push('.');
            }
            at.push_str(&k.replace('\0', "\\u0000"));
            let found = if k.contains('\0') {
                Some(here(at))
            } else {
                nul_path(item, at)
            };
            at.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Normalises one message. `raw_len` is its size as received, checked against the cap.
pub fn normalize(
    msg: &Value,
    raw_len: usize,
    clock: &Clock,
    opts: &IngestOptions,
) -> Result<NormalizedEvent, QuarantineReason> {
    if raw_len > opts.max_event_bytes {
        return Err(QuarantineReason::new(
            "event_too_large",
            format!(
                "event is {raw_len} bytes, the limit is {}",
                opts.max_event_bytes
            ),
        ));
    }
    let translated;
    let msg = match from_posthog(msg) {
        Some(t) => {
            translated = t;
            &translated
        }
        None => msg,
    };
    let Some(obj) = msg.as_object() else {
        return Err(QuarantineReason::new(
            "not_an_object",
            "event must be a json object",
        ));
    };
    if let Some(path) = nul_path(msg, &mut String::new()) {
        return Err(QuarantineReason::new(
            "invalid_field",
            format!("{path} contains a NUL character (\\u0000), which no text column can hold"),
        ));
    }
    let type_str = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(QuarantineReason::new(
                "invalid_type",
                "type must be a string",
            ))
        }
        None => return Err(QuarantineReason::new("missing_type", "type is required")),
    };
    let event_type = EventType::parse(type_str).ok_or_else(|| {
        QuarantineReason::new(
            "invalid_type",
            format!("type {type_str:?} is not one of identify, track, page, screen, group, alias"),
        )
    })?;

    let user_id = str_or_number(obj.get("userId")).filter(|v| !identity::is_blocked_value(v));
    let anonymous_id =
        str_or_number(obj.get("anonymousId")).filter(|v| !identity::is_blocked_value(v));
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(QuarantineReason::new(
            "missing_identity",
            "userId or anonymousId is required (junk values such as \"null\" do not count)",
        ));
    }

    let name = match event_type {
        EventType::Track => match obj.get("event") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => {
                return Err(QuarantineReason::new(
                    "missing_event_name",
                    "track requires a non-empty string event",
                ))
            }
        },
        EventType::Page | EventType::Screen => obj
            .get("name")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        _ => None,
    };
    let group_id = str_or_number(obj.get("groupId"));
    if event_type == EventType::Group && group_id.is_none() {
        return Err(QuarantineReason::new(
            "missing_group_id",
            "group requires groupId",
        ));
    }
    let previous_id = str_or_number(obj.get("previousId"));
    if event_type == EventType::Alias && (previous_id.is_none() || user_id.is_none()) {
        return Err(QuarantineReason::new(
            "missing_alias_ids",
            "alias requires previousId and userId",
        ));
    }
    for key in ["properties", "traits", "context"] {
        match obj.get(key) {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(QuarantineReason::new(
                    "invalid_field",
                    format!("{key} must be an object"),
                ))
            }
        }
    }

    let timestamp = corrected_timestamp(msg, clock, opts)?;
    let message_id = str_or_number(obj.get("messageId"))
        .unwrap_or_else(|| format!("cxm-{}", uuid::Uuid::new_v4()));
    if message_id.len() > 256 {
        return Err(QuarantineReason::new(
            "invalid_message_id",
            "messageId is longer than 256 characters",
        ));
    }

    let mut traits = Map::new();
    if let Some(Value::Object(ct)) = msg.get("context").and_then(|c| c.get("traits")) {
        traits.extend(ct.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if event_type == EventType::Identify {
        if let Some(Value::Object(t)) = obj.get("traits") {
            traits.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    traits.retain(|_, v| !v.is_null());

    let identifiers = identity::extract(
        msg,
        user_id.as_deref(),
        anonymous_id.as_deref(),
        previous_id.as_deref(),
        &traits,
    );
    let channel = taxonomy::derive_channel(msg, type_str, name.as_deref());
    let category = if event_type == EventType::Track {
        taxonomy::category_of(name.as_deref())
    } else {
        EventCategory::Uncategorized
    };
    let payload_json = if obj.contains_key("writeKey") {
        let mut stripped = obj.clone();
        stripped.remove("writeKey");
        serde_json::to_string(&stripped)
    } else {
        serde_json::to_string(msg)
    }
    .map_err(|e| QuarantineReason::new("not_an_object", format!("cannot serialise event: {e}")))?;
    let group_traits = match (event_type, obj.get("traits")) {
        (EventType::Group, Some(Value::Object(t))) => Some(t.clone()),
        _ => None,
    };
    Ok(NormalizedEvent {
        message_id,
        event_type,
        name,
        user_id,
        anonymous_id,
        group_id,
        channel,
        category,
        timestamp,
        received_at: clock.received_at,
        identifiers,
        traits,
        group_traits,
        payload_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clock(received: &str, batch_sent: Option<&str>) -> Clock {
        Clock {
            received_at: received.parse().unwrap(),
            batch_sent_at: batch_sent.map(|s| s.parse().unwrap()),
        }
    }

    #[test]
    fn nul_characters_are_refused_wherever_they_are() {
        let c = clock("2026-01-01T10:00:00Z", None);
        let o = IngestOptions::default();
        for (m, path) in [
            (
                json!({"type":"track","event":"X","userId":"a\0b"}),
                "userId",
            ),
            (json!({"type":"track","event":"X\0","userId":"u"}), "event"),
            (
                json!({"type":"track","event":"X","userId":"u","properties":{"list":["ok","n\0"]}}),
                "properties.list[1]",
            ),
            (
                json!({"type":"track","event":"X","userId":"u","context":{"k\0":1}}),
                "context.k\\u0000",
            ),
        ] {
            let e = normalize(&m, 10, &c, &o).unwrap_err();
            assert_eq!(e.code, "invalid_field");
            assert!(e.detail.starts_with(path), "{path}: {}", e.detail);
        }
        let fine = json!({"type":"track","event":"X","userId":"u","properties":{"text":"a\\u0000 written out"}});
        assert!(normalize(&fine, 10, &c, &o).is_ok());
    }

    #[test]
    fn skew_correction_uses_event_sent_at_before_batch_sent_at() {
        // the client clock runs 10 minutes fast
        let m = json!({"type":"track","event":"X","userId":"u","originalTimestamp":"2026-01-01T10:10:00Z","sentAt":"2026-01-01T10:10:05Z"});
        let c = clock("2026-01-01T10:00:05Z", Some("2026-01-01T11:00:00Z"));
        let e = normalize(&m, 10, &c, &IngestOptions::default()).unwrap();
        assert_eq!(
            e.timestamp,
            "2026-01-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn historical_timestamp_is_kept_when_clocks_agree() {
        let m = json!({"type":"track","event":"X","userId":"u","timestamp":"2024-01-02T03:04:05Z"});
        let c = clock("2026-01-01T10:00:00Z", Some("2026-01-01T10:00:00Z"));
        let e = normalize(&m, 10, &c, &IngestOptions::default()).unwrap();
        assert_eq!(
            e.timestamp,
            "2024-01-02T03:04:05Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn future_is_clamped_and_absurd_is_quarantined() {
        let c = clock("2026-01-01T10:00:00Z", None);
        let m = json!({"type":"track","event":"X","userId":"u","timestamp":"2026-01-02T10:00:00Z"});
        assert_eq!(
            normalize(&m, 1, &c, &IngestOptions::default())
                .unwrap()
                .timestamp,
            c.received_at
        );
        let m = json!({"type":"track","event":"X","userId":"u","timestamp":"0001-01-01T00:00:00Z"});
        assert_eq!(
            normalize(&m, 1, &c, &IngestOptions::default())
                .unwrap_err()
                .code,
            "timestamp_out_of_range"
        );
        let m = json!({"type":"track","event":"X","userId":"u","timestamp":"yesterday"});
        assert_eq!(
            normalize(&m, 1, &c, &IngestOptions::default())
                .unwrap_err()
                .code,
            "invalid_timestamp"
        );
    }

    #[test]
    fn trust_timestamps_skips_correction() {
        let m = json!({"type":"track","event":"X","userId":"u","timestamp":"2025-06-01T00:00:00Z","sentAt":"2026-01-01T11:00:00Z"});
        let c = clock("2026-01-01T10:00:00Z", None);
        let opts = IngestOptions {
            trust_timestamps: true,
            ..Default::default()
        };
        let e = normalize(&m, 1, &c, &opts).unwrap();
        assert_eq!(
            e.timestamp,
            "2025-06-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn quarantine_reasons() {
        let c = clock("2026-01-01T10:00:00Z", None);
        let o = IngestOptions::default();
        let code = |m: Value| normalize(&m, 1, &c, &o).unwrap_err().code;
        assert_eq!(
            code(json!({"type":"track","userId":"u"})),
            "missing_event_name"
        );
        assert_eq!(
            code(json!({"type":"track","event":"X","userId":"null"})),
            "missing_identity"
        );
        assert_eq!(code(json!({"type":"bogus","userId":"u"})), "invalid_type");
        assert_eq!(code(json!({"userId":"u"})), "missing_type");
        assert_eq!(
            code(json!({"type":"group","userId":"u"})),
            "missing_group_id"
        );
        assert_eq!(
            code(json!({"type":"alias","userId":"u"})),
            "missing_alias_ids"
        );
        assert_eq!(
            code(json!({"type":"track","event":"X","userId":"u","properties":[1]})),
            "invalid_field"
        );
        assert_eq!(code(json!([1, 2])), "not_an_object");
        let big = normalize(
            &json!({"type":"track","event":"X","userId":"u"}),
            40_000,
            &c,
            &o,
        );
        assert_eq!(big.unwrap_err().code, "event_too_large");
    }

    #[test]
    fn numeric_user_id_and_traits_from_context_only() {
        let c = clock("2026-01-01T10:00:00Z", None);
        let m = json!({"type":"track","event":"Ticket Opened","userId":42,"context":{"traits":{"email":"ADA@Example.com ","phone":null}}});
        let e = normalize(&m, 1, &c, &IngestOptions::default()).unwrap();
        assert_eq!(e.user_id.as_deref(), Some("42"));
        assert_eq!(e.channel, Channel::Support);
        assert!(e.identifiers.iter().any(|i| i.value == "ada@example.com"));
        assert!(!e.traits.contains_key("phone"));
    }

    #[test]
    fn posthog_messages_are_translated() {
        let c = clock("2026-01-01T10:00:00Z", None);
        let m = json!({"event":"$create_alias","properties":{"distinct_id":"anon-abc","alias":"user-123"},"timestamp":"2026-01-01T09:00:00Z"});
        let e = normalize(&m, 1, &c, &IngestOptions::default()).unwrap();
        assert_eq!(e.event_type, EventType::Alias);
        assert_eq!(e.identifiers.len(), 2);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-zA-Z0-9 :.+@-]{0,12}".prop_map(Value::from),
            prop_oneof![
                Just("track"),
                Just("identify"),
                Just("alias"),
                Just("group"),
                Just("page"),
                Just("null"),
                Just("2026-01-01T00:00:00Z"),
                Just("userId")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("type"),
                        Just("userId"),
                        Just("anonymousId"),
                        Just("event"),
                        Just("timestamp"),
                        Just("originalTimestamp"),
                        Just("sentAt"),
                        Just("context"),
                        Just("traits"),
                        Just("properties"),
                        Just("groupId"),
                        Just("previousId"),
                        Just("messageId"),
                        Just("email"),
                        Just("distinct_id"),
                        Just("externalIds"),
                        Just("channel")
                    ]
                    .prop_map(String::from),
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Whatever a client sends, normalisation returns an event or a reason, never panics,
        /// and an accepted event always has an identity and a timestamp no later than receipt.
        #[test]
        fn normalize_never_panics(msg in arb_json(), trust in any::<bool>()) {
            let clock = Clock { received_at: "2026-06-01T00:00:00Z".parse().unwrap(), batch_sent_at: None };
            let opts = IngestOptions { trust_timestamps: trust, ..Default::default() };
            if let Ok(e) = normalize(&msg, 10, &clock, &opts) {
                prop_assert!(e.user_id.is_some() || e.anonymous_id.is_some());
                prop_assert!(trust || e.timestamp <= clock.received_at);
            }
        }
    }
}
