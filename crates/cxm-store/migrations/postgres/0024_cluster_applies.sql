-- every batch a partition owner applied from the ingest log, under which epoch and through
-- which stream positions: the record that shows no two owners wrote one partition in one
-- epoch and that no position was applied twice
CREATE TABLE IF NOT EXISTS cluster_applies (
    id BIGSERIAL PRIMARY KEY,
    partition INT NOT NULL,
    epoch BIGINT NOT NULL,
    owner TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    events INT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS cluster_applies_partition ON cluster_applies (partition, last_seq);
CREATE INDEX IF NOT EXISTS cluster_applies_at ON cluster_applies (applied_at);
-- when the partition's owner last applied a batch
ALTER TABLE cluster_leases ADD COLUMN IF NOT EXISTS applied_at TIMESTAMPTZ;
