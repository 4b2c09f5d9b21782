//! The demo tenant's tickets, experiments and agents, made through the same use cases the
//! API calls, so the dashboard opens on real decisions.

use super::*;

/// The demo's remediation: tickets opened from the first at-risk alerts, one of them with
/// its fix shipped and a close refused because the account has not recovered yet.
pub(crate) fn demo_tickets(store: &dyn cxm_store::Store, tenant: &str) -> anyhow::Result<()> {
    use cxm_app::tickets;
    let api = |e: cxm_app::AppError| anyhow::anyhow!("demo tickets: {}", e.detail);
    let alerts = store.list_alerts(tenant, Some("open"), 1000)?;
    let at_risk = alerts.iter().filter(|a| a.kind == "at_risk").take(3);
    let owner = cxm_app::tickets::FromAlert {
        owner: "success-lead@demo.cxm".into(),
        severity: None,
        target_score: None,
    };
    for (i, a) in at_risk.enumerate() {
        let t =
            tickets::ticket_from_alert(store, tenant, a.id, &owner, "demo", None).map_err(api)?;
        if i == 0 {
            for s in ["in_progress", "fix_shipped"] {
                tickets::change_state(store, tenant, t.id, s, Some("demo"), "demo").map_err(api)?;
            }
            let owner = cxm_app::auth::Principal {
                tenant_id: tenant.into(),
                role: Role::Analyst,
                actor: "demo".into(),
                user: None,
            };
            // refused: the account's health has not recovered; the refusal is on the timeline
            let _ = tickets::close_ticket(store, tenant, t.id, &owner, &Default::default());
        }
    }
    Ok(())
}

/// Two agents and a day of their asks, decided by the default matrix, with two reviews done:
/// the agents, review queue and decision log pages have something to show.
/// A running onboarding experiment whose customers were exposed at sign-up (the generator
/// knows nothing of arms, so the honest result is "inconclusive"), and a draft.
pub(crate) fn demo_experiments(
    store: &dyn cxm_store::Store,
    tenant: &str,
    signups: &[(String, i64)],
) -> anyhow::Result<()> {
    use cxm_app::experiments::{self, StatusChange};
    let api = |e: cxm_app::AppError| anyhow::anyhow!("demo experiments: {}", e.detail);
    let running = experiments::create_experiment(
        store,
        tenant,
        "demo",
        json!({"id": "onboarding-checklist", "name": "Onboarding checklist in the first session", "owner": "journey-owner@demo.cxm",
            "kind": "journey", "target": "onboarding", "hypothesis": "A checklist gets new customers to activation sooner",
            "arms": [{"key": "control"}, {"key": "checklist"}], "metric": {"event": "Activated", "window_days": 3},
            "guardrails": [{"event": "Ticket Opened", "direction": "decrease", "max_relative_change": 0.25}], "mde": 0.05}),
    )
    .map_err(api)?;
    experiments::change_status(
        store,
        tenant,
        "demo",
        &running.definition.id,
        &StatusChange {
            status: "running".into(),
            arm: None,
            reason: String::new(),
        },
    )
    .map_err(api)?;
    for (user, at) in signups {
        let unit = format!("user_id:{user}");
        let identifier = cxm_domain::Identifier::parse_typed(&unit);
        let profile_id = match identifier {
            Some(i) => store.profile_for(tenant, &i)?,
            None => None,
        };
        store.expose(
            tenant,
            &cxm_store::Exposure {
                experiment_id: running.definition.id.clone(),
                arm: running.definition.arm_for(&unit).key.clone(),
                customer: unit.clone(),
                unit,
                profile_id,
                first_at_ms: *at,
            },
        )?;
    }
    experiments::create_experiment(
        store,
        tenant,
        "demo",
        json!({"id": "billing-bot-short-replies", "name": "Shorter billing replies from the bot", "owner": "support-lead@demo.cxm",
            "kind": "automation", "target": "billing-bot", "hypothesis": "Shorter answers resolve billing questions without a second contact",
            "arms": [{"key": "control"}, {"key": "short"}], "metric": {"event": "Ticket Resolved", "window_days": 7},
            "guardrails": [{"event": "Ticket Escalated", "direction": "decrease", "max_relative_change": 0.1}]}),
    )
    .map_err(api)?;
    Ok(())
}

