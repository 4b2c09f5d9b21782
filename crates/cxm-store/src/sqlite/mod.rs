//! The embedded store: one SQLite file in WAL mode. One writer connection (SQLite allows one
//! writer anyway) and a small pool of readers, which WAL lets run beside the writer.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cxm_domain::identity::ProfileView;
use cxm_domain::{Identifier, IdentifierKind, NormalizedEvent};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use crate::graph::{self, GraphTx, LogRow, StoreSettings};
use crate::sealed;
use crate::*;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_feedback.sql")),
    (3, include_str!("../../migrations/sqlite/0003_surveys.sql")),
    (4, include_str!("../../migrations/sqlite/0004_themes.sql")),
    (
        5,
        include_str!("../../migrations/sqlite/0005_invitations.sql"),
    ),
    (6, include_str!("../../migrations/sqlite/0006_journeys.sql")),
    (7, include_str!("../../migrations/sqlite/0007_health.sql")),
    (8, include_str!("../../migrations/sqlite/0008_tickets.sql")),
    (9, include_str!("../../migrations/sqlite/0009_webhooks.sql")),
    (
        10,
        include_str!("../../migrations/sqlite/0010_decisions.sql"),
    ),
    (11, include_str!("../../migrations/sqlite/0011_signing.sql")),
    (12, include_str!("../../migrations/sqlite/0012_step_up.sql")),
    (
        13,
        include_str!("../../migrations/sqlite/0013_erasures.sql"),
    ),
    (14, include_str!("../../migrations/sqlite/0014_consent.sql")),
    (
        15,
        include_str!("../../migrations/sqlite/0015_retention.sql"),
    ),
    (
        16,
        include_str!("../../migrations/sqlite/0016_experiments.sql"),
    ),
    (
        17,
        include_str!("../../migrations/sqlite/0017_event_blocks.sql"),
    ),
    (
        18,
        include_str!("../../migrations/sqlite/0018_outbound_mail.sql"),
    ),
    (
        19,
        include_str!("../../migrations/sqlite/0019_quarantine_days.sql"),
    ),
    (
        20,
        include_str!("../../migrations/sqlite/0020_user_offboarding.sql"),
    ),
    (
        21,
        include_str!("../../migrations/sqlite/0021_sealed_secrets.sql"),
    ),
    (
        22,
        include_str!("../../migrations/sqlite/0022_opaque_ids.sql"),
    ),
    (
        23,
        include_str!("../../migrations/sqlite/0023_events_name_in_log_order.sql"),
    ),
    (
        24,
        include_str!("../../migrations/sqlite/0024_events_by_identifier.sql"),
    ),
];

pub struct SqliteStore {
    checkpoint_stop: Arc<AtomicBool>,
    /// Set by the checkpointer when the WAL needs rewinding; the writer does it.
    wal_full: Arc<AtomicBool>,
    checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
    writer: Mutex<Writer>,
    readers: Mutex<Readers>,
    reader_free: std::sync::Condvar,
    path: std::path::PathBuf,
    settings: StoreSettings,
    key: sealed::MasterKey,
}

