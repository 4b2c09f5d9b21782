//! The tamper-evident log: every entry's hash covers the previous entry's hash, so editing,
//! inserting or deleting any entry breaks every link after it. Decisions, their reviews and
//! admin actions (policy changes, overrides, erasures) share one chain per tenant.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of a tenant's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is appended; the store gives it its place (seq) and its links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    pub actor: String,
    /// `decision`, `decision.reviewed`, `policy.saved`, `policy.activated`, ...
    pub kind: String,
    /// What it is about: a decision id, a policy version, a customer.
    pub subject: String,
    /// Canonical JSON (object keys sorted; see `decision::canonical`).
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    /// Empty JSON object text once redacted by an erasure (see [`ERASED`]); the chain holds
    /// `body_hash`, so redaction does not break it.
    pub body: String,
    pub body_hash: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What an erased entry's body becomes.
pub const ERASED: &str = "{\"erased\":true}";

pub fn body_hash(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// The hash of one entry: sha-256 over its place, time, author, kind, subject, the hash of its
/// body (so a body can be erased without breaking the chain) and the previous hash, each
/// length-prefixed so no two entries share an encoding.
pub fn link(
    prev_hash: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    kind: &str,
    subject: &str,
    body_hash: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        &at_ms.to_string(),
        actor,
        kind,
        subject,
        body_hash,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl AuditEntry {
    pub fn new(prev_hash: &str, seq: i64, at_ms: i64, e: NewAuditEntry) -> AuditEntry {
        let bh = body_hash(&e.body);
        let hash = link(prev_hash, seq, at_ms, &e.actor, &e.kind, &e.subject, &bh);
        AuditEntry {
            seq,
            at_ms,
            actor: e.actor,
            kind: e.kind,
            subject: e.subject,
            body: e.body,
            body_hash: bh,
            prev_hash: prev_hash.to_string(),
            hash,
        }
    }

    fn recomputed(&self) -> String {
        link(
            &self.prev_hash,
            self.seq,
            self.at_ms,
            &self.actor,
            &self.kind,
            &self.subject,
            &self.body_hash,
        )
    }
}

/// Where a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Broken {
    pub seq: i64,
    pub problem: String,
}

/// Checks a tenant's entries in order, one at a time (the log may not fit in memory).
#[derive(Debug, Clone)]
pub struct ChainCheck {
    next_seq: i64,
    prev_hash: String,
    pub checked: u64,
    /// Entries whose body an erasure redacted (the chain still holds their hash).
    pub erased: u64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            next_seq: 1,
            prev_hash: GENESIS.to_string(),
            checked: 0,
            erased: 0,
        }
    }
}

impl ChainCheck {
    pub fn check(&mut self, e: &AuditEntry) -> Result<(), Broken> {
        let broken = |problem: String| Broken {
            seq: e.seq,
            problem,
        };
        if e.seq != self.next_seq {
            return Err(Broken {
                seq: self.next_seq,
                problem: format!(
                    "entry {} is missing (the next entry found is {})",
                    self.next_seq, e.seq
                ),
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(broken(format!(
                "entry {} does not follow entry {}: its previous hash is {}, the chain says {}",
                e.seq,
                e.seq - 1,
                short(&e.prev_hash),
                short(&self.prev_hash)
            )));
        }
        let h = e.recomputed();
        if h != e.hash {
            return Err(broken(format!(
                "entry {} was altered: its content hashes to {}, it claims {}",
                e.seq,
                short(&h),
                short(&e.hash)
            )));
        }
        if body_hash(&e.body) != e.body_hash {
            if e.body == ERASED {
                self.erased += 1;
            } else {
                return Err(broken(format!(
                    "entry {} was altered: its body no longer matches the hash the chain holds",
                    e.seq
                )));
            }
        }
        self.next_seq += 1;
        self.prev_hash = e.hash.clone();
        self.checked += 1;
        Ok(())
    }

    /// The hash the next entry must name: the head of what was checked.
    pub fn head(&self) -> &str {
        &self.prev_hash
    }
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (0..n)
            .map(|i| {
                let e = AuditEntry::new(
                    &prev,
                    i as i64 + 1,
                    1_000 + i as i64,
                    NewAuditEntry {
                        actor: "bot".into(),
                        kind: "decision".into(),
                        subject: format!("dec_{i}"),
                        body: format!("{{\"n\":{i}}}"),
                    },
                );
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry]) -> Result<u64, Broken> {
        let mut c = ChainCheck::default();
        for e in entries {
            c.check(e)?;
        }
        Ok(c.checked)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn an_erased_body_keeps_the_chain_an_edited_one_does_not() {
        let mut c = chain(4);
        c[1].body = ERASED.to_string();
        assert_eq!(verify(&c), Ok(4));
        c[2].body = "{\"n\":99}".into();
        assert_eq!(verify(&c).unwrap_err().seq, 3);
    }

    proptest! {
        #[test]
        fn any_edit_or_deletion_names_the_first_bad_entry(n in 2usize..30, at in 0usize..30, what in 0u8..4) {
            let mut c = chain(n);
            let at = at % n;
            match what {
                0 => c[at].body.push(' '),
                1 => c[at].actor = "someone else".into(),
                2 => { c.remove(at); }
                _ => c[at].at_ms += 1,
            }
            if what == 2 && at == n - 1 {
                // dropping the tail is only visible against a signed checkpoint or the head
                prop_assert!(verify(&c).is_ok());
            } else {
                let b = verify(&c).unwrap_err();
                prop_assert_eq!(b.seq, at as i64 + 1);
            }
        }
    }
}
