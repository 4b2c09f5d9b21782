//! Where a CX function stands and what improving it is worth: the five-question readiness
//! assessment, its maturity stage with the frameworks to adopt in order and the North Star
//! KPI for the stage, and the ROI calculator with its assumptions stated and editable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One question with its four answers, from least to most mature.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Question {
    pub id: &'static str,
    pub prompt: &'static str,
    pub answers: [&'static str; 4],
}

pub const QUESTIONS: [Question; 5] = [
    Question {
        id: "c_suite",
        prompt: "How does the C-suite see customer experience?",
        answers: [
            "A cost centre: the place complaints go",
            "Important, but owned by support and service",
            "A shared goal with CX metrics reviewed every quarter",
            "A growth engine: CX metrics tied to revenue in board reporting",
        ],
    },
    Question {
        id: "ai",
        prompt: "How far is AI in your customer journeys?",
        answers: [
            "None in customer-facing work",
            "Pilots or a chatbot, with no formal oversight",
            "Agents in production with humans reviewing their work",
            "Governed agents: authority levels, decision logs, measured resolution",
        ],
    },
    Question {
        id: "journeys",
        prompt: "How are journey maps used?",
        answers: [
            "We have none",
            "Drawn once in a workshop",
            "Maps with owners, reviewed regularly",
            "Living journeys measured from data that drive decisions and experiments",
        ],
    },
    Question {
        id: "alignment",
        prompt: "How aligned are customer, employee and product experience (CX, EX, UX)?",
        answers: [
            "Separate teams, separate metrics",
            "Reports shared now and then",
            "Shared goals on the key journeys",
            "One operating model: joint metrics and fixes owned across teams",
        ],
    },
    Question {
        id: "trust",
        prompt: "How are trust and provenance handled?",
        answers: [
            "No explicit policy",
            "A privacy policy",
            "Consent and AI disclosure enforced in every channel",
            "Signed communications, audit trails and verifiable AI disclosure",
        ],
    },
];

/// The four stages, with the names both vocabularies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Repair,
    Elevate,
    Optimize,
    Differentiate,
}

