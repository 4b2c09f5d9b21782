//! Remediation tickets over HTTP: opened by hand or from an alert, each with the check that
//! must pass before it closes; the check is evaluated on data whenever someone verifies or
//! tries to close, and a failed close answers 409 `verification_failed` (an admin may
//! override, and the override is on the ticket's timeline).

use chrono::Utc;
use cxm_domain::ticket::{self, Check, Severity, Source, TicketRules, TicketState, Verdict};
use cxm_store::{Store, Ticket, TicketChange, TicketEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Principal;
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Impact {
    #[serde(default)]
    pub customers: u64,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub arr: f64,
    /// The customers who raised the issue, as typed identifiers (`user_id:u1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    /// Sent to those customers and the accounts' members when the ticket closes, and
    /// recorded on their timelines (closing the loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_loop_message: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Who fixes it.
    pub owner: String,
    pub severity: Severity,
    #[serde(default = "manual")]
    pub source: Source,
    /// What must be true on data before the ticket may close.
    pub check: Check,
    #[serde(default)]
    pub impact: Impact,
    /// Hours to a verified fix (default by severity: critical 24, high 72, medium 168, low 720).
    pub sla_hours: Option<u32>,
}

pub fn manual() -> Source {
    Source::Manual
}

pub fn text_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max
}

/// Raises a low or medium ticket one step when it affects a customer or account in the top
/// value tier, and says so in its description. `value` is the tenant's computed equity, when
/// there is one.
pub fn raise_for_value(
    store: &dyn Store,
    tenant: &str,
    value: Option<&crate::equity::Computed>,
    t: &mut NewTicket,
) -> AppResult<()> {
    let Some(c) = value.filter(|c| c.report.fitted) else {
        return Ok(());
    };
    let Some(top) = c.report.tiers.first().map(|t| t.name.clone()) else {
        return Ok(());
    };
    let mut why = t
        .impact
        .accounts
        .iter()
        .find(|a| c.account_tier.get(*a) == Some(&top))
        .map(|a| format!("account {a} is in the {top} value tier"));
    if why.is_none() {
        for i in &t.impact.identifiers {
            let Some(id) = cxm_domain::Identifier::parse_typed(i) else {
                continue;
            };
            if let Some(p) = store.profile_for(tenant, &id)? {
                if let Some(v) = crate::equity::value_of(c, &p).filter(|v| v.value.tier == top) {
                    why = Some(format!("{i}: {}", v.value.reason));
                    break;
                }
            }
        }
    }
    let Some(why) = why else { return Ok(()) };
    let raised = match t.severity {
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        _ => return Ok(()),
    };
    t.description = format!(
        "{}\n\nSeverity raised from {} to {}: {why}.",
        t.description.trim_end(),
        json(&t.severity).as_str().unwrap_or(""),
        json(&raised).as_str().unwrap_or("")
    )
    .trim_start()
    .to_string();
    t.severity = raised;
    Ok(())
}

/// Validates and stores a ticket, with the check's first verdict.
pub fn open(store: &dyn Store, tenant: &str, t: &NewTicket, actor: &str) -> AppResult<Ticket> {
    let mut row = build(store, tenant, t, actor)?;
    row.id = store.create_ticket(tenant, &row)?;
    crate::webhooks::emit(store, tenant, "ticket.created", &row);
    Ok(row)
}

/// Opens a ticket for a rule unless an unclosed one with the same key exists.
pub fn open_once(
    store: &dyn Store,
    tenant: &str,
    t: &NewTicket,
    key: &str,
) -> AppResult<Option<Ticket>> {
    let mut row = build(store, tenant, t, "cxm")?;
    let Some(id) = store.create_ticket_once(tenant, &row, key)? else {
        return Ok(None);
    };
    row.id = id;
    crate::webhooks::emit(store, tenant, "ticket.created", &row);
    Ok(Some(row))
}

