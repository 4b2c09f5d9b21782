//! Secrets at rest: signing keys (Ed25519 and C2PA), webhook signing secrets and one-time
//! codes waiting to be delivered are sealed with XChaCha20-Poly1305 under a master key before
//! they reach a table, so a copy of the database or a backup gives none of them away. The
//! master key is `CXM_MASTER_KEY` (32 bytes, base64 or hex) or `master.key` in the data
//! directory, created 0600 on first start. The store records which key sealed its secrets
//! and refuses to start with another.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// The places secrets are sealed in (bound into each seal, so one cannot be moved).
pub const SIGNING_KEY: &str = "signing_keys.secret_key";
pub const CONTENT_KEY: &str = "content_keys.key_pem";
pub const WEBHOOK_SECRET: &str = "webhook_endpoints.secret";
pub const DELIVERY_SECRET: &str = "webhook_deliveries.sealed";

/// Every sealed column: (table, column, place).
const SEALED_COLUMNS: &[(&str, &str, &str)] = &[
    ("signing_keys", "secret_key", SIGNING_KEY),
    ("content_keys", "key_pem", CONTENT_KEY),
    ("webhook_endpoints", "secret", WEBHOOK_SECRET),
];

/// Ties the store to `key`: the first start records the key's id and seals the secrets
/// stored before sealing existed; a later start with another key is refused.
pub(crate) fn bind(db: &mut dyn crate::erase::Sql, key: &MasterKey) -> Result<()> {
    use crate::erase::P;
    let known = db.texts(
        "SELECT value FROM store_meta WHERE name = 'master_key_id'",
        &[],
    )?;
    match known.first().and_then(|r| r.first().cloned().flatten()) {
        Some(id) if id == key.id() => return Ok(()),
        Some(id) => {
            return Err(StoreError::Invalid(format!(
                "this store's secrets were sealed with master key {id}, but this server has {}; set CXM_MASTER_KEY to the key that sealed them (or restore {KEY_FILE} in the data directory)",
                key.id()
            )))
        }
        None => {}
    }
    for (table, column, place) in SEALED_COLUMNS {
        let plain = db.texts(
            &format!("SELECT {column} FROM {table} WHERE {column} NOT LIKE 'sealed:v1:%'"),
            &[],
        )?;
        for v in plain
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
        {
            db.exec(
                &format!("UPDATE {table} SET {column} = ?1 WHERE {column} = ?2"),
                &[P::T(key.seal(place, &v)), P::T(v)],
            )?;
        }
    }
    db.exec(
        "INSERT INTO store_meta (name, value) VALUES ('master_key_id', ?1)",
        &[P::T(key.id())],
    )?;
    Ok(())
}

/// What a sealed value starts with; anything else is a value from before sealing.
pub const PREFIX: &str = "sealed:v1:";
pub const KEY_FILE: &str = "master.key";

/// The 32-byte master key. Its Debug shows only its id.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        MasterKey(k)
    }

    /// 32 bytes as base64 (standard or url-safe, padded or not) or 64 hex digits.
    pub fn parse(text: &str) -> Result<MasterKey> {
        let t = text.trim();
        let bytes = hex::decode(t)
            .ok()
            .or_else(|| b64().decode(t).ok())
            .or_else(|| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t.trim_end_matches('='))
                    .ok()
            })
            .ok_or_else(|| {
                StoreError::Invalid("the master key must be 32 bytes as base64 or hex".into())
            })?;
        let k: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            StoreError::Invalid(format!(
                "the master key must be 32 bytes; this one has {}",
                b.len()
            ))
        })?;
        Ok(MasterKey(k))
    }

    /// A short name for the key (not derivable into it), stored beside what it sealed.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"cxm master key id\n");
        h.update(self.0);
        hex::encode(&h.finalize()[..8])
    }

    /// The key from `CXM_MASTER_KEY`'s value if given, or from `dir/master.key`, which is
    /// created (0600, in a 0700 directory) on first start.
    pub fn load_or_create(dir: &Path, from_env: Option<&str>) -> Result<MasterKey> {
        if let Some(v) = from_env.filter(|v| !v.trim().is_empty()) {
            return MasterKey::parse(v);
        }
        private_dir(dir)?;
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::parse(&text)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                let mut f = private_file(&path)?;
                f.write_all(format!("{}\n", b64().encode(key.0)).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| {
                        StoreError::Invalid(format!("cannot write {}: {e}", path.display()))
                    })?;
                tracing::info!(path = %path.display(), key = %key.id(), "created the master key that seals secrets; back it up with the data");
                Ok(key)
            }
            Err(e) => Err(StoreError::Invalid(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Seals a secret. `what` names its place (table and column): a sealed value moved to
    /// another place does not open there.
    pub fn seal(&self, what: &str, plain: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                chacha20poly1305::aead::Payload {
                    msg: plain.as_bytes(),
                    aad: what.as_bytes(),
                },
            )
            .expect("sealing a secret of any length succeeds");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", b64().encode(out))
    }

    /// Opens a sealed secret; a value from before sealing is returned as it is.
    pub fn open(&self, what: &str, stored: &str) -> Result<String> {
        let Some(body) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let raw = b64()
            .decode(body)
            .map_err(|_| StoreError::Backend(format!("a sealed {what} is damaged")))?;
        if raw.len() < 24 {
            return Err(StoreError::Backend(format!("a sealed {what} is damaged")));
        }
        let (nonce, ct) = raw.split_at(24);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                chacha20poly1305::aead::Payload {
                    msg: ct,
                    aad: what.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Backend(format!(
                    "a sealed {what} does not open with this master key"
                ))
            })?;
        String::from_utf8(plain)
            .map_err(|_| StoreError::Backend(format!("a sealed {what} is damaged")))
    }
}

