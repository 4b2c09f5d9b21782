-- step-up verification: a one-time code sent to a channel the customer is known by; only
-- its hash is kept, with an expiry and a bounded number of attempts
CREATE TABLE IF NOT EXISTS step_ups (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    customer TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    sent_to TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts_left BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    verified_at BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
