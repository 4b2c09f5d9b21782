//! Maturity and ROI: the readiness self-assessment, the same five questions scored from the
//! tenant's own data (journeys with owners, verified fixes, revenue-linked metrics, governed
//! agents, signed communications) with the gaps between the two, and the ROI calculator with
//! stated assumptions next to what the tenant's data says.

use std::collections::BTreeMap;
use std::sync::Arc;

use cxm_domain::maturity::{self, Assessment, RoiAssumptions, RoiResult, Stage};
use cxm_store::{DecisionQuery, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Principal;
use crate::blocking;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

pub const DAY_MS: i64 = 86_400_000;

/// One question scored from data: the level and the facts behind it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    pub question: &'static str,
    pub level: u8,
    pub facts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Gap {
    pub question: &'static str,
    pub self_level: u8,
    pub evidence_level: u8,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MaturityView {
    #[schema(value_type = Vec<Object>)]
    pub questions: Vec<maturity::Question>,
    /// The latest self-assessment, when there is one.
    #[schema(value_type = Option<Object>)]
    pub assessment: Option<Assessment>,
    pub assessed_by: Option<String>,
    pub assessed_at_ms: Option<i64>,
    /// The same questions, answered by the tenant's data.
    #[schema(value_type = Object)]
    pub evidence: Assessment,
    pub evidence_detail: Vec<Evidence>,
    /// Where the self-assessment and the evidence differ by a level or more.
    pub gaps: Vec<Gap>,
}

pub fn level(steps: [bool; 3]) -> u8 {
    // each level needs the ones below it
    1 + steps.iter().take_while(|s| **s).count() as u8
}

/// Scores the five questions from what the tenant has actually built in cxm.
pub fn evidence(
    st: &App,
    store: &dyn Store,
    tenant: &str,
    now_ms: i64,
) -> AppResult<Vec<Evidence>> {
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .date_naive();
    let accounts = store.accounts_for_health(tenant, today)?;
    let with_arr = accounts.iter().filter(|a| a.arr > 0.0).count();
    let signals_custom = store.signal_set(tenant)?.is_some();
    let equity = st.equity.peek(tenant);
    let fitted = equity.as_ref().is_some_and(|e| e.report.fitted);
    let experiments = store.experiments(tenant)?;
    let decided = experiments
        .iter()
        .filter(|e| matches!(e.status.as_str(), "running" | "shipped" | "rolled_back"))
        .count();
    let c_suite = Evidence {
        question: "c_suite",
        level: level([
            with_arr > 0,
            fitted || signals_custom,
            fitted && decided > 0,
        ]),
        facts: vec![
            format!("{with_arr} accounts carry ARR, so revenue at risk is measured"),
            format!(
                "customer value model {}",
                if fitted {
                    "fitted"
                } else {
                    "not fitted (or not computed in the last ten minutes)"
                }
            ),
            format!(
                "health signals {}",
                if signals_custom {
                    "tuned by the team"
                } else {
                    "at their defaults"
                }
            ),
            format!("{decided} experiments started"),
        ],
    };

    let agents = store.agents(tenant)?;
    let decisions = store.decisions(
        tenant,
        &DecisionQuery {
            agent: None,
            outcome: None,
            review_status: None,
            customer: None,
            before_ms: None,
            limit: 500,
        },
    )?;
    let reviewed = decisions
        .iter()
        .filter(|d| d.reviewed_at_ms.is_some())
        .count();
    let reported = decisions.iter().filter(|d| d.resolved.is_some()).count();
    let policies = store.policy_sets(tenant)?.len();
    let ai = Evidence {
        question: "ai",
        level: level([
            !agents.is_empty(),
            !decisions.is_empty() && reviewed > 0,
            reported > 0 && policies > 0,
        ]),
        facts: vec![
            format!("{} agents registered", agents.len()),
            format!(
                "{} recent decisions logged, {reviewed} reviewed by a human",
                decisions.len()
            ),
            format!("{reported} outcomes reported (resolution measured)"),
            format!("{policies} policy versions saved"),
        ],
    };

    let journeys = store.list_journeys(tenant)?;
    let owned = journeys
        .iter()
        .filter(|j| !j.owner.trim().is_empty())
        .count();
    let checks = store.journey_check_runs(tenant, None, 1)?.len();
    let journey_tests = experiments
        .iter()
        .filter(|e| e.definition.contains("\"kind\":\"journey\""))
        .count();
    let journeys_ev = Evidence {
        question: "journeys",
        level: level([
            !journeys.is_empty(),
            !journeys.is_empty() && owned == journeys.len(),
            checks > 0 || journey_tests > 0,
        ]),
        facts: vec![
            format!("{} journeys, {owned} with an owner", journeys.len()),
            format!(
                "synthetic journey checks {}",
                if checks > 0 { "run" } else { "never run" }
            ),
            format!("{journey_tests} experiments on journeys"),
        ],
    };

    let tickets = store.list_tickets(tenant, None, 1000)?;
    let closed: Vec<_> = tickets.iter().filter(|t| t.state == "closed").collect();
    let verified = closed
        .iter()
        .filter(|t| t.verdict.as_ref().is_some_and(|v| v["passed"] == true))
        .count();
    let alignment = Evidence {
        question: "alignment",
        level: level([
            !tickets.is_empty(),
            verified > 0,
            verified >= 3 && verified * 2 >= closed.len(),
        ]),
        facts: vec![
            format!("{} remediation tickets with owners", tickets.len()),
            format!("{} closed, {verified} on verified evidence", closed.len()),
        ],
    };

    let retention = store.retention(tenant)?;
    let keys = store.signing_keys(tenant)?;
    let checkpoints = store.checkpoints(tenant)?.len();
    let disclosures = agents
        .iter()
        .filter(|a| !a.disclosure.trim().is_empty())
        .count();
    let trust = Evidence {
        question: "trust",
        level: level([
            !retention.is_empty() || disclosures > 0,
            !keys.is_empty() && disclosures == agents.len(),
            checkpoints > 0 && !retention.is_empty(),
        ]),
        facts: vec![
            format!("retention set for {} data classes", retention.len()),
            format!(
                "{disclosures} of {} agents carry a disclosure",
                agents.len()
            ),
            format!("{} signing keys", keys.len()),
            format!("{checkpoints} signed audit checkpoints"),
        ],
    };
    Ok(vec![c_suite, ai, journeys_ev, alignment, trust])
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedAssessment {
    pub answers: BTreeMap<String, u8>,
}

pub fn view(st: &App, store: &dyn Store, tenant: &str, now_ms: i64) -> AppResult<MaturityView> {
    let detail = evidence(st, store, tenant, now_ms)?;
    let levels: BTreeMap<String, u8> = detail
        .iter()
        .map(|e| (e.question.to_string(), e.level))
        .collect();
    let evidence = maturity::assess(&levels).map_err(|e| AppError::new(ErrorCode::Internal, e))?;
    let doc = store.document(tenant, "assessment")?;
    let (assessment, by, at) = match doc {
        Some(d) => {
            let saved: SavedAssessment = serde_json::from_str(&d.body).map_err(|e| {
                AppError::new(ErrorCode::Internal, format!("stored assessment: {e}"))
            })?;
            (
                Some(
                    maturity::assess(&saved.answers)
                        .map_err(|e| AppError::new(ErrorCode::Internal, e))?,
                ),
                Some(d.updated_by),
                Some(d.updated_at_ms),
            )
        }
        None => (None, None, None),
    };
    let gaps = match &assessment {
        Some(a) => detail
            .iter()
            .filter_map(|e| {
                let mine = a.levels.get(e.question).copied().unwrap_or(0);
                (mine.abs_diff(e.level) >= 1).then(|| Gap {
                    question: e.question,
                    self_level: mine,
                    evidence_level: e.level,
                    note: if mine > e.level {
                        format!(
                            "the self-assessment says level {mine}; the data shows level {}: {}",
                            e.level,
                            e.facts.join("; ")
                        )
                    } else {
                        format!(
                            "the data shows more than claimed (level {} against {mine})",
                            e.level
                        )
                    },
                })
            })
            .collect(),
        None => vec![],
    };
    Ok(MaturityView {
        questions: maturity::QUESTIONS.to_vec(),
        assessment,
        assessed_by: by,
        assessed_at_ms: at,
        evidence,
        evidence_detail: detail,
        gaps,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentInput {
    /// Question id (c_suite, ai, journeys, alignment, trust) → answer 1 to 4.
    pub answers: BTreeMap<String, u8>,
}

pub async fn save_assessment(
    st: &Arc<App>,
    p: &Principal,
    input: AssessmentInput,
) -> AppResult<MaturityView> {
    p.require_analyst()?;
    maturity::assess(&input.answers).map_err(|e| AppError::new(ErrorCode::InvalidParameter, e))?;
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    let now = chrono::Utc::now().timestamp_millis();
    let st2 = st.clone();
    let _ = crate::equity::current(st, &p.tenant_id).await?;
    blocking(st, move |s| {
        let body = serde_json::to_string(&SavedAssessment {
            answers: input.answers.clone(),
        })
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
        s.save_document(&t, "assessment", &body, &actor)?;
        s.append_audit(
            &t,
            &cxm_domain::audit::NewAuditEntry {
                actor: actor.clone(),
                kind: "maturity.assessed".into(),
                subject: "assessment".into(),
                body: cxm_domain::decision::canonical(&json!({"answers": input.answers})),
            },
        )?;
        view(&st2, s, &t, now)
    })
    .await
}

/// A value the ROI can take from the tenant's data, and where it came from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Measured {
    pub field: &'static str,
    pub value: f64,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoiView {
    /// The stated assumptions (saved by the tenant, or the defaults).
    pub assumptions: RoiAssumptions,
    pub result: RoiResult,
    /// What the tenant's data says for the assumptions it can speak to.
    pub measured: Vec<Measured>,
    /// The assumptions with every measured value put in.
    pub with_data: RoiAssumptions,
    pub result_with_data: RoiResult,
}

/// Counts events of some names in the last year: (count, distinct customers).
pub fn yearly(
    store: &dyn Store,
    tenant: &str,
    names: &[&str],
    now_ms: i64,
) -> AppResult<(u64, std::collections::HashMap<String, Vec<i64>>)> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let times = crate::experiments::event_times(store, tenant, &names)?;
    let from = now_ms - 365 * DAY_MS;
    let mut n = 0;
    let mut per: std::collections::HashMap<String, Vec<i64>> = std::collections::HashMap::new();
    for ((p, _), ts) in times {
        for t in ts.into_iter().filter(|t| *t > from && *t <= now_ms) {
            n += 1;
            per.entry(p.clone()).or_default().push(t);
        }
    }
    Ok((n, per))
}

pub fn roi_view(st: &App, store: &dyn Store, tenant: &str, now_ms: i64) -> AppResult<RoiView> {
    let assumptions: RoiAssumptions = match store.document(tenant, "roi")? {
        Some(d) => serde_json::from_str(&d.body).map_err(|e| {
            AppError::new(ErrorCode::Internal, format!("stored roi assumptions: {e}"))
        })?,
        None => RoiAssumptions::default(),
    };
    let mut measured = vec![];
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .date_naive();
    let accounts = store.accounts_for_health(tenant, today)?;
    let arr: f64 = accounts.iter().map(|a| a.arr).sum();
    if arr > 0.0 {
        measured.push(Measured {
            field: "arr",
            value: arr,
            source: format!("sum of the ARR trait of {} accounts", accounts.len()),
        });
    }
    let (contacts, by_customer) = yearly(
        store,
        tenant,
        &[
            "Ticket Opened",
            "Chat Started",
            "Call Started",
            "Conversation Started",
            "Email Received",
        ],
        now_ms,
    )?;
    if contacts > 0 {
        // scale the observed span up to a year
        let first = by_customer
            .values()
            .flatten()
            .min()
            .copied()
            .unwrap_or(now_ms);
        let span_days = ((now_ms - first) as f64 / DAY_MS as f64).clamp(1.0, 365.0);
        measured.push(Measured {
            field: "contacts_per_year",
            value: (contacts as f64 * 365.0 / span_days).round(),
            source: format!(
                "{contacts} service contacts in the last {span_days:.0} days, scaled to a year"
            ),
        });
        // service-to-sales: contacts followed by a purchase from the same customer within 30 days
        let settings = crate::equity::settings(store, tenant)?;
        let events: Vec<&str> = settings.events.iter().map(String::as_str).collect();
        let (_, buys) = yearly(store, tenant, &events, now_ms)?;
        let mut converted = 0u64;
        for (p, ts) in &by_customer {
            if let Some(b) = buys.get(p) {
                converted += ts
                    .iter()
                    .filter(|t| b.iter().any(|x| *x > **t && *x <= **t + 30 * DAY_MS))
                    .count() as u64;
            }
        }
        measured.push(Measured {
            field: "service_to_sales_pct",
            value: converted as f64 / contacts as f64 * 100.0,
            source: format!(
                "{converted} of {contacts} contacts followed by a purchase within 30 days"
            ),
        });
    }
    // churn: accounts that sent a churn notice in the last year, over all accounts
    let churn_names: Vec<String> = [
        "Churn Notice",
        "Subscription Cancelled",
        "Account Cancelled",
    ]
    .map(String::from)
    .to_vec();
    let upto = store.max_event_seq()?;
    let (mut after, mut churned) = (0, std::collections::HashSet::new());
    loop {
        let page = store.amount_events(tenant, after, upto, &churn_names, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        churned.extend(
            page.into_iter()
                .filter(|e| e.ts_ms > now_ms - 365 * DAY_MS)
                .filter_map(|e| e.group_id),
        );
    }
    if !accounts.is_empty() && !churned.is_empty() {
        measured.push(Measured {
            field: "annual_churn_pct",
            value: (churned.len() as f64 / accounts.len() as f64 * 100.0).min(100.0),
            source: format!(
                "{} of {} accounts sent a churn notice in the last year",
                churned.len(),
                accounts.len()
            ),
        });
    }
    if let Some(e) = st.equity.peek(tenant) {
        if e.report.fitted && e.report.transactions > 0 {
            let mean = e.by_customer.values().map(|c| c.total_spend).sum::<f64>()
                / e.report.transactions as f64;
            measured.push(Measured {
                field: "average_deal_value",
                value: mean,
                source: format!("mean of {} purchases", e.report.transactions),
            });
        }
    }
    let stats = crate::agents::agent_stats(store, tenant)?;
    let (resolved, judged): (usize, usize) = stats
        .iter()
        .map(|a| (a.kpis.resolved, a.kpis.resolved + a.kpis.not_resolved))
        .fold((0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
    if judged > 0 {
        measured.push(Measured {
            field: "autonomous_pct",
            value: resolved as f64 / judged as f64 * 100.0,
            source: format!("agents' resolution rate: {resolved} of {judged} judged intents resolved without a human or a repeat contact"),
        });
    }
    let mut with_data = assumptions.clone();
    for m in &measured {
        let v = m.value;
        match m.field {
            "arr" => with_data.arr = v,
            "contacts_per_year" => with_data.contacts_per_year = v,
            "service_to_sales_pct" => with_data.service_to_sales_pct = v,
            "annual_churn_pct" => with_data.annual_churn_pct = v,
            "average_deal_value" => with_data.average_deal_value = v,
            "autonomous_pct" => with_data.autonomous_pct = v,
            _ => {}
        }
    }
    // a measured conversion can make the lifted rate exceed 100 %: cap the lift
    if with_data.check().is_err() && with_data.service_to_sales_pct > 0.0 {
        with_data.cross_sell_lift_pct = with_data
            .cross_sell_lift_pct
            .min((100.0 / with_data.service_to_sales_pct - 1.0) * 100.0);
    }
    Ok(RoiView {
        result: assumptions.compute(),
        assumptions,
        measured,
        result_with_data: with_data.compute(),
        with_data,
    })
}

pub async fn save_roi(st: &Arc<App>, p: &Principal, a: RoiAssumptions) -> AppResult<RoiView> {
    p.require_analyst()?;
    a.check()
        .map_err(|e| AppError::new(ErrorCode::InvalidParameter, e))?;
    let _ = crate::equity::current(st, &p.tenant_id).await?;
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    let now = chrono::Utc::now().timestamp_millis();
    let st2 = st.clone();
    blocking(st, move |s| {
        let body = serde_json::to_string(&a)
            .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
        s.save_document(&t, "roi", &body, &actor)?;
        s.append_audit(
            &t,
            &cxm_domain::audit::NewAuditEntry {
                actor: actor.clone(),
                kind: "roi.assumptions".into(),
                subject: "roi".into(),
                body: cxm_domain::decision::canonical(
                    &serde_json::to_value(&a).unwrap_or_default(),
                ),
            },
        )?;
        roi_view(&st2, s, &t, now)
    })
    .await
}

/// The stage names, for pages.
pub fn stages() -> [(Stage, &'static str); 4] {
    [
        (Stage::Repair, Stage::Repair.also_called()),
        (Stage::Elevate, Stage::Elevate.also_called()),
        (Stage::Optimize, Stage::Optimize.also_called()),
        (Stage::Differentiate, Stage::Differentiate.also_called()),
    ]
}