/// A delivery as it is sent: its sealed part, if any, opened.
pub(crate) fn open_delivery(
    key: &MasterKey,
    mut d: crate::WebhookDelivery,
    sealed: Option<String>,
) -> Result<crate::WebhookDelivery> {
    d.secret = sealed
        .map(|s| key.open(DELIVERY_SECRET, &s))
        .transpose()?
        .and_then(|s| serde_json::from_str(&s).ok());
    Ok(d)
}

/// An endpoint with its signing secret opened.
pub(crate) fn open_endpoint(
    key: &MasterKey,
    mut e: crate::WebhookEndpoint,
) -> Result<crate::WebhookEndpoint> {
    e.secret = key.open(WEBHOOK_SECRET, &e.secret)?;
    Ok(e)
}

pub fn is_sealed(v: &str) -> bool {
    v.starts_with(PREFIX)
}

/// Creates `dir` if needed and makes it readable by its owner only.
pub fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError::Invalid(format!("cannot create data dir {}: {e}", dir.display()))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            StoreError::Invalid(format!("cannot restrict data dir {}: {e}", dir.display()))
        })?;
    }
    Ok(())
}

/// Creates a file readable and writable by its owner only (or opens it if it exists, and
/// restricts it).
pub fn private_file(path: &Path) -> Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o
        .open(path)
        .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", path.display())))?;
    restrict(path)?;
    Ok(f)
}

/// Makes an existing file owner-only (files created before this rule).
pub fn restrict(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| StoreError::Invalid(format!("cannot restrict {}: {e}", path.display())),
            )?;
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_in_its_place_only() {
        let k = MasterKey::generate();
        let s = k.seal("webhook_endpoints.secret", "whsec_abc");
        assert!(is_sealed(&s) && !s.contains("whsec_abc"));
        assert_eq!(k.open("webhook_endpoints.secret", &s).unwrap(), "whsec_abc");
        assert!(
            k.open("signing_keys.secret_key", &s).is_err(),
            "another place"
        );
        assert!(MasterKey::generate()
            .open("webhook_endpoints.secret", &s)
            .is_err());
        assert_ne!(
            s,
            k.seal("webhook_endpoints.secret", "whsec_abc"),
            "fresh nonces"
        );
        assert_eq!(k.open("x", "legacy plain").unwrap(), "legacy plain");
    }

    #[test]
    fn keys_parse_from_base64_and_hex() {
        let k = MasterKey::generate();
        let b = b64().encode(k.0);
        assert_eq!(MasterKey::parse(&b).unwrap().id(), k.id());
        assert_eq!(MasterKey::parse(&hex::encode(k.0)).unwrap().id(), k.id());
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&b64().encode([1u8; 16])).is_err());
        assert!(!format!("{k:?}").contains(&b));
    }

    #[test]
    fn the_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let a = MasterKey::load_or_create(&data, None).unwrap();
        let b = MasterKey::load_or_create(&data, None).unwrap();
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data), 0o700);
            assert_eq!(mode(&data.join(KEY_FILE)), 0o600);
        }
        let env = MasterKey::generate();
        let from_env = MasterKey::load_or_create(&data, Some(&hex::encode(env.0))).unwrap();
        assert_eq!(from_env.id(), env.id());
    }
}
