-- events by name in log order (the rowid, which is seq, ends every index key). Keyed by
-- customer as before, every event rewrote a leaf somewhere in the index, a page per event at
-- ingest; in log order each name appends to one leaf. Nothing reads it by customer: journeys
-- walk the columnar blocks and the log by seq range, and triggers and equity seek
-- (tenant, name, seq > cursor), which this index answers directly.
DROP INDEX IF EXISTS events_name;
CREATE INDEX IF NOT EXISTS events_name ON events(tenant_id, name) WHERE name IS NOT NULL;
