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
    let supervisor = cxm_app::supervisor::Supervisor::start(
        app.clone(),
        cxm_app::workers::all(&app),
        Arc::new(cxm_app::supervisor::Everything),
    );
    let _ = state.workers.set(supervisor.roster());
    drop(app);
    tracing::info!(addr = %listener.local_addr()?, store = store.backend(), workers = ?supervisor.roster().names(), "serving");
    cxm_http::serve(listener, state, shutdown).await?;
    // a pass in progress finishes (its writes reach the committer) before the writer drains
    supervisor.stop(std::time::Duration::from_secs(10)).await;
    // the router (and with it the last committer handle) is gone: the writer finishes its queue
    writer.await.ok();
    tracing::info!("stopped; every acknowledged event is committed");
    Ok(())
}
