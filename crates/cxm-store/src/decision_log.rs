//! Group commit for the decision log: agents ask thousands of times a second and each answer
//! is acknowledged only once its decision (and audit link) is on disk. One writer gathers the
//! decisions that arrive while the previous commit is syncing into the next transaction.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::{NewDecision, Result, Store, StoreError};

/// Upper bound on decisions in one transaction.
const MAX_PER_COMMIT: usize = 5_000;

type Job = (NewDecision, oneshot::Sender<Result<()>>);

#[derive(Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Job>,
}

impl DecisionLog {
    /// Starts the writer task (it ends once every handle is dropped and the queue drained).
    pub fn spawn(store: Arc<dyn Store>) -> DecisionLog {
        let (tx, mut rx) = mpsc::channel::<Job>(8192);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let (batch, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
                let store = store.clone();
                let result = tokio::task::spawn_blocking(move || store.record_decisions(&batch))
                    .await
                    .unwrap_or_else(|e| {
                        Err(StoreError::Backend(format!("writer task failed: {e}")))
                    });
                if let Err(e) = &result {
                    tracing::error!(error = %e, decisions = replies.len(), "decision log commit failed");
                }
                for reply in replies {
                    let _ = reply.send(result.clone());
                }
            }
        });
        DecisionLog { tx }
    }

    /// Logs one decision; returns once it is committed.
    pub async fn record(&self, d: NewDecision) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((d, tx))
            .await
            .map_err(|_| StoreError::Backend("the decision log is closed".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the decision log stopped".into()))?
    }
}
