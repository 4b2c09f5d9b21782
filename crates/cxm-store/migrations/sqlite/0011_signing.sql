-- provenance: each tenant's Ed25519 signing keys (one active; retired keys still verify,
-- revoked ones do not), the messages signed with them, and signed checkpoints of the audit chain
CREATE TABLE IF NOT EXISTS signing_keys (
    tenant_id TEXT NOT NULL,
    kid TEXT NOT NULL,
    public_key TEXT NOT NULL,
    secret_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    revoked_at INTEGER,
    revoke_reason TEXT,
    PRIMARY KEY (tenant_id, kid)
);
CREATE TABLE IF NOT EXISTS signed_messages (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kid TEXT NOT NULL,
    sender TEXT NOT NULL,
    sender_kind TEXT NOT NULL,
    customer TEXT,
    channel TEXT,
    sha256 TEXT NOT NULL,
    disclosure TEXT,
    jws TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tenant_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    kid TEXT NOT NULL,
    signature TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
-- C2PA content credentials: each tenant's certificate chain and signing key for images and PDFs
CREATE TABLE IF NOT EXISTS content_keys (
    tenant_id TEXT PRIMARY KEY,
    cert_chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
