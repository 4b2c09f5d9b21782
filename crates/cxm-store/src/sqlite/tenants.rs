//! Tenants, their keys, users and sessions, and the documents a tenant keeps (settings).

use super::*;

impl TenantStore for SqliteStore {
    fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: new_id("ten"),
            name: name.to_string(),
            created_at_ms: now_ms(),
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tenants (id, name, created_at, id_salt, legacy_profile_seq) VALUES (?1, ?2, ?3, ?4, 0)",
                params![t.id, t.name, t.created_at_ms, crate::new_salt()],
            )?;
            Ok(())
        })?;
        Ok(t)
    }

    fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT id, name, created_at FROM tenants ORDER BY created_at")?;
            let rows = st.query_map([], |r| {
                Ok(Tenant {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at_ms: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, name, created_at FROM tenants WHERE id = ?1",
                [id],
                |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at_ms: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn insert_key(&self, k: &ApiKey) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    k.id,
                    k.tenant_id,
                    k.kind.as_str(),
                    k.name,
                    k.prefix,
                    k.hash,
                    k.created_at_ms,
                    k.revoked_at_ms
                ],
            )?;
            Ok(())
        })
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = ?1"),
                [hash],
                row_to_key,
            )
            .optional()?)
        })
    }

    fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at"
            ))?;
            let rows = st
                .query_map([tenant], row_to_key)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn revoke_key(&self, tenant: &str, key_id: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE api_keys SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL",
                params![tenant, key_id, now_ms()],
            )?;
            Ok(n == 1)
        })
    }

    fn insert_user(&self, u: &User) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    u.id,
                    u.tenant_id,
                    u.email,
                    u.password_hash,
                    u.role.as_str(),
                    u.created_at_ms,
                    u.disabled_at_ms
                ],
            )?;
            Ok(())
        })
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE email = ?1"),
                [email],
                row_to_user,
            )
            .optional()?)
        })
    }

    fn list_users(&self, tenant: &str) -> Result<Vec<User>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {USER_COLS} FROM users WHERE tenant_id = ?1 ORDER BY created_at"
            ))?;
            let rows = st
                .query_map([tenant], row_to_user)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn insert_session(&self, token_hash: &str, user_id: &str, expires_at_ms: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_ms()])?;
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash, user_id, expires_at_ms],
            )?;
            Ok(())
        })
    }

    fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {} FROM users u JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
                    USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")),
                params![token_hash, now],
                row_to_user,
            )
            .optional()?)
        })
    }

    fn set_user_disabled(&self, tenant: &str, user_id: &str, at_ms: Option<i64>) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET disabled_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, user_id, at_ms],
            )?;
            if n > 0 && at_ms.is_some() {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn set_user_password(&self, tenant: &str, user_id: &str, password_hash: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, user_id, password_hash],
            )?;
            if n > 0 {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            }
            Ok(n > 0)
        })
    }

    fn revoke_sessions(&self, tenant: &str, user_id: &str) -> Result<Option<u64>> {
        self.write(|tx| {
            let known: Option<String> = tx
                .query_row(
                    "SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, user_id],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
            Ok(Some(
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])? as u64,
            ))
        })
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
    }

    fn save_document(&self, tenant: &str, kind: &str, body: &str, actor: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tenant_documents (tenant_id, kind, body, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                params![tenant, kind, body, actor, now_ms()],
            )?;
            Ok(())
        })
    }

    fn document(&self, tenant: &str, kind: &str) -> Result<Option<TenantDocument>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT body, updated_by, updated_at FROM tenant_documents WHERE tenant_id = ?1 AND kind = ?2",
                params![tenant, kind],
                |r| Ok(TenantDocument { body: r.get(0)?, updated_by: r.get(1)?, updated_at_ms: r.get(2)? }),
            )
            .optional()?)
        })
    }
}
