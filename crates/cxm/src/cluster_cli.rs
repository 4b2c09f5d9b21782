//! `cxm cluster ...`: the nodes sharing a PostgreSQL database and who owns each partition,
//! straight from the database.

use clap::Subcommand;
use cxm_store::Store;

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Live nodes, each partition's owner, epoch, expiry and applied position, and the
    /// partitions nobody owns.
    Status {
        /// How many virtual partitions the cluster runs (as `cxm serve --partitions`).
        #[arg(long, env = "CXM_PARTITIONS", default_value_t = 64)]
        partitions: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn cluster(store: &dyn Store, cmd: &ClusterCmd) -> anyhow::Result<()> {
    let ClusterCmd::Status { partitions, json } = cmd;
    let Some(c) = store.cluster() else {
        anyhow::bail!(
            "cluster state lives in PostgreSQL: pass --database-url (this is the embedded store)"
        );
    };
    let s = cxm_app::cluster::status(c, *partitions).map_err(|e| anyhow::anyhow!(e.detail))?;
    if *json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    println!("{} live node(s)", s.nodes.len());
    for n in &s.nodes {
        println!(
            "  {}\tup {}s\theartbeat {} ms ago",
            n.node_id,
            (now - n.started_at_ms).max(0) / 1000,
            (now - n.heartbeat_at_ms).max(0)
        );
    }
    println!("partition\towner\tepoch\texpires in\tapplied through\tlast apply");
    for l in &s.leases {
        let left = if l.expired {
            "expired".to_string()
        } else {
            format!("{} ms", (l.expires_at_ms - now).max(0))
        };
        let last = l.applied_at_ms.map_or_else(
            || "-".to_string(),
            |t| format!("{} s ago", (now - t).max(0) / 1000),
        );
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            l.partition, l.owner, l.epoch, left, l.applied_seq, last
        );
    }
    if s.unowned.is_empty() {
        println!("every partition has an owner");
    } else {
        println!(
            "{} of {partitions} partitions have no owner: {:?}",
            s.unowned.len(),
            s.unowned
        );
    }
    Ok(())
}
