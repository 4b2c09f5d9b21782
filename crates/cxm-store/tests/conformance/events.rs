//! The event log: dedup per write key, quarantine and its caps, the overview, the dedup window across a restart, and the columnar copy.

use super::*;

pub(crate) fn dedup_is_per_write_key_and_quarantine_is_listed(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let m = json!({"type":"track","event":"Signed Up","userId":"u1","messageId":"m1","timestamp":at(0)});
    let mut r = req(&t, "k1", &[m.clone(), m.clone()]);
    r.quarantined.push(
        json!({"bad":true}),
        12,
        cxm_domain::QuarantineReason {
            code: "missing_type",
            detail: "type is required".into(),
        },
    );
    let out = s
        .append(&[
            r,
            req(&t, "k1", std::slice::from_ref(&m)),
            req(&t, "k2", &[m]),
        ])
        .unwrap();
    assert_eq!(
        out[0],
        AppendOutcome {
            accepted: 1,
            duplicates: 1,
            quarantined: 1
        }
    );
    assert_eq!(
        out[1],
        AppendOutcome {
            accepted: 0,
            duplicates: 1,
            quarantined: 0
        }
    );
    assert_eq!(out[2].accepted, 1, "another write key is another message");
    let q = s.quarantine(&t, 10).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].code, "missing_type");
    assert_eq!(q[0].payload, json!({"bad":true}));
}

pub(crate) fn overview_counts_by_day_and_channel(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type":"track","event":"Chat Started","userId":"u1","messageId":"1","timestamp":at(0)}),
        json!({"type":"track","event":"Call Completed","userId":"u1","messageId":"2","timestamp":at(1)}),
        json!({"type":"track","event":"Call Completed","userId":"u2","messageId":"3","timestamp":at(60 * 24)}),
    ])]).unwrap();
    let o = s
        .overview(&t, 90, (base() + Duration::days(2)).timestamp_millis())
        .unwrap();
    assert_eq!(o.total_events, 3);
    assert_eq!(o.profiles, 2);
    let rows: Vec<(String, String, i64)> = o
        .by_day_channel
        .into_iter()
        .map(|r| (r.day, r.channel, r.events))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("2026-11-01".into(), "chat".into(), 1),
            ("2026-11-01".into(), "voice".into(), 1),
            ("2026-11-02".into(), "voice".into(), 1),
        ]
    );
}

/// A tenant's quarantine keeps rows up to the day's caps and only counts what comes after;
/// another tenant's day is its own. Run on both backends with small caps.
pub(crate) fn quarantine_is_capped_per_tenant_and_day(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let other = s.create_tenant("Other").unwrap().id;
    let bad = |tenant: &str, n: usize| {
        let mut r = req(tenant, "k", &[]);
        r.quarantined = cxm_domain::Quarantine::unbounded();
        for i in 0..n {
            r.quarantined.push(
                json!({"n": i}),
                10,
                cxm_domain::QuarantineReason {
                    code: "missing_type",
                    detail: "type is required".into(),
                },
            );
        }
        r
    };
    let out = s.append(&[bad(&t, 3), bad(&t, 4), bad(&other, 2)]).unwrap();
    assert_eq!(
        out.iter().map(|o| o.quarantined).collect::<Vec<_>>(),
        [3, 4, 2],
        "every rejected event is counted"
    );
    s.append(&[bad(&t, 2)]).unwrap();
    assert_eq!(
        s.quarantine(&t, 100).unwrap().len(),
        5,
        "the day keeps five rows"
    );
    assert_eq!(s.quarantine(&other, 100).unwrap().len(), 2);
    let days = s.quarantine_days(&t, "2000-01-01").unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].events, days[0].rows_kept), (9, 5));
    assert!(days[0].bytes_kept > 0);
    // the quarantine class has a period of its own by default, and is purged with it
    assert_eq!(
        effective_retention(s.retention(&t).unwrap()).get("quarantine"),
        Some(&30)
    );
    let later = chrono::Utc::now().timestamp_millis() + 31 * 86_400_000;
    assert_eq!(s.purge(&t, later).unwrap().quarantined, 5);
    assert!(s.quarantine(&t, 100).unwrap().is_empty());
    assert!(s.quarantine_days(&t, "2000-01-01").unwrap().is_empty());
    assert_eq!(s.quarantine(&other, 100).unwrap().len(), 2);
}

pub(crate) fn capped() -> StoreSettings {
    StoreSettings {
        quarantine_rows_per_day: 5,
        ..Default::default()
    }
}

#[test]
pub(crate) fn quarantine_caps_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    quarantine_is_capped_per_tenant_and_day(&SqliteStore::open_dir(dir.path(), capped()).unwrap());
}

