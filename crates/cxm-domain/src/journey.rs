//! Journeys as data: a named, owned sequence of stages, each entered and left on events, with
//! a target time-in-stage, an SLA and a flag for moments of truth, and a review cadence.
//! Parsing checks everything a journey owner can get wrong (missing owners, unknown events,
//! stages that lead in a circle) and names the first problem.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JourneyDefinition {
    /// Stable id, e.g. `onboarding` (default: made from the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// Who answers for the journey as a whole.
    pub owner: String,
    /// Whose path the stages measure: each customer's (default), or each account's, all its
    /// people's events together (a B2B onboarding is the account's, whoever clicks).
    #[serde(default, skip_serializing_if = "JourneyUnit::is_customer")]
    pub unit: JourneyUnit,
    pub stages: Vec<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JourneyUnit {
    #[default]
    Customer,
    Account,
}

impl JourneyUnit {
    pub fn is_customer(&self) -> bool {
        *self == JourneyUnit::Customer
    }

    /// The word for many of them, in flags and pages.
    pub fn plural(self) -> &'static str {
        match self {
            JourneyUnit::Customer => "customers",
            JourneyUnit::Account => "accounts",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub id: String,
    pub name: String,
    /// Who answers for this stage.
    pub owner: String,
    /// Events that put a customer in this stage.
    pub entry: Vec<String>,
    /// Events that complete it (none: the next stage's entry completes it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit: Vec<String>,
    /// The time a customer should take here, in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hours: Option<f64>,
    /// The time after which the stage is in breach, in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_hours: Option<f64>,
    /// A decisive stage: its sentiment weighs more in the journey's score.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moment_of_truth: bool,
    /// Stages this one leads to (default: the next stage in the list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<String>,
}

/// How often the journey is reviewed, and when next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub every_days: u32,
    #[schema(value_type = String)]
    pub next: NaiveDate,
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn text_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

impl JourneyDefinition {
    /// Checks the definition; `known_event` says whether an event name is one the tenant
    /// sends (or a standard one), so a typo in an event name is caught before it silently
    /// measures nothing.
    pub fn validate(&self, known_event: impl Fn(&str) -> bool) -> Result<(), String> {
        if self.id.as_deref().is_some_and(|id| !id_ok(id)) {
            return Err("id must be 1 to 64 letters, digits, - or _".into());
        }
        if !text_ok(&self.name, 200) {
            return Err("name must be 1 to 200 printable characters".into());
        }
        if !text_ok(&self.owner, 200) {
            return Err("owner is required: who answers for this journey?".into());
        }
        if self.stages.is_empty() || self.stages.len() > 30 {
            return Err("a journey has 1 to 30 stages".into());
        }
        let mut ids = HashSet::new();
        for (i, s) in self.stages.iter().enumerate() {
            let at = format!("stages[{i}]");
            if !id_ok(&s.id) || !ids.insert(s.id.as_str()) {
                return Err(format!(
                    "{at}.id {:?} must be 1 to 64 letters, digits, - or _, and unique",
                    s.id
                ));
            }
            if !text_ok(&s.name, 200) {
                return Err(format!("{at}.name must be 1 to 200 printable characters"));
            }
            if !text_ok(&s.owner, 200) {
                return Err(format!(
                    "{at}.owner is required: who answers for stage {:?}?",
                    s.id
                ));
            }
            if s.entry.is_empty() {
                return Err(format!("{at}.entry needs at least one event"));
            }
            for e in s.entry.iter().chain(&s.exit) {
                if !known_event(e) {
                    return Err(format!(
                        "{at}: no event {e:?} has been seen and it is not a standard event; check the name"
                    ));
                }
            }
            for (what, h) in [("target_hours", s.target_hours), ("sla_hours", s.sla_hours)] {
                if h.is_some_and(|h| !(h > 0.0 && h <= 24.0 * 366.0)) {
                    return Err(format!(
                        "{at}.{what} must be more than 0 and at most a year"
                    ));
                }
            }
            if let (Some(t), Some(sla)) = (s.target_hours, s.sla_hours) {
                if sla < t {
                    return Err(format!(
                        "{at}: the SLA ({sla} h) is shorter than the target ({t} h)"
                    ));
                }
            }
        }
        for (i, s) in self.stages.iter().enumerate() {
            if let Some(n) = s.next.iter().find(|n| !ids.contains(n.as_str())) {
                return Err(format!("stages[{i}].next names no stage {n:?}"));
            }
        }
        if let Some(cycle) = self.cycle() {
            return Err(format!(
                "stages lead in a circle: {}; a customer going back is measured as a loop, the definition must not contain one",
                cycle.join(" -> ")
            ));
        }
        if let Some(r) = &self.review {
            if !(1..=366).contains(&r.every_days) {
                return Err("review.every_days must be 1 to 366".into());
            }
        }
        Ok(())
    }

