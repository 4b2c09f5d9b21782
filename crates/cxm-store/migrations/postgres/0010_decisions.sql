-- governed agents: who may ask, the versioned policies that answer, every decision, and the
-- tamper-evident audit chain that covers decisions, reviews and admin actions
CREATE TABLE IF NOT EXISTS agents (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    disclosure TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS policy_sets (
    tenant_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    text TEXT NOT NULL,
    note TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    PRIMARY KEY (tenant_id, version)
);
CREATE TABLE IF NOT EXISTS decisions (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    audit_seq BIGINT NOT NULL,
    agent TEXT NOT NULL,
    action TEXT NOT NULL,
    customer TEXT NOT NULL,
    resource TEXT,
    request TEXT NOT NULL,
    facts TEXT NOT NULL,
    used TEXT NOT NULL,
    policy_version BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    level TEXT NOT NULL,
    policy_ids TEXT NOT NULL,
    reasons TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- pending while a human has to look (L2 review, L3 escalation); then approved or reversed
    review_status TEXT,
    review_due_at BIGINT,
    reviewed_by TEXT,
    review_reason TEXT,
    reviewed_at BIGINT,
    -- what the agent reported afterwards: whether the customer's intent was resolved
    resolved BOOLEAN,
    intent TEXT,
    reported_at BIGINT,
    -- set once, when the action the decision allowed is carried out (a second use is a replay)
    redeemed_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions(tenant_id, created_at);
CREATE INDEX IF NOT EXISTS decisions_audit ON decisions(tenant_id, audit_seq);
CREATE INDEX IF NOT EXISTS decisions_queue ON decisions(tenant_id, review_status, review_due_at) WHERE review_status = 'pending';
CREATE TABLE IF NOT EXISTS audit_log (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- the chain covers the body's hash, so an erasure can redact the body and keep the chain
    body_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log(tenant_id, subject);
-- append-only: the chain detects edits, the trigger stops the accidental ones
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    -- an erasure may redact a body; nothing else changes
    IF TG_OP = 'UPDATE' AND NEW.body = '{"erased":true}' AND NEW.seq = OLD.seq AND NEW.hash = OLD.hash
       AND NEW.body_hash = OLD.body_hash AND NEW.prev_hash = OLD.prev_hash AND NEW.actor = OLD.actor
       AND NEW.kind = OLD.kind AND NEW.subject = OLD.subject AND NEW.at = OLD.at AND NEW.tenant_id = OLD.tenant_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (only an erasure may redact a body)';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- a decision reads the customer's recent answers
CREATE INDEX IF NOT EXISTS feedback_profile ON feedback(tenant_id, profile_id, collected_at);
