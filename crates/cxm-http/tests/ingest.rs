//! The tracking API at the HTTP boundary: real SDK captures, bad input, limits and auth.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{gzip, Backend, TestApp};
use cxm_http::HttpConfig;
use cxm_store::KeyKind;
use serde_json::{json, Value};

fn fixtures() -> Vec<(String, Value)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdk-captures");
    let mut out = vec![];
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                let name = format!(
                    "{}/{}",
                    dir.file_name().unwrap().to_string_lossy(),
                    f.file_name().unwrap().to_string_lossy()
                );
                out.push((
                    name,
                    serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap(),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() > 40, "fixtures are missing");
    out
}

/// Replays every captured request exactly as the SDK sent it (headers, gzip, the lying
/// Content-Type) and checks the answer and what was stored: retries of the same messageId
/// are stored once.
async fn replay_all(app: &TestApp) {
    for key in [
        "WRITEKEY_SEG_PY",
        "WRITEKEY_SEG_NODE",
        "WRITEKEY_RS_PY",
        "WRITEKEY_RS_NODE",
        "phc_TESTKEY",
    ] {
        app.add_key(key, KeyKind::Write).await;
    }
    // dedup is scoped to the write key, so count distinct (key, messageId) pairs
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for (name, cap) in fixtures() {
        let body = serde_json::to_vec(&cap["body"]).unwrap();
        let gz = cap["gzip"].as_bool().unwrap();
        let mut req = app.client.post(app.url(cap["path"].as_str().unwrap()));
        for (h, v) in cap["headers"].as_object().unwrap() {
            if ["host", "content-length", "connection", "accept-encoding"]
                .contains(&h.to_ascii_lowercase().as_str())
            {
                continue;
            }
            if h.eq_ignore_ascii_case("content-encoding") && !gz {
                continue;
            }
            req = req.header(h, v.as_str().unwrap());
        }
        let resp = req
            .body(if gz { gzip(&body) } else { body })
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{name}");
        assert_eq!(resp.text().await.unwrap(), r#"{"success":true}"#, "{name}");
        let key = cap["headers"]
            .get("Authorization")
            .or(cap["body"].get("api_key"))
            .unwrap()
            .to_string();
        for m in cap["body"]["batch"].as_array().unwrap() {
            expected.insert((
                key.clone(),
                m.get("messageId")
                    .or(m.get("uuid"))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            ));
        }
    }
    let q = app.get_json("/api/v1/quarantine").await;
    assert_eq!(
        q["entries"],
        json!([]),
        "no captured event should be quarantined"
    );
    let o = app.get_json("/api/v1/overview?days=3650").await;
    assert_eq!(
        o["total_events"].as_u64().unwrap() as usize,
        expected.len(),
        "each messageId once, retries deduplicated"
    );
    // the captures link anon-abc to user-123 (identify, alias) and carry ada's email in traits
    let p = app
        .get_json("/api/v1/customers?identifier=email:ada@example.com")
        .await;
    let ids: BTreeMap<String, Vec<String>> =
        p["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .fold(BTreeMap::new(), |mut m, i| {
                m.entry(i["type"].as_str().unwrap().to_string())
                    .or_default()
                    .push(i["value"].as_str().unwrap().to_string());
                m
            });
    assert_eq!(ids["user_id"], vec!["user-123"]);
    assert!(ids["anonymous_id"].contains(&"anon-abc".to_string()));
}

#[tokio::test]
async fn sdk_captures_replay_on_sqlite() {
    let app = TestApp::spawn().await;
    replay_all(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn sdk_captures_replay_on_postgres() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, HttpConfig::default()).await else {
        return;
    };
    replay_all(&app).await;
    app.stop().await;
}

