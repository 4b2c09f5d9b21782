//! Partition leases in PostgreSQL: one owner at a time, epochs that only grow, a former
//! owner's late write refused, and a node id two processes cannot share.

use std::time::Duration;

use cxm_store::testing::{pg_admin_url, TestDb};
use cxm_store::{EventStore, PgStore, Store, StoreError, StoreSettings, TenantStore};

fn store() -> Option<(TestDb, PgStore)> {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
        return None;
    };
    let db = TestDb::create(&admin);
    let s = PgStore::connect(&db.url, StoreSettings::default()).unwrap();
    Some((db, s))
}

#[test]
fn a_lease_has_one_owner_and_a_late_write_is_fenced() {
    let Some((_db, s)) = store() else { return };
    let c = s.cluster().expect("postgres keeps cluster state");
    let a = c
        .acquire(7, "node-a", 400)
        .unwrap()
        .expect("a free partition is taken");
    assert_eq!((a.owner.as_str(), a.epoch, a.expired), ("node-a", 1, false));
    assert!(c.acquire(7, "node-b", 400).unwrap().is_none(), "held by a");
    // renewing keeps the epoch and moves the expiry
    let renewed = c.acquire(7, "node-a", 400).unwrap().unwrap();
    assert_eq!(renewed.epoch, 1);
    assert!(renewed.expires_at_ms >= a.expires_at_ms);
    c.advance_applied(7, "node-a", 1, 100).unwrap();

    std::thread::sleep(Duration::from_millis(500));
    let b = c
        .acquire(7, "node-b", 5_000)
        .unwrap()
        .expect("an expired lease is taken");
    assert_eq!(
        (b.owner.as_str(), b.epoch, b.applied_seq),
        ("node-b", 2, 100)
    );
    // a's write under its old epoch is refused, b's goes through, and positions never go back
    let late = c.advance_applied(7, "node-a", 1, 150).unwrap_err();
    assert!(matches!(late, StoreError::Conflict(_)), "{late:?}");
    c.advance_applied(7, "node-b", 2, 180).unwrap();
    c.advance_applied(7, "node-b", 2, 170).unwrap();
    assert_eq!(c.leases().unwrap()[0].applied_seq, 180);
    assert!(
        c.acquire(7, "node-a", 400).unwrap().is_none(),
        "b holds it now"
    );
    assert!(
        !c.release(7, "node-b", 1).unwrap(),
        "only the epoch held can be released"
    );
    assert!(c.release(7, "node-b", 2).unwrap());
    let again = c.acquire(7, "node-a", 400).unwrap().unwrap();
    assert_eq!(
        again.epoch, 3,
        "a released lease changes hands with a new epoch"
    );
    assert_eq!(
        c.lease_history(7).unwrap(),
        vec![
            (1, "node-a".to_string()),
            (2, "node-b".to_string()),
            (3, "node-a".to_string())
        ]
    );
}

#[test]
fn a_node_id_is_one_process_at_a_time() {
    let Some((_db, s)) = store() else { return };
    let c = s.cluster().unwrap();
    c.heartbeat("node-a", "first", 400).unwrap();
    c.heartbeat("node-a", "first", 400).unwrap();
    let twice = c.heartbeat("node-a", "second", 400).unwrap_err();
    assert!(
        matches!(&twice, StoreError::Conflict(m) if m.contains("in use")),
        "{twice:?}"
    );
    assert_eq!(c.live_nodes().unwrap().len(), 1);
    // once the first process's heartbeat lapses, the id is free again
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.live_nodes().unwrap().is_empty());
    c.heartbeat("node-a", "second", 5_000).unwrap();
    // a clean stop lets its leases go at once
    c.acquire(1, "node-a", 5_000).unwrap().unwrap();
    c.leave("node-a", "second").unwrap();
    assert!(c.live_nodes().unwrap().is_empty());
    assert!(c.leases().unwrap()[0].expired);
    assert_eq!(c.acquire(1, "node-b", 5_000).unwrap().unwrap().epoch, 2);
}

