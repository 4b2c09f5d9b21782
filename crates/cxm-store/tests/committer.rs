//! Group commit at the store boundary: one request the database refuses fails alone; the
//! requests that shared its transaction are committed on their own and acknowledged.

use std::sync::Arc;

use cxm_domain::{Clock, IngestOptions};
use cxm_store::committer::Committer;
use cxm_store::testing::{pg_admin_url, TestDb};
use cxm_store::{AppendRequest, PgStore, Store, StoreSettings};
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