async fn problem(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn bad_input_gets_precise_errors_and_loses_nothing() {
    let app = TestApp::spawn().await;
    let post = |body: Vec<u8>| {
        app.client
            .post(app.url("/v1/batch"))
            .basic_auth(&app.write_key, Some(""))
            .body(body)
            .send()
    };

    let (s, p) = problem(post(b"{\"batch\": [".to_vec()).await.unwrap()).await;
    assert_eq!((s, p["code"].as_str().unwrap()), (400, "invalid_json"));
    let (s, p) = problem(post(b"{\"batch\": 5}".to_vec()).await.unwrap()).await;
    assert_eq!((s, p["code"].as_str().unwrap()), (400, "invalid_batch"));
    let deep = format!("{{\"batch\":[{}1{}]}}", "[".repeat(5000), "]".repeat(5000));
    let (s, p) = problem(post(deep.into_bytes()).await.unwrap()).await;
    assert_eq!((s, p["code"].as_str().unwrap()), (400, "invalid_json"));
    let (s, p) = problem(post(vec![0x1f, 0x8b, 1, 2, 3]).await.unwrap()).await;
    assert_eq!((s, p["code"].as_str().unwrap()), (400, "invalid_gzip"));

    // a gzip bomb: 64 MB of zeros compresses to ~64 KB; it must stop at the 4 MB cap
    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    assert!(bomb.len() < 200_000);
    let (s, p) = problem(post(bomb).await.unwrap()).await;
    assert_eq!((s, p["code"].as_str().unwrap()), (413, "payload_too_large"));
    let big = vec![b' '; 5 * 1024 * 1024];
    let (s, _) = problem(post(big).await.unwrap()).await;
    assert_eq!(s, 413);

    // partially invalid batch: the valid events are kept, the rest quarantined, still 200
    let huge = "x".repeat(40_000);
    let resp = app
        .batch(json!({"batch": [
            {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "ok-1"},
            {"type": "track", "userId": "u1", "messageId": "no-name"},
            {"type": "track", "event": "X", "userId": "undefined", "messageId": "junk-id"},
            {"type": "track", "event": "X", "userId": "u1", "timestamp": "9999-12-31T00:00:00Z"},
            {"type": "track", "event": "X", "userId": "u1", "properties": {"blob": huge}},
            {"type": 7, "userId": "u1"},
            "not an object",
            {"type": "identify", "userId": "u1", "unknownKey": {"kept": true}, "messageId": "ok-2"}
        ]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"success":true}"#);
    let q = app.get_json("/api/v1/quarantine").await;
    let codes: BTreeSet<&str> = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        BTreeSet::from([
            "missing_event_name",
            "missing_identity",
            "timestamp_out_of_range",
            "event_too_large",
            "invalid_type",
            "not_an_object"
        ])
    );
    assert_eq!(app.get_json("/api/v1/overview").await["total_events"], 2);
    app.stop().await;
}

#[tokio::test]
async fn auth_accepts_every_sdk_style_and_rejects_the_rest() {
    let app = TestApp::spawn().await;
    let ev = |id: &str| json!({"type": "track", "event": "X", "userId": "u", "messageId": id});
    let url = app.url("/v1/track");
    // Basic without the colon, Bearer, writeKey in the body
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(&app.write_key);
    let r = app
        .client
        .post(&url)
        .header("authorization", format!("Basic {basic}"))
        .json(&ev("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(&url)
        .bearer_auth(&app.write_key)
        .json(&ev("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = ev("c");
    body["writeKey"] = json!(app.write_key);
    let r = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (s, p) = problem(app.client.post(&url).json(&ev("d")).send().await.unwrap()).await;
    assert_eq!(
        (s, p["code"].as_str().unwrap()),
        (401, "missing_credentials")
    );
    let (s, p) = problem(
        app.client
            .post(&url)
            .bearer_auth("cxm_wk_nope")
            .json(&ev("d"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str().unwrap()),
        (401, "invalid_credentials")
    );
    let (s, p) = problem(
        app.client
            .post(&url)
            .bearer_auth(&app.secret_key)
            .json(&ev("d"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, p["code"].as_str().unwrap()), (403, "wrong_key_kind"));
    // a write key cannot read the management api
    let (s, p) = problem(
        app.client
            .get(app.url("/api/v1/overview"))
            .bearer_auth(&app.write_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, p["code"].as_str().unwrap()), (403, "wrong_key_kind"));

    // revoke through the api: the key stops working at once
    let keys = app.get_json("/api/v1/keys").await;
    let wid = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "write")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/keys/{wid}")))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, p) = problem(
        app.client
            .post(&url)
            .bearer_auth(&app.write_key)
            .json(&ev("e"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, p["detail"].as_str().unwrap()),
        (401, "this key was revoked")
    );
    assert_eq!(app.get_json("/api/v1/overview").await["total_events"], 3);
    app.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_headers() {
    let config = HttpConfig {
        rate_limit_per_sec: 1.0,
        rate_limit_burst: 2.0,
        ..Default::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await.unwrap();
    let ev = json!({"batch": [{"type": "track", "event": "X", "userId": "u"}]});
    assert_eq!(app.batch(ev.clone()).await.status(), 200);
    assert_eq!(app.batch(ev.clone()).await.status(), 200);
    let r = app.batch(ev).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry));
    let reset: u64 = r.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset >= chrono::Utc::now().timestamp() as u64);
    let (_, p) = problem(r).await;
    assert_eq!(p["code"], "rate_limited");
    app.stop().await;
}

#[tokio::test]
async fn short_routes_prefix_and_native_api() {
    let config = HttpConfig {
        path_prefix: "/collect".into(),
        ..Default::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await.unwrap();
    for (path, body) in [
        (
            "/v1/i",
            json!({"userId": "u1", "traits": {"email": "u1@x.io"}}),
        ),
        ("/v1/t", json!({"userId": "u1", "event": "Chat Started"})),
        ("/v1/p", json!({"userId": "u1", "name": "Home"})),
        ("/v1/s", json!({"userId": "u1", "name": "Welcome"})),
        (
            "/v1/g",
            json!({"userId": "u1", "groupId": "acct-1", "traits": {"arr": 12000}}),
        ),
        ("/v1/a", json!({"userId": "u1", "previousId": "anon-9"})),
        (
            "/collect/v1/batch",
            json!({"batch": [{"type": "track", "userId": "u1", "event": "Call Completed"}]}),
        ),
    ] {
        let r = app
            .client
            .post(app.url(path))
            .basic_auth(&app.write_key, Some(""))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // native api: bare array, secret key, historical timestamps kept as sent
    let r = app.post("/api/v1/events?historical=true", &app.secret_key, &json!([{"type": "track", "userId": "u1", "event": "Order Completed", "timestamp": "2021-03-04T05:06:07Z", "messageId": "hist-1"}])).await;
    assert_eq!(r.status(), 200);
    let p = app
        .get_json("/api/v1/customers?identifier=anonymous_id:anon-9")
        .await;
    assert_eq!(p["accounts"], json!(["acct-1"]));
    let ctx = app
        .get_json(&format!(
            "/api/v1/customers/{}/context?limit=500",
            p["id"].as_str().unwrap()
        ))
        .await;
    let tl = ctx["timeline"].as_array().unwrap();
    assert_eq!(tl.len(), 8);
    let oldest = tl.last().unwrap();
    assert_eq!(oldest["message_id"], "hist-1");
    assert_eq!(oldest["timestamp_ms"], 1614834367000i64);
    let channels: BTreeSet<&str> = tl.iter().map(|e| e["channel"].as_str().unwrap()).collect();
    assert!(channels.contains("chat") && channels.contains("voice") && channels.contains("mobile"));
    app.stop().await;
}

/// A batch costs one token per event: with 100 events a second and a burst of 1,000, a
/// 600-event batch passes and the next one waits about two seconds.
#[tokio::test]
async fn rate_limit_charges_every_event() {
    let config = HttpConfig {
        rate_limit_per_sec: 100.0,
        rate_limit_burst: 1000.0,
        ..Default::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await.unwrap();
    let batch = |n: usize| json!({"batch": (0..n).map(|i| json!({"type": "track", "event": "X", "userId": format!("u{i}")})).collect::<Vec<_>>()});
    assert_eq!(app.batch(batch(600)).await.status(), 200);
    let r = app.batch(batch(600)).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=3).contains(&retry), "{retry}");
    let (_, p) = problem(r).await;
    assert!(p["detail"].as_str().unwrap().contains("carries 600"), "{p}");
    // a refused batch costs nothing: 400 tokens are left for smaller ones
    assert_eq!(app.batch(batch(300)).await.status(), 200);
    assert_eq!(app.get_json("/api/v1/overview").await["total_events"], 900);
    app.stop().await;
}

/// Hostile batches cannot make the store much bigger than what they sent: a batch over the
/// event cap is refused whole, a batch of junk keeps a sample and one summary row, and a
/// full batch of real events grows the store by less than three times its size.
async fn hostile_batches_cannot_fill_the_store(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let post = |body: String| {
        app.client
            .post(app.url("/v1/batch"))
            .basic_auth(&app.write_key, Some(""))
            .body(body)
            .send()
    };
    let sql = app.sql.clone();
    let size = move || {
        let sql = sql.clone();
        async move {
            tokio::task::spawn_blocking(move || cxm_store::testing::store_bytes(&sql))
                .await
                .unwrap()
        }
    };
    let before = size().await;

    // 4 MB of two million zeros: refused before anything is stored
    let zeros = format!("{{\"batch\":[{}0]}}", "0,".repeat(2_097_000));
    assert!(zeros.len() > 4_000_000 && zeros.len() <= 4 * 1024 * 1024);
    let (s, p) = problem(post(zeros.clone()).await.unwrap()).await;
    assert_eq!((s, p["code"].as_str().unwrap()), (413, "too_many_events"));
    assert!(p["detail"].as_str().unwrap().contains("2500"), "{p}");
    assert!(app.get_json("/api/v1/quarantine").await["entries"]
        .as_array()
        .unwrap()
        .is_empty());

    // 2,500 junk elements of 1.6 KB each (4 MB): a bounded sample and a summary
    let junk_item = format!("\"{}\"", "j".repeat(1_600));
    let junk = format!(
        "{{\"batch\":[{}]}}",
        vec![junk_item.as_str(); 2_500].join(",")
    );
    let r = post(junk.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let q = app.get_json("/api/v1/quarantine?limit=1000").await;
    let entries = q["entries"].as_array().unwrap();
    assert!(entries.len() <= 101, "{} rows kept", entries.len());
    let summary = entries
        .iter()
        .find(|e| e["code"] == "quarantine_summary")
        .expect("a summary row");
    assert_eq!(summary["payload"]["quarantined"], 2_500);
    assert_eq!(summary["payload"]["by_reason"]["not_an_object"], 2_500);
    assert_eq!(
        summary["payload"]["left_out"].as_u64().unwrap() + entries.len() as u64 - 1,
        2_500
    );
    assert_eq!(q["days"][0]["events"], 2_500);
    assert_eq!(q["days"][0]["rows_kept"], entries.len() as u64);

    // 2,500 real events of 1.6 KB each
    let real: Vec<Value> = (0..2_500)
        .map(|i| json!({"type": "track", "event": "Page Read", "userId": format!("reader-{}", i % 50), "messageId": format!("m-{i}"), "properties": {"text": "r".repeat(1_500)}}))
        .collect();
    let real = serde_json::to_string(&json!({ "batch": real })).unwrap();
    assert!(real.len() > 3_900_000);
    let mid = size().await;
    assert_eq!(post(real.clone()).await.unwrap().status(), 200);
    let after = size().await;
    let junk_growth = mid.saturating_sub(before);
    let real_growth = after.saturating_sub(mid);
    eprintln!(
        "store growth: junk {junk_growth} bytes for {} sent, real {real_growth} bytes for {} sent",
        zeros.len() + junk.len(),
        real.len()
    );
    assert!(
        junk_growth <= 3 * (zeros.len() + junk.len()) as u64,
        "the two hostile requests grew the store by {junk_growth} bytes"
    );
    assert!(
        junk_growth < junk.len() as u64,
        "a junk batch keeps less than it sent: {junk_growth} for {}",
        junk.len()
    );
    assert!(
        real_growth <= 3 * real.len() as u64,
        "a full batch of events grew the store by {real_growth} bytes for {}",
        real.len()
    );
    assert_eq!(
        app.get_json("/api/v1/overview").await["total_events"],
        2_500
    );
    app.stop().await;
}

#[tokio::test]
async fn hostile_batches_on_sqlite() {
    hostile_batches_cannot_fill_the_store(Backend::Sqlite).await;
}

#[tokio::test]
async fn hostile_batches_on_postgres() {
    hostile_batches_cannot_fill_the_store(Backend::Postgres).await;
}

/// A NUL character is quarantined at the door on both backends, so a tenant sending them
/// while another tenant sends good events fails nobody.
async fn nul_bytes_fail_no_other_request(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let (other_tenant, other_key, _) = TestApp::new_tenant(&app.store, "Other").await;
    let mut sends = vec![];
    for i in 0..200 {
        let (client, url) = (app.client.clone(), app.url("/v1/batch"));
        let (key, body) = if i % 2 == 0 {
            (
                app.write_key.clone(),
                json!({"batch": [{"type": "track", "event": "X\u{0}", "userId": format!("bad\u{0}{i}")}]}),
            )
        } else {
            (
                other_key.clone(),
                json!({"batch": [{"type": "track", "event": "Good", "userId": format!("good-{i}")}]}),
            )
        };
        sends.push(tokio::spawn(async move {
            client
                .post(url)
                .basic_auth(key, Some(""))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for s in sends {
        assert_eq!(s.await.unwrap(), 200);
    }
    let q = app.get_json("/api/v1/quarantine?limit=1000").await;
    let entries = q["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 100);
    for e in entries {
        assert_eq!(e["code"], "invalid_field", "{e}");
        assert!(e["detail"].as_str().unwrap().contains("NUL"), "{e}");
    }
    let store = app.store.clone();
    let other = tokio::task::spawn_blocking(move || {
        store
            .overview(&other_tenant, 30, chrono::Utc::now().timestamp_millis())
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(other.total_events, 100);
    app.stop().await;
}

#[tokio::test]
async fn nul_bytes_on_sqlite() {
    nul_bytes_fail_no_other_request(Backend::Sqlite).await;
}

#[tokio::test]
async fn nul_bytes_on_postgres() {
    nul_bytes_fail_no_other_request(Backend::Postgres).await;
}
