//! Cluster membership and partition ownership for several cxm nodes on one PostgreSQL: which
//! virtual partition a tenant lives in, and the keeper each node runs to hold its fair share
//! of partition leases (renewing what it holds, taking what is free or expired, giving back
//! what is beyond its share when nodes join). Times that decide safety are the database's;
//! the node's own clock only makes it stop sooner: a lease counts as held locally until the
//! instant *before* it was asked for plus its length.

pub mod apply;
pub mod log;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use cxm_store::{ClusterStore, Lease};

use crate::error::{AppError, AppResult, ErrorCode};

/// The virtual partition a tenant's events and workers belong to, out of `partitions`: the
/// first eight bytes of SHA-256 of its id, so every node and every version agrees.
pub fn partition_of(tenant: &str, partitions: u32) -> i32 {
    let d = Sha256::digest(tenant.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) % u64::from(partitions.max(1))) as i32
}

/// How a node takes part.
#[derive(Debug, Clone)]
pub struct Membership {
    pub node: String,
    /// Random per process: a second process started with the same node id is refused.
    pub instance: String,
    pub partitions: u32,
    /// How long a lease and a heartbeat last; the keeper renews at a third of it.
    pub ttl: Duration,
}

impl Membership {
    pub fn new(node: &str, partitions: u32, ttl: Duration) -> AppResult<Membership> {
        let ok = !node.is_empty()
            && node.len() <= 64
            && node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                format!("a node id is 1 to 64 letters, digits, '-', '_' or '.', not {node:?}"),
            ));
        }
        if !(1..=4096).contains(&partitions) {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                format!("partitions must be from 1 to 4096, not {partitions}"),
            ));
        }
        Ok(Membership {
            node: node.to_string(),
            instance: uuid::Uuid::new_v4().to_string(),
            partitions,
            ttl,
        })
    }

    fn ttl_ms(&self) -> i64 {
        self.ttl.as_millis() as i64
    }
}

/// A lease this node holds, and until when it may act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub epoch: i64,
    pub until: Instant,
}

/// What one round of the keeper did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Round {
    pub live_nodes: usize,
    pub share: usize,
    pub held: usize,
    pub taken: Vec<i32>,
    pub lost: Vec<i32>,
    pub released: Vec<i32>,
}

/// The partitions a node holds, kept current by [`Keeper::round`].
pub struct Keeper {
    pub membership: Membership,
    held: BTreeMap<i32, Held>,
}

impl Keeper {
    pub fn new(membership: Membership) -> Keeper {
        Keeper {
            membership,
            held: BTreeMap::new(),
        }
    }

    /// The epoch this node may write a partition under right now, if it holds it.
    pub fn epoch_of(&self, partition: i32) -> Option<i64> {
        self.held
            .get(&partition)
            .filter(|h| h.until > Instant::now())
            .map(|h| h.epoch)
    }

    /// The partitions held now, with their epochs.
    pub fn held(&self) -> Vec<(i32, i64)> {
        let now = Instant::now();
        self.held
            .iter()
            .filter(|(_, h)| h.until > now)
            .map(|(p, h)| (*p, h.epoch))
            .collect()
    }

