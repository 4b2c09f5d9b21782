//! Erasure, the access export, consent and retention.

use super::*;

impl PrivacyStore for SqliteStore {
    fn customer_holdings(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Option<(crate::erase::Held, crate::erase::Counts)>> {
        self.rolled_back(|tx| crate::erase::collect(&mut SqliteSql(tx), tenant, profile_id))
    }

    fn erase_customer(
        &self,
        tenant: &str,
        profile_id: &str,
        erasure_id: &str,
        actor: &str,
    ) -> Result<Option<crate::erase::Counts>> {
        let now = now_ms();
        let out = self.write(|tx| {
            let mut db = SqliteSql(tx);
            let Some(counts) =
                crate::erase::erase(&mut db, tenant, profile_id, erasure_id, actor, now)?
            else {
                return Ok(None);
            };
            let body = serde_json::json!({"erasure_id": erasure_id, "removed": counts}).to_string();
            sqlite_chain(
                tx,
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
        })?;
        if out.is_some() {
            // deleted rows were zeroed in their pages (secure_delete); the WAL still holds the
            // pages as they were before, so it is checkpointed and cut to nothing
            self.truncate_wal();
        }
        Ok(out)
    }

    fn add_consent(
        &self,
        tenant: &str,
        profile_id: &str,
        c: &cxm_domain::consent::ConsentRecord,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO consents (tenant_id, profile_id, purpose, channel, status, source, actor, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![tenant, profile_id, c.purpose, c.channel, c.status.as_str(), c.source, c.actor, c.at_ms],
            )?;
            Ok(())
        })
    }

    fn consents(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Vec<cxm_domain::consent::ConsentRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT purpose, channel, status, source, actor, at FROM consents WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY id DESC")?;
            let rows = st
                .query_map(params![tenant, profile_id], |r| {
                    let status: String = r.get(2)?;
                    Ok(cxm_domain::consent::ConsentRecord {
                        purpose: r.get(0)?,
                        channel: r.get(1)?,
                        status: cxm_domain::consent::ConsentStatus::parse(&status).unwrap_or(cxm_domain::consent::ConsentStatus::Denied),
                        source: r.get(3)?,
                        actor: r.get(4)?,
                        at_ms: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn retention(&self, tenant: &str) -> Result<std::collections::BTreeMap<String, i64>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT data_class, days FROM retention WHERE tenant_id = ?1")?;
            let rows = st
                .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
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
        self.write(|tx| {
            match days {
                Some(d) => tx.execute(
                    "INSERT INTO retention (tenant_id, data_class, days, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant_id, data_class) DO UPDATE SET days = excluded.days, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                    params![tenant, class, d, actor, now],
                )?,
                None => tx.execute("DELETE FROM retention WHERE tenant_id = ?1 AND data_class = ?2", params![tenant, class])?,
            };
            let body = serde_json::json!({"class": class, "days": days}).to_string();
            sqlite_chain(tx, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "retention.set".into(), subject: format!("retention:{class}"), body }], now)?;
            Ok(())
        })
    }

    fn purge(&self, tenant: &str, now_ms: i64) -> Result<Purged> {
        let periods = crate::effective_retention(self.retention(tenant)?);
        let cutoff = |class: &str| periods.get(class).map(|d| now_ms - d * 86_400_000);
        self.write(|tx| {
            let mut out = Purged::default();
            if let Some(c) = cutoff("events") {
                out.events = tx.execute("DELETE FROM events WHERE tenant_id = ?1 AND ts < ?2", params![tenant, c])? as u64;
                if out.events > 0 {
                    tx.execute("DELETE FROM event_blocks WHERE tenant_id = ?1", [tenant])?;
                }
            }
            if let Some(c) = cutoff("feedback_text") {
                out.feedback_texts = tx.execute(
                    "UPDATE feedback SET text_value = NULL WHERE tenant_id = ?1 AND collected_at < ?2 AND text_value IS NOT NULL",
                    params![tenant, c],
                )? as u64;
            }
            if let Some(c) = cutoff("quarantine") {
                out.quarantined = tx.execute("DELETE FROM quarantine WHERE tenant_id = ?1 AND received_at < ?2", params![tenant, c])? as u64;
                tx.execute("DELETE FROM quarantine_days WHERE tenant_id = ?1 AND day < ?2", params![tenant, crate::day_of(c)])?;
            }
            if let Some(c) = cutoff("transcripts") {
                out.transcripts = tx.execute(
                    "UPDATE events SET payload = json_remove(payload, '$.properties.transcript', '$.properties.message', '$.properties.text')
                     WHERE tenant_id = ?1 AND category = 'conversation' AND ts < ?2
                       AND (json_extract(payload, '$.properties.transcript') IS NOT NULL OR json_extract(payload, '$.properties.message') IS NOT NULL
                            OR json_extract(payload, '$.properties.text') IS NOT NULL)",
                    params![tenant, c],
                )? as u64;
            }
            Ok(out)
        })
    }
}
