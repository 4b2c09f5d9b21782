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

/// A profile made in the current transaction and not written yet: its row as the writes so
/// far would have left it (a merge inside the transaction is folded in here).
#[derive(Debug, Clone)]
pub(crate) struct NewProfile {
    pub id: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: i64,
    pub traits: Map<String, Value>,
    /// As a touch sets it: recomputed only when traits arrive, untouched by a merge.
    pub display: String,
    pub merge_count: i64,
    pub merged_into: Option<String>,
}

impl NewProfile {
    fn touched(&mut self, t: &Touch) {
        self.first_ms = self.first_ms.min(t.first_ms);
        self.last_ms = self.last_ms.max(t.last_ms);
        self.count += t.count;
        if !t.traits.is_empty() {
            merge_traits(&mut self.traits, &t.traits);
            self.display = crate::types::display_name(&self.traits);
        }
    }
}

/// (profile, account, traits) of one account link.
pub(crate) type LinkRow<'a> = (&'a str, &'a str, Option<&'a Map<String, Value>>);

/// An account link held back: (profile, account, traits).
struct HeldLink {
    profile: String,
    group: String,
    traits: Option<Map<String, Value>>,
}

/// One row of the identity ledger as the ingest path writes it.
#[derive(Debug, Clone)]
pub(crate) struct LedgerRow {
    pub action: &'static str,
    pub profile: String,
    pub other: Option<String>,
    pub identifier: Option<Identifier>,
    pub seq: Option<i64>,
    pub message_id: Option<String>,
    pub reason: Option<&'static str>,
    pub at_ms: i64,
}

/// Identity writes held back until the transaction next reads what they change (a merge) or
/// ends: a batch of new customers is then a few set statements instead of a round trip per
/// profile, identifier, ledger row and account link. Each list keeps its order.
#[derive(Default)]
struct Deferred {
    profiles: Vec<(String, NewProfile)>,
    /// (tenant, profile) → its place in `profiles`
    made: HashMap<(String, String), usize>,
    /// (tenant, identifier, profile, first seq)
    attaches: Vec<(String, Identifier, String, i64)>,
    ledger: Vec<(String, LedgerRow)>,
    links: Vec<(String, HeldLink)>,
}

impl Deferred {
    fn is_empty(&self) -> bool {
        self.profiles.is_empty()
            && self.attaches.is_empty()
            && self.ledger.is_empty()
            && self.links.is_empty()
    }
}

/// Consecutive runs of one tenant's items.
fn runs_of<T>(items: &[(String, T)]) -> impl Iterator<Item = (&str, &[(String, T)])> {
    items
        .chunk_by(|a, b| a.0 == b.0)
        .map(|run| (run[0].0.as_str(), run))
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
    /// Profiles as identity resolution sees them, kept current by this transaction's own
    /// creates and attaches; a merge drops both sides, to be read again once written.
    views: HashMap<(String, String), ProfileView>,
    deferred: Deferred,
}

