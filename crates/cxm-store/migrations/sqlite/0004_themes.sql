-- answers know their customer and account (resolved through the identity graph when the
-- answer names only the customer) and the account's tier, so metrics slice by tier and
-- themes can say how much ARR mentions them
ALTER TABLE feedback ADD COLUMN profile_id TEXT;
ALTER TABLE feedback ADD COLUMN tier TEXT NOT NULL DEFAULT '';
-- text answers in id order: new answers are placed from a watermark, and a discovery walks them all
CREATE INDEX IF NOT EXISTS feedback_texts ON feedback(tenant_id, field_type, id);
-- the theme registry: one document per theme (id, names, centroid, merge/split rules)
CREATE TABLE IF NOT EXISTS themes (
    tenant_id TEXT NOT NULL,
    theme_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, theme_id)
);
-- the vocabulary of the last discovery, used to place new answers between discoveries
CREATE TABLE IF NOT EXISTS theme_models (
    tenant_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    vocabulary TEXT NOT NULL,
    noise_below REAL NOT NULL,
    discovered_at INTEGER NOT NULL
);
-- analysts' edits, append-only: who renamed, merged or split what, and when
CREATE TABLE IF NOT EXISTS theme_edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    theme_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS theme_edits_tenant ON theme_edits(tenant_id, id);
-- the theme of each text answer, with what per-theme figures need copied alongside
CREATE TABLE IF NOT EXISTS feedback_themes (
    tenant_id TEXT NOT NULL,
    feedback_id INTEGER NOT NULL,
    theme_id TEXT NOT NULL,
    day TEXT NOT NULL,
    response_id TEXT NOT NULL,
    sentiment REAL,
    account TEXT,
    PRIMARY KEY (tenant_id, feedback_id)
);
-- covering: the accounts mentioning each theme in a window come from the index alone
CREATE INDEX IF NOT EXISTS feedback_themes_day ON feedback_themes(tenant_id, day, theme_id, account);
CREATE INDEX IF NOT EXISTS feedback_themes_theme ON feedback_themes(tenant_id, theme_id);
CREATE INDEX IF NOT EXISTS feedback_themes_response ON feedback_themes(tenant_id, response_id);
-- per-theme figures by day: answers, sentiment, and the responses mentioning the theme by
-- NPS category (all NPS needs), so the themes page reads one row per theme and day however
-- many answers there are: rebuilt after a discovery or an edit, incremented as answers are placed
CREATE TABLE IF NOT EXISTS theme_rollup (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    theme_id TEXT NOT NULL,
    answers INTEGER NOT NULL,
    promoters INTEGER NOT NULL,
    passives INTEGER NOT NULL,
    detractors INTEGER NOT NULL,
    sentiment_sum REAL NOT NULL,
    sentiment_n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, theme_id)
);
