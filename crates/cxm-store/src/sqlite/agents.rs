//! Governed agents: agents, policy sets, the decision log, reviews and step-ups.

use super::*;

impl AgentStore for SqliteStore {
    fn save_agent(&self, tenant: &str, a: &Agent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO agents (tenant_id, name, kind, description, disclosure, created_by, created_at, disabled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant_id, name) DO UPDATE SET kind = excluded.kind, description = excluded.description, disclosure = excluded.disclosure, disabled_at = excluded.disabled_at",
                params![tenant, a.name, a.kind, a.description, a.disclosure, a.created_by, a.created_at_ms, a.disabled_at_ms],
            )?;
            Ok(())
        })
    }

    fn agents(&self, tenant: &str) -> Result<Vec<Agent>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT name, kind, description, disclosure, created_by, created_at, disabled_at FROM agents WHERE tenant_id = ?1 ORDER BY name")?;
            let rows = st.query_map([tenant], agent_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn agent(&self, tenant: &str, name: &str) -> Result<Option<Agent>> {
        self.read(|c| {
            Ok(c.query_row("SELECT name, kind, description, disclosure, created_by, created_at, disabled_at FROM agents WHERE tenant_id = ?1 AND name = ?2", params![tenant, name], agent_row).optional()?)
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
        self.write(|tx| {
            let v: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM policy_sets WHERE tenant_id = ?1", [tenant], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO policy_sets (tenant_id, version, text, note, created_by, created_at, activated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![tenant, v, text, note, actor, now, activate.then_some(now)],
            )?;
            let mut entries = vec![policy_entry("policy.saved", v, actor, serde_json::json!({"version": v, "note": note, "sha256": cxm_domain::audit::body_hash(text)}))];
            if activate {
                entries.push(policy_entry("policy.activated", v, actor, serde_json::json!({"version": v})));
            }
            sqlite_chain(tx, tenant, entries, now)?;
            Ok(v)
        })
    }

    fn activate_policy_set(&self, tenant: &str, version: i64, actor: &str) -> Result<bool> {
        let now = now_ms();
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE policy_sets SET activated_at = ?3 WHERE tenant_id = ?1 AND version = ?2",
                params![tenant, version, now],
            )?;
            if n > 0 {
                sqlite_chain(
                    tx,
                    tenant,
                    vec![policy_entry(
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
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT version, text, note, created_by, created_at, activated_at FROM policy_sets WHERE tenant_id = ?1 ORDER BY version DESC")?;
            let rows = st.query_map([tenant], policy_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn active_policy_set(&self, tenant: &str) -> Result<Option<PolicySetRow>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT version, text, note, created_by, created_at, activated_at FROM policy_sets WHERE tenant_id = ?1 AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC LIMIT 1",
                [tenant],
                policy_row,
            )
            .optional()?)
        })
    }

    fn record_decisions(&self, batch: &[NewDecision]) -> Result<()> {
        let now = now_ms();
        self.write(|tx| {
            let mut by_tenant: std::collections::BTreeMap<&str, Vec<&NewDecision>> = std::collections::BTreeMap::new();
            for d in batch {
                by_tenant.entry(d.tenant_id.as_str()).or_default().push(d);
            }
            let mut put = tx.prepare_cached(
                "INSERT INTO decisions (tenant_id, id, audit_seq, agent, action, customer, resource, request, facts, used, policy_version, outcome, level, policy_ids, reasons, created_at, review_status, review_due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )?;
            for (tenant, ds) in by_tenant {
                let entries = ds.iter().map(|d| d.record.audit_entry(&d.actor)).collect();
                let chained = sqlite_chain(tx, tenant, entries, now)?;
                for (d, e) in ds.iter().zip(chained) {
                    let r = &d.record;
                    put.execute(params![
                        tenant, r.id, e.seq, r.agent, r.action, r.customer, r.resource, r.request.to_string(), r.facts.to_string(), r.used.to_string(),
                        r.policy_version, r.outcome, r.level, serde_json::to_string(&r.policy_ids)?, serde_json::to_string(&r.reasons)?, r.at_ms,
                        d.review_due_at_ms.map(|_| "pending"), d.review_due_at_ms
                    ])?;
                }
            }
            Ok(())
        })
    }

    fn decision(&self, tenant: &str, id: &str) -> Result<Option<StoredDecision>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions WHERE tenant_id = ?1 AND id = ?2"
                ),
                params![tenant, id],
                decision_row,
            )
            .optional()?)
        })
    }

    fn decisions(&self, tenant: &str, q: &DecisionQuery) -> Result<Vec<StoredDecision>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions WHERE tenant_id = ?1 AND (?2 IS NULL OR agent = ?2) AND (?3 IS NULL OR outcome = ?3)
                 AND (?4 IS NULL OR review_status = ?4) AND (?5 IS NULL OR customer = ?5) AND (?6 IS NULL OR created_at < ?6)
                 ORDER BY created_at DESC, id DESC LIMIT ?7"
            ))?;
            let rows = st
                .query_map(params![tenant, q.agent, q.outcome, q.review_status, q.customer, q.before_ms, q.limit], decision_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn review_decision(
        &self,
        tenant: &str,
        r: &cxm_domain::decision::Review,
    ) -> Result<ReviewResult> {
        self.write(|tx| {
            let Some(d) = tx.query_row(&format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE tenant_id = ?1 AND id = ?2"), params![tenant, r.decision_id], decision_row).optional()? else {
                return Ok(ReviewResult::NotFound);
            };
            if d.review_status.as_deref() != Some("pending") {
                return Ok(ReviewResult::NotPending(d));
            }
            tx.execute(
                "UPDATE decisions SET review_status = ?3, reviewed_by = ?4, review_reason = ?5, reviewed_at = ?6 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, r.decision_id, r.verdict.as_str(), r.by, r.reason, r.at_ms],
            )?;
            sqlite_chain(tx, tenant, vec![r.audit_entry()], r.at_ms)?;
            let d = tx.query_row(&format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE tenant_id = ?1 AND id = ?2"), params![tenant, r.decision_id], decision_row)?;
            Ok(ReviewResult::Done(d))
        })
    }

    fn redeem_decision(&self, tenant: &str, id: &str, actor: &str, at_ms: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute("UPDATE decisions SET redeemed_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND redeemed_at IS NULL", params![tenant, id, at_ms])?;
            if n > 0 {
                let body = serde_json::json!({"decision_id": id}).to_string();
                sqlite_chain(tx, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "decision.redeemed".into(), subject: id.into(), body }], at_ms)?;
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
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE decisions SET resolved = ?3, intent = ?4, reported_at = ?5 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id, i64::from(resolved), intent, at_ms],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let body = serde_json::json!({"decision_id": id, "resolved": resolved, "intent": intent}).to_string();
            sqlite_chain(tx, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "decision.outcome".into(), subject: id.into(), body }], at_ms)?;
            Ok(tx.query_row(&format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE tenant_id = ?1 AND id = ?2"), params![tenant, id], decision_row).optional()?)
        })
    }

    fn decisions_by_audit_seq(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredDecision>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE tenant_id = ?1 AND audit_seq > ?2 ORDER BY audit_seq LIMIT ?3"))?;
            let rows = st.query_map(params![tenant, after_seq, limit], decision_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn save_step_up(&self, tenant: &str, s: &StepUp) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO step_ups (tenant_id, id, customer, profile_id, channel, sent_to, code_hash, attempts_left, expires_at, verified_at, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![tenant, s.id, s.customer, s.profile_id, s.channel, s.sent_to, s.code_hash, s.attempts_left, s.expires_at_ms, s.verified_at_ms, s.created_by, s.created_at_ms],
            )?;
            Ok(())
        })
    }

    fn step_up(&self, tenant: &str, id: &str) -> Result<Option<StepUp>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {STEP_UP_COLUMNS} FROM step_ups WHERE tenant_id = ?1 AND id = ?2"),
                params![tenant, id],
                step_up_row,
            )
            .optional()?)
        })
    }

    fn attempt_step_up(
        &self,
        tenant: &str,
        id: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<Option<StepUp>> {
        self.write(|tx| {
            let Some(s) = tx.query_row(&format!("SELECT {STEP_UP_COLUMNS} FROM step_ups WHERE tenant_id = ?1 AND id = ?2"), params![tenant, id], step_up_row).optional()? else {
                return Ok(None);
            };
            if s.verified_at_ms.is_none() && s.attempts_left > 0 && s.expires_at_ms > now_ms {
                if s.code_hash == code_hash {
                    tx.execute("UPDATE step_ups SET verified_at = ?3 WHERE tenant_id = ?1 AND id = ?2", params![tenant, id, now_ms])?;
                } else {
                    tx.execute("UPDATE step_ups SET attempts_left = attempts_left - 1 WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])?;
                }
            }
            Ok(tx.query_row(&format!("SELECT {STEP_UP_COLUMNS} FROM step_ups WHERE tenant_id = ?1 AND id = ?2"), params![tenant, id], step_up_row).optional()?)
        })
    }
}
