//! Signing keys, signed messages and audit checkpoints.

use super::*;

pub(crate) fn signing_keys_messages_and_checkpoints(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let key = |kid: &str| SigningKeyRow {
        kid: kid.into(),
        public_key: "pub".into(),
        secret_key: "sec".into(),
        created_at_ms: 1,
        retired_at_ms: None,
        revoked_at_ms: None,
        revoke_reason: None,
    };
    s.add_signing_key(&t, &key("k1"), "admin").unwrap();
    s.add_signing_key(
        &t,
        &SigningKeyRow {
            created_at_ms: 2,
            ..key("k2")
        },
        "admin",
    )
    .unwrap();
    let keys = s.signing_keys(&t).unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["k2", "k1"]
    );
    assert!(keys[0].retired_at_ms.is_none() && keys[1].retired_at_ms.is_some());
    assert!(s.revoke_signing_key(&t, "k1", "leaked", "admin").unwrap());
    assert!(!s.revoke_signing_key(&t, "k1", "leaked", "admin").unwrap());
    assert_eq!(
        s.signing_keys(&t).unwrap()[1].revoke_reason.as_deref(),
        Some("leaked")
    );
    let m = SignedMessage {
        id: "msg_1".into(),
        kid: "k2".into(),
        sender: "bot".into(),
        sender_kind: "agent".into(),
        customer: Some("u1".into()),
        channel: None,
        sha256: "ab".into(),
        disclosure: Some("I'm a bot".into()),
        jws: "x.y.z".into(),
        created_at_ms: 5,
    };
    s.save_signed_message(&t, &m, "agent:bot").unwrap();
    assert_eq!(s.signed_message(&t, "msg_1").unwrap(), Some(m));
    let other = s.create_tenant("Other").unwrap().id;
    assert!(s.signed_message(&other, "msg_1").unwrap().is_none());
    let cp = AuditCheckpoint {
        seq: 3,
        hash: "h".into(),
        kid: "k2".into(),
        signature: "sig".into(),
        at_ms: 9,
    };
    s.save_checkpoint(&t, &cp).unwrap();
    s.save_checkpoint(&t, &cp).unwrap();
    assert_eq!(s.checkpoints(&t).unwrap(), vec![cp]);
    let kinds: Vec<String> = s
        .audit_entries(&t, 0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "signing_key.added",
            "signing_key.added",
            "signing_key.revoked",
            "message.signed"
        ]
    );
}
