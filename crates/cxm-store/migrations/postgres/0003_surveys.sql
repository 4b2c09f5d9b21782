-- survey definitions, versioned: a new save is a new version; links point at the version they were made for
CREATE TABLE IF NOT EXISTS surveys (
    tenant_id TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, survey_id, version)
);
-- one link per invitation; displays and responses make response rates real
CREATE TABLE IF NOT EXISTS survey_links (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    identifier TEXT,
    channel TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    displayed_at BIGINT,
    responded_at BIGINT,
    follow_ups BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS survey_links_survey ON survey_links(tenant_id, survey_id);
CREATE INDEX IF NOT EXISTS survey_links_customer ON survey_links(tenant_id, identifier, created_at) WHERE identifier IS NOT NULL;
