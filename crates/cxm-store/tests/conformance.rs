//! One suite, run against every backend: SQLite always, PostgreSQL when
//! `CXM_TEST_DATABASE_URL` names a server (each test gets a fresh database).

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use cxm_domain::{Clock, Identifier, IngestOptions};
use cxm_store::testing::{pg_admin_url, TestDb};
use cxm_store::*;
use serde_json::{json, Value};

struct Backend {
    store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any>,
}

fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path(), StoreSettings::default()).unwrap();
    Backend {
        store: Arc::new(store),
        _guard: Box::new(dir),
    }
}

fn postgres() -> Option<Backend> {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)");
        return None;
    };
    let db = TestDb::create(&admin);
    let store = PgStore::connect(&db.url, StoreSettings::default()).unwrap();
    // the store must be dropped before the database: field order drops `store` first
    Some(Backend {
        store: Arc::new(store),
        _guard: Box::new(db),
    })
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend { $( #[test] fn $name() { super::$name(&*super::sqlite().store); } )* }
        mod postgres_backend { $( #[test] fn $name() { if let Some(b) = super::postgres() { super::$name(&*b.store); } } )* }
    };
}

conformance!(
    tenants_keys_and_users,
    dedup_is_per_write_key_and_quarantine_is_listed,
    anonymous_history_joins_the_identified_customer,
    two_user_ids_never_merge_and_the_drop_is_recorded,
    timeline_is_newest_first_and_paginates,
    rebuild_equals_incremental,
    blocking_an_identifier_unmerges,
    overview_counts_by_day_and_channel,
    tenants_are_isolated,
    feedback_is_idempotent_and_rolled_up,
    surveys_are_versioned_and_links_count,
    answers_link_to_accounts_and_slice_by_tier,
    themes_persist_and_count,
    journeys_are_versioned_and_progress_is_saved_once,
    decisions_chain_and_reviews_settle_once,
    signing_keys_messages_and_checkpoints,
    event_blocks_copy_the_log_and_go_with_an_erasure,
);

fn base() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn events(msgs: &[Value]) -> Vec<cxm_domain::NormalizedEvent> {
    let clock = Clock {
        received_at: base() + Duration::days(30),
        batch_sent_at: None,
    };
    let opts = IngestOptions {
        trust_timestamps: true,
        ..Default::default()
    };
    msgs.iter()
        .map(|m| cxm_domain::normalize(m, 10, &clock, &opts).unwrap())
        .collect()
}

fn at(minutes: i64) -> String {
    (base() + Duration::minutes(minutes)).to_rfc3339()
}

fn req(tenant: &str, key: &str, msgs: &[Value]) -> AppendRequest {
    AppendRequest {
        tenant_id: tenant.into(),
        write_key_id: key.into(),
        events: events(msgs),
        quarantined: Default::default(),
    }
}

fn profile_of(s: &dyn Store, tenant: &str, typed: &str) -> Profile {
    let pid = s
        .profile_for(tenant, &Identifier::parse_typed(typed).unwrap())
        .unwrap()
        .unwrap_or_else(|| panic!("{typed} has no profile"));
    s.profile(tenant, &pid).unwrap().unwrap()
}

fn tenants_keys_and_users(s: &dyn Store) {
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

fn dedup_is_per_write_key_and_quarantine_is_listed(s: &dyn Store) {
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

fn anonymous_history_joins_the_identified_customer(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type":"page","name":"Pricing","anonymousId":"anon-1","messageId":"a","timestamp":at(0)}),
        json!({"type":"track","event":"Chat Started","anonymousId":"anon-1","messageId":"b","timestamp":at(1),"context":{"traits":{"email":"Ada@Example.com"}}}),
        json!({"type":"identify","userId":"u-ada","anonymousId":"anon-2","messageId":"c","timestamp":at(2),"traits":{"name":"Ada","email":"ada@example.com"}}),
    ])]).unwrap();
    let p = profile_of(s, &t, "user_id:u-ada");
    assert_eq!(p.id, profile_of(s, &t, "anonymous_id:anon-1").id);
    assert_eq!(p.id, profile_of(s, &t, "email:ADA@example.com").id);
    assert_eq!(p.event_count, 3);
    assert_eq!(p.traits["name"], "Ada");
    let ledger = s.ledger(&t, &p.id).unwrap();
    let merge = ledger
        .iter()
        .find(|l| l.action == "merge")
        .expect("a merge is recorded");
    assert_eq!(merge.message_id.as_deref(), Some("c"));
    assert_eq!(merge.identifier.as_ref().unwrap().kind, "email");
    // the id of the absorbed profile still resolves to the survivor
    let absorbed = merge.other_profile_id.clone().unwrap();
    assert_eq!(s.profile(&t, &absorbed).unwrap().unwrap().id, p.id);
    assert_eq!(
        s.timeline(
            &t,
            &p,
            &TimelinePage {
                before: None,
                limit: 10
            }
        )
        .unwrap()
        .len(),
        3
    );
    let found = s.search_profiles(&t, "ada", 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].display, "Ada");
}

