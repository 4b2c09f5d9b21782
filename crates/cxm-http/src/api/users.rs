//! The users API: offboarding (disable, enable, new password, sign out everywhere).

use cxm_app::users::{
    disable, enable, list_users, revoke_sessions, set_password, NewPassword, Revoked, UserList,
    UserView,
};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/users", get(list))
        .route("/api/v1/users/{id}/disable", post(disable_api))
        .route("/api/v1/users/{id}/enable", post(enable_api))
        .route("/api/v1/users/{id}/password", put(password_api))
        .route("/api/v1/users/{id}/sessions/revoke", post(revoke_api))
}

/// The tenant's dashboard users (owners and admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn list(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<UserList>> {
    Ok(Json(UserList {
        users: blocking(&st, move |s| list_users(s, &p)).await?,
    }))
}

/// Offboards a user: they cannot sign in and their sessions end. Their name stays on what
/// they did. Only an owner disables an owner; nobody disables themselves or the last owner.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn disable_api(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(blocking(&st, move |s| disable(s, &p, &id)).await?))
}

/// Lets a disabled user sign in again.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn enable_api(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(blocking(&st, move |s| enable(s, &p, &id)).await?))
}

/// Sets a user's password; every session they have ends.
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = String, Path)), request_body = NewPassword,
    responses((status = 200, body = UserView), (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn password_api(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        blocking(&st, move |s| set_password(s, &p, &id, &body.password)).await?,
    ))
}

/// Signs a user out everywhere.
#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/revoke", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = Revoked), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn revoke_api(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Revoked>> {
    Ok(Json(Revoked {
        revoked: blocking(&st, move |s| revoke_sessions(s, &p, &id)).await?,
    }))
}
