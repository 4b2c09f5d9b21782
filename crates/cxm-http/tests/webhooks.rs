//! Outbound webhooks against a real receiver: Standard Webhooks signatures, retries with
//! backoff after 500s, the same message id on every attempt, and the delivery log.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Default)]
struct Received {
    calls: Vec<(HeaderMap, String)>,
}

/// A receiver that answers 500 to its first two calls and 200 after.
async fn receiver() -> (String, Arc<Mutex<Received>>) {
    let seen = Arc::new(Mutex::new(Received::default()));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = s2.clone();
            async move {
                let mut r = seen.lock().unwrap();
                r.calls.push((headers, body));
                if r.calls.len() <= 2 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn webhooks_are_signed_and_retried(backend: Backend) {
    let config = HttpConfig {
        webhook_retry_base: Duration::from_millis(50),
        ..common::loopback_webhooks()
    };
    let Some(app) = TestApp::spawn_with(backend, config).await else {
        return;
    };
    let (url, seen) = receiver().await;
    for (body, says) in [
        (json!({"url": "ftp://example.com/x"}), "http or https"),
        (json!({"url": "not a url"}), "not a URL"),
        (
            json!({"url": url, "events": ["ticket.exploded"]}),
            "no event type",
        ),
    ] {
        let r = app.send(Method::POST, "/api/v1/webhooks", &body).await;
        assert!([400, 422].contains(&r.status().as_u16()));
        assert!(
            r.json::<Value>().await.unwrap()["detail"]
                .as_str()
                .unwrap()
                .contains(says),
            "{says}"
        );
    }
    let r = app
        .send(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": url, "events": ["ticket.created"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    // the secret is sealed at rest: no cell of the database holds it
    let (sql, needle) = (
        app.sql.clone(),
        vec![secret.trim_start_matches("whsec_").to_string()],
    );
    let hits = tokio::task::spawn_blocking(move || cxm_store::testing::find_text(&sql, &needle))
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    let id = hook["id"].as_str().unwrap().to_string();
    assert!(
        app.get_json("/api/v1/webhooks").await["webhooks"][0]
            .get("secret")
            .is_none(),
        "the secret is shown once"
    );

    let t = app
        .send(
            Method::POST,
            "/api/v1/tickets",
            &json!({"title": "Slow refunds", "owner": "payments", "severity": "low",
        "check": {"kind": "account_health_above", "account": "acme", "score": 60}}),
        )
        .await;
    assert_eq!(t.status(), 201);
    let ticket: Value = t.json().await.unwrap();

    // the worker polls every second when idle: three attempts take about three seconds
    for _ in 0..800 {
        if seen.lock().unwrap().calls.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let calls = std::mem::take(&mut seen.lock().unwrap().calls);
    assert_eq!(calls.len(), 3, "two 500s, then delivered");
    let msg_id = calls[0].0["webhook-id"].to_str().unwrap().to_string();
    assert!(
        calls
            .iter()
            .all(|(h, _)| h["webhook-id"] == msg_id.as_str()),
        "retries keep the message id"
    );
    // verify the last call the way a receiver would
    let (h, body) = &calls[2];
    let ts = h["webhook-timestamp"].to_str().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{ts}.{body}").as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    assert_eq!(h["webhook-signature"].to_str().unwrap(), expected);
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["type"], "ticket.created");
    assert_eq!(payload["data"]["id"], ticket["id"]);

    let mut log = Value::Null;
    for _ in 0..100 {
        log = app
            .get_json(&format!("/api/v1/webhooks/{id}/deliveries"))
            .await;
        if log["deliveries"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = &log["deliveries"][0];
    assert_eq!(
        (
            d["status"].as_str(),
            d["attempts"].as_i64(),
            d["message_id"].as_str()
        ),
        (Some("delivered"), Some(3), Some(msg_id.as_str())),
        "{log}"
    );
    assert_eq!(
        log["deliveries"].as_array().unwrap().len(),
        1,
        "events the endpoint did not ask for are not sent"
    );

    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            &json!({})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            &json!({})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries"))
            .await
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn webhooks_on_sqlite() {
    webhooks_are_signed_and_retried(Backend::Sqlite).await;
}

#[tokio::test]
async fn webhooks_on_postgres() {
    webhooks_are_signed_and_retried(Backend::Postgres).await;
}

/// A receiver that counts calls and answers with `status` (and a Location to `location`).
async fn answering(status: StatusCode, location: Option<String>) -> (String, Arc<Mutex<usize>>) {
    let calls = Arc::new(Mutex::new(0usize));
    let c2 = calls.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (calls, location) = (c2.clone(), location.clone());
            async move {
                *calls.lock().unwrap() += 1;
                let mut h = HeaderMap::new();
                if let Some(l) = location {
                    h.insert("location", l.parse().unwrap());
                }
                (status, h)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}/hook"), calls)
}

async fn deliveries_of(app: &TestApp, id: &str) -> Value {
    let mut log = Value::Null;
    for _ in 0..200 {
        log = app
            .get_json(&format!("/api/v1/webhooks/{id}/deliveries"))
            .await;
        if log["deliveries"][0]["attempts"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    log
}

/// Without `--webhook-allow-network`, an endpoint on this machine or a private network is
/// refused when it is registered, in every spelling of the address, and also at connect time
/// (an endpoint whose name resolves to loopback, as after DNS rebinding, is never called).
async fn private_endpoints_are_refused(backend: Backend) {
    let config = HttpConfig {
        webhook_retry_base: Duration::from_secs(3600),
        ..HttpConfig::default()
    };
    let Some(app) = TestApp::spawn_with(backend, config).await else {
        return;
    };
    let (url, calls) = answering(StatusCode::NO_CONTENT, None).await;
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for (spelling, says) in [
        (url.clone(), "loopback"),
        (format!("http://localhost:{port}/hook"), "loopback"),
        (format!("http://0x7f000001:{port}/hook"), "loopback"),
        (format!("http://2130706433:{port}/hook"), "loopback"),
        (format!("http://[::1]:{port}/hook"), "loopback"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/hook"),
            "IPv6 address that embeds",
        ),
        ("http://10.0.0.7/hook".into(), "RFC 1918"),
        (
            "http://169.254.169.254/latest/meta-data".into(),
            "link-local",
        ),
        ("http://100.64.1.1/".into(), "carrier-grade"),
        ("http://[fd00::1]/".into(), "unique local"),
        ("http://0.0.0.0/".into(), "unspecified"),
    ] {
        let r = app
            .send(Method::POST, "/api/v1/webhooks", &json!({"url": spelling}))
            .await;
        assert_eq!(r.status(), 422, "{spelling}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "invalid_parameter");
        assert!(
            p["detail"].as_str().unwrap().contains(says),
            "{spelling}: {p}"
        );
    }
    assert!(app.get_json("/api/v1/webhooks").await["webhooks"]
        .as_array()
        .unwrap()
        .is_empty());

    // endpoints that got past registration (saved before the rule, or a name that changed
    // what it resolves to) are still not called
    for (id, target) in [
        ("wh_by_name", format!("http://localhost:{port}/hook")),
        ("wh_by_address", url.clone()),
    ] {
        let (store, tenant) = (app.store.clone(), app.tenant.clone());
        let e = cxm_store::WebhookEndpoint {
            id: id.into(),
            url: target,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            events: vec![],
            active: true,
            created_at_ms: 0,
        };
        tokio::task::spawn_blocking(move || store.add_webhook(&tenant, &e).unwrap())
            .await
            .unwrap();
    }
    let r = app
        .send(
            Method::POST,
            "/api/v1/tickets",
            &json!({"title": "Slow refunds", "owner": "payments", "severity": "low",
        "check": {"kind": "account_health_above", "account": "acme", "score": 60}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    for id in ["wh_by_name", "wh_by_address"] {
        let log = deliveries_of(&app, id).await;
        let d = &log["deliveries"][0];
        assert_eq!(d["status"], "pending", "{log}");
        assert!(
            d["last_error"]
                .as_str()
                .unwrap()
                .contains("network cxm may not reach"),
            "{log}"
        );
    }
    assert_eq!(*calls.lock().unwrap(), 0, "nothing reached the receiver");
    app.stop().await;
}

#[tokio::test]
async fn private_endpoints_on_sqlite() {
    private_endpoints_are_refused(Backend::Sqlite).await;
}

#[tokio::test]
async fn private_endpoints_on_postgres() {
    private_endpoints_are_refused(Backend::Postgres).await;
}

/// Redirects are not followed, and the delivery log says that nothing answered without the
/// connector's words (which would tell a closed port from a filtered one).
#[tokio::test]
async fn redirects_are_not_followed_and_errors_say_little() {
    let config = HttpConfig {
        webhook_retry_base: Duration::from_secs(3600),
        ..common::loopback_webhooks()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await.unwrap();
    let (target, target_calls) = answering(StatusCode::NO_CONTENT, None).await;
    let (redirecting, redirect_calls) =
        answering(StatusCode::TEMPORARY_REDIRECT, Some(target.clone())).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/hook")
    };
    let mut ids = vec![];
    for url in [&redirecting, &closed] {
        let r = app
            .send(Method::POST, "/api/v1/webhooks", &json!({"url": url}))
            .await;
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let r = app
        .send(
            Method::POST,
            "/api/v1/tickets",
            &json!({"title": "Slow refunds", "owner": "payments", "severity": "low",
        "check": {"kind": "account_health_above", "account": "acme", "score": 60}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let log = deliveries_of(&app, &ids[0]).await;
    let d = &log["deliveries"][0];
    assert_eq!(d["last_status"], 307, "{log}");
    assert!(d["last_error"]
        .as_str()
        .unwrap()
        .contains("redirects are not followed"));
    assert_eq!(*redirect_calls.lock().unwrap(), 1);
    assert_eq!(
        *target_calls.lock().unwrap(),
        0,
        "the redirect was not followed"
    );
    let log = deliveries_of(&app, &ids[1]).await;
    let err = log["deliveries"][0]["last_error"].as_str().unwrap();
    assert_eq!(
        err, "could not deliver: no answer from the endpoint",
        "{log}"
    );
    app.stop().await;
}
