-- invitations a survey's targeting made from events: pending until an integration (or the
-- mailer) delivers them, or held back by a contact rule; one per survey and triggering event
CREATE TABLE IF NOT EXISTS survey_invitations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    identifier TEXT NOT NULL,
    channel TEXT NOT NULL,
    trigger_event TEXT NOT NULL,
    trigger_message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    url TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (tenant_id, survey_id, trigger_message_id)
);
CREATE INDEX IF NOT EXISTS survey_invitations_status ON survey_invitations(tenant_id, status, id);
-- how far each tenant's event log has been read for survey triggers
CREATE TABLE IF NOT EXISTS survey_trigger_cursors (
    tenant_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
