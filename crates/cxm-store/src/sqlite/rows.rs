//! Rows to types: the column lists the rooms select and the functions that read a row back.

use super::*;

pub(super) fn row_to_event(r: &rusqlite::Row) -> rusqlite::Result<StoredEvent> {
    let payload: String = r.get(10)?;
    Ok(StoredEvent {
        seq: r.get(0)?,
        message_id: r.get(1)?,
        event_type: r.get(2)?,
        name: r.get(3)?,
        channel: r.get(4)?,
        category: r.get(5)?,
        timestamp_ms: r.get(6)?,
        received_at_ms: r.get(7)?,
        user_id: r.get(8)?,
        anonymous_id: r.get(9)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
    })
}

pub(super) fn row_to_ledger(r: &rusqlite::Row) -> rusqlite::Result<LedgerEntry> {
    let kind: Option<String> = r.get(4)?;
    let value: Option<String> = r.get(5)?;
    Ok(LedgerEntry {
        id: r.get(0)?,
        action: r.get(1)?,
        profile_id: r.get(2)?,
        other_profile_id: r.get(3)?,
        identifier: kind
            .zip(value)
            .map(|(kind, value)| IdentifierRecord { kind, value }),
        event_seq: r.get(6)?,
        message_id: r.get(7)?,
        reason: r.get(8)?,
        at_ms: r.get(9)?,
    })
}

pub(super) const EVENT_COLS: &str = "seq, message_id, type, name, channel, category, ts, received_at, user_id, anonymous_id, payload";

pub(super) fn text_answer(r: &rusqlite::Row) -> rusqlite::Result<TextAnswer> {
    Ok(TextAnswer {
        response_id: r.get(0)?,
        text: r.get(1)?,
        sentiment: r.get(2)?,
        nps: r.get(3)?,
        collected_at_ms: r.get(4)?,
        id: r.get(5)?,
        account: r.get(6)?,
    })
}

pub(super) fn invitation(r: &rusqlite::Row) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        id: r.get(0)?,
        survey_id: r.get(1)?,
        version: r.get(2)?,
        identifier: r.get(3)?,
        channel: r.get(4)?,
        trigger_event: r.get(5)?,
        trigger_message_id: r.get(6)?,
        status: r.get(7)?,
        detail: r.get(8)?,
        url: r.get(9)?,
        created_at_ms: r.get(10)?,
        delivered_at_ms: r.get(11)?,
    })
}

pub(super) fn journey_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredJourney> {
    Ok(StoredJourney {
        journey_id: r.get(0)?,
        version: r.get(1)?,
        name: r.get(2)?,
        owner: r.get(3)?,
        definition: r.get(4)?,
        created_by: r.get(5)?,
        created_at_ms: r.get(6)?,
    })
}
pub(super) fn health_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountHealthRow> {
    let readings: String = r.get(4)?;
    Ok(AccountHealthRow {
        group_id: r.get(0)?,
        name: r.get(1)?,
        score: r.get(2)?,
        band: r.get(3)?,
        readings: serde_json::from_str(&readings).unwrap_or(Value::Null),
        arr: r.get(5)?,
        computed_at_ms: r.get(6)?,
    })
}

pub(super) fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let detail: String = r.get(6)?;
    Ok(Alert {
        id: r.get(0)?,
        group_id: r.get(1)?,
        kind: r.get(2)?,
        signal: r.get(3)?,
        status: r.get(4)?,
        title: r.get(5)?,
        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
        arr: r.get(7)?,
        created_at_ms: r.get(8)?,
        updated_at_ms: r.get(9)?,
        updated_by: r.get(10)?,
        owner: r.get(11)?,
    })
}
pub(super) const TICKET_COLUMNS: &str = "SELECT id, title, description, owner, severity, state, source, check_def, impact, sla_hours, due_at, verdict, created_by, created_at, updated_at, closed_at FROM tickets";

