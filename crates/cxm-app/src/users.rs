//! Dashboard users over their working life: listed, offboarded (disabled, which ends their
//! sessions and keeps them out, while their name stays on what they did), re-enabled, given
//! a new password, or signed out everywhere. The same functions back the API, the dashboard
//! and the CLI, and every change is an entry on the tenant's audit chain.

use cxm_store::{Role, Store, User};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::audit_action;
use crate::auth::Principal;
use crate::error::{AppError, AppResult, ErrorCode};

pub const MIN_PASSWORD: usize = 10;
pub const MAX_PASSWORD: usize = 1024;

/// A user as the API shows them: never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub created_at_ms: i64,
    /// When the user was offboarded; null while they may sign in.
    pub disabled_at_ms: Option<i64>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            role: u.role,
            created_at_ms: u.created_at_ms,
            disabled_at_ms: u.disabled_at_ms,
        }
    }
}

pub fn check_password(password: &str) -> AppResult<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            format!("a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

pub fn target(store: &dyn Store, tenant: &str, id: &str) -> AppResult<User> {
    store
        .list_users(tenant)?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("no user {id:?} in this tenant"),
            )
        })
}

/// Whether `by` may change `who`: owners and admins change others; only an owner changes an
/// owner.
pub fn may_manage(by: &Principal, who: &User) -> AppResult<()> {
    by.require_admin()?;
    if who.role == Role::Owner && by.role != Role::Owner {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only an owner can change another owner",
        ));
    }
    Ok(())
}

pub fn is_self(by: &Principal, who: &User) -> bool {
    by.user.as_ref().is_some_and(|u| u.id == who.id)
}

pub fn list_users(store: &dyn Store, by: &Principal) -> AppResult<Vec<UserView>> {
    by.require_admin()?;
    Ok(store
        .list_users(&by.tenant_id)?
        .iter()
        .map(UserView::from)
        .collect())
}

/// Offboards a user: they cannot sign in, and every session they have ends now.
pub fn disable(store: &dyn Store, by: &Principal, id: &str) -> AppResult<UserView> {
    let who = target(store, &by.tenant_id, id)?;
    may_manage(by, &who)?;
    if is_self(by, &who) {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "you cannot disable yourself; ask another owner or admin",
        ));
    }
    if who.role == Role::Owner {
        let owners = store
            .list_users(&by.tenant_id)?
            .iter()
            .filter(|u| u.role == Role::Owner && u.disabled_at_ms.is_none())
            .count();
        if owners <= 1 && who.disabled_at_ms.is_none() {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "this is the last owner who can sign in; make another owner first",
            ));
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    let at = who.disabled_at_ms.unwrap_or(now);
    store.set_user_disabled(&by.tenant_id, &who.id, Some(at))?;
    audit_action(
        store,
        &by.tenant_id,
        &by.actor,
        "user.disabled",
        &format!("user:{}", who.id),
        json!({"user": who.id, "email": who.email}),
    )?;
    tracing::info!(tenant = %by.tenant_id, actor = %crate::logsafe::Field(&by.actor), user = %who.id, "user disabled");
    Ok(UserView {
        disabled_at_ms: Some(at),
        ..UserView::from(&who)
    })
}

pub fn enable(store: &dyn Store, by: &Principal, id: &str) -> AppResult<UserView> {
    let who = target(store, &by.tenant_id, id)?;
    may_manage(by, &who)?;
    store.set_user_disabled(&by.tenant_id, &who.id, None)?;
    audit_action(
        store,
        &by.tenant_id,
        &by.actor,
        "user.enabled",
        &format!("user:{}", who.id),
        json!({"user": who.id, "email": who.email}),
    )?;
    Ok(UserView {
        disabled_at_ms: None,
        ..UserView::from(&who)
    })
}

/// Sets a new password for a user (theirs to change next); their sessions end.
pub fn set_password(
    store: &dyn Store,
    by: &Principal,
    id: &str,
    password: &str,
) -> AppResult<UserView> {
    check_password(password)?;
    let who = target(store, &by.tenant_id, id)?;
    may_manage(by, &who)?;
    let hash =
        crate::auth::hash_password(password).map_err(|e| AppError::new(ErrorCode::Internal, e))?;
    store.set_user_password(&by.tenant_id, &who.id, &hash)?;
    audit_action(
        store,
        &by.tenant_id,
        &by.actor,
        "user.password_set",
        &format!("user:{}", who.id),
        json!({"user": who.id, "email": who.email, "sessions_ended": true}),
    )?;
    Ok(UserView::from(&who))
}

/// Changes a signed-in user's own password, which needs the current one; their other
/// sessions end (this one too: they sign in again).
pub fn change_own_password(
    store: &dyn Store,
    me: &User,
    current: &str,
    new: &str,
) -> AppResult<()> {
    if !crate::auth::verify_password(current, &me.password_hash) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "the current password is not right",
        ));
    }
    check_password(new)?;
    let hash =
        crate::auth::hash_password(new).map_err(|e| AppError::new(ErrorCode::Internal, e))?;
    store.set_user_password(&me.tenant_id, &me.id, &hash)?;
    audit_action(
        store,
        &me.tenant_id,
        &me.email,
        "user.password_changed",
        &format!("user:{}", me.id),
        json!({"user": me.id, "email": me.email}),
    )
}

/// Signs a user out everywhere.
pub fn revoke_sessions(store: &dyn Store, by: &Principal, id: &str) -> AppResult<u64> {
    let who = target(store, &by.tenant_id, id)?;
    if !is_self(by, &who) {
        may_manage(by, &who)?;
    }
    let n = store.revoke_sessions(&by.tenant_id, &who.id)?.unwrap_or(0);
    audit_action(
        store,
        &by.tenant_id,
        &by.actor,
        "user.sessions_revoked",
        &format!("user:{}", who.id),
        json!({"user": who.id, "email": who.email, "sessions": n}),
    )?;
    Ok(n)
}

// ---------------------------------------------------------------------------------- API

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// 10 to 1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// Sessions that ended.
    pub revoked: u64,
}