impl<'a, T: GraphTx> Batched<'a, T> {
    pub fn new(tx: &'a mut T) -> Self {
        Batched {
            tx,
            salts: HashMap::new(),
            owners: HashMap::new(),
            pending: HashMap::new(),
            linked: Default::default(),
            views: HashMap::new(),
            deferred: Deferred::default(),
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

    fn create_profile(&mut self, tenant: &str, profile: &str, ts: i64) {
        self.deferred.made.insert(
            (tenant.to_string(), profile.to_string()),
            self.deferred.profiles.len(),
        );
        self.deferred.profiles.push((
            tenant.to_string(),
            NewProfile {
                id: profile.to_string(),
                first_ms: ts,
                last_ms: ts,
                count: 0,
                traits: Map::new(),
                display: String::new(),
                merge_count: 0,
                merged_into: None,
            },
        ));
        self.views.insert(
            (tenant.to_string(), profile.to_string()),
            ProfileView {
                id: profile.to_string(),
                identifiers: vec![],
                merge_count: 0,
            },
        );
    }

    fn attach(&mut self, tenant: &str, id: &Identifier, profile: &str, seq: i64) {
        self.deferred
            .attaches
            .push((tenant.to_string(), id.clone(), profile.to_string(), seq));
        if let Some(v) = self
            .views
            .get_mut(&(tenant.to_string(), profile.to_string()))
        {
            v.identifiers.push(id.clone());
        }
        self.owners
            .insert((tenant.to_string(), id.clone()), Some(profile.to_string()));
    }

    fn ledger(&mut self, tenant: &str, row: LedgerRow) {
        self.deferred.ledger.push((tenant.to_string(), row));
    }

    /// A profile as resolution sees it: the store's rows and this transaction's writes.
    fn profile_view(&mut self, tenant: &str, profile: &str) -> Result<ProfileView> {
        let key = (tenant.to_string(), profile.to_string());
        if let Some(v) = self.views.get(&key) {
            return Ok(v.clone());
        }
        // a profile not created here exists in the store; only attaches can be held back
        let mut v = self.tx.profile_view(tenant, profile)?;
        for (t, id, p, _) in &self.deferred.attaches {
            if t == tenant && p == profile {
                v.identifiers.push(id.clone());
            }
        }
        self.views.insert(key, v.clone());
        Ok(v)
    }

    /// Writes what was held back, each kind in its order.
    fn write_deferred(&mut self) -> Result<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        // a new profile goes in with its counters, not as a row then an update
        let made: Vec<((String, String), usize)> = self
            .deferred
            .made
            .iter()
            .map(|(k, i)| (k.clone(), *i))
            .collect();
        for ((t, p), i) in made {
            self.fold_touch(&t, &p, i);
        }
        let d = std::mem::take(&mut self.deferred);
        for (tenant, run) in runs_of(&d.profiles) {
            let rows: Vec<&NewProfile> = run.iter().map(|(_, r)| r).collect();
            self.tx.insert_profiles(tenant, &rows)?;
        }
        let attaches: Vec<(String, (&Identifier, &str, i64))> = d
            .attaches
            .iter()
            .map(|(t, id, p, seq)| (t.clone(), (id, p.as_str(), *seq)))
            .collect();
        for (tenant, run) in runs_of(&attaches) {
            let rows: Vec<(&Identifier, &str, i64)> = run.iter().map(|(_, r)| *r).collect();
            self.tx.attach_many(tenant, &rows)?;
        }
        for (tenant, run) in runs_of(&d.ledger) {
            let rows: Vec<&LedgerRow> = run.iter().map(|(_, r)| r).collect();
            self.tx.ledger_many(tenant, &rows)?;
        }
        for (tenant, run) in runs_of(&d.links) {
            let rows: Vec<LinkRow<'_>> = run
                .iter()
                .map(|(_, l)| (l.profile.as_str(), l.group.as_str(), l.traits.as_ref()))
                .collect();
            self.tx.link_many(tenant, &rows)?;
        }
        Ok(())
    }

    /// Folds a profile's pending touch into its unwritten row.
    fn fold_touch(&mut self, tenant: &str, profile: &str, at: usize) {
        if let Some(t) = self
            .pending
            .remove(&(tenant.to_string(), profile.to_string()))
        {
            self.deferred.profiles[at].1.touched(&t);
        }
    }

    /// A merge of two profiles both made in this transaction, done on their unwritten rows
    /// exactly as `merge_profiles` would on written ones: the usual case of anonymous
    /// browsing followed by a sign-in inside one batch costs no statement at all.
    fn merge_unwritten(&mut self, tenant: &str, from: &str, into: &str, f: usize, i: usize) {
        self.fold_touch(tenant, from, f);
        self.fold_touch(tenant, into, i);
        let absorbed = self.deferred.profiles[f].1.clone();
        let survivor = &mut self.deferred.profiles[i].1;
        // the survivor's traits win over the absorbed profile's
        let mut traits = absorbed.traits;
        merge_traits(&mut traits, &survivor.traits);
        survivor.traits = traits;
        survivor.first_ms = survivor.first_ms.min(absorbed.first_ms);
        survivor.last_ms = survivor.last_ms.max(absorbed.last_ms);
        survivor.count += absorbed.count;
        survivor.merge_count += 1 + absorbed.merge_count;
        let (from_s, into_s) = (Some(from.to_string()), Some(into.to_string()));
        for (t, p) in self.deferred.profiles.iter_mut() {
            if t == tenant && (p.id == from || p.merged_into == from_s) {
                p.merged_into = into_s.clone();
            }
        }
        for (t, _, p, _) in self.deferred.attaches.iter_mut() {
            if t == tenant && p == from {
                *p = into.to_string();
            }
        }
        // the absorbed profile keeps its links and the survivor gains them
        let gained: Vec<_> = self
            .deferred
            .links
            .iter()
            .filter(|(t, l)| t == tenant && l.profile == from)
            .map(|(t, l)| {
                (
                    t.clone(),
                    HeldLink {
                        profile: into.to_string(),
                        group: l.group.clone(),
                        traits: None,
                    },
                )
            })
            .collect();
        self.deferred.links.extend(gained);
        let from_key = (tenant.to_string(), from.to_string());
        let moved = self.views.remove(&from_key);
        if let (Some(m), Some(v)) = (
            moved,
            self.views.get_mut(&(tenant.to_string(), into.to_string())),
        ) {
            v.identifiers.extend(m.identifiers);
            v.merge_count += 1 + m.merge_count;
        }
    }

    fn merge(&mut self, tenant: &str, from: &str, into: &str) -> Result<()> {
        let made = |p: &str| {
            self.deferred
                .made
                .get(&(tenant.to_string(), p.to_string()))
                .copied()
        };
        if let (Some(f), Some(i)) = (made(from), made(into)) {
            self.merge_unwritten(tenant, from, into, f, i);
            for ((t, _), owner) in self.owners.iter_mut() {
                if t == tenant && owner.as_deref() == Some(from) {
                    *owner = Some(into.to_string());
                }
            }
            return Ok(());
        }
        // the merge reads and moves both profiles' rows: everything before it must be written
        self.write_deferred()?;
        self.flush(tenant, from)?;
        self.flush(tenant, into)?;
        self.tx.merge_profiles(tenant, from, into)?;
        for ((t, _), owner) in self.owners.iter_mut() {
            if t == tenant && owner.as_deref() == Some(from) {
                *owner = Some(into.to_string());
            }
        }
        self.views.remove(&(tenant.to_string(), from.to_string()));
        self.views.remove(&(tenant.to_string(), into.to_string()));
        Ok(())
    }

    /// Links a profile to an account once per transaction; traits always go through.
    fn link_account(
        &mut self,
        tenant: &str,
        profile: &str,
        group: &str,
        traits: Option<&Map<String, Value>>,
    ) {
        let key = (tenant.to_string(), profile.to_string(), group.to_string());
        if traits.is_none() && self.linked.contains(&key) {
            return;
        }
        self.deferred.links.push((
            tenant.to_string(),
            HeldLink {
                profile: profile.to_string(),
                group: group.to_string(),
                traits: traits.cloned(),
            },
        ));
        self.linked.insert(key);
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
        // profiles must exist before their counters are added to
        self.write_deferred()?;
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