#[test]
pub(crate) fn quarantine_caps_on_postgres() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let db = TestDb::create(&admin);
    quarantine_is_capped_per_tenant_and_day(&PgStore::connect(&db.url, capped()).unwrap());
}

/// SQLite keeps the dedup window in memory and rebuilds it from the log: a retry that arrives
/// after a restart is still recognised, and ids older than the window are forgotten.
#[test]
pub(crate) fn sqlite_dedup_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings {
        dedup_window: std::time::Duration::from_secs(24 * 3600),
        ..Default::default()
    };
    let t;
    {
        let s = SqliteStore::open_dir(dir.path(), settings.clone()).unwrap();
        t = s.create_tenant("Acme").unwrap().id;
        let mut r = req(
            &t,
            "k",
            &[json!({"type":"track","event":"X","userId":"u","messageId":"m1","timestamp":at(0)})],
        );
        r.events[0].received_at = Utc::now();
        assert_eq!(s.append(&[r]).unwrap()[0].accepted, 1);
    }
    let s = SqliteStore::open_dir(dir.path(), settings).unwrap();
    let mut again = req(
        &t,
        "k",
        &[json!({"type":"track","event":"X","userId":"u","messageId":"m1","timestamp":at(0)})],
    );
    again.events[0].received_at = Utc::now();
    assert_eq!(
        s.append(std::slice::from_ref(&again)).unwrap()[0].duplicates,
        1
    );
    // once pruned past the window the id is forgotten (a backend may keep a whole day of
    // arrivals until the day is past, so the cutoff is a day ahead)
    assert_eq!(
        s.prune_dedup(Utc::now().timestamp_millis() + 86_400_000)
            .unwrap(),
        1
    );
    assert_eq!(s.append(&[again]).unwrap()[0].accepted, 1);
}

/// The columnar copy of the log: full blocks only, in log order, per tenant, the same
/// events the rows hold; an erasure drops them (they name the customer) and they are written
/// again without the erased customer.
pub(crate) fn event_blocks_copy_the_log_and_go_with_an_erasure(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let other = s.create_tenant("Other").unwrap().id;
    let msgs: Vec<Value> = (0..7)
        .map(|i| {
            let who = if i % 2 == 0 { json!({"userId": "u-ada"}) } else { json!({"anonymousId": "anon-bob"}) };
            let mut m = json!({"type": "track", "event": format!("E{}", i % 3), "messageId": format!("m{i}"), "timestamp": at(i), "context": {"channel": "chat"}});
            m.as_object_mut().unwrap().extend(who.as_object().unwrap().clone());
            m
        })
        .collect();
    s.append(&[req(&t, "k", &msgs[..3]), req(&other, "k", &msgs[..3])])
        .unwrap();
    // an identify has no name: it is not in a block
    s.append(&[req(
        &t,
        "k",
        &[json!({"type": "identify", "userId": "u-ada", "messageId": "id", "timestamp": at(8)})],
    )])
    .unwrap();
    s.append(&[req(&t, "k", &msgs[3..])]).unwrap();
    assert_eq!(s.event_blocks_head(&t).unwrap(), 0);
    assert_eq!(s.compact_events(&t, 3).unwrap(), 3);
    assert_eq!(s.compact_events(&t, 3).unwrap(), 3);
    assert_eq!(
        s.compact_events(&t, 3).unwrap(),
        0,
        "one event left: not a full block"
    );
    let blocks = s.event_blocks(&t, 0, 100).unwrap();
    assert_eq!(blocks.len(), 2);
    assert!(blocks[0].last_seq < blocks[1].first_seq);
    let second = s.event_blocks(&t, blocks[0].last_seq, 1).unwrap();
    assert_eq!(second.len(), 1, "paged");
    assert_eq!(second[0].first_seq, blocks[1].first_seq);
    assert_eq!(s.event_blocks_head(&t).unwrap(), blocks[1].last_seq);
    assert!(
        s.event_blocks(&other, 0, 100).unwrap().is_empty(),
        "tenants are apart"
    );
    let mut names = vec![];
    let mut users = vec![];
    for b in &blocks {
        let c = cxm_store::columns::decode(&b.body).unwrap();
        for i in 0..c.len() {
            names.push(c.names[c.name[i] as usize].to_string());
            let u = c.user[i];
            users.push((u != cxm_store::columns::NONE).then(|| c.ids[u as usize].to_string()));
        }
    }
    assert_eq!(names, ["E0", "E1", "E2", "E0", "E1", "E2"]);
    assert_eq!(users[0].as_deref(), Some("uu-ada"));
    assert_eq!(users[1], None);
    let keys = s.identity_keys(&t).unwrap();
    let ada = profile_of(s, &t, "user_id:u-ada").id;
    assert!(
        keys.contains(&("uu-ada".to_string(), ada.clone())),
        "{keys:?}"
    );
    assert!(keys.iter().any(|(k, _)| k == "aanon-bob"));

    s.erase_customer(&t, &ada, "er_1", "dpo@acme.example")
        .unwrap()
        .unwrap();
    assert!(
        s.event_blocks(&t, 0, 100).unwrap().is_empty(),
        "the erased customer's blocks are gone"
    );
    assert_eq!(
        s.compact_events(&t, 3).unwrap(),
        3,
        "bob's events are written again"
    );
    let c = s.event_blocks(&t, 0, 100).unwrap();
    let c = cxm_store::columns::decode(&c[0].body).unwrap();
    assert!(c.ids.iter().all(|k| !k.contains("ada")), "{:?}", c.ids);
}

