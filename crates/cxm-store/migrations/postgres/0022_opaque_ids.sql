-- profile ids were p_<sequence of the event that created them>, which told every tenant how
-- many events all tenants had sent. They are now a keyed hash of that sequence under a
-- secret per tenant (still reproducible by a rebuild); profiles made before keep their ids.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS id_salt TEXT;
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS legacy_profile_seq BIGINT NOT NULL DEFAULT 0;
UPDATE tenants SET id_salt = md5(random()::text || clock_timestamp()::text || id),
    legacy_profile_seq = (SELECT COALESCE(MAX(seq), 0) FROM events)
  WHERE id_salt IS NULL;
