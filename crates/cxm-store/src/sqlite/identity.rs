//! One customer across channels: profiles, their timeline, the merge ledger, blocked identifiers, and the projections rebuilt from the log.

use super::*;

impl IdentityStore for SqliteStore {
    fn accounts_of(
        &self,
        tenant: &str,
        profiles: Option<&[String]>,
    ) -> Result<std::collections::HashMap<String, String>> {
        self.read(|c| {
            let mut out = std::collections::HashMap::new();
            match profiles {
                None => {
                    let mut st = c.prepare_cached("SELECT profile_id, MIN(group_id) FROM profile_accounts WHERE tenant_id = ?1 GROUP BY profile_id")?;
                    for r in st.query_map([tenant], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                        let (p, g) = r?;
                        out.insert(p, g);
                    }
                }
                Some(list) => {
                    let mut st = c.prepare_cached("SELECT MIN(group_id) FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2")?;
                    for p in list {
                        if let Some(g) = st.query_row(params![tenant, p], |r| r.get::<_, Option<String>>(0))? {
                            out.insert(p.clone(), g);
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    fn identity_keys(&self, tenant: &str) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT CASE kind WHEN 'user_id' THEN 'u' ELSE 'a' END || value, profile_id FROM identifiers
                 WHERE tenant_id = ?1 AND kind IN ('user_id', 'anonymous_id')",
            )?;
            let rows = st.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn profile_for(&self, tenant: &str, id: &Identifier) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3",
                params![tenant, id.kind_str(), id.value],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn profile(&self, tenant: &str, id: &str) -> Result<Option<Profile>> {
        self.read(|c| {
            // a merged profile id keeps working: follow it to the surviving profile
            let row: Option<(String, Option<String>)> = c
                .query_row("SELECT id, merged_into FROM profiles WHERE tenant_id = ?1 AND id = ?2", params![tenant, id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((id, merged_into)) = row else { return Ok(None) };
            let id = merged_into.unwrap_or(id);
            let (traits, first, last, count, merges): (String, i64, i64, i64, i64) = c.query_row(
                "SELECT traits, first_seen, last_seen, event_count, merge_count FROM profiles WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let mut st = c.prepare_cached("SELECT kind, value FROM identifiers WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY kind, value")?;
            let identifiers = st
                .query_map(params![tenant, id], |r| Ok(IdentifierRecord { kind: r.get(0)?, value: r.get(1)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut st = c.prepare_cached("SELECT group_id FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY group_id")?;
            let accounts = st.query_map(params![tenant, id], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(Some(Profile {
                id,
                traits: serde_json::from_str(&traits)?,
                identifiers,
                accounts,
                first_seen_ms: first,
                last_seen_ms: last,
                event_count: count,
                merge_count: merges,
            }))
        })
    }

    fn search_profiles(
        &self,
        tenant: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<ProfileSummary>> {
        self.read(|c| {
            let like = format!("%{}%", query.trim().to_lowercase().replace(['%', '_'], ""));
            let mut st = c.prepare(
                "SELECT p.id, p.display, p.last_seen, p.event_count FROM profiles p
                 WHERE p.tenant_id = ?1 AND p.merged_into IS NULL AND (?2 = '%%' OR p.id IN
                   (SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND lower(value) LIKE ?2) OR lower(p.display) LIKE ?2)
                 ORDER BY p.last_seen DESC LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, like, limit], |r| Ok(ProfileSummary { id: r.get(0)?, display: r.get(1)?, last_seen_ms: r.get(2)?, event_count: r.get(3)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn timeline(
        &self,
        tenant: &str,
        profile: &Profile,
        page: &TimelinePage,
    ) -> Result<Vec<StoredEvent>> {
        let users = serde_json::to_string(&profile.ids_of("user_id"))?;
        let anons = serde_json::to_string(&profile.ids_of("anonymous_id"))?;
        let (bts, bseq) = page.before.unwrap_or((i64::MAX, i64::MAX));
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE seq IN (
                    SELECT seq FROM events_by_identifier WHERE tenant_id = ?1 AND kind = 'user_id' AND value IN (SELECT value FROM json_each(?2)) AND (ts, seq) < (?4, ?5)
                    UNION
                    SELECT seq FROM events_by_identifier WHERE tenant_id = ?1 AND kind = 'anonymous_id' AND value IN (SELECT value FROM json_each(?3)) AND (ts, seq) < (?4, ?5)
                    UNION
                    SELECT seq FROM events WHERE seq > (SELECT seq FROM events_by_identifier_head) AND tenant_id = ?1 AND (ts, seq) < (?4, ?5)
                      AND (user_id IN (SELECT value FROM json_each(?2)) OR anonymous_id IN (SELECT value FROM json_each(?3))))
                 ORDER BY ts DESC, seq DESC LIMIT ?6"
            ))?;
            let rows = st
                .query_map(params![tenant, users, anons, bts, bseq, page.limit], row_to_event)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn ledger(&self, tenant: &str, profile_id: &str) -> Result<Vec<LedgerEntry>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, action, profile_id, other_profile_id, identifier_kind, identifier_value, event_seq, message_id, reason, at
                 FROM identity_ledger WHERE tenant_id = ?1 AND (profile_id = ?2 OR other_profile_id = ?2) ORDER BY id DESC LIMIT 500",
            )?;
            let rows = st.query_map(params![tenant, profile_id], row_to_ledger)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn block_identifier(
        &self,
        tenant: &str,
        id: &Identifier,
        reason: &str,
        actor: &str,
    ) -> Result<RebuildStats> {
        self.write(|tx| {
            let owner: Option<String> = tx
                .query_row("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3", params![tenant, id.kind_str(), id.value], |r| r.get(0))
                .optional()?;
            tx.execute(
                "INSERT OR REPLACE INTO blocked_identifiers (tenant_id, kind, value, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, id.kind_str(), id.value, reason, now_ms()],
            )?;
            let mut g = SqlTx::new(tx);
            g.ledger(tenant, "block", owner.as_deref().unwrap_or("-"), None, Some(id), None, None, Some(&format!("{reason} (by {actor})")), now_ms())?;
            graph::rebuild_tenant(&mut g, tenant, &self.settings)
        })
    }

    fn blocked(&self, tenant: &str) -> Result<Vec<Identifier>> {
        self.write(|tx| Ok(SqlTx::new(tx).blocked(tenant)?.into_iter().collect()))
    }

    fn rebuild(&self, tenant: Option<&str>) -> Result<RebuildStats> {
        let tenants: Vec<String> = match tenant {
            Some(t) => vec![t.to_string()],
            None => self.list_tenants()?.into_iter().map(|t| t.id).collect(),
        };
        let mut total = RebuildStats::default();
        for t in tenants {
            let s = self.write(|tx| {
                let s = graph::rebuild_tenant(&mut SqlTx::new(tx), &t, &self.settings)?;
                tx.execute("DELETE FROM feedback_rollup WHERE tenant_id = ?1", [&t])?;
                for (dim, col) in ROLLUP_COLUMNS {
                    tx.execute(
                        &format!(
                            "INSERT INTO feedback_rollup (tenant_id, field_type, dim, day, dim_value, score, answers)
                             SELECT tenant_id, field_type, '{dim}', strftime('%Y-%m-%d', collected_at / 1000, 'unixepoch'), {col}, score, COUNT(*)
                             FROM feedback WHERE tenant_id = ?1 AND score IS NOT NULL AND ('{dim}' = '' OR {col} <> '') GROUP BY 1, 2, 3, 4, 5, 6"
                        ),
                        [&t],
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
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT i.kind || ':' || i.value, i.profile_id, p.traits || '|' || p.event_count || '|' || p.first_seen || '|' || p.last_seen || '|' || p.merge_count
                 FROM identifiers i JOIN profiles p ON p.tenant_id = i.tenant_id AND p.id = i.profile_id WHERE i.tenant_id = ?1 ORDER BY 1",
            )?;
            let rows = st.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
