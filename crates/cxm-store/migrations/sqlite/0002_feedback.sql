-- feedback, one row per answer; the source of truth for every survey metric
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    response_id TEXT NOT NULL,
    question TEXT NOT NULL,
    field_type TEXT NOT NULL,
    score INTEGER,
    text_value TEXT,
    channel TEXT NOT NULL,
    survey_id TEXT NOT NULL DEFAULT '',
    survey_version INTEGER,
    journey TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL DEFAULT '',
    agent TEXT NOT NULL DEFAULT '',
    identifier TEXT,
    account TEXT,
    collected_at INTEGER NOT NULL,
    sentiment REAL,
    cues TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS feedback_collected ON feedback(tenant_id, collected_at);
-- rollup: answer counts per day, type, slice and score; every metric is read from here
CREATE TABLE IF NOT EXISTS feedback_daily (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    field_type TEXT NOT NULL,
    channel TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    journey TEXT NOT NULL,
    stage TEXT NOT NULL,
    agent TEXT NOT NULL,
    score INTEGER NOT NULL,
    answers INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, field_type, day, channel, survey_id, journey, stage, agent, score)
);