/// Validates a new ticket and measures its check once; nothing is stored.
pub fn build(store: &dyn Store, tenant: &str, t: &NewTicket, actor: &str) -> AppResult<Ticket> {
    if !text_ok(&t.title, 200) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "title must be 1 to 200 characters",
        ));
    }
    if !text_ok(&t.owner, 200) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "owner is required: who fixes this?",
        ));
    }
    if t.description.chars().count() > 10_000 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "description is limited to 10000 characters",
        ));
    }
    if t.sla_hours.is_some_and(|h| !(1..=24 * 366).contains(&h)) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "sla_hours must be 1 to 8784",
        ));
    }
    t.check
        .validate()
        .map_err(|e| AppError::new(ErrorCode::InvalidParameter, e))?;
    if t.impact.identifiers.len() > 1000 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "impact.identifiers is limited to 1000",
        ));
    }
    if let Some(bad) = t
        .impact
        .identifiers
        .iter()
        .find(|i| cxm_domain::Identifier::parse_typed(i).is_none())
    {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            format!("impact.identifiers: {bad:?} is not a typed identifier like user_id:u1"),
        ));
    }
    if t.impact
        .close_loop_message
        .as_ref()
        .is_some_and(|m| m.trim().is_empty() || m.chars().count() > 2000)
    {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "impact.close_loop_message must be 1 to 2000 characters",
        ));
    }
    let verdict = evaluate(store, tenant, &t.check)?;
    let sla_hours = t
        .sla_hours
        .unwrap_or_else(|| t.severity.default_sla_hours());
    let now = Utc::now().timestamp_millis();
    if let Check::ThemeVolumeBelow { theme_id, .. } = &t.check {
        let themes = crate::themes::list(store, tenant, 7, true)?;
        if !themes.themes.iter().any(|th| &th.id == theme_id) {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                format!("check names no theme {theme_id}"),
            ));
        }
    }
    let row = Ticket {
        id: 0,
        title: t.title.trim().to_string(),
        description: t.description.clone(),
        owner: t.owner.trim().to_string(),
        severity: json(&t.severity).as_str().unwrap_or("medium").to_string(),
        state: TicketState::Open.as_str().into(),
        source: json(&t.source),
        check: json(&t.check),
        impact: json(&t.impact),
        sla_hours: i64::from(sla_hours),
        due_at_ms: now + i64::from(sla_hours) * 3_600_000,
        verdict: Some(json(&verdict)),
        created_by: actor.to_string(),
        created_at_ms: now,
        updated_at_ms: now,
        closed_at_ms: None,
    };
    Ok(row)
}

/// The stored form of the small serde types a ticket keeps (they always serialise).
pub fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Measures what the check looks at, now.
pub fn evaluate(store: &dyn Store, tenant: &str, check: &Check) -> AppResult<Verdict> {
    let today = Utc::now().date_naive();
    Ok(match check {
        Check::ThemeVolumeBelow { theme_id, .. } => {
            let from = (today - chrono::Days::new(6)).to_string();
            let days = store.theme_days(tenant, &from, &today.to_string())?;
            let n: u64 = days
                .iter()
                .filter(|d| &d.theme_id == theme_id)
                .map(|d| d.answers)
                .sum();
            check.judge(Some(n as f64), None)
        }
        Check::StageDropOffBelow {
            journey_id,
            stage_id,
            ..
        } => {
            let j = store.journey(tenant, journey_id, None)?.ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidParameter,
                    format!("check names no journey {journey_id}"),
                )
            })?;
            let m = crate::journeys::metrics(store, tenant, &j, Utc::now())?;
            let stage = crate::journeys::stage_by_id(&m, stage_id).ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidParameter,
                    format!("journey {journey_id} has no stage {stage_id}"),
                )
            })?;
            check.judge(stage.drop_off_pct, None)
        }
        Check::JourneyCheckPasses { name } => {
            let last = store.journey_check_runs(tenant, Some(name), 1)?;
            check.judge(last.first().map(|r| if r.passed { 1.0 } else { 0.0 }), None)
        }
        Check::AccountHealthAbove { account, .. } => {
            let h = store.account_health_one(tenant, account)?;
            check.judge(h.map(|h| h.score), None)
        }
        Check::CsatRecovers { accounts, days, .. } => {
            let since = Utc::now().timestamp_millis() - i64::from(*days) * 86_400_000;
            let (top2, n) = store.csat_of_accounts(tenant, accounts, since)?;
            let pct = (n > 0).then(|| (1000.0 * top2 as f64 / n as f64).round() / 10.0);
            check.judge(pct, Some(n))
        }
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// active, at_risk (less than a fifth of the SLA left), hit or missed
    pub sla_status: String,
}