fn configure(conn: &Connection) -> Result<()> {
    // FULL: a commit is on disk before we acknowledge it, which is the ingest contract;
    // group commit keeps the fsync count low. secure_delete: what is deleted (an erased
    // customer) is overwritten with zeros, not left in free pages for a file reader to find.
    conn.execute_batch(
        "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=10000; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=1073741824;
         PRAGMA secure_delete=ON;",
    )?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) `cxm.db` under the data directory and migrates it.
    /// Opens (or creates) the store in `dir`: the directory is made owner-only (0700) and
    /// the database file, its WAL and the master key file owner-only (0600).
    pub fn open_dir(dir: &Path, settings: StoreSettings) -> Result<SqliteStore> {
        sealed::private_dir(dir)?;
        let key = match &settings.master_key {
            Some(k) => k.clone(),
            None => sealed::MasterKey::load_or_create(dir, None)?,
        };
        let path = dir.join("cxm.db");
        // SQLite gives the WAL and shared-memory files the database file's permissions
        drop(sealed::private_file(&path)?);
        for extra in ["cxm.db-wal", "cxm.db-shm"] {
            sealed::restrict(&dir.join(extra))?;
        }
        Self::open_file(&path, settings, key)
    }

    fn open_file(
        path: &Path,
        settings: StoreSettings,
        key: sealed::MasterKey,
    ) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        migrate(&conn)?;
        {
            let tx = conn.unchecked_transaction()?;
            sealed::bind(&mut SqliteSql(&tx), &key)?;
            tx.commit()?;
        }
        // checkpoints copy the WAL into the database file; run them beside the writer instead
        // of inside whichever commit crosses the threshold
        conn.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=268435456;")?;
        let stop = Arc::new(AtomicBool::new(false));
        let wal_full = Arc::new(AtomicBool::new(false));
        let checkpointer = spawn_checkpointer(path.to_path_buf(), stop.clone(), wal_full.clone())?;
        Ok(SqliteStore {
            checkpoint_stop: stop,
            wal_full,
            checkpointer: Mutex::new(Some(checkpointer)),
            writer: Mutex::new(Writer {
                conn,
                dedup: DedupIndex::default(),
                by_identifier: IdentifierIndex {
                    behind: None,
                    last: std::time::Instant::now(),
                },
            }),
            readers: Mutex::new(Readers::default()),
            reader_free: std::sync::Condvar::new(),
            path: path.to_path_buf(),
            settings,
            key,
        })
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = {
            let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(c) = pool.idle.pop() {
                    break Some(c);
                }
                if pool.open < MAX_READERS {
                    pool.open += 1;
                    break None;
                }
                // opening a connection per read under load costs more than the read: wait
                pool = self
                    .reader_free
                    .wait(pool)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let conn = match conn {
            Some(c) => c,
            None => match Connection::open(&self.path)
                .map_err(StoreError::from)
                .and_then(|c| configure(&c).map(|_| c))
            {
                Ok(c) => c,
                Err(e) => {
                    self.readers.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                    self.reader_free.notify_one();
                    return Err(e);
                }
            },
        };
        let r = f(&conn);
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .idle
            .push(conn);
        self.reader_free.notify_one();
        r
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = w
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = f(&tx)?;
        tx.commit()?;
        restart_if_asked(&w.conn, &self.wal_full);
        Ok(r)
    }

    /// A write of derived state only: projections a worker recomputes from the log, saved with
    /// the cursor that says how far it got, in the same transaction. It commits without an
    /// fsync of its own (`synchronous=NORMAL`), so it does not hold the writer lock through
    /// one. WAL frames become durable in order, so the next durable commit (any ingest)
    /// makes it durable too; a crash before that loses it with its cursor, and the worker
    /// does the pass again. Nothing a person or a client was told about is written here.
    fn write_derived<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let r = unsynced_tx(&mut w.conn, f);
        // the workers pass by every few seconds: the index catches up when ingest has stopped
        if let Err(e) = w.index_identifiers(0, self.settings.identifier_index_lag) {
            tracing::warn!(error = %e, "identifier index catch-up failed");
        }
        restart_if_asked(&w.conn, &self.wal_full);
        r
    }

    /// Runs `f` in a write transaction that is always rolled back (a dry run).
    fn rolled_back<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = w
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = f(&tx);
        tx.rollback()?;
        r
    }

    /// Copies the WAL into the database and cuts it to nothing, so page images from before
    /// an erasure leave no file. Readers holding an old snapshot can keep it from finishing;
    /// it is tried a few times.
    fn truncate_wal(&self) {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..50 {
            match w
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                }) {
                Ok(0) => return,
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                Err(e) => {
                    tracing::warn!(error = %e, "wal truncation after an erasure failed");
                    return;
                }
            }
        }
        tracing::warn!("the wal could not be truncated after an erasure: readers held it");
    }
}

/// Read connections kept open; reads beyond this wait for one to come back.
const MAX_READERS: usize = 16;

#[derive(Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// The WAL is rewound once it grows past this (and cut back to it: `journal_size_limit`).
const WAL_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

