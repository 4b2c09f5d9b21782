//! The identity graph's writes in SQLite: a transaction that also sees the in-memory dedup
//! window, and the `GraphTx` the shared ingest and rebuild logic (`crate::graph`) runs over.

use super::*;

/// A write transaction with its statements prepared once. rusqlite's statement cache
/// hashes and compares the SQL text on every use, which showed up in ingest profiles; here
/// a statement is found by the address of its `'static` SQL.
pub(super) struct SqlTx<'a, 'd> {
    pub(super) tx: &'a Transaction<'a>,
    pub(super) stmts: Vec<(usize, rusqlite::Statement<'a>)>,
    /// Present on ingest; keys added here are removed again if the transaction fails.
    pub(super) dedup: Option<&'d mut DedupIndex>,
    pub(super) added: Vec<[u8; 16]>,
}

impl<'a, 'd> SqlTx<'a, 'd> {
    pub(super) fn new(tx: &'a Transaction<'a>) -> SqlTx<'a, 'd> {
        SqlTx {
            tx,
            stmts: Vec::with_capacity(24),
            dedup: None,
            added: vec![],
        }
    }

    pub(super) fn st(&mut self, sql: &'static str) -> Result<&mut rusqlite::Statement<'a>> {
        let key = sql.as_ptr() as usize;
        let pos = match self.stmts.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                self.stmts.push((key, self.tx.prepare(sql)?));
                self.stmts.len() - 1
            }
        };
        Ok(&mut self.stmts[pos].1)
    }
}

pub(super) fn kind_of(s: &str) -> IdentifierKind {
    IdentifierKind::parse(s).unwrap_or(IdentifierKind::External(s.to_string()))
}

impl GraphTx for SqlTx<'_, '_> {
    fn dedup_insert(
        &mut self,
        tenant: &str,
        key_id: &str,
        message_id: &str,
        received_ms: i64,
    ) -> Result<bool> {
        let dedup = self
            .dedup
            .as_deref_mut()
            .ok_or_else(|| StoreError::Backend("dedup used outside ingest".into()))?;
        let key = graph::dedup_key(tenant, key_id, message_id);
        if dedup.keys.contains_key(&key) {
            return Ok(false);
        }
        dedup.keys.insert(key, (received_ms / 1000) as u32);
        self.added.push(key);
        Ok(true)
    }

