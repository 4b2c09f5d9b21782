//! The identity graph's writes in PostgreSQL: a transaction with the per-tenant advisory lock,
//! and the `GraphTx` the shared ingest and rebuild logic (`crate::graph`) runs over.

use std::collections::HashSet;

use super::*;

pub(super) struct PgTx<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) stmts: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_> {
    pub(super) fn st(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }
    /// A shared room's statement (`?N` placeholders), prepared once per connection and kept
    /// under its own text.
    pub(super) fn st_shared(&mut self, sql: &str, args: usize) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self
            .tx
            .prepare(crate::sql::dollar_placeholders(sql, args).as_str())?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }
    pub(super) fn exec(
        &mut self,
        sql: &'static str,
        p: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let s = self.st(sql)?;
        Ok(self.tx.execute(&s, p)?)
    }
    pub(super) fn opt(
        &mut self,
        sql: &'static str,
        p: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.st(sql)?;
        Ok(self.tx.query_opt(&s, p)?)
    }
    pub(super) fn all(
        &mut self,
        sql: &'static str,
        p: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let s = self.st(sql)?;
        Ok(self.tx.query(&s, p)?)
    }
}

pub(super) fn kind_of(s: &str) -> IdentifierKind {
    IdentifierKind::parse(s).unwrap_or(IdentifierKind::External(s.to_string()))
}

