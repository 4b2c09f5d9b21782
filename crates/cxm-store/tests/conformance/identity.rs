//! One customer across channels: merges, the rules that refuse them, the timeline, rebuild and unmerge.

use super::*;

pub(crate) fn anonymous_history_joins_the_identified_customer(s: &dyn Store) {
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

pub(crate) fn two_user_ids_never_merge_and_the_drop_is_recorded(s: &dyn Store) {
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

pub(crate) fn timeline_is_newest_first_and_paginates(s: &dyn Store) {
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
pub(crate) fn rebuild_equals_incremental(s: &dyn Store) {
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

pub(crate) fn blocking_an_identifier_unmerges(s: &dyn Store) {
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
