//! One transaction's working copy of the identity graph: owners looked up once, counters
//! summed per profile, and the identity writes held back and written in sets. The rules stay
//! in `cxm_domain::identity` and the decisions in `graph`; this only makes them cheap.

use std::collections::HashMap;

use cxm_domain::identity::ProfileView;
use cxm_domain::Identifier;
use serde_json::{Map, Value};

use super::{merge_traits, profile_id, GraphTx, LinkRow, Touch};
use crate::Result;

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
    pub(super) fn new(tx: &'a mut T) -> Self {
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
    pub(super) fn new_profile_id(&mut self, tenant: &str, seq: i64) -> Result<String> {
        if !self.salts.contains_key(tenant) {
            let s = self.tx.id_salt(tenant)?;
            self.salts.insert(tenant.to_string(), s);
        }
        let (salt, legacy_upto) = &self.salts[tenant];
        Ok(profile_id(salt, *legacy_upto, seq))
    }

    pub(super) fn owner(&mut self, tenant: &str, id: &Identifier) -> Result<Option<String>> {
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
    pub(super) fn prefetch<'e>(
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

    pub(super) fn create_profile(&mut self, tenant: &str, profile: &str, ts: i64) {
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

    pub(super) fn attach(&mut self, tenant: &str, id: &Identifier, profile: &str, seq: i64) {
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

    pub(super) fn ledger(&mut self, tenant: &str, row: LedgerRow) {
        self.deferred.ledger.push((tenant.to_string(), row));
    }

    /// A profile as resolution sees it: the store's rows and this transaction's writes.
    pub(super) fn profile_view(&mut self, tenant: &str, profile: &str) -> Result<ProfileView> {
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

    pub(super) fn merge(&mut self, tenant: &str, from: &str, into: &str) -> Result<()> {
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
    pub(super) fn link_account(
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

    pub(super) fn touch(
        &mut self,
        tenant: &str,
        profile: &str,
        ts: i64,
        traits: &Map<String, Value>,
    ) {
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

    pub(super) fn finish(mut self) -> Result<()> {
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
