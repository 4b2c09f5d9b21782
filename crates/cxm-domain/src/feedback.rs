//! Feedback stored one row per answer: what the customer said, typed, with where it came from.
//! Parsing checks ranges per field type so nothing out of range reaches the metrics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::taxonomy::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Nps,
    Csat,
    Ces,
    Rating,
    Choice,
    Text,
}

impl FieldType {
    pub fn parse(s: &str) -> Option<FieldType> {
        Some(match s {
            "nps" => FieldType::Nps,
            "csat" => FieldType::Csat,
            "ces" => FieldType::Ces,
            "rating" => FieldType::Rating,
            "choice" => FieldType::Choice,
            "text" => FieldType::Text,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Nps => "nps",
            FieldType::Csat => "csat",
            FieldType::Ces => "ces",
            FieldType::Rating => "rating",
            FieldType::Choice => "choice",
            FieldType::Text => "text",
        }
    }
    /// The valid integer range of a scored type.
    pub fn range(self) -> Option<(i64, i64)> {
        match self {
            FieldType::Nps => Some((0, 10)),
            FieldType::Csat => Some((1, 5)),
            FieldType::Ces => Some((1, 7)),
            FieldType::Rating => Some((0, 10)),
            _ => None,
        }
    }
}

/// One answer, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub response_id: String,
    pub question: String,
    pub field_type: FieldType,
    /// Scored answers (nps, csat, ces, rating).
    pub score: Option<i64>,
    /// Text and choice answers.
    pub text: Option<String>,
    pub channel: Channel,
    pub survey_id: Option<String>,
    pub survey_version: Option<i64>,
    pub journey: Option<String>,
    pub stage: Option<String>,
    pub agent: Option<String>,
    /// `type:value` of the customer, e.g. `user_id:42`.
    pub identifier: Option<String>,
    pub account: Option<String>,
    pub collected_at: DateTime<Utc>,
    /// Re-sending the same key is a no-op; defaults to `response_id:question`.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct AnswerError {
    pub field: &'static str,
    pub detail: String,
}

fn err(field: &'static str, detail: impl Into<String>) -> AnswerError {
    AnswerError {
        field,
        detail: detail.into(),
    }
}

const MAX_TEXT: usize = 10_000;

fn opt_str(v: &Value, key: &'static str, max: usize) -> Result<Option<String>, AnswerError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(err(key, format!("longer than {max} bytes"))),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(err(key, "must be a string")),
    }
}

