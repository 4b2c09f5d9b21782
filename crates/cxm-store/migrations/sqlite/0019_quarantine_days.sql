-- what quarantine took in per tenant and UTC day: every rejected event is counted, but only
-- rows under the day's caps are kept (one junk batch must not fill the disk)
CREATE TABLE IF NOT EXISTS quarantine_days (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    rows_kept INTEGER NOT NULL DEFAULT 0,
    bytes_kept INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
) WITHOUT ROWID;
