//! Tenants, their keys, users and sessions, and the documents a tenant keeps (settings).

use super::*;

impl TenantStore for PgStore {
    fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: new_id("ten"),
            name: name.to_string(),
            created_at_ms: now_ms(),
        };
        self.tx(|g| {
            g.exec(
                "INSERT INTO tenants (id, name, created_at, id_salt, legacy_profile_seq) VALUES ($1, $2, $3, $4, 0)",
                &[&t.id, &t.name, &t.created_at_ms, &crate::new_salt()],
            )
        })?;
        Ok(t)
    }

    fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, name, created_at FROM tenants ORDER BY created_at",
                &[],
            )?
            .iter()
            .map(row_to_tenant)
            .collect())
        })
    }

    fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT id, name, created_at FROM tenants WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(row_to_tenant))
        })
    }

    fn insert_key(&self, k: &ApiKey) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO api_keys (id, tenant_id, kind, name, prefix, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&k.id, &k.tenant_id, &k.kind.as_str(), &k.name, &k.prefix, &k.hash, &k.created_at_ms, &k.revoked_at_ms],
            )
        })?;
        Ok(())
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.tx(|g| {
            Ok(g.opt("SELECT id, tenant_id, kind, name, prefix, hash, created_at, revoked_at FROM api_keys WHERE hash = $1", &[&hash])?
                .as_ref()
                .map(row_to_key))
        })
    }

    fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>> {
        self.tx(|g| {
            Ok(g.all("SELECT id, tenant_id, kind, name, prefix, hash, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at", &[&tenant])?
                .iter()
                .map(row_to_key)
                .collect())
        })
    }

    fn revoke_key(&self, tenant: &str, key_id: &str) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| Ok(g.exec("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL", &[&tenant, &key_id, &now])? == 1))
    }

    fn insert_user(&self, u: &User) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO users (id, tenant_id, email, password_hash, role, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&u.id, &u.tenant_id, &u.email, &u.password_hash, &u.role.as_str(), &u.created_at_ms, &u.disabled_at_ms],
            )
        })?;
        Ok(())
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.tx(|g| Ok(g.opt("SELECT id, tenant_id, email, password_hash, role, created_at, disabled_at FROM users WHERE email = $1", &[&email])?.as_ref().map(row_to_user)))
    }

    fn list_users(&self, tenant: &str) -> Result<Vec<User>> {
        self.tx(|g| {
            Ok(g.all("SELECT id, tenant_id, email, password_hash, role, created_at, disabled_at FROM users WHERE tenant_id = $1 ORDER BY created_at", &[&tenant])?
                .iter()
                .map(row_to_user)
                .collect())
        })
    }

    fn insert_session(&self, token_hash: &str, user_id: &str, expires_at_ms: i64) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec("DELETE FROM sessions WHERE expires_at < $1", &[&now])?;
            g.exec(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
                &[&token_hash, &user_id, &expires_at_ms],
            )
        })?;
        Ok(())
    }

    fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT u.id, u.tenant_id, u.email, u.password_hash, u.role, u.created_at, u.disabled_at FROM users u JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                &[&token_hash, &now],
            )?
            .as_ref()
            .map(row_to_user))
        })
    }

    fn set_user_disabled(&self, tenant: &str, user_id: &str, at_ms: Option<i64>) -> Result<bool> {
        self.tx(|g| {
            let n = g.exec(
                "UPDATE users SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &user_id, &at_ms],
            )?;
            if n > 0 && at_ms.is_some() {
                g.exec("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn set_user_password(&self, tenant: &str, user_id: &str, password_hash: &str) -> Result<bool> {
        self.tx(|g| {
            let n = g.exec(
                "UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &user_id, &password_hash],
            )?;
            if n > 0 {
                g.exec("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn revoke_sessions(&self, tenant: &str, user_id: &str) -> Result<Option<u64>> {
        self.tx(|g| {
            if g.opt(
                "SELECT id FROM users WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &user_id],
            )?
            .is_none()
            {
                return Ok(None);
            }
            Ok(Some(g.exec(
                "DELETE FROM sessions WHERE user_id = $1",
                &[&user_id],
            )?))
        })
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.tx(|g| g.exec("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash]))?;
        Ok(())
    }

    fn save_document(&self, tenant: &str, kind: &str, body: &str, actor: &str) -> Result<()> {
        self.tx(|g| {
            g.exec(
                "INSERT INTO tenant_documents (tenant_id, kind, body, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                &[&tenant, &kind, &body, &actor, &now_ms()],
            )?;
            Ok(())
        })
    }

    fn document(&self, tenant: &str, kind: &str) -> Result<Option<TenantDocument>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT body, updated_by, updated_at FROM tenant_documents WHERE tenant_id = $1 AND kind = $2",
                &[&tenant, &kind],
            )?
            .map(|r| TenantDocument { body: r.get(0), updated_by: r.get(1), updated_at_ms: r.get(2) }))
        })
    }
}