/// Checkpoints the WAL every 200 ms from its own connection (PASSIVE: never blocks the
/// writer or readers). Stopped and joined when the store is dropped.
///
/// Under sustained writes a PASSIVE checkpoint never finds the WAL fully copied at the moment
/// the next write starts, so SQLite never rewinds it and the file grows without bound (tens
/// of GB over a 10M-answer import); a RESTART from the checkpoint thread starves, because
/// the writer takes the lock again the moment it commits. So past [`WAL_LIMIT_BYTES`] this
/// thread raises `wal_full`, and the writer itself restarts the WAL after its next commit,
/// when no other write can be in progress (see [`restart_if_asked`]). RESTART rather than
/// TRUNCATE: overwriting the file from its start costs far less than growing a new one
/// (10M events: p99 47 ms against 110 ms).
fn spawn_checkpointer(
    path: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    wal_full: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let conn = Connection::open(&path)?;
    configure(&conn)?;
    let mut wal = path.into_os_string();
    wal.push("-wal");
    std::thread::Builder::new()
        .name("cxm-checkpoint".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                    tracing::warn!(error = %e, "wal checkpoint failed");
                }
                if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT_BYTES) {
                    wal_full.store(true, Ordering::Relaxed);
                }
            }
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))
}

/// Run by the writer right after a commit: rewinds the WAL when the checkpointer asked.
/// Passive checkpoints keep up with copying, so this mostly waits for readers to move to the
/// newest snapshot (milliseconds); the next commit writes from the start of the file.
fn restart_if_asked(conn: &Connection, wal_full: &AtomicBool) {
    if wal_full.swap(false, Ordering::Relaxed) {
        let started = std::time::Instant::now();
        match conn.query_row("PRAGMA wal_checkpoint(RESTART);", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(0) => tracing::debug!(ms = started.elapsed().as_millis() as u64, "wal restarted"),
            Ok(_) => tracing::debug!("wal restart deferred: a reader is on an old snapshot"),
            Err(e) => tracing::warn!(error = %e, "wal restart failed"),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpoint_stop.store(true, Ordering::Relaxed);
        if let Some(h) = self
            .checkpointer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = h.join();
        }
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> = conn
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            conn.execute_batch(&format!(
                "BEGIN; {sql}; INSERT INTO schema_migrations VALUES ({version}, {}); COMMIT;",
                now_ms()
            ))?;
        }
    }
    Ok(())
}

/// The writer connection and what only the writer touches.
struct Writer {
    conn: Connection,
    dedup: DedupIndex,
    by_identifier: IdentifierIndex,
}

/// How far `events_by_identifier` is behind the log. The writer brings it up to the head
/// once enough events have arrived (or a little time has passed), in one transaction whose
/// sorted batch writes each customer's page once instead of once per commit.
struct IdentifierIndex {
    /// Events appended since the last catch-up; unknown until the first one.
    behind: Option<i64>,
    last: std::time::Instant,
}

impl Writer {
    /// Brings `events_by_identifier` up to the log's head when it is due. Derived state: it
    /// commits without its own fsync, and a crash before the next durable commit only puts
    /// the head back, to be caught up again.
    fn index_identifiers(&mut self, appended: i64, lag: i64) -> Result<()> {
        let behind = match self.by_identifier.behind {
            Some(b) => b + appended,
            None => self.conn.query_row(
                "SELECT COALESCE((SELECT MAX(seq) FROM events), 0) - (SELECT seq FROM events_by_identifier_head)",
                [],
                |r| r.get(0),
            )?,
        };
        self.by_identifier.behind = Some(behind);
        // bounded by count under load (readers scan at most about `lag` rows of the tail), and
        // by time once it stops
        let due = behind >= lag || (behind > 0 && self.by_identifier.last.elapsed().as_secs() >= 2);
        if !due {
            return Ok(());
        }
        unsynced_tx(&mut self.conn, |tx| {
            let from: i64 = tx.query_row("SELECT seq FROM events_by_identifier_head", [], |r| {
                r.get(0)
            })?;
            let to: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
            for (kind, column) in [("user_id", "user_id"), ("anonymous_id", "anonymous_id")] {
                tx.prepare_cached(&format!(
                    "INSERT OR IGNORE INTO events_by_identifier (tenant_id, kind, value, ts, seq)
                     SELECT tenant_id, ?3, {column}, ts, seq FROM events
                     WHERE seq > ?1 AND seq <= ?2 AND {column} IS NOT NULL ORDER BY 1, 3, 4, 5"
                ))?
                .execute(params![from, to, kind])?;
            }
            tx.execute(
                "UPDATE events_by_identifier_head SET seq = ?1 WHERE id = 1 AND seq < ?1",
                [to],
            )?;
            Ok(())
        })?;
        self.by_identifier = IdentifierIndex {
            behind: Some(0),
            last: std::time::Instant::now(),
        };
        Ok(())
    }
}

