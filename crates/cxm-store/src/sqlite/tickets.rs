//! Remediation tickets, their timeline and rules.

use super::*;

impl TicketStore for SqliteStore {
    fn create_ticket(&self, tenant: &str, t: &Ticket) -> Result<i64> {
        self.insert_ticket(tenant, t, None)?
            .ok_or_else(|| StoreError::Backend("ticket insert stored nothing".into()))
    }

    fn create_ticket_once(&self, tenant: &str, t: &Ticket, rule_key: &str) -> Result<Option<i64>> {
        self.insert_ticket(tenant, t, Some(rule_key))
    }

    fn ticket_rules(&self, tenant: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT definition FROM ticket_rules WHERE tenant_id = ?1",
                [tenant],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn save_ticket_rules(&self, tenant: &str, definition: &str, actor: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO ticket_rules (tenant_id, definition, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, definition, actor, now_ms()],
            )?;
            Ok(())
        })
    }

    fn ticket(&self, tenant: &str, id: i64) -> Result<Option<Ticket>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{TICKET_COLUMNS} WHERE tenant_id = ?1 AND id = ?2"),
                params![tenant, id],
                ticket_row,
            )
            .optional()?)
        })
    }

    fn list_tickets(&self, tenant: &str, state: Option<&str>, limit: u32) -> Result<Vec<Ticket>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("{TICKET_COLUMNS} WHERE tenant_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3"))?;
            let rows = st.query_map(params![tenant, state, limit], ticket_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn change_ticket(&self, tenant: &str, id: i64, ch: &TicketChange) -> Result<bool> {
        let now = now_ms();
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tickets SET state = ?4, closed_at = ?5, verdict = COALESCE(?6, verdict), updated_at = ?7 WHERE tenant_id = ?1 AND id = ?2 AND state = ?3",
                params![tenant, id, ch.from_state, ch.state, ch.closed_at_ms, ch.verdict.as_ref().map(|v| v.to_string()), now],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, id, now, ch.actor, ch.kind, ch.detail.to_string()],
            )?;
            Ok(true)
        })
    }

    fn note_ticket(
        &self,
        tenant: &str,
        id: i64,
        actor: &str,
        kind: &str,
        detail: &Value,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, id, now_ms(), actor, kind, detail.to_string()],
            )?;
            Ok(())
        })
    }

    fn ticket_events(&self, tenant: &str, id: i64) -> Result<Vec<TicketEvent>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id, at, actor, kind, detail FROM ticket_events WHERE tenant_id = ?1 AND ticket_id = ?2 ORDER BY id")?;
            let rows = st
                .query_map(params![tenant, id], |r| {
                    let d: String = r.get(4)?;
                    Ok(TicketEvent { id: r.get(0)?, at_ms: r.get(1)?, actor: r.get(2)?, kind: r.get(3)?, detail: serde_json::from_str(&d).unwrap_or(Value::Null) })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn csat_of_accounts(
        &self,
        tenant: &str,
        accounts: &[String],
        since_ms: i64,
    ) -> Result<(u64, u64)> {
        let accounts = serde_json::to_string(accounts)?;
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(SUM(score >= 4), 0), COUNT(*) FROM feedback WHERE tenant_id = ?1 AND field_type = 'csat' AND collected_at >= ?2
                   AND account IN (SELECT value FROM json_each(?3))",
                params![tenant, since_ms, accounts],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )?)
        })
    }

    fn account_profiles(&self, tenant: &str, group_id: &str, limit: u32) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT COALESCE(p.merged_into, pa.profile_id) FROM profile_accounts pa LEFT JOIN profiles p ON p.tenant_id = pa.tenant_id AND p.id = pa.profile_id
                 WHERE pa.tenant_id = ?1 AND pa.group_id = ?2 ORDER BY 1 LIMIT ?3",
            )?;
            let rows = st.query_map(params![tenant, group_id, limit], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
