//! Synthetic journey checks as data: a script names a made-up customer's path across
//! channels (the events to send, oldest first) and what the customer's context must show
//! afterwards (events on one timeline, a channel switch, words in the agent's summary).
//! `cxm journey check --script FILE` sends the steps through a server's real ingest, reads
//! the real context API and judges it with [`Script::judge`]; the built-in script is
//! [`Script::builtin`] (chat about billing, then a call).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::taxonomy::Channel;

/// How the made-up customer is named in the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CheckIdentifier {
    #[default]
    UserId,
    AnonymousId,
    Email,
}

/// One event the made-up customer causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStep {
    pub event: String,
    /// A channel name as senders write it (`chat`, `phone`, `email`, ...).
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub properties: serde_json::Map<String, Value>,
    /// When it happened, in minutes before the run; steps go oldest first.
    #[serde(default)]
    pub minutes_ago: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchExpectation {
    pub from: String,
    pub to: String,
}

/// What the customer's context must show once the steps are in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Event names that must be on the customer's one timeline.
    #[serde(default)]
    pub timeline: Vec<String>,
    /// The switch the context must point out to the agent picking up.
    #[serde(default)]
    pub channel_switch: Option<SwitchExpectation>,
    /// Words the one-line summary for the agent must contain (case-insensitive).
    #[serde(default)]
    pub summary_mentions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub identifier: CheckIdentifier,
    pub steps: Vec<CheckStep>,
    pub expect: Expectations,
}

pub const MAX_STEPS: usize = 50;

const BUILTIN: &str = r#"
name: chat-then-call
description: A customer chats about billing, then calls; the agent on the call must see the chat.
steps:
  - event: Chat Started
    channel: chat
    properties: {intent: billing}
    minutes_ago: 10
  - event: Call Started
    channel: voice
    properties: {intent: billing}
    minutes_ago: 1
expect:
  timeline: [Chat Started, Call Started]
  channel_switch: {from: chat, to: voice}
"#;

impl Script {
    /// The check `cxm journey check` runs without a script.
    pub fn builtin() -> Script {
        // the text above is fixed and checked by a test; parsing it cannot fail at run time
        serde_norway::from_str(BUILTIN).unwrap_or_else(|_| Script {
            name: "chat-then-call".into(),
            description: String::new(),
            identifier: CheckIdentifier::UserId,
            steps: vec![],
            expect: Expectations::default(),
        })
    }

