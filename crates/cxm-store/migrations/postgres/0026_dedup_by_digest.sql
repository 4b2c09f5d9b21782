-- the dedup window keyed by a 16-byte digest of (tenant, write key, message id) instead of the
-- three texts: each probe and insert compared three strings under the database's collation,
-- and in the ingest profile the window cost more than copying the events themselves. The
-- digest is `graph::dedup_key`: SHA-256 over the three joined by NUL, its first 16 bytes.
ALTER TABLE dedup RENAME TO dedup_by_text;
DO $$
DECLARE r RECORD;
BEGIN
    FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'dedup_by_text'::regclass LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', r.relname, 'text_' || r.relname);
    END LOOP;
END $$;
CREATE TABLE dedup (
    day INT NOT NULL,
    key BYTEA NOT NULL,
    PRIMARY KEY (key, day)
) PARTITION BY RANGE (day);
DO $$
DECLARE d INT;
BEGIN
    FOR d IN SELECT DISTINCT day FROM dedup_by_text LOOP
        EXECUTE format('CREATE TABLE dedup_d%s PARTITION OF dedup FOR VALUES FROM (%s) TO (%s)', d, d, d + 1);
    END LOOP;
END $$;
INSERT INTO dedup (day, key)
    SELECT day, substring(sha256(convert_to(tenant_id, 'UTF8') || '\x00'::bytea
                                 || convert_to(write_key_id, 'UTF8') || '\x00'::bytea
                                 || convert_to(message_id, 'UTF8')) FROM 1 FOR 16)
    FROM dedup_by_text;
DROP TABLE dedup_by_text;
