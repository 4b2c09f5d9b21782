//! Erasure, the access export, consent and retention.

use super::*;

impl PrivacyStore for PgStore {
    fn customer_holdings(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Option<(crate::erase::Held, crate::erase::Counts)>> {
        self.rolled_back(|g| crate::erase::collect(&mut PgSql(g), tenant, profile_id))
    }

    fn erase_customer(
        &self,
        tenant: &str,
        profile_id: &str,
        erasure_id: &str,
        actor: &str,
    ) -> Result<Option<crate::erase::Counts>> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))",
                &[&tenant],
            )?;
            let counts =
                crate::erase::erase(&mut PgSql(g), tenant, profile_id, erasure_id, actor, now)?;
            let Some(counts) = counts else {
                return Ok(None);
            };
            let body = serde_json::json!({"erasure_id": erasure_id, "removed": counts}).to_string();
            pg_chain(
                g,
                tenant,
                vec![cxm_domain::audit::NewAuditEntry {
                    actor: actor.into(),
                    kind: "customer.erased".into(),
                    subject: erasure_id.into(),
                    body,
                }],
                now,
            )?;
            Ok(Some(counts))
        })
    }

    fn add_consent(
        &self,
        tenant: &str,
        profile_id: &str,
        c: &cxm_domain::consent::ConsentRecord,
    ) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO consents (tenant_id, profile_id, purpose, channel, status, source, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&tenant, &profile_id, &c.purpose, &c.channel, &c.status.as_str(), &c.source, &c.actor, &c.at_ms],
            )?;
            Ok(())
        })
    }

    fn consents(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Vec<cxm_domain::consent::ConsentRecord>> {
        self.tx(|g| {
            Ok(g.all("SELECT purpose, channel, status, source, actor, at FROM consents WHERE tenant_id = $1 AND profile_id = $2 ORDER BY id DESC", &[&tenant, &profile_id])?
                .iter()
                .map(|r| cxm_domain::consent::ConsentRecord {
                    purpose: r.get(0),
                    channel: r.get(1),
                    status: cxm_domain::consent::ConsentStatus::parse(r.get(2)).unwrap_or(cxm_domain::consent::ConsentStatus::Denied),
                    source: r.get(3),
                    actor: r.get(4),
                    at_ms: r.get(5),
                })
                .collect())
        })
    }

    fn retention(&self, tenant: &str) -> Result<std::collections::BTreeMap<String, i64>> {
        self.tx(|g| {
            let set = g
                .all(
                    "SELECT data_class, days FROM retention WHERE tenant_id = $1",
                    &[&tenant],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok(set)
        })
    }

    fn set_retention(
        &self,
        tenant: &str,
        class: &str,
        days: Option<i64>,
        actor: &str,
    ) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            match days {
                Some(d) => g.exec(
                    "INSERT INTO retention (tenant_id, data_class, days, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, data_class) DO UPDATE SET days = excluded.days, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                    &[&tenant, &class, &d, &actor, &now],
                )?,
                None => g.exec("DELETE FROM retention WHERE tenant_id = $1 AND data_class = $2", &[&tenant, &class])?,
            };
            let body = serde_json::json!({"class": class, "days": days}).to_string();
            pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "retention.set".into(), subject: format!("retention:{class}"), body }], now)?;
            Ok(())
        })
    }

    fn purge(&self, tenant: &str, now_ms: i64) -> Result<Purged> {
        let periods = crate::effective_retention(self.retention(tenant)?);
        let cutoff = |class: &str| periods.get(class).map(|d| now_ms - d * 86_400_000);
        self.tx(|g| {
            let mut out = Purged::default();
            if let Some(c) = cutoff("events") {
                out.events = g.exec("DELETE FROM events WHERE tenant_id = $1 AND ts < $2", &[&tenant, &c])?;
                if out.events > 0 {
                    g.exec("DELETE FROM event_blocks WHERE tenant_id = $1", &[&tenant])?;
                }
            }
            if let Some(c) = cutoff("feedback_text") {
                out.feedback_texts = g.exec(
                    "UPDATE feedback SET text_value = NULL WHERE tenant_id = $1 AND collected_at < $2 AND text_value IS NOT NULL",
                    &[&tenant, &c],
                )?;
            }
            if let Some(c) = cutoff("quarantine") {
                out.quarantined = g.exec("DELETE FROM quarantine WHERE tenant_id = $1 AND received_at < $2", &[&tenant, &c])?;
                let day = crate::day_of(c);
                g.exec("DELETE FROM quarantine_days WHERE tenant_id = $1 AND day < $2", &[&tenant, &day])?;
            }
            if let Some(c) = cutoff("transcripts") {
                out.transcripts = g.exec(
                    "UPDATE events SET payload = ((payload::jsonb #- '{properties,transcript}') #- '{properties,message}' #- '{properties,text}')::text
                     WHERE tenant_id = $1 AND category = 'conversation' AND ts < $2
                       AND (payload::jsonb -> 'properties') ?| array['transcript', 'message', 'text']",
                    &[&tenant, &c],
                )?;
            }
            Ok(out)
        })
    }
}
