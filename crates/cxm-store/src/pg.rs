//! The scale-out store: PostgreSQL through the synchronous `postgres` client, run on the
//! blocking pool like SQLite, so both backends share `graph` for every ingest decision.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use cxm_domain::identity::ProfileView;
use cxm_domain::{Identifier, IdentifierKind, NormalizedEvent};
use postgres::{Client, NoTls, Row, Statement, Transaction};
use serde_json::{Map, Value};

use crate::graph::{self, GraphTx, LogRow, StoreSettings};
use crate::sealed;
use crate::*;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_feedback.sql")),
    (3, include_str!("../migrations/postgres/0003_surveys.sql")),
    (4, include_str!("../migrations/postgres/0004_themes.sql")),
    (
        5,
        include_str!("../migrations/postgres/0005_invitations.sql"),
    ),
    (6, include_str!("../migrations/postgres/0006_journeys.sql")),
    (7, include_str!("../migrations/postgres/0007_health.sql")),
    (8, include_str!("../migrations/postgres/0008_tickets.sql")),
    (9, include_str!("../migrations/postgres/0009_webhooks.sql")),
    (
        10,
        include_str!("../migrations/postgres/0010_decisions.sql"),
    ),
    (11, include_str!("../migrations/postgres/0011_signing.sql")),
    (12, include_str!("../migrations/postgres/0012_step_up.sql")),
    (13, include_str!("../migrations/postgres/0013_erasures.sql")),
    (14, include_str!("../migrations/postgres/0014_consent.sql")),
    (
        15,
        include_str!("../migrations/postgres/0015_retention.sql"),
    ),
    (
        16,
        include_str!("../migrations/postgres/0016_experiments.sql"),
    ),
    (
        17,
        include_str!("../migrations/postgres/0017_event_blocks.sql"),
    ),
    (
        18,
        include_str!("../migrations/postgres/0018_outbound_mail.sql"),
    ),
    (
        19,
        include_str!("../migrations/postgres/0019_quarantine_days.sql"),
    ),
    (
        20,
        include_str!("../migrations/postgres/0020_user_offboarding.sql"),
    ),
    (
        21,
        include_str!("../migrations/postgres/0021_sealed_secrets.sql"),
    ),
    (
        22,
        include_str!("../migrations/postgres/0022_opaque_ids.sql"),
    ),
];
const POOL_SIZE: usize = 8;

struct Conn {
    client: Client,
    stmts: HashMap<&'static str, Statement>,
}

pub struct PgStore {
    url: String,
    pool: Mutex<Vec<Conn>>,
    settings: StoreSettings,
    key: sealed::MasterKey,
}

impl PgStore {
    pub fn connect(url: &str, settings: StoreSettings) -> Result<PgStore> {
        let key = match &settings.master_key {
            Some(k) => k.clone(),
            None => {
                tracing::warn!("no master key given: secrets are sealed with a key that lives only as long as this process");
                sealed::MasterKey::generate()
            }
        };
        let s = PgStore {
            url: url.to_string(),
            pool: Mutex::new(vec![]),
            settings,
            key,
        };
        s.with(|c| migrate(&mut c.client))?;
        s.tx(|g| sealed::bind(&mut PgSql(g), &s.key))?;
        Ok(s)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let conn = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match conn {
            Some(c) if !c.client.is_closed() => c,
            _ => Conn {
                client: Client::connect(&self.url, NoTls)?,
                stmts: HashMap::new(),
            },
        };
        let r = f(&mut conn);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_SIZE && !conn.client.is_closed() {
            pool.push(conn);
        }
        r
    }

    fn tx<T>(&self, f: impl FnOnce(&mut PgTx) -> Result<T>) -> Result<T> {
        self.with(|c| {
            let tx = c.client.transaction()?;
            let mut g = PgTx {
                tx,
                stmts: &mut c.stmts,
            };
            let r = f(&mut g)?;
            g.tx.commit()?;
            Ok(r)
        })
    }

    /// Runs `f` in a transaction that is always rolled back (a dry run).
    fn rolled_back<T>(&self, f: impl FnOnce(&mut PgTx) -> Result<T>) -> Result<T> {
        self.with(|c| {
            let tx = c.client.transaction()?;
            let mut g = PgTx {
                tx,
                stmts: &mut c.stmts,
            };
            let r = f(&mut g);
            g.tx.rollback()?;
            r
        })
    }
}

impl Drop for PgStore {
    /// The synchronous client closes its connection by blocking on its own runtime, which
    /// panics when the last handle is dropped on an async worker (at server shutdown, say).
    /// Close them on a plain thread instead.
    fn drop(&mut self) {
        let conns = std::mem::take(&mut *self.pool.lock().unwrap_or_else(|p| p.into_inner()));
        if !conns.is_empty() {
            let _ = std::thread::spawn(move || drop(conns)).join();
        }
    }
}

fn migrate(c: &mut Client) -> Result<()> {
    c.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
    // several servers may start at once against one database: serialise migrations
    let mut tx = c.transaction()?;
    tx.batch_execute("SELECT pg_advisory_xact_lock(7261001)")?;
    for (version, sql) in MIGRATIONS {
        let done = tx.query_opt(
            "SELECT version FROM schema_migrations WHERE version = $1",
            &[version],
        )?;
        if done.is_none() {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2)",
                &[version, &now_ms()],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The columns `pg_decision_row` reads, in its order (a macro so queries stay `&'static str`).
macro_rules! pg_decision_columns {
    () => {
        "id, agent, action, customer, resource, request, facts, used, policy_version, outcome, level, policy_ids, reasons, created_at, audit_seq, review_status, review_due_at, reviewed_by, review_reason, reviewed_at, resolved, intent, reported_at"
    };
}

macro_rules! step_up_columns {
    () => {
        "id, customer, profile_id, channel, sent_to, code_hash, attempts_left, expires_at, verified_at, created_by, created_at"
    };
}

struct PgTx<'a> {
    tx: Transaction<'a>,
    stmts: &'a mut HashMap<&'static str, Statement>,
}

impl PgTx<'_> {
    fn st(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }
    fn exec(
        &mut self,
        sql: &'static str,
        p: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let s = self.st(sql)?;
        Ok(self.tx.execute(&s, p)?)
    }
    fn opt(
        &mut self,
        sql: &'static str,
        p: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.st(sql)?;
        Ok(self.tx.query_opt(&s, p)?)
    }
    fn all(
        &mut self,
        sql: &'static str,
        p: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let s = self.st(sql)?;
        Ok(self.tx.query(&s, p)?)
    }
}