pub fn view(t: Ticket) -> TicketView {
    let sla = ticket::sla_status(
        t.created_at_ms,
        t.due_at_ms,
        t.closed_at_ms,
        Utc::now().timestamp_millis(),
    );
    TicketView {
        ticket: t,
        sla_status: sla.to_string(),
    }
}

pub fn not_viewer(p: &Principal) -> AppResult<()> {
    if p.role == cxm_store::Role::Viewer {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "the viewer role cannot change tickets",
        ));
    }
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    pub state: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketList {
    pub tickets: Vec<TicketView>,
    pub obstacle_removal: ObstacleRemoval,
}

/// How fast obstacles are really removed: fixes whose check passed when the ticket closed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ObstacleRemoval {
    /// Tickets closed on a passing check in the last 30 days (overrides do not count).
    pub verified_fixes_30d: u64,
    /// Median hours from opening to a verified close, over those.
    pub median_hours_to_verified_fix: Option<f64>,
    pub open_tickets: u64,
}

pub fn obstacle_removal(tickets: &[Ticket], now_ms: i64) -> ObstacleRemoval {
    let since = now_ms - 30 * 86_400_000;
    let mut hours: Vec<f64> = tickets
        .iter()
        .filter(|t| t.state == "closed" && t.verdict.as_ref().is_some_and(|v| v["passed"] == true))
        .filter_map(|t| {
            t.closed_at_ms
                .filter(|c| *c >= since)
                .map(|c| (c - t.created_at_ms) as f64 / 3_600_000.0)
        })
        .collect();
    hours.sort_by(f64::total_cmp);
    ObstacleRemoval {
        verified_fixes_30d: hours.len() as u64,
        median_hours_to_verified_fix: (!hours.is_empty())
            .then(|| (hours[hours.len() / 2] * 100.0).round() / 100.0),
        open_tickets: tickets.iter().filter(|t| t.state != "closed").count() as u64,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: TicketView,
    pub timeline: Vec<TicketEvent>,
}

pub fn find(store: &dyn Store, tenant: &str, id: i64) -> AppResult<Ticket> {
    store
        .ticket(tenant, id)?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no ticket {id}")))
}

pub fn detail(store: &dyn Store, tenant: &str, id: i64) -> AppResult<TicketDetail> {
    let t = find(store, tenant, id)?;
    Ok(TicketDetail {
        timeline: store.ticket_events(tenant, id)?,
        ticket: view(t),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    /// in_progress, fix_shipped, verifying or reopened (closing has its own route)
    pub state: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// Moves a ticket along (`open → in_progress → fix_shipped → verifying`, back to
/// `in_progress` from verifying, `closed → reopened`).
pub fn change_state(
    store: &dyn Store,
    tenant: &str,
    id: i64,
    to: &str,
    note: Option<&str>,
    actor: &str,
) -> AppResult<TicketDetail> {
    let t = find(store, tenant, id)?;
    let to_state = TicketState::parse(to).ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidParameter,
            format!("no ticket state {to:?}"),
        )
    })?;
    if to_state == TicketState::Closed {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            "close with POST /api/v1/tickets/{id}/close, which checks the evidence",
        ));
    }
    let from = TicketState::parse(&t.state).unwrap_or(TicketState::Open);
    if !from.may_move_to(to_state) {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!("a ticket cannot move from {} to {to}", t.state),
        ));
    }
    let change = TicketChange {
        from_state: t.state.clone(),
        state: to.to_string(),
        closed_at_ms: None,
        verdict: None,
        actor: actor.to_string(),
        kind: "state".into(),
        detail: json!({"from": t.state, "to": to, "note": note}),
    };
    if !store.change_ticket(tenant, id, &change)? {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "the ticket changed meanwhile; reload it",
        ));
    }
    let d = detail(store, tenant, id)?;
    crate::webhooks::emit(
        store,
        tenant,
        "ticket.state_changed",
        &json!({"ticket": d.ticket, "from": t.state, "to": to}),
    );
    Ok(d)
}

