//! Provenance for what the company sends: a message's statement (who sent it, to whom, when,
//! the SHA-256 of its text, the disclosure an agent showed) signed with the tenant's Ed25519
//! key as a JWS in compact form (`alg: EdDSA`, RFC 8037), so any JOSE library holding the
//! tenant's public key set can check it too. The text itself travels separately (detached):
//! changing one character changes its hash and the signature no longer covers it.
//!
//! Pure: keys come in as bytes, nothing here touches the network or the store.

pub mod content;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a signature vouches for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// The tenant (issuer) id.
    pub iss: String,
    /// The company's name as the customer knows it.
    pub org: String,
    /// The message id (the verification link names it).
    pub jti: String,
    /// Who sent it: an agent's name or a user's email.
    pub sender: String,
    /// `agent`, `user` or `system`.
    pub sender_kind: String,
    /// The customer it was sent to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Seconds since the epoch.
    pub iat: i64,
    /// Hex SHA-256 of the message text.
    pub sha256: String,
    /// The disclosure the message carried (agents must show one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: String,
    #[serde(default)]
    pub typ: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProvenanceError {
    #[error("not a signature: {0}")]
    Malformed(String),
    #[error("the signing key is not valid: {0}")]
    BadKey(String),
}

/// A new key pair: (secret, public), 32 bytes each.
pub fn generate_key() -> ([u8; 32], [u8; 32]) {
    let k = SigningKey::generate(&mut rand::rngs::OsRng);
    (k.to_bytes(), k.verifying_key().to_bytes())
}

/// A key id derived from the public key: stable, short, collision-free in practice.
pub fn key_id(public: &[u8; 32]) -> String {
    let h = Sha256::digest(public);
    format!("k_{}", hex::encode(&h[..8]))
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Signs a statement: `base64url(header).base64url(statement).base64url(signature)`.
pub fn sign(secret: &[u8; 32], kid: &str, s: &Statement) -> Result<String, ProvenanceError> {
    let key = SigningKey::from_bytes(secret);
    let header = Header {
        alg: "EdDSA".into(),
        kid: kid.to_string(),
        typ: Some("cxm-message+jws".into()),
    };
    let h = B64.encode(
        serde_json::to_vec(&header).map_err(|e| ProvenanceError::Malformed(e.to_string()))?,
    );
    let p =
        B64.encode(serde_json::to_vec(s).map_err(|e| ProvenanceError::Malformed(e.to_string()))?);
    let input = format!("{h}.{p}");
    let sig = key.sign(input.as_bytes());
    Ok(format!("{input}.{}", B64.encode(sig.to_bytes())))
}

/// A signature taken apart (nothing checked yet but its shape).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub header: Header,
    pub statement: Statement,
    input: String,
    signature: Signature,
}

pub fn parse(jws: &str) -> Result<Parsed, ProvenanceError> {
    let bad = |why: &str| ProvenanceError::Malformed(why.to_string());
    let jws = jws.trim();
    if jws.len() > 16 * 1024 {
        return Err(bad("longer than 16 KiB"));
    }
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected three base64url parts separated by dots"));
    };
    let header: Header = serde_json::from_slice(
        &B64.decode(h)
            .map_err(|_| bad("the header is not base64url"))?,
    )
    .map_err(|_| bad("the header is not a JWS header"))?;
    if header.alg != "EdDSA" {
        return Err(bad("only EdDSA signatures are issued"));
    }
    let statement: Statement = serde_json::from_slice(
        &B64.decode(p)
            .map_err(|_| bad("the payload is not base64url"))?,
    )
    .map_err(|_| bad("the payload is not a message statement"))?;
    let sig = B64
        .decode(sig)
        .map_err(|_| bad("the signature is not base64url"))?;
    let signature =
        Signature::from_slice(&sig).map_err(|_| bad("the signature is not 64 bytes"))?;
    Ok(Parsed {
        header,
        statement,
        input: format!("{h}.{p}"),
        signature,
    })
}

/// Whether the signature is the key's and the text is the one that was signed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Valid,
    /// The signature does not verify under the key it names.
    BadSignature,
    /// The signature is genuine but the text is not what was signed.
    Altered,
}

