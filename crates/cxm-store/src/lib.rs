//! The store of cxm: one [`Store`] trait, implemented for SQLite (the embedded default) and
//! PostgreSQL (scale-out). This crate is the only place with SQL.
//!
//! Store methods are blocking; async callers go through [`StoreHandle`], which runs them on
//! the blocking pool. Ingest goes through [`committer::Committer`], which gathers concurrent
//! requests into one transaction (group commit) and answers each only after the commit.

pub mod columns;
pub mod committer;
pub mod decision_log;
mod erase;
mod experiments;
mod feedback;
pub use erase::{Counts as ErasureCounts, Held as ErasureHeld};
mod graph;
mod pg;
pub mod sealed;
mod sql;
mod sqlite;
mod surveys;
mod tenants;
pub mod testing;
mod traits;
pub mod types;

use std::sync::Arc;

pub use graph::StoreSettings;
pub use pg::ceiling::{pg_copy_ceiling, CopyCeiling};
pub use pg::PgStore;
pub use sqlite::SqliteStore;
pub use traits::*;
pub use types::*;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if f.code == rusqlite::ErrorCode::ConstraintViolation {
                return StoreError::Conflict(e.to_string());
            }
        }
        StoreError::Backend(e.to_string())
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        StoreError::Backend(format!("unexpected value in store: {e}"))
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            if db.code().code().starts_with("23") {
                return StoreError::Conflict(db.message().to_string());
            }
            // "db error" alone says nothing; the server's message says what went wrong
            return StoreError::Backend(format!("{} ({})", db.message(), db.code().code()));
        }
        StoreError::Backend(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("corrupt json in store: {e}"))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens the store a url names: `postgres://...` or a SQLite data directory.
pub fn open(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
    settings: StoreSettings,
) -> Result<Arc<dyn Store>> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PgStore::connect(url, settings)?))
        }
        Some(url) => Err(StoreError::Invalid(format!(
            "database url must start with postgres:// (got {:?}); leave it unset for the embedded store",
            url.split(':').next().unwrap_or("")
        ))),
        None => Ok(Arc::new(SqliteStore::open_dir(data_dir, settings)?)),
    }
}

/// Async access to a blocking [`Store`].
#[derive(Clone)]
pub struct StoreHandle(pub Arc<dyn Store>);

impl StoreHandle {
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    {
        let s = self.0.clone();
        tokio::task::spawn_blocking(move || f(s.as_ref()))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Gives new audit entries their places after `head` (the tenant's last seq and hash).
pub(crate) fn chain_after(
    head: Option<(i64, String)>,
    entries: Vec<cxm_domain::audit::NewAuditEntry>,
    at_ms: i64,
) -> Vec<cxm_domain::audit::AuditEntry> {
    let (mut seq, mut prev) = head.unwrap_or((0, cxm_domain::audit::GENESIS.to_string()));
    entries
        .into_iter()
        .map(|e| {
            seq += 1;
            let entry = cxm_domain::audit::AuditEntry::new(&prev, seq, at_ms, e);
            prev = entry.hash.clone();
            entry
        })
        .collect()
}

/// A tenant's retention periods with the defaults filled in for classes it never set: what
/// the purge applies.
pub fn effective_retention(
    mut set: std::collections::BTreeMap<String, i64>,
) -> std::collections::BTreeMap<String, i64> {
    for (class, days) in DEFAULT_RETENTION {
        set.entry(class.to_string()).or_insert(*days);
    }
    set
}

/// The UTC day of a moment, as YYYY-MM-DD.
pub(crate) fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// A random secret for a tenant's profile ids.
pub(crate) fn new_salt() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// An id for a new row whose id people see (tickets, alerts, invitations, deliveries):
/// milliseconds since 2024 and twelve random bits, raised past the last one this process
/// gave so rows made in one millisecond keep their order. It orders by creation as a counter
/// did but says nothing about how many rows any tenant has; it stays below 2^53, so it is
/// exact as a JSON number. Servers sharing a database can clash, so inserts retry (the
/// backends check whether the id was taken).
pub(crate) fn public_id() -> i64 {
    use rand::Rng;
    use std::sync::atomic::{AtomicI64, Ordering};
    const EPOCH_2024_MS: i64 = 1_704_067_200_000;
    static LAST: AtomicI64 = AtomicI64::new(0);
    let ms = (now_ms() - EPOCH_2024_MS).max(0) & ((1 << 41) - 1);
    let candidate = (ms << 12) | rand::rngs::OsRng.gen_range(0..4096);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = candidate.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// How many times an insert tries fresh public ids before giving up.
pub(crate) const PUBLIC_ID_TRIES: usize = 8;