pub(super) fn ticket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Ticket> {
    let json = |i: usize| -> rusqlite::Result<Value> {
        Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or(Value::Null))
    };
    Ok(Ticket {
        id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        owner: r.get(3)?,
        severity: r.get(4)?,
        state: r.get(5)?,
        source: json(6)?,
        check: json(7)?,
        impact: json(8)?,
        sla_hours: r.get(9)?,
        due_at_ms: r.get(10)?,
        verdict: r
            .get::<_, Option<String>>(11)?
            .and_then(|v| serde_json::from_str(&v).ok()),
        created_by: r.get(12)?,
        created_at_ms: r.get(13)?,
        updated_at_ms: r.get(14)?,
        closed_at_ms: r.get(15)?,
    })
}
pub(super) const DELIVERY_COLUMNS: &str = "SELECT id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, tenant_id FROM webhook_deliveries";

pub(super) fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    let payload: String = r.get(4)?;
    Ok(WebhookDelivery {
        id: r.get(0)?,
        endpoint_id: r.get(1)?,
        message_id: r.get(2)?,
        event_type: r.get(3)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        status: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_at_ms: r.get(7)?,
        last_status: r.get(8)?,
        last_error: r.get(9)?,
        created_at_ms: r.get(10)?,
        delivered_at_ms: r.get(11)?,
        tenant_id: r.get(12)?,
        secret: None,
    })
}

pub(super) fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookEndpoint> {
    let events: String = r.get(3)?;
    Ok(WebhookEndpoint {
        id: r.get(0)?,
        url: r.get(1)?,
        secret: r.get(2)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        active: r.get(4)?,
        created_at_ms: r.get(5)?,
    })
}

pub(super) const DECISION_COLUMNS: &str = "id, agent, action, customer, resource, request, facts, used, policy_version, outcome, level, policy_ids, reasons, created_at, audit_seq, review_status, review_due_at, reviewed_by, review_reason, reviewed_at, resolved, intent, reported_at";

pub(super) fn decision_row(r: &rusqlite::Row) -> rusqlite::Result<StoredDecision> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
    };
    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or_default())
    };
    Ok(StoredDecision {
        record: cxm_domain::decision::DecisionRecord {
            id: r.get(0)?,
            agent: r.get(1)?,
            action: r.get(2)?,
            customer: r.get(3)?,
            resource: r.get(4)?,
            request: json(5)?,
            facts: json(6)?,
            used: json(7)?,
            policy_version: r.get(8)?,
            outcome: r.get(9)?,
            level: r.get(10)?,
            policy_ids: list(11)?,
            reasons: list(12)?,
            at_ms: r.get(13)?,
        },
        audit_seq: r.get(14)?,
        review_status: r.get(15)?,
        review_due_at_ms: r.get(16)?,
        reviewed_by: r.get(17)?,
        review_reason: r.get(18)?,
        reviewed_at_ms: r.get(19)?,
        resolved: r.get::<_, Option<i64>>(20)?.map(|x| x != 0),
        intent: r.get(21)?,
        reported_at_ms: r.get(22)?,
    })
}

pub(super) fn agent_row(r: &rusqlite::Row) -> rusqlite::Result<Agent> {
    Ok(Agent {
        name: r.get(0)?,
        kind: r.get(1)?,
        description: r.get(2)?,
        disclosure: r.get(3)?,
        created_by: r.get(4)?,
        created_at_ms: r.get(5)?,
        disabled_at_ms: r.get(6)?,
    })
}

pub(super) fn policy_row(r: &rusqlite::Row) -> rusqlite::Result<PolicySetRow> {
    Ok(PolicySetRow {
        version: r.get(0)?,
        text: r.get(1)?,
        note: r.get(2)?,
        created_by: r.get(3)?,
        created_at_ms: r.get(4)?,
        activated_at_ms: r.get(5)?,
    })
}

pub(super) const STEP_UP_COLUMNS: &str = "id, customer, profile_id, channel, sent_to, code_hash, attempts_left, expires_at, verified_at, created_by, created_at";

pub(super) fn step_up_row(r: &rusqlite::Row) -> rusqlite::Result<StepUp> {
    Ok(StepUp {
        id: r.get(0)?,
        customer: r.get(1)?,
        profile_id: r.get(2)?,
        channel: r.get(3)?,
        sent_to: r.get(4)?,
        code_hash: r.get(5)?,
        attempts_left: r.get(6)?,
        expires_at_ms: r.get(7)?,
        verified_at_ms: r.get(8)?,
        created_by: r.get(9)?,
        created_at_ms: r.get(10)?,
    })
}
