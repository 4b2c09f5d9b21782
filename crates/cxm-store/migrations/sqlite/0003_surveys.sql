-- survey definitions, versioned: a new save is a new version; links point at the version they were made for
CREATE TABLE IF NOT EXISTS surveys (
    tenant_id TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, survey_id, version)
);
-- one link per invitation; displays and responses make response rates real
CREATE TABLE IF NOT EXISTS survey_links (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    identifier TEXT,
    channel TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    displayed_at INTEGER,
    responded_at INTEGER,
    follow_ups INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS survey_links_survey ON survey_links(tenant_id, survey_id);
CREATE INDEX IF NOT EXISTS survey_links_customer ON survey_links(tenant_id, identifier, created_at) WHERE identifier IS NOT NULL;