/// Evaluates the ticket's check now and records the verdict; a `fix_shipped` ticket moves to
/// `verifying`.
pub fn verify_now(
    store: &dyn Store,
    tenant: &str,
    id: i64,
    actor: &str,
) -> AppResult<(Verdict, TicketDetail)> {
    let t = find(store, tenant, id)?;
    let check: Check = serde_json::from_value(t.check.clone()).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("stored check is unreadable: {e}"),
        )
    })?;
    let verdict = evaluate(store, tenant, &check)?;
    let to = if t.state == "fix_shipped" {
        "verifying"
    } else {
        t.state.as_str()
    };
    let change = TicketChange {
        from_state: t.state.clone(),
        state: to.to_string(),
        closed_at_ms: t.closed_at_ms,
        verdict: Some(serde_json::to_value(&verdict).unwrap_or_default()),
        actor: actor.to_string(),
        kind: if verdict.passed {
            "check_passed"
        } else {
            "check_failed"
        }
        .into(),
        detail: serde_json::to_value(&verdict).unwrap_or_default(),
    };
    if !store.change_ticket(tenant, id, &change)? {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "the ticket changed meanwhile; reload it",
        ));
    }
    Ok((verdict, detail(store, tenant, id)?))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// Admins only: close although the check fails, saying why (kept on the timeline).
    #[serde(default)]
    pub override_reason: Option<String>,
}

/// Closes a ticket if its check passes now (or an admin overrides with a reason).
pub fn close_ticket(
    store: &dyn Store,
    tenant: &str,
    id: i64,
    p: &Principal,
    req: &CloseRequest,
) -> AppResult<TicketDetail> {
    let t = find(store, tenant, id)?;
    if t.state == "closed" {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            "the ticket is already closed",
        ));
    }
    let check: Check = serde_json::from_value(t.check.clone()).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("stored check is unreadable: {e}"),
        )
    })?;
    let verdict = evaluate(store, tenant, &check)?;
    let state = TicketState::parse(&t.state).unwrap_or(TicketState::Open);
    let verdict_json = serde_json::to_value(&verdict).unwrap_or_default();
    // a refused close is on the timeline and sent to webhooks, whoever asked
    let refused = |why: &str| -> AppResult<()> {
        let entry = json!({"why": why, "verdict": verdict_json});
        store.note_ticket(tenant, id, &p.actor, "close_refused", &entry)?;
        crate::webhooks::emit(
            store,
            tenant,
            "ticket.close_refused",
            &json!({"ticket_id": id, "why": why, "verdict": verdict_json}),
        );
        Ok(())
    };
    let (kind, entry) = match (
        ticket::may_close(state, &verdict),
        req.override_reason.as_deref(),
    ) {
        (Ok(()), _) => ("closed_verified", verdict_json.clone()),
        (Err(why), Some(reason)) if p.role.can_administer() && !reason.trim().is_empty() => (
            "closed_override",
            json!({"refused_because": why, "reason": reason.trim(), "verdict": verdict_json}),
        ),
        (Err(why), Some(_)) if !p.role.can_administer() => {
            refused(&why)?;
            return Err(AppError::new(
                ErrorCode::Forbidden,
                format!("only an owner or admin may override a failing check; {why}"),
            ));
        }
        (Err(why), _) => {
            refused(&why)?;
            let code = if matches!(state, TicketState::FixShipped | TicketState::Verifying) {
                ErrorCode::VerificationFailed
            } else {
                ErrorCode::InvalidTransition
            };
            return Err(AppError::new(code, why));
        }
    };
    let change = TicketChange {
        from_state: t.state.clone(),
        state: "closed".into(),
        closed_at_ms: Some(Utc::now().timestamp_millis()),
        verdict: Some(verdict_json),
        actor: p.actor.clone(),
        kind: kind.into(),
        detail: entry,
    };
    if !store.change_ticket(tenant, id, &change)? {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "the ticket changed meanwhile; reload it",
        ));
    }
    if kind == "closed_override" {
        crate::audit::audit_action(
            store,
            tenant,
            &p.actor,
            "ticket.override",
            &format!("ticket:{id}"),
            change.detail.clone(),
        )?;
    }
    close_the_loop(store, tenant, &t, &p.actor)?;
    let d = detail(store, tenant, id)?;
    crate::webhooks::emit(
        store,
        tenant,
        "ticket.closed",
        &json!({"ticket": d.ticket, "how": kind}),
    );
    Ok(d)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromAlert {
    pub owner: String,
    pub severity: Option<Severity>,
    /// The health the account must recover to (default: the bottom of the healthy band).
    pub target_score: Option<f64>,
}

