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
            if kind == FieldType::Choice && (q.choices.len() < 2 || q.choices.len() > 20) {
                return Err(format!(
                    "questions[{i}] is a choice question and needs 2 to 20 choices"
                ));
            }
        }
        Ok(())
    }
}

/// Why the engine asks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeReason {
    Vague,
    Surprising,
    ChurnIntent,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
