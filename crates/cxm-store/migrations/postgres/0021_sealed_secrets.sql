-- which master key sealed this store's secrets (signing keys, webhook secrets), so a server
-- started with another key refuses to run instead of failing at the first signature; and a
-- sealed part of a queued webhook (a one-time code), cleared once the delivery is settled
CREATE TABLE IF NOT EXISTS store_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS sealed TEXT;
