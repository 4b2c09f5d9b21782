//! The ingest and rebuild logic shared by every backend. Backends implement [`GraphTx`] (the
//! SQL) over an open transaction; this module decides what to write, using the pure rules in
//! `cxm_domain::identity`. Keeping one copy is what makes both backends behave identically.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{TimeZone, Utc};
use cxm_domain::identity::{self, ProfileView, Target};
use cxm_domain::{Clock, Identifier, IdentityRules, IngestOptions, NormalizedEvent};
use serde_json::{Map, Value};

use crate::{day_of, AppendOutcome, AppendRequest, RebuildStats, Result};

mod batched;
pub(crate) use batched::{Batched, LedgerRow, NewProfile};

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
    /// SQLite: events the identifier index may lag the log before the writer catches it up
    /// (readers scan that tail). Lower only in tests, to exercise both halves of a read.
    pub identifier_index_lag: i64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            identity: IdentityRules::default(),
            dedup_window: std::time::Duration::from_secs(48 * 3600),
            quarantine_rows_per_day: 10_000,
            quarantine_bytes_per_day: 64 * 1024 * 1024,
            master_key: None,
            identifier_index_lag: 32_768,
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
    /// Inserts a profile made in this transaction, as it stands when the transaction writes it.
    fn insert_profile(&mut self, tenant: &str, p: &NewProfile) -> Result<()>;
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
        events: &[&NormalizedEvent],
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

    /// Inserts several profiles. Backends with round trips override this with one statement.
    fn insert_profiles(&mut self, tenant: &str, rows: &[&NewProfile]) -> Result<()> {
        for p in rows {
            self.insert_profile(tenant, p)?;
        }
        Ok(())
    }

    /// Attaches several identifiers: (identifier, profile, first seq).
    fn attach_many(&mut self, tenant: &str, rows: &[(&Identifier, &str, i64)]) -> Result<()> {
        for (id, profile, seq) in rows {
            self.attach(tenant, id, profile, *seq)?;
        }
        Ok(())
    }

    /// Appends several ledger rows, in order.
    fn ledger_many(&mut self, tenant: &str, rows: &[&LedgerRow]) -> Result<()> {
        for r in rows {
            self.ledger(
                tenant,
                r.action,
                &r.profile,
                r.other.as_deref(),
                r.identifier.as_ref(),
                r.seq,
                r.message_id.as_deref(),
                r.reason,
                r.at_ms,
            )?;
        }
        Ok(())
    }

    /// Links several (profile, account, traits) in order, as `link_account` one by one would.
    fn link_many(&mut self, tenant: &str, rows: &[LinkRow<'_>]) -> Result<()> {
        for (profile, group, traits) in rows {
            self.link_account(tenant, profile, group, *traits)?;
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

/// (profile, account, traits) of one account link.
pub(crate) type LinkRow<'a> = (&'a str, &'a str, Option<&'a Map<String, Value>>);

/// The dedup window's key of one message: the first 16 bytes of SHA-256 over the tenant,
/// the write key and the message id joined by NUL. Both backends use it, and PostgreSQL's
/// migration computes the same bytes in SQL (`sha256(... || '\\x00'::bytea || ...)`): 16
/// bytes compare as one `memcmp`, where three texts compared under the database's collation.
/// NUL cannot occur in the two ids we mint, so the join is unambiguous.
pub(crate) fn dedup_key(tenant: &str, key_id: &str, message_id: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0u8]);
    h.update(key_id.as_bytes());
    h.update([0u8]);
    h.update(message_id.as_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
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
                    let view = b.profile_view(tenant, p)?;
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
                    b.create_profile(tenant, &p, ts);
                    p
                }
            };
            for m in &res.merges {
                b.merge(tenant, &m.from, &target)?;
                b.ledger(
                    tenant,
                    LedgerRow {
                        action: "merge",
                        profile: target.clone(),
                        other: Some(m.from.clone()),
                        identifier: Some(m.via.clone()),
                        seq: Some(seq),
                        message_id: Some(ev.message_id.clone()),
                        reason: None,
                        at_ms: at,
                    },
                );
            }
            for a in &res.attach {
                b.attach(tenant, a, &target, seq);
            }
            for d in &res.dropped {
                b.ledger(
                    tenant,
                    LedgerRow {
                        action: "drop",
                        profile: target.clone(),
                        other: None,
                        identifier: Some(d.identifier.clone()),
                        seq: Some(seq),
                        message_id: Some(ev.message_id.clone()),
                        reason: Some(d.reason),
                        at_ms: at,
                    },
                );
            }
            target
        }
    };
    b.touch(tenant, &target, ts, &ev.traits);
    if let Some(g) = &ev.group_id {
        b.link_account(tenant, &target, g, ev.group_traits.as_ref());
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
    let mut start = 0;
    while start < requests.len() {
        // consecutive requests of one tenant and key (a group commit of one source) share one
        // dedup probe, one COPY and one owner lookup, as if they were one request
        let first = &requests[start];
        let end = start
            + requests[start..]
                .iter()
                .take_while(|r| {
                    r.tenant_id == first.tenant_id && r.write_key_id == first.write_key_id
                })
                .count();
        let run = &requests[start..end];
        start = end;
        let tenant = first.tenant_id.as_str();
        if !blocked_by_tenant.contains_key(tenant) {
            let blocked = b.tx.blocked(tenant)?;
            blocked_by_tenant.insert(tenant.to_string(), blocked);
        }
        let first_outcome = out.len();
        for req in run {
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
                        || kept.bytes_before + kept.bytes + bytes
                            > settings.quarantine_bytes_per_day
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
            out.push(o);
        }
        // each event with the index of the outcome it counts in
        let events: Vec<(usize, &NormalizedEvent)> = run
            .iter()
            .enumerate()
            .flat_map(|(k, r)| r.events.iter().map(move |e| (first_outcome + k, e)))
            .collect();
        let refs: Vec<&NormalizedEvent> = events.iter().map(|(_, e)| *e).collect();
        let fresh = b.tx.dedup_insert_many(tenant, &first.write_key_id, &refs)?;
        let mut new: Vec<(usize, &NormalizedEvent)> = Vec::with_capacity(events.len());
        for ((k, e), f) in events.into_iter().zip(fresh) {
            if f {
                new.push((k, e));
            } else {
                out[k].duplicates += 1;
            }
        }
        let refs: Vec<&NormalizedEvent> = new.iter().map(|(_, e)| *e).collect();
        let seqs = b.tx.insert_events(tenant, &first.write_key_id, &refs)?;
        b.prefetch(tenant, refs.iter().flat_map(|e| e.identifiers.iter()))?;
        for ((k, ev), seq) in new.into_iter().zip(seqs) {
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
            out[k].accepted += 1;
        }
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
