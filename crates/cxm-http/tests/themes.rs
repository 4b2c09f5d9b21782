//! Themes over HTTP: discovered from text answers, curated by analysts (rename, merge,
//! split), and kept through re-discovery, on both backends.

mod common;

use common::{Backend, TestApp};
use serde_json::json;

fn theme_answers(prefix: &str, texts: &[&str], nps: i64, account: &str) -> Vec<serde_json::Value> {
    texts
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            let r = format!("{prefix}{i}");
            [
                json!({"response_id": r, "question": "nps", "type": "nps", "value": nps}),
                json!({"response_id": r, "question": "why", "type": "text", "value": t, "account": account}),
            ]
        })
        .collect()
}

const SLOW: [&str; 6] = [
    "the refund was slow",
    "refund still not arrived, slow",
    "slow refund again",
    "waiting weeks for my refund",
    "refund process is slow",
    "my refund took forever",
];
const KIND: [&str; 6] = [
    "friendly agent helped me",
    "the agent was friendly and quick",
    "very friendly support agent",
    "agent friendly and helpful",
    "friendly agent on chat",
    "a friendly agent solved it",
];

fn find<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["themes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["name"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&name.to_lowercase())
        })
        .unwrap_or_else(|| panic!("no theme named like {name}: {list:#}"))
}

/// Waits for the theme worker to place answers (it runs every few seconds, and at once
/// when answers arrive).
async fn placed(app: &TestApp, want: u64) -> serde_json::Value {
    for _ in 0..100 {
        let l = app.get_json("/api/v1/themes").await;
        if l["answers"].as_u64() == Some(want) {
            return l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("answers were not placed in themes");
}

async fn themes_are_discovered_curated_and_kept(backend: Backend) {
    // discovery only on demand here, so the first one is the test's own; the worker still
    // places new answers
    let config = cxm_http::HttpConfig {
        theme_rediscovery: std::time::Duration::ZERO,
        ..Default::default()
    };
    let Some(app) = TestApp::spawn_with(backend, config).await else {
        return;
    };
    let events = json!({"batch": [
        {"type": "group", "userId": "u1", "groupId": "acct-big", "traits": {"arr": 120000, "plan": "enterprise"}, "messageId": "g1"},
        {"type": "group", "userId": "u2", "groupId": "acct-small", "traits": {"arr": 3000}, "messageId": "g2"},
    ]});
    assert_eq!(app.batch(events).await.status(), 200);
    let mut answers = theme_answers("s", &SLOW, 2, "acct-big");
    answers.extend(theme_answers("k", &KIND, 10, "acct-small"));
    let r = app
        .post("/api/v1/feedback", &app.write_key, &json!(answers))
        .await;
    assert_eq!(r.status(), 200);

    let empty = app.get_json("/api/v1/themes").await;
    assert_eq!(
        (
            empty["version"].as_i64(),
            empty["themes"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    let d = app
        .post("/api/v1/themes/discover", &app.secret_key, &json!({"k": 2}))
        .await;
    assert_eq!(d.status(), 200);
    let d: serde_json::Value = d.json().await.unwrap();
    assert_eq!(
        (
            d["version"].as_i64(),
            d["created"].as_i64(),
            d["answers"].as_i64()
        ),
        (Some(1), Some(2), Some(12))
    );

    let list = app.get_json("/api/v1/themes").await;
    let refund = find(&list, "refund");
    assert_eq!(refund["answers"], 6);
    assert_eq!(refund["nps_mentioners"], -100.0);
    assert_eq!(refund["nps_others"], 100.0);
    assert_eq!(refund["nps_impact"], -200.0);
    assert_eq!(
        (refund["accounts"].as_u64(), refund["arr"].as_f64()),
        (Some(1), Some(120000.0))
    );
    assert_eq!(refund["quotes"].as_array().unwrap().len(), 3);
    assert_eq!(
        refund["trend"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["answers"].as_u64().unwrap())
            .sum::<u64>(),
        6
    );
    let refund_id = refund["id"].as_str().unwrap().to_string();
    let kind_id = find(&list, "friendly")["id"].as_str().unwrap().to_string();

    // an analyst names the theme and splits long waits out of it
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/themes/{refund_id}"),
            &json!({"label": "Refund delays"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            &format!("/api/v1/themes/{refund_id}/split"),
            &app.secret_key,
            &json!({"terms": ["weeks", "forever"], "label": "Long waits"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let split: serde_json::Value = r.json().await.unwrap();
    assert_eq!(split["moved"], 2);

    // a new answer is placed by the worker, through the split rule
    let more = vec![
        json!({"response_id": "n1", "question": "why", "type": "text", "value": "refund is slow, weeks of waiting"}),
    ];
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &json!(more))
            .await
            .status(),
        200
    );
    let list = placed(&app, 13).await;
    assert_eq!(find(&list, "Long waits")["answers"], 3);
    assert_eq!(find(&list, "Refund delays")["answers"], 4);

    // re-discovery keeps the name and the split
    let d = app
        .post("/api/v1/themes/discover", &app.secret_key, &json!({"k": 2}))
        .await;
    assert_eq!(d.status(), 200);
    let list = app.get_json("/api/v1/themes").await;
    assert_eq!(find(&list, "Refund delays")["id"], refund_id.as_str());
    assert_eq!(find(&list, "Long waits")["answers"], 3);
    assert_eq!(list["edits"].as_array().unwrap().len(), 2);

    // merging moves the answers now and after the next discovery
    let r = app
        .post(
            &format!("/api/v1/themes/{kind_id}/merge"),
            &app.secret_key,
            &json!({"into": refund_id}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.post("/api/v1/themes/discover", &app.secret_key, &json!({"k": 2}))
        .await;
    let list = app.get_json("/api/v1/themes").await;
    assert_eq!(find(&list, "Refund delays")["answers"], 10);
    assert_eq!(list["themes"].as_array().unwrap().len(), 2, "{list:#}");
    let one = app
        .get_json(&format!("/api/v1/themes/{kind_id}?days=30"))
        .await;
    assert_eq!(one["status"], "merged");

    // bad input
    let bad = [
        (
            reqwest::Method::PATCH,
            format!("/api/v1/themes/{refund_id}"),
            json!({"label": "  "}),
            400,
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/themes/{refund_id}"),
            json!({"label": "x", "extra": 1}),
            400,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/themes/{refund_id}/merge"),
            json!({"into": "th_nope"}),
            404,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/themes/{refund_id}/merge"),
            json!({"into": refund_id}),
            400,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/themes/{refund_id}/split"),
            json!({"terms": ["!"], "label": "x"}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/themes/discover".into(),
            json!({"k": 1}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/themes/discover".into(),
            json!({"days": 0}),
            400,
        ),
    ];
    for (m, path, body, status) in bad {
        let r = app.send(m.clone(), &path, &body).await;
        assert_eq!(r.status(), status, "{m} {path} {body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(app.get("/api/v1/themes?days=0").await.status(), 400);
    assert_eq!(app.get("/api/v1/themes?status=odd").await.status(), 400);
    assert_eq!(app.get("/api/v1/themes/th_nope").await.status(), 404);
    // a write key cannot curate
    let r = app
        .post("/api/v1/themes/discover", &app.write_key, &json!({}))
        .await;
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn themes_are_discovered_curated_and_kept_sqlite() {
    themes_are_discovered_curated_and_kept(Backend::Sqlite).await;
}

#[tokio::test]
async fn themes_are_discovered_curated_and_kept_postgres() {
    themes_are_discovered_curated_and_kept(Backend::Postgres).await;
}
