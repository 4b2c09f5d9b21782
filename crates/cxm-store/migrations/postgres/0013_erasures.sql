-- tombstones of erased customers: when, by whom, how much went; never who
CREATE TABLE IF NOT EXISTS erasures (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    counts TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
