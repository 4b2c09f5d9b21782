-- account health: per-account daily facts kept from the event log and the answers by a
-- worker with a cursor, the tenant's versioned signal set, the latest health per account,
-- a daily history of scores, and alerts
CREATE TABLE IF NOT EXISTS account_daily (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    day TEXT NOT NULL,
    active INTEGER NOT NULL,
    tickets INTEGER NOT NULL,
    payment_failed INTEGER NOT NULL,
    usage INTEGER NOT NULL,
    churned INTEGER NOT NULL,
    low_scores INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, group_id, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS health_cursors (
    tenant_id TEXT PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    feedback_id INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signal_sets (
    tenant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version)
);
CREATE TABLE IF NOT EXISTS account_health (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    name TEXT NOT NULL,
    score REAL NOT NULL,
    band TEXT NOT NULL,
    readings TEXT NOT NULL,
    arr REAL NOT NULL,
    computed_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);
CREATE INDEX IF NOT EXISTS account_health_band ON account_health(tenant_id, band, score);
CREATE TABLE IF NOT EXISTS health_history (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    day TEXT NOT NULL,
    score REAL NOT NULL,
    band TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, day)
) WITHOUT ROWID;
-- one open alert per account, kind and signal: a signal that keeps firing does not repeat
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    signal TEXT NOT NULL,
    status TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    arr REAL NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts(tenant_id, group_id, kind, signal) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_status ON alerts(tenant_id, status, id);
-- an account's owner (trait owner, csm or account_owner) gets its alerts
