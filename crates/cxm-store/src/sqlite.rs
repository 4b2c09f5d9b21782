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
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_feedback.sql")),
    (3, include_str!("../migrations/sqlite/0003_surveys.sql")),
    (4, include_str!("../migrations/sqlite/0004_themes.sql")),
    (5, include_str!("../migrations/sqlite/0005_invitations.sql")),
    (6, include_str!("../migrations/sqlite/0006_journeys.sql")),
    (7, include_str!("../migrations/sqlite/0007_health.sql")),
    (8, include_str!("../migrations/sqlite/0008_tickets.sql")),
    (9, include_str!("../migrations/sqlite/0009_webhooks.sql")),
    (10, include_str!("../migrations/sqlite/0010_decisions.sql")),
    (11, include_str!("../migrations/sqlite/0011_signing.sql")),
    (12, include_str!("../migrations/sqlite/0012_step_up.sql")),
    (13, include_str!("../migrations/sqlite/0013_erasures.sql")),
    (14, include_str!("../migrations/sqlite/0014_consent.sql")),
    (15, include_str!("../migrations/sqlite/0015_retention.sql")),
    (
        16,
        include_str!("../migrations/sqlite/0016_experiments.sql"),
    ),
    (
        17,
        include_str!("../migrations/sqlite/0017_event_blocks.sql"),
    ),
    (
        18,
        include_str!("../migrations/sqlite/0018_outbound_mail.sql"),
    ),
    (
        19,
        include_str!("../migrations/sqlite/0019_quarantine_days.sql"),
    ),
    (
        20,
        include_str!("../migrations/sqlite/0020_user_offboarding.sql"),
    ),
    (
        21,
        include_str!("../migrations/sqlite/0021_sealed_secrets.sql"),
    ),
    (22, include_str!("../migrations/sqlite/0022_opaque_ids.sql")),
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
}

