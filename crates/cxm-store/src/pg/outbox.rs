//! What leaves cxm later: webhook endpoints and deliveries, and queued email.

use super::*;

/// How long a node's claim on a webhook delivery lasts before another node may take it.
const WEBHOOK_CLAIM_MS: i64 = 60_000;

impl OutboxStore for PgStore {
    fn add_webhook(&self, tenant: &str, e: &WebhookEndpoint) -> Result<()> {
        let events = serde_json::to_string(&e.events)?;
        let active = i64::from(e.active);
        self.tx(|g| {
            g.exec(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret, events, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&e.id, &tenant, &e.url, &self.key.seal(sealed::WEBHOOK_SECRET, &e.secret), &events, &active, &e.created_at_ms],
            )?;
            Ok(())
        })
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookEndpoint>> {
        self.tx(|g| {
            g.all("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id", &[&tenant])?
                .iter()
                .map(|r| sealed::open_endpoint(&self.key, pg_endpoint_row(r)))
                .collect::<Result<Vec<_>>>()
        })
    }

    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<WebhookEndpoint>> {
        self.tx(|g| {
            g.opt("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])?
                .map(|r| sealed::open_endpoint(&self.key, pg_endpoint_row(&r)))
                .transpose()
        })
    }

    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<bool> {
        self.tx(|g| {
            let n = g.exec("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])?;
            g.exec(
                "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint removed' WHERE tenant_id = $1 AND endpoint_id = $2 AND status = 'pending'",
                &[&tenant, &id],
            )?;
            Ok(n > 0)
        })
    }

    fn queue_webhook(
        &self,
        tenant: &str,
        event_type: &str,
        payload: &Value,
        secret: Option<&Value>,
        now_ms: i64,
    ) -> Result<usize> {
        let endpoints = self.webhooks(tenant)?;
        let body = payload.to_string();
        self.tx(|g| {
            let mut n = 0;
            for e in endpoints.iter().filter(|e| e.active && e.wants(event_type)) {
                let msg = format!("msg_{}", uuid::Uuid::now_v7().simple());
                let sealed = secret.map(|v| self.key.seal(sealed::DELIVERY_SECRET, &v.to_string()));
                with_public_id(g, "webhook_deliveries", |g, id| {
                    g.exec(
                        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, created_at, sealed)
                         VALUES ($8, $1, $2, $3, $4, $5, 'pending', 0, $6, $6, $7) ON CONFLICT DO NOTHING",
                        &[&tenant, &e.id, &msg, &event_type, &body, &now_ms, &sealed, &id],
                    )
                })?;
                n += 1;
            }
            Ok(n)
        })
    }

    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let limit = i64::from(limit);
        let claimed_until = now_ms + WEBHOOK_CLAIM_MS;
        self.tx(|g| {
            // several nodes drain one outbox: each claims what it takes (rows another node
            // is claiming are skipped, not waited for) by moving it out of the due window; a
            // node that dies mid-delivery leaves its rows due again once the claim runs out
            let mut rows = g.all(
                "WITH due AS (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
                              ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE webhook_deliveries d SET next_attempt_at = $3 FROM due WHERE d.id = due.id
                 RETURNING d.id, d.endpoint_id, d.message_id, d.event_type, d.payload, d.status, d.attempts, d.next_attempt_at,
                           d.last_status, d.last_error, d.created_at, d.delivered_at, d.tenant_id, d.sealed",
                &[&now_ms, &limit, &claimed_until],
            )?;
            rows.sort_by_key(|r| r.get::<_, i64>(0));
            rows.iter()
                .map(|r| sealed::open_delivery(&self.key, pg_delivery_row(r), r.get(13)))
                .collect::<Result<Vec<_>>>()
        })
    }

    fn settle_webhook(
        &self,
        id: i64,
        status: &str,
        next_attempt_at_ms: i64,
        code: Option<i64>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = $3, last_status = $4, last_error = $5,
                   delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE delivered_at END,
                   sealed = CASE WHEN $2 = 'pending' THEN sealed ELSE NULL END WHERE id = $1",
                &[&id, &status, &next_attempt_at_ms, &code, &error, &now_ms],
            )?;
            Ok(())
        })
    }

    fn webhook_deliveries(
        &self,
        tenant: &str,
        endpoint_id: &str,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, tenant_id
                 FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT $3",
                &[&tenant, &endpoint_id, &limit],
            )?
            .iter()
            .map(pg_delivery_row)
            .collect())
        })
    }

    fn queue_mail(&self, tenant: &str, mails: &[OutboundMail]) -> Result<usize> {
        let now = now_ms();
        self.tx(|g| {
            let mut n = 0;
            for m in mails {
                n += g.exec(
                    "INSERT INTO outbound_mail (tenant_id, kind, reference, profile_id, to_address, subject, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT DO NOTHING",
                    &[&tenant, &m.kind, &m.reference, &m.profile_id, &m.to, &m.subject, &m.body, &now],
                )? as usize;
            }
            Ok(n)
        })
    }

    fn list_mail(
        &self,
        tenant: &str,
        status: Option<&str>,
        about: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<OutboundMail>> {
        let (kind, reference) = about.unzip();
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, kind, reference, profile_id, to_address, subject, body, status, detail, created_at FROM outbound_mail
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR reference = $4)
                 ORDER BY id LIMIT $5",
                &[&tenant, &status, &kind, &reference, &limit],
            )?
            .iter()
            .map(|r| OutboundMail { id: r.get(0), kind: r.get(1), reference: r.get(2), profile_id: r.get(3), to: r.get(4), subject: r.get(5), body: r.get(6), status: r.get(7), detail: r.get(8), created_at_ms: r.get(9) })
            .collect())
        })
    }

    fn mark_mail(&self, tenant: &str, id: i64, status: &str, detail: &str) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "UPDATE outbound_mail SET status = $3, detail = $4, sent_at = $5 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
                &[&tenant, &id, &status, &detail, &now],
            )?;
            Ok(())
        })
    }
}
