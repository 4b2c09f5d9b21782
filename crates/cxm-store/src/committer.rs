//! Group commit: one writer gathers the requests that arrive while the previous commit is on
//! disk into one transaction, then answers each. fsync costs milliseconds here, so this is what
//! makes "acknowledged means durable" cheap at tens of thousands of events per second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::{AppendOutcome, AppendRequest, Result, Store, StoreError};

/// Upper bound on events in one transaction, so one commit never stalls the rest for long.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;

/// How long the writer waits without a request before it does the work it put off.
const IDLE: std::time::Duration = std::time::Duration::from_millis(50);

type Job = (AppendRequest, oneshot::Sender<Result<AppendOutcome>>);

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// What the writer has done since it started, for `/metrics`. Busy time that grows as fast as
/// the clock means the one writer is what limits this node's ingest; events per commit say
/// how much each fsync carries.
#[derive(Default, Debug)]
pub struct WriterStats {
    /// Group commits attempted (a group that fails and is retried one by one counts once).
    pub commits: AtomicU64,
    pub requests: AtomicU64,
    pub events: AtomicU64,
    /// Microseconds from taking a group to having it committed: the store's lock and the
    /// transaction. The sync that makes it durable runs beside the next group.
    pub busy_us: AtomicU64,
}

impl Committer {
    /// Starts the writer task. It stops once every `Committer` clone is dropped and the
    /// queue is drained, which is how shutdown finishes in-flight ingestion.
    pub fn spawn(store: Arc<dyn Store>) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        let stats = Arc::new(WriterStats::default());
        let counted = stats.clone();
        let (synced_tx, synced_rx) = mpsc::channel::<Answers>(64);
        let syncer = tokio::spawn(sync_then_answer(store.clone(), synced_rx));
        let handle = tokio::spawn(async move {
            // true at start: a store opened with work left over (a load, a restart) does it
            // as soon as the writer is idle
            let mut upkeep_due = true;
            loop {
                let first = match tokio::time::timeout(IDLE, rx.recv()).await {
                    Ok(Some(j)) => j,
                    Ok(None) => break,
                    Err(_) => {
                        if std::mem::take(&mut upkeep_due) {
                            let store = store.clone();
                            let done =
                                tokio::task::spawn_blocking(move || store.upkeep_while_idle())
                                    .await;
                            if let Ok(Err(e)) = done {
                                tracing::warn!(error = %e, "ingest upkeep failed");
                            }
                        }
                        match rx.recv().await {
                            Some(j) => j,
                            None => break,
                        }
                    }
                };
                upkeep_due = true;
                let mut jobs = vec![first];
                let mut events = jobs[0].0.events.len();
                while events < MAX_EVENTS_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(j) => {
                            events += j.0.events.len();
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                let (reqs, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
                let (n_reqs, started) = (reqs.len() as u64, Instant::now());
                let writer = store.clone();
                let results = tokio::task::spawn_blocking(move || {
                    let r = commit_group(writer.as_ref(), &reqs);
                    // the requests are freed here, off the async workers
                    drop(reqs);
                    r
                })
                .await
                .unwrap_or_else(|e| {
                    let e = StoreError::Backend(format!("writer task failed: {e}"));
                    replies.iter().map(|_| Err(e.clone())).collect()
                });
                counted.commits.fetch_add(1, Ordering::Relaxed);
                counted.requests.fetch_add(n_reqs, Ordering::Relaxed);
                counted.events.fetch_add(events as u64, Ordering::Relaxed);
                counted
                    .busy_us
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                if synced_tx
                    .send(replies.into_iter().zip(results).collect())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            drop(synced_tx);
            let _ = syncer.await;
        });
        (Committer { tx, stats }, handle)
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Resolves after the request is committed (or failed); never before.
    pub async fn submit(&self, req: AppendRequest) -> Result<AppendOutcome> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((req, reply))
            .await
            .map_err(|_| StoreError::Backend("ingest writer is shut down".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("ingest writer dropped the request".into()))?
    }
}

/// One committed group's answers, held until its commit is on disk.
type Answers = Vec<(
    oneshot::Sender<Result<AppendOutcome>>,
    Result<AppendOutcome>,
)>;

/// Answers each committed group once `sync_appended` has made it durable: one sync covers
/// every group committed before it starts, so while it runs the writer commits the next
/// group instead of waiting for the disk. A failed sync answers the group's stored requests
/// with an error; the client resends them and the dedup window takes the copies for what
/// they are.
async fn sync_then_answer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Answers>) {
    while let Some(first) = rx.recv().await {
        let mut groups = vec![first];
        while let Ok(more) = rx.try_recv() {
            groups.push(more);
        }
        let s = store.clone();
        let synced = tokio::task::spawn_blocking(move || s.sync_appended())
            .await
            .unwrap_or_else(|e| Err(StoreError::Backend(format!("sync task failed: {e}"))));
        if let Err(e) = &synced {
            tracing::error!(error = %e, "ingest commit not synced to disk");
        }
        for (reply, r) in groups.into_iter().flatten() {
            let r = match (&synced, r) {
                (Err(e), Ok(_)) => Err(e.clone()),
                (_, r) => r,
            };
            let _ = reply.send(r);
        }
    }
}

/// Commits the requests together; if that fails and there was more than one, commits each
/// on its own, so a request the store refuses fails alone and never takes the others of its
/// group with it.
fn commit_group(store: &dyn Store, reqs: &[AppendRequest]) -> Vec<Result<AppendOutcome>> {
    match store.append_unsynced(reqs) {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if reqs.len() == 1 => {
            tracing::error!(error = %e, "ingest commit failed");
            vec![Err(e)]
        }
        Err(e) => {
            tracing::warn!(error = %e, requests = reqs.len(), "group commit failed; committing its requests one by one");
            reqs.iter()
                .map(|r| match store.append_unsynced(std::slice::from_ref(r)) {
                    Ok(mut o) => Ok(o.pop().unwrap_or_default()),
                    Err(e) => {
                        tracing::error!(error = %e, tenant = %r.tenant_id, "ingest commit failed");
                        Err(e)
                    }
                })
                .collect()
        }
    }
}