impl Stage {
    pub fn from_score(score: f64) -> Stage {
        if score < 25.0 {
            Stage::Repair
        } else if score < 50.0 {
            Stage::Elevate
        } else if score < 75.0 {
            Stage::Optimize
        } else {
            Stage::Differentiate
        }
    }
    pub fn also_called(self) -> &'static str {
        match self {
            Stage::Repair => "Reactive",
            Stage::Elevate => "Aware",
            Stage::Optimize => "Structured",
            Stage::Differentiate => "Predictive",
        }
    }
    pub fn north_star(self) -> &'static str {
        match self {
            Stage::Repair => "CES and the top failure-demand drivers",
            Stage::Elevate => "FCR and the time to fix systemic issues",
            Stage::Optimize => "NRR and revenue at risk",
            Stage::Differentiate => "ROX and the Journey Performance Score",
        }
    }
    /// The frameworks to adopt, in order.
    pub fn frameworks(self) -> [&'static str; 3] {
        match self {
            Stage::Repair => [
                "Failure-demand analysis: find and remove the top reasons customers have to contact you",
                "Customer effort (CES) at the touchpoints that generate most contacts",
                "Close the loop with every detractor",
            ],
            Stage::Elevate => [
                "Journeys with owners, stage SLAs and a review cadence",
                "Root-cause remediation: tickets that close only on verified evidence",
                "First-contact resolution by intent",
            ],
            Stage::Optimize => [
                "Account health with deterministic, backtested risk signals",
                "Customer lifetime value and value tiers that route and prioritise",
                "Experiments on journeys and automations with guardrails",
            ],
            Stage::Differentiate => [
                "Governed AI agents with authority levels and resolution as their KPI",
                "Return on experience: lift and money attributed to CX changes",
                "Predictive journeys and proactive outreach on risk and expansion signals",
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Assessment {
    /// 0 to 100.
    pub score: f64,
    pub stage: Stage,
    pub also_called: &'static str,
    pub north_star: &'static str,
    pub frameworks: [&'static str; 3],
    /// Per question: the level answered, 1 to 4.
    pub levels: BTreeMap<String, u8>,
}

/// Scores answers given as question id → level (1 to 4). Every question must be answered.
pub fn assess(answers: &BTreeMap<String, u8>) -> Result<Assessment, String> {
    let missing: Vec<&str> = QUESTIONS
        .iter()
        .filter(|q| !answers.contains_key(q.id))
        .map(|q| q.id)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the assessment is half answered: {} of 5 questions have no answer ({})",
            missing.len(),
            missing.join(", ")
        ));
    }
    if let Some(k) = answers
        .keys()
        .find(|k| !QUESTIONS.iter().any(|q| q.id == k.as_str()))
    {
        return Err(format!(
            "no question {k:?}; the questions are c_suite, ai, journeys, alignment, trust"
        ));
    }
    if let Some((k, v)) = answers.iter().find(|(_, v)| !(1..=4).contains(*v)) {
        return Err(format!("{k}: answers are 1 to 4, not {v}"));
    }
    let sum: u32 = answers.values().map(|v| u32::from(*v)).sum();
    let score = f64::from(sum - 5) / 15.0 * 100.0;
    let stage = Stage::from_score(score);
    Ok(Assessment {
        score,
        stage,
        also_called: stage.also_called(),
        north_star: stage.north_star(),
        frameworks: stage.frameworks(),
        levels: answers.clone(),
    })
}

/// The ROI calculator's assumptions; every one is shown and can be changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoiAssumptions {
    /// Annual recurring revenue.
    pub arr: f64,
    /// Share of ARR lost to churn in a year, in percent.
    pub annual_churn_pct: f64,
    /// Service contacts a year.
    pub contacts_per_year: f64,
    pub cost_per_contact: f64,
    /// Share of service contacts that lead to a sale today, in percent.
    pub service_to_sales_pct: f64,
    pub average_deal_value: f64,
    /// How much of the churn removing obstacles prevents, in percent (default 25).
    #[serde(default = "twenty_five")]
    pub churn_reduction_pct: f64,
    /// Relative lift in service-to-sales conversion, in percent (default 50).
    #[serde(default = "fifty")]
    pub cross_sell_lift_pct: f64,
    /// Share of contacts resolved by governed agents, in percent (default 40).
    #[serde(default = "forty")]
    pub autonomous_pct: f64,
}

fn twenty_five() -> f64 {
    25.0
}
fn fifty() -> f64 {
    50.0
}
fn forty() -> f64 {
    40.0
}