impl GraphTx for PgTx<'_> {
    fn dedup_insert(
        &mut self,
        tenant: &str,
        key_id: &str,
        message_id: &str,
        received_ms: i64,
    ) -> Result<bool> {
        let key = graph::dedup_key(tenant, key_id, message_id);
        let seen = self.opt("SELECT 1 FROM dedup WHERE key = $1", &[&&key[..]])?;
        if seen.is_some() {
            return Ok(false);
        }
        self.exec(
            "INSERT INTO dedup (day, key) VALUES ($1, $2)",
            &[&dedup_day(received_ms), &&key[..]],
        )?;
        Ok(true)
    }

    fn insert_event(
        &mut self,
        tenant: &str,
        key_id: &str,
        ev: &NormalizedEvent,
        payload: &str,
    ) -> Result<i64> {
        let row = self
            .opt(
                "INSERT INTO events (tenant_id, write_key_id, message_id, type, name, user_id, anonymous_id, group_id, channel, category, ts, received_at, payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq",
                &[&tenant, &key_id, &ev.message_id, &ev.event_type.as_str(), &ev.name, &ev.user_id, &ev.anonymous_id, &ev.group_id,
                  &ev.channel.as_str(), &ev.category.as_str(), &ev.timestamp.timestamp_millis(), &ev.received_at.timestamp_millis(), &payload],
            )?
            .ok_or_else(|| StoreError::Backend("insert returned no seq".into()))?;
        Ok(row.get(0))
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
        self.exec(
            "INSERT INTO quarantine (tenant_id, write_key_id, code, detail, payload, received_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&tenant, &key_id, &code, &detail, &payload, &received_ms],
        )?;
        Ok(())
    }

    fn id_salt(&mut self, tenant: &str) -> Result<(String, i64)> {
        let row = self.opt(
            "SELECT id_salt, legacy_profile_seq FROM tenants WHERE id = $1",
            &[&tenant],
        )?;
        match row.map(|r| (r.get::<_, Option<String>>(0), r.get::<_, i64>(1))) {
            Some((Some(salt), legacy)) => Ok((salt, legacy)),
            // a tenant the store does not know (tests append to made-up tenants): its ids
            // are still opaque, keyed by its name alone
            _ => Ok((format!("unknown:{tenant}"), 0)),
        }
    }

    fn quarantine_day(&mut self, tenant: &str, day: &str) -> Result<(i64, i64)> {
        Ok(self
            .opt(
                "SELECT rows_kept, bytes_kept FROM quarantine_days WHERE tenant_id = $1 AND day = $2",
                &[&tenant, &day],
            )?
            .map(|r| (r.get(0), r.get(1)))
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
        self.exec(
            "INSERT INTO quarantine_days (tenant_id, day, events, rows_kept, bytes_kept) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, day) DO UPDATE SET events = quarantine_days.events + excluded.events,
               rows_kept = quarantine_days.rows_kept + excluded.rows_kept, bytes_kept = quarantine_days.bytes_kept + excluded.bytes_kept",
            &[&tenant, &day, &events, &rows, &bytes],
        )?;
        Ok(())
    }

    fn blocked(&mut self, tenant: &str) -> Result<BTreeSet<Identifier>> {
        let rows = self.all(
            "SELECT kind, value FROM blocked_identifiers WHERE tenant_id = $1",
            &[&tenant],
        )?;
        Ok(rows
            .iter()
            .map(|r| Identifier {
                kind: kind_of(r.get(0)),
                value: r.get(1),
            })
            .collect())
    }

    fn owner(&mut self, tenant: &str, id: &Identifier) -> Result<Option<String>> {
        let kind = id.kind_str();
        Ok(self
            .opt("SELECT profile_id FROM identifiers WHERE tenant_id = $1 AND kind = $2 AND value = $3", &[&tenant, &kind, &id.value])?
            .map(|r| r.get(0)))
    }

    fn profile_view(&mut self, tenant: &str, profile: &str) -> Result<ProfileView> {
        let row = self
            .opt(
                "SELECT merge_count FROM profiles WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &profile],
            )?
            .ok_or_else(|| StoreError::NotFound(format!("profile {profile}")))?;
        let merge_count: i64 = row.get(0);
        let ids = self
            .all(
                "SELECT kind, value FROM identifiers WHERE tenant_id = $1 AND profile_id = $2",
                &[&tenant, &profile],
            )?
            .iter()
            .map(|r| Identifier {
                kind: kind_of(r.get(0)),
                value: r.get(1),
            })
            .collect();
        Ok(ProfileView {
            id: profile.to_string(),
            identifiers: ids,
            merge_count: merge_count as u32,
        })
    }

    fn insert_profile(&mut self, tenant: &str, p: &graph::NewProfile) -> Result<()> {
        self.insert_profiles(tenant, &[p])
    }

    fn attach(&mut self, tenant: &str, id: &Identifier, profile: &str, seq: i64) -> Result<()> {
        let kind = id.kind_str();
        self.exec(
            "INSERT INTO identifiers (tenant_id, kind, value, profile_id, first_seq) VALUES ($1, $2, $3, $4, $5)",
            &[&tenant, &kind, &id.value, &profile, &seq],
        )?;
        Ok(())
    }

    fn merge_profiles(&mut self, tenant: &str, from: &str, into: &str) -> Result<()> {
        let f = self
            .opt("SELECT traits, first_seen, last_seen, event_count, merge_count FROM profiles WHERE tenant_id = $1 AND id = $2", &[&tenant, &from])?
            .ok_or_else(|| StoreError::NotFound(format!("profile {from}")))?;
        let into_traits: String = self
            .opt(
                "SELECT traits FROM profiles WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &into],
            )?
            .ok_or_else(|| StoreError::NotFound(format!("profile {into}")))?
            .get(0);
        let mut merged: Map<String, Value> = serde_json::from_str(f.get::<_, &str>(0))?;
        graph::merge_traits(&mut merged, &serde_json::from_str(&into_traits)?);
        let merged = serde_json::to_string(&merged)?;
        let (first, last, count, merges): (i64, i64, i64, i64) =
            (f.get(1), f.get(2), f.get(3), f.get(4));
        self.exec(
            "UPDATE profiles SET traits = $3, first_seen = LEAST(first_seen, $4), last_seen = GREATEST(last_seen, $5),
             event_count = event_count + $6, merge_count = merge_count + 1 + $7 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &into, &merged, &first, &last, &count, &merges],
        )?;
        // two statements so each uses an index (an OR here scanned every profile per merge)
        self.exec(
            "UPDATE profiles SET merged_into = $3 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &from, &into],
        )?;
        self.exec(
            "UPDATE profiles SET merged_into = $3 WHERE tenant_id = $1 AND merged_into = $2",
            &[&tenant, &from, &into],
        )?;
        self.exec(
            "UPDATE identifiers SET profile_id = $3 WHERE tenant_id = $1 AND profile_id = $2",
            &[&tenant, &from, &into],
        )?;
        self.exec(
            "INSERT INTO profile_accounts (tenant_id, profile_id, group_id) SELECT tenant_id, $3, group_id FROM profile_accounts WHERE tenant_id = $1 AND profile_id = $2 ON CONFLICT DO NOTHING",
            &[&tenant, &from, &into],
        )?;
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
        let kind = id.map(|i| i.kind_str());
        let value = id.map(|i| i.value.as_str());
        self.exec(
            "INSERT INTO identity_ledger (tenant_id, action, profile_id, other_profile_id, identifier_kind, identifier_value, event_seq, message_id, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&tenant, &action, &profile, &other, &kind, &value, &seq, &message_id, &reason, &at_ms],
        )?;
        Ok(())
    }

    fn touch_profile(&mut self, tenant: &str, profile: &str, t: &graph::Touch) -> Result<()> {
        if t.traits.is_empty() {
            self.exec(
                "UPDATE profiles SET first_seen = LEAST(first_seen, $3), last_seen = GREATEST(last_seen, $4), event_count = event_count + $5 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &profile, &t.first_ms, &t.last_ms, &t.count],
            )?;
            return Ok(());
        }
        let current: String = self
            .opt(
                "SELECT traits FROM profiles WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &profile],
            )?
            .ok_or_else(|| StoreError::NotFound(format!("profile {profile}")))?
            .get(0);
        let mut merged: Map<String, Value> = serde_json::from_str(&current)?;
        graph::merge_traits(&mut merged, &t.traits);
        let display = types::display_name(&merged);
        let merged = serde_json::to_string(&merged)?;
        self.exec(
            "UPDATE profiles SET traits = $6, display = $7, first_seen = LEAST(first_seen, $3), last_seen = GREATEST(last_seen, $4), event_count = event_count + $5 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &profile, &t.first_ms, &t.last_ms, &t.count, &merged, &display],
        )?;
        Ok(())
    }

    fn touch_many(&mut self, tenant: &str, touches: &[(&str, &graph::Touch)]) -> Result<()> {
        // one statement for the counters of every profile, and for those whose traits
        // changed one read and one write: a batch touches thousands of profiles
        let ids: Vec<&str> = touches.iter().map(|(p, _)| *p).collect();
        let first: Vec<i64> = touches.iter().map(|(_, t)| t.first_ms).collect();
        let last: Vec<i64> = touches.iter().map(|(_, t)| t.last_ms).collect();
        let count: Vec<i64> = touches.iter().map(|(_, t)| t.count).collect();
        self.exec(
            "UPDATE profiles p SET first_seen = LEAST(p.first_seen, u.f), last_seen = GREATEST(p.last_seen, u.l), event_count = p.event_count + u.n
             FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(id, f, l, n)
             WHERE p.tenant_id = $1 AND p.id = u.id",
            &[&tenant, &ids, &first, &last, &count],
        )?;
        let with_traits: Vec<(&str, &graph::Touch)> = touches
            .iter()
            .filter(|(_, t)| !t.traits.is_empty())
            .copied()
            .collect();
        if with_traits.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = with_traits.iter().map(|(p, _)| *p).collect();
        let current: HashMap<String, String> = self
            .all(
                "SELECT q.id, p.traits FROM unnest($2::text[]) AS q(id)
                 CROSS JOIN LATERAL (SELECT traits FROM profiles WHERE tenant_id = $1 AND id = q.id) AS p",
                &[&tenant, &ids],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut traits = Vec::with_capacity(ids.len());
        let mut displays = Vec::with_capacity(ids.len());
        for (p, t) in &with_traits {
            let raw = current
                .get(*p)
                .ok_or_else(|| StoreError::NotFound(format!("profile {p}")))?;
            let mut merged: Map<String, Value> = serde_json::from_str(raw)?;
            graph::merge_traits(&mut merged, &t.traits);
            displays.push(types::display_name(&merged));
            traits.push(serde_json::to_string(&merged)?);
        }
        self.exec(
            "UPDATE profiles p SET traits = u.tr, display = u.d
             FROM unnest($2::text[], $3::text[], $4::text[]) AS u(id, tr, d)
             WHERE p.tenant_id = $1 AND p.id = u.id",
            &[&tenant, &ids, &traits, &displays],
        )?;
        Ok(())
    }

    fn link_account(
        &mut self,
        tenant: &str,
        profile: &str,
        group_id: &str,
        traits: Option<&Map<String, Value>>,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO accounts (tenant_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&tenant, &group_id],
        )?;
        if let Some(new) = traits {
            let current: String = self
                .opt(
                    "SELECT traits FROM accounts WHERE tenant_id = $1 AND group_id = $2",
                    &[&tenant, &group_id],
                )?
                .map(|r| r.get(0))
                .unwrap_or_else(|| "{}".into());
            let mut merged: Map<String, Value> = serde_json::from_str(&current)?;
            graph::merge_traits(&mut merged, new);
            let merged = serde_json::to_string(&merged)?;
            self.exec(
                "UPDATE accounts SET traits = $3 WHERE tenant_id = $1 AND group_id = $2",
                &[&tenant, &group_id, &merged],
            )?;
        }
        self.exec(
            "INSERT INTO profile_accounts (tenant_id, profile_id, group_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&tenant, &profile, &group_id],
        )?;
        Ok(())
    }

    fn bump_daily(&mut self, tenant: &str, day: &str, channel: &str, n: i64) -> Result<()> {
        self.exec(
            "INSERT INTO ingest_daily (tenant_id, day, channel, events) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, day, channel) DO UPDATE SET events = ingest_daily.events + excluded.events",
            &[&tenant, &day, &channel, &n],
        )?;
        Ok(())
    }

    fn clear_projections(&mut self, tenant: &str) -> Result<()> {
        self.exec("DELETE FROM profiles WHERE tenant_id = $1", &[&tenant])?;
        self.exec("DELETE FROM identifiers WHERE tenant_id = $1", &[&tenant])?;
        self.exec("DELETE FROM accounts WHERE tenant_id = $1", &[&tenant])?;
        self.exec(
            "DELETE FROM profile_accounts WHERE tenant_id = $1",
            &[&tenant],
        )?;
        self.exec("DELETE FROM ingest_daily WHERE tenant_id = $1", &[&tenant])?;
        self.exec(
            "DELETE FROM identity_ledger WHERE tenant_id = $1 AND action IN ('merge', 'drop')",
            &[&tenant],
        )?;
        Ok(())
    }

    fn dedup_insert_many(
        &mut self,
        tenant: &str,
        key_id: &str,
        events: &[&NormalizedEvent],
    ) -> Result<Vec<bool>> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let keys: Vec<[u8; 16]> = events
            .iter()
            .map(|e| graph::dedup_key(tenant, key_id, &e.message_id))
            .collect();
        let key_refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        // every day kept is looked in (the key holds the day), which is the window and at
        // most the day the pruner has yet to drop; the tenant's advisory lock keeps another
        // writer from inserting between this and the insert. One probe per key, as a
        // lateral the planner cannot turn into a filter: a partition without statistics yet
        // (a new day) made `= ANY(..)` a filter over the whole partition. (Folding the probe
        // into the insert, as NOT EXISTS on the other days or as ON CONFLICT DO NOTHING on
        // the event's own, ran slower in the ingest bench than these two statements.)
        let seen: HashSet<Vec<u8>> = self
            .all(
                "SELECT q.k FROM unnest($1::bytea[]) AS q(k) CROSS JOIN LATERAL (
                   SELECT 1 FROM dedup x WHERE x.key = q.k LIMIT 1) AS hit",
                &[&key_refs],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // a repeat inside the request is a duplicate of its first occurrence
        let mut taken = HashSet::new();
        let fresh: Vec<bool> = keys
            .iter()
            .map(|k| !seen.contains(&k[..]) && taken.insert(*k))
            .collect();
        let (days, new_keys): (Vec<i32>, Vec<&[u8]>) = events
            .iter()
            .zip(&key_refs)
            .zip(&fresh)
            .filter(|(_, f)| **f)
            .map(|((e, k), _)| (dedup_day(e.received_at.timestamp_millis()), *k))
            .unzip();
        if !new_keys.is_empty() {
            self.exec(
                "INSERT INTO dedup (day, key) SELECT d, k FROM unnest($1::int[], $2::bytea[]) AS t(d, k)",
                &[&days, &new_keys],
            )?;
        }
        Ok(fresh)
    }

    fn insert_events(
        &mut self,
        tenant: &str,
        key_id: &str,
        events: &[&NormalizedEvent],
    ) -> Result<Vec<i64>> {
        use postgres::binary_copy::BinaryCopyInWriter;
        if events.is_empty() {
            return Ok(vec![]);
        }
        // COPY cannot return the serial, so the numbers are drawn first (one round trip) and
        // the rows streamed in binary: half again as fast as a multi-row INSERT
        let n = events.len() as i64;
        let mut seqs: Vec<i64> = self
            .all(
                "SELECT nextval('events_seq_seq'::regclass) FROM generate_series(1, $1::bigint)",
                &[&n],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        seqs.sort_unstable();
        if seqs.len() != events.len() {
            return Err(StoreError::Backend(format!(
                "asked for {} event numbers, got {}",
                events.len(),
                seqs.len()
            )));
        }
        let sink = self.tx.copy_in(&format!(
            "COPY events ({EVENT_COPY_COLUMNS}) FROM STDIN BINARY"
        ))?;
        let mut w = BinaryCopyInWriter::new(sink, &EVENT_COPY_TYPES);
        for (e, seq) in events.iter().zip(&seqs) {
            w.write(&[
                seq,
                &tenant,
                &key_id,
                &e.message_id,
                &e.event_type.as_str(),
                &e.name,
                &e.user_id,
                &e.anonymous_id,
                &e.group_id,
                &e.channel.as_str(),
                &e.category.as_str(),
                &e.timestamp.timestamp_millis(),
                &e.received_at.timestamp_millis(),
                &e.payload_json,
            ])?;
        }
        w.finish()?;
        Ok(seqs)
    }

    fn bump_daily_many(
        &mut self,
        tenant: &str,
        rows: &[(String, &'static str, i64)],
    ) -> Result<()> {
        let days: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let channels: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let counts: Vec<i64> = rows.iter().map(|r| r.2).collect();
        self.exec(
            "INSERT INTO ingest_daily (tenant_id, day, channel, events)
             SELECT $1, d, c, n FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(d, c, n)
             ON CONFLICT (tenant_id, day, channel) DO UPDATE SET events = ingest_daily.events + excluded.events",
            &[&tenant, &days, &channels, &counts],
        )?;
        Ok(())
    }

    fn insert_profiles(&mut self, tenant: &str, rows: &[&graph::NewProfile]) -> Result<()> {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let first: Vec<i64> = rows.iter().map(|r| r.first_ms).collect();
        let last: Vec<i64> = rows.iter().map(|r| r.last_ms).collect();
        let count: Vec<i64> = rows.iter().map(|r| r.count).collect();
        let traits = rows
            .iter()
            .map(|r| serde_json::to_string(&r.traits))
            .collect::<std::result::Result<Vec<String>, _>>()?;
        let display: Vec<&str> = rows.iter().map(|r| r.display.as_str()).collect();
        let merges: Vec<i64> = rows.iter().map(|r| r.merge_count).collect();
        let into: Vec<Option<&str>> = rows.iter().map(|r| r.merged_into.as_deref()).collect();
        self.exec(
            "INSERT INTO profiles (tenant_id, id, first_seen, last_seen, event_count, traits, display, merge_count, merged_into)
             SELECT $1, id, f, l, n, t, d, m, i
             FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::text[]) AS u(id, f, l, n, t, d, m, i)",
            &[&tenant, &ids, &first, &last, &count, &traits, &display, &merges, &into],
        )?;
        Ok(())
    }

    fn attach_many(&mut self, tenant: &str, rows: &[(&Identifier, &str, i64)]) -> Result<()> {
        let kinds: Vec<String> = rows.iter().map(|r| r.0.kind_str()).collect();
        let values: Vec<&str> = rows.iter().map(|r| r.0.value.as_str()).collect();
        let profiles: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let seqs: Vec<i64> = rows.iter().map(|r| r.2).collect();
        self.exec(
            "INSERT INTO identifiers (tenant_id, kind, value, profile_id, first_seq)
             SELECT $1, k, v, p, s FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS u(k, v, p, s)",
            &[&tenant, &kinds, &values, &profiles, &seqs],
        )?;
        Ok(())
    }

    fn ledger_many(&mut self, tenant: &str, rows: &[&graph::LedgerRow]) -> Result<()> {
        let actions: Vec<&str> = rows.iter().map(|r| r.action).collect();
        let profiles: Vec<&str> = rows.iter().map(|r| r.profile.as_str()).collect();
        let others: Vec<Option<&str>> = rows.iter().map(|r| r.other.as_deref()).collect();
        let kinds: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.identifier.as_ref().map(|i| i.kind_str()))
            .collect();
        let values: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.identifier.as_ref().map(|i| i.value.as_str()))
            .collect();
        let seqs: Vec<Option<i64>> = rows.iter().map(|r| r.seq).collect();
        let messages: Vec<Option<&str>> = rows.iter().map(|r| r.message_id.as_deref()).collect();
        let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.reason).collect();
        let at: Vec<i64> = rows.iter().map(|r| r.at_ms).collect();
        // WITH ORDINALITY keeps the ledger's serial ids in the order the rows were decided
        self.exec(
            "INSERT INTO identity_ledger (tenant_id, action, profile_id, other_profile_id, identifier_kind, identifier_value, event_seq, message_id, reason, at)
             SELECT $1, a, p, o, k, v, s, m, r, t
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::bigint[])
               WITH ORDINALITY AS u(a, p, o, k, v, s, m, r, t, n)
             ORDER BY n",
            &[&tenant, &actions, &profiles, &others, &kinds, &values, &seqs, &messages, &reasons, &at],
        )?;
        Ok(())
    }

    fn link_many(&mut self, tenant: &str, rows: &[graph::LinkRow<'_>]) -> Result<()> {
        // accounts first (once each), then every traits update folded per account in order,
        // then the links; three statements where one by one took up to four per row
        let mut groups: Vec<&str> = rows.iter().map(|r| r.1).collect();
        groups.sort_unstable();
        groups.dedup();
        self.exec(
            "INSERT INTO accounts (tenant_id, group_id) SELECT $1, g FROM unnest($2::text[]) AS u(g) ON CONFLICT DO NOTHING",
            &[&tenant, &groups],
        )?;
        let mut with_traits: Vec<&str> =
            rows.iter().filter(|r| r.2.is_some()).map(|r| r.1).collect();
        with_traits.sort_unstable();
        with_traits.dedup();
        if !with_traits.is_empty() {
            let mut current: HashMap<String, Map<String, Value>> = HashMap::new();
            for r in self.all(
                "SELECT q.g, a.traits FROM unnest($2::text[]) AS q(g)
                 CROSS JOIN LATERAL (SELECT traits FROM accounts WHERE tenant_id = $1 AND group_id = q.g) AS a",
                &[&tenant, &with_traits],
            )? {
                current.insert(r.get(0), serde_json::from_str(r.get::<_, &str>(1))?);
            }
            for (_, group, traits) in rows {
                if let Some(new) = traits {
                    graph::merge_traits(current.entry(group.to_string()).or_default(), new);
                }
            }
            let mut ids = Vec::with_capacity(current.len());
            let mut merged = Vec::with_capacity(current.len());
            for (g, t) in &current {
                ids.push(g.as_str());
                merged.push(serde_json::to_string(t)?);
            }
            self.exec(
                "UPDATE accounts a SET traits = u.t FROM unnest($2::text[], $3::text[]) AS u(g, t)
                 WHERE a.tenant_id = $1 AND a.group_id = u.g",
                &[&tenant, &ids, &merged],
            )?;
        }
        let mut pairs: Vec<(&str, &str)> = rows.iter().map(|r| (r.0, r.1)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let (profiles, groups): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
        self.exec(
            "INSERT INTO profile_accounts (tenant_id, profile_id, group_id)
             SELECT $1, p, g FROM unnest($2::text[], $3::text[]) AS u(p, g) ON CONFLICT DO NOTHING",
            &[&tenant, &profiles, &groups],
        )?;
        Ok(())
    }

    fn owners_many(
        &mut self,
        tenant: &str,
        ids: &[Identifier],
    ) -> Result<Option<Vec<(Identifier, String)>>> {
        let kinds: Vec<String> = ids.iter().map(|i| i.kind_str()).collect();
        let values: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
        let rows = self.all(
            // a lateral probe per identifier: as a join, a table without statistics yet
            // (a new database) was read whole for the tenant and hashed, every batch
            "SELECT q.k, q.v, i.profile_id FROM unnest($2::text[], $3::text[]) AS q(k, v)
             CROSS JOIN LATERAL (SELECT profile_id FROM identifiers
               WHERE tenant_id = $1 AND kind = q.k AND value = q.v) AS i",
            &[&tenant, &kinds, &values],
        )?;
        Ok(Some(
            rows.iter()
                .map(|r| {
                    (
                        Identifier {
                            kind: kind_of(r.get(0)),
                            value: r.get(1),
                        },
                        r.get(2),
                    )
                })
                .collect(),
        ))
    }

    fn log_after(&mut self, tenant: &str, after_seq: i64, limit: u32) -> Result<Vec<LogRow>> {
        let limit = i64::from(limit);
        let rows = self.all(
            "SELECT seq, ts, received_at, message_id, payload FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&tenant, &after_seq, &limit],
        )?;
        Ok(rows
            .iter()
            .map(|r| LogRow {
                seq: r.get(0),
                ts_ms: r.get(1),
                received_ms: r.get(2),
                message_id: r.get(3),
                payload: r.get(4),
            })
            .collect())
    }
}