/// Message ids seen within the dedup window, in memory. Keys are 128-bit digests of
/// (tenant, write key, messageId): a random-keyed b-tree on disk cost ~40% of ingest
/// throughput (every insert dirtied a random page), while the log already holds everything
/// needed to rebuild this set, which happens on the first append after start. One server
/// writes a SQLite file; several servers share PostgreSQL, which deduplicates in its table.
#[derive(Default)]
struct DedupIndex {
    loaded: bool,
    /// digest -> received_at in seconds
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
                let k = dedup_key(
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

/// A write transaction with its statements prepared once. rusqlite's statement cache
/// hashes and compares the SQL text on every use, which showed up in ingest profiles; here
/// a statement is found by the address of its `'static` SQL.
struct SqlTx<'a, 'd> {
    tx: &'a Transaction<'a>,
    stmts: Vec<(usize, rusqlite::Statement<'a>)>,
    /// Present on ingest; keys added here are removed again if the transaction fails.
    dedup: Option<&'d mut DedupIndex>,
    added: Vec<[u8; 16]>,
}

impl<'a, 'd> SqlTx<'a, 'd> {
    fn new(tx: &'a Transaction<'a>) -> SqlTx<'a, 'd> {
        SqlTx {
            tx,
            stmts: Vec::with_capacity(24),
            dedup: None,
            added: vec![],
        }
    }

    fn st(&mut self, sql: &'static str) -> Result<&mut rusqlite::Statement<'a>> {
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

/// Byte arrays (alignment 1) keep a map entry at 20 bytes; a u128 key would pad it to 32.
fn dedup_key(tenant: &str, key_id: &str, message_id: &str) -> [u8; 16] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [tenant, key_id, message_id] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

fn kind_of(s: &str) -> IdentifierKind {
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
        let key = dedup_key(tenant, key_id, message_id);
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

    fn create_profile(&mut self, tenant: &str, profile: &str, ts_ms: i64) -> Result<()> {
        self.st(
            "INSERT INTO profiles (tenant_id, id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)",
        )?
        .execute(params![tenant, profile, ts_ms])?;
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

fn row_to_key(r: &rusqlite::Row) -> rusqlite::Result<ApiKey> {
    let kind: String = r.get(2)?;
    Ok(ApiKey {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::Write),
        name: r.get(3)?,
        prefix: r.get(4)?,
        hash: r.get(5)?,
        created_at_ms: r.get(6)?,
        revoked_at_ms: r.get(7)?,
    })
}

fn row_to_user(r: &rusqlite::Row) -> rusqlite::Result<User> {
    let role: String = r.get(4)?;
    Ok(User {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        email: r.get(2)?,
        password_hash: r.get(3)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at_ms: r.get(5)?,
        disabled_at_ms: r.get(6)?,
    })
}

fn row_to_event(r: &rusqlite::Row) -> rusqlite::Result<StoredEvent> {
    let payload: String = r.get(10)?;
    Ok(StoredEvent {
        seq: r.get(0)?,
        message_id: r.get(1)?,
        event_type: r.get(2)?,
        name: r.get(3)?,
        channel: r.get(4)?,
        category: r.get(5)?,
        timestamp_ms: r.get(6)?,
        received_at_ms: r.get(7)?,
        user_id: r.get(8)?,
        anonymous_id: r.get(9)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
    })
}

fn row_to_ledger(r: &rusqlite::Row) -> rusqlite::Result<LedgerEntry> {
    let kind: Option<String> = r.get(4)?;
    let value: Option<String> = r.get(5)?;
    Ok(LedgerEntry {
        id: r.get(0)?,
        action: r.get(1)?,
        profile_id: r.get(2)?,
        other_profile_id: r.get(3)?,
        identifier: kind
            .zip(value)
            .map(|(kind, value)| IdentifierRecord { kind, value }),
        event_seq: r.get(6)?,
        message_id: r.get(7)?,
        reason: r.get(8)?,
        at_ms: r.get(9)?,
    })
}

const KEY_COLS: &str = "id, tenant_id, kind, name, prefix, hash, created_at, revoked_at";
const USER_COLS: &str = "id, tenant_id, email, password_hash, role, created_at, disabled_at";
const EVENT_COLS: &str = "seq, message_id, type, name, channel, category, ts, received_at, user_id, anonymous_id, payload";

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

    fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: new_id("ten"),
            name: name.to_string(),
            created_at_ms: now_ms(),
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tenants (id, name, created_at, id_salt, legacy_profile_seq) VALUES (?1, ?2, ?3, ?4, 0)",
                params![t.id, t.name, t.created_at_ms, crate::new_salt()],
            )?;
            Ok(())
        })?;
        Ok(t)
    }

    fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT id, name, created_at FROM tenants ORDER BY created_at")?;
            let rows = st.query_map([], |r| {
                Ok(Tenant {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at_ms: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, name, created_at FROM tenants WHERE id = ?1",
                [id],
                |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at_ms: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn insert_key(&self, k: &ApiKey) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    k.id,
                    k.tenant_id,
                    k.kind.as_str(),
                    k.name,
                    k.prefix,
                    k.hash,
                    k.created_at_ms,
                    k.revoked_at_ms
                ],
            )?;
            Ok(())
        })
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = ?1"),
                [hash],
                row_to_key,
            )
            .optional()?)
        })
    }

    fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at"
            ))?;
            let rows = st
                .query_map([tenant], row_to_key)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn revoke_key(&self, tenant: &str, key_id: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE api_keys SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL",
                params![tenant, key_id, now_ms()],
            )?;
            Ok(n == 1)
        })
    }

    fn insert_user(&self, u: &User) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    u.id,
                    u.tenant_id,
                    u.email,
                    u.password_hash,
                    u.role.as_str(),
                    u.created_at_ms,
                    u.disabled_at_ms
                ],
            )?;
            Ok(())
        })
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE email = ?1"),
                [email],
                row_to_user,
            )
            .optional()?)
        })
    }

    fn list_users(&self, tenant: &str) -> Result<Vec<User>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {USER_COLS} FROM users WHERE tenant_id = ?1 ORDER BY created_at"
            ))?;
            let rows = st
                .query_map([tenant], row_to_user)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn insert_session(&self, token_hash: &str, user_id: &str, expires_at_ms: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_ms()])?;
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash, user_id, expires_at_ms],
            )?;
            Ok(())
        })
    }

    fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {} FROM users u JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
                    USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")),
                params![token_hash, now],
                row_to_user,
            )
            .optional()?)
        })
    }

    fn set_user_disabled(&self, tenant: &str, user_id: &str, at_ms: Option<i64>) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET disabled_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, user_id, at_ms],
            )?;
            if n > 0 && at_ms.is_some() {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn set_user_password(&self, tenant: &str, user_id: &str, password_hash: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, user_id, password_hash],
            )?;
            if n > 0 {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn revoke_sessions(&self, tenant: &str, user_id: &str) -> Result<Option<u64>> {
        self.write(|tx| {
            let known: Option<String> = tx
                .query_row(
                    "SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, user_id],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
            Ok(Some(
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])? as u64,
            ))
        })
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
    }

    fn append(&self, requests: &[AppendRequest]) -> Result<Vec<AppendOutcome>> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *guard;
        w.dedup
            .load(&w.conn, self.settings.dedup_window.as_millis() as i64)?;
        let tx = w
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut g = SqlTx::new(&tx);
        g.dedup = Some(&mut w.dedup);
        let result = graph::append_all(&mut g, requests, &self.settings);
        let added = std::mem::take(&mut g.added);
        drop(g);
        match result.and_then(|out| tx.commit().map(|()| out).map_err(StoreError::from)) {
            Ok(out) => {
                restart_if_asked(&w.conn, &self.wal_full);
                Ok(out)
            }
            Err(e) => {
                // nothing was stored: forget the ids so a retry is not taken for a duplicate
                for k in added {
                    w.dedup.keys.remove(&k);
                }
                Err(e)
            }
        }
    }

    fn insert_feedback(&self, tenant: &str, rows: &[FeedbackRow]) -> Result<FeedbackOutcome> {
        self.write(|tx| {
            let mut out = FeedbackOutcome::default();
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO feedback (tenant_id, idempotency_key, response_id, question, field_type, score, text_value, channel, survey_id, survey_version, journey, stage, agent, identifier, account, collected_at, sentiment, cues, created_at, profile_id, tier)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            )?;
            let mut profile_of = tx.prepare_cached("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3")?;
            let mut account_of = tx.prepare_cached("SELECT group_id FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY group_id LIMIT 1")?;
            let mut traits_of = tx.prepare_cached("SELECT traits FROM accounts WHERE tenant_id = ?1 AND group_id = ?2")?;
            let mut roll = tx.prepare_cached(
                "INSERT INTO feedback_rollup (tenant_id, field_type, dim, day, dim_value, score, answers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
                 ON CONFLICT DO UPDATE SET answers = answers + 1",
            )?;
            let now = now_ms();
            for r in rows {
                let a = &r.answer;
                let (survey, journey, stage, agent) = (a.survey_id.as_deref().unwrap_or(""), a.journey.as_deref().unwrap_or(""), a.stage.as_deref().unwrap_or(""), a.agent.as_deref().unwrap_or(""));
                // link the answer to its customer and account through the identity graph
                let profile: Option<String> = match a.identifier.as_deref().and_then(Identifier::parse_typed) {
                    Some(id) => profile_of.query_row(params![tenant, id.kind_str(), id.value], |r| r.get(0)).optional()?,
                    None => None,
                };
                let account: Option<String> = match (&a.account, &profile) {
                    (Some(acc), _) => Some(acc.clone()),
                    (None, Some(p)) => account_of.query_row(params![tenant, p], |r| r.get(0)).optional()?,
                    _ => None,
                };
                let tier = match &account {
                    Some(acc) => traits_of
                        .query_row(params![tenant, acc], |r| r.get::<_, String>(0))
                        .optional()?
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .and_then(|t| tier_of(&t))
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let n = ins.execute(params![
                    tenant, a.idempotency_key, a.response_id, a.question, a.field_type.as_str(), a.score, a.text, a.channel.as_str(), survey, a.survey_version,
                    journey, stage, agent, a.identifier, account, a.collected_at.timestamp_millis(), r.sentiment, r.cues, now, profile, tier
                ])?;
                if n == 0 {
                    out.duplicates += 1;
                    continue;
                }
                out.accepted += 1;
                if let Some(score) = a.score {
                    let day = a.collected_at.format("%Y-%m-%d").to_string();
                    for (dim, value) in [("", ""), ("channel", a.channel.as_str()), ("survey", survey), ("journey", journey), ("stage", stage), ("agent", agent), ("tier", tier.as_str())] {
                        if dim.is_empty() || !value.is_empty() {
                            roll.execute(params![tenant, a.field_type.as_str(), dim, day, value, score])?;
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT day, dim_value, score, answers FROM feedback_rollup WHERE tenant_id = ?1 AND field_type = ?2 AND dim = ?3 AND day >= ?4 AND day <= ?5 ORDER BY day, dim_value, score",
            )?;
            let rows = st
                .query_map(params![tenant, field_type, dim, from_day, to_day], |r| Ok(HistogramRow { day: r.get(0)?, group: r.get(1)?, score: r.get(2)?, answers: r.get::<_, i64>(3)? as u64 }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn text_answers(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        // `+n.field_type`: find the response's NPS by (tenant, response), never by scanning
        // every NPS answer of the tenant
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.response_id, t.text_value, t.sentiment, (SELECT n.score FROM feedback n WHERE n.tenant_id = t.tenant_id AND n.response_id = t.response_id AND +n.field_type = 'nps' LIMIT 1), t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = ?1 AND t.field_type = 'text' AND t.collected_at >= ?2 AND t.collected_at < ?3 ORDER BY t.collected_at DESC LIMIT ?4",
            )?;
            let rows = st.query_map(params![tenant, from_ms, to_ms, limit], text_answer)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn load_themes(&self, tenant: &str) -> Result<ThemeState> {
        self.read(|c| {
            let mut state = c
                .query_row("SELECT version, vocabulary, noise_below, discovered_at FROM theme_models WHERE tenant_id = ?1", params![tenant], |r| {
                    Ok(ThemeState { version: r.get(0)?, vocabulary: r.get(1)?, noise_below: r.get(2)?, discovered_at_ms: r.get(3)?, themes: vec![] })
                })
                .optional()?
                .unwrap_or_default();
            let mut st = c.prepare_cached("SELECT doc FROM themes WHERE tenant_id = ?1 ORDER BY theme_id")?;
            state.themes = st.query_map(params![tenant], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(state)
        })
    }

    fn save_themes(&self, tenant: &str, save: &ThemeSave) -> Result<i64> {
        let now = now_ms();
        self.write(|tx| {
            if let Some((vocabulary, noise)) = &save.discovery {
                tx.execute(
                    "INSERT INTO theme_models (tenant_id, version, vocabulary, noise_below, discovered_at) VALUES (?1, 1, ?2, ?3, ?4)
                     ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1, vocabulary = excluded.vocabulary, noise_below = excluded.noise_below, discovered_at = excluded.discovered_at",
                    params![tenant, vocabulary, noise, now],
                )?;
            }
            let mut up = tx.prepare_cached("INSERT INTO themes (tenant_id, theme_id, doc, updated_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, theme_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at")?;
            for (id, doc) in &save.themes {
                up.execute(params![tenant, id, doc, now])?;
            }
            if let Some(e) = &save.edit {
                tx.execute("INSERT INTO theme_edits (tenant_id, theme_id, kind, detail, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![tenant, e.theme_id, e.kind, e.detail, e.actor, now])?;
            }
            Ok(tx.query_row("SELECT version FROM theme_models WHERE tenant_id = ?1", params![tenant], |r| r.get(0)).optional()?.unwrap_or(0))
        })
    }

    fn assign_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        self.write(|tx| {
            let mut st = tx.prepare_cached(
                "INSERT INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant_id, feedback_id) DO UPDATE SET theme_id = excluded.theme_id",
            )?;
            for a in rows {
                st.execute(params![tenant, a.feedback_id, a.theme_id, a.day, a.response_id, a.sentiment, a.account])?;
            }
            Ok(())
        })
    }

    fn refresh_theme_rollup(&self, tenant: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM theme_rollup WHERE tenant_id = ?1", params![tenant])?;
            tx.execute(
                "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n)
                 SELECT ?1, m.day, m.theme_id, COUNT(*),
                        COUNT(DISTINCT CASE WHEN n.score >= 9 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score BETWEEN 7 AND 8 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score <= 6 THEN m.response_id END),
                        COALESCE(SUM(m.sentiment), 0), COUNT(m.sentiment)
                 FROM feedback_themes m LEFT JOIN (SELECT response_id, MIN(score) AS score FROM feedback WHERE tenant_id = ?1 AND field_type = 'nps' GROUP BY response_id) n ON n.response_id = m.response_id
                 WHERE m.tenant_id = ?1 GROUP BY m.day, m.theme_id",
                params![tenant],
            )?;
            Ok(())
        })
    }

    fn place_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        self.write(|tx| {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut seen = tx.prepare_cached("SELECT 1 FROM feedback_themes WHERE tenant_id = ?1 AND response_id = ?2 AND theme_id = ?3 AND feedback_id <> ?4 LIMIT 1")?;
            let mut nps = tx.prepare_cached("SELECT score FROM feedback WHERE tenant_id = ?1 AND response_id = ?2 AND +field_type = 'nps' LIMIT 1")?;
            let mut roll = tx.prepare_cached(
                "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO UPDATE SET answers = answers + 1, promoters = promoters + excluded.promoters, passives = passives + excluded.passives,
                   detractors = detractors + excluded.detractors, sentiment_sum = sentiment_sum + excluded.sentiment_sum, sentiment_n = sentiment_n + excluded.sentiment_n",
            )?;
            for a in rows {
                if ins.execute(params![tenant, a.feedback_id, a.theme_id, a.day, a.response_id, a.sentiment, a.account])? == 0 {
                    continue;
                }
                let first = !seen.exists(params![tenant, a.response_id, a.theme_id, a.feedback_id])?;
                let score: Option<i64> = nps.query_row(params![tenant, a.response_id], |r| r.get(0)).optional()?;
                let [p, n, d] = nps_category(score.filter(|_| first));
                roll.execute(params![tenant, a.day, a.theme_id, p, n, d, a.sentiment.unwrap_or(0.0), i64::from(a.sentiment.is_some())])?;
            }
            Ok(())
        })
    }

    fn theme_watermark(&self, tenant: &str) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(feedback_id), 0) FROM feedback_themes WHERE tenant_id = ?1",
                params![tenant],
                |r| r.get(0),
            )?)
        })
    }

    fn text_answers_after(
        &self,
        tenant: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.response_id, t.text_value, t.sentiment, NULL, t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = ?1 AND t.id > ?2 AND t.field_type = 'text' ORDER BY t.id LIMIT ?3",
            )?;
            let rows = st.query_map(params![tenant, after_id, limit], text_answer)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn theme_members(
        &self,
        tenant: &str,
        theme_ids: &[String],
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.response_id, t.text_value, t.sentiment, NULL, t.collected_at, t.id, t.account
                 FROM feedback_themes m JOIN feedback t ON t.id = m.feedback_id WHERE m.tenant_id = ?1 AND m.theme_id = ?2 ORDER BY t.id LIMIT ?3",
            )?;
            let mut out = vec![];
            for id in theme_ids {
                for r in st.query_map(params![tenant, id, limit], text_answer)? {
                    out.push(r?);
                }
            }
            Ok(out)
        })
    }

    fn theme_days(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeDay>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT theme_id, day, answers, sentiment_sum, sentiment_n FROM theme_rollup
                 WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY theme_id, day",
            )?;
            let rows = st
                .query_map(params![tenant, from_day, to_day], |r| {
                    Ok(ThemeDay {
                        theme_id: r.get(0)?,
                        day: r.get(1)?,
                        answers: r.get::<_, i64>(2)? as u64,
                        sentiment_sum: r.get(3)?,
                        sentiment_n: r.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn theme_nps(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeNps>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT theme_id, SUM(promoters), SUM(passives), SUM(detractors) FROM theme_rollup WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 GROUP BY theme_id ORDER BY theme_id",
            )?;
            let rows = st
                .query_map(params![tenant, from_day, to_day], |r| Ok((r.get::<_, String>(0)?, [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?])))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(nps_rows(rows))
        })
    }

    fn theme_accounts(
        &self,
        tenant: &str,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<ThemeAccount>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT m.theme_id, m.account, COALESCE(a.traits, '{}') FROM (SELECT DISTINCT theme_id, account FROM feedback_themes WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 AND account IS NOT NULL) m
                 LEFT JOIN accounts a ON a.tenant_id = ?1 AND a.group_id = m.account",
            )?;
            let rows = st
                .query_map(params![tenant, from_day, to_day], |r| Ok(ThemeAccount { theme_id: r.get(0)?, account: r.get(1)?, traits: r.get(2)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn theme_edits(&self, tenant: &str, limit: u32) -> Result<Vec<ThemeEdit>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT theme_id, kind, detail, actor, created_at FROM theme_edits WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2")?;
            let rows = st
                .query_map(params![tenant, limit], |r| Ok(ThemeEdit { theme_id: r.get(0)?, kind: r.get(1)?, detail: r.get(2)?, actor: r.get(3)?, created_at_ms: r.get(4)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn max_event_seq(&self) -> Result<i64> {
        self.read(
            |c| Ok(c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?),
        )
    }

    fn event_blocks_head(&self, tenant: &str) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(last_seq), 0) FROM event_blocks WHERE tenant_id = ?1",
                [tenant],
                |r| r.get(0),
            )?)
        })
    }

    fn compact_events(&self, tenant: &str, block: usize) -> Result<usize> {
        let head = self.event_blocks_head(tenant)?;
        let rows = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, user_id, anonymous_id, name, channel, ts FROM events
                 WHERE tenant_id = ?1 AND seq > ?2 AND name IS NOT NULL ORDER BY seq LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, head, block.max(1) as i64], |r| {
                    Ok(crate::columns::LogColumns {
                        seq: r.get(0)?,
                        user_id: r.get(1)?,
                        anonymous_id: r.get(2)?,
                        name: r.get(3)?,
                        channel: r.get(4)?,
                        ts_ms: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(0);
        };
        if rows.len() < block.max(1) {
            return Ok(0);
        }
        let body = crate::columns::encode(&rows);
        let (first, last, n) = (first.seq, last.seq, rows.len());
        self.write(|tx| {
            // written only onto the head it was read after: a purge in between starts again
            let put = tx.execute(
                "INSERT INTO event_blocks (tenant_id, first_seq, last_seq, events, body)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE COALESCE((SELECT MAX(last_seq) FROM event_blocks WHERE tenant_id = ?1), 0) = ?6",
                params![tenant, first, last, n as i64, body, head],
            )?;
            Ok(if put == 1 { n } else { 0 })
        })
    }

    fn event_blocks(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::columns::EventBlock>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT first_seq, last_seq, body FROM event_blocks WHERE tenant_id = ?1 AND first_seq > ?2 ORDER BY first_seq LIMIT ?3")?;
            let rows = st
                .query_map(params![tenant, after_seq, limit], |r| Ok(crate::columns::EventBlock { first_seq: r.get(0)?, last_seq: r.get(1)?, body: r.get(2)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

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

    fn save_journey(&self, tenant: &str, j: &StoredJourney, carry: bool) -> Result<i64> {
        self.write(|tx| {
            let v: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM journeys WHERE tenant_id = ?1 AND journey_id = ?2", params![tenant, j.journey_id], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO journeys (tenant_id, journey_id, version, name, owner, definition, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![tenant, j.journey_id, v, j.name, j.owner, j.definition, j.created_by, now_ms()],
            )?;
            for table in ["journey_positions", "journey_visits", "journey_stats", "journey_cursors"] {
                if carry {
                    tx.execute(&format!("UPDATE {table} SET version = ?3 WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 - 1"), params![tenant, j.journey_id, v])?;
                }
                tx.execute(&format!("DELETE FROM {table} WHERE tenant_id = ?1 AND journey_id = ?2 AND version < ?3"), params![tenant, j.journey_id, v])?;
            }
            Ok(v)
        })
    }

    fn journey(
        &self,
        tenant: &str,
        journey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredJourney>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = ?1 AND journey_id = ?2 AND (?3 IS NULL OR version = ?3) ORDER BY version DESC LIMIT 1",
                params![tenant, journey_id, version],
                journey_row,
            )
            .optional()?)
        })
    }

    fn list_journeys(&self, tenant: &str) -> Result<Vec<StoredJourney>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys j
                 WHERE tenant_id = ?1 AND version = (SELECT MAX(version) FROM journeys x WHERE x.tenant_id = j.tenant_id AND x.journey_id = j.journey_id)
                 ORDER BY name, journey_id",
            )?;
            let rows = st.query_map([tenant], journey_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn journey_history(&self, tenant: &str, journey_id: &str) -> Result<Vec<StoredJourney>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = ?1 AND journey_id = ?2 ORDER BY version DESC",
            )?;
            let rows = st.query_map(params![tenant, journey_id], journey_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn journey_cursor(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
    ) -> Result<JourneyCursor> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3",
                params![tenant, journey_id, version],
                |r| Ok(JourneyCursor { event_seq: r.get(0)?, feedback_id: r.get(1)? }),
            )
            .optional()?
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
        let names = serde_json::to_string(names)?;
        self.read(|c| {
            let mut st = c.prepare_cached(
                // by the seq range, not the name index: the index cannot seek on seq, so a
                // short range (the worker's next events, the log after the columnar blocks)
                // would read every index entry of the journey's names
                "SELECT e.seq, e.user_id, e.anonymous_id, e.name, e.channel, e.ts FROM events e NOT INDEXED
                 WHERE e.tenant_id = ?3 AND e.name IN (SELECT value FROM json_each(?4)) AND e.seq > ?1 AND e.seq <= ?2
                 ORDER BY e.seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, names, limit], |r| {
                    Ok((r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?, JourneyEventRow { seq: r.get(0)?, profile_id: None, name: r.get(3)?, channel: r.get(4)?, ts_ms: r.get(5)? }))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            // a customer has many events: resolve each id once rather than joining per event
            let mut lookup = c.prepare_cached("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3")?;
            let mut seen: [std::collections::HashMap<String, Option<String>>; 2] = Default::default();
            let mut resolve = |kind: bool, value: &str| -> Result<Option<String>> {
                let known = &mut seen[usize::from(kind)];
                if let Some(p) = known.get(value) {
                    return Ok(p.clone());
                }
                let k = if kind { "user_id" } else { "anonymous_id" };
                let p: Option<String> = lookup.query_row(params![tenant, k, value], |r| r.get(0)).optional()?;
                known.insert(value.to_string(), p.clone());
                Ok(p)
            };
            let mut out = Vec::with_capacity(rows.len());
            for (user, anon, mut row) in rows {
                row.profile_id = match &user {
                    Some(u) => resolve(true, u)?,
                    None => None,
                };
                if row.profile_id.is_none() {
                    if let Some(a) = &anon {
                        row.profile_id = resolve(false, a)?;
                    }
                }
                out.push(row);
            }
            Ok(out)
        })
    }

    fn journey_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<JourneyAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, profile_id, field_type, score, sentiment, collected_at, journey, stage FROM feedback
                 WHERE tenant_id = ?1 AND id > ?2 AND field_type IN ('nps', 'csat', 'ces', 'text') ORDER BY id LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, after, limit], |r| {
                    Ok(JourneyAnswer {
                        id: r.get(0)?,
                        profile_id: r.get(1)?,
                        field_type: r.get(2)?,
                        score: r.get::<_, Option<i64>>(3)?.map(|s| s as f64),
                        sentiment: r.get(4)?,
                        collected_at_ms: r.get(5)?,
                        journey: r.get(6)?,
                        stage: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn event_name_seen(&self, tenant: &str, name: &str) -> Result<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = ?1 AND name = ?2)",
                params![tenant, name],
                |r| r.get(0),
            )?)
        })
    }

    fn journey_positions(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        profiles: &[String],
    ) -> Result<std::collections::HashMap<String, cxm_domain::journey_progress::Position>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT state FROM journey_positions WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND profile_id = ?4")?;
            let mut out = std::collections::HashMap::new();
            for p in profiles {
                if let Some(state) = st.query_row(params![tenant, journey_id, version, p], |r| r.get::<_, String>(0)).optional()? {
                    out.insert(p.clone(), serde_json::from_str(&state)?);
                }
            }
            Ok(out)
        })
    }

    fn journey_stage_at(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        at: &[(String, i64)],
    ) -> Result<Vec<Option<usize>>> {
        self.read(|c| {
            let mut pos = c.prepare_cached("SELECT stage FROM journey_positions WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND profile_id = ?4 AND entered_at <= ?5")?;
            let mut visit = c.prepare_cached(
                "SELECT stage FROM journey_visits WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND profile_id = ?4 AND entered_at <= ?5 AND left_at >= ?5
                 ORDER BY entered_at DESC LIMIT 1",
            )?;
            let mut out = Vec::with_capacity(at.len());
            for (p, ts) in at {
                let stage: Option<i64> = match pos.query_row(params![tenant, journey_id, version, p, ts], |r| r.get(0)).optional()? {
                    Some(s) => Some(s),
                    None => visit.query_row(params![tenant, journey_id, version, p, ts], |r| r.get(0)).optional()?,
                };
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
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT stage, stats FROM journey_stats WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 ORDER BY stage")?;
            let rows = st
                .query_map(params![tenant, journey_id, version], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|(s, j)| Ok((s as usize, serde_json::from_str(&j)?))).collect()
        })
    }

    fn journey_stalled(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        cutoffs: &[(usize, i64)],
    ) -> Result<Vec<u64>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT COUNT(*) FROM journey_positions WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND stage = ?4 AND entered_at < ?5 AND open = 1",
            )?;
            cutoffs
                .iter()
                .map(|(stage, cut)| Ok(st.query_row(params![tenant, journey_id, version, *stage as i64, cut], |r| r.get::<_, i64>(0))? as u64))
                .collect()
        })
    }

    fn save_journey_progress(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        p: &JourneyProgress,
    ) -> Result<bool> {
        self.write(|tx| {
            let latest: Option<i64> = tx.query_row("SELECT MAX(version) FROM journeys WHERE tenant_id = ?1 AND journey_id = ?2", params![tenant, journey_id], |r| r.get(0))?;
            let cur = tx
                .query_row(
                    "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3",
                    params![tenant, journey_id, version],
                    |r| Ok(JourneyCursor { event_seq: r.get(0)?, feedback_id: r.get(1)? }),
                )
                .optional()?
                .unwrap_or_default();
            if latest != Some(version) || cur != p.from {
                return Ok(false);
            }
            {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO journey_positions (tenant_id, journey_id, version, profile_id, stage, open, entered_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (profile, pos) in &p.positions {
                    put.execute(params![tenant, journey_id, version, profile, pos.stage as i64, !pos.done, pos.entered_ms, serde_json::to_string(pos)?])?;
                }
                let mut visit = tx.prepare_cached(
                    "INSERT INTO journey_visits (tenant_id, journey_id, version, profile_id, stage, entered_at, left_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (profile, v) in &p.visits {
                    visit.execute(params![tenant, journey_id, version, profile, v.stage as i64, v.entered_ms, v.left_ms, outcome_str(v.outcome)])?;
                }
                let mut stats = tx.prepare_cached("INSERT OR REPLACE INTO journey_stats (tenant_id, journey_id, version, stage, stats) VALUES (?1, ?2, ?3, ?4, ?5)")?;
                for (stage, st) in &p.stats {
                    stats.execute(params![tenant, journey_id, version, *stage as i64, serde_json::to_string(st)?])?;
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO journey_cursors (tenant_id, journey_id, version, event_seq, feedback_id, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, journey_id, version, p.to.event_seq, p.to.feedback_id, now_ms()],
            )?;
            Ok(true)
        })
    }

    fn health_cursor(&self, tenant: &str) -> Result<HealthCursor> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = ?1",
                [tenant],
                |r| {
                    Ok(HealthCursor {
                        event_seq: r.get(0)?,
                        feedback_id: r.get(1)?,
                    })
                },
            )
            .optional()?
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, group_id, user_id, anonymous_id, name, category, ts FROM events
                 WHERE seq > ?1 AND seq <= ?2 AND tenant_id = ?3 ORDER BY seq LIMIT ?4",
            )?;
            type Raw = (i64, Option<String>, Option<String>, Option<String>, Option<String>, String, i64);
            let rows: Vec<Raw> = st
                .query_map(params![after, upto, tenant, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            // events without a groupId belong to the account of the customer who sent them
            let mut profile = c.prepare_cached("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3")?;
            let mut account = c.prepare_cached("SELECT group_id FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY group_id LIMIT 1")?;
            let mut seen: std::collections::HashMap<(bool, String), Option<String>> = std::collections::HashMap::new();
            let mut out = Vec::with_capacity(rows.len());
            for (seq, group, user, anon, name, category, ts) in rows {
                let mut acct = group;
                for (is_user, id) in [(true, user), (false, anon)] {
                    let Some(id) = id else { continue };
                    if acct.is_some() {
                        break;
                    }
                    let key = (is_user, id);
                    if let Some(a) = seen.get(&key) {
                        acct = a.clone();
                        continue;
                    }
                    let kind = if is_user { "user_id" } else { "anonymous_id" };
                    let p: Option<String> = profile.query_row(params![tenant, kind, key.1], |r| r.get(0)).optional()?;
                    let a = match p {
                        Some(p) => account.query_row(params![tenant, p], |r| r.get(0)).optional()?,
                        None => None,
                    };
                    seen.insert(key, a.clone());
                    acct = a;
                }
                out.push(HealthEventRow { seq, account: acct, name, category, ts_ms: ts });
            }
            Ok(out)
        })
    }

    fn account_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<AccountAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, account, field_type, score, collected_at FROM feedback
                 WHERE tenant_id = ?1 AND id > ?2 AND field_type IN ('nps', 'csat') ORDER BY id LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, after, limit], |r| {
                    Ok(AccountAnswer { id: r.get(0)?, account: r.get(1)?, field_type: r.get(2)?, score: r.get::<_, Option<i64>>(3)?.map(|s| s as f64), collected_at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn add_account_days(
        &self,
        tenant: &str,
        from: HealthCursor,
        to: HealthCursor,
        days: &[(String, cxm_domain::health::AccountDay)],
    ) -> Result<bool> {
        self.write(|tx| {
            let cur = tx
                .query_row("SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = ?1", [tenant], |r| Ok(HealthCursor { event_seq: r.get(0)?, feedback_id: r.get(1)? }))
                .optional()?
                .unwrap_or_default();
            if cur != from {
                return Ok(false);
            }
            {
                let mut add = tx.prepare_cached(
                    "INSERT INTO account_daily (tenant_id, group_id, day, active, tickets, payment_failed, usage, churned, low_scores) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (tenant_id, group_id, day) DO UPDATE SET active = active + excluded.active, tickets = tickets + excluded.tickets,
                       payment_failed = payment_failed + excluded.payment_failed, usage = usage + excluded.usage, churned = churned + excluded.churned, low_scores = low_scores + excluded.low_scores",
                )?;
                for (g, d) in days {
                    add.execute(params![tenant, g, d.day.to_string(), d.active, d.tickets, d.payment_failed, d.usage, d.churned, d.low_scores])?;
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO health_cursors (tenant_id, event_seq, feedback_id, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, to.event_seq, to.feedback_id, now_ms()],
            )?;
            Ok(true)
        })
    }

    fn accounts_for_health(
        &self,
        tenant: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<AccountRecord>> {
        self.read(|c| {
            let mut out: std::collections::BTreeMap<String, AccountRecord> = std::collections::BTreeMap::new();
            let mut st = c.prepare_cached("SELECT group_id, traits FROM accounts WHERE tenant_id = ?1")?;
            let rows = st.query_map([tenant], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            for (g, traits) in rows {
                out.insert(g.clone(), account_record(g, &traits));
            }
            let mut st = c.prepare_cached(
                "SELECT group_id, day, active, tickets, payment_failed, usage, churned, low_scores FROM account_daily
                 WHERE tenant_id = ?1 AND day >= ?2 ORDER BY group_id, day",
            )?;
            let rows = st
                .query_map(params![tenant, since.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, [r.get::<_, u32>(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?]))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (g, day, n) in rows {
                let Ok(day) = day.parse() else { continue };
                out.entry(g.clone()).or_insert_with(|| account_record(g, "{}")).days.push(account_day(day, n));
            }
            Ok(out.into_values().collect())
        })
    }

    fn save_signal_set(&self, tenant: &str, definition: &str, actor: &str) -> Result<i64> {
        self.write(|tx| {
            let v: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM signal_sets WHERE tenant_id = ?1", [tenant], |r| r.get(0))?;
            tx.execute("INSERT INTO signal_sets (tenant_id, version, definition, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)", params![tenant, v, definition, actor, now_ms()])?;
            Ok(v)
        })
    }

    fn signal_set(&self, tenant: &str) -> Result<Option<(i64, String)>> {
        self.read(|c| Ok(c.query_row("SELECT version, definition FROM signal_sets WHERE tenant_id = ?1 ORDER BY version DESC LIMIT 1", [tenant], |r| Ok((r.get(0)?, r.get(1)?))).optional()?))
    }

    fn save_account_health(
        &self,
        tenant: &str,
        rows: &[AccountHealthRow],
        day: chrono::NaiveDate,
    ) -> Result<()> {
        let day = day.to_string();
        self.write(|tx| {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO account_health (tenant_id, group_id, name, score, band, readings, arr, computed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut hist = tx.prepare_cached("INSERT OR REPLACE INTO health_history (tenant_id, group_id, day, score, band) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for r in rows {
                put.execute(params![tenant, r.group_id, r.name, r.score, r.band, r.readings.to_string(), r.arr, r.computed_at_ms])?;
                hist.execute(params![tenant, r.group_id, day, r.score, r.band])?;
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR band = ?2) ORDER BY score, arr DESC, group_id LIMIT ?3 OFFSET ?4",
            )?;
            let rows = st.query_map(params![tenant, band, limit, offset], health_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn account_health_one(&self, tenant: &str, group_id: &str) -> Result<Option<AccountHealthRow>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health WHERE tenant_id = ?1 AND group_id = ?2",
                params![tenant, group_id],
                health_row,
            )
            .optional()?)
        })
    }

    fn band_counts(&self, tenant: &str) -> Result<Vec<BandCount>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT band, COUNT(*), COALESCE(SUM(arr), 0) FROM account_health WHERE tenant_id = ?1 GROUP BY band ORDER BY band")?;
            let rows = st.query_map([tenant], |r| Ok(BandCount { band: r.get(0)?, accounts: r.get(1)?, arr: r.get(2)? }))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn health_trend(
        &self,
        tenant: &str,
        group_id: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<(chrono::NaiveDate, f64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT day, score FROM health_history WHERE tenant_id = ?1 AND group_id = ?2 AND day >= ?3 ORDER BY day")?;
            let rows = st
                .query_map(params![tenant, group_id, since.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows.into_iter().filter_map(|(d, s)| Some((d.parse().ok()?, s))).collect())
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
        self.write(|tx| {
            let mut ids = vec![];
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO alerts (id, tenant_id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner)
                 VALUES (?10, ?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?8, 'cxm', ?9)",
            )?;
            for a in open {
                let id = with_public_id(tx, "alerts", |id| {
                    Ok(ins.execute(params![tenant, a.group_id, a.kind, a.signal, a.title, a.detail.to_string(), a.arr, now, a.owner, id])?)
                })?;
                ids.extend(id);
            }
            let mut res = tx.prepare_cached(
                "UPDATE alerts SET status = 'resolved', updated_at = ?5, updated_by = ?6 WHERE tenant_id = ?1 AND group_id = ?2 AND kind = ?3 AND signal = ?4 AND status <> 'resolved'",
            )?;
            let mut resolved = 0;
            for (g, k, s) in clear {
                resolved += res.execute(params![tenant, g, k, s, now, actor])? as u64;
            }
            Ok((ids, resolved))
        })
    }

    fn list_alerts(&self, tenant: &str, status: Option<&str>, limit: u32) -> Result<Vec<Alert>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![tenant, status, limit], alert_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn alert(&self, tenant: &str, id: i64) -> Result<Option<Alert>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
                alert_row,
            )
            .optional()?)
        })
    }

    fn set_alert_status(&self, tenant: &str, id: i64, status: &str, actor: &str) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE alerts SET status = ?3, updated_at = ?4, updated_by = ?5 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id, status, now_ms(), actor],
            )? > 0)
        })
    }

    fn create_ticket(&self, tenant: &str, t: &Ticket) -> Result<i64> {
        self.insert_ticket(tenant, t, None)?
            .ok_or_else(|| StoreError::Backend("ticket insert stored nothing".into()))
    }

    fn create_ticket_once(&self, tenant: &str, t: &Ticket, rule_key: &str) -> Result<Option<i64>> {
        self.insert_ticket(tenant, t, Some(rule_key))
    }

    fn ticket_rules(&self, tenant: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT definition FROM ticket_rules WHERE tenant_id = ?1",
                [tenant],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn save_ticket_rules(&self, tenant: &str, definition: &str, actor: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO ticket_rules (tenant_id, definition, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, definition, actor, now_ms()],
            )?;
            Ok(())
        })
    }

    fn ticket(&self, tenant: &str, id: i64) -> Result<Option<Ticket>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{TICKET_COLUMNS} WHERE tenant_id = ?1 AND id = ?2"),
                params![tenant, id],
                ticket_row,
            )
            .optional()?)
        })
    }

    fn list_tickets(&self, tenant: &str, state: Option<&str>, limit: u32) -> Result<Vec<Ticket>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("{TICKET_COLUMNS} WHERE tenant_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3"))?;
            let rows = st.query_map(params![tenant, state, limit], ticket_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn change_ticket(&self, tenant: &str, id: i64, ch: &TicketChange) -> Result<bool> {
        let now = now_ms();
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tickets SET state = ?4, closed_at = ?5, verdict = COALESCE(?6, verdict), updated_at = ?7 WHERE tenant_id = ?1 AND id = ?2 AND state = ?3",
                params![tenant, id, ch.from_state, ch.state, ch.closed_at_ms, ch.verdict.as_ref().map(|v| v.to_string()), now],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, id, now, ch.actor, ch.kind, ch.detail.to_string()],
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
        self.write(|tx| {
            tx.execute(
                "INSERT INTO ticket_events (tenant_id, ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, id, now_ms(), actor, kind, detail.to_string()],
            )?;
            Ok(())
        })
    }

    fn ticket_events(&self, tenant: &str, id: i64) -> Result<Vec<TicketEvent>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id, at, actor, kind, detail FROM ticket_events WHERE tenant_id = ?1 AND ticket_id = ?2 ORDER BY id")?;
            let rows = st
                .query_map(params![tenant, id], |r| {
                    let d: String = r.get(4)?;
                    Ok(TicketEvent { id: r.get(0)?, at_ms: r.get(1)?, actor: r.get(2)?, kind: r.get(3)?, detail: serde_json::from_str(&d).unwrap_or(Value::Null) })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn csat_of_accounts(
        &self,
        tenant: &str,
        accounts: &[String],
        since_ms: i64,
    ) -> Result<(u64, u64)> {
        let accounts = serde_json::to_string(accounts)?;
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(SUM(score >= 4), 0), COUNT(*) FROM feedback WHERE tenant_id = ?1 AND field_type = 'csat' AND collected_at >= ?2
                   AND account IN (SELECT value FROM json_each(?3))",
                params![tenant, since_ms, accounts],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )?)
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
        let names = serde_json::to_string(names)?;
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT e.seq, COALESCE(iu.profile_id, ia.profile_id), e.group_id, e.ts,
                   CAST(COALESCE(json_extract(e.payload, '$.properties.revenue'), json_extract(e.payload, '$.properties.total'),
                                 json_extract(e.payload, '$.properties.amount'), json_extract(e.payload, '$.properties.value')) AS TEXT)
                 FROM events e
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = ?3 AND e.name IN (SELECT value FROM json_each(?4)) AND e.seq > ?1 AND e.seq <= ?2
                 ORDER BY e.seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, names, limit], |r| {
                    Ok(AmountEvent { seq: r.get(0)?, profile_id: r.get(1)?, group_id: r.get(2)?, ts_ms: r.get(3)?, amount: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT e.seq, e.user_id, e.anonymous_id, COALESCE(iu.profile_id, ia.profile_id), e.ts,
                   CAST(json_extract(e.payload, '$.properties.variation_id') AS TEXT)
                 FROM events e
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = ?3 AND e.name = 'Experiment Viewed' AND e.seq > ?1 AND e.seq <= ?2
                   AND CAST(json_extract(e.payload, '$.properties.experiment_id') AS TEXT) = ?4
                 ORDER BY e.seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, experiment, limit], |r| {
                    Ok(ViewEvent { seq: r.get(0)?, user_id: r.get(1)?, anonymous_id: r.get(2)?, profile_id: r.get(3)?, ts_ms: r.get(4)?, variation: r.get(5)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn save_experiment(&self, tenant: &str, e: &StoredExperiment) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO experiments (tenant_id, id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (tenant_id, id) DO UPDATE SET definition = excluded.definition, status = excluded.status, rollout_percent = excluded.rollout_percent,
                   shipped_arm = excluded.shipped_arm, history = excluded.history, updated_at = excluded.updated_at, started_at = excluded.started_at",
                params![tenant, e.id, e.definition, e.status, e.rollout_percent, e.shipped_arm, e.history, e.created_by, e.created_at_ms, e.updated_at_ms, e.started_at_ms],
            )?;
            Ok(())
        })
    }

    fn experiment(&self, tenant: &str, id: &str) -> Result<Option<StoredExperiment>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{EXPERIMENT_COLUMNS} WHERE tenant_id = ?1 AND id = ?2"),
                params![tenant, id],
                experiment_row,
            )
            .optional()?)
        })
    }

    fn experiments(&self, tenant: &str) -> Result<Vec<StoredExperiment>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "{EXPERIMENT_COLUMNS} WHERE tenant_id = ?1 ORDER BY created_at DESC, id"
            ))?;
            let rows = st
                .query_map([tenant], experiment_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn expose(&self, tenant: &str, x: &Exposure) -> Result<String> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO experiment_exposures (tenant_id, experiment_id, unit, customer, profile_id, arm, first_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant_id, experiment_id, unit, customer) DO UPDATE SET profile_id = COALESCE(experiment_exposures.profile_id, excluded.profile_id)",
                params![tenant, x.experiment_id, x.unit, x.customer, x.profile_id, x.arm, x.first_at_ms],
            )?;
            Ok(tx.query_row(
                "SELECT arm FROM experiment_exposures WHERE tenant_id = ?1 AND experiment_id = ?2 AND unit = ?3 AND customer = ?4",
                params![tenant, x.experiment_id, x.unit, x.customer],
                |r| r.get(0),
            )?)
        })
    }

    fn exposures(&self, tenant: &str, experiment: &str) -> Result<Vec<Exposure>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT experiment_id, unit, customer, profile_id, arm, first_at FROM experiment_exposures WHERE tenant_id = ?1 AND experiment_id = ?2 ORDER BY first_at, unit, customer",
            )?;
            let rows = st
                .query_map(params![tenant, experiment], |r| {
                    Ok(Exposure { experiment_id: r.get(0)?, unit: r.get(1)?, customer: r.get(2)?, profile_id: r.get(3)?, arm: r.get(4)?, first_at_ms: r.get(5)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn save_document(&self, tenant: &str, kind: &str, body: &str, actor: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tenant_documents (tenant_id, kind, body, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                params![tenant, kind, body, actor, now_ms()],
            )?;
            Ok(())
        })
    }

    fn document(&self, tenant: &str, kind: &str) -> Result<Option<TenantDocument>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT body, updated_by, updated_at FROM tenant_documents WHERE tenant_id = ?1 AND kind = ?2",
                params![tenant, kind],
                |r| Ok(TenantDocument { body: r.get(0)?, updated_by: r.get(1)?, updated_at_ms: r.get(2)? }),
            )
            .optional()?)
        })
    }

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

    fn customer_holdings(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Option<(crate::erase::Held, crate::erase::Counts)>> {
        self.rolled_back(|tx| crate::erase::collect(&mut SqliteSql(tx), tenant, profile_id))
    }

    fn erase_customer(
        &self,
        tenant: &str,
        profile_id: &str,
        erasure_id: &str,
        actor: &str,
    ) -> Result<Option<crate::erase::Counts>> {
        let now = now_ms();
        let out = self.write(|tx| {
            let mut db = SqliteSql(tx);
            let Some(counts) =
                crate::erase::erase(&mut db, tenant, profile_id, erasure_id, actor, now)?
            else {
                return Ok(None);
            };
            let body = serde_json::json!({"erasure_id": erasure_id, "removed": counts}).to_string();
            sqlite_chain(
                tx,
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
        })?;
        if out.is_some() {
            // deleted rows were zeroed in their pages (secure_delete); the WAL still holds the
            // pages as they were before, so it is checkpointed and cut to nothing
            self.truncate_wal();
        }
        Ok(out)
    }

    fn add_consent(
        &self,
        tenant: &str,
        profile_id: &str,
        c: &cxm_domain::consent::ConsentRecord,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO consents (tenant_id, profile_id, purpose, channel, status, source, actor, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![tenant, profile_id, c.purpose, c.channel, c.status.as_str(), c.source, c.actor, c.at_ms],
            )?;
            Ok(())
        })
    }

    fn consents(
        &self,
        tenant: &str,
        profile_id: &str,
    ) -> Result<Vec<cxm_domain::consent::ConsentRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT purpose, channel, status, source, actor, at FROM consents WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY id DESC")?;
            let rows = st
                .query_map(params![tenant, profile_id], |r| {
                    let status: String = r.get(2)?;
                    Ok(cxm_domain::consent::ConsentRecord {
                        purpose: r.get(0)?,
                        channel: r.get(1)?,
                        status: cxm_domain::consent::ConsentStatus::parse(&status).unwrap_or(cxm_domain::consent::ConsentStatus::Denied),
                        source: r.get(3)?,
                        actor: r.get(4)?,
                        at_ms: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn retention(&self, tenant: &str) -> Result<std::collections::BTreeMap<String, i64>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT data_class, days FROM retention WHERE tenant_id = ?1")?;
            let rows = st
                .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
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
        self.write(|tx| {
            match days {
                Some(d) => tx.execute(
                    "INSERT INTO retention (tenant_id, data_class, days, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant_id, data_class) DO UPDATE SET days = excluded.days, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                    params![tenant, class, d, actor, now],
                )?,
                None => tx.execute("DELETE FROM retention WHERE tenant_id = ?1 AND data_class = ?2", params![tenant, class])?,
            };
            let body = serde_json::json!({"class": class, "days": days}).to_string();
            sqlite_chain(tx, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "retention.set".into(), subject: format!("retention:{class}"), body }], now)?;
            Ok(())
        })
    }

    fn purge(&self, tenant: &str, now_ms: i64) -> Result<Purged> {
        let periods = crate::effective_retention(self.retention(tenant)?);
        let cutoff = |class: &str| periods.get(class).map(|d| now_ms - d * 86_400_000);
        self.write(|tx| {
            let mut out = Purged::default();
            if let Some(c) = cutoff("events") {
                out.events = tx.execute("DELETE FROM events WHERE tenant_id = ?1 AND ts < ?2", params![tenant, c])? as u64;
                if out.events > 0 {
                    tx.execute("DELETE FROM event_blocks WHERE tenant_id = ?1", [tenant])?;
                }
            }
            if let Some(c) = cutoff("feedback_text") {
                out.feedback_texts = tx.execute(
                    "UPDATE feedback SET text_value = NULL WHERE tenant_id = ?1 AND collected_at < ?2 AND text_value IS NOT NULL",
                    params![tenant, c],
                )? as u64;
            }
            if let Some(c) = cutoff("quarantine") {
                out.quarantined = tx.execute("DELETE FROM quarantine WHERE tenant_id = ?1 AND received_at < ?2", params![tenant, c])? as u64;
                tx.execute("DELETE FROM quarantine_days WHERE tenant_id = ?1 AND day < ?2", params![tenant, crate::day_of(c)])?;
            }
            if let Some(c) = cutoff("transcripts") {
                out.transcripts = tx.execute(
                    "UPDATE events SET payload = json_remove(payload, '$.properties.transcript', '$.properties.message', '$.properties.text')
                     WHERE tenant_id = ?1 AND category = 'conversation' AND ts < ?2
                       AND (json_extract(payload, '$.properties.transcript') IS NOT NULL OR json_extract(payload, '$.properties.message') IS NOT NULL
                            OR json_extract(payload, '$.properties.text') IS NOT NULL)",
                    params![tenant, c],
                )? as u64;
            }
            Ok(out)
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

    fn add_signing_key(&self, tenant: &str, k: &SigningKeyRow, actor: &str) -> Result<()> {
        let now = now_ms();
        self.write(|tx| {
            tx.execute("UPDATE signing_keys SET retired_at = ?2 WHERE tenant_id = ?1 AND retired_at IS NULL", params![tenant, now])?;
            tx.execute(
                "INSERT INTO signing_keys (tenant_id, kid, public_key, secret_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, k.kid, k.public_key, self.key.seal(sealed::SIGNING_KEY, &k.secret_key), k.created_at_ms],
            )?;
            let body = serde_json::json!({"kid": k.kid, "public_key": k.public_key}).to_string();
            sqlite_chain(tx, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "signing_key.added".into(), subject: format!("key:{}", k.kid), body }], now)?;
            Ok(())
        })
    }

    fn signing_keys(&self, tenant: &str) -> Result<Vec<SigningKeyRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT kid, public_key, secret_key, created_at, retired_at, revoked_at, revoke_reason FROM signing_keys WHERE tenant_id = ?1 ORDER BY created_at DESC, kid")?;
            let rows = st
                .query_map([tenant], |r| {
                    Ok(SigningKeyRow { kid: r.get(0)?, public_key: r.get(1)?, secret_key: r.get(2)?, created_at_ms: r.get(3)?, retired_at_ms: r.get(4)?, revoked_at_ms: r.get(5)?, revoke_reason: r.get(6)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|mut k| {
                    k.secret_key = self.key.open(sealed::SIGNING_KEY, &k.secret_key)?;
                    Ok(k)
                })
                .collect()
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
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE signing_keys SET revoked_at = ?3, revoke_reason = ?4, retired_at = COALESCE(retired_at, ?3) WHERE tenant_id = ?1 AND kid = ?2 AND revoked_at IS NULL",
                params![tenant, kid, now, reason],
            )?;
            if n > 0 {
                let body = serde_json::json!({"kid": kid, "reason": reason}).to_string();
                sqlite_chain(tx, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "signing_key.revoked".into(), subject: format!("key:{kid}"), body }], now)?;
            }
            Ok(n > 0)
        })
    }

    fn save_signed_message(&self, tenant: &str, m: &SignedMessage, actor: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO signed_messages (tenant_id, id, kid, sender, sender_kind, customer, channel, sha256, disclosure, jws, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![tenant, m.id, m.kid, m.sender, m.sender_kind, m.customer, m.channel, m.sha256, m.disclosure, m.jws, m.created_at_ms],
            )?;
            let body = serde_json::json!({"id": m.id, "kid": m.kid, "sender": m.sender, "sha256": m.sha256, "disclosure_shown": m.disclosure}).to_string();
            sqlite_chain(tx, tenant, vec![cxm_domain::audit::NewAuditEntry { actor: actor.into(), kind: "message.signed".into(), subject: m.id.clone(), body }], m.created_at_ms)?;
            Ok(())
        })
    }

    fn signed_message(&self, tenant: &str, id: &str) -> Result<Option<SignedMessage>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, kid, sender, sender_kind, customer, channel, sha256, disclosure, jws, created_at FROM signed_messages WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
                |r| Ok(SignedMessage { id: r.get(0)?, kid: r.get(1)?, sender: r.get(2)?, sender_kind: r.get(3)?, customer: r.get(4)?, channel: r.get(5)?, sha256: r.get(6)?, disclosure: r.get(7)?, jws: r.get(8)?, created_at_ms: r.get(9)? }),
            )
            .optional()?)
        })
    }

    fn content_key(&self, tenant: &str) -> Result<Option<(String, String)>> {
        self.read(|c| {
            c.query_row(
                "SELECT cert_chain_pem, key_pem FROM content_keys WHERE tenant_id = ?1",
                [tenant],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?
            .map(|(chain, key)| {
                Ok::<_, StoreError>((chain, self.key.open(sealed::CONTENT_KEY, &key)?))
            })
            .transpose()
        })
    }

    fn save_content_key(&self, tenant: &str, chain_pem: &str, key_pem: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("INSERT OR IGNORE INTO content_keys (tenant_id, cert_chain_pem, key_pem, created_at) VALUES (?1, ?2, ?3, ?4)", params![tenant, chain_pem, self.key.seal(sealed::CONTENT_KEY, key_pem), now_ms()])?;
            Ok(())
        })
    }

    fn save_checkpoint(&self, tenant: &str, cp: &AuditCheckpoint) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO audit_checkpoints (tenant_id, seq, hash, kid, signature, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, cp.seq, cp.hash, cp.kid, cp.signature, cp.at_ms],
            )?;
            Ok(())
        })
    }

    fn checkpoints(&self, tenant: &str) -> Result<Vec<AuditCheckpoint>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT seq, hash, kid, signature, at FROM audit_checkpoints WHERE tenant_id = ?1 ORDER BY seq")?;
            let rows = st
                .query_map([tenant], |r| Ok(AuditCheckpoint { seq: r.get(0)?, hash: r.get(1)?, kid: r.get(2)?, signature: r.get(3)?, at_ms: r.get(4)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn recent_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecentAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT field_type, score, sentiment, cues, collected_at FROM feedback WHERE tenant_id = ?1 AND profile_id = ?2 AND collected_at >= ?3 ORDER BY collected_at DESC LIMIT ?4",
            )?;
            let rows = st
                .query_map(params![tenant, profile_id, since_ms, limit], |r| {
                    let cues: Option<String> = r.get(3)?;
                    Ok(RecentAnswer { field_type: r.get(0)?, score: r.get(1)?, sentiment: r.get(2)?, cues: cues.and_then(|c| serde_json::from_str(&c).ok()), at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn append_audit(
        &self,
        tenant: &str,
        e: &cxm_domain::audit::NewAuditEntry,
    ) -> Result<cxm_domain::audit::AuditEntry> {
        let now = now_ms();
        self.write(|tx| {
            let mut out = sqlite_chain(tx, tenant, vec![e.clone()], now)?;
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
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT seq, at, actor, kind, subject, body, prev_hash, hash, body_hash FROM audit_log WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
            let rows = st
                .query_map(params![tenant, after_seq, limit], |r| {
                    Ok(cxm_domain::audit::AuditEntry { seq: r.get(0)?, at_ms: r.get(1)?, actor: r.get(2)?, kind: r.get(3)?, subject: r.get(4)?, body: r.get(5)?, prev_hash: r.get(6)?, hash: r.get(7)?, body_hash: r.get(8)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn add_webhook(&self, tenant: &str, e: &WebhookEndpoint) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret, events, active, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.id, tenant, e.url, self.key.seal(sealed::WEBHOOK_SECRET, &e.secret), serde_json::to_string(&e.events)?, e.active, e.created_at_ms],
            )?;
            Ok(())
        })
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookEndpoint>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = ?1 ORDER BY created_at, id")?;
            let rows = st.query_map([tenant], endpoint_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|e| sealed::open_endpoint(&self.key, e)).collect()
        })
    }

    fn webhook(&self, tenant: &str, id: &str) -> Result<Option<WebhookEndpoint>> {
        self.read(|c| {
            c.query_row("SELECT id, url, secret, events, active, created_at FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2", params![tenant, id], endpoint_row)
                .optional()?
                .map(|e| sealed::open_endpoint(&self.key, e))
                .transpose()
        })
    }

    fn remove_webhook(&self, tenant: &str, id: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])?;
            // nothing more is sent to a removed endpoint; its log stays
            tx.execute("UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint removed' WHERE tenant_id = ?1 AND endpoint_id = ?2 AND status = 'pending'", params![tenant, id])?;
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
        self.write(|tx| {
            let mut n = 0;
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, created_at, sealed)
                 VALUES (?8, ?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6, ?7)",
            )?;
            for e in endpoints.iter().filter(|e| e.active && e.wants(event_type)) {
                let msg = format!("msg_{}", uuid::Uuid::now_v7().simple());
                let sealed = secret.map(|v| self.key.seal(sealed::DELIVERY_SECRET, &v.to_string()));
                with_public_id(tx, "webhook_deliveries", |id| {
                    Ok(ins.execute(params![tenant, e.id, msg, event_type, body, now_ms, sealed, id])?)
                })?;
                n += 1;
            }
            Ok(n)
        })
    }

    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookDelivery>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, tenant_id, sealed
                 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![now_ms, limit], |r| Ok((delivery_row(r)?, r.get::<_, Option<String>>(13)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|(d, sealed)| sealed::open_delivery(&self.key, d, sealed)).collect()
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
        self.write(|tx| {
            tx.execute(
                "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3, last_status = ?4, last_error = ?5,
                   delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END,
                   sealed = CASE WHEN ?2 = 'pending' THEN sealed ELSE NULL END WHERE id = ?1",
                params![id, status, next_attempt_at_ms, code, error, now_ms],
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
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("{DELIVERY_COLUMNS} WHERE tenant_id = ?1 AND endpoint_id = ?2 ORDER BY id DESC LIMIT ?3"))?;
            let rows = st.query_map(params![tenant, endpoint_id, limit], delivery_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn account_profiles(&self, tenant: &str, group_id: &str, limit: u32) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT COALESCE(p.merged_into, pa.profile_id) FROM profile_accounts pa LEFT JOIN profiles p ON p.tenant_id = pa.tenant_id AND p.id = pa.profile_id
                 WHERE pa.tenant_id = ?1 AND pa.group_id = ?2 ORDER BY 1 LIMIT ?3",
            )?;
            let rows = st.query_map(params![tenant, group_id, limit], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn record_journey_check(
        &self,
        tenant: &str,
        name: &str,
        passed: bool,
        detail: &Value,
    ) -> Result<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO journey_checks (tenant_id, name, passed, detail, ran_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, name, passed, detail.to_string(), now_ms()],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn journey_check_runs(
        &self,
        tenant: &str,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JourneyCheckRun>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, name, passed, detail, ran_at FROM journey_checks WHERE tenant_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, name, limit], |r| {
                    let d: String = r.get(3)?;
                    Ok(JourneyCheckRun { id: r.get(0)?, name: r.get(1)?, passed: r.get(2)?, detail: serde_json::from_str(&d).unwrap_or(Value::Null), ran_at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn trigger_cursor(&self, tenant: &str) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT seq FROM survey_trigger_cursors WHERE tenant_id = ?1",
                params![tenant],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn set_trigger_cursor(&self, tenant: &str, seq: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("INSERT INTO survey_trigger_cursors (tenant_id, seq) VALUES (?1, ?2) ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq", params![tenant, seq])?;
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
        let names = serde_json::to_string(names)?;
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, name, channel, user_id, anonymous_id, message_id, ts FROM events
                 WHERE seq > ?1 AND seq <= ?2 AND tenant_id = ?3 AND name IN (SELECT value FROM json_each(?4)) ORDER BY seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, names, limit], |r| {
                    Ok(TriggerEvent { seq: r.get(0)?, name: r.get(1)?, channel: r.get(2)?, user_id: r.get(3)?, anonymous_id: r.get(4)?, message_id: r.get(5)?, ts_ms: r.get(6)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn create_invitation(
        &self,
        tenant: &str,
        inv: &Invitation,
        link: Option<(&str, &SurveyLink)>,
    ) -> Result<bool> {
        let now = now_ms();
        self.write(|tx| {
            let inserted = with_public_id(tx, "survey_invitations", |id| {
                Ok(tx.execute(
                    "INSERT OR IGNORE INTO survey_invitations (id, tenant_id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at)
                     VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![tenant, inv.survey_id, inv.version, inv.identifier, inv.channel, inv.trigger_event, inv.trigger_message_id, inv.status, inv.detail, inv.url, now, id],
                )?)
            })?;
            let n = usize::from(inserted.is_some());
            if n == 1 {
                if let Some((hash, l)) = link {
                    tx.execute(
                        "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![hash, l.tenant_id, l.survey_id, l.version, l.identifier, l.channel, now],
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR survey_id = ?3) ORDER BY id LIMIT ?4",
            )?;
            let rows = st.query_map(params![tenant, status, survey_id, limit], invitation)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn queue_mail(&self, tenant: &str, mails: &[OutboundMail]) -> Result<usize> {
        let now = now_ms();
        self.write(|tx| {
            let mut put = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbound_mail (tenant_id, kind, reference, profile_id, to_address, subject, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut n = 0;
            for m in mails {
                n += put.execute(params![tenant, m.kind, m.reference, m.profile_id, m.to, m.subject, m.body, now])?;
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, kind, reference, profile_id, to_address, subject, body, status, detail, created_at FROM outbound_mail
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR reference = ?4)
                 ORDER BY id LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![tenant, status, kind, reference, limit], |r| {
                    Ok(OutboundMail { id: r.get(0)?, kind: r.get(1)?, reference: r.get(2)?, profile_id: r.get(3)?, to: r.get(4)?, subject: r.get(5)?, body: r.get(6)?, status: r.get(7)?, detail: r.get(8)?, created_at_ms: r.get(9)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn mark_mail(&self, tenant: &str, id: i64, status: &str, detail: &str) -> Result<()> {
        let now = now_ms();
        self.write(|tx| {
            tx.execute(
                "UPDATE outbound_mail SET status = ?3, detail = ?4, sent_at = ?5 WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
                params![tenant, id, status, detail, now],
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
        self.write(|tx| {
            tx.execute(
                "UPDATE survey_invitations SET status = ?3, detail = ?4, delivered_at = CASE WHEN ?3 = 'delivered' THEN ?5 ELSE delivered_at END
                 WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
                params![tenant, id, status, detail, now],
            )?;
            Ok(tx
                .query_row(
                    "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id],
                    invitation,
                )
                .optional()?)
        })
    }

    fn invitation_counts(&self, tenant: &str) -> Result<Vec<(String, String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT survey_id, status, COUNT(*) FROM survey_invitations WHERE tenant_id = ?1 GROUP BY survey_id, status ORDER BY survey_id, status")?;
            let rows = st.query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn account_traits(&self, tenant: &str, group_id: &str) -> Result<Option<Value>> {
        self.read(|c| {
            let t: Option<String> = c
                .query_row(
                    "SELECT traits FROM accounts WHERE tenant_id = ?1 AND group_id = ?2",
                    params![tenant, group_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(t.map(|t| serde_json::from_str(&t)).transpose()?)
        })
    }

    fn themed_tenants(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT tenant_id FROM theme_models ORDER BY tenant_id")?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
    }

    fn nps_answers(&self, tenant: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT response_id, score FROM feedback WHERE tenant_id = ?1 AND field_type = 'nps' AND collected_at >= ?2 AND collected_at < ?3")?;
            let rows = st.query_map(params![tenant, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn save_survey(
        &self,
        tenant: &str,
        survey_id: &str,
        name: &str,
        definition: &str,
    ) -> Result<i64> {
        self.write(|tx| {
            let v: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM surveys WHERE tenant_id = ?1 AND survey_id = ?2", params![tenant, survey_id], |r| r.get(0))?;
            tx.execute("INSERT INTO surveys (tenant_id, survey_id, version, name, definition, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![tenant, survey_id, v, name, definition, now_ms()])?;
            Ok(v)
        })
    }

    fn survey(
        &self,
        tenant: &str,
        survey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<(i64, String)>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT version, definition FROM surveys WHERE tenant_id = ?1 AND survey_id = ?2 AND (?3 IS NULL OR version = ?3) ORDER BY version DESC LIMIT 1",
                params![tenant, survey_id, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    fn list_surveys(&self, tenant: &str) -> Result<Vec<SurveySummary>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT s.survey_id, s.version, s.name,
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.displayed_at IS NOT NULL),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.responded_at IS NOT NULL)
                 FROM surveys s WHERE s.tenant_id = ?1 AND s.version = (SELECT MAX(version) FROM surveys x WHERE x.tenant_id = s.tenant_id AND x.survey_id = s.survey_id)
                 ORDER BY s.survey_id",
            )?;
            let rows = st
                .query_map([tenant], |r| Ok(SurveySummary { survey_id: r.get(0)?, version: r.get(1)?, name: r.get(2)?, links: r.get(3)?, displays: r.get(4)?, responses: r.get(5)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn create_link(&self, token_hash: &str, l: &SurveyLink) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![token_hash, l.tenant_id, l.survey_id, l.version, l.identifier, l.channel, now_ms()],
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT created_at FROM survey_links WHERE tenant_id = ?1 AND identifier = ?2 AND (?3 IS NULL OR survey_id = ?3) AND created_at >= ?4 ORDER BY created_at DESC",
            )?;
            let rows = st.query_map(params![tenant, identifier, survey_id, since_ms], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
            Ok(rows)
        })
    }

    fn link(&self, token_hash: &str) -> Result<Option<SurveyLink>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT tenant_id, survey_id, version, identifier, channel, displayed_at, responded_at, follow_ups FROM survey_links WHERE token_hash = ?1",
                [token_hash],
                |r| Ok(SurveyLink { tenant_id: r.get(0)?, survey_id: r.get(1)?, version: r.get(2)?, identifier: r.get(3)?, channel: r.get(4)?, displayed_at_ms: r.get(5)?, responded_at_ms: r.get(6)?, follow_ups: r.get(7)? }),
            )
            .optional()?)
        })
    }

    fn mark_link(&self, token_hash: &str, event: LinkEvent) -> Result<()> {
        let sql = match event {
            LinkEvent::Displayed => "UPDATE survey_links SET displayed_at = COALESCE(displayed_at, ?2) WHERE token_hash = ?1",
            LinkEvent::Responded => "UPDATE survey_links SET responded_at = COALESCE(responded_at, ?2), displayed_at = COALESCE(displayed_at, ?2) WHERE token_hash = ?1",
            LinkEvent::FollowUpAnswered => "UPDATE survey_links SET follow_ups = follow_ups + 1 WHERE token_hash = ?1 AND ?2 IS NOT NULL",
        };
        self.write(|tx| {
            tx.execute(sql, params![token_hash, now_ms()])?;
            Ok(())
        })
    }

    fn quarantine(&self, tenant: &str, limit: u32) -> Result<Vec<QuarantineEntry>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id, code, detail, payload, received_at FROM quarantine WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2")?;
            let rows = st
                .query_map(params![tenant, limit], |r| {
                    let p: String = r.get(3)?;
                    Ok(QuarantineEntry { id: r.get(0)?, code: r.get(1)?, detail: r.get(2)?, payload: serde_json::from_str(&p).unwrap_or(Value::Null), received_at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn quarantine_days(&self, tenant: &str, since_day: &str) -> Result<Vec<QuarantineDay>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT day, events, rows_kept, bytes_kept FROM quarantine_days WHERE tenant_id = ?1 AND day >= ?2 ORDER BY day DESC")?;
            let rows = st
                .query_map(params![tenant, since_day], |r| Ok(QuarantineDay { day: r.get(0)?, events: r.get(1)?, rows_kept: r.get(2)?, bytes_kept: r.get(3)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn prune_dedup(&self, older_than_ms: i64) -> Result<u64> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let cutoff = (older_than_ms / 1000) as u32;
        let before = w.dedup.keys.len();
        w.dedup.keys.retain(|_, at| *at >= cutoff);
        Ok((before - w.dedup.keys.len()) as u64)
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
                    SELECT seq FROM events WHERE tenant_id = ?1 AND user_id IN (SELECT value FROM json_each(?2)) AND (ts, seq) < (?4, ?5)
                    UNION
                    SELECT seq FROM events WHERE tenant_id = ?1 AND anonymous_id IN (SELECT value FROM json_each(?3)) AND (ts, seq) < (?4, ?5))
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

    fn overview(&self, tenant: &str, days: u32, now: i64) -> Result<Overview> {
        let since = chrono::DateTime::from_timestamp_millis(now - i64::from(days) * 86_400_000)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        self.read(|c| {
            let total: i64 = c.query_row("SELECT COALESCE(SUM(events), 0) FROM ingest_daily WHERE tenant_id = ?1", [tenant], |r| r.get(0))?;
            let profiles: i64 = c.query_row("SELECT COUNT(*) FROM profiles WHERE tenant_id = ?1 AND merged_into IS NULL", [tenant], |r| r.get(0))?;
            let quarantined: i64 = c.query_row("SELECT COUNT(*) FROM quarantine WHERE tenant_id = ?1", [tenant], |r| r.get(0))?;
            let mut st = c.prepare("SELECT day, channel, events FROM ingest_daily WHERE tenant_id = ?1 AND day >= ?2 ORDER BY day, channel")?;
            let by_day_channel = st
                .query_map(params![tenant, since], |r| Ok(DayChannelCount { day: r.get(0)?, channel: r.get(1)?, events: r.get(2)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Overview { total_events: total, profiles, quarantined, by_day_channel })
        })
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

fn text_answer(r: &rusqlite::Row) -> rusqlite::Result<TextAnswer> {
    Ok(TextAnswer {
        response_id: r.get(0)?,
        text: r.get(1)?,
        sentiment: r.get(2)?,
        nps: r.get(3)?,
        collected_at_ms: r.get(4)?,
        id: r.get(5)?,
        account: r.get(6)?,
    })
}

fn invitation(r: &rusqlite::Row) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        id: r.get(0)?,
        survey_id: r.get(1)?,
        version: r.get(2)?,
        identifier: r.get(3)?,
        channel: r.get(4)?,
        trigger_event: r.get(5)?,
        trigger_message_id: r.get(6)?,
        status: r.get(7)?,
        detail: r.get(8)?,
        url: r.get(9)?,
        created_at_ms: r.get(10)?,
        delivered_at_ms: r.get(11)?,
    })
}

fn journey_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredJourney> {
    Ok(StoredJourney {
        journey_id: r.get(0)?,
        version: r.get(1)?,
        name: r.get(2)?,
        owner: r.get(3)?,
        definition: r.get(4)?,
        created_by: r.get(5)?,
        created_at_ms: r.get(6)?,
    })
}
fn health_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountHealthRow> {
    let readings: String = r.get(4)?;
    Ok(AccountHealthRow {
        group_id: r.get(0)?,
        name: r.get(1)?,
        score: r.get(2)?,
        band: r.get(3)?,
        readings: serde_json::from_str(&readings).unwrap_or(Value::Null),
        arr: r.get(5)?,
        computed_at_ms: r.get(6)?,
    })
}

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let detail: String = r.get(6)?;
    Ok(Alert {
        id: r.get(0)?,
        group_id: r.get(1)?,
        kind: r.get(2)?,
        signal: r.get(3)?,
        status: r.get(4)?,
        title: r.get(5)?,
        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
        arr: r.get(7)?,
        created_at_ms: r.get(8)?,
        updated_at_ms: r.get(9)?,
        updated_by: r.get(10)?,
        owner: r.get(11)?,
    })
}
const TICKET_COLUMNS: &str = "SELECT id, title, description, owner, severity, state, source, check_def, impact, sla_hours, due_at, verdict, created_by, created_at, updated_at, closed_at FROM tickets";

fn ticket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Ticket> {
    let json = |i: usize| -> rusqlite::Result<Value> {
        Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or(Value::Null))
    };
    Ok(Ticket {
        id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        owner: r.get(3)?,
        severity: r.get(4)?,
        state: r.get(5)?,
        source: json(6)?,
        check: json(7)?,
        impact: json(8)?,
        sla_hours: r.get(9)?,
        due_at_ms: r.get(10)?,
        verdict: r
            .get::<_, Option<String>>(11)?
            .and_then(|v| serde_json::from_str(&v).ok()),
        created_by: r.get(12)?,
        created_at_ms: r.get(13)?,
        updated_at_ms: r.get(14)?,
        closed_at_ms: r.get(15)?,
    })
}
const DELIVERY_COLUMNS: &str = "SELECT id, endpoint_id, message_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, tenant_id FROM webhook_deliveries";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    let payload: String = r.get(4)?;
    Ok(WebhookDelivery {
        id: r.get(0)?,
        endpoint_id: r.get(1)?,
        message_id: r.get(2)?,
        event_type: r.get(3)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        status: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_at_ms: r.get(7)?,
        last_status: r.get(8)?,
        last_error: r.get(9)?,
        created_at_ms: r.get(10)?,
        delivered_at_ms: r.get(11)?,
        tenant_id: r.get(12)?,
        secret: None,
    })
}

fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookEndpoint> {
    let events: String = r.get(3)?;
    Ok(WebhookEndpoint {
        id: r.get(0)?,
        url: r.get(1)?,
        secret: r.get(2)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        active: r.get(4)?,
        created_at_ms: r.get(5)?,
    })
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

const DECISION_COLUMNS: &str = "id, agent, action, customer, resource, request, facts, used, policy_version, outcome, level, policy_ids, reasons, created_at, audit_seq, review_status, review_due_at, reviewed_by, review_reason, reviewed_at, resolved, intent, reported_at";

fn decision_row(r: &rusqlite::Row) -> rusqlite::Result<StoredDecision> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
    };
    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or_default())
    };
    Ok(StoredDecision {
        record: cxm_domain::decision::DecisionRecord {
            id: r.get(0)?,
            agent: r.get(1)?,
            action: r.get(2)?,
            customer: r.get(3)?,
            resource: r.get(4)?,
            request: json(5)?,
            facts: json(6)?,
            used: json(7)?,
            policy_version: r.get(8)?,
            outcome: r.get(9)?,
            level: r.get(10)?,
            policy_ids: list(11)?,
            reasons: list(12)?,
            at_ms: r.get(13)?,
        },
        audit_seq: r.get(14)?,
        review_status: r.get(15)?,
        review_due_at_ms: r.get(16)?,
        reviewed_by: r.get(17)?,
        review_reason: r.get(18)?,
        reviewed_at_ms: r.get(19)?,
        resolved: r.get::<_, Option<i64>>(20)?.map(|x| x != 0),
        intent: r.get(21)?,
        reported_at_ms: r.get(22)?,
    })
}

const EXPERIMENT_COLUMNS: &str = "SELECT id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at FROM experiments";

fn experiment_row(r: &rusqlite::Row) -> rusqlite::Result<StoredExperiment> {
    Ok(StoredExperiment {
        id: r.get(0)?,
        definition: r.get(1)?,
        status: r.get(2)?,
        rollout_percent: r.get(3)?,
        shipped_arm: r.get(4)?,
        history: r.get(5)?,
        created_by: r.get(6)?,
        created_at_ms: r.get(7)?,
        updated_at_ms: r.get(8)?,
        started_at_ms: r.get(9)?,
    })
}

fn agent_row(r: &rusqlite::Row) -> rusqlite::Result<Agent> {
    Ok(Agent {
        name: r.get(0)?,
        kind: r.get(1)?,
        description: r.get(2)?,
        disclosure: r.get(3)?,
        created_by: r.get(4)?,
        created_at_ms: r.get(5)?,
        disabled_at_ms: r.get(6)?,
    })
}

fn policy_row(r: &rusqlite::Row) -> rusqlite::Result<PolicySetRow> {
    Ok(PolicySetRow {
        version: r.get(0)?,
        text: r.get(1)?,
        note: r.get(2)?,
        created_by: r.get(3)?,
        created_at_ms: r.get(4)?,
        activated_at_ms: r.get(5)?,
    })
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

const STEP_UP_COLUMNS: &str = "id, customer, profile_id, channel, sent_to, code_hash, attempts_left, expires_at, verified_at, created_by, created_at";

fn step_up_row(r: &rusqlite::Row) -> rusqlite::Result<StepUp> {
    Ok(StepUp {
        id: r.get(0)?,
        customer: r.get(1)?,
        profile_id: r.get(2)?,
        channel: r.get(3)?,
        sent_to: r.get(4)?,
        code_hash: r.get(5)?,
        attempts_left: r.get(6)?,
        expires_at_ms: r.get(7)?,
        verified_at_ms: r.get(8)?,
        created_by: r.get(9)?,
        created_at_ms: r.get(10)?,
    })
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