pub(crate) fn demo_agents(store: &dyn cxm_store::Store, tenant: &str) -> anyhow::Result<()> {
    use cxm_app::agents::{self, NewAgent};
    use cxm_app::decisions::{self, AskRequest};
    use cxm_app::policies;
    let api = |e: cxm_app::AppError| anyhow::anyhow!("demo agents: {}", e.detail);
    for (name, kind) in [("billing-bot", "bot"), ("voice-line", "voice")] {
        let a = NewAgent {
            name: name.into(),
            kind: Some(kind.into()),
            description: String::new(),
            disclosure: None,
            disabled: false,
        };
        agents::register(store, tenant, "demo", &a).map_err(api)?;
    }
    let (version, policies) = policies::active_policies(store, tenant).map_err(api)?;
    let analyzer = cxm_analytics::Analyzer::new();
    let now = chrono::Utc::now().timestamp_millis();
    let asks = [
        ("billing-bot", "refund", 12.0, "the parcel was late"),
        ("billing-bot", "refund", 35.0, "charged twice for March"),
        (
            "billing-bot",
            "refund",
            120.0,
            "the annual plan renewed without notice",
        ),
        (
            "billing-bot",
            "refund",
            180.0,
            "double charge on the upgrade",
        ),
        ("billing-bot", "refund", 320.0, "cancelled within the trial"),
        (
            "billing-bot",
            "refund",
            40.0,
            "this is the third time, my lawyer will hear about it",
        ),
        ("billing-bot", "credit", 25.0, "outage last week"),
        ("voice-line", "password_reset", 0.0, "locked out"),
        ("voice-line", "address_update", 0.0, "moved house"),
        ("voice-line", "contact_change", 0.0, "new phone number"),
        ("voice-line", "refund", 20.0, "I want to speak to a human"),
        (
            "voice-line",
            "cancel_subscription",
            0.0,
            "switching to a competitor",
        ),
    ];
    let mut batch = vec![];
    let mut to_review = vec![];
    for (i, (agent, action, amount, message)) in asks.iter().enumerate() {
        let mut context = serde_json::Map::new();
        if *amount > 0.0 {
            context.insert("amount".into(), json!(amount));
            context.insert("currency".into(), json!("USD"));
        }
        context.insert("message".into(), json!(message));
        let req = AskRequest {
            agent: Some(agent.to_string()),
            action: action.to_string(),
            customer: format!("user_id:user-{:06}", 17 + i * 31),
            resource: None,
            context,
        };
        let at = now - (asks.len() - i) as i64 * 3_600_000;
        let (record, due) = decisions::decide(
            store, &analyzer, tenant, agent, &req, &policies, version, at,
        )
        .map_err(api)?;
        if record.outcome == "review" {
            to_review.push(record.id.clone());
        }
        batch.push(cxm_store::NewDecision {
            tenant_id: tenant.into(),
            actor: format!("agent:{agent}"),
            record,
            review_due_at_ms: due,
        });
    }
    store.record_decisions(&batch)?;
    // one review approved, one reversed; the rest wait in the queue
    for (id, verdict, reason) in to_review
        .iter()
        .take(2)
        .zip([
            (cxm_domain::decision::ReviewVerdict::Approved, ""),
            (
                cxm_domain::decision::ReviewVerdict::Reversed,
                "the renewal notice was sent; offer a credit instead",
            ),
        ])
        .map(|(id, (v, r))| (id, v, r))
    {
        let req = decisions::ReviewRequest {
            verdict,
            reason: reason.into(),
        };
        decisions::settle(store, tenant, id, "success-lead@demo.cxm", &req).map_err(api)?;
    }
    Ok(())
}

/// The demo's live NPS survey with an open link anyone can answer: `cxm demo` prints it, so
/// the first thing a visitor can do is answer and watch the answer arrive on the dashboard.
pub(crate) fn demo_survey(store: &dyn cxm_store::Store, tenant: &str) -> anyhow::Result<String> {
    let def: cxm_domain::survey::SurveyDefinition = serde_json::from_value(serde_json::json!({
        "name": "How are we doing?",
        "questions": [
            {"id": "nps", "type": "nps", "prompt": "How likely are you to recommend Demo Co to a friend or colleague?", "required": true},
            {"id": "why", "type": "text", "prompt": "What is the main reason for your score?"}
        ]
    }))?;
    def.validate().map_err(anyhow::Error::msg)?;
    let version = store.save_survey(tenant, "nps", &def.name, &serde_json::to_string(&def)?)?;
    let (token, hash) = cxm_app::auth::new_session_token();
    store.create_link(
        &hash,
        &cxm_store::SurveyLink {
            tenant_id: tenant.to_string(),
            survey_id: "nps".into(),
            version,
            identifier: None,
            channel: "web".into(),
            displayed_at_ms: None,
            responded_at_ms: None,
            follow_ups: 0,
        },
    )?;
    Ok(format!("/s/{token}"))
}
