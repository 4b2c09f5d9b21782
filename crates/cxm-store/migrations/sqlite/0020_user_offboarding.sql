-- a user who leaves is disabled, not deleted: their name stays on the audit chain and on
-- what they did, but they cannot sign in and their sessions end
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
