//! The cluster over HTTP: this node, the live nodes and every partition's owner (owners and
//! admins, the secret key included: operators script it).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;
use cxm_app::cluster::{status_of, NodeView, Status};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/cluster", get(get_cluster))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// The node that answered.
    pub this_node: NodeView,
    /// The node's side of the NATS ingest log, when ingest goes through it.
    pub ingest_log: Option<cxm_app::cluster::LogView>,
    #[serde(flatten)]
    pub status: Status,
}

/// The node that answered, the live nodes, each partition's owner, epoch, expiry and applied
/// position, and the partitions with no owner. Owners and admins; 404 on a server that is not
/// a cluster node.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, body = ClusterView), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_cluster(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<ClusterView>> {
    p.require_admin()?;
    let Some(node) = st.cluster.get().map(|c| c.view()) else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this server is not a cluster node (it was started without --node-id)",
        ));
    };
    let partitions = node.partitions;
    let s = blocking(&st, move |s| status_of(s, partitions)).await?;
    Ok(Json(ClusterView {
        this_node: node,
        ingest_log: cxm_app::cluster::log_view(&st),
        status: s,
    }))
}
