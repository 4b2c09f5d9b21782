//! Tenants, their keys, users and sessions, and the documents a tenant keeps: one SQL for
//! both backends, over [`SqlBackend`].

use crate::sql::{all, one, Db, Row, SqlBackend};
use crate::{
    new_id, now_ms, ApiKey, KeyKind, Result, Role, Tenant, TenantDocument, TenantStore, User,
};

const KEY_COLS: &str = "id, tenant_id, kind, name, prefix, hash, created_at, revoked_at";
const USER_COLS: &str = "id, tenant_id, email, password_hash, role, created_at, disabled_at";
const SESSION_USER_COLS: &str =
    "u.id, u.tenant_id, u.email, u.password_hash, u.role, u.created_at, u.disabled_at";

fn tenant(r: &Row) -> Result<Tenant> {
    Ok(Tenant {
        id: r.text(0)?,
        name: r.text(1)?,
        created_at_ms: r.int(2)?,
    })
}

fn key(r: &Row) -> Result<ApiKey> {
    Ok(ApiKey {
        id: r.text(0)?,
        tenant_id: r.text(1)?,
        kind: KeyKind::parse(&r.text(2)?).unwrap_or(KeyKind::Write),
        name: r.text(3)?,
        prefix: r.text(4)?,
        hash: r.text(5)?,
        created_at_ms: r.int(6)?,
        revoked_at_ms: r.opt_int(7)?,
    })
}

fn user(r: &Row) -> Result<User> {
    Ok(User {
        id: r.text(0)?,
        tenant_id: r.text(1)?,
        email: r.text(2)?,
        password_hash: r.text(3)?,
        role: Role::parse(&r.text(4)?).unwrap_or(Role::Viewer),
        created_at_ms: r.int(5)?,
        disabled_at_ms: r.opt_int(6)?,
    })
}

/// Ends every session of a user.
fn end_sessions(db: &mut dyn Db, user_id: &str) -> Result<u64> {
    db.exec("DELETE FROM sessions WHERE user_id = ?1", &[user_id.into()])
}

