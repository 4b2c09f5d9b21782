-- the event log is the source of truth; everything below it is a projection or configuration
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    write_key_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT,
    user_id TEXT,
    anonymous_id TEXT,
    group_id TEXT,
    channel TEXT NOT NULL,
    category TEXT NOT NULL,
    ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events(tenant_id, user_id, ts) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_anon ON events(tenant_id, anonymous_id, ts) WHERE anonymous_id IS NOT NULL;
-- deduplication lives in memory (see DedupIndex), rebuilt from this log at start
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    write_key_id TEXT NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_tenant ON quarantine(tenant_id, id);
CREATE TABLE IF NOT EXISTS profiles (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    merged_into TEXT,
    merge_count INTEGER NOT NULL DEFAULT 0,
    traits TEXT NOT NULL DEFAULT '{}',
    display TEXT NOT NULL DEFAULT '',
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS profiles_merged ON profiles(tenant_id, merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE IF NOT EXISTS identifiers (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identifiers_profile ON identifiers(tenant_id, profile_id);
CREATE TABLE IF NOT EXISTS identity_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    action TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    other_profile_id TEXT,
    identifier_kind TEXT,
    identifier_value TEXT,
    event_seq INTEGER,
    message_id TEXT,
    reason TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_profile ON identity_ledger(tenant_id, profile_id);
CREATE INDEX IF NOT EXISTS ledger_other ON identity_ledger(tenant_id, other_profile_id);
CREATE TABLE IF NOT EXISTS blocked_identifiers (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
);
CREATE TABLE IF NOT EXISTS accounts (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    traits TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, group_id)
);
CREATE TABLE IF NOT EXISTS profile_accounts (
    tenant_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, profile_id, group_id)
);
CREATE TABLE IF NOT EXISTS ingest_daily (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    channel TEXT NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, channel)
);
