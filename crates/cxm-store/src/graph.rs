//! The ingest and rebuild logic shared by every backend. Backends implement [`GraphTx`] (the
//! SQL) over an open transaction; this module decides what to write, using the pure rules in
//! `cxm_domain::identity`. Keeping one copy is what makes both backends behave identically.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{TimeZone, Utc};
use cxm_domain::identity::{self, ProfileView, Target};
use cxm_domain::{Clock, EventType, Identifier, IdentityRules, IngestOptions, NormalizedEvent};
use serde_json::{Map, Value};

use crate::{AppendOutcome, AppendRequest, RebuildStats, Result};

/// Store-level settings chosen at start.
#[derive(Debug, Clone, Default)]
pub struct StoreSettings {
    pub identity: IdentityRules,
}

/// A row of the event log as replayed by rebuild.
pub(crate) struct LogRow {
    pub seq: i64,
    pub ts_ms: i64,
    pub received_ms: i64,
    pub message_id: String,
    pub payload: String,
}

/// The writes one transaction can do. Every method is scoped to a tenant.
pub(crate) trait GraphTx {
    /// Records a message id; false when it was seen before (a duplicate).
    fn dedup_insert(
        &mut self,
        tenant: &str,
        key_id: &str,
        message_id: &str,
        received_ms: i64,
    ) -> Result<bool>;
    fn insert_event(
        &mut self,
        tenant: &str,
        key_id: &str,
        ev: &NormalizedEvent,
        payload: &str,
    ) -> Result<i64>;
    fn insert_quarantine(
        &mut self,
        tenant: &str,
        key_id: &str,
        payload: &str,
        code: &str,
        detail: &str,
        received_ms: i64,
    ) -> Result<()>;
    fn blocked(&mut self, tenant: &str) -> Result<BTreeSet<Identifier>>;
    fn owner(&mut self, tenant: &str, id: &Identifier) -> Result<Option<String>>;
    fn profile_view(&mut self, tenant: &str, profile: &str) -> Result<ProfileView>;
    fn create_profile(&mut self, tenant: &str, profile: &str, ts_ms: i64) -> Result<()>;
    fn attach(&mut self, tenant: &str, id: &Identifier, profile: &str, seq: i64) -> Result<()>;
    /// Moves `from`'s identifiers, traits and counts onto `into` and marks `from` merged.
    fn merge_profiles(&mut self, tenant: &str, from: &str, into: &str) -> Result<()>;
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<()>;
    /// Updates first/last seen and the event count, and merges traits (newer values win).
    fn touch_profile(
        &mut self,
        tenant: &str,
        profile: &str,
        ts_ms: i64,
        traits: &Map<String, Value>,
    ) -> Result<()>;
    fn link_account(
        &mut self,
        tenant: &str,
        profile: &str,
        group_id: &str,
        traits: Option<&Value>,
    ) -> Result<()>;
    fn bump_daily(&mut self, tenant: &str, day: &str, channel: &str, n: i64) -> Result<()>;
    /// Deletes every projection of the tenant (not the log, quarantine, blocks or admin ledger rows).
    fn clear_projections(&mut self, tenant: &str) -> Result<()>;
    fn log_after(&mut self, tenant: &str, after_seq: i64, limit: u32) -> Result<Vec<LogRow>>;
}

pub(crate) fn merge_traits(into: &mut Map<String, Value>, newer: &Map<String, Value>) {
    for (k, v) in newer {
        if !v.is_null() {
            into.insert(k.clone(), v.clone());
        }
    }
}

