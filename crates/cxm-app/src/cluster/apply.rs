//! The owner's side of the ingest log: for every partition this node holds, a task pulls the
//! partition's events in batches and applies each batch in one fenced transaction
//! ([`cxm_store::ClusterStore::apply`]), then acknowledges each of its events. Acknowledging
//! after the commit means a crash in between redelivers the batch, which the dedup window
//! drops; a lease that moved on makes the store refuse the write, and the task stops.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use cxm_store::{Fence, LogEvent, StoreError};

use super::log::{IngestLog, Wire};
use super::LeasePlacement;
use crate::App;

/// Events pulled per batch: one transaction each.
const BATCH: usize = 4_000;

/// How long a pull waits for the first event of a batch when the partition is quiet.
const PULL_WAIT: Duration = Duration::from_millis(500);

/// What the applier has done, per partition this node holds, for `/metrics` and the API.
#[derive(Default)]
pub struct ApplyStats {
    pub applied: AtomicU64,
    pub skipped: AtomicU64,
    pub undecodable: AtomicU64,
    pub fenced: AtomicU64,
    /// Per partition: events the consumer had not delivered yet at the last pull.
    pub lag: std::sync::Mutex<BTreeMap<i32, u64>>,
    /// Milliseconds since the epoch of the last applied batch.
    pub last_apply_ms: AtomicI64,
}

impl ApplyStats {
    pub fn lag(&self) -> BTreeMap<i32, u64> {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Follows the placement: drives a loop for each partition held (at its epoch), checking
/// twice a second for partitions newly held. A loop ends by itself once its lease moves on
/// (after its batch, handing the batch back if the fence refused it). All of them run inside
/// this one future, which the binary starts beside the lease keeper; returns when `stop` is
/// set, and a batch being applied then commits or not: the log keeps what is unacknowledged.
pub async fn run(
    app: Arc<App>,
    log: Arc<IngestLog>,
    placement: Arc<LeasePlacement>,
    stats: Arc<ApplyStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use futures_util::stream::FuturesUnordered;
    type Loop = std::pin::Pin<Box<dyn std::future::Future<Output = (i32, i64)> + Send>>;
    let mut running: std::collections::BTreeSet<(i32, i64)> = Default::default();
    let mut loops: FuturesUnordered<Loop> = FuturesUnordered::new();
    loop {
        for (p, epoch) in placement.view().held {
            if running.insert((p, epoch)) {
                let fence = Fence {
                    partition: p,
                    node: placement.node().to_string(),
                    epoch,
                };
                let (app, log, placement, stats) =
                    (app.clone(), log.clone(), placement.clone(), stats.clone());
                loops.push(Box::pin(async move {
                    partition(app, log, placement, stats, fence).await;
                    (p, epoch)
                }));
            }
        }
        tokio::select! {
            Some((p, epoch)) = loops.next(), if !loops.is_empty() => {
                running.remove(&(p, epoch));
                if !running.iter().any(|(q, _)| *q == p) {
                    stats.lag.lock().unwrap_or_else(|p| p.into_inner()).remove(&p);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => break,
        }
    }
}

/// One batch from the partition's consumer: up to [`BATCH`] events, or what arrived within
/// [`PULL_WAIT`]. Bounded on this side too, since a server that dies mid-pull never answers.
async fn pull(
    consumer: &async_nats::jetstream::consumer::PullConsumer,
) -> Result<Vec<async_nats::jetstream::Message>, String> {
    let fetch = async {
        let batch = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(PULL_WAIT)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(
            batch
                .take_while(|m| std::future::ready(m.is_ok()))
                .filter_map(|m| async move { m.ok() })
                .collect()
                .await,
        )
    };
    tokio::time::timeout(PULL_WAIT + Duration::from_secs(2), fetch)
        .await
        .map_err(|_| "no answer to the pull".to_string())?
}

/// The loop of one held partition at one epoch.
async fn partition(
    app: Arc<App>,
    log: Arc<IngestLog>,
    placement: Arc<LeasePlacement>,
    stats: Arc<ApplyStats>,
    fence: Fence,
) {
    let p = fence.partition;
    let consumer = loop {
        match log.consumer(p).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(partition = p, error = %e.detail, "cannot open the partition's consumer; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if !placement.holds_at(p, fence.epoch) {
                    return;
                }
            }
        }
    };
    tracing::debug!(partition = p, epoch = fence.epoch, "applying partition");
    while placement.holds_at(p, fence.epoch) {
        let msgs = match pull(&consumer).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(partition = p, error = %e, "pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if msgs.is_empty() {
            continue;
        }
        let mut events = Vec::with_capacity(msgs.len());
        let mut pending = 0;
        for m in &msgs {
            let Ok(info) = m.info() else { continue };
            pending = info.pending;
            match serde_json::from_slice::<Wire>(&m.payload) {
                Ok(w) => events.push(LogEvent {
                    seq: info.stream_sequence as i64,
                    tenant_id: w.tenant_id,
                    write_key_id: w.write_key_id,
                    event: w.event,
                }),
                // only cxm writes these subjects; a body it cannot read is counted and
                // passed over rather than holding the partition up for ever
                Err(e) => {
                    stats.undecodable.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(partition = p, seq = info.stream_sequence, error = %e, "undecodable message in the ingest log; skipped");
                }
            }
        }
        stats
            .lag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(p, pending);
        // the store's work: retried until it commits or the fence says stop
        let mut failures = 0u32;
        let applied = loop {
            let (store, f, evs) = (app.store.0.clone(), fence.clone(), events.clone());
            let r = tokio::task::spawn_blocking(move || match store.cluster() {
                Some(c) => c.apply(&f, &evs),
                None => Err(StoreError::Backend("cluster mode needs PostgreSQL".into())),
            })
            .await
            .unwrap_or_else(|e| Err(StoreError::Backend(format!("apply task failed: {e}"))));
            match r {
                Ok(a) => break Some(a),
                Err(StoreError::Conflict(d)) => {
                    stats.fenced.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(partition = p, epoch = fence.epoch, detail = %d, "fenced off: stopping this partition");
                    break None;
                }
                Err(e) => {
                    // a store that is down fails every partition twice a second: say it once,
                    // then every ten seconds while it lasts
                    failures += 1;
                    if failures % 20 == 1 {
                        tracing::warn!(partition = p, error = %e, attempts = failures, "apply failed; retrying the batch");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if !placement.holds_at(p, fence.epoch) {
                        break None;
                    }
                }
            }
        };
        let Some(a) = applied else {
            // handed over mid-batch: give the batch back now, so the next owner gets it at
            // once instead of after the acknowledgement wait
            for m in &msgs {
                let _ = m.ack_with(async_nats::jetstream::AckKind::Nak(None)).await;
            }
            return;
        };
        stats
            .applied
            .fetch_add(u64::from(a.outcome.accepted), Ordering::Relaxed);
        stats.skipped.fetch_add(a.skipped as u64, Ordering::Relaxed);
        stats
            .last_apply_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        app.metrics
            .events_duplicate
            .fetch_add(u64::from(a.outcome.duplicates), Ordering::Relaxed);
        if a.outcome.accepted > 0 {
            app.themes_wake.notify_one();
        }
        // each applied event is acknowledged; a lost ack only means a redelivery that the
        // dedup window drops
        for m in &msgs {
            if let Err(e) = m.ack().await {
                tracing::debug!(partition = p, error = %e, "ack failed; the event will come again and be dropped as applied");
                break;
            }
        }
    }
}
