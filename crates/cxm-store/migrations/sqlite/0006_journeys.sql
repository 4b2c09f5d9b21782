-- journeys as data, versioned like surveys: a save is a new version, measured from scratch
CREATE TABLE IF NOT EXISTS journeys (
    tenant_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, journey_id, version)
);
-- where each customer is (one row per customer and journey version); open rows by entry time
-- answer "who has been stuck past the SLA" with an index range
CREATE TABLE IF NOT EXISTS journey_positions (
    tenant_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    profile_id TEXT NOT NULL,
    stage INTEGER NOT NULL,
    open INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tenant_id, journey_id, version, profile_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journey_positions_open ON journey_positions(tenant_id, journey_id, version, stage, entered_at) WHERE open = 1;
-- ended stage visits: the answer a customer gave at a time belongs to the stage they were in
CREATE TABLE IF NOT EXISTS journey_visits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    profile_id TEXT NOT NULL,
    stage INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    left_at INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_visits_profile ON journey_visits(tenant_id, journey_id, version, profile_id, entered_at);
-- per-stage tallies, added to as customers move: reading a journey's metrics reads these rows
CREATE TABLE IF NOT EXISTS journey_stats (
    tenant_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    stage INTEGER NOT NULL,
    stats TEXT NOT NULL,
    PRIMARY KEY (tenant_id, journey_id, version, stage)
);
-- how far each journey version has read the event log and the answers
CREATE TABLE IF NOT EXISTS journey_cursors (
    tenant_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    event_seq INTEGER NOT NULL,
    feedback_id INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, journey_id, version)
);
-- events by name, covering what a journey reads (the rowid, which is seq, rides along): a
-- journey walks only its own events without touching the table, four times faster than
-- looking each row up; and a definition naming an event never seen is caught without a scan
CREATE INDEX IF NOT EXISTS events_name ON events(tenant_id, name, user_id, anonymous_id, channel, ts) WHERE name IS NOT NULL;
-- synthetic journey checks: each run of a scripted path through the real APIs, and its result
CREATE TABLE IF NOT EXISTS journey_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    passed INTEGER NOT NULL,
    detail TEXT NOT NULL,
    ran_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_checks_name ON journey_checks(tenant_id, name, id);
