//! Survey definitions and the deterministic follow-up engine: after an answer, decide
//! whether one more question would teach us something (the answer was vague, surprising, or
//! mentions leaving), at most N times, never about topics the team ruled out.

use serde::{Deserialize, Serialize};

use crate::feedback::FieldType;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Question {
    pub id: String,
    /// nps, csat, ces, rating, choice or text.
    #[serde(rename = "type")]
    pub kind: String,
    pub prompt: String,
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// A choice question where several options may be picked (one answer row per option).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiple: bool,
    /// Branching: ask this question only when an earlier answer meets the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Condition>,
}

/// A test on an earlier answer: its score within bounds, or its text one of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The id of an earlier question.
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<i64>,
    /// The answer (a choice or text) is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
}

impl Condition {
    /// Whether the raw answer given to the referenced question meets the condition; a
    /// question not answered (or not shown) meets none.
    pub fn holds(&self, raw: Option<&str>) -> bool {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return false;
        };
        if self.at_most.is_some() || self.at_least.is_some() {
            let Ok(v) = raw.parse::<i64>() else {
                return false;
            };
            if self.at_most.is_some_and(|m| v > m) || self.at_least.is_some_and(|m| v < m) {
                return false;
            }
        }
        // a multiple choice arrives one option per line: any ticked option may match
        self.any_of.is_empty()
            || raw
                .lines()
                .any(|r| self.any_of.iter().any(|a| a.eq_ignore_ascii_case(r.trim())))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SurveyDefinition {
    pub name: String,
    pub questions: Vec<Question>,
    /// Follow-up questions after an answer, at most this many per response (default 2).
    #[serde(default = "default_max_follow_ups")]
    pub max_follow_ups: u8,
    /// Topics never to probe (e.g. "pricing"): an answer mentioning one gets no follow-up.
    #[serde(default)]
    pub avoid_topics: Vec<String>,
    /// Overrides the tenant-wide contact rules for this survey.
    #[serde(default)]
    pub contact_rules: Option<ContactRules>,
    /// Invite customers automatically when an event happens (e.g. after Ticket Resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Targeting>,
}

/// Who is invited automatically, and when: after one of `events`, on one of `channels`,
/// for customers in one of `tiers`, a `sample_percent` share of the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targeting {
    /// Event names that trigger an invitation, e.g. "Ticket Resolved".
    pub events: Vec<String>,
    /// Only events on these channels (empty: any).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Only customers whose account tier or plan is one of these (empty: anyone).
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Share of triggering events that invite, 0 < p <= 100 (default 100). The draw is a hash
    /// of the survey and the event, so replaying events draws the same way.
    #[serde(default = "all_of_them")]
    pub sample_percent: f64,
    /// Channel the invitation goes out on (default email).
    #[serde(default = "by_email")]
    pub deliver_via: String,
}

fn all_of_them() -> f64 {
    100.0
}

fn by_email() -> String {
    "email".into()
}

/// FNV-1a: a tiny, stable hash, so a sampling decision never changes between releases.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl Targeting {
    pub fn validate(&self) -> Result<(), String> {
        if self.events.is_empty() || self.events.len() > 20 {
            return Err("targeting.events needs 1 to 20 event names".into());
        }
        if self
            .events
            .iter()
            .any(|e| e.trim().is_empty() || e.len() > 200)
        {
            return Err("targeting.events are 1 to 200 characters each".into());
        }
        for c in self.channels.iter().chain([&self.deliver_via]) {
            if crate::taxonomy::Channel::parse(c).is_none() {
                return Err(format!("targeting: {c:?} is not a known channel"));
            }
        }
        if self
            .tiers
            .iter()
            .any(|t| t.trim().is_empty() || t.len() > 64)
        {
            return Err("targeting.tiers are 1 to 64 characters each".into());
        }
        if !(self.sample_percent > 0.0 && self.sample_percent <= 100.0) {
            return Err("targeting.sample_percent must be more than 0 and at most 100".into());
        }
        Ok(())
    }

    /// Whether an event (name, channel) of a customer in `tier` is one to survey.
    pub fn matches(&self, event: &str, channel: &str, tier: Option<&str>) -> bool {
        self.events.iter().any(|e| e == event)
            && (self.channels.is_empty() || self.channels.iter().any(|c| c == channel))
            && (self.tiers.is_empty()
                || tier.is_some_and(|t| self.tiers.iter().any(|x| x.eq_ignore_ascii_case(t))))
    }

    /// The sampling draw for one survey and one triggering event.
    pub fn sampled(&self, survey_id: &str, message_id: &str) -> bool {
        if self.sample_percent >= 100.0 {
            return true;
        }
        let draw = fnv1a(&[survey_id, message_id]) % 10_000;
        (draw as f64) < self.sample_percent * 100.0
    }
}