fn day_of(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// Applies one appended event to the identity projection.
fn apply_event(
    tx: &mut impl GraphTx,
    tenant: &str,
    seq: i64,
    ev: &NormalizedEvent,
    rules: &IdentityRules,
    blocked: &BTreeSet<Identifier>,
) -> Result<()> {
    let mut owners = BTreeMap::new();
    let mut profiles = BTreeMap::new();
    for id in &ev.identifiers {
        if blocked.contains(id) {
            continue;
        }
        if let Some(p) = tx.owner(tenant, id)? {
            if !profiles.contains_key(&p) {
                let view = tx.profile_view(tenant, &p)?;
                profiles.insert(p.clone(), view);
            }
            owners.insert(id.clone(), p);
        }
    }
    let res = identity::resolve(&ev.identifiers, &owners, &profiles, blocked, rules);
    let ts = ev.timestamp.timestamp_millis();
    let at = ev.received_at.timestamp_millis();
    let target = match res.target {
        Target::Existing(p) => p,
        Target::New => {
            if res.attach.is_empty() {
                // every identifier was blocked: the event stays in the log, tied to no one
                return Ok(());
            }
            // deterministic ids make a rebuild reproduce the incremental projection exactly
            let p = format!("p_{seq}");
            tx.create_profile(tenant, &p, ts)?;
            p
        }
    };
    for m in &res.merges {
        tx.merge_profiles(tenant, &m.from, &target)?;
        tx.ledger(
            tenant,
            "merge",
            &target,
            Some(&m.from),
            Some(&m.via),
            Some(seq),
            Some(&ev.message_id),
            None,
            at,
        )?;
    }
    for a in &res.attach {
        tx.attach(tenant, a, &target, seq)?;
    }
    for d in &res.dropped {
        tx.ledger(
            tenant,
            "drop",
            &target,
            None,
            Some(&d.identifier),
            Some(seq),
            Some(&ev.message_id),
            Some(d.reason),
            at,
        )?;
    }
    tx.touch_profile(tenant, &target, ts, &ev.traits)?;
    if let Some(g) = &ev.group_id {
        let traits = (ev.event_type == EventType::Group)
            .then(|| ev.payload.get("traits"))
            .flatten();
        tx.link_account(tenant, &target, g, traits)?;
    }
    Ok(())
}

/// The body of `Store::append` for every backend, run inside one transaction.
pub(crate) fn append_all(
    tx: &mut impl GraphTx,
    requests: &[AppendRequest],
    settings: &super::StoreSettings,
) -> Result<Vec<AppendOutcome>> {
    let mut blocked_by_tenant: HashMap<String, BTreeSet<Identifier>> = HashMap::new();
    let mut daily: BTreeMap<(String, String, &'static str), i64> = BTreeMap::new();
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        let tenant = req.tenant_id.as_str();
        if !blocked_by_tenant.contains_key(tenant) {
            let b = tx.blocked(tenant)?;
            blocked_by_tenant.insert(tenant.to_string(), b);
        }
        let mut o = AppendOutcome::default();
        for (payload, reason) in &req.quarantined {
            let raw = serde_json::to_string(payload)?;
            tx.insert_quarantine(
                tenant,
                &req.write_key_id,
                &raw,
                reason.code,
                &reason.detail,
                crate::now_ms(),
            )?;
            o.quarantined += 1;
        }
        for ev in &req.events {
            let received = ev.received_at.timestamp_millis();
            if !tx.dedup_insert(tenant, &req.write_key_id, &ev.message_id, received)? {
                o.duplicates += 1;
                continue;
            }
            let payload = serde_json::to_string(&ev.payload)?;
            let seq = tx.insert_event(tenant, &req.write_key_id, ev, &payload)?;
            apply_event(
                tx,
                tenant,
                seq,
                ev,
                &settings.identity,
                &blocked_by_tenant[tenant],
            )?;
            *daily
                .entry((
                    tenant.to_string(),
                    day_of(ev.timestamp.timestamp_millis()),
                    ev.channel.as_str(),
                ))
                .or_default() += 1;
            o.accepted += 1;
        }
        out.push(o);
    }
    for ((tenant, day, channel), n) in daily {
        tx.bump_daily(&tenant, &day, channel, n)?;
    }
    Ok(out)
}

/// Replays the tenant's log through the same code the incremental path runs.
pub(crate) fn rebuild_tenant(
    tx: &mut impl GraphTx,
    tenant: &str,
    settings: &super::StoreSettings,
) -> Result<RebuildStats> {
    tx.clear_projections(tenant)?;
    let blocked = tx.blocked(tenant)?;
    let opts = IngestOptions {
        trust_timestamps: true,
        max_event_bytes: usize::MAX,
    };
    let mut stats = RebuildStats {
        tenants: 1,
        ..Default::default()
    };
    let mut daily: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
    let mut after = 0i64;
    loop {
        let rows = tx.log_after(tenant, after, 5000)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            after = row.seq;
            let payload: Value = serde_json::from_str(&row.payload)?;
            let received = Utc
                .timestamp_millis_opt(row.received_ms)
                .single()
                .unwrap_or_default();
            let clock = Clock {
                received_at: received,
                batch_sent_at: None,
            };
            // the stored payload passed normalisation once; if a rule got stricter since, the
            // event still counts in the log but no longer shapes profiles
            let Ok(mut ev) = cxm_domain::normalize(&payload, 0, &clock, &opts) else {
                continue;
            };
            ev.timestamp = Utc
                .timestamp_millis_opt(row.ts_ms)
                .single()
                .unwrap_or(received);
            ev.message_id = row.message_id;
            apply_event(tx, tenant, row.seq, &ev, &settings.identity, &blocked)?;
            *daily
                .entry((day_of(row.ts_ms), ev.channel.as_str()))
                .or_default() += 1;
            stats.events += 1;
        }
    }
    for ((day, channel), n) in daily {
        tx.bump_daily(tenant, &day, channel, n)?;
    }
    Ok(stats)
}
