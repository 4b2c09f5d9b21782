-- the dedup window, one partition per UTC day of arrival (day = received_at / 86,400,000):
-- forgetting a day drops its partition instead of deleting millions of rows (which left the
-- table bloated and scanned it whole every hour). The key carries the day, so a message id is
-- looked up in every day kept before it is taken as new; writers of one tenant are
-- serialised by its advisory lock, so the look-up and the insert cannot race.
ALTER TABLE dedup RENAME TO dedup_before_days;
CREATE TABLE dedup (
    day INT NOT NULL,
    tenant_id TEXT NOT NULL,
    write_key_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, write_key_id, message_id, day)
) PARTITION BY RANGE (day);
DO $$
DECLARE d INT;
BEGIN
    FOR d IN SELECT DISTINCT (received_at / 86400000)::INT FROM dedup_before_days LOOP
        EXECUTE format('CREATE TABLE dedup_d%s PARTITION OF dedup FOR VALUES FROM (%s) TO (%s)', d, d, d + 1);
    END LOOP;
END $$;
INSERT INTO dedup (day, tenant_id, write_key_id, message_id)
    SELECT (received_at / 86400000)::INT, tenant_id, write_key_id, message_id FROM dedup_before_days;
DROP TABLE dedup_before_days;