/// Parses one answer object; `now` fills a missing `collected_at`.
pub fn parse_answer(v: &Value, now: DateTime<Utc>) -> Result<Answer, AnswerError> {
    if !v.is_object() {
        return Err(err("answer", "must be a json object"));
    }
    let response_id =
        opt_str(v, "response_id", 256)?.ok_or_else(|| err("response_id", "is required"))?;
    let question = opt_str(v, "question", 256)?.ok_or_else(|| err("question", "is required"))?;
    let ty = opt_str(v, "type", 16)?.ok_or_else(|| {
        err(
            "type",
            "is required: nps, csat, ces, rating, choice or text",
        )
    })?;
    let field_type = FieldType::parse(&ty).ok_or_else(|| {
        err(
            "type",
            format!("{ty:?} is not one of nps, csat, ces, rating, choice, text"),
        )
    })?;
    let (score, text) = match field_type.range() {
        Some((lo, hi)) => {
            let n = v
                .get("value")
                .and_then(Value::as_f64)
                .ok_or_else(|| err("value", format!("a {ty} answer needs a numeric value")))?;
            if n.fract() != 0.0 || n < lo as f64 || n > hi as f64 {
                return Err(err("value", format!("{n} is outside {lo}..={hi} for {ty}")));
            }
            (Some(n as i64), opt_str(v, "comment", MAX_TEXT)?)
        }
        None => {
            let t = opt_str(v, "value", MAX_TEXT)?
                .ok_or_else(|| err("value", format!("a {ty} answer needs a text value")))?;
            if t.contains('\u{0}') {
                return Err(err("value", "contains a NUL byte"));
            }
            (None, Some(t))
        }
    };
    let channel = match opt_str(v, "channel", 32)? {
        Some(c) => Channel::parse(&c)
            .ok_or_else(|| err("channel", format!("{c:?} is not a known channel")))?,
        None => Channel::Survey,
    };
    let collected_at = match v.get("collected_at") {
        None | Some(Value::Null) => now,
        Some(t) => crate::event::parse_timestamp(t)
            .ok()
            .flatten()
            .ok_or_else(|| err("collected_at", "is not an iso 8601 timestamp"))?,
    };
    if collected_at > now + chrono::Duration::days(1) {
        return Err(err("collected_at", "is in the future"));
    }
    let survey_version = match v.get("survey_version") {
        None | Some(Value::Null) => None,
        Some(x) => Some(
            x.as_i64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| err("survey_version", "must be a positive integer"))?,
        ),
    };
    let identifier = opt_str(v, "identifier", 600)?;
    if let Some(i) = &identifier {
        if crate::Identifier::parse_typed(i).is_none() {
            return Err(err(
                "identifier",
                format!("{i:?} must be type:value, e.g. email:ada@example.com"),
            ));
        }
    }
    let idempotency_key =
        opt_str(v, "idempotency_key", 256)?.unwrap_or_else(|| format!("{response_id}:{question}"));
    Ok(Answer {
        response_id,
        question,
        field_type,
        score,
        text,
        channel,
        survey_id: opt_str(v, "survey_id", 256)?,
        survey_version,
        journey: opt_str(v, "journey", 256)?,
        stage: opt_str(v, "stage", 256)?,
        agent: opt_str(v, "agent", 256)?,
        identifier,
        account: opt_str(v, "account", 256)?,
        collected_at,
        idempotency_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn valid_answers() {
        let a = parse_answer(&json!({"response_id": "r1", "question": "q1", "type": "nps", "value": 9, "channel": "email", "identifier": "email:Ada@X.io"}), now()).unwrap();
        assert_eq!(
            (a.score, a.channel, a.idempotency_key.as_str()),
            (Some(9), Channel::Email, "r1:q1")
        );
        let t = parse_answer(&json!({"response_id": "r1", "question": "why", "type": "text", "value": "  slow refund  "}), now()).unwrap();
        assert_eq!(t.text.as_deref(), Some("slow refund"));
        assert_eq!(t.collected_at, now());
    }

    #[test]
    fn precise_errors() {
        let e = |v: Value| parse_answer(&v, now()).unwrap_err();
        assert_eq!(
            e(json!({"question": "q", "type": "nps", "value": 3})).field,
            "response_id"
        );
        assert_eq!(
            e(json!({"response_id": "r", "question": "q", "type": "nps", "value": 11})).field,
            "value"
        );
        assert_eq!(
            e(json!({"response_id": "r", "question": "q", "type": "csat", "value": 0})).field,
            "value"
        );
        assert_eq!(
            e(json!({"response_id": "r", "question": "q", "type": "ces", "value": 2.5})).field,
            "value"
        );
        assert_eq!(
            e(json!({"response_id": "r", "question": "q", "type": "nps", "value": "9"})).field,
            "value"
        );
        assert_eq!(
            e(json!({"response_id": "r", "question": "q", "type": "stars", "value": 3})).field,
            "type"
        );
        assert_eq!(e(json!({"response_id": "r", "question": "q", "type": "text", "value": "x".repeat(20_000)})).field, "value");
        assert_eq!(e(json!({"response_id": "r", "question": "q", "type": "nps", "value": 5, "channel": "pigeon"})).field, "channel");
        assert_eq!(e(json!({"response_id": "r", "question": "q", "type": "nps", "value": 5, "collected_at": "2030-01-01T00:00:00Z"})).field, "collected_at");
        assert_eq!(e(json!({"response_id": "r", "question": "q", "type": "nps", "value": 5, "identifier": "nope"})).field, "identifier");
        assert_eq!(e(json!([1])).field, "answer");
    }
}
