-- experiments: the definition as written (JSON), where the rollout stands, and its history
CREATE TABLE IF NOT EXISTS experiments (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    rollout_percent DOUBLE PRECISION NOT NULL,
    shipped_arm TEXT,
    history TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
-- the first exposure of each customer (per unit: an account's customers share its arm)
CREATE TABLE IF NOT EXISTS experiment_exposures (
    tenant_id TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    customer TEXT NOT NULL,
    profile_id TEXT,
    arm TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, experiment_id, unit, customer)
);
-- tenant documents edited as a whole: the readiness assessment, the ROI assumptions
CREATE TABLE IF NOT EXISTS tenant_documents (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
