//! Group commit: one writer gathers the requests that arrive while the previous commit is on
//! disk into one transaction, then answers each. fsync costs milliseconds here, so this is what
//! makes "acknowledged means durable" cheap at tens of thousands of events per second.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::{AppendOutcome, AppendRequest, Result, Store, StoreError};

/// Upper bound on events in one transaction, so one commit never stalls the rest for long.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;

type Job = (AppendRequest, oneshot::Sender<Result<AppendOutcome>>);

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writer task. It stops once every `Committer` clone is dropped and the
    /// queue is drained, which is how shutdown finishes in-flight ingestion.
    pub fn spawn(store: Arc<dyn Store>) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        let handle = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
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
                let store = store.clone();
                let results =
                    tokio::task::spawn_blocking(move || commit_group(store.as_ref(), &reqs))
                        .await
                        .unwrap_or_else(|e| {
                            let e = StoreError::Backend(format!("writer task failed: {e}"));
                            replies.iter().map(|_| Err(e.clone())).collect()
                        });
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
        });
        (Committer { tx }, handle)
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

/// Commits the requests together; if that fails and there was more than one, commits each
/// on its own, so a request the store refuses fails alone and never takes the others of its
/// group with it.
fn commit_group(store: &dyn Store, reqs: &[AppendRequest]) -> Vec<Result<AppendOutcome>> {
    match store.append(reqs) {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if reqs.len() == 1 => {
            tracing::error!(error = %e, "ingest commit failed");
            vec![Err(e)]
        }
        Err(e) => {
            tracing::warn!(error = %e, requests = reqs.len(), "group commit failed; committing its requests one by one");
            reqs.iter()
                .map(|r| match store.append(std::slice::from_ref(r)) {
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
