//! Bulk loading through the same normalisation and append path as HTTP ingest: `cxm import`,
//! `cxm generate` and `cxm demo` all use it, so imported history behaves like live traffic.

use cxm_domain::{Clock, IngestOptions};
use cxm_store::{AppendOutcome, AppendRequest, Store};
use serde_json::Value;

pub const CHUNK: usize = 5000;

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct LoadStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

impl LoadStats {
    fn add(&mut self, o: AppendOutcome) {
        self.accepted += u64::from(o.accepted);
        self.duplicates += u64::from(o.duplicates);
        self.quarantined += u64::from(o.quarantined);
    }
}

/// Appends messages in chunks; `source` scopes deduplication like a write key does.
pub fn load(
    store: &dyn Store,
    tenant: &str,
    source: &str,
    messages: impl Iterator<Item = Value>,
    trust_timestamps: bool,
) -> anyhow::Result<LoadStats> {
    let opts = IngestOptions {
        trust_timestamps,
        ..Default::default()
    };
    let mut stats = LoadStats::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let flush = |chunk: &mut Vec<Value>, stats: &mut LoadStats| -> anyhow::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let clock = Clock {
            received_at: chrono::Utc::now(),
            batch_sent_at: None,
        };
        let mut req = AppendRequest {
            tenant_id: tenant.into(),
            write_key_id: source.into(),
            events: vec![],
            // operators' own files: every rejected row is kept, under the store's daily caps
            quarantined: cxm_domain::Quarantine::unbounded(),
        };
        for m in chunk.drain(..) {
            let len = serde_json::to_string(&m).map(|s| s.len()).unwrap_or(0);
            match cxm_domain::normalize(&m, len, &clock, &opts) {
                Ok(e) => req.events.push(e),
                Err(r) => req.quarantined.push(m, len, r),
            }
        }
        for o in store.append(&[req])? {
            stats.add(o);
        }
        Ok(())
    };
    for m in messages {
        chunk.push(m);
        if chunk.len() >= CHUNK {
            flush(&mut chunk, &mut stats)?;
        }
    }
    flush(&mut chunk, &mut stats)?;
    // a load ends its burst: what ingest puts off while requests wait (SQLite's index of the
    // log's tail by customer) is done now, so the first reads after it do not pay for it
    store.upkeep_while_idle()?;
    Ok(stats)
}
