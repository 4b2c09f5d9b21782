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
    let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
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

/// The same traffic appended one event per call into one tenant and as a single request into
/// another must build the same graph, ledger and account links: within a transaction the
/// identity writes are held back and written in sets, and every read the resolution makes
/// (a profile created or extended moments before, a merge of one just made) must see them.
pub(crate) fn one_request_equals_one_event_at_a_time(s: &dyn Store) {
    let one_by_one = s.create_tenant("One by one").unwrap().id;
    let at_once = s.create_tenant("At once").unwrap().id;
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
    let mut msgs = vec![];
    for i in 0..300 {
        let user = next(25);
        let mut m = json!({"type":"track","event":"Feature Used","messageId":format!("m{i}"),"timestamp":at(i64::try_from(next(5000)).unwrap())});
        if next(3) > 0 {
            m["userId"] = json!(format!("u{user}"));
        }
        // devices shared by a few users, so anonymous profiles are made and then merged
        m["anonymousId"] = json!(format!("d{}", (user * 3 + next(4)) % 40));
        match next(6) {
            0 => {
                m["type"] = json!("identify");
                m["traits"] = json!({"email": format!("p{}@x.io", next(30)), "plan": format!("plan{}", next(3))});
            }
            1 => {
                m["type"] = json!("group");
                m["groupId"] = json!(format!("acct-{}", next(6)));
                m["traits"] = json!({"tier": format!("t{}", next(3)), "seats": next(50)});
            }
            2 => m["groupId"] = json!(format!("acct-{}", next(6))),
            _ => {}
        }
        msgs.push(m);
    }
    for m in &msgs {
        s.append(&[req(&one_by_one, "k", std::slice::from_ref(m))])
            .unwrap();
    }
    s.append(&[req(&at_once, "k", &msgs)]).unwrap();

    let a = canonical_graph(s, &one_by_one);
    let b = canonical_graph(s, &at_once);
    assert!(a.0.len() > 40, "the traffic should build a real graph");
    assert!(
        a.1.iter().any(|l| l.0 == "merge") && a.1.iter().any(|l| l.0 == "drop"),
        "the traffic should merge and drop: {:?}",
        a.1
    );
    assert!(!a.2.is_empty(), "the traffic should link accounts");
    assert_eq!(a.0, b.0, "identifiers and profiles");
    assert_eq!(a.1, b.1, "ledger");
    assert_eq!(a.2, b.2, "accounts");
}

/// A seeded xorshift stream: `next(n)` is in `0..n`, the same on every run.
fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}

type Canonical = (
    Vec<(String, String, String)>,
    Vec<(
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    )>,
    Vec<(String, String, Vec<String>)>,
);

