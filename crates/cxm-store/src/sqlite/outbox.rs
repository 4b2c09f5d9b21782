//! What leaves cxm later: webhook endpoints and deliveries, and queued email.

use super::*;

impl OutboxStore for SqliteStore {
    fn add_webhook(&self, tenant: &str, e: &WebhookEndpoint) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret, events, active, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.id, tenant, e.url, self.key.seal(sealed::WEBHOOK_SECRET, &e.secret), serde_json::to_string(&e.events)?, e.active, e.created_at_ms],
            )?;
            Ok(())
        })
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookEndpoint>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = ?1 ORDER BY created_at, id")?;
            let rows = st.query_map([tenant], endpoint_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|e| sealed::open_endpoint(&self.key, e)).collect()
        })
    }

    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<WebhookEndpoint>> {
        self.read(|c| {
            c.query_row("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2", params![tenant, id], endpoint_row)
                .optional()?
                .map(|e| sealed::open_endpoint(&self.key, e))
                .transpose()
        })
    }

    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])?;
            // nothing more is sent to a removed endpoint; its log stays
            tx.execute("UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint removed' WHERE tenant_id = ?1 AND endpoint_id = ?2 AND status = 'pending'", params![tenant, id])?;
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
        self.write(|tx| {
            let mut n = 0;
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, created_at, sealed)
                 VALUES (?8, ?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6, ?7)",
            )?;
            for e in endpoints.iter().filter(|e| e.active && e.wants(event_type)) {
                let msg = format!("msg_{}", uuid::Uuid::now_v7().simple());
                let sealed = secret.map(|v| self.key.seal(sealed::DELIVERY_SECRET, &v.to_string()));
                with_public_id(tx, "webhook_deliveries", |id| {
                    Ok(ins.execute(params![tenant, e.id, msg, event_type, body, now_ms, sealed, id])?)
                })?;
                n += 1;
            }
            Ok(n)
        })
    }

    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookDelivery>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, tenant_id, sealed
                 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![now_ms, limit], |r| Ok((delivery_row(r)?, r.get::<_, Option<String>>(13)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|(d, sealed)| sealed::open_delivery(&self.key, d, sealed)).collect()
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
        self.write(|tx| {
            tx.execute(
                "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3, last_status = ?4, last_error = ?5,
                   delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END,
                   sealed = CASE WHEN ?2 = 'pending' THEN sealed ELSE NULL END WHERE id = ?1",
                params![id, status, next_attempt_at_ms, code, error, now_ms],
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
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("{DELIVERY_COLUMNS} WHERE tenant_id = ?1 AND endpoint_id = ?2 ORDER BY id DESC LIMIT ?3"))?;
            let rows = st.query_map(params![tenant, endpoint_id, limit], delivery_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn queue_mail(&self, tenant: &str, mails: &[OutboundMail]) -> Result<usize> {
        let now = now_ms();
        self.write(|tx| {
            let mut put = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbound_mail (tenant_id, kind, reference, profile_id, to_address, subject, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut n = 0;
            for m in mails {
                n += put.execute(params![tenant, m.kind, m.reference, m.profile_id, m.to, m.subject, m.body, now])?;
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, kind, reference, profile_id, to_address, subject, body, status, detail, created_at FROM outbound_mail
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR reference = ?4)
                 ORDER BY id LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![tenant, status, kind, reference, limit], |r| {
                    Ok(OutboundMail { id: r.get(0)?, kind: r.get(1)?, reference: r.get(2)?, profile_id: r.get(3)?, to: r.get(4)?, subject: r.get(5)?, body: r.get(6)?, status: r.get(7)?, detail: r.get(8)?, created_at_ms: r.get(9)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn mark_mail(&self, tenant: &str, id: i64, status: &str, detail: &str) -> Result<()> {
        let now = now_ms();
        self.write(|tx| {
            tx.execute(
                "UPDATE outbound_mail SET status = ?3, detail = ?4, sent_at = ?5 WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
                params![tenant, id, status, detail, now],
            )?;
            Ok(())
        })
    }
}
