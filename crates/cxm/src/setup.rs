//! Tenants, users and keys from the command line: what operators and tests script against.

use cxm_store::{KeyKind, Role, Store, User};

pub struct NewTenant {
    pub tenant_id: String,
    pub write_key: String,
    pub secret_key: String,
}

pub fn create_tenant(store: &dyn Store, name: &str) -> anyhow::Result<NewTenant> {
    anyhow::ensure!(
        !name.trim().is_empty() && name.len() <= 200,
        "tenant name must be 1 to 200 characters"
    );
    let t = store.create_tenant(name.trim())?;
    let (write_key, wk) = cxm_app::auth::generate_key(&t.id, KeyKind::Write, "default write key");
    let (secret_key, sk) =
        cxm_app::auth::generate_key(&t.id, KeyKind::Secret, "default secret key");
    store.insert_key(&wk)?;
    store.insert_key(&sk)?;
    Ok(NewTenant {
        tenant_id: t.id,
        write_key,
        secret_key,
    })
}

pub fn create_user(
    store: &dyn Store,
    tenant: &str,
    email: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<User> {
    anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
    let email = email.trim().to_lowercase();
    anyhow::ensure!(
        email.contains('@') && email.len() <= 254,
        "{email:?} is not an email address"
    );
    anyhow::ensure!(
        password.chars().count() >= 10,
        "passwords need at least 10 characters"
    );
    let user = User {
        id: format!("usr_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: tenant.to_string(),
        email,
        password_hash: cxm_app::auth::hash_password(password).map_err(anyhow::Error::msg)?,
        role,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        disabled_at_ms: None,
    };
    store.insert_user(&user).map_err(|e| match e {
        cxm_store::StoreError::Conflict(_) => {
            anyhow::anyhow!("a user with email {} already exists", user.email)
        }
        e => e.into(),
    })?;
    Ok(user)
}

pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut r = rand::thread_rng();
    (0..16)
        .map(|_| ALPHABET[r.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What `cxm user disable|enable|passwd|revoke-sessions` asks: (tenant, email, ...).
pub enum UserAction {
    Disable(String, String),
    Enable(String, String),
    Passwd(String, String, String, bool),
    RevokeSessions(String, String),
}

/// Runs a user change as the operator at the shell (an owner's authority, `cli` on the
/// audit log), through the same functions as the API and the dashboard.
pub fn manage_user(store: &dyn Store, action: UserAction) -> anyhow::Result<()> {
    let (tenant, email) = match &action {
        UserAction::Disable(t, e)
        | UserAction::Enable(t, e)
        | UserAction::Passwd(t, e, _, _)
        | UserAction::RevokeSessions(t, e) => (t.clone(), e.trim().to_lowercase()),
    };
    let user = store
        .list_users(&tenant)?
        .into_iter()
        .find(|u| u.email == email)
        .ok_or_else(|| anyhow::anyhow!("no user {email} in tenant {tenant}"))?;
    let by = cxm_app::auth::Principal {
        tenant_id: tenant,
        role: Role::Owner,
        actor: "cli".into(),
        user: None,
    };
    let api = |e: cxm_app::AppError| anyhow::anyhow!(e.detail);
    match action {
        UserAction::Disable(..) => {
            cxm_app::users::disable(store, &by, &user.id).map_err(api)?;
            println!("{email} is disabled and signed out");
        }
        UserAction::Enable(..) => {
            cxm_app::users::enable(store, &by, &user.id).map_err(api)?;
            println!("{email} can sign in again");
        }
        UserAction::RevokeSessions(..) => {
            let n = cxm_app::users::revoke_sessions(store, &by, &user.id).map_err(api)?;
            println!("{n} sessions of {email} ended");
        }
        UserAction::Passwd(_, _, password, generated) => {
            cxm_app::users::set_password(store, &by, &user.id, &password).map_err(api)?;
            println!("{email} has a new password; their sessions ended");
            if generated {
                println!("password: {password}");
            }
        }
    }
    Ok(())
}