/// A tenant's graph with each profile named by its smallest identifier, so two tenants (whose
/// profile ids are keyed by their own secrets) can be compared.
fn canonical_graph(s: &dyn Store, tenant: &str) -> Canonical {
    let snap = s.identity_snapshot(tenant).unwrap();
    let mut name: std::collections::BTreeMap<String, String> = Default::default();
    for (ident, profile, _) in &snap {
        let n = name.entry(profile.clone()).or_insert_with(|| ident.clone());
        if ident < n {
            *n = ident.clone();
        }
    }
    let graph = snap
        .iter()
        .map(|(i, p, data)| (i.clone(), name[p].clone(), data.clone()))
        .collect();
    let mut ledger = vec![];
    for (profile, n) in &name {
        for l in s.ledger(tenant, profile).unwrap() {
            ledger.push((
                l.action,
                n.clone(),
                l.identifier.map(|i| format!("{}:{}", i.kind, i.value)),
                l.message_id,
                l.reason,
            ));
        }
    }
    ledger.sort();
    let mut accounts = vec![];
    for g in 0..6 {
        let group = format!("acct-{g}");
        let traits = s.account_traits(tenant, &group).unwrap();
        let mut members: Vec<String> = s
            .account_profiles(tenant, &group, 1000)
            .unwrap()
            .iter()
            .map(|p| {
                name.get(p)
                    .cloned()
                    .unwrap_or_else(|| format!("unnamed {p}"))
            })
            .collect();
        members.sort();
        if traits.is_some() || !members.is_empty() {
            accounts.push((group, format!("{traits:?}"), members));
        }
    }
    (graph, ledger, accounts)
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

/// A customer's events are found whether the store has indexed them by identifier yet or
/// not (SQLite indexes the log's tail in batches; `sqlite_short_index_lag` makes that happen
/// every few events, so a read spans both): the timeline holds each once, newest first, and
/// an erasure removes every one of them.
pub(crate) fn a_customers_events_are_found_indexed_or_not(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let mut ada = vec![];
    for r in 0..6 {
        let msgs: Vec<Value> = (0..5)
            .map(|i| {
                let n = r * 5 + i;
                let who = match n % 3 {
                    0 => json!({"userId": "u-ada", "anonymousId": "anon-ada"}),
                    1 => json!({"anonymousId": "anon-ada"}),
                    _ => json!({"userId": "u-bob"}),
                };
                if n % 3 != 2 {
                    ada.push(format!("m{n}"));
                }
                let mut m = json!({"type": "track", "event": "Feature Used", "messageId": format!("m{n}"), "timestamp": at(n)});
                m.as_object_mut().unwrap().extend(who.as_object().unwrap().clone());
                m
            })
            .collect();
        s.append(&[req(&t, "k", &msgs)]).unwrap();
    }
    let timeline = |p: &Profile| -> Vec<String> {
        let mut seen = vec![];
        let mut page = TimelinePage {
            before: None,
            limit: 4,
        };
        loop {
            let rows = s.timeline(&t, p, &page).unwrap();
            let Some(last) = rows.last() else { break };
            page.before = Some((last.timestamp_ms, last.seq));
            seen.extend(rows.into_iter().map(|e| e.message_id));
        }
        seen
    };
    let p = profile_of(s, &t, "user_id:u-ada");
    let mut newest_first = ada.clone();
    newest_first.reverse();
    assert_eq!(timeline(&p), newest_first);
    let bob = profile_of(s, &t, "user_id:u-bob");
    assert_eq!(timeline(&bob).len(), 10);
    let counts = s
        .erase_customer(&t, &p.id, "er_1", "dpo@acme.example")
        .unwrap()
        .unwrap();
    assert_eq!(counts["events"], ada.len() as u64, "{counts:?}");
    // nothing of hers is left to find, and bob's are all there
    s.append(&[req(&t, "k", &[json!({"type": "track", "event": "Back", "anonymousId": "anon-ada", "messageId": "again", "timestamp": at(40)})])]).unwrap();
    let back = profile_of(s, &t, "anonymous_id:anon-ada");
    assert_eq!(timeline(&back), ["again"]);
    assert_eq!(timeline(&bob).len(), 10);
}

/// Owners of identifiers stay true from one commit to the next: after a merge an identifier
/// of the absorbed profile finds the survivor, and after an erasure a returning identifier
/// starts a new customer instead of joining the erased one. Each step is its own append (its
/// own transaction), so anything the writer keeps between commits is exercised.
pub(crate) fn owners_follow_merges_and_erasures_across_commits(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let one = |id: &str, m: Value| {
        let mut m = m;
        m["messageId"] = json!(id);
        m["timestamp"] = json!(at(0));
        s.append(&[req(&t, "k", &[m])]).unwrap()[0].accepted
    };
    assert_eq!(
        one(
            "1",
            json!({"type":"track","event":"A","anonymousId":"anon-9"})
        ),
        1
    );
    assert_eq!(
        one(
            "2",
            json!({"type":"track","event":"B","userId":"u-9","context":{"traits":{"email":"nine@example.com"}}})
        ),
        1
    );
    let anon = profile_of(s, &t, "anonymous_id:anon-9").id;
    let user = profile_of(s, &t, "user_id:u-9").id;
    assert_ne!(anon, user);
    // the anonymous visitor signs in: one profile absorbs the other
    assert_eq!(
        one(
            "3",
            json!({"type":"identify","userId":"u-9","anonymousId":"anon-9"})
        ),
        1
    );
    let survivor = profile_of(s, &t, "user_id:u-9").id;
    assert_eq!(profile_of(s, &t, "anonymous_id:anon-9").id, survivor);
    // an identifier of the absorbed profile that this commit did not touch
    assert_eq!(
        one(
            "4",
            json!({"type":"track","event":"C","anonymousId":"anon-10","context":{"traits":{"email":"nine@example.com"}}})
        ),
        1
    );
    assert_eq!(profile_of(s, &t, "anonymous_id:anon-10").id, survivor);
    assert_eq!(
        one(
            "5",
            json!({"type":"track","event":"D","anonymousId":"anon-9"})
        ),
        1
    );
    let p = profile_of(s, &t, "anonymous_id:anon-9");
    assert_eq!(p.id, survivor);
    assert_eq!(p.event_count, 5, "every event counted on the survivor");
    // seen again just before the erasure
    assert_eq!(
        one("6", json!({"type":"track","event":"E","userId":"u-9"})),
        1
    );
    assert!(s
        .erase_customer(&t, &survivor, "er_9", "dpo@acme.example")
        .unwrap()
        .is_some());
    assert_eq!(
        one("7", json!({"type":"track","event":"F","userId":"u-9"})),
        1
    );
    let back = profile_of(s, &t, "user_id:u-9");
    assert_ne!(
        back.id, survivor,
        "a returning identifier is a new customer"
    );
    assert_eq!(back.event_count, 1);
}