    fn insert_event(
        &mut self,
        tenant: &str,
        key_id: &str,
        ev: &NormalizedEvent,
        payload: &str,
    ) -> Result<i64> {
        self.st(
                "INSERT INTO events (tenant_id, write_key_id, message_id, type, name, user_id, anonymous_id, group_id, channel, category, ts, received_at, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                tenant, key_id, ev.message_id, ev.event_type.as_str(), ev.name, ev.user_id, ev.anonymous_id, ev.group_id,
                ev.channel.as_str(), ev.category.as_str(), ev.timestamp.timestamp_millis(), ev.received_at.timestamp_millis(), payload
            ])?;
        Ok(self.tx.last_insert_rowid())
    }

    fn insert_quarantine(
        &mut self,
        tenant: &str,
        key_id: &str,
        payload: &str,
        code: &str,
        detail: &str,
        received_ms: i64,
    ) -> Result<()> {
        self.st("INSERT INTO quarantine (tenant_id, write_key_id, code, detail, payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![tenant, key_id, code, detail, payload, received_ms])?;
        Ok(())
    }

    fn id_salt(&mut self, tenant: &str) -> Result<(String, i64)> {
        let row: Option<(Option<String>, i64)> = self
            .st("SELECT id_salt, legacy_profile_seq FROM tenants WHERE id = ?1")?
            .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((Some(salt), legacy)) => Ok((salt, legacy)),
            // a tenant the store does not know (tests append to made-up tenants): its ids
            // are still opaque, keyed by its name alone
            _ => Ok((format!("unknown:{tenant}"), 0)),
        }
    }

    fn quarantine_day(&mut self, tenant: &str, day: &str) -> Result<(i64, i64)> {
        Ok(self
            .st("SELECT rows_kept, bytes_kept FROM quarantine_days WHERE tenant_id = ?1 AND day = ?2")?
            .query_row(params![tenant, day], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, 0)))
    }

    fn bump_quarantine_day(
        &mut self,
        tenant: &str,
        day: &str,
        events: i64,
        rows: i64,
        bytes: i64,
    ) -> Result<()> {
        self.st(
            "INSERT INTO quarantine_days (tenant_id, day, events, rows_kept, bytes_kept) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, day) DO UPDATE SET events = events + excluded.events,
               rows_kept = rows_kept + excluded.rows_kept, bytes_kept = bytes_kept + excluded.bytes_kept",
        )?
        .execute(params![tenant, day, events, rows, bytes])?;
        Ok(())
    }

    fn blocked(&mut self, tenant: &str) -> Result<BTreeSet<Identifier>> {
        let st = self.st("SELECT kind, value FROM blocked_identifiers WHERE tenant_id = ?1")?;
        let rows = st.query_map([tenant], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = BTreeSet::new();
        for row in rows {
            let (k, v) = row?;
            out.insert(Identifier {
                kind: kind_of(&k),
                value: v,
            });
        }
        Ok(out)
    }

    fn owner(&mut self, tenant: &str, id: &Identifier) -> Result<Option<String>> {
        Ok(self.st("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3")?
            .query_row(params![tenant, id.kind_str(), id.value], |r| r.get(0))
            .optional()?)
    }

    fn profile_view(&mut self, tenant: &str, profile: &str) -> Result<ProfileView> {
        let merge_count: i64 = self
            .st("SELECT merge_count FROM profiles WHERE tenant_id = ?1 AND id = ?2")?
            .query_row(params![tenant, profile], |r| r.get(0))?;
        let st = self
            .st("SELECT kind, value FROM identifiers WHERE tenant_id = ?1 AND profile_id = ?2")?;
        let ids = st
            .query_map(params![tenant, profile], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .map(|r| {
                r.map(|(k, v)| Identifier {
                    kind: kind_of(&k),
                    value: v,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProfileView {
            id: profile.to_string(),
            identifiers: ids,
            merge_count: merge_count as u32,
        })
    }

    fn insert_profile(&mut self, tenant: &str, p: &graph::NewProfile) -> Result<()> {
        self.st(
            "INSERT INTO profiles (tenant_id, id, first_seen, last_seen, event_count, traits, display, merge_count, merged_into)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            tenant,
            p.id,
            p.first_ms,
            p.last_ms,
            p.count,
            serde_json::to_string(&p.traits)?,
            p.display,
            p.merge_count,
            p.merged_into
        ])?;
        Ok(())
    }

    fn attach(&mut self, tenant: &str, id: &Identifier, profile: &str, seq: i64) -> Result<()> {
        self.st("INSERT INTO identifiers (tenant_id, kind, value, profile_id, first_seq) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![tenant, id.kind_str(), id.value, profile, seq])?;
        Ok(())
    }

    fn merge_profiles(&mut self, tenant: &str, from: &str, into: &str) -> Result<()> {
        let (from_traits, from_first, from_last, from_count, from_merges): (String, i64, i64, i64, i64) = self.st("SELECT traits, first_seen, last_seen, event_count, merge_count FROM profiles WHERE tenant_id = ?1 AND id = ?2")?
            .query_row(params![tenant, from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
        let into_traits: String = self
            .st("SELECT traits FROM profiles WHERE tenant_id = ?1 AND id = ?2")?
            .query_row(params![tenant, into], |r| r.get(0))?;
        let mut merged: Map<String, Value> = serde_json::from_str(&from_traits)?;
        graph::merge_traits(&mut merged, &serde_json::from_str(&into_traits)?);
        self.st(
            "UPDATE profiles SET traits = ?3, first_seen = MIN(first_seen, ?4), last_seen = MAX(last_seen, ?5),
             event_count = event_count + ?6, merge_count = merge_count + 1 + ?7 WHERE tenant_id = ?1 AND id = ?2",
        )?
        .execute(params![tenant, into, serde_json::to_string(&merged)?, from_first, from_last, from_count, from_merges])?;
        // two statements so each uses an index (an OR here scanned every profile per merge)
        self.st("UPDATE profiles SET merged_into = ?3 WHERE tenant_id = ?1 AND id = ?2")?
            .execute(params![tenant, from, into])?;
        self.st("UPDATE profiles SET merged_into = ?3 WHERE tenant_id = ?1 AND merged_into = ?2")?
            .execute(params![tenant, from, into])?;
        self.st("UPDATE identifiers SET profile_id = ?3 WHERE tenant_id = ?1 AND profile_id = ?2")?
            .execute(params![tenant, from, into])?;
        self.st("INSERT OR IGNORE INTO profile_accounts (tenant_id, profile_id, group_id) SELECT tenant_id, ?3, group_id FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2")?
            .execute(params![tenant, from, into])?;
        Ok(())
    }

    fn ledger(
        &mut self,
        tenant: &str,
        action: &str,
        profile: &str,
        other: Option<&str>,
        id: Option<&Identifier>,
        seq: Option<i64>,
        message_id: Option<&str>,
        reason: Option<&str>,
        at_ms: i64,
    ) -> Result<()> {
        self.st(
                "INSERT INTO identity_ledger (tenant_id, action, profile_id, other_profile_id, identifier_kind, identifier_value, event_seq, message_id, reason, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![tenant, action, profile, other, id.map(|i| i.kind_str()), id.map(|i| i.value.as_str()), seq, message_id, reason, at_ms])?;
        Ok(())
    }

    fn touch_profile(&mut self, tenant: &str, profile: &str, t: &graph::Touch) -> Result<()> {
        if t.traits.is_empty() {
            self.st("UPDATE profiles SET first_seen = MIN(first_seen, ?3), last_seen = MAX(last_seen, ?4), event_count = event_count + ?5 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, profile, t.first_ms, t.last_ms, t.count])?;
            return Ok(());
        }
        let current: String = self
            .st("SELECT traits FROM profiles WHERE tenant_id = ?1 AND id = ?2")?
            .query_row(params![tenant, profile], |r| r.get(0))?;
        let mut merged: Map<String, Value> = serde_json::from_str(&current)?;
        graph::merge_traits(&mut merged, &t.traits);
        let display = types::display_name(&merged);
        self.st("UPDATE profiles SET traits = ?6, display = ?7, first_seen = MIN(first_seen, ?3), last_seen = MAX(last_seen, ?4), event_count = event_count + ?5 WHERE tenant_id = ?1 AND id = ?2")?
            .execute(params![tenant, profile, t.first_ms, t.last_ms, t.count, serde_json::to_string(&merged)?, display])?;
        Ok(())
    }

    fn link_account(
        &mut self,
        tenant: &str,
        profile: &str,
        group_id: &str,
        traits: Option<&Map<String, Value>>,
    ) -> Result<()> {
        self.st("INSERT OR IGNORE INTO accounts (tenant_id, group_id) VALUES (?1, ?2)")?
            .execute(params![tenant, group_id])?;
        if let Some(new) = traits {
            let current: String = self
                .st("SELECT traits FROM accounts WHERE tenant_id = ?1 AND group_id = ?2")?
                .query_row(params![tenant, group_id], |r| r.get(0))?;
            let mut merged: Map<String, Value> = serde_json::from_str(&current)?;
            graph::merge_traits(&mut merged, new);
            self.st("UPDATE accounts SET traits = ?3 WHERE tenant_id = ?1 AND group_id = ?2")?
                .execute(params![tenant, group_id, serde_json::to_string(&merged)?])?;
        }
        self.st("INSERT OR IGNORE INTO profile_accounts (tenant_id, profile_id, group_id) VALUES (?1, ?2, ?3)")?
            .execute(params![tenant, profile, group_id])?;
        Ok(())
    }

    fn bump_daily(&mut self, tenant: &str, day: &str, channel: &str, n: i64) -> Result<()> {
        self.st("INSERT INTO ingest_daily (tenant_id, day, channel, events) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, day, channel) DO UPDATE SET events = events + excluded.events")?
            .execute(params![tenant, day, channel, n])?;
        Ok(())
    }

    fn clear_projections(&mut self, tenant: &str) -> Result<()> {
        for table in [
            "profiles",
            "identifiers",
            "accounts",
            "profile_accounts",
            "ingest_daily",
        ] {
            self.tx.execute(
                &format!("DELETE FROM {table} WHERE tenant_id = ?1"),
                [tenant],
            )?;
        }
        self.tx.execute(
            "DELETE FROM identity_ledger WHERE tenant_id = ?1 AND action IN ('merge', 'drop')",
            [tenant],
        )?;
        Ok(())
    }

    fn log_after(&mut self, tenant: &str, after_seq: i64, limit: u32) -> Result<Vec<LogRow>> {
        let st = self.st("SELECT seq, ts, received_at, message_id, payload FROM events WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
        let rows = st
            .query_map(params![tenant, after_seq, limit], |r| {
                Ok(LogRow {
                    seq: r.get(0)?,
                    ts_ms: r.get(1)?,
                    received_ms: r.get(2)?,
                    message_id: r.get(3)?,
                    payload: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