impl Parsed {
    /// Checks the signature against `public` and, when given, the text against the statement.
    pub fn check(&self, public: &[u8; 32], text: Option<&str>) -> Result<Check, ProvenanceError> {
        let key =
            VerifyingKey::from_bytes(public).map_err(|e| ProvenanceError::BadKey(e.to_string()))?;
        if key.verify(self.input.as_bytes(), &self.signature).is_err() {
            return Ok(Check::BadSignature);
        }
        Ok(match text {
            Some(t) if sha256_hex(t) != self.statement.sha256 => Check::Altered,
            _ => Check::Valid,
        })
    }
}

/// The public key as a JWK (RFC 8037 OKP), for the tenant's key set.
pub fn jwk(kid: &str, public: &[u8; 32]) -> serde_json::Value {
    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public), "kid": kid, "use": "sig", "alg": "EdDSA"})
}

/// Signs arbitrary bytes (audit checkpoints); base64url signature.
pub fn sign_bytes(secret: &[u8; 32], data: &[u8]) -> String {
    B64.encode(SigningKey::from_bytes(secret).sign(data).to_bytes())
}

pub fn verify_bytes(public: &[u8; 32], data: &[u8], sig_b64: &str) -> bool {
    let (Ok(key), Ok(sig)) = (VerifyingKey::from_bytes(public), B64.decode(sig_b64)) else {
        return false;
    };
    Signature::from_slice(&sig).is_ok_and(|s| key.verify(data, &s).is_ok())
}

pub fn encode_key(k: &[u8; 32]) -> String {
    B64.encode(k)
}

pub fn decode_key(s: &str) -> Result<[u8; 32], ProvenanceError> {
    B64.decode(s)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .ok_or_else(|| ProvenanceError::BadKey("not 32 base64url bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn statement(text: &str) -> Statement {
        Statement {
            iss: "ten_1".into(),
            org: "Acme".into(),
            jti: "msg_1".into(),
            sender: "billing-bot".into(),
            sender_kind: "agent".into(),
            sub: Some("user_id:u1".into()),
            channel: Some("email".into()),
            iat: 1_790_000_000,
            sha256: sha256_hex(text),
            disclosure: Some("I'm an automated assistant.".into()),
        }
    }

    #[test]
    fn signs_and_verifies_and_names_what_is_wrong() {
        let (sk, pk) = generate_key();
        let kid = key_id(&pk);
        let text = "I'm an automated assistant. Your refund of 20.00 USD is on its way.";
        let jws = sign(&sk, &kid, &statement(text)).unwrap();
        let p = parse(&jws).unwrap();
        assert_eq!(p.header.kid, kid);
        assert_eq!(p.check(&pk, Some(text)).unwrap(), Check::Valid);
        assert_eq!(
            p.check(&pk, Some(&text.replace("20.00", "200.00")))
                .unwrap(),
            Check::Altered
        );
        let (_, other) = generate_key();
        assert_eq!(p.check(&other, Some(text)).unwrap(), Check::BadSignature);
        // a forged statement (a different sender) under the real signature
        let mut parts: Vec<&str> = jws.split('.').collect();
        let mut forged = statement(text);
        forged.sender = "ceo".into();
        let forged_p = B64.encode(serde_json::to_vec(&forged).unwrap());
        parts[1] = &forged_p;
        let p = parse(&parts.join(".")).unwrap();
        assert_eq!(p.check(&pk, Some(text)).unwrap(), Check::BadSignature);
        for junk in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            "eyJhbGciOiJIUzI1NiJ9.e30.AA",
        ] {
            assert!(parse(junk).is_err(), "{junk}");
        }
        assert_eq!(jwk(&kid, &pk)["crv"], "Ed25519");
        assert_eq!(decode_key(&encode_key(&pk)).unwrap(), pk);
    }

    proptest! {
        #[test]
        fn any_change_to_the_text_is_caught(text in ".{1,200}", at in 0usize..200, c in proptest::char::any()) {
            let (sk, pk) = generate_key();
            let jws = sign(&sk, "k", &statement(&text)).unwrap();
            let mut chars: Vec<char> = text.chars().collect();
            let i = at % chars.len();
            prop_assume!(chars[i] != c);
            chars[i] = c;
            let altered: String = chars.into_iter().collect();
            prop_assert_eq!(parse(&jws).unwrap().check(&pk, Some(&altered)).unwrap(), Check::Altered);
        }
    }
}