    /// The order in which this node prefers partitions (rendezvous hashing): every node has a
    /// different order, so free partitions spread without coordination.
    fn rank(&self, partition: i32) -> u64 {
        let mut h = Sha256::new();
        h.update(self.membership.node.as_bytes());
        h.update(partition.to_be_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        u64::from_be_bytes(b)
    }

    fn acquire(&mut self, c: &dyn ClusterStore, partition: i32) -> AppResult<Option<Lease>> {
        let asked = Instant::now();
        let got = c
            .acquire(partition, &self.membership.node, self.membership.ttl_ms())
            .map_err(AppError::from)?;
        match &got {
            Some(l) => {
                self.held.insert(
                    partition,
                    Held {
                        epoch: l.epoch,
                        until: asked + self.membership.ttl,
                    },
                );
            }
            None => {
                self.held.remove(&partition);
            }
        }
        Ok(got)
    }

    /// One round: heartbeat, renew, then take or give back towards this node's fair share of
    /// the partitions: at most `ceil(partitions / live nodes)`, and no more than the floor
    /// while another live node holds less than it.
    pub fn round(&mut self, c: &dyn ClusterStore) -> AppResult<Round> {
        let m = self.membership.clone();
        c.heartbeat(&m.node, &m.instance, m.ttl_ms())
            .map_err(AppError::from)?;
        let live = c.live_nodes().map_err(AppError::from)?;
        let n = live.len().max(1);
        let share = (m.partitions as usize).div_ceil(n);
        let mut out = Round {
            live_nodes: n,
            share,
            ..Round::default()
        };
        // renew what is held; a lease found taken is dropped at once
        for p in self.held.keys().copied().collect::<Vec<_>>() {
            if self.acquire(c, p)?.is_none() {
                out.lost.push(p);
            }
        }
        let leases: BTreeMap<i32, Lease> = c
            .leases()
            .map_err(AppError::from)?
            .into_iter()
            .map(|l| (l.partition, l))
            .collect();
        let floor = m.partitions as usize / n;
        let mut counts: BTreeMap<&str, usize> =
            live.iter().map(|l| (l.node_id.as_str(), 0)).collect();
        for l in leases.values().filter(|l| !l.expired) {
            if let Some(k) = counts.get_mut(l.owner.as_str()) {
                *k += 1;
            }
        }
        let starved = counts.values().any(|k| *k < floor);
        if self.held.len() < share {
            let mut free: Vec<i32> = (0..m.partitions as i32)
                .filter(|p| !self.held.contains_key(p))
                .filter(|p| leases.get(p).is_none_or(|l| l.expired))
                .collect();
            free.sort_by_key(|p| self.rank(*p));
            for p in free {
                if self.held.len() >= share {
                    break;
                }
                if self.acquire(c, p)?.is_some() {
                    out.taken.push(p);
                }
            }
        }
        // more than the share (nodes joined), or above the floor while a node is below it:
        // give back the least preferred, one a round in the second case so it settles
        let extra = if self.held.len() > share {
            self.held.len() - share
        } else if self.held.len() > floor && starved {
            1
        } else {
            0
        };
        if extra > 0 {
            let mut mine: Vec<(i32, i64)> = self.held.iter().map(|(p, h)| (*p, h.epoch)).collect();
            mine.sort_by_key(|(p, _)| std::cmp::Reverse(self.rank(*p)));
            for (p, epoch) in mine.into_iter().take(extra) {
                c.release(p, &m.node, epoch).map_err(AppError::from)?;
                self.held.remove(&p);
                out.released.push(p);
            }
        }
        out.held = self.held.len();
        Ok(out)
    }

    /// A clean stop: the node's heartbeat and leases go at once, so others take over now
    /// rather than when the leases would have expired.
    pub fn leave(&mut self, c: &dyn ClusterStore) -> AppResult<()> {
        self.held.clear();
        c.leave(&self.membership.node, &self.membership.instance)
            .map_err(AppError::from)
    }
}

/// The supervisor's placement in cluster mode: a tenant's workers run here while this node
/// holds the lease of the tenant's partition; store-wide workers (retention, audit
/// checkpoints) run on the holder of partition 0, so exactly one node runs them.
pub struct LeasePlacement {
    node: String,
    partitions: u32,
    held: std::sync::RwLock<BTreeMap<i32, Held>>,
    /// Partitions taken, lost or given back since start.
    changes: std::sync::atomic::AtomicU64,
}

/// This node as its placement sees it: for `/readyz`, `/metrics` and the cluster API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub node: String,
    pub partitions: u32,
    /// The partitions held now, each with its epoch.
    pub held: Vec<(i32, i64)>,
    pub lease_changes: u64,
}

impl LeasePlacement {
    pub fn new(node: &str, partitions: u32) -> LeasePlacement {
        LeasePlacement {
            node: node.to_string(),
            partitions,
            held: Default::default(),
            changes: Default::default(),
        }
    }