fn two_user_ids_never_merge_and_the_drop_is_recorded(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type":"identify","userId":"u1","anonymousId":"kiosk","messageId":"1","timestamp":at(0)}),
        json!({"type":"identify","userId":"u2","anonymousId":"kiosk","messageId":"2","timestamp":at(1)}),
    ])]).unwrap();
    let p1 = profile_of(s, &t, "user_id:u1");
    let p2 = profile_of(s, &t, "user_id:u2");
    assert_ne!(p1.id, p2.id);
    let drops: Vec<_> = s
        .ledger(&t, &p2.id)
        .unwrap()
        .into_iter()
        .filter(|l| l.action == "drop")
        .collect();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].reason.as_deref(), Some("conflicting_user_id"));
}

fn timeline_is_newest_first_and_paginates(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let msgs: Vec<Value> = (0..25)
        .map(|i| json!({"type":"track","event":"Feature Used","userId":"u1","anonymousId": if i % 2 == 0 {"d1"} else {"d2"},"messageId":format!("m{i}"),"timestamp":at(i)}))
        .collect();
    s.append(&[req(&t, "k", &msgs)]).unwrap();
    let p = profile_of(s, &t, "user_id:u1");
    let mut seen = vec![];
    let mut page = TimelinePage {
        before: None,
        limit: 10,
    };
    loop {
        let rows = s.timeline(&t, &p, &page).unwrap();
        if rows.is_empty() {
            break;
        }
        let last = rows.last().unwrap();
        page.before = Some((last.timestamp_ms, last.seq));
        seen.extend(rows.into_iter().map(|e| e.message_id));
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
}

/// Random cross-channel traffic over shared devices and junk ids, appended in several
/// requests, then rebuilt from the log: the identity projection must be identical.
fn rebuild_equals_incremental(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut msgs = vec![];
    for i in 0..400 {
        let user = next(30);
        let mut m = json!({"type":"track","event":"Feature Used","messageId":format!("m{i}"),"timestamp":at(i64::try_from(next(5000)).unwrap())});
        if next(3) > 0 {
            m["userId"] = json!(format!("u{user}"));
        }
        m["anonymousId"] = json!(match next(10) {
            0 => "null".to_string(),
            1 => "shared-device".to_string(),
            _ => format!("d{}", (user * 7 + next(2)) % 45),
        });
        if m.get("userId").is_none() && m["anonymousId"] == "null" {
            m["anonymousId"] = json!("d0");
        }
        if next(4) == 0 {
            m["type"] = json!("identify");
            m["traits"] =
                json!({"email": format!("p{}@x.io", next(35)), "plan": format!("plan{}", next(3))});
        }
        msgs.push(m);
    }
    for chunk in msgs.chunks(37) {
        s.append(&[req(&t, "k", chunk)]).unwrap();
    }
    let before = s.identity_snapshot(&t).unwrap();
    let overview_before = s
        .overview(&t, 365, (base() + Duration::days(30)).timestamp_millis())
        .unwrap();
    assert!(before.len() > 50, "the test data should build a real graph");
    let stats = s.rebuild(Some(&t)).unwrap();
    assert_eq!(stats.events, 400);
    assert_eq!(s.identity_snapshot(&t).unwrap(), before);
    let overview_after = s
        .overview(&t, 365, (base() + Duration::days(30)).timestamp_millis())
        .unwrap();
    assert_eq!(
        serde_json::to_value(overview_after).unwrap(),
        serde_json::to_value(overview_before).unwrap()
    );
}

fn blocking_an_identifier_unmerges(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type":"identify","userId":"u1","traits":{"email":"family@x.io"},"messageId":"1","timestamp":at(0)}),
        json!({"type":"track","event":"Chat Started","anonymousId":"tablet","messageId":"2","timestamp":at(1),"context":{"traits":{"email":"family@x.io"}}}),
    ])]).unwrap();
    let before = profile_of(s, &t, "user_id:u1");
    assert_eq!(before.id, profile_of(s, &t, "anonymous_id:tablet").id);
    let email = Identifier::parse_typed("email:family@x.io").unwrap();
    s.block_identifier(&t, &email, "shared family inbox", "test")
        .unwrap();
    assert_ne!(
        profile_of(s, &t, "user_id:u1").id,
        profile_of(s, &t, "anonymous_id:tablet").id
    );
    assert!(s.profile_for(&t, &email).unwrap().is_none());
    assert_eq!(s.blocked(&t).unwrap(), vec![email.clone()]);
    let after = profile_of(s, &t, "user_id:u1");
    assert!(s
        .ledger(&t, &after.id)
        .unwrap()
        .iter()
        .any(|l| l.action == "block"));
    // new traffic with the blocked value links nothing
    s.append(&[req(&t, "k", &[json!({"type":"identify","userId":"u9","traits":{"email":"family@x.io"},"messageId":"3","timestamp":at(2)})])]).unwrap();
    assert!(s.profile_for(&t, &email).unwrap().is_none());
}

