//! Starting and stopping the server: the committer, the HTTP listener, background upkeep and
//! a shutdown that drains in-flight ingestion before the process exits.

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

/// Serves on `listener` until `shutdown` resolves. Order matters on the way out: stop
/// accepting, let every in-flight request get its commit, then let the writer drain.
pub async fn run(
    settings: &Settings,
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (committer, writer) = Committer::spawn(store.clone());
    let state = cxm_http::AppState::new(store.clone(), committer, settings.http.clone());
    let upkeep = tokio::spawn(upkeep(store.clone(), settings.dedup_window));
    let themes = tokio::spawn(cxm_http::theme_worker(state.clone()));
    let triggers = tokio::spawn(cxm_http::triggers::trigger_worker(state.clone()));
    let journeys = tokio::spawn(cxm_http::journeys::journey_worker(state.clone()));
    let health = tokio::spawn(cxm_http::health::health_worker(state.clone()));
    let webhooks = tokio::spawn(cxm_http::webhooks::webhook_worker(state.clone()));
    let checkpoints = tokio::spawn(cxm_http::provenance::checkpoint_worker(state.clone()));
    let retention = tokio::spawn(cxm_http::privacy::retention_worker(state.clone()));
    let guardrails = tokio::spawn(cxm_http::experiments::guardrail_worker(state.clone()));
    let equity = tokio::spawn(cxm_http::equity::equity_worker(state.clone()));
    let mail = settings
        .http
        .mail
        .clone()
        .map(|cfg| tokio::spawn(cxm_http::mailer::mail_worker(state.clone(), cfg)));
    tracing::info!(addr = %listener.local_addr()?, store = store.backend(), "serving");
    cxm_http::serve(listener, state, shutdown).await?;
    upkeep.abort();
    themes.abort();
    triggers.abort();
    journeys.abort();
    health.abort();
    webhooks.abort();
    checkpoints.abort();
    retention.abort();
    guardrails.abort();
    equity.abort();
    if let Some(m) = mail {
        m.abort();
    }
    // the router (and with it the last committer handle) is gone: the writer finishes its queue
    writer.await.ok();
    tracing::info!("stopped; every acknowledged event is committed");
    Ok(())
}

/// Forgets message ids older than the dedup window, hourly.
async fn upkeep(store: Arc<dyn Store>, window: std::time::Duration) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = chrono::Utc::now().timestamp_millis() - window.as_millis() as i64;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune_dedup(cutoff)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "pruned dedup window"),
            Ok(Err(e)) => tracing::warn!(error = %e, "dedup prune failed"),
            _ => {}
        }
    }
}
