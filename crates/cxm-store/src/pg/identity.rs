//! One customer across channels: profiles, their timeline, the merge ledger, blocked identifiers, and the projections rebuilt from the log.

use super::*;

impl IdentityStore for PgStore {
    fn accounts_of(
        &self,
        tenant: &str,
        profiles: Option<&[String]>,
    ) -> Result<std::collections::HashMap<String, String>> {
        self.tx(|g| {
            let rows = match profiles {
                None => g.all("SELECT profile_id, MIN(group_id) FROM profile_accounts WHERE tenant_id = $1 GROUP BY profile_id", &[&tenant])?,
                Some(list) => g.all(
                    "SELECT profile_id, MIN(group_id) FROM profile_accounts WHERE tenant_id = $1 AND profile_id = ANY($2) GROUP BY profile_id",
                    &[&tenant, &list],
                )?,
            };
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn identity_keys(&self, tenant: &str) -> Result<Vec<(String, String)>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT CASE kind WHEN 'user_id' THEN 'u' ELSE 'a' END || value, profile_id FROM identifiers
                 WHERE tenant_id = $1 AND kind IN ('user_id', 'anonymous_id')",
                &[&tenant],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn profile_for(&self, tenant: &str, id: &Identifier) -> Result<Option<String>> {
        self.tx(|g| g.owner(tenant, id))
    }

    fn profile(&self, tenant: &str, id: &str) -> Result<Option<Profile>> {
        self.tx(|g| {
            let Some(row) = g.opt("SELECT id, merged_into FROM profiles WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])? else {
                return Ok(None);
            };
            let id: String = row.get::<_, Option<String>>(1).unwrap_or_else(|| row.get(0));
            let p = g
                .opt("SELECT traits, first_seen, last_seen, event_count, merge_count FROM profiles WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])?
                .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))?;
            let identifiers = g
                .all("SELECT kind, value FROM identifiers WHERE tenant_id = $1 AND profile_id = $2 ORDER BY kind, value", &[&tenant, &id])?
                .iter()
                .map(|r| IdentifierRecord { kind: r.get(0), value: r.get(1) })
                .collect();
            let accounts = g
                .all("SELECT group_id FROM profile_accounts WHERE tenant_id = $1 AND profile_id = $2 ORDER BY group_id", &[&tenant, &id])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok(Some(Profile {
                id,
                traits: serde_json::from_str(p.get(0))?,
                identifiers,
                accounts,
                first_seen_ms: p.get(1),
                last_seen_ms: p.get(2),
                event_count: p.get(3),
                merge_count: p.get(4),
            }))
        })
    }

    fn search_profiles(
        &self,
        tenant: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<ProfileSummary>> {
        let like = format!("%{}%", query.trim().to_lowercase().replace(['%', '_'], ""));
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT p.id, p.display, p.last_seen, p.event_count FROM profiles p
                 WHERE p.tenant_id = $1 AND p.merged_into IS NULL AND ($2 = '%%' OR p.id IN
                   (SELECT profile_id FROM identifiers WHERE tenant_id = $1 AND lower(value) LIKE $2) OR lower(p.display) LIKE $2)
                 ORDER BY p.last_seen DESC LIMIT $3",
                &[&tenant, &like, &limit],
            )?
            .iter()
            .map(|r| ProfileSummary { id: r.get(0), display: r.get(1), last_seen_ms: r.get(2), event_count: r.get(3) })
            .collect())
        })
    }

    fn timeline(
        &self,
        tenant: &str,
        profile: &Profile,
        page: &TimelinePage,
    ) -> Result<Vec<StoredEvent>> {
        let users = profile.ids_of("user_id");
        let anons = profile.ids_of("anonymous_id");
        let (bts, bseq) = page.before.unwrap_or((i64::MAX, i64::MAX));
        let limit = i64::from(page.limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT seq, message_id, type, name, channel, category, ts, received_at, user_id, anonymous_id, payload FROM events WHERE seq IN (
                    SELECT seq FROM events WHERE tenant_id = $1 AND user_id = ANY($2) AND (ts, seq) < ($4, $5)
                    UNION
                    SELECT seq FROM events WHERE tenant_id = $1 AND anonymous_id = ANY($3) AND (ts, seq) < ($4, $5))
                 ORDER BY ts DESC, seq DESC LIMIT $6",
                &[&tenant, &users, &anons, &bts, &bseq, &limit],
            )?
            .iter()
            .map(row_to_event)
            .collect())
        })
    }

    fn ledger(&self, tenant: &str, profile_id: &str) -> Result<Vec<LedgerEntry>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, action, profile_id, other_profile_id, identifier_kind, identifier_value, event_seq, message_id, reason, at
                 FROM identity_ledger WHERE tenant_id = $1 AND (profile_id = $2 OR other_profile_id = $2) ORDER BY id DESC LIMIT 500",
                &[&tenant, &profile_id],
            )?
            .iter()
            .map(|r| {
                let kind: Option<String> = r.get(4);
                let value: Option<String> = r.get(5);
                LedgerEntry {
                    id: r.get(0),
                    action: r.get(1),
                    profile_id: r.get(2),
                    other_profile_id: r.get(3),
                    identifier: kind.zip(value).map(|(kind, value)| IdentifierRecord { kind, value }),
                    event_seq: r.get(6),
                    message_id: r.get(7),
                    reason: r.get(8),
                    at_ms: r.get(9),
                }
            })
            .collect())
        })
    }

    fn block_identifier(
        &self,
        tenant: &str,
        id: &Identifier,
        reason: &str,
        actor: &str,
    ) -> Result<RebuildStats> {
        self.tx(|g| {
            // one identity writer per tenant at a time, also across servers
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&tenant])?;
            let owner = g.owner(tenant, id)?;
            let kind = id.kind_str();
            let now = now_ms();
            g.exec(
                "INSERT INTO blocked_identifiers (tenant_id, kind, value, reason, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, kind, value) DO UPDATE SET reason = excluded.reason",
                &[&tenant, &kind, &id.value, &reason, &now],
            )?;
            g.ledger(tenant, "block", owner.as_deref().unwrap_or("-"), None, Some(id), None, None, Some(&format!("{reason} (by {actor})")), now)?;
            graph::rebuild_tenant(g, tenant, &self.settings)
        })
    }

    fn blocked(&self, tenant: &str) -> Result<Vec<Identifier>> {
        self.tx(|g| Ok(g.blocked(tenant)?.into_iter().collect()))
    }

    fn rebuild(&self, tenant: Option<&str>) -> Result<RebuildStats> {
        let tenants: Vec<String> = match tenant {
            Some(t) => vec![t.to_string()],
            None => self.list_tenants()?.into_iter().map(|t| t.id).collect(),
        };
        let mut total = RebuildStats::default();
        for t in tenants {
            let s = self.tx(|g| {
                g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&t])?;
                let s = graph::rebuild_tenant(g, &t, &self.settings)?;
                g.tx.execute("DELETE FROM feedback_rollup WHERE tenant_id = $1", &[&t])?;
                for (dim, col) in ROLLUP_COLUMNS {
                    g.tx.execute(
                        &format!(
                            "INSERT INTO feedback_rollup (tenant_id, field_type, dim, day, dim_value, score, answers)
                             SELECT tenant_id, field_type, '{dim}', to_char(to_timestamp(collected_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), {col}, score, COUNT(*)
                             FROM feedback WHERE tenant_id = $1 AND score IS NOT NULL AND ('{dim}' = '' OR {col} <> '') GROUP BY 1, 2, 3, 4, 5, 6"
                        ),
                        &[&t],
                    )?;
                }
                Ok(s)
            })?;
            total.tenants += s.tenants;
            total.events += s.events;
        }
        Ok(total)
    }

    fn identity_snapshot(&self, tenant: &str) -> Result<Vec<(String, String, String)>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT i.kind || ':' || i.value, i.profile_id, p.traits || '|' || p.event_count || '|' || p.first_seen || '|' || p.last_seen || '|' || p.merge_count
                 FROM identifiers i JOIN profiles p ON p.tenant_id = i.tenant_id AND p.id = i.profile_id WHERE i.tenant_id = $1 ORDER BY 1",
                &[&tenant],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
        })
    }
}
