//! Cluster membership and partition leases in PostgreSQL. Each statement reads the time from
//! the database (`now()`), never from the node, so a node with a skewed clock cannot stretch
//! a lease; taking a lease and logging its epoch happen in one transaction.

use super::*;

/// Milliseconds since the epoch of a timestamp column, in SQL.
macro_rules! ms {
    ($col:literal) => {
        concat!("(extract(epoch from ", $col, ") * 1000)::bigint")
    };
}

const LEASE_COLUMNS: &str = concat!(
    "partition, owner, epoch, ",
    ms!("acquired_at"),
    ", ",
    ms!("renewed_at"),
    ", ",
    ms!("expires_at"),
    ", expires_at <= now(), applied_seq, ",
    ms!("applied_at")
);

fn lease_of(r: &Row) -> Lease {
    Lease {
        partition: r.get(0),
        owner: r.get(1),
        epoch: r.get(2),
        acquired_at_ms: r.get(3),
        renewed_at_ms: r.get(4),
        expires_at_ms: r.get(5),
        expired: r.get(6),
        applied_seq: r.get(7),
        applied_at_ms: r.get(8),
    }
}

impl ClusterStore for PgStore {
    fn heartbeat(&self, node: &str, instance: &str, ttl_ms: i64) -> Result<()> {
        self.tx(|g| {
            let n = g.exec(
                "INSERT INTO cluster_nodes (node_id, instance, started_at, heartbeat_at, expires_at)
                 VALUES ($1, $2, now(), now(), now() + $3::float8 * interval '1 millisecond')
                 ON CONFLICT (node_id) DO UPDATE SET
                   started_at = CASE WHEN cluster_nodes.instance = excluded.instance THEN cluster_nodes.started_at ELSE now() END,
                   instance = excluded.instance, heartbeat_at = now(), expires_at = excluded.expires_at
                 WHERE cluster_nodes.instance = excluded.instance OR cluster_nodes.expires_at <= now()",
                &[&node, &instance, &(ttl_ms as f64)],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "node id {node} is in use by another running process"
                )));
            }
            Ok(())
        })
    }

    fn leave(&self, node: &str, instance: &str) -> Result<()> {
        self.tx(|g| {
            let n = g.exec(
                "DELETE FROM cluster_nodes WHERE node_id = $1 AND instance = $2",
                &[&node, &instance],
            )?;
            if n > 0 {
                g.exec(
                    "UPDATE cluster_leases SET expires_at = now() WHERE owner = $1 AND expires_at > now()",
                    &[&node],
                )?;
            }
            Ok(())
        })
    }

    fn live_nodes(&self) -> Result<Vec<ClusterNode>> {
        self.tx(|g| {
            Ok(g.all(
                concat!(
                    "SELECT node_id, ",
                    ms!("started_at"),
                    ", ",
                    ms!("heartbeat_at"),
                    ", ",
                    ms!("expires_at"),
                    " FROM cluster_nodes WHERE expires_at > now() ORDER BY node_id"
                ),
                &[],
            )?
            .iter()
            .map(|r| ClusterNode {
                node_id: r.get(0),
                started_at_ms: r.get(1),
                heartbeat_at_ms: r.get(2),
                expires_at_ms: r.get(3),
            })
            .collect())
        })
    }

    fn leases(&self) -> Result<Vec<Lease>> {
        self.with(|c| {
            Ok(c.client
                .query(
                    &format!("SELECT {LEASE_COLUMNS} FROM cluster_leases ORDER BY partition"),
                    &[],
                )?
                .iter()
                .map(lease_of)
                .collect())
        })
    }

    fn acquire(&self, partition: i32, node: &str, ttl_ms: i64) -> Result<Option<Lease>> {
        let ttl = ttl_ms as f64;
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            // renewing keeps the epoch; taking a free, expired or lapsed lease makes a new one.
            // A conflicting writer waits on the row lock, then sees the committed lease.
            let row = tx.query_opt(
                &format!(
                    "INSERT INTO cluster_leases AS l (partition, owner, epoch, acquired_at, renewed_at, expires_at)
                     VALUES ($1, $2, 1, now(), now(), now() + $3::float8 * interval '1 millisecond')
                     ON CONFLICT (partition) DO UPDATE SET
                       epoch = CASE WHEN l.owner = excluded.owner AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
                       acquired_at = CASE WHEN l.owner = excluded.owner AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
                       owner = excluded.owner, renewed_at = now(), expires_at = excluded.expires_at
                     WHERE l.owner = excluded.owner OR l.expires_at <= now()
                     RETURNING {LEASE_COLUMNS}"
                ),
                &[&partition, &node, &ttl],
            )?;
            let Some(row) = row else {
                tx.rollback()?;
                return Ok(None);
            };
            let lease = lease_of(&row);
            // the primary key refuses a second owner of one epoch
            tx.execute(
                "INSERT INTO cluster_lease_log (partition, epoch, owner, granted_at) VALUES ($1, $2, $3, now())
                 ON CONFLICT (partition, epoch) DO NOTHING",
                &[&partition, &lease.epoch, &node],
            )?;
            let logged: String = tx
                .query_one(
                    "SELECT owner FROM cluster_lease_log WHERE partition = $1 AND epoch = $2",
                    &[&partition, &lease.epoch],
                )?
                .get(0);
            if logged != node {
                tx.rollback()?;
                return Err(StoreError::Conflict(format!(
                    "partition {partition} epoch {} was granted to {logged} already",
                    lease.epoch
                )));
            }
            tx.commit()?;
            Ok(Some(lease))
        })
    }

    fn release(&self, partition: i32, node: &str, epoch: i64) -> Result<bool> {
        self.tx(|g| {
            Ok(g.exec(
                "UPDATE cluster_leases SET expires_at = now() WHERE partition = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()",
                &[&partition, &node, &epoch],
            )? == 1)
        })
    }

    fn advance_applied(&self, partition: i32, node: &str, epoch: i64, seq: i64) -> Result<()> {
        self.tx(|g| {
            let n = g.exec(
                "UPDATE cluster_leases SET applied_seq = GREATEST(applied_seq, $4)
                 WHERE partition = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()",
                &[&partition, &node, &epoch, &seq],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "{node} no longer holds partition {partition} at epoch {epoch}"
                )));
            }
            Ok(())
        })
    }

    fn lease_history(&self, partition: i32) -> Result<Vec<(i64, String)>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT epoch, owner FROM cluster_lease_log WHERE partition = $1 ORDER BY epoch",
                &[&partition],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn apply(&self, fence: &Fence, batch: &[LogEvent]) -> Result<Applied> {
        self.ensure_dedup_days(batch.iter().map(|e| &e.event))?;
        self.tx(|g| {
            // the lease row stays locked until commit: a taker waits, then sees the new position
            let row = g.opt(
                "SELECT applied_seq FROM cluster_leases
                 WHERE partition = $1 AND owner = $2 AND epoch = $3 AND expires_at > now() FOR UPDATE",
                &[&fence.partition, &fence.node, &fence.epoch],
            )?;
            let Some(row) = row else {
                return Err(StoreError::Conflict(format!(
                    "{} no longer holds partition {} at epoch {}",
                    fence.node, fence.partition, fence.epoch
                )));
            };
            let before: i64 = row.get(0);
            // every event is appended: the log may redeliver an older batch after a newer
            // one (a dead owner's unacknowledged pull), so a position cannot tell what was
            // applied; the tenant's dedup window can, as it does for a resent SDK batch
            let fresh: Vec<&LogEvent> = batch.iter().collect();
            let (Some(first), Some(last)) = (
                fresh.iter().map(|e| e.seq).min(),
                fresh.iter().map(|e| e.seq).max(),
            ) else {
                return Ok(Applied {
                    skipped: 0,
                    outcome: AppendOutcome::default(),
                    applied_seq: before,
                });
            };
            let requests = crate::graph::requests_of(&fresh);
            let tenants: BTreeSet<&str> = requests.iter().map(|r| r.tenant_id.as_str()).collect();
            for t in &tenants {
                g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[t])?;
            }
            let outcomes = graph::append_all(g, &requests, &self.settings)?;
            let mut outcome = AppendOutcome::default();
            for o in outcomes {
                outcome.accepted += o.accepted;
                outcome.duplicates += o.duplicates;
                outcome.quarantined += o.quarantined;
            }
            g.exec(
                "UPDATE cluster_leases SET applied_seq = GREATEST(applied_seq, $2), applied_at = now() WHERE partition = $1",
                &[&fence.partition, &last],
            )?;
            let events = fresh.len() as i32;
            g.exec(
                "INSERT INTO cluster_applies (partition, epoch, owner, first_seq, last_seq, events, applied_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now())",
                &[&fence.partition, &fence.epoch, &fence.node, &first, &last, &events],
            )?;
            Ok(Applied {
                skipped: outcome.duplicates as usize,
                outcome,
                applied_seq: before.max(last),
            })
        })
    }

    fn applies(&self, partition: i32) -> Result<Vec<ApplyRecord>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT partition, epoch, owner, first_seq, last_seq, events FROM cluster_applies
                 WHERE partition = $1 ORDER BY id",
                &[&partition],
            )?
            .iter()
            .map(|r| ApplyRecord {
                partition: r.get(0),
                epoch: r.get(1),
                owner: r.get(2),
                first_seq: r.get(3),
                last_seq: r.get(4),
                events: r.get(5),
            })
            .collect())
        })
    }

    fn prune_applies(&self, older_than_ms: i64) -> Result<u64> {
        let ms = older_than_ms as f64;
        self.tx(|g| {
            g.exec(
                "DELETE FROM cluster_applies WHERE applied_at < now() - $1::float8 * interval '1 millisecond'",
                &[&ms],
            )
        })
    }
}