impl<B: SqlBackend> TenantStore for B {
    fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: new_id("ten"),
            name: name.to_string(),
            created_at_ms: now_ms(),
        };
        let salt = crate::new_salt();
        self.write_sql(|db| {
            db.exec(
                "INSERT INTO tenants (id, name, created_at, id_salt, legacy_profile_seq) VALUES (?1, ?2, ?3, ?4, 0)",
                &[(&t.id).into(), (&t.name).into(), t.created_at_ms.into(), (&salt).into()],
            )
        })?;
        Ok(t)
    }

    fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.read_sql(|db| {
            all(
                db,
                "SELECT id, name, created_at FROM tenants ORDER BY created_at",
                &[],
                tenant,
            )
        })
    }

    fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        self.read_sql(|db| {
            one(
                db,
                "SELECT id, name, created_at FROM tenants WHERE id = ?1",
                &[id.into()],
                tenant,
            )
        })
    }

    fn insert_key(&self, k: &ApiKey) -> Result<()> {
        self.write_sql(|db| {
            db.exec(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                &[
                    (&k.id).into(),
                    (&k.tenant_id).into(),
                    k.kind.as_str().into(),
                    (&k.name).into(),
                    (&k.prefix).into(),
                    (&k.hash).into(),
                    k.created_at_ms.into(),
                    k.revoked_at_ms.into(),
                ],
            )
        })?;
        Ok(())
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.read_sql(|db| {
            one(
                db,
                &format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = ?1"),
                &[hash.into()],
                key,
            )
        })
    }

    fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>> {
        self.read_sql(|db| {
            all(
                db,
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at"
                ),
                &[tenant.into()],
                key,
            )
        })
    }

    fn revoke_key(&self, tenant: &str, key_id: &str) -> Result<bool> {
        let now = now_ms();
        self.write_sql(|db| {
            Ok(db.exec(
                "UPDATE api_keys SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL",
                &[tenant.into(), key_id.into(), now.into()],
            )? == 1)
        })
    }

    fn insert_user(&self, u: &User) -> Result<()> {
        self.write_sql(|db| {
            db.exec(
                &format!("INSERT INTO users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                &[
                    (&u.id).into(),
                    (&u.tenant_id).into(),
                    (&u.email).into(),
                    (&u.password_hash).into(),
                    u.role.as_str().into(),
                    u.created_at_ms.into(),
                    u.disabled_at_ms.into(),
                ],
            )
        })?;
        Ok(())
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.read_sql(|db| {
            one(
                db,
                &format!("SELECT {USER_COLS} FROM users WHERE email = ?1"),
                &[email.into()],
                user,
            )
        })
    }

    fn list_users(&self, tenant: &str) -> Result<Vec<User>> {
        self.read_sql(|db| {
            all(
                db,
                &format!("SELECT {USER_COLS} FROM users WHERE tenant_id = ?1 ORDER BY created_at"),
                &[tenant.into()],
                user,
            )
        })
    }

    fn insert_session(&self, token_hash: &str, user_id: &str, expires_at_ms: i64) -> Result<()> {
        let now = now_ms();
        self.write_sql(|db| {
            // expired sessions go whenever a new one is made
            db.exec("DELETE FROM sessions WHERE expires_at < ?1", &[now.into()])?;
            db.exec(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                &[token_hash.into(), user_id.into(), expires_at_ms.into()],
            )
        })?;
        Ok(())
    }

    fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        self.read_sql(|db| {
            one(
                db,
                &format!("SELECT {SESSION_USER_COLS} FROM users u JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL"),
                &[token_hash.into(), now.into()],
                user,
            )
        })
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.write_sql(|db| {
            db.exec(
                "DELETE FROM sessions WHERE token_hash = ?1",
                &[token_hash.into()],
            )
        })?;
        Ok(())
    }

    fn set_user_disabled(&self, tenant: &str, user_id: &str, at_ms: Option<i64>) -> Result<bool> {
        self.write_sql(|db| {
            let n = db.exec(
                "UPDATE users SET disabled_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
                &[tenant.into(), user_id.into(), at_ms.into()],
            )?;
            if n > 0 && at_ms.is_some() {
                end_sessions(db, user_id)?;
            }
            Ok(n > 0)
        })
    }

    fn set_user_password(&self, tenant: &str, user_id: &str, password_hash: &str) -> Result<bool> {
        self.write_sql(|db| {
            let n = db.exec(
                "UPDATE users SET password_hash = ?3 WHERE tenant_id = ?1 AND id = ?2",
                &[tenant.into(), user_id.into(), password_hash.into()],
            )?;
            if n > 0 {
                end_sessions(db, user_id)?;
            }
            Ok(n > 0)
        })
    }

    fn revoke_sessions(&self, tenant: &str, user_id: &str) -> Result<Option<u64>> {
        self.write_sql(|db| {
            let known = db.row(
                "SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2",
                &[tenant.into(), user_id.into()],
            )?;
            if known.is_none() {
                return Ok(None);
            }
            Ok(Some(end_sessions(db, user_id)?))
        })
    }

    fn save_document(&self, tenant: &str, kind: &str, body: &str, actor: &str) -> Result<()> {
        let now = now_ms();
        self.write_sql(|db| {
            db.exec(
                "INSERT INTO tenant_documents (tenant_id, kind, body, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                &[tenant.into(), kind.into(), body.into(), actor.into(), now.into()],
            )
        })?;
        Ok(())
    }

    fn document(&self, tenant: &str, kind: &str) -> Result<Option<TenantDocument>> {
        self.read_sql(|db| {
            one(
                db,
                "SELECT body, updated_by, updated_at FROM tenant_documents WHERE tenant_id = ?1 AND kind = ?2",
                &[tenant.into(), kind.into()],
                |r| Ok(TenantDocument { body: r.text(0)?, updated_by: r.text(1)?, updated_at_ms: r.int(2)? }),
            )
        })
    }
}
