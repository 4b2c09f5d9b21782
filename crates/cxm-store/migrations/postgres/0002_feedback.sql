-- feedback, one row per answer; the source of truth for every survey metric
CREATE TABLE IF NOT EXISTS feedback (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    response_id TEXT NOT NULL,
    question TEXT NOT NULL,
    field_type TEXT NOT NULL,
    score BIGINT,
    text_value TEXT,
    channel TEXT NOT NULL,
    survey_id TEXT NOT NULL DEFAULT '',
    survey_version BIGINT,
    journey TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL DEFAULT '',
    agent TEXT NOT NULL DEFAULT '',
    identifier TEXT,
    account TEXT,
    collected_at BIGINT NOT NULL,
    sentiment DOUBLE PRECISION,
    cues TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS feedback_collected ON feedback(tenant_id, field_type, collected_at);
CREATE INDEX IF NOT EXISTS feedback_response ON feedback(tenant_id, response_id);
-- rollup: answer counts per day and score, once overall (dim '') and once per slice
-- dimension, so a trend reads a few thousand rows however many answers there are
CREATE TABLE IF NOT EXISTS feedback_rollup (
    tenant_id TEXT NOT NULL,
    field_type TEXT NOT NULL,
    dim TEXT NOT NULL,
    day TEXT NOT NULL,
    dim_value TEXT NOT NULL,
    score BIGINT NOT NULL,
    answers BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, field_type, dim, day, dim_value, score)
);