#[test]
fn racing_nodes_never_share_an_epoch() {
    let Some((_db, s)) = store() else { return };
    let s = std::sync::Arc::new(s);
    // eight threads grab sixteen partitions with short leases, over and over
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let c = s.cluster().unwrap();
                let me = format!("node-{t}");
                for round in 0..30 {
                    for p in 0..16 {
                        if (p + round + t) % 3 == 0 {
                            c.acquire(p, &me, 30).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = s.cluster().unwrap();
    for p in 0..16 {
        let h = c.lease_history(p).unwrap();
        assert!(!h.is_empty(), "partition {p} was taken");
        for (i, (epoch, _)) in h.iter().enumerate() {
            assert_eq!(
                *epoch,
                i as i64 + 1,
                "partition {p}: epochs grow by one: {h:?}"
            );
        }
        let now = c
            .leases()
            .unwrap()
            .into_iter()
            .find(|l| l.partition == p)
            .unwrap();
        assert_eq!(now.epoch, h.len() as i64);
        assert_eq!(now.owner, h.last().unwrap().1);
    }
}

fn log_events(tenant: &str, seqs: std::ops::RangeInclusive<i64>) -> Vec<cxm_store::LogEvent> {
    let clock = cxm_domain::Clock {
        received_at: chrono::Utc::now(),
        batch_sent_at: None,
    };
    seqs.map(|seq| {
        let msg = serde_json::json!({"type": "track", "event": "Signed In", "userId": format!("u{}", seq % 3), "messageId": format!("m{seq}")});
        cxm_store::LogEvent {
            seq,
            tenant_id: tenant.into(),
            write_key_id: "wk".into(),
            event: cxm_domain::normalize(&msg, 10, &clock, &Default::default()).unwrap(),
        }
    })
    .collect()
}

/// The owner's apply: a batch lands once and moves the position; a redelivery (whole,
/// overlapping, or an older batch arriving after a newer one) is dropped by the dedup
/// window; a former owner's batch is refused whole, and every apply is on record under the
/// epoch it was made in.
#[test]
fn an_apply_is_fenced_and_a_redelivery_is_dropped_not_lost() {
    let Some((_db, s)) = store() else { return };
    let c = s.cluster().unwrap();
    let t = s.create_tenant("acme").unwrap().id;
    let a = c.acquire(3, "node-a", 60_000).unwrap().unwrap();
    let fence_a = cxm_store::Fence {
        partition: 3,
        node: "node-a".into(),
        epoch: a.epoch,
    };
    let first = c.apply(&fence_a, &log_events(&t, 1..=10)).unwrap();
    assert_eq!(
        (first.outcome.accepted, first.skipped, first.applied_seq),
        (10, 0, 10)
    );
    // the same batch again (an ack that was lost), then one that overlaps it
    let again = c.apply(&fence_a, &log_events(&t, 1..=10)).unwrap();
    assert_eq!(
        (again.outcome.accepted, again.skipped, again.applied_seq),
        (0, 10, 10)
    );
    let overlap = c.apply(&fence_a, &log_events(&t, 6..=15)).unwrap();
    assert_eq!(
        (
            overlap.outcome.accepted,
            overlap.skipped,
            overlap.applied_seq
        ),
        (5, 5, 15)
    );
    // a batch a dead owner pulled comes back after newer ones were applied: it still lands
    let newer = c.apply(&fence_a, &log_events(&t, 31..=35)).unwrap();
    assert_eq!((newer.outcome.accepted, newer.applied_seq), (5, 35));
    let older = c.apply(&fence_a, &log_events(&t, 21..=25)).unwrap();
    assert_eq!(
        (older.outcome.accepted, older.skipped, older.applied_seq),
        (5, 0, 35)
    );
    assert_eq!(
        s.overview(&t, 30, chrono::Utc::now().timestamp_millis())
            .unwrap()
            .total_events,
        25
    );

    // node-b takes the partition once node-a's lease is given back; node-a's late batch is refused
    assert!(c.release(3, "node-a", a.epoch).unwrap());
    let b = c.acquire(3, "node-b", 60_000).unwrap().unwrap();
    assert_eq!(b.epoch, a.epoch + 1);
    assert_eq!(b.applied_seq, 35, "the position moves with the partition");
    let late = c.apply(&fence_a, &log_events(&t, 16..=20));
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let fence_b = cxm_store::Fence {
        partition: 3,
        node: "node-b".into(),
        epoch: b.epoch,
    };
    assert_eq!(
        c.apply(&fence_b, &log_events(&t, 16..=20))
            .unwrap()
            .outcome
            .accepted,
        5
    );
    assert_eq!(
        s.overview(&t, 30, chrono::Utc::now().timestamp_millis())
            .unwrap()
            .total_events,
        30
    );
    let record: Vec<(i64, String, i64, i64)> = c
        .applies(3)
        .unwrap()
        .into_iter()
        .map(|r| (r.epoch, r.owner, r.first_seq, r.last_seq))
        .collect();
    assert_eq!(
        record,
        vec![
            (a.epoch, "node-a".into(), 1, 10),
            (a.epoch, "node-a".into(), 1, 10),
            (a.epoch, "node-a".into(), 6, 15),
            (a.epoch, "node-a".into(), 31, 35),
            (a.epoch, "node-a".into(), 21, 25),
            (b.epoch, "node-b".into(), 16, 20)
        ]
    );
    let leases = c.leases().unwrap();
    assert!(leases[0].applied_at_ms.is_some());
    assert_eq!(
        c.prune_applies(3_600_000).unwrap(),
        0,
        "recent records are kept"
    );
}

/// Every node of a cluster drains the one webhook outbox: two nodes claiming at once get
/// disjoint deliveries, a claimed delivery is not due again until its claim runs out, and a
/// settled retry is due again when it says.
#[test]
fn nodes_claim_disjoint_webhook_deliveries() {
    use cxm_store::OutboxStore;
    let Some((_db, s)) = store() else { return };
    let s = std::sync::Arc::new(s);
    let t = s.create_tenant("acme").unwrap().id;
    s.add_webhook(
        &t,
        &cxm_store::WebhookEndpoint {
            id: "wh1".into(),
            url: "https://example.com/hook".into(),
            secret: "whsec_x".into(),
            events: vec![],
            active: true,
            created_at_ms: 0,
        },
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for i in 0..40 {
        s.queue_webhook(&t, "alert.raised", &serde_json::json!({"n": i}), None, now)
            .unwrap();
    }
    // two nodes: two connections of the pool, claiming at the same time
    let node = s.clone();
    let claim = move || {
        let s = node;
        let mut got = vec![];
        loop {
            let batch = s.due_webhooks(now, 3).unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|d| d.id));
        }
    };
    let other = claim.clone();
    let (a, b) = (std::thread::spawn(claim), std::thread::spawn(other));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), a.len() + b.len(), "no delivery claimed twice");
    assert_eq!(all.len(), 40);
    assert!(
        s.due_webhooks(now + 1_000, 50).unwrap().is_empty(),
        "claimed"
    );
    let first = all[0];
    s.settle_webhook(first, "pending", now + 5_000, Some(500), Some("boom"), now)
        .unwrap();
    let again = s.due_webhooks(now + 5_000, 50).unwrap();
    assert_eq!(again.iter().map(|d| d.id).collect::<Vec<_>>(), vec![first]);
    assert_eq!(
        s.due_webhooks(now + 61_000, 100).unwrap().len(),
        39,
        "claims run out"
    );
}