/// Turns an alert into a ticket whose check is the account's health recovering.
pub fn ticket_from_alert(
    store: &dyn Store,
    tenant: &str,
    alert_id: i64,
    body: &FromAlert,
    actor: &str,
    value: Option<&crate::equity::Computed>,
) -> AppResult<Ticket> {
    let a = store
        .alert(tenant, alert_id)?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no alert {alert_id}")))?;
    let (_, set) = crate::health::signal_set(store, tenant)?;
    let mut new = alert_ticket(&a, body, set.bands.concerning_below);
    if body.severity.is_none() {
        raise_for_value(store, tenant, value, &mut new)?;
    }
    let t = open(store, tenant, &new, actor)?;
    if a.status == "open" {
        store.set_alert_status(tenant, alert_id, "acknowledged", actor)?;
    }
    Ok(t)
}

/// The ticket an alert becomes: its check is the account's health reaching `healthy`.
pub fn alert_ticket(a: &cxm_store::Alert, body: &FromAlert, healthy: f64) -> NewTicket {
    let readings = a.detail["readings"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["detail"].as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    NewTicket {
        title: a.title.clone(),
        description: format!("Opened from alert {}: {readings}.", a.id),
        owner: body.owner.clone(),
        severity: body.severity.unwrap_or(if a.kind == "at_risk" {
            Severity::High
        } else {
            Severity::Medium
        }),
        source: Source::Alert { alert_id: a.id },
        check: Check::AccountHealthAbove {
            account: a.group_id.clone(),
            score: body.target_score.unwrap_or(healthy),
        },
        impact: Impact {
            accounts: vec![a.group_id.clone()],
            arr: a.arr,
            ..Impact::default()
        },
        sla_hours: None,
    }
}

/// The tenant's ticket rules (none until set).
pub fn rules(store: &dyn Store, tenant: &str) -> AppResult<TicketRules> {
    match store.ticket_rules(tenant)? {
        Some(def) => serde_json::from_str(&def).map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("stored ticket rules are unreadable: {e}"),
            )
        }),
        None => Ok(TicketRules::default()),
    }
}

/// Opens the tickets the rules call for; a rule opens at most one unclosed ticket per account
/// or theme. Returns how many were opened.
pub fn apply_rules(store: &dyn Store, tenant: &str) -> AppResult<usize> {
    apply_rules_with(store, tenant, None)
}

