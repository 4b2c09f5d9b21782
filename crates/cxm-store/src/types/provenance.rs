//! The records the store keeps for provenance.

use super::*;

/// One of a tenant's Ed25519 signing keys.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct SigningKeyRow {
    pub kid: String,
    /// base64url, 32 bytes.
    pub public_key: String,
    #[serde(skip)]
    pub secret_key: String,
    pub created_at_ms: i64,
    /// No longer signs; its signatures still verify.
    pub retired_at_ms: Option<i64>,
    /// Its signatures no longer verify.
    pub revoked_at_ms: Option<i64>,
    pub revoke_reason: Option<String>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("revoked_at_ms", &self.revoked_at_ms)
            .finish()
    }
}

/// A message the company signed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SignedMessage {
    pub id: String,
    pub kid: String,
    pub sender: String,
    pub sender_kind: String,
    pub customer: Option<String>,
    pub channel: Option<String>,
    pub sha256: String,
    pub disclosure: Option<String>,
    pub jws: String,
    pub created_at_ms: i64,
}

/// The audit chain's head at `seq`, signed with the tenant's key.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub kid: String,
    pub signature: String,
    pub at_ms: i64,
}