/// A write transaction on the writer's connection that commits without an fsync: the workers'
/// derived state (see `write_derived`) and ingest, whose groups the committer syncs beside the
/// next one (`sync_appended`). The durable setting is put back afterwards whatever happened;
/// a commit that went through is reported as such even if that fails.
pub(super) fn unsynced_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    let r = (|| -> Result<T> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    })();
    // every other write on this connection is durable before it is answered
    if let Err(e) = conn.execute_batch("PRAGMA synchronous=FULL") {
        tracing::error!(error = %e, "cannot put the writer back to durable commits");
    }
    r
}

/// Message ids seen within the dedup window, in memory. Keys are 128-bit digests of
/// (tenant, write key, messageId): a random-keyed b-tree on disk cost ~40% of ingest
/// throughput (every insert dirtied a random page), while the log already holds everything
/// needed to rebuild this set, which happens on the first append after start. One server
/// writes a SQLite file; several servers share PostgreSQL, which deduplicates in its table.
#[derive(Default)]
struct DedupIndex {
    loaded: bool,
    /// `graph::dedup_key` -> received_at in seconds; a byte-array key (alignment 1) keeps an
    /// entry at 20 bytes, where a u128 would pad it to 32
    keys: std::collections::HashMap<[u8; 16], u32, BuildDigestHasher>,
}

/// The keys are already uniform digests: hashing them again is wasted work.
#[derive(Default, Clone, Copy)]
struct BuildDigestHasher;

#[derive(Default)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
}

impl std::hash::BuildHasher for BuildDigestHasher {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher::default()
    }
}

impl DedupIndex {
    /// Reads the window's message ids back from the log, newest first.
    fn load(&mut self, conn: &Connection, window_ms: i64) -> Result<()> {
        if self.loaded {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let cutoff = now_ms() - window_ms;
        // received_at follows seq; an hour of slack covers clock steps
        let mut st = conn.prepare(
            "SELECT tenant_id, write_key_id, message_id, received_at FROM events ORDER BY seq DESC",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let received: i64 = r.get(3)?;
            if received < cutoff - 3_600_000 {
                break;
            }
            if received >= cutoff {
                let k = graph::dedup_key(
                    r.get_ref(0)?.as_str()?,
                    r.get_ref(1)?.as_str()?,
                    r.get_ref(2)?.as_str()?,
                );
                self.keys.insert(k, (received / 1000) as u32);
            }
        }
        self.loaded = true;
        tracing::info!(
            keys = self.keys.len(),
            ms = started.elapsed().as_millis() as u64,
            "dedup window loaded from the log"
        );
        Ok(())
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn ping(&self) -> Result<()> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
    }
}

impl SqliteStore {
    /// Stores a ticket and its `created` event; with a rule key, nothing while an unclosed
    /// ticket of the same key exists (the partial unique index says so).
    fn insert_ticket(
        &self,
        tenant: &str,
        t: &Ticket,
        rule_key: Option<&str>,
    ) -> Result<Option<i64>> {
        let now = now_ms();
        self.write(|tx| {
            let inserted = with_public_id(tx, "tickets", |id| {
                Ok(tx.execute(
                    "INSERT OR IGNORE INTO tickets (id, tenant_id, title, description, owner, severity, state, source, check_def, impact, sla_hours, due_at, verdict, created_by, created_at, updated_at, rule_key)
                     VALUES (?16, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15)",
                    params![tenant, t.title, t.description, t.owner, t.severity, t.state, t.source.to_string(), t.check.to_string(), t.impact.to_string(), t.sla_hours, t.due_at_ms, t.verdict.as_ref().map(|v| v.to_string()), t.created_by, now, rule_key, id],
                )?)
            })?;
            let Some(id) = inserted else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, 'created', ?5)",
                params![tenant, id, now, t.created_by, serde_json::json!({"state": t.state, "source": t.source, "check": t.check, "rule": rule_key}).to_string()],
            )?;
            Ok(Some(id))
        })
    }
}