    /// Takes the keeper's view after a round.
    pub fn update(&self, k: &Keeper, round: Option<&Round>) {
        *self.held.write().unwrap_or_else(|p| p.into_inner()) = k.held.clone();
        if let Some(r) = round {
            let n = r.taken.len() + r.lost.len() + r.released.len();
            self.changes
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn view(&self) -> NodeView {
        let now = Instant::now();
        NodeView {
            node: self.node.clone(),
            partitions: self.partitions,
            held: self
                .held
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|(_, h)| h.until > now)
                .map(|(p, h)| (*p, h.epoch))
                .collect(),
            lease_changes: self.changes.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether this node still holds `partition` at `epoch` (its local view, which ends
    /// before the database's).
    pub fn holds_at(&self, partition: i32, epoch: i64) -> bool {
        self.held
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .is_some_and(|h| h.epoch == epoch && h.until > Instant::now())
    }

    fn holds(&self, partition: i32) -> bool {
        self.held
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .is_some_and(|h| h.until > Instant::now())
    }
}

impl crate::supervisor::Placement for LeasePlacement {
    fn runs(&self, _worker: &str, tenant: Option<&str>) -> bool {
        match tenant {
            Some(t) => self.holds(partition_of(t, self.partitions)),
            None => self.holds(0),
        }
    }
}

/// The cluster as the database sees it: for `cxm cluster status` and the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Status {
    #[schema(value_type = Vec<Object>)]
    pub nodes: Vec<cxm_store::ClusterNode>,
    #[schema(value_type = Vec<Object>)]
    pub leases: Vec<Lease>,
    /// Partitions with no live lease.
    pub unowned: Vec<i32>,
}

/// [`status`] of the store's cluster; not found when the store keeps none (SQLite).
pub fn status_of(store: &dyn cxm_store::Store, partitions: u32) -> AppResult<Status> {
    let c = store
        .cluster()
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "cluster state lives in PostgreSQL"))?;
    status(c, partitions)
}

pub fn status(c: &dyn ClusterStore, partitions: u32) -> AppResult<Status> {
    let nodes = c.live_nodes().map_err(AppError::from)?;
    let leases = c.leases().map_err(AppError::from)?;
    let owned: std::collections::HashSet<i32> = leases
        .iter()
        .filter(|l| !l.expired)
        .map(|l| l.partition)
        .collect();
    Ok(Status {
        nodes,
        unowned: (0..partitions as i32)
            .filter(|p| !owned.contains(p))
            .collect(),
        leases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("ten_a", 64), partition_of("ten_a", 64));
        let mut counts = vec![0; 64];
        for i in 0..6400 {
            counts[partition_of(&format!("ten_{i}"), 64) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (60..=140).contains(c)), "{counts:?}");
        assert!((0..100).all(|i| partition_of(&format!("t{i}"), 1) == 0));
    }

    #[test]
    fn bad_membership_is_named() {
        let ttl = Duration::from_secs(10);
        assert!(Membership::new("node-1", 64, ttl).is_ok());
        for (node, p, says) in [
            ("", 64, "node id"),
            ("a b", 64, "node id"),
            ("n", 0, "partitions"),
            ("n", 5000, "partitions"),
        ] {
            let e = Membership::new(node, p, ttl).unwrap_err();
            assert!(e.detail.contains(says), "{}", e.detail);
        }
    }
}

/// This node's side of the ingest log, for `/readyz`, `/metrics` and the cluster API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogView {
    /// Whether the node holds a connection to a NATS server now.
    pub connected: bool,
    pub servers: Vec<String>,
    /// Copies each stream keeps.
    pub replicas: usize,
    /// Events this node published and had acknowledged.
    pub published: u64,
    pub publish_retries: u64,
    /// Requests answered 503 because the log did not acknowledge in time.
    pub publish_failures: u64,
    /// Mean time from a request's first publish to its last acknowledgement.
    pub mean_publish_ms: f64,
    /// Events this node's partition owners applied (new ones; duplicates not counted).
    pub applied: u64,
    /// Events dropped as applied already (redeliveries and resent events).
    pub skipped: u64,
    /// Batches refused by the fence (the lease had moved on).
    pub fenced: u64,
    /// Per held partition: events in the log not yet pulled, at the last pull.
    pub lag: BTreeMap<i32, u64>,
    /// The lag summed over this node's partitions.
    pub lag_total: u64,
    pub last_apply_ms: Option<i64>,
}

/// The log's view of `app`, when ingest goes through NATS.
pub fn log_view(app: &crate::App) -> Option<LogView> {
    use std::sync::atomic::Ordering::Relaxed;
    let log = app.ingest_log.get()?;
    let m = &log.metrics;
    let stats = &app.apply_stats;
    let requests = m.publish_requests.load(Relaxed);
    let last = stats.last_apply_ms.load(Relaxed);
    Some(LogView {
        connected: log.connected(),
        servers: log.config.urls.clone(),
        replicas: log.replicas,
        published: m.published.load(Relaxed),
        publish_retries: m.publish_retries.load(Relaxed),
        publish_failures: m.publish_failures.load(Relaxed),
        mean_publish_ms: if requests == 0 {
            0.0
        } else {
            m.publish_micros.load(Relaxed) as f64 / requests as f64 / 1000.0
        },
        applied: stats.applied.load(Relaxed),
        skipped: stats.skipped.load(Relaxed),
        fenced: stats.fenced.load(Relaxed),
        lag_total: stats.lag().values().sum(),
        lag: stats.lag(),
        last_apply_ms: (last > 0).then_some(last),
    })
}
