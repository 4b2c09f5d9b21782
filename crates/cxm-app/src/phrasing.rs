//! Optional phrasing of follow-up questions by an OpenAI-compatible chat endpoint. The
//! deterministic engine always decides *whether* and *why* to ask; the model may only say
//! it in words closer to what the customer wrote. Anything slow, failed or off (too long, not
//! a question, touching a topic to avoid) falls back to the engine's own prompt, so a survey
//! never waits on or depends on the model.

use std::time::Duration;

use cxm_domain::survey::FollowUp;
use serde_json::{json, Value};

/// Where the model is: `base_url` up to `/v1` (e.g. `http://127.0.0.1:11434/v1`), the model
/// name, and the bearer key if the endpoint needs one.
#[derive(Clone, PartialEq, Eq)]
pub struct LlmConfig {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl LlmConfig {
    pub fn parse(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
    ) -> Result<LlmConfig, String> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "llm base url must start with http:// or https:// (got {base_url:?})"
            ));
        }
        if model.trim().is_empty() {
            return Err("llm model must be named".into());
        }
        Ok(LlmConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.trim().to_string(),
            api_key: api_key.filter(|k| !k.is_empty()),
            timeout: Duration::from_millis(2500),
        })
    }
}

/// The chat request: the engine's reason and prompt, the survey question and the answer.
pub fn request(
    cfg: &LlmConfig,
    question: &str,
    answer: &str,
    follow: &FollowUp,
    avoid: &[String],
) -> Value {
    let avoid = if avoid.is_empty() {
        String::new()
    } else {
        format!(" Never mention: {}.", avoid.join(", "))
    };
    json!({
        "model": cfg.model,
        "temperature": 0.3,
        "max_tokens": 80,
        "messages": [
            {"role": "system", "content": format!(
                "You write one short, polite follow-up question for a customer survey. One sentence, at most 25 words, \
                 ending with a question mark. No greeting, no promises, no apology for the company.{avoid}")},
            {"role": "user", "content": format!(
                "Survey question: {question}\nCustomer's answer: {answer}\nWhy we ask again: {:?}\nDefault wording: {}\n\
                 Rephrase the default wording so it fits the answer.", follow.reason, follow.prompt)}
        ]
    })
}

/// The model's question if it is one we may show: a single question of sensible length that
/// stays off the avoided topics.
pub fn accept(reply: &Value, avoid: &[String]) -> Option<String> {
    let text = reply["choices"][0]["message"]["content"].as_str()?.trim();
    let text = text.trim_matches(|c| c == '"' || c == '\'').trim();
    let lower = text.to_lowercase();
    let ok = (8..=240).contains(&text.chars().count())
        && text.ends_with('?')
        && !text.contains('\n')
        && !avoid
            .iter()
            .any(|t| !t.trim().is_empty() && lower.contains(&t.trim().to_lowercase()));
    ok.then(|| text.to_string())
}

/// Asks the model; None on any failure, which means: use the engine's prompt.
pub async fn phrase(
    client: &reqwest::Client,
    cfg: &LlmConfig,
    question: &str,
    answer: &str,
    follow: &FollowUp,
    avoid: &[String],
) -> Option<String> {
    let mut req = client
        .post(format!("{}/chat/completions", cfg.base_url))
        .timeout(cfg.timeout)
        .json(&request(cfg, question, answer, follow, avoid));
    if let Some(k) = &cfg.api_key {
        req = req.bearer_auth(k);
    }
    let reply = match req.send().await {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.ok()?,
        Ok(r) => {
            tracing::warn!(
                status = r.status().as_u16(),
                "llm phrasing refused; using the default wording"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "llm phrasing failed; using the default wording");
            return None;
        }
    };
    let out = accept(&reply, avoid);
    if out.is_none() {
        tracing::info!("llm phrasing not usable; using the default wording");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxm_domain::survey::ProbeReason;

    fn follow() -> FollowUp {
        FollowUp {
            reason: ProbeReason::Vague,
            prompt: "Could you tell us a bit more?".into(),
        }
    }

    #[test]
    fn only_a_short_single_question_off_the_avoided_topics_is_used() {
        let reply =
            |t: &str| json!({"choices": [{"message": {"role": "assistant", "content": t}}]});
        let avoid = vec!["pricing".to_string()];
        assert_eq!(
            accept(
                &reply(" \"What made the delivery feel just fine rather than great?\" "),
                &avoid
            )
            .as_deref(),
            Some("What made the delivery feel just fine rather than great?")
        );
        assert!(
            accept(&reply("Tell us more."), &avoid).is_none(),
            "not a question"
        );
        assert!(
            accept(&reply("Is it our Pricing?"), &avoid).is_none(),
            "avoided topic"
        );
        assert!(
            accept(&reply("Why?\nAlso, how?"), &avoid).is_none(),
            "two lines"
        );
        assert!(
            accept(&reply(&format!("{}?", "why ".repeat(80))), &avoid).is_none(),
            "too long"
        );
        assert!(accept(&json!({"error": "x"}), &avoid).is_none());
    }

    #[test]
    fn the_request_names_the_reason_and_the_topics_to_avoid() {
        let cfg = LlmConfig::parse("http://127.0.0.1:1/v1/", "small-model", None).unwrap();
        assert_eq!(cfg.base_url, "http://127.0.0.1:1/v1");
        let r = request(
            &cfg,
            "Why this score?",
            "fine",
            &follow(),
            &["pricing".into()],
        );
        assert_eq!(r["model"], "small-model");
        assert!(r["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Never mention: pricing"));
        assert!(r["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Vague"));
        assert!(LlmConfig::parse("ftp://x", "m", None).is_err());
        assert!(LlmConfig::parse("http://x", " ", None).is_err());
        assert!(!format!(
            "{:?}",
            LlmConfig::parse("http://x", "m", Some("sk-secret".into())).unwrap()
        )
        .contains("sk-secret"));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_means_the_default_wording() {
        let cfg = LlmConfig::parse("http://127.0.0.1:9/v1", "m", None).unwrap();
        let got = phrase(
            &reqwest::Client::new(),
            &cfg,
            "Why?",
            "fine",
            &follow(),
            &[],
        )
        .await;
        assert!(got.is_none());
    }
}
