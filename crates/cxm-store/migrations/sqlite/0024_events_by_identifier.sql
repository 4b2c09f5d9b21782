-- A customer's events found by their identifiers, written in sorted batches a little behind
-- the log instead of by two indexes that every ingest commit updated at random. Keyed by
-- customer, those indexes dirtied one page per customer in a commit (a 4 KB WAL frame and
-- two writes each), which was most of what a commit cost under many customers; a batch of
-- tens of thousands of events in key order writes each customer's page once. The events
-- after `events_by_identifier_head` are not in it yet: readers scan that short tail of the
-- log by seq, so every read sees every committed event.
CREATE TABLE IF NOT EXISTS events_by_identifier (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,   -- 'user_id' or 'anonymous_id', as in identifiers
    value TEXT NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, value, ts, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events_by_identifier_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO events_by_identifier
    SELECT tenant_id, 'user_id', user_id, ts, seq FROM events WHERE user_id IS NOT NULL;
INSERT OR IGNORE INTO events_by_identifier
    SELECT tenant_id, 'anonymous_id', anonymous_id, ts, seq FROM events WHERE anonymous_id IS NOT NULL;
INSERT OR IGNORE INTO events_by_identifier_head (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM events;
-- whatever removes an event (erasure, retention) removes what points at it, in its statement
CREATE TRIGGER IF NOT EXISTS events_by_identifier_follow AFTER DELETE ON events
BEGIN
    DELETE FROM events_by_identifier
     WHERE tenant_id = old.tenant_id AND kind = 'user_id' AND value = old.user_id AND ts = old.ts AND seq = old.seq;
    DELETE FROM events_by_identifier
     WHERE tenant_id = old.tenant_id AND kind = 'anonymous_id' AND value = old.anonymous_id AND ts = old.ts AND seq = old.seq;
END;
DROP INDEX IF EXISTS events_user;
DROP INDEX IF EXISTS events_anon;
