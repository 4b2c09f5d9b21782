//! Tenants, keys, users and sessions; one tenant never sees another's data.

use super::*;

pub(crate) fn tenants_keys_and_users(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap();
    assert_eq!(s.tenant(&t.id).unwrap().unwrap().name, "Acme");
    let key = ApiKey {
        id: "key_1".into(),
        tenant_id: t.id.clone(),
        kind: KeyKind::Write,
        name: "web".into(),
        prefix: "cxm_wk_ab".into(),
        hash: "h1".into(),
        created_at_ms: 1,
        revoked_at_ms: None,
    };
    s.insert_key(&key).unwrap();
    assert_eq!(s.key_by_hash("h1").unwrap().unwrap().tenant_id, t.id);
    assert!(matches!(s.insert_key(&key), Err(StoreError::Conflict(_))));
    assert!(s.revoke_key(&t.id, "key_1").unwrap());
    assert!(
        !s.revoke_key(&t.id, "key_1").unwrap(),
        "revoking twice is a no-op"
    );
    assert!(s
        .key_by_hash("h1")
        .unwrap()
        .unwrap()
        .revoked_at_ms
        .is_some());
    let u = User {
        id: "usr_1".into(),
        tenant_id: t.id.clone(),
        email: "owner@acme.io".into(),
        password_hash: "x".into(),
        role: Role::Owner,
        created_at_ms: 1,
        disabled_at_ms: None,
    };
    s.insert_user(&u).unwrap();
    assert!(matches!(
        s.insert_user(&User {
            id: "usr_2".into(),
            ..u.clone()
        }),
        Err(StoreError::Conflict(_))
    ));
    s.insert_session("tok", "usr_1", i64::MAX - 1).unwrap();
    assert_eq!(
        s.session_user("tok", 5).unwrap().unwrap().email,
        "owner@acme.io"
    );
    s.delete_session("tok").unwrap();
    assert!(s.session_user("tok", 5).unwrap().is_none());

    // offboarding: disabling ends sessions and keeps new ones from working; a new password
    // ends sessions too; another tenant cannot touch the user
    let other = s.create_tenant("Other").unwrap().id;
    s.insert_session("tok2", "usr_1", i64::MAX - 1).unwrap();
    assert!(!s.set_user_disabled(&other, "usr_1", Some(7)).unwrap());
    assert_eq!(s.revoke_sessions(&other, "usr_1").unwrap(), None);
    assert!(s.set_user_disabled(&t.id, "usr_1", Some(7)).unwrap());
    assert!(s.session_user("tok2", 5).unwrap().is_none());
    s.insert_session("tok3", "usr_1", i64::MAX - 1).unwrap();
    assert!(
        s.session_user("tok3", 5).unwrap().is_none(),
        "a disabled user has no session"
    );
    assert_eq!(
        s.user_by_email("owner@acme.io")
            .unwrap()
            .unwrap()
            .disabled_at_ms,
        Some(7)
    );
    assert!(s.set_user_disabled(&t.id, "usr_1", None).unwrap());
    assert!(s.session_user("tok3", 5).unwrap().is_some());
    assert!(s.set_user_password(&t.id, "usr_1", "y").unwrap());
    assert!(s.session_user("tok3", 5).unwrap().is_none());
    assert_eq!(
        s.user_by_email("owner@acme.io")
            .unwrap()
            .unwrap()
            .password_hash,
        "y"
    );
    s.insert_session("tok4", "usr_1", i64::MAX - 1).unwrap();
    s.insert_session("tok5", "usr_1", i64::MAX - 1).unwrap();
    assert_eq!(s.revoke_sessions(&t.id, "usr_1").unwrap(), Some(2));
    assert!(s.session_user("tok4", 5).unwrap().is_none());
}

pub(crate) fn tenants_are_isolated(s: &dyn Store) {
    let a = s.create_tenant("A").unwrap().id;
    let b = s.create_tenant("B").unwrap().id;
    let m = json!({"type":"identify","userId":"same-id","messageId":"1","timestamp":at(0),"traits":{"name":"In A"}});
    s.append(&[req(&a, "k", &[m])]).unwrap();
    let pa = s
        .profile_for(&a, &Identifier::parse_typed("user_id:same-id").unwrap())
        .unwrap()
        .unwrap();
    assert!(s
        .profile_for(&b, &Identifier::parse_typed("user_id:same-id").unwrap())
        .unwrap()
        .is_none());
    assert!(
        s.profile(&b, &pa).unwrap().is_none(),
        "a profile id from tenant A is unknown in tenant B"
    );
    assert!(s.quarantine(&b, 10).unwrap().is_empty());
}
