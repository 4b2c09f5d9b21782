//! Remediation tickets: states and the moves between them, severities with their SLAs, and
//! the verification check a ticket carries from the day it is opened. A ticket closes only
//! when its check passes on data (or an admin overrides, which is logged): that is what stops
//! fixes being declared rather than proven.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Open,
    InProgress,
    FixShipped,
    Verifying,
    Closed,
    Reopened,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::InProgress => "in_progress",
            TicketState::FixShipped => "fix_shipped",
            TicketState::Verifying => "verifying",
            TicketState::Closed => "closed",
            TicketState::Reopened => "reopened",
        }
    }

    pub fn parse(s: &str) -> Option<TicketState> {
        [
            TicketState::Open,
            TicketState::InProgress,
            TicketState::FixShipped,
            TicketState::Verifying,
            TicketState::Closed,
            TicketState::Reopened,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// Whether a ticket may move from `self` to `to` by a state change. Closing goes through
    /// [`may_close`] instead, because it needs evidence.
    pub fn may_move_to(self, to: TicketState) -> bool {
        use TicketState::*;
        matches!(
            (self, to),
            (Open | Reopened, InProgress)
                | (InProgress, FixShipped)
                | (FixShipped, Verifying)
                | (Verifying, InProgress)
                | (Closed, Reopened)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Hours to a verified fix unless the ticket names its own SLA.
    pub fn default_sla_hours(self) -> u32 {
        match self {
            Severity::Critical => 24,
            Severity::High => 72,
            Severity::Medium => 7 * 24,
            Severity::Low => 30 * 24,
        }
    }
}

/// What the ticket is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    Manual,
    Theme {
        theme_id: String,
    },
    Alert {
        alert_id: i64,
    },
    Detractor {
        response_id: String,
    },
    JourneyStage {
        journey_id: String,
        stage_id: String,
    },
    /// Opened by a ticket rule about a subject (an account, a theme).
    Rule {
        rule: String,
        subject: String,
    },
}

/// The evidence a ticket needs before it may close, chosen when it is opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The theme's answers over the last 7 days fall to at most `per_week`.
    ThemeVolumeBelow { theme_id: String, per_week: u64 },
    /// The journey stage's drop-off falls to at most `percent`.
    StageDropOffBelow {
        journey_id: String,
        stage_id: String,
        percent: f64,
    },
    /// The account's health recovers to at least `score`.
    AccountHealthAbove { account: String, score: f64 },
    /// The latest run of the synthetic journey check `name` passed.
    JourneyCheckPasses { name: String },
    /// CSAT (share of 4–5) of the affected accounts' answers over the last `days` reaches
    /// `percent`, over at least `min_answers` answers.
    CsatRecovers {
        accounts: Vec<String>,
        percent: f64,
        days: u32,
        min_answers: u32,
    },
}

impl Check {
    /// Names the first impossible setting.
    pub fn validate(&self) -> Result<(), String> {
        let pct = |p: f64, what: &str| {
            if (0.0..=100.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("check.{what} must be 0 to 100"))
            }
        };
        match self {
            Check::JourneyCheckPasses { name } if name.trim().is_empty() => {
                Err("check.name is required".into())
            }
            Check::ThemeVolumeBelow { theme_id, .. } if theme_id.trim().is_empty() => {
                Err("check.theme_id is required".into())
            }
            Check::StageDropOffBelow {
                journey_id,
                stage_id,
                percent,
            } => {
                if journey_id.trim().is_empty() || stage_id.trim().is_empty() {
                    return Err("check.journey_id and check.stage_id are required".into());
                }
                pct(*percent, "percent")
            }
            Check::AccountHealthAbove { account, score } => {
                if account.trim().is_empty() {
                    return Err("check.account is required".into());
                }
                pct(*score, "score")
            }
            Check::CsatRecovers {
                accounts,
                percent,
                days,
                min_answers,
            } => {
                if accounts.is_empty() || accounts.len() > 10_000 {
                    return Err("check.accounts needs 1 to 10000 accounts".into());
                }
                if !(1..=365).contains(days) {
                    return Err("check.days must be 1 to 365".into());
                }
                if *min_answers == 0 {
                    return Err("check.min_answers must be at least 1".into());
                }
                pct(*percent, "percent")
            }
            _ => Ok(()),
        }
    }

    /// Compares what was observed with the target. `observed` is None when there is no data
    /// to judge by, which never passes.
    pub fn judge(&self, observed: Option<f64>, answers: Option<u64>) -> Verdict {
        let (passed, target, what) = match (self, observed) {
            (_, None) => (false, f64::NAN, "no data yet to judge by".to_string()),
            (Check::ThemeVolumeBelow { per_week, .. }, Some(v)) => (
                v <= *per_week as f64,
                *per_week as f64,
                format!("{v} answers in the last 7 days; needs at most {per_week}"),
            ),
            (Check::StageDropOffBelow { percent, .. }, Some(v)) => (
                v <= *percent,
                *percent,
                format!("drop-off {v}%; needs at most {percent}%"),
            ),
            (Check::JourneyCheckPasses { name }, Some(v)) => (
                v >= 1.0,
                1.0,
                format!(
                    "the latest run of journey check {name:?} {}",
                    if v >= 1.0 { "passed" } else { "failed" }
                ),
            ),
            (Check::AccountHealthAbove { score, .. }, Some(v)) => (
                v >= *score,
                *score,
                format!("health {v}; needs at least {score}"),
            ),
            (
                Check::CsatRecovers {
                    percent,
                    min_answers,
                    days,
                    ..
                },
                Some(v),
            ) => {
                let n = answers.unwrap_or(0);
                let enough = n >= u64::from(*min_answers);
                (
                    enough && v >= *percent,
                    *percent,
                    if enough {
                        format!(
                            "CSAT {v}% over {n} answers in {days} days; needs at least {percent}%"
                        )
                    } else {
                        format!("only {n} answers in {days} days; needs {min_answers} to judge")
                    },
                )
            }
        };
        Verdict {
            passed,
            observed,
            target: target.is_finite().then_some(target),
            detail: what,
        }
    }
}

