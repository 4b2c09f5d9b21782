//! Group commit at the store boundary: one request the database refuses fails alone; the
//! requests that shared its transaction are committed on their own and acknowledged; a
//! request is answered only once its commit is synced to disk.

use std::sync::Arc;

use cxm_domain::{Clock, IngestOptions};
use cxm_store::committer::Committer;
use cxm_store::testing::{pg_admin_url, TestDb};
use cxm_store::{AppendRequest, PgStore, SqliteStore, Store, StoreSettings};
use serde_json::json;

fn request(tenant: &str, from: usize, n: usize) -> AppendRequest {
    let clock = Clock {
        received_at: chrono::Utc::now(),
        batch_sent_at: None,
    };
    let events = (from..from + n)
        .map(|i| {
            let m = json!({"type": "track", "event": "Seen", "userId": format!("u{}", i % 100), "messageId": format!("m{i}")});
            cxm_domain::normalize(&m, 10, &clock, &IngestOptions::default()).unwrap()
        })
        .collect();
    AppendRequest {
        tenant_id: tenant.into(),
        write_key_id: "k".into(),
        events,
        quarantined: Default::default(),
    }
}

/// PostgreSQL refuses a NUL in a text column. Validation quarantines such events, so this
/// request is built behind its back: it stands for anything the database may refuse.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_request_fails_alone_on_postgres() {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
        return;
    };
    let (db, store, a, b) = tokio::task::spawn_blocking(move || {
        let db = TestDb::create(&admin);
        let store: Arc<dyn Store> =
            Arc::new(PgStore::connect(&db.url, StoreSettings::default()).unwrap());
        let a = store.create_tenant("A").unwrap().id;
        let b = store.create_tenant("B").unwrap().id;
        (db, store, a, b)
    })
    .await
    .unwrap();
    let (committer, writer) = Committer::spawn(store.clone());
    // a big first request keeps the writer busy while the others queue into one group
    let first = {
        let c = committer.clone();
        let r = request(&b, 1_000_000, 20_000);
        tokio::spawn(async move { c.submit(r).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mut sends = vec![];
    for i in 0..40 {
        let c = committer.clone();
        let mut r = request(&b, i * 10, 10);
        let poisoned = i == 20;
        if poisoned {
            r.tenant_id = a.clone();
            r.events[0].user_id = Some("bad\0user".into());
        }
        sends.push((poisoned, tokio::spawn(async move { c.submit(r).await })));
    }
    assert_eq!(first.await.unwrap().unwrap().accepted, 20_000);
    for (poisoned, s) in sends {
        let r = s.await.unwrap();
        if poisoned {
            assert!(r.is_err(), "the refused request fails");
        } else {
            assert_eq!(r.unwrap().accepted, 10, "its neighbours are committed");
        }
    }
    drop(committer);
    writer.await.unwrap();
    let (total_b, total_a) = tokio::task::spawn_blocking(move || {
        let now = chrono::Utc::now().timestamp_millis();
        let out = (
            store.overview(&b, 30, now).unwrap().total_events,
            store.overview(&a, 30, now).unwrap().total_events,
        );
        drop(store);
        drop(db);
        out
    })
    .await
    .unwrap();
    assert_eq!((total_b, total_a), (20_000 + 39 * 10, 0));
}

fn sqlite(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_dir(dir, StoreSettings::default()).unwrap())
}

/// The writer commits a group without waiting for the disk and syncs it beside the next one:
/// whatever was answered is in the file when the store is opened again.
#[tokio::test(flavor = "multi_thread")]
async fn answered_events_are_in_the_sqlite_file_when_it_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path());
    let t = store.create_tenant("A").unwrap().id;
    let (committer, writer) = Committer::spawn(store.clone());
    let sends: Vec<_> = (0..40)
        .map(|i| {
            let (c, r) = (committer.clone(), request(&t, i * 25, 25));
            tokio::spawn(async move { c.submit(r).await })
        })
        .collect();
    for s in sends {
        assert_eq!(s.await.unwrap().unwrap().accepted, 25);
    }
    assert!(
        committer
            .stats()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    drop(committer);
    writer.await.unwrap();
    drop(store);
    let again = sqlite(dir.path());
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(again.overview(&t, 30, now).unwrap().total_events, 1_000);
}

/// With the write-ahead log gone from under the store, its commits cannot be made durable:
/// the request is answered with an error (the client resends, the dedup window takes the
/// copy for one), never with success.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_that_cannot_be_synced_is_not_answered_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path());
    let t = store.create_tenant("A").unwrap().id;
    let (committer, writer) = Committer::spawn(store.clone());
    assert_eq!(
        committer.submit(request(&t, 0, 5)).await.unwrap().accepted,
        5
    );
    std::fs::remove_file(dir.path().join("cxm.db-wal")).unwrap();
    let e = committer.submit(request(&t, 5, 5)).await.unwrap_err();
    assert!(e.to_string().contains("cannot sync"), "{e}");
    drop(committer);
    writer.await.unwrap();
}
