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
    let log = cxm_app::cluster::log_view(&st);
    // a node that cannot reach the ingest log cannot acknowledge an event: send traffic elsewhere
    if let Some(l) = log.as_ref().filter(|l| !l.connected) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "ingest log unreachable",
                "servers": l.servers,
                "cluster": st.cluster.get().map(|c| c.view()),
            })),
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
                "ingest_log": log,
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
    cxm_app::metrics::render_writer(st.committer.stats(), &mut body);
    if let Some(w) = st.workers.get() {
        body.push_str(&w.render_metrics());
    }
    if let Some(c) = st.cluster.get() {
        let v = c.view();
        let _ = writeln!(body, "# HELP cxm_cluster_partitions_held partitions whose lease this node holds\n# TYPE cxm_cluster_partitions_held gauge\ncxm_cluster_partitions_held {}", v.held.len());
        let _ = writeln!(body, "# HELP cxm_cluster_lease_changes_total partitions this node took, lost or gave back\n# TYPE cxm_cluster_lease_changes_total counter\ncxm_cluster_lease_changes_total {}", v.lease_changes);
    }
    if let Some(l) = cxm_app::cluster::log_view(&st) {
        render_log(&mut body, &l, &st);
    }
    let _ = writeln!(body, "# HELP cxm_uptime_seconds seconds since start\n# TYPE cxm_uptime_seconds gauge\ncxm_uptime_seconds {}", st.started.elapsed().as_secs());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

fn render_log(body: &mut String, l: &cxm_app::cluster::LogView, st: &AppState) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(m) = st.ingest_log.get().map(|l| &l.metrics) else {
        return;
    };
    let _ = writeln!(body, "# HELP cxm_ingest_log_connected whether this node holds a connection to a NATS server\n# TYPE cxm_ingest_log_connected gauge\ncxm_ingest_log_connected {}", u8::from(l.connected));
    let _ = writeln!(body, "# HELP cxm_ingest_log_published_total events published to the ingest log and acknowledged\n# TYPE cxm_ingest_log_published_total counter\ncxm_ingest_log_published_total {}", l.published);
    let _ = writeln!(body, "# HELP cxm_ingest_log_publish_retries_total publish rounds retried (leader elections, lost servers)\n# TYPE cxm_ingest_log_publish_retries_total counter\ncxm_ingest_log_publish_retries_total {}", l.publish_retries);
    let _ = writeln!(body, "# HELP cxm_ingest_log_publish_failures_total requests answered 503 because the log did not acknowledge in time\n# TYPE cxm_ingest_log_publish_failures_total counter\ncxm_ingest_log_publish_failures_total {}", l.publish_failures);
    let _ = writeln!(body, "# HELP cxm_ingest_log_publish_seconds time from a request's first publish to its last acknowledgement\n# TYPE cxm_ingest_log_publish_seconds summary\ncxm_ingest_log_publish_seconds_sum {}\ncxm_ingest_log_publish_seconds_count {}",
        m.publish_micros.load(Relaxed) as f64 / 1e6, m.publish_requests.load(Relaxed));
    let _ = writeln!(body, "# HELP cxm_cluster_applied_events_total events this node's partition owners applied\n# TYPE cxm_cluster_applied_events_total counter\ncxm_cluster_applied_events_total {}", l.applied);
    let _ = writeln!(body, "# HELP cxm_cluster_apply_skipped_total events dropped by the dedup window as applied already\n# TYPE cxm_cluster_apply_skipped_total counter\ncxm_cluster_apply_skipped_total {}", l.skipped);
    let _ = writeln!(body, "# HELP cxm_cluster_fenced_total batches the fence refused because the lease had moved on\n# TYPE cxm_cluster_fenced_total counter\ncxm_cluster_fenced_total {}", l.fenced);
    let _ = writeln!(body, "# HELP cxm_cluster_apply_lag_messages events in a held partition's log not yet pulled\n# TYPE cxm_cluster_apply_lag_messages gauge");
    for (p, lag) in &l.lag {
        let _ = writeln!(
            body,
            "cxm_cluster_apply_lag_messages{{partition=\"{p}\"}} {lag}"
        );
    }
    if let Some(ms) = l.last_apply_ms {
        let _ = writeln!(body, "# HELP cxm_cluster_last_apply_timestamp_seconds when this node last applied a batch\n# TYPE cxm_cluster_last_apply_timestamp_seconds gauge\ncxm_cluster_last_apply_timestamp_seconds {}", ms / 1000);
    }
}