impl Default for RoiAssumptions {
    fn default() -> Self {
        RoiAssumptions {
            arr: 10_000_000.0,
            annual_churn_pct: 12.0,
            contacts_per_year: 100_000.0,
            cost_per_contact: 6.0,
            service_to_sales_pct: 2.0,
            average_deal_value: 1_200.0,
            churn_reduction_pct: 25.0,
            cross_sell_lift_pct: 50.0,
            autonomous_pct: 40.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RoiResult {
    /// ARR × churn × churn reduction.
    pub churn_reduction: f64,
    /// Contacts × conversion × lift × deal value.
    pub cross_sell: f64,
    /// Contacts × autonomous share × cost per contact.
    pub agentic_savings: f64,
    pub total: f64,
    /// Each line as a sentence with its numbers.
    pub explained: Vec<String>,
}

impl RoiAssumptions {
    pub fn check(&self) -> Result<(), String> {
        let money = [
            ("arr", self.arr),
            ("contacts_per_year", self.contacts_per_year),
            ("cost_per_contact", self.cost_per_contact),
            ("average_deal_value", self.average_deal_value),
        ];
        for (k, v) in money {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{k} must be a number of 0 or more, not {v}"));
            }
        }
        let pct = [
            ("annual_churn_pct", self.annual_churn_pct),
            ("service_to_sales_pct", self.service_to_sales_pct),
            ("churn_reduction_pct", self.churn_reduction_pct),
            ("autonomous_pct", self.autonomous_pct),
        ];
        for (k, v) in pct {
            if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                return Err(format!("{k} is a percentage from 0 to 100, not {v}"));
            }
        }
        if !(self.cross_sell_lift_pct.is_finite()
            && (0.0..=1000.0).contains(&self.cross_sell_lift_pct))
        {
            return Err("cross_sell_lift_pct is a relative lift from 0 to 1000 %".into());
        }
        if self.service_to_sales_pct * (1.0 + self.cross_sell_lift_pct / 100.0) > 100.0 {
            return Err("service_to_sales_pct with its lift would exceed 100 %".into());
        }
        Ok(())
    }

    pub fn compute(&self) -> RoiResult {
        let churn_reduction =
            self.arr * self.annual_churn_pct / 100.0 * self.churn_reduction_pct / 100.0;
        let cross_sell = self.contacts_per_year * self.service_to_sales_pct / 100.0
            * self.cross_sell_lift_pct
            / 100.0
            * self.average_deal_value;
        let agentic_savings =
            self.contacts_per_year * self.autonomous_pct / 100.0 * self.cost_per_contact;
        RoiResult {
            churn_reduction,
            cross_sell,
            agentic_savings,
            total: churn_reduction + cross_sell + agentic_savings,
            explained: vec![
                format!(
                    "churn: {:.0} ARR × {} % churn × {} % prevented = {:.0}",
                    self.arr, self.annual_churn_pct, self.churn_reduction_pct, churn_reduction
                ),
                format!(
                    "cross-sell: {:.0} contacts × {} % converting × {} % lift × {:.0} per deal = {:.0}",
                    self.contacts_per_year,
                    self.service_to_sales_pct,
                    self.cross_sell_lift_pct,
                    self.average_deal_value,
                    cross_sell
                ),
                format!(
                    "agents: {:.0} contacts × {} % resolved autonomously × {:.2} per contact = {:.0}",
                    self.contacts_per_year, self.autonomous_pct, self.cost_per_contact, agentic_savings
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answers(levels: [u8; 5]) -> BTreeMap<String, u8> {
        QUESTIONS
            .iter()
            .zip(levels)
            .map(|(q, l)| (q.id.to_string(), l))
            .collect()
    }

    #[test]
    fn stages_and_refusals() {
        assert_eq!(assess(&answers([1; 5])).unwrap().stage, Stage::Repair);
        assert_eq!(assess(&answers([4; 5])).unwrap().score, 100.0);
        let a = assess(&answers([3, 2, 2, 2, 3])).unwrap();
        assert_eq!((a.score.round(), a.stage), (47.0, Stage::Elevate));
        assert_eq!(a.north_star, "FCR and the time to fix systemic issues");
        let mut half = answers([2; 5]);
        half.remove("ai");
        half.remove("trust");
        let e = assess(&half).unwrap_err();
        assert!(
            e.contains("half answered") && e.contains("ai, trust"),
            "{e}"
        );
        let mut bad = answers([2; 5]);
        bad.insert("trust".into(), 5);
        assert!(assess(&bad).unwrap_err().contains("1 to 4"));
    }

    #[test]
    fn roi_defaults_as_stated() {
        let r = RoiAssumptions::default().compute();
        // 10M × 12 % × 25 %; 100k × 2 % × 50 % × 1,200; 100k × 40 % × 6
        assert_eq!(r.churn_reduction, 300_000.0);
        assert_eq!(r.cross_sell, 1_200_000.0);
        assert_eq!(r.agentic_savings, 240_000.0);
        assert_eq!(r.total, 1_740_000.0);
        let bad = RoiAssumptions {
            annual_churn_pct: 140.0,
            ..RoiAssumptions::default()
        };
        assert!(bad.check().is_err());
    }

    proptest! {
        #[test]
        fn score_is_monotone(levels in proptest::array::uniform5(1u8..=4), i in 0usize..5) {
            let a = assess(&answers(levels)).unwrap();
            prop_assert!((0.0..=100.0).contains(&a.score));
            if levels[i] < 4 {
                let mut up = levels;
                up[i] += 1;
                let b = assess(&answers(up)).unwrap();
                prop_assert!(b.score > a.score && b.stage >= a.stage);
            }
        }
    }
}