/// [`apply_rules`] with the tenant's value model, so rule tickets about top-tier accounts are
/// raised a step like any other.
pub fn apply_rules_with(
    store: &dyn Store,
    tenant: &str,
    value: Option<&crate::equity::Computed>,
) -> AppResult<usize> {
    let rules = rules(store, tenant)?;
    let mut opened = 0;
    let today = Utc::now().date_naive();
    if let Some(target) = &rules.at_risk {
        let (_, set) = crate::health::signal_set(store, tenant)?;
        let ticketed: std::collections::HashSet<i64> = store
            .list_tickets(tenant, None, 100_000)?
            .iter()
            .filter_map(|t| t.source["alert_id"].as_i64())
            .collect();
        let body = FromAlert {
            owner: target.owner.clone(),
            severity: Some(target.severity),
            target_score: None,
        };
        for a in store
            .list_alerts(tenant, Some("open"), 100_000)?
            .iter()
            .filter(|a| a.kind == "at_risk" && !ticketed.contains(&a.id))
        {
            let mut t = alert_ticket(a, &body, set.bands.concerning_below);
            raise_for_value(store, tenant, value, &mut t)?;
            if open_once(store, tenant, &t, &format!("at_risk:{}", a.group_id))?.is_some() {
                store.set_alert_status(tenant, a.id, "acknowledged", "cxm")?;
                opened += 1;
            }
        }
    }
    if let Some(r) = &rules.large_account_detractors {
        let since = today - chrono::Days::new(7);
        for acc in store.accounts_for_health(tenant, since)? {
            if acc.arr < r.min_arr || !acc.days.iter().any(|d| d.low_scores > 0) {
                continue;
            }
            let mut t = NewTicket {
                title: format!("Detractor at {} (ARR {:.0})", acc.name, acc.arr),
                description: "Opened by the large-account detractor rule: a detractor NPS or CSAT ≤ 2 in the last 7 days.".into(),
                owner: r.target.owner.clone(),
                severity: r.target.severity,
                source: Source::Rule { rule: "large_account_detractors".into(), subject: acc.group_id.clone() },
                check: Check::CsatRecovers { accounts: vec![acc.group_id.clone()], percent: 80.0, days: 30, min_answers: 1 },
                impact: Impact { accounts: vec![acc.group_id.clone()], arr: acc.arr, ..Impact::default() },
                sla_hours: None,
            };
            raise_for_value(store, tenant, value, &mut t)?;
            if open_once(store, tenant, &t, &format!("detractor:{}", acc.group_id))?.is_some() {
                opened += 1;
            }
        }
    }
    if let Some(r) = &rules.growing_themes {
        let from = (today - chrono::Days::new(13)).to_string();
        let split = (today - chrono::Days::new(6)).to_string();
        let mut weeks: std::collections::HashMap<String, (u64, u64)> =
            std::collections::HashMap::new();
        for d in store.theme_days(tenant, &from, &today.to_string())? {
            let w = weeks.entry(d.theme_id.clone()).or_default();
            if d.day >= split {
                w.1 += d.answers;
            } else {
                w.0 += d.answers;
            }
        }
        let growing: Vec<(String, u64, u64)> = weeks
            .into_iter()
            .filter(|(_, (before, now))| {
                let growth = if *before == 0 {
                    f64::INFINITY
                } else {
                    100.0 * (*now as f64 - *before as f64) / *before as f64
                };
                *now >= r.min_answers && growth > r.min_growth_pct
            })
            .map(|(theme, (before, now))| (theme, before, now))
            .collect();
        // theme names cost a registry read: only when some theme qualifies
        let names: std::collections::HashMap<String, String> = if growing.is_empty() {
            Default::default()
        } else {
            crate::themes::list(store, tenant, 14, false)?
                .themes
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect()
        };
        for (theme, before, now) in growing {
            let Some(name) = names.get(&theme) else {
                continue;
            };
            let t = NewTicket {
                title: format!(
                    "Theme \"{name}\": {now} answers this week, {before} the week before"
                ),
                description: "Opened by the growing-theme rule.".into(),
                owner: r.target.owner.clone(),
                severity: r.target.severity,
                source: Source::Theme {
                    theme_id: theme.clone(),
                },
                check: Check::ThemeVolumeBelow {
                    theme_id: theme.clone(),
                    per_week: before,
                },
                impact: Impact::default(),
                sla_hours: None,
            };
            if open_once(store, tenant, &t, &format!("theme:{theme}"))?.is_some() {
                opened += 1;
            }
        }
    }
    Ok(opened)
}

