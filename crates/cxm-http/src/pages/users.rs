//! The users page (owners and admins offboard people, reset passwords, sign them out) and
//! the account page (everyone changes their own password).

use cxm_app::AppError;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::pages::form_post;
use crate::pages::session;
use crate::pages::user_ctx;
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/settings/users", get(users_page))
        .route("/settings/users/{id}/password", post(set_password))
        .route("/settings/users/{id}/{action}", post(user_action))
        .route("/settings/account", get(account_page).post(change_password))
}

async fn render_users(
    st: &AppState,
    p: &Principal,
    flash: Option<String>,
    status: StatusCode,
) -> Response {
    let by = p.clone();
    let users = match blocking(st, move |s| cxm_app::users::list_users(s, &by)).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let me = p.user.as_ref().map(|u| u.id.clone()).unwrap_or_default();
    let rows: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({"id": u.id, "email": u.email, "role": u.role.as_str(), "created": u.created_at_ms,
                "disabled": u.disabled_at_ms, "me": u.id == me,
                "manageable": u.role != cxm_store::Role::Owner || p.role == cxm_store::Role::Owner})
        })
        .collect();
    let mut r = st.pages.render(
        "users.html",
        context! { title => "Users", page => "users", user => user_ctx(p), users => rows, flash => flash },
    );
    *r.status_mut() = status;
    r
}

async fn users_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/settings/users").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = p.require_admin() {
        return e.into_response();
    }
    render_users(&st, &p, None, StatusCode::OK).await
}

async fn user_action(
    State(st): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (p, _) = match form_post::<Vec<(String, String)>>(&st, req, "/settings/users", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let by = p.clone();
    let done = match action.as_str() {
        "disable" => {
            blocking(&st, move |s| {
                cxm_app::users::disable(s, &by, &id)
                    .map(|u| format!("{} is disabled and signed out.", u.email))
            })
            .await
        }
        "enable" => {
            blocking(&st, move |s| {
                cxm_app::users::enable(s, &by, &id)
                    .map(|u| format!("{} can sign in again.", u.email))
            })
            .await
        }
        "sessions" => {
            blocking(&st, move |s| {
                cxm_app::users::revoke_sessions(s, &by, &id).map(|n| format!("{n} sessions ended."))
            })
            .await
        }
        other => Err(AppError::new(
            ErrorCode::NotFound,
            format!("no user action {other:?}"),
        )),
    };
    match done {
        Ok(msg) => render_users(&st, &p, Some(msg), StatusCode::OK).await,
        Err(e) => {
            let status = crate::error::status_of(e.code);
            render_users(&st, &p, Some(e.detail), status).await
        }
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    password: String,
}

async fn set_password(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (p, form) = match form_post::<PasswordForm>(&st, req, "/settings/users", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let by = p.clone();
    match blocking(&st, move |s| {
        cxm_app::users::set_password(s, &by, &id, &form.password)
    })
    .await
    {
        Ok(u) => {
            render_users(
                &st,
                &p,
                Some(format!(
                    "{} has a new password and was signed out.",
                    u.email
                )),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            let status = crate::error::status_of(e.code);
            render_users(&st, &p, Some(e.detail), status).await
        }
    }
}

async fn account_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/settings/account").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    st.pages.render(
        "account.html",
        context! { title => "Your account", page => "account", user => user_ctx(&p), error => None::<String> },
    )
}

#[derive(Deserialize)]
struct ChangeForm {
    current: String,
    password: String,
    confirm: String,
}

async fn change_password(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<ChangeForm>(&st, req, "/settings/account", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(me) = p.user.clone() else {
        return ApiError::new(ErrorCode::Forbidden, "only a signed-in user has an account")
            .into_response();
    };
    let fail = |msg: String, status: StatusCode| {
        let mut r = st.pages.render(
            "account.html",
            context! { title => "Your account", page => "account", user => user_ctx(&p), error => Some(msg) },
        );
        *r.status_mut() = status;
        r
    };
    if form.password != form.confirm {
        return fail(
            "The two new passwords differ.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    match blocking(&st, move |s| {
        cxm_app::users::change_own_password(s, &me, &form.current, &form.password)
    })
    .await
    {
        // every session ended with the change, this one too: sign in with the new password
        Ok(()) => Redirect::to("/login?next=/settings/account").into_response(),
        Err(e) => {
            let status = crate::error::status_of(e.code);
            fail(e.detail, status)
        }
    }
}