fn overview_counts_by_day_and_channel(s: &dyn Store) {
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

fn tenants_are_isolated(s: &dyn Store) {
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

/// A tenant's quarantine keeps rows up to the day's caps and only counts what comes after;
/// another tenant's day is its own. Run on both backends with small caps.
fn quarantine_is_capped_per_tenant_and_day(s: &dyn Store) {
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

fn capped() -> StoreSettings {
    StoreSettings {
        quarantine_rows_per_day: 5,
        ..Default::default()
    }
}

#[test]
fn quarantine_caps_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    quarantine_is_capped_per_tenant_and_day(&SqliteStore::open_dir(dir.path(), capped()).unwrap());
}

#[test]
fn quarantine_caps_on_postgres() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let db = TestDb::create(&admin);
    quarantine_is_capped_per_tenant_and_day(&PgStore::connect(&db.url, capped()).unwrap());
}

/// SQLite keeps the dedup window in memory and rebuilds it from the log: a retry that arrives
/// after a restart is still recognised, and ids older than the window are forgotten.
#[test]
fn sqlite_dedup_survives_restart() {
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
    // once pruned past the window the id is forgotten
    assert_eq!(
        s.prune_dedup(Utc::now().timestamp_millis() + 10_000)
            .unwrap(),
        1
    );
    assert_eq!(s.append(&[again]).unwrap()[0].accepted, 1);
}

fn answer(v: Value) -> FeedbackRow {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
    FeedbackRow {
        answer: cxm_domain::feedback::parse_answer(&v, now).unwrap(),
        sentiment: None,
        cues: None,
    }
}

fn feedback_is_idempotent_and_rolled_up(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let rows: Vec<FeedbackRow> = [(9, "email", "2026-11-01"), (10, "email", "2026-11-01"), (3, "chat", "2026-11-01"), (7, "chat", "2026-11-02")]
        .iter()
        .enumerate()
        .map(|(i, (score, ch, day))| answer(json!({"response_id": format!("r{i}"), "question": "nps", "type": "nps", "value": score, "channel": ch, "collected_at": format!("{day}T10:00:00Z")})))
        .chain([answer(json!({"response_id": "r0", "question": "why", "type": "text", "value": "slow"}))])
        .collect();
    assert_eq!(
        s.insert_feedback(&t, &rows).unwrap(),
        FeedbackOutcome {
            accepted: 5,
            duplicates: 0
        }
    );
    assert_eq!(
        s.insert_feedback(&t, &rows[..2]).unwrap(),
        FeedbackOutcome {
            accepted: 0,
            duplicates: 2
        },
        "re-import is a no-op"
    );
    let all = s
        .feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", None)
        .unwrap();
    assert_eq!(all.iter().map(|r| r.answers).sum::<u64>(), 4);
    let by = s
        .feedback_histogram(&t, "nps", "2026-11-01", "2026-11-01", Some(Slice::Channel))
        .unwrap();
    let rows: Vec<(&str, i64, u64)> = by
        .iter()
        .map(|r| (r.group.as_str(), r.score, r.answers))
        .collect();
    assert_eq!(rows, [("chat", 3, 1), ("email", 9, 1), ("email", 10, 1)]);
    s.rebuild(Some(&t)).unwrap();
    assert_eq!(
        s.feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", None)
            .unwrap(),
        all,
        "the rollup is rebuilt from the answers"
    );
    let texts = s.text_answers(&t, 0, i64::MAX, 10).unwrap();
    assert_eq!(texts.len(), 1);
    assert_eq!(
        (
            texts[0].response_id.as_str(),
            texts[0].text.as_str(),
            texts[0].nps
        ),
        ("r0", "slow", Some(9))
    );
    assert_eq!(s.nps_answers(&t, 0, i64::MAX).unwrap().len(), 4);
}

fn surveys_are_versioned_and_links_count(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    assert_eq!(
        s.save_survey(&t, "post-ticket", "Post ticket", r#"{"v":1}"#)
            .unwrap(),
        1
    );
    assert_eq!(
        s.save_survey(&t, "post-ticket", "Post ticket v2", r#"{"v":2}"#)
            .unwrap(),
        2
    );
    assert_eq!(
        s.survey(&t, "post-ticket", None).unwrap().unwrap(),
        (2, r#"{"v":2}"#.to_string())
    );
    assert_eq!(s.survey(&t, "post-ticket", Some(1)).unwrap().unwrap().0, 1);
    assert!(s.survey(&t, "nope", None).unwrap().is_none());
    let link = SurveyLink {
        tenant_id: t.clone(),
        survey_id: "post-ticket".into(),
        version: 2,
        identifier: Some("user_id:u1".into()),
        channel: "email".into(),
        displayed_at_ms: None,
        responded_at_ms: None,
        follow_ups: 0,
    };
    s.create_link("h1", &link).unwrap();
    s.create_link("h2", &link).unwrap();
    s.mark_link("h1", LinkEvent::Displayed).unwrap();
    s.mark_link("h1", LinkEvent::Responded).unwrap();
    s.mark_link("h1", LinkEvent::FollowUpAnswered).unwrap();
    s.mark_link("h2", LinkEvent::Displayed).unwrap();
    let l = s.link("h1").unwrap().unwrap();
    assert!(l.displayed_at_ms.is_some() && l.responded_at_ms.is_some());
    assert_eq!(l.follow_ups, 1);
    let list = s.list_surveys(&t).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].version,
            list[0].name.as_str(),
            list[0].links,
            list[0].displays,
            list[0].responses
        ),
        (2, "Post ticket v2", 2, 2, 1)
    );
    assert!(s
        .list_surveys(&s.create_tenant("Other").unwrap().id)
        .unwrap()
        .is_empty());
}

fn answers_link_to_accounts_and_slice_by_tier(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com"}, "timestamp": at(0), "messageId": "m1"}),
        json!({"type": "group", "userId": "u1", "groupId": "acct-1", "traits": {"plan": "enterprise", "arr": 180000}, "timestamp": at(1), "messageId": "m2"}),
    ])])
    .unwrap();
    let rows = vec![
        answer(
            json!({"response_id": "r1", "question": "nps", "type": "nps", "value": 3, "identifier": "email:ada@example.com", "collected_at": "2026-11-02T10:00:00Z"}),
        ),
        answer(
            json!({"response_id": "r1", "question": "why", "type": "text", "value": "slow", "identifier": "email:ada@example.com", "collected_at": "2026-11-02T10:00:00Z"}),
        ),
        answer(
            json!({"response_id": "r2", "question": "nps", "type": "nps", "value": 10, "collected_at": "2026-11-02T10:00:00Z"}),
        ),
    ];
    s.insert_feedback(&t, &rows).unwrap();
    let texts = s.text_answers(&t, 0, i64::MAX, 10).unwrap();
    assert_eq!(
        texts[0].account.as_deref(),
        Some("acct-1"),
        "the identifier's account is found through the graph"
    );
    let by_tier = s
        .feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", Some(Slice::Tier))
        .unwrap();
    let got: Vec<(&str, i64)> = by_tier
        .iter()
        .map(|r| (r.group.as_str(), r.score))
        .collect();
    assert_eq!(
        got,
        [("enterprise", 3)],
        "answers without an account have no tier"
    );
    s.rebuild(Some(&t)).unwrap();
    assert_eq!(
        s.feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", Some(Slice::Tier))
            .unwrap(),
        by_tier
    );
}

