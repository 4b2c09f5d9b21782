//! Secrets at rest on both backends: signing keys, C2PA keys and webhook secrets are not in
//! the database as written, come back whole through the store, are sealed when found from
//! before sealing, and a server with another master key is refused. The embedded store's
//! files are its owner's only.

use cxm_store::sealed::MasterKey;
use cxm_store::testing::{execute_sql, find_text, pg_admin_url, SqlTarget, TestDb};
use cxm_store::*;

const WEBHOOK_SECRET: &str = "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw==";
const ED25519: &str = "ed25519-private-key-material-4f1c";
const C2PA: &str = "-----BEGIN PRIVATE KEY-----c2pa-private-key-9e2d";

fn secrets() -> Vec<String> {
    vec![
        WEBHOOK_SECRET.into(),
        ED25519.into(),
        C2PA.into(),
        "legacy-plain-secret".into(),
    ]
}

fn write_secrets(s: &dyn Store) -> String {
    let t = s.create_tenant("Acme").unwrap().id;
    s.add_webhook(
        &t,
        &WebhookEndpoint {
            id: "wh_1".into(),
            url: "https://8.8.8.8/hook".into(),
            secret: WEBHOOK_SECRET.into(),
            events: vec![],
            active: true,
            created_at_ms: 1,
        },
    )
    .unwrap();
    s.add_signing_key(
        &t,
        &SigningKeyRow {
            kid: "k1".into(),
            public_key: "pub".into(),
            secret_key: ED25519.into(),
            created_at_ms: 1,
            retired_at_ms: None,
            revoked_at_ms: None,
            revoke_reason: None,
        },
        "test",
    )
    .unwrap();
    s.save_content_key(&t, "chain", C2PA).unwrap();
    t
}

fn read_back(s: &dyn Store, t: &str) {
    assert_eq!(
        s.webhook(t, "wh_1").unwrap().unwrap().secret,
        WEBHOOK_SECRET
    );
    assert_eq!(s.webhooks(t).unwrap()[0].secret, WEBHOOK_SECRET);
    assert_eq!(s.signing_keys(t).unwrap()[0].secret_key, ED25519);
    assert_eq!(s.content_key(t).unwrap().unwrap().1, C2PA);
}

#[test]
fn sealed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let target = SqlTarget::Sqlite(dir.path().join("cxm.db"));
    let t;
    {
        let s = SqliteStore::open_dir(dir.path(), StoreSettings::default()).unwrap();
        t = write_secrets(&s);
        read_back(&s, &t);
    }
    assert!(
        find_text(&target, &secrets()).is_empty(),
        "{:?}",
        find_text(&target, &secrets())
    );
    // the key file in the data directory opens it again
    let s = SqliteStore::open_dir(dir.path(), StoreSettings::default()).unwrap();
    read_back(&s, &t);
    drop(s);
    // another key is refused, naming both
    let other = StoreSettings {
        master_key: Some(MasterKey::generate()),
        ..Default::default()
    };
    let e = SqliteStore::open_dir(dir.path(), other).err().unwrap();
    assert!(e.to_string().contains("sealed with master key"), "{e}");

    // a secret stored before sealing is sealed at the next start
    execute_sql(
        &target,
        "UPDATE webhook_endpoints SET secret = 'legacy-plain-secret'; DELETE FROM store_meta;",
    );
    let s = SqliteStore::open_dir(dir.path(), StoreSettings::default()).unwrap();
    assert_eq!(
        s.webhook(&t, "wh_1").unwrap().unwrap().secret,
        "legacy-plain-secret"
    );
    drop(s);
    assert!(find_text(&target, &secrets()).is_empty());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path().to_path_buf()), 0o700);
        for f in ["cxm.db", "master.key"] {
            assert_eq!(mode(dir.path().join(f)), 0o600, "{f}");
        }
        for f in ["cxm.db-wal", "cxm.db-shm"] {
            if dir.path().join(f).exists() {
                assert_eq!(mode(dir.path().join(f)), 0o600, "{f}");
            }
        }
    }
}

#[test]
fn sealed_on_postgres() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let db = TestDb::create(&admin);
    let target = SqlTarget::Postgres(db.url.clone());
    let key = MasterKey::generate();
    let with = |k: &MasterKey| StoreSettings {
        master_key: Some(k.clone()),
        ..Default::default()
    };
    let s = PgStore::connect(&db.url, with(&key)).unwrap();
    let t = write_secrets(&s);
    read_back(&s, &t);
    drop(s);
    assert!(find_text(&target, &secrets()).is_empty());
    let s = PgStore::connect(&db.url, with(&key)).unwrap();
    read_back(&s, &t);
    drop(s);
    let e = PgStore::connect(&db.url, with(&MasterKey::generate()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("sealed with master key"), "{e}");
    execute_sql(
        &target,
        "UPDATE webhook_endpoints SET secret = 'legacy-plain-secret'; DELETE FROM store_meta;",
    );
    let s = PgStore::connect(&db.url, with(&key)).unwrap();
    assert_eq!(
        s.webhook(&t, "wh_1").unwrap().unwrap().secret,
        "legacy-plain-secret"
    );
    drop(s);
    assert!(find_text(&target, &secrets()).is_empty());
}