/// How often one customer may be surveyed, so nobody is over-surveyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContactRules {
    /// At most this many invitations per customer within `period_days`.
    pub max_per_period: u32,
    pub period_days: u32,
    /// At least this many days between two invitations to one customer.
    pub min_days_between: u32,
}

impl Default for ContactRules {
    fn default() -> Self {
        ContactRules {
            max_per_period: 3,
            period_days: 90,
            min_days_between: 14,
        }
    }
}

impl ContactRules {
    /// Whether one more invitation may go out now, given the times (ms) of earlier ones
    /// within the period; `Err` says which rule holds it back.
    pub fn check(&self, earlier_ms: &[i64], now_ms: i64) -> Result<(), String> {
        let period_start = now_ms - i64::from(self.period_days) * 86_400_000;
        let in_period = earlier_ms.iter().filter(|t| **t >= period_start).count();
        if in_period as u32 >= self.max_per_period {
            return Err(format!(
                "this customer was already invited {in_period} times in {} days (limit {})",
                self.period_days, self.max_per_period
            ));
        }
        if let Some(last) = earlier_ms.iter().max() {
            let days = (now_ms - last) as f64 / 86_400_000.0;
            if days < f64::from(self.min_days_between) {
                return Err(format!(
                    "this customer was invited {days:.1} days ago; the minimum gap is {} days",
                    self.min_days_between
                ));
            }
        }
        Ok(())
    }
}

fn default_max_follow_ups() -> u8 {
    2
}