fn themes_persist_and_count(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    assert_eq!(s.load_themes(&t).unwrap().version, 0);
    assert!(s.themed_tenants().unwrap().is_empty());
    let v = s
        .save_themes(
            &t,
            &ThemeSave {
                discovery: Some(("{\"idf\":{}}".into(), 0.1)),
                themes: vec![
                    ("a".into(), "{\"id\":\"a\"}".into()),
                    ("b".into(), "{}".into()),
                ],
                edit: None,
            },
        )
        .unwrap();
    assert_eq!(v, 1);
    let v = s
        .save_themes(
            &t,
            &ThemeSave {
                discovery: None,
                themes: vec![("a".into(), "{\"renamed\":1}".into())],
                edit: Some(ThemeEdit {
                    theme_id: "a".into(),
                    kind: "rename".into(),
                    detail: "Billing".into(),
                    actor: "ada".into(),
                    created_at_ms: 0,
                }),
            },
        )
        .unwrap();
    assert_eq!(v, 1, "an edit is not a discovery");
    let state = s.load_themes(&t).unwrap();
    assert_eq!(
        (state.version, state.themes.len(), state.noise_below),
        (1, 2, 0.1)
    );
    assert_eq!(state.themes[0], "{\"renamed\":1}");
    assert_eq!(s.theme_edits(&t, 10).unwrap()[0].detail, "Billing");
    assert_eq!(s.themed_tenants().unwrap(), vec![t.clone()]);

    s.append(&[req(&t, "k", &[json!({"type": "group", "userId": "u1", "groupId": "acct-1", "traits": {"arr": "5000"}, "timestamp": at(0), "messageId": "m1"})])]).unwrap();
    let scores = [10, 9, 2, 8];
    let rows: Vec<FeedbackRow> = (0..4)
        .flat_map(|i| {
            [
                answer(json!({"response_id": format!("r{i}"), "question": "nps", "type": "nps", "value": scores[i], "collected_at": "2026-11-02T10:00:00Z"})),
                answer(json!({"response_id": format!("r{i}"), "question": "why", "type": "text", "value": format!("text {i}"), "account": "acct-1", "collected_at": "2026-11-02T10:00:00Z"})),
            ]
        })
        .collect();
    s.insert_feedback(&t, &rows).unwrap();
    let texts = s.text_answers_after(&t, 0, 10).unwrap();
    assert_eq!(texts.len(), 4);
    assert!(texts.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(s.theme_watermark(&t).unwrap(), 0);
    let assign = |a: &TextAnswer, theme: &str| ThemeAssignment {
        feedback_id: a.id,
        theme_id: theme.into(),
        day: "2026-11-02".into(),
        response_id: a.response_id.clone(),
        sentiment: Some(0.5),
        account: a.account.clone(),
    };
    s.assign_themes(
        &t,
        &[
            assign(&texts[0], "a"),
            assign(&texts[1], "a"),
            assign(&texts[2], "b"),
        ],
    )
    .unwrap();
    assert_eq!(s.theme_watermark(&t).unwrap(), texts[2].id);
    assert_eq!(s.text_answers_after(&t, texts[2].id, 10).unwrap().len(), 1);
    // reassigning replaces
    s.assign_themes(&t, &[assign(&texts[1], "b")]).unwrap();
    assert!(
        s.theme_days(&t, "2026-11-01", "2026-11-30")
            .unwrap()
            .is_empty(),
        "the rollup waits for a refresh"
    );
    s.refresh_theme_rollup(&t).unwrap();
    let days = s.theme_days(&t, "2026-11-01", "2026-11-30").unwrap();
    let got: Vec<(&str, u64, f64)> = days
        .iter()
        .map(|d| (d.theme_id.as_str(), d.answers, d.sentiment_sum))
        .collect();
    assert_eq!(got, [("a", 1, 0.5), ("b", 2, 1.0)]);
    let mut nps: Vec<(String, i64, u64)> = s
        .theme_nps(&t, "2026-11-01", "2026-11-30")
        .unwrap()
        .into_iter()
        .map(|n| (n.theme_id, n.score, n.responses))
        .collect();
    nps.sort();
    assert_eq!(
        nps,
        [("a".into(), 10, 1), ("b".into(), 0, 1), ("b".into(), 10, 1)]
    );
    let accts = s.theme_accounts(&t, "2026-11-01", "2026-11-30").unwrap();
    assert_eq!(accts.len(), 2, "one row per theme and account");
    assert_eq!(
        arr_of(&serde_json::from_str(&accts[0].traits).unwrap()),
        Some(5000.0)
    );
    // placing new answers counts them at once; placing again is a no-op
    s.place_themes(&t, &[assign(&texts[3], "a"), assign(&texts[3], "a")])
        .unwrap();
    s.place_themes(&t, &[assign(&texts[0], "b")]).unwrap();
    let days = s.theme_days(&t, "2026-11-01", "2026-11-30").unwrap();
    let got: Vec<(&str, u64)> = days
        .iter()
        .map(|d| (d.theme_id.as_str(), d.answers))
        .collect();
    assert_eq!(
        got,
        [("a", 2), ("b", 2)],
        "an answer that already has a theme is not placed again"
    );
    let mut nps: Vec<(String, i64, u64)> = s
        .theme_nps(&t, "2026-11-01", "2026-11-30")
        .unwrap()
        .into_iter()
        .map(|n| (n.theme_id, n.score, n.responses))
        .collect();
    nps.sort();
    assert_eq!(
        nps,
        [
            ("a".into(), 7, 1),
            ("a".into(), 10, 1),
            ("b".into(), 0, 1),
            ("b".into(), 10, 1)
        ]
    );
    s.refresh_theme_rollup(&t).unwrap();
    assert_eq!(
        s.theme_days(&t, "2026-11-01", "2026-11-30").unwrap(),
        days,
        "increments agree with a rebuild"
    );
    let members = s.theme_members(&t, &["b".into()], 10).unwrap();
    assert_eq!(
        members.iter().map(|m| m.id).collect::<Vec<_>>(),
        [texts[1].id, texts[2].id]
    );
    assert_eq!(s.theme_members(&t, &["a".into()], 10).unwrap().len(), 2);
    assert!(s
        .theme_days(&t, "2026-12-01", "2026-12-30")
        .unwrap()
        .is_empty());
}

fn journeys_are_versioned_and_progress_is_saved_once(s: &dyn Store) {
    use cxm_domain::journey_progress::{Outcome, Position, StageStats, Visit};
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type":"track","event":"Signed Up","userId":"u1","messageId":"a","timestamp":at(0)}),
        json!({"type":"track","event":"Page Viewed","userId":"u1","messageId":"b","timestamp":at(1)}),
        json!({"type":"track","event":"Feature Used","anonymousId":"anon-9","messageId":"c","timestamp":at(2)}),
        json!({"type":"track","event":"Feature Used","userId":"u1","messageId":"d","timestamp":at(90)}),
    ])]).unwrap();
    let p1 = profile_of(s, &t, "user_id:u1").id;
    let anon = profile_of(s, &t, "anonymous_id:anon-9").id;
    assert!(s.event_name_seen(&t, "Feature Used").unwrap());
    assert!(!s.event_name_seen(&t, "Featur Used").unwrap());

    let j = StoredJourney {
        journey_id: "onboarding".into(),
        version: 0,
        name: "Onboarding".into(),
        owner: "ada".into(),
        definition: "{}".into(),
        created_by: "test".into(),
        created_at_ms: 0,
    };
    assert_eq!(s.save_journey(&t, &j, false).unwrap(), 1);
    let names = vec!["Signed Up".to_string(), "Feature Used".to_string()];
    let evs = s.journey_events(&t, 0, i64::MAX, &names, 10).unwrap();
    let got: Vec<(&str, Option<&str>)> = evs
        .iter()
        .map(|e| (e.name.as_str(), e.profile_id.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("Signed Up", Some(p1.as_str())),
            ("Feature Used", Some(anon.as_str())),
            ("Feature Used", Some(p1.as_str()))
        ]
    );
    assert!(evs.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        s.journey_events(&t, evs[0].seq, i64::MAX, &names, 1)
            .unwrap()[0]
            .seq,
        evs[1].seq
    );

    let ms = |m: i64| (base() + Duration::minutes(m)).timestamp_millis();
    let pos = |stage, entered, done| Position {
        stage,
        entered_ms: ms(entered),
        done,
        last_contact_ms: ms(entered),
        last_channel: "web".into(),
        repeats: 0,
        switches: 0,
        unseen_switch_ms: None,
        context_seen: None,
    };
    let mut st = StageStats {
        entries: 1,
        ..StageStats::default()
    };
    let visit = Visit {
        stage: 0,
        entered_ms: ms(0),
        left_ms: ms(90),
        outcome: Outcome::Advanced,
        to: Some(1),
        repeats: 0,
        switches: 0,
    };
    st.close(&visit, Some(1.0), None);
    let progress = JourneyProgress {
        from: JourneyCursor::default(),
        to: JourneyCursor {
            event_seq: evs[2].seq,
            feedback_id: 0,
        },
        positions: vec![
            (p1.clone(), pos(1, 90, false)),
            (anon.clone(), pos(1, 2, false)),
        ],
        visits: vec![(p1.clone(), visit)],
        stats: vec![
            (0, st.clone()),
            (
                1,
                StageStats {
                    entries: 2,
                    ..StageStats::default()
                },
            ),
        ],
    };
    assert!(s
        .save_journey_progress(&t, "onboarding", 1, &progress)
        .unwrap());
    // the same pass again (another server, a retry) finds the cursor moved and changes nothing
    assert!(!s
        .save_journey_progress(&t, "onboarding", 1, &progress)
        .unwrap());
    assert_eq!(
        s.journey_cursor(&t, "onboarding", 1).unwrap().event_seq,
        evs[2].seq
    );
    let stats = s.journey_stats(&t, "onboarding", 1).unwrap();
    assert_eq!(stats[0], (0, st));
    assert_eq!(stats[1].1.entries, 2);
    assert_eq!(
        s.journey_positions(&t, "onboarding", 1, &[p1.clone(), "nobody".into()])
            .unwrap()[&p1],
        pos(1, 90, false)
    );
    // in stage 0 at minute 30 (an ended visit), in stage 1 at minute 100, nowhere before entering
    assert_eq!(
        s.journey_stage_at(
            &t,
            "onboarding",
            1,
            &[
                (p1.clone(), ms(30)),
                (p1.clone(), ms(100)),
                (anon.clone(), ms(1))
            ]
        )
        .unwrap(),
        [Some(0), Some(1), None]
    );
    // stalled: open in stage 1 and entered before minute 60: only the anonymous customer
    assert_eq!(
        s.journey_stalled(&t, "onboarding", 1, &[(1, ms(60)), (0, ms(60))])
            .unwrap(),
        [1, 0]
    );

    // a version whose stages are unchanged keeps the measurements
    assert_eq!(
        s.save_journey(
            &t,
            &StoredJourney {
                name: "Onboarding, renamed".into(),
                ..j.clone()
            },
            true
        )
        .unwrap(),
        2
    );
    assert_eq!(s.journey_stats(&t, "onboarding", 2).unwrap().len(), 2);
    assert_eq!(
        s.journey_cursor(&t, "onboarding", 2).unwrap().event_seq,
        evs[2].seq
    );
    assert_eq!(
        s.journey_stage_at(&t, "onboarding", 2, &[(p1.clone(), ms(30))])
            .unwrap(),
        [Some(0)]
    );
    let v3 = s
        .save_journey(
            &t,
            &StoredJourney {
                name: "Onboarding v3".into(),
                ..j.clone()
            },
            false,
        )
        .unwrap();
    assert_eq!(v3, 3);
    assert_eq!(
        s.list_journeys(&t)
            .unwrap()
            .iter()
            .map(|j| (j.version, j.name.as_str()))
            .collect::<Vec<_>>(),
        [(3, "Onboarding v3")]
    );
    assert_eq!(s.journey_history(&t, "onboarding").unwrap().len(), 3);
    assert_eq!(
        s.journey(&t, "onboarding", Some(1)).unwrap().unwrap().name,
        "Onboarding"
    );
    // a new version is measured from scratch, and a late pass for an old one is refused
    assert!(s.journey_stats(&t, "onboarding", 2).unwrap().is_empty());
    assert!(s.journey_stats(&t, "onboarding", 3).unwrap().is_empty());
    assert_eq!(
        s.journey_cursor(&t, "onboarding", 3).unwrap(),
        JourneyCursor::default()
    );
    assert!(!s
        .save_journey_progress(
            &t,
            "onboarding",
            2,
            &JourneyProgress {
                from: progress.to,
                ..progress.clone()
            }
        )
        .unwrap());
    let other = s.create_tenant("Other").unwrap().id;
    assert!(s.list_journeys(&other).unwrap().is_empty());
    assert!(s.journey(&other, "onboarding", None).unwrap().is_none());
}

