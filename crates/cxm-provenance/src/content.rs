//! C2PA content credentials for images and PDFs the company sends. The `c2pa` crate changes
//! often; it stays inside this module. Each tenant gets a small certificate chain (its own CA
//! and an Ed25519 signing certificate) made offline; standard C2PA
//! readers verify the manifest's integrity with it and name the organisation that signed.

use std::io::Cursor;

use c2pa::{Builder, Context, Reader, SigningAlg, ValidationState};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde::Serialize;

use crate::ProvenanceError;

/// A tenant's content-signing credentials: the chain (signing certificate first) and the key.
#[derive(Clone)]
pub struct ContentKey {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey")
    }
}

fn bad(e: impl std::fmt::Display) -> ProvenanceError {
    ProvenanceError::Malformed(e.to_string())
}

/// Makes a CA for the organisation and a signing certificate under it (five years).
pub fn new_content_key(org: &str) -> Result<ContentKey, ProvenanceError> {
    let key_err = |e: rcgen::Error| ProvenanceError::BadKey(e.to_string());
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(key_err)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::OrganizationName, org);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{org} content credentials CA"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let (y, m, d) = today();
    ca.not_before = rcgen::date_time_ymd(y, m, d);
    ca.not_after = rcgen::date_time_ymd(y + 10, m, d.min(28));
    let ca_cert = ca.self_signed(&ca_key).map_err(key_err)?;

    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(key_err)?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(DnType::OrganizationName, org);
    leaf.distinguished_name
        .push(DnType::CommonName, format!("{org} content signing"));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = rcgen::date_time_ymd(y, m, d);
    leaf.not_after = rcgen::date_time_ymd(y + 5, m, d.min(28));
    let leaf_cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(key_err)?;
    Ok(ContentKey {
        cert_chain_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        key_pem: key.serialize_pem(),
    })
}

/// Yesterday's date (a certificate valid from today could be "not yet valid" for a reader a
/// few seconds behind).
fn today() -> (i32, u8, u8) {
    use chrono::Datelike;
    let d = chrono::Utc::now()
        .date_naive()
        .pred_opt()
        .unwrap_or_default();
    (d.year(), d.month() as u8, d.day() as u8)
}

