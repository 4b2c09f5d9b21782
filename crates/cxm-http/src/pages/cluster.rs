//! The cluster (under Settings, owners and admins): the node that answered, the live nodes
//! and each partition's owner, or what running several nodes takes when this one runs alone.

use super::*;

pub(crate) async fn cluster_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/settings/cluster").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = p.require_admin() {
        return ApiError::from(e).into_response();
    }
    let node = st.cluster.get().map(|c| c.view());
    let status = match &node {
        None => None,
        Some(n) => {
            let partitions = n.partitions;
            match cxm_app::blocking(&st, move |s| cxm_app::cluster::status_of(s, partitions)).await
            {
                Ok(s) => Some(s),
                Err(e) => return e.into_response(),
            }
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    st.pages.render(
        "cluster.html",
        context! { title => "Cluster", page => "cluster", user => user_ctx(&p), node => node,
        status => status, now_ms => now, backend => st.store.0.backend(),
        log => cxm_app::cluster::log_view(&st) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxm_app::cluster::{NodeView, Status};
    use cxm_store::{ClusterNode, Lease};

    fn render(ctx: minijinja::Value) -> String {
        let pages = Pages::new();
        let t = pages.env.get_template("cluster.html").unwrap();
        t.render(context! { locale => Locale::default(), ..ctx })
            .unwrap()
    }

    #[test]
    fn the_page_shows_nodes_and_owners_or_how_to_run_several() {
        let now = 1_800_000_000_000i64;
        let lease = |p: i32, owner: &str, expired: bool| Lease {
            partition: p,
            owner: owner.into(),
            epoch: 3,
            acquired_at_ms: now - 60_000,
            renewed_at_ms: now - 2_000,
            expires_at_ms: now + 13_000,
            expired,
            applied_seq: 0,
            applied_at_ms: None,
        };
        let node = NodeView {
            node: "web-1".into(),
            partitions: 2,
            held: vec![(0, 3)],
            lease_changes: 4,
        };
        let status = Status {
            nodes: vec![ClusterNode {
                node_id: "web-1".into(),
                started_at_ms: now - 3_600_000,
                heartbeat_at_ms: now - 1_000,
                expires_at_ms: now + 14_000,
            }],
            leases: vec![lease(0, "web-1", false), lease(1, "web-2", true)],
            unowned: vec![1],
        };
        let html = render(
            context! { node => node.clone(), status => status.clone(), now_ms => now, backend => "postgres" },
        );
        assert!(html.contains("answered by <strong data-testid=\"this-node\">web-1</strong>, which holds 1 of 2 partitions"), "{html}");
        assert!(
            html.contains("13 s left") && html.contains("expired"),
            "{html}"
        );
        assert!(html.contains("taken over within a lease"));
        assert!(!html.contains("Ingest log"), "no log without --nats-url");
        let log = cxm_app::cluster::LogView {
            connected: false,
            servers: vec!["nats://n1:4222".into(), "nats://n2:4222".into()],
            replicas: 3,
            published: 12_345,
            publish_retries: 2,
            publish_failures: 1,
            mean_publish_ms: 3.25,
            applied: 12_000,
            skipped: 0,
            fenced: 1,
            lag: [(0, 340)].into_iter().collect(),
            lag_total: 340,
            last_apply_ms: Some(now - 2_000),
        };
        let html = render(
            context! { node => node, status => status, now_ms => now, backend => "postgres", log => log },
        );
        assert!(
            html.contains("n2:4222; 3 copies of each stream")
                && html.contains("not connected")
                && html.contains("12,345")
                && html.contains("3.3 ms")
                && html.contains(">340<"),
            "{html}"
        );
        let alone = render(
            context! { node => None::<NodeView>, status => None::<Status>, now_ms => now, backend => "sqlite" },
        );
        assert!(alone.contains("on the embedded store"), "{alone}");
        assert!(alone.contains("--node-id"));
    }
}
