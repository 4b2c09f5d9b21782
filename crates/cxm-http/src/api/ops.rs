//! Health, readiness and Prometheus metrics over HTTP.
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use crate::AppState;

pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the store answers and we are not draining.
pub async fn readyz(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    if st.shutting_down.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "draining"})),
        );
    }
    match st.store.run(|s| s.ping()).await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ready",
                "store": st.store.0.backend(),
                "workers": st.workers.get().map(|w| w.status()).unwrap_or_default(),
                "cluster": st.cluster.get().map(|c| c.view()),
            })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "store unavailable", "error": e.to_string()})),
        ),
    }
}

pub async fn metrics(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let mut body = st.metrics.render();
    if let Some(w) = st.workers.get() {
        body.push_str(&w.render_metrics());
    }
    if let Some(c) = st.cluster.get() {
        let v = c.view();
        let _ = writeln!(body, "# HELP cxm_cluster_partitions_held partitions whose lease this node holds\n# TYPE cxm_cluster_partitions_held gauge\ncxm_cluster_partitions_held {}", v.held.len());
        let _ = writeln!(body, "# HELP cxm_cluster_lease_changes_total partitions this node took, lost or gave back\n# TYPE cxm_cluster_lease_changes_total counter\ncxm_cluster_lease_changes_total {}", v.lease_changes);
    }
    let _ = writeln!(body, "# HELP cxm_uptime_seconds seconds since start\n# TYPE cxm_uptime_seconds gauge\ncxm_uptime_seconds {}", st.started.elapsed().as_secs());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
