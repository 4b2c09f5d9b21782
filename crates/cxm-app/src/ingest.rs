//! The Segment-compatible tracking API (and PostHog's batch route), plus the native events
//! API. Real SDKs use it unchanged: any Content-Type, gzip by header or magic bytes, key in
//! Basic/Bearer/body, and success is exactly `200 {"success":true}`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use cxm_domain::{quarantine, Clock, IngestOptions, Quarantine};
use cxm_store::{AppendRequest, KeyKind};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

/// Which route a message came in on; single-message routes imply the type.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    Batch,
    Single(&'static str),
    Native,
}

/// Per-key token bucket: events per second with a burst. A request costs one token per
/// event it carries (at least one), so a 2,500-event batch counts as 2,500, not as one.
pub struct RateLimiter {
    pub rate: f64,
    pub burst: f64,
    pub buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `cost` tokens, or says how many seconds until they would be there. A cost over
    /// the burst is charged as the whole burst, so it waits for a full bucket instead of
    /// never passing.
    pub fn check(&self, key: &str, cost: usize) -> Result<(), f64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let cost = (cost.max(1) as f64).min(self.burst);
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = b.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= cost {
            *tokens -= cost;
            Ok(())
        } else {
            Err((cost - *tokens) / self.rate)
        }
    }
}

/// The messages of a batch as raw JSON, at most `cap` of them kept; `total` counts every
/// element, so a request over the cap is refused without holding millions of them.
pub struct Capped<'a> {
    pub items: Vec<&'a RawValue>,
    pub total: usize,
}

pub struct CappedSeed(usize);

impl<'de> DeserializeSeed<'de> for CappedSeed {
    type Value = Capped<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Capped<'de>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CappedSeed {
    type Value = Capped<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capped<'de>, A::Error> {
        let mut out = Capped {
            items: Vec::with_capacity(self.0.min(1024)),
            total: 0,
        };
        while out.total < self.0 {
            match seq.next_element::<&'de RawValue>()? {
                Some(v) => {
                    out.items.push(v);
                    out.total += 1;
                }
                None => return Ok(out),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {
            out.total += 1;
        }
        Ok(out)
    }
}

/// `{"batch"|"events": [...], "writeKey"|"api_key"?, "sentAt"|"sent_at_ph"?}`; other keys are
/// ignored, as Segment does.
#[derive(Default)]
pub struct Envelope<'a> {
    pub list: Option<Capped<'a>>,
    pub write_key: Option<Value>,
    pub api_key: Option<Value>,
    pub sent_at: Option<Value>,
    pub sent_at_ph: Option<Value>,
}