/// Tells the customers behind a closed ticket that it is fixed: a `Loop Closed` event on each
/// one's timeline, a `customer.loop_closed` webhook, an email to those whose address cxm
/// knows (sent by the mail worker when an SMTP relay is configured), and a note on the
/// ticket saying who was reached. Customers who declined service updates are skipped.
pub fn close_the_loop(store: &dyn Store, tenant: &str, t: &Ticket, actor: &str) -> AppResult<()> {
    let impact: Impact = serde_json::from_value(t.impact.clone()).unwrap_or_default();
    let Some(message) = impact.close_loop_message.clone() else {
        return Ok(());
    };
    let mut profiles = std::collections::BTreeSet::new();
    for i in &impact.identifiers {
        if let Some(p) = cxm_domain::Identifier::parse_typed(i)
            .and_then(|id| store.profile_for(tenant, &id).transpose())
        {
            profiles.insert(p?);
        }
    }
    for a in &impact.accounts {
        profiles.extend(store.account_profiles(tenant, a, 10_000)?);
    }
    let now = Utc::now();
    let (mut events, mut reached, mut unreachable) = (vec![], vec![], 0);
    let opts = cxm_domain::IngestOptions {
        trust_timestamps: true,
        ..Default::default()
    };
    let clock = cxm_domain::Clock {
        received_at: now,
        batch_sent_at: None,
    };
    let mut declined = 0;
    let mut mails = vec![];
    for pid in profiles {
        let Some(p) = store.profile(tenant, &pid)? else {
            continue;
        };
        // customers who declined service updates are not written to
        let (ok, _) =
            cxm_domain::consent::allowed(&store.consents(tenant, &p.id)?, "service_updates", "*");
        if !ok {
            declined += 1;
            continue;
        }
        let id_of = |kind: &str| {
            p.identifiers
                .iter()
                .find(|i| i.kind == kind)
                .map(|i| i.value.clone())
        };
        // by email too, when cxm knows their address (the mail worker sends it)
        if let Some(to) = id_of("email") {
            mails.push(cxm_store::OutboundMail {
                id: 0,
                kind: "loop_closed".into(),
                reference: t.id.to_string(),
                profile_id: p.id.clone(),
                to,
                subject: format!("Fixed: {}", t.title),
                body: format!(
                    "Hello,\n\n{message}\n\nYou are hearing from us because you told us about this. Thank you.\n"
                ),
                status: "pending".into(),
                detail: String::new(),
                created_at_ms: 0,
            });
        }
        let mut msg = json!({"type": "track", "event": "Loop Closed", "messageId": format!("loop-{}-{}", t.id, p.id),
            "timestamp": now.to_rfc3339(), "properties": {"ticket_id": t.id, "title": t.title, "message": message}});
        match (id_of("user_id"), id_of("anonymous_id")) {
            (Some(u), _) => msg["userId"] = u.into(),
            (None, Some(a)) => msg["anonymousId"] = a.into(),
            (None, None) => {
                // no id to put an event on their timeline; an email still reaches them
                if mails.last().is_none_or(|m| m.profile_id != p.id) {
                    unreachable += 1;
                }
                continue;
            }
        }
        match cxm_domain::normalize(&msg, 0, &clock, &opts) {
            Ok(e) => {
                events.push(e);
                reached.push(p.id.clone());
                crate::webhooks::emit(
                    store,
                    tenant,
                    "customer.loop_closed",
                    &json!({"ticket_id": t.id, "customer": p.id, "message": message}),
                );
            }
            Err(_) => unreachable += 1,
        }
    }
    if !events.is_empty() {
        store.append(&[cxm_store::AppendRequest {
            tenant_id: tenant.into(),
            write_key_id: "cxm-loop".into(),
            events,
            quarantined: Default::default(),
        }])?;
    }
    let emailed = store.queue_mail(tenant, &mails)?;
    store.note_ticket(
        tenant,
        t.id,
        actor,
        "loop_closed",
        &json!({"message": message, "customers": reached, "emailed": emailed, "unreachable": unreachable, "declined": declined}),
    )?;
    Ok(())
}

/// Escalates open tickets whose SLA is about to be missed (less than a fifth of it left) or
/// missed: once per ticket and kind, with a timeline entry and a webhook
/// (`ticket.sla_at_risk`, `ticket.sla_missed`). Returns how many were escalated.
pub fn sweep_sla(store: &dyn Store, tenant: &str, now_ms: i64) -> AppResult<usize> {
    let mut escalated = 0;
    for t in store.list_tickets(tenant, None, 10_000)? {
        if t.state == "closed" {
            continue;
        }
        let kind = match ticket::sla_status(t.created_at_ms, t.due_at_ms, None, now_ms) {
            "at_risk" => "sla_at_risk",
            "missed" => "sla_missed",
            _ => continue,
        };
        if store
            .ticket_events(tenant, t.id)?
            .iter()
            .any(|e| e.kind == kind)
        {
            continue;
        }
        let hours_left = (t.due_at_ms - now_ms) as f64 / 3_600_000.0;
        let detail = json!({"owner": t.owner, "due_at_ms": t.due_at_ms, "hours_left": (hours_left * 10.0).round() / 10.0});
        store.note_ticket(tenant, t.id, "cxm", kind, &detail)?;
        crate::webhooks::emit(
            store,
            tenant,
            &format!("ticket.{kind}"),
            &json!({"ticket": t, "escalation": detail}),
        );
        escalated += 1;
    }
    Ok(escalated)
}
