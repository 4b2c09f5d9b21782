-- email to customers other than survey invitations (a closed ticket's "it is fixed"): queued
-- with the change that causes it, sent by the mail worker when an SMTP relay is configured;
-- one per customer and reason, so closing a ticket twice mails nobody twice
CREATE TABLE IF NOT EXISTS outbound_mail (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reference TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    detail TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    UNIQUE (tenant_id, kind, reference, profile_id)
);
CREATE INDEX IF NOT EXISTS outbound_mail_pending ON outbound_mail(tenant_id, status, id);
