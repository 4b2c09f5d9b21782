//! Remediation tickets, their timeline and rules.

use super::*;

impl TicketStore for PgStore {
    fn create_ticket(&self, tenant: &str, t: &Ticket) -> Result<i64> {
        self.insert_ticket(tenant, t, None)?
            .ok_or_else(|| StoreError::Backend("ticket insert stored nothing".into()))
    }

    fn create_ticket_once(&self, tenant: &str, t: &Ticket, rule_key: &str) -> Result<Option<i64>> {
        self.insert_ticket(tenant, t, Some(rule_key))
    }

    fn ticket_rules(&self, tenant: &str) -> Result<Option<String>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT definition FROM ticket_rules WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn save_ticket_rules(&self, tenant: &str, definition: &str, actor: &str) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "INSERT INTO ticket_rules (tenant_id, definition, updated_by, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id) DO UPDATE SET definition = EXCLUDED.definition, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at",
                &[&tenant, &definition, &actor, &now],
            )?;
            Ok(())
        })
    }

    fn ticket(&self, tenant: &str, id: i64) -> Result<Option<Ticket>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT id, title, description, owner, severity, state, source, check_def, impact, sla_hours, due_at, verdict, created_by, created_at, updated_at, closed_at FROM tickets WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )?
            .map(|r| pg_ticket_row(&r)))
        })
    }

    fn list_tickets(&self, tenant: &str, state: Option<&str>, limit: u32) -> Result<Vec<Ticket>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, title, description, owner, severity, state, source, check_def, impact, sla_hours, due_at, verdict, created_by, created_at, updated_at, closed_at FROM tickets
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR state = $2) ORDER BY id DESC LIMIT $3",
                &[&tenant, &state, &limit],
            )?
            .iter()
            .map(pg_ticket_row)
            .collect())
        })
    }

    fn change_ticket(&self, tenant: &str, id: i64, ch: &TicketChange) -> Result<bool> {
        let now = now_ms();
        let verdict = ch.verdict.as_ref().map(|v| v.to_string());
        let detail = ch.detail.to_string();
        self.tx(|g| {
            let n = g.exec(
                "UPDATE tickets SET state = $4, closed_at = $5, verdict = COALESCE($6, verdict), updated_at = $7 WHERE tenant_id = $1 AND id = $2 AND state = $3",
                &[&tenant, &id, &ch.from_state, &ch.state, &ch.closed_at_ms, &verdict, &now],
            )?;
            if n == 0 {
                return Ok(false);
            }
            g.exec(
                "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&tenant, &id, &now, &ch.actor, &ch.kind, &detail],
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
        let now = now_ms();
        let detail = detail.to_string();
        self.tx(|g| {
            g.exec(
                "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&tenant, &id, &now, &actor, &kind, &detail],
            )?;
            Ok(())
        })
    }

    fn ticket_events(&self, tenant: &str, id: i64) -> Result<Vec<TicketEvent>> {
        self.tx(|g| {
            Ok(g.all("SELECT id, at, actor, kind, detail FROM ticket_events WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY id", &[&tenant, &id])?
                .iter()
                .map(|r| TicketEvent { id: r.get(0), at_ms: r.get(1), actor: r.get(2), kind: r.get(3), detail: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or(Value::Null) })
                .collect())
        })
    }

    fn csat_of_accounts(
        &self,
        tenant: &str,
        accounts: &[String],
        since_ms: i64,
    ) -> Result<(u64, u64)> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT COUNT(*) FILTER (WHERE score >= 4), COUNT(*) FROM feedback WHERE tenant_id = $1 AND field_type = 'csat' AND collected_at >= $2 AND account = ANY($3)",
                &[&tenant, &since_ms, &accounts],
            )?
            .map_or((0, 0), |r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64)))
        })
    }

    fn account_profiles(&self, tenant: &str, group_id: &str, limit: u32) -> Result<Vec<String>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT DISTINCT COALESCE(p.merged_into, pa.profile_id) FROM profile_accounts pa LEFT JOIN profiles p ON p.tenant_id = pa.tenant_id AND p.id = pa.profile_id
                 WHERE pa.tenant_id = $1 AND pa.group_id = $2 ORDER BY 1 LIMIT $3",
                &[&tenant, &group_id, &limit],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }
}
