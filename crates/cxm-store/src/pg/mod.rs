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
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_feedback.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_surveys.sql"),
    ),
    (4, include_str!("../../migrations/postgres/0004_themes.sql")),
    (
        5,
        include_str!("../../migrations/postgres/0005_invitations.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_journeys.sql"),
    ),
    (7, include_str!("../../migrations/postgres/0007_health.sql")),
    (
        8,
        include_str!("../../migrations/postgres/0008_tickets.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_webhooks.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_decisions.sql"),
    ),
    (
        11,
        include_str!("../../migrations/postgres/0011_signing.sql"),
    ),
    (
        12,
        include_str!("../../migrations/postgres/0012_step_up.sql"),
    ),
    (
        13,
        include_str!("../../migrations/postgres/0013_erasures.sql"),
    ),
    (
        14,
        include_str!("../../migrations/postgres/0014_consent.sql"),
    ),
    (
        15,
        include_str!("../../migrations/postgres/0015_retention.sql"),
    ),
    (
        16,
        include_str!("../../migrations/postgres/0016_experiments.sql"),
    ),
    (
        17,
        include_str!("../../migrations/postgres/0017_event_blocks.sql"),
    ),
    (
        18,
        include_str!("../../migrations/postgres/0018_outbound_mail.sql"),
    ),
    (
        19,
        include_str!("../../migrations/postgres/0019_quarantine_days.sql"),
    ),
    (
        20,
        include_str!("../../migrations/postgres/0020_user_offboarding.sql"),
    ),
    (
        21,
        include_str!("../../migrations/postgres/0021_sealed_secrets.sql"),
    ),
    (
        22,
        include_str!("../../migrations/postgres/0022_opaque_ids.sql"),
    ),
    (
        23,
        include_str!("../../migrations/postgres/0023_cluster.sql"),
    ),
    (
        24,
        include_str!("../../migrations/postgres/0024_cluster_applies.sql"),
    ),
    (
        25,
        include_str!("../../migrations/postgres/0025_dedup_by_day.sql"),
    ),
    (
        26,
        include_str!("../../migrations/postgres/0026_dedup_by_digest.sql"),
    ),
];
const POOL_SIZE: usize = 8;

struct Conn {
    client: Client,
    stmts: HashMap<String, Statement>,
}

pub struct PgStore {
    url: String,
    pool: Mutex<Vec<Conn>>,
    settings: StoreSettings,
    key: sealed::MasterKey,
    /// Days from today on whose dedup partition this process has seen created. Only the
    /// pruner drops partitions, and never today's or later, so these cannot go stale.
    dedup_days: Mutex<BTreeSet<i32>>,
}

/// A millisecond instant's UTC day number, the dedup table's partition key.
pub(super) fn dedup_day(ms: i64) -> i32 {
    ms.div_euclid(86_400_000) as i32
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
            dedup_days: Mutex::new(BTreeSet::new()),
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

impl PgStore {
    /// Creates the dedup partitions the requests' days of arrival need, with tomorrow's
    /// ahead, before the ingest transaction opens: creating a partition locks the whole
    /// table, which inside an ingest transaction could deadlock with another writer's.
    pub(super) fn ensure_dedup_days<'e>(
        &self,
        events: impl Iterator<Item = &'e NormalizedEvent>,
    ) -> Result<()> {
        let today = dedup_day(now_ms());
        let mut days: BTreeSet<i32> = events
            .map(|e| dedup_day(e.received_at.timestamp_millis()))
            .collect();
        if days.is_empty() {
            return Ok(());
        }
        days.insert(today + 1);
        let missing: Vec<i32> = {
            let known = self.dedup_days.lock().unwrap_or_else(|p| p.into_inner());
            days.into_iter().filter(|d| !known.contains(d)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            // one creator at a time, so IF NOT EXISTS sees what another node just made
            tx.batch_execute("SELECT pg_advisory_xact_lock(7261002)")?;
            for d in &missing {
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS dedup_d{d} PARTITION OF dedup FOR VALUES FROM ({d}) TO ({})",
                    d + 1
                ))?;
            }
            tx.commit()?;
            Ok(())
        })?;
        let mut known = self.dedup_days.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|d| *d >= today);
        known.extend(missing.into_iter().filter(|d| *d >= today));
        Ok(())
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

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        Some(self)
    }
    fn ping(&self) -> Result<()> {
        self.with(|c| Ok(c.client.simple_query("SELECT 1").map(|_| ())?))
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

mod graph_tx;
use graph_tx::*;

mod rows;
use rows::*;

// one room per capability; declared last so they see the macros above
mod agents;
pub(crate) mod ceiling;
mod cluster;
mod equity;
mod events;
mod health;
mod identity;
mod journeys;
mod outbox;
mod privacy;
mod provenance;
mod sql;
mod themes;
mod tickets;