/// The formats that carry the manifest inside; anything else gets a sidecar `.c2pa` file.
pub fn embeds(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif" | "image/tiff" | "application/pdf"
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct SignedAsset {
    /// The asset with its manifest embedded (the bytes given back when it cannot embed).
    pub asset: Vec<u8>,
    /// The manifest store (a sidecar `.c2pa` for formats that cannot embed it).
    pub manifest: Vec<u8>,
    pub embedded: bool,
}

/// Signs an asset: a C2PA manifest naming the organisation, the title and what was done
/// (`c2pa.created` by cxm), embedded when the format allows.
pub fn sign_asset(
    key: &ContentKey,
    mime: &str,
    bytes: &[u8],
    title: &str,
    org: &str,
) -> Result<SignedAsset, ProvenanceError> {
    let manifest = serde_json::json!({
        "title": title,
        "claim_generator_info": [{"name": "cxm", "version": env!("CARGO_PKG_VERSION")}],
        "assertions": [{
            "label": "c2pa.actions",
            "data": {"actions": [{"action": "c2pa.created", "softwareAgent": {"name": "cxm"},
                "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation"}]}
        }, {
            "label": "stds.schema-org.CreativeWork",
            "data": {"@context": "https://schema.org", "@type": "CreativeWork", "author": [{"@type": "Organization", "name": org}]}
        }]
    });
    let mut builder = Builder::from_context(Context::new())
        .with_definition(manifest)
        .map_err(bad)?;
    let embedded = embeds(mime);
    builder.set_no_embed(!embedded);
    let signer = c2pa::create_signer::from_keys(
        key.cert_chain_pem.as_bytes(),
        key.key_pem.as_bytes(),
        SigningAlg::Ed25519,
        None,
    )
    .map_err(|e| ProvenanceError::BadKey(e.to_string()))?;
    let mut source = Cursor::new(bytes.to_vec());
    let mut dest = Cursor::new(Vec::new());
    let manifest = builder
        .sign(signer.as_ref(), mime, &mut source, &mut dest)
        .map_err(bad)?;
    let asset = if embedded {
        dest.into_inner()
    } else {
        bytes.to_vec()
    };
    Ok(SignedAsset {
        asset,
        manifest,
        embedded,
    })
}

/// What a C2PA reader makes of an asset.
#[derive(Debug, Clone, Serialize)]
pub struct AssetReport {
    /// `valid`, `trusted`, `invalid`, or `none` (no content credentials).
    pub state: String,
    pub title: Option<String>,
    pub issuer: Option<String>,
    pub signed_at: Option<String>,
    /// Failure codes from the validation (e.g. `assertion.dataHash.mismatch` when altered).
    pub problems: Vec<String>,
}

/// Reads and validates an asset's content credentials (from the asset, or a sidecar).
pub fn read_asset(mime: &str, bytes: &[u8], sidecar: Option<&[u8]>) -> AssetReport {
    let reader = match sidecar {
        Some(m) => Reader::from_context(Context::new()).with_manifest_data_and_stream(
            m,
            mime,
            Cursor::new(bytes.to_vec()),
        ),
        None => Reader::from_context(Context::new()).with_stream(mime, Cursor::new(bytes.to_vec())),
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            return AssetReport {
                state: "none".into(),
                title: None,
                issuer: None,
                signed_at: None,
                problems: vec![e.to_string()],
            }
        }
    };
    let manifest = reader.active_manifest();
    let problems = reader
        .validation_status()
        .unwrap_or_default()
        .iter()
        .filter(|s| !s.passed())
        .map(|s| s.code().to_string())
        .collect();
    AssetReport {
        state: match reader.validation_state() {
            ValidationState::Invalid => "invalid",
            ValidationState::Valid => "valid",
            ValidationState::Trusted => "trusted",
        }
        .into(),
        title: manifest.and_then(|m| m.title().map(str::to_string)),
        issuer: manifest.and_then(|m| m.issuer()),
        signed_at: manifest.and_then(|m| m.time()),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 PNG, built by hand so the test needs no image files.
    pub fn tiny_png() -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend((data.len() as u32).to_be_bytes());
            let mut c = kind.to_vec();
            c.extend(data);
            out.extend(&c);
            out.extend(crc32(&c).to_be_bytes());
        }
        fn crc32(data: &[u8]) -> u32 {
            let mut crc = 0xffff_ffffu32;
            for b in data {
                crc ^= u32::from(*b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xedb8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        // zlib stream of one scanline: filter 0, one grey byte
        chunk(
            &mut png,
            b"IDAT",
            &[
                0x78, 0x01, 0x01, 0x02, 0x00, 0xfd, 0xff, 0x00, 0x80, 0x00, 0x82, 0x00, 0x81,
            ],
        );
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn a_signed_png_verifies_and_an_altered_one_does_not() {
        let key = new_content_key("Acme").unwrap();
        let png = tiny_png();
        assert_eq!(read_asset("image/png", &png, None).state, "none");
        let signed = sign_asset(&key, "image/png", &png, "refund-receipt.png", "Acme").unwrap();
        assert!(signed.embedded);
        let r = read_asset("image/png", &signed.asset, None);
        assert_eq!(r.state, "valid", "{r:?}");
        assert_eq!(r.title.as_deref(), Some("refund-receipt.png"));
        assert!(r.issuer.unwrap_or_default().contains("Acme"));
        // change the pixel: the data hash no longer matches
        let mut altered = signed.asset.clone();
        let at = altered.windows(4).position(|w| w == b"IDAT").unwrap() + 10;
        altered[at] ^= 0x01;
        let r = read_asset("image/png", &altered, None);
        assert_eq!(r.state, "invalid", "{r:?}");
        assert!(!r.problems.is_empty());
    }
}
