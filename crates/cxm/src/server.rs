//! Starting and stopping the server: the committer, the application and its supervised
//! workers, the HTTP listener, and a shutdown that drains in-flight ingestion before the
//! process exits.

use std::sync::Arc;

use cxm_store::committer::Committer;
use cxm_store::Store;

use crate::config::Settings;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// How long a partition lease and a node's heartbeat last; the keeper renews every third.
const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(15);

/// How long the record of each applied batch is kept, and how often (in keeper rounds) the
/// holder of partition 0 prunes it.
const APPLY_RECORDS_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
const APPLY_PRUNE_ROUNDS: u64 = 720;

type KeeperTask = (
    tokio::task::JoinHandle<()>,
    tokio::sync::watch::Sender<bool>,
);

/// Joins the cluster: a first round at once (a node id another live process holds is refused
/// here, before anything is served), then a round every third of the lease until stopped,
/// when the node leaves so the others take its partitions at once.
async fn join_cluster(
    store: Arc<dyn Store>,
    node: &str,
    partitions: u32,
) -> anyhow::Result<(Arc<cxm_app::cluster::LeasePlacement>, KeeperTask)> {
    use cxm_app::cluster::{Keeper, LeasePlacement, Membership};
    let membership =
        Membership::new(node, partitions, LEASE_TTL).map_err(|e| anyhow::anyhow!(e.detail))?;
    let placement = Arc::new(LeasePlacement::new(node, partitions));
    let (s, p) = (store.clone(), placement.clone());
    let mut keeper = tokio::task::spawn_blocking(move || -> anyhow::Result<Keeper> {
        let c = s
            .cluster()
            .ok_or_else(|| anyhow::anyhow!("cluster mode needs PostgreSQL"))?;
        let mut k = Keeper::new(membership);
        let r = k.round(c).map_err(|e| anyhow::anyhow!(e.detail))?;
        tracing::info!(node = %k.membership.node, live_nodes = r.live_nodes, held = r.held, "joined the cluster");
        p.update(&k, Some(&r));
        Ok(k)
    })
    .await??;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let p = placement.clone();
    let task = tokio::spawn(async move {
        let mut rounds: u64 = 0;
        loop {
            rounds += 1;
            tokio::select! {
                _ = tokio::time::sleep(LEASE_TTL / 3) => {}
                _ = stopped.changed() => break,
            }
            let (s, p2) = (store.clone(), p.clone());
            keeper = match tokio::task::spawn_blocking(move || {
                let mut round = None;
                if let Some(c) = s.cluster() {
                    match keeper.round(c) {
                        Ok(r) => {
                            if !(r.taken.is_empty() && r.lost.is_empty() && r.released.is_empty()) {
                                tracing::info!(node = %keeper.membership.node, live_nodes = r.live_nodes, held = r.held,
                                    taken = ?r.taken, lost = ?r.lost, released = ?r.released, "partition leases changed");
                            }
                            round = Some(r);
                        }
                        // leases run out by themselves: a node that cannot renew stops acting
                        Err(e) => tracing::warn!(error = %e.detail, "lease round failed"),
                    }
                }
                p2.update(&keeper, round.as_ref());
                // the apply records are evidence for a week; the holder of partition 0 forgets
                // older ones about once an hour
                if rounds % APPLY_PRUNE_ROUNDS == 1 && keeper.epoch_of(0).is_some() {
                    if let Some(c) = s.cluster() {
                        match c.prune_applies(APPLY_RECORDS_KEPT.as_millis() as i64) {
                            Ok(n) if n > 0 => tracing::info!(removed = n, "pruned old apply records"),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "could not prune apply records"),
                        }
                    }
                }
                keeper
            })
            .await
            {
                Ok(k) => k,
                Err(_) => return,
            };
        }
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(c) = store.cluster() {
                if let Err(e) = keeper.leave(c) {
                    tracing::warn!(error = %e.detail, "could not leave the cluster; its leases will expire");
                }
            }
        })
        .await;
    });
    Ok((placement, (task, stop)))
}

/// Serves on `listener` until `shutdown` resolves. Order matters on the way out: stop
/// accepting, let every in-flight request get its commit, then let the writer drain.
pub async fn run(
    settings: &Settings,
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (committer, writer) = Committer::spawn(store.clone());
    let app = cxm_app::App::new(store.clone(), committer, settings.app_config());
    let state = cxm_http::AppState::with_app(app.clone(), settings.http.clone());
    // the log first: a node that cannot reach NATS must not take leases it cannot serve
    if let (Some((urls, replicas)), Some((node, partitions))) = (&settings.nats, &settings.cluster)
    {
        let log = cxm_app::cluster::log::IngestLog::connect(cxm_app::cluster::log::LogConfig {
            urls: urls.clone(),
            partitions: *partitions,
            replicas: *replicas,
            node: node.clone(),
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
        tracing::info!(servers = %urls.join(","), replicas = log.replicas, "ingest goes through the NATS log");
        let _ = app.ingest_log.set(Arc::new(log));
    }
    let (placement, keeper): (Arc<dyn cxm_app::supervisor::Placement>, _) = match &settings.cluster
    {
        None => (Arc::new(cxm_app::supervisor::Everything), None),
        Some((node, partitions)) => {
            let (p, (task, stop)) = join_cluster(store.clone(), node, *partitions).await?;
            (p.clone(), Some((task, stop, p)))
        }
    };
    let supervisor =
        cxm_app::supervisor::Supervisor::start(app.clone(), cxm_app::workers::all(&app), placement);
    if let Some((_, _, p)) = &keeper {
        let _ = state.cluster.set(p.clone());
    }
    // a partition's owner applies what the log holds for it
    let applier = match (app.ingest_log.get(), &keeper) {
        (Some(log), Some((_, _, p))) => {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(cxm_app::cluster::apply::run(
                app.clone(),
                log.clone(),
                p.clone(),
                app.apply_stats.clone(),
                stopped,
            ));
            Some((task, stop))
        }
        _ => None,
    };
    let _ = state.workers.set(supervisor.roster());
    drop(app);
    tracing::info!(addr = %listener.local_addr()?, store = store.backend(), workers = ?supervisor.roster().names(), "serving");
    cxm_http::serve(listener, state, shutdown).await?;
    // a pass in progress finishes (its writes reach the committer) before the writer drains
    supervisor.stop(std::time::Duration::from_secs(10)).await;
    if let Some((task, stop)) = applier {
        let _ = stop.send(true);
        task.await.ok();
    }
    // the router (and with it the last committer handle) is gone: the writer finishes its queue
    writer.await.ok();
    if let Some((task, stop, _)) = keeper {
        let _ = stop.send(true);
        task.await.ok();
    }
    tracing::info!("stopped; every acknowledged event is committed");
    Ok(())
}
