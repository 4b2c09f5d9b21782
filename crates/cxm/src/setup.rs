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
    let (write_key, wk) = cxm_http::auth::generate_key(&t.id, KeyKind::Write, "default write key");
    let (secret_key, sk) =
        cxm_http::auth::generate_key(&t.id, KeyKind::Secret, "default secret key");
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
        password_hash: cxm_http::auth::hash_password(password).map_err(anyhow::Error::msg)?,
        role,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
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