/// Links entries onto the tenant's chain inside the caller's transaction (the write lock
/// makes the head we read the head we extend).
fn sqlite_chain(
    tx: &Transaction,
    tenant: &str,
    entries: Vec<cxm_domain::audit::NewAuditEntry>,
    at_ms: i64,
) -> Result<Vec<cxm_domain::audit::AuditEntry>> {
    let head: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT seq, hash FROM audit_log WHERE tenant_id = ?1 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let chained = crate::chain_after(head, entries, at_ms);
    let mut put = tx.prepare_cached("INSERT INTO audit_log (tenant_id, seq, at, actor, kind, subject, body, prev_hash, hash, body_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
    for e in &chained {
        put.execute(params![
            tenant,
            e.seq,
            e.at_ms,
            e.actor,
            e.kind,
            e.subject,
            e.body,
            e.prev_hash,
            e.hash,
            e.body_hash
        ])?;
    }
    Ok(chained)
}

fn policy_entry(
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

struct SqliteSql<'a, 'b>(&'a Transaction<'b>);

fn sqlite_params(params: &[crate::erase::P]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p {
            crate::erase::P::T(s) => rusqlite::types::Value::Text(s.clone()),
            crate::erase::P::I(i) => rusqlite::types::Value::Integer(*i),
        })
        .collect()
}

impl crate::erase::Sql for SqliteSql<'_, '_> {
    fn rows(
        &mut self,
        table: &str,
        filter: &str,
        params: &[crate::erase::P],
    ) -> Result<Vec<Value>> {
        let mut st = self
            .0
            .prepare(&format!("SELECT * FROM {table} WHERE {filter}"))?;
        let names: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
        let mut rows = st.query(rusqlite::params_from_iter(sqlite_params(params)))?;
        let mut out = vec![];
        while let Some(r) = rows.next()? {
            let mut obj = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let v = match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(x) => Value::from(x),
                    rusqlite::types::ValueRef::Real(x) => Value::from(x),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::from(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => Value::from(format!("{} bytes", b.len())),
                };
                obj.insert(name.clone(), v);
            }
            out.push(Value::Object(obj));
        }
        Ok(out)
    }

    fn events_of(&self, column: &'static str) -> String {
        // the indexed part, and the tail of the log the index has not reached
        format!(
            "seq IN (SELECT seq FROM events_by_identifier WHERE tenant_id = ?1 AND kind = '{column}' AND value = ?2)
             OR (seq > (SELECT seq FROM events_by_identifier_head) AND {column} = ?2)"
        )
    }

    fn exec(&mut self, sql: &str, params: &[crate::erase::P]) -> Result<u64> {
        Ok(self
            .0
            .execute(sql, rusqlite::params_from_iter(sqlite_params(params)))? as u64)
    }

    fn texts(&mut self, sql: &str, params: &[crate::erase::P]) -> Result<Vec<Vec<Option<String>>>> {
        let mut st = self.0.prepare(sql)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(sqlite_params(params)))?;
        let mut out = vec![];
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null | rusqlite::types::ValueRef::Blob(_) => None,
                    rusqlite::types::ValueRef::Integer(x) => Some(x.to_string()),
                    rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                    rusqlite::types::ValueRef::Text(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

/// Inserts a row under a fresh public id (see [`crate::public_id`]). `insert` returns the
/// rows it inserted; when a constraint held the row back, the id tells why: taken (a clash
/// of ids, tried again) or free (the row was a duplicate by the table's own rule: None).
fn with_public_id(
    tx: &Transaction,
    table: &str,
    mut insert: impl FnMut(i64) -> Result<usize>,
) -> Result<Option<i64>> {
    for _ in 0..crate::PUBLIC_ID_TRIES {
        let id = crate::public_id();
        if insert(id)? == 1 {
            return Ok(Some(id));
        }
        let taken: bool = tx.query_row(
            &format!("SELECT EXISTS(SELECT 1 FROM {table} WHERE id = ?1)"),
            [id],
            |r| r.get(0),
        )?;
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
