-- how long each class of data is kept, per tenant (no row: kept until erased)
CREATE TABLE IF NOT EXISTS retention (
    tenant_id TEXT NOT NULL,
    data_class TEXT NOT NULL,
    days BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, data_class)
);
