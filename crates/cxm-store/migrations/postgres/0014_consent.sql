-- consent and preferences: the history per customer, purpose and channel (newest decides)
CREATE TABLE IF NOT EXISTS consents (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_profile ON consents(tenant_id, profile_id, id);