    /// The journey's id: the one given, else the name in lowercase with dashes.
    pub fn journey_id(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        let mut out = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        let out = out.trim_end_matches('-');
        let out: String = out.chars().take(64).collect();
        if out.is_empty() {
            "journey".into()
        } else {
            out
        }
    }

    /// Every event name the journey listens to, each once.
    pub fn event_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stages
            .iter()
            .flat_map(|s| s.entry.iter().chain(&s.exit).cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The stages each stage leads to: its `next`, else the following stage.
    pub fn successors(&self, i: usize) -> Vec<usize> {
        let s = &self.stages[i];
        if s.next.is_empty() {
            return if i + 1 < self.stages.len() {
                vec![i + 1]
            } else {
                vec![]
            };
        }
        s.next
            .iter()
            .filter_map(|n| self.stages.iter().position(|x| &x.id == n))
            .collect()
    }

    /// A circle of stage ids, if the stages contain one.
    fn cycle(&self) -> Option<Vec<String>> {
        // colours: 0 unseen, 1 on the current path, 2 done
        fn visit(
            d: &JourneyDefinition,
            i: usize,
            colour: &mut [u8],
            path: &mut Vec<usize>,
        ) -> Option<Vec<String>> {
            colour[i] = 1;
            path.push(i);
            for j in d.successors(i) {
                if colour[j] == 1 {
                    let from = path.iter().position(|p| *p == j).unwrap_or(0);
                    let mut ids: Vec<String> = path[from..]
                        .iter()
                        .map(|p| d.stages[*p].id.clone())
                        .collect();
                    ids.push(d.stages[j].id.clone());
                    return Some(ids);
                }
                if colour[j] == 0 {
                    if let Some(c) = visit(d, j, colour, path) {
                        return Some(c);
                    }
                }
            }
            path.pop();
            colour[i] = 2;
            None
        }
        let mut colour = vec![0u8; self.stages.len()];
        (0..self.stages.len()).find_map(|i| {
            (colour[i] == 0)
                .then(|| visit(self, i, &mut colour, &mut vec![]))
                .flatten()
        })
    }

    /// Which stage an event enters, by name (the first stage listing it).
    pub fn stage_entered_by(&self, event: &str) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|s| s.entry.iter().any(|e| e == event))
    }