    /// Parses a script (YAML or JSON, which is YAML too) and checks it; errors name the
    /// field and what is wrong.
    pub fn parse(text: &str) -> Result<Script, String> {
        let s: Script = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), String> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok_name {
            return Err(format!(
                "name: {:?} must be 1-64 letters, digits, '-' or '_'",
                self.name
            ));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(format!(
                "steps: between 1 and {MAX_STEPS} steps, not {}",
                self.steps.len()
            ));
        }
        for (i, st) in self.steps.iter().enumerate() {
            if st.event.trim().is_empty() {
                return Err(format!("steps[{i}].event: empty"));
            }
            if let Some(c) = &st.channel {
                if Channel::parse(c).is_none() {
                    return Err(format!(
                        "steps[{i}].channel: {c:?} is not a channel cxm knows"
                    ));
                }
            }
            if i > 0 && st.minutes_ago > self.steps[i - 1].minutes_ago {
                return Err(format!(
                    "steps[{i}].minutes_ago: {} is before the step above it ({}); steps go oldest first",
                    st.minutes_ago,
                    self.steps[i - 1].minutes_ago
                ));
            }
        }
        let e = &self.expect;
        if e.timeline.is_empty() && e.channel_switch.is_none() && e.summary_mentions.is_empty() {
            return Err(
                "expect: nothing to check (timeline, channel_switch or summary_mentions)".into(),
            );
        }
        for (i, name) in e.timeline.iter().enumerate() {
            if !self.steps.iter().any(|s| &s.event == name) {
                return Err(format!(
                    "expect.timeline[{i}]: {name:?} is not one of the steps' events"
                ));
            }
        }
        if let Some(sw) = &e.channel_switch {
            for (field, c) in [("from", &sw.from), ("to", &sw.to)] {
                if Channel::parse(c).is_none() {
                    return Err(format!(
                        "expect.channel_switch.{field}: {c:?} is not a channel cxm knows"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The steps as Segment-spec track calls for `customer`, timed from `now_ms`.
    pub fn messages(&self, customer: &str, now_ms: i64) -> Vec<Value> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let at = chrono::DateTime::from_timestamp_millis(
                    now_ms - i64::from(st.minutes_ago) * 60_000,
                )
                .unwrap_or_default();
                let mut m = serde_json::json!({
                    "type": "track", "event": st.event, "properties": st.properties,
                    "timestamp": at.to_rfc3339(), "messageId": format!("{customer}-{i}"),
                });
                match self.identifier {
                    CheckIdentifier::UserId => m["userId"] = customer.into(),
                    CheckIdentifier::AnonymousId => m["anonymousId"] = customer.into(),
                    CheckIdentifier::Email => {
                        m["anonymousId"] = customer.into();
                        m["context"] =
                            serde_json::json!({"traits": {"email": self.email(customer)}});
                    }
                }
                if let Some(c) = &st.channel {
                    m["context"]["channel"] = c.clone().into();
                }
                m
            })
            .collect()
    }

    fn email(&self, customer: &str) -> String {
        format!("{customer}@journey-check.invalid")
    }

    /// The identifier to look the customer up by (`kind:value`).
    pub fn lookup(&self, customer: &str) -> String {
        match self.identifier {
            CheckIdentifier::UserId => format!("user_id:{customer}"),
            CheckIdentifier::AnonymousId => format!("anonymous_id:{customer}"),
            CheckIdentifier::Email => format!("email:{}", self.email(customer)),
        }
    }

    /// Judges a customer context (as `GET /api/v1/customers/{id}/context` answers it):
    /// one line per expectation that does not hold, empty when the check passes.
    pub fn judge(&self, ctx: &Value) -> Vec<String> {
        let mut failures = vec![];
        let names: Vec<&str> = ctx["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str())
            .collect();
        for want in &self.expect.timeline {
            if !names.contains(&want.as_str()) {
                failures.push(format!("{want} is missing from the customer's timeline"));
            }
        }
        if let Some(sw) = &self.expect.channel_switch {
            let canon = |c: &str| Channel::parse(c).map(|c| c.as_str().to_string());
            let got = &ctx["channel_switch"];
            let seen = (
                got["from"].as_str().and_then(canon),
                got["to"].as_str().and_then(canon),
            );
            if seen != (canon(&sw.from), canon(&sw.to)) {
                failures.push(format!(
                    "the context does not show the switch from {} to {} (it shows {got})",
                    sw.from, sw.to
                ));
            }
        }
        let summary = ctx["summary"].as_str().unwrap_or_default().to_lowercase();
        for w in &self.expect.summary_mentions {
            if !summary.contains(&w.to_lowercase()) {
                failures.push(format!("the agent's summary does not mention {w:?}"));
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_builtin_script_is_valid() {
        let s = Script::builtin();
        assert_eq!(s.name, "chat-then-call");
        s.validate().unwrap();
        let m = s.messages("c1", 3_600_000);
        assert_eq!(m[0]["context"]["channel"], "chat");
        assert_eq!(m[1]["userId"], "c1");
        assert!(m[0]["timestamp"].as_str().unwrap() < m[1]["timestamp"].as_str().unwrap());
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("name: x\nsteps: []\nexpect: {timeline: [A]}", "steps: between 1"),
            ("name: 'no spaces'\nsteps: [{event: A}]\nexpect: {timeline: [A]}", "name:"),
            ("name: x\nsteps: [{event: A, channel: pigeon}]\nexpect: {timeline: [A]}", "steps[0].channel"),
            ("name: x\nsteps: [{event: A, minutes_ago: 1}, {event: B, minutes_ago: 5}]\nexpect: {timeline: [A]}", "steps[1].minutes_ago"),
            ("name: x\nsteps: [{event: A}]\nexpect: {timeline: [B]}", "expect.timeline[0]"),
            ("name: x\nsteps: [{event: A}]\nexpect: {}", "nothing to check"),
            ("name: x\nsteps: [{event: A, colour: red}]\nexpect: {timeline: [A]}", "colour"),
            ("name: x\nsteps: [{event: A}]\nexpect: {channel_switch: {from: chat, to: fax}}", "channel_switch.to"),
        ] {
            let e = Script::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn a_context_is_judged_expectation_by_expectation() {
        let mut s = Script::builtin();
        s.expect.summary_mentions = vec!["Billing".into()];
        let good = json!({"timeline": [{"name": "Call Started"}, {"name": "Chat Started"}],
            "channel_switch": {"from": "chat", "to": "voice"}, "summary": "Switched from chat to voice about billing"});
        assert!(s.judge(&good).is_empty(), "{:?}", s.judge(&good));
        let bad =
            json!({"timeline": [{"name": "Call Started"}], "channel_switch": null, "summary": ""});
        let f = s.judge(&bad);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].contains("Chat Started"));
        // channel names are compared as cxm reads them: phone is voice
        s.expect.channel_switch = Some(SwitchExpectation {
            from: "live_chat".into(),
            to: "phone".into(),
        });
        assert!(s.judge(&good).is_empty());
    }

    #[test]
    fn an_email_customer_is_looked_up_by_email() {
        let mut s = Script::builtin();
        s.identifier = CheckIdentifier::Email;
        let m = s.messages("c9", 0);
        assert_eq!(
            m[0]["context"]["traits"]["email"],
            "c9@journey-check.invalid"
        );
        assert_eq!(m[0]["context"]["channel"], "chat");
        assert_eq!(s.lookup("c9"), "email:c9@journey-check.invalid");
    }
}
