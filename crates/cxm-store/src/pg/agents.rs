//! Governed agents: agents, policy sets, the decision log, reviews and step-ups.

use super::*;

impl AgentStore for PgStore {
    fn save_agent(&self, tenant: &str, a: &Agent) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO agents (tenant_id, name, kind, description, disclosure, created_by, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant_id, name) DO UPDATE SET kind = excluded.kind, description = excluded.description, disclosure = excluded.disclosure, disabled_at = excluded.disabled_at",
                &[&tenant, &a.name, &a.kind, &a.description, &a.disclosure, &a.created_by, &a.created_at_ms, &a.disabled_at_ms],
            )?;
            Ok(())
        })
    }

    fn agents(&self, tenant: &str) -> Result<Vec<Agent>> {
        self.tx(|g| {
            Ok(g.all("SELECT name, kind, description, disclosure, created_by, created_at, disabled_at FROM agents WHERE tenant_id = $1 ORDER BY name", &[&tenant])?
                .iter()
                .map(pg_agent_row)
                .collect())
        })
    }

    fn agent(&self, tenant: &str, name: &str) -> Result<Option<Agent>> {
        self.tx(|g| {
            Ok(g.opt("SELECT name, kind, description, disclosure, created_by, created_at, disabled_at FROM agents WHERE tenant_id = $1 AND name = $2", &[&tenant, &name])?
                .as_ref()
                .map(pg_agent_row))
        })
    }

    fn save_policy_set(
        &self,
        tenant: &str,
        text: &str,
        note: &str,
        actor: &str,
        activate: bool,
    ) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            let v: i64 = g.opt("SELECT COALESCE(MAX(version), 0)::bigint + 1 FROM policy_sets WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(1);
            let activated = activate.then_some(now);
            g.exec(
                "INSERT INTO policy_sets (tenant_id, version, text, note, created_by, created_at, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&tenant, &v, &text, &note, &actor, &now, &activated],
            )?;
            let mut entries = vec![pg_policy_entry("policy.saved", v, actor, serde_json::json!({"version": v, "note": note, "sha256": cxm_domain::audit::body_hash(text)}))];
            if activate {
                entries.push(pg_policy_entry("policy.activated", v, actor, serde_json::json!({"version": v})));
            }
            pg_chain(g, tenant, entries, now)?;
            Ok(v)
        })
    }

    fn activate_policy_set(&self, tenant: &str, version: i64, actor: &str) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))",
                &[&tenant],
            )?;
            let n = g.exec(
                "UPDATE policy_sets SET activated_at = $3 WHERE tenant_id = $1 AND version = $2",
                &[&tenant, &version, &now],
            )?;
            if n > 0 {
                pg_chain(
                    g,
                    tenant,
                    vec![pg_policy_entry(
                        "policy.activated",
                        version,
                        actor,
                        serde_json::json!({"version": version}),
                    )],
                    now,
                )?;
            }
            Ok(n > 0)
        })
    }

    fn policy_sets(&self, tenant: &str) -> Result<Vec<PolicySetRow>> {
        self.tx(|g| {
            Ok(g.all("SELECT version, text, note, created_by, created_at, activated_at FROM policy_sets WHERE tenant_id = $1 ORDER BY version DESC", &[&tenant])?
                .iter()
                .map(pg_policy_row)
                .collect())
        })
    }

    fn active_policy_set(&self, tenant: &str) -> Result<Option<PolicySetRow>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT version, text, note, created_by, created_at, activated_at FROM policy_sets WHERE tenant_id = $1 AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC LIMIT 1",
                &[&tenant],
            )?
            .as_ref()
            .map(pg_policy_row))
        })
    }

    fn record_decisions(&self, batch: &[NewDecision]) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            let mut by_tenant: std::collections::BTreeMap<&str, Vec<&NewDecision>> = std::collections::BTreeMap::new();
            for d in batch {
                by_tenant.entry(d.tenant_id.as_str()).or_default().push(d);
            }
            // tenants in a fixed order: two servers never wait on each other's locks in a circle
            for (tenant, ds) in by_tenant {
                g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
                let entries = ds.iter().map(|d| d.record.audit_entry(&d.actor)).collect();
                let chained = pg_chain(g, tenant, entries, now)?;
                for (d, e) in ds.iter().zip(chained) {
                    let r = &d.record;
                    let status = d.review_due_at_ms.map(|_| "pending");
                    g.exec(
                        "INSERT INTO decisions (tenant_id, id, audit_seq, agent, action, customer, resource, request, facts, used, policy_version, outcome, level, policy_ids, reasons, created_at, review_status, review_due_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                        &[&tenant, &r.id, &e.seq, &r.agent, &r.action, &r.customer, &r.resource, &r.request.to_string(), &r.facts.to_string(), &r.used.to_string(),
                          &r.policy_version, &r.outcome, &r.level, &serde_json::to_string(&r.policy_ids)?, &serde_json::to_string(&r.reasons)?, &r.at_ms,
                          &status, &d.review_due_at_ms],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn decision(&self, tenant: &str, id: &str) -> Result<Option<StoredDecision>> {
        self.tx(|g| {
            Ok(g.opt(
                concat!(
                    "SELECT ",
                    pg_decision_columns!(),
                    " FROM decisions WHERE tenant_id = $1 AND id = $2"
                ),
                &[&tenant, &id],
            )?
            .as_ref()
            .map(pg_decision_row))
        })
    }

    fn decisions(&self, tenant: &str, q: &DecisionQuery) -> Result<Vec<StoredDecision>> {
        let limit = i64::from(q.limit);
        self.tx(|g| {
            Ok(g.all(
                concat!("SELECT ", pg_decision_columns!(), " FROM decisions WHERE tenant_id = $1 AND ($2::text IS NULL OR agent = $2) AND ($3::text IS NULL OR outcome = $3)
                 AND ($4::text IS NULL OR review_status = $4) AND ($5::text IS NULL OR customer = $5) AND ($6::bigint IS NULL OR created_at < $6)
                 ORDER BY created_at DESC, id DESC LIMIT $7"),
                &[&tenant, &q.agent, &q.outcome, &q.review_status, &q.customer, &q.before_ms, &limit],
            )?
            .iter()
            .map(pg_decision_row)
            .collect())
        })
    }

    fn review_decision(
        &self,
        tenant: &str,
        r: &cxm_domain::decision::Review,
    ) -> Result<ReviewResult> {
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            let Some(d) = g.opt(concat!("SELECT ", pg_decision_columns!(), " FROM decisions WHERE tenant_id = $1 AND id = $2 FOR UPDATE"), &[&tenant, &r.decision_id])?.as_ref().map(pg_decision_row) else {
                return Ok(ReviewResult::NotFound);
            };
            if d.review_status.as_deref() != Some("pending") {
                return Ok(ReviewResult::NotPending(d));
            }
            g.exec(
                "UPDATE decisions SET review_status = $3, reviewed_by = $4, review_reason = $5, reviewed_at = $6 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &r.decision_id, &r.verdict.as_str(), &r.by, &r.reason, &r.at_ms],
            )?;
            pg_chain(g, tenant, vec![r.audit_entry()], r.at_ms)?;
            let d = g
                .opt(concat!("SELECT ", pg_decision_columns!(), " FROM decisions WHERE tenant_id = $1 AND id = $2"), &[&tenant, &r.decision_id])?
                .as_ref()
                .map(pg_decision_row)
                .ok_or_else(|| StoreError::Backend("reviewed decision vanished".into()))?;
            Ok(ReviewResult::Done(d))
        })
    }

    fn redeem_decision(&self, tenant: &str, id: &str, actor: &str, at_ms: i64) -> Result<bool> {
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            let n = g.exec("UPDATE decisions SET redeemed_at = $3 WHERE tenant_id = $1 AND id = $2 AND redeemed_at IS NULL", &[&tenant, &id, &at_ms])?;
            if n > 0 {
                let body = serde_json::json!({"decision_id": id}).to_string();
                pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "decision.redeemed".into(), subject: id.into(), body }], at_ms)?;
            }
            Ok(n > 0)
        })
    }

    fn report_outcome(
        &self,
        tenant: &str,
        id: &str,
        resolved: bool,
        intent: Option<&str>,
        actor: &str,
        at_ms: i64,
    ) -> Result<Option<StoredDecision>> {
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            let n = g.exec(
                "UPDATE decisions SET resolved = $3, intent = $4, reported_at = $5 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id, &resolved, &intent, &at_ms],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let body = serde_json::json!({"decision_id": id, "resolved": resolved, "intent": intent}).to_string();
            pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "decision.outcome".into(), subject: id.into(), body }], at_ms)?;
            Ok(g.opt(concat!("SELECT ", pg_decision_columns!(), " FROM decisions WHERE tenant_id = $1 AND id = $2"), &[&tenant, &id])?.as_ref().map(pg_decision_row))
        })
    }

    fn decisions_by_audit_seq(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredDecision>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(concat!("SELECT ", pg_decision_columns!(), " FROM decisions WHERE tenant_id = $1 AND audit_seq > $2 ORDER BY audit_seq LIMIT $3"), &[&tenant, &after_seq, &limit])?
                .iter()
                .map(pg_decision_row)
                .collect())
        })
    }

    fn save_step_up(&self, tenant: &str, s: &StepUp) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO step_ups (tenant_id, id, customer, profile_id, channel, sent_to, code_hash, attempts_left, expires_at, verified_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[&tenant, &s.id, &s.customer, &s.profile_id, &s.channel, &s.sent_to, &s.code_hash, &s.attempts_left, &s.expires_at_ms, &s.verified_at_ms, &s.created_by, &s.created_at_ms],
            )?;
            Ok(())
        })
    }

    fn step_up(&self, tenant: &str, id: &str) -> Result<Option<StepUp>> {
        self.tx(|g| {
            Ok(g.opt(
                concat!(
                    "SELECT ",
                    step_up_columns!(),
                    " FROM step_ups WHERE tenant_id = $1 AND id = $2"
                ),
                &[&tenant, &id],
            )?
            .as_ref()
            .map(pg_step_up_row))
        })
    }

    fn attempt_step_up(
        &self,
        tenant: &str,
        id: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<Option<StepUp>> {
        self.tx(|g| {
            let Some(s) = g.opt(concat!("SELECT ", step_up_columns!(), " FROM step_ups WHERE tenant_id = $1 AND id = $2 FOR UPDATE"), &[&tenant, &id])?.as_ref().map(pg_step_up_row) else {
                return Ok(None);
            };
            if s.verified_at_ms.is_none() && s.attempts_left > 0 && s.expires_at_ms > now_ms {
                if s.code_hash == code_hash {
                    g.exec("UPDATE step_ups SET verified_at = $3 WHERE tenant_id = $1 AND id = $2", &[&tenant, &id, &now_ms])?;
                } else {
                    g.exec("UPDATE step_ups SET attempts_left = attempts_left - 1 WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])?;
                }
            }
            Ok(g.opt(concat!("SELECT ", step_up_columns!(), " FROM step_ups WHERE tenant_id = $1 AND id = $2"), &[&tenant, &id])?.as_ref().map(pg_step_up_row))
        })
    }
}