    /// Stage ids by position, for callers that index stages.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onboarding() -> JourneyDefinition {
        serde_json::from_value(serde_json::json!({
            "name": "Onboarding", "owner": "ada@acme.example",
            "stages": [
                {"id": "signup", "name": "Sign-up", "owner": "growth", "entry": ["Signed Up"], "target_hours": 1, "sla_hours": 24},
                {"id": "activate", "name": "Activation", "owner": "success", "entry": ["Feature Used"], "moment_of_truth": true},
                {"id": "pay", "name": "First payment", "owner": "billing", "entry": ["Payment Succeeded"], "exit": ["Subscription Renewed"]}
            ],
            "review": {"every_days": 30, "next": "2026-12-01"}
        }))
        .unwrap()
    }

    fn known(e: &str) -> bool {
        [
            "Signed Up",
            "Feature Used",
            "Payment Succeeded",
            "Subscription Renewed",
        ]
        .contains(&e)
    }

    #[test]
    fn a_good_journey_passes_and_orders_its_stages() {
        let j = onboarding();
        assert_eq!(j.validate(known), Ok(()));
        assert_eq!(j.successors(0), vec![1]);
        assert_eq!(j.successors(2), Vec::<usize>::new());
        assert_eq!(j.stage_entered_by("Feature Used").unwrap().id, "activate");
        assert_eq!(j.index()["pay"], 2);
        assert_eq!(j.journey_id(), "onboarding");
        let named = JourneyDefinition {
            name: "Billing: first invoice!".into(),
            ..j.clone()
        };
        assert_eq!(named.journey_id(), "billing-first-invoice");
        assert_eq!(j.event_names().len(), 4);
    }

    #[test]
    fn mistakes_are_named() {
        let problem = |f: &dyn Fn(&mut JourneyDefinition)| {
            let mut j = onboarding();
            f(&mut j);
            j.validate(known).unwrap_err()
        };
        assert!(problem(&|j| j.owner = " ".into()).contains("owner is required"));
        assert!(problem(&|j| j.stages[1].owner = String::new()).contains("stages[1].owner"));
        assert!(problem(&|j| j.stages[1].entry = vec!["Featur Used".into()])
            .contains("\"Featur Used\""));
        assert!(problem(&|j| j.stages[2].id = "signup".into()).contains("unique"));
        assert!(problem(&|j| j.stages[0].sla_hours = Some(0.5)).contains("shorter than the target"));
        assert!(problem(&|j| j.stages[0].next = vec!["nowhere".into()]).contains("names no stage"));
        let circle = problem(&|j| j.stages[2].next = vec!["activate".into()]);
        assert!(circle.contains("activate -> pay -> activate"), "{circle}");
        assert!(problem(&|j| j.review.as_mut().unwrap().every_days = 0).contains("every_days"));
        assert!(problem(&|j| j.stages.clear()).contains("1 to 30 stages"));
        assert!(problem(&|j| j.id = Some("on boarding".into())).contains("id must be"));
        assert!(serde_json::from_value::<JourneyDefinition>(
            serde_json::json!({"name": "x", "owner": "y", "stages": [], "typo": 1})
        )
        .is_err());
    }

    proptest::proptest! {
        /// Whatever edges are drawn, validation ends, and reports a circle exactly when there is one.
        #[test]
        fn cycle_detection_terminates(edges in proptest::collection::vec((0usize..6, 0usize..6), 0..15)) {
            let mut j = onboarding();
            j.stages = (0..6).map(|i| Stage {
                id: format!("s{i}"), name: format!("S{i}"), owner: "o".into(), entry: vec!["Signed Up".into()],
                exit: vec![], target_hours: None, sla_hours: None, moment_of_truth: false, next: vec![],
            }).collect();
            for (a, b) in &edges {
                j.stages[*a].next.push(format!("s{b}"));
            }
            // an independent check: Kahn's algorithm leaves nodes unsorted exactly when there is a circle
            let n = j.stages.len();
            let mut indegree = vec![0usize; n];
            for i in 0..n {
                for k in j.successors(i) {
                    indegree[k] += 1;
                }
            }
            let mut ready: Vec<usize> = (0..n).filter(|i| indegree[*i] == 0).collect();
            let mut sorted = 0;
            while let Some(i) = ready.pop() {
                sorted += 1;
                for k in j.successors(i) {
                    indegree[k] -= 1;
                    if indegree[k] == 0 {
                        ready.push(k);
                    }
                }
            }
            match j.validate(known) {
                Ok(()) => proptest::prop_assert_eq!(sorted, n),
                Err(e) => {
                    proptest::prop_assert!(e.contains("circle"), "{}", e);
                    proptest::prop_assert!(sorted < n);
                }
            }
        }
    }
}
