-- remediation tickets: each carries the verification check chosen when it was opened and the
-- last verdict on it; every change is an event on the ticket's timeline
CREATE TABLE IF NOT EXISTS tickets (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    owner TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    check_def TEXT NOT NULL,
    impact TEXT NOT NULL,
    sla_hours BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    verdict TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    closed_at BIGINT,
    -- set on tickets a rule opened: one unclosed ticket per rule and subject
    rule_key TEXT
);
CREATE INDEX IF NOT EXISTS tickets_state ON tickets(tenant_id, state, id);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_rule ON tickets(tenant_id, rule_key) WHERE rule_key IS NOT NULL AND state <> 'closed';
-- when cxm opens tickets by itself
CREATE TABLE IF NOT EXISTS ticket_rules (
    tenant_id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS ticket_events (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ticket_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_events_ticket ON ticket_events(tenant_id, ticket_id, id);