pub struct EnvelopeSeed(usize);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed {
    type Value = Envelope<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed {
    type Value = Envelope<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a json object with a batch array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut env = Envelope::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                // "batch" wins over "events" when a body has both
                "batch" => env.list = Some(map.next_value_seed(CappedSeed(self.0))?),
                "events" if env.list.is_none() => {
                    env.list = Some(map.next_value_seed(CappedSeed(self.0))?)
                }
                "writeKey" => env.write_key = Some(map.next_value()?),
                "api_key" => env.api_key = Some(map.next_value()?),
                "sentAt" => env.sent_at = Some(map.next_value()?),
                "sent_at_ph" => env.sent_at_ph = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

pub fn json_error(e: &serde_json::Error) -> AppError {
    let msg = e.to_string();
    if e.is_data() {
        AppError::new(
            ErrorCode::InvalidBatch,
            format!("the body is json but not a batch: {msg}"),
        )
    } else {
        AppError::new(
            ErrorCode::InvalidJson,
            format!(
                "invalid json at line {} column {}: {}",
                e.line(),
                e.column(),
                msg
            ),
        )
    }
}

pub struct Parsed {
    /// (message, its size in bytes)
    pub messages: Vec<(Value, usize)>,
    pub body_key: Option<String>,
    pub batch_sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs a seed over the whole text, refusing trailing characters as `from_str` does.
pub fn from_str_seed<'de, S: DeserializeSeed<'de>>(text: &'de str, seed: S) -> AppResult<S::Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = seed.deserialize(&mut de).map_err(|e| json_error(&e))?;
    de.end().map_err(|e| json_error(&e))?;
    Ok(v)
}

pub fn too_many(total: usize, cap: usize) -> AppError {
    AppError::new(
        ErrorCode::TooManyEvents,
        format!("the request holds {total} events; the limit is {cap} a request: send them in smaller batches"),
    )
}

/// Parses a request body into its messages; a batch of more than `cap` messages is refused
/// whole, before any of it is kept.
pub fn parse(route: Route, data: &[u8], cap: usize) -> AppResult<Parsed> {
    let text = std::str::from_utf8(data)
        .map_err(|e| AppError::new(ErrorCode::InvalidJson, format!("body is not utf-8: {e}")))?;
    let key_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    match route {
        Route::Single(ty) => {
            let mut v: Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
            let Some(obj) = v.as_object_mut() else {
                return Err(AppError::new(
                    ErrorCode::InvalidBatch,
                    "the body must be a json object",
                ));
            };
            obj.entry("type").or_insert_with(|| Value::from(ty));
            let body_key = key_of(obj.get("writeKey"));
            Ok(Parsed {
                messages: vec![(v, data.len())],
                body_key,
                batch_sent_at: None,
            })
        }
        Route::Batch | Route::Native => {
            let trimmed = text.trim_start();
            // the native api also takes a bare array
            if matches!(route, Route::Native) && trimmed.starts_with('[') {
                let list = from_str_seed(text, CappedSeed(cap))?;
                if list.total > cap {
                    return Err(too_many(list.total, cap));
                }
                return Ok(Parsed {
                    messages: to_values(list.items)?,
                    body_key: None,
                    batch_sent_at: None,
                });
            }
            let env = from_str_seed(text, EnvelopeSeed(cap))?;
            let list = env.list.ok_or_else(|| {
                AppError::new(ErrorCode::InvalidBatch, "the body must have a batch array")
            })?;
            if list.total > cap {
                return Err(too_many(list.total, cap));
            }
            let sent = env.sent_at.or(env.sent_at_ph);
            let batch_sent_at = sent
                .as_ref()
                .and_then(|v| cxm_domain::event::parse_timestamp(v).ok().flatten());
            Ok(Parsed {
                messages: to_values(list.items)?,
                body_key: key_of(env.write_key.as_ref()).or_else(|| key_of(env.api_key.as_ref())),
                batch_sent_at,
            })
        }
    }
}

pub fn to_values(list: Vec<&RawValue>) -> AppResult<Vec<(Value, usize)>> {
    list.into_iter()
        .map(|r| {
            let v: Value = serde_json::from_str(r.get()).map_err(|e| json_error(&e))?;
            Ok((v, r.get().len()))
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub struct IngestQuery {
    /// Take timestamps as sent (historical imports).
    #[serde(default)]
    pub historical: Option<bool>,
}

/// A batch of Segment-spec messages (identify, track, page, screen, group, alias), as the
/// SDKs send it. Messages that cannot be accepted are quarantined; the rest are kept.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the body; `parse` reads it without allocating the messages
pub struct BatchBody {
    /// At most 2,500 messages (--max-batch-events).
    #[schema(value_type = Vec<Object>, max_items = 2500)]
    pub batch: Vec<Value>,
    /// The write key, for SDKs that send it in the body.
    #[serde(rename = "writeKey")]
    pub write_key: Option<String>,
    /// When the SDK sent the batch, for clock-skew correction.
    #[serde(rename = "sentAt")]
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
}

/// The native events API's body: `{"events": [...]}`, a Segment batch, or a bare array.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum NativeBody {
    Events {
        #[schema(value_type = Vec<Object>, max_items = 2500)]
        events: Vec<Value>,
    },
    Batch(BatchBody),
    #[schema(value_type = Vec<Object>)]
    Messages(Vec<Value>),
}

/// The one answer ingest gives when it stored a request: exactly `{"success": true}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Success {
    pub success: bool,
}

/// One ingest request as a protocol received it: the body (read and decompressed), the key
/// the headers carried if any, and when it arrived.
pub struct Incoming<'a> {
    pub route: Route,
    pub body: &'a [u8],
    pub header_key: Option<String>,
    /// Trust client timestamps (`?historical=true`).
    pub historical: bool,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub started: Instant,
}

/// The ingest pipeline: parse under the event cap, find the key (header, else body), charge
/// every event against the key's rate, normalise (what cannot be kept is quarantined,
/// bounded), and return only once the committer has made the events durable.
pub async fn accept(st: &App, inc: Incoming<'_>) -> AppResult<()> {
    let parsed = match parse(inc.route, inc.body, st.config.max_batch_events) {
        Ok(p) => p,
        // a body that cannot be read cannot carry the key either: without a key in the
        // header, the missing credential is the first thing to fix
        Err(e)
            if e.code != ErrorCode::TooManyEvents
                && inc.header_key.is_none() =>
        {
            return Err(AppError::new(
                ErrorCode::MissingCredentials,
                format!(
                    "send the write key as Basic auth username, a Bearer token, or writeKey in the body (the body is not readable either: {})",
                    e.detail
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    let token = inc
        .header_key
        .clone()
        .or(parsed.body_key.clone())
        .ok_or_else(|| AppError::new(ErrorCode::MissingCredentials, "send the write key as Basic auth username, a Bearer token, or writeKey in the body"))?;
    let key = st.keys.lookup(st, &token).await?;
    if key.kind == KeyKind::Agent
        || (key.kind != KeyKind::Write && !matches!(inc.route, Route::Native))
    {
        return Err(AppError::new(
            ErrorCode::WrongKeyKind,
            "the tracking api takes write keys; secret keys stay on servers",
        ));
    }
    if let Err(wait) = st.limiter.check(&key.id, parsed.messages.len()) {
        st.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        let secs = wait.ceil().max(1.0) as u64;
        let mut e = AppError::new(
            ErrorCode::RateLimited,
            format!(
                "this key is over its limit of {} events per second (burst {}); this request carries {}",
                st.config.rate_limit_per_sec,
                st.config.rate_limit_burst,
                parsed.messages.len()
            ),
        );
        e.retry_after_secs = Some(secs);
        e.reset_epoch_secs = Some(inc.received_at.timestamp() as u64 + secs);
        return Err(e);
    }
    let opts = IngestOptions {
        trust_timestamps: inc.historical || st.config.trust_timestamps,
        max_event_bytes: st.config.max_event_bytes,
    };
    let clock = Clock {
        received_at: inc.received_at,
        batch_sent_at: parsed.batch_sent_at,
    };
    let mut req = AppendRequest {
        tenant_id: key.tenant_id.clone(),
        write_key_id: key.id.clone(),
        events: Vec::with_capacity(parsed.messages.len()),
        // what quarantine keeps of a big request never outgrows the request itself; a small
        // one may keep a few rows more than its size, so its one bad event is still shown
        quarantined: Quarantine::new(
            quarantine::MAX_SAMPLES,
            inc.body.len().max(quarantine::MIN_BUDGET_BYTES),
        ),
    };
    for (msg, len) in parsed.messages {
        match cxm_domain::normalize(&msg, len, &clock, &opts) {
            Ok(ev) => req.events.push(ev),
            Err(reason) => {
                // keep what we can of an oversized event without storing it whole
                let (kept, bytes) = if len > opts.max_event_bytes {
                    let stub = serde_json::json!({"truncated": true, "bytes": len, "messageId": msg.get("messageId")});
                    (stub, 64)
                } else {
                    (msg, len)
                };
                req.quarantined.push(kept, bytes, reason);
            }
        }
    }
    let outcome = match st.ingest_log.get() {
        None => st.committer.submit(req).await?,
        // the events go to the log, to be applied by their partition's owner; what was
        // quarantined is written here, after the publish, so a refused publish (which the
        // client retries) does not keep its bad events twice
        Some(log) => {
            let mut o = log.publish(&req).await?;
            if !req.quarantined.is_empty() {
                let q = st
                    .committer
                    .submit(AppendRequest {
                        events: vec![],
                        ..req
                    })
                    .await?;
                o.quarantined = q.quarantined;
            }
            o
        }
    };
    st.metrics
        .ingest_requests_ok
        .fetch_add(1, Ordering::Relaxed);
    st.metrics
        .events_accepted
        .fetch_add(u64::from(outcome.accepted), Ordering::Relaxed);
    st.metrics
        .events_duplicate
        .fetch_add(u64::from(outcome.duplicates), Ordering::Relaxed);
    st.metrics
        .events_quarantined
        .fetch_add(u64::from(outcome.quarantined), Ordering::Relaxed);
    st.metrics.observe_ingest(inc.started.elapsed());
    if outcome.quarantined > 0 {
        tracing::debug!(tenant = %key.tenant_id, quarantined = outcome.quarantined, "events quarantined");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_refills() {
        let r = RateLimiter::new(1000.0, 2.0);
        assert!(r.check("k", 1).is_ok());
        assert!(r.check("k", 1).is_ok());
        let wait = r.check("k", 1).unwrap_err();
        assert!(wait > 0.0 && wait <= 0.001);
        assert!(r.check("other", 1).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert!(r.check("k", 1).is_ok());
    }

    #[test]
    fn every_event_is_charged() {
        let r = RateLimiter::new(100.0, 1000.0);
        assert!(r.check("k", 600).is_ok());
        let wait = r.check("k", 600).unwrap_err();
        // 200 tokens short at 100 a second
        assert!((wait - 2.0).abs() < 0.05, "{wait}");
        assert!(
            r.check("k", 0).is_ok(),
            "an empty batch still costs one, and there is one"
        );
        // a cost over the burst waits for a full bucket rather than never passing
        let r = RateLimiter::new(100.0, 10.0);
        assert!(r.check("k", 50).is_ok());
        assert!(RateLimiter::new(0.0, 1.0).check("k", 1_000_000).is_ok());
    }

    #[test]
    fn a_batch_over_the_cap_is_refused_without_keeping_it() {
        let body = format!(
            "{{\"batch\":[{}0],\"writeKey\":\"wk\"}}",
            "0,".repeat(9_999)
        );
        let e = parse(Route::Batch, body.as_bytes(), 2_500).err().unwrap();
        assert_eq!(e.code, ErrorCode::TooManyEvents);
        assert!(
            e.detail.contains("10000 events") && e.detail.contains("2500"),
            "{}",
            e.detail
        );
        let bare = format!("[{}0]", "{},".repeat(2_500));
        assert_eq!(
            parse(Route::Native, bare.as_bytes(), 2_500)
                .err()
                .unwrap()
                .code,
            ErrorCode::TooManyEvents
        );
        let ok = format!("{{\"batch\":[{}0]}}", "0,".repeat(2_499));
        assert_eq!(
            parse(Route::Batch, ok.as_bytes(), 2_500)
                .unwrap()
                .messages
                .len(),
            2_500
        );
        // trailing garbage is still invalid json, and a later "events" does not replace "batch"
        assert_eq!(
            parse(Route::Batch, br#"{"batch":[]} x"#, 10)
                .err()
                .unwrap()
                .code,
            ErrorCode::InvalidJson
        );
        let both = parse(Route::Batch, br#"{"batch":[1],"events":[1,2]}"#, 10).unwrap();
        assert_eq!(both.messages.len(), 1);
    }

    #[test]
    fn parse_shapes() {
        let p = parse(Route::Batch, br#"{"batch":[{"type":"track"},{"a":1}],"writeKey":"wk","sentAt":"2026-01-01T00:00:00Z"}"#, 2500).unwrap();
        assert_eq!(p.messages.len(), 2);
        assert_eq!(p.body_key.as_deref(), Some("wk"));
        assert!(p.batch_sent_at.is_some());
        assert_eq!(
            parse(Route::Batch, b"{", 2500).err().unwrap().code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            parse(Route::Batch, br#"{"batch":{}}"#, 2500)
                .err()
                .unwrap()
                .code,
            ErrorCode::InvalidBatch
        );
        assert_eq!(
            parse(Route::Batch, br#"{"nobatch":1}"#, 2500)
                .err()
                .unwrap()
                .code,
            ErrorCode::InvalidBatch
        );
        let s = parse(Route::Single("track"), br#"{"event":"X"}"#, 2500).unwrap();
        assert_eq!(s.messages[0].0["type"], "track");
        assert_eq!(
            parse(Route::Native, br#"[{"a":1}]"#, 2500)
                .unwrap()
                .messages
                .len(),
            1
        );
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert_eq!(
            parse(Route::Single("track"), deep.as_bytes(), 2500)
                .err()
                .unwrap()
                .code,
            ErrorCode::InvalidJson
        );
    }

    fn corpus() -> Vec<Vec<u8>> {
        let root =
            // the captures live beside the HTTP tests that replay them
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cxm-http/tests/fixtures/sdk-captures");
        let mut out = vec![];
        for dir in std::fs::read_dir(root).unwrap().flatten() {
            for f in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if f.path().extension().is_some_and(|e| e == "json") {
                    let cap: Value =
                        serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
                    out.push(serde_json::to_vec(&cap["body"]).unwrap());
                }
            }
        }
        out
    }

    /// Every captured SDK body, truncated and bit-flipped at many points, goes through the
    /// parser and normalisation without a panic. The captures are the kept corpus.
    #[test]
    fn mutated_corpus_never_panics() {
        let clock = Clock {
            received_at: chrono::Utc::now(),
            batch_sent_at: None,
        };
        let opts = IngestOptions::default();
        let mut seen = 0;
        for body in corpus() {
            let mut variants = vec![body.clone()];
            for cut in (0..body.len()).step_by(37) {
                variants.push(body[..cut].to_vec());
                let mut flipped = body.clone();
                flipped[cut] ^= 0x20;
                variants.push(flipped);
            }
            for v in variants {
                for route in [Route::Batch, Route::Native, Route::Single("track")] {
                    if let Ok(p) = parse(route, &v, 2500) {
                        for (m, len) in &p.messages {
                            let _ = cxm_domain::normalize(m, *len, &clock, &opts);
                        }
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen > 1000);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            for route in [Route::Batch, Route::Native, Route::Single("page")] {
                let _ = parse(route, &bytes, 2500);
            }
        }
    }
}
