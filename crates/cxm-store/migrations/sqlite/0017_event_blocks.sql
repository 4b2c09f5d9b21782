-- the event log again, by columns (see columns.rs): blocks of up to 65,536 of a tenant's named
-- events that a cold journey walk reads instead of millions of rows; a copy, dropped and
-- written again after an erasure or a retention purge
CREATE TABLE IF NOT EXISTS event_blocks (
    tenant_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    events INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (tenant_id, first_seq)
);