fn decision(id: &str, at_ms: i64) -> cxm_domain::decision::DecisionRecord {
    cxm_domain::decision::DecisionRecord {
        id: id.into(),
        agent: "billing-bot".into(),
        action: "refund".into(),
        customer: "u-1".into(),
        resource: Some("order-9".into()),
        request: json!({"amount": 75.0}),
        facts: json!({"amount_cents": 7500}),
        used: json!({"profile": "p-1"}),
        policy_version: 1,
        outcome: "review".into(),
        level: "L2".into(),
        policy_ids: vec!["refund-50-to-200".into()],
        reasons: vec!["refunds from 50 to 200 are reviewed".into()],
        at_ms,
    }
}

fn decisions_chain_and_reviews_settle_once(s: &dyn Store) {
    use cxm_domain::audit::ChainCheck;
    use cxm_domain::decision::{Review, ReviewVerdict};
    let t = s.create_tenant("Acme").unwrap().id;
    let other = s.create_tenant("Other").unwrap().id;
    let v = s
        .save_policy_set(&t, "// v1", "first", "admin@acme", true)
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(
        s.save_policy_set(&t, "// v2", "draft", "admin@acme", false)
            .unwrap(),
        2
    );
    assert_eq!(s.active_policy_set(&t).unwrap().unwrap().version, 1);
    assert!(s.activate_policy_set(&t, 2, "admin@acme").unwrap());
    assert!(!s.activate_policy_set(&t, 9, "admin@acme").unwrap());
    assert_eq!(s.active_policy_set(&t).unwrap().unwrap().version, 2);
    assert_eq!(s.policy_sets(&t).unwrap().len(), 2);
    assert!(s.active_policy_set(&other).unwrap().is_none());

    let batch: Vec<NewDecision> = (0..3)
        .map(|i| NewDecision {
            tenant_id: if i == 2 { other.clone() } else { t.clone() },
            actor: "agent:billing-bot".into(),
            record: decision(&format!("dec_{i}"), 1_000 + i),
            review_due_at_ms: (i != 1).then_some(5_000),
        })
        .collect();
    s.record_decisions(&batch).unwrap();
    let d0 = s.decision(&t, "dec_0").unwrap().unwrap();
    assert_eq!(d0.record, decision("dec_0", 1_000));
    assert_eq!(d0.review_status.as_deref(), Some("pending"));
    assert!(
        s.decision(&t, "dec_2").unwrap().is_none(),
        "another tenant's decision"
    );
    let q = DecisionQuery {
        review_status: Some("pending".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.decisions(&t, &q).unwrap().len(), 1);
    let all = DecisionQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        s.decisions(&t, &all)
            .unwrap()
            .iter()
            .map(|d| d.record.id.as_str())
            .collect::<Vec<_>>(),
        ["dec_1", "dec_0"]
    );

    let review = |id: &str| Review {
        decision_id: id.into(),
        verdict: ReviewVerdict::Reversed,
        by: "lead@acme".into(),
        reason: "too generous".into(),
        at_ms: 2_000,
    };
    match s.review_decision(&t, &review("dec_0")).unwrap() {
        ReviewResult::Done(d) => assert_eq!(d.review_status.as_deref(), Some("reversed")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.review_decision(&t, &review("dec_0")).unwrap(),
        ReviewResult::NotPending(_)
    ));
    assert!(matches!(
        s.review_decision(&t, &review("dec_1")).unwrap(),
        ReviewResult::NotPending(_)
    ));
    assert!(matches!(
        s.review_decision(&t, &review("dec_2")).unwrap(),
        ReviewResult::NotFound
    ));
    s.append_audit(
        &t,
        &cxm_domain::audit::NewAuditEntry {
            actor: "admin@acme".into(),
            kind: "ticket.override".into(),
            subject: "tkt_1".into(),
            body: "{}".into(),
        },
    )
    .unwrap();

    // policy saved, saved, activated, two decisions, a review, an override: one unbroken chain
    let entries = s.audit_entries(&t, 0, 100).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        [
            "policy.saved",
            "policy.activated",
            "policy.saved",
            "policy.activated",
            "decision",
            "decision",
            "decision.reviewed",
            "ticket.override"
        ]
    );
    let mut check = ChainCheck::default();
    for e in &entries {
        check.check(e).unwrap();
    }
    let ds = s.decisions_by_audit_seq(&t, 0, 10).unwrap();
    assert_eq!(ds.iter().map(|d| d.audit_seq).collect::<Vec<_>>(), [5, 6]);
    assert_eq!(entries[4].body, ds[0].record.body());
    // the other tenant's chain starts at 1
    assert_eq!(s.audit_entries(&other, 0, 10).unwrap()[0].seq, 1);
    assert_eq!(s.audit_entries(&t, 6, 1).unwrap()[0].seq, 7);

    let agent = Agent {
        name: "billing-bot".into(),
        kind: "bot".into(),
        description: "".into(),
        disclosure: "I'm an automated assistant".into(),
        created_by: "admin".into(),
        created_at_ms: 1,
        disabled_at_ms: None,
    };
    s.save_agent(&t, &agent).unwrap();
    s.save_agent(
        &t,
        &Agent {
            kind: "voice".into(),
            ..agent.clone()
        },
    )
    .unwrap();
    assert_eq!(s.agent(&t, "billing-bot").unwrap().unwrap().kind, "voice");
    assert!(s.agent(&other, "billing-bot").unwrap().is_none());
    assert_eq!(s.agents(&t).unwrap().len(), 1);
}

fn signing_keys_messages_and_checkpoints(s: &dyn Store) {
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

/// The columnar copy of the log: full blocks only, in log order, per tenant, the same
/// events the rows hold; an erasure drops them (they name the customer) and they are written
/// again without the erased customer.
fn event_blocks_copy_the_log_and_go_with_an_erasure(s: &dyn Store) {
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
