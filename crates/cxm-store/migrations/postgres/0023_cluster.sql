-- cluster mode: the nodes sharing this database, and one lease per virtual partition. Every
-- time here is the database's clock, so a node whose own clock is off cannot hold a lease
-- longer than it was given.
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id TEXT PRIMARY KEY,
    -- a random value per process: a second process with the same node id is refused while
    -- the first one's heartbeat is fresh
    instance TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_leases (
    partition INT PRIMARY KEY,
    owner TEXT NOT NULL,
    -- grows by one each time the partition changes hands (or its owner let it lapse); every
    -- write of the owner names its epoch, so a former owner's late write is refused
    epoch BIGINT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    -- the partition's stream position its owners have applied through
    applied_seq BIGINT NOT NULL DEFAULT 0
);
-- every (partition, epoch) ever granted, and to whom: two owners of one epoch cannot exist
CREATE TABLE IF NOT EXISTS cluster_lease_log (
    partition INT NOT NULL,
    epoch BIGINT NOT NULL,
    owner TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (partition, epoch)
);