impl SurveyDefinition {
    /// Checks the definition; the message names the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("name must be 1 to 200 characters".into());
        }
        if self.questions.is_empty() || self.questions.len() > 50 {
            return Err("a survey has 1 to 50 questions".into());
        }
        if self.max_follow_ups > 5 {
            return Err("max_follow_ups is at most 5".into());
        }
        if let Some(t) = &self.targeting {
            t.validate()?;
        }
        let mut ids = std::collections::HashSet::new();
        for (i, q) in self.questions.iter().enumerate() {
            let ok_id = !q.id.is_empty()
                && q.id.len() <= 64
                && q.id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok_id {
                return Err(format!(
                    "questions[{i}].id must be 1 to 64 letters, digits, - or _"
                ));
            }
            if !ids.insert(q.id.as_str()) || q.id.starts_with("followup") {
                return Err(format!(
                    "questions[{i}].id {:?} is repeated or reserved",
                    q.id
                ));
            }
            let Some(kind) = FieldType::parse(&q.kind) else {
                return Err(format!(
                    "questions[{i}].type must be nps, csat, ces, rating, choice or text"
                ));
            };
            if q.prompt.trim().is_empty() || q.prompt.len() > 500 {
                return Err(format!("questions[{i}].prompt must be 1 to 500 characters"));
            }
            if q.multiple && kind != FieldType::Choice {
                return Err(format!(
                    "questions[{i}]: only a choice question can be multiple"
                ));
            }
            if kind == FieldType::Choice && (q.choices.len() < 2 || q.choices.len() > 20) {
                return Err(format!(
                    "questions[{i}] is a choice question and needs 2 to 20 choices"
                ));
            }
            if let Some(c) = &q.show_if {
                let Some(earlier) = self.questions[..i].iter().find(|e| e.id == c.question) else {
                    return Err(format!(
                        "questions[{i}].show_if must name an earlier question (got {:?})",
                        c.question
                    ));
                };
                let scored = FieldType::parse(&earlier.kind)
                    .and_then(FieldType::range)
                    .is_some();
                if c.at_most.is_none() && c.at_least.is_none() && c.any_of.is_empty() {
                    return Err(format!(
                        "questions[{i}].show_if needs at_most, at_least or any_of"
                    ));
                }
                if (c.at_most.is_some() || c.at_least.is_some()) && !scored {
                    return Err(format!(
                        "questions[{i}].show_if: at_most and at_least need a scored question"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether question `i` is asked, given the raw answers so far (question id → value).
    pub fn visible(&self, i: usize, answers: &std::collections::HashMap<String, String>) -> bool {
        match &self.questions[i].show_if {
            None => true,
            Some(c) => {
                // a condition on a question that was itself skipped does not hold
                let shown = self
                    .questions
                    .iter()
                    .position(|q| q.id == c.question)
                    .is_some_and(|j| j < i && self.visible(j, answers));
                shown && c.holds(answers.get(&c.question).map(String::as_str))
            }
        }
    }

    /// The pages of a form that works without JavaScript: a page ends before a question
    /// that depends on an answer given on that page.
    pub fn pages(&self) -> Vec<std::ops::Range<usize>> {
        let mut pages = vec![];
        let mut start = 0;
        for (i, q) in self.questions.iter().enumerate() {
            if let Some(c) = &q.show_if {
                if self.questions[start..i].iter().any(|e| e.id == c.question) {
                    pages.push(start..i);
                    start = i;
                }
            }
        }
        pages.push(start..self.questions.len());
        pages
    }
}

/// Why the engine asks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeReason {
    Vague,
    Surprising,
    ChurnIntent,
    /// The answer is far from every theme the company knows.
    NewTopic,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FollowUp {
    pub reason: ProbeReason,
    pub prompt: String,
}

/// What the engine knows about the answer to probe.
#[derive(Debug, Clone)]
pub struct AnswerSignal<'a> {
    /// The score given in this response, if any (with its type).
    pub score: Option<(FieldType, i64)>,
    pub text: &'a str,
    /// VADER compound of the text, if English.
    pub sentiment: Option<f64>,
    pub churn_intent: bool,
    /// The text fits none of the tenant's known themes.
    pub new_topic: bool,
}

const VAGUE: &[&str] = &[
    "fine",
    "ok",
    "okay",
    "good",
    "it depends",
    "depends",
    "meh",
    "not sure",
    "idk",
    "nothing",
    "n/a",
    "average",
    "alright",
    "so so",
    "so-so",
];

fn is_vague(text: &str) -> bool {
    let t = text.trim().trim_end_matches(['.', '!']).to_lowercase();
    VAGUE.contains(&t.as_str()) || t.split_whitespace().count() < 3
}

fn positive_score(s: (FieldType, i64)) -> Option<bool> {
    match s {
        (FieldType::Nps, v) if v >= 9 => Some(true),
        (FieldType::Nps, v) if v <= 6 => Some(false),
        (FieldType::Csat, v) => (v != 3).then_some(v >= 4),
        (FieldType::Ces, v) => (v != 4).then_some(v >= 5),
        _ => None,
    }
}

/// Decides the next follow-up, if any. `asked` counts follow-ups already asked in this response.
pub fn next_follow_up(
    def: &SurveyDefinition,
    signal: &AnswerSignal<'_>,
    asked: u8,
) -> Option<FollowUp> {
    if asked >= def.max_follow_ups {
        return None;
    }
    let lower = signal.text.to_lowercase();
    if def
        .avoid_topics
        .iter()
        .any(|t| !t.trim().is_empty() && lower.contains(&t.trim().to_lowercase()))
    {
        return None;
    }
    if signal.churn_intent {
        return Some(FollowUp { reason: ProbeReason::ChurnIntent, prompt: "Sorry to hear you're thinking of leaving. What would have to change for you to stay?".into() });
    }
    if let (Some(score), Some(compound)) = (signal.score.and_then(positive_score), signal.sentiment)
    {
        if score && compound <= -0.3 {
            return Some(FollowUp {
                reason: ProbeReason::Surprising,
                prompt: "You gave us a high score but mention a problem. What went wrong?".into(),
            });
        }
        if !score && compound >= 0.3 {
            return Some(FollowUp {
                reason: ProbeReason::Surprising,
                prompt: "You sound positive but scored us low. What would have made it better?"
                    .into(),
            });
        }
    }
    if is_vague(signal.text) {
        return Some(FollowUp {
            reason: ProbeReason::Vague,
            prompt: "Could you tell us a bit more? What is one thing we should change?".into(),
        });
    }
    if signal.new_topic {
        return Some(FollowUp {
            reason: ProbeReason::NewTopic,
            prompt: "That is new to us. Could you tell us more about what happened?".into(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> SurveyDefinition {
        serde_json::from_value(serde_json::json!({"name": "Post-ticket", "questions": [
            {"id": "nps", "type": "nps", "prompt": "How likely are you to recommend us?", "required": true},
            {"id": "why", "type": "text", "prompt": "Why?"}], "avoid_topics": ["pricing"]})).unwrap()
    }

    fn sig(
        score: Option<i64>,
        text: &str,
        sentiment: Option<f64>,
        churn: bool,
    ) -> AnswerSignal<'_> {
        AnswerSignal {
            score: score.map(|s| (FieldType::Nps, s)),
            text,
            sentiment,
            churn_intent: churn,
            new_topic: false,
        }
    }

    #[test]
    fn probes_vague_surprising_and_churn_answers_at_most_twice() {
        let d = def();
        assert!(d.validate().is_ok());
        assert_eq!(
            next_follow_up(&d, &sig(Some(8), "fine", Some(0.2), false), 0)
                .unwrap()
                .reason,
            ProbeReason::Vague
        );
        assert_eq!(
            next_follow_up(
                &d,
                &sig(
                    Some(10),
                    "The app crashed and support was useless and slow",
                    Some(-0.6),
                    false
                ),
                0
            )
            .unwrap()
            .reason,
            ProbeReason::Surprising
        );
        assert_eq!(
            next_follow_up(
                &d,
                &sig(
                    Some(2),
                    "I am switching to another bank next month",
                    Some(0.0),
                    true
                ),
                0
            )
            .unwrap()
            .reason,
            ProbeReason::ChurnIntent
        );
        assert!(
            next_follow_up(&d, &sig(Some(8), "fine", Some(0.2), false), 2).is_none(),
            "never more than max_follow_ups"
        );
        let mut new = sig(
            Some(8),
            "the hologram feature confused my parrot",
            Some(0.0),
            false,
        );
        new.new_topic = true;
        assert_eq!(
            next_follow_up(&d, &new, 0).unwrap().reason,
            ProbeReason::NewTopic
        );
        assert!(
            next_follow_up(
                &d,
                &sig(Some(3), "your pricing is too high", Some(-0.3), true),
                0
            )
            .is_none(),
            "avoided topic"
        );
        assert!(next_follow_up(
            &d,
            &sig(
                Some(9),
                "Quick answers and a friendly agent on chat",
                Some(0.7),
                false
            ),
            0
        )
        .is_none());
    }

    #[test]
    fn contact_rules() {
        let r = ContactRules {
            max_per_period: 2,
            period_days: 30,
            min_days_between: 7,
        };
        let day = 86_400_000;
        let now = 100 * day;
        assert!(r.check(&[], now).is_ok());
        assert!(r.check(&[now - 10 * day], now).is_ok());
        assert!(r
            .check(&[now - 3 * day], now)
            .unwrap_err()
            .contains("minimum gap"));
        assert!(r
            .check(&[now - 20 * day, now - 10 * day], now)
            .unwrap_err()
            .contains("limit 2"));
        assert!(
            r.check(&[now - 40 * day, now - 10 * day], now).is_ok(),
            "older than the period does not count"
        );
    }

    #[test]
    fn targeting_matches_filters_and_samples_stably() {
        let t: Targeting = serde_json::from_value(serde_json::json!({
            "events": ["Ticket Resolved"], "channels": ["chat", "voice"], "tiers": ["enterprise"], "sample_percent": 25.0
        }))
        .unwrap();
        assert!(t.validate().is_ok());
        assert!(t.matches("Ticket Resolved", "chat", Some("Enterprise")));
        assert!(!t.matches("Ticket Resolved", "email", Some("enterprise")));
        assert!(!t.matches("Ticket Resolved", "chat", Some("starter")));
        assert!(!t.matches("Ticket Resolved", "chat", None));
        assert!(!t.matches("Ticket Opened", "chat", Some("enterprise")));
        let hits = (0..10_000)
            .filter(|i| t.sampled("post-ticket", &format!("m{i}")))
            .count();
        assert!((2300..2700).contains(&hits), "about a quarter: {hits}");
        assert_eq!(t.sampled("s", "m1"), t.sampled("s", "m1"));
        for bad in [
            serde_json::json!({"events": []}),
            serde_json::json!({"events": ["x"], "channels": ["pigeon"]}),
            serde_json::json!({"events": ["x"], "sample_percent": 0}),
            serde_json::json!({"events": ["x"], "sample_percent": 101}),
        ] {
            let t: Targeting = serde_json::from_value(bad.clone()).unwrap();
            assert!(t.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<Targeting>(
            serde_json::json!({"events": ["x"], "typo": 1})
        )
        .is_err());
    }

    #[test]
    fn branching_pages_and_visibility() {
        let d: SurveyDefinition = serde_json::from_value(serde_json::json!({"name": "Support", "questions": [
            {"id": "nps", "type": "nps", "prompt": "Recommend us?", "required": true},
            {"id": "channel", "type": "choice", "prompt": "Where did you reach us?", "choices": ["chat", "phone"]},
            {"id": "fix", "type": "text", "prompt": "What should we fix?", "show_if": {"question": "nps", "at_most": 6}},
            {"id": "praise", "type": "text", "prompt": "What did you like?", "show_if": {"question": "nps", "at_least": 9}},
            {"id": "wait", "type": "text", "prompt": "How long did you wait?", "show_if": {"question": "channel", "any_of": ["phone"]}},
            {"id": "detail", "type": "text", "prompt": "More on the fix?", "show_if": {"question": "fix", "any_of": ["billing"]}}
        ]})).unwrap();
        assert!(d.validate().is_ok(), "{:?}", d.validate());
        assert_eq!(d.pages(), vec![0..2, 2..5, 5..6]);
        let a = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let detractor = a(&[("nps", "3"), ("channel", "phone"), ("fix", "billing")]);
        let shown: Vec<&str> = (0..6)
            .filter(|i| d.visible(*i, &detractor))
            .map(|i| d.questions[i].id.as_str())
            .collect();
        assert_eq!(shown, ["nps", "channel", "fix", "wait", "detail"]);
        let promoter = a(&[("nps", "10"), ("channel", "chat"), ("fix", "billing")]);
        let shown: Vec<&str> = (0..6)
            .filter(|i| d.visible(*i, &promoter))
            .map(|i| d.questions[i].id.as_str())
            .collect();
        assert_eq!(
            shown,
            ["nps", "channel", "praise"],
            "a skipped question's answer does not count"
        );
        let mut bad = d.clone();
        bad.questions[2].show_if.as_mut().unwrap().question = "detail".into();
        assert!(bad.validate().unwrap_err().contains("earlier question"));
        let mut bad = d.clone();
        bad.questions[4].show_if = Some(Condition {
            question: "channel".into(),
            at_most: Some(3),
            at_least: None,
            any_of: vec![],
        });
        assert!(bad.validate().unwrap_err().contains("scored"));
    }

    #[test]
    fn definitions_are_checked() {
        let mut d = def();
        d.questions[1].id = "nps".into();
        assert!(d.validate().unwrap_err().contains("repeated"));
        let mut d = def();
        d.questions[0].kind = "stars".into();
        assert!(d.validate().is_err());
        let mut d = def();
        d.questions[0].kind = "choice".into();
        assert!(d.validate().unwrap_err().contains("choices"));
    }
}
