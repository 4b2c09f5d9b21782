//! Rows to types: the column lists the rooms select and the functions that read a row back.

use super::*;

/// The columns ingest copies into the log, in order, and their types for COPY BINARY.
pub(super) const EVENT_COPY_COLUMNS: &str = "seq, tenant_id, write_key_id, message_id, type, name, user_id, anonymous_id, group_id, channel, category, ts, received_at, payload";
pub(super) const EVENT_COPY_TYPES: [postgres::types::Type; 14] = {
    use postgres::types::Type;
    [
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
    ]
};

pub(super) fn row_to_event(r: &Row) -> StoredEvent {
    StoredEvent {
        seq: r.get(0),
        message_id: r.get(1),
        event_type: r.get(2),
        name: r.get(3),
        channel: r.get(4),
        category: r.get(5),
        timestamp_ms: r.get(6),
        received_at_ms: r.get(7),
        user_id: r.get(8),
        anonymous_id: r.get(9),
        payload: serde_json::from_str(r.get(10)).unwrap_or(Value::Null),
    }
}

pub(super) fn text_answer(r: &Row) -> TextAnswer {
    TextAnswer {
        response_id: r.get(0),
        text: r.get(1),
        sentiment: r.get(2),
        nps: r.get(3),
        collected_at_ms: r.get(4),
        id: r.get(5),
        account: r.get(6),
    }
}

pub(super) fn invitation(r: &Row) -> Invitation {
    Invitation {
        id: r.get(0),
        survey_id: r.get(1),
        version: r.get(2),
        identifier: r.get(3),
        channel: r.get(4),
        trigger_event: r.get(5),
        trigger_message_id: r.get(6),
        status: r.get(7),
        detail: r.get(8),
        url: r.get(9),
        created_at_ms: r.get(10),
        delivered_at_ms: r.get(11),
    }
}

pub(super) fn journey_row(r: &Row) -> StoredJourney {
    StoredJourney {
        journey_id: r.get(0),
        version: r.get(1),
        name: r.get(2),
        owner: r.get(3),
        definition: r.get(4),
        created_by: r.get(5),
        created_at_ms: r.get(6),
    }
}
pub(super) fn pg_health_row(r: &Row) -> AccountHealthRow {
    AccountHealthRow {
        group_id: r.get(0),
        name: r.get(1),
        score: r.get(2),
        band: r.get(3),
        readings: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or(Value::Null),
        arr: r.get(5),
        computed_at_ms: r.get(6),
    }
}

pub(super) fn pg_alert_row(r: &Row) -> Alert {
    Alert {
        id: r.get(0),
        group_id: r.get(1),
        kind: r.get(2),
        signal: r.get(3),
        status: r.get(4),
        title: r.get(5),
        detail: serde_json::from_str(r.get::<_, &str>(6)).unwrap_or(Value::Null),
        arr: r.get(7),
        created_at_ms: r.get(8),
        updated_at_ms: r.get(9),
        updated_by: r.get(10),
        owner: r.get(11),
    }
}
pub(super) fn pg_ticket_row(r: &Row) -> Ticket {
    let json = |i: usize| serde_json::from_str(r.get::<_, &str>(i)).unwrap_or(Value::Null);
    Ticket {
        id: r.get(0),
        title: r.get(1),
        description: r.get(2),
        owner: r.get(3),
        severity: r.get(4),
        state: r.get(5),
        source: json(6),
        check: json(7),
        impact: json(8),
        sla_hours: r.get(9),
        due_at_ms: r.get(10),
        verdict: r
            .get::<_, Option<&str>>(11)
            .and_then(|v| serde_json::from_str(v).ok()),
        created_by: r.get(12),
        created_at_ms: r.get(13),
        updated_at_ms: r.get(14),
        closed_at_ms: r.get(15),
    }
}
pub(super) fn pg_endpoint_row(r: &Row) -> WebhookEndpoint {
    WebhookEndpoint {
        id: r.get(0),
        url: r.get(1),
        secret: r.get(2),
        events: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or_default(),
        active: r.get::<_, i64>(4) != 0,
        created_at_ms: r.get(5),
    }
}

pub(super) fn pg_delivery_row(r: &Row) -> WebhookDelivery {
    WebhookDelivery {
        id: r.get(0),
        endpoint_id: r.get(1),
        message_id: r.get(2),
        event_type: r.get(3),
        payload: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or(Value::Null),
        status: r.get(5),
        attempts: r.get(6),
        next_attempt_at_ms: r.get(7),
        last_status: r.get(8),
        last_error: r.get(9),
        created_at_ms: r.get(10),
        delivered_at_ms: r.get(11),
        tenant_id: r.get(12),
        secret: None,
    }
}

pub(super) fn pg_decision_row(r: &Row) -> StoredDecision {
    let json =
        |i: usize| serde_json::from_str(&r.get::<_, String>(i)).unwrap_or(serde_json::Value::Null);
    let list = |i: usize| serde_json::from_str(&r.get::<_, String>(i)).unwrap_or_default();
    StoredDecision {
        record: cxm_domain::decision::DecisionRecord {
            id: r.get(0),
            agent: r.get(1),
            action: r.get(2),
            customer: r.get(3),
            resource: r.get(4),
            request: json(5),
            facts: json(6),
            used: json(7),
            policy_version: r.get(8),
            outcome: r.get(9),
            level: r.get(10),
            policy_ids: list(11),
            reasons: list(12),
            at_ms: r.get(13),
        },
        audit_seq: r.get(14),
        review_status: r.get(15),
        review_due_at_ms: r.get(16),
        reviewed_by: r.get(17),
        review_reason: r.get(18),
        reviewed_at_ms: r.get(19),
        resolved: r.get(20),
        intent: r.get(21),
        reported_at_ms: r.get(22),
    }
}

pub(super) fn pg_agent_row(r: &Row) -> Agent {
    Agent {
        name: r.get(0),
        kind: r.get(1),
        description: r.get(2),
        disclosure: r.get(3),
        created_by: r.get(4),
        created_at_ms: r.get(5),
        disabled_at_ms: r.get(6),
    }
}

pub(super) fn pg_policy_row(r: &Row) -> PolicySetRow {
    PolicySetRow {
        version: r.get(0),
        text: r.get(1),
        note: r.get(2),
        created_by: r.get(3),
        created_at_ms: r.get(4),
        activated_at_ms: r.get(5),
    }
}

pub(super) fn pg_step_up_row(r: &Row) -> StepUp {
    StepUp {
        id: r.get(0),
        customer: r.get(1),
        profile_id: r.get(2),
        channel: r.get(3),
        sent_to: r.get(4),
        code_hash: r.get(5),
        attempts_left: r.get(6),
        expires_at_ms: r.get(7),
        verified_at_ms: r.get(8),
        created_by: r.get(9),
        created_at_ms: r.get(10),
    }
}