/// Who gets the tickets a rule opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    pub owner: String,
    pub severity: Severity,
}

/// Detractors (NPS 0–6, CSAT ≤ 2) from accounts worth at least `min_arr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetractorRule {
    pub min_arr: f64,
    #[serde(flatten)]
    pub target: RuleTarget,
}

/// Themes whose last 7 days grew more than `min_growth_pct` on the 7 before, with at least
/// `min_answers` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThemeRule {
    pub min_growth_pct: f64,
    pub min_answers: u64,
    #[serde(flatten)]
    pub target: RuleTarget,
}

/// When cxm opens tickets by itself; each rule opens at most one unclosed ticket per subject
/// (account or theme).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRules {
    /// Every at-risk alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_risk: Option<RuleTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_account_detractors: Option<DetractorRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growing_themes: Option<ThemeRule>,
}

impl TicketRules {
    pub fn validate(&self) -> Result<(), String> {
        let targets = [
            ("at_risk", self.at_risk.as_ref()),
            (
                "large_account_detractors",
                self.large_account_detractors.as_ref().map(|r| &r.target),
            ),
            (
                "growing_themes",
                self.growing_themes.as_ref().map(|r| &r.target),
            ),
        ];
        for (name, t) in targets {
            if let Some(t) = t {
                if t.owner.trim().is_empty() || t.owner.chars().count() > 200 {
                    return Err(format!("{name}.owner is required: who gets these tickets?"));
                }
            }
        }
        if let Some(r) = &self.large_account_detractors {
            if !(r.min_arr.is_finite() && r.min_arr >= 0.0) {
                return Err("large_account_detractors.min_arr must be 0 or more".into());
            }
        }
        if let Some(r) = &self.growing_themes {
            if !(r.min_growth_pct > 0.0 && r.min_growth_pct <= 10_000.0) {
                return Err(
                    "growing_themes.min_growth_pct must be more than 0 and at most 10000".into(),
                );
            }
            if r.min_answers == 0 {
                return Err("growing_themes.min_answers must be at least 1".into());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    pub passed: bool,
    pub observed: Option<f64>,
    pub target: Option<f64>,
    pub detail: String,
}

/// Whether a ticket in `state` may close on this verdict: the fix must have shipped (the
/// ticket is `fix_shipped` or `verifying`) and the check must pass.
pub fn may_close(state: TicketState, verdict: &Verdict) -> Result<(), String> {
    if !matches!(state, TicketState::FixShipped | TicketState::Verifying) {
        return Err(format!(
            "a ticket closes after its fix shipped (state fix_shipped or verifying); this one is {}",
            state.as_str()
        ));
    }
    if !verdict.passed {
        return Err(format!("the verification check fails: {}", verdict.detail));
    }
    Ok(())
}

/// SLA status of a ticket: `active` (running), `hit`, `missed`, or `at_risk` (running with
/// less than a fifth of the time left).
pub fn sla_status(
    created_ms: i64,
    due_ms: i64,
    closed_ms: Option<i64>,
    now_ms: i64,
) -> &'static str {
    match closed_ms {
        Some(c) if c <= due_ms => "hit",
        Some(_) => "missed",
        None if now_ms > due_ms => "missed",
        None if (due_ms - now_ms) * 5 < (due_ms - created_ms) => "at_risk",
        None => "active",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_needs_a_shipped_fix_and_a_passing_check() {
        let check = Check::ThemeVolumeBelow {
            theme_id: "th_1".into(),
            per_week: 5,
        };
        let failing = check.judge(Some(12.0), None);
        let passing = check.judge(Some(3.0), None);
        assert!(!failing.passed && passing.passed);
        assert!(may_close(TicketState::Open, &passing)
            .unwrap_err()
            .contains("after its fix shipped"));
        assert!(may_close(TicketState::Verifying, &failing)
            .unwrap_err()
            .contains("12 answers"));
        assert_eq!(may_close(TicketState::FixShipped, &passing), Ok(()));
        assert!(!check.judge(None, None).passed, "no data never passes");
    }

    #[test]
    fn states_move_only_forward_or_back_to_work() {
        use TicketState::*;
        assert!(Open.may_move_to(InProgress));
        assert!(!Open.may_move_to(Closed), "closing is not a plain move");
        assert!(!Open.may_move_to(Verifying));
        assert!(Verifying.may_move_to(InProgress));
        assert!(Closed.may_move_to(Reopened));
        assert_eq!(TicketState::parse("fix_shipped"), Some(FixShipped));
        assert_eq!(TicketState::parse("done"), None);
    }

    #[test]
    fn ticket_rules_parse_and_validate() {
        let r: TicketRules = serde_json::from_value(serde_json::json!({
            "at_risk": {"owner": "cs-lead", "severity": "high"},
            "large_account_detractors": {"min_arr": 50000, "owner": "cs-lead", "severity": "medium"},
            "growing_themes": {"min_growth_pct": 50, "min_answers": 10, "owner": "cx-ops", "severity": "medium"}
        }))
        .unwrap();
        assert_eq!(r.validate(), Ok(()));
        let mut bad = r.clone();
        bad.growing_themes.as_mut().unwrap().min_growth_pct = 0.0;
        assert!(bad.validate().unwrap_err().contains("min_growth_pct"));
        bad = r.clone();
        bad.at_risk.as_mut().unwrap().owner = " ".into();
        assert!(bad.validate().unwrap_err().contains("at_risk.owner"));
        assert!(
            serde_json::from_value::<TicketRules>(serde_json::json!({"every_ticket": {}})).is_err()
        );
    }

    #[test]
    fn csat_needs_enough_answers_and_checks_validate() {
        let c = Check::CsatRecovers {
            accounts: vec!["a".into()],
            percent: 80.0,
            days: 30,
            min_answers: 10,
        };
        assert!(!c.judge(Some(100.0), Some(3)).passed);
        assert!(c.judge(Some(85.0), Some(12)).passed);
        assert!(Check::StageDropOffBelow {
            journey_id: "j".into(),
            stage_id: "s".into(),
            percent: 140.0
        }
        .validate()
        .is_err());
        assert!(Check::AccountHealthAbove {
            account: " ".into(),
            score: 50.0
        }
        .validate()
        .is_err());
        assert_eq!(sla_status(0, 100, None, 50), "active");
        assert_eq!(sla_status(0, 100, None, 90), "at_risk");
        assert_eq!(sla_status(0, 100, None, 101), "missed");
        assert_eq!(sla_status(0, 100, Some(99), 500), "hit");
    }
}