/// The dedup window reaches back over days of arrival: an id first received yesterday is a
/// duplicate today, and pruning forgets only the days wholly past the window.
pub(crate) fn dedup_window_spans_days_of_arrival(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let now = Utc::now();
    let sent = |id: &str, received: chrono::DateTime<Utc>| {
        let mut r = req(
            &t,
            "k",
            &[json!({"type":"track","event":"X","userId":"u","messageId":id,"timestamp":at(0)})],
        );
        r.events[0].received_at = received;
        r
    };
    let yesterday = now - Duration::hours(30);
    let long_ago = now - Duration::days(5);
    let first = s
        .append(&[sent("recent", yesterday), sent("old", long_ago)])
        .unwrap();
    assert_eq!((first[0].accepted, first[1].accepted), (1, 1));
    // the hourly pruner with a two-day window
    let cutoff = (now - Duration::hours(48)).timestamp_millis();
    assert!(
        s.prune_dedup(cutoff).unwrap() >= 1,
        "the five-day-old id is forgotten"
    );
    let again = s.append(&[sent("recent", now), sent("old", now)]).unwrap();
    assert_eq!(
        again[0].duplicates, 1,
        "received 30 hours ago: still a duplicate"
    );
    assert_eq!(
        again[1].accepted, 1,
        "received five days ago: past the window"
    );
    // and today's arrivals count at once
    assert_eq!(s.append(&[sent("recent", now)]).unwrap()[0].duplicates, 1);
}

/// PostgreSQL's dedup window moved from three texts to their digest (migration 26): an id
/// remembered before the upgrade is still a duplicate after it, so the digest the migration
/// computes in SQL is the one ingest computes.
#[test]
pub(crate) fn postgres_dedup_window_survives_the_move_to_digests() {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
        return;
    };
    let db = TestDb::create(&admin);
    let sent = |t: &str, id: &str| {
        req(
            t,
            "k",
            &[json!({"type":"track","event":"X","userId":"u","messageId":id,"timestamp":at(0)})],
        )
    };
    let settings = StoreSettings {
        master_key: Some(cxm_store::sealed::MasterKey::generate()),
        ..Default::default()
    };
    let t = {
        let s = PgStore::connect(&db.url, settings.clone()).unwrap();
        s.create_tenant("Acme").unwrap().id
    };
    let day = sent(&t, "x").events[0].received_at.timestamp_millis() / 86_400_000;
    // the window as version 25 kept it, holding one id
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "DROP TABLE dedup;
         CREATE TABLE dedup (day INT NOT NULL, tenant_id TEXT NOT NULL, write_key_id TEXT NOT NULL,
             message_id TEXT NOT NULL, PRIMARY KEY (tenant_id, write_key_id, message_id, day))
             PARTITION BY RANGE (day);
         CREATE TABLE dedup_d{day} PARTITION OF dedup FOR VALUES FROM ({day}) TO ({});
         INSERT INTO dedup VALUES ({day}, '{t}', 'k', 'before-upgrade');
         DELETE FROM schema_migrations WHERE version = 26;",
        day + 1
    ))
    .unwrap();
    drop(c);
    let s = PgStore::connect(&db.url, settings).unwrap();
    let out = s
        .append(&[sent(&t, "before-upgrade"), sent(&t, "after-upgrade")])
        .unwrap();
    assert_eq!(out[0].duplicates, 1, "remembered across the upgrade");
    assert_eq!(out[1].accepted, 1, "a new id is new");
    assert_eq!(
        s.append(&[sent(&t, "after-upgrade")]).unwrap()[0].duplicates,
        1
    );
    drop(s);
    drop(db);
}