fn kind_of(s: &str) -> IdentifierKind {
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
        let n = self.exec(
            "INSERT INTO dedup (tenant_id, write_key_id, message_id, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&tenant, &key_id, &message_id, &received_ms],
        )?;
        Ok(n == 1)
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

    fn create_profile(&mut self, tenant: &str, profile: &str, ts_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO profiles (tenant_id, id, first_seen, last_seen) VALUES ($1, $2, $3, $3)",
            &[&tenant, &profile, &ts_ms],
        )?;
        Ok(())
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
        events: &[NormalizedEvent],
    ) -> Result<Vec<bool>> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
        let received: Vec<i64> = events
            .iter()
            .map(|e| e.received_at.timestamp_millis())
            .collect();
        let inserted: std::collections::HashSet<String> = self
            .all(
                "INSERT INTO dedup (tenant_id, write_key_id, message_id, received_at)
                 SELECT $1, $2, m, r FROM unnest($3::text[], $4::bigint[]) AS t(m, r)
                 ON CONFLICT DO NOTHING RETURNING message_id",
                &[&tenant, &key_id, &ids, &received],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // a repeat inside the request is a duplicate of its first occurrence
        let mut seen = std::collections::HashSet::new();
        Ok(ids
            .iter()
            .map(|m| inserted.contains(*m) && seen.insert(*m))
            .collect())
    }

    fn insert_events(
        &mut self,
        tenant: &str,
        key_id: &str,
        events: &[&NormalizedEvent],
    ) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let col = |f: &dyn Fn(&NormalizedEvent) -> Option<String>| {
            events.iter().map(|e| f(e)).collect::<Vec<Option<String>>>()
        };
        let message_ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let names = col(&|e| e.name.clone());
        let users = col(&|e| e.user_id.clone());
        let anons = col(&|e| e.anonymous_id.clone());
        let groups = col(&|e| e.group_id.clone());
        let channels: Vec<&str> = events.iter().map(|e| e.channel.as_str()).collect();
        let categories: Vec<&str> = events.iter().map(|e| e.category.as_str()).collect();
        let ts: Vec<i64> = events
            .iter()
            .map(|e| e.timestamp.timestamp_millis())
            .collect();
        let received: Vec<i64> = events
            .iter()
            .map(|e| e.received_at.timestamp_millis())
            .collect();
        let payloads: Vec<&str> = events.iter().map(|e| e.payload_json.as_str()).collect();
        let rows = self.all(
            "INSERT INTO events (tenant_id, write_key_id, message_id, type, name, user_id, anonymous_id, group_id, channel, category, ts, received_at, payload)
             SELECT $1, $2, m, ty, n, u, a, g, c, cat, t, r, p
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[])
                  WITH ORDINALITY AS x(m, ty, n, u, a, g, c, cat, t, r, p, ord)
             ORDER BY ord
             RETURNING seq, message_id",
            &[&tenant, &key_id, &message_ids, &types, &names, &users, &anons, &groups, &channels, &categories, &ts, &received, &payloads],
        )?;
        // message ids are unique here (duplicates were filtered), so map seqs back by id
        let by_id: std::collections::HashMap<String, i64> = rows
            .iter()
            .map(|r| (r.get::<_, String>(1), r.get::<_, i64>(0)))
            .collect();
        message_ids
            .iter()
            .map(|m| {
                by_id
                    .get(*m)
                    .copied()
                    .ok_or_else(|| StoreError::Backend(format!("no seq returned for {m}")))
            })
            .collect()
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

    fn owners_many(
        &mut self,
        tenant: &str,
        ids: &[Identifier],
    ) -> Result<Option<Vec<(Identifier, String)>>> {
        let kinds: Vec<String> = ids.iter().map(|i| i.kind_str()).collect();
        let values: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
        let rows = self.all(
            "SELECT i.kind, i.value, i.profile_id FROM identifiers i
             JOIN unnest($2::text[], $3::text[]) AS q(k, v) ON i.kind = q.k AND i.value = q.v
             WHERE i.tenant_id = $1",
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

fn row_to_key(r: &Row) -> ApiKey {
    ApiKey {
        id: r.get(0),
        tenant_id: r.get(1),
        kind: KeyKind::parse(r.get(2)).unwrap_or(KeyKind::Write),
        name: r.get(3),
        prefix: r.get(4),
        hash: r.get(5),
        created_at_ms: r.get(6),
        revoked_at_ms: r.get(7),
    }
}

fn row_to_user(r: &Row) -> User {
    User {
        id: r.get(0),
        tenant_id: r.get(1),
        email: r.get(2),
        password_hash: r.get(3),
        role: Role::parse(r.get(4)).unwrap_or(Role::Viewer),
        created_at_ms: r.get(5),
        disabled_at_ms: r.get(6),
    }
}

fn row_to_tenant(r: &Row) -> Tenant {
    Tenant {
        id: r.get(0),
        name: r.get(1),
        created_at_ms: r.get(2),
    }
}

fn row_to_event(r: &Row) -> StoredEvent {
    StoredEvent {
        seq: r.get(0),
        message_id: r.get(1),
        event_type: r.get(2),
        name: r.get(3),
        channel: r.get(4),
        category: r.get(5),
        timestamp_ms: r.get(6),
        received_at_ms: r.get(7),
        user_id: r.get(8),
        anonymous_id: r.get(9),
        payload: serde_json::from_str(r.get(10)).unwrap_or(Value::Null),
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn ping(&self) -> Result<()> {
        self.with(|c| Ok(c.client.simple_query("SELECT 1").map(|_| ())?))
    }

    fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: new_id("ten"),
            name: name.to_string(),
            created_at_ms: now_ms(),
        };
        self.tx(|g| {
            g.exec(
                "INSERT INTO tenants (id, name, created_at, id_salt, legacy_profile_seq) VALUES ($1, $2, $3, $4, 0)",
                &[&t.id, &t.name, &t.created_at_ms, &crate::new_salt()],
            )
        })?;
        Ok(t)
    }

    fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, name, created_at FROM tenants ORDER BY created_at",
                &[],
            )?
            .iter()
            .map(row_to_tenant)
            .collect())
        })
    }

    fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT id, name, created_at FROM tenants WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(row_to_tenant))
        })
    }

    fn insert_key(&self, k: &ApiKey) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO api_keys (id, tenant_id, kind, name, prefix, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&k.id, &k.tenant_id, &k.kind.as_str(), &k.name, &k.prefix, &k.hash, &k.created_at_ms, &k.revoked_at_ms],
            )
        })?;
        Ok(())
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.tx(|g| {
            Ok(g.opt("SELECT id, tenant_id, kind, name, prefix, hash, created_at, revoked_at FROM api_keys WHERE hash = $1", &[&hash])?
                .as_ref()
                .map(row_to_key))
        })
    }

    fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>> {
        self.tx(|g| {
            Ok(g.all("SELECT id, tenant_id, kind, name, prefix, hash, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at", &[&tenant])?
                .iter()
                .map(row_to_key)
                .collect())
        })
    }

    fn revoke_key(&self, tenant: &str, key_id: &str) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| Ok(g.exec("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL", &[&tenant, &key_id, &now])? == 1))
    }

    fn insert_user(&self, u: &User) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO users (id, tenant_id, email, password_hash, role, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&u.id, &u.tenant_id, &u.email, &u.password_hash, &u.role.as_str(), &u.created_at_ms, &u.disabled_at_ms],
            )
        })?;
        Ok(())
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.tx(|g| Ok(g.opt("SELECT id, tenant_id, email, password_hash, role, created_at, disabled_at FROM users WHERE email = $1", &[&email])?.as_ref().map(row_to_user)))
    }

    fn list_users(&self, tenant: &str) -> Result<Vec<User>> {
        self.tx(|g| {
            Ok(g.all("SELECT id, tenant_id, email, password_hash, role, created_at, disabled_at FROM users WHERE tenant_id = $1 ORDER BY created_at", &[&tenant])?
                .iter()
                .map(row_to_user)
                .collect())
        })
    }

    fn insert_session(&self, token_hash: &str, user_id: &str, expires_at_ms: i64) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("DELETE FROM sessions WHERE expires_at < $1", &[&now])?;
            g.exec(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
                &[&token_hash, &user_id, &expires_at_ms],
            )
        })?;
        Ok(())
    }

    fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT u.id, u.tenant_id, u.email, u.password_hash, u.role, u.created_at, u.disabled_at FROM users u JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                &[&token_hash, &now],
            )?
            .as_ref()
            .map(row_to_user))
        })
    }

    fn set_user_disabled(&self, tenant: &str, user_id: &str, at_ms: Option<i64>) -> Result<bool> {
        self.tx(|g| {
            let n = g.exec(
                "UPDATE users SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &user_id, &at_ms],
            )?;
            if n > 0 && at_ms.is_some() {
                g.exec("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn set_user_password(&self, tenant: &str, user_id: &str, password_hash: &str) -> Result<bool> {
        self.tx(|g| {
            let n = g.exec(
                "UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &user_id, &password_hash],
            )?;
            if n > 0 {
                g.exec("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn revoke_sessions(&self, tenant: &str, user_id: &str) -> Result<Option<u64>> {
        self.tx(|g| {
            if g.opt(
                "SELECT id FROM users WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &user_id],
            )?
            .is_none()
            {
                return Ok(None);
            }
            Ok(Some(g.exec(
                "DELETE FROM sessions WHERE user_id = $1",
                &[&user_id],
            )?))
        })
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.tx(|g| g.exec("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash]))?;
        Ok(())
    }

    fn append(&self, requests: &[AppendRequest]) -> Result<Vec<AppendOutcome>> {
        let tenants: BTreeSet<&str> = requests.iter().map(|r| r.tenant_id.as_str()).collect();
        self.tx(|g| {
            // identity resolution reads then writes; several servers may ingest for one tenant,
            // so serialise per tenant (in a stable order, so two writers cannot deadlock)
            for t in &tenants {
                g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[t])?;
            }
            graph::append_all(g, requests, &self.settings)
        })
    }

    fn insert_feedback(&self, tenant: &str, rows: &[FeedbackRow]) -> Result<FeedbackOutcome> {
        self.tx(|g| {
            let mut out = FeedbackOutcome::default();
            let now = now_ms();
            for r in rows {
                let a = &r.answer;
                let (survey, journey, stage, agent) = (a.survey_id.as_deref().unwrap_or(""), a.journey.as_deref().unwrap_or(""), a.stage.as_deref().unwrap_or(""), a.agent.as_deref().unwrap_or(""));
                // link the answer to its customer and account through the identity graph
                let profile: Option<String> = match a.identifier.as_deref().and_then(Identifier::parse_typed) {
                    Some(id) => g.opt("SELECT profile_id FROM identifiers WHERE tenant_id = $1 AND kind = $2 AND value = $3", &[&tenant, &id.kind_str(), &id.value])?.map(|r| r.get(0)),
                    None => None,
                };
                let account: Option<String> = match (&a.account, &profile) {
                    (Some(acc), _) => Some(acc.clone()),
                    (None, Some(p)) => g.opt("SELECT group_id FROM profile_accounts WHERE tenant_id = $1 AND profile_id = $2 ORDER BY group_id LIMIT 1", &[&tenant, p])?.map(|r| r.get(0)),
                    _ => None,
                };
                let tier = match &account {
                    Some(acc) => g
                        .opt("SELECT traits FROM accounts WHERE tenant_id = $1 AND group_id = $2", &[&tenant, acc])?
                        .and_then(|r| serde_json::from_str::<Value>(r.get::<_, &str>(0)).ok())
                        .and_then(|t| tier_of(&t))
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let inserted = g.opt(
                    "INSERT INTO feedback (tenant_id, idempotency_key, response_id, question, field_type, score, text_value, channel, survey_id, survey_version, journey, stage, agent, identifier, account, collected_at, sentiment, cues, created_at, profile_id, tier)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT DO NOTHING RETURNING id",
                    &[&tenant, &a.idempotency_key, &a.response_id, &a.question, &a.field_type.as_str(), &a.score, &a.text, &a.channel.as_str(), &survey, &a.survey_version,
                      &journey, &stage, &agent, &a.identifier, &account, &a.collected_at.timestamp_millis(), &r.sentiment, &r.cues, &now, &profile, &tier],
                )?;
                if inserted.is_none() {
                    out.duplicates += 1;
                    continue;
                }
                out.accepted += 1;
                if let Some(score) = a.score {
                    let day = a.collected_at.format("%Y-%m-%d").to_string();
                    for (dim, value) in [("", ""), ("channel", a.channel.as_str()), ("survey", survey), ("journey", journey), ("stage", stage), ("agent", agent), ("tier", tier.as_str())] {
                        if dim.is_empty() || !value.is_empty() {
                            g.exec(
                                "INSERT INTO feedback_rollup (tenant_id, field_type, dim, day, dim_value, score, answers) VALUES ($1, $2, $3, $4, $5, $6, 1)
                                 ON CONFLICT (tenant_id, field_type, dim, day, dim_value, score) DO UPDATE SET answers = feedback_rollup.answers + 1",
                                &[&tenant, &a.field_type.as_str(), &dim, &day, &value, &score],
                            )?;
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    fn feedback_histogram(
        &self,
        tenant: &str,
        field_type: &str,
        from_day: &str,
        to_day: &str,
        by: Option<Slice>,
    ) -> Result<Vec<HistogramRow>> {
        let dim = by.map(Slice::dim).unwrap_or("");
        self.tx(|g| {
            Ok(g.all(
                "SELECT day, dim_value, score, answers FROM feedback_rollup WHERE tenant_id = $1 AND field_type = $2 AND dim = $3 AND day >= $4 AND day <= $5 ORDER BY day, dim_value, score",
                &[&tenant, &field_type, &dim, &from_day, &to_day],
            )?
            .iter()
            .map(|r| HistogramRow { day: r.get(0), group: r.get(1), score: r.get(2), answers: r.get::<_, i64>(3) as u64 })
            .collect())
        })
    }

    fn text_answers(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT t.response_id, t.text_value, t.sentiment, (SELECT n.score FROM feedback n WHERE n.tenant_id = t.tenant_id AND n.response_id = t.response_id AND n.field_type = 'nps' LIMIT 1), t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = $1 AND t.field_type = 'text' AND t.collected_at >= $2 AND t.collected_at < $3 ORDER BY t.collected_at DESC LIMIT $4",
                &[&tenant, &from_ms, &to_ms, &limit],
            )?
            .iter()
            .map(text_answer)
            .collect())
        })
    }

    fn load_themes(&self, tenant: &str) -> Result<ThemeState> {
        self.tx(|g| {
            let mut state = g
                .opt("SELECT version, vocabulary, noise_below, discovered_at FROM theme_models WHERE tenant_id = $1", &[&tenant])?
                .map(|r| ThemeState { version: r.get(0), vocabulary: r.get(1), noise_below: r.get(2), discovered_at_ms: r.get(3), themes: vec![] })
                .unwrap_or_default();
            state.themes = g.all("SELECT doc FROM themes WHERE tenant_id = $1 ORDER BY theme_id", &[&tenant])?.iter().map(|r| r.get(0)).collect();
            Ok(state)
        })
    }

    fn save_themes(&self, tenant: &str, save: &ThemeSave) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            if let Some((vocabulary, noise)) = &save.discovery {
                g.exec(
                    "INSERT INTO theme_models (tenant_id, version, vocabulary, noise_below, discovered_at) VALUES ($1, 1, $2, $3, $4)
                     ON CONFLICT (tenant_id) DO UPDATE SET version = theme_models.version + 1, vocabulary = excluded.vocabulary, noise_below = excluded.noise_below, discovered_at = excluded.discovered_at",
                    &[&tenant, vocabulary, noise, &now],
                )?;
            }
            for (id, doc) in &save.themes {
                g.exec(
                    "INSERT INTO themes (tenant_id, theme_id, doc, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, theme_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
                    &[&tenant, id, doc, &now],
                )?;
            }
            if let Some(e) = &save.edit {
                g.exec("INSERT INTO theme_edits (tenant_id, theme_id, kind, detail, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)", &[&tenant, &e.theme_id, &e.kind, &e.detail, &e.actor, &now])?;
            }
            Ok(g.opt("SELECT version FROM theme_models WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0))
        })
    }

    fn assign_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|a| a.feedback_id).collect();
        let themes: Vec<&str> = rows.iter().map(|a| a.theme_id.as_str()).collect();
        let days: Vec<&str> = rows.iter().map(|a| a.day.as_str()).collect();
        let responses: Vec<&str> = rows.iter().map(|a| a.response_id.as_str()).collect();
        let sentiments: Vec<Option<f64>> = rows.iter().map(|a| a.sentiment).collect();
        let accounts: Vec<Option<&str>> = rows.iter().map(|a| a.account.as_deref()).collect();
        self.tx(|g| {
            // one statement for the whole batch: a re-discovery reassigns thousands at once
            g.exec(
                "INSERT INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account)
                 SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[])
                 ON CONFLICT (tenant_id, feedback_id) DO UPDATE SET theme_id = excluded.theme_id",
                &[&tenant, &ids, &themes, &days, &responses, &sentiments, &accounts],
            )?;
            Ok(())
        })
    }

    fn refresh_theme_rollup(&self, tenant: &str) -> Result<()> {
        self.tx(|g| {
            g.exec("DELETE FROM theme_rollup WHERE tenant_id = $1", &[&tenant])?;
            g.exec(
                "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n)
                 SELECT $1, m.day, m.theme_id, COUNT(*),
                        COUNT(DISTINCT CASE WHEN n.score >= 9 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score BETWEEN 7 AND 8 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score <= 6 THEN m.response_id END),
                        COALESCE(SUM(m.sentiment), 0), COUNT(m.sentiment)
                 FROM feedback_themes m LEFT JOIN (SELECT response_id, MIN(score) AS score FROM feedback WHERE tenant_id = $1 AND field_type = 'nps' GROUP BY response_id) n ON n.response_id = m.response_id
                 WHERE m.tenant_id = $1 GROUP BY m.day, m.theme_id",
                &[&tenant],
            )?;
            Ok(())
        })
    }

    fn place_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        self.tx(|g| {
            for a in rows {
                let inserted = g.exec(
                    "INSERT INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    &[&tenant, &a.feedback_id, &a.theme_id, &a.day, &a.response_id, &a.sentiment, &a.account],
                )?;
                if inserted == 0 {
                    continue;
                }
                let first = g
                    .opt("SELECT 1 FROM feedback_themes WHERE tenant_id = $1 AND response_id = $2 AND theme_id = $3 AND feedback_id <> $4 LIMIT 1", &[&tenant, &a.response_id, &a.theme_id, &a.feedback_id])?
                    .is_none();
                let score: Option<i64> = g
                    .opt("SELECT score FROM feedback WHERE tenant_id = $1 AND response_id = $2 AND field_type = 'nps' LIMIT 1", &[&tenant, &a.response_id])?
                    .and_then(|r| r.get::<_, Option<i64>>(0));
                let [p, n, d] = nps_category(score.filter(|_| first));
                g.exec(
                    "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8)
                     ON CONFLICT (tenant_id, day, theme_id) DO UPDATE SET answers = theme_rollup.answers + 1, promoters = theme_rollup.promoters + excluded.promoters,
                       passives = theme_rollup.passives + excluded.passives, detractors = theme_rollup.detractors + excluded.detractors,
                       sentiment_sum = theme_rollup.sentiment_sum + excluded.sentiment_sum, sentiment_n = theme_rollup.sentiment_n + excluded.sentiment_n",
                    &[&tenant, &a.day, &a.theme_id, &p, &n, &d, &a.sentiment.unwrap_or(0.0), &i64::from(a.sentiment.is_some())],
                )?;
            }
            Ok(())
        })
    }

    fn theme_watermark(&self, tenant: &str) -> Result<i64> {
        self.tx(|g| Ok(g.opt("SELECT COALESCE(MAX(feedback_id), 0)::bigint FROM feedback_themes WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0)))
    }

    fn text_answers_after(
        &self,
        tenant: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT t.response_id, t.text_value, t.sentiment, NULL::bigint, t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = $1 AND t.id > $2 AND t.field_type = 'text' ORDER BY t.id LIMIT $3",
                &[&tenant, &after_id, &limit],
            )?
            .iter()
            .map(text_answer)
            .collect())
        })
    }

    fn theme_members(
        &self,
        tenant: &str,
        theme_ids: &[String],
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            let mut out = vec![];
            for id in theme_ids {
                let rows = g.all(
                    "SELECT t.response_id, t.text_value, t.sentiment, NULL::bigint, t.collected_at, t.id, t.account
                     FROM feedback_themes m JOIN feedback t ON t.id = m.feedback_id WHERE m.tenant_id = $1 AND m.theme_id = $2 ORDER BY t.id LIMIT $3",
                    &[&tenant, id, &limit],
                )?;
                out.extend(rows.iter().map(text_answer));
            }
            Ok(out)
        })
    }

    fn theme_days(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeDay>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT theme_id, day, answers, sentiment_sum, sentiment_n FROM theme_rollup
                 WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY theme_id, day",
                &[&tenant, &from_day, &to_day],
            )?
            .iter()
            .map(|r| ThemeDay {
                theme_id: r.get(0),
                day: r.get(1),
                answers: r.get::<_, i64>(2) as u64,
                sentiment_sum: r.get(3),
                sentiment_n: r.get::<_, i64>(4) as u64,
            })
            .collect())
        })
    }

    fn theme_nps(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeNps>> {
        self.tx(|g| {
            let rows = g
                .all(
                    "SELECT theme_id, SUM(promoters)::bigint, SUM(passives)::bigint, SUM(detractors)::bigint FROM theme_rollup WHERE tenant_id = $1 AND day >= $2 AND day <= $3 GROUP BY theme_id ORDER BY theme_id",
                    &[&tenant, &from_day, &to_day],
                )?
                .iter()
                .map(|r| (r.get::<_, String>(0), [r.get::<_, i64>(1), r.get(2), r.get(3)]))
                .collect();
            Ok(nps_rows(rows))
        })
    }

    fn theme_accounts(
        &self,
        tenant: &str,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<ThemeAccount>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT m.theme_id, m.account, COALESCE(a.traits, '{}') FROM (SELECT DISTINCT theme_id, account FROM feedback_themes WHERE tenant_id = $1 AND day >= $2 AND day <= $3 AND account IS NOT NULL) m
                 LEFT JOIN accounts a ON a.tenant_id = $1 AND a.group_id = m.account",
                &[&tenant, &from_day, &to_day],
            )?
            .iter()
            .map(|r| ThemeAccount { theme_id: r.get(0), account: r.get(1), traits: r.get(2) })
            .collect())
        })
    }

    fn theme_edits(&self, tenant: &str, limit: u32) -> Result<Vec<ThemeEdit>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all("SELECT theme_id, kind, detail, actor, created_at FROM theme_edits WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2", &[&tenant, &limit])?
                .iter()
                .map(|r| ThemeEdit { theme_id: r.get(0), kind: r.get(1), detail: r.get(2), actor: r.get(3), created_at_ms: r.get(4) })
                .collect())
        })
    }

    fn max_event_seq(&self) -> Result<i64> {
        self.tx(|g| {
            Ok(
                g.opt("SELECT COALESCE(MAX(seq), 0)::bigint FROM events", &[])?
                    .map(|r| r.get(0))
                    .unwrap_or(0),
            )
        })
    }

    fn event_blocks_head(&self, tenant: &str) -> Result<i64> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT COALESCE(MAX(last_seq), 0)::bigint FROM event_blocks WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| r.get(0))
            .unwrap_or(0))
        })
    }

    fn compact_events(&self, tenant: &str, block: usize) -> Result<usize> {
        let head = self.event_blocks_head(tenant)?;
        let limit = block.max(1) as i64;
        let rows: Vec<crate::columns::LogColumns> = self.tx(|g| {
            Ok(g.all(
                "SELECT seq, user_id, anonymous_id, name, channel, ts FROM events
                 WHERE tenant_id = $1 AND seq > $2 AND name IS NOT NULL ORDER BY seq LIMIT $3",
                &[&tenant, &head, &limit],
            )?
            .iter()
            .map(|r| crate::columns::LogColumns {
                seq: r.get(0),
                user_id: r.get(1),
                anonymous_id: r.get(2),
                name: r.get(3),
                channel: r.get(4),
                ts_ms: r.get(5),
            })
            .collect())
        })?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(0);
        };
        if rows.len() < block.max(1) {
            return Ok(0);
        }
        let body = crate::columns::encode(&rows);
        let (first, last, n) = (first.seq, last.seq, rows.len() as i64);
        self.tx(|g| {
            // written only onto the head it was read after: a purge or another server in
            // between and this block is not written
            let put = g.exec(
                "INSERT INTO event_blocks (tenant_id, first_seq, last_seq, events, body)
                 SELECT $1, $2, $3, $4, $5 WHERE COALESCE((SELECT MAX(last_seq) FROM event_blocks WHERE tenant_id = $1), 0) = $6
                 ON CONFLICT DO NOTHING",
                &[&tenant, &first, &last, &n, &body, &head],
            )?;
            Ok(if put == 1 { n as usize } else { 0 })
        })
    }

    fn event_blocks(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::columns::EventBlock>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT first_seq, last_seq, body FROM event_blocks WHERE tenant_id = $1 AND first_seq > $2 ORDER BY first_seq LIMIT $3",
                &[&tenant, &after_seq, &limit],
            )?
                .iter()
                .map(|r| crate::columns::EventBlock { first_seq: r.get(0), last_seq: r.get(1), body: r.get(2) })
                .collect())
        })
    }

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

    fn save_journey(&self, tenant: &str, j: &StoredJourney, carry: bool) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/journey/' || $2))", &[&tenant, &j.journey_id])?;
            let v: i64 = g.opt("SELECT COALESCE(MAX(version), 0)::bigint + 1 FROM journeys WHERE tenant_id = $1 AND journey_id = $2", &[&tenant, &j.journey_id])?.map(|r| r.get(0)).unwrap_or(1);
            g.exec(
                "INSERT INTO journeys (tenant_id, journey_id, version, name, owner, definition, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&tenant, &j.journey_id, &v, &j.name, &j.owner, &j.definition, &j.created_by, &now],
            )?;
            let args: [&(dyn postgres::types::ToSql + Sync); 3] = [&tenant, &j.journey_id, &v];
            if carry {
                g.exec("UPDATE journey_positions SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
                g.exec("UPDATE journey_visits SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
                g.exec("UPDATE journey_stats SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
                g.exec("UPDATE journey_cursors SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
            }
            g.exec("DELETE FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            g.exec("DELETE FROM journey_visits WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            g.exec("DELETE FROM journey_stats WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            g.exec("DELETE FROM journey_cursors WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            Ok(v)
        })
    }

    fn journey(
        &self,
        tenant: &str,
        journey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredJourney>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = $1 AND journey_id = $2 AND ($3::bigint IS NULL OR version = $3) ORDER BY version DESC LIMIT 1",
                &[&tenant, &journey_id, &version],
            )?
            .map(|r| journey_row(&r)))
        })
    }

    fn list_journeys(&self, tenant: &str) -> Result<Vec<StoredJourney>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys j
                 WHERE tenant_id = $1 AND version = (SELECT MAX(version) FROM journeys x WHERE x.tenant_id = j.tenant_id AND x.journey_id = j.journey_id)
                 ORDER BY name, journey_id",
                &[&tenant],
            )?
            .iter()
            .map(journey_row)
            .collect())
        })
    }

    fn journey_history(&self, tenant: &str, journey_id: &str) -> Result<Vec<StoredJourney>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = $1 AND journey_id = $2 ORDER BY version DESC",
                &[&tenant, &journey_id],
            )?
            .iter()
            .map(journey_row)
            .collect())
        })
    }

    fn journey_cursor(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
    ) -> Result<JourneyCursor> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = $1 AND journey_id = $2 AND version = $3",
                &[&tenant, &journey_id, &version],
            )?
            .map(|r| JourneyCursor { event_seq: r.get(0), feedback_id: r.get(1) })
            .unwrap_or_default())
        })
    }

    fn journey_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<JourneyEventRow>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT e.seq, COALESCE(iu.profile_id, ia.profile_id), e.name, e.channel, e.ts FROM events e
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = $3 AND e.name = ANY($4) AND e.seq > $1 AND e.seq <= $2
                 ORDER BY e.seq LIMIT $5",
                &[&after, &upto, &tenant, &names, &limit],
            )?
            .iter()
            .map(|r| JourneyEventRow { seq: r.get(0), profile_id: r.get(1), name: r.get(2), channel: r.get(3), ts_ms: r.get(4) })
            .collect())
        })
    }

    fn journey_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<JourneyAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, profile_id, field_type, score, sentiment, collected_at, journey, stage FROM feedback
                 WHERE tenant_id = $1 AND id > $2 AND field_type IN ('nps', 'csat', 'ces', 'text') ORDER BY id LIMIT $3",
                &[&tenant, &after, &limit],
            )?
            .iter()
            .map(|r| JourneyAnswer {
                id: r.get(0),
                profile_id: r.get(1),
                field_type: r.get(2),
                score: r.get::<_, Option<i64>>(3).map(|s| s as f64),
                sentiment: r.get(4),
                collected_at_ms: r.get(5),
                journey: r.get(6),
                stage: r.get(7),
            })
            .collect())
        })
    }

    fn event_name_seen(&self, tenant: &str, name: &str) -> Result<bool> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1 AND name = $2)",
                &[&tenant, &name],
            )?
            .is_some_and(|r| r.get(0)))
        })
    }

    fn journey_positions(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        profiles: &[String],
    ) -> Result<HashMap<String, cxm_domain::journey_progress::Position>> {
        self.tx(|g| {
            let rows = g.all(
                "SELECT profile_id, state FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND profile_id = ANY($4)",
                &[&tenant, &journey_id, &version, &profiles],
            )?;
            rows.iter().map(|r| Ok((r.get::<_, String>(0), serde_json::from_str(r.get::<_, &str>(1))?))).collect()
        })
    }

    fn journey_stage_at(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        at: &[(String, i64)],
    ) -> Result<Vec<Option<usize>>> {
        self.tx(|g| {
            let mut out = Vec::with_capacity(at.len());
            for (p, ts) in at {
                let mut stage: Option<i64> = g
                    .opt(
                        "SELECT stage FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND profile_id = $4 AND entered_at <= $5",
                        &[&tenant, &journey_id, &version, p, ts],
                    )?
                    .map(|r| r.get(0));
                if stage.is_none() {
                    stage = g
                        .opt(
                            "SELECT stage FROM journey_visits WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND profile_id = $4 AND entered_at <= $5 AND left_at >= $5
                             ORDER BY entered_at DESC LIMIT 1",
                            &[&tenant, &journey_id, &version, p, ts],
                        )?
                        .map(|r| r.get(0));
                }
                out.push(stage.map(|s| s as usize));
            }
            Ok(out)
        })
    }

    fn journey_stats(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
    ) -> Result<Vec<(usize, cxm_domain::journey_progress::StageStats)>> {
        self.tx(|g| {
            let rows = g.all(
                "SELECT stage, stats FROM journey_stats WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 ORDER BY stage",
                &[&tenant, &journey_id, &version],
            )?;
            rows.iter().map(|r| Ok((r.get::<_, i64>(0) as usize, serde_json::from_str(r.get::<_, &str>(1))?))).collect()
        })
    }

    fn journey_stalled(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        cutoffs: &[(usize, i64)],
    ) -> Result<Vec<u64>> {
        self.tx(|g| {
            let mut out = vec![];
            for (stage, cut) in cutoffs {
                let stage = *stage as i64;
                let n: i64 = g
                    .opt(
                        "SELECT COUNT(*) FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND stage = $4 AND entered_at < $5 AND open = 1",
                        &[&tenant, &journey_id, &version, &stage, cut],
                    )?
                    .map_or(0, |r| r.get(0));
                out.push(n as u64);
            }
            Ok(out)
        })
    }

    fn save_journey_progress(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        p: &JourneyProgress,
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            // one pass at a time per journey, whichever server runs it
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/journey/' || $2))", &[&tenant, &journey_id])?;
            let latest: Option<i64> = g.opt("SELECT MAX(version) FROM journeys WHERE tenant_id = $1 AND journey_id = $2", &[&tenant, &journey_id])?.and_then(|r| r.get(0));
            let cur = g
                .opt(
                    "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = $1 AND journey_id = $2 AND version = $3",
                    &[&tenant, &journey_id, &version],
                )?
                .map(|r| JourneyCursor { event_seq: r.get(0), feedback_id: r.get(1) })
                .unwrap_or_default();
            if latest != Some(version) || cur != p.from {
                return Ok(false);
            }
            for (profile, pos) in &p.positions {
                let stage = pos.stage as i64;
                let open = i64::from(!pos.done);
                let state = serde_json::to_string(pos)?;
                g.exec(
                    "INSERT INTO journey_positions (tenant_id, journey_id, version, profile_id, stage, open, entered_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (tenant_id, journey_id, version, profile_id) DO UPDATE SET stage = EXCLUDED.stage, open = EXCLUDED.open, entered_at = EXCLUDED.entered_at, state = EXCLUDED.state",
                    &[&tenant, &journey_id, &version, profile, &stage, &open, &pos.entered_ms, &state],
                )?;
            }
            for (profile, v) in &p.visits {
                let stage = v.stage as i64;
                g.exec(
                    "INSERT INTO journey_visits (tenant_id, journey_id, version, profile_id, stage, entered_at, left_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&tenant, &journey_id, &version, profile, &stage, &v.entered_ms, &v.left_ms, &outcome_str(v.outcome)],
                )?;
            }
            for (stage, st) in &p.stats {
                let stage = *stage as i64;
                let json = serde_json::to_string(st)?;
                g.exec(
                    "INSERT INTO journey_stats (tenant_id, journey_id, version, stage, stats) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, journey_id, version, stage) DO UPDATE SET stats = EXCLUDED.stats",
                    &[&tenant, &journey_id, &version, &stage, &json],
                )?;
            }
            g.exec(
                "INSERT INTO journey_cursors (tenant_id, journey_id, version, event_seq, feedback_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, journey_id, version) DO UPDATE SET event_seq = EXCLUDED.event_seq, feedback_id = EXCLUDED.feedback_id, updated_at = EXCLUDED.updated_at",
                &[&tenant, &journey_id, &version, &p.to.event_seq, &p.to.feedback_id, &now],
            )?;
            Ok(true)
        })
    }

    fn health_cursor(&self, tenant: &str) -> Result<HealthCursor> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| HealthCursor {
                event_seq: r.get(0),
                feedback_id: r.get(1),
            })
            .unwrap_or_default())
        })
    }

    fn health_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<HealthEventRow>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT e.seq, COALESCE(e.group_id, (SELECT pa.group_id FROM identifiers i JOIN profile_accounts pa ON pa.tenant_id = i.tenant_id AND pa.profile_id = i.profile_id
                     WHERE i.tenant_id = e.tenant_id AND ((i.kind = 'user_id' AND i.value = e.user_id) OR (i.kind = 'anonymous_id' AND i.value = e.anonymous_id))
                     ORDER BY i.kind DESC, pa.group_id LIMIT 1)), e.name, e.category, e.ts
                 FROM events e WHERE e.seq > $1 AND e.seq <= $2 AND e.tenant_id = $3 ORDER BY e.seq LIMIT $4",
                &[&after, &upto, &tenant, &limit],
            )?
            .iter()
            .map(|r| HealthEventRow { seq: r.get(0), account: r.get(1), name: r.get(2), category: r.get(3), ts_ms: r.get(4) })
            .collect())
        })
    }

    fn account_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<AccountAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, account, field_type, score, collected_at FROM feedback
                 WHERE tenant_id = $1 AND id > $2 AND field_type IN ('nps', 'csat') ORDER BY id LIMIT $3",
                &[&tenant, &after, &limit],
            )?
            .iter()
            .map(|r| AccountAnswer { id: r.get(0), account: r.get(1), field_type: r.get(2), score: r.get::<_, Option<i64>>(3).map(|s| s as f64), collected_at_ms: r.get(4) })
            .collect())
        })
    }

    fn add_account_days(
        &self,
        tenant: &str,
        from: HealthCursor,
        to: HealthCursor,
        days: &[(String, cxm_domain::health::AccountDay)],
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/health'))", &[&tenant])?;
            let cur = g
                .opt("SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = $1", &[&tenant])?
                .map(|r| HealthCursor { event_seq: r.get(0), feedback_id: r.get(1) })
                .unwrap_or_default();
            if cur != from {
                return Ok(false);
            }
            for (grp, d) in days {
                let n: [i64; 6] = [d.active, d.tickets, d.payment_failed, d.usage, d.churned, d.low_scores].map(i64::from);
                let day = d.day.to_string();
                g.exec(
                    "INSERT INTO account_daily (tenant_id, group_id, day, active, tickets, payment_failed, usage, churned, low_scores) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (tenant_id, group_id, day) DO UPDATE SET active = account_daily.active + EXCLUDED.active, tickets = account_daily.tickets + EXCLUDED.tickets,
                       payment_failed = account_daily.payment_failed + EXCLUDED.payment_failed, usage = account_daily.usage + EXCLUDED.usage,
                       churned = account_daily.churned + EXCLUDED.churned, low_scores = account_daily.low_scores + EXCLUDED.low_scores",
                    &[&tenant, grp, &day, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]],
                )?;
            }
            g.exec(
                "INSERT INTO health_cursors (tenant_id, event_seq, feedback_id, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id) DO UPDATE SET event_seq = EXCLUDED.event_seq, feedback_id = EXCLUDED.feedback_id, updated_at = EXCLUDED.updated_at",
                &[&tenant, &to.event_seq, &to.feedback_id, &now],
            )?;
            Ok(true)
        })
    }

    fn accounts_for_health(
        &self,
        tenant: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<AccountRecord>> {
        let since = since.to_string();
        self.tx(|g| {
            let mut out: std::collections::BTreeMap<String, AccountRecord> = std::collections::BTreeMap::new();
            for r in g.all("SELECT group_id, traits FROM accounts WHERE tenant_id = $1", &[&tenant])? {
                let grp: String = r.get(0);
                out.insert(grp.clone(), account_record(grp, r.get::<_, &str>(1)));
            }
            let rows = g.all(
                "SELECT group_id, day, active, tickets, payment_failed, usage, churned, low_scores FROM account_daily
                 WHERE tenant_id = $1 AND day >= $2 ORDER BY group_id, day",
                &[&tenant, &since],
            )?;
            for r in rows {
                let grp: String = r.get(0);
                let Ok(day) = r.get::<_, &str>(1).parse() else { continue };
                let n: [u32; 6] = [2, 3, 4, 5, 6, 7].map(|i| r.get::<_, i64>(i).clamp(0, i64::from(u32::MAX)) as u32);
                out.entry(grp.clone()).or_insert_with(|| account_record(grp, "{}")).days.push(account_day(day, n));
            }
            Ok(out.into_values().collect())
        })
    }

    fn save_signal_set(&self, tenant: &str, definition: &str, actor: &str) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/signals'))", &[&tenant])?;
            let v: i64 = g.opt("SELECT COALESCE(MAX(version), 0)::bigint + 1 FROM signal_sets WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(1);
            g.exec("INSERT INTO signal_sets (tenant_id, version, definition, created_by, created_at) VALUES ($1, $2, $3, $4, $5)", &[&tenant, &v, &definition, &actor, &now])?;
            Ok(v)
        })
    }

    fn signal_set(&self, tenant: &str) -> Result<Option<(i64, String)>> {
        self.tx(|g| Ok(g.opt("SELECT version, definition FROM signal_sets WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", &[&tenant])?.map(|r| (r.get(0), r.get(1)))))
    }

    fn save_account_health(
        &self,
        tenant: &str,
        rows: &[AccountHealthRow],
        day: chrono::NaiveDate,
    ) -> Result<()> {
        let day = day.to_string();
        self.tx(|g| {
            for r in rows {
                let readings = r.readings.to_string();
                g.exec(
                    "INSERT INTO account_health (tenant_id, group_id, name, score, band, readings, arr, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (tenant_id, group_id) DO UPDATE SET name = EXCLUDED.name, score = EXCLUDED.score, band = EXCLUDED.band, readings = EXCLUDED.readings, arr = EXCLUDED.arr, computed_at = EXCLUDED.computed_at",
                    &[&tenant, &r.group_id, &r.name, &r.score, &r.band, &readings, &r.arr, &r.computed_at_ms],
                )?;
                g.exec(
                    "INSERT INTO health_history (tenant_id, group_id, day, score, band) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, group_id, day) DO UPDATE SET score = EXCLUDED.score, band = EXCLUDED.band",
                    &[&tenant, &r.group_id, &day, &r.score, &r.band],
                )?;
            }
            Ok(())
        })
    }

    fn account_health(
        &self,
        tenant: &str,
        band: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AccountHealthRow>> {
        let (limit, offset) = (i64::from(limit), i64::from(offset));
        self.tx(|g| {
            Ok(g.all(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR band = $2) ORDER BY score, arr DESC, group_id LIMIT $3 OFFSET $4",
                &[&tenant, &band, &limit, &offset],
            )?
            .iter()
            .map(pg_health_row)
            .collect())
        })
    }

    fn account_health_one(&self, tenant: &str, group_id: &str) -> Result<Option<AccountHealthRow>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health WHERE tenant_id = $1 AND group_id = $2",
                &[&tenant, &group_id],
            )?
            .map(|r| pg_health_row(&r)))
        })
    }

    fn band_counts(&self, tenant: &str) -> Result<Vec<BandCount>> {
        self.tx(|g| {
            Ok(g.all("SELECT band, COUNT(*), COALESCE(SUM(arr), 0)::double precision FROM account_health WHERE tenant_id = $1 GROUP BY band ORDER BY band", &[&tenant])?
                .iter()
                .map(|r| BandCount { band: r.get(0), accounts: r.get(1), arr: r.get(2) })
                .collect())
        })
    }

    fn health_trend(
        &self,
        tenant: &str,
        group_id: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<(chrono::NaiveDate, f64)>> {
        let since = since.to_string();
        self.tx(|g| {
            Ok(g.all("SELECT day, score FROM health_history WHERE tenant_id = $1 AND group_id = $2 AND day >= $3 ORDER BY day", &[&tenant, &group_id, &since])?
                .iter()
                .filter_map(|r| Some((r.get::<_, &str>(0).parse().ok()?, r.get(1))))
                .collect())
        })
    }

    fn sync_alerts(
        &self,
        tenant: &str,
        open: &[NewAlert],
        clear: &[(String, String, String)],
        actor: &str,
    ) -> Result<(Vec<i64>, u64)> {
        let now = now_ms();
        self.tx(|g| {
            let mut ids = vec![];
            for a in open {
                let detail = a.detail.to_string();
                let id = with_public_id(g, "alerts", |g, id| {
                    g.exec(
                        "INSERT INTO alerts (id, tenant_id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner)
                         VALUES ($10, $1, $2, $3, $4, 'open', $5, $6, $7, $8, $8, 'cxm', $9) ON CONFLICT DO NOTHING",
                        &[&tenant, &a.group_id, &a.kind, &a.signal, &a.title, &detail, &a.arr, &now, &a.owner, &id],
                    )
                })?;
                ids.extend(id);
            }
            let mut resolved = 0;
            for (grp, k, s) in clear {
                resolved += g.exec(
                    "UPDATE alerts SET status = 'resolved', updated_at = $5, updated_by = $6 WHERE tenant_id = $1 AND group_id = $2 AND kind = $3 AND signal = $4 AND status <> 'resolved'",
                    &[&tenant, grp, k, s, &now, &actor],
                )?;
            }
            Ok((ids, resolved))
        })
    }

    fn list_alerts(&self, tenant: &str, status: Option<&str>, limit: u32) -> Result<Vec<Alert>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3",
                &[&tenant, &status, &limit],
            )?
            .iter()
            .map(pg_alert_row)
            .collect())
        })
    }

    fn alert(&self, tenant: &str, id: i64) -> Result<Option<Alert>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )?
            .map(|r| pg_alert_row(&r)))
        })
    }

    fn set_alert_status(&self, tenant: &str, id: i64, status: &str, actor: &str) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| Ok(g.exec("UPDATE alerts SET status = $3, updated_at = $4, updated_by = $5 WHERE tenant_id = $1 AND id = $2", &[&tenant, &id, &status, &now, &actor])? > 0))
    }

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

    fn amount_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<AmountEvent>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT e.seq, COALESCE(iu.profile_id, ia.profile_id), e.group_id, e.ts,
                   COALESCE(p.props ->> 'revenue', p.props ->> 'total', p.props ->> 'amount', p.props ->> 'value')
                 FROM events e
                   CROSS JOIN LATERAL (SELECT (e.payload::jsonb) -> 'properties' AS props) p
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = $3 AND e.name = ANY($4) AND e.seq > $1 AND e.seq <= $2
                 ORDER BY e.seq LIMIT $5",
                &[&after, &upto, &tenant, &names, &limit],
            )?
            .iter()
            .map(|r| AmountEvent { seq: r.get(0), profile_id: r.get(1), group_id: r.get(2), ts_ms: r.get(3), amount: r.get(4) })
            .collect())
        })
    }

    fn experiment_views(
        &self,
        tenant: &str,
        experiment: &str,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<ViewEvent>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT e.seq, e.user_id, e.anonymous_id, COALESCE(iu.profile_id, ia.profile_id), e.ts,
                   p.props ->> 'variation_id'
                 FROM events e
                   CROSS JOIN LATERAL (SELECT (e.payload::jsonb) -> 'properties' AS props) p
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = $3 AND e.name = 'Experiment Viewed' AND e.seq > $1 AND e.seq <= $2
                   AND p.props ->> 'experiment_id' = $4
                 ORDER BY e.seq LIMIT $5",
                &[&after, &upto, &tenant, &experiment, &limit],
            )?
            .iter()
            .map(|r| ViewEvent { seq: r.get(0), user_id: r.get(1), anonymous_id: r.get(2), profile_id: r.get(3), ts_ms: r.get(4), variation: r.get(5) })
            .collect())
        })
    }

    fn save_experiment(&self, tenant: &str, e: &StoredExperiment) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO experiments (tenant_id, id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (tenant_id, id) DO UPDATE SET definition = excluded.definition, status = excluded.status, rollout_percent = excluded.rollout_percent,
                   shipped_arm = excluded.shipped_arm, history = excluded.history, updated_at = excluded.updated_at, started_at = excluded.started_at",
                &[&tenant, &e.id, &e.definition, &e.status, &e.rollout_percent, &e.shipped_arm, &e.history, &e.created_by, &e.created_at_ms, &e.updated_at_ms, &e.started_at_ms],
            )?;
            Ok(())
        })
    }

    fn experiment(&self, tenant: &str, id: &str) -> Result<Option<StoredExperiment>> {
        self.tx(|g| {
            Ok(g.opt(PG_EXPERIMENT_ONE, &[&tenant, &id])?
                .as_ref()
                .map(pg_experiment_row))
        })
    }

    fn experiments(&self, tenant: &str) -> Result<Vec<StoredExperiment>> {
        self.tx(|g| {
            Ok(g.all(PG_EXPERIMENT_ALL, &[&tenant])?
                .iter()
                .map(pg_experiment_row)
                .collect())
        })
    }

    fn expose(&self, tenant: &str, x: &Exposure) -> Result<String> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO experiment_exposures (tenant_id, experiment_id, unit, customer, profile_id, arm, first_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, experiment_id, unit, customer) DO UPDATE SET profile_id = COALESCE(experiment_exposures.profile_id, excluded.profile_id)",
                &[&tenant, &x.experiment_id, &x.unit, &x.customer, &x.profile_id, &x.arm, &x.first_at_ms],
            )?;
            let row = g.opt(
                "SELECT arm FROM experiment_exposures WHERE tenant_id = $1 AND experiment_id = $2 AND unit = $3 AND customer = $4",
                &[&tenant, &x.experiment_id, &x.unit, &x.customer],
            )?;
            Ok(row.map(|r| r.get(0)).unwrap_or_else(|| x.arm.clone()))
        })
    }

    fn exposures(&self, tenant: &str, experiment: &str) -> Result<Vec<Exposure>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT experiment_id, unit, customer, profile_id, arm, first_at FROM experiment_exposures WHERE tenant_id = $1 AND experiment_id = $2 ORDER BY first_at, unit, customer",
                &[&tenant, &experiment],
            )?
            .iter()
            .map(|r| Exposure { experiment_id: r.get(0), unit: r.get(1), customer: r.get(2), profile_id: r.get(3), arm: r.get(4), first_at_ms: r.get(5) })
            .collect())
        })
    }

    fn save_document(&self, tenant: &str, kind: &str, body: &str, actor: &str) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO tenant_documents (tenant_id, kind, body, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                &[&tenant, &kind, &body, &actor, &now_ms()],
            )?;
            Ok(())
        })
    }

    fn document(&self, tenant: &str, kind: &str) -> Result<Option<TenantDocument>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT body, updated_by, updated_at FROM tenant_documents WHERE tenant_id = $1 AND kind = $2",
                &[&tenant, &kind],
            )?
            .map(|r| TenantDocument { body: r.get(0), updated_by: r.get(1), updated_at_ms: r.get(2) }))
        })
    }

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

    fn add_signing_key(&self, tenant: &str, k: &SigningKeyRow, actor: &str) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            g.exec("UPDATE signing_keys SET retired_at = $2 WHERE tenant_id = $1 AND retired_at IS NULL", &[&tenant, &now])?;
            g.exec(
                "INSERT INTO signing_keys (tenant_id, kid, public_key, secret_key, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&tenant, &k.kid, &k.public_key, &self.key.seal(sealed::SIGNING_KEY, &k.secret_key), &k.created_at_ms],
            )?;
            let body = serde_json::json!({"kid": k.kid, "public_key": k.public_key}).to_string();
            pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "signing_key.added".into(), subject: format!("key:{}", k.kid), body }], now)?;
            Ok(())
        })
    }

    fn signing_keys(&self, tenant: &str) -> Result<Vec<SigningKeyRow>> {
        self.tx(|g| {
            g.all("SELECT kid, public_key, secret_key, created_at, retired_at, revoked_at, revoke_reason FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at DESC, kid", &[&tenant])?
                .iter()
                .map(|r| {
                    let secret: String = r.get(2);
                    Ok(SigningKeyRow { kid: r.get(0), public_key: r.get(1), secret_key: self.key.open(sealed::SIGNING_KEY, &secret)?, created_at_ms: r.get(3), retired_at_ms: r.get(4), revoked_at_ms: r.get(5), revoke_reason: r.get(6) })
                })
                .collect::<Result<Vec<_>>>()
        })
    }

    fn revoke_signing_key(
        &self,
        tenant: &str,
        kid: &str,
        reason: &str,
        actor: &str,
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            let n = g.exec(
                "UPDATE signing_keys SET revoked_at = $3, revoke_reason = $4, retired_at = COALESCE(retired_at, $3) WHERE tenant_id = $1 AND kid = $2 AND revoked_at IS NULL",
                &[&tenant, &kid, &now, &reason],
            )?;
            if n > 0 {
                let body = serde_json::json!({"kid": kid, "reason": reason}).to_string();
                pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "signing_key.revoked".into(), subject: format!("key:{kid}"), body }], now)?;
            }
            Ok(n > 0)
        })
    }

    fn save_signed_message(&self, tenant: &str, m: &SignedMessage, actor: &str) -> Result<()> {
        self.tx(|g| {
            g.exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))", &[&tenant])?;
            g.exec(
                "INSERT INTO signed_messages (tenant_id, id, kid, sender, sender_kind, customer, channel, sha256, disclosure, jws, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[&tenant, &m.id, &m.kid, &m.sender, &m.sender_kind, &m.customer, &m.channel, &m.sha256, &m.disclosure, &m.jws, &m.created_at_ms],
            )?;
            let body = serde_json::json!({"id": m.id, "kid": m.kid, "sender": m.sender, "sha256": m.sha256, "disclosure_shown": m.disclosure}).to_string();
            pg_chain(g, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "message.signed".into(), subject: m.id.clone(), body }], m.created_at_ms)?;
            Ok(())
        })
    }

    fn signed_message(&self, tenant: &str, id: &str) -> Result<Option<SignedMessage>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT id, kid, sender, sender_kind, customer, channel, sha256, disclosure, jws, created_at FROM signed_messages WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )?
            .map(|r| SignedMessage { id: r.get(0), kid: r.get(1), sender: r.get(2), sender_kind: r.get(3), customer: r.get(4), channel: r.get(5), sha256: r.get(6), disclosure: r.get(7), jws: r.get(8), created_at_ms: r.get(9) }))
        })
    }

    fn content_key(&self, tenant: &str) -> Result<Option<(String, String)>> {
        self.tx(|g| {
            g.opt(
                "SELECT cert_chain_pem, key_pem FROM content_keys WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| {
                let key: String = r.get(1);
                Ok::<_, StoreError>((r.get(0), self.key.open(sealed::CONTENT_KEY, &key)?))
            })
            .transpose()
        })
    }

    fn save_content_key(&self, tenant: &str, chain_pem: &str, key_pem: &str) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("INSERT INTO content_keys (tenant_id, cert_chain_pem, key_pem, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", &[&tenant, &chain_pem, &self.key.seal(sealed::CONTENT_KEY, key_pem), &now])?;
            Ok(())
        })
    }

    fn save_checkpoint(&self, tenant: &str, cp: &AuditCheckpoint) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO audit_checkpoints (tenant_id, seq, hash, kid, signature, at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&tenant, &cp.seq, &cp.hash, &cp.kid, &cp.signature, &cp.at_ms],
            )?;
            Ok(())
        })
    }

    fn checkpoints(&self, tenant: &str) -> Result<Vec<AuditCheckpoint>> {
        self.tx(|g| {
            Ok(g.all("SELECT seq, hash, kid, signature, at FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq", &[&tenant])?
                .iter()
                .map(|r| AuditCheckpoint { seq: r.get(0), hash: r.get(1), kid: r.get(2), signature: r.get(3), at_ms: r.get(4) })
                .collect())
        })
    }

    fn recent_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecentAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT field_type, score, sentiment, cues, collected_at FROM feedback WHERE tenant_id = $1 AND profile_id = $2 AND collected_at >= $3 ORDER BY collected_at DESC LIMIT $4",
                &[&tenant, &profile_id, &since_ms, &limit],
            )?
            .iter()
            .map(|r| RecentAnswer {
                field_type: r.get(0),
                score: r.get(1),
                sentiment: r.get(2),
                cues: r.get::<_, Option<String>>(3).and_then(|c| serde_json::from_str(&c).ok()),
                at_ms: r.get(4),
            })
            .collect())
        })
    }

    fn append_audit(
        &self,
        tenant: &str,
        e: &cxm_domain::audit::NewAuditEntry,
    ) -> Result<cxm_domain::audit::AuditEntry> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "SELECT pg_advisory_xact_lock(hashtext($1 || '/audit'))",
                &[&tenant],
            )?;
            let mut out = pg_chain(g, tenant, vec![e.clone()], now)?;
            out.pop()
                .ok_or_else(|| StoreError::Backend("nothing appended".into()))
        })
    }

    fn audit_entries(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<cxm_domain::audit::AuditEntry>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all("SELECT seq, at, actor, kind, subject, body, prev_hash, hash, body_hash FROM audit_log WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", &[&tenant, &after_seq, &limit])?
                .iter()
                .map(|r| cxm_domain::audit::AuditEntry { seq: r.get(0), at_ms: r.get(1), actor: r.get(2), kind: r.get(3), subject: r.get(4), body: r.get(5), prev_hash: r.get(6), hash: r.get(7), body_hash: r.get(8) })
                .collect())
        })
    }

    fn add_webhook(&self, tenant: &str, e: &WebhookEndpoint) -> Result<()> {
        let events = serde_json::to_string(&e.events)?;
        let active = i64::from(e.active);
        self.tx(|g| {
            g.exec(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret, events, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&e.id, &tenant, &e.url, &self.key.seal(sealed::WEBHOOK_SECRET, &e.secret), &events, &active, &e.created_at_ms],
            )?;
            Ok(())
        })
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookEndpoint>> {
        self.tx(|g| {
            g.all("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id", &[&tenant])?
                .iter()
                .map(|r| sealed::open_endpoint(&self.key, pg_endpoint_row(r)))
                .collect::<Result<Vec<_>>>()
        })
    }

    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<WebhookEndpoint>> {
        self.tx(|g| {
            g.opt("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])?
                .map(|r| sealed::open_endpoint(&self.key, pg_endpoint_row(&r)))
                .transpose()
        })
    }

    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<bool> {
        self.tx(|g| {
            let n = g.exec("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])?;
            g.exec(
                "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint removed' WHERE tenant_id = $1 AND endpoint_id = $2 AND status = 'pending'",
                &[&tenant, &id],
            )?;
            Ok(n > 0)
        })
    }

    fn queue_webhook(
        &self,
        tenant: &str,
        event_type: &str,
        payload: &Value,
        secret: Option<&Value>,
        now_ms: i64,
    ) -> Result<usize> {
        let endpoints = self.webhooks(tenant)?;
        let body = payload.to_string();
        self.tx(|g| {
            let mut n = 0;
            for e in endpoints.iter().filter(|e| e.active && e.wants(event_type)) {
                let msg = format!("msg_{}", uuid::Uuid::now_v7().simple());
                let sealed = secret.map(|v| self.key.seal(sealed::DELIVERY_SECRET, &v.to_string()));
                with_public_id(g, "webhook_deliveries", |g, id| {
                    g.exec(
                        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, created_at, sealed)
                         VALUES ($8, $1, $2, $3, $4, $5, 'pending', 0, $6, $6, $7) ON CONFLICT DO NOTHING",
                        &[&tenant, &e.id, &msg, &event_type, &body, &now_ms, &sealed, &id],
                    )
                })?;
                n += 1;
            }
            Ok(n)
        })
    }

    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            g.all(
                "SELECT id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, tenant_id, sealed
                 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
                &[&now_ms, &limit],
            )?
            .iter()
            .map(|r| sealed::open_delivery(&self.key, pg_delivery_row(r), r.get(13)))
            .collect::<Result<Vec<_>>>()
        })
    }

    fn settle_webhook(
        &self,
        id: i64,
        status: &str,
        next_attempt_at_ms: i64,
        code: Option<i64>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = $3, last_status = $4, last_error = $5,
                   delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE delivered_at END,
                   sealed = CASE WHEN $2 = 'pending' THEN sealed ELSE NULL END WHERE id = $1",
                &[&id, &status, &next_attempt_at_ms, &code, &error, &now_ms],
            )?;
            Ok(())
        })
    }

    fn webhook_deliveries(
        &self,
        tenant: &str,
        endpoint_id: &str,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, tenant_id
                 FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT $3",
                &[&tenant, &endpoint_id, &limit],
            )?
            .iter()
            .map(pg_delivery_row)
            .collect())
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

    fn record_journey_check(
        &self,
        tenant: &str,
        name: &str,
        passed: bool,
        detail: &Value,
    ) -> Result<i64> {
        let (now, passed, detail) = (now_ms(), i64::from(passed), detail.to_string());
        self.tx(|g| {
            g.opt(
                "INSERT INTO journey_checks (tenant_id, name, passed, detail, ran_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&tenant, &name, &passed, &detail, &now],
            )?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Backend("journey check insert returned no id".into()))
        })
    }

    fn journey_check_runs(
        &self,
        tenant: &str,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JourneyCheckRun>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, name, passed, detail, ran_at FROM journey_checks WHERE tenant_id = $1 AND ($2::text IS NULL OR name = $2) ORDER BY id DESC LIMIT $3",
                &[&tenant, &name, &limit],
            )?
            .iter()
            .map(|r| JourneyCheckRun { id: r.get(0), name: r.get(1), passed: r.get::<_, i64>(2) != 0, detail: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or(Value::Null), ran_at_ms: r.get(4) })
            .collect())
        })
    }

    fn trigger_cursor(&self, tenant: &str) -> Result<Option<i64>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT seq FROM survey_trigger_cursors WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn set_trigger_cursor(&self, tenant: &str, seq: i64) -> Result<()> {
        self.tx(|g| {
            g.exec("INSERT INTO survey_trigger_cursors (tenant_id, seq) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq", &[&tenant, &seq])?;
            Ok(())
        })
    }

    fn trigger_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<TriggerEvent>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT seq, name, channel, user_id, anonymous_id, message_id, ts FROM events
                 WHERE seq > $1 AND seq <= $2 AND tenant_id = $3 AND name = ANY($4) ORDER BY seq LIMIT $5",
                &[&after, &upto, &tenant, &names, &limit],
            )?
            .iter()
            .map(|r| TriggerEvent { seq: r.get(0), name: r.get(1), channel: r.get(2), user_id: r.get(3), anonymous_id: r.get(4), message_id: r.get(5), ts_ms: r.get(6) })
            .collect())
        })
    }

    fn create_invitation(
        &self,
        tenant: &str,
        inv: &Invitation,
        link: Option<(&str, &SurveyLink)>,
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            let inserted = with_public_id(g, "survey_invitations", |g, id| {
                g.exec(
                    "INSERT INTO survey_invitations (id, tenant_id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at)
                     VALUES ($12, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                    &[&tenant, &inv.survey_id, &inv.version, &inv.identifier, &inv.channel, &inv.trigger_event, &inv.trigger_message_id, &inv.status, &inv.detail, &inv.url, &now, &id],
                )
            })?;
            let n = u64::from(inserted.is_some());
            if n == 1 {
                if let Some((hash, l)) = link {
                    g.exec(
                        "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[&hash, &l.tenant_id, &l.survey_id, &l.version, &l.identifier, &l.channel, &now],
                    )?;
                }
            }
            Ok(n == 1)
        })
    }

    fn list_invitations(
        &self,
        tenant: &str,
        status: Option<&str>,
        survey_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Invitation>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR survey_id = $3) ORDER BY id LIMIT $4",
                &[&tenant, &status, &survey_id, &limit],
            )?
            .iter()
            .map(invitation)
            .collect())
        })
    }

    fn queue_mail(&self, tenant: &str, mails: &[OutboundMail]) -> Result<usize> {
        let now = now_ms();
        self.tx(|g| {
            let mut n = 0;
            for m in mails {
                n += g.exec(
                    "INSERT INTO outbound_mail (tenant_id, kind, reference, profile_id, to_address, subject, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT DO NOTHING",
                    &[&tenant, &m.kind, &m.reference, &m.profile_id, &m.to, &m.subject, &m.body, &now],
                )? as usize;
            }
            Ok(n)
        })
    }

    fn list_mail(
        &self,
        tenant: &str,
        status: Option<&str>,
        about: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<OutboundMail>> {
        let (kind, reference) = about.unzip();
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, kind, reference, profile_id, to_address, subject, body, status, detail, created_at FROM outbound_mail
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR reference = $4)
                 ORDER BY id LIMIT $5",
                &[&tenant, &status, &kind, &reference, &limit],
            )?
            .iter()
            .map(|r| OutboundMail { id: r.get(0), kind: r.get(1), reference: r.get(2), profile_id: r.get(3), to: r.get(4), subject: r.get(5), body: r.get(6), status: r.get(7), detail: r.get(8), created_at_ms: r.get(9) })
            .collect())
        })
    }

    fn mark_mail(&self, tenant: &str, id: i64, status: &str, detail: &str) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "UPDATE outbound_mail SET status = $3, detail = $4, sent_at = $5 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
                &[&tenant, &id, &status, &detail, &now],
            )?;
            Ok(())
        })
    }

    fn mark_invitation(
        &self,
        tenant: &str,
        id: i64,
        status: &str,
        detail: &str,
    ) -> Result<Option<Invitation>> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "UPDATE survey_invitations SET status = $3, detail = $4, delivered_at = CASE WHEN $3 = 'delivered' THEN $5 ELSE delivered_at END
                 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
                &[&tenant, &id, &status, &detail, &now],
            )?;
            Ok(g.opt(
                "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )?
            .as_ref()
            .map(invitation))
        })
    }

    fn invitation_counts(&self, tenant: &str) -> Result<Vec<(String, String, i64)>> {
        self.tx(|g| {
            Ok(g.all("SELECT survey_id, status, COUNT(*)::bigint FROM survey_invitations WHERE tenant_id = $1 GROUP BY survey_id, status ORDER BY survey_id, status", &[&tenant])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })
    }

    fn account_traits(&self, tenant: &str, group_id: &str) -> Result<Option<Value>> {
        self.tx(|g| {
            g.opt(
                "SELECT traits FROM accounts WHERE tenant_id = $1 AND group_id = $2",
                &[&tenant, &group_id],
            )?
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(StoreError::from))
            .transpose()
        })
    }

    fn themed_tenants(&self) -> Result<Vec<String>> {
        self.tx(|g| {
            Ok(
                g.all("SELECT tenant_id FROM theme_models ORDER BY tenant_id", &[])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }

    fn nps_answers(&self, tenant: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(String, i64)>> {
        self.tx(|g| {
            Ok(g.all("SELECT response_id, score FROM feedback WHERE tenant_id = $1 AND field_type = 'nps' AND collected_at >= $2 AND collected_at < $3", &[&tenant, &from_ms, &to_ms])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    fn save_survey(
        &self,
        tenant: &str,
        survey_id: &str,
        name: &str,
        definition: &str,
    ) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))", &[&tenant, &survey_id])?;
            let v: i64 = g.opt("SELECT COALESCE(MAX(version), 0)::bigint + 1 FROM surveys WHERE tenant_id = $1 AND survey_id = $2", &[&tenant, &survey_id])?.map(|r| r.get(0)).unwrap_or(1);
            g.exec("INSERT INTO surveys (tenant_id, survey_id, version, name, definition, created_at) VALUES ($1, $2, $3, $4, $5, $6)", &[&tenant, &survey_id, &v, &name, &definition, &now])?;
            Ok(v)
        })
    }

    fn survey(
        &self,
        tenant: &str,
        survey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<(i64, String)>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT version, definition FROM surveys WHERE tenant_id = $1 AND survey_id = $2 AND ($3::bigint IS NULL OR version = $3) ORDER BY version DESC LIMIT 1",
                &[&tenant, &survey_id, &version],
            )?
            .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn list_surveys(&self, tenant: &str) -> Result<Vec<SurveySummary>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT s.survey_id, s.version, s.name,
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.displayed_at IS NOT NULL),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.responded_at IS NOT NULL)
                 FROM surveys s WHERE s.tenant_id = $1 AND s.version = (SELECT MAX(version) FROM surveys x WHERE x.tenant_id = s.tenant_id AND x.survey_id = s.survey_id)
                 ORDER BY s.survey_id",
                &[&tenant],
            )?
            .iter()
            .map(|r| SurveySummary { survey_id: r.get(0), version: r.get(1), name: r.get(2), links: r.get(3), displays: r.get(4), responses: r.get(5) })
            .collect())
        })
    }

    fn create_link(&self, token_hash: &str, l: &SurveyLink) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&token_hash, &l.tenant_id, &l.survey_id, &l.version, &l.identifier, &l.channel, &now],
            )?;
            Ok(())
        })
    }

    fn invitations(
        &self,
        tenant: &str,
        identifier: &str,
        survey_id: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<i64>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT created_at FROM survey_links WHERE tenant_id = $1 AND identifier = $2 AND ($3::text IS NULL OR survey_id = $3) AND created_at >= $4 ORDER BY created_at DESC",
                &[&tenant, &identifier, &survey_id, &since_ms],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn link(&self, token_hash: &str) -> Result<Option<SurveyLink>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT tenant_id, survey_id, version, identifier, channel, displayed_at, responded_at, follow_ups FROM survey_links WHERE token_hash = $1",
                &[&token_hash],
            )?
            .map(|r| SurveyLink { tenant_id: r.get(0), survey_id: r.get(1), version: r.get(2), identifier: r.get(3), channel: r.get(4), displayed_at_ms: r.get(5), responded_at_ms: r.get(6), follow_ups: r.get(7) }))
        })
    }

    fn mark_link(&self, token_hash: &str, event: LinkEvent) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            match event {
                LinkEvent::Displayed => g.exec("UPDATE survey_links SET displayed_at = COALESCE(displayed_at, $2) WHERE token_hash = $1", &[&token_hash, &now])?,
                LinkEvent::Responded => g.exec("UPDATE survey_links SET responded_at = COALESCE(responded_at, $2), displayed_at = COALESCE(displayed_at, $2) WHERE token_hash = $1", &[&token_hash, &now])?,
                LinkEvent::FollowUpAnswered => g.exec("UPDATE survey_links SET follow_ups = follow_ups + 1 WHERE token_hash = $1", &[&token_hash])?,
            };
            Ok(())
        })
    }

    fn quarantine(&self, tenant: &str, limit: u32) -> Result<Vec<QuarantineEntry>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all("SELECT id, code, detail, payload, received_at FROM quarantine WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2", &[&tenant, &limit])?
                .iter()
                .map(|r| QuarantineEntry {
                    id: r.get(0),
                    code: r.get(1),
                    detail: r.get(2),
                    payload: serde_json::from_str(r.get(3)).unwrap_or(Value::Null),
                    received_at_ms: r.get(4),
                })
                .collect())
        })
    }

    fn quarantine_days(&self, tenant: &str, since_day: &str) -> Result<Vec<QuarantineDay>> {
        self.tx(|g| {
            Ok(g.all("SELECT day, events, rows_kept, bytes_kept FROM quarantine_days WHERE tenant_id = $1 AND day >= $2 ORDER BY day DESC", &[&tenant, &since_day])?
                .iter()
                .map(|r| QuarantineDay { day: r.get(0), events: r.get(1), rows_kept: r.get(2), bytes_kept: r.get(3) })
                .collect())
        })
    }

    fn prune_dedup(&self, older_than_ms: i64) -> Result<u64> {
        self.tx(|g| {
            g.exec(
                "DELETE FROM dedup WHERE received_at < $1",
                &[&older_than_ms],
            )
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

    fn overview(&self, tenant: &str, days: u32, now: i64) -> Result<Overview> {
        let since = chrono::DateTime::from_timestamp_millis(now - i64::from(days) * 86_400_000)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        self.tx(|g| {
            let total: i64 = g.opt("SELECT COALESCE(SUM(events), 0)::BIGINT FROM ingest_daily WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0);
            let profiles: i64 = g.opt("SELECT COUNT(*) FROM profiles WHERE tenant_id = $1 AND merged_into IS NULL", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0);
            let quarantined: i64 = g.opt("SELECT COUNT(*) FROM quarantine WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0);
            let by_day_channel = g
                .all("SELECT day, channel, events FROM ingest_daily WHERE tenant_id = $1 AND day >= $2 ORDER BY day, channel", &[&tenant, &since])?
                .iter()
                .map(|r| DayChannelCount { day: r.get(0), channel: r.get(1), events: r.get(2) })
                .collect();
            Ok(Overview { total_events: total, profiles, quarantined, by_day_channel })
        })
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

fn text_answer(r: &Row) -> TextAnswer {
    TextAnswer {
        response_id: r.get(0),
        text: r.get(1),
        sentiment: r.get(2),
        nps: r.get(3),
        collected_at_ms: r.get(4),
        id: r.get(5),
        account: r.get(6),
    }
}

fn invitation(r: &Row) -> Invitation {
    Invitation {
        id: r.get(0),
        survey_id: r.get(1),
        version: r.get(2),
        identifier: r.get(3),
        channel: r.get(4),
        trigger_event: r.get(5),
        trigger_message_id: r.get(6),
        status: r.get(7),
        detail: r.get(8),
        url: r.get(9),
        created_at_ms: r.get(10),
        delivered_at_ms: r.get(11),
    }
}

fn journey_row(r: &Row) -> StoredJourney {
    StoredJourney {
        journey_id: r.get(0),
        version: r.get(1),
        name: r.get(2),
        owner: r.get(3),
        definition: r.get(4),
        created_by: r.get(5),
        created_at_ms: r.get(6),
    }
}
fn pg_health_row(r: &Row) -> AccountHealthRow {
    AccountHealthRow {
        group_id: r.get(0),
        name: r.get(1),
        score: r.get(2),
        band: r.get(3),
        readings: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or(Value::Null),
        arr: r.get(5),
        computed_at_ms: r.get(6),
    }
}

fn pg_alert_row(r: &Row) -> Alert {
    Alert {
        id: r.get(0),
        group_id: r.get(1),
        kind: r.get(2),
        signal: r.get(3),
        status: r.get(4),
        title: r.get(5),
        detail: serde_json::from_str(r.get::<_, &str>(6)).unwrap_or(Value::Null),
        arr: r.get(7),
        created_at_ms: r.get(8),
        updated_at_ms: r.get(9),
        updated_by: r.get(10),
        owner: r.get(11),
    }
}
fn pg_ticket_row(r: &Row) -> Ticket {
    let json = |i: usize| serde_json::from_str(r.get::<_, &str>(i)).unwrap_or(Value::Null);
    Ticket {
        id: r.get(0),
        title: r.get(1),
        description: r.get(2),
        owner: r.get(3),
        severity: r.get(4),
        state: r.get(5),
        source: json(6),
        check: json(7),
        impact: json(8),
        sla_hours: r.get(9),
        due_at_ms: r.get(10),
        verdict: r
            .get::<_, Option<&str>>(11)
            .and_then(|v| serde_json::from_str(v).ok()),
        created_by: r.get(12),
        created_at_ms: r.get(13),
        updated_at_ms: r.get(14),
        closed_at_ms: r.get(15),
    }
}
fn pg_endpoint_row(r: &Row) -> WebhookEndpoint {
    WebhookEndpoint {
        id: r.get(0),
        url: r.get(1),
        secret: r.get(2),
        events: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or_default(),
        active: r.get::<_, i64>(4) != 0,
        created_at_ms: r.get(5),
    }
}

fn pg_delivery_row(r: &Row) -> WebhookDelivery {
    WebhookDelivery {
        id: r.get(0),
        endpoint_id: r.get(1),
        message_id: r.get(2),
        event_type: r.get(3),
        payload: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or(Value::Null),
        status: r.get(5),
        attempts: r.get(6),
        next_attempt_at_ms: r.get(7),
        last_status: r.get(8),
        last_error: r.get(9),
        created_at_ms: r.get(10),
        delivered_at_ms: r.get(11),
        tenant_id: r.get(12),
        secret: None,
    }
}
impl PgStore {
    /// Stores a ticket and its `created` event; with a rule key, nothing while an unclosed
    /// ticket of the same key exists.
    fn insert_ticket(
        &self,
        tenant: &str,
        t: &Ticket,
        rule_key: Option<&str>,
    ) -> Result<Option<i64>> {
        let now = now_ms();
        let (source, check, impact) = (
            t.source.to_string(),
            t.check.to_string(),
            t.impact.to_string(),
        );
        let verdict = t.verdict.as_ref().map(|v| v.to_string());
        let created = serde_json::json!({"state": t.state, "source": t.source, "check": t.check, "rule": rule_key}).to_string();
        self.tx(|g| {
            let id = with_public_id(g, "tickets", |g, id| {
                g.exec(
                    "INSERT INTO tickets (id, tenant_id, title, description, owner, severity, state, source, check_def, impact, sla_hours, due_at, verdict, created_by, created_at, updated_at, rule_key)
                     VALUES ($16, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) ON CONFLICT DO NOTHING",
                    &[&tenant, &t.title, &t.description, &t.owner, &t.severity, &t.state, &source, &check, &impact, &t.sla_hours, &t.due_at_ms, &verdict, &t.created_by, &now, &rule_key, &id],
                )
            })?;
            if let Some(id) = id {
                g.exec(
                    "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, 'created', $5)",
                    &[&tenant, &id, &now, &t.created_by, &created],
                )?;
            }
            Ok(id)
        })
    }
}

fn pg_decision_row(r: &Row) -> StoredDecision {
    let json =
        |i: usize| serde_json::from_str(&r.get::<_, String>(i)).unwrap_or(serde_json::Value::Null);
    let list = |i: usize| serde_json::from_str(&r.get::<_, String>(i)).unwrap_or_default();
    StoredDecision {
        record: cxm_domain::decision::DecisionRecord {
            id: r.get(0),
            agent: r.get(1),
            action: r.get(2),
            customer: r.get(3),
            resource: r.get(4),
            request: json(5),
            facts: json(6),
            used: json(7),
            policy_version: r.get(8),
            outcome: r.get(9),
            level: r.get(10),
            policy_ids: list(11),
            reasons: list(12),
            at_ms: r.get(13),
        },
        audit_seq: r.get(14),
        review_status: r.get(15),
        review_due_at_ms: r.get(16),
        reviewed_by: r.get(17),
        review_reason: r.get(18),
        reviewed_at_ms: r.get(19),
        resolved: r.get(20),
        intent: r.get(21),
        reported_at_ms: r.get(22),
    }
}

const PG_EXPERIMENT_ONE: &str = "SELECT id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at FROM experiments WHERE tenant_id = $1 AND id = $2";
const PG_EXPERIMENT_ALL: &str = "SELECT id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at FROM experiments WHERE tenant_id = $1 ORDER BY created_at DESC, id";

fn pg_experiment_row(r: &Row) -> StoredExperiment {
    StoredExperiment {
        id: r.get(0),
        definition: r.get(1),
        status: r.get(2),
        rollout_percent: r.get(3),
        shipped_arm: r.get(4),
        history: r.get(5),
        created_by: r.get(6),
        created_at_ms: r.get(7),
        updated_at_ms: r.get(8),
        started_at_ms: r.get(9),
    }
}

fn pg_agent_row(r: &Row) -> Agent {
    Agent {
        name: r.get(0),
        kind: r.get(1),
        description: r.get(2),
        disclosure: r.get(3),
        created_by: r.get(4),
        created_at_ms: r.get(5),
        disabled_at_ms: r.get(6),
    }
}

fn pg_policy_row(r: &Row) -> PolicySetRow {
    PolicySetRow {
        version: r.get(0),
        text: r.get(1),
        note: r.get(2),
        created_by: r.get(3),
        created_at_ms: r.get(4),
        activated_at_ms: r.get(5),
    }
}

/// Links entries onto the tenant's chain; the caller holds the tenant's audit lock.
fn pg_chain(
    g: &mut PgTx,
    tenant: &str,
    entries: Vec<cxm_domain::audit::NewAuditEntry>,
    at_ms: i64,
) -> Result<Vec<cxm_domain::audit::AuditEntry>> {
    let head = g
        .opt(
            "SELECT seq, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&tenant],
        )?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
    let chained = crate::chain_after(head, entries, at_ms);
    for e in &chained {
        g.exec(
            "INSERT INTO audit_log (tenant_id, seq, at, actor, kind, subject, body, prev_hash, hash, body_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&tenant, &e.seq, &e.at_ms, &e.actor, &e.kind, &e.subject, &e.body, &e.prev_hash, &e.hash, &e.body_hash],
        )?;
    }
    Ok(chained)
}

fn pg_policy_entry(
    kind: &str,
    version: i64,
    actor: &str,
    body: serde_json::Value,
) -> cxm_domain::audit::NewAuditEntry {
    cxm_domain::audit::NewAuditEntry {
        actor: actor.to_string(),
        kind: kind.to_string(),
        subject: format!("policy:v{version}"),
        body: body.to_string(),
    }
}

fn pg_step_up_row(r: &Row) -> StepUp {
    StepUp {
        id: r.get(0),
        customer: r.get(1),
        profile_id: r.get(2),
        channel: r.get(3),
        sent_to: r.get(4),
        code_hash: r.get(5),
        attempts_left: r.get(6),
        expires_at_ms: r.get(7),
        verified_at_ms: r.get(8),
        created_by: r.get(9),
        created_at_ms: r.get(10),
    }
}

struct PgSql<'a, 'b>(&'a mut PgTx<'b>);

/// `?1` placeholders as PostgreSQL's `$1`.
fn pg_placeholders(sql: &str) -> String {
    let mut out = sql.to_string();
    for n in (1..=9).rev() {
        out = out.replace(&format!("?{n}"), &format!("${n}"));
    }
    out
}

impl crate::erase::Sql for PgSql<'_, '_> {
    fn rows(
        &mut self,
        table: &str,
        filter: &str,
        params: &[crate::erase::P],
    ) -> Result<Vec<Value>> {
        let p = pg_erase_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            p.iter().map(|b| b.as_ref()).collect();
        let sql = pg_placeholders(&format!(
            "SELECT row_to_json(x)::text FROM (SELECT * FROM {table} WHERE {filter}) x"
        ));
        self.0
            .tx
            .query(sql.as_str(), &refs)?
            .iter()
            .map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?))
            .collect()
    }

    fn exec(&mut self, sql: &str, params: &[crate::erase::P]) -> Result<u64> {
        let p = pg_erase_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            p.iter().map(|b| b.as_ref()).collect();
        Ok(self.0.tx.execute(pg_placeholders(sql).as_str(), &refs)?)
    }

    fn texts(&mut self, sql: &str, params: &[crate::erase::P]) -> Result<Vec<Vec<Option<String>>>> {
        let p = pg_erase_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            p.iter().map(|b| b.as_ref()).collect();
        let rows = self.0.tx.query(pg_placeholders(sql).as_str(), &refs)?;
        Ok(rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            })
            .collect())
    }
}

fn pg_erase_params(params: &[crate::erase::P]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                crate::erase::P::T(s) => Box::new(s.clone()),
                crate::erase::P::I(i) => Box::new(*i),
            }
        })
        .collect()
}

/// Inserts a row under a fresh public id (see [`crate::public_id`]). `insert` runs an
/// `ON CONFLICT DO NOTHING` insert and returns the rows it inserted; when none, the id tells
/// why: taken (a clash of ids, tried again) or free (a duplicate by the table's own rule).
fn with_public_id(
    g: &mut PgTx,
    table: &'static str,
    mut insert: impl FnMut(&mut PgTx, i64) -> Result<u64>,
) -> Result<Option<i64>> {
    for _ in 0..crate::PUBLIC_ID_TRIES {
        let id = crate::public_id();
        if insert(g, id)? == 1 {
            return Ok(Some(id));
        }
        let taken =
            g.tx.query_opt(&format!("SELECT 1 FROM {table} WHERE id = $1"), &[&id])?
                .is_some();
        if !taken {
            return Ok(None);
        }
    }
    Err(StoreError::Backend(format!(
        "no free id for a new row of {table}"
    )))
}
