//! The ingest and rebuild logic shared by every backend. Backends implement [`GraphTx`] (the
//! SQL) over an open transaction; this module decides what to write, using the pure rules in
//! `cxm_domain::identity`. Keeping one copy is what makes both backends behave identically.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{TimeZone, Utc};
use cxm_domain::identity::{self, ProfileView, Target};
use cxm_domain::{Clock, Identifier, IdentityRules, IngestOptions, NormalizedEvent};
use serde_json::{Map, Value};

use crate::{day_of, AppendOutcome, AppendRequest, RebuildStats, Result};

/// Store-level settings chosen at start.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub identity: IdentityRules,
    /// How long a messageId is remembered for deduplication.
    pub dedup_window: std::time::Duration,
    /// Quarantine rows kept per tenant and UTC day; rejected events past it are only counted.
    pub quarantine_rows_per_day: i64,
    /// Quarantine bytes (payload and detail) kept per tenant and UTC day.
    pub quarantine_bytes_per_day: i64,
    /// Seals secrets at rest. None: the embedded store keeps `master.key` in its data
    /// directory; PostgreSQL uses a key that lives only as long as the process (tests).
    pub master_key: Option<crate::sealed::MasterKey>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            identity: IdentityRules::default(),
            dedup_window: std::time::Duration::from_secs(48 * 3600),
            quarantine_rows_per_day: 10_000,
            quarantine_bytes_per_day: 64 * 1024 * 1024,
            master_key: None,
        }
    }
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
    /// What quarantine kept for the tenant on `day`: (rows, bytes).
    fn quarantine_day(&mut self, tenant: &str, day: &str) -> Result<(i64, i64)>;
    /// Adds to the tenant's quarantine tally for `day`.
    fn bump_quarantine_day(
        &mut self,
        tenant: &str,
        day: &str,
        events: i64,
        rows: i64,
        bytes: i64,
    ) -> Result<()>;
    /// The tenant's secret for profile ids, and the last sequence whose profiles keep the
    /// old `p_<seq>` form.
    fn id_salt(&mut self, tenant: &str) -> Result<(String, i64)>;
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
    /// Widens first/last seen, adds to the event count, and merges traits (newer win).
    fn touch_profile(&mut self, tenant: &str, profile: &str, touch: &Touch) -> Result<()>;
    fn link_account(
        &mut self,
        tenant: &str,
        profile: &str,
        group_id: &str,
        traits: Option<&Map<String, Value>>,
    ) -> Result<()>;
    fn bump_daily(&mut self, tenant: &str, day: &str, channel: &str, n: i64) -> Result<()>;
    /// Deletes every projection of the tenant (not the log, quarantine, blocks or admin ledger rows).
    fn clear_projections(&mut self, tenant: &str) -> Result<()>;
    fn log_after(&mut self, tenant: &str, after_seq: i64, limit: u32) -> Result<Vec<LogRow>>;

    /// Records the message ids of a request; true for each event seen for the first time
    /// (a repeat within the request counts as a duplicate). Backends with round trips
    /// override this with one statement.
    fn dedup_insert_many(
        &mut self,
        tenant: &str,
        key_id: &str,
        events: &[NormalizedEvent],
    ) -> Result<Vec<bool>> {
        events
            .iter()
            .map(|e| {
                self.dedup_insert(
                    tenant,
                    key_id,
                    &e.message_id,
                    e.received_at.timestamp_millis(),
                )
            })
            .collect()
    }

    /// Appends events to the log, returning their sequence numbers in order.
    fn insert_events(
        &mut self,
        tenant: &str,
        key_id: &str,
        events: &[&NormalizedEvent],
    ) -> Result<Vec<i64>> {
        events
            .iter()
            .map(|e| self.insert_event(tenant, key_id, e, &e.payload_json))
            .collect()
    }

    /// Adds to several daily counters.
    fn bump_daily_many(
        &mut self,
        tenant: &str,
        rows: &[(String, &'static str, i64)],
    ) -> Result<()> {
        for (day, channel, n) in rows {
            self.bump_daily(tenant, day, channel, *n)?;
        }
        Ok(())
    }

    /// Adds a transaction's touches to their profiles. Backends with round trips override
    /// this with a few set statements instead of one per profile.
    fn touch_many(&mut self, tenant: &str, touches: &[(&str, &Touch)]) -> Result<()> {
        for (profile, t) in touches {
            self.touch_profile(tenant, profile, t)?;
        }
        Ok(())
    }

    /// Owners of many identifiers in one go, or `None` when lazy one-by-one lookups are as
    /// cheap (an embedded database).
    fn owners_many(
        &mut self,
        _tenant: &str,
        _ids: &[Identifier],
    ) -> Result<Option<Vec<(Identifier, String)>>> {
        Ok(None)
    }
}

pub(crate) fn merge_traits(into: &mut Map<String, Value>, newer: &Map<String, Value>) {
    for (k, v) in newer {
        if !v.is_null() {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// What a run of events did to one profile, applied in one statement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Touch {
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: i64,
    pub traits: Map<String, Value>,
}

/// One transaction's view of the graph: identifier owners are looked up once and then kept
/// (attach and merge update them), and per-profile counters are summed and written once per
/// profile instead of once per event. Both live only as long as the transaction, so nothing
/// can go stale across writers or survive a rollback.
pub(crate) struct Batched<'a, T: GraphTx> {
    pub tx: &'a mut T,
    salts: HashMap<String, (String, i64)>,
    owners: HashMap<(String, Identifier), Option<String>>,
    pending: HashMap<(String, String), Touch>,
    /// (tenant, profile, account) links written in this transaction.
    linked: std::collections::HashSet<(String, String, String)>,
}

impl<'a, T: GraphTx> Batched<'a, T> {
    pub fn new(tx: &'a mut T) -> Self {
        Batched {
            tx,
            salts: HashMap::new(),
            owners: HashMap::new(),
            pending: HashMap::new(),
            linked: Default::default(),
        }
    }

    /// The id of the profile the event at `seq` creates.
    fn new_profile_id(&mut self, tenant: &str, seq: i64) -> Result<String> {
        if !self.salts.contains_key(tenant) {
            let s = self.tx.id_salt(tenant)?;
            self.salts.insert(tenant.to_string(), s);
        }
        let (salt, legacy_upto) = &self.salts[tenant];
        Ok(profile_id(salt, *legacy_upto, seq))
    }

    fn owner(&mut self, tenant: &str, id: &Identifier) -> Result<Option<String>> {
        let key = (tenant.to_string(), id.clone());
        if let Some(o) = self.owners.get(&key) {
            return Ok(o.clone());
        }
        let o = self.tx.owner(tenant, id)?;
        self.owners.insert(key, o.clone());
        Ok(o)
    }

    /// Looks up the owners of identifiers not seen yet in this transaction, in one call when
    /// the backend can.
    fn prefetch<'e>(
        &mut self,
        tenant: &str,
        ids: impl Iterator<Item = &'e Identifier>,
    ) -> Result<()> {
        let mut missing: Vec<Identifier> = ids
            .filter(|i| {
                !self
                    .owners
                    .contains_key(&(tenant.to_string(), (*i).clone()))
            })
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        if let Some(found) = self.tx.owners_many(tenant, &missing)? {
            for id in missing {
                self.owners.insert((tenant.to_string(), id), None);
            }
            for (id, p) in found {
                self.owners.insert((tenant.to_string(), id), Some(p));
            }
        }
        Ok(())
    }

    fn attach(&mut self, tenant: &str, id: &Identifier, profile: &str, seq: i64) -> Result<()> {
        self.tx.attach(tenant, id, profile, seq)?;
        self.owners
            .insert((tenant.to_string(), id.clone()), Some(profile.to_string()));
        Ok(())
    }

    fn merge(&mut self, tenant: &str, from: &str, into: &str) -> Result<()> {
        // the merge reads both profiles' counters: they must be current
        self.flush(tenant, from)?;
        self.flush(tenant, into)?;
        self.tx.merge_profiles(tenant, from, into)?;
        for ((t, _), owner) in self.owners.iter_mut() {
            if t == tenant && owner.as_deref() == Some(from) {
                *owner = Some(into.to_string());
            }
        }
        Ok(())
    }

    /// Links a profile to an account once per transaction; traits always go through.
    fn link_account(
        &mut self,
        tenant: &str,
        profile: &str,
        group: &str,
        traits: Option<&Map<String, Value>>,
    ) -> Result<()> {
        let key = (tenant.to_string(), profile.to_string(), group.to_string());
        if traits.is_none() && self.linked.contains(&key) {
            return Ok(());
        }
        self.tx.link_account(tenant, profile, group, traits)?;
        self.linked.insert(key);
        Ok(())
    }

    fn touch(&mut self, tenant: &str, profile: &str, ts: i64, traits: &Map<String, Value>) {
        let t = self
            .pending
            .entry((tenant.to_string(), profile.to_string()))
            .or_insert_with(|| Touch {
                first_ms: ts,
                last_ms: ts,
                ..Default::default()
            });
        t.first_ms = t.first_ms.min(ts);
        t.last_ms = t.last_ms.max(ts);
        t.count += 1;
        merge_traits(&mut t.traits, traits);
    }

    fn flush(&mut self, tenant: &str, profile: &str) -> Result<()> {
        if let Some(t) = self
            .pending
            .remove(&(tenant.to_string(), profile.to_string()))
        {
            self.tx.touch_profile(tenant, profile, &t)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        let mut pending: Vec<_> = self.pending.drain().collect();
        // a stable order keeps lock acquisition order stable across writers
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        for run in pending.chunk_by(|a, b| a.0 .0 == b.0 .0) {
            let touches: Vec<(&str, &Touch)> =
                run.iter().map(|((_, p), t)| (p.as_str(), t)).collect();
            self.tx.touch_many(&run[0].0 .0, &touches)?;
        }
        Ok(())
    }
}

/// A profile's id from the sequence number of the event that created it: a keyed hash
/// under the tenant's secret, so it says nothing about how many events anyone sent, yet a
/// rebuild gives the same id. Profiles created up to `legacy_upto` keep `p_<seq>`.
pub(crate) fn profile_id(salt: &str, legacy_upto: i64, seq: i64) -> String {
    use sha2::{Digest, Sha256};
    if seq <= legacy_upto {
        return format!("p_{seq}");
    }
    let mut h = Sha256::new();
    h.update(b"cxm profile id\n");
    h.update(salt.as_bytes());
    h.update(b"\n");
    h.update(seq.to_be_bytes());
    let d = h.finalize();
    // 80 bits: unguessable, and short enough for a URL
    format!("p_{}", hex::encode(&d[..10]))
}

/// Applies one appended event to the identity projection.
fn apply_event<T: GraphTx>(
    b: &mut Batched<'_, T>,
    tenant: &str,
    seq: i64,
    ev: &NormalizedEvent,
    rules: &IdentityRules,
    blocked: &BTreeSet<Identifier>,
) -> Result<()> {
    let mut owners = BTreeMap::new();
    let mut unowned = 0;
    for id in &ev.identifiers {
        if blocked.contains(id) {
            continue;
        }
        match b.owner(tenant, id)? {
            Some(p) => {
                owners.insert(id.clone(), p);
            }
            None => unowned += 1,
        }
    }
    let ts = ev.timestamp.timestamp_millis();
    let at = ev.received_at.timestamp_millis();
    let mut distinct = owners.values();
    let single_owner = distinct
        .next()
        .filter(|first| distinct.all(|p| p == *first))
        .cloned();
    let target = match single_owner {
        // the common case: a known customer with known identifiers; nothing to decide
        Some(p) if unowned == 0 => p,
        _ => {
            let mut profiles = BTreeMap::new();
            for p in owners.values() {
                if !profiles.contains_key(p) {
                    let view = b.tx.profile_view(tenant, p)?;
                    profiles.insert(p.clone(), view);
                }
            }
            let res = identity::resolve(&ev.identifiers, &owners, &profiles, blocked, rules);
            let target = match res.target {
                Target::Existing(p) => p,
                Target::New => {
                    if res.attach.is_empty() {
                        // every identifier was blocked: the event stays in the log, tied to no one
                        return Ok(());
                    }
                    // deterministic ids make a rebuild reproduce the incremental projection exactly
                    let p = b.new_profile_id(tenant, seq)?;
                    b.tx.create_profile(tenant, &p, ts)?;
                    p
                }
            };
            for m in &res.merges {
                b.merge(tenant, &m.from, &target)?;
                b.tx.ledger(
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
                b.attach(tenant, a, &target, seq)?;
            }
            for d in &res.dropped {
                b.tx.ledger(
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
            target
        }
    };
    b.touch(tenant, &target, ts, &ev.traits);
    if let Some(g) = &ev.group_id {
        b.link_account(tenant, &target, g, ev.group_traits.as_ref())?;
    }
    Ok(())
}

/// The requests a run of log events makes: consecutive events of one tenant and write key
/// become one request, so the order the log gave them is the order they are applied.
pub(crate) fn requests_of(events: &[&crate::LogEvent]) -> Vec<AppendRequest> {
    let mut out: Vec<AppendRequest> = Vec::new();
    for e in events {
        match out.last_mut() {
            Some(r) if r.tenant_id == e.tenant_id && r.write_key_id == e.write_key_id => {
                r.events.push(e.event.clone())
            }
            _ => out.push(AppendRequest {
                tenant_id: e.tenant_id.clone(),
                write_key_id: e.write_key_id.clone(),
                events: vec![e.event.clone()],
                quarantined: cxm_domain::Quarantine::default(),
            }),
        }
    }
    out
}

/// The body of `Store::append` for every backend, run inside one transaction.
pub(crate) fn append_all<T: GraphTx>(
    tx: &mut T,
    requests: &[AppendRequest],
    settings: &super::StoreSettings,
) -> Result<Vec<AppendOutcome>> {
    let mut blocked_by_tenant: HashMap<String, BTreeSet<Identifier>> = HashMap::new();
    let mut quarantine_kept: HashMap<(String, String), QuarantineTally> = HashMap::new();
    let mut daily: BTreeMap<(String, String, &'static str), i64> = BTreeMap::new();
    let mut out = Vec::with_capacity(requests.len());
    let mut b = Batched::new(tx);
    for req in requests {
        let tenant = req.tenant_id.as_str();
        if !blocked_by_tenant.contains_key(tenant) {
            let blocked = b.tx.blocked(tenant)?;
            blocked_by_tenant.insert(tenant.to_string(), blocked);
        }
        let mut o = AppendOutcome::default();
        if !req.quarantined.is_empty() {
            let today = day_of(crate::now_ms());
            let kept = match quarantine_kept.entry((tenant.to_string(), today.clone())) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let (rows, bytes) = b.tx.quarantine_day(tenant, &today)?;
                    e.insert(QuarantineTally {
                        rows_before: rows,
                        bytes_before: bytes,
                        ..Default::default()
                    })
                }
            };
            kept.events += req.quarantined.events as i64;
            for (payload, reason) in req.quarantined.rows() {
                let raw = serde_json::to_string(&payload)?;
                let bytes = (raw.len() + reason.detail.len()) as i64;
                if kept.rows_before + kept.rows >= settings.quarantine_rows_per_day
                    || kept.bytes_before + kept.bytes + bytes > settings.quarantine_bytes_per_day
                {
                    // over the tenant's daily cap: counted in the tally, not kept
                    break;
                }
                b.tx.insert_quarantine(
                    tenant,
                    &req.write_key_id,
                    &raw,
                    reason.code,
                    &reason.detail,
                    crate::now_ms(),
                )?;
                kept.rows += 1;
                kept.bytes += bytes;
            }
            o.quarantined = u32::try_from(req.quarantined.events).unwrap_or(u32::MAX);
        }
        let fresh =
            b.tx.dedup_insert_many(tenant, &req.write_key_id, &req.events)?;
        let new: Vec<&NormalizedEvent> = req
            .events
            .iter()
            .zip(&fresh)
            .filter(|(_, f)| **f)
            .map(|(e, _)| e)
            .collect();
        o.duplicates = (req.events.len() - new.len()) as u32;
        let seqs = b.tx.insert_events(tenant, &req.write_key_id, &new)?;
        b.prefetch(tenant, new.iter().flat_map(|e| e.identifiers.iter()))?;
        for (ev, seq) in new.iter().zip(seqs) {
            apply_event(
                &mut b,
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
    b.finish()?;
    let mut by_tenant: BTreeMap<String, Vec<(String, &'static str, i64)>> = BTreeMap::new();
    for ((tenant, day, channel), n) in daily {
        by_tenant.entry(tenant).or_default().push((day, channel, n));
    }
    for (tenant, rows) in by_tenant {
        tx.bump_daily_many(&tenant, &rows)?;
    }
    for ((tenant, day), q) in quarantine_kept {
        tx.bump_quarantine_day(&tenant, &day, q.events, q.rows, q.bytes)?;
    }
    Ok(out)
}

/// A tenant's quarantine on one day within one transaction: what was there before it, and
/// what it adds.
#[derive(Default)]
struct QuarantineTally {
    rows_before: i64,
    bytes_before: i64,
    events: i64,
    rows: i64,
    bytes: i64,
}

/// Replays the tenant's log through the same code the incremental path runs.
pub(crate) fn rebuild_tenant<T: GraphTx>(
    tx: &mut T,
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
        let mut b = Batched::new(tx);
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
            apply_event(&mut b, tenant, row.seq, &ev, &settings.identity, &blocked)?;
            *daily
                .entry((day_of(row.ts_ms), ev.channel.as_str()))
                .or_default() += 1;
            stats.events += 1;
        }
        b.finish()?;
    }
    for ((day, channel), n) in daily {
        tx.bump_daily(tenant, &day, channel, n)?;
    }
    Ok(stats)
}
