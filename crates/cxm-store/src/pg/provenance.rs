//! Signing keys, signed messages, content credentials keys, audit checkpoints and the admin entries of the audit chain.

use super::*;

impl ProvenanceStore for PgStore {
    fn add_signing_key(&self, tenant: &str, k: &SigningKeyRow, actor: &str) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            g.exec("UPDATE signing_keys SET retired_at = $2 WHERE tenant_id = $1 AND retired_at IS NULL", &[&tenant, &now])?;
            g.exec(
                "INSERT INTO signing_keys (tenant_id, kid, public_key, secret_key, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&tenant, &k.kid, &k.public_key, &self.key.seal(sealed::SIGNING_KEY, &k.secret_key), &k.created_at_ms],
            )?;
            let body = serde_json::json!({"kid": k.kid, "public_key": k.public_key}).to_string();
            pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "signing_key.added".into(), subject: format!("key:{}", k.kid), body }], now)?;
            Ok(())
        })
    }

    fn signing_keys(&self, tenant: &str) -> Result<Vec<SigningKeyRow>> {
        self.tx(|g| {
            g.all("SELECT kid, public_key, secret_key, created_at, retired_at, revoked_at, revoke_reason FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at DESC, kid", &[&tenant])?
                .iter()
                .map(|r| {
                    let secret: String = r.get(2);
                    Ok(SigningKeyRow { kid: r.get(0), public_key: r.get(1), secret_key: self.key.open(sealed::SIGNING_KEY, &secret)?, created_at_ms: r.get(3), retired_at_ms: r.get(4), revoked_at_ms: r.get(5), revoke_reason: r.get(6) })
                })
                .collect::<Result<Vec<_>>>()
        })
    }

    fn revoke_signing_key(
        &self,
        tenant: &str,
        kid: &str,
        reason: &str,
        actor: &str,
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            let n = g.exec(
                "UPDATE signing_keys SET revoked_at = $3, revoke_reason = $4, retired_at = COALESCE(retired_at, $3) WHERE tenant_id = $1 AND kid = $2 AND revoked_at IS NULL",
                &[&tenant, &kid, &now, &reason],
            )?;
            if n > 0 {
                let body = serde_json::json!({"kid": kid, "reason": reason}).to_string();
                pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "signing_key.revoked".into(), subject: format!("key:{kid}"), body }], now)?;
            }
            Ok(n > 0)
        })
    }

    fn save_signed_message(&self, tenant: &str, m: &SignedMessage, actor: &str) -> Result<()> {
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            g.exec(
                "INSERT INTO signed_messages (tenant_id, id, kid, sender, sender_kind, customer, channel, sha256, disclosure, jws, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[&tenant, &m.id, &m.kid, &m.sender, &m.sender_kind, &m.customer, &m.channel, &m.sha256, &m.disclosure, &m.jws, &m.created_at_ms],
            )?;
            let body = serde_json::json!({"id": m.id, "kid": m.kid, "sender": m.sender, "sha256": m.sha256, "disclosure_shown": m.disclosure}).to_string();
            pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "message.signed".into(), subject: m.id.clone(), body }], m.created_at_ms)?;
            Ok(())
        })
    }

    fn signed_message(&self, tenant: &str, id: &str) -> Result<Option<SignedMessage>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT id, kid, sender, sender_kind, customer, channel, sha256, disclosure, jws, created_at FROM signed_messages WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )?
            .map(|r| SignedMessage { id: r.get(0), kid: r.get(1), sender: r.get(2), sender_kind: r.get(3), customer: r.get(4), channel: r.get(5), sha256: r.get(6), disclosure: r.get(7), jws: r.get(8), created_at_ms: r.get(9) }))
        })
    }

    fn content_key(&self, tenant: &str) -> Result<Option<(String, String)>> {
        self.tx(|g| {
            g.opt(
                "SELECT cert_chain_pem, key_pem FROM content_keys WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| {
                let key: String = r.get(1);
                Ok::<_, StoreError>((r.get(0), self.key.open(sealed::CONTENT_KEY, &key)?))
            })
            .transpose()
        })
    }

    fn save_content_key(&self, tenant: &str, chain_pem: &str, key_pem: &str) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("INSERT INTO content_keys (tenant_id, cert_chain_pem, key_pem, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", &[&tenant, &chain_pem, &self.key.seal(sealed::CONTENT_KEY, key_pem), &now])?;
            Ok(())
        })
    }

    fn save_checkpoint(&self, tenant: &str, cp: &AuditCheckpoint) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO audit_checkpoints (tenant_id, seq, hash, kid, signature, at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&tenant, &cp.seq, &cp.hash, &cp.kid, &cp.signature, &cp.at_ms],
            )?;
            Ok(())
        })
    }

    fn checkpoints(&self, tenant: &str) -> Result<Vec<AuditCheckpoint>> {
        self.tx(|g| {
            Ok(g.all("SELECT seq, hash, kid, signature, at FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq", &[&tenant])?
                .iter()
                .map(|r| AuditCheckpoint { seq: r.get(0), hash: r.get(1), kid: r.get(2), signature: r.get(3), at_ms: r.get(4) })
                .collect())
        })
    }

    fn append_audit(
        &self,
        tenant: &str,
        e: &cxm_domain::audit::NewAuditEntry,
    ) -> Result<cxm_domain::audit::AuditEntry> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))",
                &[&tenant],
            )?;
            let mut out = pg_chain(g, tenant, vec![e.clone()], now)?;
            out.pop()
                .ok_or_else(|| StoreError::Backend("nothing appended".into()))
        })
    }

    fn audit_entries(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<cxm_domain::audit::AuditEntry>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all("SELECT seq, at, actor, kind, subject, body, prev_hash, hash, body_hash FROM audit_log WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", &[&tenant, &after_seq, &limit])?
                .iter()
                .map(|r| cxm_domain::audit::AuditEntry { seq: r.get(0), at_ms: r.get(1), actor: r.get(2), kind: r.get(3), subject: r.get(4), body: r.get(5), prev_hash: r.get(6), hash: r.get(7), body_hash: r.get(8) })
                .collect())
        })
    }
}
