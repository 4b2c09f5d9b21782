//! The records the store keeps for tenants.

use super::*;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Ingest only.
    Write,
    /// Management API.
    Secret,
    /// One agent's credential: asks for decisions as that agent (the key's name) and nothing else.
    Agent,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Write => "write",
            KeyKind::Secret => "secret",
            KeyKind::Agent => "agent",
        }
    }
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "write" => Some(KeyKind::Write),
            "secret" => Some(KeyKind::Secret),
            "agent" => Some(KeyKind::Agent),
            _ => None,
        }
    }
}

/// An api key as stored: only the sha-256 of the secret, never the secret.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub kind: KeyKind,
    pub name: String,
    /// The first characters of the key, shown so people can tell keys apart.
    pub prefix: String,
    #[serde(skip)]
    pub hash: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("prefix", &self.prefix)
            .field("hash", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Owner,
    Admin,
    Analyst,
    AgentOperator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Analyst,
        Role::AgentOperator,
        Role::Viewer,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::AgentOperator => "agent-operator",
            Role::Viewer => "viewer",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
    /// Roles that may change data (unmerge, keys); viewers and analysts only read.
    pub fn can_administer(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub created_at_ms: i64,
    /// Set when the user was offboarded: they cannot sign in and have no sessions.
    pub disabled_at_ms: Option<i64>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A document a tenant edits as a whole (the readiness assessment, the ROI assumptions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantDocument {
    pub body: String,
    pub updated_by: String,
    pub updated_at_ms: i64,
}
